//! The PostgreSQL store's coordination queries: groups kept in the database, daemon
//! sessions (heartbeats), session-based per-group leases and the fence check. A lease is
//! live while its holder's session is and it was not released: renewing every lease of a
//! daemon is its one heartbeat write. Times come from the server's clock (`now()`, fixed
//! for a transaction), so daemons need no synchronized clocks.

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

/// Refuse (inside the caller's transaction) unless `fence` is still a live lease of `group`:
/// this holder, this epoch, not released, the holder's session not expired. `FOR SHARE OF l`
/// holds the lease row until the caller commits: a takeover or a release (an UPDATE of that
/// row) waits for this transaction, or, when it committed first, the row no longer matches.
pub(crate) async fn check_fence(conn: &mut PgConnection, group: &str, fence: &Fence) -> Result<()> {
    let sql = format!(
        "SELECT 1 FROM leases l JOIN daemons d ON d.id = l.holder
         WHERE l.grp = $1 AND l.holder = $2 AND l.epoch = $3 AND NOT l.released
           AND d.expires_ms > {NOW_MS}
         FOR SHARE OF l"
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

/// Start or renew `daemon`'s session (in the caller's transaction) until now + `ttl`; the
/// new expiry. When the session had lapsed (or there was none), the daemon's leases are
/// released first: its old fences never come back to life with the new session. The row
/// lock (`FOR UPDATE`, or the insert's) orders this against the daemon's other calls.
/// `member`: a heartbeat (a running daemon, counted among the live ones that share the
/// groups), not a lease taken alone (`scalepilot once`), which must not be given a share.
async fn renew_session(
    conn: &mut PgConnection,
    daemon: &str,
    ttl: Duration,
    member: bool,
) -> Result<i64> {
    let what = "renew session";
    let sql = format!("SELECT expires_ms > {NOW_MS} FROM daemons WHERE id = $1 FOR UPDATE");
    let live: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(daemon)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(what))?;
    if live != Some(true) {
        sqlx::query("UPDATE leases SET released = TRUE WHERE holder = $1 AND NOT released")
            .bind(daemon)
            .execute(&mut *conn)
            .await
            .map_err(db(what))?;
    }
    let upsert = format!(
        "INSERT INTO daemons (id, heartbeat_ms, expires_ms, member)
         VALUES ($1, {NOW_MS}, {NOW_MS} + $2, $3)
         ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms,
             expires_ms = GREATEST(daemons.expires_ms, excluded.expires_ms),
             member = daemons.member OR excluded.member
         RETURNING expires_ms"
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(upsert))
        .bind(daemon)
        .bind(ttl_ms(ttl))
        .bind(member)
        .fetch_one(&mut *conn)
        .await
        .map_err(db(what))
}

pub(crate) async fn heartbeat(pool: &PgPool, daemon: &str, ttl: Duration) -> Result<Vec<String>> {
    let what = "heartbeat";
    let mut tx = pool.begin().await.map_err(db(what))?;
    renew_session(&mut tx, daemon, ttl, true).await?;
    // Daemons gone for a day are forgotten, so the table does not grow with restarts (their
    // leases, holder without a session, are free to take).
    let forget = format!("DELETE FROM daemons WHERE expires_ms < {NOW_MS} - 86400000");
    sqlx::query(sqlx::AssertSqlSafe(forget))
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
    let live = format!("SELECT id FROM daemons WHERE expires_ms > {NOW_MS} AND member ORDER BY id");
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
    // Released, not deleted: the epoch must keep counting up.
    sqlx::query("UPDATE leases SET released = TRUE WHERE holder = $1 AND NOT released")
        .bind(daemon)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
    tx.commit().await.map_err(db(what))?;
    Ok(())
}

/// Groups taken per statement: big enough that a start at 100,000 groups is a few dozen
/// statements, small enough that one statement's locks and WAL stay modest.
const TAKE_CHUNK: usize = 2000;

/// Renew the holder's session, read the leases of `groups` (one SELECT), and take the free,
/// released or lapsed ones (epoch + 1) in statements of [`TAKE_CHUNK`]. Groups the holder
/// already holds are not written. The takeover's condition is checked again by the UPDATE
/// itself (the row lock makes it exact), so a lease whose holder renewed its session in
/// between is left alone. The names are sorted so that two daemons' overlapping batches
/// lock rows in the same order (no deadlock).
pub(crate) async fn acquire(
    pool: &PgPool,
    holder: &str,
    groups: &[String],
    ttl: Duration,
) -> Result<Vec<Lease>> {
    let what = "acquire leases";
    let mut names = groups.to_vec();
    names.sort_unstable();
    names.dedup();
    let mut tx = pool.begin().await.map_err(db(what))?;
    let expires_ms = renew_session(&mut tx, holder, ttl, false).await?;
    // (group, holder, epoch, released, holder's session live)
    let read = format!(
        "SELECT l.grp, l.holder, l.epoch, l.released, COALESCE(d.expires_ms > {NOW_MS}, FALSE)
         FROM leases l LEFT JOIN daemons d ON d.id = l.holder
         WHERE l.grp = ANY($1::text[])"
    );
    let rows: Vec<(String, String, i64, bool, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(read))
        .bind(&names)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what))?;
    let mut out = Vec::new();
    let mut busy = std::collections::HashSet::new();
    for (group, h, epoch, released, live) in rows {
        if released || !live {
            continue;
        }
        if h == holder {
            out.push(Lease {
                group: group.clone(),
                holder: holder.to_string(),
                epoch,
                expires_ms,
            });
        }
        busy.insert(group);
    }
    let take: Vec<String> = names.into_iter().filter(|g| !busy.contains(g)).collect();
    let sql = format!(
        "INSERT INTO leases (grp, holder, epoch, released)
         SELECT g, $2, 1, FALSE FROM unnest($1::text[]) AS g
         ON CONFLICT (grp) DO UPDATE SET
             epoch = leases.epoch + 1, holder = excluded.holder, released = FALSE
         WHERE leases.released OR NOT EXISTS (
             SELECT 1 FROM daemons d WHERE d.id = leases.holder AND d.expires_ms > {NOW_MS})
         RETURNING grp, epoch"
    );
    for chunk in take.chunks(TAKE_CHUNK) {
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(chunk)
            .bind(holder)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(what))?;
        out.extend(rows.into_iter().map(|(group, epoch)| Lease {
            group,
            holder: holder.to_string(),
            epoch,
            expires_ms,
        }));
    }
    tx.commit().await.map_err(db(what))?;
    out.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(out)
}

pub(crate) async fn release(pool: &PgPool, holder: &str, groups: &[String]) -> Result<()> {
    sqlx::query(
        "UPDATE leases SET released = TRUE
         WHERE holder = $1 AND grp = ANY($2::text[]) AND NOT released",
    )
    .bind(holder)
    .bind(groups)
    .execute(pool)
    .await
    .map_err(db("release leases"))?;
    Ok(())
}

pub(crate) async fn all(pool: &PgPool) -> Result<Vec<Lease>> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT l.grp, l.holder, l.epoch,
                    CASE WHEN l.released THEN 0 ELSE COALESCE(d.expires_ms, 0) END
             FROM leases l LEFT JOIN daemons d ON d.id = l.holder ORDER BY l.grp",
    )
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
