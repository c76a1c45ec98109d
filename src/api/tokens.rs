//! `/api/v1/tokens` (admin): the API's bearer tokens, as `scalepilot token` manages them.
//!
//! A new token's secret is in the creation's answer and nowhere else: the store keeps its
//! hash, the audit log its name and role. The API sees a created or revoked token within a
//! second (its token cache follows the store's token version).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use scalepilot_store::Role;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{AuditNote, noted};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Body, Params, TokenName};
use super::secret;
use crate::cli::token::{Listed, check_name, listed};

/// Every token, revoked ones included (never a secret or hash).
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenList {
    tokens: Vec<Listed>,
}

/// List the tokens (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Json<TokenList>> {
    params.finish()?;
    let tokens = state.store.tokens().await.map_err(ApiError::store)?;
    Ok(Json(TokenList {
        tokens: tokens.iter().map(listed).collect(),
    }))
}

/// A token to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// Unique among live tokens: 1 to 63 letters, digits, `-`, `_` and `.`.
    name: String,
    /// viewer, operator or admin.
    role: String,
}

/// A created token: its secret, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct Created {
    name: String,
    role: String,
    /// Pass as `Authorization: Bearer <token>`; not shown again.
    token: String,
}

/// Create a token (admin); the answer holds its secret, once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = Created), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Body(body): Body<NewToken>,
) -> ApiResult<Response> {
    if let Some(problem) = check_name(&body.name) {
        return Err(ApiError::unprocessable(problem).field("name"));
    }
    let role: Role = body.role.parse().map_err(|_| {
        ApiError::unprocessable(format!(
            "role must be viewer, operator or admin, got {:?}",
            body.role
        ))
        .field("role")
    })?;
    let token = secret::generate();
    let created = state
        .store
        .create_token(&body.name, role, &secret::hash(&token), Timestamp::now())
        .await
        .map_err(ApiError::store)?;
    if !created {
        return Err(ApiError::conflict(format!(
            "a live token named `{}` exists: revoke it first (DELETE /api/v1/tokens/{})",
            body.name, body.name
        ))
        .field("name"));
    }
    let after = json!({"name": body.name, "role": role.as_str()});
    Ok(noted(
        (
            StatusCode::CREATED,
            Json(Created {
                name: body.name.clone(),
                role: role.as_str().to_string(),
                token,
            }),
        ),
        AuditNote {
            before: None,
            after: Some(after),
            detail: Some(format!("created token `{}` ({})", body.name, role.as_str())),
        },
    ))
}

/// Revoke a live token (admin): requests carrying it are refused from then on.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "Token name")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    TokenName(name): TokenName,
) -> ApiResult<Response> {
    let revoked = state
        .store
        .revoke_token(&name, Timestamp::now())
        .await
        .map_err(ApiError::store)?;
    if !revoked {
        return Err(ApiError::not_found(format!("no live token named `{name}`")).field("name"));
    }
    Ok(noted(
        Json(json!({"name": name, "revoked": true})),
        AuditNote {
            before: Some(json!({"name": name, "live": true})),
            after: Some(json!({"name": name, "live": false})),
            detail: Some(format!("revoked token `{name}`")),
        },
    ))
}
