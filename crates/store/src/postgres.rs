//! The PostgreSQL store: the same meaning as the SQLite one (see `conformance`), for
//! deployments that keep their state in a shared database server.
//!
//! Times are Unix milliseconds (BIGINT) and JSON is TEXT, as in SQLite, so both backends read
//! alike. The connection URL may carry a password; it is never shown: every URL in an error,
//! log line or `Debug` output goes through [`redact`], and error texts from the driver are
//! scrubbed of the password before they are kept.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row, SqlSafeStr};

pub use scalepilot_core::config::url::redact;

use super::batch::{Batcher, Job, StateRow, Write};
use super::postgres_leases as leases;
use super::{
    Activity, ActivityStatus, AuditRecord, BudgetEntry, ErrorComponent, ErrorRecord, Fence,
    ForecastRecord, GroupRow, HistoryQuery, InstanceRecord, Lease, MigrationPlan, NewActivity,
    NewAudit, NewForecast, Progress, Result, Role, Store, StoreError, StoredState, TokenRecord, ms,
};

pub(crate) fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

/// How long an operation waits for a pooled connection (or a new one) before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=require…]`.
    pub url: String,
    /// The pool's size: connections open at most.
    pub max_connections: u32,
    /// Used when the URL has none (resolved by the caller: a password file, `PGPASSWORD`).
    pub password: Option<String>,
}

impl PgSettings {
    /// `url` with a pool of 8 connections and no separate password.
    pub fn new(url: impl Into<String>) -> PgSettings {
        PgSettings {
            url: url.into(),
            max_connections: 8,
            password: None,
        }
    }

    /// The URL as it may be shown (password replaced by `***`).
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// Every form of a secret that might appear in a text from the driver.
    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.password {
            out.push(p.clone());
        }
        if let Some(p) = url_password(&self.url) {
            out.push(percent_decode(&p));
            out.push(p);
        }
        for p in param_passwords(&self.url) {
            out.push(percent_decode(&p));
            out.push(p);
        }
        out.retain(|s| !s.is_empty());
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }

    /// `text` with every secret of these settings replaced by `***`.
    fn scrub(&self, text: &str) -> String {
        let mut text = redact(text);
        for s in self.secrets() {
            text = text.replace(&s, "***");
        }
        text
    }

    fn connect_error(&self, message: impl fmt::Display) -> StoreError {
        StoreError::Connect {
            target: self.redacted_url(),
            message: self.scrub(&message.to_string()),
        }
    }

    fn options(&self) -> Result<PgConnectOptions> {
        let mut options =
            PgConnectOptions::from_str(&self.url).map_err(|e| self.connect_error(e))?;
        if url_password(&self.url).is_none()
            && let Some(p) = &self.password
        {
            options = options.password(p);
        }
        Ok(options.application_name("scalepilot"))
    }

    async fn pool(&self, max_connections: u32) -> Result<PgPool> {
        install_crypto_provider();
        let options = self.options()?;
        // One connection first, for the server's own reason when it cannot be reached
        // (refused, authentication, TLS, no such database): the pool retries until its
        // timeout and then only says that it timed out.
        let first = PgConnection::connect_with(&options)
            .await
            .map_err(|e| self.connect_error(e))?;
        let _ = first.close().await;
        Ok(PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options))
    }
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The password written in a URL's user info (as written, percent-encoded).
fn url_password(url: &str) -> Option<String> {
    scalepilot_core::config::url::userinfo_password(url).map(str::to_string)
}

/// The values of `password=` parameters (as written).
fn param_passwords(url: &str) -> Vec<String> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.eq_ignore_ascii_case("password"))
        .map(|(_, v)| v.to_string())
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// TLS (`?sslmode=require`) needs a rustls crypto provider: install ring's unless the program
/// installed one already (losing that race is fine: some provider is installed either way).
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
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
            include_str!("../migrations/postgres/0001_init.sql"),
        ),
        migration(
            2,
            "groups_and_leases",
            include_str!("../migrations/postgres/0002_groups_and_leases.sql"),
        ),
        migration(
            3,
            "session_leases",
            include_str!("../migrations/postgres/0003_session_leases.sql"),
        ),
        migration(
            4,
            "budget_ledger",
            include_str!("../migrations/postgres/0004_budget_ledger.sql"),
        ),
        migration(
            5,
            "api",
            include_str!("../migrations/postgres/0005_api.sql"),
        ),
    ]
}

pub struct PostgresStore {
    pool: PgPool,
    /// HA coordination (heartbeats, taking and releasing leases) on connections of its
    /// own: a heartbeat never queues behind the evaluations' writes for a connection, or a
    /// busy daemon (starting 30,000 groups, say) would let its session lapse. Lazy: a
    /// daemon without HA never opens one.
    coord: PgPool,
    /// Group commit of the per-evaluation writes (see `batch`).
    batcher: Batcher<PgPool>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connect (a pool of `settings.max_connections`) and apply pending migrations.
    pub async fn connect(settings: PgSettings) -> Result<PostgresStore> {
        let pool = settings.pool(settings.max_connections).await?;
        if let Err(e) = Migrator::with_migrations(migrations()).run(&pool).await {
            pool.close().await;
            return Err(e.into());
        }
        let coord = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(settings.options()?);
        Ok(PostgresStore {
            pool,
            coord,
            batcher: Batcher::spawn(Box::new(flush)),
        })
    }

    /// Which migrations the database has and which [`connect`](Self::connect) would apply,
    /// without changing anything.
    pub async fn migration_plan(settings: &PgSettings) -> Result<MigrationPlan> {
        let pool = settings.pool(1).await?;
        let plan = async {
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(&pool)
                    .await
                    .map_err(db("read the applied migrations"))?;
            let applied: Vec<(i64, String)> = if exists {
                sqlx::query_as(
                    "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
                )
                .fetch_all(&pool)
                .await
                .map_err(db("read the applied migrations"))?
            } else {
                Vec::new()
            };
            Ok(MigrationPlan::new(&migrations(), applied))
        }
        .await;
        pool.close().await;
        plan
    }

    /// Apply pending migrations; the versions applied now (empty when none was pending).
    pub async fn migrate(settings: &PgSettings) -> Result<Vec<crate::MigrationStep>> {
        let before = Self::migration_plan(settings).await?;
        let store = Self::connect(settings.clone()).await?;
        store.pool.close().await;
        let after = Self::migration_plan(settings).await?;
        Ok(after
            .applied
            .into_iter()
            .filter(|m| !before.applied.iter().any(|b| b.version == m.version))
            .collect())
    }

    /// Close the pool's connections.
    pub async fn close(&self) {
        self.coord.close().await;
        self.pool.close().await;
    }
}

pub(crate) async fn upsert_state(
    conn: &mut PgConnection,
    group: &str,
    state: &StoredState,
    decision: Option<&serde_json::Value>,
    at: Timestamp,
) -> Result<()> {
    upsert_row(conn, group, &StateRow::of(group, state, decision)?, at).await
}

/// One `group_state` row; a `None` decision keeps the stored one.
async fn upsert_row(
    conn: &mut PgConnection,
    group: &str,
    row: &StateRow,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO group_state (grp, state, last_decision, consecutive_errors, updated_ms) VALUES ($1, $2, $3, $4, $5)
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

/// All of a group's samples of one evaluation in one statement.
async fn insert_samples(
    conn: &mut PgConnection,
    group: &str,
    at: Timestamp,
    metrics: &BTreeMap<String, f64>,
) -> Result<()> {
    let names: Vec<&str> = metrics.keys().map(String::as_str).collect();
    let values: Vec<f64> = metrics.values().copied().collect();
    sqlx::query(
        "INSERT INTO metric_samples (grp, metric, at_ms, value)
         SELECT $1, m, $3, v FROM unnest($2::text[], $4::float8[]) AS t(m, v)",
    )
    .bind(group)
    .bind(&names)
    .bind(ms(at))
    .bind(&values)
    .execute(conn)
    .await
    .map_err(db("record samples"))?;
    Ok(())
}

/// A group's config snapshot.
async fn upsert_config(
    conn: &mut PgConnection,
    group: &str,
    config: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO groups (name, config, updated_ms) VALUES ($1, $2, $3)
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
async fn apply(conn: &mut PgConnection, w: &Write) -> Result<()> {
    match w {
        Write::State { group, row, at } => upsert_row(conn, group, row, *at).await,
        Write::Samples { group, at, metrics } => insert_samples(conn, group, *at, metrics).await,
        Write::Config { group, config, at } => upsert_config(conn, group, config, *at).await,
    }
}

/// A batch in at most three statements, whatever its size: every config snapshot in one
/// upsert, every state in one upsert and every sample in one insert, from arrays (`unnest`). Each statement is a round trip to the server, so
/// statement by statement a single writer managed about 1,000 writes a second.
async fn apply_all(conn: &mut PgConnection, jobs: &[Job<PgPool>]) -> Result<()> {
    // A group's later state wins (a group waits for its write, so it is rarely here twice;
    // one upsert cannot touch a row twice).
    let mut states: BTreeMap<&str, (&StateRow, i64)> = BTreeMap::new();
    let mut configs: BTreeMap<&str, (&str, i64)> = BTreeMap::new();
    let (mut grp, mut metric, mut at, mut value) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for j in jobs {
        match &j.write {
            Write::State {
                group,
                row,
                at: when,
            } => {
                states.insert(group, (row, ms(*when)));
            }
            Write::Samples {
                group,
                at: when,
                metrics,
            } => {
                for (name, v) in metrics {
                    grp.push(group.as_str());
                    metric.push(name.as_str());
                    at.push(ms(*when));
                    value.push(*v);
                }
            }
            Write::Config {
                group,
                config,
                at: when,
            } => {
                configs.insert(group, (config.as_str(), ms(*when)));
            }
        }
    }
    if !configs.is_empty() {
        let names: Vec<&str> = configs.keys().copied().collect();
        let (texts, updated): (Vec<&str>, Vec<i64>) = configs.into_values().unzip();
        sqlx::query(
            "INSERT INTO groups (name, config, updated_ms)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
             ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_ms = excluded.updated_ms",
        )
        .bind(&names)
        .bind(&texts)
        .bind(&updated)
        .execute(&mut *conn)
        .await
        .map_err(db("save group configs"))?;
    }
    if !states.is_empty() {
        let names: Vec<&str> = states.keys().copied().collect();
        let mut texts = Vec::with_capacity(names.len());
        let mut decisions = Vec::with_capacity(names.len());
        let mut errors = Vec::with_capacity(names.len());
        let mut updated = Vec::with_capacity(names.len());
        for (row, u) in states.into_values() {
            texts.push(row.text.as_str());
            decisions.push(row.decision.as_deref());
            errors.push(row.consecutive_errors);
            updated.push(u);
        }
        sqlx::query(
            "INSERT INTO group_state (grp, state, last_decision, consecutive_errors, updated_ms)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
             ON CONFLICT (grp) DO UPDATE SET state = excluded.state,
                 last_decision = COALESCE(excluded.last_decision, group_state.last_decision),
                 consecutive_errors = excluded.consecutive_errors, updated_ms = excluded.updated_ms",
        )
        .bind(&names)
        .bind(&texts)
        .bind(&decisions)
        .bind(&errors)
        .bind(&updated)
        .execute(&mut *conn)
        .await
        .map_err(db("save states"))?;
    }
    if !grp.is_empty() {
        sqlx::query(
            "INSERT INTO metric_samples (grp, metric, at_ms, value)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[])",
        )
        .bind(&grp)
        .bind(&metric)
        .bind(&at)
        .bind(&value)
        .execute(&mut *conn)
        .await
        .map_err(db("record samples"))?;
    }
    Ok(())
}

super::batch::flush_fn!(PgPool);

async fn insert_activity(conn: &mut PgConnection, a: &NewActivity<'_>) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO activities (key, grp, started_ms, from_replicas, to_replicas, status, decision, owner)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING",
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

pub(crate) fn activity(row: &PgRow) -> std::result::Result<Activity, sqlx::Error> {
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

pub(crate) fn error_record(r: &PgRow) -> std::result::Result<ErrorRecord, sqlx::Error> {
    Ok(ErrorRecord {
        id: r.try_get("id")?,
        group: r.try_get("grp")?,
        component: decode(&r.try_get::<String, _>("component")?)?,
        message: r.try_get("message")?,
        at_ms: r.try_get("at_ms")?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn save_group_config(
        &self,
        group: &str,
        config: &serde_json::Value,
        at: Timestamp,
    ) -> Result<()> {
        let pool = self.pool.clone();
        let write = Write::Config {
            group: group.to_string(),
            config: config.to_string(),
            at,
        };
        self.batcher.submit(pool, write).await
    }

    async fn load_state(&self, group: &str) -> Result<Option<StoredState>> {
        let row = sqlx::query("SELECT state, consecutive_errors FROM group_state WHERE grp = $1")
            .bind(group)
            .fetch_optional(&self.pool)
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
        let write = Write::State {
            group: group.to_string(),
            row: StateRow::of(group, state, decision)?,
            at,
        };
        self.batcher.submit(self.pool.clone(), write).await
    }

    async fn begin_activity(&self, a: &NewActivity<'_>) -> Result<bool> {
        let what = "write activity intent";
        let Some(fence) = a.fence else {
            let mut conn = self.pool.acquire().await.map_err(db(what))?;
            return insert_activity(&mut conn, a).await;
        };
        let mut tx = self.pool.begin().await.map_err(db(what))?;
        leases::check_fence(&mut tx, a.group, fence).await?;
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
        let mut tx = self.pool.begin().await.map_err(db(what))?;
        if let Some(fence) = a.fence {
            leases::check_fence(&mut tx, a.group, fence).await?;
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
        sqlx::query(
            "UPDATE activities SET status = $1, error = $2, finished_ms = $3 WHERE key = $4",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(ms(at))
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db("complete activity"))?;
        Ok(())
    }

    async fn pending_activities(&self, group: &str) -> Result<Vec<Activity>> {
        let sql = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE grp = $1 AND status = 'pending' ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
            .fetch_all(&self.pool)
            .await
            .map_err(db("list pending activities"))?;
        rows.iter()
            .map(activity)
            .collect::<std::result::Result<_, _>>()
            .map_err(db("read activity"))
    }

    async fn activities(&self, group: Option<&str>, limit: u32) -> Result<Vec<Activity>> {
        let sql = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE ($1::text IS NULL OR grp = $1) ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
            .bind(limit as i64)
            .fetch_all(&self.pool)
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
        sqlx::query("INSERT INTO errors (grp, component, message, at_ms) VALUES ($1, $2, $3, $4)")
            .bind(group)
            .bind(component.as_str())
            .bind(message)
            .bind(ms(at))
            .execute(&self.pool)
            .await
            .map_err(db("record error"))?;
        Ok(())
    }

    async fn errors(&self, group: Option<&str>, limit: u32) -> Result<Vec<ErrorRecord>> {
        let sql = format!(
            "SELECT {ERROR_COLUMNS} FROM errors
             WHERE ($1::text IS NULL OR grp = $1) ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
            .bind(limit as i64)
            .fetch_all(&self.pool)
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
        let write = Write::Samples {
            group: group.to_string(),
            at,
            metrics: metrics.clone(),
        };
        self.batcher.submit(self.pool.clone(), write).await
    }

    async fn samples(
        &self,
        group: &str,
        metric: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, f64)>> {
        let rows = sqlx::query(
            "SELECT at_ms, value FROM metric_samples WHERE grp = $1 AND metric = $2 AND at_ms >= $3 ORDER BY at_ms",
        )
        .bind(group)
        .bind(metric)
        .bind(ms(since))
        .fetch_all(&self.pool)
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

    async fn prune_samples(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM metric_samples WHERE at_ms < $1")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(db("prune samples"))?;
        Ok(done.rows_affected())
    }

    async fn record_forecasts(&self, group: &str, forecasts: &[NewForecast]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db("record forecasts"))?;
        for f in forecasts {
            sqlx::query(
                "INSERT INTO forecasts (grp, metric, made_ms, serves_from_ms, due_ms, estimate, provision, seasonal, forecast_only)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(group)
            .bind(&f.metric)
            .bind(ms(f.made))
            .bind(ms(f.serves_from))
            .bind(ms(f.due))
            .bind(f.estimate)
            .bind(f.provision)
            .bind(f.seasonal)
            .bind(f.forecast_only)
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
        // As in SQLite: the actual is looked up in metric_samples (by group, metric, time).
        let rows = sqlx::query(
            "SELECT grp, metric, made_ms, serves_from_ms, due_ms, estimate, provision, seasonal, forecast_only,
                    CASE WHEN due_ms <= $1 THEN
                        (SELECT MAX(s.value) FROM metric_samples s
                         WHERE s.grp = f.grp AND s.metric = f.metric
                           AND s.at_ms >= f.serves_from_ms AND s.at_ms <= f.due_ms)
                    END AS actual
             FROM forecasts f WHERE ($2::text IS NULL OR grp = $2)
             ORDER BY made_ms DESC, id DESC LIMIT $3",
        )
        .bind(ms(now))
        .bind(group)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list forecasts"))?;
        rows.iter()
            .map(|r| {
                Ok(ForecastRecord {
                    group: r.try_get("grp")?,
                    metric: r.try_get("metric")?,
                    made_ms: r.try_get("made_ms")?,
                    serves_from_ms: r.try_get("serves_from_ms")?,
                    due_ms: r.try_get("due_ms")?,
                    estimate: r.try_get("estimate")?,
                    provision: r.try_get("provision")?,
                    seasonal: r.try_get("seasonal")?,
                    forecast_only: r.try_get("forecast_only")?,
                    actual: r.try_get("actual")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db("read forecast"))
    }

    async fn prune_forecasts(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM forecasts WHERE made_ms < $1")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(db("prune forecasts"))?;
        Ok(done.rows_affected())
    }

    async fn prune_history(&self, before: Timestamp) -> Result<u64> {
        let errors = sqlx::query("DELETE FROM errors WHERE at_ms < $1")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(db("prune errors"))?;
        let dry =
            sqlx::query("DELETE FROM activities WHERE status = 'dry_run' AND started_ms < $1")
                .bind(ms(before))
                .execute(&self.pool)
                .await
                .map_err(db("prune dry-run records"))?;
        Ok(errors.rows_affected() + dry.rows_affected())
    }

    async fn instances(&self, group: &str) -> Result<Vec<InstanceRecord>> {
        let rows = sqlx::query(
            "SELECT host, port, pid, started_ms, marker FROM instances WHERE grp = $1 ORDER BY started_ms, host, port",
        )
        .bind(group)
        .fetch_all(&self.pool)
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
        sqlx::query(
            "INSERT INTO instances (grp, host, port, pid, started_ms, marker) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (grp, host, port) DO UPDATE SET pid = excluded.pid,
                 started_ms = excluded.started_ms, marker = excluded.marker",
        )
        .bind(group)
        .bind(&i.host)
        .bind(i.port as i64)
        .bind(i64::from(i.pid.unwrap_or(0)))
        .bind(i.started_ms)
        .bind(&i.marker)
        .execute(&self.pool)
        .await
        .map_err(db("record instance"))?;
        Ok(())
    }

    async fn delete_instance(&self, group: &str, host: &str, port: u16) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE grp = $1 AND host = $2 AND port = $3")
            .bind(group)
            .bind(host)
            .bind(port as i64)
            .execute(&self.pool)
            .await
            .map_err(db("forget instance"))?;
        Ok(())
    }

    async fn progress_since(&self, since: Timestamp) -> Result<Progress> {
        leases::progress_since(&self.pool, since).await
    }

    async fn group_rows(&self) -> Result<Vec<GroupRow>> {
        leases::group_rows(&self.pool).await
    }

    async fn put_group_row(
        &self,
        name: &str,
        spec: &serde_json::Value,
        enabled: bool,
        at: Timestamp,
    ) -> Result<()> {
        leases::put_group_row(&self.pool, name, spec, enabled, at).await
    }

    async fn set_group_row_enabled(
        &self,
        name: &str,
        enabled: bool,
        at: Timestamp,
    ) -> Result<bool> {
        leases::set_group_row_enabled(&self.pool, name, enabled, at).await
    }

    async fn delete_group_row(&self, name: &str) -> Result<bool> {
        leases::delete_group_row(&self.pool, name).await
    }

    async fn group_rows_version(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT version FROM scaling_groups_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db("read group rows version"))
    }

    async fn heartbeat(&self, daemon: &str, ttl: Duration) -> Result<Vec<String>> {
        leases::heartbeat(&self.coord, daemon, ttl).await
    }

    async fn leave(&self, daemon: &str) -> Result<()> {
        leases::leave(&self.coord, daemon).await
    }

    async fn acquire_leases(
        &self,
        holder: &str,
        groups: &[String],
        ttl: Duration,
    ) -> Result<Vec<Lease>> {
        leases::acquire(&self.coord, holder, groups, ttl).await
    }

    async fn release_leases(&self, holder: &str, groups: &[String]) -> Result<()> {
        leases::release(&self.coord, holder, groups).await
    }

    async fn leases(&self) -> Result<Vec<Lease>> {
        leases::all(&self.coord).await
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
        let mut tx = self.pool.begin().await.map_err(db(what))?;
        leases::check_fence(&mut tx, group, fence).await?;
        upsert_state(&mut tx, group, state, decision, at).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(())
    }

    async fn budget_entries(&self) -> Result<(i64, Vec<BudgetEntry>)> {
        super::postgres_budget::entries(&self.pool).await
    }

    async fn put_budget_entry(
        &self,
        entry: &BudgetEntry,
        expected_version: i64,
        fence: Option<&Fence>,
    ) -> Result<bool> {
        super::postgres_budget::put(&self.pool, entry, Some(expected_version), fence).await
    }

    async fn settle_budget_entry(&self, entry: &BudgetEntry, fence: Option<&Fence>) -> Result<()> {
        super::postgres_budget::put(&self.pool, entry, None, fence).await?;
        Ok(())
    }

    async fn delete_budget_entry(&self, group: &str) -> Result<()> {
        super::postgres_budget::delete(&self.pool, group).await
    }
    async fn create_token(
        &self,
        name: &str,
        role: Role,
        hash: &str,
        at: Timestamp,
    ) -> Result<bool> {
        super::postgres_api::create_token(&self.pool, name, role, hash, at).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        super::postgres_api::tokens(&self.pool).await
    }

    async fn revoke_token(&self, name: &str, at: Timestamp) -> Result<bool> {
        super::postgres_api::revoke_token(&self.pool, name, at).await
    }

    async fn tokens_version(&self) -> Result<i64> {
        super::postgres_api::tokens_version(&self.pool).await
    }

    async fn record_audit(&self, entry: &NewAudit<'_>) -> Result<i64> {
        super::postgres_api::record_audit(&self.pool, entry).await
    }

    async fn audit(&self, q: &HistoryQuery<'_>) -> Result<Vec<AuditRecord>> {
        super::postgres_api::audit(&self.pool, q).await
    }

    async fn activities_page(&self, q: &HistoryQuery<'_>) -> Result<Vec<Activity>> {
        super::postgres_api::activities_page(&self.pool, q).await
    }

    async fn errors_page(&self, q: &HistoryQuery<'_>) -> Result<Vec<ErrorRecord>> {
        super::postgres_api::errors_page(&self.pool, q).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("postgres://sp:s3cret@db.example:5432/sp"),
            "postgres://sp:***@db.example:5432/sp"
        );
        assert_eq!(
            redact("postgresql://sp:p%40ss@db/sp?sslmode=require"),
            "postgresql://sp:***@db/sp?sslmode=require"
        );
        assert_eq!(
            redact("postgres://sp@db/sp?sslmode=require&password=hunter2&x=1"),
            "postgres://sp@db/sp?sslmode=require&password=***&x=1"
        );
        assert_eq!(
            redact("postgres://sp@db/sp?PASSWORD=hunter2"),
            "postgres://sp@db/sp?PASSWORD=***"
        );
        assert_eq!(
            redact("host=db user=sp password=hunter2 dbname=sp"),
            "host=db user=sp password=*** dbname=sp"
        );
        // Nothing to hide.
        assert_eq!(
            redact("postgres://sp@db:5432/sp"),
            "postgres://sp@db:5432/sp"
        );
        assert_eq!(redact("postgres://db/sp"), "postgres://db/sp");
        // An '@' in the path is not user info.
        assert_eq!(redact("postgres://db/a:b@c"), "postgres://db/a:b@c");
    }

    #[test]
    fn settings_debug_and_scrub_hide_passwords() {
        let s = PgSettings {
            url: "postgres://sp:urlpw@db/sp?password=parampw".into(),
            max_connections: 3,
            password: Some("filepw".into()),
        };
        let debug = format!("{s:?}");
        for secret in ["urlpw", "parampw", "filepw"] {
            assert!(!debug.contains(secret), "{debug}");
            assert!(!s.scrub(&format!("x {secret} y")).contains(secret));
        }
        assert!(debug.contains("max_connections: 3"), "{debug}");
        assert_eq!(percent_decode("p%40ss%2"), "p@ss%2");
    }
}
