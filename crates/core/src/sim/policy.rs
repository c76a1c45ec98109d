//! Policies the simulator can run: user groups, the Kubernetes HPA, the oracle, static peak.

use std::sync::Arc;

use jiff::SignedDuration;

use crate::behavior::Behavior;
use crate::config::{Group, SIMULATED_METRICS};
use crate::forecast::Objective;
use crate::strategy::{Goal, Strategy, TargetTracking};

/// How a simulated policy chooses its replica count.
#[derive(Debug, Clone)]
pub enum Controller {
    /// A group run through `decide`, evaluated every `eval_interval` seconds.
    Group {
        group: Box<Group>,
        eval_interval: i64,
    },
    /// Clairvoyant: max(min, ceil(r/c)) at every tick, ready at once.
    Oracle,
    /// The oracle's maximum, all the time.
    StaticPeak,
}

/// A named policy for a simulation run.
#[derive(Debug, Clone)]
pub struct SimPolicy {
    pub name: String,
    pub controller: Controller,
    /// Warm-start traces of its predictive strategies, replayed before the range starts:
    /// (metric, warm start, trace).
    pub warm: Vec<(
        String,
        crate::strategy::WarmStart,
        std::sync::Arc<super::Trace>,
    )>,
}

impl SimPolicy {
    /// The Kubernetes HPA on an External metric of type AverageValue: the observed request
    /// rate with a target of 0.7·c per replica, tolerance 0.1, the autoscaling/v2 default
    /// behavior, min 1 and no max. It runs through the same `decide` as user policies.
    pub fn hpa(capacity: f64, eval_interval: i64) -> SimPolicy {
        SimPolicy::hpa_at(capacity, eval_interval, 0.7, "hpa")
    }

    /// The HPA with another target utilization (a fraction), for frontiers.
    pub fn hpa_at(capacity: f64, eval_interval: i64, target: f64, name: &str) -> SimPolicy {
        let group = Group {
            name: Arc::from("hpa"),
            min: 1,
            max: u32::MAX,
            evaluation_interval: SignedDuration::from_secs(eval_interval),
            strategies: vec![Strategy::TargetTracking(TargetTracking {
                metric: Arc::from("request_rate"),
                goal: Goal::PerReplica(target * capacity),
                tolerance_up: 0.1,
                tolerance_down: 0.1,
            })],
            behavior: Behavior::default(),
            dry_run: false,
            enabled: true,
            source: None,
            target: None,
            cost: None,
        };
        SimPolicy {
            name: name.into(),
            controller: Controller::Group {
                group: Box::new(group),
                eval_interval,
            },
            warm: Vec::new(),
        }
    }

    pub fn oracle() -> SimPolicy {
        SimPolicy {
            name: "oracle".into(),
            controller: Controller::Oracle,
            warm: Vec::new(),
        }
    }

    pub fn static_peak() -> SimPolicy {
        SimPolicy {
            name: "static-peak".into(),
            controller: Controller::StaticPeak,
            warm: Vec::new(),
        }
    }

    /// A user group; simulated as if live (its `dry_run` flag is ignored: the point is to
    /// see what it would do).
    pub fn group(group: Group, eval_interval: i64) -> SimPolicy {
        let mut group = group;
        group.dry_run = false;
        SimPolicy {
            name: group.name.to_string(),
            controller: Controller::Group {
                group: Box::new(group),
                eval_interval,
            },
            warm: Vec::new(),
        }
    }

    /// The same policy with every predictive/cost strategy's startup set (the horizon
    /// follows the simulation's startup).
    pub fn with_startup(&self, name: String, startup: i64) -> SimPolicy {
        let mut p = self.clone();
        p.name = name;
        p.forecasting_mut(|pr| pr.startup = SignedDuration::from_secs(startup.max(0)));
        p
    }

    /// One point of a frontier sweep: `x` > 1 trades service for cost, `x` < 1 the reverse.
    /// The objective's allowance is scaled by `x` (unserved share or factor times; the
    /// uncovered share of horizons times), the least headrooms divided by it.
    pub fn swept(&self, name: String, x: f64) -> SimPolicy {
        let mut p = self.clone();
        p.name = name;
        p.forecasting_mut(|pr| {
            pr.objective = match pr.objective {
                Objective::MaxUnserved(o) => Objective::MaxUnserved(o * x),
                Objective::Coverage(q) => {
                    Objective::Coverage((1.0 - (1.0 - q) * x).clamp(0.0, 1.0))
                }
                Objective::Reactive { target, factor } => Objective::Reactive {
                    target,
                    factor: factor * x,
                },
            };
            pr.min_headroom /= x;
            pr.cold_headroom /= x;
            pr.initial_headroom /= x;
        });
        p
    }

    fn forecasting_mut(&mut self, mut f: impl FnMut(&mut crate::strategy::Predictive)) {
        if let Controller::Group { group, .. } = &mut self.controller {
            for s in &mut group.strategies {
                if let Strategy::Predictive(pr) = s {
                    f(pr);
                }
            }
        }
    }

    /// Whether the policy has a predictive or cost strategy (something to sweep).
    pub fn forecasts(&self) -> bool {
        matches!(&self.controller, Controller::Group { group, .. }
            if group.strategies.iter().any(|s| matches!(s, Strategy::Predictive(_))))
    }

    /// "metric `x`, `y`" when a group's strategies use metrics the simulator does not provide.
    pub fn unknown_metrics(&self) -> Option<String> {
        let Controller::Group { group, .. } = &self.controller else {
            return None;
        };
        let mut names: Vec<&str> = Vec::new();
        for s in &group.strategies {
            let used: Vec<&str> = match s {
                Strategy::TargetTracking(t) => vec![&*t.metric],
                Strategy::Threshold(t) => t.metrics.iter().map(|m| &*m.metric).collect(),
                Strategy::Schedule(_) => vec![],
                Strategy::Predictive(p) => vec![&*p.metric],
            };
            for m in used {
                if !SIMULATED_METRICS.contains(&m) && !names.contains(&m) {
                    names.push(m);
                }
            }
        }
        if names.is_empty() {
            return None;
        }
        let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        Some(format!(
            "metric{} {}",
            if names.len() > 1 { "s" } else { "" },
            list.join(", ")
        ))
    }

    /// The policy's minimum count (the oracle baseline uses the same minimum).
    pub fn min(&self) -> u32 {
        match &self.controller {
            Controller::Group { group, .. } => group.min,
            Controller::Oracle | Controller::StaticPeak => 1,
        }
    }
}
