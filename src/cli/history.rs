//! `scalepilot history`: the recorded scaling activities (with their reasons), errors, and
//! forecasts set against what happened.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use serde::Serialize;

use scalepilot_store::ForecastRecord;

/// Show what scaled and why (newest first), the recorded errors, or the forecasts of
/// predictive and cost strategies against what happened.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Policy file (its `store:` is read).
    #[arg(long)]
    config: PathBuf,
    /// Only this group.
    #[arg(long)]
    group: Option<String>,
    /// How many entries.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Show errors instead of activities.
    #[arg(long, conflicts_with = "forecasts")]
    errors: bool,
    /// Show forecasts instead of activities: each with the actual (the largest stored sample
    /// while the replicas it asked for would serve: from startup to the horizon's end), the
    /// error (actual − estimate) and whether the provision covered it.
    #[arg(long)]
    forecasts: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn when(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let loaded = scalepilot_engine::load_config_only(&args.config)?;
        let base = args
            .config
            .parent()
            .map(PathBuf::from)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        // Read-only, never created: a wrong path or a store not written yet must be an error,
        // not an empty store created there and an empty history shown.
        let store: Box<dyn scalepilot_store::Store> = match &loaded.store {
            scalepilot_core::config::Store::Sqlite { path, .. } => {
                let file = base.join(path);
                Box::new(
                    scalepilot_store::SqliteStore::open_read_only(&file)
                        .await
                        .with_context(|| format!("cannot open the store {}", file.display()))?,
                )
            }
            scalepilot_core::config::Store::Postgres { .. } => {
                let settings = scalepilot_engine::pg_settings(&loaded.store, &base)?
                    .context("a PostgreSQL store has connection settings")?;
                let shown = settings.redacted_url();
                Box::new(
                    scalepilot_store::PostgresStore::connect(settings)
                        .await
                        .with_context(|| format!("cannot open the store {shown}"))?,
                )
            }
        };
        if args.errors {
            let errors = store.errors(args.group.as_deref(), args.limit).await?;
            if args.json {
                super::emit(&serde_json::to_string_pretty(&errors)?);
            } else {
                for e in errors {
                    super::emit(&format!(
                        "{}  {:<12} {:<7} {}",
                        when(e.at_ms),
                        e.group.unwrap_or_default(),
                        e.component,
                        e.message
                    ));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        if args.forecasts {
            let rows = store
                .forecasts(args.group.as_deref(), args.limit, Timestamp::now())
                .await?;
            print_forecasts(rows, args.json)?;
            return Ok(ExitCode::SUCCESS);
        }
        let activities = store.activities(args.group.as_deref(), args.limit).await?;
        if args.json {
            super::emit(&serde_json::to_string_pretty(&activities)?);
        } else {
            for a in activities {
                let summary = a.decision["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let error = a.error.map(|e| format!(" ({e})")).unwrap_or_default();
                super::emit(&format!(
                    "{}  {:<12} {:>4} → {:<4} {:<11}{error}\n    {summary}",
                    when(a.started_ms),
                    a.group,
                    a.from_replicas,
                    a.to_replicas,
                    a.status
                ));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A forecast as shown: the stored row with its error and coverage.
#[derive(Debug, Serialize)]
struct Shown {
    #[serde(flatten)]
    row: ForecastRecord,
    /// actual − estimate (positive: the load came in above the forecast).
    error: Option<f64>,
    /// Whether the provision (estimate + headroom) was at least the actual.
    covered: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Summary {
    rows: usize,
    /// Rows whose horizon has ended with a sample in it.
    with_actual: usize,
    /// Share of those whose provision covered the actual (0..1).
    covered_share: Option<f64>,
    mean_absolute_error: Option<f64>,
}

fn summarize(shown: &[Shown]) -> Summary {
    let scored: Vec<&Shown> = shown.iter().filter(|s| s.error.is_some()).collect();
    let n = scored.len();
    let covered = scored.iter().filter(|s| s.covered == Some(true)).count();
    let abs: f64 = scored.iter().filter_map(|s| s.error).map(f64::abs).sum();
    Summary {
        rows: shown.len(),
        with_actual: n,
        covered_share: (n > 0).then(|| covered as f64 / n as f64),
        mean_absolute_error: (n > 0).then(|| abs / n as f64),
    }
}

fn print_forecasts(rows: Vec<ForecastRecord>, json: bool) -> Result<()> {
    let shown: Vec<Shown> = rows
        .into_iter()
        .map(|row| Shown {
            error: row.actual.map(|a| a - row.estimate),
            covered: row.actual.map(|a| row.provision >= a),
            row,
        })
        .collect();
    let summary = summarize(&shown);
    if json {
        super::emit(&serde_json::to_string_pretty(
            &serde_json::json!({"forecasts": shown, "summary": summary}),
        )?);
        return Ok(());
    }
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    super::emit(&format!(
        "{:<24}  {:<12} {:<14} {:>10} {:>10} {:>10} {:>10} {:<7}  notes",
        "made", "group", "metric", "estimate", "provision", "actual", "error", "covered"
    ));
    for s in &shown {
        let r = &s.row;
        let mut notes = vec![if r.seasonal {
            "seasonal"
        } else {
            "not seasonal"
        }];
        if r.forecast_only {
            notes.push("forecast_only");
        }
        let covered = match s.covered {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        super::emit(&format!(
            "{:<24}  {:<12} {:<14} {:>10.3} {:>10.3} {:>10} {:>10} {:<7}  {}",
            when(r.made_ms),
            r.group,
            r.metric,
            r.estimate,
            r.provision,
            num(r.actual),
            s.error
                .map_or_else(|| "-".to_string(), |e| format!("{e:+.3}")),
            covered,
            notes.join(" ")
        ));
    }
    let share = summary
        .covered_share
        .map_or_else(|| "-".to_string(), |c| format!("{:.1} %", c * 100.0));
    super::emit(&format!(
        "{} forecasts, {} with actuals: provision covered {share}, mean absolute error {}",
        summary.rows,
        summary.with_actual,
        num(summary.mean_absolute_error)
    ));
    Ok(())
}
