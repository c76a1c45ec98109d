//! Targets: what a group scales. One trait, one file per kind.

mod command;
mod haproxy;
mod process_pool;

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use scalepilot_core::config::{Group, TargetSpec};
use scalepilot_core::observation::Limits;

use scalepilot_store::Store;

/// What a target reports before each decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Status {
    /// Replicas asked for (serving or starting; not draining).
    pub current: u32,
    /// Replicas serving.
    pub ready: u32,
    /// The target's own limits, if it has any.
    pub limits: Option<Limits>,
    /// Base URLs of the serving replicas, for sources that scrape them.
    pub endpoints: Vec<String>,
}

#[async_trait]
pub(crate) trait Target: Send + Sync {
    async fn status(&self) -> Result<Status, String>;
    /// Make the target run `desired` replicas. Declarative: asking twice is harmless.
    async fn scale_to(&self, desired: u32) -> Result<(), String>;
    /// scalepilot is exiting (or the group was removed).
    async fn shutdown(&self);
}

/// Where targets keep files (logs, endpoint lists): the store's folder.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub state_dir: std::path::PathBuf,
}

/// Build a group's target.
pub(crate) async fn build(
    group: &Group,
    base: &Path,
    paths: &Paths,
    store: Arc<dyn Store>,
    http: &reqwest::Client,
) -> Result<Arc<dyn Target>> {
    Ok(match &group.target {
        None => anyhow::bail!(
            "group {} has no `target`: the engine needs one (simulate provides its own)",
            group.name
        ),
        Some(TargetSpec::ProcessPool(spec)) => Arc::new(
            process_pool::ProcessPool::start(&group.name, spec, paths, store, http.clone(), None)
                .await?,
        ),
        Some(TargetSpec::Haproxy(spec)) => Arc::new(
            haproxy::HaproxyTarget::start(&group.name, spec, paths, base, store, http.clone())
                .await?,
        ),
        Some(TargetSpec::Command(spec)) => {
            Arc::new(command::CommandTarget::new(group, spec, store).await?)
        }
    })
}
