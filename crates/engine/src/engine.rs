//! The engine proper: one loop per group on its evaluation interval (with jitter and bounded
//! concurrency), config reload on SIGHUP or file change, graceful shutdown, and reconciliation
//! of activities a previous run left pending.

use crate::budget;
use crate::forecast;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use scalepilot_core::config::{self, Config, Group, Store as StoreConfig};
use serde_json::Value;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinHandle;

use crate::alerts::{AlertEvent, AlertTask, Alerter};
use crate::group::{Event, GroupRuntime};

use crate::targets::{Paths, Target};
use scalepilot_store::{SqliteStore, Store};

/// How often the config file is checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How often old metric samples are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// A config file read and validated, with each group's raw JSON (to see what changed).
pub struct Loaded {
    pub config: Config,
    pub raw_groups: Vec<Value>,
    pub text: String,
}

/// Read and validate the config file.
/// Blocking (file reads, parsing): call it from `spawn_blocking` inside the runtime.
pub fn load(path: &Path) -> Result<Loaded> {
    let text = crate::limits::read_to_string(path, crate::limits::CONFIG_LIMIT, "config")?;
    let config = config::parse(&text, &path.display().to_string())?;
    // Valid YAML (parse succeeded), so this cannot fail; the JSON is for change detection.
    let raw_groups = config::yaml::parse(&text)
        .map(|(v, _)| v["groups"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    Ok(Loaded {
        config,
        raw_groups,
        text,
    })
}

/// The config's settings for commands that only read the store (`history`). When the file
/// has errors (say, a rejected reload), its `store:` section alone is used, so the history
/// stays readable while the config is being fixed.
pub fn load_config_only(path: &Path) -> Result<Config> {
    let err = match load(path) {
        Ok(l) => return Ok(l.config),
        Err(e) => e,
    };
    let text = crate::limits::read_to_string(path, crate::limits::CONFIG_LIMIT, "config")?;
    let minimal = config::yaml::parse(&text).ok().and_then(|(v, _)| {
        let mut top = serde_json::Map::new();
        if let Some(store) = v.get("store") {
            top.insert("store".into(), store.clone());
        }
        let doc = serde_json::json!({"groups": [{"name": "x", "min": 0, "max": 1, "strategies": [{"kind": "target_tracking", "metric": "request_rate", "target": 1}]}]});
        let mut doc = doc.as_object()?.clone();
        doc.extend(top);
        let yaml = serde_json::to_string(&doc).ok()?;
        config::parse(&yaml, "store").ok()
    });
    match minimal {
        Some(c) => {
            eprintln!(
                "warning: {} has errors; reading its store anyway",
                path.display()
            );
            Ok(c)
        }
        None => Err(err),
    }
}

/// The store the config asks for, with relative paths taken from the config's folder.
pub async fn open_store(config: &Config, base: &Path) -> Result<Arc<dyn Store>> {
    Ok(open_store_at(config, base).await?.0)
}

/// [`open_store`] with the folder where targets keep their files.
async fn open_store_at(config: &Config, base: &Path) -> Result<(Arc<dyn Store>, Paths)> {
    match &config.store {
        StoreConfig::Sqlite { path, .. } => {
            let file = base.join(path);
            let dir = file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| base.to_path_buf());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let store = SqliteStore::open(&file)
                .await
                .with_context(|| format!("cannot open the store {}", file.display()))?;
            Ok((Arc::new(store), Paths { state_dir: dir }))
        }
    }
}

fn sample_retention(config: &Config) -> Duration {
    match &config.store {
        StoreConfig::Sqlite {
            sample_retention, ..
        } => Duration::try_from(*sample_retention).unwrap_or(Duration::from_secs(7 * 86_400)),
    }
}

/// Options for [`Engine::run`].
#[derive(Default)]
pub struct Options {
    /// Pause between calling the target and completing the activity (tests only).
    pub fault_pause: Option<Duration>,
}

struct Running {
    raw: Value,
    target_raw: Value,
    target: Arc<dyn Target>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// The running engine.
pub struct Engine {
    path: PathBuf,
    base: PathBuf,
    store: Arc<dyn Store>,
    paths: Paths,
    http: reqwest::Client,
    alerts: Alerter,
    alert_task: Option<AlertTask>,
    loaded: Loaded,
    semaphore: Arc<Semaphore>,
    events: broadcast::Sender<Event>,
    running: HashMap<String, Running>,
    options: Options,
    /// The global budget's ledger (see `budget`).
    budget: budget::Ledger,
}

impl Engine {
    /// Load the config, open the store, start the alert sender.
    pub async fn open(path: &Path, options: Options) -> Result<Engine> {
        let loaded = load(path)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let (store, paths) = open_store_at(&loaded.config, &base).await?;
        let http = crate::http::client()?;
        let (alerts, alert_task) =
            Alerter::start(loaded.config.alerts.as_ref(), http.clone(), store.clone());
        let (events, _) = broadcast::channel(1024);
        let budget = budget::Ledger::default();
        budget.configure(loaded.config.budget);
        Ok(Engine {
            path: path.to_path_buf(),
            base,
            store,
            paths,
            http,
            alerts,
            alert_task,
            semaphore: Arc::new(Semaphore::new(
                loaded.config.engine.max_concurrency as usize,
            )),
            loaded,
            events,
            running: HashMap::new(),
            options,
            budget,
        })
    }

    /// Live events (one per evaluation).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Build the runtime of one group; reuses `target` when given.
    async fn runtime(
        &self,
        group: &Group,
        target: Option<Arc<dyn Target>>,
    ) -> Result<GroupRuntime> {
        let source = crate::sources::build(group.source.as_ref(), &self.base, &self.http)
            .with_context(|| format!("group {}", group.name))?;
        let target = match target {
            Some(t) => t,
            None => crate::targets::build(
                group,
                &self.base,
                &self.paths,
                self.store.clone(),
                &self.http,
            )
            .await
            .with_context(|| format!("group {}", group.name))?,
        };
        let mut state = self
            .store
            .load_state(&group.name)
            .await?
            .unwrap_or_default();
        let retention = sample_retention(&self.loaded.config);
        if let Some(w) = forecast::retention_warning(group, retention) {
            tracing::warn!(group = %group.name, "{w}");
        }
        state.state = forecast::rebuild(
            group,
            state.state,
            self.store.as_ref(),
            &self.base,
            retention,
            Timestamp::now(),
        )
        .await;
        Ok(GroupRuntime {
            group: group.clone(),
            source,
            target,
            store: self.store.clone(),
            alerts: self.alerts.clone(),
            events: self.events.clone(),
            state,
            error_alert_after: self
                .loaded
                .config
                .alerts
                .as_ref()
                .map_or(3, |a| a.consecutive_errors),
            fault_pause: self.options.fault_pause,
            last_source_errors: Default::default(),
            last_dry_run: None,
            budget: self.budget.clone(),
            budget_bound: false,
        })
    }

    /// Settle activities a previous run left between intent and outcome: the target's count
    /// tells whether the change happened.
    async fn reconcile(&self, group: &str, target: &Arc<dyn Target>) -> Result<()> {
        let pending = self.store.pending_activities(group).await?;
        if pending.is_empty() {
            return Ok(());
        }
        let current = target.status().await.ok().map(|s| s.current);
        for a in pending {
            let (status, note) = match current {
                Some(c) if i64::from(c) == a.to_replicas => (
                    "succeeded",
                    format!("confirmed after a restart: the target runs {c}"),
                ),
                Some(c) => (
                    "interrupted",
                    format!("scalepilot stopped between intent and outcome; the target runs {c}"),
                ),
                None => (
                    "interrupted",
                    "scalepilot stopped between intent and outcome; the target's count is unknown"
                        .into(),
                ),
            };
            tracing::warn!(group, key = %a.key, "activity left pending by a previous run: {status} ({note})");
            self.store
                .finish_activity(&a.key, status, Some(&note), Timestamp::now())
                .await?;
        }
        Ok(())
    }

    async fn start_group(
        &mut self,
        index: usize,
        target: Option<(Value, Arc<dyn Target>)>,
    ) -> Result<()> {
        let group = self.loaded.config.groups[index].clone();
        let raw = self
            .loaded
            .raw_groups
            .get(index)
            .cloned()
            .unwrap_or(Value::Null);
        let target_raw = raw["target"].clone();
        let reuse = target.filter(|(r, _)| *r == target_raw).map(|(_, t)| t);
        let fresh = reuse.is_none();
        let rt = self.runtime(&group, reuse).await?;
        if fresh {
            self.reconcile(&group.name, &rt.target).await?;
        }
        self.store
            .save_group_config(&group.name, &raw, Timestamp::now())
            .await?;
        let target = rt.target.clone();
        let (stop, stopped) = watch::channel(false);
        let interval =
            Duration::try_from(group.evaluation_interval).unwrap_or(Duration::from_secs(15));
        let handle = tokio::spawn(group_loop(
            rt,
            interval,
            self.loaded.config.engine.jitter,
            self.semaphore.clone(),
            stopped,
        ));
        tracing::info!(group = %group.name, "started (every {interval:?})");
        self.running.insert(
            group.name.to_string(),
            Running {
                raw,
                target_raw,
                target,
                stop,
                handle,
            },
        );
        Ok(())
    }

    /// Stop a group's loop after its current evaluation; returns its target for reuse.
    async fn stop_group(&mut self, name: &str) -> Option<(Value, Arc<dyn Target>)> {
        let r = self.running.remove(name)?;
        let _ = r.stop.send(true);
        let _ = r.handle.await;
        // A restarted group records itself again at its first evaluation.
        self.budget.remove(name);
        Some((r.target_raw, r.target))
    }

    /// Start every enabled group.
    pub async fn start(&mut self) -> Result<()> {
        for i in 0..self.loaded.config.groups.len() {
            if self.loaded.config.groups[i].enabled {
                // One group that cannot start (a missing trace file, a busy socket…) must
                // not stop the others; it is retried on the next reload (SIGHUP).
                if let Err(e) = self.start_group(i, None).await {
                    let name = self.loaded.config.groups[i].name.to_string();
                    self.report_start_error(&name, &e).await;
                }
            } else {
                tracing::info!(group = %self.loaded.config.groups[i].name, "disabled: not evaluated");
            }
        }
        Ok(())
    }

    /// Re-read the config. An invalid one is rejected (recorded, alerted) and the running
    /// groups go on unchanged; a valid one restarts only the groups that changed.
    pub async fn reload(&mut self) {
        let loaded = match load(&self.path) {
            Ok(l) => l,
            Err(e) => {
                let msg =
                    format!("config reload rejected, still running the previous config: {e:#}");
                tracing::error!("{msg}");
                let _ = self
                    .store
                    .record_error(None, "config", &msg, Timestamp::now())
                    .await;
                self.alerts.send(AlertEvent::ConfigRejected, None, &msg, Value::Null);
                return;
            }
        };
        let not_running = self
            .loaded
            .config
            .groups
            .iter()
            .any(|g| g.enabled && !self.running.contains_key(&*g.name));
        if loaded.text == self.loaded.text && !not_running {
            return;
        }
        for (section, changed) in [
            ("store", loaded.config.store != self.loaded.config.store),
            ("alerts", loaded.config.alerts != self.loaded.config.alerts),
            ("engine", loaded.config.engine != self.loaded.config.engine),
        ] {
            if changed {
                tracing::warn!(
                    "the `{section}` section changed: it takes effect at the next start"
                );
            }
        }
        self.budget.configure(loaded.config.budget);
        let old = std::mem::replace(&mut self.loaded, loaded);
        let wanted: HashMap<String, (usize, Value)> = self
            .loaded
            .config
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.enabled)
            .map(|(i, g)| {
                (
                    g.name.to_string(),
                    (
                        i,
                        self.loaded
                            .raw_groups
                            .get(i)
                            .cloned()
                            .unwrap_or(Value::Null),
                    ),
                )
            })
            .collect();
        let names: Vec<String> = self.running.keys().cloned().collect();
        for name in names {
            let keep = wanted
                .get(&name)
                .is_some_and(|(_, raw)| self.running.get(&name).is_some_and(|r| r.raw == *raw));
            if keep {
                continue;
            }
            let target = self.stop_group(&name).await;
            match wanted.get(&name) {
                Some((i, raw)) => {
                    tracing::info!(group = %name, "config changed: restarting its loop");
                    // A changed target is rebuilt; the old one stops first (its instances
                    // stay for the new one to adopt, unless it stops them on exit).
                    let target = match target {
                        Some((old_raw, t)) if old_raw == raw["target"] => Some((old_raw, t)),
                        Some((_, t)) => {
                            t.shutdown().await;
                            None
                        }
                        None => None,
                    };
                    if let Err(e) = self.start_group(*i, target).await {
                        self.report_start_error(&name, &e).await;
                    }
                }
                None => {
                    tracing::info!(group = %name, "removed or disabled: stopped");
                    if let Some((_, t)) = target {
                        t.shutdown().await;
                    }
                }
            }
        }
        for (name, (i, _)) in &wanted {
            if !self.running.contains_key(name) {
                tracing::info!(group = %name, "new group");
                if let Err(e) = self.start_group(*i, None).await {
                    self.report_start_error(name, &e).await;
                }
            }
        }
        drop(old);
        tracing::info!("config reloaded");
    }

    async fn report_start_error(&self, name: &str, e: &anyhow::Error) {
        let msg = format!("cannot start: {e:#}");
        tracing::error!(group = %name, "{msg}");
        let _ = self
            .store
            .record_error(Some(name), "config", &msg, Timestamp::now())
            .await;
    }

    /// Run until `shutdown` resolves (or SIGTERM/Ctrl-C when none is given); reload on SIGHUP
    /// or when the file changes.
    pub async fn run(&mut self, shutdown: Option<watch::Receiver<bool>>) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        self.start().await?;
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let mut watch_tick = tokio::time::interval(WATCH_EVERY);
        let mut prune_tick = tokio::time::interval(PRUNE_EVERY);
        let mut mtime = modified(&self.path);
        let mut external = shutdown;
        let terminated = crate::signals::terminated();
        tokio::pin!(terminated);
        loop {
            tokio::select! {
                _ = &mut terminated => break,
                changed = async {
                    match external.as_mut() {
                        Some(rx) => rx.changed().await.is_err() || *rx.borrow(),
                        None => std::future::pending().await,
                    }
                } => if changed { break },
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    self.reload().await;
                    mtime = modified(&self.path);
                }
                _ = watch_tick.tick() => {
                    let now = modified(&self.path);
                    if now != mtime {
                        mtime = now;
                        tracing::info!("{} changed: reloading", self.path.display());
                        self.reload().await;
                    }
                }
                _ = prune_tick.tick() => {
                    let before = Timestamp::now() - jiff::SignedDuration::try_from(sample_retention(&self.loaded.config)).unwrap_or_default();
                    if let Err(e) = self.store.prune_samples(before).await {
                        tracing::warn!("{e}");
                    }
                    if let Err(e) = self.store.prune_history(before).await {
                        tracing::warn!("{e}");
                    }
                    // Forecasts follow the samples: older ones could not show an actual.
                    if let Err(e) = self.store.prune_forecasts(before).await {
                        tracing::warn!("{e}");
                    }
                }
            }
        }
        self.shutdown().await;
        Ok(())
    }

    /// Finish in-flight evaluations, stop targets (pools keep their instances unless
    /// `stop_on_exit`), flush alerts.
    pub async fn shutdown(&mut self) {
        tracing::info!("stopping: finishing in-flight evaluations");
        let names: Vec<String> = self.running.keys().cloned().collect();
        for name in &names {
            if let Some(r) = self.running.get(name) {
                let _ = r.stop.send(true);
            }
        }
        for name in names {
            if let Some((_, target)) = self.stop_group(&name).await {
                target.shutdown().await;
            }
        }
        self.alerts.close();
        if let Some(task) = self.alert_task.take() {
            // Give queued alerts a moment; never hang the exit on a dead webhook.
            task.finish(Duration::from_secs(5)).await;
        }
        tracing::info!("stopped");
    }

    /// Evaluate every enabled group once (cron / FaaS style). Returns the failures.
    /// `report` gets one line per group evaluated (the CLI prints it).
    pub async fn once(&mut self, mut report: impl FnMut(&str)) -> Vec<(String, String)> {
        let mut failures = Vec::new();
        let groups: Vec<(usize, Group)> = self
            .loaded
            .config
            .groups
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, g)| g.enabled)
            .collect();
        for (i, group) in &groups {
            let raw = self
                .loaded
                .raw_groups
                .get(*i)
                .cloned()
                .unwrap_or(Value::Null);
            let _ = self
                .store
                .save_group_config(&group.name, &raw, Timestamp::now())
                .await;
            let mut rt = match self.runtime(group, None).await {
                Ok(rt) => rt,
                Err(e) => {
                    failures.push((group.name.to_string(), format!("{e:#}")));
                    continue;
                }
            };
            if let Err(e) = self.reconcile(&group.name, &rt.target).await {
                failures.push((group.name.to_string(), format!("{e:#}")));
            }
            match rt.evaluate().await {
                Ok(ev) => {
                    report(&format!("{}: {}", ev.group, ev.summary));
                    // A metric that could not be observed fails the run too (it held).
                    if let Some(e) = ev.error {
                        failures.push((group.name.to_string(), e));
                    }
                }
                Err(e) => failures.push((group.name.to_string(), e)),
            }
            rt.target.shutdown().await;
        }
        self.alerts.close();
        if let Some(task) = self.alert_task.take() {
            task.finish(Duration::from_secs(10)).await;
        }
        failures
    }
}

fn modified(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

async fn group_loop(
    mut rt: GroupRuntime,
    interval: Duration,
    jitter: f64,
    sem: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut delay = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let Ok(_permit) = sem.acquire().await else {
            break;
        };
        // A stop that came while waiting for a slot: do not start a new evaluation.
        if *stop.borrow() {
            break;
        }
        // An evaluation is never cut short: a stop waits for the action in flight.
        let _ = rt.evaluate().await;
        // Jitter spreads many groups' evaluations instead of firing them together.
        delay = interval + interval.mul_f64(jitter * rand::random::<f64>());
    }
}
