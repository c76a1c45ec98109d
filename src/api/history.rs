//! `/api/v1/activities` and `/api/v1/errors`: history with filters and cursor pagination,
//! and `/api/v1/groups/{name}/forecasts`.
//!
//! Pages run newest first by id. The cursor is opaque to clients (it is the last row's id):
//! the next page holds the rows older than it, so rows written meanwhile never shift a page
//! and a walk sees each row once.

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use scalepilot_store::{Activity, ActivityStatus, ErrorComponent, ErrorRecord, HistoryQuery};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{GroupName, Params};
use super::groups::no_group;

/// Rows per page unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// The filters and page every history route takes (`group` is `actor` for the audit log).
pub(crate) struct Page {
    pub(crate) group: Option<String>,
    pub(crate) since: Option<Timestamp>,
    pub(crate) until: Option<Timestamp>,
    pub(crate) status: Option<String>,
    pub(crate) before_id: Option<i64>,
    pub(crate) limit: u32,
}

impl Page {
    /// Read the parameters; `who` names the group filter (`group` or `actor`), `statuses`
    /// the values `status` may take. Anything else is a 400 naming the parameter.
    pub(crate) fn read(mut p: Params, who: &str, statuses: &[&str]) -> ApiResult<Page> {
        let time = |name: &str, v: Option<String>| -> ApiResult<Option<Timestamp>> {
            v.map(|s| {
                s.parse::<Timestamp>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z, got {s:?}"
                    ))
                    .field(name)
                })
            })
            .transpose()
        };
        let group = p.take(who);
        let since = time("since", p.take("since"))?;
        let until = time("until", p.take("until"))?;
        if let (Some(s), Some(u)) = (since, until)
            && s > u
        {
            return Err(ApiError::bad_request("since is after until").field("since"));
        }
        let status = p.take("status");
        if let Some(s) = &status
            && !statuses.contains(&s.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "status must be one of {}, got {s:?}",
                statuses.join(", ")
            ))
            .field("status"));
        }
        let limit = match p.take("limit") {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}, got {s:?}"
                    ))
                    .field("limit"));
                }
            },
        };
        let before_id = match p.take("cursor") {
            None => None,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "cursor {s:?} is not one this API gave: pass next_cursor as it came"
                    ))
                    .field("cursor"));
                }
            },
        };
        p.finish()?;
        Ok(Page {
            group,
            since,
            until,
            status,
            before_id,
            limit,
        })
    }

    /// The store's query. One row more than the page is asked for (up to the store's own
    /// cap), so that the last page is known to be last.
    pub(crate) fn query(&self) -> HistoryQuery<'_> {
        HistoryQuery {
            group: self.group.as_deref(),
            since: self.since,
            until: self.until,
            status: self.status.as_deref(),
            before_id: self.before_id,
            limit: (self.limit + 1).min(MAX_LIMIT),
        }
    }

    /// The page's rows and the next cursor from `rows` (as the store gave them, newest first).
    pub(crate) fn cut<T>(
        &self,
        mut rows: Vec<T>,
        id: impl Fn(&T) -> i64,
    ) -> (Vec<T>, Option<String>) {
        let limit = self.limit as usize;
        // At the store's cap (limit 1000) the extra row cannot be asked for: a full page
        // then gets a cursor, and the page after it may be empty.
        let more = rows.len() > limit || (rows.len() == limit && self.limit == MAX_LIMIT);
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        (rows, next)
    }
}

/// RFC 3339 of a stored millisecond time.
pub(crate) fn at(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// History filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query string; `Page::read` parses it.
pub(crate) struct HistoryParams {
    /// Only this group.
    group: Option<String>,
    /// Only rows at or after this time (RFC 3339).
    since: Option<String>,
    /// Only rows at or before this time (RFC 3339).
    until: Option<String>,
    /// Activities: pending, succeeded, failed, interrupted or dry_run; errors: source,
    /// target, store, config or alert.
    status: Option<String>,
    /// Rows per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A scaling activity.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActivityView {
    id: i64,
    group: String,
    started: String,
    finished: Option<String>,
    from: i64,
    to: i64,
    status: String,
    error: Option<String>,
    /// The decision record (strategies, reasons, rules), as stored.
    #[schema(value_type = Object)]
    decision: Value,
    /// Manual scales: who asked.
    actor: Option<String>,
    /// Manual scales: why.
    reason: Option<String>,
}

impl From<Activity> for ActivityView {
    fn from(a: Activity) -> Self {
        let manual = a.decision.get("manual").filter(|m| m.is_object());
        let text = |k: &str| manual.and_then(|m| m[k].as_str()).map(str::to_string);
        ActivityView {
            actor: text("actor"),
            reason: text("reason"),
            id: a.id,
            group: a.group,
            started: at(a.started_ms),
            finished: a.finished_ms.map(at),
            from: a.from_replicas,
            to: a.to_replicas,
            status: a.status.as_str().to_string(),
            error: a.error,
            decision: a.decision,
        }
    }
}

/// A page of activities.
#[derive(Serialize, ToSchema)]
pub(crate) struct Activities {
    activities: Vec<ActivityView>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Scaling activities, newest first.
#[utoipa::path(get, path = "/api/v1/activities", tag = "history", params(HistoryParams),
    responses((status = 200, body = Activities), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn activities(
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Json<Activities>> {
    let statuses: Vec<&str> = ActivityStatus::ALL.iter().map(|s| s.as_str()).collect();
    let page = Page::read(params, "group", &statuses)?;
    let rows = state
        .store
        .activities_page(&page.query())
        .await
        .map_err(ApiError::store)?;
    let (rows, next_cursor) = page.cut(rows, |a| a.id);
    Ok(Json(Activities {
        activities: rows.into_iter().map(ActivityView::from).collect(),
        next_cursor,
    }))
}

/// A recorded error.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorView {
    id: i64,
    group: Option<String>,
    component: String,
    message: String,
    at: String,
}

impl From<ErrorRecord> for ErrorView {
    fn from(e: ErrorRecord) -> Self {
        ErrorView {
            id: e.id,
            group: e.group,
            component: e.component.as_str().to_string(),
            message: e.message,
            at: at(e.at_ms),
        }
    }
}

/// A page of errors.
#[derive(Serialize, ToSchema)]
pub(crate) struct Errors {
    errors: Vec<ErrorView>,
    next_cursor: Option<String>,
}

/// Recorded errors (sources, targets, store, config, alerts), newest first; `status`
/// filters by component.
#[utoipa::path(get, path = "/api/v1/errors", tag = "history", params(HistoryParams),
    responses((status = 200, body = Errors), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn errors(
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Json<Errors>> {
    let components: Vec<&str> = ErrorComponent::ALL.iter().map(|c| c.as_str()).collect();
    let page = Page::read(params, "group", &components)?;
    let rows = state
        .store
        .errors_page(&page.query())
        .await
        .map_err(ApiError::store)?;
    let (rows, next_cursor) = page.cut(rows, |e| e.id);
    Ok(Json(Errors {
        errors: rows.into_iter().map(ErrorView::from).collect(),
        next_cursor,
    }))
}

/// A forecast and, once it is due, the actual value.
#[derive(Serialize, ToSchema)]
pub(crate) struct ForecastView {
    metric: String,
    made: String,
    serves_from: String,
    due: String,
    estimate: f64,
    provision: f64,
    actual: Option<f64>,
}

impl From<scalepilot_store::ForecastRecord> for ForecastView {
    fn from(f: scalepilot_store::ForecastRecord) -> Self {
        ForecastView {
            metric: f.metric,
            made: at(f.made_ms),
            serves_from: at(f.serves_from_ms),
            due: at(f.due_ms),
            estimate: f.estimate,
            provision: f.provision,
            actual: f.actual,
        }
    }
}

/// A group's forecasts.
#[derive(Serialize, ToSchema)]
pub(crate) struct Forecasts {
    forecasts: Vec<ForecastView>,
}

/// The latest forecasts recorded for a group (its predictive strategies), at most 50.
pub(crate) async fn forecast_views(state: &AppState, group: &str) -> ApiResult<Vec<ForecastView>> {
    Ok(state
        .store
        .forecasts(Some(group), 50, Timestamp::now())
        .await
        .map_err(ApiError::store)?
        .into_iter()
        .map(ForecastView::from)
        .collect())
}

/// A group's latest forecasts, with the actual values of those due.
#[utoipa::path(get, path = "/api/v1/groups/{name}/forecasts", tag = "history",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Forecasts), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn forecasts(
    State(state): State<AppState>,
    GroupName(name): GroupName,
    params: Params,
) -> ApiResult<Json<Forecasts>> {
    params.finish()?;
    if state.handle.status(&name).is_none() {
        return Err(no_group(&name));
    }
    Ok(Json(Forecasts {
        forecasts: forecast_views(&state, &name).await?,
    }))
}
