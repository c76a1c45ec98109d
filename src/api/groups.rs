//! `/api/v1/groups`: every group with its live status, one group with its spec, and the
//! changes: create, replace and delete database groups; enable, disable and pause any group.
//!
//! Reads use the engine's status snapshot ([`EngineHandle::statuses`]), never its control
//! loop, so a busy engine does not slow the dashboard down. Database groups are validated by
//! the same code as `scalepilot groups import` ([`config::group_from_row`]), with the same
//! messages.
//!
//! [`EngineHandle::statuses`]: scalepilot_engine::EngineHandle::statuses

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use scalepilot_core::config::{self, GroupsFrom};
use scalepilot_engine::{GroupStatus, Pause};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{AuditNote, noted};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Body, GroupName, Params};
use super::offset_page::OffsetPage;

/// Where a group's definition lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// The config file's `groups:` (changed by editing the file and reloading).
    File,
    /// A row of the store (`groups_from: database|both`), changed through this API.
    Database,
}

/// What the config file says about where groups come from, read again when the file changes.
#[derive(Default)]
pub(crate) struct ConfigFile {
    cache: Mutex<Option<(Option<SystemTime>, Arc<FileGroups>)>>,
}

/// The config file's `groups_from` and its own groups' names.
pub(crate) struct FileGroups {
    pub(crate) groups_from: GroupsFrom,
    pub(crate) names: HashSet<String>,
    /// The file's groups as written (JSON), for `GET /groups/{name}`'s `config`.
    pub(crate) raw: Vec<Value>,
}

impl ConfigFile {
    /// The file's groups, parsed again only when its modification time changed.
    pub(crate) async fn get(&self, state: &AppState) -> ApiResult<Arc<FileGroups>> {
        let path = state.handle.config_path();
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if let Ok(cache) = self.cache.lock()
            && let Some((at, groups)) = &*cache
            && *at == mtime
            && mtime.is_some()
        {
            return Ok(groups.clone());
        }
        let read = tokio::task::spawn_blocking(move || read_file_groups(&path))
            .await
            .map_err(|e| ApiError::unavailable(format!("reading the config failed: {e}")))?
            .map_err(|e| ApiError::unavailable(format!("cannot read the config file: {e:#}")))?;
        let groups = Arc::new(read);
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((mtime, groups.clone()));
        }
        Ok(groups)
    }
}

fn read_file_groups(path: &std::path::Path) -> anyhow::Result<FileGroups> {
    let cfg = scalepilot_engine::load_config_only(path)?;
    let text = scalepilot_engine::limits::read_to_string(
        path,
        scalepilot_engine::limits::CONFIG_LIMIT,
        "config",
    )?;
    let raw = config::yaml::parse(&text)
        .ok()
        .and_then(|(v, _)| v["groups"].as_array().cloned())
        .unwrap_or_default();
    Ok(FileGroups {
        groups_from: cfg.groups_from,
        names: cfg.groups.iter().map(|g| g.name.to_string()).collect(),
        raw,
    })
}

impl FileGroups {
    fn source(&self, name: &str) -> Source {
        if self.groups_from == GroupsFrom::File || self.names.contains(name) {
            Source::File
        } else {
            Source::Database
        }
    }
}

/// A group: every field of the engine's status (timestamps in RFC 3339) and its source.
#[derive(Serialize, ToSchema)]
pub(crate) struct GroupView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    status: Arc<GroupStatus>,
    source: Source,
    /// `GET /groups/{name}` only: the group's definition as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

/// A page of groups, and whether groups are enabled globally.
#[derive(Serialize, ToSchema)]
pub(crate) struct GroupList {
    /// False after `POST /api/v1/disable`: no group acts until `POST /api/v1/enable`.
    enabled: bool,
    /// Groups the engine runs, all pages together.
    total: usize,
    groups: Vec<GroupView>,
    /// Pass as `cursor` for the next groups; null after the last.
    next_cursor: Option<String>,
}

/// Which groups.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query string; `list` parses it.
pub(crate) struct GroupListParams {
    /// Groups per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The groups with their live status, a page at a time (100 by default): a group's status
/// with its last decision is about 1 KB of JSON, so the whole list of a large fleet in every
/// response would cost the daemon more than its evaluations (see docs/api.md).
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(GroupListParams),
    responses((status = 200, body = GroupList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    mut params: Params,
) -> ApiResult<Json<GroupList>> {
    let page = OffsetPage::take(&mut params)?;
    params.finish()?;
    let file = state.config_file.get(&state).await?;
    let statuses = state.handle.statuses();
    let total = statuses.len();
    let groups: Vec<GroupView> = statuses
        .into_iter()
        .skip(page.from)
        .take(page.limit)
        .map(|status| GroupView {
            source: file.source(&status.name),
            status,
            config: None,
        })
        .collect();
    Ok(Json(GroupList {
        enabled: state.handle.all_enabled(),
        total,
        next_cursor: page.next_cursor(groups.len(), total),
        groups,
    }))
}

/// One group: its live status and its definition.
#[utoipa::path(get, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn one(
    State(state): State<AppState>,
    GroupName(name): GroupName,
    params: Params,
) -> ApiResult<Json<GroupView>> {
    params.finish()?;
    let status = state.handle.status(&name).ok_or_else(|| no_group(&name))?;
    let file = state.config_file.get(&state).await?;
    let source = file.source(&name);
    let config = match source {
        Source::File => file
            .raw
            .iter()
            .find(|g| g["name"].as_str() == Some(name.as_str()))
            .cloned(),
        Source::Database => state
            .store
            .group_rows()
            .await
            .map_err(ApiError::store)?
            .into_iter()
            .find(|r| r.name == name)
            .map(|r| item(&r.name, &r.spec, r.enabled)),
    };
    Ok(Json(GroupView {
        status,
        source,
        config: Some(config.unwrap_or(Value::Null)),
    }))
}

pub(crate) fn no_group(name: &str) -> ApiError {
    ApiError::not_found(format!("no group named `{name}`")).field("name")
}

/// A row as a `groups:` item: its name, its spec, its `enabled` column.
fn item(name: &str, spec: &Value, enabled: bool) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), Value::String(name.to_string()));
    if let Value::Object(s) = spec {
        for (k, v) in s {
            if k != "name" && k != "enabled" {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    m.insert("enabled".into(), Value::Bool(enabled));
    Value::Object(m)
}

/// A group's status as JSON for the audit log (null when it has none).
pub(crate) fn snapshot(state: &AppState, name: &str) -> Value {
    state
        .handle
        .status(name)
        .and_then(|s| serde_json::to_value(&*s).ok())
        .unwrap_or(Value::Null)
}

/// A group as in a config file's `groups:` list (`name`, `min`, `max`, `strategies`, …).
/// Validated exactly like the file's; `enabled` defaults to true.
#[derive(Deserialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct GroupSpec(Value);

/// The stored group.
#[derive(Serialize, ToSchema)]
pub(crate) struct Stored {
    name: String,
    enabled: bool,
    /// The row's spec as stored (without `enabled`, which is a column).
    #[schema(value_type = Object)]
    spec: Value,
    /// True when the row is new.
    created: bool,
}

/// Add a database group (admin). 409 when it exists already or the config file has a group
/// of that name.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = GroupSpec,
    responses((status = 201, body = Stored), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Body(GroupSpec(spec)): Body<GroupSpec>,
) -> ApiResult<Response> {
    let name = match spec.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(_) => return Err(ApiError::unprocessable("name must be a string").field("name")),
        None if spec.is_object() => {
            return Err(ApiError::unprocessable("missing field `name`").field("name"));
        }
        None => return Err(not_an_object()),
    };
    put_row(&state, &name, spec, true).await
}

/// Add or replace a database group (admin). The body's `name`, when given, must be the
/// path's.
#[utoipa::path(put, path = "/api/v1/groups/{name}", tag = "groups", request_body = GroupSpec,
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Stored), (status = 201, body = Stored), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    GroupName(name): GroupName,
    Body(GroupSpec(spec)): Body<GroupSpec>,
) -> ApiResult<Response> {
    match spec.get("name") {
        None => {}
        Some(Value::String(n)) if *n == name => {}
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "name {other} differs from the path's `{name}`"
            ))
            .field("name"));
        }
    }
    put_row(&state, &name, spec, false).await
}

fn not_an_object() -> ApiError {
    ApiError::unprocessable("expected a JSON object: a group as in a config file's `groups:` list")
}

/// Validate `spec` as group `name` and store it. `must_be_new`: POST (409 when it exists).
async fn put_row(
    state: &AppState,
    name: &str,
    mut spec: Value,
    must_be_new: bool,
) -> ApiResult<Response> {
    let Value::Object(m) = &mut spec else {
        return Err(not_an_object());
    };
    if !super::extract::valid_name(name) {
        // The config's own check words it; this only keeps a bad name out of the row path.
        return Err(ApiError::unprocessable(format!(
            "{name:?} is not a group name: 1 to 63 letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ))
        .field("name"));
    }
    let enabled = match m.remove("enabled") {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(ApiError::unprocessable("enabled must be true or false").field("enabled"));
        }
    };
    m.remove("name");
    let file = state.config_file.get(state).await?;
    database_groups(&file, name)?;
    if let Err(e) = config::group_from_row(name, &spec, enabled) {
        return Err(invalid_group(name, &e));
    }
    let rows = state.store.group_rows().await.map_err(ApiError::store)?;
    let before = rows
        .iter()
        .find(|r| r.name == name)
        .map(|r| item(&r.name, &r.spec, r.enabled));
    if must_be_new && before.is_some() {
        return Err(ApiError::conflict(format!(
            "a database group named `{name}` exists already: PUT /api/v1/groups/{name} replaces it"
        ))
        .field("name"));
    }
    state
        .store
        .put_group_row(name, &spec, enabled, Timestamp::now())
        .await
        .map_err(ApiError::store)?;
    let created = before.is_none();
    let after = item(name, &spec, enabled);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Stored {
        name: name.to_string(),
        enabled,
        spec,
        created,
    };
    Ok(noted(
        (status, Json(body)),
        AuditNote {
            before,
            after: Some(after),
            detail: None,
        },
    ))
}

/// 409 unless `name` may be a database group: the daemon reads rows, and the file has no
/// group of that name.
fn database_groups(file: &FileGroups, name: &str) -> ApiResult<()> {
    if file.groups_from == GroupsFrom::File {
        return Err(ApiError::conflict(
            "the config has no `groups_from: database` or `both`: groups come from the config file only; edit it and reload",
        ));
    }
    if file.names.contains(name) {
        return Err(ApiError::conflict(format!(
            "`{name}` is a group of the config file: edit the file and reload to change it"
        ))
        .field("name"));
    }
    Ok(())
}

/// The config's problems as one 422: the first problem's field (relative to the group:
/// `strategies[0].target_per_replica`) and every problem in the message, worded as in a file.
fn invalid_group(name: &str, e: &config::ConfigError) -> ApiError {
    let prefix = config::row_path(name);
    let relative = |path: &str| -> String {
        path.strip_prefix(&prefix)
            .map(|p| p.trim_start_matches('.').to_string())
            .unwrap_or_else(|| path.to_string())
    };
    let message = e
        .problems
        .iter()
        .map(|p| {
            let field = relative(&p.path);
            if field.is_empty() {
                p.message.clone()
            } else {
                format!("{field}: {}", p.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let err = ApiError::unprocessable(message);
    match e.problems.first().map(|p| relative(&p.path)) {
        Some(f) if !f.is_empty() => err.field(f),
        _ => err,
    }
}

/// The deleted group.
#[derive(Serialize, ToSchema)]
pub(crate) struct Deleted {
    deleted: String,
}

/// Delete a database group (admin); its loop stops at the daemon's next poll.
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    GroupName(name): GroupName,
) -> ApiResult<Response> {
    let file = state.config_file.get(&state).await?;
    database_groups(&file, &name)?;
    let rows = state.store.group_rows().await.map_err(ApiError::store)?;
    let before = rows
        .iter()
        .find(|r| r.name == name)
        .map(|r| item(&r.name, &r.spec, r.enabled));
    if before.is_none()
        || !state
            .store
            .delete_group_row(&name)
            .await
            .map_err(ApiError::store)?
    {
        return Err(ApiError::not_found(format!("no database group named `{name}`")).field("name"));
    }
    Ok(noted(
        Json(Deleted { deleted: name }),
        AuditNote {
            before,
            after: None,
            detail: None,
        },
    ))
}

/// A group's enabled flag, as set.
#[derive(Serialize, ToSchema)]
pub(crate) struct Enabled {
    name: String,
    enabled: bool,
}

/// Start evaluating a group (operator). A database group's row is written, so it lasts and
/// applies at the daemon's next poll; a file group is enabled until the next reload, which
/// applies the file's `enabled` again.
#[utoipa::path(post, path = "/api/v1/groups/{name}/enable", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Enabled), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn enable(state: State<AppState>, name: GroupName) -> ApiResult<Response> {
    set_enabled(state, name, true).await
}

/// Stop evaluating a group (operator); see `enable` for how long it lasts.
#[utoipa::path(post, path = "/api/v1/groups/{name}/disable", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Enabled), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn disable(state: State<AppState>, name: GroupName) -> ApiResult<Response> {
    set_enabled(state, name, false).await
}

async fn set_enabled(
    State(state): State<AppState>,
    GroupName(name): GroupName,
    enabled: bool,
) -> ApiResult<Response> {
    let before = snapshot(&state, &name);
    let file = state.config_file.get(&state).await?;
    match file.source(&name) {
        Source::Database => {
            let found = state
                .store
                .set_group_row_enabled(&name, enabled, Timestamp::now())
                .await
                .map_err(ApiError::store)?;
            if !found {
                return Err(no_group(&name));
            }
        }
        Source::File => state.handle.set_enabled(&name, enabled).await?,
    }
    Ok(noted(
        Json(Enabled { name, enabled }),
        AuditNote {
            before: Some(before),
            after: Some(json!({"enabled": enabled})),
            detail: None,
        },
    ))
}

/// Which directions to hold.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PauseBody {
    /// Hold scale-in (no replicas removed).
    scale_in: bool,
    /// Hold scale-out (no replicas added).
    scale_out: bool,
}

/// A group's pause, as set.
#[derive(Serialize, ToSchema)]
pub(crate) struct Paused {
    name: String,
    #[schema(value_type = Object)]
    paused: Pause,
}

/// Hold a group's scale-in, scale-out or both (operator); `false` for both resumes it.
#[utoipa::path(post, path = "/api/v1/groups/{name}/pause", tag = "groups", request_body = PauseBody,
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Paused), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    GroupName(name): GroupName,
    Body(body): Body<PauseBody>,
) -> ApiResult<Response> {
    let before = snapshot(&state, &name);
    let paused = Pause {
        scale_in: body.scale_in,
        scale_out: body.scale_out,
    };
    state.handle.set_paused(&name, paused).await?;
    let after = snapshot(&state, &name);
    Ok(noted(
        Json(Paused { name, paused }),
        AuditNote {
            before: Some(before),
            after: Some(after),
            detail: None,
        },
    ))
}
