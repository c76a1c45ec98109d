//! `scalepilot bench`: quick speed and memory figures without criterion.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jiff::Timestamp;
use scalepilot_core::bench::DecideLoop;
use scalepilot_core::sim::{SimParams, SimPolicy, Trace, simulate};
use serde::Serialize;

/// Measure decide() throughput on one core and the time to simulate a month of one group,
/// plus the process's peak memory. Criterion benches (`cargo bench -p scalepilot-core`) give
/// the statistically careful version of the same workloads.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seconds spent measuring decide() (default 2), or with --api sending requests
    /// (default 30).
    #[arg(long)]
    seconds: Option<f64>,
    /// Trace for the month-long simulation (its first 30 days).
    #[arg(long, default_value = "traces/nasa_http_1995/trace.csv")]
    trace: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Benchmark the whole daemon instead: real `scalepilot run` processes on generated
    /// groups, measured through the store (see docs/benchmarks.md).
    #[arg(long)]
    engine: bool,
    /// With --engine: group counts to run, one benchmark each (default 10000). With --api:
    /// the groups evaluated while the API is loaded (default 1000).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<u32>,
    /// With --engine: daemons sharing the store (more than one runs them with `ha: true`).
    #[arg(long, default_value_t = 1)]
    daemons: u32,
    /// With --engine: `sqlite`, or the URL of an empty PostgreSQL database.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// Benchmark the REST API instead: authenticated GETs at `--rate` for `--seconds` while
    /// the engine evaluates `--groups` groups in the same process; latency percentiles and
    /// the evaluation loop's lag (see docs/benchmarks.md).
    #[arg(long, conflicts_with = "engine")]
    api: bool,
    /// With --api: requests per second offered (open loop).
    #[arg(long, default_value_t = 1000.0, requires = "api")]
    rate: f64,
    /// With --api: the endpoints requested in turn: `group` (/api/v1/groups/NAME), `groups`
    /// (every group), `activities` (the newest 50), `readyz`.
    #[arg(long, value_delimiter = ',', default_value = "group,groups,activities,readyz", value_parser = clap::builder::PossibleValuesParser::new(super::bench_api::ENDPOINTS), requires = "api")]
    endpoints: Vec<String>,
    /// With --engine or --api: each group's evaluation interval, in seconds.
    #[arg(long, default_value_t = 15.0)]
    interval: f64,
    /// With --engine: intervals measured after the first pass.
    #[arg(long, default_value_t = 2)]
    passes: u32,
}

#[derive(Serialize)]
struct Report {
    decisions_per_second: f64,
    ns_per_decision: f64,
    month_simulation_seconds: f64,
    month_ticks: i64,
    peak_rss_kib: Option<u64>,
}

/// Peak resident set size of this process (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    if args.engine {
        return run_engine(&args);
    }
    if args.api {
        return run_api(&args);
    }
    let budget = Duration::from_secs_f64(args.seconds.unwrap_or(2.0).max(0.1));
    let mut l = DecideLoop::default();
    let mut n: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..10_000 {
            std::hint::black_box(l.step());
        }
        n += 10_000;
    }
    let secs = start.elapsed().as_secs_f64();

    let text = super::read_trace_text(&args.trace)?;
    let trace = Trace::parse(&text, None)
        .with_context(|| format!("invalid trace {}", args.trace.display()))?;
    let month = (30 * 86_400).min(trace.end() - trace.first);
    let from = trace.first;
    let capacity = trace.peak(from, from + month) / 40.0;
    let params = SimParams {
        from,
        to: from + month,
        capacity,
        startup: 60,
        window: 60,
        epoch: Timestamp::UNIX_EPOCH,
        chart_points: 0,
        price: 0.1,
        global_budget: None,
    };
    let policy = SimPolicy::hpa(capacity, 15);
    // Median of five runs.
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(simulate(&trace, &params, &policy, &mut |_| {}));
            t.elapsed().as_secs_f64()
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    let report = Report {
        decisions_per_second: n as f64 / secs,
        ns_per_decision: secs * 1e9 / n as f64,
        month_simulation_seconds: runs[2],
        month_ticks: month / params.tick(&trace),
        peak_rss_kib: peak_rss_kib(),
    };
    if args.json {
        super::emit(&serde_json::to_string_pretty(&report)?);
    } else {
        super::emit(&format!(
            "decide (3 strategies):   {:>12.0} decisions/s  ({:.0} ns each, one core)",
            report.decisions_per_second, report.ns_per_decision
        ));
        super::emit(&format!(
            "simulate one month:      {:>12.3} s  ({} ticks, hpa policy, median of 5)",
            report.month_simulation_seconds, report.month_ticks
        ));
        if let Some(kib) = report.peak_rss_kib {
            super::emit(&format!(
                "peak RSS:                {:>12.1} MiB",
                kib as f64 / 1024.0
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_engine(args: &Args) -> Result<ExitCode> {
    if !(args.interval.is_finite() && args.interval >= 0.1) {
        anyhow::bail!("--interval must be at least 0.1 s");
    }
    let interval = Duration::from_secs_f64(args.interval);
    let mut reports = Vec::new();
    let counts = if args.groups.is_empty() {
        vec![10_000]
    } else {
        args.groups.clone()
    };
    for &groups in &counts {
        let settings = super::bench_engine::Settings {
            groups,
            daemons: args.daemons,
            store: args.store.clone(),
            interval,
            passes: args.passes,
            // A third of the interval: a killed daemon's groups move within two intervals.
            lease_ttl: (interval / 3).max(Duration::from_secs(1)),
        };
        let report = super::bench_engine::run(&settings)?;
        if !args.json {
            for line in super::bench_engine::lines(&report) {
                super::emit(&line);
            }
        }
        reports.push(report);
    }
    if args.json {
        super::emit(&serde_json::to_string_pretty(&reports)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_api(args: &Args) -> Result<ExitCode> {
    if !(args.interval.is_finite() && args.interval >= 0.1) {
        anyhow::bail!("--interval must be at least 0.1 s");
    }
    let groups = match args.groups[..] {
        [] => 1000,
        [n] => n,
        _ => anyhow::bail!("--api takes one --groups count"),
    };
    let settings = super::bench_api::Settings {
        groups,
        rate: args.rate,
        seconds: args.seconds.unwrap_or(30.0),
        interval: Duration::from_secs_f64(args.interval),
        endpoints: args
            .endpoints
            .iter()
            .filter_map(|e| {
                super::bench_api::ENDPOINTS
                    .iter()
                    .find(|x| *x == e)
                    .copied()
            })
            .collect(),
    };
    let report = super::bench_api::run(&settings)?;
    if args.json {
        super::emit(&serde_json::to_string_pretty(&report)?);
    } else {
        for line in super::bench_api::lines(&report) {
            super::emit(&line);
        }
    }
    Ok(ExitCode::SUCCESS)
}
