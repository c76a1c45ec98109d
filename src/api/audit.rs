//! `GET /api/v1/audit` (admin): the audit log that [`super::auth::gate`] writes, with the
//! history routes' filters (`actor` in place of `group`; `status` is allowed or denied) and
//! cursor pagination.

use axum::Json;
use axum::extract::State;
use scalepilot_store::AuditRecord;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Params;
use super::history::{Page, at};

/// Audit log filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query string; `Page::read` parses it.
pub(crate) struct AuditParams {
    /// Only calls by this token.
    actor: Option<String>,
    /// Only calls at or after this time (RFC 3339).
    since: Option<String>,
    /// Only calls at or before this time (RFC 3339).
    until: Option<String>,
    /// allowed or denied.
    status: Option<String>,
    /// Rows per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One audited call.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditEntry {
    id: i64,
    /// The token's name ("anonymous" without a valid token).
    actor: String,
    role: Option<String>,
    at: String,
    method: String,
    route: String,
    status: u16,
    allowed: bool,
    #[schema(value_type = Option<Object>)]
    before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    after: Option<Value>,
    detail: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        AuditEntry {
            id: r.id,
            actor: r.actor,
            role: r.role.map(|r| r.as_str().to_string()),
            at: at(r.at_ms),
            method: r.method,
            route: r.route,
            status: r.status,
            allowed: r.allowed,
            before: r.before,
            after: r.after,
            detail: r.detail,
        }
    }
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditPage {
    entries: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

/// Every mutating call and every denied one, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "auth", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Json<AuditPage>> {
    let page = Page::read(params, "actor", &["allowed", "denied"])?;
    let rows = state
        .store
        .audit(&page.query())
        .await
        .map_err(ApiError::store)?;
    let (rows, next_cursor) = page.cut(rows, |r| r.id);
    Ok(Json(AuditPage {
        entries: rows.into_iter().map(AuditEntry::from).collect(),
        next_cursor,
    }))
}
