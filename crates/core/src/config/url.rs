//! A strict check of the absolute http(s) URLs a config holds (the core has no URL parser and
//! takes no networking dependency): scheme `http` or `https`, a non-empty host (a name, an
//! IPv4 address or a bracketed IPv6 address), an optional port 1..=65535, then an optional
//! path, query or fragment. No credentials (`user@`), no spaces or control characters.

/// `url` with its password replaced by `***`: the one in the user info
/// (`postgres://user:***@host/db`) and any `password=` parameter (`?password=***`, or a
/// `key=value` connection string's `password=***`). Anything else is kept as written.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some((start, end)) = userinfo_password_span(&out) {
        out.replace_range(start..end, "***");
    }
    // `password=` values (query parameters or `key=value` connection strings), also
    // `sslpassword=`; case-insensitive.
    let mut from = 0;
    loop {
        let lower = out.to_ascii_lowercase();
        let Some(at) = lower[from..].find("password=") else {
            break;
        };
        let value_start = from + at + "password=".len();
        let value_end = out[value_start..]
            .find(['&', ' ', '#', '\t', '\n'])
            .map_or(out.len(), |n| value_start + n);
        if value_end > value_start {
            out.replace_range(value_start..value_end, "***");
            from = value_start + 3;
        } else {
            from = value_start;
        }
    }
    out
}

/// Byte range of the password in a URL's user info, if it has one.
fn userinfo_password_span(url: &str) -> Option<(usize, usize)> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let colon = userinfo.find(':')?;
    Some((scheme_end + colon + 1, scheme_end + at))
}

/// The password written in a URL's user info (as written, percent-encoded), if any.
pub fn userinfo_password(url: &str) -> Option<&str> {
    userinfo_password_span(url).map(|(s, e)| &url[s..e])
}

/// `Ok(())` when `url` is an absolute http(s) URL; else what is wrong with it.
pub fn check(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("expected http:// or https://")?;
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("contains {c:?}: encode it or remove it"));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err("credentials (`user@`) are not supported in URLs".into());
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or("unclosed `[`: an IPv6 address is written as [::1]")?;
        let addr = &inner[..close];
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("invalid IPv6 address `{addr}`"));
        }
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("expected `:PORT` or a path after `]`")?,
            ),
        };
        (addr, port)
    } else {
        if authority.contains(['[', ']']) {
            return Err("`[` and `]` only enclose an IPv6 address right after `//`".into());
        }
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let bracketed = authority.starts_with('[');
    if !bracketed {
        let name = host.strip_suffix('.').unwrap_or(host);
        let valid = name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
        if !valid {
            return Err(format!("invalid host `{host}`"));
        }
    }
    if let Some(p) = port {
        match p.parse::<u32>() {
            Ok(n) if (1..=65_535).contains(&n) && !p.starts_with('+') => {}
            _ => return Err(format!("invalid port `{p}`: expected 1 to 65535")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_absolute_http_urls() {
        for ok in [
            "http://127.0.0.1:9090",
            "https://prometheus.example.com",
            "http://localhost:8080/stats?x=1#top",
            "http://[::1]:9090/",
            "http://[fe80::1]",
            "https://hooks.example.com/scalepilot",
            "http://my_host.internal:1",
            "http://example.com.",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_would_fail_at_runtime() {
        for (bad, why) in [
            ("http://[::1", "unclosed `[`"),
            ("http://[::1]x", "expected `:PORT`"),
            ("http://[nope]:80", "invalid IPv6"),
            ("127.0.0.1:9090", "expected http://"),
            ("ftp://example.com", "expected http://"),
            ("http://", "no host"),
            ("http:///path", "no host"),
            ("http://:9090", "no host"),
            ("http://example.com:0", "invalid port `0`"),
            ("http://example.com:65536", "invalid port"),
            ("http://example.com:", "invalid port ``"),
            ("http://example.com:+80", "invalid port"),
            ("http://example.com:80:81", "invalid port"),
            ("http://exa mple.com", "contains ' '"),
            ("http://user:pw@example.com", "credentials"),
            ("http://ex!ample.com", "invalid host"),
            ("http://.example.com", "invalid host"),
            ("http://a..b", "invalid host"),
            ("http://a]b", "`[` and `]`"),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
