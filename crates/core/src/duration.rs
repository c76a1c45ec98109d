//! Human durations: "90s", "5m", "1h30m", "2 hours", "7d" (a day is 24 hours here).

use jiff::{SignedDuration, Span, SpanRelativeTo, Unit};

/// Parse a duration; days count as 24 hours.
pub fn parse(text: &str) -> Result<SignedDuration, String> {
    let t = text.trim();
    if let Ok(d) = t.parse::<SignedDuration>() {
        return Ok(d);
    }
    // SignedDuration refuses calendar units; a Span with 24-hour days takes "7d".
    t.parse::<Span>()
        .ok()
        .and_then(|s| s.total((Unit::Second, SpanRelativeTo::days_are_24_hours())).ok())
        .and_then(|secs| SignedDuration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("invalid duration \"{text}\": expected a duration such as \"90s\", \"5m\" or \"1h30m\""))
}

/// A config duration that validation already accepted, or `default` when absent; as a
/// `std::time::Duration` for timers (negative values, refused by validation, become zero).
pub fn or_default(text: Option<&str>, default: std::time::Duration) -> std::time::Duration {
    text.and_then(|t| parse(t).ok())
        .map(|d| std::time::Duration::try_from(d).unwrap_or_default())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms() {
        assert_eq!(parse("90s"), Ok(SignedDuration::from_secs(90)));
        assert_eq!(parse("5m"), Ok(SignedDuration::from_mins(5)));
        assert_eq!(parse("1h30m"), Ok(SignedDuration::from_mins(90)));
        assert_eq!(parse("2 hours"), Ok(SignedDuration::from_hours(2)));
        assert_eq!(parse("7d"), Ok(SignedDuration::from_hours(168)));
        assert_eq!(parse("500ms"), Ok(SignedDuration::from_millis(500)));
        assert!(parse("90").unwrap_err().contains("expected a duration"));
        assert!(parse("soon").is_err());
    }
}
