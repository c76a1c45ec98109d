//! `scalepilot simulate` against the benchmark's reference figures and its output formats.

use serde_json::Value;

use super::{run, run_ok};

fn json(args: &[&str]) -> Value {
    let mut all = vec!["simulate", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&run_ok(&all).stdout).expect("simulate --json prints JSON")
}

fn result<'a>(v: &'a Value, policy: &str) -> &'a Value {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == policy)
        .unwrap_or_else(|| panic!("no {policy} in {v}"))
}

fn close(got: f64, want: f64, what: &str) {
    let rel = (got - want).abs() / want.abs();
    assert!(rel <= 0.02, "{what}: got {got}, want {want} (±2 %)");
}

/// The Kubernetes HPA model on the shared traces (peak 40 replicas, 60 s startup) gives the
/// reference figures: any difference means the model or the HPA rules changed.
#[test]
fn hpa_cross_check_on_every_trace() {
    let cases = [
        ("traces/nasa_http_1995", Some("2381580"), 1.766, 0.314),
        ("traces/nab_elb_request_count", None, 1.825, 5.46),
        ("traces/nab_nyc_taxi", None, 1.405, 0.011),
        ("traces/azure_llm_conv_2023", None, 1.590, 4.05),
    ];
    for (trace, to, cost, unserved) in cases {
        let mut args = vec![
            "--trace",
            trace,
            "--policy",
            "hpa",
            "--peak-replicas",
            "40",
            "--startup",
            "60s",
        ];
        if let Some(to) = to {
            args.extend_from_slice(&["--from", "0", "--to", to]);
        }
        let v = json(&args);
        let hpa = result(&v, "hpa");
        close(
            hpa["cost_ratio"].as_f64().unwrap(),
            cost,
            &format!("{trace} cost_ratio"),
        );
        close(
            hpa["unserved_pct"].as_f64().unwrap(),
            unserved,
            &format!("{trace} unserved_pct"),
        );
    }
}

/// The oracle is the cost baseline (ratio 1, nothing unserved); static peak never moves.
#[test]
fn oracle_and_static_peak_bracket_the_costs() {
    let v = json(&["--trace", "traces/nab_elb_request_count"]);
    let oracle = result(&v, "oracle");
    assert!((oracle["cost_ratio"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(oracle["unserved_pct"].as_f64().unwrap(), 0.0);
    let peak = result(&v, "static-peak");
    assert_eq!(peak["actions"], 0);
    assert_eq!(peak["unserved_pct"].as_f64().unwrap(), 0.0);
    let hpa = result(&v, "hpa");
    assert!(peak["cost_ratio"].as_f64().unwrap() > hpa["cost_ratio"].as_f64().unwrap());
    for k in [
        "cost_ratio",
        "unserved_pct",
        "underprov_time_pct",
        "actions",
        "replica_hours",
        "oracle_replica_hours",
    ] {
        assert!(hpa.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["trace"], "nab_elb_request_count");
}

/// A config group written to mean exactly the HPA gives exactly the built-in HPA's figures:
/// user policies and the reference run through the same decide().
#[test]
fn config_policy_runs_through_the_same_core_as_the_builtin_hpa() {
    let v = json(&[
        "--trace",
        "traces/azure_llm_conv_2023",
        "--capacity",
        "0.5",
        "--policy",
        "hpa",
        "--config",
        "tests/configs/hpa-equivalent.yaml",
    ]);
    let a = result(&v, "hpa");
    let b = result(&v, "hpa-as-config");
    for k in [
        "cost_ratio",
        "unserved_pct",
        "underprov_time_pct",
        "actions",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
}

/// Own min/max/behavior apply to config policies: a stricter max means unserved load.
#[test]
fn config_policies_keep_their_own_bounds() {
    let v = json(&[
        "--trace",
        "traces/azure_llm_conv_2023",
        "--config",
        "examples/policies/simulate-target-tracking.yaml",
        "--group",
        "tt-60",
        "--policy",
        "oracle",
    ]);
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    assert!(result(&v, "tt-60")["cost_ratio"].as_f64().unwrap() > 1.0);
    let out = run(&[
        "simulate",
        "--trace",
        "traces/azure_llm_conv_2023",
        "--config",
        "examples/policies/web.yaml",
        "--group",
        "nope",
    ]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no group named nope"), "{}", out.stderr);
}

#[test]
fn table_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("chart.svg");
    let out = run_ok(&[
        "simulate",
        "--trace",
        "traces/nab_elb_request_count",
        "--from",
        "0",
        "--to",
        "3d",
        "--chart",
        chart.to_str().unwrap(),
    ]);
    let header = out.stdout.lines().nth(1).unwrap();
    assert!(
        header.starts_with("policy")
            && header.contains("cost_ratio")
            && header.contains("unserved_%"),
        "{header}"
    );
    assert_eq!(out.stdout.lines().count(), 5, "{}", out.stdout);
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg"));
    for name in ["hpa:", "oracle:", "static-peak:"] {
        assert!(svg.contains(name), "chart lacks {name}");
    }
    assert!(
        svg.matches("<polyline").count() >= 9,
        "three lines per policy"
    );
}

#[test]
fn range_and_gap_handling() {
    // NASA has no rows for [2381580, 2678400) (meta.json: gap_seconds 296880 after t=2381520):
    // warned about when inside the range.
    let out = run_ok(&[
        "simulate",
        "--trace",
        "traces/nasa_http_1995",
        "--from",
        "2300000",
        "--to",
        "2700000",
        "--policy",
        "oracle",
    ]);
    assert!(
        out.stderr.contains("no rows for 296820 s after t=2381520"),
        "{}",
        out.stderr
    );
    let out = run_ok(&[
        "simulate",
        "--trace",
        "traces/nasa_http_1995",
        "--to",
        "1d",
        "--policy",
        "oracle",
    ]);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let out = run(&[
        "simulate",
        "--trace",
        "traces/nasa_http_1995",
        "--from",
        "100",
        "--to",
        "50",
    ]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("empty range"), "{}", out.stderr);
    let out = run(&[
        "simulate",
        "--trace",
        "traces/azure_llm_conv_2023",
        "--to",
        "1d",
    ]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("range [0, 86400) is outside the trace, which covers [0, 3503)"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_trace_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "timestamp_seconds,value\n0,5\n60,five\n").unwrap();
    let out = run(&["simulate", "--trace", csv.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("line 3: value `five` is not a number"),
        "{}",
        out.stderr
    );
}
