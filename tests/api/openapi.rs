//! The OpenAPI document: version 3.1, every route the API has is in it, and every operation
//! in it is served (not the router's "no route" or "wrong method").

use serde_json::Value;

use super::{ADMIN, Api};

/// Every route of the API (docs/api.md), as (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/whoami"),
    ("get", "/api/v1/groups"),
    ("post", "/api/v1/groups"),
    ("get", "/api/v1/groups/{name}"),
    ("put", "/api/v1/groups/{name}"),
    ("delete", "/api/v1/groups/{name}"),
    ("post", "/api/v1/groups/{name}/enable"),
    ("post", "/api/v1/groups/{name}/disable"),
    ("post", "/api/v1/groups/{name}/pause"),
    ("post", "/api/v1/groups/{name}/scale"),
    ("get", "/api/v1/groups/{name}/series"),
    ("get", "/api/v1/groups/{name}/forecasts"),
    ("get", "/api/v1/groups/{name}/recommendation"),
    ("get", "/api/v1/recommendations"),
    ("get", "/api/v1/activities"),
    ("get", "/api/v1/errors"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{name}"),
    ("post", "/api/v1/enable"),
    ("post", "/api/v1/disable"),
    ("post", "/api/v1/reload"),
    ("post", "/api/v1/simulate"),
];

#[test]
fn the_openapi_document_covers_every_route_and_only_served_ones() {
    let api = Api::start();
    let r = api.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(r.status, 200);
    let doc = r.json;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not in the document: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    // Every documented operation is served: the router neither says "no route" nor "wrong
    // method" (with an admin token; a missing body or group is fine, it got to a handler).
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "delete", "patch"] {
            let Some(op) = item.get(method) else { continue };
            operations += 1;
            let concrete = path.replace("{name}", "web").replace("{*path}", "app.js");
            let r = api.call(&method.to_ascii_uppercase(), &concrete, Some(ADMIN), None);
            assert_ne!(r.status, 405, "{method} {path}: {r:?}");
            assert!(
                !r.error().1.starts_with("no route"),
                "{method} {path}: {r:?}"
            );
            assert!(r.status < 500, "{method} {path}: {r:?}");
            // Each operation documents its responses, errors included, and who may call it.
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
            let secured = op.get("security").is_some_and(|s| s != &Value::Null);
            let public = [
                "/healthz",
                "/readyz",
                "/metrics",
                "/",
                "/assets/{*path}",
                "/api/v1/openapi.json",
            ];
            assert_eq!(secured, !public.contains(&path.as_str()), "{method} {path}");
        }
    }
    assert!(operations >= ROUTES.len(), "{operations} operations");
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "{doc}"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
