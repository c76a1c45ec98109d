//! Strategies: each turns observations into a recommended replica count with a reason.
//!
//! One file per strategy. `decide` evaluates all of a group's strategies and combines them:
//! the largest recommendation wins (HPA semantics) and every reason is kept.

mod predictive;
mod schedule;
mod target_tracking;
mod threshold;

pub use predictive::{Outlook, Predictive, WarmStart};
pub use schedule::{Schedule, ScheduleWindow, When};
pub use target_tracking::{Goal, TargetTracking};
pub use threshold::{Aggregation, Step, Threshold, ThresholdMetric};

/// A validated strategy.
#[derive(Debug, Clone)]
pub enum Strategy {
    TargetTracking(TargetTracking),
    Threshold(Threshold),
    Schedule(Schedule),
    /// `predictive` (with a seasonal model) or `cost` (without).
    Predictive(Predictive),
}

impl Strategy {
    /// Metrics whose history must be kept, with the longest window each needs.
    pub fn windowed_metrics(&self) -> impl Iterator<Item = (&str, jiff::SignedDuration)> {
        let metrics: &[ThresholdMetric] = match self {
            Strategy::Threshold(t) => &t.metrics,
            _ => &[],
        };
        metrics
            .iter()
            .filter(|m| !m.window.is_zero())
            .map(|m| (&*m.metric, m.window))
    }
}
