//! A global budget shared by two priced groups: together they never scale past it, and the
//! webhook hears when a budget starts capping a group.

use std::time::Duration;

use super::reload::receiver;
use super::{Daemon, wait_until};

fn config(hook: u16, dir: &std::path::Path) -> String {
    let group = |name: &str| {
        format!(
            r#"  - name: {name}
    min: 1
    max: 50
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 100}}}}
    target:
      kind: command
      command: "echo $SCALEPILOT_DESIRED > {}"
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 5}}
    cost: {{price_per_replica_hour: 0.10}}
"#,
            dir.join(format!("{name}.txt")).display()
        )
    };
    format!(
        "store: {{kind: sqlite, path: sp.db}}\nalerts: {{webhook: \"http://127.0.0.1:{hook}/hook\", attempts: 2}}\n# 3.00/h at 0.10 per replica-hour: 30 replicas between both groups, which want 20 each.\nbudget: {{per_hour: 3.0}}\ngroups:\n{}{}",
        group("a"),
        group("b")
    )
}

fn count(dir: &std::path::Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(dir.join(format!("{name}.txt")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn a_global_budget_caps_the_groups_together_and_alerts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (hook, got) = receiver();
    let path = dir.join("budget.yaml");
    std::fs::write(&path, config(hook, dir)).unwrap();
    let mut daemon = Daemon::start(&path, (0, 0), &[]);
    // Both scale up until the budget binds: 30 between them, each as much as it could get.
    let settled = wait_until(Duration::from_secs(60), || {
        let (a, b) = (count(dir, "a"), count(dir, "b"));
        matches!((a, b), (Some(a), Some(b)) if a + b == 30)
    });
    // The group that came second is capped at its next evaluation.
    wait_until(Duration::from_secs(20), || {
        got.lock().unwrap().iter().any(|v| v["event"] == "budget")
    });
    let alerts = got.lock().unwrap().clone();
    let log = daemon.log();
    daemon.stop();
    assert!(
        settled,
        "a={:?} b={:?}\n{log}",
        count(dir, "a"),
        count(dir, "b")
    );
    // Never above the budget on the way: every scaling action of both groups kept the sum
    // of the latest counts at or under 30.
    let mut latest = std::collections::HashMap::new();
    // Read the history directly: a failing `history` (or an empty one) must fail the test,
    // not make the loop below check nothing.
    let out = std::process::Command::new(super::BIN)
        .args([
            "history",
            "--config",
            path.to_str().unwrap(),
            "--json",
            "--limit",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "history failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut acts: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "history printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
    // Both groups scaled up from 1 at least once to reach 30 between them.
    for g in ["a", "b"] {
        assert!(
            acts.iter()
                .any(|a| a["group"] == g && a["status"] == "succeeded"),
            "no succeeded activity of {g} in {acts:?}"
        );
    }
    acts.reverse(); // oldest first
    for a in &acts {
        latest.insert(
            a["group"].as_str().unwrap().to_string(),
            a["to_replicas"].as_u64().unwrap(),
        );
        let sum: u64 = latest.values().sum();
        assert!(sum <= 30, "over budget after {a}: {latest:?}");
    }
    // A capped decision that leaves the count where it is makes no activity; the log and
    // the alert say it.
    assert!(log.contains("budget caps the count at"), "{log}");
    let budget_alerts: Vec<_> = alerts.iter().filter(|v| v["event"] == "budget").collect();
    assert!(!budget_alerts.is_empty(), "no budget alert in {alerts:?}");
    let msg = budget_alerts[0]["message"].as_str().unwrap();
    assert!(msg.contains("budget caps the count at"), "{msg}");
    assert!(
        budget_alerts[0]["details"]["detail"]
            .as_str()
            .unwrap()
            .contains("global budget leaves")
    );
}
