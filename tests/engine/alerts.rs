//! An alert that cannot be delivered is never lost silently: each dropped alert is logged
//! with its event, group and reason, and shutdown logs how many queued alerts it dropped.

use std::time::Duration;

use super::{Daemon, wait_until};

/// A loopback port nobody listens on (bound, then closed): connections are refused at once.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn config(dir: &std::path::Path, attempts: u32) -> String {
    format!(
        r#"store: {{kind: sqlite, path: sp.db}}
alerts: {{webhook: "http://127.0.0.1:{}/hook", attempts: {attempts}}}
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
        closed_port(),
        dir.join("replicas.txt").display()
    )
}

#[test]
fn an_undeliverable_alert_is_logged_after_its_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("alerts.yaml");
    std::fs::write(&path, config(tmp.path(), 2)).unwrap();
    let mut daemon = Daemon::start(&path, (0, 0), &[]);
    // 1 → 4 at the first evaluation: a `scaled` alert, refused twice (0.5 s apart).
    let logged = wait_until(Duration::from_secs(20), || {
        daemon.log().lines().any(|l| {
            l.contains("alert dropped")
                && l.contains("event=scaled")
                && l.contains("group=web")
                && l.contains("failed after 2 attempts")
        })
    });
    assert_eq!(daemon.stop(), Some(0));
    assert!(logged, "no dropped-alert line:\n{}", daemon.log());
}

#[test]
fn alerts_still_queued_at_shutdown_are_logged_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("alerts.yaml");
    // 10 attempts back off 0.5 + 1 + 2 + 4 + … s: longer than shutdown's 5 s grace.
    std::fs::write(&path, config(tmp.path(), 10)).unwrap();
    let mut daemon = Daemon::start(&path, (0, 0), &[]);
    let scaled = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(tmp.path().join("replicas.txt")).is_ok_and(|t| t.trim() == "4")
    });
    assert!(scaled, "did not scale:\n{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0));
    let log = daemon.log();
    assert!(
        log.lines().any(|l| l.contains("alert dropped")
            && l.contains("event=scaled")
            && l.contains("group=web")
            && l.contains("stopping")),
        "{log}"
    );
    assert!(
        log.contains("1 queued alert(s) dropped undelivered"),
        "{log}"
    );
    assert!(log.contains("stopped"), "{log}");
}
