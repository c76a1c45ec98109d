//! Open-loop HTTP load that replays a trace's rate (`scalepilot load`, and the demo).
//!
//! Requests are sent at the trace's rate, time-compressed by `speedup` and multiplied by
//! `scale`, whether or not earlier ones have answered (open loop: a slow service does not slow
//! the load down, as real users would not). Targets come from a fixed list or from a file
//! re-read every 200 ms (a pool's `<group>.endpoints`), round-robin.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scalepilot_core::sim::Trace;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, watch};

/// Where requests go.
#[derive(Debug, Clone)]
pub(crate) enum Targets {
    Fixed(Vec<String>),
    File(PathBuf),
}

impl Targets {
    fn read(&self) -> Vec<String> {
        match self {
            Targets::Fixed(list) => list.clone(),
            Targets::File(path) => std::fs::read_to_string(path)
                .map(|t| {
                    t.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// What to replay.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub trace: Trace,
    pub from: i64,
    pub speedup: f64,
    pub scale: f64,
    pub duration: Duration,
    pub timeout: Duration,
    pub max_in_flight: usize,
}

impl Plan {
    /// Requests/s to send `elapsed` into the run; `None` once the trace has run out.
    pub(crate) fn rate_at(&self, elapsed: Duration) -> Option<f64> {
        let t = self.from + (elapsed.as_secs_f64() * self.speedup) as i64;
        (t < self.trace.end()).then(|| self.trace.rate(t) * self.speedup * self.scale)
    }

    /// The highest rate the run will send, requests/s.
    pub(crate) fn rate_peak(&self) -> f64 {
        let (a, b) = self.trace_span();
        self.trace.peak(a, b) * self.speedup * self.scale
    }

    /// Trace seconds covered by the run.
    pub(crate) fn trace_span(&self) -> (i64, i64) {
        let to = self.from + (self.duration.as_secs_f64() * self.speedup) as i64;
        (self.from, to.min(self.trace.end()))
    }
}

/// Counters shared with live views.
#[derive(Default)]
pub(crate) struct Stats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    recent_us: Mutex<Vec<u32>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    async fn record(&self, result: Result<Duration, String>) {
        match result {
            Ok(d) => {
                let us = d.as_micros().min(u32::MAX as u128) as u32;
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.latencies_us.lock().await.push(us);
                self.recent_us.lock().await.push(us);
            }
            Err(kind) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                *self.errors.lock().await.entry(kind).or_default() += 1;
            }
        }
    }

    /// p99 latency (ms) of the answers since the last call.
    pub(crate) async fn take_recent_p99_ms(&self) -> Option<f64> {
        let mut v = std::mem::take(&mut *self.recent_us.lock().await);
        percentile(&mut v, 0.99)
    }

    pub(crate) async fn summary(&self, elapsed: Duration) -> Summary {
        let mut v = self.latencies_us.lock().await.clone();
        Summary {
            seconds: elapsed.as_secs_f64(),
            sent: self.sent.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            p50_ms: percentile(&mut v, 0.50),
            p99_ms: percentile(&mut v, 0.99),
            max_ms: v.iter().max().map(|m| *m as f64 / 1000.0),
            errors: self.errors.lock().await.clone(),
        }
    }
}

fn percentile(v: &mut [u32], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1] as f64 / 1000.0)
}

/// The outcome of a load run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub seconds: f64,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Failure kind → count.
    pub errors: BTreeMap<String, u64>,
}

fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        format!("request: {e}")
    }
}

/// Replay `plan` against `targets` until the plan ends or `stop` turns true.
pub(crate) async fn run(
    targets: Targets,
    plan: Plan,
    stats: Arc<Stats>,
    http: reqwest::Client,
    mut stop: watch::Receiver<bool>,
) -> Summary {
    let start = Instant::now();
    let in_flight = Arc::new(Semaphore::new(plan.max_in_flight));
    let mut list = targets.read();
    let mut last_read = Instant::now();
    let mut next = 0usize;
    let mut owed = 0.0f64;
    let mut last = start;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(start);
        if elapsed >= plan.duration {
            break;
        }
        let Some(rate) = plan.rate_at(elapsed) else {
            break;
        };
        if now.duration_since(last_read) >= Duration::from_millis(200) {
            list = targets.read();
            last_read = now;
        }
        owed += rate * now.duration_since(last).as_secs_f64();
        last = now;
        while owed >= 1.0 {
            owed -= 1.0;
            stats.sent.fetch_add(1, Ordering::Relaxed);
            if list.is_empty() {
                stats.record(Err("no target".into())).await;
                continue;
            }
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                stats
                    .record(Err("client: too many requests in flight".into()))
                    .await;
                continue;
            };
            let url = format!("{}/", list[next % list.len()].trim_end_matches('/'));
            next = next.wrapping_add(1);
            let (http, stats, timeout) = (http.clone(), stats.clone(), plan.timeout);
            tasks.spawn(async move {
                let t0 = Instant::now();
                let result = match http.get(&url).timeout(timeout).send().await {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(_) => Ok(t0.elapsed()),
                        Err(e) => Err(kind(&e)),
                    },
                    Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
                    Err(e) => Err(kind(&e)),
                };
                stats.record(result).await;
                drop(permit);
            });
        }
        // Reap finished requests so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    // Let the requests in flight finish (they are bounded by the timeout).
    while tasks.join_next().await.is_some() {}
    stats.summary(start.elapsed()).await
}
