//! `/healthz` (the process is up), `/readyz` (it can do its job) and `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// How long the store's readiness read may take.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// How far behind its schedule the engine's loops may run and still be ready. A fixed bound
/// rather than a multiple of the groups' intervals: evaluation intervals run from a second to
/// hours, and a loop that is 10 s late is stuck or starved whatever its group's interval.
pub(crate) const MAX_LOOP_LAG_SECONDS: f64 = 10.0;

/// The process is up.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always "ok".
    status: &'static str,
}

/// Answers 200 as long as the process serves requests at all.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Whether the daemon can do its job, and each check's result.
#[derive(Serialize, ToSchema)]
pub(crate) struct Readiness {
    ready: bool,
    checks: BTreeMap<&'static str, Check>,
}

/// One readiness check.
#[derive(Serialize, ToSchema)]
pub(crate) struct Check {
    ok: bool,
    detail: String,
}

/// 200 when the store answers a read within 2 s, the engine's loops run on time (lag under
/// 10 s) and, with HA, this daemon's session is live (it may hold and act on leases); else
/// 503 with the failed checks.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let store = match tokio::time::timeout(STORE_TIMEOUT, state.store.tokens_version()).await {
        Ok(Ok(_)) => Check {
            ok: true,
            detail: "the store answered".into(),
        },
        Ok(Err(e)) => Check {
            ok: false,
            detail: format!("the store failed: {e}"),
        },
        Err(_) => Check {
            ok: false,
            detail: "the store did not answer within 2 s".into(),
        },
    };
    checks.insert("store", store);
    let lag = state.handle.loop_lag_seconds();
    checks.insert(
        "loops",
        Check {
            ok: lag < MAX_LOOP_LAG_SECONDS,
            detail: format!(
                "the engine's loops ran at most {lag:.3} s late over the last minute (bound {MAX_LOOP_LAG_SECONDS} s)"
            ),
        },
    );
    if let Some(ha) = state.handle.ha_status() {
        checks.insert(
            "ha",
            Check {
                ok: ha.acting,
                detail: if ha.acting {
                    format!(
                        "session live; {} lease(s) held among {} daemon(s)",
                        ha.leases_held, ha.live_daemons
                    )
                } else {
                    format!(
                        "session not live: {}",
                        ha.last_error
                            .as_deref()
                            .unwrap_or("no heartbeat answered yet")
                    )
                },
            },
        );
    }
    let ready = checks.values().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready, checks })).into_response()
}

/// Prometheus metrics, in the text exposition format. Unauthenticated like `/healthz`:
/// scrapers rarely carry tokens, and it holds counts and timings, no secrets.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Metrics in the OpenMetrics text format", content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.handle.metrics().encode(),
    )
        .into_response()
}
