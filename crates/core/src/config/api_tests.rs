//! The `api:` section: defaults, listen addresses, TLS files, and the exact problems of bad ones.

use std::net::SocketAddr;

use super::*;

const GROUP: &str = "groups:\n  - name: web\n    min: 1\n    max: 10\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 50}\n";

fn api(section: &str) -> Result<Option<Api>, String> {
    parse(&format!("{section}{GROUP}"), "a.yaml")
        .map(|c| c.api)
        .map_err(|e| e.to_string())
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn no_api_section_means_no_api() {
    assert_eq!(api(""), Ok(None));
}

#[test]
fn a_bare_api_key_serves_on_the_default_address() {
    let want = Api {
        listen: addr("127.0.0.1:8080"),
        tls: None,
    };
    assert_eq!(api("api:\n"), Ok(Some(want.clone())));
    assert_eq!(api("api: {}\n"), Ok(Some(want)));
}

#[test]
fn listen_takes_ip_addresses_and_localhost() {
    for (written, want) in [
        ("127.0.0.1:9000", "127.0.0.1:9000"),
        ("0.0.0.0:8080", "0.0.0.0:8080"),
        ("\"[::1]:8443\"", "[::1]:8443"),
        ("localhost:8080", "127.0.0.1:8080"),
        ("LocalHost:0", "127.0.0.1:0"),
    ] {
        let got = api(&format!("api:\n  listen: {written}\n"))
            .unwrap()
            .unwrap();
        assert_eq!(got.listen, addr(want), "{written}");
    }
}

#[test]
fn tls_keeps_the_paths_as_written() {
    let got =
        api("api:\n  listen: 127.0.0.1:8443\n  tls: {cert: tls/cert.pem, key: /etc/sp/key.pem}\n")
            .unwrap()
            .unwrap();
    assert_eq!(
        got.tls,
        Some(ApiTls {
            cert: "tls/cert.pem".into(),
            key: "/etc/sp/key.pem".into()
        })
    );
}

#[test]
fn bad_api_sections_name_the_line_field_and_what_is_expected() {
    let cases = [
        (
            "api:\n  listen: example.com:8080\n",
            "a.yaml:2:3: api.listen: \"example.com:8080\": `example.com` is not an IP address: expected an address such as \"127.0.0.1:8080\", \"[::1]:8080\", \"0.0.0.0:8080\" or \"localhost:8080\" (other host names are not resolved)",
        ),
        (
            "api:\n  listen: \"8080\"\n",
            "a.yaml:2:3: api.listen: \"8080\" has no port: expected an address and port such as \"127.0.0.1:8080\"",
        ),
        (
            "api:\n  listen: 127.0.0.1:99999\n",
            "a.yaml:2:3: api.listen: \"127.0.0.1:99999\": port `99999` is not a number from 0 to 65535",
        ),
        (
            "api:\n  listen: \"::1:8080\"\n",
            "a.yaml:2:3: api.listen: \"::1:8080\": write an IPv6 address in brackets, such as \"[::1]:8080\"",
        ),
        (
            "api:\n  listen: 127.0.0.1:8080\n  port: 80\n",
            "a.yaml:3:3: api.port: unknown field `port`, expected `listen` or `tls`",
        ),
        (
            "api:\n  tls:\n    cert: c.pem\n",
            "a.yaml:2:3: api.tls: missing field `key`",
        ),
        (
            "api:\n  tls:\n    cert: c.pem\n    key: \"\"\n",
            "a.yaml:4:5: api.tls.key: empty path",
        ),
        (
            "api:\n  tls: {cert: c.pem, key: k.pem, ca: ca.pem}\n",
            "a.yaml:2:34: api.tls.ca: unknown field `ca`, expected `cert` or `key`",
        ),
        (
            "api: 8080\n",
            "a.yaml:1:1: api: invalid type: integer `8080`, expected a mapping",
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(section, want)| {
            let got = api(section).err().unwrap_or_else(|| "validated".into());
            (got != *want).then(|| format!("{section}\n  got  {got}\n  want {want}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn api_is_a_known_top_level_field() {
    let e = parse(&format!("apii: {{}}\n{GROUP}"), "a.yaml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "a.yaml:1:1: apii: unknown field `apii`, expected one of `store`, `alerts`, `engine`, `budget`, `api`, `groups_from`, `groups`"
    );
}
