//! Parsing valid configs into the compiled model (invalid ones: tests/cli/validate.rs).

use super::*;
use crate::behavior::{RateKind, Select};
use crate::strategy::{Goal, Step, Strategy};

const MINIMAL: &str = "groups:\n  - name: web\n    min: 1\n    max: 10\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 50}\n";

#[test]
fn defaults_follow_kubernetes_autoscaling_v2() {
    let c = parse(MINIMAL, "m.yaml").unwrap();
    let g = &c.groups[0];
    assert_eq!(g.evaluation_interval, SignedDuration::from_secs(15));
    assert!(g.enabled && !g.dry_run);
    let b = &g.behavior;
    assert_eq!(b.scale_up.stabilization, SignedDuration::ZERO);
    assert_eq!(b.scale_down.stabilization, SignedDuration::from_secs(300));
    assert_eq!(b.scale_up.policies.len(), 2);
    assert_eq!(b.scale_up.select, Select::Max);
    assert_eq!(b.scale_down.policies[0].kind, RateKind::Percent);
    assert!(b.fallback.is_none() && b.business_hours_only.is_none());
    match &g.strategies[0] {
        Strategy::TargetTracking(t) => {
            assert_eq!(t.goal, Goal::PerReplica(50.0));
            assert_eq!((t.tolerance_up, t.tolerance_down), (0.1, 0.1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn shipped_web_example_compiles_every_part() {
    let text = include_str!("../../../../examples/policies/web.yaml");
    let c = parse(text, "web.yaml").unwrap();
    let g = c.group("web").unwrap();
    assert_eq!((g.min, g.max), (2, 40));
    assert_eq!(g.strategies.len(), 3);
    match &g.strategies[0] {
        Strategy::TargetTracking(t) => assert_eq!((t.tolerance_up, t.tolerance_down), (0.05, 0.15)),
        other => panic!("{other:?}"),
    }
    match &g.strategies[1] {
        Strategy::Threshold(t) => {
            assert_eq!(t.scale_up_by, Step::Percent(50.0));
            assert_eq!(t.metrics[0].window, SignedDuration::from_mins(2));
            assert_eq!(t.metrics[1].weight, 2.0);
        }
        other => panic!("{other:?}"),
    }
    match &g.strategies[2] {
        Strategy::Schedule(s) => {
            assert_eq!(&*s.zone_name, "Asia/Dhaka");
            assert_eq!(s.windows.len(), 2);
            assert_eq!(&*s.windows[1].label, "friday sale");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(g.behavior.scale_down.cooldown, SignedDuration::from_mins(2));
    assert_eq!(g.behavior.fallback.map(|f| f.replicas), Some(10));
    assert!(matches!(
        g.source,
        Some(super::SourceSpec::Prometheus { .. })
    ));
    assert!(matches!(g.target, Some(super::TargetSpec::ProcessPool(_))));
}

#[test]
fn pinned_window_sets_min_and_max() {
    let text = "groups:\n  - name: w\n    min: 0\n    max: 9\n    strategies:\n      - kind: schedule\n        windows:\n          - {cron: \"0 8 * * *\", duration: 90m, replicas: 3}\n";
    let g = parse(text, "w.yaml").unwrap().groups.remove(0);
    match &g.strategies[0] {
        Strategy::Schedule(s) => {
            assert_eq!((s.windows[0].min, s.windows[0].max), (Some(3), Some(3)));
            assert_eq!(&*s.zone_name, "UTC");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn problems_from_several_groups_come_together_in_file_order() {
    let text = "groups:\n  - name: a\n    min: 3\n    max: 1\n    strategies: []\n  - name: a\n    min: 1\n    max: 2\n    strategies:\n      - {kind: target_tracking, metric: nope, target: 50}\n";
    let e = parse(text, "x.yaml").unwrap_err();
    let lines: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "x.yaml:3:5: groups[0].min: min 3 is greater than max 1",
            "x.yaml:5:5: groups[0].strategies: no strategies: expected at least one",
            "x.yaml:6:5: groups[1].name: duplicate group name \"a\"",
            "x.yaml:10:33: groups[1].strategies[0].metric: unknown metric `nope`: the group's source provides `request_rate`, `utilization`",
        ]
    );
}

/// Every field the schema declares as a list is in `LIST_FIELDS`, and nothing else: lists
/// anywhere else are refused before serde could fill a struct from them.
#[test]
fn list_fields_match_the_schema() {
    fn walk(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    for (name, prop) in props {
                        let ty = &prop["type"];
                        if ty == "array"
                            || ty
                                .as_array()
                                .is_some_and(|a| a.iter().any(|t| t == "array"))
                        {
                            out.insert(name.clone());
                        }
                    }
                }
                for child in map.values() {
                    walk(child, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(raw::ConfigFile)).unwrap();
    let mut found = std::collections::BTreeSet::new();
    walk(&schema, &mut found);
    let listed: std::collections::BTreeSet<String> = structure::LIST_FIELDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, listed);
}

#[test]
fn lists_in_place_of_mappings_are_refused() {
    let text = "groups:\n  - [a, 1, 10, 15s]\n  - name: b\n    min: 1\n    max: 2\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 5}\n    behavior: [[0s], [600s]]\n";
    let e = parse(text, "l.yaml").unwrap_err().to_string();
    assert_eq!(
        e,
        "l.yaml:2:5: groups[0]: expected a mapping or a single value, found a list\nl.yaml:8:5: groups[1].behavior: expected a mapping or a single value, found a list"
    );
}

#[test]
fn multiple_documents_and_tags_are_refused() {
    let e = parse(&format!("{MINIMAL}---\ngroups: []\n"), "m.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds 2 YAML documents"), "{e}");
    let e = parse(&MINIMAL.replace("max: 10", "max: !custom 10"), "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("YAML tags such as `!custom` are not supported"),
        "{e}"
    );
    let e = parse(
        &MINIMAL.replace("max: 10", "max: 10\n    evaluation_interval: 15"),
        "d.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.ends_with("expected a string: write a duration such as \"15s\" or \"5m\""),
        "{e}"
    );
}

#[test]
fn weekly_profiles_keep_two_weeks_of_samples_unless_told_otherwise() {
    let retention = |text: &str| parse(text, "r.yaml").unwrap().store.sample_retention();
    let predictive = |seasons: &str| {
        format!(
            "groups:\n  - name: web\n    min: 1\n    max: 10\n    strategies:\n      - {{kind: predictive, metric: request_rate, seasonality: [{seasons}]}}\n"
        )
    };
    let days = |d: i64| SignedDuration::from_hours(d * 24);
    assert_eq!(retention(MINIMAL), days(7));
    assert_eq!(retention(&predictive("daily, weekly")), days(15));
    assert_eq!(retention(&predictive("daily")), days(7));
    let explicit = format!(
        "store: {{kind: sqlite, path: x.db, sample_retention: 9d}}\n{}",
        predictive("weekly")
    );
    assert_eq!(retention(&explicit), days(9));
}

fn threshold_problems(extra: &str) -> Vec<String> {
    let text = format!(
        "groups:\n  - name: a\n    min: 1\n    max: 20\n    strategies:\n      - kind: threshold\n        metrics: [{{metric: utilization, upper: 80, lower: 30}}]\n{extra}"
    );
    match parse(&text, "x.yaml") {
        Ok(_) => vec![],
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn threshold_n_of_m_and_set_to_are_validated() {
    assert_eq!(
        threshold_problems("        datapoints_to_alarm: 3\n        evaluation_periods: 2\n"),
        [
            "x.yaml:8:9: groups[0].strategies[0].datapoints_to_alarm: datapoints_to_alarm 3 is greater than evaluation_periods 2: expected 1 ≤ datapoints_to_alarm ≤ evaluation_periods ≤ 100"
        ]
    );
    assert_eq!(
        threshold_problems("        evaluation_periods: 101\n"),
        [
            "x.yaml:8:9: groups[0].strategies[0].evaluation_periods: evaluation_periods 101 is out of range: expected 1 to 100"
        ]
    );
    assert_eq!(
        threshold_problems("        datapoints_to_alarm: 0\n        evaluation_periods: 5\n"),
        [
            "x.yaml:8:9: groups[0].strategies[0].datapoints_to_alarm: datapoints_to_alarm must be at least 1"
        ]
    );
    assert_eq!(
        threshold_problems("        set_to: 8\n        scale_up_by: 2\n"),
        [
            "x.yaml:8:9: groups[0].strategies[0].set_to: set either `set_to` or `scale_up_by`/`scale_down_by`, not both"
        ]
    );
    assert_eq!(
        threshold_problems("        set_to: 30\n"),
        [
            "x.yaml:8:9: groups[0].strategies[0].set_to: set_to 30 is outside the group's range 1..=20"
        ]
    );
    // One of the two alone means "all of them" (CloudWatch's default); neither is 1 of 1.
    let text = "groups:\n  - name: a\n    min: 1\n    max: 20\n    strategies:\n      - kind: threshold\n        metrics: [{metric: utilization, upper: 80}]\n        evaluation_periods: 4\n        set_to: 12\n      - kind: threshold\n        metrics: [{metric: utilization, upper: 80}]\n";
    let c = parse(text, "x.yaml").unwrap();
    match (&c.groups[0].strategies[0], &c.groups[0].strategies[1]) {
        (Strategy::Threshold(a), Strategy::Threshold(b)) => {
            assert_eq!(
                (a.datapoints_to_alarm, a.evaluation_periods, a.set_to),
                (4, 4, Some(12))
            );
            assert_eq!(
                (b.datapoints_to_alarm, b.evaluation_periods, b.set_to),
                (1, 1, None)
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Sources and targets come out of validation typed: durations parsed, defaults applied,
/// so the engine has nothing left to interpret.
#[test]
fn sources_and_targets_are_compiled_with_defaults() {
    use std::time::Duration;
    let text = r#"
groups:
  - name: web
    min: 1
    max: 10
    source: {kind: prometheus_text, metrics: {rps: "rate(backend_requests_total)"}}
    target:
      kind: haproxy
      backend: web
      admin_socket: /run/haproxy.sock
      drain_timeout: 45s
      pool: {command: "app --port {port}", ports: "20000-20010", scale_in: least_loaded}
    strategies:
      - {kind: target_tracking, metric: rps, target_per_replica: 50}
  - name: batch
    min: 1
    max: 10
    source: {kind: prometheus, url: "http://127.0.0.1:9090", queries: {q: "up"}, timeout: 2s}
    target: {kind: command, command: "true"}
    strategies:
      - {kind: target_tracking, metric: q, target: 5}
"#;
    let c = parse(text, "t.yaml").unwrap();
    let web = &c.groups[0];
    match &web.source {
        Some(SourceSpec::PrometheusText { metrics, path }) => {
            assert_eq!(path, "/metrics");
            assert_eq!(metrics[0].agg, text_metric::TextAgg::Rate);
            assert_eq!(metrics[0].series, "backend_requests_total");
        }
        other => panic!("{other:?}"),
    }
    match &web.target {
        Some(TargetSpec::Haproxy(h)) => {
            assert_eq!(h.drain_timeout, Duration::from_secs(45));
            assert_eq!(h.server_prefix, "sp-");
            assert_eq!(
                h.mode,
                HaproxyMode::Runtime {
                    admin_socket: "/run/haproxy.sock".into()
                }
            );
            assert_eq!(h.pool.ports, (20000, 20010));
            assert_eq!(h.pool.health_path, "/healthz");
            assert_eq!(h.pool.health_interval, Duration::from_secs(10));
            assert_eq!(h.pool.drain, Duration::from_secs(5));
            assert_eq!(h.pool.hosts[0].address, "127.0.0.1");
            // least_loaded reads the prometheus_text source's path.
            assert_eq!(
                h.pool.scale_in,
                ScaleIn::LeastLoaded {
                    metric: DEFAULT_LOAD_METRIC.into(),
                    path: "/metrics".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let batch = &c.groups[1];
    match &batch.source {
        Some(SourceSpec::Prometheus { timeout, .. }) => {
            assert_eq!(*timeout, Duration::from_secs(2))
        }
        other => panic!("{other:?}"),
    }
    match &batch.target {
        Some(TargetSpec::Command(cmd)) => {
            assert_eq!(cmd.timeout, Duration::from_secs(60));
            assert_eq!(cmd.status_command, None);
        }
        other => panic!("{other:?}"),
    }
}
