//! The REST API (`api:` in the config): JSON under `/api/v1`, health and readiness probes,
//! Prometheus metrics and the embedded dashboard, served by the daemon beside its engine.
//!
//! Every route is registered through utoipa-axum's `OpenApiRouter`, so the OpenAPI document
//! (`/api/v1/openapi.json`) is generated from the handlers themselves. Every request passes
//! [`auth::gate`] (tokens, roles, audit log) and [`observe`] (metrics); every failure is the
//! one JSON shape of [`error::ApiError`].

pub(crate) mod assets;
mod audit;
mod auth;
mod control;
mod error;
mod extract;
mod groups;
mod health;
mod history;
mod listen;
mod offset_page;
mod openapi;
mod recommend;
pub(crate) mod secret;
mod series;
mod simulate;
mod site;
mod tokens;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::Result;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use scalepilot_core::config::Api;
use scalepilot_engine::EngineHandle;
use scalepilot_store::Store;

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) handle: EngineHandle,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: auth::Tokens,
    pub(crate) series: series::Series,
    pub(crate) config_file: groups::ConfigFile,
    /// The OpenAPI document as JSON, set once the router is built.
    pub(crate) openapi: OnceLock<String>,
}

pub(crate) type AppState = Arc<Shared>;

/// The API server, running.
pub(crate) struct Running {
    /// Where it listens (the port chosen when the config said 0).
    pub(crate) addr: SocketAddr,
    /// The base URL clients use (`http://127.0.0.1:8080`, `https://…`).
    url: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Running {
    /// The base URL, for logs.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Stop serving and wait for the server to end: requests in flight get
    /// [`STOP_GRACE`] to finish, then their connections are dropped, so a client that never
    /// finishes sending its request cannot keep the daemon from exiting.
    pub(crate) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut task = self.task;
        match tokio::time::timeout(STOP_GRACE, &mut task).await {
            Ok(done) => done?,
            Err(_) => {
                tracing::warn!(
                    "API requests still in flight after {} s: dropping them",
                    STOP_GRACE.as_secs()
                );
                task.abort();
                Ok(())
            }
        }
    }
}

/// How long requests in flight may take to finish once the daemon stops.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Bind `api.listen` and serve the API for `handle` until [`Running::stop`] (the daemon
/// calls it once its engine has stopped).
pub(crate) async fn start(handle: EngineHandle, api: &Api, base_dir: &Path) -> Result<Running> {
    let bound = listen::bind(api, base_dir).await?;
    let addr = bound.addr;
    let url = bound.url();
    let state = Arc::new(Shared {
        store: handle.store(),
        series: series::Series::default(),
        config_file: groups::ConfigFile::default(),
        tokens: auth::Tokens::default(),
        openapi: OnceLock::new(),
        handle: handle.clone(),
    });
    series::follow(state.clone());
    let app = app(state);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        // The sender is dropped or set by `Running::stop`, which `run` calls once the
        // engine has stopped.
        while stopped.changed().await.is_ok() {
            if *stopped.borrow() {
                break;
            }
        }
    };
    let task = tokio::spawn(bound.serve(app, shutdown));
    Ok(Running {
        addr,
        url,
        stop,
        task,
    })
}

/// The whole application: documented routes, fallbacks, gate and metrics.
pub(crate) fn app(state: AppState) -> axum::Router {
    let (router, doc) = openapi::router().split_for_parts();
    let json = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    let _ = state.openapi.set(json);
    router
        .fallback(site::not_found)
        .method_not_allowed_fallback(site::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Count and time every request by its route template (`/api/v1/groups/{name}`, never the
/// concrete path: group names would make the metric's label set unbounded).
async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let response = next.run(req).await;
    let route = response
        .extensions()
        .get::<auth::RouteTemplate>()
        .map(|r| r.0.as_str())
        .unwrap_or("unmatched");
    state.handle.metrics().observe_api(
        method.as_str(),
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
