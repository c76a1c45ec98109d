//! A cluster of its own: started, a database created, stopped at once and started again on
//! the same port with its data, removed on drop.

use scalepilot_testkit::PgCluster;
use sqlx::{Connection, PgConnection};

async fn count(url: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cluster_restarts_on_the_same_port_with_its_data() {
    let cluster = PgCluster::new();
    cluster.create_database("app").await;
    let url = cluster.url("app");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (x INT); INSERT INTO t VALUES (1)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let port = cluster.port();
    cluster.stop_immediate();
    assert!(PgConnection::connect(&url).await.is_err());
    cluster.start();
    assert_eq!(cluster.port(), port);
    assert_eq!(count(&url).await, 1);
    let root = cluster.root().to_path_buf();
    drop(cluster);
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(PgConnection::connect(&url).await.is_err());
}
