//! Forecasting state of the predictive and cost strategies in the engine.
//!
//! The core keeps it in `GroupState.forecasts`, which is not persisted: it is derived from the
//! metric's past and is rebuilt whenever a group runtime is created, by replaying a warm-start
//! trace (when configured) and then the stored metric samples through
//! `scalepilot_core::forecast::replay`, the same steps evaluations take. Each evaluation's
//! forecasts are stored so `history --forecasts` can compare them with what happened.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use scalepilot_core::config::Group;
use scalepilot_core::decision::Reason;
use scalepilot_core::forecast::{replay, replay_trace};
use scalepilot_core::sim::Trace;
use scalepilot_core::strategy::{Predictive, Strategy, WarmStart};
use scalepilot_core::{Decision, GroupState};

use scalepilot_store::{ErrorComponent, NewForecast, Store};

/// Store retention a weekly profile needs to be rebuilt: seven whole local days, and a day
/// is learned only once the next one starts.
pub(crate) const WEEKLY_RETENTION: Duration = Duration::from_secs(8 * 86_400);

fn forecasting(group: &Group) -> impl Iterator<Item = &Predictive> {
    group.strategies.iter().filter_map(|s| match s {
        Strategy::Predictive(p) => Some(p),
        _ => None,
    })
}

/// Metrics of the group's predictive and cost strategies, each once, in config order.
fn metrics(group: &Group) -> Vec<Arc<str>> {
    let mut out: Vec<Arc<str>> = Vec::new();
    for p in forecasting(group) {
        if !out.contains(&p.metric) {
            out.push(p.metric.clone());
        }
    }
    out
}

/// The warning owed when a weekly profile cannot be rebuilt from the stored samples.
pub(crate) fn retention_warning(group: &Group, retention: Duration) -> Option<String> {
    if retention >= WEEKLY_RETENTION {
        return None;
    }
    let p = forecasting(group).find(|p| p.seasonality.is_some_and(|s| s.weekly))?;
    // In days when whole, as users write it ("7d" rather than "168h").
    let secs = retention.as_secs();
    let shown = if secs.is_multiple_of(86_400) && retention.subsec_nanos() == 0 {
        format!("{}d", secs / 86_400)
    } else {
        format!(
            "{:#}",
            SignedDuration::try_from(retention).unwrap_or_default()
        )
    };
    Some(format!(
        "predictive strategy on {} learns a weekly profile, but store.sample_retention is {}: \
         a restart replays only that much history, so the weekly profile will not survive it \
         (the daily one will); set store.sample_retention to 8d or more",
        p.metric, shown,
    ))
}

/// What a rebuild did, for the log and the errors table.
#[derive(Debug, Default)]
struct Report {
    /// Human lines for the log.
    notes: Vec<String>,
    /// Warm-start problems, recorded as `config` errors.
    errors: Vec<String>,
}

/// Rebuild `state`'s forecasting state for `group` at `now`: for each metric a predictive or
/// cost strategy uses, the warm-start trace (relative paths from `base`), then the stored
/// samples of the last `retention`. Never fails: what cannot be read is recorded and the
/// strategy starts colder.
pub(crate) async fn rebuild(
    group: &Group,
    state: GroupState,
    store: &dyn Store,
    base: &Path,
    retention: Duration,
    now: Timestamp,
) -> GroupState {
    let metrics = metrics(group);
    if metrics.is_empty() {
        return state;
    }
    let since = now
        .checked_sub(SignedDuration::try_from(retention).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MIN);
    let mut stored = Vec::with_capacity(metrics.len());
    for metric in &metrics {
        match store.samples(&group.name, metric, since).await {
            Ok(s) => stored.push(s),
            Err(e) => {
                // The group still runs; its strategies learn again from live values.
                tracing::warn!(group = %group.name, metric = %metric, "cannot read stored samples to rebuild forecasts: {e}");
                stored.push(Vec::new());
            }
        }
    }
    // Reading a trace and replaying days of values is CPU work: keep it off the runtime's
    // threads, which run the other groups' evaluations meanwhile.
    let fallback = state.clone();
    let (g, b) = (group.clone(), base.to_path_buf());
    let done = tokio::task::spawn_blocking(move || {
        let mut state = state;
        let report = replay_all(&g, &mut state, &b, &metrics, stored, now);
        (state, report)
    })
    .await;
    let (state, report) = match done {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(group = %group.name, "rebuilding the forecasts failed: {e}");
            return fallback;
        }
    };
    for note in &report.notes {
        tracing::info!(group = %group.name, "{note}");
    }
    for e in &report.errors {
        tracing::error!(group = %group.name, "{e}");
        if let Err(err) = store
            .record_error(
                Some(&group.name),
                ErrorComponent::Config,
                e,
                Timestamp::now(),
            )
            .await
        {
            tracing::warn!(group = %group.name, "cannot record an error ({e}): {err}");
        }
    }
    state
}

fn replay_all(
    group: &Group,
    state: &mut GroupState,
    base: &Path,
    metrics: &[Arc<str>],
    stored: Vec<Vec<(Timestamp, f64)>>,
    now: Timestamp,
) -> Report {
    let mut report = Report::default();
    let interval = group.evaluation_interval.as_secs().max(1);
    for (metric, samples) in metrics.iter().zip(stored) {
        // replay() feeds every strategy on the metric, so one trace is its past for all of
        // them; a second warm start on the same metric would replay the same times again.
        let mut warm = forecasting(group)
            .filter(|p| p.metric == *metric)
            .filter_map(|p| p.warm_start.as_ref());
        let mut warm_values = 0;
        if let Some(ws) = warm.next() {
            match read_warm_start(ws, base) {
                Ok(trace) => {
                    let (n, future) = replay_trace(group, state, metric, ws, &trace, interval, now);
                    warm_values = n;
                    if future > 0 {
                        report.notes.push(format!(
                            "warm start {}: {future} values at or after now were skipped (warm_start.start is {})",
                            ws.trace, ws.start
                        ));
                    }
                }
                Err(e) => report.errors.push(format!(
                    "warm start of the {metric} forecast: {e}; the strategy starts without it"
                )),
            }
        }
        if warm.next().is_some() {
            report.notes.push(format!(
                "several warm starts for {metric}: only the first strategy's is replayed"
            ));
        }
        // Samples at or after `now` (a clock set back) would make the live ones look old.
        let past: Vec<(Timestamp, f64)> = samples.into_iter().filter(|(at, _)| *at < now).collect();
        replay(group, state, metric, &past);
        let warm_flags: Vec<bool> = group
            .strategies
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                matches!(s, Strategy::Predictive(p) if p.metric == *metric && p.seasonality.is_some())
            })
            .map(|(i, _)| state.forecasts.get(&i).is_some_and(|t| t.warm()))
            .collect();
        let what = if warm_flags.is_empty() {
            "the cost strategy has no seasonal model"
        } else if warm_flags.contains(&true) {
            "seasonal profile learned"
        } else {
            "no whole day yet: cold start"
        };
        report.notes.push(format!(
            "forecasts of {metric} rebuilt from {warm_values} warm-start values and {} stored samples ({what})",
            past.len(),
        ));
    }
    report
}

/// Read and parse a warm-start trace (a relative path is taken from `base`, the config
/// file's folder). `simulate` reads them the same way.
pub fn read_warm_start(ws: &WarmStart, base: &Path) -> Result<Trace, String> {
    let path = base.join(&ws.trace);
    // Blocking: the engine calls this inside `spawn_blocking` (see `rebuild`).
    let text = crate::limits::read_to_string(&path, crate::limits::TRACE_LIMIT, "trace")
        .map_err(|e| format!("{e:#}"))?;
    Trace::parse(&text, ws.step).map_err(|e| format!("invalid trace {}: {e}", path.display()))
}

/// The forecasts `decision` made at `made`, one per predictive or cost strategy that had its
/// metric.
pub(crate) fn made(group: &Group, decision: &Decision, made: Timestamp) -> Vec<NewForecast> {
    group
        .strategies
        .iter()
        .zip(&decision.strategies)
        .filter_map(|(s, outcome)| {
            let (Strategy::Predictive(p), Reason::Predictive(o)) = (s, &outcome.reason) else {
                return None;
            };
            // SQLite stores NaN as NULL, which the table refuses; a non-finite forecast
            // has nothing to compare anyway.
            if !(o.estimate.is_finite() && o.provision.is_finite()) {
                return None;
            }
            let after = |d: SignedDuration| made.checked_add(d).unwrap_or(Timestamp::MAX);
            Some(NewForecast {
                metric: o.metric.to_string(),
                made,
                // As the core scores it: replicas asked for now serve after startup, never
                // later than the horizon's end.
                serves_from: after(p.startup.min(o.horizon)),
                due: after(o.horizon),
                estimate: o.estimate,
                provision: o.provision,
                seasonal: o.seasonal,
                forecast_only: o.forecast_only,
            })
        })
        .collect()
}
