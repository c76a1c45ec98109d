//! kill -9 of the daemon between a scale-out's target call and its completion: the restart
//! adopts the started instances, settles the activity, and never scales twice. Then kill -9
//! of an instance: the pool replaces it.

use std::time::Duration;

use super::{BIN, Daemon, activities, backend_pids, endpoints, wait_until};

const PORTS: (u16, u16) = (25100, 25119);

/// A pool of `scalepilot backend` on `ports`: 40 req/s at 10 per replica, so 4 replicas from
/// the first evaluation (min 0, so the very first action is this scale-out).
fn pool_config(dir: &std::path::Path, name: &str, ports: (u16, u16)) -> std::path::PathBuf {
    let config = dir.join(name);
    std::fs::write(
        &config,
        format!(
            r#"store: {{kind: sqlite, path: sp.db}}
groups:
  - name: web
    min: 0
    max: 6
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 40}}}}
    target:
      kind: process_pool
      command: "{BIN} backend --port {{port}}"
      ports: {}-{}
      stop_on_exit: true
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#,
            ports.0, ports.1
        ),
    )
    .unwrap();
    config
}

#[test]
fn kill_9_during_scale_out_then_restart_never_double_scales() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = pool_config(dir, "crash.yaml", PORTS);
    let mut daemon = Daemon::start(
        &config,
        PORTS,
        &[("SCALEPILOT_FAULT_PAUSE_BEFORE_COMPLETION_MS", "15000")],
    );
    let pending = wait_until(Duration::from_secs(40), || {
        activities(&config).iter().any(|a| a["status"] == "pending")
            && backend_pids(PORTS).len() == 4
    });
    assert!(
        pending,
        "no pending scale-out with 4 instances:\n{}",
        daemon.log()
    );
    // The intent is written before the target is called, so "pending with 4 processes" can
    // hold while the last instance is being recorded. Kill inside the 15 s pause after the
    // call, which is the window this test is about, not in that millisecond.
    std::thread::sleep(Duration::from_secs(1));
    daemon.kill9();
    // The instances outlive the daemon: they serve on.
    assert_eq!(backend_pids(PORTS).len(), 4);

    let mut daemon = Daemon::start(&config, PORTS, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || endpoints(dir, "web").len() == 4),
        "the restart did not adopt the instances:\n{}",
        daemon.log()
    );
    // A few evaluations later: still 4 processes, one activity, settled as succeeded.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        backend_pids(PORTS).len(),
        4,
        "scaled twice:\n{}",
        daemon.log()
    );
    let acts = activities(&config);
    assert_eq!(acts.len(), 1, "{acts:#?}");
    assert_eq!(acts[0]["status"], "succeeded");
    assert_eq!(acts[0]["to_replicas"], 4);
    assert!(
        acts[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("confirmed after a restart"),
        "{acts:#?}"
    );

    // An instance killed with SIGKILL is replaced by the pool.
    let victim = backend_pids(PORTS)[0];
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(victim).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let replaced = wait_until(Duration::from_secs(15), || {
        let now = backend_pids(PORTS);
        now.len() == 4 && !now.contains(&victim) && endpoints(dir, "web").len() == 4
    });
    assert!(
        replaced,
        "not replaced: {:?}\n{}",
        backend_pids(PORTS),
        daemon.log()
    );
    assert!(
        super::errors(&config).iter().any(|e| e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("exited; replaced")),
        "no error recorded for the dead instance"
    );
    assert_eq!(daemon.stop(), Some(0));
    assert!(backend_pids(PORTS).is_empty());
}

/// kill -9 between an instance's spawn and its record (the pool's spawn → settle window):
/// the restart finds the spawned process by its marker and adopts it, so live processes,
/// recorded instances and the desired count agree (before: the process was neither adopted
/// nor stopped, and the restart started replacements next to it).
#[test]
fn kill_9_between_spawn_and_record_then_restart_adopts_by_marker() {
    const PORTS: (u16, u16) = (25120, 25139);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = pool_config(dir, "spawn.yaml", PORTS);
    let mut daemon = Daemon::start(
        &config,
        PORTS,
        &[("SCALEPILOT_FAULT_PAUSE_AFTER_SPAWN_MS", "60000")],
    );
    // The first instance of the 0 → 4 scale-out is spawned; the pool pauses before it
    // records the PID.
    let spawned = wait_until(Duration::from_secs(30), || backend_pids(PORTS).len() == 1);
    assert!(spawned, "no instance spawned:\n{}", daemon.log());
    std::thread::sleep(Duration::from_millis(300));
    daemon.kill9();
    assert_eq!(
        backend_pids(PORTS).len(),
        1,
        "the spawned instance outlives the daemon"
    );

    let mut daemon = Daemon::start(&config, PORTS, &[]);
    // The adopted instance counts: 1 → 4 once the rate limit allows (15 s after the
    // interrupted scale-out's event, saved with its intent).
    let settled = wait_until(Duration::from_secs(45), || {
        endpoints(dir, "web").len() == 4 && backend_pids(PORTS).len() == 4
    });
    // A few evaluations later nothing more starts.
    std::thread::sleep(Duration::from_secs(3));
    let live = backend_pids(PORTS);
    let recorded = super::instances(dir.join("sp.db").as_path(), "web");
    assert!(
        settled && live.len() == 4 && recorded.len() == 4,
        "live {live:?}, recorded {recorded:?}:\n{}",
        daemon.log()
    );
    // Recorded PIDs lead the instances' process groups (`sh -c` and the backend it started).
    let mut recorded_pids: Vec<i32> = recorded.iter().map(|r| r.1).collect();
    let mut groups: Vec<i32> = live.iter().map(|&p| process_group(p)).collect();
    recorded_pids.sort();
    groups.sort();
    assert_eq!(recorded_pids, groups, "{}", daemon.log());
    assert!(
        daemon.log().contains("did not finish recording"),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.stop(), Some(0));
    assert!(backend_pids(PORTS).is_empty());
}

fn process_group(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(2)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
