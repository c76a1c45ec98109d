//! The SQLite store's global budget ledger (see [`crate::Store::budget_entries`]). SQLite
//! takes one writer at a time: `BEGIN IMMEDIATE` takes the write lock before the fence and
//! the version are read, so nothing can come between the check and the write.

use sqlx::sqlite::SqlitePool;
use sqlx::{Row, SqliteConnection};

use super::sqlite::check_fence;
use super::{BudgetEntry, Fence, Result, StoreError};

fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

pub(crate) async fn entries(pool: &SqlitePool) -> Result<(i64, Vec<BudgetEntry>)> {
    let what = "read budget ledger";
    // One read transaction: the version and the rows it counts.
    let mut tx = pool.begin().await.map_err(db(what))?;
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
    pool: &SqlitePool,
    entry: &BudgetEntry,
    expected: Option<i64>,
    fence: Option<&Fence>,
) -> Result<bool> {
    let what = "write budget entry";
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
    if let Some(f) = fence {
        check_fence(&mut tx, &entry.group, f).await?;
    }
    let bumped = sqlx::query(
        "UPDATE budget_ledger_version SET version = version + 1 WHERE id = 1 AND (?1 IS NULL OR version = ?1)",
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

async fn upsert(conn: &mut SqliteConnection, e: &BudgetEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO budget_ledger (grp, rate_per_hour, month, spent, updated_ms) VALUES (?, ?, ?, ?, ?)
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

pub(crate) async fn delete(pool: &SqlitePool, group: &str) -> Result<()> {
    let what = "delete budget entry";
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
    let done = sqlx::query("DELETE FROM budget_ledger WHERE grp = ?")
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
