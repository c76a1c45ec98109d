//! Tokens through the API (admin): a created token works at once with its role, is listed
//! without its secret, and stops working when revoked; every change is audited without the
//! secret.

use std::time::Duration;

use super::{ADMIN, Api, OPERATOR, VIEWER};
use crate::engine::wait_until;

#[test]
fn an_admin_creates_lists_and_revokes_tokens() {
    let api = Api::start();
    // Only admins manage tokens.
    for (token, status) in [(VIEWER, 403), (OPERATOR, 403)] {
        assert_eq!(api.get("/api/v1/tokens", token).status, status);
        let r = api.post(
            "/api/v1/tokens",
            token,
            r#"{"name": "x", "role": "viewer"}"#,
        );
        assert_eq!(r.status, status, "{r:?}");
    }

    let r = api.post(
        "/api/v1/tokens",
        ADMIN,
        r#"{"name": "grafana", "role": "viewer"}"#,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["role"], "viewer");
    let secret = r.json["token"].as_str().expect("the secret").to_string();
    assert!(secret.len() >= 32, "{secret}");

    // The new token works within the cache's second, with its role and no more.
    let ok = wait_until(Duration::from_secs(10), || {
        api.get("/api/v1/whoami", &secret).status == 200
    });
    assert!(ok, "{}", api.daemon.log());
    assert_eq!(api.get("/api/v1/whoami", &secret).json["name"], "grafana");
    let r = api.post("/api/v1/groups/web/disable", &secret, "{}");
    assert_eq!(r.status, 403, "{r:?}");

    // A second live token of that name: 409, naming the field.
    let r = api.post(
        "/api/v1/tokens",
        ADMIN,
        r#"{"name": "grafana", "role": "admin"}"#,
    );
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.error().0, "conflict");
    assert_eq!(r.error().2, Some("name"));

    // Listed without secret or hash.
    let r = api.get("/api/v1/tokens", ADMIN);
    assert_eq!(r.status, 200);
    let text = r.json.to_string();
    assert!(text.contains("\"grafana\""), "{text}");
    assert!(!text.contains(&secret), "{text}");
    assert!(!text.contains("hash"), "{text}");

    // Revoked: refused from then on; a second revoke is 404.
    let r = api.call("DELETE", "/api/v1/tokens/grafana", Some(ADMIN), None);
    assert_eq!(r.status, 200, "{r:?}");
    let ok = wait_until(Duration::from_secs(10), || {
        api.get("/api/v1/whoami", &secret).status == 401
    });
    assert!(ok, "a revoked token still works: {}", api.daemon.log());
    let r = api.call("DELETE", "/api/v1/tokens/grafana", Some(ADMIN), None);
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.error().0, "not_found");

    // Bad bodies name the field.
    let r = api.post("/api/v1/tokens", ADMIN, r#"{"name": "ok", "role": "root"}"#);
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.error().2, Some("role"));
    assert!(r.error().1.contains("viewer, operator or admin"), "{r:?}");
    let r = api.post(
        "/api/v1/tokens",
        ADMIN,
        r#"{"name": "-x", "role": "viewer"}"#,
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.error().2, Some("name"));
    let r = api.post(
        "/api/v1/tokens",
        ADMIN,
        r#"{"name": "ok", "role": "viewer", "secret": "mine"}"#,
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.error().1.contains("secret"), "{r:?}");

    // The audit log has the creation and the revocation, never the secret.
    let r = api.get("/api/v1/audit?actor=admin&limit=1000", ADMIN);
    let text = r.json.to_string();
    assert!(
        !text.contains(&secret),
        "the secret leaked into the audit log"
    );
    let entries = r.json["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["route"] == "/api/v1/tokens" && e["status"] == 201),
        "{text}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["route"] == "/api/v1/tokens/grafana" && e["status"] == 200),
        "{text}"
    );
}
