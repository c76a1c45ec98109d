//! The live engine against real processes: `scalepilot run` scaling pools of
//! `scalepilot backend`, `scalepilot load` replaying traces, crash and reload handling.

mod adoption;
mod alerts;
mod api_handle;
mod budget;
mod crash;
mod db_groups;
mod forecast;
mod ha;
mod ha_budget;
mod once;
mod outage;
mod reload;
mod retention;
mod scale;
mod signals;
mod store_failures;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_scalepilot");

/// A `scalepilot run` process, stopped (and every backend on its ports killed) on drop.
pub(crate) struct Daemon {
    child: Option<Child>,
    pub config: PathBuf,
    ports: (u16, u16),
}

impl Daemon {
    pub(crate) fn start(config: &Path, ports: (u16, u16), env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_extension("log"))
            .unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start scalepilot run");
        Daemon {
            child: Some(child),
            config: config.to_path_buf(),
            ports,
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    fn signal(&self, sig: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid()) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// SIGKILL: no chance to clean up.
    pub(crate) fn kill9(&mut self) {
        self.signal(rustix::process::Signal::KILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    pub(crate) fn hup(&self) {
        self.signal(rustix::process::Signal::HUP);
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub(crate) fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        self.signal_pid(c.id() as i32, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal_pid(&self, pid: i32, sig: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// The daemon's log so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        for pid in backend_pids(self.ports) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// PIDs of live `scalepilot backend` processes listening on a port in `ports`.
pub(crate) fn backend_pids(ports: (u16, u16)) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            == Some("Z")
        {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = String::from_utf8_lossy(&cmd)
            .split('\0')
            .map(str::to_string)
            .collect();
        let is_backend = args.iter().any(|a| a == "backend");
        let port = args
            .iter()
            .position(|a| a == "--port")
            .and_then(|i| args.get(i + 1))
            .and_then(|p| p.parse::<u16>().ok());
        if is_backend && port.is_some_and(|p| p >= ports.0 && p <= ports.1) {
            out.push(pid);
        }
    }
    out
}

/// PIDs of live processes started by a pool on a port in `ports` (by `SCALEPILOT_PORT` in
/// their environment, whatever their command line shows) whose command line contains `needle`.
pub(crate) fn pool_pids(ports: (u16, u16), needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if matches!(
            stat.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next()),
            Some("Z") | None
        ) {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmd).contains(needle) {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let port = env.split(|&b| b == 0).find_map(|kv| {
            std::str::from_utf8(kv)
                .ok()?
                .strip_prefix("SCALEPILOT_PORT=")?
                .parse::<u16>()
                .ok()
        });
        if port.is_some_and(|p| p >= ports.0 && p <= ports.1) {
            out.push(pid);
        }
    }
    out
}

/// SIGKILL each of `pids` (test cleanup).
pub(crate) fn kill_all(pids: &[i32]) {
    for &pid in pids {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The pool instances recorded in a SQLite store: (port, pid), read directly (any schema).
pub(crate) fn instances(db: &Path, group: &str) -> Vec<(u16, i32)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=ro", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT port, pid FROM instances WHERE grp = ? ORDER BY port")
                .bind(group)
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows.into_iter()
            .map(|(p, pid)| (p as u16, pid as i32))
            .collect()
    })
}

/// Poll `f` every 100 ms until it is true or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

pub(crate) fn json_of(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run scalepilot");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Activities in the store, newest first.
pub(crate) fn activities(config: &Path) -> Vec<Value> {
    json_of(&[
        "history",
        "--config",
        config.to_str().unwrap(),
        "--json",
        "--limit",
        "1000",
    ])
    .as_array()
    .cloned()
    .unwrap_or_default()
}

/// Errors in the store, newest first.
pub(crate) fn errors(config: &Path) -> Vec<Value> {
    json_of(&[
        "history",
        "--config",
        config.to_str().unwrap(),
        "--json",
        "--errors",
        "--limit",
        "1000",
    ])
    .as_array()
    .cloned()
    .unwrap_or_default()
}

/// The pool's serving endpoints.
pub(crate) fn endpoints(dir: &Path, group: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{group}.endpoints")))
        .map(|t| {
            t.lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A trace CSV with a 1 s step: `(seconds, requests/s)` segments in order.
pub(crate) fn step_trace(path: &Path, segments: &[(u32, u32)]) {
    let mut text = String::from("timestamp_seconds,value\n");
    let mut t = 0;
    for &(secs, rate) in segments {
        for _ in 0..secs {
            text.push_str(&format!("{t},{rate}\n"));
            t += 1;
        }
    }
    std::fs::write(path, text).unwrap();
}

/// GET over a plain TCP connection (HTTP/1.0): enough for loopback test servers.
pub(crate) fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut conn = std::net::TcpStream::connect(host).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut body = String::new();
    conn.read_to_string(&mut body).ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// A backend's counter, scraped from its /metrics.
pub(crate) fn counter(url: &str, name: &str) -> Option<f64> {
    let text = http_get(&format!("{url}/metrics"))?;
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Start `scalepilot load` replaying `trace` at `to` (`["--target", URL]` or
/// `["--targets-file", PATH]`), printing its JSON summary.
pub(crate) fn start_load(to: &[&str], trace: &Path) -> Child {
    Command::new(BIN)
        .arg("load")
        .args(to)
        .args(["--trace", trace.to_str().unwrap(), "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start scalepilot load")
}

/// Wait for a `start_load` and read its summary.
pub(crate) fn load_summary(child: Child) -> Value {
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("load printed {}", String::from_utf8_lossy(&out.stdout)))
}
