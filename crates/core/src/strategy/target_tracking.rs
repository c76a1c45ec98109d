//! Target tracking: keep a metric at a target, like the Kubernetes HPA.
//!
//! Value form: desired = ceil(ready × value / target) (e.g. utilization 70 %): the value is an
//! average over the ready replicas, so it scales the ready count (as the HPA does for resource
//! metrics); with no replica ready yet it scales the current count, and from zero replicas it
//! goes to ceil(value / target) (the HPA's external Value target, Nomad's target-value).
//! Per-replica form: desired = ceil(total / target_per_replica) (e.g. 50 req/s per instance;
//! the seeds' "QPS per instance" dynamic mode). Inside the tolerance band nothing changes; a
//! ratio exactly on the band's edge is inside it.

use std::sync::Arc;

use crate::decision::{Reason, StrategyOutcome};
use crate::observation::Observation;

/// Slack on the tolerance band's edges: far below any meaningful tolerance, far above the
/// rounding error of one division and one subtraction of ratios near 1.
const EDGE_SLACK: f64 = 1e-9;

#[derive(Debug, Clone)]
pub struct TargetTracking {
    pub metric: Arc<str>,
    pub goal: Goal,
    /// Relative band above the target tolerated before scaling up.
    pub tolerance_up: f64,
    /// Relative band below the target tolerated before scaling down.
    pub tolerance_down: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    Value(f64),
    PerReplica(f64),
}

impl TargetTracking {
    pub fn evaluate(&self, obs: &Observation, current: u32) -> StrategyOutcome {
        let value = match obs.metric_value(&self.metric) {
            Ok(v) => v,
            Err(problem) => {
                return StrategyOutcome {
                    kind: "target_tracking",
                    replicas: None,
                    missing_data: true,
                    reason: Reason::Missing {
                        metric: self.metric.clone(),
                        problem,
                    },
                };
            }
        };
        let base = obs.ready_replicas.filter(|r| *r > 0).unwrap_or(current);
        // From zero the value form has no count to multiply (0 × ratio stays 0 forever): like
        // the HPA's external Value targets and Nomad's target-value, go to ceil(ratio), so a
        // group scaled to zero comes back on its own metric. No tolerance band there either:
        // at the target, one replica is needed, not "keep 0".
        let from_zero = current == 0 && matches!(self.goal, Goal::Value(_));
        let (target, per_replica, ratio, raw) = match self.goal {
            Goal::Value(target) => {
                let ratio = value / target;
                let raw = if from_zero {
                    ratio
                } else {
                    base as f64 * ratio
                };
                (target, false, ratio, raw)
            }
            Goal::PerReplica(target) => {
                let ratio = if current == 0 {
                    if value > 0.0 { f64::INFINITY } else { 1.0 }
                } else {
                    value / (target * current as f64)
                };
                (target, true, ratio, value / target)
            }
        };
        // A ratio exactly on the band's edge keeps the count (HPA ≥ 1.33, Nomad), but 1 − 0.99
        // is 0.010000000000000009 in f64: without the slack, the edge decides by rounding.
        let (within, tolerance) = if ratio >= 1.0 {
            (
                ratio - 1.0 <= self.tolerance_up + EDGE_SLACK,
                self.tolerance_up,
            )
        } else {
            (
                1.0 - ratio <= self.tolerance_down + EDGE_SLACK,
                self.tolerance_down,
            )
        };
        let within = within && !from_zero;
        let computed = raw.max(0.0).ceil().min(u32::MAX as f64) as u32;
        // Never against the metric's direction: replicas still starting make `ready × ratio`
        // smaller than `current` even when overloaded, which must not read as "scale down".
        let desired = if from_zero {
            computed
        } else if within {
            current
        } else if ratio > 1.0 {
            computed.max(current)
        } else {
            computed.min(current)
        };
        StrategyOutcome {
            kind: "target_tracking",
            replicas: Some(desired),
            missing_data: false,
            reason: Reason::TargetTracking {
                metric: self.metric.clone(),
                value,
                target,
                per_replica,
                current,
                base,
                ratio,
                tolerance,
                within_tolerance: within,
                desired,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tt(goal: Goal) -> TargetTracking {
        TargetTracking {
            metric: "m".into(),
            goal,
            tolerance_up: 0.1,
            tolerance_down: 0.1,
        }
    }

    fn obs(v: f64) -> Observation {
        let mut o = Observation::default();
        o.metrics.insert("m".into(), v);
        o
    }

    #[test]
    fn value_form_scales_proportionally() {
        let s = tt(Goal::Value(70.0));
        assert_eq!(s.evaluate(&obs(140.0), 4).replicas, Some(8));
        assert_eq!(s.evaluate(&obs(35.0), 4).replicas, Some(2));
        assert_eq!(s.evaluate(&obs(75.0), 4).replicas, Some(4)); // ratio 1.07: inside the band
        // The value is an average over ready replicas: 2 ready at 140 % of target → 4.
        let mut o = obs(140.0);
        o.ready_replicas = Some(2);
        assert_eq!(s.evaluate(&o, 4).replicas, Some(4));
        // Overloaded while 8 of 10 are starting: hold, never scale down.
        let mut o = obs(100.0);
        o.ready_replicas = Some(2);
        assert_eq!(s.evaluate(&o, 10).replicas, Some(10));
        // Underloaded with few ready: never scale up.
        let mut o = obs(35.0);
        o.ready_replicas = Some(9);
        assert_eq!(s.evaluate(&o, 4).replicas, Some(4));
    }

    #[test]
    fn per_replica_form_divides_the_total() {
        let s = tt(Goal::PerReplica(50.0));
        assert_eq!(s.evaluate(&obs(1001.0), 3).replicas, Some(21));
        assert_eq!(s.evaluate(&obs(160.0), 3).replicas, Some(3)); // ratio 1.067
        assert_eq!(s.evaluate(&obs(120.0), 0).replicas, Some(3)); // scale from zero
        assert_eq!(s.evaluate(&obs(0.0), 0).replicas, Some(0));
    }

    #[test]
    fn per_direction_tolerance() {
        let mut s = tt(Goal::Value(100.0));
        s.tolerance_down = 0.5;
        assert_eq!(s.evaluate(&obs(60.0), 10).replicas, Some(10));
        assert_eq!(s.evaluate(&obs(111.0), 10).replicas, Some(12));
    }

    #[test]
    fn value_form_scales_from_zero_on_its_own_metric() {
        let s = tt(Goal::Value(70.0));
        // Like the HPA's external Value target and Nomad's target-value: ceil(value / target).
        let out = s.evaluate(&obs(140.0), 0);
        assert_eq!(out.replicas, Some(2));
        assert_eq!(
            out.reason.to_string(),
            "m=140.000, target 70: ratio 2.000 → from 0 replicas: ceil(140.000/70) = 2"
        );
        // At the target from zero: one replica, not "within tolerance, keep 0".
        assert_eq!(s.evaluate(&obs(70.0), 0).replicas, Some(1));
        assert_eq!(s.evaluate(&obs(1.0), 0).replicas, Some(1));
        assert_eq!(s.evaluate(&obs(0.0), 0).replicas, Some(0));
        // Unchanged from a non-zero count.
        assert_eq!(s.evaluate(&obs(140.0), 1).replicas, Some(2));
    }

    #[test]
    fn ratio_exactly_on_the_tolerance_edge_holds() {
        // 1 − 0.99 = 0.010000000000000009 in floating point: it must still read as 0.01.
        let mut s = tt(Goal::Value(100.0));
        s.tolerance_down = 0.01;
        let out = s.evaluate(&obs(99.0), 200);
        assert_eq!(out.replicas, Some(200), "{}", out.reason);
        assert!(out.reason.to_string().contains("within tolerance"));
        // 1.1 / 1 − 1 = 0.10000000000000009 > 0.1.
        let s = tt(Goal::Value(1.0));
        let out = s.evaluate(&obs(1.1), 10);
        assert_eq!(out.replicas, Some(10), "{}", out.reason);
        // Per-replica form: 110 over 10 replicas at 10 each is 1.1 exactly on the edge.
        let s = tt(Goal::PerReplica(10.0));
        assert_eq!(s.evaluate(&obs(110.0), 10).replicas, Some(10));
        // Just past the edge still acts.
        let s = tt(Goal::Value(1.0));
        assert_eq!(s.evaluate(&obs(1.1001), 10).replicas, Some(12));
    }

    #[test]
    fn missing_metric_has_no_opinion() {
        let s = tt(Goal::Value(70.0));
        let out = s.evaluate(&Observation::default(), 4);
        assert!(out.missing_data);
        assert_eq!(out.replicas, None);
        assert_eq!(out.reason.to_string(), "metric m is missing");
    }
}
