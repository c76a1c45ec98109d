//! Adoption at restart of instances whose command line does not show their port
//! (`PORT={port} exec python3 app.py`): found by the pool's environment marker, never
//! forgotten while they serve, never started twice.

use std::time::Duration;

use super::{BIN, Daemon, backend_pids, endpoints, instances, kill_all, pool_pids, wait_until};

const PORTS: (u16, u16) = (25140, 25159);

/// A tiny HTTP server answering 200 to everything, on $HOST:$PORT.
const APP: &str = r#"
import os, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
http.server.HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()
"#;

/// Kills the test's python instances however the test ends.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        kill_all(&pool_pids(PORTS, "adopt_app.py"));
    }
}

#[test]
fn instances_hiding_their_port_are_adopted_across_restarts() {
    // Never skipped: scripts/test.sh installs python3 where it is missing.
    assert!(
        std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "python3 is needed by this test (scripts/test.sh installs it)"
    );
    let _cleanup = Cleanup;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app = dir.join("adopt_app.py");
    std::fs::write(&app, APP).unwrap();
    let config = dir.join("adopt.yaml");
    std::fs::write(
        &config,
        format!(
            r#"store: {{kind: sqlite, path: sp.db}}
groups:
  - name: web
    min: 2
    max: 2
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 20}}}}
    target:
      kind: process_pool
      command: "HOST={{host}} PORT={{port}} exec python3 {}"
      ports: {}-{}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#,
            app.display(),
            PORTS.0,
            PORTS.1
        ),
    )
    .unwrap();
    let db = dir.join("sp.db");
    let mut first: Vec<i32> = Vec::new();
    for run in 0..3 {
        let mut daemon = Daemon::start(&config, PORTS, &[]);
        let serving = wait_until(Duration::from_secs(30), || endpoints(dir, "web").len() == 2);
        // Evaluations after the restart must not start more.
        std::thread::sleep(Duration::from_secs(3));
        let mut live = pool_pids(PORTS, "adopt_app.py");
        live.sort();
        let recorded = instances(&db, "web");
        let log = daemon.log();
        assert!(
            serving && live.len() == 2 && recorded.len() == 2,
            "run {run}: live {live:?}, recorded {recorded:?}:\n{log}"
        );
        if run == 0 {
            first = live.clone();
        } else {
            // The very processes of the first run, adopted each time.
            assert_eq!(live, first, "run {run}: not adopted:\n{log}");
        }
        // Stopped without stop_on_exit: the instances keep serving for the next run.
        assert_eq!(daemon.stop(), Some(0));
        assert_eq!(pool_pids(PORTS, "adopt_app.py").len(), 2);
    }
}

/// An instance whose shell exits at once, leaving its server running in the background
/// (`backend … &`): the process group's leader is gone, yet the instance runs while a process
/// of its group carries its marker. It is neither replaced while it runs, nor forgotten at a
/// restart; `stop_on_exit` stops the whole group and only then drops the records.
#[test]
fn instances_whose_group_leader_exited_are_kept_adopted_and_stopped() {
    const PORTS: (u16, u16) = (25160, 25179);
    struct Cleanup;
    impl Drop for Cleanup {
        fn drop(&mut self) {
            kill_all(&backend_pids(PORTS));
        }
    }
    let _cleanup = Cleanup;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = dir.join("leaderless.yaml");
    let write_config = |stop_on_exit: bool| {
        std::fs::write(
            &config,
            format!(
                r#"store: {{kind: sqlite, path: sp.db}}
groups:
  - name: web
    min: 2
    max: 2
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 20}}}}
    target:
      kind: process_pool
      command: "{BIN} backend --port {{port}} &"
      ports: {}-{}
      stop_on_exit: {stop_on_exit}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#,
                PORTS.0, PORTS.1
            ),
        )
        .unwrap();
    };
    let db = dir.join("sp.db");
    let mut first: Vec<i32> = Vec::new();
    for run in 0..2 {
        write_config(false);
        let mut daemon = Daemon::start(&config, PORTS, &[]);
        let serving = wait_until(Duration::from_secs(30), || endpoints(dir, "web").len() == 2);
        // Health-loop rounds and evaluations: nothing is judged exited, nothing more starts.
        std::thread::sleep(Duration::from_secs(3));
        let mut live = backend_pids(PORTS);
        live.sort();
        let recorded = instances(&db, "web");
        let log = daemon.log();
        assert!(
            serving && live.len() == 2 && recorded.len() == 2 && !log.contains("exited"),
            "run {run}: live {live:?}, recorded {recorded:?}:\n{log}"
        );
        if run == 0 {
            first = live.clone();
        } else {
            assert_eq!(live, first, "run {run}: not adopted:\n{log}");
        }
        assert_eq!(daemon.stop(), Some(0));
        assert_eq!(backend_pids(PORTS).len(), 2);
        // Dropping a `Daemon` kills the backends on its ports: they must live on.
        std::mem::forget(daemon);
    }
    // With stop_on_exit, the adopted leaderless groups are stopped and their records dropped.
    write_config(true);
    let mut daemon = Daemon::start(&config, PORTS, &[]);
    // Up once it adopted (the log is shared by the three runs; the endpoints file is old).
    let up = wait_until(Duration::from_secs(30), || {
        daemon.log().matches("adopted an instance").count() == 4
            && daemon.log().matches("started (every").count() == 3
    });
    assert!(up, "{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    let live = backend_pids(PORTS);
    let recorded = instances(&db, "web");
    assert!(
        live.is_empty() && recorded.is_empty(),
        "live {live:?}, recorded {recorded:?}:\n{}",
        daemon.log()
    );
}

/// Several daemons on several machines (`engine.ha: true`): a pool's instance recorded by a
/// daemon on another machine cannot be seen in this machine's /proc. The daemon here must not
/// forget its record (as it would an instance that no longer runs) nor start a second set
/// beside it: the group does not start, and its error names the machine.
#[test]
fn instances_recorded_on_another_machine_are_neither_forgotten_nor_doubled() {
    const PORTS: (u16, u16) = (25180, 25189);
    struct Cleanup;
    impl Drop for Cleanup {
        fn drop(&mut self) {
            kill_all(&backend_pids(PORTS));
        }
    }
    let _cleanup = Cleanup;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = dir.join("foreign.yaml");
    std::fs::write(
        &config,
        format!(
            r#"store: {{kind: sqlite, path: sp.db}}
groups:
  - name: web
    min: 2
    max: 2
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 20}}}}
    target:
      kind: process_pool
      command: "exec {BIN} backend --port {{port}}"
      ports: {}-{}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#,
            PORTS.0, PORTS.1
        ),
    )
    .unwrap();
    let db = dir.join("sp.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = scalepilot_store::SqliteStore::open(&db).await.unwrap();
        let record = scalepilot_store::InstanceRecord {
            host: "127.0.0.1".into(),
            port: PORTS.0,
            pid: Some(4_000_000),
            started_ms: 1,
            marker: Some(format!(
                "web/127.0.0.1:{}/00000000000000ff@elsewhere.example",
                PORTS.0
            )),
        };
        scalepilot_store::Store::put_instance(&store, "web", record)
            .await
            .unwrap();
    });
    let mut daemon = Daemon::start(&config, PORTS, &[]);
    let refused = wait_until(Duration::from_secs(30), || {
        daemon
            .log()
            .contains("started on machine `elsewhere.example`")
    });
    // Evaluations would have started instances by now had the group started.
    std::thread::sleep(Duration::from_secs(2));
    let log = daemon.log();
    assert_eq!(daemon.stop(), Some(0), "{log}");
    assert!(refused, "{log}");
    assert!(backend_pids(PORTS).is_empty(), "instances started:\n{log}");
    assert_eq!(
        instances(&db, "web"),
        vec![(PORTS.0, 4_000_000)],
        "the foreign record must stay:\n{log}"
    );
}
