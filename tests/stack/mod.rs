//! The real stack end to end: HAProxy in front of a pool of backends on two loopback
//! "hosts", Prometheus scraping HAProxy's exporter, scalepilot scaling on the Prometheus
//! request rate, and real load through HAProxy. HAProxy and Prometheus must be installed
//! (`scripts/test.sh` installs them); the test fails when they are missing.

mod config_file;
mod haproxy;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::engine::{http_get, wait_until};

/// A service process stopped by PID when dropped.
pub(crate) struct Service {
    pub pid: i32,
    /// Our child, to reap (HAProxy daemonizes, so it has none).
    child: Option<std::process::Child>,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            if let Some(mut child) = self.child.take() {
                for _ in 0..50 {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            // Not our child: wait a little for a clean exit, then make sure.
            for _ in 0..50 {
                if !Path::new(&format!("/proc/{}", self.pid)).exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The full path of an installed program, or a failure naming what to run.
pub(crate) fn require(program: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "`{program}` is not installed: run ./scripts/test.sh, which installs it (apt-get install {program})"
    );
    path
}

/// Start HAProxy in master-worker mode; returns the master's PID as a service.
pub(crate) fn start_haproxy(dir: &Path, config: &str) -> Service {
    let bin = require("haproxy");
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, config).unwrap();
    let pidfile = dir.join("haproxy.pid");
    let status = Command::new(&bin)
        .args(["-W", "-D", "-S"])
        .arg(format!("{},mode,600", dir.join("master.sock").display()))
        .arg("-f")
        .arg(&cfg)
        .arg("-p")
        .arg(&pidfile)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "haproxy did not start");
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| !p.trim().is_empty())
    }));
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Service { pid, child: None }
}

/// Start Prometheus scraping `target` every second; waits until the target is up.
pub(crate) fn start_prometheus(dir: &Path, port: u16, target: &str) -> Service {
    let bin = require("prometheus");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: haproxy\n    static_configs:\n      - targets: ['{target}']\n"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let service = Service {
        pid: child.id() as i32,
        child: Some(child),
    };
    // The first scrape comes a few seconds after start: wait for the target to be up.
    let up = wait_until(Duration::from_secs(30), || {
        http_get(&format!(
            "http://127.0.0.1:{port}/api/v1/query?query=up%7Bjob%3D%22haproxy%22%7D"
        ))
        .is_some_and(|b| b.contains("\"value\":[") && b.contains(",\"1\"]"))
    });
    assert!(
        up,
        "prometheus never scraped haproxy:\n{}",
        std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
    );
    service
}
