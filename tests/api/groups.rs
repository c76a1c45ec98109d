//! Groups through the API: live status, manual scaling recorded as an activity with its
//! actor and reason, pause and enable, database groups' lifecycle, history pages walked
//! without duplicates, dry-run recommendations, the series and the metrics.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::{ADMIN, Api, OPERATOR, VIEWER};
use crate::engine::wait_until;

#[test]
fn groups_scale_pause_and_page_through_their_history() {
    let api = Api::start();
    // The first evaluation: 50 req/s at 10 per replica.
    let ok = wait_until(Duration::from_secs(20), || {
        api.get("/api/v1/groups/web", VIEWER).json["desired"] == 5
    });
    assert!(ok, "{}", api.daemon.log());

    let r = api.get("/api/v1/groups", VIEWER);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["enabled"], true);
    let web = &r.json["groups"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["source"], "file");
    assert_eq!(
        (web["min"].clone(), web["max"].clone()),
        (json!(1), json!(10))
    );
    assert_eq!(
        web["paused"],
        json!({"scale_in": false, "scale_out": false})
    );
    assert!(
        web["last_evaluation"].as_str().unwrap().ends_with('Z'),
        "{web}"
    );
    // The decision record: every strategy's recommendation and reason, the rules applied.
    let decision = &web["last_decision"]["decision"];
    assert_eq!(
        decision["strategies"][0]["kind"], "target_tracking",
        "{web}"
    );
    assert!(decision["limits"].is_array(), "{web}");
    let r = api.get("/api/v1/groups/web", VIEWER);
    assert_eq!(r.json["config"]["name"], "web");
    assert_eq!(r.json["config"]["max"], 10);

    // A dry evaluation: each strategy's recommendation, reason and confidence; nothing acted.
    let r = api.get("/api/v1/groups/web/recommendation", VIEWER);
    assert_eq!(r.status, 200, "{r:?}");
    let s = &r.json["strategies"][0];
    assert_eq!(s["kind"], "target_tracking");
    assert_eq!(s["replicas"], 5);
    assert_eq!(s["confidence"], 1.0);
    assert!(
        s["reason"].as_str().unwrap().contains("request_rate"),
        "{s}"
    );
    assert_eq!(r.json["desired"], 5);
    let r = api.get("/api/v1/recommendations", VIEWER);
    assert_eq!(r.json["recommendations"][0]["group"], "web");
    assert_eq!(r.json["recommendations"][0]["strategies"][0]["replicas"], 5);
    assert!(r.json["next_cursor"].is_null());

    // Scale-in paused: a manual scale up is followed by no scale back down.
    let r = api.post(
        "/api/v1/groups/web/pause",
        OPERATOR,
        r#"{"scale_in": true, "scale_out": false}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json,
        json!({"name": "web", "paused": {"scale_in": true, "scale_out": false}})
    );
    let r = api.post(
        "/api/v1/groups/web/scale",
        OPERATOR,
        r#"{"replicas": 8, "reason": "warm up for the launch"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.json["group"].clone(), r.json["to"].clone()),
        (json!("web"), json!(8))
    );
    assert_eq!(r.json["event"]["desired"], 8);
    let replicas =
        || std::fs::read_to_string(api.dir.path().join("web.replicas")).unwrap_or_default();
    assert_eq!(replicas().trim(), "8");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(replicas().trim(), "8", "scale-in is paused");
    assert_eq!(
        api.get("/api/v1/groups/web", VIEWER).json["paused"]["scale_in"],
        true
    );

    // Past max: only an admin may force it.
    let r = api.post(
        "/api/v1/groups/web/scale",
        ADMIN,
        r#"{"replicas": 12, "reason": "incident 42", "force": true}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(replicas().trim(), "12");

    // The manual scales are activities with their actor and reason.
    let r = api.get("/api/v1/activities?group=web&limit=10", VIEWER);
    let acts = r.json["activities"].as_array().unwrap();
    let warm = acts
        .iter()
        .find(|a| a["to"] == 8)
        .expect("the manual scale to 8");
    assert_eq!(warm["actor"], "operator");
    assert_eq!(warm["reason"], "warm up for the launch");
    assert_eq!(warm["status"], "succeeded");
    let forced = acts
        .iter()
        .find(|a| a["to"] == 12)
        .expect("the forced scale");
    assert_eq!(
        (forced["actor"].clone(), forced["reason"].clone()),
        (json!("admin"), json!("incident 42"))
    );
    let first = acts
        .iter()
        .find(|a| a["to"] == 5)
        .expect("the first evaluation's scale");
    assert!(
        first["actor"].is_null() && first["reason"].is_null(),
        "{first}"
    );

    // More activities, then every page walked: newest first, no duplicates, none missed.
    let r = api.post(
        "/api/v1/groups/web/pause",
        OPERATOR,
        r#"{"scale_in": false, "scale_out": true}"#,
    );
    assert_eq!(r.status, 200);
    for i in 0..9 {
        let body = format!(r#"{{"replicas": {}, "reason": "step {i}"}}"#, 2 + i % 3);
        let r = api.post("/api/v1/groups/web/scale", OPERATOR, &body);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let all = api.get("/api/v1/activities?limit=1000", VIEWER);
    let all_ids: Vec<i64> = ids(&all.json["activities"]);
    assert!(all_ids.len() >= 12, "{all_ids:?}");
    assert!(all.json["next_cursor"].is_null());
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/activities?limit=5&cursor={c}"),
            None => "/api/v1/activities?limit=5".into(),
        };
        let r = api.get(&path, VIEWER);
        assert_eq!(r.status, 200, "{r:?}");
        let page = ids(&r.json["activities"]);
        assert!(page.len() <= 5);
        walked.extend(page);
        pages += 1;
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(
        walked.len(),
        walked.iter().collect::<HashSet<_>>().len(),
        "{walked:?}"
    );
    assert!(
        walked.windows(2).all(|w| w[0] > w[1]),
        "newest first: {walked:?}"
    );
    // Rows added after the full read (the group's own evaluations) come before it, so the
    // full list is the walk's tail.
    assert!(walked.ends_with(&all_ids), "{walked:?} vs {all_ids:?}");
    // Filters: a group nobody has, a window in the future.
    let r = api.get("/api/v1/activities?group=nobody", VIEWER);
    assert_eq!(r.json["activities"], json!([]));
    let r = api.get("/api/v1/activities?since=2100-01-01T00:00:00Z", VIEWER);
    assert_eq!(r.json["activities"], json!([]));
    let r = api.get("/api/v1/activities?status=succeeded&limit=1000", VIEWER);
    assert!(
        r.json["activities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "succeeded")
    );

    // A file group disabled through the API stops; enabled again it runs.
    let r = api.call("POST", "/api/v1/groups/web/disable", Some(OPERATOR), None);
    assert_eq!(r.json, json!({"name": "web", "enabled": false}));
    assert_eq!(api.get("/api/v1/groups/web", VIEWER).json["enabled"], false);
    let r = api.call("POST", "/api/v1/groups/web/enable", Some(OPERATOR), None);
    assert_eq!(r.json, json!({"name": "web", "enabled": true}));
    let r = api.call("POST", "/api/v1/disable", Some(OPERATOR), None);
    assert_eq!(r.json, json!({"enabled": false}));
    assert_eq!(api.get("/api/v1/groups", VIEWER).json["enabled"], false);
    let r = api.call("POST", "/api/v1/enable", Some(OPERATOR), None);
    assert_eq!(r.json, json!({"enabled": true}));

    // The series the dashboard charts.
    let r = api.get("/api/v1/groups/web/series", VIEWER);
    let points = r.json["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{r:?}");
    assert!(
        points.iter().any(|p| p["metrics"]["request_rate"] == 50.0),
        "{points:?}"
    );
    assert!(r.json["forecasts"].is_array());

    // Requests are counted by route template, never by group name.
    let r = api.call("GET", "/metrics", None, None);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(r#"route="/api/v1/groups/{name}/scale""#),
        "{}",
        r.body
    );
    assert!(!r.body.contains(r#"route="/api/v1/groups/web"#));
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn database_groups_are_created_changed_disabled_and_deleted_through_the_api() {
    let api = Api::start();
    let spec = |max: u32| {
        format!(
            r#"{{"name": "dbweb", "min": 1, "max": {max}, "evaluation_interval": "1s",
            "source": {{"kind": "static", "values": {{"request_rate": 30}}}},
            "target": {{"kind": "command", "command": "true"}},
            "strategies": [{{"kind": "target_tracking", "metric": "request_rate", "target_per_replica": 10}}]}}"#
        )
    };
    let r = api.post("/api/v1/groups", ADMIN, &spec(6));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["created"], true);
    assert!(r.json["spec"].get("enabled").is_none(), "{r:?}");
    let r = api.post("/api/v1/groups", ADMIN, &spec(6));
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.error().0, "conflict");

    // The daemon picks the row up by itself.
    let ok = wait_until(Duration::from_secs(20), || {
        api.get("/api/v1/groups/dbweb", VIEWER).json["desired"] == 3
    });
    assert!(ok, "{}", api.daemon.log());
    // Two groups now: the recommendations a page of one at a time.
    let r = api.get("/api/v1/recommendations?limit=1", VIEWER);
    assert_eq!(
        r.json["recommendations"].as_array().unwrap().len(),
        1,
        "{r:?}"
    );
    let cursor = r.json["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let first = r.json["recommendations"][0]["group"].clone();
    let r = api.get(
        &format!("/api/v1/recommendations?limit=1&cursor={cursor}"),
        VIEWER,
    );
    assert_eq!(
        r.json["recommendations"].as_array().unwrap().len(),
        1,
        "{r:?}"
    );
    assert_ne!(r.json["recommendations"][0]["group"], first);
    assert!(r.json["next_cursor"].is_null(), "{r:?}");
    // And the groups themselves, a page of one at a time.
    let r = api.get("/api/v1/groups?limit=1", VIEWER);
    assert_eq!(r.json["total"], 2, "{r:?}");
    assert_eq!(r.json["groups"].as_array().unwrap().len(), 1, "{r:?}");
    let first = r.json["groups"][0]["name"].clone();
    let cursor = r.json["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let r = api.get(&format!("/api/v1/groups?limit=1&cursor={cursor}"), VIEWER);
    assert_eq!(r.json["groups"].as_array().unwrap().len(), 1, "{r:?}");
    assert_ne!(r.json["groups"][0]["name"], first);
    assert!(r.json["next_cursor"].is_null(), "{r:?}");
    // Without a limit, both in one page.
    let r = api.get("/api/v1/groups", VIEWER);
    assert_eq!(r.json["groups"].as_array().unwrap().len(), 2, "{r:?}");
    assert!(r.json["next_cursor"].is_null(), "{r:?}");
    let r = api.get("/api/v1/groups/dbweb", VIEWER);
    assert_eq!(r.json["source"], "database");
    assert_eq!(r.json["config"]["max"], 6);
    assert_eq!(r.json["config"]["enabled"], true);

    // Replaced: max 2 caps it.
    let r = api.call("PUT", "/api/v1/groups/dbweb", Some(ADMIN), Some(&spec(2)));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["created"], false);
    let ok = wait_until(Duration::from_secs(20), || {
        api.get("/api/v1/groups/dbweb", VIEWER).json["desired"] == 2
    });
    assert!(ok, "{}", api.daemon.log());

    // Disabled: the row says so, and it lasts (it is the row, not the running loop).
    let r = api.call("POST", "/api/v1/groups/dbweb/disable", Some(OPERATOR), None);
    assert_eq!(r.json, json!({"name": "dbweb", "enabled": false}));
    assert_eq!(
        api.get("/api/v1/groups/dbweb", VIEWER).json["config"]["enabled"],
        false
    );

    // Deleted: gone from the engine within a poll.
    let r = api.call("DELETE", "/api/v1/groups/dbweb", Some(ADMIN), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json, json!({"deleted": "dbweb"}));
    let ok = wait_until(Duration::from_secs(20), || {
        api.get("/api/v1/groups/dbweb", VIEWER).status == 404
    });
    assert!(ok, "{}", api.daemon.log());

    // Each change is in the audit log with its before and after.
    let r = api.get("/api/v1/audit?actor=admin&status=allowed", ADMIN);
    let entries = r.json["entries"].as_array().unwrap();
    let put = entries.iter().find(|e| e["method"] == "PUT").unwrap();
    assert_eq!(put["before"]["max"], 6);
    assert_eq!(put["after"]["max"], 2);
    let conflict = entries
        .iter()
        .find(|e| e["status"] == 409)
        .expect("the refused duplicate is audited too");
    assert!(
        conflict["detail"]
            .as_str()
            .unwrap()
            .contains("exists already"),
        "{conflict}"
    );
}
