//! Policy config: YAML → raw serde structs → validated, compiled groups.
//!
//! [`parse`] reports every problem it can find at once, each with file:line:column, the field
//! path (`groups[1].behavior.scale_down.stabilization`) and what was expected. Unknown fields
//! are errors. The core does no IO: callers pass the file's text and name.

mod listen;
mod problems;
pub mod ranges;
pub mod raw;
mod rows;
pub mod source_spec;
mod structure;
pub mod target_spec;
pub mod text_metric;
pub mod url;
mod validate;
pub mod yaml;

use std::sync::Arc;

use jiff::SignedDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use listen::parse_listen;
pub use problems::{ConfigError, Problem};
pub use raw::{GroupsFrom, RawSource, RawTarget};
pub use rows::{DATABASE, ImportedGroup, group_from_row, groups_from_text, row_path};
pub use source_spec::{SourceSpec, TextMetric};
pub use target_spec::{CommandSpec, HaproxyMode, HaproxySpec, HostSpec, PoolSpec, TargetSpec};

use crate::behavior::Behavior;
use crate::strategy::Strategy;

/// Metrics a group sees when it has no `source`: what `simulate` provides.
pub const SIMULATED_METRICS: [&str; 2] = ["request_rate", "utilization"];

/// A validated config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the groups come from; with `database` or `both`, `groups` holds the file's only.
    pub groups_from: GroupsFrom,
    pub store: Store,
    pub alerts: Option<Alerts>,
    pub engine: Engine,
    /// Budget over all groups with a `cost` section.
    pub budget: Option<GlobalBudget>,
    /// The REST API; `None`: not served.
    pub api: Option<Api>,
    pub groups: Vec<Group>,
}

/// The REST API the daemon serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// Where to listen (`localhost` already turned into 127.0.0.1; port 0: any free port).
    pub listen: std::net::SocketAddr,
    /// HTTPS instead of plain HTTP.
    pub tls: Option<ApiTls>,
}

/// Where the API's certificate and key are: paths as written, relative to the config file's
/// folder (the caller resolves them; the core does no IO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTls {
    pub cert: String,
    pub key: String,
}

/// Where the API listens when `api:` gives no `listen`.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8080";

/// Hard caps on the spend of all groups together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlobalBudget {
    pub per_hour: Option<f64>,
    pub per_month: Option<f64>,
}

/// Where the engine keeps its data. `Debug` shows a PostgreSQL URL without its password.
#[derive(Clone, PartialEq)]
pub enum Store {
    /// A SQLite file; a relative path is relative to the config file's folder.
    Sqlite {
        path: String,
        sample_retention: SignedDuration,
    },
    /// A PostgreSQL database.
    Postgres {
        /// As written (it may hold a password: show it through [`url::redact`] only).
        url: String,
        /// Connections in the pool, at most.
        pool: u32,
        /// File with the password, relative to the config file's folder.
        password_file: Option<String>,
        sample_retention: SignedDuration,
    },
}

impl Store {
    /// How long metric samples (and forecasts, errors, dry-run records) are kept.
    pub fn sample_retention(&self) -> SignedDuration {
        match self {
            Store::Sqlite {
                sample_retention, ..
            }
            | Store::Postgres {
                sample_retention, ..
            } => *sample_retention,
        }
    }

    fn sample_retention_mut(&mut self) -> &mut SignedDuration {
        match self {
            Store::Sqlite {
                sample_retention, ..
            }
            | Store::Postgres {
                sample_retention, ..
            } => sample_retention,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Sqlite {
                path,
                sample_retention,
            } => f
                .debug_struct("Sqlite")
                .field("path", path)
                .field("sample_retention", sample_retention)
                .finish(),
            Store::Postgres {
                url,
                pool,
                password_file,
                sample_retention,
            } => f
                .debug_struct("Postgres")
                .field("url", &crate::config::url::redact(url))
                .field("pool", pool)
                .field("password_file", password_file)
                .field("sample_retention", sample_retention)
                .finish(),
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::Sqlite {
            path: "scalepilot.db".into(),
            sample_retention: SignedDuration::from_hours(7 * 24),
        }
    }
}

/// Webhook alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    pub webhook: String,
    pub timeout: SignedDuration,
    pub attempts: u32,
    pub consecutive_errors: u32,
    /// Events to send.
    pub events: Vec<AlertEvent>,
}

/// An alert event scalepilot sends; written in snake case (`scale_failed`) in configs and in
/// the webhook body's `event`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// A group scaled.
    Scaled,
    /// A scaling action failed.
    ScaleFailed,
    /// A group failed `consecutive_errors` evaluations in a row.
    Errors,
    /// A new config was refused (the running one stays).
    ConfigRejected,
    /// A budget started capping a group.
    Budget,
}

impl AlertEvent {
    /// Every event, in the order of [`ALERT_EVENTS`].
    pub const ALL: [AlertEvent; 5] = [
        AlertEvent::Scaled,
        AlertEvent::ScaleFailed,
        AlertEvent::Errors,
        AlertEvent::ConfigRejected,
        AlertEvent::Budget,
    ];

    /// The config spelling: `scale_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Scaled => "scaled",
            AlertEvent::ScaleFailed => "scale_failed",
            AlertEvent::Errors => "errors",
            AlertEvent::ConfigRejected => "config_rejected",
            AlertEvent::Budget => "budget",
        }
    }

    /// The event a config spells so, if any.
    pub fn parse(name: &str) -> Option<AlertEvent> {
        AlertEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl std::fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Alert events scalepilot sends, as spelled in configs.
pub const ALERT_EVENTS: [&str; 5] = [
    "scaled",
    "scale_failed",
    "errors",
    "config_rejected",
    "budget",
];

/// Engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    pub max_concurrency: u32,
    /// Random extra delay per evaluation, as a fraction of the interval.
    pub jitter: f64,
    /// Several daemons share the database, each group leased to one of them.
    pub ha: bool,
    /// How long a lease lasts without renewal (`ha: true`).
    pub lease_ttl: jiff::SignedDuration,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            max_concurrency: 8,
            jitter: 0.1,
            ha: false,
            lease_ttl: jiff::SignedDuration::from_secs(10),
        }
    }
}

impl Config {
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| &*g.name == name)
    }

    pub fn group_names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| &*g.name).collect()
    }
}

/// Which instance a process pool (alone or behind HAProxy) removes on scale-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleIn {
    /// The newest instance first (`lifo`, the default).
    Lifo,
    /// The instance with the lowest load (`least_loaded`): the value of `metric` (summed over
    /// its label sets) in the Prometheus text each instance serves at `path`.
    LeastLoaded { metric: String, path: String },
}

/// The default `load_metric`: what `scalepilot backend` exposes (requests in flight).
pub const DEFAULT_LOAD_METRIC: &str = "backend_in_flight";

/// The target kinds the engine implements; the others parse but fail validation.
pub const IMPLEMENTED_TARGET_KINDS: [&str; 3] = ["process_pool", "haproxy", "command"];

/// A validated scaling group: everything `decide` needs, compiled.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: Arc<str>,
    pub min: u32,
    pub max: u32,
    pub evaluation_interval: SignedDuration,
    pub strategies: Vec<Strategy>,
    pub behavior: Behavior,
    pub dry_run: bool,
    pub enabled: bool,
    /// Where metrics come from, compiled (durations parsed, defaults applied).
    pub source: Option<SourceSpec>,
    /// What is scaled, compiled (durations parsed, defaults applied, scale-in order typed).
    pub target: Option<TargetSpec>,
    /// Prices and budgets.
    pub cost: Option<crate::cost::Cost>,
}

/// Parse and validate a config file's text. `file` is only used in messages.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let (value, locations) = yaml::parse(text).map_err(|e| ConfigError {
        problems: vec![Problem {
            file: file.to_string(),
            location: e.location,
            path: e.path,
            message: e.message,
        }],
    })?;
    let (raw, mut found) = structure::check(value);
    let (config, semantic) = validate::config(&raw);
    found.extend(semantic);
    if found.is_empty() {
        return Ok(config);
    }
    let mut problems: Vec<Problem> = found
        .into_iter()
        .map(|(path, message)| Problem {
            file: file.to_string(),
            location: locations.find(&path),
            path,
            message,
        })
        .collect();
    // In file order, as an editor would walk them.
    problems.sort_by_key(|p| p.location.map(|l| (l.line, l.column)));
    Err(ConfigError { problems })
}

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod ha_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod validate_tests;
