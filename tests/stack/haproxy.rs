//! scalepilot + HAProxy (runtime API) + Prometheus under real load: a 10× step scales out
//! and the new servers take traffic; an HAProxy reload is healed; the drop drains servers
//! before their instances stop, without a failed request; a SIGKILLed instance is replaced.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{start_haproxy, start_prometheus};
use crate::engine::{BIN, Daemon, backend_pids, load_summary, start_load, step_trace, wait_until};

const FRONTEND: u16 = 28080;
const EXPORTER: u16 = 28081;
const PROMETHEUS: u16 = 28090;
const PORTS: (u16, u16) = (28100, 28119);

fn admin(dir: &Path, cmd: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(dir.join("admin.sock"))
        .expect("haproxy admin socket");
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// (name, addr, status, total sessions) of be_web's servers.
fn servers(dir: &Path) -> Vec<(String, String, String, u64)> {
    let text = admin(dir, "show stat be_web 4 -1");
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split(',').collect();
    let col = |n: &str| cols.iter().position(|c| *c == n).unwrap();
    let (sv, addr, status, stot) = (col("svname"), col("addr"), col("status"), col("stot"));
    lines
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f[sv] != "BACKEND")
        .map(|f| {
            (
                f[sv].clone(),
                f[addr].clone(),
                f[status].clone(),
                f[stot].parse().unwrap_or(0),
            )
        })
        .collect()
}

fn load(trace: &Path) -> std::process::Child {
    start_load(
        &["--target", &format!("http://127.0.0.1:{FRONTEND}")],
        trace,
    )
}

fn config(dir: &Path, min: u32, max: u32) -> String {
    format!(
        r#"store: {{kind: sqlite, path: sp.db}}
groups:
  - name: web
    min: {min}
    max: {max}
    evaluation_interval: 1s
    source:
      kind: prometheus
      url: http://127.0.0.1:{PROMETHEUS}
      queries:
        request_rate: sum(rate(haproxy_backend_http_requests_total{{proxy="be_web"}}[5s]))
    target:
      kind: haproxy
      admin_socket: {}
      backend: be_web
      drain_timeout: 10s
      pool:
        command: "{BIN} backend --host {{host}} --port {{port}} --work-ms 20 --max-queue 5000"
        ports: {}-{}
        hosts: [{{address: 127.0.0.2, max: 4}}, {{address: 127.0.0.3, max: 4}}]
        health_interval: 1s
        drain: 2s
        stop_on_exit: true
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 25}}
    behavior:
      scale_down: {{stabilization: 5s}}
"#,
        dir.join("admin.sock").display(),
        PORTS.0,
        PORTS.1
    )
}

#[test]
fn haproxy_prometheus_scaling_under_real_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let haproxy = start_haproxy(
        dir,
        &format!(
            "global\n    stats socket {}/admin.sock mode 600 level admin expose-fd listeners\n    hard-stop-after 30s\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    option idle-close-on-response\n    retries 2\n    option redispatch\nfrontend fe\n    bind 127.0.0.1:{FRONTEND}\n    default_backend be_web\nfrontend exporter\n    bind 127.0.0.1:{EXPORTER}\n    http-request use-service prometheus-exporter if {{ path /metrics }}\nbackend be_web\n    balance roundrobin\n",
            dir.display()
        ),
    );
    let _prometheus = start_prometheus(dir, PROMETHEUS, &format!("127.0.0.1:{EXPORTER}"));
    let path = dir.join("stack.yaml");
    std::fs::write(&path, config(dir, 1, 8)).unwrap();
    let mut daemon = Daemon::start(&path, PORTS, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || servers(dir)
            .iter()
            .any(|s| s.2 == "UP")),
        "no server came up in HAProxy:\n{}",
        daemon.log()
    );
    let initial: Vec<String> = servers(dir).into_iter().map(|s| s.0).collect();

    // Phase A: 5 s at 10 req/s, then 10× for 30 s.
    let up = dir.join("up.csv");
    step_trace(&up, &[(5, 10), (30, 100)]);
    let start = Instant::now();
    let step_at = start + Duration::from_secs(5);
    let a = load(&up);
    let mut reaction = None;
    while start.elapsed() < Duration::from_secs(35) {
        if reaction.is_none()
            && servers(dir)
                .iter()
                .any(|s| !initial.contains(&s.0) && s.3 > 0)
        {
            reaction = Some(Instant::now().saturating_duration_since(step_at));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let a = load_summary(a);
    let after_step = servers(dir);
    assert!(
        after_step.len() >= 3,
        "no scale-out: {after_step:?}\n{}",
        daemon.log()
    );
    assert!(
        after_step.iter().all(|s| s.3 > 0),
        "a server got no traffic: {after_step:?}"
    );
    let hosts: std::collections::HashSet<&str> = after_step
        .iter()
        .map(|s| s.1.split(':').next().unwrap())
        .collect();
    assert_eq!(
        hosts.len(),
        2,
        "placement used one host only: {after_step:?}"
    );
    let reaction = reaction.expect("no new server took traffic");
    eprintln!(
        "reaction time (step → first new server with traffic): {:.2} s; step p99 {} ms, failed {}",
        reaction.as_secs_f64(),
        a["p99_ms"],
        a["failed"]
    );

    // An HAProxy reload drops the runtime-added servers; the next evaluations re-add them.
    let r_trace = dir.join("reload.csv");
    step_trace(&r_trace, &[(12, 100)]);
    let r = load(&r_trace);
    std::thread::sleep(Duration::from_secs(3));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(haproxy.pid).unwrap(),
        rustix::process::Signal::USR2,
    )
    .unwrap();
    let reloaded = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // Compared with the instances the pool serves now, not with a count taken before the
    // reload: the group may scale meanwhile (the reload phase needs 4, the step may have
    // left 5), which is not what this checks.
    let healed = wait_until(Duration::from_secs(15), || {
        let s = servers(dir);
        let serving = crate::engine::endpoints(dir, "web");
        !serving.is_empty() && s.len() >= serving.len() && s.iter().all(|x| x.2 == "UP")
    });
    let heal_time = reloaded.elapsed();
    assert!(
        healed,
        "servers not re-added after the reload: {:?} (the pool serves {:?})\n{}",
        servers(dir),
        crate::engine::endpoints(dir, "web"),
        daemon.log()
    );
    let r = load_summary(r);
    eprintln!(
        "haproxy reload: healed in {:.2} s; failed requests during the reload phase: {} of {}",
        heal_time.as_secs_f64(),
        r["failed"],
        r["sent"]
    );

    // Phase B: the drop. Servers drain in HAProxy before their instances stop; no request fails.
    let peak = servers(dir).len();
    let down = dir.join("down.csv");
    step_trace(&down, &[(25, 10)]);
    let b = load_summary(load(&down));
    assert_eq!(
        b["failed"],
        0,
        "failed requests during scale-in: {b}\n{}",
        daemon.log()
    );
    let after_drop = servers(dir);
    assert!(after_drop.len() < peak, "no scale-in: {after_drop:?}");
    let log = daemon.log();
    let removed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("removed server be_web/"))
        .collect();
    assert!(!removed.is_empty(), "no server removed:\n{log}");
    for line in &removed {
        let name = line
            .split("be_web/")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let drained = log
            .find(&format!("draining server be_web/{name}"))
            .expect("removed without draining");
        let gone = log.find(&format!("removed server be_web/{name}")).unwrap();
        assert!(drained < gone, "{name} removed before draining");
        // The instance stops only after HAProxy let go of it.
        let addr = name
            .trim_start_matches("sp-")
            .replacen('_', ".", 3)
            .replacen('_', ":", 1);
        if let Some(stopped) = log.find(&format!("stopping a drained instance addr={addr}")) {
            assert!(
                gone < stopped,
                "{addr} stopped before its server was removed"
            );
        }
    }
    eprintln!(
        "scale-in: {peak} → {} servers, 0 failed requests of {}",
        after_drop.len(),
        b["sent"]
    );

    // An instance killed with SIGKILL is replaced, and its replacement joins HAProxy.
    let count = servers(dir).len();
    let victim = backend_pids(PORTS)[0];
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(victim).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let replaced = wait_until(Duration::from_secs(20), || {
        let pids = backend_pids(PORTS);
        let s = servers(dir);
        !pids.contains(&victim)
            && pids.len() == count
            && s.len() == count
            && s.iter().all(|x| x.2 == "UP")
    });
    assert!(
        replaced,
        "not replaced: {:?} {:?}\n{}",
        backend_pids(PORTS),
        servers(dir),
        daemon.log()
    );

    // Reference: a fixed pool of the step's size under the same step, for its p99.
    std::fs::write(&path, config(dir, peak as u32, peak as u32)).unwrap();
    assert!(wait_until(Duration::from_secs(20), || servers(dir).len()
        == peak
        && servers(dir).iter().all(|s| s.2 == "UP")));
    let fixed = load_summary(load(&up));
    eprintln!(
        "p99 during the step: autoscaled {} ms vs a fixed pool of {peak}: {} ms",
        a["p99_ms"], fixed["p99_ms"]
    );

    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert!(backend_pids(PORTS).is_empty(), "instances left running");
    assert!(
        servers(dir).is_empty(),
        "servers left in HAProxy: {:?}",
        servers(dir)
    );
}
