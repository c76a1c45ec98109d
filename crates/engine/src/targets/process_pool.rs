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
//! - Every instance carries `SCALEPILOT_INSTANCE=<group>/<host>:<port>/<start id>@<machine>` in its
//!   environment and leads its own process group. It is recorded in the store before it is
//!   spawned (an intent without PID) and settled with its PID after, so a crash at any point
//!   leaves a record: a restarted scalepilot finds each recorded instance by its marker in
//!   `/proc/<pid>/environ` (whatever the command line shows: `PORT={port} exec app`), adopts
//!   it, stops it when the pool no longer manages its address, or drops the record when no
//!   process carries the marker. Records of releases without markers fall back to the PID
//!   and a command line naming the port. A record whose marker names another machine
//!   (daemons with `engine.ha: true` on several machines) keeps the group from starting
//!   here: this daemon cannot see that process, so it neither forgets it nor starts a
//!   second set beside it.
//! - An instance runs while any process of its process group carries its marker, also once
//!   the group's leader (the `sh`, or the process adopted) has exited; signals go to the
//!   group. A record is deleted only once no such process is left (SIGTERM, SIGKILL after
//!   the grace, then checked); one that outlives SIGKILL keeps its record. /proc is read on
//!   the blocking pool, never under the pool's lock.
//! - Locks: the pool's mutex guards its in-memory state only. Store writes, spawns, health
//!   probes and load probes run with it released (snapshot, release, act, re-lock to apply),
//!   so `status()` never waits on the network or the store; changes (scale_to, the health
//!   loop's replacements) are serialized by a separate operation lock.
//! - The serving instances' base URLs are written to `<state dir>/<group>.endpoints` (one per
//!   line, replaced atomically) for load balancers and `scalepilot load --targets-file`,
//!   without the pool's lock, in order (see [`write_endpoints`]).

use std::collections::HashMap;
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
use scalepilot_store::{ErrorComponent, InstanceRecord, Store};

/// How often the health loop runs; also the check interval of instances not yet serving.
const TICK: Duration = Duration::from_millis(250);
/// After SIGTERM, how long an instance gets to exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// An instance that never answered its health check within this is replaced.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// The environment variable that marks each instance (see the module docs).
const MARKER_VAR: &str = "SCALEPILOT_INSTANCE";

struct Instance {
    host: String,
    port: u16,
    /// The process group leader's PID; 0 while being spawned.
    pid: i32,
    /// `SCALEPILOT_INSTANCE` of the process; `None` for instances adopted from records of
    /// releases without markers.
    marker: Option<String>,
    /// Reserved (host and port taken) while being recorded and spawned without the lock.
    spawning: bool,
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
    /// An instance a previous run left, found running: health-checked at once.
    fn adopted(rec: &InstanceRecord, pid: i32, now: Instant) -> Instance {
        Instance {
            host: rec.host.clone(),
            port: rec.port,
            pid,
            marker: rec.marker.clone(),
            spawning: false,
            child: None,
            started: now,
            started_ms: rec.started_ms,
            healthy: false,
            failures: 0,
            next_check: now,
            drain_until: None,
            term_sent: None,
        }
    }
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

    /// Whether the process still runs (reaping it if it was our child). A marked instance
    /// runs while any process of its group carries its marker, even once the group's leader
    /// (our `sh`, or the process a previous run adopted) has exited: `seen` holds what
    /// [`probe`] read from /proc. An instance `seen` does not know (not probed yet) counts as
    /// running until the next probe.
    fn alive(&mut self, seen: &Seen) -> bool {
        if self.spawning || self.child_runs() {
            return true;
        }
        self.key()
            .and_then(|k| seen.get(&k).copied())
            .unwrap_or(true)
    }

    /// Our child (the group's leader) has not exited yet.
    fn child_runs(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What [`probe`] reads for this instance; `None` while it is being spawned.
    fn key(&self) -> Option<ProcKey> {
        (!self.spawning && self.pid > 0).then(|| ProcKey {
            pid: self.pid,
            port: self.port,
            marker: self.marker.clone(),
        })
    }

    /// Signal the instance's process group (it leads its own), so a shell and whatever it
    /// started all get the signal, also once the shell has exited.
    fn signal(&mut self, sig: rustix::process::Signal, seen: &Seen) {
        // The group's ID may have been reused since: signal it only while one of its
        // processes still carries our marker (or, for old records, the PID's command line
        // names our port).
        if self.spawning || !self.alive(seen) {
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

/// What identifies an instance's processes in /proc: its process group (led by `pid` when
/// spawned) and its marker; for records of releases without markers, the PID and the port its
/// command line names.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ProcKey {
    pid: i32,
    port: u16,
    marker: Option<String>,
}

/// Whether each probed instance still runs.
type Seen = HashMap<ProcKey, bool>;

/// Read from /proc, off the runtime's threads, whether each key's processes still run.
async fn probe(keys: Vec<ProcKey>) -> Seen {
    if keys.is_empty() {
        return Seen::new();
    }
    // Should the task fail, nothing is known: every instance counts as running.
    tokio::task::spawn_blocking(move || probe_blocking(keys))
        .await
        .unwrap_or_default()
}

/// The probe of the instances not known to run from our own child's status.
async fn probe_instances(instances: &mut [Instance]) -> Seen {
    let keys = instances
        .iter_mut()
        .filter_map(|i| if i.child_runs() { None } else { i.key() })
        .collect();
    probe(keys).await
}

/// Blocking: a marked instance runs while its group's leader carries the marker (checked
/// first, cheaply) or else any other process of its group does (one pass over /proc for
/// every group whose leader is gone).
fn probe_blocking(keys: Vec<ProcKey>) -> Seen {
    let mut seen = Seen::new();
    let mut leaderless: HashMap<(i32, String), ProcKey> = HashMap::new();
    for key in keys {
        let runs = match key.marker.as_deref() {
            Some(m) if marker_of(key.pid).as_deref() == Some(m) => true,
            Some(m) => {
                leaderless.insert((key.pid, m.to_string()), key.clone());
                false
            }
            None => pid_runs(key.pid, key.port),
        };
        seen.insert(key, runs);
    }
    if !leaderless.is_empty() {
        scan_marked(|_, pgrp, m| {
            if let Some(key) = leaderless.remove(&(pgrp, m)) {
                seen.insert(key, true);
            }
        });
    }
    seen
}

/// Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, …]; `None` for a
/// process that is gone or a zombie.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<String> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .map(str::to_string)
        .collect();
    match rest.first().map(String::as_str) {
        Some("Z") | Some("X") | None => None,
        _ => Some(rest),
    }
}

/// The process group and `SCALEPILOT_INSTANCE` of a live, non-zombie process.
fn marked_process(pid: i32) -> Option<(i32, String)> {
    let pgrp = stat_fields(pid)?.get(2)?.parse::<i32>().ok()?;
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{MARKER_VAR}=");
    let marker = env.split(|&b| b == 0).find_map(|kv| {
        let kv = std::str::from_utf8(kv).ok()?;
        kv.strip_prefix(&prefix).map(str::to_string)
    })?;
    Some((pgrp, marker))
}

/// The `SCALEPILOT_INSTANCE` of a live, non-zombie process.
fn marker_of(pid: i32) -> Option<String> {
    marked_process(pid).map(|(_, m)| m)
}

/// Blocking: every live process carrying a marker, as (PID, process group, marker).
fn scan_marked(mut each: impl FnMut(i32, i32, String)) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((pgrp, m)) = marked_process(pid) {
            each(pid, pgrp, m);
        }
    }
}

/// Blocking: live processes carrying one of `markers`: marker → process group (the
/// instance's group is led by the process spawned; a shell's children share it, so the group
/// is what to signal even when the leader has exec'd or exited).
fn find_marked(markers: &[String]) -> HashMap<String, i32> {
    let mut found: HashMap<String, (bool, i32)> = HashMap::new();
    if markers.is_empty() {
        return HashMap::new();
    }
    scan_marked(|pid, pgrp, m| {
        if !markers.contains(&m) {
            return;
        }
        // Prefer the group's leader; any member names the group.
        let leader = pgrp == pid;
        let e = found.entry(m).or_insert((leader, pgrp));
        if leader {
            *e = (true, pgrp);
        }
    });
    found.into_iter().map(|(m, (_, g))| (m, g)).collect()
}

/// The machine named by a marker (`<group>/<host>:<port>/<start id>@<machine>`); `None` for
/// markers written before they named it (adopted as before: on this machine).
fn marker_machine(marker: &str) -> Option<&str> {
    let (_, last) = marker.rsplit_once('/')?;
    last.split_once('@').map(|(_, m)| m)
}

/// A PID runs, is not a zombie, and its command line names our port (guards against PID
/// reuse). Only for records written before instances carried markers.
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
    /// This machine (see [`crate::machine`]): the suffix of every marker it writes.
    machine: String,
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
    /// The list last written to `endpoints_file`; its lock serializes the writes (see
    /// [`write_endpoints`]).
    endpoints_writer: Arc<Mutex<Vec<String>>>,
    /// Replacements owed for instances that exited.
    pending_replacements: usize,
    /// Delay before the next replacement; doubles while instances keep dying young.
    backoff: Duration,
    next_replacement: Instant,
    /// Test hook: pause between spawning an instance and settling its record, so a test can
    /// kill scalepilot inside that window (`SCALEPILOT_FAULT_PAUSE_AFTER_SPAWN_MS`).
    spawn_pause: Option<Duration>,
}

pub(crate) struct ProcessPool {
    /// In-memory state only: never held across a store write, a spawn or a probe.
    pool: Arc<Mutex<Pool>>,
    /// Serializes changes (scale_to, the health loop's replacements), which do run I/O.
    /// `status()` never takes it.
    ops: Arc<Mutex<()>>,
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
            machine: crate::machine::name(),
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
            endpoints_writer: Arc::new(Mutex::new(vec!["(unwritten)".into()])),
            pending_replacements: 0,
            backoff: Duration::ZERO,
            next_replacement: Instant::now(),
            spawn_pause: std::env::var("SCALEPILOT_FAULT_PAUSE_AFTER_SPAWN_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
        };
        // No lock exists yet: adoption may write to the store and probe freely.
        pool.adopt().await?;
        let pool = Arc::new(Mutex::new(pool));
        write_endpoints(&pool).await;
        let ops = Arc::new(Mutex::new(()));
        let (stop, mut stopped) = watch::channel(false);
        let (looped, looped_ops) = (pool.clone(), ops.clone());
        let health = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = stopped.changed() => break,
                }
                tick(&looped, &looped_ops).await;
            }
        });
        Ok(ProcessPool {
            pool,
            ops,
            stop,
            health: Mutex::new(Some(health)),
        })
    }
}

impl Pool {
    /// Instances recorded by a daemon on another machine (several daemons with
    /// `engine.ha: true`): this daemon cannot see their processes, so it must neither forget
    /// their records nor start a second set beside them. The group does not start here; its
    /// error says where they run.
    fn refuse_foreign(&self, records: &[InstanceRecord]) -> Result<()> {
        let foreign: Vec<(&str, String)> = records
            .iter()
            .filter_map(|r| {
                let m = marker_machine(r.marker.as_deref()?)?;
                (m != self.machine).then(|| (m, format!("{}:{}", r.host, r.port)))
            })
            .collect();
        let Some((machine, _)) = foreign.first() else {
            return Ok(());
        };
        let addrs: Vec<&str> = foreign.iter().map(|(_, a)| a.as_str()).collect();
        anyhow::bail!(
            "{} instance(s) of this process pool ({}) were started on machine `{machine}`, and this daemon runs on `{}`: a process pool's instances are processes of one machine, so this daemon neither adopts, stops nor forgets them. Run the group where they run, or stop them there (their records stay in the store until a daemon on `{machine}` settles them)",
            foreign.len(),
            addrs.join(", "),
            self.machine
        )
    }

    async fn adopt(&mut self) -> Result<()> {
        let now = Instant::now();
        let records = self.store.instances(&self.group).await?;
        self.refuse_foreign(&records)?;
        // One pass over /proc for every marker recorded, off the runtime's threads.
        let recs = records.clone();
        let lives: Vec<Option<i32>> = tokio::task::spawn_blocking(move || {
            let markers: Vec<String> = recs.iter().filter_map(|r| r.marker.clone()).collect();
            let found = find_marked(&markers);
            recs.iter()
                .map(|rec| match (rec.marker.as_deref(), rec.pid) {
                    (Some(m), _) => found.get(m).copied(),
                    // A record of a release without markers: its PID, if its command line
                    // still names the port.
                    (None, Some(pid)) if pid_runs(pid, rec.port) => Some(pid),
                    (None, _) => None,
                })
                .collect()
        })
        .await
        .context("cannot look for the instances of a previous run in /proc")?;
        // Instances outside the pool's hosts and ports, stopped once all are looked at.
        let mut outside = Vec::new();
        for (rec, live) in records.iter().zip(lives) {
            let in_range = rec.port >= self.ports.0
                && rec.port <= self.ports.1
                && self.hosts.iter().any(|h| h.0 == rec.host);
            match live {
                Some(pid) if in_range => {
                    if rec.pid.is_none() {
                        tracing::warn!(group = %self.group, host = %rec.host, port = rec.port, pid, "adopted an instance whose start a previous run did not finish recording");
                    } else {
                        tracing::info!(group = %self.group, host = %rec.host, port = rec.port, pid, "adopted an instance left by a previous run");
                    }
                    if rec.pid != Some(pid) {
                        self.store
                            .put_instance(
                                &self.group,
                                InstanceRecord {
                                    pid: Some(pid),
                                    ..rec.clone()
                                },
                            )
                            .await?;
                    }
                    self.instances.push(Instance::adopted(rec, pid, now));
                }
                Some(pid) => {
                    // Started under an earlier config (another port range or host list): the
                    // pool no longer manages that address, so the instance is stopped, not
                    // orphaned.
                    tracing::warn!(group = %self.group, host = %rec.host, port = rec.port, pid, "stopping an instance of a previous run outside the pool's hosts and ports");
                    // Its record goes only once it no longer runs (see `stop_instances`).
                    outside.push(Instance::adopted(rec, pid, now));
                }
                None if rec.pid.is_none() => {
                    tracing::info!(group = %self.group, host = %rec.host, port = rec.port, "dropped the record of an instance a previous run was about to start: no process carries its marker");
                    self.store
                        .delete_instance(&self.group, &rec.host, rec.port)
                        .await?;
                }
                None => {
                    tracing::info!(group = %self.group, port = rec.port, pid = rec.pid, "forgot an instance of a previous run that no longer runs");
                    self.store
                        .delete_instance(&self.group, &rec.host, rec.port)
                        .await?;
                }
            }
        }
        stop_instances(outside, &self.store, &self.group).await;
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

    /// Take a host and port for a new instance, in memory only: a placeholder instance
    /// (`spawning`) holds them while the caller records and spawns without the lock.
    fn reserve(&mut self) -> Result<Reserved, String> {
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
        let marker = format!(
            "{}/{host}:{port}/{:016x}@{}",
            self.group,
            rand::random::<u64>(),
            self.machine
        );
        let now = Instant::now();
        let started_ms = Timestamp::now().as_millisecond();
        self.instances.push(Instance {
            host: host.clone(),
            port,
            pid: 0,
            marker: Some(marker.clone()),
            spawning: true,
            child: None,
            started: now,
            started_ms,
            healthy: false,
            failures: 0,
            next_check: now,
            drain_until: None,
            term_sent: None,
        });
        Ok(Reserved {
            record: InstanceRecord {
                host: host.clone(),
                port,
                pid: None,
                started_ms,
                marker: Some(marker),
            },
            line,
            log_path: self
                .log_dir
                .join(format!("{}-{host}-{port}.log", self.group)),
            group: self.group.clone(),
            store: self.store.clone(),
            spawn_pause: self.spawn_pause,
        })
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

    /// The base URLs of the serving instances.
    fn serving_urls(&self) -> Vec<String> {
        self.instances
            .iter()
            .filter(|i| i.serving())
            .map(Instance::url)
            .collect()
    }

    /// What scale-in takes next, decided on a snapshot: one still starting (newest first),
    /// else on the most loaded host the newest (`lifo`) or, for `least_loaded`, the
    /// candidates to probe (newest first) without the lock.
    fn victim(&self) -> Option<Victim> {
        let active: Vec<&Instance> = self
            .instances
            .iter()
            .filter(|i| i.drain_until.is_none() && !i.spawning)
            .collect();
        fn newest(mut v: Vec<&Instance>) -> Vec<&Instance> {
            v.sort_by_key(|i| std::cmp::Reverse((i.started_ms, i.port)));
            v
        }
        let starting = newest(active.iter().copied().filter(|i| !i.healthy).collect());
        if let Some(i) = starting.first() {
            return Some(Victim::Pick(i.addr()));
        }
        let host = self.most_loaded_host()?;
        let candidates = newest(active.into_iter().filter(|i| i.host == host).collect());
        match &self.scale_in {
            ScaleIn::Lifo => candidates.first().map(|i| Victim::Pick(i.addr())),
            ScaleIn::LeastLoaded { metric, path } => Some(Victim::Probe {
                addrs: candidates.iter().map(|i| i.addr()).collect(),
                metric: metric.clone(),
                path: path.clone(),
            }),
        }
    }
}

/// A new instance's host and port, taken; what it takes to record and spawn it.
struct Reserved {
    record: InstanceRecord,
    line: String,
    log_path: PathBuf,
    group: String,
    store: Arc<dyn Store>,
    spawn_pause: Option<Duration>,
}

/// The scale-in choice made under the lock.
enum Victim {
    Pick(String),
    /// `least_loaded`: the addresses to probe, newest first (ties go to the newest), and
    /// where each serves its load.
    Probe {
        addrs: Vec<String>,
        metric: String,
        path: String,
    },
}

/// A spawn's outcome: the process, if one was started, and an error, if any step failed.
struct Spawned {
    child: Option<(Child, i32)>,
    error: Option<String>,
}

impl Reserved {
    /// Record the intent, spawn, settle the record: the intent comes first so that a crash
    /// at any point leaves a record the next run resolves by the marker.
    async fn spawn(&self) -> Spawned {
        let fail = |error: String| Spawned {
            child: None,
            error: Some(error),
        };
        let r = &self.record;
        if let Err(e) = self.store.put_instance(&self.group, r.clone()).await {
            return fail(format!(
                "cannot record the instance {}:{} before starting it, not starting it: {e}",
                r.host, r.port
            ));
        }
        let spawned = self.spawn_process();
        let (child, pid) = match spawned {
            Ok(c) => c,
            Err(e) => {
                // Nothing runs: the intent goes (a leftover would be dropped at restart).
                let _ = self
                    .store
                    .delete_instance(&self.group, &r.host, r.port)
                    .await;
                return fail(e);
            }
        };
        tracing::info!(group = %self.group, host = %r.host, port = r.port, pid, "started an instance");
        if let Some(p) = self.spawn_pause {
            tracing::warn!(group = %self.group, "test hook: pausing {p:?} between spawning pid {pid} and recording it");
            tokio::time::sleep(p).await;
        }
        let settled = InstanceRecord {
            pid: Some(pid),
            ..r.clone()
        };
        // A failed settle leaves the intent with the marker: the next run still finds the
        // process. The instance runs; the error fails this evaluation.
        let error = self
            .store
            .put_instance(&self.group, settled)
            .await
            .err()
            .map(|e| {
                format!(
                    "cannot record the started instance {}:{}: {e}",
                    r.host, r.port
                )
            });
        Spawned {
            child: Some((child, pid)),
            error,
        }
    }

    fn spawn_process(&self) -> Result<(Child, i32), String> {
        let r = &self.record;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("cannot open {}: {e}", self.log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&self.line)
            .env("SCALEPILOT_PORT", r.port.to_string())
            .env("SCALEPILOT_HOST", &r.host)
            .env("SCALEPILOT_GROUP", &self.group)
            // What identifies the instance at a restart, whatever its command line shows;
            // inherited by whatever the shell starts.
            .env(MARKER_VAR, r.marker.as_deref().unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group: a Ctrl-C at scalepilot's terminal must not kill the
            // service; scalepilot decides when instances stop (and signals the whole group).
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", self.line))?;
        let pid = child
            .id()
            .map(|p| p as i32)
            .ok_or("the instance exited at once")?;
        Ok((child, pid))
    }
}

/// Start one instance: reserve under the lock; record, spawn and settle without it; re-lock
/// to put the process in place of the reservation.
async fn start_instance(pool: &Arc<Mutex<Pool>>) -> Result<(), String> {
    let reserved = pool.lock().await.reserve()?;
    let out = reserved.spawn().await;
    let marker = reserved.record.marker;
    let mut p = pool.lock().await;
    let k = p
        .instances
        .iter()
        .position(|i| i.spawning && i.marker == marker);
    match (k, out.child) {
        (Some(k), Some((child, pid))) => {
            let now = Instant::now();
            let inst = &mut p.instances[k];
            inst.pid = pid;
            inst.child = Some(child);
            inst.spawning = false;
            inst.started = now;
            inst.next_check = now + Duration::from_millis(100);
        }
        (Some(k), None) => {
            p.instances.remove(k);
        }
        // The reservation is always there: only its owner removes it.
        (None, _) => {}
    }
    match out.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Replace the endpoint list file when the serving set changed. The file is written without
/// the pool's lock and off the runtime's threads; the writer's own lock, taken before the
/// pool's (never the other way round), keeps the writes in order, so an older list never
/// replaces a newer one.
async fn write_endpoints(pool: &Arc<Mutex<Pool>>) {
    let writer = pool.lock().await.endpoints_writer.clone();
    let mut last = writer.lock().await;
    let (list, file, group) = {
        let p = pool.lock().await;
        (p.serving_urls(), p.endpoints_file.clone(), p.group.clone())
    };
    if list == *last {
        return;
    }
    let body: String = list.iter().map(|u| format!("{u}\n")).collect();
    let shown = file.display().to_string();
    let written = tokio::task::spawn_blocking(move || {
        let tmp = file.with_extension("endpoints.tmp");
        std::fs::write(&tmp, body).and_then(|()| std::fs::rename(&tmp, &file))
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    match written {
        Ok(()) => *last = list,
        Err(e) => tracing::warn!(group = %group, "cannot write {shown}: {e}"),
    }
}

/// Take one instance out of rotation (scale-in); false when there is none to take.
async fn drain_one(pool: &Arc<Mutex<Pool>>) -> bool {
    let (victim, http) = {
        let p = pool.lock().await;
        (p.victim(), p.http.clone())
    };
    let addr = match victim {
        None => return false,
        Some(Victim::Pick(addr)) => addr,
        Some(Victim::Probe {
            addrs,
            metric,
            path,
        }) => {
            // Load probes without the lock; the least busy wins, ties to the newest.
            let mut best: Option<(f64, String)> = None;
            for addr in addrs {
                let load = load(&http, &format!("http://{addr}{path}"), &metric).await;
                if best.as_ref().is_none_or(|(l, _)| load < *l) {
                    best = Some((load, addr));
                }
            }
            match best {
                Some((_, a)) => a,
                None => return false,
            }
        }
    };
    let mut p = pool.lock().await;
    let drain = p.drain;
    let group = p.group.clone();
    let Some(inst) = p
        .instances
        .iter_mut()
        .find(|i| i.addr() == addr && i.drain_until.is_none() && !i.spawning)
    else {
        // Gone meanwhile (it exited): the count is down already.
        return true;
    };
    let wait = if inst.healthy { drain } else { Duration::ZERO };
    inst.drain_until = Some(Instant::now() + wait);
    tracing::info!(group = %group, addr = %inst.addr(), "draining an instance for {wait:?}");
    true
}

/// The load signal of `least_loaded`: `metric` (summed over its label sets) at `url`.
async fn load(http: &reqwest::Client, url: &str, metric: &str) -> f64 {
    let got = async {
        let r = http
            .get(url)
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

async fn scale_to(pool: &Arc<Mutex<Pool>>, ops: &Mutex<()>, desired: u32) -> Result<(), String> {
    let _op = ops.lock().await;
    let active = pool.lock().await.active().count() as u32;
    let result = if desired > active {
        let mut r = Ok(());
        for _ in active..desired {
            r = start_instance(pool).await;
            if r.is_err() {
                break;
            }
        }
        r
    } else {
        for _ in desired..active {
            if !drain_one(pool).await {
                break;
            }
        }
        Ok(())
    };
    write_endpoints(pool).await;
    result
}

/// Stop every instance (shutdown with `stop_on_exit`): signals and waits without the lock.
async fn stop_all(pool: &Arc<Mutex<Pool>>) {
    let (instances, store, group) = {
        let mut p = pool.lock().await;
        (
            std::mem::take(&mut p.instances),
            p.store.clone(),
            p.group.clone(),
        )
    };
    stop_instances(instances, &store, &group).await;
    write_endpoints(pool).await;
}

/// Stop `instances`: SIGTERM, SIGKILL after `STOP_GRACE`; a record goes only once no process
/// of its instance runs (one that outlives SIGKILL keeps its record, for the next run).
async fn stop_instances(mut instances: Vec<Instance>, store: &Arc<dyn Store>, group: &str) {
    if instances.is_empty() {
        return;
    }
    let seen = probe_instances(&mut instances).await;
    for i in &mut instances {
        i.signal(rustix::process::Signal::TERM, &seen);
    }
    wait_gone(&mut instances, Instant::now() + STOP_GRACE).await;
    let seen = probe_instances(&mut instances).await;
    let mut killed = false;
    for i in &mut instances {
        if i.alive(&seen) {
            i.signal(rustix::process::Signal::KILL, &seen);
            killed = true;
            if let Some(c) = i.child.as_mut() {
                let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
            }
        }
    }
    if killed {
        // Killed processes of the group other than our child are reaped by others.
        wait_gone(&mut instances, Instant::now() + Duration::from_secs(2)).await;
    }
    let seen = probe_instances(&mut instances).await;
    for i in &mut instances {
        if i.alive(&seen) {
            tracing::error!(group = %group, addr = %i.addr(), pid = i.pid, "an instance still runs after SIGKILL: keeping its record");
            continue;
        }
        let _ = store.delete_instance(group, &i.host, i.port).await;
    }
}

/// Wait until no instance runs, or `deadline`.
async fn wait_gone(instances: &mut [Instance], deadline: Instant) {
    loop {
        let seen = probe_instances(instances).await;
        if Instant::now() >= deadline || !instances.iter_mut().any(|i| i.alive(&seen)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Start `count` replacements, unless a change (scale_to) is in progress: then they stay
/// owed for the next round.
async fn replace(pool: &Arc<Mutex<Pool>>, ops: &Mutex<()>, count: usize) {
    if count == 0 {
        return;
    }
    let Ok(_op) = ops.try_lock() else {
        pool.lock().await.pending_replacements += count;
        return;
    };
    for _ in 0..count {
        if let Err(e) = start_instance(pool).await {
            let group = pool.lock().await.group.clone();
            tracing::warn!(group = %group, "cannot replace an instance: {e}");
        }
    }
}

/// One round of the health loop: stop drained instances, replace dead ones, run due checks.
/// Each step decides under the lock and does its I/O (store, spawns, probes) without it.
async fn tick(pool: &Arc<Mutex<Pool>>, ops: &Mutex<()>) {
    let now = Instant::now();
    // Which instances still run, read from /proc without the lock and off the runtime.
    let keys = {
        let mut p = pool.lock().await;
        p.instances
            .iter_mut()
            .filter_map(|i| if i.child_runs() { None } else { i.key() })
            .collect()
    };
    let seen = probe(keys).await;
    let (gone, store, group) = {
        let mut p = pool.lock().await;
        let gate = p.gate.clone();
        let mut gone = Vec::new();
        let mut replace = 0;
        for (k, inst) in p.instances.iter_mut().enumerate() {
            if inst.spawning {
                continue;
            }
            if let Some(until) = inst.drain_until {
                let released = gate
                    .as_ref()
                    .is_none_or(|g| g.released(&inst.addr()) || now >= until + g.timeout());
                match inst.term_sent {
                    None if now >= until && released => {
                        tracing::info!(addr = %inst.addr(), pid = inst.pid, "stopping a drained instance");
                        inst.signal(rustix::process::Signal::TERM, &seen);
                        inst.term_sent = Some(now);
                    }
                    None => {}
                    Some(sent) => {
                        if !inst.alive(&seen) {
                            gone.push(k);
                        } else if now.duration_since(sent) > STOP_GRACE {
                            inst.signal(rustix::process::Signal::KILL, &seen);
                        }
                    }
                }
                continue;
            }
            if !inst.alive(&seen) {
                tracing::warn!(
                    port = inst.port,
                    pid = inst.pid,
                    "instance exited: replacing it"
                );
                gone.push(k);
                replace += 1;
            }
        }
        let mut removed = Vec::with_capacity(gone.len());
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
            removed.push(inst);
        }
        p.pending_replacements += replace;
        (removed, p.store.clone(), p.group.clone())
    };
    for inst in &gone {
        let _ = store.delete_instance(&group, &inst.host, inst.port).await;
        if inst.drain_until.is_none() {
            let msg = format!(
                "instance {} (pid {}) exited; replaced",
                inst.addr(),
                inst.pid
            );
            let _ = store
                .record_error(Some(&group), ErrorComponent::Target, &msg, Timestamp::now())
                .await;
        }
    }
    // Instances that die young (a command that cannot start) are replaced with backoff,
    // not in a tight loop.
    let due = {
        let mut p = pool.lock().await;
        if p.pending_replacements > 0 && now >= p.next_replacement {
            std::mem::take(&mut p.pending_replacements)
        } else {
            0
        }
    };
    replace(pool, ops, due).await;
    let (checks, http, path) = {
        let p = pool.lock().await;
        let checks: Vec<String> = p
            .instances
            .iter()
            .filter(|i| i.drain_until.is_none() && !i.spawning && now >= i.next_check)
            .map(Instance::addr)
            .collect();
        (checks, p.http.clone(), p.health_path.clone())
    };
    write_endpoints(pool).await;
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
    let failed_checks = {
        let mut p = pool.lock().await;
        let now = Instant::now();
        let (interval, limit) = (p.health_interval, p.unhealthy_after);
        let mut failed_checks = Vec::new();
        for (addr, ok) in outcome {
            let Some(inst) = p
                .instances
                .iter_mut()
                .find(|i| i.addr() == addr && i.drain_until.is_none() && !i.spawning)
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
                    tracing::warn!(group = %group, %addr, "instance failed its health checks: replacing it");
                    // Out of rotation now, killed at once: it is not serving anyway.
                    inst.healthy = false;
                    inst.drain_until = Some(now);
                    failed_checks.push(addr);
                }
            }
        }
        failed_checks
    };
    write_endpoints(pool).await;
    for addr in &failed_checks {
        let msg = format!("instance {addr} failed its health checks; replaced");
        let _ = store
            .record_error(Some(&group), ErrorComponent::Target, &msg, Timestamp::now())
            .await;
    }
    replace(pool, ops, failed_checks.len()).await;
    write_endpoints(pool).await;
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
        scale_to(&self.pool, &self.ops, desired).await
    }

    async fn shutdown(&self) {
        self.finish_drains().await;
        let _ = self.stop.send(true);
        if let Some(h) = self.health.lock().await.take() {
            let _ = h.await;
        }
        // The health loop is stopped: only a change still in progress could hold `ops`.
        let _op = self.ops.lock().await;
        let stop_on_exit = self.pool.lock().await.stop_on_exit;
        if stop_on_exit {
            stop_all(&self.pool).await;
        }
    }
}
