//! Health and readiness: `/healthz` answers while the process runs; `/readyz` turns 503,
//! naming the store and the HA session, once the daemon's PostgreSQL database is gone.

use std::time::Duration;

use sqlx::Connection as _;

use super::{Api, VIEWER, block_on, group};
use crate::engine::wait_until;

#[test]
fn readyz_fails_with_the_store_and_healthz_does_not() {
    let url = crate::fresh_pg_database();
    // With HA, so that the lease session is checked too.
    let store = format!(
        "{{kind: postgres, url: \"{url}\"}}\nengine: {{ha: true, lease_ttl: 1s, jitter: 0}}"
    );
    let api = Api::start_with(&store, |d| group(d, "web", 1, 10));
    // Ready once the first heartbeat made the session live.
    let mut last = None;
    let ready = wait_until(Duration::from_secs(20), || {
        let r = api.call("GET", "/readyz", None, None);
        let ok = r.status == 200;
        last = Some(r);
        ok
    });
    let r = last.take().unwrap();
    assert!(ready, "{r:?}\n{}", api.daemon.log());
    assert_eq!(r.json["ready"], true);
    assert_eq!(r.json["checks"]["store"]["ok"], true);
    assert_eq!(r.json["checks"]["loops"]["ok"], true);
    assert_eq!(r.json["checks"]["ha"]["ok"], true, "{r:?}");

    // Tokens through the daemon's own PostgreSQL store.
    let u = url.clone();
    block_on(async move {
        let store = scalepilot_store::PostgresStore::connect(scalepilot_store::PgSettings::new(u))
            .await
            .unwrap();
        super::add_tokens(&store).await;
    });
    api.wait_for_tokens();
    assert_eq!(api.get("/api/v1/groups", VIEWER).status, 200);

    // The database dropped under the daemon (its connections closed by force).
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let base = scalepilot_testkit::shared_pg_url();
    block_on(async move {
        let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut c)
        .await
        .unwrap();
    });
    let failed = wait_until(Duration::from_secs(30), || {
        let r = api.call("GET", "/readyz", None, None);
        // Both: the store fails at once, the session once its lease time has run out.
        let done = r.status == 503 && r.json["checks"]["ha"]["ok"] == false;
        last = Some(r);
        done
    });
    let r = last.unwrap();
    assert!(failed, "{r:?}\n{}", api.daemon.log());
    assert_eq!(r.json["ready"], false);
    assert_eq!(r.json["checks"]["store"]["ok"], false, "{r:?}");
    let detail = |c: &str| r.json["checks"][c]["detail"].as_str().unwrap().to_string();
    assert!(detail("store").starts_with("the store"), "{r:?}");
    assert!(detail("ha").starts_with("session not live"), "{r:?}");
    let r = api.call("GET", "/healthz", None, None);
    assert_eq!(
        (r.status, r.json.clone()),
        (200, serde_json::json!({"status": "ok"}))
    );
    // Reads that need the store say so in the error shape (the tokens are cached).
    let r = api.get("/api/v1/activities", VIEWER);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.error().0, "unavailable");
}
