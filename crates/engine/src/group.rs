//! One group's evaluation: observe → decide → act, with the activity written as intent
//! before the target is called and completed after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use scalepilot_core::Observation;
use scalepilot_core::config::{AlertEvent, Group};
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use super::alerts::Alerter;
use crate::sources::{Context, Source};
use crate::targets::Target;
use scalepilot_core::decision::Rule;
use scalepilot_store::{ActivityStatus, ErrorComponent, NewActivity, Store, StoredState};

/// Longest a target may take to report its status or to accept a change: a backstop only,
/// targets have their own timeouts (a command target's `timeout`, say).
pub(crate) const TARGET_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Longest settling what a previous run left may take (a target whose status hangs); the
/// caller retries at the next evaluation rather than guess the outcome.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a source may take for one observation.
pub(crate) const SOURCE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one evaluation did, for live views (the demo) and logs.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub group: String,
    pub at: Timestamp,
    pub current: u32,
    pub ready: u32,
    pub desired: u32,
    /// The target was changed.
    pub scaled: bool,
    pub summary: String,
    pub metrics: BTreeMap<String, f64>,
    pub error: Option<String>,
}

pub(crate) struct GroupRuntime {
    pub group: Group,
    pub source: Box<dyn Source>,
    pub target: Arc<dyn Target>,
    pub store: Arc<dyn Store>,
    pub alerts: Alerter,
    pub events: broadcast::Sender<Event>,
    pub state: StoredState,
    /// Alert after this many failed evaluations in a row.
    pub error_alert_after: u32,
    /// Test hook: pause after the target was called and before the activity is completed, so
    /// a test can kill scalepilot inside that window (`SCALEPILOT_FAULT_PAUSE_BEFORE_COMPLETION_MS`).
    pub fault_pause: Option<Duration>,
    /// Source errors already recorded, so a metric failing every evaluation is recorded once.
    pub last_source_errors: BTreeMap<String, String>,
    /// The last dry-run (from, to) recorded, so a standing recommendation is recorded once.
    pub last_dry_run: Option<(u32, u32)>,
    /// The summary (decision and reasons) of the decision record last saved with the state:
    /// the record is built and saved again only when it differs, so a quiet group does not
    /// rewrite the same JSON at every evaluation (its state and time are still saved).
    pub last_recorded: Option<String>,
    /// The global budget's ledger, shared by all groups.
    pub budget: super::budget::Ledger,
    /// Whether a budget capped the last decision: the alert fires when one starts to.
    pub budget_bound: bool,
    /// False while the stored state could not be read (the store failed at start): the
    /// group then evaluates nothing and retries the read at each tick, instead of stopping
    /// for good or deciding with an empty state (lost cooldowns and scale events).
    pub state_loaded: bool,
    /// Activities a previous run left pending still need settling (the store failed at start).
    pub reconcile_pending: bool,
    /// The leases this daemon holds (`engine.ha: true`): the group acts only under its own.
    pub ha: Option<crate::ha::Leases>,
    /// Where the group publishes its status and reads its pause (shared by all groups).
    pub board: Arc<crate::status_board::Board>,
    /// The decision record of the last evaluation, when it built one, until the group's task
    /// publishes it (moved, not copied: a group's record is held once, by the board).
    pub fresh_record: Option<serde_json::Value>,
}

/// This process's identity as the owner of pending activities: PID and the kernel's start
/// time of the process (PIDs are reused; the pair is not, within a boot).
pub(crate) fn owner_id() -> String {
    let pid = std::process::id() as i32;
    format!("{pid}:{}", process_start(pid).unwrap_or(0))
}

/// Whether the process that wrote `owner` still runs (same PID, same start time).
fn owner_alive(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once(':') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
        return false;
    };
    process_start(pid) == Some(start)
}

/// Start time of a live (non-zombie) process, in clock ticks since boot (/proc/PID/stat
/// field 22).
pub(crate) fn process_start(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces): state is field 3.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if matches!(rest.first(), Some(&"Z") | Some(&"X") | None) {
        return None;
    }
    rest.get(19)?.parse().ok()
}

/// Settle activities a previous run left between intent and outcome: the target's count tells
/// whether the change happened. An activity whose owner is another live process (a concurrent
/// `once`, say) is in flight, not left over: it is not touched.
pub(crate) async fn reconcile(
    store: &dyn Store,
    group: &str,
    target: &dyn Target,
    metrics: &crate::metrics::Metrics,
) -> anyhow::Result<()> {
    tokio::time::timeout(
        RECONCILE_TIMEOUT,
        settle_pending(store, group, target, metrics),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!("settling activities left pending timed out after {RECONCILE_TIMEOUT:?}")
    })??;
    Ok(())
}

async fn settle_pending(
    store: &dyn Store,
    group: &str,
    target: &dyn Target,
    metrics: &crate::metrics::Metrics,
) -> Result<(), scalepilot_store::StoreError> {
    let me = owner_id();
    let pending: Vec<_> = store
        .pending_activities(group)
        .await?
        .into_iter()
        .filter(|a| match a.owner.as_deref() {
            // Ours: no evaluation of this group is in flight in this process while it is
            // (re)started, so it is left over from an evaluation that could not finish it.
            Some(o) if o == me => true,
            Some(o) if owner_alive(o) => {
                tracing::info!(group, key = %a.key, owner = o, "activity in flight in another live process: left to it");
                false
            }
            _ => true,
        })
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let current = target.status().await.ok().map(|s| s.current);
    for a in pending {
        let (status, note) = match current {
            Some(c) if i64::from(c) == a.to_replicas => (
                ActivityStatus::Succeeded,
                format!("confirmed after a restart: the target runs {c}"),
            ),
            Some(c) => (
                ActivityStatus::Interrupted,
                format!("scalepilot stopped between intent and outcome; the target runs {c}"),
            ),
            None => (
                ActivityStatus::Interrupted,
                "scalepilot stopped between intent and outcome; the target's count is unknown"
                    .into(),
            ),
        };
        tracing::warn!(group, key = %a.key, "activity left pending by a previous run: {status} ({note})");
        store
            .finish_activity(&a.key, status, Some(&note), Timestamp::now())
            .await?;
        if status == ActivityStatus::Interrupted {
            let (from, to) = (clamp(a.from_replicas), clamp(a.to_replicas));
            metrics.action(group, from, to, "interrupted");
        }
    }
    Ok(())
}

/// A stored count as u32 (counts are never negative nor that large).
fn clamp(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

impl GroupRuntime {
    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.board.metrics
    }

    /// Run a store operation, its duration observed as `operation`.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        f: impl std::future::Future<Output = T>,
    ) -> T {
        let started = std::time::Instant::now();
        let r = f.await;
        self.metrics()
            .store_op(operation, started.elapsed().as_secs_f64());
        r
    }

    /// Evaluate once. Errors are recorded (store, alerts, events) before being returned.
    pub(crate) async fn evaluate(&mut self) -> Result<Event, String> {
        let now = Timestamp::now();
        let name = self.group.name.to_string();
        // Several daemons: only under this daemon's lease (settling included).
        let fence = self.lease()?;
        if let Err(msg) = self.prepare().await {
            return Err(self.fail(ErrorComponent::Store, &msg, now).await);
        }
        let status = match tokio::time::timeout(TARGET_TIMEOUT, self.target.status()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.metrics().target_error(&name, &e);
                return Err(self
                    .fail(
                        ErrorComponent::Target,
                        &format!("cannot read the target's status: {e}"),
                        now,
                    )
                    .await);
            }
            Err(_) => {
                self.metrics().target_error(&name, "timed out");
                return Err(self
                    .fail(ErrorComponent::Target, "the target's status timed out", now)
                    .await);
            }
        };
        let ctx = Context {
            endpoints: status.endpoints.clone(),
            ready: status.ready,
        };
        let observed = match tokio::time::timeout(SOURCE_TIMEOUT, self.source.observe(&ctx)).await {
            Ok(o) => o,
            Err(_) => {
                let mut o = crate::sources::Observed::default();
                o.errors.insert(
                    "*".into(),
                    format!("the source timed out after {SOURCE_TIMEOUT:?}"),
                );
                o
            }
        };
        for (metric, err) in &observed.errors {
            self.metrics().source_error(&name, err);
            if self.last_source_errors.get(metric) != Some(err) {
                tracing::warn!(group = %name, metric, "metric failed: {err}");
                let msg = format!("metric {metric}: {err}");
                self.record_error(ErrorComponent::Source, &msg, now).await;
            }
        }
        self.last_source_errors = observed.errors.clone();
        // Every store write that fails makes the evaluation a failed one (counted, alerted
        // after N in a row): a store that silently stopped recording is an outage too.
        let mut store_errors: Vec<String> = Vec::new();
        let samples = self.store.record_samples(&name, now, &observed.metrics);
        if let Err(e) = self.timed("record_samples", samples).await {
            tracing::warn!(group = %name, "{e}");
            store_errors.push(format!("cannot record samples: {e}"));
        }
        let mut obs = Observation {
            metrics: observed.metrics,
            metric_errors: observed.errors,
            current_replicas: status.current,
            ready_replicas: Some(status.ready),
            target_limits: status.limits,
            shared_budget: None,
        };
        let before = self.state.state.clone();
        // Through the budget ledger: it fills in what the global budget leaves this group.
        let decided = self
            .budget
            .decide(
                &self.group,
                &mut obs,
                &mut self.state.state,
                now,
                fence.as_ref(),
            )
            .await;
        let mut decision = decided.decision;
        // Paused in the decided direction: hold, the decision says why.
        let paused = self.hold_if_paused(&mut decision, &before, now);
        if paused.is_some()
            && let Err(e) = self
                .settle_budget(status.current, now, fence.as_ref())
                .await
        {
            store_errors.push(e);
        }
        let capped = decision.limits.iter().find(|l| l.rule == Rule::Budget);
        if let Some(cap) = capped
            && !self.budget_bound
        {
            let msg = format!(
                "{name}: budget caps the count at {} (wanted {}): {}",
                cap.to, cap.from, cap.detail
            );
            tracing::warn!(group = %name, "{msg}");
            self.alerts.send(
                AlertEvent::Budget,
                Some(&name),
                &msg,
                json!({"wanted": cap.from, "capped_at": cap.to, "detail": cap.detail}),
            );
        }
        self.budget_bound = capped.is_some();
        if let Some(e) = decided.error {
            // The ledger failed closed (no scale-up): counted and recorded like a store error.
            self.budget_failed(&e);
            store_errors.push(e.to_string());
        }
        // Recorded as made, before acting: forecast_only strategies' forecasts included.
        let forecasts = super::forecast::made(&self.group, &decision, now);
        for f in &forecasts {
            self.metrics().forecast(&name, &f.metric, f.estimate);
        }
        if !forecasts.is_empty()
            && let Err(e) = self.store.record_forecasts(&name, &forecasts).await
        {
            tracing::warn!(group = %name, "{e}");
            store_errors.push(format!("cannot record forecasts: {e}"));
        }
        let mut summary = decision.summary();
        if let Some(p) = &paused {
            summary.push_str(&p.summary());
        }
        let desired = decision.desired_replicas;
        // The record of why: for an activity (every change of the count is one), and saved
        // with the state when the decision or its reasons changed since the last one saved.
        // Building it is most of a quiet evaluation's CPU, so otherwise it is not built.
        let changed = self.last_recorded.as_deref() != Some(summary.as_str());
        let record = if changed || desired != status.current {
            let mut r = json!({"decision": &decision, "summary": &summary, "observation": &obs});
            if let Some(p) = &paused {
                p.record(&mut r["decision"]);
            }
            r
        } else {
            serde_json::Value::Null
        };
        let mut scaled = false;
        let mut error = None;
        if desired != status.current {
            let bucket_ms = self.group.evaluation_interval.as_millis().max(1) as i64;
            let bucket = now.as_millisecond() / bucket_ms;
            if decision.scale {
                let key = format!("{name}:{desired}:{bucket}");
                let owner = owner_id();
                let activity = NewActivity {
                    key: &key,
                    group: &name,
                    from: status.current,
                    to: desired,
                    status: ActivityStatus::Pending,
                    decision: &record,
                    at: now,
                    owner: Some(&owner),
                    fence: fence.as_ref(),
                };
                // The state (scale event, cooldowns) is written with the intent in one
                // transaction: a crash before the outcome cannot let the group scale again at
                // once, and a failed write means the target is not called at all.
                let intent =
                    self.store
                        .begin_activity_with_state(&activity, &self.state, Some(&record));
                match self.timed("begin_activity", intent).await {
                    Ok(true) => {
                        tracing::info!(group = %name, "scaling {summary}");
                        // The lease ran out (locally) since the intent: never act after it.
                        let result = if self.lease_holds(fence.as_ref()) {
                            self.scale_target(desired).await
                        } else {
                            Err("the lease ran out before acting: not scaling".to_string())
                        };
                        if let Some(p) = self.fault_pause {
                            tracing::warn!(group = %name, "test hook: pausing {p:?} before completing activity {key}");
                            tokio::time::sleep(p).await;
                        }
                        let done = Timestamp::now();
                        match result {
                            Ok(()) => {
                                scaled = true;
                                self.metrics()
                                    .action(&name, status.current, desired, "succeeded");
                                self.finish(&key, ActivityStatus::Succeeded, None, done)
                                    .await;
                                self.alerts.send(AlertEvent::Scaled, Some(&name), &summary, json!({"key": key, "from": status.current, "to": desired, "decision": &record}));
                            }
                            Err(e) => {
                                self.metrics().target_error(&name, &e);
                                self.metrics()
                                    .action(&name, status.current, desired, "failed");
                                // Nothing changed: forget the scale event and cooldown decide() recorded.
                                self.state.state = before;
                                let _ = self
                                    .settle_budget(status.current, now, fence.as_ref())
                                    .await;
                                self.finish(&key, ActivityStatus::Failed, Some(&e), done)
                                    .await;
                                let msg =
                                    format!("scaling {} → {desired} failed: {e}", status.current);
                                self.alerts.send(AlertEvent::ScaleFailed, Some(&name), &msg, json!({"key": key, "from": status.current, "to": desired, "error": e, "decision": &record}));
                                return Err(self.fail(ErrorComponent::Target, &msg, done).await);
                            }
                        }
                    }
                    Ok(false) => {
                        // Attempted already in this time bucket (e.g. before a restart): never twice.
                        tracing::info!(group = %name, "activity {key} exists: not repeated");
                        self.state.state = before;
                        let _ = self
                            .settle_budget(status.current, now, fence.as_ref())
                            .await;
                    }
                    Err(e) => {
                        self.fenced(&e);
                        self.state.state = before;
                        let _ = self
                            .settle_budget(status.current, now, fence.as_ref())
                            .await;
                        return Err(self
                            .fail(
                                ErrorComponent::Store,
                                &format!("cannot write the activity intent, not scaling: {e}"),
                                now,
                            )
                            .await);
                    }
                }
            } else {
                // Nothing is acted on: what runs is what costs.
                if let Err(e) = self
                    .settle_budget(status.current, now, fence.as_ref())
                    .await
                {
                    store_errors.push(e);
                }
                if self.last_dry_run != Some((status.current, desired)) {
                    self.last_dry_run = Some((status.current, desired));
                    let key = format!("{name}:dry_run:{desired}:{bucket}");
                    let activity = NewActivity {
                        key: &key,
                        group: &name,
                        from: status.current,
                        to: desired,
                        status: ActivityStatus::DryRun,
                        decision: &record,
                        at: now,
                        owner: None,
                        fence: fence.as_ref(),
                    };
                    let recorded = self.store.begin_activity(&activity);
                    if let Err(e) = self.timed("begin_activity", recorded).await {
                        tracing::warn!(group = %name, "{e}");
                        store_errors.push(format!("cannot record the dry run: {e}"));
                        // Recorded at the next evaluation instead.
                        self.last_dry_run = None;
                    } else {
                        self.metrics()
                            .action(&name, status.current, desired, "dry_run");
                    }
                    tracing::info!(group = %name, "dry run: would scale {summary}");
                }
            }
        }
        // An evaluation that could not observe a metric held: it counts as failed.
        let mut failed = None;
        if !obs.metric_errors.is_empty() {
            let what: Vec<String> = obs
                .metric_errors
                .iter()
                .map(|(m, e)| format!("{m}: {e}"))
                .collect();
            failed = Some((
                ErrorComponent::Source,
                format!("metrics failed: {}", what.join("; ")),
            ));
        }
        // Counted before the state is saved, so the saved count includes this evaluation.
        let counted = failed.is_some() || !store_errors.is_empty();
        let streak = self.state.consecutive_errors;
        if counted {
            self.state.consecutive_errors = self.state.consecutive_errors.saturating_add(1);
        } else {
            self.state.consecutive_errors = 0;
        }
        let saved = self.put_state(&self.state, changed.then_some(&record), Timestamp::now());
        let saved = self.timed("save_state", saved).await;
        if saved.is_ok() && changed {
            self.last_recorded = Some(summary.clone());
        }
        if !record.is_null() {
            self.fresh_record = Some(record);
        }
        if let Err(e) = saved {
            tracing::warn!(group = %name, "{e}");
            if !counted {
                // The streak goes on: this evaluation failed after all.
                self.state.consecutive_errors = streak.saturating_add(1);
            }
            store_errors.push(format!("cannot save the state: {e}"));
        }
        if !store_errors.is_empty() {
            let msg = store_errors.join("; ");
            // Recorded when the store takes it (a failed write may be a passing one).
            self.record_error(ErrorComponent::Store, &msg, now).await;
            failed = Some(match failed {
                Some((c, m)) => (c, format!("{m}; store: {msg}")),
                None => (ErrorComponent::Store, msg),
            });
        }
        if let Some((component, msg)) = failed {
            self.alert_if_nth(component, &msg);
            error = Some(msg);
        }
        let m = self.metrics();
        m.evaluated(&name, status.current, status.ready, desired, &obs.metrics);
        if let Some(cost) = &self.group.cost {
            let running = if scaled { desired } else { status.current };
            m.cost(&name, f64::from(running) * cost.pricing.price_at(now));
        }
        let event = Event {
            group: name,
            at: now,
            current: status.current,
            ready: status.ready,
            desired,
            scaled,
            summary,
            metrics: obs.metrics,
            error,
        };
        // Cloned only for listeners (the demo, tests): a daemon usually has none.
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event.clone());
        }
        Ok(event)
    }

    /// Read the stored state and settle leftover activities when the start could not (the
    /// store failed then). Errors are the message of a failed evaluation.
    async fn prepare(&mut self) -> Result<(), String> {
        if !self.state_loaded {
            let stored = self.store.load_state(&self.group.name);
            let stored = self
                .timed("load_state", stored)
                .await
                .map_err(|e| format!("cannot load the group's state, not evaluating: {e}"))?
                .unwrap_or_default();
            // Failures counted while the state could not be read continue its streak.
            let failed_since = self.state.consecutive_errors;
            self.state = stored;
            self.state.consecutive_errors =
                self.state.consecutive_errors.saturating_add(failed_since);
            self.state_loaded = true;
            tracing::info!(group = %self.group.name, "state loaded from the store");
        }
        if self.reconcile_pending {
            let store = self.store.as_ref();
            reconcile(
                store,
                &self.group.name,
                self.target.as_ref(),
                self.metrics(),
            )
            .await
            .map_err(|e| format!("cannot settle activities left pending, not evaluating: {e}"))?;
            self.reconcile_pending = false;
        }
        Ok(())
    }

    /// Ask the target for `replicas`, within the backstop timeout.
    pub(crate) async fn scale_target(&self, replicas: u32) -> Result<(), String> {
        match tokio::time::timeout(TARGET_TIMEOUT, self.target.scale_to(replicas)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "the target did not answer within {TARGET_TIMEOUT:?}"
            )),
        }
    }

    pub(crate) async fn finish(
        &self,
        key: &str,
        status: ActivityStatus,
        error: Option<&str>,
        at: Timestamp,
    ) {
        let finished = self.store.finish_activity(key, status, error, at);
        if let Err(e) = self.timed("finish_activity", finished).await {
            tracing::error!(group = %self.group.name, "cannot complete activity {key}: {e}");
        }
    }

    pub(crate) async fn record_error(
        &self,
        component: ErrorComponent,
        message: &str,
        at: Timestamp,
    ) {
        if let Err(e) = self
            .store
            .record_error(Some(&self.group.name), component, message, at)
            .await
        {
            tracing::warn!(group = %self.group.name, "cannot record an error ({message}): {e}");
        }
    }

    /// Count a failed evaluation; alert when it is the N-th in a row.
    fn count_failure(&mut self, component: ErrorComponent, message: &str) {
        self.state.consecutive_errors = self.state.consecutive_errors.saturating_add(1);
        self.alert_if_nth(component, message);
    }

    /// Alert when the failed evaluation just counted is the N-th in a row.
    fn alert_if_nth(&self, component: ErrorComponent, message: &str) {
        if self.state.consecutive_errors == self.error_alert_after {
            let msg = format!(
                "{} evaluations in a row failed; last: {component}: {message}",
                self.state.consecutive_errors
            );
            self.alerts.send(
                AlertEvent::Errors,
                Some(&self.group.name),
                &msg,
                json!({"component": component, "consecutive_errors": self.state.consecutive_errors}),
            );
        }
    }

    /// Record a failed evaluation; alert when it is the N-th in a row. Returns the message.
    async fn fail(&mut self, component: ErrorComponent, message: &str, at: Timestamp) -> String {
        let name = self.group.name.to_string();
        tracing::warn!(group = %name, "{component}: {message}");
        self.record_error(component, message, at).await;
        self.count_failure(component, message);
        // Never over the stored state with the empty one used while it could not be read.
        if self.state_loaded
            && let Err(e) = self.put_state(&self.state, None, at).await
        {
            tracing::warn!(group = %name, "{e}");
        }
        let _ = self.events.send(Event {
            group: name,
            at,
            current: 0,
            ready: 0,
            desired: 0,
            scaled: false,
            summary: String::new(),
            metrics: BTreeMap::new(),
            error: Some(format!("{component}: {message}")),
        });
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    //! The evaluation against a store that fails on demand and a target that counts calls.

    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use scalepilot_store::{
        Activity, AuditRecord, BudgetEntry, ErrorRecord, Fence, ForecastRecord, GroupRow,
        HistoryQuery, InstanceRecord, Lease, NewAudit, NewForecast, Result as StoreResult, Role,
        SqliteStore, StoreError, TokenRecord,
    };

    use super::*;
    use crate::targets::Status;

    /// A SQLite store whose named operations fail while listed in `failing`.
    struct Flaky {
        inner: SqliteStore,
        failing: Mutex<HashSet<&'static str>>,
        /// For each `save_state`: whether it carried a decision record.
        decisions: Mutex<Vec<bool>>,
    }

    impl Flaky {
        fn check(&self, op: &'static str) -> StoreResult<()> {
            if self.failing.lock().unwrap().contains(op) {
                return Err(StoreError::Corrupt {
                    what: op,
                    group: "web".into(),
                    message: "disk I/O error (test)".into(),
                });
            }
            Ok(())
        }

        fn fail(&self, ops: &[&'static str]) {
            *self.failing.lock().unwrap() = ops.iter().copied().collect();
        }
    }

    #[async_trait]
    impl Store for Flaky {
        async fn save_group_config(
            &self,
            g: &str,
            c: &serde_json::Value,
            at: Timestamp,
        ) -> StoreResult<()> {
            self.inner.save_group_config(g, c, at).await
        }
        async fn load_state(&self, g: &str) -> StoreResult<Option<StoredState>> {
            self.check("load_state")?;
            self.inner.load_state(g).await
        }
        async fn save_state(
            &self,
            g: &str,
            s: &StoredState,
            d: Option<&serde_json::Value>,
            at: Timestamp,
        ) -> StoreResult<()> {
            self.check("save_state")?;
            self.decisions.lock().unwrap().push(d.is_some());
            self.inner.save_state(g, s, d, at).await
        }
        async fn begin_activity(&self, a: &NewActivity<'_>) -> StoreResult<bool> {
            self.check("begin_activity")?;
            self.inner.begin_activity(a).await
        }
        async fn begin_activity_with_state(
            &self,
            a: &NewActivity<'_>,
            s: &StoredState,
            d: Option<&serde_json::Value>,
        ) -> StoreResult<bool> {
            self.check("begin_activity_with_state")?;
            self.inner.begin_activity_with_state(a, s, d).await
        }
        async fn finish_activity(
            &self,
            k: &str,
            s: ActivityStatus,
            e: Option<&str>,
            at: Timestamp,
        ) -> StoreResult<()> {
            self.inner.finish_activity(k, s, e, at).await
        }
        async fn pending_activities(&self, g: &str) -> StoreResult<Vec<Activity>> {
            self.check("pending_activities")?;
            self.inner.pending_activities(g).await
        }
        async fn activities(&self, g: Option<&str>, l: u32) -> StoreResult<Vec<Activity>> {
            self.inner.activities(g, l).await
        }
        async fn record_error(
            &self,
            g: Option<&str>,
            c: ErrorComponent,
            m: &str,
            at: Timestamp,
        ) -> StoreResult<()> {
            self.inner.record_error(g, c, m, at).await
        }
        async fn errors(&self, g: Option<&str>, l: u32) -> StoreResult<Vec<ErrorRecord>> {
            self.inner.errors(g, l).await
        }
        async fn record_samples(
            &self,
            g: &str,
            at: Timestamp,
            m: &BTreeMap<String, f64>,
        ) -> StoreResult<()> {
            self.check("record_samples")?;
            self.inner.record_samples(g, at, m).await
        }
        async fn samples(
            &self,
            g: &str,
            m: &str,
            since: Timestamp,
        ) -> StoreResult<Vec<(Timestamp, f64)>> {
            self.inner.samples(g, m, since).await
        }
        async fn prune_samples(&self, b: Timestamp) -> StoreResult<u64> {
            self.inner.prune_samples(b).await
        }
        async fn record_forecasts(&self, g: &str, f: &[NewForecast]) -> StoreResult<()> {
            self.inner.record_forecasts(g, f).await
        }
        async fn forecasts(
            &self,
            g: Option<&str>,
            l: u32,
            now: Timestamp,
        ) -> StoreResult<Vec<ForecastRecord>> {
            self.inner.forecasts(g, l, now).await
        }
        async fn prune_forecasts(&self, b: Timestamp) -> StoreResult<u64> {
            self.inner.prune_forecasts(b).await
        }
        async fn prune_history(&self, b: Timestamp) -> StoreResult<u64> {
            self.inner.prune_history(b).await
        }
        async fn instances(&self, g: &str) -> StoreResult<Vec<InstanceRecord>> {
            self.inner.instances(g).await
        }
        async fn put_instance(&self, g: &str, i: InstanceRecord) -> StoreResult<()> {
            self.inner.put_instance(g, i).await
        }
        async fn delete_instance(&self, g: &str, h: &str, p: u16) -> StoreResult<()> {
            self.inner.delete_instance(g, h, p).await
        }
        async fn progress_since(&self, t: Timestamp) -> StoreResult<scalepilot_store::Progress> {
            self.inner.progress_since(t).await
        }
        async fn group_rows(&self) -> StoreResult<Vec<GroupRow>> {
            self.inner.group_rows().await
        }
        async fn put_group_row(
            &self,
            n: &str,
            s: &serde_json::Value,
            e: bool,
            at: Timestamp,
        ) -> StoreResult<()> {
            self.inner.put_group_row(n, s, e, at).await
        }
        async fn set_group_row_enabled(
            &self,
            n: &str,
            e: bool,
            at: Timestamp,
        ) -> StoreResult<bool> {
            self.inner.set_group_row_enabled(n, e, at).await
        }
        async fn delete_group_row(&self, n: &str) -> StoreResult<bool> {
            self.inner.delete_group_row(n).await
        }
        async fn group_rows_version(&self) -> StoreResult<i64> {
            self.inner.group_rows_version().await
        }
        async fn heartbeat(&self, d: &str, ttl: Duration) -> StoreResult<Vec<String>> {
            self.inner.heartbeat(d, ttl).await
        }
        async fn leave(&self, d: &str) -> StoreResult<()> {
            self.inner.leave(d).await
        }
        async fn acquire_leases(
            &self,
            h: &str,
            g: &[String],
            ttl: Duration,
        ) -> StoreResult<Vec<Lease>> {
            self.inner.acquire_leases(h, g, ttl).await
        }
        async fn release_leases(&self, h: &str, g: &[String]) -> StoreResult<()> {
            self.inner.release_leases(h, g).await
        }
        async fn leases(&self) -> StoreResult<Vec<Lease>> {
            self.inner.leases().await
        }
        async fn save_state_fenced(
            &self,
            g: &str,
            s: &StoredState,
            d: Option<&serde_json::Value>,
            at: Timestamp,
            f: &Fence,
        ) -> StoreResult<()> {
            self.check("save_state")?;
            self.inner.save_state_fenced(g, s, d, at, f).await
        }
        async fn budget_entries(&self) -> StoreResult<(i64, Vec<BudgetEntry>)> {
            self.check("budget")?;
            self.inner.budget_entries().await
        }
        async fn put_budget_entry(
            &self,
            e: &BudgetEntry,
            v: i64,
            f: Option<&Fence>,
        ) -> StoreResult<bool> {
            self.check("budget")?;
            self.inner.put_budget_entry(e, v, f).await
        }
        async fn settle_budget_entry(&self, e: &BudgetEntry, f: Option<&Fence>) -> StoreResult<()> {
            self.check("budget")?;
            self.inner.settle_budget_entry(e, f).await
        }
        async fn delete_budget_entry(&self, g: &str) -> StoreResult<()> {
            self.inner.delete_budget_entry(g).await
        }
        async fn create_token(
            &self,
            n: &str,
            r: Role,
            h: &str,
            at: Timestamp,
        ) -> StoreResult<bool> {
            self.inner.create_token(n, r, h, at).await
        }
        async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
            self.inner.tokens().await
        }
        async fn revoke_token(&self, n: &str, at: Timestamp) -> StoreResult<bool> {
            self.inner.revoke_token(n, at).await
        }
        async fn tokens_version(&self) -> StoreResult<i64> {
            self.inner.tokens_version().await
        }
        async fn record_audit(&self, e: &NewAudit<'_>) -> StoreResult<i64> {
            self.inner.record_audit(e).await
        }
        async fn audit(&self, q: &HistoryQuery<'_>) -> StoreResult<Vec<AuditRecord>> {
            self.inner.audit(q).await
        }
        async fn activities_page(&self, q: &HistoryQuery<'_>) -> StoreResult<Vec<Activity>> {
            self.inner.activities_page(q).await
        }
        async fn errors_page(&self, q: &HistoryQuery<'_>) -> StoreResult<Vec<ErrorRecord>> {
            self.inner.errors_page(q).await
        }
    }

    /// Runs `current` replicas; counts scale_to calls.
    struct Counting {
        current: AtomicU32,
        calls: AtomicU32,
    }

    #[async_trait]
    impl Target for Counting {
        async fn status(&self) -> std::result::Result<Status, String> {
            let c = self.current.load(Ordering::SeqCst);
            Ok(Status {
                current: c,
                ready: c,
                ..Status::default()
            })
        }
        async fn scale_to(&self, desired: u32) -> std::result::Result<(), String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.current.store(desired, Ordering::SeqCst);
            Ok(())
        }
        async fn shutdown(&self) {}
    }

    const CONFIG: &str = r#"
groups:
  - name: web
    min: 1
    max: 10
    evaluation_interval: 1s
    source: {kind: static, values: {request_rate: 40}}
    target: {kind: command, command: "true"}
    strategies:
      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}
"#;

    async fn runtime(
        dir: &std::path::Path,
        current: u32,
    ) -> (GroupRuntime, Arc<Flaky>, Arc<Counting>) {
        let config = scalepilot_core::config::parse(CONFIG, "test.yaml").unwrap();
        let group = config.groups[0].clone();
        let http = crate::http::client().unwrap();
        let source = crate::sources::build(group.source.as_ref(), dir, &http).unwrap();
        let store = Arc::new(Flaky {
            inner: SqliteStore::open(&dir.join("s.db")).await.unwrap(),
            failing: Mutex::new(HashSet::new()),
            decisions: Mutex::new(Vec::new()),
        });
        let target = Arc::new(Counting {
            current: AtomicU32::new(current),
            calls: AtomicU32::new(0),
        });
        let rt = GroupRuntime {
            group,
            source,
            target: target.clone(),
            store: store.clone(),
            alerts: Alerter::default(),
            events: broadcast::channel(16).0,
            state: StoredState::default(),
            error_alert_after: 3,
            fault_pause: None,
            last_source_errors: BTreeMap::new(),
            last_dry_run: None,
            last_recorded: None,
            budget: Default::default(),
            budget_bound: false,
            state_loaded: true,
            reconcile_pending: false,
            ha: None,
            board: Default::default(),
            fresh_record: None,
        };
        (rt, store, target)
    }

    /// With the budget ledger in the store (HA), a ledger that cannot be read fails closed:
    /// no scale-up, the evaluation fails and says why; once it is back the group grows and
    /// its entry is written.
    #[tokio::test]
    async fn an_unreadable_store_ledger_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut rt, store, target) = runtime(dir.path(), 1).await;
        let priced = CONFIG.replace(
            "    strategies:",
            "    cost: {price_per_replica_hour: 0.5}\n    strategies:",
        );
        let config =
            scalepilot_core::config::parse(&format!("budget: {{per_hour: 100}}\n{priced}"), "t")
                .unwrap();
        rt.group = config.groups[0].clone();
        rt.budget = crate::budget::Ledger::in_store(store.clone());
        rt.budget.configure(config.budget, &config.groups);
        store.fail(&["budget"]);
        let event = rt.evaluate().await.unwrap();
        let err = event.error.unwrap_or_default();
        assert!(err.contains("budget ledger"), "{err}");
        assert!(event.summary.contains("no scale-up"), "{}", event.summary);
        assert_eq!(target.calls.load(Ordering::SeqCst), 0, "no scale-up");
        assert_eq!(rt.state.consecutive_errors, 1);
        let errors = store.errors(Some("web"), 10).await.unwrap();
        assert!(errors[0].message.contains("budget ledger"), "{errors:?}");
        store.fail(&[]);
        rt.evaluate().await.unwrap();
        assert_eq!(target.current.load(Ordering::SeqCst), 4);
        let (_, entries) = store.budget_entries().await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].rate_per_hour, 2.0);
    }

    /// The intent and the state are one write: when it fails, the target is not called, the
    /// evaluation fails and the failure is recorded.
    #[tokio::test]
    async fn a_failed_intent_write_stops_the_action() {
        let dir = tempfile::tempdir().unwrap();
        let (mut rt, store, target) = runtime(dir.path(), 1).await;
        store.fail(&["begin_activity_with_state"]);
        let err = rt.evaluate().await.unwrap_err();
        assert!(err.contains("not scaling"), "{err}");
        assert_eq!(target.calls.load(Ordering::SeqCst), 0);
        assert_eq!(rt.state.consecutive_errors, 1);
        let errors = store.errors(Some("web"), 10).await.unwrap();
        assert_eq!(errors[0].component, ErrorComponent::Store);
        assert!(store.activities(None, 10).await.unwrap().is_empty());
        // The store back: the action happens, intent and state together.
        store.fail(&[]);
        rt.evaluate().await.unwrap();
        assert_eq!(target.calls.load(Ordering::SeqCst), 1);
        let acts = store.activities(None, 10).await.unwrap();
        assert_eq!(acts[0].status, ActivityStatus::Succeeded);
        assert_eq!(acts[0].owner.as_deref(), Some(owner_id().as_str()));
    }

    /// A failed samples or state write makes the evaluation a failed one, counted towards
    /// the `errors` alert, and reported in its event.
    #[tokio::test]
    async fn failed_store_writes_are_failed_evaluations() {
        let dir = tempfile::tempdir().unwrap();
        // 4 replicas for 40 req/s at 10: nothing to scale.
        let (mut rt, store, target) = runtime(dir.path(), 4).await;
        store.fail(&["record_samples"]);
        let ev = rt.evaluate().await.unwrap();
        assert!(
            ev.error
                .as_deref()
                .unwrap_or_default()
                .contains("cannot record samples"),
            "{ev:?}"
        );
        assert_eq!(rt.state.consecutive_errors, 1);
        store.fail(&["save_state"]);
        let ev = rt.evaluate().await.unwrap();
        assert!(
            ev.error
                .as_deref()
                .unwrap_or_default()
                .contains("cannot save the state"),
            "{ev:?}"
        );
        assert_eq!(rt.state.consecutive_errors, 2);
        store.fail(&["record_samples", "save_state"]);
        rt.evaluate().await.unwrap();
        assert_eq!(rt.state.consecutive_errors, 3);
        let recorded = store.errors(Some("web"), 10).await.unwrap();
        assert_eq!(recorded.len(), 3);
        assert!(
            recorded
                .iter()
                .all(|e| e.component == ErrorComponent::Store)
        );
        store.fail(&[]);
        let ev = rt.evaluate().await.unwrap();
        assert_eq!((ev.error, rt.state.consecutive_errors), (None, 0));
        assert_eq!(target.calls.load(Ordering::SeqCst), 0);
    }

    /// The decision record is saved with the state when it changed (the first evaluation,
    /// a new decision), not again while the group stays as it is; the state itself is saved
    /// at every evaluation, and a failed save sends the record again at the next one.
    #[tokio::test]
    async fn the_decision_record_is_saved_only_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        // 4 replicas for 40 req/s at 10: nothing to scale.
        let (mut rt, store, target) = runtime(dir.path(), 4).await;
        for _ in 0..3 {
            rt.evaluate().await.unwrap();
        }
        assert_eq!(*store.decisions.lock().unwrap(), [true, false, false]);
        // A new decision: scale to the new minimum (the activity holds its record too).
        rt.group.min = 6;
        rt.evaluate().await.unwrap();
        assert_eq!(target.calls.load(Ordering::SeqCst), 1);
        let acts = store.activities(None, 10).await.unwrap();
        assert!(acts[0].decision["summary"].is_string(), "{:?}", acts[0]);
        // Then quiet again at 6: once for "6 → 6", then nothing.
        rt.evaluate().await.unwrap();
        rt.evaluate().await.unwrap();
        assert_eq!(
            *store.decisions.lock().unwrap(),
            [true, false, false, true, true, false]
        );
        // A save that failed did not store the record: the next one carries it.
        store.decisions.lock().unwrap().clear();
        rt.last_recorded = Some("something else".into());
        store.fail(&["save_state"]);
        rt.evaluate().await.unwrap();
        store.fail(&[]);
        rt.evaluate().await.unwrap();
        rt.evaluate().await.unwrap();
        assert_eq!(*store.decisions.lock().unwrap(), [true, false]);
    }

    /// A state that could not be read at start is read at the next evaluation; meanwhile
    /// nothing is decided and the stored state is not overwritten with an empty one.
    #[tokio::test]
    async fn a_failed_state_load_is_retried_at_the_next_evaluation() {
        let dir = tempfile::tempdir().unwrap();
        let (mut rt, store, target) = runtime(dir.path(), 1).await;
        let mut stored = StoredState::default();
        stored.state.consecutive_failures = 7;
        store
            .save_state("web", &stored, None, Timestamp::now())
            .await
            .unwrap();
        rt.state_loaded = false;
        rt.reconcile_pending = true;
        store.fail(&["load_state"]);
        for n in 1..=2 {
            let err = rt.evaluate().await.unwrap_err();
            assert!(err.contains("cannot load the group's state"), "{err}");
            assert_eq!(rt.state.consecutive_errors, n);
        }
        assert_eq!(target.calls.load(Ordering::SeqCst), 0);
        let kept = store.load_state("web").await;
        assert!(kept.is_err());
        store.fail(&["pending_activities"]);
        let err = rt.evaluate().await.unwrap_err();
        assert!(err.contains("cannot settle"), "{err}");
        assert!(rt.state_loaded);
        assert_eq!(rt.state.consecutive_errors, 3);
        store.fail(&[]);
        rt.evaluate().await.unwrap();
        assert_eq!(target.calls.load(Ordering::SeqCst), 1);
        assert!(!rt.reconcile_pending);
        assert_eq!(rt.state.consecutive_errors, 0);
    }

    #[test]
    fn owners_are_alive_while_their_process_runs() {
        assert!(owner_alive(&owner_id()));
        let pid = std::process::id();
        assert!(!owner_alive(&format!("{pid}:1")));
        assert!(!owner_alive("999999999:1"));
        assert!(!owner_alive("garbage"));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = child.id() as i32;
        let start = process_start(id);
        child.wait().unwrap();
        if let Some(start) = start {
            assert!(!owner_alive(&format!("{id}:{start}")));
        }
    }

    /// Two daemons on one store: the one whose lease was taken over (it still believes it
    /// holds it: paused, or its renewals were slow) is refused by the store at the intent and
    /// never calls the target; it stops acting at once. The new holder acts.
    #[tokio::test]
    async fn a_daemon_whose_lease_was_taken_over_is_fenced_and_does_not_act() {
        let dir = tempfile::tempdir().unwrap();
        let (mut old, store, target) = runtime(dir.path(), 1).await;
        let ttl = Duration::from_millis(300);
        let first = store
            .acquire_leases("old", &["web".into()], ttl)
            .await
            .unwrap();
        let leases = crate::ha::Leases::default();
        // The old daemon's local deadline is far off: only the store can stop it now.
        leases.hold("web", first[0].fence(), Duration::from_secs(600));
        old.ha = Some(leases.clone());
        tokio::time::sleep(ttl * 2).await;
        let taken = store
            .acquire_leases("new", &["web".into()], ttl * 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert!(taken[0].epoch > first[0].epoch);
        let err = old.evaluate().await.unwrap_err();
        assert!(err.contains("no longer leased"), "{err}");
        assert_eq!(target.calls.load(Ordering::SeqCst), 0);
        assert!(store.activities(None, 10).await.unwrap().is_empty());
        // It dropped the lease: the next evaluation does nothing at all.
        let err = old.evaluate().await.unwrap_err();
        assert!(err.contains("does not hold"), "{err}");
        // Past its local deadline, a daemon does not even try.
        let stale = crate::ha::Leases::default();
        stale.hold("web", taken[0].fence(), Duration::ZERO);
        old.ha = Some(stale);
        assert!(old.evaluate().await.unwrap_err().contains("does not hold"));
        // The new holder acts, under its fence.
        let fresh = crate::ha::Leases::default();
        fresh.hold("web", taken[0].fence(), Duration::from_secs(600));
        old.ha = Some(fresh);
        old.evaluate().await.unwrap();
        assert_eq!(target.calls.load(Ordering::SeqCst), 1);
        assert_eq!(store.activities(None, 10).await.unwrap().len(), 1);
    }
}
