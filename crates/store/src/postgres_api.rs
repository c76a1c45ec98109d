//! The PostgreSQL store's queries for the REST API: tokens, the audit log and pages of
//! history (see [`crate::Store::create_token`] and what follows it). A token write and its
//! version bump are one transaction; `INSERT … ON CONFLICT` makes two creations of one name
//! at once safe (the second waits for the first's row, then finds it live).

use jiff::Timestamp;
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow, Postgres};
use sqlx::{AssertSqlSafe, Row};

use super::history_page::{Arg, Columns, audit_allowed, clause};
use super::postgres::{ACTIVITY_COLUMNS, ERROR_COLUMNS, activity, db, decode, error_record};
use super::{
    Activity, AuditRecord, ErrorRecord, HistoryQuery, NewAudit, Result, Role, TokenRecord, ms,
};

fn placeholder(n: usize) -> String {
    format!("${n}")
}

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

fn bind_all<'q>(mut query: Query<'q>, args: &[Arg<'q>]) -> Query<'q> {
    for a in args {
        query = match *a {
            Arg::Text(s) => query.bind(s),
            Arg::Int(i) => query.bind(i),
            Arg::Bool(b) => query.bind(b),
        };
    }
    query
}

async fn bump_tokens_version(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("UPDATE api_tokens_version SET version = version + 1 WHERE id = 1")
        .execute(conn)
        .await
        .map_err(db("bump tokens version"))?;
    Ok(())
}

pub(crate) async fn create_token(
    pool: &PgPool,
    name: &str,
    role: Role,
    hash: &str,
    at: Timestamp,
) -> Result<bool> {
    let what = "create token";
    let mut tx = pool.begin().await.map_err(db(what))?;
    // A live token of that name is left alone (the conflict's WHERE fails); a revoked one is
    // replaced, row and all.
    let done = sqlx::query(
        "INSERT INTO api_tokens (name, role, hash, created_ms, revoked_ms) VALUES ($1, $2, $3, $4, NULL)
         ON CONFLICT (name) DO UPDATE SET role = excluded.role, hash = excluded.hash,
             created_ms = excluded.created_ms, revoked_ms = NULL
         WHERE api_tokens.revoked_ms IS NOT NULL",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(hash)
    .bind(ms(at))
    .execute(&mut *tx)
    .await
    .map_err(db(what))?;
    if done.rows_affected() == 0 {
        tx.rollback().await.map_err(db(what))?;
        return Ok(false);
    }
    bump_tokens_version(&mut tx).await?;
    tx.commit().await.map_err(db(what))?;
    Ok(true)
}

pub(crate) async fn tokens(pool: &PgPool) -> Result<Vec<TokenRecord>> {
    let rows = sqlx::query(
        "SELECT name, role, hash, created_ms, revoked_ms FROM api_tokens ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .map_err(db("list tokens"))?;
    rows.iter()
        .map(|r| {
            Ok(TokenRecord {
                name: r.try_get("name")?,
                role: decode(&r.try_get::<String, _>("role")?)?,
                hash: r.try_get("hash")?,
                created_ms: r.try_get("created_ms")?,
                revoked_ms: r.try_get("revoked_ms")?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(db("read token"))
}

pub(crate) async fn revoke_token(pool: &PgPool, name: &str, at: Timestamp) -> Result<bool> {
    let what = "revoke token";
    let mut tx = pool.begin().await.map_err(db(what))?;
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_ms = $1 WHERE name = $2 AND revoked_ms IS NULL")
            .bind(ms(at))
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
    if done.rows_affected() == 0 {
        tx.rollback().await.map_err(db(what))?;
        return Ok(false);
    }
    bump_tokens_version(&mut tx).await?;
    tx.commit().await.map_err(db(what))?;
    Ok(true)
}

pub(crate) async fn tokens_version(pool: &PgPool) -> Result<i64> {
    sqlx::query_scalar("SELECT version FROM api_tokens_version WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db("read tokens version"))
}

pub(crate) async fn record_audit(pool: &PgPool, e: &NewAudit<'_>) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO audit_log (actor, role, at_ms, method, route, status, allowed, before_json, after_json, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(e.actor)
    .bind(e.role.map(Role::as_str))
    .bind(ms(e.at))
    .bind(e.method)
    .bind(e.route)
    .bind(i32::from(e.status))
    .bind(e.allowed)
    .bind(e.before.map(|v| v.to_string()))
    .bind(e.after.map(|v| v.to_string()))
    .bind(e.detail)
    .fetch_one(pool)
    .await
    .map_err(db("record audit"))
}

/// JSON text as stored; text that is not JSON (never written by the store) as a string.
fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t)))
}

fn audit_record(r: &PgRow) -> std::result::Result<AuditRecord, sqlx::Error> {
    let role: Option<String> = r.try_get("role")?;
    let status: i32 = r.try_get("status")?;
    Ok(AuditRecord {
        id: r.try_get("id")?,
        actor: r.try_get("actor")?,
        role: role.as_deref().map(decode).transpose()?,
        at_ms: r.try_get("at_ms")?,
        method: r.try_get("method")?,
        route: r.try_get("route")?,
        status: u16::try_from(status).unwrap_or(0),
        allowed: r.try_get("allowed")?,
        before: json(r.try_get("before_json")?),
        after: json(r.try_get("after_json")?),
        detail: r.try_get("detail")?,
    })
}

pub(crate) async fn audit(pool: &PgPool, q: &HistoryQuery<'_>) -> Result<Vec<AuditRecord>> {
    let Some(allowed) = audit_allowed(q.status) else {
        return Ok(Vec::new());
    };
    let cols = Columns {
        group: "actor",
        time: "at_ms",
        status: "allowed",
    };
    let (filter, args) = clause(q, &cols, allowed.map(Arg::Bool), placeholder);
    let sql = format!(
        "SELECT id, actor, role, at_ms, method, route, status, allowed, before_json, after_json, detail
         FROM audit_log {filter}"
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), &args)
        .fetch_all(pool)
        .await
        .map_err(db("list audit"))?;
    rows.iter()
        .map(audit_record)
        .collect::<std::result::Result<_, _>>()
        .map_err(db("read audit"))
}

pub(crate) async fn activities_page(pool: &PgPool, q: &HistoryQuery<'_>) -> Result<Vec<Activity>> {
    let cols = Columns {
        group: "grp",
        time: "started_ms",
        status: "status",
    };
    let (filter, args) = clause(q, &cols, q.status.map(Arg::Text), placeholder);
    let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities {filter}");
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), &args)
        .fetch_all(pool)
        .await
        .map_err(db("list activities"))?;
    rows.iter()
        .map(activity)
        .collect::<std::result::Result<_, _>>()
        .map_err(db("read activity"))
}

pub(crate) async fn errors_page(pool: &PgPool, q: &HistoryQuery<'_>) -> Result<Vec<ErrorRecord>> {
    let cols = Columns {
        group: "grp",
        time: "at_ms",
        status: "component",
    };
    let (filter, args) = clause(q, &cols, q.status.map(Arg::Text), placeholder);
    let sql = format!("SELECT {ERROR_COLUMNS} FROM errors {filter}");
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), &args)
        .fetch_all(pool)
        .await
        .map_err(db("list errors"))?;
    rows.iter()
        .map(error_record)
        .collect::<std::result::Result<_, _>>()
        .map_err(db("read error"))
}
