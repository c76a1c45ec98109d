//! `haproxy`: a pool behind an HAProxy backend, kept equal to the pool's serving instances.
//!
//! Runtime-API mode (the default): on every evaluation, and every 500 ms in between, the
//! backend is reconciled through the admin socket.
//! - A serving instance that is missing gets `add server` (with `check`), `enable health` and
//!   `enable server`. This also heals a reload, which drops runtime-added servers.
//! - A managed server whose instance left the pool gets `set server … state drain`; once its
//!   sessions reach zero (or `drain_timeout` passes) it goes to `maint` and is deleted. Only
//!   then does the pool stop the instance (the pool asks the balancer through [`DrainGate`]).
//! - Servers without the managed prefix are reported once, and removed only with
//!   `remove_unknown`.
//!
//! Config-file mode (`config_file`): the whole file is rendered from a template
//! (`{{servers}}` becomes one `server` line per serving instance), written to a temporary
//! file, fsynced, checked with `haproxy -c`, renamed over the old one and reloaded gracefully
//! through the master socket. A file that fails the check never replaces the running one.

mod api;
mod file;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use jiff::Timestamp;
use scalepilot_core::config::{HaproxyMode, HaproxySpec};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

pub(crate) use api::{Socket, parse_stat};

use super::process_pool::{DrainGate, ProcessPool};
use super::{Paths, Status, Target};
use scalepilot_store::{ErrorComponent, Store};

/// How often the backend is reconciled between evaluations (drains progress on this beat).
const RECONCILE_EVERY: Duration = Duration::from_millis(500);
/// Health checks HAProxy runs on the servers scalepilot adds.
const CHECK: &str = "check inter 1s rise 1 fall 3";

enum Mode {
    Runtime(Socket),
    File(file::ConfigFile),
}

struct Balancer {
    group: String,
    backend: String,
    prefix: String,
    remove_unknown: bool,
    drain_timeout: Duration,
    mode: Mode,
    store: Arc<dyn Store>,
    /// Addresses HAProxy may still route to; the pool stops an instance only once it is gone.
    /// `None` until the first successful reconcile: then nothing counts as released.
    present: std::sync::Mutex<Option<HashSet<String>>>,
    /// Managed servers being drained: name → (address, since).
    draining: Mutex<HashMap<String, (String, Instant)>>,
    /// Messages already recorded, so a lasting condition is recorded once.
    reported: Mutex<HashSet<String>>,
    /// One reconcile at a time: the background beat and an evaluation must not both add the
    /// same missing server.
    reconciling: Mutex<()>,
}

impl DrainGate for Balancer {
    fn released(&self, addr: &str) -> bool {
        self.present
            .lock()
            .map(|p| p.as_ref().is_some_and(|p| !p.contains(addr)))
            .unwrap_or(false)
    }

    fn timeout(&self) -> Duration {
        self.drain_timeout + Duration::from_secs(10)
    }
}

/// Server name for an address: the prefix, then the address with `.` and `:` as `_`.
fn server_name(prefix: &str, addr: &str) -> String {
    format!("{prefix}{}", addr.replace(['.', ':'], "_"))
}

impl Balancer {
    async fn report(&self, message: String) {
        if self.reported.lock().await.insert(message.clone()) {
            tracing::warn!(group = %self.group, "{message}");
            let _ = self
                .store
                .record_error(
                    Some(&self.group),
                    ErrorComponent::Target,
                    &message,
                    Timestamp::now(),
                )
                .await;
        }
    }

    /// Make the backend match the pool. The pool's serving list is read under the same lock
    /// as the backend's state, so two reconciles never act on stale snapshots.
    async fn reconcile(&self, pool: &ProcessPool) -> Result<(), String> {
        let _one = self.reconciling.lock().await;
        let serving = addrs(&pool.status().await?.endpoints);
        let present = match &self.mode {
            Mode::Runtime(api) => self.reconcile_runtime(api, &serving).await?,
            Mode::File(f) => f.apply(&self.prefix, &serving).await?,
        };
        if let Ok(mut p) = self.present.lock() {
            *p = Some(present);
        }
        Ok(())
    }

    /// Drain a server, then remove it once its sessions are gone (or after `drain_timeout`,
    /// closing the sessions left). True once it is deleted. A refusal is reported and
    /// retried on the next reconcile, never fatal: one lingering session must not stop the
    /// whole group's evaluations.
    async fn retire(
        &self,
        api: &Socket,
        draining: &mut HashMap<String, (String, Instant)>,
        s: &api::Server,
    ) -> bool {
        let be = &self.backend;
        let since = match draining.get(&s.name) {
            Some((_, since)) => *since,
            None => {
                if let Err(e) = api
                    .expect(&format!("set server {be}/{} state drain", s.name), &[])
                    .await
                {
                    self.report(format!("cannot drain {be}/{}: {e}", s.name))
                        .await;
                    return false;
                }
                tracing::info!(group = %self.group, "draining server {be}/{}", s.name);
                let now = Instant::now();
                draining.insert(s.name.clone(), (s.addr.clone(), now));
                now
            }
        };
        let timed_out = since.elapsed() >= self.drain_timeout;
        if s.sessions > 0 && !timed_out {
            return false;
        }
        let mut steps = vec![format!("set server {be}/{} state maint", s.name)];
        if timed_out && s.sessions > 0 {
            steps.push(format!("shutdown sessions server {be}/{}", s.name));
        }
        for step in steps {
            if let Err(e) = api.expect(&step, &[]).await {
                self.report(format!("cannot retire {be}/{}: {e}", s.name))
                    .await;
                return false;
            }
        }
        match api
            .expect(&format!("del server {be}/{}", s.name), &["Server deleted"])
            .await
        {
            Ok(()) => {
                tracing::info!(group = %self.group, "removed server {be}/{} after draining", s.name);
                draining.remove(&s.name);
                true
            }
            Err(e) => {
                // Usually sessions still attached: the next reconcile tries again.
                tracing::info!(group = %self.group, "{e}; retrying");
                false
            }
        }
    }

    async fn reconcile_runtime(
        &self,
        api: &Socket,
        serving: &[String],
    ) -> Result<HashSet<String>, String> {
        let be = &self.backend;
        let stat = api.command(&format!("show stat {be} 4 -1")).await?;
        let servers =
            parse_stat(&stat).map_err(|e| format!("backend {be}: {e}: {}", stat.trim()))?;
        let mut present: HashSet<String> = servers
            .iter()
            .filter(|s| s.name.starts_with(&self.prefix))
            .map(|s| s.addr.clone())
            .collect();
        let mut draining = self.draining.lock().await;
        // Missing servers: add them (after a reload, runtime-added servers are gone).
        for addr in serving {
            let name = server_name(&self.prefix, addr);
            match servers.iter().find(|s| s.name == name) {
                None => {
                    api.expect(
                        &format!("add server {be}/{name} {addr} {CHECK}"),
                        &["New server registered"],
                    )
                    .await?;
                    api.expect(&format!("enable health {be}/{name}"), &[])
                        .await?;
                    api.expect(&format!("enable server {be}/{name}"), &[])
                        .await?;
                    tracing::info!(group = %self.group, "added server {be}/{name} ({addr})");
                    present.insert(addr.clone());
                }
                Some(s) if s.status.starts_with("MAINT") || s.status.starts_with("DRAIN") => {
                    // Back in the pool (or set aside by hand): serve again.
                    draining.remove(&name);
                    api.expect(&format!("set server {be}/{name} state ready"), &[])
                        .await?;
                }
                Some(_) => {}
            }
        }
        // Managed servers whose instance left the pool: drain, then remove.
        for s in servers
            .iter()
            .filter(|s| s.name.starts_with(&self.prefix) && !serving.contains(&s.addr))
        {
            if self.retire(api, &mut draining, s).await {
                present.remove(&s.addr);
            }
        }
        // Servers scalepilot did not add: drained and removed the same way, or reported.
        for s in servers.iter().filter(|s| !s.name.starts_with(&self.prefix)) {
            if self.remove_unknown {
                self.retire(api, &mut draining, s).await;
            } else {
                self.report(format!(
                    "backend {be} has a server scalepilot does not manage: {} ({}); left alone (set remove_unknown to remove it)",
                    s.name, s.addr
                ))
                .await;
            }
        }
        Ok(present)
    }
}

pub(crate) struct HaproxyTarget {
    pool: Arc<ProcessPool>,
    balancer: Arc<Balancer>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl HaproxyTarget {
    pub(crate) async fn start(
        group: &str,
        spec: &HaproxySpec,
        paths: &Paths,
        base: &std::path::Path,
        store: Arc<dyn Store>,
        http: reqwest::Client,
    ) -> Result<HaproxyTarget> {
        let mode = match &spec.mode {
            HaproxyMode::ConfigFile {
                path,
                template,
                master_socket,
                haproxy,
            } => Mode::File(
                file::ConfigFile::open(path, template, master_socket, haproxy, &spec.backend, base)
                    .context("haproxy config_file")?,
            ),
            HaproxyMode::Runtime { admin_socket } => {
                Mode::Runtime(Socket::parse(admin_socket).relative_to(base))
            }
        };
        let drain_timeout = spec.drain_timeout;
        let balancer = Arc::new(Balancer {
            group: group.to_string(),
            backend: spec.backend.clone(),
            prefix: spec.server_prefix.clone(),
            remove_unknown: spec.remove_unknown,
            drain_timeout,
            mode,
            store: store.clone(),
            present: std::sync::Mutex::new(None),
            draining: Mutex::new(HashMap::new()),
            reported: Mutex::new(HashSet::new()),
            reconciling: Mutex::new(()),
        });
        let gate: Arc<dyn DrainGate> = balancer.clone();
        let pool =
            Arc::new(ProcessPool::start(group, &spec.pool, paths, store, http, Some(gate)).await?);
        let (stop, mut stopped) = watch::channel(false);
        let (p, b) = (pool.clone(), balancer.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(RECONCILE_EVERY) => {}
                    _ = stopped.changed() => break,
                }
                if let Err(e) = b.reconcile(&p).await {
                    b.report(format!("cannot reconcile HAProxy: {e}")).await;
                }
            }
        });
        Ok(HaproxyTarget {
            pool,
            balancer,
            stop,
            task: Mutex::new(Some(task)),
        })
    }
}

/// "http://host:port" → "host:port".
fn addrs(endpoints: &[String]) -> Vec<String> {
    endpoints
        .iter()
        .map(|e| {
            e.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

#[async_trait]
impl Target for HaproxyTarget {
    async fn status(&self) -> Result<Status, String> {
        // Reconcile on every evaluation: a failure here fails the evaluation, so it is
        // recorded and alerted like any target error.
        self.balancer.reconcile(&self.pool).await?;
        self.pool.status().await
    }

    async fn scale_to(&self, desired: u32) -> Result<(), String> {
        self.pool.scale_to(desired).await?;
        self.balancer.reconcile(&self.pool).await
    }

    async fn shutdown(&self) {
        // Drains in progress finish while HAProxy is still being reconciled (it releases them).
        self.pool.finish_drains().await;
        let _ = self.stop.send(true);
        if let Some(t) = self.task.lock().await.take() {
            let _ = t.await;
        }
        if self.pool.stops_on_exit().await {
            // The instances are about to stop: take them out of HAProxy first, draining.
            self.pool.scale_to(0).await.ok();
            let deadline = Instant::now() + self.balancer.drain_timeout + Duration::from_secs(5);
            loop {
                let reconciled = self.balancer.reconcile(&self.pool).await.is_ok();
                let empty = self
                    .balancer
                    .present
                    .lock()
                    .map(|p| p.as_ref().is_some_and(HashSet::is_empty))
                    .unwrap_or(false);
                if reconciled && empty {
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(group = %self.balancer.group, "HAProxy still routes to some instances after the drain timeout; stopping them anyway");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        self.pool.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        assert_eq!(server_name("sp-", "127.0.0.2:25001"), "sp-127_0_0_2_25001");
        assert_eq!(
            addrs(&["http://127.0.0.1:9/".into()]),
            vec!["127.0.0.1:9".to_string()]
        );
    }
}
