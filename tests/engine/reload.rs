//! A broken config on reload is rejected (recorded, alerted) while scaling goes on under
//! the old one; a valid one is applied; the webhook receives the expected JSON.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::{Daemon, errors, step_trace, wait_until};

/// A webhook receiver on loopback collecting JSON bodies.
pub(crate) fn receiver() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(v) = serde_json::from_slice(&body)
            {
                sink.lock().unwrap().push(v);
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

fn config(hook: u16, dir: &std::path::Path, min: u32, per_replica: u32) -> String {
    format!(
        r#"store: {{kind: sqlite, path: sp.db}}
alerts: {{webhook: "http://127.0.0.1:{hook}/hook", attempts: 2}}
groups:
  - name: web
    min: {min}
    max: 10
    evaluation_interval: 1s
    source: {{kind: trace, file: load.csv}}
    target:
      kind: command
      command: "echo $SCALEPILOT_DESIRED > {}"
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: {per_replica}}}
    behavior:
      scale_down: {{stabilization: 0s}}
"#,
        dir.join("replicas.txt").display()
    )
}

#[test]
fn broken_reload_is_rejected_while_scaling_continues_and_webhooks_fire() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (hook, got) = receiver();
    // 10 req/s for 12 s (1 replica), then 50 req/s (5 replicas).
    step_trace(&dir.join("load.csv"), &[(12, 10), (300, 50)]);
    let path = dir.join("reload.yaml");
    std::fs::write(&path, config(hook, dir, 1, 10)).unwrap();
    let mut daemon = Daemon::start(&path, (0, 0), &[]);
    std::thread::sleep(Duration::from_secs(2));

    // Broken: min above max. The file watcher (and SIGHUP) reload it; it must be rejected.
    std::fs::write(&path, config(hook, dir, 12, 10)).unwrap();
    daemon.hup();
    let rejected = wait_until(Duration::from_secs(10), || {
        errors(&path).iter().any(|e| {
            e["component"] == "config"
                && e["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("min 12 is greater than max 10")
        })
    });
    assert!(rejected, "no rejection recorded:\n{}", daemon.log());

    // The old config keeps scaling: the step at 12 s takes it to 5.
    let replicas = || {
        std::fs::read_to_string(dir.join("replicas.txt"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(25), || replicas() == "5"),
        "got {:?}:\n{}",
        replicas(),
        daemon.log()
    );

    // A valid change applies: 50 req/s at 25 per replica is 2.
    std::fs::write(&path, config(hook, dir, 1, 25)).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || replicas() == "2"),
        "got {:?}:\n{}",
        replicas(),
        daemon.log()
    );
    assert_eq!(daemon.stop(), Some(0));

    let bodies = got.lock().unwrap().clone();
    let rejected = bodies
        .iter()
        .find(|b| b["event"] == "config_rejected")
        .unwrap_or_else(|| panic!("no config_rejected alert in {bodies:#?}"));
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("reload.yaml:5:5: groups[0].min: min 12 is greater than max 10"),
        "{rejected}"
    );
    let scaled = bodies
        .iter()
        .find(|b| b["event"] == "scaled" && b["details"]["to"] == 5)
        .unwrap_or_else(|| panic!("no scaled alert to 5 in {bodies:#?}"));
    assert_eq!(scaled["group"], "web");
    assert_eq!(scaled["details"]["from"], 1);
    assert!(
        scaled["details"]["key"]
            .as_str()
            .unwrap()
            .starts_with("web:5:")
    );
    assert!(
        scaled["message"].as_str().unwrap().starts_with("1 → 5"),
        "{scaled}"
    );
    let decision = &scaled["details"]["decision"];
    assert_eq!(decision["decision"]["desired_replicas"], 5);
    assert!(
        decision["observation"]["metrics"]["request_rate"]
            .as_f64()
            .unwrap()
            > 40.0
    );
    assert!(scaled["at"].as_str().is_some());
}
