//! scalepilot's store: config snapshots, group state, activities, errors, metric samples, forecasts
//! and pool instances. One trait, one file per backend (SQLite, PostgreSQL; the same meaning,
//! checked by one conformance suite), so the engine never knows which one it talks to.

mod batch;
pub mod conformance;
mod history_page;
mod postgres;
mod postgres_api;
mod postgres_budget;
mod postgres_leases;
pub mod spool;
mod sqlite;
mod sqlite_api;
mod sqlite_budget;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use jiff::Timestamp;
use scalepilot_core::GroupState;
use serde::{Deserialize, Serialize};

pub use postgres::{PgSettings, PostgresStore, redact};
pub use spool::{SpoolOptions, SpoolingStore, is_unavailable};
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
    /// The database file was deleted or replaced while the store had it open: writes would
    /// have gone to the unlinked file. The store reopened the path; this operation was not
    /// done (the caller counts it as failed), the next ones go to the new file.
    #[error("store: {path} was deleted or replaced while open; reopened it ({what} not done)")]
    Replaced { path: String, what: &'static str },
    /// A read-only open of a store file that does not exist.
    #[error(
        "store: {path} does not exist (nothing has been recorded there yet, or the path is wrong)"
    )]
    Missing { path: String },
    /// A write made under a lease this daemon no longer holds (it expired or another daemon
    /// took the group over): nothing was written, and the caller must not act.
    #[error(
        "store: {group} is no longer leased to {holder} at epoch {epoch} (another daemon took it over, or the lease expired): nothing written"
    )]
    Fenced {
        group: String,
        holder: String,
        epoch: i64,
    },
    /// No connection to a database server. `target` is the URL with its password replaced
    /// (see [`redact`]); `message` is the driver's text with every password scrubbed.
    #[error("store: cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("store: corrupt {what} for group {group}: {message}")]
    Corrupt {
        what: &'static str,
        group: String,
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A string read from the store that names no known value of an enum.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// Enums stored as their snake_case names (the same strings earlier releases wrote as plain
/// text, so no migration is needed), serialized the same way in JSON output.
macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> std::result::Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: $what, value: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            // `pad`, so that width and alignment (`{:<11}`) work as for the strings of old.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        // Comparisons with the stored text, so callers that compare with a literal (the
        // demo's summary) read as before.
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

stored_enum! {
    /// Where a scaling activity stands.
    ActivityStatus, "activity status" {
        /// The intent is written; the target is being (or was, before a crash) called.
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Left pending by a run that stopped between intent and outcome; the target's count
        /// did not show the change.
        Interrupted = "interrupted",
        /// A decision recorded without acting (`dry_run: true`).
        DryRun = "dry_run",
    }
}

stored_enum! {
    /// The part of scalepilot an error came from.
    ErrorComponent, "error component" {
        Source = "source",
        Target = "target",
        Store = "store",
        Config = "config",
        Alert = "alert",
    }
}

stored_enum! {
    /// What an API token may do: viewer (read), operator (enable/disable/pause/scale/reload),
    /// admin (everything).
    Role, "role" { Viewer = "viewer", Operator = "operator", Admin = "admin" }
}

impl Role {
    /// viewer 0 < operator 1 < admin 2
    pub fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Operator => 1,
            Role::Admin => 2,
        }
    }

    /// `self` may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }
}

/// An API token as stored (see docs/api.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the secret (the secret itself is never stored).
    pub hash: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// One API call to write to the audit log.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    /// Token name, or "anonymous" when no valid token was given.
    pub actor: &'a str,
    pub role: Option<Role>,
    pub at: Timestamp,
    pub method: &'a str,
    /// The path as requested (with its query string when there was one).
    pub route: &'a str,
    pub status: u16,
    /// False for a denied call (401/403).
    pub allowed: bool,
    pub before: Option<&'a serde_json::Value>,
    pub after: Option<&'a serde_json::Value>,
    pub detail: Option<&'a str>,
}

/// An API call as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub actor: String,
    pub role: Option<Role>,
    pub at_ms: i64,
    pub method: String,
    pub route: String,
    pub status: u16,
    pub allowed: bool,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub detail: Option<String>,
}

/// A page of history, newest first (by id, descending).
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery<'a> {
    /// Activities and errors: only this group's. Audit: only this actor's.
    pub group: Option<&'a str>,
    /// Activities: started_ms >= since; errors: at_ms >= since; audit: at_ms >= since.
    pub since: Option<Timestamp>,
    /// ... < until (exclusive).
    pub until: Option<Timestamp>,
    /// Activities: this status's text (`succeeded`, `dry_run`…); errors: this component's text
    /// (`source`, `target`…); audit: "allowed" or "denied". An unknown value matches nothing
    /// (the API validates before calling).
    pub status: Option<&'a str>,
    /// Cursor: only rows with id < before_id.
    pub before_id: Option<i64>,
    /// At most this many rows (callers clamp; the store caps at 1000).
    pub limit: u32,
}

/// The most rows one [`HistoryQuery`] returns, whatever its `limit`.
pub const MAX_PAGE: u32 = 1000;

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
    pub status: ActivityStatus,
    pub error: Option<String>,
    pub decision: serde_json::Value,
    /// The run that wrote a pending intent (see [`NewActivity::owner`]); `None` for rows
    /// written before owners were recorded.
    pub owner: Option<String>,
}

/// An error as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRecord {
    /// Increasing with each error recorded (the cursor of [`Store::errors_page`]).
    pub id: i64,
    pub group: Option<String>,
    pub component: ErrorComponent,
    pub message: String,
    pub at_ms: i64,
}

/// A process-pool instance as recorded.
///
/// The pool writes the record twice: as an intent (`pid: None`) before it spawns the process,
/// and settled (`pid: Some`) after. A crash between the two leaves a `starting` record whose
/// marker lets the next run find the process (adopt it) or drop the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    pub host: String,
    pub port: u16,
    /// `None` while starting: the process may or may not have been spawned.
    pub pid: Option<i32>,
    pub started_ms: i64,
    /// The value of `SCALEPILOT_INSTANCE` in the process's environment; `None` for records of
    /// releases that set no marker.
    pub marker: Option<String>,
}

/// An activity about to be attempted.
#[derive(Debug, Clone, Copy)]
pub struct NewActivity<'a> {
    pub key: &'a str,
    pub group: &'a str,
    pub from: u32,
    pub to: u32,
    /// `Pending` before the target is called; `DryRun` for decisions not acted on.
    pub status: ActivityStatus,
    pub decision: &'a serde_json::Value,
    pub at: Timestamp,
    /// Who is acting on a pending intent (an opaque identity of the running process, such as
    /// "pid:start time"): a later run settles a pending activity only once its owner is gone,
    /// never one another live process is still carrying out.
    pub owner: Option<&'a str>,
    /// The lease under which the intent is written (several daemons on one database): the
    /// store checks it in the same transaction and refuses with [`StoreError::Fenced`] when
    /// the lease is no longer held at this epoch. `None` for a single daemon.
    pub fence: Option<&'a Fence>,
}

/// A daemon's lease on a group at one epoch, as checked by fenced writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    pub holder: String,
    /// Bumped each time the group's lease changes hands (or lapses and is taken again), so a
    /// write carrying an older epoch is refused even when the same holder is back.
    pub epoch: i64,
}

/// One priced group's line in the global budget's ledger (`engine.ha: true`: the ledger is
/// kept in the store, shared by every daemon).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetEntry {
    pub group: String,
    /// Money per hour at the count the group last decided on (or settled to).
    pub rate_per_hour: f64,
    /// The month `spent` belongs to (`2026-12`), empty before the group spent anything.
    pub month: String,
    /// What the group spent this month.
    pub spent: f64,
    pub updated_ms: i64,
}

/// A group's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub group: String,
    pub holder: String,
    pub epoch: i64,
    /// When the holder's session expires unless renewed, on the store's clock (PostgreSQL's
    /// `now()`; the local clock for SQLite); 0 once the lease was released.
    pub expires_ms: i64,
}

impl Lease {
    pub fn fence(&self) -> Fence {
        Fence {
            holder: self.holder.clone(),
            epoch: self.epoch,
        }
    }
}

/// What was written since a moment: for `scalepilot bench --engine` and for telling whether
/// the loops are on time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Groups whose state was saved since then (each counted once).
    pub groups: u64,
    /// Metric samples recorded since then (one per metric per evaluation).
    pub samples: u64,
    /// Activities started since then (dry runs included).
    pub activities: u64,
}

/// A scaling group kept in the database (`groups_from: database|both`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    pub name: String,
    /// The group as it would be written in a config file's `groups:` list, as JSON. Validated
    /// by the caller (the store keeps what it is given).
    pub spec: serde_json::Value,
    /// Authoritative over the spec's own `enabled` (so enabling a group needs no rewrite).
    pub enabled: bool,
    /// The store-wide change counter when this row last changed.
    pub version: i64,
    pub updated_ms: i64,
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

/// One schema migration of a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationStep {
    pub version: i64,
    pub description: String,
}

/// A database's migrations: those applied and those this release would apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationPlan {
    /// Applied, oldest first (including any of a newer release this one does not know).
    pub applied: Vec<MigrationStep>,
    /// Known to this release and not applied yet, in the order they would run.
    pub pending: Vec<MigrationStep>,
}

impl MigrationPlan {
    pub(crate) fn new(
        known: &[sqlx::migrate::Migration],
        applied: Vec<(i64, String)>,
    ) -> MigrationPlan {
        let pending = known
            .iter()
            .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
            .map(|m| MigrationStep {
                version: m.version,
                description: m.description.to_string(),
            })
            .collect();
        MigrationPlan {
            applied: applied
                .into_iter()
                .map(|(version, description)| MigrationStep {
                    version,
                    description,
                })
                .collect(),
            pending,
        }
    }
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
    /// Write an activity's intent and the group's new state in one transaction: both or
    /// neither. False (and the state left unchanged) when an activity with this key already
    /// exists. The engine calls the target only after this returned true, so a crash can
    /// never leave an action without the state (scale event, cooldown) that goes with it.
    async fn begin_activity_with_state(
        &self,
        a: &NewActivity<'_>,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
    ) -> Result<bool>;
    async fn finish_activity(
        &self,
        key: &str,
        status: ActivityStatus,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()>;
    async fn pending_activities(&self, group: &str) -> Result<Vec<Activity>>;
    /// Newest first.
    async fn activities(&self, group: Option<&str>, limit: u32) -> Result<Vec<Activity>>;
    async fn record_error(
        &self,
        group: Option<&str>,
        component: ErrorComponent,
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
    /// Delete errors and dry-run records older than `before` (real activities and the API's
    /// audit log are kept: the audit log is never pruned).
    async fn prune_history(&self, before: Timestamp) -> Result<u64>;
    /// Oldest first (by start time, then host and port).
    async fn instances(&self, group: &str) -> Result<Vec<InstanceRecord>>;
    /// Insert or replace the record of (group, host, port).
    async fn put_instance(&self, group: &str, instance: InstanceRecord) -> Result<()>;
    async fn delete_instance(&self, group: &str, host: &str, port: u16) -> Result<()>;

    /// What was written at or after `since` (see [`Progress`]).
    async fn progress_since(&self, since: Timestamp) -> Result<Progress>;

    // Groups kept in the database.

    /// All rows, by name.
    async fn group_rows(&self) -> Result<Vec<GroupRow>>;
    /// Insert or replace a row; bumps the change counter.
    async fn put_group_row(
        &self,
        name: &str,
        spec: &serde_json::Value,
        enabled: bool,
        at: Timestamp,
    ) -> Result<()>;
    /// False when there is no such row.
    async fn set_group_row_enabled(&self, name: &str, enabled: bool, at: Timestamp)
    -> Result<bool>;
    /// False when there is no such row.
    async fn delete_group_row(&self, name: &str) -> Result<bool>;
    /// The change counter: different whenever a row was put, enabled, disabled or deleted
    /// since it was last read (one indexed read, cheap enough to poll every second).
    async fn group_rows_version(&self) -> Result<i64>;

    // Several daemons on one database, with session-based leases: a daemon's heartbeat row
    // is its session, and a lease (group, holder, epoch) is live while its holder's session
    // is and it was not released, so one heartbeat write renews all of a daemon's leases.
    // Times are on the store's clock, so daemons need no synchronized clocks: a daemon
    // counts its own deadline from before its request.

    /// Start or renew `daemon`'s session until now + `ttl`; returns the live daemons
    /// (sorted), itself included. A session that had lapsed (or never was) starts anew: the
    /// daemon's old leases are released first, so it never gets its old fences back (taking
    /// them again bumps their epochs).
    async fn heartbeat(&self, daemon: &str, ttl: std::time::Duration) -> Result<Vec<String>>;
    /// `daemon` stops: its session and its leases end now.
    async fn leave(&self, daemon: &str) -> Result<()>;
    /// Take leases on `groups` for `holder`, whose session this also renews (as
    /// [`Store::heartbeat`] does, lapse included) until now + `ttl`. Groups `holder` already
    /// holds are only read (no write); a group is taken when it has no lease, when its lease
    /// was released, or when its holder's session expired, always at the next epoch. A lease
    /// whose holder's session is live is never taken. Returns the leases `holder` holds
    /// among `groups` (`expires_ms`: its session's expiry); the others are left out.
    async fn acquire_leases(
        &self,
        holder: &str,
        groups: &[String],
        ttl: std::time::Duration,
    ) -> Result<Vec<Lease>>;
    /// End `holder`'s leases on `groups` now (others may take them at once, at a new epoch).
    async fn release_leases(&self, holder: &str, groups: &[String]) -> Result<()>;
    /// Every lease, live or not, by group.
    async fn leases(&self) -> Result<Vec<Lease>>;
    /// [`Store::save_state`] under a lease: refused with [`StoreError::Fenced`] (nothing
    /// written) unless `fence` still holds, checked in the same transaction.
    async fn save_state_fenced(
        &self,
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
        fence: &Fence,
    ) -> Result<()>;

    // The global budget's ledger (`engine.ha: true`), see docs/ha.md.

    /// The ledger's version and every entry, by group. The version changes with every write.
    async fn budget_entries(&self) -> Result<(i64, Vec<BudgetEntry>)>;
    /// Compare-and-swap: in one transaction, check `fence` (refused with
    /// [`StoreError::Fenced`], nothing written, when the lease no longer holds), bump the
    /// version only if it still is `expected_version`, and insert or replace the entry.
    /// False (nothing written) when the version moved since it was read: another group
    /// wrote, and what it took may change this group's share.
    async fn put_budget_entry(
        &self,
        entry: &BudgetEntry,
        expected_version: i64,
        fence: Option<&Fence>,
    ) -> Result<bool>;
    /// Insert or replace the entry whatever the version (bumping it), under `fence`: to
    /// correct an entry to the count that actually runs (lower than what was decided).
    async fn settle_budget_entry(&self, entry: &BudgetEntry, fence: Option<&Fence>) -> Result<()>;
    /// Remove a group's entry (the group left the config); bumps the version when it existed.
    async fn delete_budget_entry(&self, group: &str) -> Result<()>;

    // API tokens and the audit log (the REST API, see docs/api.md).

    /// Store a new token. False (nothing written) when a live (not revoked) token of this
    /// name exists; a revoked one of that name is replaced.
    async fn create_token(&self, name: &str, role: Role, hash: &str, at: Timestamp)
    -> Result<bool>;
    /// Every token, revoked ones included, by name.
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// False when there is no live token of this name.
    async fn revoke_token(&self, name: &str, at: Timestamp) -> Result<bool>;
    /// A token's version counter: changes whenever a token is created or revoked (the API
    /// caches tokens and re-reads them when this moves; one cheap read).
    async fn tokens_version(&self) -> Result<i64>;
    /// Append one API call to the audit log; its id (increasing).
    async fn record_audit(&self, entry: &NewAudit<'_>) -> Result<i64>;
    /// Audit entries matching `q` (`group`: the actor; `status`: "allowed" or "denied"),
    /// newest first.
    async fn audit(&self, q: &HistoryQuery<'_>) -> Result<Vec<AuditRecord>>;
    /// Activities matching `q`, newest first.
    async fn activities_page(&self, q: &HistoryQuery<'_>) -> Result<Vec<Activity>>;
    /// Errors matching `q`, newest first.
    async fn errors_page(&self, q: &HistoryQuery<'_>) -> Result<Vec<ErrorRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_lower_roles_may() {
        use Role::*;
        assert_eq!((Viewer.rank(), Operator.rank(), Admin.rank()), (0, 1, 2));
        let allowed = |who: Role| -> Vec<Role> {
            Role::ALL
                .iter()
                .copied()
                .filter(|&needed| who.allows(needed))
                .collect()
        };
        assert_eq!(allowed(Viewer), [Viewer]);
        assert_eq!(allowed(Operator), [Viewer, Operator]);
        assert_eq!(allowed(Admin), [Viewer, Operator, Admin]);
        assert_eq!("operator".parse::<Role>().unwrap(), Operator);
        assert!("root".parse::<Role>().is_err());
        assert_eq!(serde_json::to_value(Admin).unwrap(), "admin");
    }
}
