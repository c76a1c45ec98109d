//! scalepilot's store: config snapshots, group state, activities, errors, metric samples, forecasts
//! and pool instances. One trait, one file per backend (SQLite now; PostgreSQL later with the same
//! meaning), so the engine never knows which one it talks to.

mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use scalepilot_core::GroupState;
use serde::Serialize;

pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {what}: {source}")]
    Db {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("store: cannot migrate: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store: corrupt {what} for group {group}: {message}")]
    Corrupt {
        what: &'static str,
        group: String,
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A scaling action as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    pub id: i64,
    pub key: String,
    pub group: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub from_replicas: i64,
    pub to_replicas: i64,
    pub status: String,
    pub error: Option<String>,
    pub decision: serde_json::Value,
}

/// An error as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRecord {
    pub group: Option<String>,
    pub component: String,
    pub message: String,
    pub at_ms: i64,
}

/// A process-pool instance as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    pub host: String,
    pub port: u16,
    pub pid: i32,
    pub started_ms: i64,
}

/// An activity about to be attempted.
#[derive(Debug, Clone, Copy)]
pub struct NewActivity<'a> {
    pub key: &'a str,
    pub group: &'a str,
    pub from: u32,
    pub to: u32,
    /// `pending` before the target is called; `dry_run` for decisions not acted on.
    pub status: &'a str,
    pub decision: &'a serde_json::Value,
    pub at: Timestamp,
}

/// One forecast of a predictive or cost strategy, as made at an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewForecast {
    pub metric: String,
    pub made: Timestamp,
    /// Replicas asked for at `made` serve from here (made + startup).
    pub serves_from: Timestamp,
    /// End of the horizon (made + startup + evaluation interval).
    pub due: Timestamp,
    pub estimate: f64,
    pub provision: f64,
    pub seasonal: bool,
    pub forecast_only: bool,
}

/// A stored forecast with what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRecord {
    pub group: String,
    pub metric: String,
    pub made_ms: i64,
    pub serves_from_ms: i64,
    pub due_ms: i64,
    pub estimate: f64,
    pub provision: f64,
    pub seasonal: bool,
    pub forecast_only: bool,
    /// The largest stored sample of the metric in [serves_from, due]; `None` while the horizon
    /// has not ended (a partial maximum would flatter the forecast) or when no sample exists.
    pub actual: Option<f64>,
}

/// The state the engine persists per group.
#[derive(Debug, Clone, Default)]
pub struct StoredState {
    pub state: GroupState,
    pub consecutive_errors: u32,
}

pub fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn save_group_config(
        &self,
        group: &str,
        config: &serde_json::Value,
        at: Timestamp,
    ) -> Result<()>;
    async fn load_state(&self, group: &str) -> Result<Option<StoredState>>;
    async fn save_state(
        &self,
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
    ) -> Result<()>;
    /// Write an activity's intent. False when an activity with this key already exists.
    async fn begin_activity(&self, a: &NewActivity<'_>) -> Result<bool>;
    async fn finish_activity(
        &self,
        key: &str,
        status: &str,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()>;
    async fn pending_activities(&self, group: &str) -> Result<Vec<Activity>>;
    /// Newest first.
    async fn activities(&self, group: Option<&str>, limit: u32) -> Result<Vec<Activity>>;
    async fn record_error(
        &self,
        group: Option<&str>,
        component: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<()>;
    /// Newest first.
    async fn errors(&self, group: Option<&str>, limit: u32) -> Result<Vec<ErrorRecord>>;
    async fn record_samples(
        &self,
        group: &str,
        at: Timestamp,
        metrics: &BTreeMap<String, f64>,
    ) -> Result<()>;
    /// One metric's samples of a group from `since` on, oldest first (to rebuild forecasts).
    async fn samples(
        &self,
        group: &str,
        metric: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, f64)>>;
    async fn prune_samples(&self, before: Timestamp) -> Result<u64>;
    async fn record_forecasts(&self, group: &str, forecasts: &[NewForecast]) -> Result<()>;
    /// Newest first, each with its actual once its horizon ended before `now`.
    async fn forecasts(
        &self,
        group: Option<&str>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ForecastRecord>>;
    /// Delete forecasts made before `before` (the metric samples' retention).
    async fn prune_forecasts(&self, before: Timestamp) -> Result<u64>;
    /// Delete errors and dry-run records older than `before` (real activities are kept).
    async fn prune_history(&self, before: Timestamp) -> Result<u64>;
    async fn instances(&self, group: &str) -> Result<Vec<InstanceRecord>>;
    async fn put_instance(&self, group: &str, instance: InstanceRecord) -> Result<()>;
    async fn delete_instance(&self, group: &str, host: &str, port: u16) -> Result<()>;
}
