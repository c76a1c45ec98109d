//! The store contract (`scalepilot_store::conformance`) against a fresh SQLite store per test.

use std::sync::Arc;

use scalepilot_store::{SqliteStore, Store};

scalepilot_store::conformance_tests!(async {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    (dir, Arc::new(store) as Arc<dyn Store>)
});
