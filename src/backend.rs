//! The built-in backend (`scalepilot backend`): a small HTTP server with a real, finite
//! capacity, for the demo and the tests.
//!
//! Each request holds one of `concurrency` slots for `work` (of which `cpu` is spent spinning
//! on the CPU and the rest waiting), so an instance serves at most concurrency / work requests
//! per second whatever the machine's core count; beyond that requests queue, and past
//! `max_queue` they get 503. Counters are exposed on /metrics in the Prometheus text format.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

/// Backend settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub addr: SocketAddr,
    pub work: Duration,
    pub cpu: Duration,
    pub concurrency: usize,
    pub max_queue: i64,
    pub startup_delay: Duration,
}

struct Shared {
    settings: Settings,
    slots: Semaphore,
    queued: AtomicI64,
    received: Counter,
    requests: Counter,
    rejected: Counter,
    in_flight: Gauge,
    queue: Gauge,
    registry: Registry,
}

/// Counts a request as waiting until dropped, also when the client gives up first (axum drops
/// the handler's future): gauges must not leak, or the queue would look full forever.
struct Waiting<'a>(&'a Shared);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::SeqCst);
        self.0.queue.dec();
    }
}

/// Counts a request as being worked on until dropped.
struct Working<'a>(&'a Shared);

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

async fn work(State(s): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    s.received.inc();
    if s.queued.fetch_add(1, Ordering::SeqCst) >= s.settings.max_queue {
        s.queued.fetch_sub(1, Ordering::SeqCst);
        s.rejected.inc();
        return (StatusCode::SERVICE_UNAVAILABLE, "overloaded\n");
    }
    s.queue.inc();
    let waiting = Waiting(&s);
    // The semaphore is never closed, so acquire cannot fail.
    let permit = s.slots.acquire().await;
    drop(waiting);
    s.in_flight.inc();
    let working = Working(&s);
    let start = Instant::now();
    while start.elapsed() < s.settings.cpu {
        std::hint::spin_loop();
    }
    tokio::time::sleep(s.settings.work.saturating_sub(s.settings.cpu)).await;
    drop(permit);
    drop(working);
    s.requests.inc();
    (StatusCode::OK, "ok\n")
}

async fn metrics(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &s.registry) {
        Ok(()) => (StatusCode::OK, out),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encode: {e}\n")),
    }
}

pub(crate) fn app(settings: Settings) -> Router {
    let mut registry = Registry::default();
    let (received, requests, rejected) =
        (Counter::default(), Counter::default(), Counter::default());
    let (in_flight, queue) = (Gauge::default(), Gauge::default());
    registry.register(
        "backend_received",
        "Requests received (served, queued or refused): the demand",
        received.clone(),
    );
    registry.register("backend_requests", "Requests served", requests.clone());
    registry.register(
        "backend_rejected",
        "Requests refused with 503 because the queue was full",
        rejected.clone(),
    );
    registry.register(
        "backend_in_flight",
        "Requests being worked on",
        in_flight.clone(),
    );
    registry.register(
        "backend_queued",
        "Requests waiting for a slot",
        queue.clone(),
    );
    let shared = Arc::new(Shared {
        slots: Semaphore::new(settings.concurrency.max(1)),
        settings,
        queued: AtomicI64::new(0),
        received,
        requests,
        rejected,
        in_flight,
        queue,
        registry,
    });
    Router::new()
        .route("/", get(work))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

/// Serve until SIGTERM or Ctrl-C, then finish the requests in flight.
pub(crate) async fn serve(settings: Settings) -> anyhow::Result<()> {
    tokio::time::sleep(settings.startup_delay).await;
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.addr))?;
    axum::serve(listener, app(settings))
        .with_graceful_shutdown(scalepilot_engine::signals::terminated())
        .await?;
    Ok(())
}
