//! `scalepilot bench --api`: the REST API under load while the engine evaluates N groups.
//!
//! One process holds the engine (N cheap groups: static sources, a `command: "true"` target
//! that 1 in 100 groups calls once, as `bench --engine` writes them), the API on
//! 127.0.0.1:0, and a load generator on a runtime of its own that sends authenticated GETs
//! at a fixed rate whatever the answers take (open loop: a slow server does not slow the
//! offered load down). A request's latency runs from when it was due, not from when it was
//! sent, so a generator that falls behind shows as latency rather than hiding it. Each
//! second the engine's evaluation-loop lag is sampled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use scalepilot_engine::{Engine, Options};
use scalepilot_store::Role;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

/// Settings of one API benchmark.
pub(crate) struct Settings {
    pub groups: u32,
    /// Requests per second offered.
    pub rate: f64,
    /// How long the load runs.
    pub seconds: f64,
    /// Each group's evaluation interval.
    pub interval: Duration,
    /// Which of [`ENDPOINTS`] are requested, in turn.
    pub endpoints: Vec<&'static str>,
}

/// Requests in flight at most; a request due while this many are outstanding is counted as
/// an error (`client backlog full`) instead of piling up without bound.
const MAX_IN_FLIGHT: usize = 4096;

/// A request that takes longer than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The endpoints sent in turn (all by default): one group, every group, the newest
/// activities, and readiness.
pub(crate) const ENDPOINTS: [&str; 4] = ["group", "groups", "activities", "readyz"];

#[derive(Debug, Serialize)]
pub(crate) struct ApiReport {
    groups: u32,
    interval_seconds: f64,
    /// Offered rate, requests/s.
    rate: f64,
    seconds: f64,
    sent: u64,
    ok: u64,
    errors: u64,
    /// Errors by kind (`HTTP 500`, `timeout`, `client backlog full`…).
    error_kinds: BTreeMap<String, u64>,
    /// Answers per second over the load's duration.
    achieved_rps: f64,
    /// Over all requests, from when each was due until its whole body had arrived.
    latency_ms: Percentiles,
    /// Per endpoint.
    endpoints: BTreeMap<&'static str, EndpointReport>,
    /// The engine's evaluation-loop lag, sampled once a second during the load.
    loop_lag_ms: LagReport,
    /// The goal of issue 11: p99 < 50 ms at the offered rate, loop lag under 100 ms.
    goal_met: bool,
}

#[derive(Debug, Default, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

#[derive(Debug, Serialize)]
struct EndpointReport {
    path: String,
    requests: u64,
    errors: u64,
    /// Mean size of an answer's body.
    mean_bytes: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Loop lag: how late evaluations started after they were due.
#[derive(Debug, Default, Serialize)]
struct LagReport {
    /// `loop_lag_seconds()` (the largest lag of the trailing 60 s), sampled each second of
    /// the load.
    samples: usize,
    p99: f64,
    max: f64,
    /// Evaluations that started during the load, from the engine's lag histogram.
    evaluations: u64,
    /// Upper bounds of the histogram buckets (1, 2, 4 … ms) holding those evaluations'
    /// 99th percentile and largest lag.
    histogram_p99_le: f64,
    histogram_max_le: f64,
}

/// The lag histogram's name in the engine's metrics.
const LAG_HISTOGRAM: &str = "scalepilot_loop_lag_seconds";

/// Cumulative bucket counts `(le seconds, count)` of histogram `name` in Prometheus text.
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| {
            let (le, count) = l.strip_prefix(&prefix)?.split_once("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// (observations, p99 bucket bound, max bucket bound) between two snapshots of the same
/// histogram's buckets; bounds in the histogram's unit, infinite past the last bucket.
fn histogram_diff(before: &[(f64, f64)], after: &[(f64, f64)]) -> (u64, f64, f64) {
    let diff: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - was)
        })
        .collect();
    let total = diff.last().map_or(0.0, |d| d.1);
    let bound = |share: f64| {
        diff.iter()
            .find(|d| d.1 >= share * total)
            .map_or(0.0, |d| d.0)
    };
    if total <= 0.0 {
        return (0, 0.0, 0.0);
    }
    (total as u64, bound(0.99), bound(1.0))
}

/// The `p` quantile (0..=1) of sorted values, nearest rank; 0 when empty.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    Percentiles {
        p50: quantile(&v, 0.5),
        p90: quantile(&v, 0.9),
        p99: quantile(&v, 0.99),
        max: v.last().copied().unwrap_or(0.0),
    }
}

fn group_name(i: u32) -> String {
    format!("g{i:06}")
}

/// The config: a SQLite store and N cheap groups (the API is started here, on a free port).
fn config_text(s: &Settings) -> String {
    let mut out = String::from(
        "store: {kind: sqlite, path: bench.db}\nengine: {max_concurrency: 64}\ngroups:\n",
    );
    for i in 0..s.groups {
        // 1 in 100 asks for more than `min`, so it scales once (activities are load too).
        let rps = if i.is_multiple_of(100) { 350 } else { 50 };
        let _ = writeln!(
            out,
            "  - {{name: {}, min: 1, max: 10, evaluation_interval: {}ms, source: {{kind: static, values: {{rps: {rps}}}}}, strategies: [{{kind: target_tracking, metric: rps, target_per_replica: 100}}], target: {{kind: command, command: \"true\"}}}}",
            group_name(i),
            s.interval.as_millis()
        );
    }
    out
}

pub(crate) fn run(s: &Settings) -> Result<ApiReport> {
    if s.groups == 0 {
        bail!("--groups must be at least 1");
    }
    if s.endpoints.is_empty() || s.endpoints.iter().any(|e| !ENDPOINTS.contains(e)) {
        bail!("--endpoints takes one or more of {}", ENDPOINTS.join(", "));
    }
    if !(s.rate.is_finite() && s.rate > 0.0 && s.rate <= 100_000.0) {
        bail!("--rate must be above 0 and at most 100000 requests/s");
    }
    if !(s.seconds.is_finite() && s.seconds >= 1.0 && s.seconds <= 3600.0) {
        bail!("--seconds must be from 1 to 3600");
    }
    let dir = std::env::temp_dir().join(format!(
        "scalepilot-bench-api-{}-{}",
        std::process::id(),
        Timestamp::now().as_millisecond()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = run_in(s, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(s: &Settings, dir: &Path) -> Result<ApiReport> {
    let config = dir.join("bench.yaml");
    std::fs::write(&config, config_text(s))?;
    // The server side as the daemon runs it: two workers.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The load generator on its own thread, so its timers are not queued behind the
    // server's tasks (the cores are still shared: see docs/benchmarks.md).
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    let engine = server.block_on(Engine::open(&config, Options::default()))?;
    let handle = engine.handle();
    let store = engine.store();
    let token = server.block_on(super::token::create_token(&*store, "bench", Role::Viewer))?;
    let api = scalepilot_core::config::Api {
        listen: ([127, 0, 0, 1], 0).into(),
        tls: None,
    };
    let started = Timestamp::now();
    let engine_task = server.spawn(engine.run());
    let running = server.block_on(crate::api::start(handle.clone(), &api, dir))?;
    let base = format!("http://{}", running.addr);

    // Every group evaluated once before the load starts: the steady state is measured.
    let t0 = Instant::now();
    let limit =
        s.interval * 10 + Duration::from_secs(60) + Duration::from_millis(u64::from(s.groups));
    loop {
        let p = server.block_on(store.progress_since(started))?;
        if p.groups >= u64::from(s.groups) {
            break;
        }
        if engine_task.is_finished() {
            bail!("the engine stopped before every group was evaluated");
        }
        if t0.elapsed() > limit {
            bail!(
                "only {} of {} groups were evaluated within {limit:?}",
                p.groups,
                s.groups
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Loop lag, once a second, on the server's runtime (where the engine runs).
    let (lag_stop, mut lag_stopped) = tokio::sync::watch::channel(false);
    let lag_handle = handle.clone();
    let lag_task = server.spawn(async move {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => samples.push(1000.0 * lag_handle.loop_lag_seconds()),
                _ = lag_stopped.changed() => return samples,
            }
        }
    });

    let before = buckets(&handle.metrics().encode(), LAG_HISTOGRAM);
    let load = client.block_on(load(base, token, s));
    let after = buckets(&handle.metrics().encode(), LAG_HISTOGRAM);
    let _ = lag_stop.send(true);
    let lag = server
        .block_on(lag_task)
        .context("the lag sampler failed")?;
    server.block_on(async {
        handle.shutdown().await;
        engine_task.await.context("the engine task failed")??;
        running.stop().await
    })?;
    let load = load?;
    Ok(report(s, load, lag, histogram_diff(&before, &after)))
}

/// What the load generator saw.
struct Load {
    /// (endpoint index, latency ms, body bytes, error kind).
    results: Vec<(usize, f64, usize, Option<String>)>,
    elapsed: f64,
}

/// Send `rate × seconds` requests, request k due at start + k / rate.
async fn load(base: String, token: String, s: &Settings) -> Result<Load> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(1024)
        .build()?;
    let auth = format!("Bearer {token}");
    // A first request checks the token and the routes before any figure counts.
    let mix: Vec<usize> = s
        .endpoints
        .iter()
        .filter_map(|e| ENDPOINTS.iter().position(|x| x == e))
        .collect();
    for path in paths(&base, s.groups, 0, 1) {
        let resp = http
            .get(&path)
            .header("authorization", &auth)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        if !resp.status().is_success() {
            bail!("GET {path}: HTTP {} before the load started", resp.status());
        }
    }
    let total = (s.rate * s.seconds).round().max(1.0) as u64;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let start = tokio::time::Instant::now();
    for k in 0..total {
        let due = start + Duration::from_secs_f64(k as f64 / s.rate);
        tokio::time::sleep_until(due).await;
        let which = mix[(k % mix.len() as u64) as usize];
        let url = paths(&base, s.groups, k, mix.len()).swap_remove(which);
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            let _ = tx.send((which, 0.0, 0, Some("client backlog full".to_string())));
            continue;
        };
        let (http, auth, tx) = (http.clone(), auth.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let (bytes, error) = match http.get(&url).header("authorization", auth).send().await {
                Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                    Ok(b) => (b.len(), None),
                    Err(e) => (0, Some(kind(&e))),
                },
                Ok(resp) => (0, Some(format!("HTTP {}", resp.status().as_u16()))),
                Err(e) => (0, Some(kind(&e))),
            };
            let ms = 1000.0 * due.elapsed().as_secs_f64();
            let _ = tx.send((which, ms, bytes, error));
        });
    }
    drop(tx);
    let mut results = Vec::with_capacity(total as usize);
    while let Some(r) = rx.recv().await {
        results.push(r);
    }
    Ok(Load {
        results,
        elapsed: start.elapsed().as_secs_f64(),
    })
}

/// The URL of each endpoint for request `k` of a mix of `n` endpoints (the group named
/// changes each round of the mix).
fn paths(base: &str, groups: u32, k: u64, n: usize) -> Vec<String> {
    let g = group_name((k / n as u64 % u64::from(groups)) as u32);
    vec![
        format!("{base}/api/v1/groups/{g}"),
        format!("{base}/api/v1/groups"),
        format!("{base}/api/v1/activities?limit=50"),
        format!("{base}/readyz"),
    ]
}

fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "request".into()
    }
}

fn report(s: &Settings, load: Load, mut lag: Vec<f64>, histogram: (u64, f64, f64)) -> ApiReport {
    let mut error_kinds = BTreeMap::new();
    // Per endpoint: latencies, errors, body bytes.
    let mut per: Vec<(Vec<f64>, u64, usize)> = vec![(Vec::new(), 0, 0); ENDPOINTS.len()];
    let mut all = Vec::with_capacity(load.results.len());
    for (which, ms, bytes, error) in &load.results {
        match error {
            Some(kind) => {
                *error_kinds.entry(kind.clone()).or_insert(0) += 1;
                per[*which].1 += 1;
            }
            None => {
                per[*which].0.push(*ms);
                per[*which].2 += bytes;
                all.push(*ms);
            }
        }
    }
    let sample = paths("", s.groups, 0, 1);
    let endpoints = ENDPOINTS
        .iter()
        .zip(per)
        .zip(sample)
        .filter(|((name, _), _)| s.endpoints.contains(name))
        .map(|((name, (ms, errors, bytes)), path)| {
            let answered = ms.len();
            let p = percentiles(ms);
            (
                *name,
                EndpointReport {
                    path,
                    requests: answered as u64 + errors,
                    errors,
                    mean_bytes: bytes as f64 / answered.max(1) as f64,
                    p50_ms: p.p50,
                    p99_ms: p.p99,
                },
            )
        })
        .collect();
    let ok = all.len() as u64;
    let sent = load.results.len() as u64;
    lag.sort_by(f64::total_cmp);
    let loop_lag_ms = LagReport {
        samples: lag.len(),
        p99: quantile(&lag, 0.99),
        max: lag.last().copied().unwrap_or(0.0),
        evaluations: histogram.0,
        histogram_p99_le: 1000.0 * histogram.1,
        histogram_max_le: 1000.0 * histogram.2,
    };
    let latency_ms = percentiles(all);
    let achieved_rps = ok as f64 / load.elapsed.max(1e-9);
    ApiReport {
        groups: s.groups,
        interval_seconds: s.interval.as_secs_f64(),
        rate: s.rate,
        seconds: s.seconds,
        sent,
        ok,
        errors: sent - ok,
        error_kinds,
        achieved_rps,
        goal_met: sent == ok
            && latency_ms.p99 < 50.0
            && loop_lag_ms.max < 100.0
            && achieved_rps >= 0.95 * s.rate,
        latency_ms,
        endpoints,
        loop_lag_ms,
    }
}

/// The report as text lines.
pub(crate) fn lines(r: &ApiReport) -> Vec<String> {
    let mut out = vec![
        format!(
            "api: {} groups every {:.0} s; {:.0} req/s offered for {:.0} s (viewer token; {})",
            r.groups,
            r.interval_seconds,
            r.rate,
            r.seconds,
            r.endpoints.keys().copied().collect::<Vec<_>>().join(", ")
        ),
        format!(
            "  requests:   {} sent, {} ok, {} errors; {:.0} req/s answered",
            r.sent, r.ok, r.errors, r.achieved_rps
        ),
    ];
    for (kind, n) in &r.error_kinds {
        out.push(format!("              {n} × {kind}"));
    }
    let l = &r.latency_ms;
    out.push(format!(
        "  latency:    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        l.p50, l.p90, l.p99, l.max
    ));
    for e in r.endpoints.values() {
        out.push(format!(
            "    {:<32} p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests, {} errors, {:.0} bytes each)",
            e.path, e.p50_ms, e.p99_ms, e.requests, e.errors, e.mean_bytes
        ));
    }
    let g = &r.loop_lag_ms;
    out.push(format!(
        "  loop lag:   max {:.1} ms, p99 {:.1} ms (largest of the trailing 60 s, sampled each second: {} samples)",
        g.max, g.p99, g.samples
    ));
    out.push(format!(
        "              {} evaluations during the load: p99 ≤ {} ms, max ≤ {} ms (histogram buckets)",
        g.evaluations, g.histogram_p99_le, g.histogram_max_le
    ));
    out.push(format!(
        "  goal (p99 < 50 ms at the offered rate, loop lag < 100 ms): {}",
        if r.goal_met { "met" } else { "NOT met" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn lag_percentiles_come_from_the_histogram_difference() {
        let text = |counts: [u32; 4]| {
            format!(
                "# TYPE scalepilot_loop_lag_seconds histogram\nscalepilot_loop_lag_seconds_sum 1\nscalepilot_loop_lag_seconds_bucket{{le=\"0.001\"}} {}\nscalepilot_loop_lag_seconds_bucket{{le=\"0.002\"}} {}\nscalepilot_loop_lag_seconds_bucket{{le=\"0.004\"}} {}\nscalepilot_loop_lag_seconds_bucket{{le=\"+Inf\"}} {}\nscalepilot_other_bucket{{le=\"0.001\"}} 9\n",
                counts[0], counts[1], counts[2], counts[3]
            )
        };
        let before = buckets(&text([10, 10, 10, 10]), LAG_HISTOGRAM);
        assert_eq!(before.len(), 4);
        // 200 more: 190 under 1 ms, 8 under 2 ms, 2 under 4 ms.
        let after = buckets(&text([200, 208, 210, 210]), LAG_HISTOGRAM);
        assert_eq!(histogram_diff(&before, &after), (200, 0.002, 0.004));
        // One beyond the last bucket: the max is unbounded.
        let after = buckets(&text([200, 208, 209, 210]), LAG_HISTOGRAM);
        assert_eq!(histogram_diff(&before, &after), (200, 0.002, f64::INFINITY));
        assert_eq!(histogram_diff(&before, &before), (0, 0.0, 0.0));
    }

    #[test]
    fn requests_cycle_through_the_endpoints_and_the_groups() {
        let a = paths("", 3, 0, 4);
        assert_eq!(a[0], "/api/v1/groups/g000000");
        assert_eq!(paths("", 3, 4, 4)[0], "/api/v1/groups/g000001");
        assert_eq!(paths("", 3, 12, 4)[0], "/api/v1/groups/g000000");
        // A mix of one endpoint moves to the next group each request.
        assert_eq!(paths("", 3, 2, 1)[0], "/api/v1/groups/g000002");
        assert_eq!(a[3], "/readyz");
    }
}
