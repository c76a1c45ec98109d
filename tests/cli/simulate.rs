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

/// The shared traces and ranges the recommended policy is judged on (NASA also on its clean
/// window, without the missing days and the outage).
const TRACES: [(&str, Option<&str>); 5] = [
    ("traces/nasa_http_1995", None),
    ("traces/nasa_http_1995", Some("2381580")),
    ("traces/nab_elb_request_count", None),
    ("traces/nab_nyc_taxi", None),
    ("traces/azure_llm_conv_2023", None),
];

/// `--policy recommended` must cost less AND leave less unserved than `hpa` on every shared
/// trace, under the benchmark model (peak 40 replicas, 60 s startup).
#[test]
fn recommended_pareto_beats_hpa_on_every_trace() {
    for (trace, to) in TRACES {
        let mut args = vec![
            "--trace",
            trace,
            "--policy",
            "hpa",
            "--policy",
            "recommended",
        ];
        if let Some(to) = to {
            args.extend_from_slice(&["--to", to]);
        }
        let v = json(&args);
        let (hpa, rec) = (result(&v, "hpa"), result(&v, "recommended"));
        let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
        assert!(
            f(rec, "cost_ratio") < f(hpa, "cost_ratio")
                && f(rec, "unserved_pct") < f(hpa, "unserved_pct"),
            "{trace} {to:?}: recommended {} / {} % against hpa {} / {} %",
            f(rec, "cost_ratio"),
            f(rec, "unserved_pct"),
            f(hpa, "cost_ratio"),
            f(hpa, "unserved_pct")
        );
        // Money follows replica-hours at the default price.
        assert!((f(rec, "cost") - 0.1 * f(rec, "replica_hours")).abs() < 1e-6 * f(rec, "cost"));
    }
}

/// The sweep runs the HPA at five targets and the recommended policy at seven knob values,
/// compares them at the HPA's unserved level and draws the frontier.
#[test]
fn sweep_prints_the_frontier() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("frontier.svg");
    let chart_arg = chart.to_str().unwrap();
    let v = json(&[
        "--trace",
        "traces/nab_elb_request_count",
        "--sweep",
        "--chart",
        chart_arg,
    ]);
    let names: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    for want in [
        "hpa@50%",
        "hpa@90%",
        "recommended@x0.5",
        "recommended@x1",
        "recommended@x5",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // Looser knobs cost less.
    let cost = |p: &str| result(&v, p)["cost_ratio"].as_f64().unwrap();
    assert!(cost("recommended@x0.5") > cost("recommended@x1"));
    assert!(cost("recommended@x1") > cost("recommended@x5"));
    assert!(cost("hpa@50%") > cost("hpa@90%"));
    let cmp = &v["at_hpa_unserved"][0];
    assert_eq!(cmp["policy"], "recommended");
    // Measured 14.8 % on this trace; the goal is at least 10 %.
    let saving = cmp["saving_pct"].as_f64().unwrap();
    assert!(
        saving >= 10.0,
        "saving at the HPA's unserved level: {saving} %"
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.contains("<svg") && svg.contains("recommended") && svg.contains("hpa"));
    // The table form says the same in words.
    let out = run_ok(&[
        "simulate",
        "--trace",
        "traces/nab_elb_request_count",
        "--sweep",
    ]);
    assert!(
        out.stdout
            .contains("at hpa@70%'s unserved 5.464 %: recommended costs"),
        "{}",
        out.stdout
    );
    // Nothing to sweep is an error, not an empty table.
    let out = run(&[
        "simulate",
        "--trace",
        "traces/nab_elb_request_count",
        "--sweep",
        "--policy",
        "hpa",
    ]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("--sweep needs a policy with a predictive or cost strategy"),
        "{}",
        out.stderr
    );
}

/// A budget caps what a priced group spends per hour, and the report says what it cost.
#[test]
fn budgets_cap_spend_in_simulation() {
    let v = json(&[
        "--trace",
        "traces/nab_nyc_taxi",
        "--to",
        "7d",
        "--config",
        "tests/configs/priced.yaml",
        "--policy",
        "hpa",
    ]);
    let priced = result(&v, "priced");
    let hours = 7.0 * 24.0;
    let cost = priced["cost"].as_f64().unwrap();
    // per_hour 2.0: never more than 2.0 × hours (+ one evaluation's rounding).
    assert!(cost <= 2.0 * hours * 1.001, "cost {cost}");
    // The cap binds: the same policy without a budget spends more (hpa at 0.10 is unrelated)
    // and leaves less unserved.
    let dir = tempfile::tempdir().unwrap();
    let unbudgeted = dir.path().join("unbudgeted.yaml");
    let text = std::fs::read_to_string("tests/configs/priced.yaml").unwrap();
    let (kept, budget) = text.split_once("      budget:").unwrap();
    assert!(budget.contains("per_hour: 2.0"), "{budget}");
    std::fs::write(&unbudgeted, kept).unwrap();
    let free = json(&[
        "--trace",
        "traces/nab_nyc_taxi",
        "--to",
        "7d",
        "--config",
        unbudgeted.to_str().unwrap(),
        "--policy",
        "oracle",
    ]);
    let free = result(&free, "priced");
    let free_cost = free["cost"].as_f64().unwrap();
    assert!(
        free_cost > cost * 1.01,
        "without the budget {free_cost}, with it {cost}"
    );
    assert!(
        free["unserved_pct"].as_f64().unwrap() < priced["unserved_pct"].as_f64().unwrap(),
        "{free} against {priced}"
    );
    assert!(priced["unserved_pct"].as_f64().unwrap() > 1.0);
    assert!(priced["cost_per_million_served"].as_f64().unwrap() > 0.0);
}

/// A warm start learns the seasons before the range starts: from day 14 of the taxi trace, the
/// warm group forecasts at once and pays less than the cold one that must learn a day first.
#[test]
fn warm_start_pays_from_the_first_day() {
    let v = json(&[
        "--trace",
        "traces/nab_nyc_taxi",
        "--from",
        "14d",
        "--to",
        "16d",
        "--config",
        "tests/configs/warm-start.yaml",
    ]);
    let cost = |p: &str| result(&v, p)["cost_ratio"].as_f64().unwrap();
    let unserved = |p: &str| result(&v, p)["unserved_pct"].as_f64().unwrap();
    assert!(
        cost("warm") < 0.95 * cost("cold"),
        "warm {} cold {}",
        cost("warm"),
        cost("cold")
    );
    assert!(unserved("warm") <= unserved("cold") + 0.001);
    // A missing warm-start file is an error that names the group and the file.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string("tests/configs/warm-start.yaml")
            .unwrap()
            .replace("taxi-first-2-weeks.csv", "missing.csv"),
    )
    .unwrap();
    let out = run(&[
        "simulate",
        "--trace",
        "traces/nab_nyc_taxi",
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("group warm: cannot read warm_start trace")
            && out.stderr.contains("missing.csv"),
        "{}",
        out.stderr
    );
}

/// Numbers outside the model's range are refused with the option named, instead of
/// saturating into nonsense (a capacity of 1e-300 req/s per replica).
#[test]
fn out_of_range_numbers_are_refused() {
    let refused = |extra: &[&str], want: &str| {
        let mut args = vec!["simulate", "--trace", "traces/nab_nyc_taxi"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(out.code, Some(1), "{extra:?}: {}", out.stdout);
        assert!(out.stderr.contains(want), "{extra:?}: {}", out.stderr);
    };
    for c in ["1e-300", "0", "-1", "NaN", "inf", "1e10"] {
        refused(
            &[&format!("--capacity={c}")],
            "--capacity must be a finite number from 0.000001 to 1000000000",
        );
    }
    for p in ["-0.5", "NaN", "inf", "1e7"] {
        refused(
            &[&format!("--price={p}")],
            "--price must be a finite number from 0 to 1000000",
        );
    }
    refused(&["--startup", "400d"], "--startup must be at most 366d");
    refused(&["--window", "400d"], "--window must be at most 366d");
    // The bounds themselves are fine.
    run_ok(&[
        "simulate",
        "--trace",
        "traces/nab_nyc_taxi",
        "--capacity",
        "1e-6",
        "--price",
        "0",
        "--policy",
        "oracle",
    ]);
}
