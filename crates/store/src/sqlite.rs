//! The SQLite store (the embedded default).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr};

use super::{
    Activity, ErrorRecord, ForecastRecord, InstanceRecord, NewActivity, NewForecast, Result, Store,
    StoreError, StoredState, ms,
};

fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

/// Opens tried before an error is believed (see `SqliteStore::open`).
const OPEN_ATTEMPTS: u64 = 10;

pub struct SqliteStore {
    pool: SqlitePool,
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
    ]
}

fn migrator() -> Migrator {
    Migrator::with_migrations(migrations())
}

impl SqliteStore {
    /// Open (creating if needed) and migrate the database at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(db("parse the database path"))?
            .create_if_missing(true)
            // WAL + NORMAL survives a killed process (the case that matters here: a power
            // loss may lose the last transactions, never corrupt the file).
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
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

    async fn connect(options: SqliteConnectOptions) -> Result<SqliteStore> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(db("open the database"))?;
        if let Err(e) = migrator().run(&pool).await {
            pool.close().await;
            return Err(e.into());
        }
        Ok(SqliteStore { pool })
    }
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

fn activity(row: &SqliteRow) -> std::result::Result<Activity, sqlx::Error> {
    let decision: String = row.try_get("decision")?;
    Ok(Activity {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        group: row.try_get("grp")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        from_replicas: row.try_get("from_replicas")?,
        to_replicas: row.try_get("to_replicas")?,
        status: row.try_get("status")?,
        error: row.try_get("error")?,
        decision: serde_json::from_str(&decision).unwrap_or(serde_json::Value::String(decision)),
    })
}

const ACTIVITY_COLUMNS: &str =
    "id, key, grp, started_ms, finished_ms, from_replicas, to_replicas, status, error, decision";

#[async_trait]
impl Store for SqliteStore {
    async fn save_group_config(
        &self,
        group: &str,
        config: &serde_json::Value,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO groups (name, config, updated_ms) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_ms = excluded.updated_ms",
        )
        .bind(group)
        .bind(config.to_string())
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .map_err(db("save group config"))?;
        Ok(())
    }

    async fn load_state(&self, group: &str) -> Result<Option<StoredState>> {
        let row = sqlx::query("SELECT state, consecutive_errors FROM group_state WHERE grp = ?")
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
        let text = serde_json::to_string(&state.state).map_err(|e| StoreError::Corrupt {
            what: "state",
            group: group.to_string(),
            message: e.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO group_state (grp, state, last_decision, consecutive_errors, updated_ms) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (grp) DO UPDATE SET state = excluded.state,
                 last_decision = COALESCE(excluded.last_decision, group_state.last_decision),
                 consecutive_errors = excluded.consecutive_errors, updated_ms = excluded.updated_ms",
        )
        .bind(group)
        .bind(text)
        .bind(decision.map(|d| d.to_string()))
        .bind(state.consecutive_errors as i64)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .map_err(db("save state"))?;
        Ok(())
    }

    async fn begin_activity(&self, a: &NewActivity<'_>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO activities (key, grp, started_ms, from_replicas, to_replicas, status, decision)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(a.key)
        .bind(a.group)
        .bind(ms(a.at))
        .bind(a.from as i64)
        .bind(a.to as i64)
        .bind(a.status)
        .bind(a.decision.to_string())
        .execute(&self.pool)
        .await
        .map_err(db("write activity intent"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_activity(
        &self,
        key: &str,
        status: &str,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE activities SET status = ?, error = ?, finished_ms = ? WHERE key = ?")
            .bind(status)
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
            "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE grp = ? AND status = 'pending' ORDER BY id"
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
            "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE (? IS NULL OR grp = ?) ORDER BY id DESC LIMIT ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
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
        component: &str,
        message: &str,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query("INSERT INTO errors (grp, component, message, at_ms) VALUES (?, ?, ?, ?)")
            .bind(group)
            .bind(component)
            .bind(message)
            .bind(ms(at))
            .execute(&self.pool)
            .await
            .map_err(db("record error"))?;
        Ok(())
    }

    async fn errors(&self, group: Option<&str>, limit: u32) -> Result<Vec<ErrorRecord>> {
        let rows = sqlx::query("SELECT grp, component, message, at_ms FROM errors WHERE (? IS NULL OR grp = ?) ORDER BY id DESC LIMIT ?")
            .bind(group)
            .bind(group)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db("list errors"))?;
        rows.iter()
            .map(|r| {
                Ok(ErrorRecord {
                    group: r.try_get("grp")?,
                    component: r.try_get("component")?,
                    message: r.try_get("message")?,
                    at_ms: r.try_get("at_ms")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db("read error"))
    }

    async fn record_samples(
        &self,
        group: &str,
        at: Timestamp,
        metrics: &BTreeMap<String, f64>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db("record samples"))?;
        for (name, value) in metrics {
            sqlx::query(
                "INSERT INTO metric_samples (grp, metric, at_ms, value) VALUES (?, ?, ?, ?)",
            )
            .bind(group)
            .bind(name)
            .bind(ms(at))
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(db("record samples"))?;
        }
        tx.commit().await.map_err(db("record samples"))?;
        Ok(())
    }

    async fn prune_samples(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM metric_samples WHERE at_ms < ?")
            .bind(ms(before))
            .execute(&self.pool)
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
        let rows = sqlx::query(
            "SELECT at_ms, value FROM metric_samples WHERE grp = ? AND metric = ? AND at_ms >= ? ORDER BY at_ms",
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

    async fn record_forecasts(&self, group: &str, forecasts: &[NewForecast]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db("record forecasts"))?;
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
        .fetch_all(&self.pool)
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
        let done = sqlx::query("DELETE FROM forecasts WHERE made_ms < ?")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(db("prune forecasts"))?;
        Ok(done.rows_affected())
    }

    async fn prune_history(&self, before: Timestamp) -> Result<u64> {
        let errors = sqlx::query("DELETE FROM errors WHERE at_ms < ?")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(db("prune errors"))?;
        let dry = sqlx::query("DELETE FROM activities WHERE status = 'dry_run' AND started_ms < ?")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(db("prune dry-run records"))?;
        Ok(errors.rows_affected() + dry.rows_affected())
    }

    async fn instances(&self, group: &str) -> Result<Vec<InstanceRecord>> {
        let rows = sqlx::query(
            "SELECT host, port, pid, started_ms FROM instances WHERE grp = ? ORDER BY started_ms, host, port",
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
                    pid: pid.clamp(0, i32::MAX as i64) as i32,
                    started_ms: r.try_get("started_ms")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db("read instance"))
    }

    async fn put_instance(&self, group: &str, i: InstanceRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (grp, host, port, pid, started_ms) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (grp, host, port) DO UPDATE SET pid = excluded.pid, started_ms = excluded.started_ms",
        )
        .bind(group)
        .bind(&i.host)
        .bind(i.port as i64)
        .bind(i.pid as i64)
        .bind(i.started_ms)
        .execute(&self.pool)
        .await
        .map_err(db("record instance"))?;
        Ok(())
    }

    async fn delete_instance(&self, group: &str, host: &str, port: u16) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE grp = ? AND host = ? AND port = ?")
            .bind(group)
            .bind(host)
            .bind(port as i64)
            .execute(&self.pool)
            .await
            .map_err(db("forget instance"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[tokio::test]
    async fn activities_are_idempotent_and_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let d = serde_json::json!({"desired_replicas": 5});
        let a = NewActivity {
            key: "web:5:100",
            group: "web",
            from: 3,
            to: 5,
            status: "pending",
            decision: &d,
            at: t(0),
        };
        assert!(store.begin_activity(&a).await.unwrap());
        let again = NewActivity { at: t(1), ..a };
        assert!(!store.begin_activity(&again).await.unwrap());
        assert_eq!(store.pending_activities("web").await.unwrap().len(), 1);
        store
            .finish_activity("web:5:100", "succeeded", None, t(2))
            .await
            .unwrap();
        assert!(store.pending_activities("web").await.unwrap().is_empty());
        let all = store.activities(Some("web"), 10).await.unwrap();
        assert_eq!(
            (all[0].status.as_str(), all[0].to_replicas),
            ("succeeded", 5)
        );
        assert_eq!(all[0].decision, d);

        let mut st = StoredState::default();
        st.state.consecutive_failures = 2;
        st.consecutive_errors = 4;
        store.save_state("web", &st, Some(&d), t(3)).await.unwrap();
        let back = store.load_state("web").await.unwrap().unwrap();
        assert_eq!(back.state, st.state);
        assert_eq!(back.consecutive_errors, 4);
        assert!(store.load_state("api").await.unwrap().is_none());

        // Reopening runs no migration twice and keeps the data.
        drop(store);
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        assert_eq!(store.activities(None, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn forecasts_meet_their_actuals_and_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let sample = |v: f64| -> BTreeMap<String, f64> { [("rps".to_string(), v)].into() };
        // Samples of rps every 10 s; another metric and group must not leak in.
        for (s, v) in [(0, 10.0), (10, 30.0), (20, 25.0), (30, 50.0), (40, 5.0)] {
            store.record_samples("web", t(s), &sample(v)).await.unwrap();
        }
        let other: BTreeMap<String, f64> = [("cpu".to_string(), 99.0)].into();
        store.record_samples("web", t(15), &other).await.unwrap();
        store
            .record_samples("api", t(15), &sample(99.0))
            .await
            .unwrap();

        let f = |made: i64, due: i64, estimate: f64| NewForecast {
            metric: "rps".into(),
            made: t(made),
            serves_from: t(made + 10),
            due: t(due),
            estimate,
            provision: estimate * 1.2,
            seasonal: made > 0,
            forecast_only: true,
        };
        store
            .record_forecasts("web", &[f(0, 20, 20.0), f(20, 40, 60.0), f(40, 200, 7.0)])
            .await
            .unwrap();
        let rows = store.forecasts(Some("web"), 10, t(100)).await.unwrap();
        assert_eq!(rows.len(), 3);
        // Newest first; the last one's horizon has not ended at t(100): no actual yet.
        assert_eq!(
            rows.iter().map(|r| r.actual).collect::<Vec<_>>(),
            vec![None, Some(50.0), Some(30.0)]
        );
        assert_eq!(rows[1].estimate, 60.0);
        assert!(rows[1].seasonal && !rows[2].seasonal && rows[0].forecast_only);
        assert_eq!(rows[2].serves_from_ms, ms(t(10)));
        assert!(
            store
                .forecasts(Some("api"), 10, t(100))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.forecasts(None, 2, t(100)).await.unwrap().len(), 2);

        // Samples for the replay: one metric, oldest first, from `since` on.
        let got = store.samples("web", "rps", t(10)).await.unwrap();
        assert_eq!(
            got,
            vec![(t(10), 30.0), (t(20), 25.0), (t(30), 50.0), (t(40), 5.0)]
        );

        assert_eq!(store.prune_forecasts(t(20)).await.unwrap(), 1);
        assert_eq!(store.forecasts(None, 10, t(100)).await.unwrap().len(), 2);
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

    /// A store written by a release without forecasts gets the table on open, data kept.
    #[tokio::test]
    async fn a_first_version_store_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        let first = migrations().into_iter().take(1).collect();
        Migrator::with_migrations(first).run(&pool).await.unwrap();
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

    #[tokio::test]
    async fn samples_errors_and_instances() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let m: BTreeMap<String, f64> = [("cpu".to_string(), 50.0)].into();
        store.record_samples("web", t(0), &m).await.unwrap();
        store.record_samples("web", t(100), &m).await.unwrap();
        assert_eq!(store.prune_samples(t(50)).await.unwrap(), 1);
        store
            .record_error(Some("web"), "source", "timeout", t(1))
            .await
            .unwrap();
        assert_eq!(
            store.errors(Some("web"), 5).await.unwrap()[0].message,
            "timeout"
        );
        let i = InstanceRecord {
            host: "127.0.0.2".into(),
            port: 20001,
            pid: 42,
            started_ms: 7,
        };
        store.put_instance("web", i.clone()).await.unwrap();
        assert_eq!(store.instances("web").await.unwrap(), vec![i]);
        store
            .delete_instance("web", "127.0.0.2", 20001)
            .await
            .unwrap();
        assert!(store.instances("web").await.unwrap().is_empty());
    }
}
