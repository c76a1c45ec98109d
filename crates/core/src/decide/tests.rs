//! Rule-by-rule tests of `decide`, and property tests of its invariants.

use super::*;
use crate::config;
use crate::decision::Rule;
use crate::observation::Limits;
use jiff::SignedDuration;
use proptest::prelude::*;

fn group(yaml: &str) -> Group {
    config::parse(yaml, "test.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .groups
        .remove(0)
}

/// A per-replica target-tracking group on `request_rate` (target 10/replica) with extra YAML
/// spliced into the group.
fn tt(extra: &str) -> Group {
    group(&format!(
        "groups:\n  - name: g\n    min: 1\n    max: 50\n    strategies:\n      - kind: target_tracking\n        metric: request_rate\n        target_per_replica: 10\n{extra}"
    ))
}

fn obs(rate: Option<f64>, current: u32) -> Observation {
    let mut o = Observation {
        current_replicas: current,
        ..Observation::default()
    };
    if let Some(r) = rate {
        o.metrics.insert("request_rate".into(), r);
    }
    o
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

#[test]
fn scale_up_is_immediate_and_rate_limited() {
    let g = tt("");
    let mut st = GroupState::default();
    // Wants 30 from 2: default policies allow max(2 + 4, 2 × 2) = 6.
    let d = decide(&g, &obs(Some(300.0), 2), &mut st, t(0));
    assert_eq!(d.recommended_replicas, Some(30));
    assert_eq!(d.desired_replicas, 6);
    assert_eq!(d.limited_by, Some(Rule::RateLimit));
    assert!(d.scale);
    // 15 s later the period restarts from 6: up to 12.
    let d = decide(&g, &obs(Some(300.0), 6), &mut st, t(15));
    assert_eq!(d.desired_replicas, 12);
}

#[test]
fn scale_down_waits_for_the_stabilization_window() {
    let g = tt("");
    let mut st = GroupState::default();
    decide(&g, &obs(Some(100.0), 10), &mut st, t(0));
    let d = decide(&g, &obs(Some(20.0), 10), &mut st, t(60));
    assert_eq!(d.desired_replicas, 10);
    assert_eq!(d.limited_by, Some(Rule::Stabilization));
    // The 10 from t=0 expires at t=300 exactly; the later 2s remain.
    let d = decide(&g, &obs(Some(20.0), 10), &mut st, t(300));
    assert_eq!(d.desired_replicas, 2);
}

#[test]
fn missing_metric_holds_and_never_scales_down() {
    let g = tt("    behavior:\n      scale_down: {stabilization: 0s}\n");
    let mut st = GroupState::default();
    let d = decide(&g, &obs(None, 8), &mut st, t(0));
    assert_eq!(d.desired_replicas, 8);
    assert!(!d.scale);
    assert_eq!(st.consecutive_failures, 1);
    let mut o = obs(None, 8);
    o.metric_errors
        .insert("request_rate".into(), "timeout after 5s".into());
    let d = decide(&g, &o, &mut st, t(15));
    assert!(
        d.summary()
            .contains("metric request_rate failed: timeout after 5s"),
        "{}",
        d.summary()
    );
    assert_eq!(st.consecutive_failures, 2);
    // A good reading resets the count.
    decide(&g, &obs(Some(80.0), 8), &mut st, t(30));
    assert_eq!(st.consecutive_failures, 0);
}

#[test]
fn fallback_after_n_failures() {
    let g = tt("    behavior:\n      fallback: {after: 3, replicas: 12}\n");
    let mut st = GroupState::default();
    for i in 0..2 {
        let d = decide(&g, &obs(None, 4), &mut st, t(i * 15));
        assert_eq!(d.desired_replicas, 4);
    }
    let d = decide(&g, &obs(None, 4), &mut st, t(30));
    assert_eq!(d.desired_replicas, 12);
    assert_eq!(d.limited_by, Some(Rule::Fallback));
}

#[test]
fn cooldowns_block_the_next_action() {
    let g = tt(
        "    behavior:\n      scale_up: {cooldown: 2m}\n      cooldown: 30s\n      scale_down: {stabilization: 0s}\n",
    );
    let mut st = GroupState::default();
    assert_eq!(
        decide(&g, &obs(Some(40.0), 2), &mut st, t(0)).desired_replicas,
        4
    );
    // General cooldown blocks the scale-down at t=15.
    let d = decide(&g, &obs(Some(10.0), 4), &mut st, t(15));
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (4, Some(Rule::Cooldown))
    );
    // Scale-up cooldown still blocks at t=60; the scale-down is allowed again.
    assert_eq!(
        decide(&g, &obs(Some(80.0), 4), &mut st, t(60)).desired_replicas,
        4
    );
    assert_eq!(
        decide(&g, &obs(Some(10.0), 4), &mut st, t(75)).desired_replicas,
        1
    );
    assert_eq!(
        decide(&g, &obs(Some(80.0), 1), &mut st, t(120)).desired_replicas,
        5
    );
}

#[test]
fn max_step_caps_each_action() {
    let g = tt("    behavior:\n      scale_up: {max_step: 3}\n");
    let d = decide(&g, &obs(Some(500.0), 10), &mut GroupState::default(), t(0));
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (13, Some(Rule::MaxStep))
    );
}

#[test]
fn target_limits_narrow_the_group_bounds() {
    let g = tt("");
    let mut o = obs(Some(1000.0), 10);
    o.target_limits = Some(Limits {
        min: Some(2),
        max: Some(12),
    });
    let d = decide(&g, &o, &mut GroupState::default(), t(0));
    assert_eq!((d.desired_replicas, d.max), (12, 12));
    assert_eq!(d.limited_by, Some(Rule::MinMax));
}

#[test]
fn out_of_bounds_goes_straight_to_the_bound() {
    let g = tt("");
    let d = decide(&g, &obs(Some(10.0), 80), &mut GroupState::default(), t(0));
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (50, Some(Rule::OutOfBounds))
    );
}

#[test]
fn scale_to_zero_and_back() {
    let g = group(
        "groups:\n  - name: g\n    min: 0\n    max: 5\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}\n    behavior:\n      scale_down: {stabilization: 0s}\n",
    );
    let mut st = GroupState::default();
    assert_eq!(
        decide(&g, &obs(Some(0.0), 2), &mut st, t(0)).desired_replicas,
        0
    );
    assert_eq!(
        decide(&g, &obs(Some(25.0), 0), &mut st, t(15)).desired_replicas,
        3
    );
}

#[test]
fn dry_run_decides_but_does_not_act_or_record_events() {
    let g = tt("    dry_run: true\n");
    let mut st = GroupState::default();
    let d = decide(&g, &obs(Some(100.0), 2), &mut st, t(0));
    assert_eq!(d.desired_replicas, 6);
    assert!(!d.scale && d.dry_run);
    assert!(st.scale_events.is_empty());
    assert!(
        d.summary().starts_with("2 → 6 (dry run)"),
        "{}",
        d.summary()
    );
}

#[test]
fn business_hours_gate_holds_outside_hours() {
    let g = tt(
        "    behavior:\n      business_hours_only: {timezone: Asia/Dhaka, hours: [\"Mon-Fri 09:00-17:00\"]}\n",
    );
    // Mon 2026-11-23 04:00 UTC = 10:00 Dhaka: inside.
    let inside: Timestamp = "2026-11-23T04:00:00Z".parse().unwrap();
    let outside: Timestamp = "2026-11-23T12:00:00Z".parse().unwrap();
    let d = decide(&g, &obs(Some(100.0), 2), &mut GroupState::default(), inside);
    assert_eq!(d.desired_replicas, 6);
    let d = decide(
        &g,
        &obs(Some(100.0), 2),
        &mut GroupState::default(),
        outside,
    );
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (2, Some(Rule::BusinessHours))
    );
}

#[test]
fn business_hours_remember_recommendations_made_while_closed() {
    let g = tt(
        "    behavior:\n      business_hours_only: {timezone: UTC, hours: [\"daily 08:00-18:00\"]}\n",
    );
    let mut st = GroupState::default();
    let closed: Timestamp = "2026-11-23T07:59:45Z".parse().unwrap();
    let open: Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
    let d = decide(&g, &obs(Some(200.0), 10), &mut st, closed);
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (10, Some(Rule::BusinessHours))
    );
    // At opening the load is gone, but the 300 s window still holds the 20 seen while closed.
    let d = decide(&g, &obs(Some(5.0), 10), &mut st, open);
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (10, Some(Rule::Stabilization))
    );
}

#[test]
fn schedule_raises_the_minimum_while_active() {
    let g = group(
        "groups:\n  - name: g\n    min: 1\n    max: 30\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}\n      - kind: schedule\n        timezone: America/New_York\n        windows:\n          - {business_hours: \"Mon-Fri 09:00-17:00\", min: 8}\n",
    );
    // Mon 2026-11-23 15:00 UTC = 10:00 EST.
    let d = decide(
        &g,
        &obs(Some(10.0), 2),
        &mut GroupState::default(),
        "2026-11-23T15:00:00Z".parse().unwrap(),
    );
    assert_eq!(d.min, 8);
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (8, Some(Rule::OutOfBounds))
    );
    let d = decide(
        &g,
        &obs(Some(10.0), 2),
        &mut GroupState::default(),
        "2026-11-23T23:00:00Z".parse().unwrap(),
    );
    assert_eq!(d.min, 1);
}

#[test]
fn largest_recommendation_wins_and_all_reasons_are_kept() {
    let g = group(
        "groups:\n  - name: g\n    min: 1\n    max: 30\n    source: {kind: static, values: {request_rate: 1, cpu: 1}}\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}\n      - kind: threshold\n        metrics: [{metric: cpu, upper: 80, lower: 20}]\n        scale_up_by: 3\n",
    );
    let mut o = obs(Some(40.0), 4);
    o.metrics.insert("cpu".into(), 90.0);
    let d = decide(&g, &o, &mut GroupState::default(), t(0));
    assert_eq!(d.strategies[0].replicas, Some(4));
    assert_eq!(d.strategies[1].replicas, Some(7));
    assert_eq!(d.recommended_replicas, Some(7));
    assert_eq!(d.desired_replicas, 7);
}

#[test]
fn history_is_pruned_to_what_the_rules_need() {
    let g = tt("");
    let mut st = GroupState::default();
    for i in 0..200 {
        decide(&g, &obs(Some(50.0), 5), &mut st, t(i * 15));
    }
    // 300 s window at 15 s intervals: 20 older ones gone, at most 20 kept.
    assert!(
        st.recommendations.len() <= 20,
        "{}",
        st.recommendations.len()
    );
}

#[test]
fn the_ends_of_time_do_not_panic() {
    let g = group(
        "groups:\n  - name: g\n    min: 1\n    max: 9\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}\n      - kind: schedule\n        timezone: Asia/Dhaka\n        windows:\n          - {cron: \"0 9 * * *\", duration: 2h, min: 2}\n          - {business_hours: \"daily 08:00-10:00\", min: 3}\n    behavior:\n      cooldown: 1h\n",
    );
    for now in [Timestamp::MIN, Timestamp::MAX] {
        let mut st = GroupState::default();
        decide(&g, &obs(Some(50.0), 4), &mut st, now);
        decide(&g, &obs(None, 4), &mut st, now);
    }
}

/// Observations for property tests: a rate that may be missing.
fn arb_rate() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![1 => Just(None), 6 => (0.0f64..2000.0).prop_map(Some)]
}

use proptest::strategy::Strategy;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over any sequence of observations: never outside [min, max]; never down on missing
    /// data; the scale-down window and rate policies are never violated.
    #[test]
    fn invariants_hold_over_random_runs(
        rates in proptest::collection::vec(arb_rate(), 1..120),
        min in 0u32..5,
        span in 1u32..40,
        start in 0u32..60,
    ) {
        let max = min + span;
        let g = group(&format!(
            "groups:\n  - name: g\n    min: {min}\n    max: {max}\n    strategies:\n      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}\n    behavior:\n      scale_down:\n        stabilization: 60s\n        policies: [{{type: pods, value: 2, period: 30s}}]\n        cooldown: 30s\n      scale_up:\n        policies: [{{type: pods, value: 3, period: 30s}}]\n        cooldown: 45s\n      cooldown: 20s\n"
        ));
        let mut st = GroupState::default();
        let mut current = start;
        let mut history: Vec<(i64, u32, i64)> = Vec::new(); // (time, recommendation, change)
        let mut last_up: Option<i64> = None;
        let mut last_down: Option<i64> = None;
        let mut last_any: Option<i64> = None;
        for (i, rate) in rates.iter().enumerate() {
            let now = i as i64 * 15;
            let d = decide(&g, &obs(*rate, current), &mut st, t(now));
            let desired = d.desired_replicas;
            let in_bounds = current >= min && current <= max;
            prop_assert!(desired >= min && desired <= max, "{desired} outside {min}..={max}");
            if rate.is_none() && in_bounds {
                prop_assert!(desired >= current, "scaled down on missing data: {current} → {desired}");
            }
            if in_bounds && desired > current {
                // Rate policy: at most 3 added over the 30 s period's starting count.
                let net: i64 = history.iter().filter(|h| h.0 > now - 30).map(|h| h.2).sum();
                prop_assert!(net + (desired - current) as i64 <= 3);
                // Scale-up cooldown.
                prop_assert!(last_up.is_none_or(|u| now >= u + 45));
                prop_assert!(last_any.is_none_or(|u| now >= u + 20));
                last_up = Some(now);
            }
            if in_bounds && desired < current {
                let net: i64 = history.iter().filter(|h| h.0 > now - 30).map(|h| h.2).sum();
                prop_assert!(-net + (current - desired) as i64 <= 2);
                // Never below a recommendation made in the last 60 s.
                let window_max = history.iter().filter(|h| h.0 > now - 60).map(|h| h.1).max().unwrap_or(0);
                prop_assert!(desired >= window_max.min(current));
                // Scale-down and general cooldowns.
                prop_assert!(last_down.is_none_or(|u| now >= u + 30));
                prop_assert!(last_any.is_none_or(|u| now >= u + 20));
                last_down = Some(now);
            }
            // An out-of-bounds fix bypasses stabilization and records no recommendation.
            let rec = if in_bounds { d.recommended_replicas.unwrap_or(current).max(if rate.is_none() { current } else { 0 }) } else { 0 };
            history.push((now, rec, desired as i64 - current as i64));
            if desired != current {
                last_any = Some(now);
            }
            current = desired;
        }
    }

    /// A state that went through JSON decides exactly like the one kept in memory, so a
    /// restart resumes where it stopped.
    #[test]
    fn state_round_trips_through_json(rates in proptest::collection::vec(arb_rate(), 1..40)) {
        let g = tt("");
        let mut a = GroupState::default();
        let mut current = 3;
        for (i, rate) in rates.iter().enumerate() {
            let mut b: GroupState = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
            let da = decide(&g, &obs(*rate, current), &mut a, t(i as i64 * 15));
            let db = decide(&g, &obs(*rate, current), &mut b, t(i as i64 * 15));
            prop_assert_eq!(da.desired_replicas, db.desired_replicas);
            prop_assert_eq!(&a, &b);
            current = da.desired_replicas;
        }
    }

    /// With a windowed threshold, target tracking, a schedule that moves the minimum and
    /// target limits that move too: the count stays inside the effective bounds, the target's
    /// own limits always win, and missing data never scales down.
    #[test]
    fn invariants_with_every_strategy_and_target_limits(
        steps in proptest::collection::vec(
            (arb_rate(), proptest::option::of(0.0f64..100.0), proptest::option::of(0u32..4), proptest::option::of(0u32..28)),
            1..80,
        ),
        min in 0u32..3,
        span in 2u32..30,
        start in 0u32..40,
    ) {
        let max = min + span;
        let g = group(&format!(
            "groups:\n  - name: g\n    min: {min}\n    max: {max}\n    source: {{kind: static, values: {{request_rate: 0, cpu: 0}}}}\n    strategies:\n      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}\n      - kind: threshold\n        metrics: [{{metric: cpu, aggregation: avg, window: 30m, upper: 80, lower: 20}}]\n        scale_up_by: \"50%\"\n      - kind: schedule\n        timezone: UTC\n        windows: [{{business_hours: \"daily 09:00-17:00\", min: {}}}]\n    behavior:\n      scale_down: {{stabilization: 30m}}\n",
            min + 1
        ));
        let mut st = GroupState::default();
        let mut current = start;
        let t0: Timestamp = "2026-11-23T06:00:00Z".parse().unwrap();
        for (i, (rate, cpu, tmin, tmax_over_min)) in steps.iter().enumerate() {
            // A target reports consistent limits: max ≥ min.
            let tmax = &tmax_over_min.map(|x| x + tmin.unwrap_or(0));
            let mut o = obs(*rate, current);
            if let Some(c) = cpu {
                o.metrics.insert("cpu".into(), *c);
            }
            o.target_limits = Some(Limits { min: *tmin, max: *tmax });
            let now = t0 + SignedDuration::from_mins(15 * i as i64);
            let d = decide(&g, &o, &mut st, now);
            let desired = d.desired_replicas;
            prop_assert!(d.min <= d.max);
            prop_assert!(desired >= d.min && desired <= d.max, "{desired} outside {}..={}", d.min, d.max);
            if let Some(tmax) = tmax {
                prop_assert!(desired <= *tmax, "target max {tmax} exceeded: {desired}");
            }
            if let Some(tmin) = tmin {
                prop_assert!(desired >= *tmin, "target min {tmin} not met: {desired}");
            }
            let missing = rate.is_none() || cpu.is_none();
            if missing && current >= d.min && current <= d.max {
                prop_assert!(desired >= current, "scaled down on missing data: {current} → {desired}");
            }
            current = desired;
        }
    }
}

#[test]
fn negative_metric_is_invalid_and_holds() {
    let g = tt("    behavior:\n      scale_down: {stabilization: 0s}\n");
    let mut st = GroupState::default();
    let d = decide(&g, &obs(Some(-100.0), 10), &mut st, t(0));
    assert_eq!(d.desired_replicas, 10);
    assert!(!d.scale);
    assert!(d.strategies[0].missing_data);
    assert_eq!(st.consecutive_failures, 1);
    assert_eq!(
        d.strategies[0].reason.to_string(),
        "metric request_rate has an invalid value -100 (negative): counts as missing"
    );
}

#[test]
fn metric_error_wins_over_a_value() {
    let g = tt("    behavior:\n      scale_down: {stabilization: 0s}\n");
    let mut st = GroupState::default();
    let mut o = obs(Some(10.0), 10);
    o.metric_errors
        .insert("request_rate".into(), "stale: last sample 10m old".into());
    let d = decide(&g, &o, &mut st, t(0));
    assert_eq!(d.desired_replicas, 10);
    assert!(d.strategies[0].missing_data);
    assert_eq!(
        d.strategies[0].reason.to_string(),
        "metric request_rate failed: stale: last sample 10m old"
    );
}

#[test]
fn threshold_n_of_m_is_remembered_in_the_persisted_state() {
    let g = group(
        "groups:\n  - name: g\n    min: 1\n    max: 50\n    strategies:\n      - kind: threshold\n        metrics: [{metric: utilization, upper: 80}]\n        datapoints_to_alarm: 2\n        evaluation_periods: 3\n        set_to: 12\n",
    );
    let util = |v: f64| {
        let mut o = obs(None, 4);
        o.metrics.insert("utilization".into(), v);
        o
    };
    let mut st = GroupState::default();
    assert_eq!(decide(&g, &util(95.0), &mut st, t(0)).desired_replicas, 4);
    // The engine persists the state between evaluations: go through JSON.
    let json = serde_json::to_string(&st).unwrap();
    let mut st: GroupState = serde_json::from_str(&json).unwrap();
    assert_eq!(st.threshold_datapoints[&0].len(), 1);
    let d = decide(&g, &util(95.0), &mut st, t(15));
    assert_eq!(d.recommended_replicas, Some(12));
    // A config without that strategy drops its datapoints.
    decide(&tt(""), &obs(Some(10.0), 1), &mut st, t(30));
    assert!(st.threshold_datapoints.is_empty());
    // State written before the field existed still reads, and 1-of-1 groups store nothing.
    let old: GroupState = serde_json::from_str(r#"{"consecutive_failures": 2}"#).unwrap();
    assert!(old.threshold_datapoints.is_empty());
    let mut st = GroupState::default();
    decide(&tt(""), &obs(Some(10.0), 1), &mut st, t(0));
    assert!(
        !serde_json::to_string(&st)
            .unwrap()
            .contains("threshold_datapoints")
    );
}

/// (rule, strategy, from, to, text) of one structured reason.
type ReasonRow = (String, String, Option<u64>, Option<u64>, String);

/// The decision's JSON `reasons`.
fn reasons(d: &Decision) -> Vec<ReasonRow> {
    let v = serde_json::to_value(d).unwrap();
    v["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no reasons in {v}"))
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_string(),
                r["strategy"].as_str().unwrap_or("").to_string(),
                r["from"].as_u64(),
                r["to"].as_u64(),
                r["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn structured_reasons_beside_the_text() {
    let g = tt("");
    let mut st = GroupState::default();
    let d = decide(&g, &obs(Some(300.0), 2), &mut st, t(0));
    let v = serde_json::to_value(&d).unwrap();
    // The existing fields stay as they were.
    assert_eq!(v["limited_by"], "rate_limit");
    assert_eq!(
        v["strategies"][0]["reason"],
        d.strategies[0].reason.to_string()
    );
    assert_eq!(v["limits"][0]["detail"], d.limits[0].detail);
    let r = &v["reasons"][0];
    assert_eq!(r["numbers"]["value"], 300.0);
    assert_eq!(r["numbers"]["target"], 10.0);
    assert_eq!(
        reasons(&d),
        [
            (
                "strategy".into(),
                "target_tracking".into(),
                Some(2),
                Some(30),
                d.strategies[0].reason.to_string()
            ),
            (
                "rate_limit".into(),
                "".into(),
                Some(30),
                Some(6),
                d.limits[0].detail.clone()
            ),
        ]
    );
    assert_eq!(v["reasons"][1]["numbers"]["limit"], 6.0);

    // Tolerance hold.
    let d = decide(&g, &obs(Some(105.0), 10), &mut GroupState::default(), t(0));
    assert_eq!(reasons(&d)[0].0, "tolerance");

    // Missing and invalid metrics.
    let d = decide(&g, &obs(None, 8), &mut GroupState::default(), t(0));
    assert_eq!(reasons(&d)[0].0, "hold_missing_metric");
    let d = decide(&g, &obs(Some(-1.0), 8), &mut GroupState::default(), t(0));
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["reasons"][0]["rule"], "hold_invalid_metric");
    assert_eq!(v["reasons"][0]["numbers"]["value"], -1.0);

    // Stabilization.
    let mut st = GroupState::default();
    decide(&g, &obs(Some(100.0), 10), &mut st, t(0));
    let d = decide(&g, &obs(Some(20.0), 10), &mut st, t(60));
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["reasons"][1]["rule"], "stabilization");
    assert_eq!(v["reasons"][1]["numbers"]["window_seconds"], 300.0);

    // Min and max bounds.
    let g0 = tt("    behavior:\n      scale_down: {stabilization: 0s}\n");
    let d = decide(&g0, &obs(Some(0.0), 2), &mut GroupState::default(), t(0));
    assert_eq!(reasons(&d).last().unwrap().0, "min");
    let d = decide(
        &g0,
        &obs(Some(1000.0), 50),
        &mut GroupState::default(),
        t(0),
    );
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["reasons"][1]["rule"], "max");
    assert_eq!(v["reasons"][1]["numbers"]["max"], 50.0);

    // Cooldown.
    let gc = tt("    behavior:\n      cooldown: 1m\n");
    let mut st = GroupState::default();
    decide(&gc, &obs(Some(40.0), 2), &mut st, t(0));
    let d = decide(&gc, &obs(Some(80.0), 4), &mut st, t(15));
    assert_eq!(reasons(&d).last().unwrap().0, "cooldown");
}
