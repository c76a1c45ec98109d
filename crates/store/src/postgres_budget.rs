//! The PostgreSQL store's global budget ledger (see [`crate::Store::budget_entries`]).
//!
//! The compare-and-swap is one conditional UPDATE of the version row: under READ COMMITTED a
//! second writer waits for the first one's row lock, then re-reads the row, finds the
//! version moved and updates nothing. Two writers that read the same version never both
//! win. Lock order is the lease row (the fence, `FOR SHARE`), then the version row, for
//! every writer: no deadlock.

use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPool};

use super::postgres::db;
use super::postgres_leases::check_fence;
use super::{BudgetEntry, Fence, Result};

pub(crate) async fn entries(pool: &PgPool) -> Result<(i64, Vec<BudgetEntry>)> {
    let what = "read budget ledger";
    // One statement, so one snapshot: the rows are never newer (or older) than the version a
    // later compare-and-swap checks against. One round trip: the window in which another
    // group's write makes this one's compare-and-swap fail stays short.
    let rows = sqlx::query(
        "SELECT v.version, l.grp, l.rate_per_hour, l.month, l.spent, l.updated_ms
         FROM budget_ledger_version v LEFT JOIN budget_ledger l ON true
         WHERE v.id = 1 ORDER BY l.grp",
    )
    .fetch_all(pool)
    .await
    .map_err(db(what))?;
    let mut version = 0;
    let mut entries = Vec::with_capacity(rows.len());
    for r in &rows {
        version = r.try_get("version").map_err(db(what))?;
        let Some(group) = r.try_get::<Option<String>, _>("grp").map_err(db(what))? else {
            continue;
        };
        entries.push(BudgetEntry {
            group,
            rate_per_hour: r.try_get("rate_per_hour").map_err(db(what))?,
            month: r.try_get("month").map_err(db(what))?,
            spent: r.try_get("spent").map_err(db(what))?,
            updated_ms: r.try_get("updated_ms").map_err(db(what))?,
        });
    }
    Ok((version, entries))
}

/// Write `entry` when the version still is `expected` (any version when `None`).
pub(crate) async fn put(
    pool: &PgPool,
    entry: &BudgetEntry,
    expected: Option<i64>,
    fence: Option<&Fence>,
) -> Result<bool> {
    let what = "write budget entry";
    let mut tx = pool.begin().await.map_err(db(what))?;
    if let Some(f) = fence {
        check_fence(&mut tx, &entry.group, f).await?;
    }
    let bumped = sqlx::query(
        "UPDATE budget_ledger_version SET version = version + 1
         WHERE id = 1 AND ($1::bigint IS NULL OR version = $1)",
    )
    .bind(expected)
    .execute(&mut *tx)
    .await
    .map_err(db(what))?;
    if bumped.rows_affected() == 0 {
        tx.rollback().await.map_err(db(what))?;
        return Ok(false);
    }
    upsert(&mut tx, entry).await?;
    tx.commit().await.map_err(db(what))?;
    Ok(true)
}

async fn upsert(conn: &mut PgConnection, e: &BudgetEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO budget_ledger (grp, rate_per_hour, month, spent, updated_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (grp) DO UPDATE SET rate_per_hour = excluded.rate_per_hour,
             month = excluded.month, spent = excluded.spent, updated_ms = excluded.updated_ms",
    )
    .bind(&e.group)
    .bind(e.rate_per_hour)
    .bind(&e.month)
    .bind(e.spent)
    .bind(e.updated_ms)
    .execute(conn)
    .await
    .map_err(db("write budget entry"))?;
    Ok(())
}

pub(crate) async fn delete(pool: &PgPool, group: &str) -> Result<()> {
    let what = "delete budget entry";
    let mut tx = pool.begin().await.map_err(db(what))?;
    let done = sqlx::query("DELETE FROM budget_ledger WHERE grp = $1")
        .bind(group)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
    if done.rows_affected() > 0 {
        sqlx::query("UPDATE budget_ledger_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
    }
    tx.commit().await.map_err(db(what))?;
    Ok(())
}
