//! What a group's sources and target reported at evaluation time.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One evaluation's view of the world.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// Metric name → latest value. A metric that a strategy needs and that is absent here
    /// counts as missing: it never causes a scale-down.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Metric name → why fetching it failed (also counts as missing).
    #[serde(default)]
    pub metric_errors: BTreeMap<String, String>,
    /// Replicas the target has been asked for (ready + starting).
    pub current_replicas: u32,
    /// Replicas serving traffic. Defaults to `current_replicas`.
    #[serde(default)]
    pub ready_replicas: Option<u32>,
    /// The target's own limits (e.g. an auto scaling group's min/max), intersected with the group's.
    #[serde(default)]
    pub target_limits: Option<Limits>,
    /// What the global budget leaves for this group (the engine computes it across groups).
    #[serde(default)]
    pub shared_budget: Option<crate::cost::SharedBudget>,
}

/// Replica limits reported by a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default)]
    pub max: Option<u32>,
}

/// Why a metric has no usable value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricProblem {
    /// The source did not report it.
    Missing,
    /// Fetching it failed (listed in `metric_errors`).
    Failed(String),
    /// A value no rate, utilization or count can take: NaN, infinite or negative. A source
    /// that answers -100 is broken, and acting on it would scale in as far as it can.
    Invalid(f64),
}

impl Observation {
    /// The metric's value, or `None` when missing, failed or invalid (see [`MetricProblem`]).
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metric_value(name).ok()
    }

    /// The metric's value, or why there is none.
    pub fn metric_value(&self, name: &str) -> Result<f64, MetricProblem> {
        // An error wins over a value: a source may report both (say, a stale sample and the
        // error that it is stale), and a value it disowns must not drive a scale-down.
        if let Some(e) = self.metric_errors.get(name) {
            return Err(MetricProblem::Failed(e.clone()));
        }
        match self.metrics.get(name).copied() {
            None => Err(MetricProblem::Missing),
            Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
            Some(v) => Err(MetricProblem::Invalid(v)),
        }
    }

    /// Why the metric has no usable value; `Missing` when it has one.
    pub fn problem(&self, name: &str) -> MetricProblem {
        self.metric_value(name)
            .err()
            .unwrap_or(MetricProblem::Missing)
    }
}
