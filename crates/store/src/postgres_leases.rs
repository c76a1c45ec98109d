//! The PostgreSQL store's coordination queries: groups kept in the database, daemon
//! heartbeats, per-group leases and the fence check. Lease times come from the server's
//! clock (`now()`, fixed for a transaction), so daemons need no synchronized clocks.

use std::time::Duration;

use jiff::Timestamp;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Postgres, Row, Transaction};

use super::postgres::db;
use super::{Fence, GroupRow, Lease, Progress, Result, StoreError, ms};

/// The server's time in Unix milliseconds, as SQL.
const NOW_MS: &str = "(extract(epoch from now()) * 1000)::bigint";

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Refuse (inside the caller's transaction) unless `fence` is still the live lease of
/// `group`. `FOR SHARE` holds the lease row until the caller commits: a takeover (an UPDATE
/// of that row) waits for this transaction, or, when it committed first, the row no longer
/// matches.
pub(crate) async fn check_fence(conn: &mut PgConnection, group: &str, fence: &Fence) -> Result<()> {
    let sql = format!(
        "SELECT 1 FROM leases WHERE grp = $1 AND holder = $2 AND epoch = $3 AND expires_ms > {NOW_MS} FOR SHARE"
    );
    let held: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(group)
        .bind(&fence.holder)
        .bind(fence.epoch)
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

pub(crate) async fn progress_since(pool: &PgPool, since: Timestamp) -> Result<Progress> {
    let (groups, samples, activities): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM group_state WHERE updated_ms >= $1),
                (SELECT COUNT(*) FROM metric_samples WHERE at_ms >= $1),
                (SELECT COUNT(*) FROM activities WHERE started_ms >= $1)",
    )
    .bind(ms(since))
    .fetch_one(pool)
    .await
    .map_err(db("count progress"))?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(Progress {
        groups: n(groups),
        samples: n(samples),
        activities: n(activities),
    })
}

pub(crate) async fn group_rows(pool: &PgPool) -> Result<Vec<GroupRow>> {
    let rows = sqlx::query(
        "SELECT name, spec, enabled, version, updated_ms FROM scaling_groups ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .map_err(db("list groups"))?;
    rows.iter()
        .map(|r| {
            let spec: String = r.try_get("spec")?;
            Ok(GroupRow {
                name: r.try_get("name")?,
                spec: serde_json::from_str(&spec).unwrap_or(serde_json::Value::String(spec)),
                enabled: r.try_get("enabled")?,
                version: r.try_get("version")?,
                updated_ms: r.try_get("updated_ms")?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(db("read group row"))
}

/// Bump the change counter (in the caller's transaction; the row lock orders concurrent
/// changes); the new value.
async fn bump_version(tx: &mut Transaction<'static, Postgres>) -> Result<i64> {
    sqlx::query_scalar(
        "UPDATE scaling_groups_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(db("bump group version"))
}

pub(crate) async fn put_group_row(
    pool: &PgPool,
    name: &str,
    spec: &serde_json::Value,
    enabled: bool,
    at: Timestamp,
) -> Result<()> {
    let what = "store group";
    let mut tx = pool.begin().await.map_err(db(what))?;
    let version = bump_version(&mut tx).await?;
    sqlx::query(
        "INSERT INTO scaling_groups (name, spec, enabled, version, updated_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, enabled = excluded.enabled,
             version = excluded.version, updated_ms = excluded.updated_ms",
    )
    .bind(name)
    .bind(spec.to_string())
    .bind(enabled)
    .bind(version)
    .bind(ms(at))
    .execute(&mut *tx)
    .await
    .map_err(db(what))?;
    tx.commit().await.map_err(db(what))?;
    Ok(())
}

pub(crate) async fn set_group_row_enabled(
    pool: &PgPool,
    name: &str,
    enabled: bool,
    at: Timestamp,
) -> Result<bool> {
    let what = "enable or disable group";
    let mut tx = pool.begin().await.map_err(db(what))?;
    let version = bump_version(&mut tx).await?;
    let done = sqlx::query(
        "UPDATE scaling_groups SET enabled = $1, version = $2, updated_ms = $3 WHERE name = $4",
    )
    .bind(enabled)
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

pub(crate) async fn delete_group_row(pool: &PgPool, name: &str) -> Result<bool> {
    let what = "delete group";
    let mut tx = pool.begin().await.map_err(db(what))?;
    bump_version(&mut tx).await?;
    let done = sqlx::query("DELETE FROM scaling_groups WHERE name = $1")
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

pub(crate) async fn heartbeat(pool: &PgPool, daemon: &str, ttl: Duration) -> Result<Vec<String>> {
    let what = "heartbeat";
    let mut tx = pool.begin().await.map_err(db(what))?;
    let upsert = format!(
        "INSERT INTO daemons (id, heartbeat_ms, expires_ms) VALUES ($1, {NOW_MS}, {NOW_MS} + $2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms, expires_ms = excluded.expires_ms"
    );
    sqlx::query(sqlx::AssertSqlSafe(upsert))
        .bind(daemon)
        .bind(ttl_ms(ttl))
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
    // Daemons gone for a day are forgotten, so the table does not grow with restarts.
    let forget = format!("DELETE FROM daemons WHERE expires_ms < {NOW_MS} - 86400000");
    sqlx::query(sqlx::AssertSqlSafe(forget))
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
    let live = format!("SELECT id FROM daemons WHERE expires_ms > {NOW_MS} ORDER BY id");
    let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(live))
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what))?;
    tx.commit().await.map_err(db(what))?;
    Ok(ids)
}

pub(crate) async fn leave(pool: &PgPool, daemon: &str) -> Result<()> {
    let what = "leave";
    let mut tx = pool.begin().await.map_err(db(what))?;
    sqlx::query("DELETE FROM daemons WHERE id = $1")
        .bind(daemon)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
    // Lapsed, not deleted: the epoch must keep counting up.
    sqlx::query("UPDATE leases SET expires_ms = 0 WHERE holder = $1")
        .bind(daemon)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
    tx.commit().await.map_err(db(what))?;
    Ok(())
}

/// One statement for any number of groups: taken when free or lapsed (epoch bumped), renewed
/// at the same epoch while held without a gap. The names are sorted so that two daemons'
/// overlapping batches lock rows in the same order (no deadlock).
pub(crate) async fn acquire(
    pool: &PgPool,
    holder: &str,
    groups: &[String],
    ttl: Duration,
) -> Result<Vec<Lease>> {
    let mut names = groups.to_vec();
    names.sort_unstable();
    names.dedup();
    let sql = format!(
        "INSERT INTO leases (grp, holder, epoch, expires_ms)
         SELECT g, $2, 1, {NOW_MS} + $3 FROM unnest($1::text[]) AS g
         ON CONFLICT (grp) DO UPDATE SET
             epoch = CASE WHEN leases.holder = excluded.holder AND leases.expires_ms > {NOW_MS}
                          THEN leases.epoch ELSE leases.epoch + 1 END,
             holder = excluded.holder,
             expires_ms = excluded.expires_ms
         WHERE leases.holder = excluded.holder OR leases.expires_ms <= {NOW_MS}
         RETURNING grp, epoch, expires_ms"
    );
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&names)
        .bind(holder)
        .bind(ttl_ms(ttl))
        .fetch_all(pool)
        .await
        .map_err(db("acquire leases"))?;
    let mut out: Vec<Lease> = rows
        .into_iter()
        .map(|(group, epoch, expires_ms)| Lease {
            group,
            holder: holder.to_string(),
            epoch,
            expires_ms,
        })
        .collect();
    out.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(out)
}

pub(crate) async fn release(pool: &PgPool, holder: &str, groups: &[String]) -> Result<()> {
    sqlx::query("UPDATE leases SET expires_ms = 0 WHERE holder = $1 AND grp = ANY($2::text[])")
        .bind(holder)
        .bind(groups)
        .execute(pool)
        .await
        .map_err(db("release leases"))?;
    Ok(())
}

pub(crate) async fn all(pool: &PgPool) -> Result<Vec<Lease>> {
    let rows: Vec<(String, String, i64, i64)> =
        sqlx::query_as("SELECT grp, holder, epoch, expires_ms FROM leases ORDER BY grp")
            .fetch_all(pool)
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
