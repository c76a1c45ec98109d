//! `GET /api/v1/groups/{name}/series`: each group's recent evaluations for the dashboard's
//! charts, kept in memory (the last [`KEEP`] events per group) from the engine's live events,
//! with the group's latest forecasts from the store.
//!
//! Memory is bounded whatever the number of groups: rings are kept for the first
//! [`ALWAYS`] groups that report (a small deployment has every chart from the start) and, past
//! that, for groups whose series was asked for in the last [`WATCH`], up to [`MAX_RINGS`] in
//! all (a large one charts the groups people look at, from their first look on). A point is
//! compact (its metric names shared within its group), about 60 bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use scalepilot_engine::Event;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{GroupName, Params};
use super::groups::no_group;
use super::history::{ForecastView, forecast_views};

/// Events kept per group: an hour at a 5 s interval.
pub(crate) const KEEP: usize = 720;
/// Groups whose rings are kept from their first event, asked for or not.
const ALWAYS: usize = 200;
/// How long a group's ring is kept (past [`ALWAYS`]) after its series was last asked for.
const WATCH: Duration = Duration::from_secs(15 * 60);
/// Rings at most.
const MAX_RINGS: usize = 1000;

/// One evaluation, as charted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Point {
    #[schema(value_type = String)]
    at: Timestamp,
    /// Null when the evaluation failed before the target's count was known.
    current: Option<u32>,
    ready: Option<u32>,
    desired: u32,
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    metrics: Metrics,
}

/// A point's metric values, serialized as `{"name": value}`.
#[derive(Debug, Clone)]
struct Metrics(Box<[(Arc<str>, f64)]>);

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            m.serialize_entry(&**k, v)?;
        }
        m.end()
    }
}

/// One group's recent points.
struct Ring {
    points: VecDeque<Point>,
    /// Metric names, shared by the points.
    names: Vec<Arc<str>>,
    /// One of the first [`ALWAYS`]: kept whether asked for or not.
    pinned: bool,
    /// When its series was last asked for (None: never).
    wanted: Option<Instant>,
}

impl Ring {
    fn new(pinned: bool, wanted: Option<Instant>) -> Ring {
        Ring {
            points: VecDeque::new(),
            names: Vec::new(),
            pinned,
            wanted,
        }
    }

    fn name(&mut self, n: &str) -> Arc<str> {
        if let Some(found) = self.names.iter().find(|x| &***x == n) {
            return found.clone();
        }
        let new: Arc<str> = n.into();
        self.names.push(new.clone());
        new
    }

    fn push(&mut self, e: &Event) {
        let failed = e.error.is_some();
        // JSON has no NaN or infinity: such a value is left out.
        let metrics = e
            .metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| (self.name(k), *v))
            .collect();
        if self.points.len() == KEEP {
            self.points.pop_front();
        }
        self.points.push_back(Point {
            at: e.at,
            current: (!failed).then_some(e.current),
            ready: (!failed).then_some(e.ready),
            desired: e.desired,
            metrics: Metrics(metrics),
        });
    }
}

/// Recent points per group.
#[derive(Default)]
pub(crate) struct Series {
    rings: Mutex<HashMap<String, Ring>>,
}

impl Series {
    fn push(&self, e: &Event) {
        let Ok(mut rings) = self.rings.lock() else {
            return;
        };
        if let Some(ring) = rings.get_mut(&e.group) {
            ring.push(e);
        } else if rings.len() < ALWAYS {
            let mut ring = Ring::new(true, None);
            ring.push(e);
            rings.insert(e.group.clone(), ring);
        }
    }

    /// The group's points, oldest first; from now on its ring is kept (room permitting).
    fn points(&self, group: &str) -> Vec<Point> {
        let Ok(mut rings) = self.rings.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        if let Some(ring) = rings.get_mut(group) {
            ring.wanted = Some(now);
            return ring.points.iter().cloned().collect();
        }
        if rings.len() < MAX_RINGS {
            rings.insert(group.to_string(), Ring::new(false, Some(now)));
        }
        Vec::new()
    }

    /// Drop the rings past [`ALWAYS`] nobody asked for within [`WATCH`].
    fn forget(&self) {
        if let Ok(mut rings) = self.rings.lock() {
            rings.retain(|_, r| r.pinned || r.wanted.is_some_and(|at| at.elapsed() < WATCH));
        }
    }
}

/// Fill the series from the engine's events until the engine stops. Events missed while
/// this task lagged behind are skipped (the chart has a gap), not waited for.
pub(crate) fn follow(state: AppState) {
    let mut events = state.handle.subscribe();
    tokio::spawn(async move {
        let mut sweep = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                e = events.recv() => match e {
                    Ok(e) => state.series.push(&e),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                },
                _ = sweep.tick() => state.series.forget(),
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

/// A group's last evaluations (up to 720, oldest first) and latest forecasts. With more than
/// 200 groups, a group's points are kept from the first time its series is asked for.
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn event(group: &str, desired: u32) -> Event {
        Event {
            group: group.to_string(),
            at: Timestamp::now(),
            current: desired,
            ready: desired,
            desired,
            scaled: false,
            summary: String::new(),
            metrics: BTreeMap::from([
                ("request_rate".to_string(), 1.5),
                ("bad".to_string(), f64::NAN),
            ]),
            error: None,
        }
    }

    #[test]
    fn rings_are_bounded_per_group_and_in_number() {
        let series = Series::default();
        for i in 0..ALWAYS + 50 {
            series.push(&event(&format!("g{i}"), 1));
        }
        // The first ALWAYS groups are kept; the others only once asked for.
        assert_eq!(series.rings.lock().unwrap().len(), ALWAYS);
        let late = format!("g{}", ALWAYS + 10);
        assert!(series.points(&late).is_empty());
        series.push(&event(&late, 7));
        let points = series.points(&late);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].desired, 7);
        // A ring keeps the last KEEP points, oldest first.
        for d in 0..KEEP as u32 + 5 {
            series.push(&event("g0", d));
        }
        let points = series.points("g0");
        assert_eq!(points.len(), KEEP);
        // The first group event (desired 1) and d = 0..4 were pushed out.
        assert_eq!(points[0].desired, 5);
        assert_eq!(points[KEEP - 1].desired, KEEP as u32 + 4);
        // A NaN is left out of the JSON, the rest keeps its name.
        let json = serde_json::to_value(&points[0]).unwrap();
        assert_eq!(json["metrics"], serde_json::json!({"request_rate": 1.5}));
        // Asked-for rings past ALWAYS are forgotten once unwatched; the first ones stay.
        if let Some(r) = series.rings.lock().unwrap().get_mut(&late) {
            r.wanted = Instant::now().checked_sub(WATCH + Duration::from_secs(1));
        }
        series.forget();
        let rings = series.rings.lock().unwrap();
        assert!(!rings.contains_key(&late));
        assert_eq!(rings.len(), ALWAYS);
    }
}
