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

impl Observation {
    /// The metric's value, or `None` when missing, failed or not a finite number.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied().filter(|v| v.is_finite())
    }
}
