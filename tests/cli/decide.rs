//! `scalepilot decide`: one offline decision with its reasons and the new state.

use serde_json::{Value, json};

use super::{run, run_with_stdin};

fn decide(input: &Value, group: &str) -> (Option<i32>, Value, String) {
    let out = run_with_stdin(
        &[
            "decide",
            "--config",
            "examples/policies/web.yaml",
            "--group",
            group,
            "--input",
            "-",
        ],
        Some(&input.to_string()),
    );
    let v = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out.code, v, out.stderr)
}

#[test]
fn decision_explains_itself_and_returns_the_state() {
    // Monday 2026-11-23 12:00 UTC = 18:00 in Dhaka: after business hours.
    let input = json!({
        "now": "2026-11-23T12:00:00Z",
        "observation": {
            "metrics": {"request_rate": 1000.0, "cpu": 50.0, "latency_p95": 0.2},
            "current_replicas": 4,
            "ready_replicas": 4
        }
    });
    let (code, v, err) = decide(&input, "web");
    assert_eq!(code, Some(0), "{err}");
    let d = &v["decision"];
    assert_eq!(d["recommended_replicas"], 20);
    // Up to max(4 + 4, 4 × 2) = 8 in 15 s.
    assert_eq!(d["desired_replicas"], 8);
    assert_eq!(d["limited_by"], "rate_limit");
    assert_eq!(d["scale"], true);
    let reasons: Vec<&str> = d["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].contains("ceil(1000.000/50) = 20"), "{reasons:?}");
    assert!(reasons[1].contains("inside their bounds"), "{reasons:?}");
    assert_eq!(reasons[2], "no window active (Asia/Dhaka)");
    // The new state carries the event and the recommendation for the next call.
    assert_eq!(v["state"]["scale_events"][0]["change"], 4);
    assert_eq!(v["state"]["recommendations"][0]["replicas"], 20);
    assert!(v["summary"].as_str().unwrap().starts_with("4 → 8"));
}

#[test]
fn state_from_a_previous_call_is_honoured() {
    // A scale-down 2 minutes ago set a 2-minute scale-down cooldown; the 300 s window holds 12.
    let input = json!({
        "now": "2026-11-23T12:00:00Z",
        "observation": {"metrics": {"request_rate": 100.0, "cpu": 10.0, "latency_p95": 0.01}, "current_replicas": 12},
        "state": {
            "recommendations": [{"at": "2026-11-23T11:58:00Z", "replicas": 12}],
            "cooldowns": {"scale_down_until": "2026-11-23T12:01:00Z"}
        }
    });
    let (code, v, err) = decide(&input, "web");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["decision"]["desired_replicas"], 12);
    assert_eq!(v["decision"]["limits"][0]["rule"], "stabilization");
}

#[test]
fn bad_input_names_the_field() {
    let input = json!({"now": "2026-11-23T12:00:00Z", "observation": {"current_replicas": "four"}});
    let (code, _, err) = decide(&input, "web");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("<stdin>: invalid input at `observation.current_replicas`"),
        "{err}"
    );
    let input = json!({"now": "yesterday", "observation": {"current_replicas": 1}});
    let (code, _, err) = decide(&input, "web");
    assert_eq!(code, Some(1));
    assert!(err.contains("`now`"), "{err}");
    let input = json!({"now": "2026-11-23T12:00:00Z", "observation": {"current_replicas": 1, "replicas": 2}});
    let (_, _, err) = decide(&input, "web");
    assert!(err.contains("unknown field `replicas`"), "{err}");
}

#[test]
fn unknown_group_lists_the_known_ones() {
    let out = run(&[
        "decide",
        "--config",
        "examples/policies/web.yaml",
        "--group",
        "api",
        "--input",
        "-",
    ]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("no group `api`") && out.stderr.contains("web"),
        "{}",
        out.stderr
    );
}

/// Cases ported from the Kubernetes HPA controller's unit tests (each file cites its test):
/// the same inputs must give the number Kubernetes expects.
#[test]
fn kubernetes_hpa_cases() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for entry in std::fs::read_dir("tests/cases/decide").unwrap() {
        let path = entry.unwrap().path();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(
            case["source"]
                .as_str()
                .is_some_and(|s| s.contains("horizontal_test.go")),
            "{path:?} cites no source"
        );
        let config = dir.path().join("case.yaml");
        std::fs::write(&config, case["config"].as_str().unwrap()).unwrap();
        let out = run_with_stdin(
            &[
                "decide",
                "--config",
                config.to_str().unwrap(),
                "--input",
                "-",
            ],
            Some(&case["input"].to_string()),
        );
        let got: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        let want = &case["expect"]["desired_replicas"];
        if &got["decision"]["desired_replicas"] != want {
            failures.push(format!(
                "{}: want {want}, got {} {}",
                path.display(),
                got["decision"]["desired_replicas"],
                out.stderr
            ));
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
