//! One group's evaluation: observe → decide → act, with the activity written as intent
//! before the target is called and completed after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use scalepilot_core::Observation;
use scalepilot_core::config::Group;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use super::alerts::{AlertEvent, Alerter};
use crate::sources::{Context, Source};
use crate::targets::Target;
use scalepilot_core::decision::Rule;
use scalepilot_store::{NewActivity, Store, StoredState};

/// Longest a target may take to report its status or to accept a change: a backstop only,
/// targets have their own timeouts (a command target's `timeout`, say).
const TARGET_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Longest a source may take for one observation.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The global budget's ledger, shared by all groups.
    pub budget: super::budget::Ledger,
    /// Whether a budget capped the last decision: the alert fires when one starts to.
    pub budget_bound: bool,
}

impl GroupRuntime {
    /// Evaluate once. Errors are recorded (store, alerts, events) before being returned.
    pub(crate) async fn evaluate(&mut self) -> Result<Event, String> {
        let now = Timestamp::now();
        let name = self.group.name.to_string();
        let status = match tokio::time::timeout(TARGET_TIMEOUT, self.target.status()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(self
                    .fail(
                        "target",
                        &format!("cannot read the target's status: {e}"),
                        now,
                    )
                    .await);
            }
            Err(_) => {
                return Err(self
                    .fail("target", "the target's status timed out", now)
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
            if self.last_source_errors.get(metric) != Some(err) {
                tracing::warn!(group = %name, metric, "metric failed: {err}");
                let msg = format!("metric {metric}: {err}");
                self.record_error("source", &msg, now).await;
            }
        }
        self.last_source_errors = observed.errors.clone();
        if let Err(e) = self
            .store
            .record_samples(&name, now, &observed.metrics)
            .await
        {
            tracing::warn!(group = %name, "{e}");
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
        let decision = self
            .budget
            .decide(&self.group, &mut obs, &mut self.state.state, now);
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
        // Recorded as made, before acting: forecast_only strategies' forecasts included.
        let forecasts = super::forecast::made(&self.group, &decision, now);
        if !forecasts.is_empty()
            && let Err(e) = self.store.record_forecasts(&name, &forecasts).await
        {
            tracing::warn!(group = %name, "{e}");
        }
        let summary = decision.summary();
        let record = json!({"decision": &decision, "summary": &summary, "observation": &obs});
        let desired = decision.desired_replicas;
        let mut scaled = false;
        let mut error = None;
        if desired != status.current {
            let bucket_ms = self.group.evaluation_interval.as_millis().max(1) as i64;
            let bucket = now.as_millisecond() / bucket_ms;
            if decision.scale {
                let key = format!("{name}:{desired}:{bucket}");
                let activity = NewActivity {
                    key: &key,
                    group: &name,
                    from: status.current,
                    to: desired,
                    status: "pending",
                    decision: &record,
                    at: now,
                };
                match self.store.begin_activity(&activity).await {
                    Ok(true) => {
                        // The state (scale event, cooldowns) is saved with the intent, so a
                        // crash before the outcome cannot let the group scale again at once.
                        if let Err(e) = self
                            .store
                            .save_state(&name, &self.state, Some(&record), now)
                            .await
                        {
                            tracing::warn!(group = %name, "{e}");
                        }
                        tracing::info!(group = %name, "scaling {summary}");
                        let result = match tokio::time::timeout(
                            TARGET_TIMEOUT,
                            self.target.scale_to(desired),
                        )
                        .await
                        {
                            Ok(r) => r,
                            Err(_) => Err(format!(
                                "the target did not answer within {TARGET_TIMEOUT:?}"
                            )),
                        };
                        if let Some(p) = self.fault_pause {
                            tracing::warn!(group = %name, "test hook: pausing {p:?} before completing activity {key}");
                            tokio::time::sleep(p).await;
                        }
                        let done = Timestamp::now();
                        match result {
                            Ok(()) => {
                                scaled = true;
                                self.finish(&key, "succeeded", None, done).await;
                                self.alerts.send(AlertEvent::Scaled, Some(&name), &summary, json!({"key": key, "from": status.current, "to": desired, "decision": &record}));
                            }
                            Err(e) => {
                                // Nothing changed: forget the scale event and cooldown decide() recorded.
                                self.state.state = before;
                                self.finish(&key, "failed", Some(&e), done).await;
                                let msg =
                                    format!("scaling {} → {desired} failed: {e}", status.current);
                                self.alerts.send(AlertEvent::ScaleFailed, Some(&name), &msg, json!({"key": key, "from": status.current, "to": desired, "error": e, "decision": &record}));
                                return Err(self.fail("target", &msg, done).await);
                            }
                        }
                    }
                    Ok(false) => {
                        // Attempted already in this time bucket (e.g. before a restart): never twice.
                        tracing::info!(group = %name, "activity {key} exists: not repeated");
                        self.state.state = before;
                    }
                    Err(e) => {
                        self.state.state = before;
                        return Err(self
                            .fail(
                                "store",
                                &format!("cannot write the activity intent, not scaling: {e}"),
                                now,
                            )
                            .await);
                    }
                }
            } else {
                if self.last_dry_run != Some((status.current, desired)) {
                    self.last_dry_run = Some((status.current, desired));
                    let key = format!("{name}:dry_run:{desired}:{bucket}");
                    let activity = NewActivity {
                        key: &key,
                        group: &name,
                        from: status.current,
                        to: desired,
                        status: "dry_run",
                        decision: &record,
                        at: now,
                    };
                    if let Err(e) = self.store.begin_activity(&activity).await {
                        error = Some(e.to_string());
                    }
                    tracing::info!(group = %name, "dry run: would scale {summary}");
                }
            }
        }
        // An evaluation that could not observe a metric held: it counts as failed.
        if obs.metric_errors.is_empty() {
            self.state.consecutive_errors = 0;
        } else {
            let what: Vec<String> = obs
                .metric_errors
                .iter()
                .map(|(m, e)| format!("{m}: {e}"))
                .collect();
            let msg = format!("metrics failed: {}", what.join("; "));
            self.count_failure("source", &msg);
            error = Some(msg);
        }
        if let Err(e) = self
            .store
            .save_state(&name, &self.state, Some(&record), Timestamp::now())
            .await
        {
            tracing::warn!(group = %name, "{e}");
            error = Some(e.to_string());
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
        let _ = self.events.send(event.clone());
        Ok(event)
    }

    async fn finish(&self, key: &str, status: &str, error: Option<&str>, at: Timestamp) {
        if let Err(e) = self.store.finish_activity(key, status, error, at).await {
            tracing::error!(group = %self.group.name, "cannot complete activity {key}: {e}");
        }
    }

    async fn record_error(&self, component: &str, message: &str, at: Timestamp) {
        if let Err(e) = self
            .store
            .record_error(Some(&self.group.name), component, message, at)
            .await
        {
            tracing::warn!(group = %self.group.name, "cannot record an error ({message}): {e}");
        }
    }

    /// Count a failed evaluation; alert when it is the N-th in a row.
    fn count_failure(&mut self, component: &str, message: &str) {
        self.state.consecutive_errors = self.state.consecutive_errors.saturating_add(1);
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
    async fn fail(&mut self, component: &str, message: &str, at: Timestamp) -> String {
        let name = self.group.name.to_string();
        tracing::warn!(group = %name, "{component}: {message}");
        self.record_error(component, message, at).await;
        self.count_failure(component, message);
        if let Err(e) = self.store.save_state(&name, &self.state, None, at).await {
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
