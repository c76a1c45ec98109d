//! `POST /api/v1/simulate` gives the report `scalepilot simulate --json` gives for the same
//! trace and policy.

use serde_json::json;

use super::{Api, OPERATOR};
use crate::cli::run_ok;

const GROUP: &str = "name: sim
min: 1
max: 60
evaluation_interval: 30s
source: {kind: static, values: {request_rate: 1}}
target: {kind: command, command: \"true\"}
strategies:
  - {kind: target_tracking, metric: request_rate, target_per_replica: 10}
";

#[test]
fn simulate_over_a_shipped_trace_matches_the_cli() {
    let api = Api::start();
    let body = json!({"config": GROUP, "trace": "nab_elb_request_count"}).to_string();
    let r = api.post("/api/v1/simulate", OPERATOR, &body);
    assert_eq!(r.status, 200, "{r:?}");
    let names: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hpa", "oracle", "sim"]);

    // The CLI, on the same trace folder and the group in a config file.
    let config = api.dir.path().join("sim.yaml");
    std::fs::write(
        &config,
        format!("groups:\n  - {}", GROUP.replace('\n', "\n    ")),
    )
    .unwrap();
    let out = run_ok(&[
        "simulate",
        "--trace",
        concat!(env!("CARGO_MANIFEST_DIR"), "/traces/nab_elb_request_count"),
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]);
    let cli: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(r.json, cli);

    // An uploaded trace, simulated the same way.
    let csv: String = std::iter::once("timestamp_seconds,value\n".to_string())
        .chain((0..1440).map(|m| format!("{},{}\n", m * 60, 600 + (m % 120) * 30)))
        .collect();
    let body = json!({"config": GROUP, "trace": {"csv": csv}}).to_string();
    let r = api.post("/api/v1/simulate", OPERATOR, &body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["trace"], "upload");
    assert_eq!(r.json["results"][2]["policy"], "sim");
    assert!(
        r.json["results"][2]["actions"].as_u64().unwrap() > 0,
        "{}",
        r.json
    );
}
