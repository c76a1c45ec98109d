//! `decide` with the predictive and cost strategies and with budgets.

use super::*;
use crate::config;
use crate::decision::{Reason, Rule};

fn group(yaml: &str) -> Group {
    config::parse(yaml, "test.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .groups
        .remove(0)
}

/// A predictive group (10 req/s per replica) with extra strategy and group YAML.
fn predictive(strategy_extra: &str, group_extra: &str) -> Group {
    group(&format!(
        "groups:\n  - name: g\n    min: 1\n    max: 1000\n    strategies:\n      - kind: predictive\n        metric: request_rate\n        capacity_per_replica: 10\n{strategy_extra}\n    behavior:\n      scale_down:\n        stabilization: 0s\n{group_extra}"
    ))
}

fn obs(rate: f64, current: u32) -> Observation {
    let mut o = Observation {
        current_replicas: current,
        ..Observation::default()
    };
    o.metrics.insert("request_rate".into(), rate);
    o
}

/// Monday 2026-11-23 00:00 UTC + `s`.
fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_763_856_000 + s).unwrap()
}

/// 100 req/s at night, 300 from 08:00 to 20:00 UTC, with a little deterministic noise.
fn load(s: i64) -> f64 {
    let tod = s.rem_euclid(86_400);
    let base = if (8 * 3600..20 * 3600).contains(&tod) {
        300.0
    } else {
        100.0
    };
    base + ((s / 15) % 7) as f64
}

fn outlook(d: &crate::Decision) -> &crate::strategy::Outlook {
    match &d.strategies[0].reason {
        Reason::Predictive(o) => o,
        other => panic!("not a predictive reason: {other}"),
    }
}

/// Run the group every 15 s over [from, to), following its own decisions.
fn run(g: &Group, st: &mut GroupState, from: i64, to: i64) -> u32 {
    let mut current = 10;
    let mut s = from;
    while s < to {
        current = decide(g, &obs(load(s), current), st, t(s)).desired_replicas;
        s += 15;
    }
    current
}

#[test]
fn cold_start_tracks_the_observed_value_and_says_so() {
    let g = predictive("", "");
    let mut st = GroupState::default();
    let d = decide(&g, &obs(100.0, 10), &mut st, t(0));
    let o = outlook(&d);
    assert!(!o.seasonal);
    // Nothing scored yet: 100 × (1 + the default 50 % cold-start headroom) / 10 per replica.
    assert_eq!(d.desired_replicas, 15);
    assert!(
        d.strategies[0].reason.to_string().starts_with("cold start"),
        "{}",
        d.strategies[0].reason
    );
}

#[test]
fn a_learned_day_scales_ahead_of_the_morning_step() {
    let g = predictive("", "");
    let mut st = GroupState::default();
    // Two days and most of a night: up to 07:58:45 on Wednesday.
    let current = run(&g, &mut st, 0, 2 * 86_400 + 7 * 3600 + 58 * 60 + 45);
    let now = 2 * 86_400 + 7 * 3600 + 59 * 60;
    let d = decide(&g, &obs(load(now), current), &mut st, t(now));
    let o = outlook(&d);
    assert!(o.seasonal, "{}", d.strategies[0].reason);
    // The observed value is still night load, but replicas asked for now serve after 08:00.
    assert!(o.observed < 110.0);
    assert!(o.estimate > 250.0, "{}", d.strategies[0].reason);
    assert!(d.strategies[0].replicas >= Some(30), "{}", d.summary());
    assert!(d.strategies[0].reason.to_string().contains("forecast"));
    // The same strategy without seasons has no idea.
    let flat = group(
        "groups:\n  - name: g\n    min: 1\n    max: 1000\n    strategies:\n      - kind: cost\n        metric: request_rate\n        capacity_per_replica: 10\n",
    );
    let mut st = GroupState::default();
    let current = run(&flat, &mut st, 0, now - 15);
    let d = decide(&flat, &obs(load(now), current), &mut st, t(now));
    assert!(d.strategies[0].replicas < Some(25), "{}", d.summary());
}

#[test]
fn forecast_only_records_but_recommends_target_tracking() {
    let g = predictive("        forecast_only: true", "");
    let mut st = GroupState::default();
    let current = run(&g, &mut st, 0, 2 * 86_400 + 7 * 3600 + 58 * 60 + 45);
    let now = 2 * 86_400 + 7 * 3600 + 59 * 60;
    let d = decide(&g, &obs(load(now), current), &mut st, t(now));
    let o = outlook(&d);
    assert!(o.forecast_replicas >= 30);
    // observed × (1 + initial_headroom 25 %) / 10.
    assert_eq!(
        d.strategies[0].replicas,
        Some((o.observed * 1.25 / 10.0).ceil() as u32)
    );
    assert!(d.strategies[0].reason.to_string().contains("forecast_only"));
}

#[test]
fn replaying_samples_rebuilds_the_same_state() {
    let g = predictive("", "");
    let mut lived = GroupState::default();
    let end = 86_400 + 12 * 3600;
    let mut samples = Vec::new();
    let mut current = 10;
    let mut s = 0;
    while s < end {
        samples.push((t(s), load(s)));
        current = decide(&g, &obs(load(s), current), &mut lived, t(s)).desired_replicas;
        s += 15;
    }
    let mut rebuilt = GroupState::default();
    crate::forecast::replay(&g, &mut rebuilt, "request_rate", &samples);
    assert_eq!(lived.forecasts, rebuilt.forecasts);
    let a = decide(&g, &obs(load(end), current), &mut lived, t(end));
    let b = decide(&g, &obs(load(end), current), &mut rebuilt, t(end));
    assert_eq!(a.desired_replicas, b.desired_replicas);
    assert_eq!(outlook(&a), outlook(&b));
}

#[test]
fn an_hourly_budget_caps_the_count_above_its_floor() {
    let g = predictive(
        "",
        "    cost:\n      price_per_replica_hour: 0.5\n      budget:\n        per_hour: 10\n        min_replicas: 3",
    );
    let mut st = GroupState::default();
    // 1,000 req/s wants 150 replicas; 10/h at 0.5 buys 20.
    let d = decide(&g, &obs(1000.0, 30), &mut st, t(0));
    assert_eq!(d.desired_replicas, 20, "{}", d.summary());
    assert_eq!(d.limited_by, Some(Rule::Budget));
    assert!(d.limits.last().unwrap().detail.contains("budget 10/h"));
    // A shared (global) budget that leaves less wins; the floor still stands.
    let mut o = obs(1000.0, 20);
    o.shared_budget = Some(crate::cost::SharedBudget {
        per_hour_left: Some(0.5),
        per_month_left: None,
        others_per_hour: 0.0,
    });
    let d = decide(&g, &o, &mut st, t(15));
    assert_eq!(d.desired_replicas, 3, "{}", d.summary());
    // Spend is accounted from the replicas seen running at the previous evaluation (30):
    // never less than what ran, so a budget errs on the safe side.
    let spend = st.spend.as_ref().unwrap();
    assert!((spend.spent - 30.0 * 0.5 * 15.0 / 3600.0).abs() < 1e-9);
}
