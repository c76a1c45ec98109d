//! `scalepilot once`: evaluate every group once; exit 1 when any failed.

use std::process::Command;

use super::{BIN, activities, errors};

fn write(dir: &std::path::Path, command: &str) -> std::path::PathBuf {
    let path = dir.join("once.yaml");
    std::fs::write(
        &path,
        format!(
            r#"store: {{kind: sqlite, path: sp.db}}
groups:
  - name: web
    min: 1
    max: 10
    source: {{kind: static, values: {{request_rate: 40}}}}
    target: {{kind: command, command: "{command}"}}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn once_scales_and_reports_failures_with_the_scripts_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out_file = dir.join("replicas.txt");
    let path = write(
        dir,
        &format!(
            "echo $SCALEPILOT_GROUP=$SCALEPILOT_DESIRED > {}",
            out_file.display()
        ),
    );
    let out = Command::new(BIN)
        .args(["once", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("web: 1 → 4"));
    assert_eq!(std::fs::read_to_string(&out_file).unwrap().trim(), "web=4");
    assert_eq!(activities(&path)[0]["status"], "succeeded");

    // A dead webhook does not stop scaling: the action succeeds, the alert failure is recorded.
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "true");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("alerts: {{webhook: \"http://127.0.0.1:1/hook\", attempts: 2}}\n{text}"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["once", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(activities(&path)[0]["status"], "succeeded");
    assert!(
        errors(&path).iter().any(|e| e["component"] == "alert"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("failed after 2 attempts")),
        "{:?}",
        errors(&path)
    );

    // A failing script: exit 1, the script's stderr in the activity and the errors.
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "echo no quota left >&2; exit 3");
    let out = Command::new(BIN)
        .args(["once", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no quota left"), "{stderr}");
    let act = &activities(&path)[0];
    assert_eq!(act["status"], "failed");
    assert!(
        act["error"].as_str().unwrap().contains("no quota left"),
        "{act}"
    );
    assert!(errors(&path).iter().any(|e| e["component"] == "target"));
}

/// The demo runs end to end (shortened), prints its summary and leaves nothing running.
#[test]
fn demo_runs_and_cleans_up() {
    let out = Command::new(BIN)
        .args(["demo", "--duration", "15s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "demo finished after",
        "requests:",
        "latency:",
        "replica-seconds:",
        "scaling actions:",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    // The demo's pool uses ports 24100-24199.
    assert!(
        super::backend_pids((24100, 24199)).is_empty(),
        "the demo left instances running"
    );
}

/// `history` never creates a store: on a config whose store file does not exist it fails
/// with a clear error, and the file is still not there.
#[test]
fn history_on_a_missing_store_fails_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "true");
    for extra in [&[][..], &["--errors"][..], &["--forecasts"][..]] {
        let out = Command::new(BIN)
            .args(["history", "--config", path.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{extra:?}: {stderr}");
        assert!(stderr.contains("does not exist"), "{extra:?}: {stderr}");
        assert!(
            !tmp.path().join("sp.db").exists(),
            "{extra:?} created the store"
        );
    }
}

/// Two `once` runs at the same time: the second's start-up reconcile leaves the first's
/// in-flight activity alone (its owner is alive) instead of marking it interrupted.
#[test]
fn concurrent_once_runs_leave_each_others_activities_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let flag = dir.join("first");
    // Only the first run's scaling call is slow; an hour's interval puts both runs in the
    // same activity key bucket, so the second does not scale itself.
    let path = write(
        dir,
        &format!("if mkdir {} 2>/dev/null; then sleep 8; fi", flag.display()),
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "    max: 10\n",
        "    max: 10\n    evaluation_interval: 1h\n",
    );
    std::fs::write(&path, text).unwrap();
    let first = Command::new(BIN)
        .args(["once", "--config", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        super::wait_until(std::time::Duration::from_secs(20), || flag.exists()),
        "the first run never called its target"
    );
    let out = Command::new(BIN)
        .args(["once", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let second = String::from_utf8_lossy(&out.stderr).to_string();
    // Newest first: the first run's activity is the oldest. (The second run may act too:
    // the first's scale event, saved with its intent, changes what the second decides.)
    let acts = activities(&path);
    let oldest = acts.last().expect("no activity");
    assert_eq!(
        oldest["status"], "pending",
        "the second run settled the first's in-flight activity: {acts:#?}\n{second}"
    );
    assert!(
        acts.iter().all(|a| a["status"] != "interrupted"),
        "{acts:#?}"
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let acts = activities(&path);
    let oldest = acts.last().unwrap();
    assert_eq!(oldest["status"], "succeeded", "{acts:#?}");
    assert_eq!(oldest["error"], serde_json::Value::Null, "{acts:#?}");
}
