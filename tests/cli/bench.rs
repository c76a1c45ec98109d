//! `scalepilot bench`: quick speed and memory figures.

use serde_json::Value;

use super::run_ok;

/// `scalepilot bench` measures and reports (figures are not asserted: no timing in tests).
#[test]
fn bench_reports_its_figures() {
    let out = run_ok(&["bench", "--seconds", "0.1", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["decisions_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(v["month_ticks"], 172_800);
    assert!(v["peak_rss_kib"].as_u64().unwrap() > 0);
}

/// `scalepilot bench --api` with tiny numbers: every request answered, every figure reported
/// (their values are timings, not asserted).
#[test]
fn bench_api_loads_the_api_while_the_engine_runs() {
    let out = run_ok(&[
        "bench",
        "--api",
        "--groups",
        "10",
        "--rate",
        "50",
        "--seconds",
        "2",
        "--interval",
        "1",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["groups"], 10);
    assert_eq!(v["sent"], 100, "{v:#}");
    assert_eq!(v["errors"], 0, "{v:#}");
    assert_eq!(v["ok"], 100);
    for field in ["p50", "p90", "p99", "max"] {
        assert!(
            v["latency_ms"][field].as_f64().unwrap() > 0.0,
            "{field}: {v:#}"
        );
    }
    assert!(v["achieved_rps"].as_f64().unwrap() > 0.0);
    let endpoints = v["endpoints"].as_object().unwrap();
    assert_eq!(endpoints.len(), 4, "{v:#}");
    for (name, e) in endpoints {
        assert_eq!(e["requests"], 25, "{name}: {v:#}");
        assert_eq!(e["errors"], 0, "{name}: {v:#}");
        assert!(e["mean_bytes"].as_f64().unwrap() > 0.0, "{name}: {v:#}");
    }
    let lag = &v["loop_lag_ms"];
    assert!(lag["samples"].as_u64().unwrap() >= 1, "{v:#}");
    for field in ["max", "p99", "histogram_p99_le", "histogram_max_le"] {
        assert!(lag[field].is_number(), "{field}: {v:#}");
    }
    // Ten groups every second for two seconds: the engine kept evaluating during the load.
    assert!(lag["evaluations"].as_u64().unwrap() >= 10, "{v:#}");
    assert!(v["goal_met"].is_boolean());
}
