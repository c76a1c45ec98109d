//! The PostgreSQL store's global budget ledger (see [`crate::Store::budget_entries`]).
//!
//! The compare-and-swap is one conditional UPDATE of the version row: under READ COMMITTED a
//! second writer waits for the first one's row lock, then re-reads the row, finds the
//! version moved and updates nothing. Two writers that read the same version never both
//! win. Lock order is the lease row (the fence, `FOR SHARE`), then the version row, for
//! every writer: no deadlock.

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Row};

use super::postgres::db;
use super::postgres_leases::check_fence;
use super::{BudgetEntry, Fence, Result};

pub(crate) async fn entries(pool: &PgPool) -> Result<(i64, Vec<BudgetEntry>)> {
    let what = "read budget ledger";
    // REPEATABLE READ: the version and the rows come from one snapshot, so the rows are
    // never newer (or older) than the version a later compare-and-swap checks against.
    let mut conn = pool.acquire().await.map_err(db(what))?;
    let mut tx = conn.begin().await.map_err(db(what))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
    let version: i64 = sqlx::query_scalar("SELECT version FROM budget_ledger_version WHERE id = 1")
        .fetch_one(&mut *tx)
        .await
        .map_err(db(what))?;
    let rows = sqlx::query(
        "SELECT grp, rate_per_hour, month, spent, updated_ms FROM budget_ledger ORDER BY grp",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db(what))?;
    tx.commit().await.map_err(db(what))?;
    let entries = rows
        .iter()
        .map(|r| {
            Ok(BudgetEntry {
                group: r.try_get("grp")?,
                rate_per_hour: r.try_get("rate_per_hour")?,
                month: r.try_get("month")?,
                spent: r.try_get("spent")?,
                updated_ms: r.try_get("updated_ms")?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(db(what))?;
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
