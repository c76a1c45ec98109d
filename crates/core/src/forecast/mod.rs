//! Load forecasting for the `predictive` and `cost` strategies.
//!
//! - [`seasonal`]: multiplicative daily and weekly profiles (Holt-Winters-style seasonal
//!   factors, robust to odd days); it learns only from values it has been shown (the past).
//! - [`headroom`]: learns the least headroom (in noise units) over an estimate that keeps a
//!   service objective (the share of demand left unserved) on recent history.
//! - [`level`]: smoothed levels with a damped trend (candidates from raw to 15 minutes).
//! - [`tracker`]: the per-strategy state that ties them together: it remembers what was
//!   estimated for each horizon, scores it against what then happened, and picks the
//!   candidate that kept the objective at the least cost.

pub mod headroom;
pub mod level;
pub mod seasonal;
pub mod tracker;

pub use headroom::Headroom;
pub use seasonal::{SeasonalModel, Seasonality};
pub use tracker::Tracker;

/// What the headroom must achieve on recent history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// At most this fraction of demand unserved.
    MaxUnserved(f64),
    /// At least this fraction of horizons fully served.
    Coverage(f64),
    /// Leave at most `factor` × the unserved share that target tracking at `target`
    /// utilization (provisioning observed / target) would have left on the same history:
    /// serve at least as well as the reactive baseline, at the least cost.
    Reactive { target: f64, factor: f64 },
}

impl Objective {
    /// The least headroom (in σ) meeting the objective on `h`, the unserved share there and
    /// whether it is met.
    pub fn least(&self, h: &Headroom, baseline: f64) -> Option<(f64, f64, bool)> {
        match *self {
            Objective::Reactive { factor, .. } => {
                let o = factor * baseline;
                h.least(o).map(|(k, u)| (k, u, u <= o + 1e-9))
            }
            Objective::MaxUnserved(o) => h.least(o).map(|(k, u)| (k, u, u <= o + 1e-9)),
            Objective::Coverage(q) => h
                .least_coverage(q)
                .map(|(k, u)| (k, u, k < headroom::MAX_K)),
        }
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Objective::MaxUnserved(o) => write!(f, "≤{}% unserved", o * 100.0),
            Objective::Coverage(q) => write!(f, "{}% of horizons covered", q * 100.0),
            Objective::Reactive { target, factor } => write!(
                f,
                "≤{factor}× the unserved of target tracking at {}%",
                target * 100.0
            ),
        }
    }
}

/// Rebuild the forecasting state of `group`'s predictive and cost strategies on `metric` from
/// past values (oldest first), exactly as if each had been observed at an evaluation. The
/// engine calls it at start with the stored metric samples (and a warm-start trace before
/// them); values at or before what a tracker has already seen are ignored.
pub fn replay(
    group: &crate::config::Group,
    state: &mut crate::state::GroupState,
    metric: &str,
    samples: &[(jiff::Timestamp, f64)],
) {
    for (i, s) in group.strategies.iter().enumerate() {
        let crate::strategy::Strategy::Predictive(p) = s else {
            continue;
        };
        if &*p.metric != metric {
            continue;
        }
        let horizon = p.horizon(group.evaluation_interval);
        let tracker = crate::decide::tracker(state, i, p);
        for (at, v) in samples {
            p.step(tracker, *at, *v, horizon);
        }
    }
}

/// A warm-start value is the trace's mean over this many seconds before it, the way a live
/// rate is a recent mean rather than an instant value.
pub const WARM_MEAN_SECONDS: i64 = 60;
/// Only the last four weeks of a warm-start trace are replayed: older days weigh under 1 % in
/// the daily profile and about 6 % in the weekly one.
pub const WARM_START_SPAN: i64 = 28 * 86_400;

/// Replay a warm-start trace into `group`'s strategies on `metric`: one value every
/// `interval` seconds (the trace's mean over the minute before, × `ws.scale`) at
/// `ws.start` + t, over the trace's last four weeks, stopping before `until`. Returns the
/// values replayed and those skipped because they fall at or after `until`.
pub fn replay_trace(
    group: &crate::config::Group,
    state: &mut crate::state::GroupState,
    metric: &str,
    ws: &crate::strategy::WarmStart,
    trace: &crate::sim::Trace,
    interval: i64,
    until: jiff::Timestamp,
) -> (usize, usize) {
    const CHUNK: usize = 8_192;
    let interval = interval.max(1);
    let (first, end) = (trace.first, trace.end());
    let from = end.saturating_sub(WARM_START_SPAN).max(first);
    // The first point of the interval grid from the trace's start inside the span.
    let mut t = first + (from - first + interval - 1) / interval * interval;
    let mut chunk = Vec::with_capacity(CHUNK);
    let (mut replayed, mut skipped) = (0, 0);
    while t <= end {
        match ws.start.checked_add(jiff::SignedDuration::from_secs(t)) {
            Ok(at) if at < until => {
                chunk.push((
                    at,
                    trace.mean((t - WARM_MEAN_SECONDS).max(first), t) * ws.scale,
                ));
                if chunk.len() == CHUNK {
                    replay(group, state, metric, &chunk);
                    replayed += chunk.len();
                    chunk.clear();
                }
            }
            // Every later value is at or after `until` too.
            _ => {
                skipped = ((end - t) / interval + 1) as usize;
                break;
            }
        }
        t += interval;
    }
    replay(group, state, metric, &chunk);
    replayed += chunk.len();
    (replayed, skipped)
}
