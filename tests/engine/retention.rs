//! Time arithmetic never panics: a sample retention far longer than the calendar (valid in a
//! config: 5,000,000 days, 13,700 years) must not crash the prune that runs at start (`now - retention` underflows).

use std::time::Duration;

use super::{Daemon, wait_until};

#[test]
fn a_retention_beyond_the_calendar_prunes_nothing_and_runs_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("retention.yaml");
    std::fs::write(
        &path,
        format!(
            r#"store: {{kind: sqlite, path: sp.db, sample_retention: 5000000d}}
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
