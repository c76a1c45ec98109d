//! The store contract against a [`SpoolingStore`] wrapping a healthy SQLite store: with the
//! database in use the wrapper changes no meaning.

use std::sync::Arc;

use scalepilot_store::{SpoolingStore, SqliteStore, Store};

scalepilot_store::conformance_tests!(async {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    let store = SpoolingStore::open(Arc::new(inner), dir.path().join("scalepilot.spool"))
        .await
        .unwrap();
    (dir, Arc::new(store) as Arc<dyn Store>)
});
