//! `GET /api/v1/recommendations` and `/api/v1/groups/{name}/recommendation`: what each group
//! would do now and why, per strategy, from a dry evaluation (`evaluate_now`: the group
//! observes and decides, and nothing is acted on or recorded).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scalepilot_engine::Evaluation;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{GroupName, Params};
use super::groups::no_group;
use super::offset_page::OffsetPage;

/// Dry evaluations run at once for the list: each one observes its sources.
const PARALLEL: usize = 8;

/// One strategy's recommendation.
#[derive(Serialize, ToSchema)]
pub(crate) struct StrategyView {
    kind: String,
    /// Null: no opinion (missing data, or a schedule outside its hours).
    replicas: Option<u32>,
    /// 0 to 1: a predictive strategy's own confidence in its forecast; for the others 1 when
    /// they had the data they need and 0 when they had no opinion.
    confidence: f64,
    missing_data: bool,
    reason: String,
}

/// What a group would do now.
#[derive(Serialize, ToSchema)]
pub(crate) struct Recommendation {
    group: String,
    current: Option<u32>,
    ready: Option<u32>,
    /// The strategies' combined recommendation, before behavior rules.
    recommended: Option<u32>,
    /// Where the group would go.
    desired: Option<u32>,
    /// Whether it would change the target now.
    would_scale: bool,
    strategies: Vec<StrategyView>,
    /// Behavior rules that changed the count (`rule`, `from`, `to`, `detail`).
    #[schema(value_type = Vec<Object>)]
    limits: Value,
    limited_by: Option<String>,
    /// The whole decision, as recorded for an evaluation.
    #[schema(value_type = Option<Object>)]
    decision: Option<Value>,
    /// Why there is no recommendation (the group is not running, its sources failed…).
    error: Option<String>,
}

impl Recommendation {
    fn from_evaluation(group: &str, e: &Evaluation) -> Self {
        let d = &e.decision;
        let reasons = d.reasons();
        let strategies = d
            .strategies
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let stated = reasons
                    .get(i)
                    .and_then(|r| r.numbers.get("confidence"))
                    .copied();
                let had = s.replicas.is_some() && !s.missing_data;
                StrategyView {
                    kind: s.kind.to_string(),
                    replicas: s.replicas,
                    confidence: stated.unwrap_or(if had { 1.0 } else { 0.0 }),
                    missing_data: s.missing_data,
                    reason: s.reason.to_string(),
                }
            })
            .collect();
        Recommendation {
            group: group.to_string(),
            current: Some(d.current_replicas),
            ready: Some(d.ready_replicas),
            recommended: d.recommended_replicas,
            desired: Some(d.desired_replicas),
            would_scale: d.scale,
            strategies,
            limits: serde_json::to_value(&d.limits).unwrap_or(Value::Null),
            limited_by: d
                .limited_by
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            decision: serde_json::to_value(d).ok(),
            error: e.event.error.clone(),
        }
    }

    fn failed(group: &str, error: String) -> Self {
        Recommendation {
            group: group.to_string(),
            current: None,
            ready: None,
            recommended: None,
            desired: None,
            would_scale: false,
            strategies: Vec::new(),
            limits: Value::Array(Vec::new()),
            limited_by: None,
            decision: None,
            error: Some(error),
        }
    }
}

/// Groups' recommendations, a page of them.
#[derive(Serialize, ToSchema)]
pub(crate) struct Recommendations {
    recommendations: Vec<Recommendation>,
    /// Pass as `cursor` for the next groups; null after the last.
    next_cursor: Option<String>,
}

/// Which groups.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query string; `all` parses it.
pub(crate) struct RecommendationParams {
    /// Groups per page, 1 to 1000 (default 100): each is a dry evaluation.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// What each group would do now, without acting (a dry evaluation each), in the engine's
/// order, a page of groups at a time.
#[utoipa::path(get, path = "/api/v1/recommendations", tag = "groups", params(RecommendationParams),
    responses((status = 200, body = Recommendations), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn all(
    State(state): State<AppState>,
    mut params: Params,
) -> ApiResult<Json<Recommendations>> {
    let page = OffsetPage::take(&mut params)?;
    params.finish()?;
    let statuses = state.handle.statuses();
    let names: Vec<String> = statuses
        .iter()
        .skip(page.from)
        .take(page.limit)
        .map(|s| s.name.clone())
        .collect();
    let next_cursor = page.next_cursor(names.len(), statuses.len());
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let handle = state.handle.clone();
        let limit = limit.clone();
        let name = name.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let r = match handle.evaluate_now(&name).await {
                Ok(e) => Recommendation::from_evaluation(&name, &e),
                Err(e) => Recommendation::failed(&name, e.to_string()),
            };
            (i, r)
        });
    }
    let mut out: Vec<(usize, Recommendation)> = Vec::with_capacity(names.len());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!("api: a dry evaluation's task failed: {e}"),
        }
    }
    // In the engine's order, whatever order they finished in.
    out.sort_by_key(|(i, _)| *i);
    Ok(Json(Recommendations {
        recommendations: out.into_iter().map(|(_, r)| r).collect(),
        next_cursor,
    }))
}

/// What a group would do now and why, per strategy, without acting.
#[utoipa::path(get, path = "/api/v1/groups/{name}/recommendation", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Recommendation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn one(
    State(state): State<AppState>,
    GroupName(name): GroupName,
    params: Params,
) -> ApiResult<Json<Recommendation>> {
    params.finish()?;
    if state.handle.status(&name).is_none() {
        return Err(no_group(&name));
    }
    let e = state
        .handle
        .evaluate_now(&name)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(Recommendation::from_evaluation(&name, &e)))
}
