//! The spool against a SQLite store whose calls fail as an unreachable database's would.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::SqliteStore;
use crate::conformance::t;

#[derive(Debug, Clone, Copy)]
enum Mode {
    Up,
    /// Every call fails with an I/O error (connection refused).
    Refused,
    /// Every call fails as a pool that timed out.
    PoolTimedOut,
    /// `n` more writes pass; the next one is done and then reported failed (the connection
    /// dropped after the commit), and every call after it fails.
    CommitThenDrop(u32),
}

/// SQLite with a switch that makes it unreachable.
struct Faulty {
    inner: SqliteStore,
    mode: Mutex<Mode>,
}

fn refused(what: &'static str) -> StoreError {
    StoreError::Db {
        what,
        source: sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        )),
    }
}

impl Faulty {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Before a call: fail it, or pass it (true: report it failed once done).
    fn before(&self, what: &'static str, write: bool) -> Result<bool> {
        let mut mode = self.mode.lock().unwrap();
        match *mode {
            Mode::Up => Ok(false),
            Mode::Refused => Err(refused(what)),
            Mode::PoolTimedOut => Err(StoreError::Db {
                what,
                source: sqlx::Error::PoolTimedOut,
            }),
            Mode::CommitThenDrop(_) if !write => Ok(false),
            Mode::CommitThenDrop(0) => {
                *mode = Mode::Refused;
                Ok(true)
            }
            Mode::CommitThenDrop(n) => {
                *mode = Mode::CommitThenDrop(n - 1);
                Ok(false)
            }
        }
    }
}

macro_rules! call {
    ($s:ident, $what:literal, $write:expr, $e:expr) => {{
        let drop_after = $s.before($what, $write)?;
        let r = $e.await;
        if drop_after {
            r?;
            return Err(refused($what));
        }
        r
    }};
}

#[async_trait]
impl Store for Faulty {
    async fn save_group_config(
        &self,
        group: &str,
        config: &serde_json::Value,
        at: Timestamp,
    ) -> Result<()> {
        call!(
            self,
            "save_group_config",
            true,
            self.inner.save_group_config(group, config, at)
        )
    }
    async fn load_state(&self, group: &str) -> Result<Option<StoredState>> {
        call!(self, "load_state", false, self.inner.load_state(group))
    }
    async fn save_state(
        &self,
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
    ) -> Result<()> {
        call!(
            self,
            "save_state",
            true,
            self.inner.save_state(group, state, decision, at)
        )
    }
    async fn begin_activity(&self, a: &NewActivity<'_>) -> Result<bool> {
        call!(self, "begin_activity", true, self.inner.begin_activity(a))
    }
    async fn begin_activity_with_state(
        &self,
        a: &NewActivity<'_>,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
    ) -> Result<bool> {
        call!(
            self,
            "begin_activity_with_state",
            true,
            self.inner.begin_activity_with_state(a, state, decision)
        )
    }
    async fn finish_activity(
        &self,
        key: &str,
        status: ActivityStatus,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()> {
        call!(
            self,
            "finish_activity",
            true,
            self.inner.finish_activity(key, status, error, at)
        )
    }
    async fn pending_activities(&self, group: &str) -> Result<Vec<Activity>> {
        call!(
            self,
            "pending_activities",
            false,
            self.inner.pending_activities(group)
        )
    }
    async fn activities(&self, group: Option<&str>, limit: u32) -> Result<Vec<Activity>> {
        call!(
            self,
            "activities",
            false,
            self.inner.activities(group, limit)
        )
    }
    async fn record_error(
        &self,
        group: Option<&str>,
        component: ErrorComponent,
        message: &str,
        at: Timestamp,
    ) -> Result<()> {
        call!(
            self,
            "record_error",
            true,
            self.inner.record_error(group, component, message, at)
        )
    }
    async fn errors(&self, group: Option<&str>, limit: u32) -> Result<Vec<ErrorRecord>> {
        call!(self, "errors", false, self.inner.errors(group, limit))
    }
    async fn record_samples(
        &self,
        group: &str,
        at: Timestamp,
        metrics: &BTreeMap<String, f64>,
    ) -> Result<()> {
        call!(
            self,
            "record_samples",
            true,
            self.inner.record_samples(group, at, metrics)
        )
    }
    async fn samples(
        &self,
        group: &str,
        metric: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, f64)>> {
        call!(
            self,
            "samples",
            false,
            self.inner.samples(group, metric, since)
        )
    }
    async fn prune_samples(&self, before: Timestamp) -> Result<u64> {
        call!(
            self,
            "prune_samples",
            true,
            self.inner.prune_samples(before)
        )
    }
    async fn record_forecasts(&self, group: &str, forecasts: &[NewForecast]) -> Result<()> {
        call!(
            self,
            "record_forecasts",
            true,
            self.inner.record_forecasts(group, forecasts)
        )
    }
    async fn forecasts(
        &self,
        group: Option<&str>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ForecastRecord>> {
        call!(
            self,
            "forecasts",
            false,
            self.inner.forecasts(group, limit, now)
        )
    }
    async fn prune_forecasts(&self, before: Timestamp) -> Result<u64> {
        call!(
            self,
            "prune_forecasts",
            true,
            self.inner.prune_forecasts(before)
        )
    }
    async fn prune_history(&self, before: Timestamp) -> Result<u64> {
        call!(
            self,
            "prune_history",
            true,
            self.inner.prune_history(before)
        )
    }
    async fn instances(&self, group: &str) -> Result<Vec<InstanceRecord>> {
        call!(self, "instances", false, self.inner.instances(group))
    }
    async fn put_instance(&self, group: &str, instance: InstanceRecord) -> Result<()> {
        call!(
            self,
            "put_instance",
            true,
            self.inner.put_instance(group, instance)
        )
    }
    async fn delete_instance(&self, group: &str, host: &str, port: u16) -> Result<()> {
        call!(
            self,
            "delete_instance",
            true,
            self.inner.delete_instance(group, host, port)
        )
    }
    async fn group_rows(&self) -> Result<Vec<GroupRow>> {
        call!(self, "group_rows", false, self.inner.group_rows())
    }
    async fn put_group_row(
        &self,
        name: &str,
        spec: &serde_json::Value,
        enabled: bool,
        at: Timestamp,
    ) -> Result<()> {
        call!(
            self,
            "put_group_row",
            true,
            self.inner.put_group_row(name, spec, enabled, at)
        )
    }
    async fn set_group_row_enabled(
        &self,
        name: &str,
        enabled: bool,
        at: Timestamp,
    ) -> Result<bool> {
        call!(
            self,
            "set_group_row_enabled",
            true,
            self.inner.set_group_row_enabled(name, enabled, at)
        )
    }
    async fn delete_group_row(&self, name: &str) -> Result<bool> {
        call!(
            self,
            "delete_group_row",
            true,
            self.inner.delete_group_row(name)
        )
    }
    async fn group_rows_version(&self) -> Result<i64> {
        call!(
            self,
            "group_rows_version",
            false,
            self.inner.group_rows_version()
        )
    }
    async fn progress_since(&self, since: Timestamp) -> Result<crate::Progress> {
        call!(
            self,
            "progress_since",
            false,
            self.inner.progress_since(since)
        )
    }
    async fn heartbeat(&self, daemon: &str, ttl: Duration) -> Result<Vec<String>> {
        call!(self, "heartbeat", true, self.inner.heartbeat(daemon, ttl))
    }
    async fn leave(&self, daemon: &str) -> Result<()> {
        call!(self, "leave", true, self.inner.leave(daemon))
    }
    async fn acquire_leases(
        &self,
        holder: &str,
        groups: &[String],
        ttl: Duration,
    ) -> Result<Vec<Lease>> {
        call!(
            self,
            "acquire_leases",
            true,
            self.inner.acquire_leases(holder, groups, ttl)
        )
    }
    async fn release_leases(&self, holder: &str, groups: &[String]) -> Result<()> {
        call!(
            self,
            "release_leases",
            true,
            self.inner.release_leases(holder, groups)
        )
    }
    async fn leases(&self) -> Result<Vec<Lease>> {
        call!(self, "leases", false, self.inner.leases())
    }
    async fn save_state_fenced(
        &self,
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
        fence: &Fence,
    ) -> Result<()> {
        call!(
            self,
            "save_state_fenced",
            true,
            self.inner
                .save_state_fenced(group, state, decision, at, fence)
        )
    }
    async fn budget_entries(&self) -> Result<(i64, Vec<crate::BudgetEntry>)> {
        self.inner.budget_entries().await
    }
    async fn put_budget_entry(
        &self,
        entry: &crate::BudgetEntry,
        expected: i64,
        fence: Option<&Fence>,
    ) -> Result<bool> {
        self.inner.put_budget_entry(entry, expected, fence).await
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
    async fn create_token(
        &self,
        name: &str,
        role: crate::Role,
        hash: &str,
        at: Timestamp,
    ) -> Result<bool> {
        call!(
            self,
            "create_token",
            true,
            self.inner.create_token(name, role, hash, at)
        )
    }
    async fn tokens(&self) -> Result<Vec<crate::TokenRecord>> {
        call!(self, "tokens", false, self.inner.tokens())
    }
    async fn revoke_token(&self, name: &str, at: Timestamp) -> Result<bool> {
        call!(
            self,
            "revoke_token",
            true,
            self.inner.revoke_token(name, at)
        )
    }
    async fn tokens_version(&self) -> Result<i64> {
        call!(self, "tokens_version", false, self.inner.tokens_version())
    }
    async fn record_audit(&self, entry: &crate::NewAudit<'_>) -> Result<i64> {
        call!(self, "record_audit", true, self.inner.record_audit(entry))
    }
    async fn audit(&self, q: &crate::HistoryQuery<'_>) -> Result<Vec<crate::AuditRecord>> {
        call!(self, "audit", false, self.inner.audit(q))
    }
    async fn activities_page(&self, q: &crate::HistoryQuery<'_>) -> Result<Vec<Activity>> {
        call!(
            self,
            "activities_page",
            false,
            self.inner.activities_page(q)
        )
    }
    async fn errors_page(&self, q: &crate::HistoryQuery<'_>) -> Result<Vec<ErrorRecord>> {
        call!(self, "errors_page", false, self.inner.errors_page(q))
    }
}

/// Probes only when a test asks (`recover`).
const MANUAL: SpoolOptions = SpoolOptions {
    probe_every: Duration::from_secs(3600),
    probe_timeout: Duration::from_secs(5),
    call_timeout: Duration::from_secs(3600),
};

async fn faulty(dir: &Path) -> Arc<Faulty> {
    let inner = SqliteStore::open(&dir.join("s.db")).await.unwrap();
    Arc::new(Faulty {
        inner,
        mode: Mutex::new(Mode::Up),
    })
}

async fn spooling(db: &Arc<Faulty>, dir: &Path) -> SpoolingStore {
    SpoolingStore::open_with(db.clone(), dir.join("scalepilot.spool"), MANUAL)
        .await
        .unwrap()
}

fn state(failures: u32) -> StoredState {
    let mut st = StoredState::default();
    st.state.consecutive_failures = failures;
    st
}

fn intent<'a>(key: &'a str, d: &'a serde_json::Value) -> NewActivity<'a> {
    NewActivity {
        key,
        group: "web",
        from: 2,
        to: 4,
        status: ActivityStatus::Pending,
        decision: d,
        at: t(10),
        owner: Some("1:1"),
        fence: None,
    }
}

fn metrics(v: f64) -> BTreeMap<String, f64> {
    BTreeMap::from([("rps".to_string(), v)])
}

fn spool_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("scalepilot.spool"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

fn count(errors: &[ErrorRecord], prefix: &str) -> usize {
    errors
        .iter()
        .filter(|e| e.message.starts_with(prefix))
        .count()
}

#[test]
fn classification() {
    let io = refused("x");
    assert!(is_unavailable(&io));
    for source in [
        sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed,
    ] {
        assert!(is_unavailable(&StoreError::Db { what: "x", source }));
    }
    for source in [
        sqlx::Error::RowNotFound,
        sqlx::Error::Protocol("bad".into()),
        sqlx::Error::ColumnNotFound("c".into()),
    ] {
        assert!(!is_unavailable(&StoreError::Db { what: "x", source }));
    }
    let fenced = StoreError::Fenced {
        group: "web".into(),
        holder: "a".into(),
        epoch: 1,
    };
    assert!(!is_unavailable(&fenced));
}

#[tokio::test]
async fn sqlite_database_errors_are_not_outages() {
    // A real database error (SQLite's numeric code) is a data error.
    let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
    let e = sqlx::query("SELECT * FROM no_such_table")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(!is_unavailable_sqlx(&e));
}

#[tokio::test]
async fn an_outage_is_spooled_and_replayed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = faulty(dir.path()).await;
    let store = spooling(&db, dir.path()).await;
    let d = json!({"desired_replicas": 4});

    // Before the outage: through to the database, and seen by the cache.
    store
        .save_state("web", &state(1), None, t(0))
        .await
        .unwrap();
    assert!(store.pending_activities("web").await.unwrap().is_empty());
    store
        .put_instance(
            "web",
            InstanceRecord {
                host: "127.0.0.1".into(),
                port: 9000,
                pid: Some(11),
                started_ms: 1,
                marker: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(store.instances("web").await.unwrap().len(), 1);
    assert!(store.outage_since().await.is_none());
    assert!(!dir.path().join("scalepilot.spool").exists());

    db.set(Mode::Refused);
    // Writes succeed, locally.
    store
        .record_samples("web", t(10), &metrics(5.0))
        .await
        .unwrap();
    assert!(store.outage_since().await.is_some());
    assert!(
        store
            .begin_activity_with_state(&intent("web:4:1", &d), &state(2), Some(&d))
            .await
            .unwrap()
    );
    // Known keys stay known: the engine does not act twice.
    assert!(
        !store
            .begin_activity_with_state(&intent("web:4:1", &d), &state(3), Some(&d))
            .await
            .unwrap()
    );
    // What deciding needs is served from the spool and the cache.
    let loaded = store.load_state("web").await.unwrap().unwrap();
    assert_eq!(loaded.state.consecutive_failures, 2);
    let pending = store.pending_activities("web").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].key, "web:4:1");
    store
        .finish_activity("web:4:1", ActivityStatus::Succeeded, None, t(11))
        .await
        .unwrap();
    assert!(store.pending_activities("web").await.unwrap().is_empty());
    store
        .record_error(Some("web"), ErrorComponent::Target, "slow", t(12))
        .await
        .unwrap();
    store
        .delete_instance("web", "127.0.0.1", 9000)
        .await
        .unwrap();
    assert!(store.instances("web").await.unwrap().is_empty());
    store
        .save_state("web", &state(4), None, t(13))
        .await
        .unwrap();
    // History views wait for the database; leases are never faked.
    assert!(store.errors(None, 10).await.is_err());
    assert!(store.activities(None, 10).await.is_err());
    assert!(store.leases().await.is_err());
    // A state never seen cannot be made up.
    assert!(store.load_state("api").await.is_err());

    // The file: the outage's start and one fsynced line per write.
    let lines = spool_lines(dir.path());
    assert!(lines[0]["outage_since_ms"].is_i64());
    let ops: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["op"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "samples",
            "intent",
            "finish",
            "error",
            "delete_instance",
            "state"
        ]
    );
    assert_eq!(store.spooled().await, 6);

    // Still away (another kind of unavailability): nothing changes.
    db.set(Mode::PoolTimedOut);
    assert!(!store.recover().await);
    assert_eq!(store.spooled().await, 6);

    db.set(Mode::Up);
    assert!(store.recover().await);
    assert_eq!(store.spooled().await, 0);
    assert!(store.outage_since().await.is_none());
    assert_eq!(
        std::fs::metadata(dir.path().join("scalepilot.spool"))
            .unwrap()
            .len(),
        0
    );

    let inner = &db.inner;
    let acts = inner.activities(None, 10).await.unwrap();
    assert_eq!(acts.len(), 1);
    assert_eq!(acts[0].status, ActivityStatus::Succeeded);
    assert_eq!(acts[0].finished_ms, Some(ms(t(11))));
    assert_eq!(
        inner
            .load_state("web")
            .await
            .unwrap()
            .unwrap()
            .state
            .consecutive_failures,
        4
    );
    assert_eq!(
        inner.samples("web", "rps", t(0)).await.unwrap(),
        vec![(t(10), 5.0)]
    );
    assert!(inner.instances("web").await.unwrap().is_empty());
    let errors = inner.errors(None, 10).await.unwrap();
    assert_eq!(errors.len(), 3, "{errors:?}");
    // Newest first: the end, the start, the spooled error (recorded in order).
    assert!(
        errors[0].message.starts_with("database back at "),
        "{errors:?}"
    );
    assert!(
        errors[0]
            .message
            .ends_with("; 6 writes replayed from the spool")
    );
    assert_eq!(errors[0].component, ErrorComponent::Store);
    assert!(errors[1].message.starts_with("database unavailable since "));
    assert_eq!(errors[1].component, ErrorComponent::Store);
    assert!(errors[1].at_ms <= errors[0].at_ms);
    assert_eq!(errors[2].message, "slow");

    // Back to normal: through to the database again.
    store
        .record_samples("web", t(20), &metrics(6.0))
        .await
        .unwrap();
    assert_eq!(inner.samples("web", "rps", t(0)).await.unwrap().len(), 2);
    assert_eq!(
        std::fs::metadata(dir.path().join("scalepilot.spool"))
            .unwrap()
            .len(),
        0
    );
}

/// Writes without keys (errors, samples) reach the database once, even when the replay is
/// cut short after a commit and the daemon restarts on the same spool.
#[tokio::test]
async fn a_replay_cut_short_and_restarted_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = faulty(dir.path()).await;
    let store = spooling(&db, dir.path()).await;
    let d = json!({});
    db.set(Mode::Refused);
    for i in 0..50 {
        store
            .record_error(Some("web"), ErrorComponent::Source, &format!("e{i}"), t(i))
            .await
            .unwrap();
        store
            .record_samples("web", t(i), &metrics(i as f64))
            .await
            .unwrap();
        let key = format!("web:{i}");
        assert!(store.begin_activity(&intent(&key, &d)).await.unwrap());
    }
    assert_eq!(store.spooled().await, 150);

    // 45 writes replayed, the 46th committed but its answer lost.
    db.set(Mode::CommitThenDrop(45));
    assert!(!store.recover().await);
    assert_eq!(store.spooled().await, 150 - 45);
    drop(store);
    // The crash came before the last mark was written.
    let path = dir.path().join("scalepilot.spool");
    let text = std::fs::read_to_string(&path).unwrap();
    let last_mark = text.rfind("{\"flushed\":").unwrap();
    assert!(text[last_mark..].starts_with("{\"flushed\":45}"));
    std::fs::write(&path, &text[..last_mark]).unwrap();

    // A new run on the same spool replays it at open, the database being back.
    db.set(Mode::Up);
    let store = spooling(&db, dir.path()).await;
    assert!(store.outage_since().await.is_none());
    let inner = &db.inner;
    let errors = inner.errors(Some("web"), 1000).await.unwrap();
    for i in 0..50 {
        let m = format!("e{i}");
        assert_eq!(errors.iter().filter(|e| e.message == m).count(), 1, "{m}");
    }
    assert_eq!(errors.len(), 50);
    assert_eq!(inner.samples("web", "rps", t(0)).await.unwrap().len(), 50);
    assert_eq!(inner.activities(Some("web"), 1000).await.unwrap().len(), 50);
    let all = inner.errors(None, 1000).await.unwrap();
    assert_eq!(count(&all, "database unavailable since "), 1);
    assert_eq!(count(&all, "database back at "), 1);
    assert!(all[0].message.contains("150 writes replayed"), "{all:?}");
    drop(store);

    // Once more on the flushed spool: nothing to do, nothing added.
    let _store = spooling(&db, dir.path()).await;
    assert_eq!(inner.errors(None, 1000).await.unwrap().len(), 52);
    assert_eq!(inner.samples("web", "rps", t(0)).await.unwrap().len(), 50);
}

/// The write that started the outage may have committed before the connection dropped: it is
/// spooled, and found in the database at the replay instead of written twice.
#[tokio::test]
async fn the_write_that_failed_after_its_commit_is_not_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let db = faulty(dir.path()).await;
    let store = spooling(&db, dir.path()).await;
    db.set(Mode::CommitThenDrop(0));
    store
        .record_error(Some("web"), ErrorComponent::Source, "once", t(1))
        .await
        .unwrap();
    store
        .record_samples("web", t(1), &metrics(1.0))
        .await
        .unwrap();
    assert_eq!(store.spooled().await, 2);
    db.set(Mode::Up);
    assert!(store.recover().await);
    let errors = db.inner.errors(Some("web"), 10).await.unwrap();
    assert_eq!(count(&errors, "once"), 1);
    assert_eq!(db.inner.samples("web", "rps", t(0)).await.unwrap().len(), 1);
}

/// Data errors are the caller's, not an outage; fenced writes are never spooled.
#[tokio::test]
async fn data_errors_and_fenced_writes_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let db = faulty(dir.path()).await;
    let store = spooling(&db, dir.path()).await;
    let fence = Fence {
        holder: "a".into(),
        epoch: 1,
    };
    let e = store
        .save_state_fenced("web", &state(1), None, t(0), &fence)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    assert!(store.outage_since().await.is_none());
    db.set(Mode::Refused);
    let d = json!({});
    let mut a = intent("web:1", &d);
    a.fence = Some(&fence);
    assert!(store.begin_activity(&a).await.is_err());
    assert!(
        store
            .save_state_fenced("web", &state(1), None, t(0), &fence)
            .await
            .is_err()
    );
    assert_eq!(store.spooled().await, 0);
}

/// The API's calls pass through: with the database away they fail as unavailable (a token
/// cannot be checked, a call cannot be audited), nothing of theirs is spooled or replayed,
/// and the pages of history are refused during the outage like the other history views.
#[tokio::test]
async fn api_calls_pass_through_and_fail_while_the_database_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let db = faulty(dir.path()).await;
    let store = spooling(&db, dir.path()).await;
    assert!(
        store
            .create_token("ci", crate::Role::Operator, "ab", t(0))
            .await
            .unwrap()
    );
    let v = store.tokens_version().await.unwrap();

    db.set(Mode::Refused);
    // Outage mode, begun by a spooled write.
    store
        .record_error(Some("web"), ErrorComponent::Source, "spooled", t(1))
        .await
        .unwrap();
    assert!(store.outage_since().await.is_some());
    let audit = crate::NewAudit {
        actor: "ci",
        role: Some(crate::Role::Operator),
        at: t(2),
        method: "POST",
        route: "/groups/web/pause",
        status: 200,
        allowed: true,
        before: None,
        after: None,
        detail: None,
    };
    let q = crate::HistoryQuery {
        limit: 10,
        ..Default::default()
    };
    for e in [
        store.record_audit(&audit).await.map(drop).unwrap_err(),
        store
            .create_token("ops", crate::Role::Admin, "cd", t(2))
            .await
            .map(drop)
            .unwrap_err(),
        store.revoke_token("ci", t(2)).await.map(drop).unwrap_err(),
        store.tokens().await.map(drop).unwrap_err(),
        store.tokens_version().await.map(drop).unwrap_err(),
        store.audit(&q).await.map(drop).unwrap_err(),
        store.activities_page(&q).await.map(drop).unwrap_err(),
        store.errors_page(&q).await.map(drop).unwrap_err(),
    ] {
        assert!(is_unavailable(&e), "{e}");
    }
    assert_eq!(store.spooled().await, 1);

    db.set(Mode::Up);
    assert!(store.recover().await);
    // Only the spooled error was replayed: no audit entry, token or revocation appeared.
    assert!(db.inner.audit(&q).await.unwrap().is_empty());
    assert_eq!(db.inner.tokens_version().await.unwrap(), v);
    let tokens = db.inner.tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].revoked_ms, None);
    let errors = store.errors_page(&q).await.unwrap();
    assert_eq!(count(&errors, "spooled"), 1);
}
