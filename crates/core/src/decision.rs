//! The result of one evaluation: what to do and why.
//!
//! Reasons are kept as data and only rendered to text when shown or stored, so that a
//! decision costs no string formatting on the simulator's hot path.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use crate::observation::MetricProblem;

/// One evaluation's outcome.
#[derive(Debug, Clone, Serialize)]
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

impl Decision {
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
