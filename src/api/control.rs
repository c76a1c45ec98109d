//! Commands to the engine: manual scaling, the global switch, and reloading the config.

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use scalepilot_engine::{Event, HandleError, ManualScale};
use scalepilot_store::Role;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{AuditNote, Caller, noted};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Body, GroupName};
use super::groups::{no_group, snapshot};

/// A manual scale.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScaleBody {
    /// The replica count to set.
    replicas: u32,
    /// Why: kept with the activity and in the audit log.
    reason: String,
    /// Set a count outside the group's min and max (admin only).
    #[serde(default)]
    force: bool,
}

/// A manual scale's outcome.
#[derive(Serialize, ToSchema)]
pub(crate) struct Scaled {
    group: String,
    /// The count before.
    from: u32,
    /// The count asked for.
    to: u32,
    /// The engine's event for the action.
    #[schema(value_type = Object)]
    event: Event,
}

/// Scale a group by hand (operator; `force` needs admin). The count is clamped to the
/// group's min and max (outside them: 422) unless `force`; the action is recorded as an
/// activity with the caller as actor and the reason. The next evaluation decides as usual.
#[utoipa::path(post, path = "/api/v1/groups/{name}/scale", tag = "groups", request_body = ScaleBody,
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Scaled), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn scale(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    GroupName(name): GroupName,
    Body(body): Body<ScaleBody>,
) -> ApiResult<Response> {
    if body.force && !caller.role.allows(Role::Admin) {
        return Err(ApiError::forbidden(format!(
            "token `{}` has role {}; force needs admin",
            caller.name,
            caller.role.as_str()
        ))
        .field("force"));
    }
    let reason = body.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::unprocessable("reason must not be empty").field("reason"));
    }
    if reason.chars().count() > 500 {
        return Err(
            ApiError::unprocessable("reason must be at most 500 characters").field("reason"),
        );
    }
    let status = state.handle.status(&name).ok_or_else(|| no_group(&name))?;
    let before = snapshot(&state, &name);
    let manual = ManualScale {
        replicas: body.replicas,
        actor: caller.name.clone(),
        reason: reason.to_string(),
        force: body.force,
    };
    let event = state
        .handle
        .scale(manual, &name)
        .await
        .map_err(|e| match e {
            // The engine's own words, naming the field the client can change.
            HandleError::Invalid(_) => ApiError::from(e).field("replicas"),
            other => ApiError::from(other),
        })?;
    let after = snapshot(&state, &name);
    let from = status.current.unwrap_or(event.current);
    let to = event.desired;
    Ok(noted(
        Json(Scaled {
            group: name,
            from,
            to,
            event,
        }),
        AuditNote {
            before: Some(before),
            after: Some(after),
            detail: Some(format!(
                "{from} → {to}{}: {reason}",
                if body.force { " (forced)" } else { "" }
            )),
        },
    ))
}

/// The global switch, as set.
#[derive(Serialize, ToSchema)]
pub(crate) struct GlobalEnabled {
    enabled: bool,
}

/// Let every enabled group act again (operator).
#[utoipa::path(post, path = "/api/v1/enable", tag = "engine",
    responses((status = 200, body = GlobalEnabled), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn enable_all(state: State<AppState>) -> ApiResult<Response> {
    set_all(state, true).await
}

/// Stop every group from acting until `POST /api/v1/enable` (operator): the emergency stop.
#[utoipa::path(post, path = "/api/v1/disable", tag = "engine",
    responses((status = 200, body = GlobalEnabled), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn disable_all(state: State<AppState>) -> ApiResult<Response> {
    set_all(state, false).await
}

async fn set_all(State(state): State<AppState>, enabled: bool) -> ApiResult<Response> {
    let before = state.handle.all_enabled();
    state.handle.set_all_enabled(enabled).await?;
    let now = state.handle.all_enabled();
    Ok(noted(
        Json(GlobalEnabled { enabled: now }),
        AuditNote {
            before: Some(json!({"enabled": before})),
            after: Some(json!({"enabled": now})),
            detail: None,
        },
    ))
}

/// A reload's outcome.
#[derive(Serialize, ToSchema)]
pub(crate) struct Reloaded {
    reloaded: bool,
}

/// Read the config file again (operator), as SIGHUP does. An invalid file is refused (422,
/// with its problems) and the running config stays.
#[utoipa::path(post, path = "/api/v1/reload", tag = "engine",
    responses((status = 200, body = Reloaded), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn reload(State(state): State<AppState>) -> ApiResult<Response> {
    let before = state.config_file.get(&state).await.ok().map(|f| {
        let mut names: Vec<&String> = f.names.iter().collect();
        names.sort();
        json!({"file_groups": names})
    });
    state.handle.reload().await.map_err(|e| match e {
        HandleError::Failed(m) => ApiError::unprocessable(m),
        other => ApiError::from(other),
    })?;
    Ok(noted(
        Json(Reloaded { reloaded: true }),
        AuditNote {
            before,
            after: None,
            detail: Some(format!("reloaded {}", state.handle.config_path().display())),
        },
    ))
}
