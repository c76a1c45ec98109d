//! `scalepilot simulate`: replay a trace through policies and compare cost and unserved load.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use jiff::Timestamp;
use scalepilot_core::sim::{PolicyResult, SimParams, SimPolicy, Trace, simulate};
use serde::Serialize;

/// Replay a load trace through policies and report cost and unserved load against a
/// clairvoyant oracle (model: README, "Simulation model").
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Trace CSV (`timestamp_seconds,value`, a count per interval) or a folder holding
    /// trace.csv and meta.json.
    #[arg(long)]
    trace: PathBuf,
    /// Start of the range, trace seconds (or a duration such as "7d").
    #[arg(long, value_parser = super::parse_seconds, allow_negative_numbers = true)]
    from: Option<i64>,
    /// End of the range (exclusive).
    #[arg(long, value_parser = super::parse_seconds, allow_negative_numbers = true)]
    to: Option<i64>,
    /// Size capacity so that the range's peak rate needs this many replicas.
    #[arg(long, default_value_t = 40, conflicts_with = "capacity")]
    peak_replicas: u32,
    /// Requests/s one replica serves (instead of --peak-replicas).
    #[arg(long, allow_negative_numbers = true)]
    capacity: Option<f64>,
    /// Time from asking for a replica to it serving.
    #[arg(long, default_value = "60s", value_parser = super::parse_seconds)]
    startup: i64,
    /// Evaluation interval. Built-in policies default to 15s; config groups use their own
    /// `evaluation_interval` unless this is given.
    #[arg(long, value_parser = super::parse_seconds)]
    eval_interval: Option<i64>,
    /// Policies observe the mean rate over this window.
    #[arg(long, default_value = "60s", value_parser = super::parse_seconds)]
    window: i64,
    /// Built-in policy: hpa, oracle, static-peak or recommended (repeatable; recommended is
    /// examples/policies/recommended.yaml). Default: hpa, oracle and static-peak when no
    /// --config is given, else hpa and oracle beside the config's groups.
    #[arg(long = "policy", value_enum)]
    policies: Vec<Builtin>,
    /// Print the cost/unserved frontier instead: every policy with a predictive or cost
    /// strategy (default: recommended) at knob values x0.5 to x5 (x > 1 allows x times the
    /// unserved its objective allows, with least headrooms divided by x), and the HPA at
    /// targets from 50 to 90 %. With --chart, draws the frontier.
    #[arg(long)]
    sweep: bool,
    /// Policy file whose groups are simulated (repeatable).
    #[arg(long = "config")]
    configs: Vec<PathBuf>,
    /// Only these groups of the config files (repeatable; default: every enabled group).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Wall-clock time of trace second 0 for schedules (default: meta.json `start_utc`).
    #[arg(long)]
    start: Option<Timestamp>,
    /// Price of a replica-hour for policies without a `cost` section (built-ins included),
    /// for the money columns.
    #[arg(long, default_value_t = 0.10)]
    price: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart of demand, ready and desired replicas per policy.
    #[arg(long)]
    chart: Option<PathBuf>,
}

/// The built-in policies `--policy` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Builtin {
    Hpa,
    Oracle,
    StaticPeak,
    Recommended,
}

/// Bounds of the model's numbers: outside them the simulation saturates (a capacity of
/// 1e-300 req/s needs more replicas than a u32 holds) and prints nonsense instead of failing.
const CAPACITY: (f64, f64) = (1e-6, 1e9);
/// Price of a replica-hour.
const PRICE: (f64, f64) = (0.0, 1e6);
/// Startup and window, seconds: a year at most.
const MAX_SECONDS: i64 = 366 * 86_400;

/// `value` if finite and within `[min, max]`, else an error naming the option.
fn within(option: &str, value: f64, (min, max): (f64, f64)) -> Result<f64> {
    if value.is_finite() && value >= min && value <= max {
        Ok(value)
    } else {
        bail!("{option} must be a finite number from {min} to {max}, got {value}")
    }
}

/// About 47 years of 15 s ticks: more is a mistake, not a simulation.
const MAX_TICKS: u64 = 100_000_000;

#[derive(Serialize)]
struct Output<'a> {
    trace: &'a str,
    from: i64,
    to: i64,
    capacity_per_replica: f64,
    startup_seconds: i64,
    window_seconds: i64,
    tick_seconds: i64,
    results: &'a [PolicyResult],
}

struct Meta {
    name: String,
    step: Option<i64>,
    start: Option<Timestamp>,
}

fn read_meta(dir: &Path, fallback_name: String) -> Result<Meta> {
    let path = dir.join("meta.json");
    if !path.exists() {
        return Ok(Meta {
            name: fallback_name,
            step: None,
            start: None,
        });
    }
    let text = scalepilot_engine::limits::read_to_string(
        &path,
        scalepilot_engine::limits::CONFIG_LIMIT,
        "metadata",
    )?;
    parse_meta(&text, &path.display().to_string(), fallback_name)
}

/// A meta.json's name, resolution and start (`what` names it in messages).
fn parse_meta(text: &str, what: &str, fallback_name: String) -> Result<Meta> {
    let mut meta = Meta {
        name: fallback_name,
        step: None,
        start: None,
    };
    let v: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("invalid JSON in {what}"))?;
    if !v.is_object() {
        bail!("{what}: expected a JSON object");
    }
    if let Some(n) = v["name"].as_str() {
        meta.name = n.to_string();
    }
    let step = &v["resolution_seconds"];
    if !step.is_null() {
        match step
            .as_f64()
            .filter(|s| s.fract() == 0.0 && *s >= 1.0 && *s <= 1e12)
        {
            Some(s) => meta.step = Some(s as i64),
            None => bail!(
                "{what}: resolution_seconds must be a whole number of seconds ≥ 1, got {step}"
            ),
        }
    }
    // "1995-07-01T04:00:00Z (= …)" or "2014-04-10 00:04:00 (naive …)": the leading date-time, as UTC.
    if let Some(s) = v["start_utc"].as_str() {
        let head: String = s.chars().take(19).collect::<String>().replace(' ', "T");
        meta.start = format!("{head}Z").parse().ok();
        if meta.start.is_none() {
            eprintln!(
                "warning: {what}: cannot read start_utc {s:?}; schedules use 1970-01-01 unless --start is given"
            );
        }
    }
    Ok(meta)
}

fn load_trace(path: &Path) -> Result<(Trace, Meta)> {
    let (csv, dir) = if path.is_dir() {
        (path.join("trace.csv"), path.to_path_buf())
    } else {
        (
            path.to_path_buf(),
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
        )
    };
    let fallback = if path.is_dir() {
        path.file_name()
    } else {
        csv.parent()
            .and_then(Path::file_name)
            .filter(|_| csv.file_name().is_some_and(|f| f == "trace.csv"))
            .or(csv.file_stem())
    }
    .map(|s| s.to_string_lossy().into_owned())
    .unwrap_or_else(|| "trace".into());
    // meta.json describes the trace.csv beside it (the traces/ layout), not any CSV.
    let meta = if csv.file_name().is_some_and(|f| f == "trace.csv") {
        read_meta(&dir, fallback)?
    } else {
        Meta {
            name: fallback,
            step: None,
            start: None,
        }
    };
    let text = super::read_trace_text(&csv)?;
    let trace = Trace::parse(&text, meta.step)
        .with_context(|| format!("invalid trace {}", csv.display()))?;
    Ok((trace, meta))
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let (trace, meta) = load_trace(&args.trace)?;
    let from = args.from.unwrap_or(trace.first);
    let to = args.to.unwrap_or(trace.end());
    if to <= from {
        bail!("empty range: --from {from} is not before --to {to}");
    }
    if from < trace.first || to > trace.end() {
        bail!(
            "range [{from}, {to}) is outside the trace, which covers [{}, {})",
            trace.first,
            trace.end()
        );
    }
    let gaps: Vec<&(i64, i64)> = trace
        .gaps
        .iter()
        .filter(|(after, secs)| after + trace.step < to && after + trace.step + secs > from)
        .collect();
    match gaps.as_slice() {
        [] => {}
        [(after, secs)] => eprintln!(
            "warning: {} has no rows for {secs} s after t={after}; simulated as zero demand (use --from/--to to avoid it)",
            meta.name
        ),
        more => eprintln!(
            "warning: {} has {} holes in its rows ({} s in all) inside the range; simulated as zero demand",
            meta.name,
            more.len(),
            more.iter().map(|g| g.1).sum::<i64>()
        ),
    }
    if [args.startup, args.window].iter().any(|v| *v < 0) || args.from.is_some_and(|f| f < 0) {
        bail!("--from, --startup and --window must not be negative");
    }
    for (option, secs) in [("--startup", args.startup), ("--window", args.window)] {
        if secs > MAX_SECONDS {
            bail!("{option} must be at most 366d, got {secs} s");
        }
    }
    within("--price", args.price, PRICE)?;
    let capacity = match args.capacity {
        Some(c) => within("--capacity", c, CAPACITY)?,
        None => {
            if !(1..=1_000_000).contains(&args.peak_replicas) {
                bail!("--peak-replicas must be from 1 to 1000000");
            }
            let peak = trace.peak(from, to);
            if peak <= 0.0 {
                bail!(
                    "the trace has no load in [{from}, {to}): cannot size capacity from its peak"
                );
            }
            // The trace's own scale decides: a trace of 1e-12 req/s is refused the same.
            within(
                "the capacity sized from the trace's peak (use --capacity)",
                peak / args.peak_replicas as f64,
                CAPACITY,
            )?
        }
    };
    let builtin_eval = args.eval_interval.unwrap_or(15);
    if builtin_eval == 0 {
        bail!("--eval-interval must be at least 1s");
    }
    let mut names = args.policies.clone();
    if args.sweep && names.is_empty() && args.configs.is_empty() {
        names.push(Builtin::Recommended);
    }
    if names.is_empty() {
        names = if args.configs.is_empty() {
            vec![Builtin::Hpa, Builtin::Oracle, Builtin::StaticPeak]
        } else {
            vec![Builtin::Hpa, Builtin::Oracle]
        };
    }
    let mut policies: Vec<SimPolicy> = names
        .iter()
        .map(|n| match n {
            Builtin::Hpa => Ok(SimPolicy::hpa(capacity, builtin_eval)),
            Builtin::Oracle => Ok(SimPolicy::oracle()),
            Builtin::Recommended => recommended(args.eval_interval, args.startup),
            Builtin::StaticPeak => Ok(SimPolicy::static_peak()),
        })
        .collect::<Result<_>>()?;
    let mut wanted: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let mut global_budget = None;
    for path in &args.configs {
        let config = super::load_config(path)?;
        global_budget = global_budget.or(config.budget);
        for g in config.groups {
            let picked = if args.groups.is_empty() {
                g.enabled
            } else {
                args.groups.iter().any(|n| **n == *g.name)
            };
            if !picked {
                continue;
            }
            wanted.retain(|n| **n != *g.name);
            let eval = args
                .eval_interval
                .unwrap_or_else(|| g.evaluation_interval.as_secs().max(1));
            let mut policy = SimPolicy::group(g, eval);
            policy.warm = warm_starts(&policy, path)?;
            policies.push(policy);
        }
    }
    if !wanted.is_empty() {
        return Err(anyhow!(
            "no group named {} in the --config files",
            wanted.join(", ")
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &policies {
        if !seen.insert(p.name.as_str()) {
            bail!(
                "two policies are named `{}`: give the group another name (or pass each --config once)",
                p.name
            );
        }
        if let Some(missing) = p.unknown_metrics() {
            eprintln!(
                "warning: {} uses {} that simulate does not provide (only request_rate and utilization): it sees them as missing and holds",
                p.name, missing
            );
        }
    }
    let mut sweep_points: Vec<super::sweep::Point> = Vec::new();
    if args.sweep {
        let swept: Vec<SimPolicy> = policies.iter().filter(|p| p.forecasts()).cloned().collect();
        if swept.is_empty() {
            bail!(
                "--sweep needs a policy with a predictive or cost strategy (e.g. --policy recommended)"
            );
        }
        let points = sweep_policies(&swept, capacity, builtin_eval);
        policies = points.iter().map(|(_, p)| p.clone()).collect();
        sweep_points = points.into_iter().map(|(s, _)| s).collect();
    }
    // Fail on an unwritable chart path now, not after the whole simulation.
    if let Some(path) = &args.chart {
        std::fs::File::create(path)
            .with_context(|| format!("cannot write chart {}", path.display()))?;
    }
    let params = SimParams {
        from,
        to,
        capacity,
        startup: args.startup,
        window: args.window,
        epoch: args.start.or(meta.start).unwrap_or(Timestamp::UNIX_EPOCH),
        chart_points: if args.chart.is_some() && !args.sweep {
            1500
        } else {
            0
        },
        price: args.price,
        global_budget,
    };
    let tick = params.tick(&trace);
    let ticks = scalepilot_core::sim::tick_count(&params, &trace);
    if ticks > MAX_TICKS {
        bail!(
            "the range holds {ticks} ticks of {tick} s; at most {MAX_TICKS} are simulated in one run"
        );
    }
    let bar =
        (std::io::stderr().is_terminal() && ticks * policies.len() as u64 > 500_000).then(|| {
            let bar = indicatif::ProgressBar::new(ticks * policies.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg:12} [{bar:40}] {percent:>3}% {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
    let mut results = Vec::with_capacity(policies.len());
    for (i, p) in policies.iter().enumerate() {
        if let Some(b) = &bar {
            b.set_message(p.name.clone());
        }
        let base = i as u64 * ticks;
        let r = simulate(&trace, &params, p, &mut |done| {
            if let Some(b) = &bar {
                b.set_position(base + done);
            }
        });
        results.push(r);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if args.sweep {
        return super::sweep::report(
            &meta.name,
            &results,
            &sweep_points,
            args.chart.as_deref(),
            args.json,
        );
    }
    if let Some(path) = &args.chart {
        crate::chart::write(path, &meta.name, tick, &results)
            .with_context(|| format!("cannot write chart {}", path.display()))?;
    }
    if args.json {
        let out = Output {
            trace: &meta.name,
            from,
            to,
            capacity_per_replica: capacity,
            startup_seconds: args.startup,
            window_seconds: args.window,
            tick_seconds: tick,
            results: &results,
        };
        super::emit(&serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&meta.name, from, to, capacity, &results);
    }
    Ok(ExitCode::SUCCESS)
}

/// The warm-start traces of a config group's predictive strategies (paths relative to the
/// config file's folder), read now so that a bad one fails before any simulation.
fn warm_starts(
    policy: &SimPolicy,
    config: &Path,
) -> Result<
    Vec<(
        String,
        scalepilot_core::strategy::WarmStart,
        std::sync::Arc<Trace>,
    )>,
> {
    let scalepilot_core::sim::Controller::Group { group, .. } = &policy.controller else {
        return Ok(Vec::new());
    };
    let base = config.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for s in &group.strategies {
        let scalepilot_core::strategy::Strategy::Predictive(p) = s else {
            continue;
        };
        let Some(ws) = &p.warm_start else { continue };
        let trace = scalepilot_engine::read_warm_start(ws, base)
            .map_err(|e| anyhow!("group {}: cannot read warm_start trace: {e}", group.name))?;
        out.push((p.metric.to_string(), ws.clone(), std::sync::Arc::new(trace)));
    }
    Ok(out)
}

/// examples/policies/recommended.yaml, built in; the predictive horizon follows --startup.
fn recommended(eval: Option<i64>, startup: i64) -> Result<SimPolicy> {
    let text = include_str!("../../examples/policies/recommended.yaml");
    let config = scalepilot_core::config::parse(text, "examples/policies/recommended.yaml")?;
    let group = config
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("recommended.yaml has no group"))?;
    let eval = eval.unwrap_or_else(|| group.evaluation_interval.as_secs().max(1));
    Ok(SimPolicy::group(group, eval).with_startup("recommended".into(), startup))
}

/// Knob values a sweep runs each forecasting policy at (see `SimPolicy::swept`).
const SWEEP_KNOB: [f64; 7] = [0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0];
/// HPA target utilizations (percent) drawn beside them.
const SWEEP_HPA_TARGETS: [u32; 5] = [50, 60, 70, 80, 90];

/// The sweep's policies, each with the point (family and knob) it stands for.
fn sweep_policies(
    swept: &[SimPolicy],
    capacity: f64,
    eval: i64,
) -> Vec<(super::sweep::Point, SimPolicy)> {
    use super::sweep::Point;
    let mut out: Vec<(Point, SimPolicy)> = SWEEP_HPA_TARGETS
        .iter()
        .map(|&target_pct| {
            let point = Point::Hpa { target_pct };
            let name = point.name();
            let policy = SimPolicy::hpa_at(capacity, eval, f64::from(target_pct) / 100.0, &name);
            (point, policy)
        })
        .collect();
    for p in swept {
        for x in SWEEP_KNOB {
            let point = Point::Forecasting {
                policy: p.name.clone(),
                x,
            };
            let policy = p.swept(point.name(), x);
            out.push((point, policy));
        }
    }
    out
}

fn print_table(name: &str, from: i64, to: i64, capacity: f64, results: &[PolicyResult]) {
    super::emit(&format!(
        "trace {name}, range [{from}, {to}) s, capacity {capacity:.4} req/s per replica"
    ));
    let header = [
        "policy",
        "cost_ratio",
        "unserved_%",
        "underprov_time_%",
        "actions",
        "replica_h",
        "oracle_h",
        "cost",
        "per_M_req",
    ];
    let rows: Vec<[String; 9]> = results
        .iter()
        .map(|r| {
            [
                r.policy.clone(),
                format!("{:.3}", r.cost_ratio),
                format!("{:.3}", r.unserved_pct),
                format!("{:.2}", r.underprov_time_pct),
                r.actions.to_string(),
                format!("{:.1}", r.replica_hours),
                format!("{:.1}", r.oracle_replica_hours),
                format!("{:.2}", r.cost),
                format!("{:.3}", r.cost_per_million_served),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        super::emit(&parts.join("  "));
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// The traces of traces/, built in for `POST /api/v1/simulate`: (name, trace.csv, meta.json).
pub(crate) const SHIPPED: &[(&str, &str, &str)] = &[
    (
        "nasa_http_1995",
        include_str!("../../traces/nasa_http_1995/trace.csv"),
        include_str!("../../traces/nasa_http_1995/meta.json"),
    ),
    (
        "nab_nyc_taxi",
        include_str!("../../traces/nab_nyc_taxi/trace.csv"),
        include_str!("../../traces/nab_nyc_taxi/meta.json"),
    ),
    (
        "nab_elb_request_count",
        include_str!("../../traces/nab_elb_request_count/trace.csv"),
        include_str!("../../traces/nab_elb_request_count/meta.json"),
    ),
    (
        "azure_llm_conv_2023",
        include_str!("../../traces/azure_llm_conv_2023/trace.csv"),
        include_str!("../../traces/azure_llm_conv_2023/meta.json"),
    ),
];

/// Policy-ticks one `report` may simulate (ticks times policies): a few seconds of work.
pub(crate) const REPORT_MAX_WORK: u64 = 20_000_000;

/// Why a [`report`] could not run: the input's fault, or too much work for one request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooBig(String),
}

/// `simulate --json` for one trace and some groups, as the API runs it: `groups` (each at
/// its own evaluation interval, without warm starts) beside the HPA and the oracle, over the
/// whole trace, with the command's defaults (capacity sized so that the peak needs 40
/// replicas, 60 s startup and window, 0.10 a replica-hour). `meta` is the trace's meta.json.
pub(crate) fn report(
    csv: &str,
    meta: Option<&str>,
    name: &str,
    groups: Vec<scalepilot_core::config::Group>,
) -> std::result::Result<serde_json::Value, ReportError> {
    let invalid = |e: anyhow::Error| ReportError::Invalid(format!("{e:#}"));
    let meta = match meta {
        Some(text) => parse_meta(text, "meta.json", name.to_string()).map_err(invalid)?,
        None => Meta {
            name: name.to_string(),
            step: None,
            start: None,
        },
    };
    let trace = Trace::parse(csv, meta.step)
        .map_err(|e| ReportError::Invalid(format!("invalid trace: {e}")))?;
    let (from, to) = (trace.first, trace.end());
    let peak = trace.peak(from, to);
    if peak <= 0.0 {
        return Err(ReportError::Invalid(
            "the trace has no load: cannot size capacity from its peak".into(),
        ));
    }
    let capacity = within(
        "the capacity sized from the trace's peak",
        peak / 40.0,
        CAPACITY,
    )
    .map_err(invalid)?;
    let (startup, window, price) = (60, 60, 0.10);
    let mut policies = vec![SimPolicy::hpa(capacity, 15), SimPolicy::oracle()];
    for g in groups {
        let eval = g.evaluation_interval.as_secs().max(1);
        policies.push(SimPolicy::group(g, eval));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &policies {
        if !seen.insert(p.name.as_str()) {
            return Err(ReportError::Invalid(format!(
                "two policies are named `{}`: give the group another name",
                p.name
            )));
        }
    }
    let params = SimParams {
        from,
        to,
        capacity,
        startup,
        window,
        epoch: meta.start.unwrap_or(Timestamp::UNIX_EPOCH),
        chart_points: 0,
        price,
        global_budget: None,
    };
    let tick = params.tick(&trace);
    let ticks = scalepilot_core::sim::tick_count(&params, &trace);
    let work = ticks.saturating_mul(policies.len() as u64);
    if work > REPORT_MAX_WORK {
        return Err(ReportError::TooBig(format!(
            "the trace holds {ticks} ticks of {tick} s for {} policies; at most {REPORT_MAX_WORK} policy-ticks are simulated per request (use `scalepilot simulate` for more)",
            policies.len()
        )));
    }
    let results: Vec<PolicyResult> = policies
        .iter()
        .map(|p| simulate(&trace, &params, p, &mut |_| {}))
        .collect();
    let out = Output {
        trace: &meta.name,
        from,
        to,
        capacity_per_replica: capacity,
        startup_seconds: startup,
        window_seconds: window,
        tick_seconds: tick,
        results: &results,
    };
    serde_json::to_value(&out).map_err(|e| ReportError::Invalid(e.to_string()))
}
