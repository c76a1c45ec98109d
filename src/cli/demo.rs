//! `scalepilot demo`: the engine scaling a pool of real backend processes under a replayed
//! real trace, live in the terminal, with nothing to install; the REST API and dashboard
//! served on loopback meanwhile, with a viewer and an operator token printed at the start.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use scalepilot_core::config::Api;
use scalepilot_core::sim::Trace;
use scalepilot_store::Role;

use crate::load::{Stats, Targets};
use scalepilot_engine::{Engine, Options};

/// The default trace, embedded so the demo needs no files: NASA KSC web requests, July 1995
/// (Internet Traffic Archive; see traces/nasa_http_1995).
const NASA: &str = include_str!("../../traces/nasa_http_1995/trace.csv");
const POLICY: &str = include_str!("../../examples/policies/demo.yaml");

/// Watch scalepilot scale a pool of real backend processes while a real traffic trace (a day
/// of NASA's 1995 web server, by default) is replayed against it as HTTP load, compressed into
/// a few minutes. Ends on its own (or on Ctrl-C) with a summary and leaves nothing running.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Trace CSV to replay (default: the embedded NASA July 1995 trace).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Trace second to start at: 04:00 on 1 July, a quiet hour, by default ("12d4h" starts the
    /// day of NASA's 13 July flash crowd).
    #[arg(long, default_value = "4h", value_parser = super::parse_seconds)]
    from: i64,
    /// How much of the trace to replay.
    #[arg(long, default_value = "1d", value_parser = super::parse_seconds)]
    span: i64,
    /// How long the demo runs; the span is compressed into it.
    #[arg(long, default_value = "150s", value_parser = super::parse_seconds)]
    duration: i64,
    /// Load at the replayed span's peak, requests/s (one instance serves 50).
    #[arg(long, default_value_t = 300.0)]
    peak_rps: f64,
    /// Policy file to run instead of the built-in one ({scalepilot} is replaced by this
    /// binary's path).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Keep the temporary folder (store, logs) and print its path.
    #[arg(long)]
    keep: bool,
    /// Where the REST API and dashboard listen (default: a free port on 127.0.0.1).
    #[arg(long, value_parser = scalepilot_core::config::parse_listen, default_value = "127.0.0.1:0")]
    api_listen: std::net::SocketAddr,
}

struct TempDir(PathBuf, bool);

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    // Validated up front: a NaN or huge peak would size the load plan into nonsense.
    if !(args.peak_rps.is_finite() && args.peak_rps > 0.0 && args.peak_rps <= 1e6) {
        anyhow::bail!(
            "--peak-rps must be a finite number above 0 and at most 1000000, got {}",
            args.peak_rps
        );
    }
    let duration = Duration::from_secs(args.duration.max(10) as u64);
    let text = match &args.trace {
        Some(p) => super::read_trace_text(p)?,
        None => NASA.to_string(),
    };
    let trace = Trace::parse(&text, None).context("invalid trace")?;
    let speedup = args.span.max(1) as f64 / duration.as_secs_f64();
    let plan = super::load::plan(
        trace,
        args.from,
        speedup,
        Some(duration),
        1.0,
        Some(args.peak_rps),
    )?;

    let dir = std::env::temp_dir().join(format!("scalepilot-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = TempDir(dir, args.keep);
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let policy = match &args.policy {
        Some(p) => super::read_config_text(p)?,
        None => POLICY.to_string(),
    };
    let config_path = dir.0.join("demo.yaml");
    std::fs::write(
        &config_path,
        policy.replace("{scalepilot}", &exe.display().to_string()),
    )?;

    super::run::init_logging_quiet();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let api = Api {
        listen: args.api_listen,
        tls: None,
    };
    let result = rt.block_on(demo(&config_path, &api, plan, duration, speedup, args.from));
    if args.keep {
        eprintln!(
            "kept {}: try `scalepilot history --config {}`",
            dir.0.display(),
            config_path.display()
        );
    }
    result
}

/// The demo's standard output: once it is closed (`scalepilot demo | head`), lines are
/// skipped and the demo stops as on Ctrl-C, so the pool's processes are stopped too.
#[derive(Default)]
struct Out {
    closed: bool,
}

impl Out {
    fn line(&mut self, text: &str) {
        if !self.closed && !super::try_emit(text) {
            self.closed = true;
        }
    }
}

async fn demo(
    config: &std::path::Path,
    api: &Api,
    plan: crate::load::Plan,
    duration: Duration,
    speedup: f64,
    from: i64,
) -> Result<ExitCode> {
    let engine = Engine::open(config, Options::default()).await?;
    let handle = engine.handle();
    let mut events = handle.subscribe();
    let store = engine.store();
    let group = "web";
    let endpoints = config.with_file_name(format!("{group}.endpoints"));
    let mut out = Out::default();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    // Ctrl-C at any moment, even before the pool serves, ends the demo cleanly.
    let on_ctrl_c = stop_tx.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = on_ctrl_c.send(true);
        }
    });
    // Tokens in the demo's own store, the way `scalepilot token create` makes them.
    let viewer = super::token::create_token(&*store, "demo-viewer", Role::Viewer).await?;
    let operator = super::token::create_token(&*store, "demo-operator", Role::Operator).await?;
    let base = config.parent().unwrap_or(std::path::Path::new("."));
    let api_server = crate::api::start(handle.clone(), api, base)
        .await
        .context("cannot start the demo's API (--api-listen)")?;
    let url = api_server.url();
    let engine_task = tokio::spawn(engine.run());

    // Start the load once the pool serves, as a real service would get traffic.
    let serving = Instant::now();
    while tokio::fs::read_to_string(&endpoints)
        .await
        .map_or(true, |t| t.trim().is_empty())
    {
        if *stop.borrow() {
            out.line("stopping");
            handle.shutdown().await;
            engine_task.await.context("the engine task failed")??;
            api_server.stop().await?;
            return Ok(ExitCode::SUCCESS);
        }
        if serving.elapsed() > Duration::from_secs(30) {
            let _ = stop_tx.send(true);
            handle.shutdown().await;
            let _ = engine_task.await;
            let _ = api_server.stop().await;
            anyhow::bail!("the pool did not start serving within 30 s (see the logs above)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = scalepilot_engine::http::client()?;
    let stats = Arc::new(Stats::default());
    let load = tokio::spawn(crate::load::run(
        Targets::File(endpoints),
        plan.clone(),
        stats.clone(),
        http,
        stop.clone(),
    ));

    out.line(&format!(
        "scalepilot demo: a day of traffic in {} s ({speedup:.0}× faster), peak ≈ {:.0} req/s, one instance serves 50 req/s",
        duration.as_secs(),
        plan.rate_peak()
    ));
    out.line(&format!(
        "dashboard:      {url}/  (REST API: {url}/api/v1/, sign in with a token)"
    ));
    out.line(&format!("viewer token:   {viewer}"));
    out.line(&format!("operator token: {operator}"));
    out.line(&format!(
        "{:>5}  {:>9}  {:>7}  {:>6}  {:>5}  {:>8}  replicas (current/ready)",
        "t", "trace", "offered", "ok/s", "fail", "p99"
    ));
    let start = Instant::now();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let (mut last_ok, mut last_failed) = (0u64, 0u64);
    let (mut current, mut ready) = (0u32, 0u32);
    let mut replica_seconds = 0.0;
    let mut peak_replicas = 0u32;
    let mut stopped = stop.clone();
    while !out.closed {
        tokio::select! {
            _ = stopped.changed() => {
                out.line("Ctrl-C: stopping");
                break;
            }
            ev = events.recv() => {
                if let Ok(ev) = ev {
                    if ev.error.is_none() {
                        current = ev.desired;
                        ready = ev.ready;
                    }
                    if ev.scaled {
                        let arrow = if ev.desired > ev.current { "↑" } else { "↓" };
                        out.line(&format!("       {arrow} {} → {}: {}", ev.current, ev.desired, ev.summary.split_once("; ").map_or(ev.summary.as_str(), |(_, r)| r)));
                    }
                }
            }
            _ = second.tick() => {
                let elapsed = start.elapsed();
                if elapsed >= duration + Duration::from_millis(500) {
                    break;
                }
                replica_seconds += current as f64;
                peak_replicas = peak_replicas.max(current);
                let ok = stats.ok.load(Ordering::Relaxed);
                let failed = stats.failed.load(Ordering::Relaxed);
                let p99 = stats.take_recent_p99_ms().await.map_or("-".to_string(), |v| format!("{v:.1}ms"));
                let t = from + (elapsed.as_secs_f64() * speedup) as i64;
                let offered = plan.rate_at(elapsed).unwrap_or(0.0);
                let bar = "█".repeat(ready as usize) + &"░".repeat(current.saturating_sub(ready) as usize);
                out.line(&format!(
                    "{:>4}s  {:>2}d {:02}:{:02}  {:>7.0}  {:>6}  {:>5}  {:>8}  {:>2}/{:<2} {bar}",
                    elapsed.as_secs(),
                    t / 86_400,
                    t % 86_400 / 3600,
                    t % 3600 / 60,
                    offered,
                    ok - last_ok,
                    failed - last_failed,
                    p99,
                    current,
                    ready
                ));
                last_ok = ok;
                last_failed = failed;
            }
        }
    }
    let _ = stop_tx.send(true);
    let summary = load.await.context("the load task failed")?;
    handle.shutdown().await;
    engine_task.await.context("the engine task failed")??;
    api_server.stop().await?;
    if out.closed {
        // Nobody reads the summary any more.
        return Ok(ExitCode::SUCCESS);
    }
    let activities = store.activities(Some(group), 10_000).await?;
    let ups = activities
        .iter()
        .filter(|a| a.status == "succeeded" && a.to_replicas > a.from_replicas)
        .count();
    let downs = activities
        .iter()
        .filter(|a| a.status == "succeeded" && a.to_replicas < a.from_replicas)
        .count();
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1} ms"));
    let fail_pct = if summary.sent > 0 {
        100.0 * summary.failed as f64 / summary.sent as f64
    } else {
        0.0
    };
    out.line("");
    out.line(&format!("demo finished after {:.0} s", summary.seconds));
    out.line(&format!(
        "requests:        {} sent, {} ok, {} failed ({fail_pct:.2} %)",
        summary.sent, summary.ok, summary.failed
    ));
    for (kind, n) in &summary.errors {
        out.line(&format!("                 {n} × {kind}"));
    }
    out.line(&format!(
        "latency:         p50 {}, p99 {}",
        ms(summary.p50_ms),
        ms(summary.p99_ms)
    ));
    out.line(&format!(
        "replica-seconds: {replica_seconds:.0} (mean {:.1} replicas; a fixed pool of the peak size, {peak_replicas}, would use {:.0})",
        replica_seconds / summary.seconds.max(1.0),
        peak_replicas as f64 * summary.seconds
    ));
    out.line(&format!(
        "scaling actions: {} ({ups} up, {downs} down), each stored with its reasons",
        ups + downs
    ));
    Ok(ExitCode::SUCCESS)
}
