//! The SQLite store (the embedded default).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr};

use super::{
    Activity, ErrorRecord, InstanceRecord, NewActivity, Result, Store, StoreError, StoredState, ms,
};

fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

pub(crate) struct SqliteStore {
    pool: SqlitePool,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![Migration::new(
        1,
        "init".into(),
        MigrationType::Simple,
        AssertSqlSafe(include_str!("migrations/sqlite/0001_init.sql")).into_sql_str(),
        false,
    )])
}

impl SqliteStore {
    /// Open (creating if needed) and migrate the database at `path`.
    pub(crate) async fn open(path: &Path) -> Result<SqliteStore> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(db("parse the database path"))?
            .create_if_missing(true)
            // WAL + NORMAL survives a killed process (the case that matters here: a power
            // loss may lose the last transactions, never corrupt the file).
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(db("open the database"))?;
        migrator().run(&pool).await?;
        Ok(SqliteStore { pool })
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
