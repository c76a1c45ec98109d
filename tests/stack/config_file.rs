//! HAProxy config-file mode: the backend section is rendered, checked with `haproxy -c`,
//! swapped in atomically and reloaded through the master socket; a rendered file that fails
//! the check never replaces the running one.

use std::path::Path;
use std::time::Duration;

use super::start_haproxy;
use crate::engine::{BIN, Daemon, errors, wait_until};

const FRONTEND: u16 = 28280;
const PORTS: (u16, u16) = (28300, 28319);

fn template(dir: &Path, extra: &str) -> String {
    format!(
        "global\n    stats socket {}/admin.sock mode 600 level admin\n    hard-stop-after 10s\n{extra}defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\nfrontend fe\n    bind 127.0.0.1:{FRONTEND}\n    default_backend be_web\nbackend be_web\n    balance roundrobin\n{{{{servers}}}}\n",
        dir.display()
    )
}

fn config(dir: &Path, template: &str, rate: u32) -> String {
    format!(
        r#"store: {{kind: sqlite, path: sp.db}}
groups:
  - name: web
    min: 1
    max: 5
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: {rate}}}}}
    target:
      kind: haproxy
      backend: be_web
      config_file:
        path: {}
        template: {template}
        master_socket: {}
      pool:
        command: "{BIN} backend --port {{port}}"
        ports: {}-{}
        health_interval: 1s
        drain: 1s
        # Instances outlive a target rebuilt by a reload, and the new target adopts them
        # (the test's Daemon guard stops them at the end).
        stop_on_exit: false
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
    behavior:
      scale_down: {{stabilization: 0s}}
"#,
        dir.join("haproxy.cfg").display(),
        dir.join("master.sock").display(),
        PORTS.0,
        PORTS.1
    )
}

fn server_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("haproxy.cfg"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim_start().starts_with("server "))
        .count()
}

#[test]
fn config_file_mode_renders_checks_and_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = template(dir, "");
    std::fs::write(dir.join("good.tmpl"), &good).unwrap();
    // A directive HAProxy refuses: rendering this must never reach the running file.
    std::fs::write(
        dir.join("bad.tmpl"),
        template(dir, "    no-such-directive on\n"),
    )
    .unwrap();
    let _haproxy = start_haproxy(dir, &good.replace("{{servers}}", ""));
    let path = dir.join("cfmode.yaml");
    std::fs::write(&path, config(dir, "good.tmpl", 30)).unwrap();
    let mut daemon = Daemon::start(&path, PORTS, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || server_lines(dir) == 3),
        "file not rendered:\n{}",
        daemon.log()
    );
    let served = wait_until(Duration::from_secs(15), || {
        let out = crate::engine::http_get(&format!("http://127.0.0.1:{FRONTEND}/"));
        out.is_some_and(|b| b.contains("ok"))
    });
    assert!(
        served,
        "haproxy does not serve through the rendered backend"
    );

    // Scale in with a template HAProxy refuses: the running file stays as it is.
    let before = std::fs::read_to_string(dir.join("haproxy.cfg")).unwrap();
    std::fs::write(&path, config(dir, "bad.tmpl", 10)).unwrap();
    let refused = wait_until(Duration::from_secs(15), || {
        errors(&path).iter().any(|e| {
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("fails `haproxy -c`")
        })
    });
    assert!(refused, "no rejection recorded:\n{}", daemon.log());
    assert_eq!(
        std::fs::read_to_string(dir.join("haproxy.cfg")).unwrap(),
        before,
        "a broken file replaced the running one"
    );

    // Back to a good template: the scale-in applies.
    std::fs::write(&path, config(dir, "good.tmpl", 10)).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || server_lines(dir) == 1),
        "not scaled in:\n{}",
        daemon.log()
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
}
