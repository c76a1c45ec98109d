//! `POST /api/v1/simulate`: a policy over a shipped or uploaded trace, the same report as
//! `scalepilot simulate --json` (see [`crate::cli::simulate::report`]).
//!
//! Bounded: the body is at most 1 MiB (the extractor's limit), an uploaded trace at most
//! 200,000 points, one run at most [`REPORT_MAX_WORK`] policy-ticks, and it runs on a blocking
//! thread with a 10 s timeout, so a request can neither starve the engine's runtime nor hold a
//! connection open for long.
//!
//! [`REPORT_MAX_WORK`]: crate::cli::simulate::REPORT_MAX_WORK

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use scalepilot_core::config;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{AuditNote, noted};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Body;
use crate::cli::simulate::{ReportError, SHIPPED, report};

/// Rows an uploaded trace may have.
const MAX_POINTS: usize = 200_000;
/// How long one simulation may run.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A simulation request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimulateBody {
    /// YAML: one group, or a policy file's text (its `groups:` are simulated).
    config: String,
    /// A shipped trace's name, or `{"csv": "timestamp_seconds,value\n…"}`.
    trace: TraceRef,
}

/// Which trace to replay.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum TraceRef {
    /// One of the traces shipped with scalepilot (traces/).
    Shipped(String),
    /// An uploaded trace.
    Upload(Upload),
}

/// An uploaded trace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upload {
    /// `timestamp_seconds,value` rows, as the trace files.
    csv: String,
}

/// Replay a trace through the config's groups beside the HPA and the oracle (operator);
/// returns `scalepilot simulate --json`'s report.
#[utoipa::path(post, path = "/api/v1/simulate", tag = "simulate", request_body = SimulateBody,
    responses((status = 200, description = "The simulate report", body = Object),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn simulate(
    State(_state): State<AppState>,
    Body(body): Body<SimulateBody>,
) -> ApiResult<Response> {
    let groups = match config::groups_from_text(&body.config, "config") {
        Ok(g) => g.into_iter().map(|g| g.group).collect::<Vec<_>>(),
        Err(e) => {
            let first = e
                .problems
                .first()
                .map(|p| p.path.clone())
                .unwrap_or_default();
            let err = ApiError::unprocessable(
                e.problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            return Err(if first.is_empty() {
                err.field("config")
            } else {
                err.field(format!("config.{first}"))
            });
        }
    };
    let (csv, meta, name) = match body.trace {
        TraceRef::Shipped(name) => match SHIPPED.iter().find(|(n, _, _)| *n == name) {
            Some((n, csv, meta)) => (csv.to_string(), Some(meta.to_string()), n.to_string()),
            None => {
                let names: Vec<&str> = SHIPPED.iter().map(|(n, _, _)| *n).collect();
                return Err(ApiError::not_found(format!(
                    "no shipped trace named {name:?}; the shipped traces are {}",
                    names.join(", ")
                ))
                .field("trace"));
            }
        },
        TraceRef::Upload(Upload { csv }) => {
            let points = csv.lines().filter(|l| !l.trim().is_empty()).count();
            if points > MAX_POINTS + 1 {
                return Err(ApiError::unprocessable(format!(
                    "the trace has {points} rows; at most {MAX_POINTS} are simulated per request"
                ))
                .field("trace.csv"));
            }
            (csv, None, "upload".to_string())
        }
    };
    let detail = format!("simulated {} group(s) over {name}", groups.len());
    let run = tokio::task::spawn_blocking(move || report(&csv, meta.as_deref(), &name, groups));
    let report = match tokio::time::timeout(TIMEOUT, run).await {
        Err(_) => {
            return Err(ApiError::unavailable(
                "the simulation did not finish within 10 s: use a shorter trace or `scalepilot simulate`",
            ));
        }
        Ok(Err(e)) => return Err(ApiError::unavailable(format!("the simulation failed: {e}"))),
        Ok(Ok(Err(ReportError::Invalid(m)))) => {
            return Err(ApiError::unprocessable(m).field("trace"));
        }
        Ok(Ok(Err(ReportError::TooBig(m)))) => {
            return Err(ApiError::unprocessable(m).field("trace"));
        }
        Ok(Ok(Ok(v))) => v,
    };
    Ok(noted(
        Json::<Value>(report),
        AuditNote {
            before: None,
            after: None,
            detail: Some(detail),
        },
    ))
}
