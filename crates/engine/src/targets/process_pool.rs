//! `process_pool`: N local instances of a command, `{port}` (and `{host}`) substituted.
//!
//! - Placement: a pool may list several hosts (addresses such as 127.0.0.2, each with an
//!   optional maximum). A new instance goes to the host with the most free slots, ties broken
//!   by fewest instances, then by the order of the list; scale-in takes from the most loaded
//!   host first (instances / max, or the count where there is no max; ties: more instances).
//! - Health: every instance is checked over HTTP (every 250 ms until it first answers, then
//!   every `health_interval`); one that exits or fails `unhealthy_after` checks in a row is
//!   replaced.
//! - Scale-in takes starting instances first, then the newest (`lifo`) or the one with the
//!   fewest requests in flight (`least_loaded`). The victim leaves the endpoint list at once,
//!   gets SIGTERM after `drain` (and, behind a load balancer, once the balancer released it:
//!   see [`DrainGate`]), SIGKILL 10 s later if still alive.
//! - Instances are recorded in the store with their PID, so a restarted scalepilot adopts the
//!   ones still running (checking that the PID's command line still names the port) and
//!   forgets the rest.
//! - The serving instances' base URLs are written to `<state dir>/<group>.endpoints` (one per
//!   line, replaced atomically) for load balancers and `scalepilot load --targets-file`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use jiff::Timestamp;
use scalepilot_core::config::{PoolSpec, ScaleIn};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use super::{Paths, Status, Target};
use scalepilot_store::{InstanceRecord, Store};

/// How often the health loop runs; also the check interval of instances not yet serving.
const TICK: Duration = Duration::from_millis(250);
/// After SIGTERM, how long an instance gets to exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// An instance that never answered its health check within this is replaced.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

struct Instance {
    host: String,
    port: u16,
    pid: i32,
    child: Option<Child>,
    started: Instant,
    started_ms: i64,
    healthy: bool,
    failures: u32,
    next_check: Instant,
    /// Out of rotation; stopped at `drain_until`.
    drain_until: Option<Instant>,
    term_sent: Option<Instant>,
}

impl Instance {
    fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn serving(&self) -> bool {
        self.healthy && self.drain_until.is_none()
    }

    /// Whether the process still runs (reaping it if it was our child).
    fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => pid_runs(self.pid, self.port),
        }
    }

    /// Signal the instance's process group (it leads its own), so a shell and whatever it
    /// started all get the signal.
    fn signal(&self, sig: rustix::process::Signal) {
        // An adopted instance's PID may have been reused since: signal it only while its
        // command line still names our port.
        if self.child.is_none() && !pid_runs(self.pid, self.port) {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid) {
            // The process may already be gone: nothing to do then.
            if rustix::process::kill_process_group(pid, sig).is_err() {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    }
}

/// A PID runs, is not a zombie, and its command line names our port (guards against PID reuse).
fn pid_runs(pid: i32, port: u16) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    // Words of every argument ("sh -c 'backend --port 9001'" has the port inside one).
    let port = port.to_string();
    cmdline
        .split(['\0', ' ', '\t'])
        .any(|w| w == port || w.ends_with(&format!(":{port}")) || w.ends_with(&format!("={port}")))
}

/// A load balancer in front of the pool: an instance taken out of rotation is stopped only
/// once the balancer no longer routes to it (or after the drain timeout).
pub(crate) trait DrainGate: Send + Sync {
    /// Whether the balancer has let go of `addr` ("host:port").
    fn released(&self, addr: &str) -> bool;
    /// Longest to wait for the balancer beyond the pool's own `drain`.
    fn timeout(&self) -> Duration {
        GATE_TIMEOUT
    }
}

/// Longest a draining instance waits for the gate beyond its own `drain`.
const GATE_TIMEOUT: Duration = Duration::from_secs(60);

struct Pool {
    group: String,
    /// (address, most instances).
    hosts: Vec<(String, Option<u32>)>,
    gate: Option<Arc<dyn DrainGate>>,
    command: String,
    ports: (u16, u16),
    health_path: String,
    health_interval: Duration,
    unhealthy_after: u32,
    /// Which instance a scale-in removes (validated: `least_loaded` has a load to read).
    scale_in: ScaleIn,
    drain: Duration,
    stop_on_exit: bool,
    instances: Vec<Instance>,
    store: Arc<dyn Store>,
    http: reqwest::Client,
    endpoints_file: PathBuf,
    log_dir: PathBuf,
    last_endpoints: Vec<String>,
    /// Replacements owed for instances that exited.
    pending_replacements: usize,
    /// Delay before the next replacement; doubles while instances keep dying young.
    backoff: Duration,
    next_replacement: Instant,
}

pub(crate) struct ProcessPool {
    pool: Arc<Mutex<Pool>>,
    stop: watch::Sender<bool>,
    health: Mutex<Option<JoinHandle<()>>>,
}

impl ProcessPool {
    /// Adopt what a previous run left, then start the health loop.
    pub(crate) async fn start(
        group: &str,
        spec: &PoolSpec,
        paths: &Paths,
        store: Arc<dyn Store>,
        http: reqwest::Client,
        gate: Option<Arc<dyn DrainGate>>,
    ) -> Result<ProcessPool> {
        let log_dir = paths.state_dir.join("logs");
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        let hosts = spec
            .hosts
            .iter()
            .map(|h| (h.address.clone(), h.max))
            .collect();
        let mut pool = Pool {
            group: group.to_string(),
            hosts,
            gate,
            command: spec.command.clone(),
            ports: spec.ports,
            health_path: spec.health_path.clone(),
            health_interval: spec.health_interval,
            unhealthy_after: spec.unhealthy_after.max(1),
            scale_in: spec.scale_in.clone(),
            drain: spec.drain,
            stop_on_exit: spec.stop_on_exit,
            instances: Vec::new(),
            store,
            http,
            endpoints_file: paths.state_dir.join(format!("{group}.endpoints")),
            log_dir,
            last_endpoints: vec!["(unwritten)".into()],
            pending_replacements: 0,
            backoff: Duration::ZERO,
            next_replacement: Instant::now(),
        };
        pool.adopt().await?;
        pool.write_endpoints();
        let pool = Arc::new(Mutex::new(pool));
        let (stop, mut stopped) = watch::channel(false);
        let looped = pool.clone();
        let health = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = stopped.changed() => break,
                }
                tick(&looped).await;
            }
        });
        Ok(ProcessPool {
            pool,
            stop,
            health: Mutex::new(Some(health)),
        })
    }
}

impl Pool {
    async fn adopt(&mut self) -> Result<()> {
        let now = Instant::now();
        for rec in self.store.instances(&self.group).await? {
            let in_range = rec.port >= self.ports.0
                && rec.port <= self.ports.1
                && self.hosts.iter().any(|h| h.0 == rec.host);
            let runs = pid_runs(rec.pid, rec.port);
            if in_range && runs {
                tracing::info!(group = %self.group, port = rec.port, pid = rec.pid, "adopted an instance left by a previous run");
                self.instances.push(Instance {
                    host: rec.host.clone(),
                    port: rec.port,
                    pid: rec.pid,
                    child: None,
                    started: now,
                    started_ms: rec.started_ms,
                    healthy: false,
                    failures: 0,
                    next_check: now,
                    drain_until: None,
                    term_sent: None,
                });
            } else if runs {
                // Started under an earlier config (another port range or host list): the pool
                // no longer manages that address, so the instance is stopped, not orphaned.
                tracing::warn!(group = %self.group, host = %rec.host, port = rec.port, pid = rec.pid, "stopping an instance of a previous run outside the pool's hosts and ports");
                if let Some(pid) = rustix::process::Pid::from_raw(rec.pid) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
                }
                self.store
                    .delete_instance(&self.group, &rec.host, rec.port)
                    .await?;
            } else {
                tracing::info!(group = %self.group, port = rec.port, pid = rec.pid, "forgot an instance of a previous run that no longer runs");
                self.store
                    .delete_instance(&self.group, &rec.host, rec.port)
                    .await?;
            }
        }
        // Know at once which adopted instances serve: scale-in must not mistake a serving
        // instance for one still starting.
        for inst in &mut self.instances {
            let url = format!("{}{}", inst.url(), self.health_path);
            let ok = matches!(self.http.get(&url).timeout(Duration::from_secs(2)).send().await, Ok(r) if r.status().is_success());
            inst.healthy = ok;
            inst.next_check = now + if ok { self.health_interval } else { TICK };
        }
        self.instances
            .sort_by(|a, b| (a.started_ms, &a.host, a.port).cmp(&(b.started_ms, &b.host, b.port)));
        Ok(())
    }

    fn on_host<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.active().filter(move |i| i.host == host)
    }

    /// The host for a new instance: most free slots, then fewest instances, then list order.
    fn choose_host(&self) -> Option<String> {
        let mut best: Option<(u64, usize, &str)> = None;
        for (addr, max) in &self.hosts {
            // Draining instances still run: they count against the host's maximum.
            let count = self.instances.iter().filter(|i| i.host == *addr).count();
            let free = match max {
                Some(m) if count as u64 >= u64::from(*m) => continue,
                Some(m) => u64::from(*m) - count as u64,
                None => u64::MAX - count as u64,
            };
            let better = best.is_none_or(|(f, c, _)| free > f || (free == f && count < c));
            if better {
                best = Some((free, count, addr));
            }
        }
        best.map(|b| b.2.to_string())
    }

    /// Index of the host to take an instance from on scale-in: the most loaded one.
    fn most_loaded_host(&self) -> Option<String> {
        let mut best: Option<(f64, usize, &str)> = None;
        for (addr, max) in &self.hosts {
            let count = self.on_host(addr).count();
            if count == 0 {
                continue;
            }
            let load = match max {
                Some(m) => count as f64 / f64::from(*m),
                None => count as f64,
            };
            if best.is_none_or(|(l, c, _)| load > l || (load == l && count > c)) {
                best = Some((load, count, addr));
            }
        }
        best.map(|b| b.2.to_string())
    }

    fn free_port(&self, host: &str) -> Option<u16> {
        let ip: std::net::IpAddr = host.parse().ok()?;
        (self.ports.0..=self.ports.1).find(|p| {
            !self
                .instances
                .iter()
                .any(|i| i.host == host && i.port == *p)
                && std::net::TcpListener::bind((ip, *p)).is_ok()
        })
    }

    async fn start_instance(&mut self) -> Result<(), String> {
        let host = self.choose_host().ok_or("every host is at its maximum")?;
        let port = self.free_port(&host).ok_or_else(|| {
            format!(
                "no free port left in {}-{} on {host}",
                self.ports.0, self.ports.1
            )
        })?;
        let line = self
            .command
            .replace("{port}", &port.to_string())
            .replace("{host}", &host);
        let log_path = self
            .log_dir
            .join(format!("{}-{host}-{port}.log", self.group));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&line)
            .env("SCALEPILOT_PORT", port.to_string())
            .env("SCALEPILOT_HOST", &host)
            .env("SCALEPILOT_GROUP", &self.group)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group: a Ctrl-C at scalepilot's terminal must not kill the
            // service; scalepilot decides when instances stop.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{line}`: {e}"))?;
        let pid = child
            .id()
            .map(|p| p as i32)
            .ok_or("the instance exited at once")?;
        let now = Instant::now();
        let started_ms = Timestamp::now().as_millisecond();
        self.instances.push(Instance {
            host: host.clone(),
            port,
            pid,
            child: Some(child),
            started: now,
            started_ms,
            healthy: false,
            failures: 0,
            next_check: now + Duration::from_millis(100),
            drain_until: None,
            term_sent: None,
        });
        tracing::info!(group = %self.group, host, port, pid, "started an instance");
        self.store
            .put_instance(
                &self.group,
                InstanceRecord {
                    host,
                    port,
                    pid,
                    started_ms,
                },
            )
            .await
            .map_err(|e| e.to_string())
    }

    fn active(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| i.drain_until.is_none())
    }

    fn status(&self) -> Status {
        Status {
            current: self.active().count() as u32,
            ready: self.active().filter(|i| i.healthy).count() as u32,
            limits: None,
            endpoints: self
                .instances
                .iter()
                .filter(|i| i.serving())
                .map(Instance::url)
                .collect(),
        }
    }

    /// Replace the endpoint list file when the serving set changed.
    fn write_endpoints(&mut self) {
        let list: Vec<String> = self
            .instances
            .iter()
            .filter(|i| i.serving())
            .map(Instance::url)
            .collect();
        if list == self.last_endpoints {
            return;
        }
        let tmp = self.endpoints_file.with_extension("endpoints.tmp");
        let body: String = list.iter().map(|u| format!("{u}\n")).collect();
        let written =
            std::fs::write(&tmp, body).and_then(|()| std::fs::rename(&tmp, &self.endpoints_file));
        match written {
            Ok(()) => self.last_endpoints = list,
            Err(e) => {
                tracing::warn!(group = %self.group, "cannot write {}: {e}", self.endpoints_file.display())
            }
        }
    }

    /// The load signal of `least_loaded` (the configured metric, summed over label sets).
    async fn load(&self, url: &str, metric: &str, path: &str) -> f64 {
        let url = format!("{url}{path}");
        let got = async {
            let r = self
                .http
                .get(&url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .ok()?;
            let text = r.text().await.ok()?;
            crate::sources::sample_sum(&text, metric)
        }
        .await;
        // Unknown load sorts last: prefer removing instances we know to be idle.
        got.unwrap_or(f64::MAX)
    }

    async fn scale_to(&mut self, desired: u32) -> Result<(), String> {
        let active = self.active().count() as u32;
        if desired > active {
            for _ in active..desired {
                self.start_instance().await?;
            }
        } else if desired < active {
            let now = Instant::now();
            for _ in desired..active {
                let Some(k) = self.pick_victim().await else {
                    break;
                };
                let inst = &mut self.instances[k];
                let wait = if inst.healthy {
                    self.drain
                } else {
                    Duration::ZERO
                };
                inst.drain_until = Some(now + wait);
                tracing::info!(group = %self.group, addr = %inst.addr(), "draining an instance for {wait:?}");
            }
        }
        self.write_endpoints();
        Ok(())
    }

    /// The instance scale-in removes next: one still starting (newest first), else one on the
    /// most loaded host, the newest (`lifo`) or the least busy (`least_loaded`).
    async fn pick_victim(&self) -> Option<usize> {
        let active: Vec<usize> = (0..self.instances.len())
            .filter(|&k| self.instances[k].drain_until.is_none())
            .collect();
        let newest = |ks: &mut Vec<usize>| {
            ks.sort_by_key(|&k| {
                std::cmp::Reverse((self.instances[k].started_ms, self.instances[k].port))
            });
            ks.first().copied()
        };
        let mut starting: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&k| !self.instances[k].healthy)
            .collect();
        if let Some(k) = newest(&mut starting) {
            return Some(k);
        }
        let host = self.most_loaded_host()?;
        let mut candidates: Vec<usize> = active
            .into_iter()
            .filter(|&k| self.instances[k].host == host)
            .collect();
        let (metric, path) = match &self.scale_in {
            ScaleIn::Lifo => return newest(&mut candidates),
            ScaleIn::LeastLoaded { metric, path } => (metric.clone(), path.clone()),
        };
        let mut best: Option<(f64, usize)> = None;
        newest(&mut candidates);
        for k in candidates {
            let load = self.load(&self.instances[k].url(), &metric, &path).await;
            if best.is_none_or(|(l, _)| load < l) {
                best = Some((load, k));
            }
        }
        best.map(|b| b.1)
    }

    async fn stop_all(&mut self) {
        for i in &self.instances {
            i.signal(rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline && self.instances.iter_mut().any(Instance::alive) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for i in &mut self.instances {
            if i.alive() {
                i.signal(rustix::process::Signal::KILL);
                if let Some(c) = i.child.as_mut() {
                    let _ = c.wait().await;
                }
            }
            let _ = self
                .store
                .delete_instance(&self.group, &i.host, i.port)
                .await;
        }
        self.instances.clear();
        self.write_endpoints();
    }
}

/// One round of the health loop: stop drained instances, replace dead ones, run due checks.
async fn tick(pool: &Arc<Mutex<Pool>>) {
    let now = Instant::now();
    let (checks, http, path) = {
        let mut p = pool.lock().await;
        let gate = p.gate.clone();
        let mut gone = Vec::new();
        let mut replace = 0;
        for (k, inst) in p.instances.iter_mut().enumerate() {
            if let Some(until) = inst.drain_until {
                let released = gate
                    .as_ref()
                    .is_none_or(|g| g.released(&inst.addr()) || now >= until + g.timeout());
                match inst.term_sent {
                    None if now >= until && released => {
                        tracing::info!(addr = %inst.addr(), pid = inst.pid, "stopping a drained instance");
                        inst.signal(rustix::process::Signal::TERM);
                        inst.term_sent = Some(now);
                    }
                    None => {}
                    Some(sent) => {
                        if !inst.alive() {
                            gone.push(k);
                        } else if now.duration_since(sent) > STOP_GRACE {
                            inst.signal(rustix::process::Signal::KILL);
                        }
                    }
                }
                continue;
            }
            if !inst.alive() {
                tracing::warn!(
                    port = inst.port,
                    pid = inst.pid,
                    "instance exited: replacing it"
                );
                gone.push(k);
                replace += 1;
            }
        }
        for &k in gone.iter().rev() {
            let inst = p.instances.remove(k);
            if inst.drain_until.is_none() {
                if inst.healthy || now.duration_since(inst.started) > Duration::from_secs(30) {
                    p.backoff = Duration::ZERO;
                } else {
                    p.backoff =
                        (p.backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                }
                p.next_replacement = now + p.backoff;
            }
            let group = p.group.clone();
            let _ = p.store.delete_instance(&group, &inst.host, inst.port).await;
            if inst.drain_until.is_none() {
                let msg = format!(
                    "instance {} (pid {}) exited; replaced",
                    inst.addr(),
                    inst.pid
                );
                let _ = p
                    .store
                    .record_error(Some(&group), "target", &msg, Timestamp::now())
                    .await;
            }
        }
        p.pending_replacements += replace;
        // Instances that die young (a command that cannot start) are replaced with backoff,
        // not in a tight loop.
        if p.pending_replacements > 0 && now >= p.next_replacement {
            for _ in 0..p.pending_replacements {
                if let Err(e) = p.start_instance().await {
                    tracing::warn!(group = %p.group, "cannot replace an instance: {e}");
                }
            }
            p.pending_replacements = 0;
        }
        let checks: Vec<String> = p
            .instances
            .iter()
            .filter(|i| i.drain_until.is_none() && now >= i.next_check)
            .map(Instance::addr)
            .collect();
        p.write_endpoints();
        (checks, p.http.clone(), p.health_path.clone())
    };
    if checks.is_empty() {
        return;
    }
    // Checks run without the lock so status() and scale_to() never wait on a slow instance.
    let mut results = Vec::with_capacity(checks.len());
    for addr in checks {
        let url = format!("http://{addr}{path}");
        let http = http.clone();
        results.push((addr, tokio::spawn(async move {
            matches!(http.get(&url).timeout(Duration::from_secs(2)).send().await, Ok(r) if r.status().is_success())
        })));
    }
    let mut outcome = Vec::with_capacity(results.len());
    for (addr, h) in results {
        outcome.push((addr, h.await.unwrap_or(false)));
    }
    let mut p = pool.lock().await;
    let now = Instant::now();
    let (interval, limit) = (p.health_interval, p.unhealthy_after);
    let mut replace = Vec::new();
    for (addr, ok) in outcome {
        let Some(inst) = p
            .instances
            .iter_mut()
            .find(|i| i.addr() == addr && i.drain_until.is_none())
        else {
            continue;
        };
        if ok {
            if !inst.healthy {
                tracing::info!(%addr, "instance is serving");
            }
            inst.healthy = true;
            inst.failures = 0;
            inst.next_check = now + interval;
        } else {
            inst.failures += 1;
            inst.next_check = now + if inst.healthy { interval } else { TICK };
            let failed = (inst.healthy && inst.failures >= limit)
                || (!inst.healthy && now.duration_since(inst.started) > STARTUP_TIMEOUT);
            if failed {
                replace.push(addr);
            }
        }
    }
    for addr in replace {
        let group = p.group.clone();
        if let Some(inst) = p.instances.iter_mut().find(|i| i.addr() == addr) {
            tracing::warn!(group = %group, %addr, "instance failed its health checks: replacing it");
            // Out of rotation now, killed at once: it is not serving anyway.
            inst.healthy = false;
            inst.drain_until = Some(now);
        }
        let msg = format!("instance {addr} failed its health checks; replaced");
        let _ = p
            .store
            .record_error(Some(&group), "target", &msg, Timestamp::now())
            .await;
        if let Err(e) = p.start_instance().await {
            tracing::warn!(group = %group, "cannot replace an instance: {e}");
        }
    }
    p.write_endpoints();
}

impl ProcessPool {
    /// Wait (at most 30 s) for the drains in progress to end: a drained instance must not be
    /// left running for the next run to adopt as a serving one.
    pub(crate) async fn finish_drains(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && self
                .pool
                .lock()
                .await
                .instances
                .iter()
                .any(|i| i.drain_until.is_some())
        {
            tokio::time::sleep(TICK).await;
        }
    }

    /// Whether `shutdown` stops the instances.
    pub(crate) async fn stops_on_exit(&self) -> bool {
        self.pool.lock().await.stop_on_exit
    }
}

#[async_trait]
impl Target for ProcessPool {
    async fn status(&self) -> Result<Status, String> {
        Ok(self.pool.lock().await.status())
    }

    async fn scale_to(&self, desired: u32) -> Result<(), String> {
        self.pool.lock().await.scale_to(desired).await
    }

    async fn shutdown(&self) {
        self.finish_drains().await;
        let _ = self.stop.send(true);
        if let Some(h) = self.health.lock().await.take() {
            let _ = h.await;
        }
        let mut p = self.pool.lock().await;
        if p.stop_on_exit {
            p.stop_all().await;
        }
    }
}
