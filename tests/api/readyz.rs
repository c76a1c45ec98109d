//! Health and readiness: `/healthz` answers while the process runs; `/readyz` turns 503,
//! naming the store, once the daemon's PostgreSQL database is gone.

use std::time::Duration;

use sqlx::Connection as _;

use super::{Api, VIEWER, block_on, group};
use crate::engine::wait_until;

#[test]
fn readyz_fails_with_the_store_and_healthz_does_not() {
    let url = crate::fresh_pg_database();
    let api = Api::start_with(&format!("{{kind: postgres, url: \"{url}\"}}"), |d| {
        group(d, "web", 1, 10)
    });
    let r = api.call("GET", "/readyz", None, None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["ready"], true);
    assert_eq!(r.json["checks"]["store"]["ok"], true);
    assert_eq!(r.json["checks"]["loops"]["ok"], true);
    assert!(
        r.json["checks"].get("ha").is_none(),
        "no HA, no lease check: {r:?}"
    );

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
    let mut last = None;
    let failed = wait_until(Duration::from_secs(30), || {
        let r = api.call("GET", "/readyz", None, None);
        let done = r.status == 503;
        last = Some(r);
        done
    });
    let r = last.unwrap();
    assert!(failed, "{r:?}\n{}", api.daemon.log());
    assert_eq!(r.json["ready"], false);
    assert_eq!(r.json["checks"]["store"]["ok"], false, "{r:?}");
    assert!(
        r.json["checks"]["store"]["detail"]
            .as_str()
            .unwrap()
            .contains("store"),
        "{r:?}"
    );
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
