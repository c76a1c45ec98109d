//! What the engine handle asks of one group besides its evaluations: a dry run
//! ([`GroupRuntime::probe`]) and a manual scale ([`GroupRuntime::scale_manually`]).
//!
//! Kept apart from `group.rs` (the evaluation itself) so the two can change independently;
//! both run in the group's own task, between its evaluations, so they never race one.

use std::collections::BTreeMap;

use jiff::Timestamp;
use scalepilot_core::Observation;
use serde_json::json;

use crate::group::{Event, GroupRuntime, SOURCE_TIMEOUT, TARGET_TIMEOUT};
use crate::handle::{Evaluation, HandleError, ManualScale};
use crate::sources::Context;
use scalepilot_core::config::AlertEvent;
use scalepilot_store::{ActivityStatus, ErrorComponent, NewActivity};

impl GroupRuntime {
    async fn target_status(&self) -> Result<crate::targets::Status, HandleError> {
        match tokio::time::timeout(TARGET_TIMEOUT, self.target.status()).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => {
                self.metrics().target_error(&self.group.name, &e);
                Err(HandleError::Failed(format!(
                    "cannot read the target's status: {e}"
                )))
            }
            Err(_) => {
                self.metrics().target_error(&self.group.name, "timed out");
                Err(HandleError::Failed("the target's status timed out".into()))
            }
        }
    }

    /// Observe and decide now without acting, recording, or changing the group's state: the
    /// decision runs on a copy of the state, and the budget ledger is only read.
    /// Refused while the group's state could not be read yet (the store failed at its
    /// start): a decision on an empty state (no cooldowns, no history) would mislead.
    pub(crate) async fn probe(&mut self) -> Result<Evaluation, HandleError> {
        if !self.state_loaded {
            return Err(HandleError::Failed(format!(
                "group `{}`: the group's state is not loaded yet (the store failed); its next evaluation retries",
                self.group.name
            )));
        }
        let now = Timestamp::now();
        let status = self.target_status().await?;
        let ctx = Context {
            endpoints: status.endpoints.clone(),
            ready: status.ready,
        };
        let observed = tokio::time::timeout(SOURCE_TIMEOUT, self.source.observe(&ctx))
            .await
            .map_err(|_| {
                HandleError::Failed(format!("the source timed out after {SOURCE_TIMEOUT:?}"))
            })?;
        let mut obs = Observation {
            metrics: observed.metrics,
            metric_errors: observed.errors,
            current_replicas: status.current,
            ready_replicas: Some(status.ready),
            target_limits: status.limits,
            shared_budget: None,
        };
        let mut state = self.state.state.clone();
        let decision = self
            .budget
            .preview(&self.group, &mut obs, &mut state, now)
            .await;
        let error = (!obs.metric_errors.is_empty()).then(|| {
            let what: Vec<String> = obs
                .metric_errors
                .iter()
                .map(|(m, e)| format!("{m}: {e}"))
                .collect();
            format!("metrics failed: {}", what.join("; "))
        });
        let event = Event {
            group: self.group.name.to_string(),
            at: now,
            current: status.current,
            ready: status.ready,
            desired: decision.desired_replicas,
            scaled: false,
            summary: decision.summary(),
            metrics: obs.metrics,
            error,
        };
        Ok(Evaluation { event, decision })
    }

    /// Scale to `m.replicas` by hand: the activity is written as intent (decision
    /// `{"manual": {"actor", "reason", "force"}, "reason": "manual", …}`), the target is
    /// called, the activity settles as succeeded or failed, the `scaled`/`scale_failed` alert
    /// and a live event follow, as for an evaluation. The decision state (cooldowns…) is left
    /// alone. Outside min/max only with `force`; outside the target's own limits never.
    pub(crate) async fn scale_manually(&mut self, m: ManualScale) -> Result<Event, HandleError> {
        let name = self.group.name.to_string();
        let replicas = m.replicas;
        if !m.force {
            check_bounds(&name, replicas, self.group.min, self.group.max)?;
        }
        let now = Timestamp::now();
        let status = self.target_status().await?;
        if let Some(limits) = &status.limits {
            let (lo, hi) = (limits.min.unwrap_or(0), limits.max.unwrap_or(u32::MAX));
            if replicas < lo || replicas > hi {
                return Err(HandleError::Invalid(format!(
                    "{replicas} replicas is outside the target's own limits {lo}..={hi} (not even with force)"
                )));
            }
        }
        let from = status.current;
        let forced = if m.force { ", forced" } else { "" };
        let summary = format!(
            "{from} → {replicas}; manual by {}{forced}: {}",
            m.actor, m.reason
        );
        let mut event = Event {
            group: name.clone(),
            at: now,
            current: from,
            ready: status.ready,
            desired: replicas,
            scaled: false,
            summary: summary.clone(),
            metrics: BTreeMap::new(),
            error: None,
        };
        if from == replicas {
            event.summary = format!("{from} → {replicas}; manual: already there");
            return Ok(event);
        }
        let record = json!({
            "manual": {"actor": &m.actor, "reason": &m.reason, "force": m.force},
            "reason": "manual",
            "summary": &summary,
        });
        // Millisecond keys: two manual requests are two activities, never merged.
        let key = format!("{name}:manual:{replicas}:{}", now.as_millisecond());
        let owner = crate::group::owner_id();
        let fence = self.lease().map_err(HandleError::Failed)?;
        let activity = NewActivity {
            key: &key,
            group: &name,
            from,
            to: replicas,
            status: ActivityStatus::Pending,
            decision: &record,
            at: now,
            owner: Some(&owner),
            fence: fence.as_ref(),
        };
        match self.store.begin_activity(&activity).await {
            Err(e) if matches!(e, scalepilot_store::StoreError::Fenced { .. }) => {
                self.fenced(&e);
                return Err(HandleError::Failed(format!("not scaling: {e}")));
            }
            Ok(true) => {}
            Ok(false) => {
                return Err(HandleError::Failed(format!(
                    "activity {key} exists: not repeated"
                )));
            }
            Err(e) => {
                return Err(HandleError::Failed(format!(
                    "cannot write the activity intent, not scaling: {e}"
                )));
            }
        }
        tracing::info!(group = %name, "manual scaling {summary}");
        let result = if self.lease_holds(fence.as_ref()) {
            self.scale_target(replicas).await
        } else {
            Err("the lease ran out before acting: not scaling".to_string())
        };
        let done = Timestamp::now();
        let (status, error) = match &result {
            Ok(()) => (ActivityStatus::Succeeded, None),
            Err(e) => (ActivityStatus::Failed, Some(e.as_str())),
        };
        self.finish(&key, status, error, done).await;
        let details = json!({"key": key, "from": from, "to": replicas, "reason": "manual", "decision": &record});
        match result {
            Ok(()) => {
                event.scaled = true;
                self.metrics().action(&name, from, replicas, "succeeded");
                self.metrics().counts(&name, replicas, replicas);
                self.alerts
                    .send(AlertEvent::Scaled, Some(&name), &summary, details);
                let _ = self.events.send(event.clone());
                Ok(event)
            }
            Err(e) => {
                self.metrics().target_error(&name, &e);
                self.metrics().action(&name, from, replicas, "failed");
                let msg = format!("manual scaling {from} → {replicas} failed: {e}");
                tracing::warn!(group = %name, "{msg}");
                self.alerts
                    .send(AlertEvent::ScaleFailed, Some(&name), &msg, details);
                self.record_error(ErrorComponent::Target, &msg, done).await;
                event.error = Some(msg.clone());
                let _ = self.events.send(event);
                Err(HandleError::Failed(msg))
            }
        }
    }
}

/// Refuse a count outside the group's bounds, naming them.
pub(crate) fn check_bounds(
    name: &str,
    replicas: u32,
    min: u32,
    max: u32,
) -> Result<(), HandleError> {
    if replicas < min || replicas > max {
        return Err(HandleError::Invalid(format!(
            "{replicas} replicas is outside {name}'s bounds min {min}, max {max} (force allows it)"
        )));
    }
    Ok(())
}
