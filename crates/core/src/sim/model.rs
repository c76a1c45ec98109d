//! The benchmark's capacity model (see the README's "Simulation model").
//!
//! Time advances in ticks of min(15 s, step). Per tick: replicas whose startup finished become
//! ready; the policy is evaluated when due (every eval interval from the start of the range)
//! on the exact mean rate of the last `window` seconds; then the tick is accounted with the
//! new counts. Added replicas cost from the moment they are asked for and serve after
//! `startup`; removals are immediate, pending (newest) first.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};

use super::policy::{Controller, SimPolicy};
use super::report::{PolicyResult, Series};
use super::trace::Trace;
use crate::config::Group;
use crate::decide::decide;
use crate::decision::Reason;
use crate::observation::Observation;
use crate::state::GroupState;
use crate::strategy::Strategy;

/// Parameters of one simulation run.
#[derive(Debug, Clone)]
pub struct SimParams {
    /// Range [from, to) in trace seconds.
    pub from: i64,
    pub to: i64,
    /// Requests/s one ready replica serves.
    pub capacity: f64,
    /// Seconds from asking for a replica to it serving.
    pub startup: i64,
    /// Observation window in seconds.
    pub window: i64,
    /// Wall-clock time of trace second 0 (schedules and business hours use it).
    pub epoch: Timestamp,
    /// Chart buckets wanted; 0 = no series.
    pub chart_points: usize,
    /// Price of a replica-hour for policies without a `cost` section of their own.
    pub price: f64,
    /// The config's global budget (a simulated group is the only one spending).
    pub global_budget: Option<crate::config::GlobalBudget>,
}

impl SimParams {
    /// min(15 s, step).
    pub fn tick(&self, trace: &Trace) -> i64 {
        trace.step.clamp(1, 15)
    }
}

/// Replicas needed for rate `r`, with a tolerance against floating-point noise.
fn needed(r: f64, c: f64, min: u32) -> u32 {
    ((r / c - 1e-9).ceil().max(0.0) as u32).max(min)
}

struct Account {
    capacity: f64,
    min: u32,
    unserved: f64,
    demand: f64,
    cost: f64,
    money: f64,
    oracle_cost: f64,
    underprov_ticks: u64,
    ticks: u64,
    actions: u64,
}

impl Account {
    /// Account [t, t + len) with `total` replicas paid for and `ready` serving; the oracle
    /// policy instead serves (and pays) exactly its need in every constant-rate piece.
    #[allow(clippy::too_many_arguments)]
    fn tick(
        &mut self,
        trace: &Trace,
        t: i64,
        len: i64,
        ready: u32,
        total: u32,
        oracle: bool,
        price: f64,
    ) {
        let (c, min) = (self.capacity, self.min);
        let mut unserved = 0.0;
        let mut cost = 0.0;
        trace.pieces(t, t + len, |r, piece| {
            let piece = piece as f64;
            let need = needed(r, c, min) as f64;
            let serving = if oracle { need } else { ready as f64 };
            unserved += (r - serving * c).max(0.0) * piece;
            cost += if oracle { need } else { total as f64 } * piece;
            self.demand += r * piece;
            self.oracle_cost += need * piece;
        });
        self.cost += cost;
        self.money += cost * price / 3600.0;
        self.unserved += unserved;
        self.ticks += 1;
        // Ignore floating-point dust: a few ulps of a request is not a missed request.
        if unserved > 1e-9 * c * len as f64 {
            self.underprov_ticks += 1;
        }
    }
}

/// The group with the simulation's capacity wherever a strategy leaves it out.
fn with_capacity(group: &Group, c: f64) -> Group {
    let mut g = group.clone();
    for s in &mut g.strategies {
        if let Strategy::Predictive(p) = s {
            p.capacity.get_or_insert(c);
        }
    }
    g
}

/// Number of ticks in [from, to): the last one may be shorter.
pub fn tick_count(params: &SimParams, trace: &Trace) -> u64 {
    let tick = params.tick(trace);
    let span = (params.to - params.from).max(0);
    (span / tick + i64::from(span % tick != 0)) as u64
}

/// Run one policy over the trace.
pub fn simulate(
    trace: &Trace,
    params: &SimParams,
    policy: &SimPolicy,
    progress: &mut dyn FnMut(u64),
) -> PolicyResult {
    let tick = params.tick(trace);
    let c = params.capacity;
    let min = policy.min();
    let n_ticks = tick_count(params, trace);
    let bucket = if params.chart_points > 0 {
        (n_ticks / params.chart_points as u64).max(1)
    } else {
        u64::MAX
    };
    let mut series = (params.chart_points > 0).then(Series::default);
    let mut acc = Account {
        capacity: c,
        min,
        unserved: 0.0,
        demand: 0.0,
        cost: 0.0,
        money: 0.0,
        oracle_cost: 0.0,
        underprov_ticks: 0,
        ticks: 0,
        actions: 0,
    };
    // The oracle's count for a tick (for actions and the chart): its largest need.
    let tick_need = |t: i64, len: i64| {
        let mut n = min;
        trace.pieces(t, t + len, |r, _| n = n.max(needed(r, c, min)));
        n
    };
    let oracle = matches!(policy.controller, Controller::Oracle);
    let (group, eval) = match &policy.controller {
        Controller::Group {
            group,
            eval_interval,
        } => (Some(with_capacity(group, c)), (*eval_interval).max(1)),
        _ => (None, tick),
    };
    let group = group.as_ref();
    let first_len = tick.min(params.to - params.from);
    let mut ready: u32 = match &policy.controller {
        Controller::Group { group, .. } => {
            needed(trace.rate(params.from), c, min).min(group.max.max(min))
        }
        Controller::Oracle => tick_need(params.from, first_len),
        Controller::StaticPeak => tick_need(params.from, params.to - params.from),
    };
    let mut pending: VecDeque<(i64, u32)> = VecDeque::new();
    let mut pending_total: u32 = 0;
    let mut state = GroupState::default();
    if let Some(g) = group {
        // Learned before the range starts, as a live group would be from its warm start.
        let start = crate::time::after(params.epoch, SignedDuration::from_secs(params.from));
        for (metric, ws, t) in &policy.warm {
            crate::forecast::replay_trace(g, &mut state, metric, ws, t, eval, start);
        }
    }
    let mut obs = Observation {
        current_replicas: ready,
        ..Observation::default()
    };
    // Evaluations fall on the first tick at or after each multiple of the interval.
    let mut next_eval: i64 = 0;
    // The last seasonal forecast, for the chart (in replicas' worth).
    let mut forecast: Option<f64> = None;

    for k in 0..n_ticks {
        let t = params.from + k as i64 * tick;
        let len = tick.min(params.to - t);
        let s = t - params.from;
        if k % 65_536 == 0 {
            progress(k);
        }
        let before = ready + pending_total;
        match &policy.controller {
            Controller::Oracle => ready = tick_need(t, len),
            Controller::StaticPeak => {}
            Controller::Group { .. } => {
                while let Some(&(at, n)) = pending.front() {
                    if at > t {
                        break;
                    }
                    ready += n;
                    pending_total -= n;
                    pending.pop_front();
                }
            }
        }
        if let Some(g) = group.filter(|_| s >= next_eval) {
            while next_eval <= s {
                next_eval += eval;
            }
            let observed = if s == 0 {
                trace.rate(t)
            } else {
                trace.mean((t - params.window).max(params.from), t)
            };
            let current = ready + pending_total;
            obs.current_replicas = current;
            obs.ready_replicas = Some(ready);
            obs.metrics.insert("request_rate".into(), observed);
            if ready > 0 {
                obs.metrics
                    .insert("utilization".into(), observed / (ready as f64 * c) * 100.0);
            } else {
                obs.metrics.remove("utilization");
            }
            let now = crate::time::after(params.epoch, SignedDuration::from_secs(t));
            obs.shared_budget = params.global_budget.map(|b| {
                let spent = state.spend.as_ref().map_or(0.0, |s| s.spent);
                crate::cost::SharedBudget {
                    per_hour_left: b.per_hour,
                    per_month_left: b.per_month.map(|m| m - spent),
                    others_per_hour: 0.0,
                }
            });
            let d = decide(g, &obs, &mut state, now);
            forecast = d.strategies.iter().find_map(|o| match &o.reason {
                Reason::Predictive(x) if x.seasonal => Some(x.estimate / c),
                _ => None,
            });
            let desired = d.desired_replicas;
            if desired > current {
                let add = desired - current;
                if params.startup == 0 {
                    ready += add;
                } else {
                    pending.push_back((t.saturating_add(params.startup), add));
                    pending_total += add;
                }
            } else if desired < current {
                let mut remove = current - desired;
                while remove > 0 {
                    let Some(last) = pending.back_mut() else {
                        break;
                    };
                    let take = last.1.min(remove);
                    last.1 -= take;
                    pending_total -= take;
                    remove -= take;
                    if last.1 == 0 {
                        pending.pop_back();
                    }
                }
                ready -= remove;
            }
        }
        let total = ready + pending_total;
        if total != before {
            acc.actions += 1;
        }
        let price = match group.and_then(|g| g.cost.as_ref()) {
            Some(cost) => cost.pricing.price_at(crate::time::after(
                params.epoch,
                SignedDuration::from_secs(t),
            )),
            None => params.price,
        };
        acc.tick(trace, t, len, ready, total, oracle, price);
        if let Some(series) = series.as_mut() {
            let b = (k / bucket * bucket) as f64 * tick as f64;
            series.push(b, trace.rate(t) / c, ready as f64, total as f64, forecast);
        }
    }
    progress(n_ticks);
    PolicyResult {
        policy: policy.name.clone(),
        cost_ratio: if acc.oracle_cost > 0.0 {
            acc.cost / acc.oracle_cost
        } else {
            f64::NAN
        },
        unserved_pct: if acc.demand > 0.0 {
            100.0 * acc.unserved / acc.demand
        } else {
            0.0
        },
        underprov_time_pct: if acc.ticks > 0 {
            100.0 * acc.underprov_ticks as f64 / acc.ticks as f64
        } else {
            0.0
        },
        actions: acc.actions,
        replica_hours: acc.cost / 3600.0,
        cost: acc.money,
        cost_per_million_served: if acc.demand - acc.unserved > 0.0 {
            acc.money / (acc.demand - acc.unserved) * 1e6
        } else {
            f64::NAN
        },
        oracle_replica_hours: acc.oracle_cost / 3600.0,
        series,
    }
}
