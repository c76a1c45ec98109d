//! `scalepilot load`: replay a trace as real HTTP load.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use scalepilot_core::sim::Trace;

use crate::load::{Plan, Stats, Targets};

/// Replay a trace as open-loop HTTP GET load (at the trace's rate, time-compressed by
/// --speedup), spread round-robin over the targets; print requests sent/failed and latency.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Base URL to send to (repeatable).
    #[arg(long = "target", required_unless_present = "targets_file")]
    targets: Vec<String>,
    /// A file listing base URLs, one per line, re-read every 200 ms (a pool's
    /// `<group>.endpoints` file).
    #[arg(long, conflicts_with = "targets")]
    targets_file: Option<PathBuf>,
    /// Trace CSV (`timestamp_seconds,value`).
    #[arg(long)]
    trace: PathBuf,
    /// Trace second to start at.
    #[arg(long, default_value = "0", value_parser = super::parse_seconds)]
    from: i64,
    /// Time compression: 60 plays a trace minute per second.
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// Multiply the rate by this.
    #[arg(long, default_value_t = 1.0, conflicts_with = "peak_rps")]
    scale: f64,
    /// Scale the rate so the replayed part's peak is this many requests/s.
    #[arg(long)]
    peak_rps: Option<f64>,
    /// Stop after this long (default: the rest of the trace).
    #[arg(long, value_parser = super::parse_seconds)]
    duration: Option<i64>,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = super::parse_seconds)]
    timeout: i64,
    /// Requests in flight at most; more count as failed (the client is overloaded).
    #[arg(long, default_value_t = 4000)]
    max_in_flight: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A plan from CLI-style settings; shared with the demo.
pub(crate) fn plan(
    trace: Trace,
    from: i64,
    speedup: f64,
    duration: Option<Duration>,
    scale: f64,
    peak_rps: Option<f64>,
) -> Result<Plan> {
    if !(speedup.is_finite() && speedup > 0.0) {
        bail!("--speedup must be greater than 0");
    }
    if !(scale.is_finite() && scale > 0.0) {
        bail!("--scale must be greater than 0");
    }
    if from < trace.first || from >= trace.end() {
        bail!(
            "--from {from} is outside the trace [{}, {})",
            trace.first,
            trace.end()
        );
    }
    let rest = Duration::from_secs_f64((trace.end() - from) as f64 / speedup);
    let mut plan = Plan {
        trace,
        from,
        speedup,
        scale,
        duration: duration.map_or(rest, |d| d.min(rest)),
        timeout: Duration::from_secs(10),
        max_in_flight: 4000,
    };
    if let Some(peak) = peak_rps {
        if !(peak.is_finite() && peak > 0.0) {
            bail!("--peak-rps must be greater than 0");
        }
        let (a, b) = plan.trace_span();
        let trace_peak = plan.trace.peak(a, b) * speedup;
        if trace_peak <= 0.0 {
            bail!("the replayed part of the trace has no load");
        }
        plan.scale = peak / trace_peak;
    }
    Ok(plan)
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let text = super::read_trace_text(&args.trace)?;
    let trace = Trace::parse(&text, None)
        .with_context(|| format!("invalid trace {}", args.trace.display()))?;
    let mut plan = plan(
        trace,
        args.from,
        args.speedup,
        args.duration.map(|d| Duration::from_secs(d as u64)),
        args.scale,
        args.peak_rps,
    )?;
    plan.timeout = Duration::from_secs(args.timeout.max(1) as u64);
    plan.max_in_flight = args.max_in_flight.max(1);
    let targets = match args.targets_file {
        Some(f) => Targets::File(f),
        None => Targets::Fixed(args.targets),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = rt.block_on(async {
        let http = scalepilot_engine::http::client()?;
        let stats = Arc::new(Stats::default());
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            scalepilot_engine::signals::terminated().await;
            let _ = stop_tx.send(true);
        });
        anyhow::Ok(crate::load::run(targets, plan, stats, http, stop).await)
    })?;
    if args.json {
        super::emit(&serde_json::to_string_pretty(&summary)?);
    } else {
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1} ms"));
        super::emit(&format!(
            "{} requests in {:.1} s: {} ok, {} failed; latency p50 {}, p99 {}, max {}",
            summary.sent,
            summary.seconds,
            summary.ok,
            summary.failed,
            ms(summary.p50_ms),
            ms(summary.p99_ms),
            ms(summary.max_ms)
        ));
        for (kind, n) in &summary.errors {
            super::emit(&format!("  {n} × {kind}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
