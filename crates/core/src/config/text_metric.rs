//! The `prometheus_text` source's metric specs: `rate(NAME)`, `sum(NAME)`, `avg(NAME)`,
//! `max(NAME)` over a pool's instances.

/// How per-instance values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextAgg {
    /// Per-second increase of a counter, summed over instances.
    Rate,
    Sum,
    Avg,
    Max,
}

/// Parse a spec such as `rate(backend_requests_total)`.
pub fn parse(spec: &str) -> Result<(TextAgg, String), String> {
    let bad = || {
        format!(
            "invalid metric spec \"{spec}\": expected rate(NAME), sum(NAME), avg(NAME) or max(NAME)"
        )
    };
    let (func, rest) = spec.trim().split_once('(').ok_or_else(bad)?;
    let name = rest.strip_suffix(')').ok_or_else(bad)?.trim();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(bad());
    }
    let agg = match func.trim() {
        "rate" => TextAgg::Rate,
        "sum" => TextAgg::Sum,
        "avg" => TextAgg::Avg,
        "max" => TextAgg::Max,
        _ => return Err(bad()),
    };
    Ok((agg, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse("rate(backend_requests_total)"),
            Ok((TextAgg::Rate, "backend_requests_total".into()))
        );
        assert_eq!(
            parse(" avg( in_flight ) "),
            Ok((TextAgg::Avg, "in_flight".into()))
        );
        assert!(parse("backend_requests_total").is_err());
        assert!(parse("median(x)").is_err());
        assert!(parse("rate(a b)").is_err());
    }
}
