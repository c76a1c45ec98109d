//! Retention at the edges: a sample retention far beyond the calendar (5,000,000 days) is
//! refused with the field and its range instead of panicking the prune that runs at start
//! (`now - retention` would leave jiff's range), and the longest allowed one runs and prunes.

use std::process::Command;
use std::time::Duration;

use super::{BIN, Daemon, wait_until};

fn config(dir: &std::path::Path, retention: &str) -> std::path::PathBuf {
    let path = dir.join("retention.yaml");
    std::fs::write(
        &path,
        format!(
            r#"store: {{kind: sqlite, path: sp.db, sample_retention: {retention}}}
groups:
  - name: web
    min: 1
    max: 10
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 20}}}}
    target:
      kind: command
      command: "echo $SCALEPILOT_DESIRED > {}"
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 5}}
"#,
            dir.join("replicas.txt").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_retention_beyond_the_calendar_is_refused_and_the_longest_allowed_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let path = config(dir, "5000000d");
    let out = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("store.sample_retention") && stderr.contains("at most 400d"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let path = config(dir, "400d");
    let mut daemon = Daemon::start(&path, (0, 0), &[]);
    let scaled = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(dir.join("replicas.txt")).is_ok_and(|t| t.trim() == "4")
    });
    // The prune runs at start: give it a moment, then the daemon must still stop cleanly.
    std::thread::sleep(Duration::from_secs(1));
    let code = daemon.stop();
    let log = daemon.log();
    assert!(scaled, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(code, Some(0), "{log}");
}
