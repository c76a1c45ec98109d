//! The pure decision function shared by the live engine and the simulator.
//!
//! Order: bounds (group ∩ target limits, moved by active schedules) → strategies → combine
//! (largest wins) → missing data (hold, or fallback after N failures) → out-of-bounds fix →
//! stabilization → business hours → rate policies → max step → cooldowns → min/max clamp →
//! budget cap → dry-run. Every rule that changes the count is recorded in the decision.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};

use crate::behavior::{DirectionRules, rate_limit_down, rate_limit_up, stabilize};
use crate::config::Group;
use crate::decision::{Decision, Limit, Rule};
use crate::observation::Observation;
use crate::state::{GroupState, Sample};
use crate::strategy::Strategy;
use crate::time;

/// A named number behind a rule's detail text (see `Limit::numbers`).
type Number = (&'static str, f64);

/// Decide what `group` should do now, updating `state` in place.
///
/// Pure: the result depends only on the arguments. Callers that must not lose the old state
/// on a failed action clone it first.
pub fn decide(
    group: &Group,
    obs: &Observation,
    state: &mut GroupState,
    now: Timestamp,
) -> Decision {
    let current = obs.current_replicas;
    prune(group, state, now);
    record_samples(group, obs, state, now);

    // Bounds: the group's, moved by active schedule windows, then the target's own limits.
    let (mut min, mut max) = (group.min, group.max);
    let mut strategies = Vec::with_capacity(group.strategies.len());
    let mut recommended: Option<u32> = None;
    let mut missing = false;
    for (i, s) in group.strategies.iter().enumerate() {
        let outcome = match s {
            Strategy::Predictive(p) => {
                let tracker = tracker(state, i, p);
                p.evaluate(obs, tracker, now, group.evaluation_interval)
            }
            Strategy::TargetTracking(t) => t.evaluate(obs, current),
            Strategy::Threshold(t) => {
                // 1 of 1 needs no memory: keep the persisted state as small as before (the
                // strategy stores nothing in the scratch queue then).
                let mut scratch = VecDeque::new();
                let datapoints = if t.evaluation_periods > 1 {
                    state.threshold_datapoints.entry(i).or_default()
                } else {
                    &mut scratch
                };
                t.evaluate(obs, &state.metric_history, datapoints, current, now)
            }
            Strategy::Schedule(sc) => {
                let (outcome, lo, hi) = sc.evaluate(now);
                if let Some(lo) = lo {
                    min = min.max(lo);
                }
                if let Some(hi) = hi {
                    max = max.min(hi);
                }
                outcome
            }
        };
        missing |= outcome.missing_data;
        if let Some(r) = outcome.replicas {
            recommended = Some(recommended.map_or(r, |x| x.max(r)));
        }
        strategies.push(outcome);
    }
    if min > max {
        max = min;
    }
    if let Some(limits) = obs.target_limits {
        // The target's own limits are hard: they win over the group's and the schedule's.
        if let Some(tmax) = limits.max {
            max = max.min(tmax);
            min = min.min(tmax);
        }
        if let Some(tmin) = limits.min {
            min = min.max(tmin);
            max = max.max(tmin);
        }
    }

    let mut limits = Vec::new();
    let mut apply = |rule: Rule, from: u32, to: u32, detail: String, numbers: &[Number]| {
        if from != to {
            limits.push(Limit {
                rule,
                from,
                to,
                detail,
                numbers: numbers.to_vec(),
            });
        }
        to
    };

    state.consecutive_failures = if missing {
        state.consecutive_failures.saturating_add(1)
    } else {
        0
    };
    let mut desired = recommended.unwrap_or(current);
    let mut skip_rules = false;
    let fallback = group
        .behavior
        .fallback
        .filter(|f| missing && state.consecutive_failures >= f.after);
    if let Some(f) = fallback {
        desired = apply(
            Rule::Fallback,
            desired,
            f.replicas,
            format!(
                "{} evaluations in a row with missing metrics: fallback",
                state.consecutive_failures
            ),
            &[
                (
                    "consecutive_failures",
                    f64::from(state.consecutive_failures),
                ),
                ("after", f64::from(f.after)),
            ],
        );
        skip_rules = true;
    } else if missing && desired < current {
        desired = apply(
            Rule::MissingData,
            desired,
            current,
            "a metric is missing: never scale down on missing data".into(),
            &[],
        );
    }

    let outside_hours = group
        .behavior
        .business_hours_only
        .as_ref()
        .filter(|bh| !bh.contains(now));

    if current < min || current > max {
        // Like the HPA: a count outside the bounds goes straight to the nearest bound.
        let to = current.clamp(min, max);
        desired = apply(
            Rule::OutOfBounds,
            desired,
            to,
            format!("current {current} is outside {min}..={max}"),
            &[("min", f64::from(min)), ("max", f64::from(max))],
        );
        skip_rules = true;
    }

    if !skip_rules {
        let b = &group.behavior;
        let stabilized = stabilize(
            &mut state.recommendations,
            desired,
            current,
            now,
            b.scale_up.stabilization,
            b.scale_down.stabilization,
        );
        let window = if desired < current {
            b.scale_down.stabilization
        } else {
            b.scale_up.stabilization
        };
        desired = apply(
            Rule::Stabilization,
            desired,
            stabilized,
            window_detail(desired, current, b),
            &[("window_seconds", window.as_secs_f64())],
        );
        // Outside business hours the count holds, but the recommendation above is still
        // remembered: at opening time the windows know what happened overnight.
        if let Some(bh) = outside_hours {
            desired = apply(
                Rule::BusinessHours,
                desired,
                current,
                format!("outside business hours ({})", bh.zone_name),
                &[],
            );
        } else if desired > current {
            let limit = rate_limit_up(&b.scale_up, current, &state.scale_events, now).max(current);
            if desired > limit {
                desired = apply(
                    Rule::RateLimit,
                    desired,
                    limit,
                    policy_detail(&b.scale_up, "up"),
                    &[("limit", f64::from(limit))],
                );
            }
            desired = max_step(&b.scale_up, current, desired, true, &mut apply);
            desired = cooldown(state, now, current, desired, true, &mut apply);
        } else if desired < current {
            let limit =
                rate_limit_down(&b.scale_down, current, &state.scale_events, now).min(current);
            if desired < limit {
                desired = apply(
                    Rule::RateLimit,
                    desired,
                    limit,
                    policy_detail(&b.scale_down, "down"),
                    &[("limit", f64::from(limit))],
                );
            }
            desired = max_step(&b.scale_down, current, desired, false, &mut apply);
            desired = cooldown(state, now, current, desired, false, &mut apply);
        }
    }
    let clamped = desired.clamp(min, max);
    desired = apply(
        Rule::MinMax,
        desired,
        clamped,
        format!("bounds {min}..={max}"),
        &[("min", f64::from(min)), ("max", f64::from(max))],
    );

    if let Some(cost) = &group.cost {
        crate::cost::account(&mut state.spend, &cost.pricing, now, current);
        let shared = obs.shared_budget.as_ref();
        if let Some((cap, why)) = crate::cost::cap(cost, state.spend.as_ref(), shared, now, min)
            && desired > cap
        {
            // A hard cap, applied last: only the budget's own floor stands above it.
            desired = apply(
                Rule::Budget,
                desired,
                cap.max(desired.min(cap)),
                why,
                &[("cap", f64::from(cap))],
            );
        }
    }

    let scale = desired != current && !group.dry_run;
    if scale {
        let b = &group.behavior;
        state.scale_events.push_back(crate::state::ScaleEvent {
            at: now,
            change: desired as i64 - current as i64,
        });
        let dir = if desired > current {
            &b.scale_up
        } else {
            &b.scale_down
        };
        let until = |d: SignedDuration| (!d.is_zero()).then(|| time::after(now, d));
        if desired > current {
            state.cooldowns.scale_up_until = until(dir.cooldown).or(state.cooldowns.scale_up_until);
        } else {
            state.cooldowns.scale_down_until =
                until(dir.cooldown).or(state.cooldowns.scale_down_until);
        }
        state.cooldowns.any_until = until(b.cooldown).or(state.cooldowns.any_until);
    }
    state.last_evaluated = Some(now);
    let limited_by = limits.last().map(|l| l.rule);
    Decision {
        group: group.name.clone(),
        at: now,
        current_replicas: current,
        ready_replicas: obs.ready_replicas.unwrap_or(current),
        recommended_replicas: recommended,
        desired_replicas: desired,
        scale,
        dry_run: group.dry_run,
        min,
        max,
        strategies,
        limits,
        limited_by,
    }
}

fn window_detail(desired: u32, current: u32, b: &crate::behavior::Behavior) -> String {
    if desired < current {
        format!(
            "largest recommendation of the last {:#}",
            b.scale_down.stabilization
        )
    } else {
        format!(
            "smallest recommendation of the last {:#}",
            b.scale_up.stabilization
        )
    }
}

fn policy_detail(rules: &DirectionRules, dir: &str) -> String {
    let parts: Vec<String> = rules
        .policies
        .iter()
        .map(|p| {
            let unit = match p.kind {
                crate::behavior::RateKind::Pods => " pods",
                crate::behavior::RateKind::Percent => "%",
            };
            format!("{}{unit} per {:#}", p.value, p.period)
        })
        .collect();
    format!(
        "scale-{dir} policies [{}] select {:?}",
        parts.join(", "),
        rules.select
    )
    .to_lowercase()
}

fn max_step(
    rules: &DirectionRules,
    current: u32,
    desired: u32,
    up: bool,
    apply: &mut impl FnMut(Rule, u32, u32, String, &[Number]) -> u32,
) -> u32 {
    let Some(step) = rules.max_step else {
        return desired;
    };
    let to = if up {
        desired.min(current.saturating_add(step))
    } else {
        desired.max(current.saturating_sub(step))
    };
    apply(
        Rule::MaxStep,
        desired,
        to,
        format!("at most {step} replicas per action"),
        &[("max_step", f64::from(step))],
    )
}

fn cooldown(
    state: &GroupState,
    now: Timestamp,
    current: u32,
    desired: u32,
    up: bool,
    apply: &mut impl FnMut(Rule, u32, u32, String, &[Number]) -> u32,
) -> u32 {
    let c = &state.cooldowns;
    let (dir_until, name) = if up {
        (c.scale_up_until, "scale-up")
    } else {
        (c.scale_down_until, "scale-down")
    };
    if let Some(until) = dir_until.filter(|u| now < *u) {
        return apply(
            Rule::Cooldown,
            desired,
            current,
            format!("{name} cooldown until {until}"),
            &[("until_unix_seconds", until.as_second() as f64)],
        );
    }
    if let Some(until) = c.any_until.filter(|u| now < *u) {
        return apply(
            Rule::Cooldown,
            desired,
            current,
            format!("general cooldown until {until}"),
            &[("until_unix_seconds", until.as_second() as f64)],
        );
    }
    desired
}

/// The strategy's forecasting state, new when absent or built with other settings.
pub fn tracker<'a>(
    state: &'a mut GroupState,
    index: usize,
    p: &crate::strategy::Predictive,
) -> &'a mut crate::forecast::Tracker {
    let t = state
        .forecasts
        .entry(index)
        .or_insert_with(|| p.new_tracker());
    if t.signature != p.signature() {
        *t = p.new_tracker();
    }
    t
}

/// Drop history no rule can look at any more.
fn prune(group: &Group, state: &mut GroupState, now: Timestamp) {
    let (recs, events) = group.behavior.history_horizon();
    pop_older(&mut state.recommendations, time::before(now, recs), |r| {
        r.at
    });
    pop_older(&mut state.scale_events, time::before(now, events), |e| e.at);
    for s in &group.strategies {
        for (metric, window) in s.windowed_metrics() {
            if let Some(h) = state.metric_history.get_mut(metric) {
                pop_older(h, time::before(now, window), |x| x.at);
            }
        }
    }
    // Datapoints of a strategy that is gone or no longer counts "N of M" would otherwise
    // stay in the persisted state forever.
    state.threshold_datapoints.retain(|i, _| {
        matches!(group.strategies.get(*i), Some(Strategy::Threshold(t)) if t.evaluation_periods > 1)
    });
    let c = &mut state.cooldowns;
    for slot in [
        &mut c.scale_up_until,
        &mut c.scale_down_until,
        &mut c.any_until,
    ] {
        if slot.is_some_and(|u| u <= now) {
            *slot = None;
        }
    }
}

/// Pop entries at or before `cutoff`: windows count only entries strictly newer than it.
fn pop_older<T>(q: &mut VecDeque<T>, cutoff: Timestamp, at: impl Fn(&T) -> Timestamp) {
    while q.front().is_some_and(|x| at(x) <= cutoff) {
        q.pop_front();
    }
}

fn record_samples(group: &Group, obs: &Observation, state: &mut GroupState, now: Timestamp) {
    for s in &group.strategies {
        for (metric, _) in s.windowed_metrics() {
            if let Some(value) = obs.metric(metric) {
                let h = state.metric_history.entry(metric.to_string()).or_default();
                if h.back().is_none_or(|x| x.at < now) {
                    h.push_back(Sample { at: now, value });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod forecasting_tests;
