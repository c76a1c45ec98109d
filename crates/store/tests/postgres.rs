//! PostgreSQL-specific promises: migrations, reconnects and password redaction.

use std::time::{Duration, Instant};

use scalepilot_store::{
    ErrorComponent, PgSettings, PostgresStore, Store, StoreError, conformance::t, redact,
};
use scalepilot_testkit::{fresh_database, shared_pg_url};

async fn fresh() -> String {
    fresh_database(&shared_pg_url()).await
}

/// Connecting again applies nothing twice and keeps the data; the plan shows it all applied.
#[tokio::test]
async fn migrations_are_idempotent_on_reconnect() {
    let url = fresh().await;
    let settings = PgSettings::new(url);
    let plan = PostgresStore::migration_plan(&settings).await.unwrap();
    assert!(plan.applied.is_empty(), "{plan:?}");
    assert_eq!(plan.pending.first().map(|m| m.version), Some(1));

    let store = PostgresStore::connect(settings.clone()).await.unwrap();
    store
        .record_error(Some("web"), ErrorComponent::Store, "kept", t(0))
        .await
        .unwrap();
    store.close().await;
    let store = PostgresStore::connect(settings.clone()).await.unwrap();
    assert_eq!(store.errors(None, 10).await.unwrap().len(), 1);
    let plan = PostgresStore::migration_plan(&settings).await.unwrap();
    assert!(plan.pending.is_empty(), "{plan:?}");
    assert_eq!(plan.applied.first().map(|m| m.version), Some(1));
    assert!(PostgresStore::migrate(&settings).await.unwrap().is_empty());

    // Two programs connecting to a new database at once both succeed.
    let other = PgSettings::new(fresh().await);
    let (a, b) = tokio::join!(
        PostgresStore::connect(other.clone()),
        PostgresStore::connect(other.clone())
    );
    a.unwrap();
    b.unwrap();
}

/// `migrate` applies the pending versions once and reports them.
#[tokio::test]
async fn migrate_reports_what_it_applied() {
    let settings = PgSettings::new(fresh().await);
    let applied = PostgresStore::migrate(&settings).await.unwrap();
    assert_eq!(
        applied.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(PostgresStore::migrate(&settings).await.unwrap().is_empty());
}

/// State and decision JSON come back exactly as written (TEXT columns, no reordering).
#[tokio::test]
async fn decision_json_round_trips_exactly() {
    let store = PostgresStore::connect(PgSettings::new(fresh().await))
        .await
        .unwrap();
    let d: serde_json::Value =
        serde_json::from_str(r#"{"z": 1, "a": [1.5, "x", null], "m": {"b": true, "a": 1e300}}"#)
            .unwrap();
    let a = scalepilot_store::NewActivity {
        key: "k",
        group: "web",
        from: 1,
        to: u32::MAX,
        status: scalepilot_store::ActivityStatus::Pending,
        decision: &d,
        at: t(0),
        owner: None,
        fence: None,
    };
    assert!(store.begin_activity(&a).await.unwrap());
    let back = &store.activities(None, 1).await.unwrap()[0];
    assert_eq!(back.decision, d);
    assert_eq!(back.to_replicas, i64::from(u32::MAX));
}

const SECRET: &str = "Sup3r-S3cret";

fn assert_hidden(text: &str) {
    assert!(!text.contains(SECRET), "the password leaked: {text}");
}

/// A connection error (nothing listens on the port) never shows the password, from the URL
/// or given separately, in its Display or Debug.
#[tokio::test]
async fn connect_errors_never_show_the_password() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for settings in [
        PgSettings::new(format!("postgres://sp:{SECRET}@127.0.0.1:{port}/sp")),
        PgSettings::new(format!(
            "postgres://sp@127.0.0.1:{port}/sp?password={SECRET}"
        )),
        PgSettings {
            password: Some(SECRET.into()),
            ..PgSettings::new(format!("postgres://sp@127.0.0.1:{port}/sp"))
        },
    ] {
        assert_hidden(&format!("{settings:?}"));
        let started = Instant::now();
        let err = PostgresStore::connect(settings.clone()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
        assert_hidden(&err.to_string());
        assert_hidden(&format!("{err:?}"));
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
        let err = PostgresStore::migration_plan(&settings).await.unwrap_err();
        assert_hidden(&err.to_string());
        assert_hidden(&format!("{err:?}"));
    }
    // A malformed URL: the parse error does not echo it either.
    let bad = PgSettings::new(format!("postgres://sp:{SECRET}@127.0.0.1:notaport/sp"));
    let err = PostgresStore::connect(bad).await.unwrap_err();
    assert_hidden(&err.to_string());
    assert_hidden(&format!("{err:?}"));
}

#[test]
fn redact_replaces_passwords() {
    assert_eq!(
        redact(&format!(
            "postgres://sp:{SECRET}@db:5432/sp?sslmode=require"
        )),
        "postgres://sp:***@db:5432/sp?sslmode=require"
    );
    assert_eq!(
        redact(&format!(
            "postgresql://sp@db/sp?password={SECRET}&sslmode=verify-full"
        )),
        "postgresql://sp@db/sp?password=***&sslmode=verify-full"
    );
}

/// `sslmode=require` against a server without TLS fails with an error, not a panic for want
/// of a rustls crypto provider.
#[tokio::test]
async fn tls_required_fails_cleanly() {
    let url = fresh().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let settings = PgSettings::new(format!("{url}{sep}sslmode=require"));
    let err = PostgresStore::connect(settings).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
}

/// A server that goes away: operations fail (an error, no panic, no hang), and once it is
/// back the same store works again without being reopened.
#[tokio::test]
async fn the_store_survives_a_server_restart() {
    let cluster = scalepilot_testkit::PgCluster::new();
    cluster.create_database("sp").await;
    let store = PostgresStore::connect(PgSettings::new(cluster.url("sp")))
        .await
        .unwrap();
    store
        .record_error(None, ErrorComponent::Store, "before", t(0))
        .await
        .unwrap();
    cluster.stop_immediate();
    let started = Instant::now();
    assert!(store.errors(None, 10).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(30));
    cluster.start();
    let mut back = None;
    for _ in 0..50 {
        match store.errors(None, 10).await {
            Ok(e) => {
                back = Some(e);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(back.expect("the store works again").len(), 1);
}
