//! Threshold (step) scaling over several metrics with a confidence score.
//!
//! Any metric above its upper bound votes up; scaling down needs every metric that has a lower
//! bound to be below it. The confidence (0..1) weighs how many metrics crossed and how far:
//! a metric just past its bound counts half its weight, one 25 % or more past it counts fully.
//!
//! Bounds are strict: a value equal to `upper` or `lower` does not cross it, so the band kept
//! is [lower, upper] with both ends included. (Nomad's threshold tiers include their lower
//! bound; ours never triggers on equality in either direction.)
//!
//! "N of M": with `datapoints_to_alarm` N and `evaluation_periods` M, a direction acts only
//! when its condition (a crossing with enough confidence) held in at least N of the last M
//! evaluations, this one included, and holds now: unlike a CloudWatch alarm, a condition that
//! has just cleared never acts on the strength of older datapoints.

use std::collections::VecDeque;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::decision::{Direction, Reason, StrategyOutcome};
use crate::observation::Observation;
use crate::state::{Datapoint, Sample};

#[derive(Debug, Clone)]
pub struct Threshold {
    pub metrics: Vec<ThresholdMetric>,
    pub scale_up_by: Step,
    pub scale_down_by: Step,
    pub min_confidence: f64,
    /// N of "N of M": at least 1, at most `evaluation_periods`.
    pub datapoints_to_alarm: u32,
    /// M of "N of M": 1 keeps no history.
    pub evaluation_periods: u32,
    /// Scale to exactly this count while a condition holds, instead of stepping.
    pub set_to: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct ThresholdMetric {
    pub metric: Arc<str>,
    pub aggregation: Aggregation,
    pub window: SignedDuration,
    pub upper: Option<f64>,
    pub lower: Option<f64>,
    pub weight: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Avg,
    Max,
    P95,
}

impl Aggregation {
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Avg => "avg",
            Aggregation::Max => "max",
            Aggregation::P95 => "p95",
        }
    }
}

/// A step size: replicas, or a percentage of the current count (rounded up, at least 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Count(u32),
    Percent(f64),
}

impl Step {
    pub fn of(self, current: u32) -> u32 {
        match self {
            Step::Count(n) => n,
            Step::Percent(p) => ((current as f64 * p / 100.0).ceil() as u32).max(1),
        }
    }
}

/// How far past its bound a metric is, as a weight factor in [0.5, 1].
fn severity(value: f64, bound: f64) -> f64 {
    let excess = (value - bound).abs() / bound.abs().max(f64::MIN_POSITIVE);
    0.5 + 0.5 * (excess / 0.25).min(1.0)
}

fn aggregate(agg: Aggregation, samples: &VecDeque<Sample>, since: Timestamp) -> Option<f64> {
    let vals = samples.iter().filter(|s| s.at > since).map(|s| s.value);
    match agg {
        Aggregation::Avg => {
            let (sum, n) = vals.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
            (n > 0).then(|| sum / n as f64)
        }
        Aggregation::Max => vals.reduce(f64::max),
        Aggregation::P95 => {
            let mut v: Vec<f64> = vals.collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            // Nearest-rank percentile.
            let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
            Some(v[rank - 1])
        }
    }
}

struct Crossing {
    metric: Arc<str>,
    aggregation: &'static str,
    value: f64,
    bound: f64,
    severity: f64,
}

impl Threshold {
    pub fn evaluate(
        &self,
        obs: &Observation,
        history: &std::collections::BTreeMap<String, VecDeque<Sample>>,
        datapoints: &mut VecDeque<Datapoint>,
        current: u32,
        now: Timestamp,
    ) -> StrategyOutcome {
        let total_weight: f64 = self.metrics.iter().map(|m| m.weight).sum();
        let mut up_score = 0.0;
        let mut down_score = 0.0;
        let (mut up_n, mut down_n, mut lower_n) = (0u32, 0u32, 0u32);
        let mut top_up: Option<Crossing> = None;
        let mut top_down: Option<Crossing> = None;
        let mut missing: Option<(Arc<str>, crate::observation::MetricProblem)> = None;
        let mut nearest: Option<(Arc<str>, &'static str, f64)> = None;
        for m in &self.metrics {
            let value = if m.window.is_zero() {
                obs.metric(&m.metric)
            } else if obs.metric(&m.metric).is_none() {
                None
            } else {
                history
                    .get(&*m.metric)
                    .and_then(|h| aggregate(m.aggregation, h, crate::time::before(now, m.window)))
            };
            let Some(value) = value else {
                missing.get_or_insert_with(|| (m.metric.clone(), obs.problem(&m.metric)));
                continue;
            };
            nearest.get_or_insert_with(|| (m.metric.clone(), m.aggregation.name(), value));
            if let Some(upper) = m.upper.filter(|u| value > *u) {
                let sev = severity(value, upper);
                up_score += m.weight * sev;
                up_n += 1;
                if top_up.as_ref().is_none_or(|c| sev > c.severity) {
                    top_up = Some(Crossing {
                        metric: m.metric.clone(),
                        aggregation: m.aggregation.name(),
                        value,
                        bound: upper,
                        severity: sev,
                    });
                }
            }
            if let Some(lower) = m.lower {
                lower_n += 1;
                if value < lower {
                    let sev = severity(value, lower);
                    down_score += m.weight * sev;
                    down_n += 1;
                    if top_down.as_ref().is_none_or(|c| sev > c.severity) {
                        top_down = Some(Crossing {
                            metric: m.metric.clone(),
                            aggregation: m.aggregation.name(),
                            value,
                            bound: lower,
                            severity: sev,
                        });
                    }
                }
            }
        }
        let total = self.metrics.len() as u32;
        let crossing = if let Some(c) = top_up {
            Some((Direction::Up, c, up_n, up_score))
        } else if missing.is_some() {
            None
        } else {
            top_down
                .filter(|_| down_n == lower_n)
                .map(|c| (Direction::Down, c, down_n, down_score))
        };
        let confidence = crossing.as_ref().map_or(0.0, |c| c.3 / total_weight);
        let below = confidence < self.min_confidence;
        let holds = |d| crossing.as_ref().is_some_and(|c| c.0 == d) && !below;
        let held = self.remember(
            datapoints,
            Datapoint {
                at: now,
                up: holds(Direction::Up),
                down: holds(Direction::Down),
            },
        );
        // Up is the safe direction: it may act on the metrics that did arrive.
        if let Some((direction, crossing, crossed, _)) = crossing {
            let held = if direction == Direction::Up {
                held.0
            } else {
                held.1
            };
            let act = !below && held >= self.datapoints_to_alarm;
            let desired = match (act, self.set_to, direction) {
                (false, _, _) => current,
                (true, Some(k), _) => k,
                (true, None, Direction::Up) => current.saturating_add(self.scale_up_by.of(current)),
                (true, None, _) => current.saturating_sub(self.scale_down_by.of(current)),
            };
            return StrategyOutcome {
                kind: "threshold",
                replicas: Some(desired),
                missing_data: missing.is_some(),
                reason: Reason::Threshold {
                    direction,
                    confidence,
                    crossed,
                    total,
                    metric: crossing.metric,
                    aggregation: crossing.aggregation,
                    value: crossing.value,
                    bound: crossing.bound,
                    current,
                    desired,
                    below_min_confidence: below,
                    held,
                    needed: self.datapoints_to_alarm,
                    periods: self.evaluation_periods,
                    set_to: self.set_to,
                },
            };
        }
        if let Some((metric, problem)) = missing {
            return StrategyOutcome {
                kind: "threshold",
                replicas: None,
                missing_data: true,
                reason: Reason::Missing { metric, problem },
            };
        }
        let (metric, aggregation, value) = nearest.unwrap_or_else(|| ("".into(), "avg", f64::NAN));
        StrategyOutcome {
            kind: "threshold",
            replicas: Some(current),
            missing_data: false,
            reason: Reason::Threshold {
                direction: Direction::Hold,
                confidence: 0.0,
                crossed: 0,
                total,
                metric,
                aggregation,
                value,
                bound: f64::NAN,
                current,
                desired: current,
                below_min_confidence: false,
                held: 0,
                needed: self.datapoints_to_alarm,
                periods: self.evaluation_periods,
                set_to: self.set_to,
            },
        }
    }

    /// Record this evaluation's verdict and count, over the last `evaluation_periods`, those
    /// where the up and the down condition held.
    fn remember(&self, datapoints: &mut VecDeque<Datapoint>, now: Datapoint) -> (u32, u32) {
        // 1 of 1, the default: nothing to remember, and no allocation on the simulator's path.
        if self.evaluation_periods <= 1 {
            datapoints.clear();
            return (u32::from(now.up), u32::from(now.down));
        }
        // A second evaluation at the same instant (a retry) replaces the first: M counts
        // evaluations in time, not calls.
        if datapoints.back().is_some_and(|d| d.at >= now.at) {
            datapoints.pop_back();
        }
        datapoints.push_back(now);
        while datapoints.len() > self.evaluation_periods as usize {
            datapoints.pop_front();
        }
        datapoints.iter().fold((0, 0), |(u, d), p| {
            (u + u32::from(p.up), d + u32::from(p.down))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn metric(name: &str, upper: f64, lower: f64) -> ThresholdMetric {
        ThresholdMetric {
            metric: name.into(),
            aggregation: Aggregation::Avg,
            window: SignedDuration::ZERO,
            upper: Some(upper),
            lower: Some(lower),
            weight: 1.0,
        }
    }

    fn strategy() -> Threshold {
        Threshold {
            metrics: vec![metric("cpu", 80.0, 30.0), metric("latency_p95", 0.5, 0.1)],
            scale_up_by: Step::Count(2),
            scale_down_by: Step::Percent(25.0),
            min_confidence: 0.0,
            datapoints_to_alarm: 1,
            evaluation_periods: 1,
            set_to: None,
        }
    }

    fn obs(cpu: f64, lat: f64) -> Observation {
        let mut o = Observation::default();
        o.metrics.insert("cpu".into(), cpu);
        o.metrics.insert("latency_p95".into(), lat);
        o
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    #[test]
    fn any_upper_crossing_scales_up() {
        let out = strategy().evaluate(
            &obs(90.0, 0.2),
            &BTreeMap::new(),
            &mut VecDeque::new(),
            4,
            now(),
        );
        assert_eq!(out.replicas, Some(6));
        let text = out.reason.to_string();
        assert!(text.contains("1 of 2 metrics above upper"), "{text}");
    }

    #[test]
    fn down_needs_every_lower_crossed() {
        let s = strategy();
        assert_eq!(
            s.evaluate(
                &obs(20.0, 0.2),
                &BTreeMap::new(),
                &mut VecDeque::new(),
                8,
                now()
            )
            .replicas,
            Some(8)
        );
        assert_eq!(
            s.evaluate(
                &obs(20.0, 0.05),
                &BTreeMap::new(),
                &mut VecDeque::new(),
                8,
                now()
            )
            .replicas,
            Some(6)
        );
    }

    #[test]
    fn confidence_grows_with_crossings() {
        let mut s = strategy();
        s.min_confidence = 0.6;
        // One metric barely over: confidence 0.25 → hold.
        let out = s.evaluate(
            &obs(81.0, 0.2),
            &BTreeMap::new(),
            &mut VecDeque::new(),
            4,
            now(),
        );
        assert_eq!(out.replicas, Some(4));
        // Both far over: confidence 1.0 → act.
        let out = s.evaluate(
            &obs(120.0, 2.0),
            &BTreeMap::new(),
            &mut VecDeque::new(),
            4,
            now(),
        );
        assert_eq!(out.replicas, Some(6));
    }

    #[test]
    fn missing_metric_never_scales_down_but_may_scale_up() {
        let s = strategy();
        let mut o = Observation::default();
        o.metrics.insert("cpu".into(), 10.0);
        assert_eq!(
            s.evaluate(&o, &BTreeMap::new(), &mut VecDeque::new(), 8, now())
                .replicas,
            None
        );
        o.metrics.insert("cpu".into(), 95.0);
        assert_eq!(
            s.evaluate(&o, &BTreeMap::new(), &mut VecDeque::new(), 8, now())
                .replicas,
            Some(10)
        );
    }

    #[test]
    fn n_of_m_needs_enough_recent_crossings() {
        let mut s = strategy();
        s.datapoints_to_alarm = 2;
        s.evaluation_periods = 3;
        let mut dp = VecDeque::new();
        let h = BTreeMap::new();
        let at = |i: i64| now() + SignedDuration::from_secs(15 * i);
        let out = s.evaluate(&obs(90.0, 0.2), &h, &mut dp, 4, at(0));
        assert_eq!(out.replicas, Some(4));
        assert_eq!(
            out.reason.to_string(),
            "1 of 2 metrics above upper (avg cpu=90.000 > 80, strict), confidence 0.38, \
             held in 1 of the last 3 evaluations, needs 2: keep 4"
        );
        assert_eq!(
            s.evaluate(&obs(50.0, 0.2), &h, &mut dp, 4, at(1)).replicas,
            Some(4)
        );
        // 2 of the last 3 (over, inside, over): act.
        let out = s.evaluate(&obs(90.0, 0.2), &h, &mut dp, 4, at(2));
        assert_eq!(out.replicas, Some(6), "{}", out.reason);
        assert!(
            out.reason
                .to_string()
                .contains("held in 2 of the last 3 evaluations: 4 → 6")
        );
        // Over at 0 has left the window: inside, over, over → still 2 of 3.
        assert_eq!(
            s.evaluate(&obs(90.0, 0.2), &h, &mut dp, 6, at(3)).replicas,
            Some(8)
        );
        assert_eq!(dp.len(), 3);
        // Two in the window, but the condition has cleared now: no action on old datapoints.
        assert_eq!(
            s.evaluate(&obs(50.0, 0.2), &h, &mut dp, 8, at(4)).replicas,
            Some(8)
        );
        // A retry at the same instant replaces the datapoint instead of adding one.
        s.evaluate(&obs(50.0, 0.2), &h, &mut dp, 8, at(4));
        assert_eq!(dp.len(), 3);
    }

    #[test]
    fn set_to_scales_to_exactly_k_while_the_condition_holds() {
        let mut s = strategy();
        s.set_to = Some(10);
        let h = BTreeMap::new();
        let out = s.evaluate(&obs(90.0, 0.2), &h, &mut VecDeque::new(), 4, now());
        assert_eq!(out.replicas, Some(10));
        assert!(
            out.reason.to_string().ends_with(", set_to 10: 4 → 10"),
            "{}",
            out.reason
        );
        assert_eq!(
            s.evaluate(&obs(50.0, 0.2), &h, &mut VecDeque::new(), 4, now())
                .replicas,
            Some(4)
        );
    }

    #[test]
    fn bounds_are_strict_and_say_so() {
        let s = strategy();
        let h = BTreeMap::new();
        // Exactly at the upper bound, and exactly at both lower bounds: no crossing.
        let out = s.evaluate(&obs(80.0, 0.2), &h, &mut VecDeque::new(), 4, now());
        assert_eq!(out.replicas, Some(4));
        assert_eq!(
            out.reason.to_string(),
            "all 2 metrics inside their bounds, bounds included (avg cpu=80.000): keep 4"
        );
        let out = s.evaluate(&obs(30.0, 0.1), &h, &mut VecDeque::new(), 8, now());
        assert_eq!(out.replicas, Some(8));
        let out = s.evaluate(&obs(29.0, 0.05), &h, &mut VecDeque::new(), 8, now());
        assert!(
            out.reason.to_string().contains("< 0.1, strict)"),
            "{}",
            out.reason
        );
    }

    #[test]
    fn window_aggregations() {
        let mut h = VecDeque::new();
        for (i, v) in [10.0, 50.0, 90.0, 20.0].iter().enumerate() {
            h.push_back(Sample {
                at: now() - SignedDuration::from_secs(60 * (3 - i as i64)),
                value: *v,
            });
        }
        let since = now() - SignedDuration::from_secs(150);
        assert_eq!(aggregate(Aggregation::Avg, &h, since), Some(160.0 / 3.0));
        assert_eq!(aggregate(Aggregation::Max, &h, since), Some(90.0));
        assert_eq!(aggregate(Aggregation::P95, &h, since), Some(90.0));
        assert_eq!(aggregate(Aggregation::Avg, &h, now()), None);
    }
}
