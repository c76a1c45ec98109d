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
}

impl Objective {
    /// The least headroom (in σ) meeting the objective on `h`, the unserved share there and
    /// whether it is met.
    pub fn least(&self, h: &Headroom) -> Option<(f64, f64, bool)> {
        match *self {
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
        }
    }
}
