//! The SQLite store (the embedded default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqliteConnection};

use super::batch::{Batcher, Job, StateRow, Write};
use super::{
    Activity, ActivityStatus, AuditRecord, BudgetEntry, ErrorComponent, ErrorRecord, Fence,
    ForecastRecord, GroupRow, HistoryQuery, InstanceRecord, Lease, NewActivity, NewAudit,
    NewForecast, Progress, Result, Role, Store, StoreError, StoredState, TokenRecord, ms,
};

fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

/// Opens tried before an error is believed (see `SqliteStore::open`).
const OPEN_ATTEMPTS: u64 = 10;

pub struct SqliteStore {
    /// Group commit of the per-evaluation writes (see `batch`).
    batcher: Batcher<SqlitePool>,
    /// Swapped when the file was deleted or replaced under us (see [`SqliteStore::pool`]).
    pool: RwLock<SqlitePool>,
    /// The file and its identity; `None` for read-only stores (they never reopen).
    watch: Option<FileWatch>,
}

/// The open file's identity, to notice a store deleted or replaced while open: SQLite keeps
/// writing to the unlinked inode, so without this every write after `rm sp.db` would be lost
/// without a single error.
struct FileWatch {
    path: PathBuf,
    options: SqliteConnectOptions,
    id: Mutex<Option<(u64, u64)>>,
    /// One reopen at a time.
    reopening: tokio::sync::Mutex<()>,
}

/// (device, inode) of the file at `path`, if there is one.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn migrations() -> Vec<Migration> {
    let migration = |version, name: &str, sql: &'static str| {
        Migration::new(
            version,
            name.to_string().into(),
            MigrationType::Simple,
            AssertSqlSafe(sql).into_sql_str(),
            false,
        )
    };
    vec![
        migration(
            1,
            "init",
            include_str!("../migrations/sqlite/0001_init.sql"),
        ),
        migration(
            2,
            "forecasts",
            include_str!("../migrations/sqlite/0002_forecasts.sql"),
        ),
        migration(
            3,
            "owners_and_markers",
            include_str!("../migrations/sqlite/0003_owners_and_markers.sql"),
        ),
        migration(
            4,
            "groups_and_leases",
            include_str!("../migrations/sqlite/0004_groups_and_leases.sql"),
        ),
        migration(
            5,
            "session_leases",
            include_str!("../migrations/sqlite/0005_session_leases.sql"),
        ),
        migration(
            6,
            "budget_ledger",
            include_str!("../migrations/sqlite/0006_budget_ledger.sql"),
        ),
        migration(7, "api", include_str!("../migrations/sqlite/0007_api.sql")),
    ]
}

fn migrator() -> Migrator {
    Migrator::with_migrations(migrations())
}

impl SqliteStore {
    /// Open (creating if needed) and migrate the database at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let options = Self::options(path)?;
        let pool = Self::open_pool(options.clone()).await?;
        Ok(SqliteStore {
            batcher: Batcher::spawn(Box::new(flush)),
            pool: RwLock::new(pool),
            watch: Some(FileWatch {
                path: path.to_path_buf(),
                options,
                id: Mutex::new(file_id(path)),
                reopening: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Open an existing store for reading only: never creates the file (a read-only command
    /// pointed at a wrong path must say so, not show an empty history) and never writes to
    /// it. A store whose schema is older than this release is migrated first, through a
    /// normal open of the existing file: its data cannot be read otherwise.
    pub async fn open_read_only(path: &Path) -> Result<SqliteStore> {
        if !path.is_file() {
            return Err(StoreError::Missing {
                path: path.display().to_string(),
            });
        }
        let known = migrations().len() as i64;
        let options = Self::options(path)?
            .read_only(true)
            .create_if_missing(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(db("open the database read-only"))?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&pool)
                .await
                .unwrap_or(None);
        if applied.unwrap_or(0) >= known {
            return Ok(SqliteStore {
                batcher: Batcher::spawn(Box::new(flush)),
                pool: RwLock::new(pool),
                watch: None,
            });
        }
        pool.close().await;
        let options = Self::options(path)?.create_if_missing(false);
        let pool = Self::open_pool(options).await?;
        Ok(SqliteStore {
            batcher: Batcher::spawn(Box::new(flush)),
            pool: RwLock::new(pool),
            watch: None,
        })
    }

    /// Which migrations the store file at `path` has and which [`open`](Self::open) would
    /// apply, without creating or changing anything. When there is no file, every migration
    /// is pending (and the file is not created).
    pub async fn migration_plan(path: &Path) -> Result<super::MigrationPlan> {
        if !path.exists() {
            return Ok(super::MigrationPlan::new(&migrations(), Vec::new()));
        }
        let options = Self::options(path)?
            .read_only(true)
            .create_if_missing(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(db("open the database read-only"))?;
        let applied = async {
            let exists: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(&pool)
            .await?;
            if exists == 0 {
                return Ok(Vec::new());
            }
            sqlx::query_as(
                "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&pool)
            .await
        }
        .await
        .map_err(db("read the applied migrations"));
        pool.close().await;
        Ok(super::MigrationPlan::new(&migrations(), applied?))
    }

    fn options(path: &Path) -> Result<SqliteConnectOptions> {
        let url = format!("sqlite://{}", path.display());
        Ok(SqliteConnectOptions::from_str(&url)
            .map_err(db("parse the database path"))?
            .create_if_missing(true)
            // WAL + NORMAL survives a killed process (the case that matters here: a power
            // loss may lose the last transactions, never corrupt the file).
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10)))
    }

    async fn open_pool(options: SqliteConnectOptions) -> Result<SqlitePool> {
        // Two processes opening a new store at once (the daemon and a `history` run, say)
        // race: switching a new file to WAL fails at once while the other holds a lock, and
        // both find no migration applied, so the later one fails on a table the first
        // created. Each such failure means the other side got further: a retry finds its
        // work done and goes on from there.
        let mut attempt = 0;
        loop {
            match Self::connect(options.clone()).await {
                Ok(store) => return Ok(store),
                Err(e) if attempt < OPEN_ATTEMPTS && opening_race(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn connect(options: SqliteConnectOptions) -> Result<SqlitePool> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(db("open the database"))?;
        if let Err(e) = migrator().run(&pool).await {
            pool.close().await;
            return Err(e.into());
        }
        Ok(pool)
    }

    /// The pool for one operation. When the file at the path is no longer the one opened
    /// (deleted, or replaced by a copy), the store closes the old pool, reopens the path
    /// (creating and migrating a new file if needed), logs it and fails this operation with
    /// [`StoreError::Replaced`]: the caller counts a failure, and what follows goes to the
    /// file at the path again.
    async fn pool(&self, what: &'static str) -> Result<SqlitePool> {
        let current = self.pool.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(w) = &self.watch else {
            return Ok(current);
        };
        let opened = *w.id.lock().unwrap_or_else(|e| e.into_inner());
        if file_id(&w.path) == opened {
            return Ok(current);
        }
        let _one = w.reopening.lock().await;
        // Another operation may have reopened it while this one waited.
        let opened = *w.id.lock().unwrap_or_else(|e| e.into_inner());
        if file_id(&w.path) != opened {
            tracing::error!(
                "store {} was deleted or replaced while open: reopening it (state and history go on in the file now at that path)",
                w.path.display()
            );
            // Close first: the last connection's close checkpoints the old WAL into the old
            // inode and removes `-wal`/`-shm`, which a new file must not pick up.
            current.close().await;
            let pool = Self::open_pool(w.options.clone()).await?;
            *w.id.lock().unwrap_or_else(|e| e.into_inner()) = file_id(&w.path);
            *self.pool.write().unwrap_or_else(|e| e.into_inner()) = pool;
        }
        Err(StoreError::Replaced {
            path: w.path.display().to_string(),
            what,
        })
    }
}

async fn upsert_state(
    conn: &mut SqliteConnection,
    group: &str,
    state: &StoredState,
    decision: Option<&serde_json::Value>,
    at: Timestamp,
) -> Result<()> {
    upsert_row(conn, group, &StateRow::of(group, state, decision)?, at).await
}

/// One `group_state` row; a `None` decision keeps the stored one.
async fn upsert_row(
    conn: &mut SqliteConnection,
    group: &str,
    row: &StateRow,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO group_state (grp, state, last_decision, consecutive_errors, updated_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (grp) DO UPDATE SET state = excluded.state,
             last_decision = COALESCE(excluded.last_decision, group_state.last_decision),
             consecutive_errors = excluded.consecutive_errors, updated_ms = excluded.updated_ms",
    )
    .bind(group)
    .bind(&row.text)
    .bind(row.decision.as_deref())
    .bind(row.consecutive_errors)
    .bind(ms(at))
    .execute(conn)
    .await
    .map_err(db("save state"))?;
    Ok(())
}

/// The store's clock for leases: SQLite has no server, so this machine's.
fn now_ms() -> i64 {
    ms(Timestamp::now())
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Refuse (inside the caller's transaction) unless `fence` is still a live lease of `group`:
/// this holder, this epoch, not released, the holder's session not expired. The caller's
/// `BEGIN IMMEDIATE` holds the write lock, so no takeover commits before it does.
pub(crate) async fn check_fence(
    conn: &mut SqliteConnection,
    group: &str,
    fence: &Fence,
) -> Result<()> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM leases l JOIN daemons d ON d.id = l.holder
         WHERE l.grp = ? AND l.holder = ? AND l.epoch = ? AND NOT l.released AND d.expires_ms > ?",
    )
    .bind(group)
    .bind(&fence.holder)
    .bind(fence.epoch)
    .bind(now_ms())
    .fetch_optional(conn)
    .await
    .map_err(db("check lease"))?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::Fenced {
            group: group.to_string(),
            holder: fence.holder.clone(),
            epoch: fence.epoch,
        }),
    }
}

/// Start or renew `daemon`'s session (in the caller's write transaction) until `now` +
/// `ttl`; the new expiry. When the session had lapsed (or there was none), the daemon's
/// leases are released first: its old fences never come back to life with the new session.
/// `member`: a heartbeat (a running daemon, counted among the live ones that share the
/// groups), not a lease taken alone (`scalepilot once`), which must not be given a share.
async fn renew_session(
    conn: &mut SqliteConnection,
    daemon: &str,
    now: i64,
    ttl: Duration,
    member: bool,
) -> Result<i64> {
    let what = "renew session";
    let expires: Option<i64> = sqlx::query_scalar("SELECT expires_ms FROM daemons WHERE id = ?")
        .bind(daemon)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(what))?;
    if expires.is_none_or(|e| e <= now) {
        sqlx::query("UPDATE leases SET released = 1 WHERE holder = ? AND NOT released")
            .bind(daemon)
            .execute(&mut *conn)
            .await
            .map_err(db(what))?;
    }
    sqlx::query_scalar(
        "INSERT INTO daemons (id, heartbeat_ms, expires_ms, member) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms,
             expires_ms = max(daemons.expires_ms, excluded.expires_ms),
             member = max(daemons.member, excluded.member)
         RETURNING expires_ms",
    )
    .bind(daemon)
    .bind(now)
    .bind(now.saturating_add(ttl_ms(ttl)))
    .bind(member)
    .fetch_one(&mut *conn)
    .await
    .map_err(db(what))
}

async fn insert_samples(
    conn: &mut SqliteConnection,
    group: &str,
    at: Timestamp,
    metrics: &BTreeMap<String, f64>,
) -> Result<()> {
    for (name, value) in metrics {
        sqlx::query("INSERT INTO metric_samples (grp, metric, at_ms, value) VALUES (?, ?, ?, ?)")
            .bind(group)
            .bind(name)
            .bind(ms(at))
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(db("record samples"))?;
    }
    Ok(())
}

/// A group's config snapshot.
async fn upsert_config(
    conn: &mut SqliteConnection,
    group: &str,
    config: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO groups (name, config, updated_ms) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_ms = excluded.updated_ms",
    )
    .bind(group)
    .bind(config)
    .bind(ms(at))
    .execute(conn)
    .await
    .map_err(db("save group config"))?;
    Ok(())
}

/// One write of a batch, on the caller's connection or transaction.
async fn apply(conn: &mut SqliteConnection, w: &Write) -> Result<()> {
    match w {
        Write::State { group, row, at } => upsert_row(conn, group, row, *at).await,
        Write::Samples { group, at, metrics } => insert_samples(conn, group, *at, metrics).await,
        Write::Config { group, config, at } => upsert_config(conn, group, config, *at).await,
    }
}

/// A batch, write by write (SQLite is in-process: a statement costs no round trip).
async fn apply_all(conn: &mut SqliteConnection, jobs: &[Job<SqlitePool>]) -> Result<()> {
    for j in jobs {
        apply(conn, &j.write).await?;
    }
    Ok(())
}

super::batch::flush_fn!(SqlitePool);

async fn insert_activity(conn: &mut SqliteConnection, a: &NewActivity<'_>) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO activities (key, grp, started_ms, from_replicas, to_replicas, status, decision, owner)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
    )
    .bind(a.key)
    .bind(a.group)
    .bind(ms(a.at))
    .bind(a.from as i64)
    .bind(a.to as i64)
    .bind(a.status.as_str())
    .bind(a.decision.to_string())
    .bind(a.owner)
    .execute(conn)
    .await
    .map_err(db("write activity intent"))?;
    Ok(done.rows_affected() == 1)
}

pub(crate) fn decode<T: FromStr<Err = super::UnknownValue>>(
    text: &str,
) -> std::result::Result<T, sqlx::Error> {
    text.parse::<T>()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Whether `e` is what a concurrent first open of the same file causes (see `open`).
fn opening_race(e: &StoreError) -> bool {
    match e {
        StoreError::Db {
            source: sqlx::Error::Database(d),
            ..
        } => d
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        StoreError::Migrate(MigrateError::Execute(_) | MigrateError::ExecuteMigration(..)) => true,
        _ => false,
    }
}

pub(crate) fn activity(row: &SqliteRow) -> std::result::Result<Activity, sqlx::Error> {
    let decision: String = row.try_get("decision")?;
    Ok(Activity {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        group: row.try_get("grp")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        from_replicas: row.try_get("from_replicas")?,
        to_replicas: row.try_get("to_replicas")?,
        status: decode(&row.try_get::<String, _>("status")?)?,
        error: row.try_get("error")?,
        decision: serde_json::from_str(&decision).unwrap_or(serde_json::Value::String(decision)),
        owner: row.try_get("owner")?,
    })
}

pub(crate) const ACTIVITY_COLUMNS: &str = "id, key, grp, started_ms, finished_ms, from_replicas, to_replicas, status, error, decision, owner";

pub(crate) const ERROR_COLUMNS: &str = "id, grp, component, message, at_ms";

pub(crate) fn error_record(r: &SqliteRow) -> std::result::Result<ErrorRecord, sqlx::Error> {
    Ok(ErrorRecord {
        id: r.try_get("id")?,
        group: r.try_get("grp")?,
        component: decode(&r.try_get::<String, _>("component")?)?,
        message: r.try_get("message")?,
        at_ms: r.try_get("at_ms")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn save_group_config(
        &self,
        group: &str,
        config: &serde_json::Value,
        at: Timestamp,
    ) -> Result<()> {
        let pool = self.pool("save group config").await?;
        let write = Write::Config {
            group: group.to_string(),
            config: config.to_string(),
            at,
        };
        self.batcher.submit(pool, write).await
    }

    async fn load_state(&self, group: &str) -> Result<Option<StoredState>> {
        let pool = self.pool("load state").await?;
        let row = sqlx::query("SELECT state, consecutive_errors FROM group_state WHERE grp = ?")
            .bind(group)
            .fetch_optional(&pool)
            .await
            .map_err(db("load state"))?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("state").map_err(db("load state"))?;
        let errors: i64 = row
            .try_get("consecutive_errors")
            .map_err(db("load state"))?;
        let state = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            what: "state",
            group: group.to_string(),
            message: e.to_string(),
        })?;
        Ok(Some(StoredState {
            state,
            consecutive_errors: errors.clamp(0, u32::MAX as i64) as u32,
        }))
    }

    async fn save_state(
        &self,
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
    ) -> Result<()> {
        let pool = self.pool("save state").await?;
        let write = Write::State {
            group: group.to_string(),
            row: StateRow::of(group, state, decision)?,
            at,
        };
        self.batcher.submit(pool, write).await
    }

    async fn begin_activity(&self, a: &NewActivity<'_>) -> Result<bool> {
        let what = "write activity intent";
        let pool = self.pool(what).await?;
        let Some(fence) = a.fence else {
            let mut conn = pool.acquire().await.map_err(db(what))?;
            return insert_activity(&mut conn, a).await;
        };
        // BEGIN IMMEDIATE is what `begin` does not give: take the write lock before the
        // fence is read, so no lease change can come between the check and the insert.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        check_fence(&mut tx, a.group, fence).await?;
        let done = insert_activity(&mut tx, a).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(done)
    }

    async fn begin_activity_with_state(
        &self,
        a: &NewActivity<'_>,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
    ) -> Result<bool> {
        let what = "write activity intent and state";
        let pool = self.pool(what).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        if let Some(fence) = a.fence {
            check_fence(&mut tx, a.group, fence).await?;
        }
        if !insert_activity(&mut tx, a).await? {
            // Attempted already: the state that went with that attempt stays as it is.
            tx.rollback().await.map_err(db(what))?;
            return Ok(false);
        }
        upsert_state(&mut tx, a.group, state, decision, a.at).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(true)
    }

    async fn finish_activity(
        &self,
        key: &str,
        status: ActivityStatus,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()> {
        let pool = self.pool("finish activity").await?;
        sqlx::query("UPDATE activities SET status = ?, error = ?, finished_ms = ? WHERE key = ?")
            .bind(status.as_str())
            .bind(error)
            .bind(ms(at))
            .bind(key)
            .execute(&pool)
            .await
            .map_err(db("complete activity"))?;
        Ok(())
    }

    async fn pending_activities(&self, group: &str) -> Result<Vec<Activity>> {
        let pool = self.pool("pending activities").await?;
        let sql = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE grp = ? AND status = 'pending' ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
            .fetch_all(&pool)
            .await
            .map_err(db("list pending activities"))?;
        rows.iter()
            .map(activity)
            .collect::<std::result::Result<_, _>>()
            .map_err(db("read activity"))
    }

    async fn activities(&self, group: Option<&str>, limit: u32) -> Result<Vec<Activity>> {
        let pool = self.pool("activities").await?;
        let sql = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE (? IS NULL OR grp = ?) ORDER BY id DESC LIMIT ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
            .bind(group)
            .bind(limit as i64)
            .fetch_all(&pool)
            .await
            .map_err(db("list activities"))?;
        rows.iter()
            .map(activity)
            .collect::<std::result::Result<_, _>>()
            .map_err(db("read activity"))
    }

    async fn record_error(
        &self,
        group: Option<&str>,
        component: ErrorComponent,
        message: &str,
        at: Timestamp,
    ) -> Result<()> {
        let pool = self.pool("record error").await?;
        sqlx::query("INSERT INTO errors (grp, component, message, at_ms) VALUES (?, ?, ?, ?)")
            .bind(group)
            .bind(component.as_str())
            .bind(message)
            .bind(ms(at))
            .execute(&pool)
            .await
            .map_err(db("record error"))?;
        Ok(())
    }

    async fn errors(&self, group: Option<&str>, limit: u32) -> Result<Vec<ErrorRecord>> {
        let pool = self.pool("errors").await?;
        let sql = format!(
            "SELECT {ERROR_COLUMNS} FROM errors WHERE (? IS NULL OR grp = ?) ORDER BY id DESC LIMIT ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
            .bind(group)
            .bind(limit as i64)
            .fetch_all(&pool)
            .await
            .map_err(db("list errors"))?;
        rows.iter()
            .map(error_record)
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db("read error"))
    }

    async fn record_samples(
        &self,
        group: &str,
        at: Timestamp,
        metrics: &BTreeMap<String, f64>,
    ) -> Result<()> {
        let pool = self.pool("record samples").await?;
        let write = Write::Samples {
            group: group.to_string(),
            at,
            metrics: metrics.clone(),
        };
        self.batcher.submit(pool, write).await
    }

    async fn prune_samples(&self, before: Timestamp) -> Result<u64> {
        let pool = self.pool("prune samples").await?;
        let done = sqlx::query("DELETE FROM metric_samples WHERE at_ms < ?")
            .bind(ms(before))
            .execute(&pool)
            .await
            .map_err(db("prune samples"))?;
        Ok(done.rows_affected())
    }

    async fn samples(
        &self,
        group: &str,
        metric: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, f64)>> {
        let pool = self.pool("samples").await?;
        let rows = sqlx::query(
            "SELECT at_ms, value FROM metric_samples WHERE grp = ? AND metric = ? AND at_ms >= ? ORDER BY at_ms",
        )
        .bind(group)
        .bind(metric)
        .bind(ms(since))
        .fetch_all(&pool)
        .await
        .map_err(db("read samples"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let at: i64 = r.try_get("at_ms").map_err(db("read samples"))?;
            let value: f64 = r.try_get("value").map_err(db("read samples"))?;
            // A time outside jiff's range cannot come from the engine; skip rather than fail.
            if let Ok(at) = Timestamp::from_millisecond(at) {
                out.push((at, value));
            }
        }
        Ok(out)
    }

    async fn record_forecasts(&self, group: &str, forecasts: &[NewForecast]) -> Result<()> {
        let pool = self.pool("record forecasts").await?;
        let mut tx = pool.begin().await.map_err(db("record forecasts"))?;
        for f in forecasts {
            sqlx::query(
                "INSERT INTO forecasts (grp, metric, made_ms, serves_from_ms, due_ms, estimate, provision, seasonal, forecast_only)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(group)
            .bind(&f.metric)
            .bind(ms(f.made))
            .bind(ms(f.serves_from))
            .bind(ms(f.due))
            .bind(f.estimate)
            .bind(f.provision)
            .bind(i64::from(f.seasonal))
            .bind(i64::from(f.forecast_only))
            .execute(&mut *tx)
            .await
            .map_err(db("record forecasts"))?;
        }
        tx.commit().await.map_err(db("record forecasts"))?;
        Ok(())
    }

    async fn forecasts(
        &self,
        group: Option<&str>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ForecastRecord>> {
        let pool = self.pool("forecasts").await?;
        // The actual is looked up in metric_samples (indexed by group, metric, time) rather
        // than stored, so it needs no update pass and follows the samples' retention.
        let rows = sqlx::query(
            "SELECT grp, metric, made_ms, serves_from_ms, due_ms, estimate, provision, seasonal, forecast_only,
                    CASE WHEN due_ms <= ? THEN
                        (SELECT MAX(s.value) FROM metric_samples s
                         WHERE s.grp = f.grp AND s.metric = f.metric
                           AND s.at_ms >= f.serves_from_ms AND s.at_ms <= f.due_ms)
                    END AS actual
             FROM forecasts f WHERE (? IS NULL OR grp = ?)
             ORDER BY made_ms DESC, rowid DESC LIMIT ?",
        )
        .bind(ms(now))
        .bind(group)
        .bind(group)
        .bind(limit as i64)
        .fetch_all(&pool)
        .await
        .map_err(db("list forecasts"))?;
        rows.iter()
            .map(|r| {
                let seasonal: i64 = r.try_get("seasonal")?;
                let forecast_only: i64 = r.try_get("forecast_only")?;
                Ok(ForecastRecord {
                    group: r.try_get("grp")?,
                    metric: r.try_get("metric")?,
                    made_ms: r.try_get("made_ms")?,
                    serves_from_ms: r.try_get("serves_from_ms")?,
                    due_ms: r.try_get("due_ms")?,
                    estimate: r.try_get("estimate")?,
                    provision: r.try_get("provision")?,
                    seasonal: seasonal != 0,
                    forecast_only: forecast_only != 0,
                    actual: r.try_get("actual")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db("read forecast"))
    }

    async fn prune_forecasts(&self, before: Timestamp) -> Result<u64> {
        let pool = self.pool("prune forecasts").await?;
        let done = sqlx::query("DELETE FROM forecasts WHERE made_ms < ?")
            .bind(ms(before))
            .execute(&pool)
            .await
            .map_err(db("prune forecasts"))?;
        Ok(done.rows_affected())
    }

    async fn prune_history(&self, before: Timestamp) -> Result<u64> {
        let pool = self.pool("prune history").await?;
        let errors = sqlx::query("DELETE FROM errors WHERE at_ms < ?")
            .bind(ms(before))
            .execute(&pool)
            .await
            .map_err(db("prune errors"))?;
        let dry = sqlx::query("DELETE FROM activities WHERE status = 'dry_run' AND started_ms < ?")
            .bind(ms(before))
            .execute(&pool)
            .await
            .map_err(db("prune dry-run records"))?;
        Ok(errors.rows_affected() + dry.rows_affected())
    }

    async fn instances(&self, group: &str) -> Result<Vec<InstanceRecord>> {
        let pool = self.pool("instances").await?;
        let rows = sqlx::query(
            "SELECT host, port, pid, started_ms, marker FROM instances WHERE grp = ? ORDER BY started_ms, host, port",
        )
        .bind(group)
        .fetch_all(&pool)
        .await
        .map_err(db("list instances"))?;
        rows.iter()
            .map(|r| {
                let port: i64 = r.try_get("port")?;
                let pid: i64 = r.try_get("pid")?;
                Ok(InstanceRecord {
                    host: r.try_get("host")?,
                    port: port.clamp(0, u16::MAX as i64) as u16,
                    // pid 0 is the "starting" intent (no process has PID 0).
                    pid: Some(pid.clamp(0, i32::MAX as i64) as i32).filter(|&p| p > 0),
                    started_ms: r.try_get("started_ms")?,
                    marker: r.try_get("marker")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db("read instance"))
    }

    async fn put_instance(&self, group: &str, i: InstanceRecord) -> Result<()> {
        let pool = self.pool("put instance").await?;
        sqlx::query(
            "INSERT INTO instances (grp, host, port, pid, started_ms, marker) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (grp, host, port) DO UPDATE SET pid = excluded.pid,
                 started_ms = excluded.started_ms, marker = excluded.marker",
        )
        .bind(group)
        .bind(&i.host)
        .bind(i.port as i64)
        .bind(i64::from(i.pid.unwrap_or(0)))
        .bind(i.started_ms)
        .bind(&i.marker)
        .execute(&pool)
        .await
        .map_err(db("record instance"))?;
        Ok(())
    }

    async fn delete_instance(&self, group: &str, host: &str, port: u16) -> Result<()> {
        let pool = self.pool("delete instance").await?;
        sqlx::query("DELETE FROM instances WHERE grp = ? AND host = ? AND port = ?")
            .bind(group)
            .bind(host)
            .bind(port as i64)
            .execute(&pool)
            .await
            .map_err(db("forget instance"))?;
        Ok(())
    }

    async fn progress_since(&self, since: Timestamp) -> Result<Progress> {
        let pool = self.pool("progress").await?;
        let (groups, samples, activities): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM group_state WHERE updated_ms >= ?1),
                    (SELECT COUNT(*) FROM metric_samples WHERE at_ms >= ?1),
                    (SELECT COUNT(*) FROM activities WHERE started_ms >= ?1)",
        )
        .bind(ms(since))
        .fetch_one(&pool)
        .await
        .map_err(db("count progress"))?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Progress {
            groups: n(groups),
            samples: n(samples),
            activities: n(activities),
        })
    }

    async fn group_rows(&self) -> Result<Vec<GroupRow>> {
        let pool = self.pool("group rows").await?;
        let rows = sqlx::query(
            "SELECT name, spec, enabled, version, updated_ms FROM scaling_groups ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .map_err(db("list groups"))?;
        rows.iter()
            .map(|r| {
                let spec: String = r.try_get("spec")?;
                let enabled: i64 = r.try_get("enabled")?;
                Ok(GroupRow {
                    name: r.try_get("name")?,
                    spec: serde_json::from_str(&spec).unwrap_or(serde_json::Value::String(spec)),
                    enabled: enabled != 0,
                    version: r.try_get("version")?,
                    updated_ms: r.try_get("updated_ms")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db("read group row"))
    }

    async fn put_group_row(
        &self,
        name: &str,
        spec: &serde_json::Value,
        enabled: bool,
        at: Timestamp,
    ) -> Result<()> {
        let what = "store group";
        let pool = self.pool(what).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        let version = bump_group_version(&mut tx).await?;
        sqlx::query(
            "INSERT INTO scaling_groups (name, spec, enabled, version, updated_ms) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, enabled = excluded.enabled,
                 version = excluded.version, updated_ms = excluded.updated_ms",
        )
        .bind(name)
        .bind(spec.to_string())
        .bind(i64::from(enabled))
        .bind(version)
        .bind(ms(at))
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        tx.commit().await.map_err(db(what))?;
        Ok(())
    }

    async fn set_group_row_enabled(
        &self,
        name: &str,
        enabled: bool,
        at: Timestamp,
    ) -> Result<bool> {
        let what = "enable or disable group";
        let pool = self.pool(what).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        let version = bump_group_version(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE scaling_groups SET enabled = ?, version = ?, updated_ms = ? WHERE name = ?",
        )
        .bind(i64::from(enabled))
        .bind(version)
        .bind(ms(at))
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(db(what))?;
            return Ok(false);
        }
        tx.commit().await.map_err(db(what))?;
        Ok(true)
    }

    async fn delete_group_row(&self, name: &str) -> Result<bool> {
        let what = "delete group";
        let pool = self.pool(what).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        bump_group_version(&mut tx).await?;
        let done = sqlx::query("DELETE FROM scaling_groups WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(db(what))?;
            return Ok(false);
        }
        tx.commit().await.map_err(db(what))?;
        Ok(true)
    }

    async fn group_rows_version(&self) -> Result<i64> {
        let pool = self.pool("group rows version").await?;
        sqlx::query_scalar("SELECT version FROM scaling_groups_version WHERE id = 1")
            .fetch_one(&pool)
            .await
            .map_err(db("read group rows version"))
    }

    async fn heartbeat(&self, daemon: &str, ttl: Duration) -> Result<Vec<String>> {
        let what = "heartbeat";
        let pool = self.pool(what).await?;
        let now = now_ms();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        renew_session(&mut tx, daemon, now, ttl, true).await?;
        // Daemons gone long ago are forgotten, so the table does not grow with restarts.
        sqlx::query("DELETE FROM daemons WHERE expires_ms < ?")
            .bind(now.saturating_sub(86_400_000))
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        let live: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM daemons WHERE expires_ms > ? AND member ORDER BY id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what))?;
        tx.commit().await.map_err(db(what))?;
        Ok(live)
    }

    async fn leave(&self, daemon: &str) -> Result<()> {
        let what = "leave";
        let pool = self.pool(what).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        sqlx::query("DELETE FROM daemons WHERE id = ?")
            .bind(daemon)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        // Released, not deleted: the epoch must keep counting up.
        sqlx::query("UPDATE leases SET released = 1 WHERE holder = ? AND NOT released")
            .bind(daemon)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        tx.commit().await.map_err(db(what))?;
        Ok(())
    }

    async fn acquire_leases(
        &self,
        holder: &str,
        groups: &[String],
        ttl: Duration,
    ) -> Result<Vec<Lease>> {
        let what = "acquire leases";
        let pool = self.pool(what).await?;
        let now = now_ms();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        let expires_ms = renew_session(&mut tx, holder, now, ttl, false).await?;
        let mut names = groups.to_vec();
        names.sort_unstable();
        names.dedup();
        let mut granted = Vec::with_capacity(names.len());
        for group in &names {
            // Held by a live session (this holder's, renewed above, or another's): read only.
            let row: Option<(String, i64, bool, bool)> = sqlx::query_as(
                "SELECT l.holder, l.epoch, l.released, COALESCE(d.expires_ms > ?, 0)
                 FROM leases l LEFT JOIN daemons d ON d.id = l.holder WHERE l.grp = ?",
            )
            .bind(now)
            .bind(group)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(what))?;
            let epoch = match row {
                Some((h, epoch, false, true)) => {
                    if h == holder {
                        granted.push(Lease {
                            group: group.clone(),
                            holder: holder.to_string(),
                            epoch,
                            expires_ms,
                        });
                    }
                    continue;
                }
                // Free, released, or its holder's session expired: taken at the next epoch.
                Some((_, epoch, _, _)) => epoch + 1,
                None => 1,
            };
            sqlx::query(
                "INSERT INTO leases (grp, holder, epoch, released) VALUES (?, ?, ?, 0)
                 ON CONFLICT (grp) DO UPDATE SET
                     holder = excluded.holder, epoch = excluded.epoch, released = 0",
            )
            .bind(group)
            .bind(holder)
            .bind(epoch)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
            granted.push(Lease {
                group: group.clone(),
                holder: holder.to_string(),
                epoch,
                expires_ms,
            });
        }
        tx.commit().await.map_err(db(what))?;
        Ok(granted)
    }

    async fn release_leases(&self, holder: &str, groups: &[String]) -> Result<()> {
        let what = "release leases";
        let pool = self.pool(what).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        for group in groups {
            sqlx::query(
                "UPDATE leases SET released = 1 WHERE grp = ? AND holder = ? AND NOT released",
            )
            .bind(group)
            .bind(holder)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        }
        tx.commit().await.map_err(db(what))?;
        Ok(())
    }

    async fn leases(&self) -> Result<Vec<Lease>> {
        let pool = self.pool("leases").await?;
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT l.grp, l.holder, l.epoch,
                        CASE WHEN l.released THEN 0 ELSE COALESCE(d.expires_ms, 0) END
                 FROM leases l LEFT JOIN daemons d ON d.id = l.holder ORDER BY l.grp",
        )
        .fetch_all(&pool)
        .await
        .map_err(db("list leases"))?;
        Ok(rows
            .into_iter()
            .map(|(group, holder, epoch, expires_ms)| Lease {
                group,
                holder,
                epoch,
                expires_ms,
            })
            .collect())
    }

    async fn save_state_fenced(
        &self,
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
        fence: &Fence,
    ) -> Result<()> {
        let what = "save state under lease";
        let pool = self.pool(what).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        check_fence(&mut tx, group, fence).await?;
        upsert_state(&mut tx, group, state, decision, at).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(())
    }

    async fn budget_entries(&self) -> Result<(i64, Vec<BudgetEntry>)> {
        let pool = self.pool("read budget ledger").await?;
        super::sqlite_budget::entries(&pool).await
    }

    async fn put_budget_entry(
        &self,
        entry: &BudgetEntry,
        expected_version: i64,
        fence: Option<&Fence>,
    ) -> Result<bool> {
        let pool = self.pool("write budget entry").await?;
        super::sqlite_budget::put(&pool, entry, Some(expected_version), fence).await
    }

    async fn settle_budget_entry(&self, entry: &BudgetEntry, fence: Option<&Fence>) -> Result<()> {
        let pool = self.pool("write budget entry").await?;
        super::sqlite_budget::put(&pool, entry, None, fence).await?;
        Ok(())
    }

    async fn delete_budget_entry(&self, group: &str) -> Result<()> {
        let pool = self.pool("delete budget entry").await?;
        super::sqlite_budget::delete(&pool, group).await
    }
    async fn create_token(
        &self,
        name: &str,
        role: Role,
        hash: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let pool = self.pool("create token").await?;
        super::sqlite_api::create_token(&pool, name, role, hash, at).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let pool = self.pool("list tokens").await?;
        super::sqlite_api::tokens(&pool).await
    }

    async fn revoke_token(&self, name: &str, at: Timestamp) -> Result<bool> {
        let pool = self.pool("revoke token").await?;
        super::sqlite_api::revoke_token(&pool, name, at).await
    }

    async fn tokens_version(&self) -> Result<i64> {
        let pool = self.pool("read tokens version").await?;
        super::sqlite_api::tokens_version(&pool).await
    }

    async fn record_audit(&self, entry: &NewAudit<'_>) -> Result<i64> {
        let pool = self.pool("record audit").await?;
        super::sqlite_api::record_audit(&pool, entry).await
    }

    async fn audit(&self, q: &HistoryQuery<'_>) -> Result<Vec<AuditRecord>> {
        let pool = self.pool("list audit").await?;
        super::sqlite_api::audit(&pool, q).await
    }

    async fn activities_page(&self, q: &HistoryQuery<'_>) -> Result<Vec<Activity>> {
        let pool = self.pool("list activities").await?;
        super::sqlite_api::activities_page(&pool, q).await
    }

    async fn errors_page(&self, q: &HistoryQuery<'_>) -> Result<Vec<ErrorRecord>> {
        let pool = self.pool("list errors").await?;
        super::sqlite_api::errors_page(&pool, q).await
    }
}

/// Bump the change counter of `scaling_groups` (in the caller's transaction); the new value.
async fn bump_group_version(conn: &mut SqliteConnection) -> Result<i64> {
    sqlx::query_scalar(
        "UPDATE scaling_groups_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(conn)
    .await
    .map_err(db("bump group version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    /// The daemon and a `history` run opening a new store at the same moment both succeed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_of_a_new_store_both_migrate() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..20 {
            let file = dir.path().join(format!("s{i}.db"));
            let (a, b, c) = tokio::join!(
                SqliteStore::open(&file),
                SqliteStore::open(&file),
                SqliteStore::open(&file)
            );
            for s in [a, b, c] {
                let s = s.unwrap_or_else(|e| panic!("{e}"));
                assert!(s.forecasts(None, 1, t(0)).await.unwrap().is_empty());
            }
        }
    }

    /// A store file as an older release left it: the first `version` migrations only.
    async fn store_at_version(file: &Path, version: usize) -> sqlx::SqlitePool {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        let old = migrations().into_iter().take(version).collect();
        Migrator::with_migrations(old).run(&pool).await.unwrap();
        pool
    }

    /// A store written by a release without forecasts gets the table on open, data kept.
    #[tokio::test]
    async fn a_first_version_store_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        let pool = store_at_version(&file, 1).await;
        sqlx::query(
            "INSERT INTO metric_samples (grp, metric, at_ms, value) VALUES ('web', 'rps', ?, 4.0)",
        )
        .bind(ms(t(0)))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = SqliteStore::open(&file).await.unwrap();
        assert_eq!(
            store.samples("web", "rps", t(0)).await.unwrap(),
            vec![(t(0), 4.0)]
        );
        let f = NewForecast {
            metric: "rps".into(),
            made: t(0),
            serves_from: t(0),
            due: t(0),
            estimate: 3.0,
            provision: 3.5,
            seasonal: false,
            forecast_only: false,
        };
        store.record_forecasts("web", &[f]).await.unwrap();
        let rows = store.forecasts(None, 10, t(1)).await.unwrap();
        assert_eq!(rows[0].actual, Some(4.0));
    }

    /// Reopening runs no migration twice and keeps the data.
    #[tokio::test]
    async fn reopening_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        let store = SqliteStore::open(&file).await.unwrap();
        store
            .record_error(None, ErrorComponent::Config, "x", t(0))
            .await
            .unwrap();
        drop(store);
        let store = SqliteStore::open(&file).await.unwrap();
        assert_eq!(store.errors(None, 10).await.unwrap().len(), 1);
    }

    /// A read-only open never creates a file, and reads what a writer wrote (while it runs).
    #[tokio::test]
    async fn read_only_open_never_creates() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        let err = SqliteStore::open_read_only(&file).await.err().unwrap();
        assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        assert!(!file.exists());
        let writer = SqliteStore::open(&file).await.unwrap();
        writer
            .record_error(Some("web"), ErrorComponent::Source, "x", t(0))
            .await
            .unwrap();
        let reader = SqliteStore::open_read_only(&file).await.unwrap();
        assert_eq!(reader.errors(None, 10).await.unwrap().len(), 1);
        // Read-only indeed.
        assert!(
            reader
                .record_error(None, ErrorComponent::Config, "y", t(1))
                .await
                .is_err()
        );
        drop(writer);
        drop(reader);
        // After the writer closed (WAL files gone) too.
        let reader = SqliteStore::open_read_only(&file).await.unwrap();
        assert_eq!(reader.errors(None, 10).await.unwrap().len(), 1);
    }

    /// A store file deleted or replaced while open: the next operation fails (so the engine
    /// counts a failure), the store reopens the path, and what follows lands in the new file.
    #[tokio::test]
    async fn a_deleted_file_is_noticed_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        let store = SqliteStore::open(&file).await.unwrap();
        store
            .record_error(None, ErrorComponent::Config, "before", t(0))
            .await
            .unwrap();
        std::fs::remove_file(&file).unwrap();
        let err = store
            .record_error(None, ErrorComponent::Config, "lost", t(1))
            .await
            .expect_err("a write after the file was deleted must fail");
        assert!(matches!(err, StoreError::Replaced { .. }), "{err}");
        store
            .record_error(None, ErrorComponent::Config, "after", t(2))
            .await
            .unwrap();
        assert!(file.exists());
        let other = SqliteStore::open_read_only(&file).await.unwrap();
        let msgs: Vec<String> = other
            .errors(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(msgs, ["after"]);

        // Replaced by another file (a restored copy, say): the same.
        let copy = dir.path().join("copy.db");
        drop(other);
        std::fs::copy(&file, &copy).unwrap();
        std::fs::rename(&copy, &file).unwrap();
        assert!(matches!(
            store.errors(None, 10).await,
            Err(StoreError::Replaced { .. })
        ));
        assert_eq!(store.errors(None, 10).await.unwrap().len(), 1);
    }

    /// A store of the release before the API (migration 6) gets the API's tables on open;
    /// its errors are paged with their ids.
    #[tokio::test]
    async fn a_sixth_version_store_gets_the_api_tables() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        let pool = store_at_version(&file, 6).await;
        sqlx::query(
            "INSERT INTO errors (grp, component, message, at_ms) VALUES ('web', 'source', 'old', 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let store = SqliteStore::open(&file).await.unwrap();
        assert_eq!(store.tokens_version().await.unwrap(), 0);
        assert!(store.tokens().await.unwrap().is_empty());
        let q = crate::HistoryQuery {
            group: Some("web"),
            limit: 10,
            ..Default::default()
        };
        let errors = store.errors_page(&q).await.unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].id, errors[0].message.as_str()), (1, "old"));
        assert!(
            store
                .create_token("ci", crate::Role::Viewer, "h", t(0))
                .await
                .unwrap()
        );
        assert_eq!(store.tokens_version().await.unwrap(), 1);
    }

    /// Rows of a version-2 store read back after the upgrade: no owner, no marker, the
    /// statuses and components as stored strings.
    #[tokio::test]
    async fn a_second_version_store_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        let pool = store_at_version(&file, 2).await;
        sqlx::query("INSERT INTO activities (key, grp, started_ms, from_replicas, to_replicas, status, decision) VALUES ('k', 'web', 1, 1, 2, 'interrupted', '{}')")
            .execute(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO errors (grp, component, message, at_ms) VALUES ('web', 'alert', 'm', 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO instances (grp, host, port, pid, started_ms) VALUES ('web', '127.0.0.1', 9000, 77, 1)")
            .execute(&pool).await.unwrap();
        pool.close().await;
        let store = SqliteStore::open(&file).await.unwrap();
        let a = &store.activities(None, 1).await.unwrap()[0];
        assert_eq!(
            (a.status, a.owner.as_deref()),
            (ActivityStatus::Interrupted, None)
        );
        assert_eq!(
            store.errors(None, 1).await.unwrap()[0].component,
            ErrorComponent::Alert
        );
        let i = &store.instances("web").await.unwrap()[0];
        assert_eq!((i.pid, i.marker.as_deref()), (Some(77), None));
    }
}
