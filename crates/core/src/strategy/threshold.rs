//! Threshold (step) scaling over several metrics with a confidence score.
//!
//! Any metric above its upper bound votes up; scaling down needs every metric that has a lower
//! bound to be below it. The confidence (0..1) weighs how many metrics crossed and how far:
//! a metric exactly at its bound counts half its weight, one 25 % or more past it counts fully.

use std::collections::VecDeque;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::decision::{Direction, Reason, StrategyOutcome};
use crate::observation::Observation;
use crate::state::Sample;

#[derive(Debug, Clone)]
pub struct Threshold {
    pub metrics: Vec<ThresholdMetric>,
    pub scale_up_by: Step,
    pub scale_down_by: Step,
    pub min_confidence: f64,
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
        let outcome = |direction, crossing: Crossing, crossed, score: f64| {
            let confidence = score / total_weight;
            let below = confidence < self.min_confidence;
            let desired = match (direction, below) {
                (_, true) => current,
                (Direction::Up, _) => current.saturating_add(self.scale_up_by.of(current)),
                _ => current.saturating_sub(self.scale_down_by.of(current)),
            };
            StrategyOutcome {
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
                },
            }
        };
        // Up is the safe direction: it may act on the metrics that did arrive.
        if let Some(c) = top_up {
            return outcome(Direction::Up, c, up_n, up_score);
        }
        if let Some((metric, problem)) = missing {
            return StrategyOutcome {
                kind: "threshold",
                replicas: None,
                missing_data: true,
                reason: Reason::Missing { metric, problem },
            };
        }
        if let Some(c) = top_down.filter(|_| down_n == lower_n) {
            return outcome(Direction::Down, c, down_n, down_score);
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
            },
        }
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
        let out = strategy().evaluate(&obs(90.0, 0.2), &BTreeMap::new(), 4, now());
        assert_eq!(out.replicas, Some(6));
        let text = out.reason.to_string();
        assert!(text.contains("1 of 2 metrics above upper"), "{text}");
    }

    #[test]
    fn down_needs_every_lower_crossed() {
        let s = strategy();
        assert_eq!(
            s.evaluate(&obs(20.0, 0.2), &BTreeMap::new(), 8, now())
                .replicas,
            Some(8)
        );
        assert_eq!(
            s.evaluate(&obs(20.0, 0.05), &BTreeMap::new(), 8, now())
                .replicas,
            Some(6)
        );
    }

    #[test]
    fn confidence_grows_with_crossings() {
        let mut s = strategy();
        s.min_confidence = 0.6;
        // One metric barely over: confidence 0.25 → hold.
        let out = s.evaluate(&obs(81.0, 0.2), &BTreeMap::new(), 4, now());
        assert_eq!(out.replicas, Some(4));
        // Both far over: confidence 1.0 → act.
        let out = s.evaluate(&obs(120.0, 2.0), &BTreeMap::new(), 4, now());
        assert_eq!(out.replicas, Some(6));
    }

    #[test]
    fn missing_metric_never_scales_down_but_may_scale_up() {
        let s = strategy();
        let mut o = Observation::default();
        o.metrics.insert("cpu".into(), 10.0);
        assert_eq!(s.evaluate(&o, &BTreeMap::new(), 8, now()).replicas, None);
        o.metrics.insert("cpu".into(), 95.0);
        assert_eq!(
            s.evaluate(&o, &BTreeMap::new(), 8, now()).replicas,
            Some(10)
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
