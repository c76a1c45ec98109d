//! The engine proper: a control loop driven through an [`EngineHandle`] (see `handle`), one
//! task per group on its evaluation interval (with jitter and bounded concurrency), config
//! reload on request or file change, graceful shutdown, and reconciliation of activities a
//! previous run left pending.

use crate::budget;
use crate::forecast;

mod controls;
mod leases;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use scalepilot_core::config::{self, Config, Group, SourceSpec, Store as StoreConfig};
use serde_json::Value;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::alerts::{AlertTask, Alerter};
use crate::group::{Event, GroupRuntime};
use crate::handle::{
    Command, EngineHandle, Evaluation, GroupStatus, HandleError, LeaseStatus, ManualScale, Reply,
};
use crate::status_board::{Board, Layout};
use scalepilot_core::config::AlertEvent;

use crate::targets::{Paths, Target};
use scalepilot_store::{ErrorComponent, PgSettings, PostgresStore, SqliteStore, Store};

/// How often the config file is checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Groups starting at the same time, at most (see `Shared::starting`).
const START_CONCURRENCY: usize = 32;
/// How often old metric samples are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Backstop for reading the config file on a reload (a FIFO, a hung filesystem).
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A group's config as written, as compact JSON text (object keys sorted, so equal configs
/// are equal strings): compared to see what changed on a reload, and parsed back only to be
/// saved. A string is a tenth of the size of a `serde_json::Value`'s maps, which adds up to
/// hundreds of MB at 100,000 groups.
pub type RawGroup = Arc<str>;

/// `v` as a [`RawGroup`].
pub fn compact(v: &Value) -> RawGroup {
    v.to_string().into()
}

/// A [`RawGroup`] as JSON again (`Null` if it is not JSON, which `compact` never makes).
fn expand(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

/// The `target` part of a [`RawGroup`], as compact JSON text.
fn target_of(raw: &str) -> String {
    expand(raw)["target"].to_string()
}

/// A config file read and validated, with each group's raw JSON (to see what changed).
pub struct Loaded {
    pub config: Config,
    pub raw_groups: Vec<RawGroup>,
    pub text: String,
    /// The database group rows' version merged in (`groups_from: database|both`).
    pub rows_version: Option<i64>,
}

/// Read and validate the config file.
/// Blocking (file reads, parsing): call it from `spawn_blocking` inside the runtime.
pub fn load(path: &Path) -> Result<Loaded> {
    let text = crate::limits::read_to_string(path, crate::limits::CONFIG_LIMIT, "config")?;
    let config = config::parse(&text, &path.display().to_string())?;
    // Valid YAML (parse succeeded), so this cannot fail; the JSON is for change detection.
    let raw_groups = config::yaml::parse(&text)
        .map(|(v, _)| {
            v["groups"]
                .as_array()
                .map(|a| a.iter().map(compact).collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    Ok(Loaded {
        config,
        raw_groups,
        text,
        rows_version: None,
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
            tokio::fs::create_dir_all(&dir)
                .await
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let store = SqliteStore::open(&file)
                .await
                .with_context(|| format!("cannot open the store {}", file.display()))?;
            Ok((Arc::new(store), Paths { state_dir: dir }))
        }
        StoreConfig::Postgres { .. } => {
            let settings = pg_settings(&config.store, base)?
                .context("a PostgreSQL store has connection settings")?;
            let shown = settings.redacted_url();
            let store = PostgresStore::connect(settings)
                .await
                .with_context(|| format!("cannot open the store {shown}"))?;
            // Targets keep their files (endpoint lists, pool logs) next to the config.
            Ok((
                Arc::new(store),
                Paths {
                    state_dir: base.to_path_buf(),
                },
            ))
        }
    }
}

/// The connection settings of a PostgreSQL store (`None` for SQLite). The password comes
/// from the URL, else from `password_file` (relative to `base`, the config's folder; trimmed),
/// else from the `PGPASSWORD` environment variable.
pub fn pg_settings(store: &StoreConfig, base: &Path) -> Result<Option<PgSettings>> {
    let StoreConfig::Postgres {
        url,
        pool,
        password_file,
        ..
    } = store
    else {
        return Ok(None);
    };
    let password = if config::url::userinfo_password(url).is_some() {
        None
    } else if let Some(file) = password_file {
        let file = base.join(file);
        let text = crate::limits::read_to_string(&file, 64 * 1024, "the store's password_file")?;
        Some(text.trim().to_string())
    } else {
        std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty())
    };
    Ok(Some(PgSettings {
        url: url.clone(),
        max_connections: *pool,
        password,
    }))
}

fn sample_retention(config: &Config) -> Duration {
    Duration::try_from(config.store.sample_retention()).unwrap_or(Duration::from_secs(7 * 86_400))
}

/// Options for [`Engine::open`].
#[derive(Default)]
pub struct Options {
    /// Pause between calling the target and completing the activity (tests only).
    pub fault_pause: Option<Duration>,
}

/// What every group task needs, shared (not copied) between them.
struct Shared {
    base: PathBuf,
    store: Arc<dyn Store>,
    paths: Paths,
    http: reqwest::Client,
    alerts: Alerter,
    events: broadcast::Sender<Event>,
    /// The global budget's ledger (see `budget`).
    budget: budget::Ledger,
    fault_pause: Option<Duration>,
    /// Bounds how many groups evaluate at once.
    semaphore: Arc<Semaphore>,
    /// Bounds how many groups start at once (build the target, settle pending activities,
    /// save the config): at 100,000 groups, starting all together held every start's state
    /// in memory at the same time and queued them all on the store's few connections.
    starting: Semaphore,
    /// Problems of database group rows already recorded.
    db_groups: crate::db_groups::Reported,
    /// `engine.ha: true`: this daemon's id and the leases it holds.
    ha: Option<(String, crate::ha::Leases)>,
    /// Statuses, pauses, the global switch and metrics (see `status_board`).
    board: Arc<Board>,
}

/// The config settings a group task takes from the file it was started under.
#[derive(Clone, Copy)]
struct Settings {
    retention: Duration,
    error_alert_after: u32,
    jitter: f64,
}

impl Settings {
    fn of(config: &Config) -> Settings {
        Settings {
            retention: sample_retention(config),
            error_alert_after: config.alerts.as_ref().map_or(3, |a| a.consecutive_errors),
            jitter: config.engine.jitter,
        }
    }
}

/// A group task's result: its target, for a successor to reuse (None when it never built one).
type GroupTask = JoinHandle<Option<Arc<dyn Target>>>;

/// A group task that is still running or has ended, with the target config it was built
/// from: its successor waits for it, then reuses the target when the config is unchanged.
struct Predecessor {
    target_raw: String,
    task: GroupTask,
}

/// A group's loop as the control loop knows it.
struct Slot {
    name: String,
    raw: RawGroup,
    target_raw: String,
    stop: watch::Sender<bool>,
    commands: mpsc::Sender<GroupCommand>,
    live: Arc<Mutex<Live>>,
    task: GroupTask,
    board: Arc<Board>,
}

impl Slot {
    fn stop(self) -> Predecessor {
        let _ = self.stop.send(true);
        // Not running from now on, though its evaluation in flight finishes.
        self.board.update(&self.name, |s| s.running = false);
        Predecessor {
            target_raw: self.target_raw,
            task: self.task,
        }
    }

    /// Its task failed to start, or ended without being told to stop (it panicked): either
    /// way the group is not evaluated, and the next reload restarts it.
    fn failed(&self) -> bool {
        if self.task.is_finished() {
            self.mark_dead();
            return true;
        }
        self.live.lock().map_or(true, |l| l.phase == Phase::Failed)
    }

    /// A task that ended while its slot still stands (it was never told to stop): shown as
    /// failed from now on, and logged once. Returns whether this call noticed it.
    fn mark_dead(&self) -> bool {
        let mut l = self.live.lock().unwrap_or_else(|p| p.into_inner());
        // A failed start was reported by the task itself.
        if l.phase == Phase::Failed {
            return false;
        }
        l.phase = Phase::Failed;
        l.last_error = Some(TASK_ENDED.to_string());
        show(&self.board, &self.name, &l, |_| {});
        tracing::error!(
            group = %self.name,
            "{TASK_ENDED}: the group is not evaluated until the next reload restarts it"
        );
        true
    }
}

/// A group's status once its task ended without being told to stop (a panic).
const TASK_ENDED: &str = "the group's task ended unexpectedly";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Starting,
    Running,
    Failed,
    Stopped,
}

/// What a group task reports about itself; read by `groups()` without waiting for the task.
#[derive(Debug, Default)]
struct Live {
    phase: Phase,
    last_evaluation: Option<Timestamp>,
    current: Option<u32>,
    desired: Option<u32>,
    consecutive_errors: u32,
    last_error: Option<String>,
}

/// What the control loop forwards to a group's task.
enum GroupCommand {
    Probe(Reply<Evaluation>),
    Scale(ManualScale, Reply<Event>),
}

/// The engine: open it, take a [`handle`](Engine::handle), then [`run`](Engine::run) it.
pub struct Engine {
    path: PathBuf,
    shared: Arc<Shared>,
    alert_task: Option<AlertTask>,
    loaded: Loaded,
    /// Groups with a task (starting, running, or failed to start).
    slots: HashMap<String, Slot>,
    /// Groups stopped by `set_enabled(false)`: their last task, for a restart to follow.
    parked: HashMap<String, Predecessor>,
    /// Removed groups, by name: each task finishes its evaluation, stops its target, then
    /// drops its budget entry. A group added back starts after it (it is its predecessor).
    retiring: HashMap<String, Predecessor>,
    /// `set_enabled` overrides, until the next reload.
    overrides: HashMap<String, bool>,
    commands: mpsc::Receiver<Command>,
    handle: EngineHandle,
    /// `engine.ha: true`: the lease coordinator (groups run only while leased).
    ha: Option<crate::ha::Ha>,
}

impl Engine {
    /// Load the config, open the store, start the alert sender. No group starts yet.
    pub async fn open(path: &Path, options: Options) -> Result<Engine> {
        let owned = path.to_path_buf();
        let loaded = tokio::task::spawn_blocking(move || load(&owned))
            .await
            .context("reading the config panicked")??;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let (store, paths) = open_store_at(&loaded.config, &base).await?;
        let store = crate::spool::wrap_for(&loaded.config, store, &base).await?;
        let db_groups = crate::db_groups::Reported::default();
        let loaded = crate::db_groups::merge(loaded, &*store, &db_groups).await?;
        let http = crate::http::client()?;
        let board = Arc::new(Board::default());
        let (alerts, alert_task) = Alerter::start(
            loaded.config.alerts.as_ref(),
            http.clone(),
            store.clone(),
            board.metrics.clone(),
        );
        let (events, _) = broadcast::channel(1024);
        // Several daemons share the ledger through the store; one keeps it in memory (no
        // query per evaluation).
        let budget = if loaded.config.engine.ha {
            budget::Ledger::in_store(store.clone())
        } else {
            budget::Ledger::default()
        };
        budget.configure(loaded.config.budget, &loaded.config.groups);
        let (tx, commands) = mpsc::channel(64);
        let ha = loaded.config.engine.ha.then(|| {
            let ttl = Duration::try_from(loaded.config.engine.lease_ttl)
                .unwrap_or(Duration::from_secs(10));
            crate::ha::Ha::new(store.clone(), ttl)
        });
        let shared = Arc::new(Shared {
            ha: ha.as_ref().map(|h| (h.id.clone(), h.leases.clone())),
            base,
            store,
            paths,
            http,
            alerts,
            events: events.clone(),
            budget,
            fault_pause: options.fault_pause,
            starting: Semaphore::new(START_CONCURRENCY),
            semaphore: Arc::new(Semaphore::new(
                loaded.config.engine.max_concurrency as usize,
            )),
            db_groups,
            board: board.clone(),
        });
        let engine = Engine {
            path: path.to_path_buf(),
            alert_task,
            loaded,
            slots: HashMap::new(),
            parked: HashMap::new(),
            retiring: HashMap::new(),
            overrides: HashMap::new(),
            commands,
            handle: EngineHandle {
                tx,
                events,
                ha: ha.as_ref().map(|h| h.status.subscribe()),
                board,
                store: shared.store.clone(),
                config_path: path.to_path_buf(),
            },
            shared,
            ha,
        };
        // Statuses are listed (not running yet) from the start.
        engine.layout();
        Ok(engine)
    }

    /// Lay the status board out for the config's groups (order, enabled, lease, bounds).
    fn layout(&self) {
        let ha = self.ha.as_ref();
        self.shared
            .board
            .layout(self.loaded.config.groups.iter().map(|g| {
                Layout {
                    group: g,
                    enabled: self.enabled(g),
                    lease: ha
                        .and_then(|h| h.leases.status(&g.name))
                        .map(|f| LeaseStatus {
                            holder: f.holder,
                            epoch: f.epoch,
                        }),
                }
            }));
    }

    /// A handle to drive the engine once it runs (commands sent before `run` wait for it).
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Live events (one per evaluation).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.handle.subscribe()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.shared.store.clone()
    }

    /// Start a task for the config's group at `index`: it waits for `predecessor` (the same
    /// group's previous task) to finish, builds its runtime (reusing the predecessor's target
    /// when its config is unchanged), then evaluates on its interval. Returns at once.
    fn start_group(&mut self, index: usize, predecessor: Option<Predecessor>) {
        let group = self.loaded.config.groups[index].clone();
        let raw = self
            .loaded
            .raw_groups
            .get(index)
            .cloned()
            .unwrap_or_else(|| "null".into());
        let target_raw = target_of(&raw);
        let (stop, stopped) = watch::channel(false);
        let (commands, inbox) = mpsc::channel(16);
        let live = Arc::new(Mutex::new(Live::default()));
        let task = tokio::spawn(group_task(
            self.shared.clone(),
            Settings::of(&self.loaded.config),
            Box::new(group.clone()),
            raw.clone(),
            predecessor,
            stopped,
            inbox,
            live.clone(),
        ));
        self.slots.insert(
            group.name.to_string(),
            Slot {
                name: group.name.to_string(),
                raw,
                target_raw,
                stop,
                commands,
                live,
                task,
                board: self.shared.board.clone(),
            },
        );
    }

    /// Stop a group for good: its task finishes its evaluation, then its target stops.
    /// Kept by name until it ends, so a group added back waits for it (never two loops, or
    /// a late shutdown and budget removal, racing the new task).
    fn retire(&mut self, name: &str, p: Predecessor) {
        self.retiring.retain(|_, r| !r.task.is_finished());
        let shared = self.shared.clone();
        let earlier = self.retiring.remove(name);
        let owned = name.to_string();
        let task = tokio::spawn(async move {
            if let Some(e) = earlier {
                let _ = e.task.await;
            }
            if let Ok(Some(target)) = p.task.await {
                target.shutdown().await;
            }
            // A removed group's spend no longer counts.
            shared.budget.remove(&owned).await;
            // Nor its series, which an evaluation in flight at the removal may have made
            // again (unless the group was added back meanwhile).
            if shared.board.status(&owned).is_none() {
                shared.board.metrics.forget_group(&owned);
            }
            if let Some((_, leases)) = &shared.ha {
                crate::ha::release(leases);
            }
            // Stopped: a successor builds its own target.
            None
        });
        self.retiring.insert(
            name.to_string(),
            Predecessor {
                target_raw: p.target_raw,
                task,
            },
        );
    }

    /// The task a group (re)started now must wait for: its parked or retiring one.
    fn predecessor(&mut self, name: &str) -> Option<Predecessor> {
        self.parked
            .remove(name)
            .or_else(|| self.retiring.remove(name))
    }

    /// Start every enabled group (each in its own task: this returns at once).
    fn start(&mut self) {
        for i in 0..self.loaded.config.groups.len() {
            let g = &self.loaded.config.groups[i];
            if g.enabled && self.leased(&g.name) {
                self.start_group(i, None);
            } else {
                tracing::info!(group = %g.name, "disabled: not evaluated");
            }
        }
    }

    fn enabled(&self, group: &Group) -> bool {
        self.overrides
            .get(&*group.name)
            .copied()
            .unwrap_or(group.enabled)
    }

    /// Start reading the config in a task of its own (the control loop never waits for the
    /// file: a FIFO or a hung filesystem must not stop it). Its result comes back through
    /// `done` and is applied by [`Engine::apply`]; a rejected config is recorded and alerted
    /// from that task.
    fn spawn_load(&self, replies: Vec<Reply<()>>, done: mpsc::UnboundedSender<Reloaded>) {
        let path = self.path.clone();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let owned = path.clone();
            let read = tokio::time::timeout(
                LOAD_TIMEOUT,
                tokio::task::spawn_blocking(move || load(&owned)),
            )
            .await;
            // The file was fine but the store could not give its rows: not a rejected config
            // (no alert), and read again at the next poll, not only at the next change.
            let mut rows_unread = false;
            let read = match read {
                Ok(Ok(Ok(l))) => {
                    match crate::db_groups::merge(l, &*shared.store, &shared.db_groups).await {
                        Ok(l) => Ok(Ok(Ok(l))),
                        Err(e) => {
                            rows_unread = true;
                            Ok(Ok(Err(e)))
                        }
                    }
                }
                other => other,
            };
            let loaded = match read {
                Ok(Ok(Ok(l))) => Ok(l),
                Ok(Ok(Err(e))) if rows_unread => {
                    let msg = format!(
                        "cannot read the database groups, still running the previous config (read again at the next poll): {e:#}"
                    );
                    tracing::warn!("{msg}");
                    Err(msg)
                }
                Ok(Ok(Err(e))) => {
                    let msg =
                        format!("config reload rejected, still running the previous config: {e:#}");
                    tracing::error!("{msg}");
                    let _ = shared
                        .store
                        .record_error(None, ErrorComponent::Config, &msg, Timestamp::now())
                        .await;
                    shared
                        .alerts
                        .send(AlertEvent::ConfigRejected, None, &msg, Value::Null);
                    Err(msg)
                }
                Ok(Err(e)) => Err(format!("reading the config failed: {e}")),
                Err(_) => {
                    let msg = format!(
                        "reading the config timed out after {LOAD_TIMEOUT:?}: still running the previous config"
                    );
                    tracing::error!("{msg}");
                    Err(msg)
                }
            };
            let mtime = modified(&path).await;
            let _ = done.send(Reloaded {
                loaded,
                mtime,
                replies,
                rows_unread,
            });
        });
    }

    /// Apply a config read by [`Engine::spawn_load`]. An invalid one was rejected (recorded,
    /// alerted) and the running groups go on unchanged; a valid one restarts only the groups
    /// that changed. Never waits for a group: a stopped one finishes in its own task, its
    /// successor starts after it.
    fn apply(&mut self, loaded: Result<Loaded, String>) -> Result<(), HandleError> {
        let loaded = loaded.map_err(HandleError::Failed)?;
        let not_running = self
            .loaded
            .config
            .groups
            .iter()
            .any(|g| g.enabled && self.slots.get(&*g.name).is_none_or(Slot::failed));
        // Every reload resets a ledger poisoned by a panic, the same file included (the
        // documented way out of failing closed).
        self.shared
            .budget
            .configure(loaded.config.budget, &loaded.config.groups);
        if loaded.text == self.loaded.text && !not_running && self.overrides.is_empty() {
            return Ok(());
        }
        if !self.overrides.is_empty() {
            tracing::info!("reload: runtime enable/disable overrides cleared");
            self.overrides.clear();
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
        self.shared
            .budget
            .configure(loaded.config.budget, &loaded.config.groups);
        self.loaded = loaded;
        let wanted: HashMap<String, (usize, RawGroup)> = self
            .loaded
            .config
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.enabled && self.leased(&g.name))
            .map(|(i, g)| {
                let raw = self
                    .loaded
                    .raw_groups
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| "null".into());
                (g.name.to_string(), (i, raw))
            })
            .collect();
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for name in names {
            let keep = wanted.get(&name).is_some_and(|(_, raw)| {
                self.slots
                    .get(&name)
                    .is_some_and(|s| s.raw == *raw && !s.failed())
            });
            if keep {
                continue;
            }
            let Some(slot) = self.slots.remove(&name) else {
                continue;
            };
            let previous = slot.stop();
            match wanted.get(&name) {
                Some((i, _)) => {
                    tracing::info!(group = %name, "config changed: restarting its loop");
                    self.start_group(*i, Some(previous));
                }
                None => {
                    tracing::info!(group = %name, "removed or disabled: stopping");
                    self.retire(&name, previous);
                }
            }
        }
        let parked: Vec<String> = self.parked.keys().cloned().collect();
        for name in parked {
            if let Some(p) = self.parked.remove(&name) {
                match wanted.get(&name) {
                    Some((i, _)) => self.start_group(*i, Some(p)),
                    None => self.retire(&name, p),
                }
            }
        }
        for (name, (i, _)) in &wanted {
            if !self.slots.contains_key(name) {
                tracing::info!(group = %name, "new group");
                let previous = self.retiring.remove(name);
                self.start_group(*i, previous);
            }
        }
        self.publish_groups();
        self.layout();
        tracing::info!("config reloaded");
        Ok(())
    }

    fn set_enabled(&mut self, name: &str, enabled: bool) -> Result<(), HandleError> {
        let Some(index) = self
            .loaded
            .config
            .groups
            .iter()
            .position(|g| *g.name == *name)
        else {
            return Err(HandleError::NoGroup(name.to_string()));
        };
        self.overrides.insert(name.to_string(), enabled);
        // With HA the coordinator divides the enabled groups; a group starts with its lease.
        self.publish_groups();
        self.layout();
        if enabled && !self.leased(name) {
            return Ok(());
        }
        if enabled {
            if self.slots.get(name).is_some_and(|s| !s.failed()) {
                return Ok(());
            }
            tracing::info!(group = %name, "enabled at runtime (until the next reload)");
            let previous = match self.slots.remove(name) {
                Some(failed) => Some(failed.stop()),
                None => self.predecessor(name),
            };
            self.start_group(index, previous);
        } else if let Some(slot) = self.slots.remove(name) {
            tracing::info!(group = %name, "disabled at runtime (until the next reload): stopping after its evaluation in flight");
            // Parked, not retired: its target stays for a re-enable to reuse.
            let previous = slot.stop();
            self.parked.insert(name.to_string(), previous);
        }
        Ok(())
    }

    /// Every group's status, from the status board (see `EngineHandle::statuses`).
    fn groups(&self) -> Vec<GroupStatus> {
        // Notices a task that has ended since (a panic): it shows as failed.
        for slot in self.slots.values() {
            slot.failed();
        }
        self.shared
            .board
            .statuses()
            .iter()
            .map(|s| GroupStatus::clone(s))
            .collect()
    }

    /// The running group `name`'s command inbox, or why there is none.
    fn inbox(&self, name: &str) -> Result<&mpsc::Sender<GroupCommand>, HandleError> {
        match self.slots.get(name) {
            Some(slot) if !slot.failed() => Ok(&slot.commands),
            _ if self.loaded.config.group(name).is_some() => {
                Err(HandleError::NotRunning(name.to_string()))
            }
            _ => Err(HandleError::NoGroup(name.to_string())),
        }
    }

    /// Hand a command to a group's task without waiting: it answers the caller itself.
    fn forward(&self, name: &str, make: impl FnOnce() -> GroupCommand) -> Result<(), HandleError> {
        match self.inbox(name)?.try_send(make()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(HandleError::Failed(format!(
                "group `{name}` is busy: too many requests waiting"
            ))),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(HandleError::NotRunning(name.to_string()))
            }
        }
    }

    /// Run the control loop until [`EngineHandle::shutdown`]: start every enabled group,
    /// serve the handle's commands, reload when the config file changes, prune old samples.
    /// Signals are not handled here: see [`crate::signals::Signals`], which forwards them to a
    /// handle.
    pub async fn run(mut self) -> Result<()> {
        if let Some(h) = &mut self.ha {
            h.spawn();
        }
        self.start();
        self.publish_groups();
        self.layout();
        let mut watch_tick = tokio::time::interval(WATCH_EVERY);
        let mut prune_tick = tokio::time::interval(PRUNE_EVERY);
        // The file's last known (mtime, size); None until the first look (the baseline).
        let mut mtime: Option<FileStamp> = None;
        // Looks at the file and config reads run in tasks of their own; results come back here.
        let (stat_tx, mut stat_rx) = mpsc::unbounded_channel::<FileStamp>();
        let mut statting = false;
        let (load_tx, mut load_rx) = mpsc::unbounded_channel::<Reloaded>();
        // One read at a time (applied in order); requests meanwhile share the next one.
        let mut loading = false;
        let mut queued: Option<Vec<Reply<()>>> = None;
        let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
        // Set once stopping: resolves when every group and target has stopped.
        let mut stopping: Option<JoinHandle<()>> = None;
        // Database group rows: their change counter, polled like the file's stamp.
        let (rows_tx, mut rows_rx) = mpsc::unbounded_channel::<Option<i64>>();
        let mut rows_polling = false;
        // The version a reload was started for (None: the loaded one's).
        let mut rows_seen: Option<i64> = None;
        loop {
            tokio::select! {
                cmd = self.commands.recv() => {
                    // The engine holds a sender itself: the channel never closes.
                    let Some(cmd) = cmd else { break };
                    match cmd {
                        Command::Groups(reply) => { let _ = reply.send(self.groups()); }
                        Command::Shutdown(reply) => {
                            waiting.push(reply);
                            if stopping.is_none() {
                                stopping = Some(self.begin_shutdown());
                            }
                        }
                        _ if stopping.is_some() => refuse(cmd),
                        Command::EvaluateNow(name, reply) => {
                            let mut reply = Some(reply);
                            let sent = self.forward(&name, || GroupCommand::Probe(reply.take().expect("once")));
                            if let (Err(e), Some(r)) = (sent, reply) { let _ = r.send(Err(e)); }
                        }
                        Command::Scale(name, m, reply) => {
                            let mut reply = Some(reply);
                            let sent = self.check_scale(&name, &m).and_then(|()| {
                                self.forward(&name, || GroupCommand::Scale(m, reply.take().expect("once")))
                            });
                            if let (Err(e), Some(r)) = (sent, reply) { let _ = r.send(Err(e)); }
                        }
                        Command::SetPaused(name, pause, reply) => {
                            let _ = reply.send(self.set_paused(&name, pause));
                        }
                        Command::SetAllEnabled(enabled, reply) => {
                            self.set_all_enabled(enabled);
                            let _ = reply.send(Ok(()));
                        }
                        Command::SetEnabled(name, enabled, reply) => {
                            let _ = reply.send(self.set_enabled(&name, enabled));
                        }
                        Command::Reload(reply) => {
                            if loading {
                                queued.get_or_insert_with(Vec::new).push(reply);
                            } else {
                                loading = true;
                                self.spawn_load(vec![reply], load_tx.clone());
                            }
                        }
                    }
                }
                Some(done) = load_rx.recv() => {
                    loading = false;
                    mtime = Some(done.mtime);
                    let r = if stopping.is_some() {
                        Err(HandleError::Stopping)
                    } else {
                        self.apply(done.loaded)
                    };
                    // Loaded, or the rows could not be read: the next poll compares with the
                    // loaded version again (so a change the failed read missed is retried).
                    if r.is_ok() || done.rows_unread {
                        rows_seen = None;
                    }
                    for reply in done.replies {
                        let _ = reply.send(r.clone());
                    }
                    if let Some(replies) = queued.take() {
                        if stopping.is_some() {
                            for reply in replies {
                                let _ = reply.send(Err(HandleError::Stopping));
                            }
                        } else {
                            loading = true;
                            self.spawn_load(replies, load_tx.clone());
                        }
                    }
                }
                Some(now) = stat_rx.recv() => {
                    statting = false;
                    match mtime {
                        None => mtime = Some(now),
                        Some(before) if before != now && !loading && stopping.is_none() => {
                            mtime = Some(now);
                            tracing::info!("{} changed: reloading", self.path.display());
                            loading = true;
                            self.spawn_load(Vec::new(), load_tx.clone());
                        }
                        Some(_) => {}
                    }
                }
                Some(v) = rows_rx.recv() => {
                    rows_polling = false;
                    if let Some(v) = v
                        && rows_seen.or(self.loaded.rows_version) != Some(v)
                        && !loading
                        && stopping.is_none()
                    {
                        rows_seen = Some(v);
                        tracing::info!("database groups changed: reloading");
                        loading = true;
                        self.spawn_load(Vec::new(), load_tx.clone());
                    }
                }
                _ = watch_tick.tick(), if stopping.is_none() => {
                    // Notices (and logs) a group task that ended unexpectedly.
                    for slot in self.slots.values() {
                        slot.failed();
                    }
                    if !statting && !loading {
                        statting = true;
                        let (path, tx) = (self.path.clone(), stat_tx.clone());
                        tokio::spawn(async move {
                            let _ = tx.send(modified(&path).await);
                        });
                    }
                    if self.loaded.config.groups_from.database() && !rows_polling && !loading {
                        rows_polling = true;
                        let (shared, tx) = (self.shared.clone(), rows_tx.clone());
                        tokio::spawn(async move {
                            let _ = tx.send(crate::db_groups::poll(&*shared.store, &shared.db_groups).await);
                        });
                    }
                }
                _ = prune_tick.tick(), if stopping.is_none() => self.prune(),
                Some(held) = crate::ha::next(&mut self.ha), if stopping.is_none() => self.sync_leases(held),
                _ = async { stopping.as_mut().expect("guarded").await }, if stopping.is_some() => break,
            }
        }
        tracing::info!("stopped");
        for w in waiting {
            let _ = w.send(());
        }
        Ok(())
    }

    /// Delete old samples, history and forecasts, in a task of its own (a big store takes a
    /// while and the control loop must keep answering).
    fn prune(&self) {
        let store = self.shared.store.clone();
        let keep = jiff::SignedDuration::try_from(sample_retention(&self.loaded.config))
            .unwrap_or(jiff::SignedDuration::MAX);
        tokio::spawn(async move {
            // Checked: a retention longer than the time since year -9999 prunes nothing.
            let Some(before) = Timestamp::now().checked_sub(keep).ok() else {
                return;
            };
            if let Err(e) = store.prune_samples(before).await {
                tracing::warn!("{e}");
            }
            if let Err(e) = store.prune_history(before).await {
                tracing::warn!("{e}");
            }
            // Forecasts follow the samples: older ones could not show an actual.
            if let Err(e) = store.prune_forecasts(before).await {
                tracing::warn!("{e}");
            }
        });
    }

    /// Stop every group and, in a task of its own, wait for their in-flight evaluations,
    /// stop the targets (pools keep their instances unless `stop_on_exit`) and flush the
    /// alerts. The control loop keeps answering `groups()` meanwhile.
    fn begin_shutdown(&mut self) -> JoinHandle<()> {
        tracing::info!("stopping: finishing in-flight evaluations");
        let mut tasks: Vec<GroupTask> = Vec::new();
        for (_, slot) in self.slots.drain() {
            tasks.push(slot.stop().task);
        }
        for (_, p) in self.parked.drain() {
            tasks.push(p.task);
        }
        let retiring = std::mem::take(&mut self.retiring);
        let alerts = self.alert_task.take();
        // Stop renewing; the leases end (`leave`) once every group stopped.
        if let Some(h) = &self.ha {
            h.stop();
        }
        let ha = self.shared.ha.clone();
        let store = self.shared.store.clone();
        tokio::spawn(async move {
            for t in tasks {
                if let Ok(Some(target)) = t.await {
                    target.shutdown().await;
                }
            }
            for (_, p) in retiring {
                let _ = p.task.await;
            }
            if let Some((id, leases)) = ha {
                crate::ha::leave(store.as_ref(), &id, &leases).await;
            }
            if let Some(a) = alerts {
                // Give queued alerts a moment; never hang the exit on a dead webhook.
                a.finish(Duration::from_secs(5)).await;
            }
        })
    }

    /// Evaluate every enabled group once (cron / FaaS style). Returns the failures.
    /// `report` gets one line per group evaluated (the CLI prints it).
    pub async fn once(&mut self, mut report: impl FnMut(&str)) -> Vec<(String, String)> {
        let mut failures = Vec::new();
        let settings = Settings::of(&self.loaded.config);
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
                .map_or(Value::Null, |r| expand(r));
            let _ = self
                .shared
                .store
                .save_group_config(&group.name, &raw, Timestamp::now())
                .await;
            // Several daemons: only a group no daemon holds, under a lease of its own.
            if !self.lease_once(&group.name, &mut report).await {
                continue;
            }
            let mut rt = match self.shared.runtime(group, None, settings).await {
                Ok(rt) => rt,
                Err(e) => {
                    failures.push((group.name.to_string(), format!("{e:#}")));
                    self.unlease_once(&group.name).await;
                    continue;
                }
            };
            if let Err(e) = self.shared.reconcile(&group.name, &rt.target).await {
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
            self.unlease_once(&group.name).await;
        }
        if let Some(task) = self.alert_task.take() {
            task.finish(Duration::from_secs(10)).await;
        }
        failures
    }
}

/// Answer a command that arrived while stopping.
fn refuse(cmd: Command) {
    let e = HandleError::Stopping;
    match cmd {
        Command::EvaluateNow(_, r) => drop(r.send(Err(e))),
        Command::Scale(_, _, r) => drop(r.send(Err(e))),
        Command::SetEnabled(_, _, r) => drop(r.send(Err(e))),
        Command::SetPaused(_, _, r) => drop(r.send(Err(e))),
        Command::SetAllEnabled(_, r) => drop(r.send(Err(e))),
        Command::Reload(r) => drop(r.send(Err(e))),
        Command::Groups(_) | Command::Shutdown(_) => {}
    }
}

impl Shared {
    /// Build the runtime of one group; reuses `target` when given.
    async fn runtime(
        &self,
        group: &Group,
        target: Option<Arc<dyn Target>>,
        settings: Settings,
    ) -> Result<GroupRuntime> {
        // A trace source reads its file: off the runtime's threads. The others are built
        // here: a hop to the blocking pool per group slowed 100,000 starts, and left each
        // source in the memory arena of whichever pool thread built it.
        let source = if matches!(group.source, Some(SourceSpec::Trace { .. })) {
            let (raw_source, base, http) =
                (group.source.clone(), self.base.clone(), self.http.clone());
            tokio::task::spawn_blocking(move || {
                crate::sources::build(raw_source.as_ref(), &base, &http)
            })
            .await
            .context("building the source panicked")?
        } else {
            crate::sources::build(group.source.as_ref(), &self.base, &self.http)
        }
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
        // A store failing now must not stop the group for good: the runtime retries the read
        // at each tick (see GroupRuntime::prepare) and evaluates nothing until it succeeds.
        let started = std::time::Instant::now();
        let loaded = self.store.load_state(&group.name).await;
        let took = started.elapsed().as_secs_f64();
        self.board.metrics.store_op("load_state", took);
        let (mut state, state_loaded) = match loaded {
            Ok(s) => (s.unwrap_or_default(), true),
            Err(e) => {
                tracing::warn!(group = %group.name, "cannot load the state, retrying at each evaluation: {e}");
                (Default::default(), false)
            }
        };
        if let Some(w) = forecast::retention_warning(group, settings.retention) {
            tracing::warn!(group = %group.name, "{w}");
        }
        state.state = forecast::rebuild(
            group,
            state.state,
            self.store.as_ref(),
            &self.base,
            settings.retention,
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
            error_alert_after: settings.error_alert_after,
            fault_pause: self.fault_pause,
            last_source_errors: Default::default(),
            last_dry_run: None,
            last_recorded: None,
            budget: self.budget.clone(),
            budget_bound: false,
            state_loaded,
            reconcile_pending: false,
            ha: self.ha.as_ref().map(|(_, l)| l.clone()),
            board: self.board.clone(),
            fresh_record: None,
        })
    }

    /// Settle activities a previous run left between intent and outcome (see
    /// [`crate::group::reconcile`]: bounded in time, and those of live concurrent runs are
    /// left alone; the caller retries at the next evaluation).
    async fn reconcile(&self, group: &str, target: &Arc<dyn Target>) -> Result<()> {
        let metrics = &self.board.metrics;
        crate::group::reconcile(self.store.as_ref(), group, target.as_ref(), metrics).await
    }

    /// Wait for the group's previous task, then build its runtime: the previous target is
    /// reused when its config is unchanged, else stopped and a new one built (and
    /// reconciled with what a previous run left pending).
    async fn start(
        &self,
        group: &Group,
        raw: &str,
        predecessor: Option<Predecessor>,
        settings: Settings,
    ) -> Result<GroupRuntime> {
        let mut reuse = None;
        if let Some(p) = predecessor {
            // Never two loops on one target: the old one's action in flight finishes first.
            let previous = p.task.await.ok().flatten();
            // A restarted group records itself again at its first evaluation.
            self.budget.remove(&group.name).await;
            match previous {
                Some(t) if p.target_raw == target_of(raw) => reuse = Some(t),
                // A changed target is rebuilt; the old one stops first (its instances stay
                // for the new one to adopt, unless it stops them on exit).
                Some(t) => t.shutdown().await,
                None => {}
            }
        }
        let fresh = reuse.is_none();
        // Taken after the predecessor ended: a slow predecessor must not hold a slot.
        let _slot = self.starting.acquire().await;
        let mut rt = self.runtime(group, reuse, settings).await?;
        // Store failures here are retried by the group's loop, not fatal to the group.
        if fresh && let Err(e) = self.reconcile(&group.name, &rt.target).await {
            tracing::warn!(group = %group.name, "{e:#}: retrying at the next evaluation");
            rt.reconcile_pending = true;
        }
        if let Err(e) = self
            .store
            .save_group_config(&group.name, &expand(raw), Timestamp::now())
            .await
        {
            tracing::warn!(group = %group.name, "{e}");
        }
        Ok(rt)
    }

    async fn report_start_error(&self, name: &str, e: &anyhow::Error) {
        let msg = format!("cannot start: {e:#}");
        tracing::error!(group = %name, "{msg}");
        let _ = self
            .store
            .record_error(Some(name), ErrorComponent::Config, &msg, Timestamp::now())
            .await;
    }
}

/// A config file's modification time and size (None when it cannot be read).
type FileStamp = Option<(std::time::SystemTime, u64)>;

/// A config read for a reload, back in the control loop.
struct Reloaded {
    loaded: Result<Loaded, String>,
    /// The file's stamp after the read (a change after it reloads again).
    mtime: FileStamp,
    /// The `reload()` callers to answer.
    replies: Vec<Reply<()>>,
    /// The store failed to give the database groups: the change that started this load is
    /// still to be applied.
    rows_unread: bool,
}

/// The file's modification time and size (a change reloads), read off the runtime's threads.
async fn modified(path: &Path) -> FileStamp {
    tokio::fs::metadata(path)
        .await
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// Publish a group's live state on the status board, with `more` (what only an evaluation
/// knows: ready replicas, cooldowns, the decision record).
fn show(board: &Board, name: &str, l: &Live, more: impl FnOnce(&mut GroupStatus)) {
    board.update(name, |s| {
        s.running = l.phase == Phase::Running;
        s.last_evaluation = l.last_evaluation;
        s.current = l.current;
        s.desired = l.desired;
        s.consecutive_errors = l.consecutive_errors;
        s.last_error = l.last_error.clone();
        more(s);
    });
}

/// Change a group's live state, then [`show`] it.
fn publish(
    board: &Board,
    name: &str,
    live: &Mutex<Live>,
    f: impl FnOnce(&mut Live),
    more: impl FnOnce(&mut GroupStatus),
) {
    // A poisoned status only means a panic mid-update: the status is still worth showing.
    let mut l = live.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut l);
    show(board, name, &l, more);
}

/// One group's task: start (after its predecessor), then evaluate on its interval and serve
/// the commands forwarded to it, until told to stop. Returns its target for reuse.
#[allow(clippy::too_many_arguments)]
async fn group_task(
    shared: Arc<Shared>,
    settings: Settings,
    group: Box<Group>,
    raw: RawGroup,
    predecessor: Option<Predecessor>,
    mut stop: watch::Receiver<bool>,
    mut inbox: mpsc::Receiver<GroupCommand>,
    live: Arc<Mutex<Live>>,
) -> Option<Arc<dyn Target>> {
    let name = group.name.to_string();
    // While this task runs, the coordinator does not release the group's lease.
    let _busy = shared.ha.as_ref().map(|(_, l)| l.busy(&name));
    // Stopped before it started (a shutdown during a big start): nothing to build. With a
    // predecessor it still starts, to hand the predecessor's target on consistently.
    let board = shared.board.clone();
    if *stop.borrow() && predecessor.is_none() {
        publish(&board, &name, &live, |l| l.phase = Phase::Stopped, |_| {});
        return None;
    }
    // No concurrency permit here: waiting for the predecessor (up to its target's timeout),
    // building the target and the store writes would hold one and starve the evaluations of
    // other groups. The permit bounds evaluations only.
    // The big futures (start, evaluate, probe, manual scale) are boxed: a task's size is its
    // future's largest state, and an idle group should cost its runtime, not the state of an
    // evaluation it is not running (tens of KB each, times 100,000 groups).
    let started = Box::pin(shared.start(&group, &raw, predecessor, settings)).await;
    // The group and the runtime are boxed: a task lives as long as its group, and what its
    // future holds inline across an await is held by every group (a group's config and
    // runtime held inline made each task about 5 KB, times 100,000 groups).
    let mut rt = match started {
        Ok(rt) => Box::new(rt),
        Err(e) => {
            // One group that cannot start (a missing trace file, a busy socket…) must not stop
            // the others; it is retried on the next reload (SIGHUP).
            shared.report_start_error(&name, &e).await;
            let failed = |l: &mut Live| {
                l.phase = Phase::Failed;
                l.last_error = Some(format!("cannot start: {e:#}"));
            };
            publish(&board, &name, &live, failed, |_| {});
            return None;
        }
    };
    let running = |l: &mut Live| {
        l.phase = Phase::Running;
        l.consecutive_errors = rt.state.consecutive_errors;
    };
    publish(&board, &name, &live, running, |_| {});
    let interval = Duration::try_from(group.evaluation_interval).unwrap_or(Duration::from_secs(15));
    // The runtime holds its own copy: this one would be a third per group (with the
    // config's), kept for the task's whole life.
    drop(group);
    tracing::info!(group = %name, "started (every {interval:?})");
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            // Stop first: a stop never waits behind queued commands.
            biased;
            _ = stop.changed() => break,
            Some(cmd) = inbox.recv() => match cmd {
                GroupCommand::Probe(reply) => {
                    let _ = reply.send(Box::pin(rt.probe()).await);
                }
                GroupCommand::Scale(m, reply) => {
                    let r = Box::pin(rt.scale_manually(m)).await;
                    let stopped = *stop.borrow();
                    let scaled = |l: &mut Live| {
                        if stopped {
                            l.phase = Phase::Stopped;
                        }
                        l.last_evaluation = Some(Timestamp::now());
                        if let Ok(ev) = &r {
                            l.current = Some(ev.desired);
                        }
                    };
                    publish(&board, &name, &live, scaled, |_| {});
                    let _ = reply.send(r);
                }
            },
            _ = &mut sleep => {
                let due = sleep.deadline();
                // The global switch off: no evaluation, as if disabled (checked at each tick,
                // so switching it on again resumes at the next one).
                if board.all_enabled() {
                    let Ok(_permit) = shared.semaphore.acquire().await else {
                        break;
                    };
                    // A stop that came while waiting for a slot: do not start a new evaluation.
                    if *stop.borrow() {
                        break;
                    }
                    board.record_lag(due.elapsed().as_secs_f64());
                    let started = std::time::Instant::now();
                    // An evaluation is never cut short: a stop waits for the action in flight
                    // (in this task; the control loop goes on).
                    let result = Box::pin(rt.evaluate()).await;
                    board.metrics.evaluation(started.elapsed().as_secs_f64());
                    let stopped = *stop.borrow();
                    let evaluated = |l: &mut Live| {
                        // Told to stop meanwhile: not shown running again.
                        if stopped {
                            l.phase = Phase::Stopped;
                        }
                        l.last_evaluation = Some(Timestamp::now());
                        l.consecutive_errors = rt.state.consecutive_errors;
                        match &result {
                            Ok(ev) => {
                                l.current = Some(ev.current);
                                l.desired = Some(ev.desired);
                                l.last_error = ev.error.clone();
                            }
                            Err(e) => l.last_error = Some(e.clone()),
                        }
                    };
                    let record = rt.fresh_record.take();
                    let cooldowns =
                        crate::status_board::cooldowns(&rt.state.state.cooldowns, Timestamp::now());
                    let more = |s: &mut GroupStatus| {
                        if let Ok(ev) = &result {
                            s.ready = Some(ev.ready);
                        }
                        s.cooldowns = cooldowns;
                        if let Some(r) = record {
                            s.last_decision = Some(r);
                        }
                    };
                    publish(&board, &name, &live, evaluated, more);
                }
                // Jitter spreads many groups' evaluations instead of firing them together.
                // Checked throughout: a huge interval must not panic the group's task.
                let extra = Duration::try_from_secs_f64(
                    interval.as_secs_f64() * settings.jitter * rand::random::<f64>(),
                )
                .unwrap_or_default();
                let delay = interval.saturating_add(extra);
                let now = tokio::time::Instant::now();
                let far = Duration::from_secs(100 * 365 * 86_400);
                sleep.as_mut().reset(now.checked_add(delay.min(far)).unwrap_or(now));
            }
        }
    }
    publish(&board, &name, &live, |l| l.phase = Phase::Stopped, |_| {});
    Some(rt.target.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"store: {kind: sqlite, path: sp.db}
groups:
  - name: web
    min: 1
    max: 10
    evaluation_interval: 1h
    source: {kind: static, values: {request_rate: 40}}
    target: {kind: command, command: "true"}
    strategies:
      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}
"#;

    /// A group task that panics shows as failed (not running, with an error) and the next
    /// reload restarts it, though the config is unchanged.
    #[tokio::test]
    async fn a_panicked_group_task_is_failed_and_restarted_by_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sp.yaml");
        std::fs::write(&path, CONFIG).unwrap();
        let mut engine = Engine::open(&path, Options::default()).await.unwrap();
        // A slot whose task panicked while running.
        let (stop, _stopped) = watch::channel(false);
        let (commands, _inbox) = mpsc::channel(1);
        let live = Arc::new(Mutex::new(Live {
            phase: Phase::Running,
            ..Live::default()
        }));
        let task: GroupTask = tokio::spawn(async { panic!("boom") });
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
        engine.slots.insert(
            "web".into(),
            Slot {
                name: "web".into(),
                raw: engine.loaded.raw_groups[0].clone(),
                target_raw: target_of(&engine.loaded.raw_groups[0]),
                stop,
                commands,
                live,
                task,
                board: engine.shared.board.clone(),
            },
        );
        let status = engine.groups().remove(0);
        assert!(!status.running, "{status:?}");
        assert_eq!(status.last_error.as_deref(), Some(TASK_ENDED));
        assert!(matches!(
            engine.inbox("web"),
            Err(HandleError::NotRunning(_))
        ));
        // The same config: the dead slot is restarted anyway.
        let loaded = load(&path).unwrap();
        engine.apply(Ok(loaded)).unwrap();
        let slot = &engine.slots["web"];
        assert!(!slot.task.is_finished());
        for _ in 0..100 {
            if engine.groups()[0].running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = engine.groups().remove(0);
        assert!(status.running, "{status:?}");
        assert_eq!(status.last_error, None);
        for (_, slot) in engine.slots.drain() {
            slot.stop();
        }
    }

    /// A dry run while the group's state could not be read is refused, not decided on an
    /// empty state.
    #[tokio::test]
    async fn evaluate_now_is_refused_while_the_state_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sp.yaml");
        std::fs::write(&path, CONFIG).unwrap();
        let engine = Engine::open(&path, Options::default()).await.unwrap();
        let group = engine.loaded.config.groups[0].clone();
        let settings = Settings::of(&engine.loaded.config);
        let mut rt = engine.shared.runtime(&group, None, settings).await.unwrap();
        assert!(rt.probe().await.is_ok());
        rt.state_loaded = false;
        let err = rt.probe().await.unwrap_err();
        assert!(
            matches!(&err, HandleError::Failed(m) if m.contains("state is not loaded yet")),
            "{err:?}"
        );
        rt.target.shutdown().await;
    }
}
