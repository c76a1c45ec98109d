//! Every route with each role: 401 without a token and with a bad one, 403 for a role too
//! low, success for the right role; denied and mutating calls land in the audit log.

use super::{ADMIN, Api, OPERATOR, VIEWER};

/// A group spec for the database-group routes.
const DB_GROUP: &str = r#"{"name": "dbweb", "min": 1, "max": 4, "evaluation_interval": "1s",
  "source": {"kind": "static", "values": {"request_rate": 20}},
  "target": {"kind": "command", "command": "true"},
  "strategies": [{"kind": "target_tracking", "metric": "request_rate", "target_per_replica": 10}]}"#;

fn simulate_body() -> String {
    let csv: String = std::iter::once("timestamp_seconds,value\n".to_string())
        .chain((0..600).map(|t| format!("{t},{}\n", 30 + (t % 60))))
        .collect();
    serde_json::json!({
        "config": "name: sim\nmin: 1\nmax: 20\nsource: {kind: static, values: {request_rate: 1}}\ntarget: {kind: command, command: \"true\"}\nstrategies:\n  - {kind: target_tracking, metric: request_rate, target_per_replica: 10}\n",
        "trace": {"csv": csv},
    })
    .to_string()
}

#[test]
fn every_route_checks_the_token_and_the_role_and_audits_denials() {
    let api = Api::start();
    let sim = simulate_body();
    // (method, path, body, the role it needs, the status the right role gets), in an order
    // whose side effects do not get in each other's way.
    let routes: Vec<(&str, &str, Option<&str>, &str, u16)> = vec![
        ("GET", "/api/v1/whoami", None, "viewer", 200),
        ("GET", "/api/v1/groups", None, "viewer", 200),
        ("GET", "/api/v1/groups/web", None, "viewer", 200),
        ("GET", "/api/v1/groups/web/series", None, "viewer", 200),
        ("GET", "/api/v1/groups/web/forecasts", None, "viewer", 200),
        (
            "GET",
            "/api/v1/groups/web/recommendation",
            None,
            "viewer",
            200,
        ),
        ("GET", "/api/v1/recommendations", None, "viewer", 200),
        ("GET", "/api/v1/activities", None, "viewer", 200),
        ("GET", "/api/v1/errors", None, "viewer", 200),
        ("GET", "/api/v1/audit", None, "admin", 200),
        ("GET", "/api/v1/tokens", None, "admin", 200),
        (
            "POST",
            "/api/v1/tokens",
            Some(r#"{"name": "roles", "role": "viewer"}"#),
            "admin",
            201,
        ),
        ("DELETE", "/api/v1/tokens/roles", None, "admin", 200),
        (
            "POST",
            "/api/v1/groups/web/pause",
            Some(r#"{"scale_in": false, "scale_out": false}"#),
            "operator",
            200,
        ),
        (
            "POST",
            "/api/v1/groups/web/scale",
            Some(r#"{"replicas": 6, "reason": "role test"}"#),
            "operator",
            200,
        ),
        ("POST", "/api/v1/groups/web/disable", None, "operator", 200),
        ("POST", "/api/v1/groups/web/enable", None, "operator", 200),
        ("POST", "/api/v1/disable", None, "operator", 200),
        ("POST", "/api/v1/enable", None, "operator", 200),
        ("POST", "/api/v1/reload", None, "operator", 200),
        ("POST", "/api/v1/simulate", Some(&sim), "operator", 200),
        ("POST", "/api/v1/groups", Some(DB_GROUP), "admin", 201),
        ("PUT", "/api/v1/groups/dbweb", Some(DB_GROUP), "admin", 200),
        ("DELETE", "/api/v1/groups/dbweb", None, "admin", 200),
    ];
    let secret = |role: &str| match role {
        "viewer" => VIEWER,
        "operator" => OPERATOR,
        _ => ADMIN,
    };
    let below: &[(&str, &[&str])] = &[
        ("viewer", &[]),
        ("operator", &["viewer"]),
        ("admin", &["viewer", "operator"]),
    ];
    let mut denied = 0;
    for (method, path, body, role, ok) in &routes {
        let r = api.call(method, path, None, *body);
        assert_eq!(r.status, 401, "{method} {path} without a token: {r:?}");
        assert_eq!(r.error().0, "unauthorized", "{method} {path}");
        assert!(r.error().1.contains("no token"), "{method} {path}: {r:?}");
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{r:?}"
        );
        let r = api.call(method, path, Some("sp_not_a_token"), *body);
        assert_eq!(r.status, 401, "{method} {path} with a bad token: {r:?}");
        assert_eq!(r.error().1, "unknown or revoked token", "{method} {path}");
        denied += 2;
        let lower = below.iter().find(|(r, _)| r == role).unwrap().1;
        for low in lower {
            let r = api.call(method, path, Some(secret(low)), *body);
            assert_eq!(r.status, 403, "{method} {path} as {low}: {r:?}");
            let (code, message, _) = r.error();
            assert_eq!(code, "forbidden");
            assert!(message.contains(&format!("needs {role}")), "{message}");
            denied += 1;
        }
        let r = api.call(method, path, Some(secret(role)), *body);
        assert_eq!(r.status, *ok, "{method} {path} as {role}: {r:?}");
    }
    let r = api.get("/api/v1/whoami", OPERATOR);
    assert_eq!(
        r.json,
        serde_json::json!({"name": "operator", "role": "operator"})
    );

    // Every denial is in the audit log (the pages walked), with the actor and role known.
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?status=denied&limit=7&cursor={c}"),
            None => "/api/v1/audit?status=denied&limit=7".to_string(),
        };
        let r = api.get(&path, ADMIN);
        assert_eq!(r.status, 200, "{r:?}");
        entries.extend(r.json["entries"].as_array().unwrap().iter().cloned());
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(entries.len(), denied, "{entries:#?}");
    assert!(entries.iter().all(|e| e["allowed"] == false));
    let forbidden = entries
        .iter()
        .find(|e| e["status"] == 403 && e["route"] == "/api/v1/groups/web/scale")
        .expect("the viewer's refused scale");
    assert_eq!(forbidden["actor"], "viewer");
    assert_eq!(forbidden["role"], "viewer");
    assert_eq!(forbidden["method"], "POST");
    let anonymous = entries.iter().filter(|e| e["actor"] == "anonymous").count();
    assert_eq!(anonymous, routes.len() * 2);

    // The allowed changes, with what they changed.
    let r = api.get(
        "/api/v1/audit?actor=operator&status=allowed&limit=1000",
        ADMIN,
    );
    let ops = r.json["entries"].as_array().unwrap();
    let scale = ops
        .iter()
        .find(|e| e["route"] == "/api/v1/groups/web/scale")
        .expect("the scale");
    assert_eq!(scale["status"], 200);
    assert_eq!(scale["before"]["name"], "web");
    assert_eq!(scale["after"]["name"], "web");
    assert!(
        scale["detail"].as_str().unwrap().contains("role test"),
        "{scale}"
    );
    let r = api.get("/api/v1/audit?actor=admin&limit=1000", ADMIN);
    let admin = r.json["entries"].as_array().unwrap();
    let created = admin
        .iter()
        .find(|e| e["method"] == "POST" && e["route"] == "/api/v1/groups")
        .expect("the created group");
    assert!(created["before"].is_null());
    assert_eq!(created["after"]["name"], "dbweb");
    assert_eq!(created["after"]["max"], 4);
    let deleted = admin.iter().find(|e| e["method"] == "DELETE").unwrap();
    assert_eq!(deleted["before"]["name"], "dbweb");
    assert!(deleted["after"].is_null());
    // Reads by an allowed caller are not audited.
    assert!(admin.iter().all(|e| e["method"] != "GET"), "{admin:#?}");

    // A revoked token stops working without a restart (the cache follows the store).
    let db = api.db();
    super::block_on(async move {
        use scalepilot_store::Store as _;
        let store = scalepilot_store::SqliteStore::open(&db).await.unwrap();
        assert!(
            store
                .revoke_token("viewer", jiff::Timestamp::now())
                .await
                .unwrap()
        );
    });
    let revoked = crate::engine::wait_until(std::time::Duration::from_secs(15), || {
        api.get("/api/v1/groups", VIEWER).status == 401
    });
    assert!(revoked, "the revoked token still works");
    assert_eq!(
        api.get("/api/v1/groups", VIEWER).error().1,
        "unknown or revoked token"
    );
    assert_eq!(api.get("/api/v1/groups", OPERATOR).status, 200);
}
