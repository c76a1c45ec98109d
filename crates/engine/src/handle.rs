//! [`EngineHandle`]: how a running [`Engine`](crate::Engine) is driven.
//!
//! The engine runs as one control loop ([`Engine::run`](crate::Engine::run)) that owns the
//! groups; everything else talks to it through a handle: the CLI's `run` (its signal
//! forwarder, see [`crate::signals::Signals`]), the demo's live view, and later a REST API.
//! The handle is transport-free: plain async methods, commands over a tokio `mpsc` channel
//! with a `oneshot` reply each, and live events by `broadcast` subscription. It is cheap to
//! clone and may be used from any task.
//!
//! The control loop never waits for a group's action: a group evaluates (and calls its
//! target) in its own task, so `groups()` or `reload()` answer at once even while a target
//! call takes minutes. A group stopped by a reload finishes its in-flight evaluation in its
//! own task; its successor starts after it, reusing its target when unchanged.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use scalepilot_core::Decision;
use scalepilot_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::group::Event;
use crate::metrics::Metrics;
use crate::status_board::Board;

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The config has no group of that name.
    #[error("no group named `{0}`")]
    NoGroup(String),
    /// The group exists but its loop is not running (disabled, or it failed to start).
    #[error("group `{0}` is not running")]
    NotRunning(String),
    /// The request is invalid (say, replicas outside min/max).
    #[error("{0}")]
    Invalid(String),
    /// The command ran and failed (a target error, a rejected config…).
    #[error("{0}")]
    Failed(String),
    /// The engine is shutting down: only `groups()` and `shutdown()` are served.
    #[error("the engine is stopping")]
    Stopping,
    /// The engine's control loop has ended.
    #[error("the engine has stopped")]
    Stopped,
}

/// One group as the engine runs it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStatus {
    pub name: String,
    /// Enabled in the config, or by `set_enabled` until the next reload.
    pub enabled: bool,
    /// Its loop runs (false while it starts, after it failed to start or its task ended
    /// unexpectedly, or when disabled; a reload restarts a failed one).
    pub running: bool,
    /// When its last evaluation (or manual action) finished.
    pub last_evaluation: Option<Timestamp>,
    /// The target's count at the last evaluation.
    pub current: Option<u32>,
    /// The count the last evaluation decided on.
    pub desired: Option<u32>,
    /// Failed evaluations in a row.
    pub consecutive_errors: u32,
    /// The last failed evaluation's error (cleared by a successful one).
    pub last_error: Option<String>,
    /// `engine.ha: true`: the lease this daemon holds on the group (None when another
    /// daemon evaluates it, or without HA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseStatus>,
    /// The target's serving replicas at the last evaluation.
    pub ready: Option<u32>,
    /// The group's bounds as configured.
    pub min: u32,
    pub max: u32,
    pub dry_run: bool,
    /// The directions paused by `set_paused`.
    pub paused: Pause,
    /// The last evaluation's decision record, as saved with the state (strategies with
    /// recommendation and reason, the limits that applied, desired); None before the first.
    pub last_decision: Option<serde_json::Value>,
    /// As of the last evaluation.
    pub cooldowns: Cooldowns,
}

/// Directions in which a group does not act (see [`EngineHandle::set_paused`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub scale_in: bool,
    pub scale_out: bool,
}

/// When a group's cooldowns end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cooldowns {
    /// No scale-out before this (None when not cooling down).
    pub scale_out_until: Option<Timestamp>,
    /// No scale-in before this.
    pub scale_in_until: Option<Timestamp>,
}

/// Who scales by hand and why (recorded in the activity's decision JSON under
/// `"manual": {"actor", "reason", "force"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManualScale {
    pub replicas: u32,
    pub actor: String,
    pub reason: String,
    /// Allowed outside the group's min/max (never outside the target's own hard limits).
    pub force: bool,
}

/// A group's lease as held by this daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseStatus {
    pub holder: String,
    pub epoch: i64,
}

/// `engine.ha: true`: how this daemon's session and leases stand (for readiness checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HaStatus {
    /// This daemon's id among the others (host:pid:start).
    pub daemon: String,
    /// Live daemons (this one included) as of the last heartbeat answered.
    pub live_daemons: usize,
    /// Group leases this daemon holds.
    pub leases_held: usize,
    /// Whether the session is live by this daemon's own deadline: its groups may act. False
    /// before the first heartbeat and once the session ran out (the database away).
    pub acting: bool,
    /// When `acting` last changed (or the coordinator was made).
    pub since: Timestamp,
    /// What went wrong in the last round (heartbeat, or taking or releasing leases); None
    /// when it went through.
    pub last_error: Option<String>,
}

impl HaStatus {
    pub(crate) fn starting(daemon: &str) -> HaStatus {
        HaStatus {
            daemon: daemon.to_string(),
            live_daemons: 0,
            leases_held: 0,
            acting: false,
            since: Timestamp::now(),
            last_error: None,
        }
    }
}

/// What a dry run (`evaluate_now`) would do: nothing was acted on or recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub event: Event,
    pub decision: Decision,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, HandleError>>;

/// A command to the control loop.
pub(crate) enum Command {
    Groups(oneshot::Sender<Vec<GroupStatus>>),
    EvaluateNow(String, Reply<Evaluation>),
    Scale(String, ManualScale, Reply<Event>),
    SetEnabled(String, bool, Reply<()>),
    SetPaused(String, Pause, Reply<()>),
    SetAllEnabled(bool, Reply<()>),
    Reload(Reply<()>),
    Shutdown(oneshot::Sender<()>),
}

/// Drives a running engine; cheap to clone. Every method fails with
/// [`HandleError::Stopped`] once the engine has stopped.
#[derive(Clone)]
pub struct EngineHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<Event>,
    /// `engine.ha: true`: the lease coordinator's status.
    pub(crate) ha: Option<watch::Receiver<HaStatus>>,
    /// What the groups publish: answered without asking the control loop.
    pub(crate) board: Arc<Board>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config_path: PathBuf,
}

impl EngineHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, HandleError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| HandleError::Stopped)?;
        // A dropped reply: the engine (or the group asked) stopped before answering.
        answer.await.map_err(|_| HandleError::Stopped)?
    }

    /// Every group of the config, with its live status, in config order.
    pub async fn groups(&self) -> Result<Vec<GroupStatus>, HandleError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Groups(reply))
            .await
            .map_err(|_| HandleError::Stopped)?;
        answer.await.map_err(|_| HandleError::Stopped)
    }

    /// Observe and decide for `group` now, without acting or recording anything (a dry run
    /// of its next evaluation). Answered by the group's task, after any evaluation in flight.
    pub async fn evaluate_now(&self, group: &str) -> Result<Evaluation, HandleError> {
        self.ask(|r| Command::EvaluateNow(group.to_string(), r))
            .await
    }

    /// Scale `group` to `replicas` by hand (within its min and max), through the same
    /// intent → act → settle path as an evaluation; the activity's decision says `manual`.
    /// The group's next evaluation decides as usual (it may scale back). The actor is `cli`.
    pub async fn set_replicas(&self, group: &str, replicas: u32) -> Result<Event, HandleError> {
        let m = ManualScale {
            replicas,
            actor: "cli".into(),
            reason: "set_replicas".into(),
            force: false,
        };
        self.scale(m, group).await
    }

    /// Manual scaling with actor, reason and force: as [`EngineHandle::set_replicas`], and
    /// the activity's decision JSON holds `"manual": {"actor", "reason", "force"}`. Refused
    /// ([`HandleError::Invalid`]) outside the group's min/max unless `force`, and outside
    /// the target's own limits always; refused while the global switch is off.
    pub async fn scale(&self, m: ManualScale, group: &str) -> Result<Event, HandleError> {
        self.ask(|r| Command::Scale(group.to_string(), m, r)).await
    }

    /// Stop acting in a direction: decisions are still made and recorded, holding at the
    /// current count with a `paused` limit. Kept across reloads while the group exists;
    /// lost at restart (it is not stored).
    pub async fn set_paused(&self, group: &str, pause: Pause) -> Result<(), HandleError> {
        self.ask(|r| Command::SetPaused(group.to_string(), pause, r))
            .await
    }

    /// Global switch: false stops every group's evaluations (as if each were disabled; an
    /// evaluation in flight finishes) until set true again, when each group evaluates at its
    /// next tick. Survives reloads (a kill switch a reload must not undo); lost at restart.
    pub async fn set_all_enabled(&self, enabled: bool) -> Result<(), HandleError> {
        self.ask(|r| Command::SetAllEnabled(enabled, r)).await
    }

    /// The global switch's position.
    pub fn all_enabled(&self) -> bool {
        self.board.all_enabled()
    }

    /// All groups' statuses from a snapshot the groups publish after each evaluation,
    /// answered without asking the control loop, in config order.
    pub fn statuses(&self) -> Vec<Arc<GroupStatus>> {
        self.board.statuses()
    }

    /// One group's status from the same snapshot.
    pub fn status(&self, group: &str) -> Option<Arc<GroupStatus>> {
        self.board.status(group)
    }

    /// The store the engine writes to (the API reads history from it).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The config file the engine was opened with.
    pub fn config_path(&self) -> PathBuf {
        self.config_path.clone()
    }

    /// Prometheus metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.board.metrics.clone()
    }

    /// The largest loop lag (how late a group's evaluation started after it was due) seen
    /// in the last 60 s, in seconds.
    pub fn loop_lag_seconds(&self) -> f64 {
        self.board.loop_lag_seconds()
    }

    /// Start or stop evaluating `group` until the next reload (which applies the config's
    /// `enabled` again). A stopped group finishes its evaluation in flight first.
    pub async fn set_enabled(&self, group: &str, enabled: bool) -> Result<(), HandleError> {
        self.ask(|r| Command::SetEnabled(group.to_string(), enabled, r))
            .await
    }

    /// Re-read the config file (in a task of its own: the engine keeps answering meanwhile);
    /// only groups that changed, or whose loop failed, restart. An invalid config is
    /// rejected ([`HandleError::Failed`], recorded and alerted) and the old one keeps running.
    pub async fn reload(&self) -> Result<(), HandleError> {
        self.ask(Command::Reload).await
    }

    /// Stop: in-flight evaluations finish, targets stop, queued alerts get a few seconds.
    /// Returns once the engine has stopped (at once when it already had).
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = answer.await;
        }
    }

    /// `engine.ha: true`: this daemon's session and leases, as of the coordinator's last
    /// round (None without HA). Answered at once, without asking the engine's loop, so a
    /// readiness probe never waits behind a busy engine.
    pub fn ha_status(&self) -> Option<HaStatus> {
        self.ha.as_ref().map(|s| s.borrow().clone())
    }

    /// Live events: one per evaluation or manual action (not for `evaluate_now`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
