//! Riding out a database outage (single daemon): the store wrapped in a
//! [`SpoolingStore`], spooling to `<config dir>/scalepilot.spool`. See docs/outages.md.
//!
//! For now the wrapper is used when `SCALEPILOT_SPOOL=1` is set; it is meant for remote
//! stores (PostgreSQL), where it will be switched on by the store's kind. HA daemons (several
//! on one database) must not use it: they stop acting when the database is away.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use scalepilot_store::{SpoolingStore, Store};

/// Set to `1` to spool store writes during database outages.
pub const SPOOL_ENV: &str = "SCALEPILOT_SPOOL";

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

/// [`spooling`] when [`SPOOL_ENV`] asks for it, else `store` unchanged.
pub(crate) async fn wrap_if_asked(
    store: Arc<dyn Store>,
    config_dir: &Path,
) -> Result<Arc<dyn Store>> {
    if std::env::var(SPOOL_ENV).is_ok_and(|v| v == "1") {
        spooling(store, config_dir).await
    } else {
        Ok(store)
    }
}
