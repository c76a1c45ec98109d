//! A group paused in a direction (`EngineHandle::set_paused`) still decides and records, but
//! holds at its current count: the decision gets a `paused` limit, the way a behavior rule
//! that held the count would show.
//!
//! The core's rules know nothing of pauses (they are an operator's switch, not a policy), so
//! the limit is added to the decision's JSON record and summary here rather than as a core
//! `Rule`.

use jiff::Timestamp;
use scalepilot_core::Decision;
use scalepilot_core::state::GroupState;
use serde_json::{Value, json};

use crate::group::GroupRuntime;

/// The hold a pause put on a decision: it wanted `from`, it holds at `to`.
pub(crate) struct PauseLimit {
    from: u32,
    to: u32,
    detail: &'static str,
}

impl PauseLimit {
    /// What the decision's summary gets (so a pause, or its end, is a new decision record).
    pub(crate) fn summary(&self) -> String {
        format!("; paused {}→{}: {}", self.from, self.to, self.detail)
    }

    /// Add the limit to a serialized [`Decision`]: in `limits`, `reasons` and `limited_by`.
    pub(crate) fn record(&self, decision: &mut Value) {
        let limit =
            json!({"rule": "paused", "from": self.from, "to": self.to, "detail": self.detail});
        if let Some(limits) = decision["limits"].as_array_mut() {
            limits.push(limit);
        }
        let reason = json!({"rule": "paused", "strategy": null, "from": self.from, "to": self.to, "numbers": {}, "text": self.detail});
        if let Some(reasons) = decision["reasons"].as_array_mut() {
            reasons.push(reason);
        }
        decision["limited_by"] = json!("paused");
    }
}

impl GroupRuntime {
    /// Hold `decision` at the current count when its direction is paused. A decision that
    /// was to act leaves no trace of an action in the state: the scale event and cooldowns
    /// `decide` recorded for it are undone (as after a failed action), the rest (history,
    /// forecasts) is kept.
    pub(crate) fn hold_if_paused(
        &mut self,
        decision: &mut Decision,
        before: &GroupState,
        now: Timestamp,
    ) -> Option<PauseLimit> {
        let pause = self.board.paused(&self.group.name);
        let (current, wanted) = (decision.current_replicas, decision.desired_replicas);
        let detail = if wanted > current && pause.scale_out {
            "scale-out paused by hand"
        } else if wanted < current && pause.scale_in {
            "scale-in paused by hand"
        } else {
            return None;
        };
        if decision.scale {
            let state = &mut self.state.state;
            if state.scale_events.back().is_some_and(|e| e.at == now) {
                state.scale_events.pop_back();
            }
            state.cooldowns = before.cooldowns;
        }
        decision.desired_replicas = current;
        decision.scale = false;
        Some(PauseLimit {
            from: wanted,
            to: current,
            detail,
        })
    }
}
