//! The result of one evaluation: what to do and why.
//!
//! Reasons are kept as data and only rendered to text when shown or stored, so that a
//! decision costs no string formatting on the simulator's hot path.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use crate::observation::MetricProblem;

/// One evaluation's outcome. Serialized with every field below plus `reasons` (see
/// [`Decision::reasons`]).
#[derive(Debug, Clone)]
pub struct Decision {
    pub group: Arc<str>,
    pub at: Timestamp,
    pub current_replicas: u32,
    pub ready_replicas: u32,
    /// The combined recommendation of the strategies (largest wins), before behavior rules.
    pub recommended_replicas: Option<u32>,
    /// Where the group should be after this evaluation.
    pub desired_replicas: u32,
    /// Whether the target must be changed: desired differs from current and not dry-run.
    pub scale: bool,
    pub dry_run: bool,
    /// Effective bounds: group min/max ∩ target limits, adjusted by active schedules.
    pub min: u32,
    pub max: u32,
    pub strategies: Vec<StrategyOutcome>,
    /// Every behavior rule that changed the count, in the order applied.
    pub limits: Vec<Limit>,
    /// The last rule that changed the count, if any.
    pub limited_by: Option<Rule>,
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Decision", 14)?;
        st.serialize_field("group", &self.group)?;
        st.serialize_field("at", &self.at)?;
        st.serialize_field("current_replicas", &self.current_replicas)?;
        st.serialize_field("ready_replicas", &self.ready_replicas)?;
        st.serialize_field("recommended_replicas", &self.recommended_replicas)?;
        st.serialize_field("desired_replicas", &self.desired_replicas)?;
        st.serialize_field("scale", &self.scale)?;
        st.serialize_field("dry_run", &self.dry_run)?;
        st.serialize_field("min", &self.min)?;
        st.serialize_field("max", &self.max)?;
        st.serialize_field("strategies", &self.strategies)?;
        st.serialize_field("limits", &self.limits)?;
        st.serialize_field("limited_by", &self.limited_by)?;
        // Built here rather than in `decide`: the simulator runs decide millions of times and
        // never reads them.
        st.serialize_field("reasons", &self.reasons())?;
        st.end()
    }
}

impl Decision {
    /// Every reason as data: one per strategy, then one per behavior rule that changed the
    /// count, each with the same text as `strategies[].reason` / `limits[].detail`.
    pub fn reasons(&self) -> Vec<StructuredReason> {
        let strategies = self.strategies.iter().map(StrategyOutcome::structured);
        let limits = self.limits.iter().map(Limit::structured);
        strategies.chain(limits).collect()
    }

    /// A one-line human summary: "4 → 6: target_tracking request_rate … (limited by rate_limit)".
    pub fn summary(&self) -> String {
        let mut s = format!("{} → {}", self.current_replicas, self.desired_replicas);
        if self.dry_run && self.desired_replicas != self.current_replicas {
            s.push_str(" (dry run)");
        }
        for o in &self.strategies {
            s.push_str(&format!("; {}: {}", o.kind, o.reason));
        }
        for l in &self.limits {
            s.push_str(&format!("; {} {}→{}: {}", l.rule, l.from, l.to, l.detail));
        }
        s
    }
}

/// One strategy's recommendation.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyOutcome {
    pub kind: &'static str,
    /// Recommended replicas; `None` when the strategy has no opinion (missing data, schedule).
    pub replicas: Option<u32>,
    /// A metric it needed was missing or failed.
    pub missing_data: bool,
    #[serde(serialize_with = "display")]
    pub reason: Reason,
}

impl StrategyOutcome {
    fn structured(&self) -> StructuredReason {
        let mut r = StructuredReason {
            rule: ReasonRule::Strategy,
            strategy: Some(self.kind),
            from: None,
            to: self.replicas,
            numbers: BTreeMap::new(),
            text: self.reason.to_string(),
        };
        let mut num = |k: &str, v: f64| {
            // JSON has no NaN: a number that is not one is left out.
            if v.is_finite() {
                r.numbers.insert(k.to_string(), v);
            }
        };
        let (rule, from) = match &self.reason {
            Reason::TargetTracking {
                value,
                target,
                current,
                base,
                ratio,
                tolerance,
                within_tolerance,
                ..
            } => {
                num("value", *value);
                num("target", *target);
                num("ratio", *ratio);
                num("tolerance", *tolerance);
                num("base", f64::from(*base));
                let rule = if *within_tolerance {
                    ReasonRule::Tolerance
                } else {
                    ReasonRule::Strategy
                };
                (rule, Some(*current))
            }
            Reason::Threshold {
                direction,
                confidence,
                crossed,
                total,
                value,
                bound,
                current,
                below_min_confidence,
                held,
                needed,
                periods,
                set_to,
                ..
            } => {
                num("value", *value);
                num("bound", *bound);
                num("confidence", *confidence);
                num("crossed", f64::from(*crossed));
                num("total", f64::from(*total));
                num("held", f64::from(*held));
                num("needed", f64::from(*needed));
                num("periods", f64::from(*periods));
                if let Some(k) = set_to {
                    num("set_to", f64::from(*k));
                }
                let rule = match direction {
                    Direction::Hold => ReasonRule::Strategy,
                    _ if *below_min_confidence => ReasonRule::Confidence,
                    _ if held < needed => ReasonRule::Datapoints,
                    _ => ReasonRule::Strategy,
                };
                (rule, Some(*current))
            }
            Reason::Schedule { min, max, .. } => {
                if let Some(m) = min {
                    num("min", f64::from(*m));
                }
                if let Some(m) = max {
                    num("max", f64::from(*m));
                }
                (ReasonRule::Strategy, None)
            }
            Reason::Missing { problem, .. } => match problem {
                MetricProblem::Invalid(v) => {
                    // Non-finite values cannot be numbers in JSON; the text names them.
                    num("value", *v);
                    (ReasonRule::HoldInvalidMetric, None)
                }
                _ => (ReasonRule::HoldMissingMetric, None),
            },
            Reason::Predictive(o) => {
                num("observed", o.observed);
                num("estimate", o.estimate);
                num("provision", o.provision);
                num("capacity", o.capacity);
                num("sigma", o.sigma);
                if let Some(k) = o.k {
                    num("k", k);
                }
                num("forecast_replicas", f64::from(o.forecast_replicas));
                num("floor_replicas", f64::from(o.floor_replicas));
                (ReasonRule::Strategy, None)
            }
        };
        r.rule = rule;
        r.from = from;
        r
    }
}

/// A reason as data, for APIs: what rule spoke, the count before and after, the numbers it
/// used, and the same text as the prose fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StructuredReason {
    pub rule: ReasonRule,
    /// The strategy that gave it (`target_tracking`, `threshold`, …); absent for behavior rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<&'static str>,
    /// The count the rule started from (a strategy: the current count, when it uses it).
    pub from: Option<u32>,
    /// The count the rule asked for (`None`: no opinion).
    pub to: Option<u32>,
    pub numbers: BTreeMap<String, f64>,
    pub text: String,
}

/// What a structured reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonRule {
    /// A strategy's recommendation.
    Strategy,
    /// Target tracking held: the ratio is inside the tolerance band.
    Tolerance,
    /// A threshold crossing whose confidence is below `min_confidence`: held.
    Confidence,
    /// A threshold crossing that has not yet held in N of the last M evaluations: held.
    Datapoints,
    /// A metric the strategy needs is missing or failed: no opinion.
    HoldMissingMetric,
    /// A metric the strategy needs has an invalid value (negative, NaN): no opinion.
    HoldInvalidMetric,
    MissingData,
    Fallback,
    OutOfBounds,
    Stabilization,
    BusinessHours,
    RateLimit,
    MaxStep,
    Cooldown,
    /// Raised to the minimum (group, target limits and schedules).
    Min,
    /// Lowered to the maximum.
    Max,
    Budget,
}

fn display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Why a strategy recommended what it did.
#[derive(Debug, Clone)]
pub enum Reason {
    TargetTracking {
        metric: Arc<str>,
        value: f64,
        target: f64,
        per_replica: bool,
        current: u32,
        /// Replicas the value form scales: ready ones (current when none is ready).
        base: u32,
        ratio: f64,
        tolerance: f64,
        within_tolerance: bool,
        desired: u32,
    },
    Threshold {
        direction: Direction,
        confidence: f64,
        crossed: u32,
        total: u32,
        /// The metric furthest past its bound (or nearest to it when holding).
        metric: Arc<str>,
        aggregation: &'static str,
        value: f64,
        bound: f64,
        current: u32,
        desired: u32,
        below_min_confidence: bool,
        /// Evaluations of the last `periods` where this direction's condition held.
        held: u32,
        /// How many of them it takes to act ("N of M"; 1 of 1 by default).
        needed: u32,
        periods: u32,
        set_to: Option<u32>,
    },
    Schedule {
        active: Vec<Arc<str>>,
        min: Option<u32>,
        max: Option<u32>,
        zone: Arc<str>,
    },
    Missing {
        metric: Arc<str>,
        problem: crate::observation::MetricProblem,
    },
    /// Boxed: it is much larger than the other reasons.
    Predictive(Box<crate::strategy::Outlook>),
}

/// Which way a threshold strategy voted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Hold,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::TargetTracking {
                metric,
                value,
                target,
                per_replica,
                current,
                base,
                ratio,
                tolerance,
                within_tolerance,
                desired,
            } => {
                if *per_replica {
                    write!(
                        f,
                        "{metric}={value:.3} for {current} replicas, target {target} per replica: ratio {ratio:.3}"
                    )?;
                } else {
                    write!(f, "{metric}={value:.3}, target {target}: ratio {ratio:.3}")?;
                }
                if *within_tolerance {
                    write!(f, " within tolerance ±{tolerance}: keep {current}")
                } else if *per_replica {
                    write!(f, " → ceil({value:.3}/{target}) = {desired}")
                } else if *current == 0 {
                    write!(
                        f,
                        " → from 0 replicas: ceil({value:.3}/{target}) = {desired}"
                    )
                } else {
                    write!(f, " → ceil({base} ready×{value:.3}/{target}) = {desired}")
                }
            }
            Reason::Threshold {
                direction,
                confidence,
                crossed,
                total,
                metric,
                aggregation,
                value,
                bound,
                current,
                desired,
                below_min_confidence,
                held,
                needed,
                periods,
                set_to,
            } => match direction {
                // Bounds are strict (see strategy::threshold): the text says so, since both
                // conventions are common (Nomad's lower bound is inclusive).
                Direction::Hold => write!(
                    f,
                    "all {total} metrics inside their bounds, bounds included ({aggregation} {metric}={value:.3}): keep {current}"
                ),
                Direction::Up | Direction::Down => {
                    let (word, cmp) = if *direction == Direction::Up {
                        ("above upper", ">")
                    } else {
                        ("below lower", "<")
                    };
                    write!(
                        f,
                        "{crossed} of {total} metrics {word} ({aggregation} {metric}={value:.3} {cmp} {bound}, strict), confidence {confidence:.2}"
                    )?;
                    if *below_min_confidence {
                        return write!(f, " below min_confidence: keep {current}");
                    }
                    if *periods > 1 {
                        write!(f, ", held in {held} of the last {periods} evaluations")?;
                    }
                    if held < needed {
                        return write!(f, ", needs {needed}: keep {current}");
                    }
                    if let Some(k) = set_to {
                        write!(f, ", set_to {k}")?;
                    }
                    write!(f, ": {current} → {desired}")
                }
            },
            Reason::Schedule {
                active,
                min,
                max,
                zone,
            } => {
                if active.is_empty() {
                    return write!(f, "no window active ({zone})");
                }
                write!(f, "active ({zone}): ")?;
                for (i, w) in active.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{w}")?;
                }
                match (min, max) {
                    (Some(a), Some(b)) if a == b => write!(f, "; pin {a}"),
                    (Some(a), Some(b)) => write!(f, "; min {a}, max {b}"),
                    (Some(a), None) => write!(f, "; min {a}"),
                    (None, Some(b)) => write!(f, "; max {b}"),
                    (None, None) => Ok(()),
                }
            }
            Reason::Missing { metric, problem } => match problem {
                MetricProblem::Failed(e) => write!(f, "metric {metric} failed: {e}"),
                MetricProblem::Missing => write!(f, "metric {metric} is missing"),
                MetricProblem::Invalid(v) => {
                    let why = if v.is_finite() {
                        "negative"
                    } else {
                        "not a finite number"
                    };
                    write!(
                        f,
                        "metric {metric} has an invalid value {v} ({why}): counts as missing"
                    )
                }
            },
            Reason::Predictive(o) => o.fmt(f),
        }
    }
}

/// A behavior rule that changed the count.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    pub rule: Rule,
    pub from: u32,
    pub to: u32,
    pub detail: String,
    /// The numbers behind `detail`, for [`StructuredReason`]; not serialized here, so that
    /// `limits` keeps its shape.
    #[serde(skip)]
    pub numbers: Vec<(&'static str, f64)>,
}

impl Limit {
    fn structured(&self) -> StructuredReason {
        let rule = match self.rule {
            Rule::MissingData => ReasonRule::MissingData,
            Rule::Fallback => ReasonRule::Fallback,
            Rule::OutOfBounds => ReasonRule::OutOfBounds,
            Rule::Stabilization => ReasonRule::Stabilization,
            Rule::BusinessHours => ReasonRule::BusinessHours,
            Rule::RateLimit => ReasonRule::RateLimit,
            Rule::MaxStep => ReasonRule::MaxStep,
            Rule::Cooldown => ReasonRule::Cooldown,
            Rule::MinMax if self.to > self.from => ReasonRule::Min,
            Rule::MinMax => ReasonRule::Max,
            Rule::Budget => ReasonRule::Budget,
        };
        StructuredReason {
            rule,
            strategy: None,
            from: Some(self.from),
            to: Some(self.to),
            numbers: self
                .numbers
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            text: self.detail.clone(),
        }
    }
}

/// The behavior rules, in the order they apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Missing/failed metrics: hold instead of scaling down.
    MissingData,
    /// Metrics failed too many times in a row: go to the fallback count.
    Fallback,
    /// The current count is outside the bounds: move straight to the nearest bound.
    OutOfBounds,
    Stabilization,
    /// Outside the allowed business hours: hold.
    BusinessHours,
    RateLimit,
    MaxStep,
    Cooldown,
    /// Clamped to min/max (group, target limits and schedules).
    MinMax,
    /// A budget (the group's or the global one) caps the count.
    Budget,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::MissingData => "missing_data",
            Rule::Fallback => "fallback",
            Rule::BusinessHours => "business_hours",
            Rule::OutOfBounds => "out_of_bounds",
            Rule::Stabilization => "stabilization",
            Rule::RateLimit => "rate_limit",
            Rule::MaxStep => "max_step",
            Rule::Cooldown => "cooldown",
            Rule::MinMax => "min_max",
            Rule::Budget => "budget",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_maps_to_a_structured_rule() {
        let limit = |rule, from, to| Limit {
            rule,
            from,
            to,
            detail: format!("{rule}"),
            numbers: vec![("n", 1.0)],
        };
        let d = Decision {
            group: "g".into(),
            at: Timestamp::UNIX_EPOCH,
            current_replicas: 4,
            ready_replicas: 4,
            recommended_replicas: None,
            desired_replicas: 4,
            scale: false,
            dry_run: false,
            min: 1,
            max: 10,
            strategies: vec![],
            limits: vec![
                limit(Rule::MissingData, 2, 4),
                limit(Rule::Fallback, 4, 9),
                limit(Rule::OutOfBounds, 12, 10),
                limit(Rule::BusinessHours, 9, 4),
                limit(Rule::MaxStep, 9, 6),
                limit(Rule::MinMax, 0, 1),
                limit(Rule::MinMax, 12, 10),
                limit(Rule::Budget, 10, 4),
            ],
            limited_by: Some(Rule::Budget),
        };
        let v = serde_json::to_value(&d).unwrap();
        let rules: Vec<&str> = v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rule"].as_str().unwrap())
            .collect();
        assert_eq!(
            rules,
            [
                "missing_data",
                "fallback",
                "out_of_bounds",
                "business_hours",
                "max_step",
                "min",
                "max",
                "budget"
            ]
        );
        assert_eq!(v["reasons"][7]["text"], "budget");
        assert_eq!(v["reasons"][7]["numbers"]["n"], 1.0);
        assert_eq!(v["reasons"][7]["from"], 10);
    }
}
