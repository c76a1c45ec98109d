//! The store contract (`scalepilot_store::conformance`) against PostgreSQL: a fresh database
//! per test on the server of `SCALEPILOT_PG_URL` (`./scripts/test.sh` starts one).

use std::sync::Arc;

use scalepilot_store::{PgSettings, PostgresStore, Store};

scalepilot_store::conformance_tests!(async {
    let url = scalepilot_testkit::fresh_database(&scalepilot_testkit::shared_pg_url()).await;
    let store = PostgresStore::connect(PgSettings::new(url.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (url, Arc::new(store) as Arc<dyn Store>)
});
