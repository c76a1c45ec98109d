//! A store that rides out a database outage (single daemon, `ha: false`).
//!
//! [`SpoolingStore`] wraps another [`Store`] (PostgreSQL in production). Writes go to the
//! inner store; when one fails because the database is *unavailable* (see
//! [`is_unavailable`]), the wrapper enters outage mode: the write, and every write after it,
//! is appended as one JSON line to a local append-only spool file (fsynced before the call
//! returns) and reported as done, so the daemon keeps deciding and acting. Reads that
//! deciding needs (state, pending intents, pool instances) are served from what the wrapper
//! saw pass through; history views fail until the database is back.
//!
//! At most every [`SpoolOptions::probe_every`] a caller probes the database with one cheap
//! read. When it answers, the spool is replayed in order, the outage is recorded in the
//! errors table (when it began, when it ended, how many writes were replayed) and the file is
//! truncated. Writes that arrive during the replay wait behind it.
//!
//! The file holds, one JSON object a line: `{"outage_since_ms": T}` when an outage begins,
//! `{"seq": N, "op": {..}}` per spooled write, `{"flushed": N}` once writes up to `N` are in
//! the database (written at least every [`IN_DOUBT`] replayed writes), and
//! `{"ended_ms": T, ..}` just before the outage is recorded. A restarted daemon finds an
//! unfinished spool at open and replays what follows the last `flushed` mark.
//!
//! Idempotency of the replay: intents carry their keys (a key already present is a no-op),
//! state, finishes, configs and instances are overwrites. Errors, samples and forecasts have
//! no natural key: only the first [`IN_DOUBT`] writes after the last `flushed` mark can have
//! reached the database unmarked (the replay marks at least that often, and a write that
//! failed with a connection error may have committed), so each of those is looked up in the
//! database first and skipped when an identical row is there. See docs/outages.md.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;
use scalepilot_core::GroupState;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::{
    Activity, ActivityStatus, ErrorComponent, ErrorRecord, Fence, ForecastRecord, GroupRow,
    InstanceRecord, Lease, NewActivity, NewForecast, Result, Store, StoreError, StoredState, ms,
};

/// Replayed writes between two `flushed` marks; also the number of writes looked up before
/// they are replayed (they may be in the database already).
pub const IN_DOUBT: usize = 32;

/// Keys of activities begun through the wrapper that it remembers (to answer "already
/// exists" during an outage).
const KNOWN_KEYS: usize = 10_000;

/// True when `e` means the database cannot be reached now (the write may be retried later),
/// false for errors of the data or the request (a constraint, a bad value, a fence).
///
/// Unavailable: I/O errors (connection refused or reset, broken pipe, EOF), a pool that timed
/// out or was closed, a crashed connection worker, TLS failures, and database errors with
/// SQLSTATE class 08 (connection exception) or 57P01/57P02/57P03 (admin shutdown, crash
/// shutdown, cannot connect now).
pub fn is_unavailable(e: &StoreError) -> bool {
    match e {
        StoreError::Db { source, .. } => is_unavailable_sqlx(source),
        _ => false,
    }
}

/// [`is_unavailable`] for a sqlx error.
pub fn is_unavailable_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.code() {
            // SQLSTATEs are five characters; SQLite's numeric codes never match.
            Some(code) if code.len() == 5 => {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
            }
            _ => false,
        },
        _ => false,
    }
}

/// How often and how long the database is probed during an outage.
#[derive(Debug, Clone, Copy)]
pub struct SpoolOptions {
    /// At most one probe this often.
    pub probe_every: Duration,
    /// A probe that takes longer counts as failed.
    pub probe_timeout: Duration,
    /// Outside an outage, a write or a read of the evaluation path that takes longer counts
    /// as the database being unavailable (the pool retries refused connections until its own
    /// acquire timeout, far longer than an evaluation interval): the write is spooled and
    /// its commit, if it came after all, covered by the in-doubt look-ups at the replay.
    pub call_timeout: Duration,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            probe_every: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpooledState {
    state: GroupState,
    consecutive_errors: u32,
}

impl From<&StoredState> for SpooledState {
    fn from(s: &StoredState) -> Self {
        SpooledState {
            state: s.state.clone(),
            consecutive_errors: s.consecutive_errors,
        }
    }
}

impl From<SpooledState> for StoredState {
    fn from(s: SpooledState) -> Self {
        StoredState {
            state: s.state,
            consecutive_errors: s.consecutive_errors,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpooledActivity {
    key: String,
    group: String,
    from: u32,
    to: u32,
    status: ActivityStatus,
    decision: serde_json::Value,
    at_ms: i64,
    owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpooledForecast {
    metric: String,
    made_ms: i64,
    serves_from_ms: i64,
    due_ms: i64,
    estimate: f64,
    provision: f64,
    seasonal: bool,
    forecast_only: bool,
}

/// One write, as spooled and replayed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Op {
    GroupConfig {
        group: String,
        config: serde_json::Value,
        at_ms: i64,
    },
    State {
        group: String,
        state: SpooledState,
        decision: Option<serde_json::Value>,
        at_ms: i64,
    },
    /// `begin_activity` (no state) or `begin_activity_with_state`.
    Intent {
        activity: SpooledActivity,
        state: Option<SpooledState>,
        decision: Option<serde_json::Value>,
    },
    Finish {
        key: String,
        status: ActivityStatus,
        error: Option<String>,
        at_ms: i64,
    },
    Error {
        group: Option<String>,
        component: ErrorComponent,
        message: String,
        at_ms: i64,
    },
    Samples {
        group: String,
        at_ms: i64,
        metrics: BTreeMap<String, f64>,
    },
    Forecasts {
        group: String,
        forecasts: Vec<SpooledForecast>,
    },
    PutInstance {
        group: String,
        host: String,
        port: u16,
        pid: Option<i32>,
        started_ms: i64,
        marker: Option<String>,
    },
    DeleteInstance {
        group: String,
        host: String,
        port: u16,
    },
}

/// One line of the spool file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Op {
        seq: u64,
        op: Box<Op>,
    },
    Flushed {
        flushed: u64,
    },
    Outage {
        outage_since_ms: i64,
    },
    Ended {
        ended_ms: i64,
        replayed: u64,
        refused: u64,
    },
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn state_of(s: &SpooledState) -> StoredState {
    s.clone().into()
}

fn forecast_of(f: &SpooledForecast) -> NewForecast {
    NewForecast {
        metric: f.metric.clone(),
        made: ts(f.made_ms),
        serves_from: ts(f.serves_from_ms),
        due: ts(f.due_ms),
        estimate: f.estimate,
        provision: f.provision,
        seasonal: f.seasonal,
        forecast_only: f.forecast_only,
    }
}

impl Op {
    fn intent(
        a: &NewActivity<'_>,
        state: Option<&StoredState>,
        d: Option<&serde_json::Value>,
    ) -> Op {
        Op::Intent {
            activity: SpooledActivity {
                key: a.key.to_string(),
                group: a.group.to_string(),
                from: a.from,
                to: a.to,
                status: a.status,
                decision: a.decision.clone(),
                at_ms: ms(a.at),
                owner: a.owner.map(str::to_string),
            },
            state: state.map(SpooledState::from),
            decision: d.cloned(),
        }
    }

    /// Write this to `store`; the boolean is begin_activity's answer (true for the others).
    async fn apply(&self, store: &dyn Store) -> Result<bool> {
        match self {
            Op::GroupConfig {
                group,
                config,
                at_ms,
            } => store.save_group_config(group, config, ts(*at_ms)).await?,
            Op::State {
                group,
                state,
                decision,
                at_ms,
            } => {
                store
                    .save_state(group, &state_of(state), decision.as_ref(), ts(*at_ms))
                    .await?
            }
            Op::Intent {
                activity: a,
                state,
                decision,
            } => {
                let new = NewActivity {
                    key: &a.key,
                    group: &a.group,
                    from: a.from,
                    to: a.to,
                    status: a.status,
                    decision: &a.decision,
                    at: ts(a.at_ms),
                    owner: a.owner.as_deref(),
                    fence: None,
                };
                return match state {
                    Some(s) => {
                        store
                            .begin_activity_with_state(&new, &state_of(s), decision.as_ref())
                            .await
                    }
                    None => store.begin_activity(&new).await,
                };
            }
            Op::Finish {
                key,
                status,
                error,
                at_ms,
            } => {
                store
                    .finish_activity(key, *status, error.as_deref(), ts(*at_ms))
                    .await?
            }
            Op::Error {
                group,
                component,
                message,
                at_ms,
            } => {
                store
                    .record_error(group.as_deref(), *component, message, ts(*at_ms))
                    .await?
            }
            Op::Samples {
                group,
                at_ms,
                metrics,
            } => store.record_samples(group, ts(*at_ms), metrics).await?,
            Op::Forecasts { group, forecasts } => {
                let fs: Vec<NewForecast> = forecasts.iter().map(forecast_of).collect();
                store.record_forecasts(group, &fs).await?
            }
            Op::PutInstance {
                group,
                host,
                port,
                pid,
                started_ms,
                marker,
            } => {
                let rec = InstanceRecord {
                    host: host.clone(),
                    port: *port,
                    pid: *pid,
                    started_ms: *started_ms,
                    marker: marker.clone(),
                };
                store.put_instance(group, rec).await?
            }
            Op::DeleteInstance { group, host, port } => {
                store.delete_instance(group, host, *port).await?
            }
        }
        Ok(true)
    }

    /// For writes without a natural key: whether an identical row is in `store` already (a
    /// replay of a write that reached the database before its `flushed` mark).
    async fn already_applied(&self, store: &dyn Store) -> Result<bool> {
        match self {
            Op::Error {
                group,
                component,
                message,
                at_ms,
            } => Ok(store.errors(group.as_deref(), 1000).await?.iter().any(|e| {
                e.group == *group
                    && e.component == *component
                    && e.message == *message
                    && e.at_ms == *at_ms
            })),
            Op::Samples {
                group,
                at_ms,
                metrics,
            } => match metrics.keys().next() {
                // Written in one transaction: one metric present means all are.
                Some(metric) => Ok(store
                    .samples(group, metric, ts(*at_ms))
                    .await?
                    .iter()
                    .any(|(t, _)| ms(*t) == *at_ms)),
                None => Ok(true),
            },
            Op::Forecasts { group, forecasts } => match forecasts.first() {
                Some(f) => Ok(store
                    .forecasts(Some(group), 1000, Timestamp::now())
                    .await?
                    .iter()
                    .any(|r| r.metric == f.metric && r.made_ms == f.made_ms)),
                None => Ok(true),
            },
            // Keyed or overwriting: replaying them is harmless.
            _ => Ok(false),
        }
    }
}

/// What the wrapper saw pass through, to keep deciding during an outage.
#[derive(Default)]
struct Cache {
    states: HashMap<String, StoredState>,
    /// Per group read at least once: its pending activities.
    pending: HashMap<String, Vec<Activity>>,
    /// Per group read at least once: its instances.
    instances: HashMap<String, Vec<InstanceRecord>>,
    keys: HashSet<String>,
    key_order: VecDeque<String>,
}

impl Cache {
    fn remember_key(&mut self, key: &str) {
        if self.keys.insert(key.to_string()) {
            self.key_order.push_back(key.to_string());
            if self.key_order.len() > KNOWN_KEYS
                && let Some(old) = self.key_order.pop_front()
            {
                self.keys.remove(&old);
            }
        }
    }

    /// A write took effect (in the database or in the spool): update what is cached.
    fn applied(&mut self, op: &Op, began: bool, seq: i64) {
        match op {
            Op::State { group, state, .. } => {
                self.states.insert(group.clone(), state_of(state));
            }
            Op::Intent {
                activity: a, state, ..
            } => {
                self.remember_key(&a.key);
                if !began {
                    return;
                }
                if let Some(s) = state {
                    self.states.insert(a.group.clone(), state_of(s));
                }
                if a.status == ActivityStatus::Pending
                    && let Some(list) = self.pending.get_mut(&a.group)
                {
                    list.push(Activity {
                        id: -seq,
                        key: a.key.clone(),
                        group: a.group.clone(),
                        started_ms: a.at_ms,
                        finished_ms: None,
                        from_replicas: a.from.into(),
                        to_replicas: a.to.into(),
                        status: ActivityStatus::Pending,
                        error: None,
                        decision: a.decision.clone(),
                        owner: a.owner.clone(),
                    });
                }
            }
            Op::Finish { key, .. } => {
                for list in self.pending.values_mut() {
                    list.retain(|p| p.key != *key);
                }
            }
            Op::PutInstance {
                group,
                host,
                port,
                pid,
                started_ms,
                marker,
            } => {
                if let Some(list) = self.instances.get_mut(group) {
                    list.retain(|i| !(i.host == *host && i.port == *port));
                    list.push(InstanceRecord {
                        host: host.clone(),
                        port: *port,
                        pid: *pid,
                        started_ms: *started_ms,
                        marker: marker.clone(),
                    });
                    list.sort_by(|a, b| {
                        (a.started_ms, &a.host, a.port).cmp(&(b.started_ms, &b.host, b.port))
                    });
                }
            }
            Op::DeleteInstance { group, host, port } => {
                if let Some(list) = self.instances.get_mut(group) {
                    list.retain(|i| !(i.host == *host && i.port == *port));
                }
            }
            _ => {}
        }
    }
}

/// The outage in progress and the spool file.
struct Spool {
    /// Some from the first unavailable error until the spool is replayed and recorded.
    since_ms: Option<i64>,
    file: Option<std::fs::File>,
    /// Spooled writes not yet in the database, in order.
    entries: VecDeque<(u64, Op)>,
    next_seq: u64,
    replayed: u64,
    refused: u64,
    /// Written once every entry was replayed: the end as it will be recorded.
    ended: Option<(i64, u64, u64)>,
}

/// A [`Store`] that spools writes to a local file while the database is unavailable and
/// replays them, in order and once, when it is back. See the module documentation.
pub struct SpoolingStore {
    inner: Arc<dyn Store>,
    path: PathBuf,
    options: SpoolOptions,
    spool: RwLock<Spool>,
    cache: Mutex<Cache>,
    last_probe: Mutex<Option<Instant>>,
    /// A background probe is under way.
    probing: Arc<AtomicBool>,
    /// A background probe found the database answering: the next call replays.
    answered: Arc<AtomicBool>,
}

fn spool_io(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Db {
        what: "the outage spool",
        source: sqlx::Error::Io(std::io::Error::other(format!(
            "{what} {}: {e}",
            path.display()
        ))),
    }
}

fn unavailable(what: &'static str, since_ms: Option<i64>) -> StoreError {
    let since = since_ms
        .map(|m| ts(m).to_string())
        .unwrap_or_else(|| "now".into());
    StoreError::Db {
        what,
        source: sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            format!("the database is unavailable (since {since}); not available from the spool"),
        )),
    }
}

impl SpoolingStore {
    /// Wrap `inner`, spooling to `path` during outages (the file and its directory are
    /// created on the first outage). An unfinished spool left by an earlier run is read now
    /// and replayed as soon as the database answers (at once when it does now).
    pub async fn open(inner: Arc<dyn Store>, path: impl Into<PathBuf>) -> Result<SpoolingStore> {
        Self::open_with(inner, path, SpoolOptions::default()).await
    }

    /// [`SpoolingStore::open`] with other probe timings.
    pub async fn open_with(
        inner: Arc<dyn Store>,
        path: impl Into<PathBuf>,
        options: SpoolOptions,
    ) -> Result<SpoolingStore> {
        let path = path.into();
        let mut spool = Spool {
            since_ms: None,
            file: None,
            entries: VecDeque::new(),
            next_seq: 1,
            replayed: 0,
            refused: 0,
            ended: None,
        };
        let mut cache = Cache::default();
        match std::fs::read(&path) {
            Ok(bytes) => read_spool(&path, &bytes, &mut spool, &mut cache),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(spool_io(&path, "cannot read", e)),
        }
        let store = SpoolingStore {
            inner,
            path,
            options,
            spool: RwLock::new(spool),
            cache: Mutex::new(cache),
            last_probe: Mutex::new(None),
            probing: Arc::new(AtomicBool::new(false)),
            answered: Arc::new(AtomicBool::new(false)),
        };
        if store.spool.read().await.since_ms.is_some() {
            tracing::warn!(
                "{}: a spool left by an earlier run; replaying it when the database answers",
                store.path.display()
            );
            store.recover().await;
        }
        Ok(store)
    }

    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the outage in progress began (None when the database is in use).
    pub async fn outage_since(&self) -> Option<Timestamp> {
        self.spool.read().await.since_ms.map(ts)
    }

    /// Spooled writes not yet replayed.
    pub async fn spooled(&self) -> usize {
        self.spool.read().await.entries.len()
    }

    /// Probe the database now (whatever the time since the last probe) and, when it answers,
    /// replay the spool. True when no outage is left.
    pub async fn recover(&self) -> bool {
        *self.last_probe.lock().unwrap() = None;
        self.probe_now().await;
        self.spool.read().await.since_ms.is_none()
    }

    /// During an outage: replay when a background probe found the database answering, else
    /// start one (at most every `probe_every`). The caller never waits for the probe: with the
    /// server down, the pool retries refused connections until the probe times out, and a
    /// group evaluation waiting for that at each write would miss its intervals.
    async fn maybe_recover(&self) {
        if self.answered.swap(false, Ordering::SeqCst) {
            let mut spool = self.spool.write().await;
            if spool.since_ms.is_some() {
                self.flush(&mut spool).await;
            }
            return;
        }
        {
            let mut last = self.last_probe.lock().unwrap();
            if last.is_some_and(|l| l.elapsed() < self.options.probe_every) {
                return;
            }
            *last = Some(Instant::now());
        }
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let (inner, timeout) = (self.inner.clone(), self.options.probe_timeout);
        let (probing, answered) = (self.probing.clone(), self.answered.clone());
        tokio::spawn(async move {
            let probe = tokio::time::timeout(timeout, inner.group_rows_version()).await;
            if matches!(probe, Ok(Ok(_))) {
                answered.store(true, Ordering::SeqCst);
            }
            probing.store(false, Ordering::SeqCst);
        });
    }

    /// Probe the database now, waiting for it, and replay when it answers.
    async fn probe_now(&self) {
        {
            let mut last = self.last_probe.lock().unwrap();
            if last.is_some_and(|l| l.elapsed() < self.options.probe_every) {
                return;
            }
            *last = Some(Instant::now());
        }
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let probe =
            tokio::time::timeout(self.options.probe_timeout, self.inner.group_rows_version()).await;
        if matches!(probe, Ok(Ok(_))) {
            let mut spool = self.spool.write().await;
            if spool.since_ms.is_some() {
                self.flush(&mut spool).await;
            }
        }
        self.probing.store(false, Ordering::SeqCst);
    }

    fn append(&self, spool: &mut Spool, lines: &[Line]) -> std::io::Result<()> {
        if spool.file.is_none() {
            if let Some(dir) = self.path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            // The new name durable too.
            if let Some(dir) = self.path.parent()
                && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                })
            {
                let _ = d.sync_all();
            }
            spool.file = Some(file);
        }
        let mut buf = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut buf, line).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let file = spool.file.as_mut().expect("opened above");
        file.write_all(&buf)?;
        file.sync_data()
    }

    /// Enter outage mode (no-op when in it).
    fn begin_outage(&self, spool: &mut Spool, cause: &StoreError) -> std::io::Result<()> {
        if spool.since_ms.is_some() {
            return Ok(());
        }
        let now = ms(Timestamp::now());
        tracing::error!(
            "database unavailable ({cause}): spooling writes to {} until it is back",
            self.path.display()
        );
        self.append(
            spool,
            &[Line::Outage {
                outage_since_ms: now,
            }],
        )?;
        spool.since_ms = Some(now);
        spool.replayed = 0;
        spool.refused = 0;
        spool.ended = None;
        *self.last_probe.lock().unwrap() = Some(Instant::now());
        Ok(())
    }

    /// A read failed: outage mode from now if the database is unavailable.
    async fn note_read_failure(&self, e: &StoreError) {
        if is_unavailable(e) {
            let mut spool = self.spool.write().await;
            if let Err(io) = self.begin_outage(&mut spool, e) {
                tracing::error!("cannot write the spool {}: {io}", self.path.display());
            }
        }
    }

    async fn in_outage(&self) -> bool {
        if self.spool.read().await.since_ms.is_none() {
            return false;
        }
        self.maybe_recover().await;
        self.spool.read().await.since_ms.is_some()
    }

    /// One spoolable write: to the database when it is in use, else (or when it turns out
    /// unavailable) to the spool.
    async fn write(&self, op: Op) -> Result<bool> {
        let cause = {
            let spool = self.spool.read().await;
            if spool.since_ms.is_none() {
                match self.bounded(op.apply(self.inner.as_ref())).await {
                    Ok(began) => {
                        self.cache.lock().unwrap().applied(&op, began, 0);
                        return Ok(began);
                    }
                    Err(e) if is_unavailable(&e) => Some(e),
                    Err(e) => return Err(e),
                }
            } else {
                None
            }
        };
        if cause.is_none() {
            self.maybe_recover().await;
        }
        let mut spool = self.spool.write().await;
        if spool.since_ms.is_none() && cause.is_none() {
            // Recovered meanwhile: to the database, behind the replay.
            match self.bounded(op.apply(self.inner.as_ref())).await {
                Ok(began) => {
                    self.cache.lock().unwrap().applied(&op, began, 0);
                    return Ok(began);
                }
                Err(e) if is_unavailable(&e) => return self.spool_op(&mut spool, op, e),
                Err(e) => return Err(e),
            }
        }
        let cause = cause.unwrap_or_else(|| unavailable("spooled write", spool.since_ms));
        self.spool_op(&mut spool, op, cause)
    }

    fn spool_op(&self, spool: &mut Spool, op: Op, cause: StoreError) -> Result<bool> {
        if let Err(io) = self.begin_outage(spool, &cause) {
            tracing::error!("cannot write the spool {}: {io}", self.path.display());
            return Err(cause);
        }
        if let Op::Intent { activity, .. } = &op {
            let spooled = spool
                .entries
                .iter()
                .any(|(_, o)| matches!(o, Op::Intent { activity: a, .. } if a.key == activity.key));
            if spooled || self.cache.lock().unwrap().keys.contains(&activity.key) {
                return Ok(false);
            }
        }
        let seq = spool.next_seq;
        let line = Line::Op {
            seq,
            op: Box::new(op),
        };
        if let Err(io) = self.append(spool, std::slice::from_ref(&line)) {
            tracing::error!("cannot write the spool {}: {io}", self.path.display());
            return Err(cause);
        }
        let Line::Op { op, .. } = line else {
            unreachable!()
        };
        spool.next_seq += 1;
        spool.ended = None;
        self.cache.lock().unwrap().applied(&op, true, seq as i64);
        spool.entries.push_back((seq, *op));
        Ok(true)
    }

    fn mark(&self, spool: &mut Spool, flushed: u64) -> bool {
        match self.append(spool, &[Line::Flushed { flushed }]) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("cannot write the spool {}: {e}", self.path.display());
                false
            }
        }
    }

    /// Replay the spool into the database, record the outage, truncate the file. Stops (the
    /// outage goes on) at the first unavailable error.
    async fn flush(&self, spool: &mut Spool) {
        let inner = self.inner.as_ref();
        let mut checked = 0;
        let mut unmarked = 0;
        let mut last_done = None;
        while let Some((seq, op)) = spool.entries.front() {
            let seq = *seq;
            let doubtful = checked < IN_DOUBT;
            checked += 1;
            let result = if doubtful {
                match op.already_applied(inner).await {
                    Ok(true) => Ok(true),
                    Ok(false) => op.apply(inner).await,
                    Err(e) => Err(e),
                }
            } else {
                op.apply(inner).await
            };
            match result {
                Ok(_) => spool.replayed += 1,
                Err(e) if is_unavailable(&e) => {
                    tracing::warn!("replaying the spool stopped, the database is away again: {e}");
                    if let Some(done) = last_done {
                        self.mark(spool, done);
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!("the database refused spooled write #{seq} ({op:?}): {e}");
                    spool.refused += 1;
                }
            }
            spool.entries.pop_front();
            last_done = Some(seq);
            unmarked += 1;
            if unmarked >= IN_DOUBT {
                if !self.mark(spool, seq) {
                    return;
                }
                unmarked = 0;
            }
        }
        if unmarked > 0
            && let Some(done) = last_done
            && !self.mark(spool, done)
        {
            return;
        }
        let Some(since_ms) = spool.since_ms else {
            return;
        };
        let (ended_ms, replayed, refused) = match spool.ended {
            Some(e) => e,
            None => {
                let e = (ms(Timestamp::now()), spool.replayed, spool.refused);
                if let Err(io) = self.append(
                    spool,
                    &[Line::Ended {
                        ended_ms: e.0,
                        replayed: e.1,
                        refused: e.2,
                    }],
                ) {
                    tracing::error!("cannot write the spool {}: {io}", self.path.display());
                    return;
                }
                spool.ended = Some(e);
                e
            }
        };
        let mut end = format!(
            "database back at {}; {replayed} writes replayed from the spool",
            ts(ended_ms)
        );
        if refused > 0 {
            end.push_str(&format!(
                "; {refused} refused by the database (see the daemon's log)"
            ));
        }
        let rows = [
            Op::Error {
                group: None,
                component: ErrorComponent::Store,
                message: format!("database unavailable since {}", ts(since_ms)),
                at_ms: since_ms,
            },
            Op::Error {
                group: None,
                component: ErrorComponent::Store,
                message: end,
                at_ms: ended_ms,
            },
        ];
        for row in &rows {
            let result = match row.already_applied(inner).await {
                Ok(true) => Ok(true),
                Ok(false) => row.apply(inner).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!("cannot record the outage yet: {e}");
                return;
            }
        }
        let truncated = spool
            .file
            .as_ref()
            .map(|f| f.set_len(0).and_then(|()| f.sync_data()))
            .unwrap_or_else(|| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .and_then(|f| f.set_len(0).and_then(|()| f.sync_data()))
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
            });
        if let Err(e) = truncated {
            // Everything is in the database; a later run would replay it as no-ops (the
            // in-doubt look-ups cover the first writes only: see docs/outages.md).
            tracing::error!("cannot truncate the spool {}: {e}", self.path.display());
        }
        tracing::warn!(
            "database back: {replayed} spooled writes replayed ({refused} refused); outage since {}",
            ts(since_ms)
        );
        spool.since_ms = None;
        spool.ended = None;
        spool.next_seq = 1;
        spool.replayed = 0;
        spool.refused = 0;
    }

    /// Pass a read through; during an outage (or when it fails for unavailability), serve
    /// it with `cached` when that has it.
    async fn read_or_cached<T>(
        &self,
        what: &'static str,
        read: impl std::future::Future<Output = Result<T>>,
        cached: impl Fn(&Cache) -> Option<T>,
        remember: impl FnOnce(&mut Cache, &T),
    ) -> Result<T> {
        if !self.in_outage().await {
            match self.bounded(read).await {
                Ok(v) => {
                    remember(&mut self.cache.lock().unwrap(), &v);
                    return Ok(v);
                }
                Err(e) if is_unavailable(&e) => {
                    self.note_read_failure(&e).await;
                    return cached(&self.cache.lock().unwrap()).ok_or(e);
                }
                Err(e) => return Err(e),
            }
        }
        let since = self.spool.read().await.since_ms;
        cached(&self.cache.lock().unwrap()).ok_or_else(|| unavailable(what, since))
    }

    /// `call`, failing as unavailable (a pool timeout) when it takes longer than
    /// `call_timeout`.
    async fn bounded<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.options.call_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Db {
                what: "a database call timed out",
                source: sqlx::Error::PoolTimedOut,
            }),
        }
    }

    /// A read not served during an outage (history views).
    async fn history<T>(
        &self,
        what: &'static str,
        read: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        if self.in_outage().await {
            return Err(unavailable(what, self.spool.read().await.since_ms));
        }
        read.await
    }
}

/// Rebuild the outage, the unflushed writes and the cache from a spool file's bytes.
fn read_spool(path: &Path, bytes: &[u8], spool: &mut Spool, cache: &mut Cache) {
    let mut ops: Vec<(u64, Op)> = Vec::new();
    let mut flushed = 0;
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    for (n, raw) in lines.iter().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(raw) {
            Ok(Line::Outage { outage_since_ms }) => {
                if spool.since_ms.is_none() {
                    spool.since_ms = Some(outage_since_ms);
                }
            }
            Ok(Line::Op { seq, op }) => {
                spool.ended = None;
                spool.next_seq = spool.next_seq.max(seq + 1);
                ops.push((seq, *op));
            }
            Ok(Line::Flushed { flushed: f }) => flushed = flushed.max(f),
            Ok(Line::Ended {
                ended_ms,
                replayed,
                refused,
            }) => spool.ended = Some((ended_ms, replayed, refused)),
            // A torn last line: that write was never reported as done.
            Err(e) if n + 1 == lines.len() => {
                tracing::warn!("{}: ignoring a torn last line: {e}", path.display());
            }
            Err(e) => {
                tracing::error!(
                    "{}: skipping unreadable line {}: {e}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    for (seq, op) in ops {
        if seq <= flushed {
            spool.replayed += 1;
            continue;
        }
        cache.applied(&op, true, seq as i64);
        spool.entries.push_back((seq, op));
    }
    if !spool.entries.is_empty() && spool.since_ms.is_none() {
        spool.since_ms = Some(ms(Timestamp::now()));
    }
}

#[async_trait]
impl Store for SpoolingStore {
    async fn save_group_config(
        &self,
        group: &str,
        config: &serde_json::Value,
        at: Timestamp,
    ) -> Result<()> {
        self.write(Op::GroupConfig {
            group: group.to_string(),
            config: config.clone(),
            at_ms: ms(at),
        })
        .await
        .map(drop)
    }

    async fn load_state(&self, group: &str) -> Result<Option<StoredState>> {
        self.read_or_cached(
            "load_state during a database outage",
            self.inner.load_state(group),
            |c| c.states.get(group).cloned().map(Some),
            |c, v| {
                if let Some(s) = v {
                    c.states.insert(group.to_string(), s.clone());
                }
            },
        )
        .await
    }

    async fn save_state(
        &self,
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
    ) -> Result<()> {
        self.write(Op::State {
            group: group.to_string(),
            state: state.into(),
            decision: decision.cloned(),
            at_ms: ms(at),
        })
        .await
        .map(drop)
    }

    async fn begin_activity(&self, a: &NewActivity<'_>) -> Result<bool> {
        if a.fence.is_some() {
            // Several daemons: never spooled (an HA daemon stops acting instead).
            let began = self.inner.begin_activity(a).await?;
            self.cache
                .lock()
                .unwrap()
                .applied(&Op::intent(a, None, None), began, 0);
            return Ok(began);
        }
        self.write(Op::intent(a, None, None)).await
    }

    async fn begin_activity_with_state(
        &self,
        a: &NewActivity<'_>,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
    ) -> Result<bool> {
        let op = Op::intent(a, Some(state), decision);
        if a.fence.is_some() {
            let began = self
                .inner
                .begin_activity_with_state(a, state, decision)
                .await?;
            self.cache.lock().unwrap().applied(&op, began, 0);
            return Ok(began);
        }
        self.write(op).await
    }

    async fn finish_activity(
        &self,
        key: &str,
        status: ActivityStatus,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()> {
        self.write(Op::Finish {
            key: key.to_string(),
            status,
            error: error.map(str::to_string),
            at_ms: ms(at),
        })
        .await
        .map(drop)
    }

    async fn pending_activities(&self, group: &str) -> Result<Vec<Activity>> {
        self.read_or_cached(
            "pending_activities during a database outage",
            self.inner.pending_activities(group),
            |c| c.pending.get(group).cloned(),
            |c, v| {
                c.pending.insert(group.to_string(), v.clone());
            },
        )
        .await
    }

    async fn activities(&self, group: Option<&str>, limit: u32) -> Result<Vec<Activity>> {
        self.history(
            "activities during a database outage",
            self.inner.activities(group, limit),
        )
        .await
    }

    async fn record_error(
        &self,
        group: Option<&str>,
        component: ErrorComponent,
        message: &str,
        at: Timestamp,
    ) -> Result<()> {
        self.write(Op::Error {
            group: group.map(str::to_string),
            component,
            message: message.to_string(),
            at_ms: ms(at),
        })
        .await
        .map(drop)
    }

    async fn errors(&self, group: Option<&str>, limit: u32) -> Result<Vec<ErrorRecord>> {
        self.history(
            "errors during a database outage",
            self.inner.errors(group, limit),
        )
        .await
    }

    async fn record_samples(
        &self,
        group: &str,
        at: Timestamp,
        metrics: &BTreeMap<String, f64>,
    ) -> Result<()> {
        self.write(Op::Samples {
            group: group.to_string(),
            at_ms: ms(at),
            metrics: metrics.clone(),
        })
        .await
        .map(drop)
    }

    async fn samples(
        &self,
        group: &str,
        metric: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, f64)>> {
        self.history(
            "samples during a database outage",
            self.inner.samples(group, metric, since),
        )
        .await
    }

    async fn prune_samples(&self, before: Timestamp) -> Result<u64> {
        self.history(
            "prune_samples during a database outage",
            self.inner.prune_samples(before),
        )
        .await
    }

    async fn record_forecasts(&self, group: &str, forecasts: &[NewForecast]) -> Result<()> {
        self.write(Op::Forecasts {
            group: group.to_string(),
            forecasts: forecasts
                .iter()
                .map(|f| SpooledForecast {
                    metric: f.metric.clone(),
                    made_ms: ms(f.made),
                    serves_from_ms: ms(f.serves_from),
                    due_ms: ms(f.due),
                    estimate: f.estimate,
                    provision: f.provision,
                    seasonal: f.seasonal,
                    forecast_only: f.forecast_only,
                })
                .collect(),
        })
        .await
        .map(drop)
    }

    async fn forecasts(
        &self,
        group: Option<&str>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ForecastRecord>> {
        self.history(
            "forecasts during a database outage",
            self.inner.forecasts(group, limit, now),
        )
        .await
    }

    async fn prune_forecasts(&self, before: Timestamp) -> Result<u64> {
        self.history(
            "prune_forecasts during a database outage",
            self.inner.prune_forecasts(before),
        )
        .await
    }

    async fn prune_history(&self, before: Timestamp) -> Result<u64> {
        self.history(
            "prune_history during a database outage",
            self.inner.prune_history(before),
        )
        .await
    }

    async fn instances(&self, group: &str) -> Result<Vec<InstanceRecord>> {
        self.read_or_cached(
            "instances during a database outage",
            self.inner.instances(group),
            |c| c.instances.get(group).cloned(),
            |c, v| {
                c.instances.insert(group.to_string(), v.clone());
            },
        )
        .await
    }

    async fn put_instance(&self, group: &str, instance: InstanceRecord) -> Result<()> {
        self.write(Op::PutInstance {
            group: group.to_string(),
            host: instance.host,
            port: instance.port,
            pid: instance.pid,
            started_ms: instance.started_ms,
            marker: instance.marker,
        })
        .await
        .map(drop)
    }

    async fn delete_instance(&self, group: &str, host: &str, port: u16) -> Result<()> {
        self.write(Op::DeleteInstance {
            group: group.to_string(),
            host: host.to_string(),
            port,
        })
        .await
        .map(drop)
    }

    // Groups in the database, heartbeats and leases: passed through, never spooled or
    // answered from a cache (a lease must come from the database or not at all).

    async fn group_rows(&self) -> Result<Vec<GroupRow>> {
        self.inner.group_rows().await
    }

    async fn put_group_row(
        &self,
        name: &str,
        spec: &serde_json::Value,
        enabled: bool,
        at: Timestamp,
    ) -> Result<()> {
        self.inner.put_group_row(name, spec, enabled, at).await
    }

    async fn set_group_row_enabled(
        &self,
        name: &str,
        enabled: bool,
        at: Timestamp,
    ) -> Result<bool> {
        self.inner.set_group_row_enabled(name, enabled, at).await
    }

    async fn delete_group_row(&self, name: &str) -> Result<bool> {
        self.inner.delete_group_row(name).await
    }

    async fn group_rows_version(&self) -> Result<i64> {
        self.inner.group_rows_version().await
    }

    async fn progress_since(&self, since: Timestamp) -> Result<crate::Progress> {
        self.inner.progress_since(since).await
    }

    async fn heartbeat(&self, daemon: &str, ttl: Duration) -> Result<Vec<String>> {
        self.inner.heartbeat(daemon, ttl).await
    }

    async fn leave(&self, daemon: &str) -> Result<()> {
        self.inner.leave(daemon).await
    }

    async fn acquire_leases(
        &self,
        holder: &str,
        groups: &[String],
        ttl: Duration,
    ) -> Result<Vec<Lease>> {
        self.inner.acquire_leases(holder, groups, ttl).await
    }

    async fn release_leases(&self, holder: &str, groups: &[String]) -> Result<()> {
        self.inner.release_leases(holder, groups).await
    }

    async fn leases(&self) -> Result<Vec<Lease>> {
        self.inner.leases().await
    }

    async fn save_state_fenced(
        &self,
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
        fence: &Fence,
    ) -> Result<()> {
        self.inner
            .save_state_fenced(group, state, decision, at, fence)
            .await?;
        self.cache
            .lock()
            .unwrap()
            .states
            .insert(group.to_string(), state.clone());
        Ok(())
    }

    // The budget ledger is used with `engine.ha: true` only, where no spool wraps the store:
    // passed through (an outage fails these, and the ledger fails closed).
    async fn budget_entries(&self) -> Result<(i64, Vec<crate::BudgetEntry>)> {
        self.inner.budget_entries().await
    }

    async fn put_budget_entry(
        &self,
        entry: &crate::BudgetEntry,
        expected_version: i64,
        fence: Option<&Fence>,
    ) -> Result<bool> {
        self.inner
            .put_budget_entry(entry, expected_version, fence)
            .await
    }

    async fn settle_budget_entry(
        &self,
        entry: &crate::BudgetEntry,
        fence: Option<&Fence>,
    ) -> Result<()> {
        self.inner.settle_budget_entry(entry, fence).await
    }

    async fn delete_budget_entry(&self, group: &str) -> Result<()> {
        self.inner.delete_budget_entry(group).await
    }
    // The REST API's tokens and audit log: passed through, never spooled or cached (a
    // token must come from the database, and an audit entry is either in it or the call
    // fails). The pages of history are history views: refused during an outage, as
    // `activities` and `errors` are (they would miss the spooled writes).

    async fn create_token(
        &self,
        name: &str,
        role: crate::Role,
        hash: &str,
        at: Timestamp,
    ) -> Result<bool> {
        self.inner.create_token(name, role, hash, at).await
    }

    async fn tokens(&self) -> Result<Vec<crate::TokenRecord>> {
        self.inner.tokens().await
    }

    async fn revoke_token(&self, name: &str, at: Timestamp) -> Result<bool> {
        self.inner.revoke_token(name, at).await
    }

    async fn tokens_version(&self) -> Result<i64> {
        self.inner.tokens_version().await
    }

    async fn record_audit(&self, entry: &crate::NewAudit<'_>) -> Result<i64> {
        self.inner.record_audit(entry).await
    }

    async fn audit(&self, q: &crate::HistoryQuery<'_>) -> Result<Vec<crate::AuditRecord>> {
        self.inner.audit(q).await
    }

    async fn activities_page(&self, q: &crate::HistoryQuery<'_>) -> Result<Vec<Activity>> {
        self.history(
            "activities during a database outage",
            self.inner.activities_page(q),
        )
        .await
    }

    async fn errors_page(&self, q: &crate::HistoryQuery<'_>) -> Result<Vec<ErrorRecord>> {
        self.history("errors during a database outage", self.inner.errors_page(q))
            .await
    }
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
