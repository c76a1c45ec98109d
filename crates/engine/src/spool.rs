//! Riding out a database outage (single daemon): the store wrapped in a
//! [`SpoolingStore`], spooling to `<config dir>/scalepilot.spool`. See docs/outages.md.
//!
//! Used for PostgreSQL stores with a single daemon. Not for SQLite (the file is local: when
//! it fails, so would a spool next to it) and not for HA daemons (several on one database):
//! they must stop acting when the database is away, see docs/ha.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use scalepilot_core::config::{Config, Store as StoreConfig};
use scalepilot_store::{SpoolingStore, Store};

/// The spool file's name, in the config file's directory.
pub const SPOOL_FILE: &str = "scalepilot.spool";

/// Where a daemon whose config file is in `config_dir` spools.
pub fn spool_path(config_dir: &Path) -> PathBuf {
    config_dir.join(SPOOL_FILE)
}

/// `store` wrapped in a [`SpoolingStore`] spooling next to the config file (an unfinished
/// spool of an earlier run is replayed as soon as the database answers).
pub async fn spooling(store: Arc<dyn Store>, config_dir: &Path) -> Result<Arc<dyn Store>> {
    let path = spool_path(config_dir);
    let store = SpoolingStore::open(store, &path)
        .await
        .with_context(|| format!("cannot open the outage spool {}", path.display()))?;
    Ok(Arc::new(store))
}

/// [`spooling`] for a single daemon on PostgreSQL, else `store` unchanged.
pub(crate) async fn wrap_for(
    config: &Config,
    store: Arc<dyn Store>,
    config_dir: &Path,
) -> Result<Arc<dyn Store>> {
    if matches!(config.store, StoreConfig::Postgres { .. }) && !config.engine.ha {
        spooling(store, config_dir).await
    } else {
        Ok(store)
    }
}
