//! What a group remembers between evaluations. The engine persists it; `decide` updates it.

use std::collections::{BTreeMap, VecDeque};

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A group's persisted decision state.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupState {
    /// Recent combined recommendations (input of the stabilization windows), oldest first.
    #[serde(default)]
    pub recommendations: VecDeque<Recommendation>,
    /// Recent scaling actions (input of the rate policies), oldest first.
    #[serde(default)]
    pub scale_events: VecDeque<ScaleEvent>,
    /// Deadlines set by cooldowns.
    #[serde(default)]
    pub cooldowns: Cooldowns,
    /// Evaluations in a row with a missing or failed metric.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Recent samples of metrics that a strategy aggregates over a window, oldest first.
    #[serde(default)]
    pub metric_history: BTreeMap<String, VecDeque<Sample>>,
    /// Recent verdicts of threshold strategies that count "N of M datapoints", by strategy
    /// index, oldest first. Persisted because `decide` is pure: the last M evaluations are
    /// only known from here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub threshold_datapoints: BTreeMap<usize, VecDeque<Datapoint>>,
    /// Money spent this budget month (groups with a `cost` section).
    #[serde(default)]
    pub spend: Option<crate::cost::Spend>,
    /// Forecasting state of the predictive and cost strategies, by strategy index. Derived:
    /// the engine rebuilds it from stored metric samples, so it is not persisted.
    #[serde(skip)]
    #[schemars(skip)]
    pub forecasts: BTreeMap<usize, crate::forecast::Tracker>,
    /// When the group was last evaluated.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub last_evaluated: Option<Timestamp>,
}

/// A recommendation remembered for stabilization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recommendation {
    #[schemars(with = "String")]
    pub at: Timestamp,
    pub replicas: u32,
}

/// A scaling action remembered for rate policies: `change` > 0 added replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleEvent {
    #[schemars(with = "String")]
    pub at: Timestamp,
    pub change: i64,
}

/// A metric value at a time.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    #[schemars(with = "String")]
    pub at: Timestamp,
    pub value: f64,
}

/// Cooldown deadlines; an action of the kind is blocked while `now` is before its deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cooldowns {
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub scale_up_until: Option<Timestamp>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub scale_down_until: Option<Timestamp>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub any_until: Option<Timestamp>,
}

/// One evaluation's verdict of a threshold strategy: whether its scale-up or scale-down
/// condition held (crossed, with enough confidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Datapoint {
    #[schemars(with = "String")]
    pub at: Timestamp,
    #[serde(default)]
    pub up: bool,
    #[serde(default)]
    pub down: bool,
}
