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
