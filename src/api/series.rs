//! `GET /api/v1/groups/{name}/series`: each group's recent evaluations for the dashboard's
//! charts, kept in memory (the last [`KEEP`] events per group) from the engine's live events,
//! with the group's latest forecasts from the store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use scalepilot_engine::Event;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{GroupName, Params};
use super::groups::no_group;
use super::history::{ForecastView, forecast_views};

/// Events kept per group: an hour at a 5 s interval.
pub(crate) const KEEP: usize = 720;

/// One evaluation, as charted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Point {
    at: String,
    /// Null when the evaluation failed before the target's count was known.
    current: Option<u32>,
    ready: Option<u32>,
    desired: u32,
    metrics: BTreeMap<String, f64>,
}

/// Recent points per group.
#[derive(Default)]
pub(crate) struct Series {
    groups: Mutex<HashMap<String, VecDeque<Point>>>,
}

impl Series {
    fn push(&self, e: Event) {
        let failed = e.error.is_some();
        let point = Point {
            at: e.at.to_string(),
            current: (!failed).then_some(e.current),
            ready: (!failed).then_some(e.ready),
            desired: e.desired,
            // JSON has no NaN or infinity: such a value is left out.
            metrics: e
                .metrics
                .into_iter()
                .filter(|(_, v)| v.is_finite())
                .collect(),
        };
        if let Ok(mut groups) = self.groups.lock() {
            let ring = groups.entry(e.group).or_default();
            if ring.len() == KEEP {
                ring.pop_front();
            }
            ring.push_back(point);
        }
    }

    fn points(&self, group: &str) -> Vec<Point> {
        self.groups
            .lock()
            .ok()
            .and_then(|g| g.get(group).map(|r| r.iter().cloned().collect()))
            .unwrap_or_default()
    }
}

/// Fill the series from the engine's events until the engine stops. Events missed while
/// this task lagged behind are skipped (the chart has a gap), not waited for.
pub(crate) fn follow(state: AppState) {
    let mut events = state.handle.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => state.series.push(e),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    });
}

/// A group's recent evaluations and forecasts.
#[derive(Serialize, ToSchema)]
pub(crate) struct SeriesView {
    points: Vec<Point>,
    forecasts: Vec<ForecastView>,
}

/// A group's last evaluations (up to 720, oldest first) and latest forecasts.
#[utoipa::path(get, path = "/api/v1/groups/{name}/series", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = SeriesView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn series(
    State(state): State<AppState>,
    GroupName(name): GroupName,
    params: Params,
) -> ApiResult<Json<SeriesView>> {
    params.finish()?;
    if state.handle.status(&name).is_none() {
        return Err(no_group(&name));
    }
    Ok(Json(SeriesView {
        points: state.series.points(&name),
        forecasts: forecast_views(&state, &name).await?,
    }))
}
