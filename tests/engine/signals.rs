//! Signals are handled from the very start: a SIGTERM or SIGHUP while 2,000 groups start
//! must not kill the daemon (their default action) but stop it gracefully or reload.

use std::time::Duration;

use super::{Daemon, wait_until};

/// 2,000 groups that each evaluate once at start (hourly after), with a static source that
/// keeps them at their minimum, so their command target (`true`) is never even run.
fn config() -> String {
    let mut text = String::from("store: {kind: sqlite, path: sp.db}\ngroups:\n");
    for i in 0..2000 {
        text.push_str(&format!(
            r#"  - name: g{i}
    min: 1
    max: 10
    evaluation_interval: 1h
    source: {{kind: static, values: {{request_rate: 1}}}}
    target: {{kind: command, command: "true"}}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 5}}
"#
        ));
    }
    text
}

/// Start the daemon and wait (at most a few seconds) for its first log line, which it
/// writes once its signal listeners are installed: the signal then tests start-up itself,
/// not the few milliseconds before `main` where no program can catch a signal.
fn start(dir: &std::path::Path) -> Daemon {
    let path = dir.join("many.yaml");
    std::fs::write(&path, config()).unwrap();
    let daemon = Daemon::start(&path, (0, 0), &[]);
    wait_until(Duration::from_secs(5), || {
        daemon.log().contains("starting with")
    });
    daemon
}

#[test]
fn sigterm_during_start_stops_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = start(tmp.path());
    let code = daemon.stop();
    let log = daemon.log();
    assert_eq!(code, Some(0), "killed instead of stopping:\n{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn sighup_during_start_reloads_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = start(tmp.path());
    daemon.hup();
    let reloaded = wait_until(Duration::from_secs(30), || {
        daemon.log().contains("SIGHUP: reloading the config")
    });
    // Still alive and running its groups.
    let started = wait_until(Duration::from_secs(60), || {
        daemon.log().contains("group=g1999")
            || daemon.log().matches("started (every").count() >= 2000
    });
    let code = daemon.stop();
    let log = daemon.log();
    assert!(reloaded, "no reload:\n{}", &log[..log.len().min(4000)]);
    assert!(
        started,
        "groups did not start:\n{}",
        &log[log.len().saturating_sub(4000)..]
    );
    assert_eq!(code, Some(0), "{}", &log[log.len().saturating_sub(4000)..]);
    assert!(log.contains("stopped"));
}
