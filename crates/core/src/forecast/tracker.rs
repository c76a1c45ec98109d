//! Per-strategy forecasting state: the seasonal profiles, a few candidate levels, the
//! estimates still waiting for their horizon to pass, and one headroom learner per candidate.
//!
//! Each evaluation makes one estimate per candidate level (level × seasonal factor, the
//! largest over the horizon) and scores it once the horizon has passed against the largest
//! value seen while the replicas asked for then would serve (from startup to the horizon's
//! end; until startup, what is already running serves). The candidate whose learned headroom keeps the objective at the
//! lowest mean provision over the history is used: smooth levels win on noisy traffic, the
//! raw value wins on sudden shifts, and the choice follows the traffic.
//!
//! It is derived state: the engine rebuilds it by replaying stored metric samples (and an
//! optional warm-start trace) through [`Tracker::observe`] and [`Tracker::record`], the same
//! calls `decide` makes, so it is not persisted with the group's state.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};

use super::level::Level;
use super::{Headroom, Objective, SeasonalModel};

/// Smoothing time constants of the candidate levels, seconds (0 = the raw value). A
/// predictive tracker runs each twice: on deseasonalized values (× the seasonal factor) and
/// on raw values (flat), so that a season that does not help is not used.
pub const LEVEL_TAUS: [f64; 4] = [0.0, 60.0, 240.0, 900.0];
/// Most candidates a tracker has.
pub const MAX_CANDIDATES: usize = 2 * LEVEL_TAUS.len();
/// One estimate per candidate (unused slots 0).
pub type Estimates = [f64; MAX_CANDIDATES];
/// The noise scale follows about half an hour.
const SIGMA_TAU: f64 = 1800.0;
/// The reactive baseline holds its largest recommendation this long (the HPA's default
/// scale-down stabilization window).
const BASELINE_HOLD: i64 = 300;
/// Seconds a choice is reused.
const CHOICE_REUSE: i64 = 60;
/// Values σ must rest on before estimates are scored against it.
const MIN_SIGMA_SAMPLES: u32 = 8;
/// Mean absolute deviation → standard deviation for normal noise.
const MAD_TO_SD: f64 = 1.2533;

/// An estimate waiting for its horizon to pass.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    made: Timestamp,
    /// Replicas asked for at `made` serve from here on: only values from then on score it.
    serves_from: Timestamp,
    due: Timestamp,
    estimates: Estimates,
    sigma: f64,
    /// The observed value target tracking would size for: the largest of the last
    /// BASELINE_HOLD seconds.
    baseline: f64,
    /// Largest value seen after `made`, so far.
    actual: f64,
}

/// What the history says to provision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Index of the candidate: `LEVEL_TAUS[candidate % 4]`, seasonal when below 4 in a
    /// predictive tracker.
    pub candidate: usize,
    /// Headroom in noise units (σ).
    pub k: f64,
    /// Unserved share on the history at that headroom.
    pub unserved: f64,
    /// Whether the objective was met on the history.
    pub met: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tracker {
    /// `None` for the cost strategy: its levels are not deseasonalized.
    pub model: Option<SeasonalModel>,
    /// (level, fed deseasonalized values and projected with the seasonal factor).
    levels: Vec<(Level, bool)>,
    heads: Vec<Headroom>,
    sigma: Option<f64>,
    /// Values that fed σ so far: estimates are scored only once σ means something.
    sigma_samples: u32,
    last_at: Option<Timestamp>,
    pending: VecDeque<Pending>,
    /// The last choice and when it was made: the history moves slowly, so it is reused for
    /// a minute (a 4× saving on the simulator's hot path at a 15 s interval).
    chosen: Option<(Timestamp, Objective, Option<Choice>)>,
    /// What target tracking at `baseline_target` would have left unserved on the scored
    /// horizons, and their demand: exponentially weighted over `history` like the headroom.
    baseline_at: Option<Timestamp>,
    baseline_lost: f64,
    baseline_demand: f64,
    baseline_target: f64,
    /// Recent raw estimates (made, value): the baseline holds the largest of the last
    /// BASELINE_HOLD seconds, as the HPA's default scale-down stabilization does.
    recent_raw: VecDeque<(Timestamp, f64)>,
    history: SignedDuration,
    /// Identifies the settings the state was built with; other settings start over.
    pub signature: Signature,
}

/// The settings a tracker's state depends on (the cost strategy has no seasonality).
/// Compared at every evaluation, so it is built without allocating.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub metric: std::sync::Arc<str>,
    pub seasonality: Option<super::Seasonality>,
    pub resolution: i64,
    pub zone_name: std::sync::Arc<str>,
    pub history: SignedDuration,
}

impl Tracker {
    pub fn new(
        model: Option<SeasonalModel>,
        history: SignedDuration,
        signature: Signature,
    ) -> Tracker {
        let seasonal = model.is_some();
        Tracker {
            model,
            levels: LEVEL_TAUS
                .iter()
                .map(|t| (Level::new(*t), true))
                .filter(|_| seasonal)
                .chain(LEVEL_TAUS.iter().map(|t| (Level::new(*t), false)))
                .collect(),
            heads: (0..if seasonal { 2 } else { 1 } * LEVEL_TAUS.len())
                .map(|_| Headroom::new(history))
                .collect(),
            sigma: None,
            sigma_samples: 0,
            last_at: None,
            pending: VecDeque::new(),
            chosen: None,
            baseline_at: None,
            baseline_lost: 0.0,
            baseline_demand: 0.0,
            baseline_target: 0.7,
            recent_raw: VecDeque::new(),
            history,
            signature,
        }
    }

    /// Whether a seasonal profile is in use.
    pub fn warm(&self) -> bool {
        self.model.as_ref().is_some_and(SeasonalModel::warm)
    }

    fn factor(&self, t: Timestamp) -> f64 {
        match &self.model {
            Some(m) if m.warm() => m.factor(t),
            _ => 1.0,
        }
    }

    /// Feed a value observed at `at`: score every estimate whose horizon it ends, then teach
    /// the profiles, levels and noise scale. Values at or before the last one are ignored.
    pub fn observe(&mut self, at: Timestamp, value: f64) {
        if !value.is_finite() || value < 0.0 || self.last_at.is_some_and(|l| at <= l) {
            return;
        }
        for p in self.pending.iter_mut().filter(|p| at >= p.serves_from) {
            p.actual = p.actual.max(value);
        }
        while self.pending.front().is_some_and(|p| p.due <= at) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            for (h, e) in self.heads.iter_mut().zip(p.estimates) {
                h.add(p.made, e, p.actual, p.sigma);
            }
            let lost = (p.actual - p.baseline / self.baseline_target).max(0.0);
            if let Some(last) = self.baseline_at {
                let dt = (p.made.as_second() - last.as_second()).max(0) as f64;
                let f = (-dt / self.history.as_secs_f64().max(1.0)).exp();
                self.baseline_lost *= f;
                self.baseline_demand *= f;
            }
            self.baseline_at = Some(p.made);
            self.baseline_lost += lost;
            self.baseline_demand += p.actual;
        }
        let dt = self
            .last_at
            .map_or(0.0, |l| (at.as_second() - l.as_second()).max(1) as f64);
        let factor = self.factor(at);
        // Noise: how far the value strays from a 1-minute level, before that level moves.
        let flat = self.levels.len() - LEVEL_TAUS.len();
        let reference = self.levels[flat + 1].0.at(0.0);
        if let Some(r) = reference {
            let dev = (value - r).abs() * MAD_TO_SD;
            let a = 1.0 - (-dt / SIGMA_TAU).exp();
            // Bias-corrected like the levels: a plain mean until the window fills.
            self.sigma_samples = self.sigma_samples.saturating_add(1);
            let a = a.max(1.0 / f64::from(self.sigma_samples));
            let s = self.sigma.map_or(dev, |s| s + a * (dev - s));
            self.sigma = Some(s);
        }
        if let Some(m) = self.model.as_mut() {
            m.observe(at, value);
        }
        let deseasonalized = value / factor;
        for (l, seasonal) in &mut self.levels {
            l.observe(at, if *seasonal { deseasonalized } else { value });
        }
        self.last_at = Some(at);
    }

    /// σ for scoring: never 0, so a flat series still learns (0.5 % of the value at least);
    /// `None` until it rests on a few values.
    pub fn scale(&self, value: f64) -> Option<f64> {
        (self.sigma_samples >= MIN_SIGMA_SAMPLES)
            .then(|| self.sigma.unwrap_or(0.0).max(0.005 * value).max(1e-9))
    }

    /// Each candidate's estimate: the largest of level × seasonal factor over [at, at + horizon]
    /// (at `at`, at every bucket start inside, and at the end).
    pub fn estimates(&self, at: Timestamp, horizon: SignedDuration) -> Estimates {
        let end = crate::time::after(at, horizon);
        // Folded point by point rather than collected: no allocation on this per-evaluation
        // path, and no fixed-size buffer to bound the horizon.
        let mut out: Estimates = [0.0; MAX_CANDIDATES];
        let starts = self.model.as_ref().filter(|m| m.warm()).into_iter();
        for t in [at, end]
            .into_iter()
            .chain(starts.flat_map(|m| m.bucket_starts(at, end)))
        {
            let ahead = (t.as_second() - at.as_second()) as f64;
            let f = self.factor(t);
            for (o, (l, seasonal)) in out.iter_mut().zip(&self.levels) {
                if let Some(v) = l.at(ahead) {
                    *o = o.max(if *seasonal { v * f } else { v });
                }
            }
        }
        out
    }

    /// Remember the estimates made at `at` for replicas that serve from `at + startup` to
    /// `at + horizon`, to score them against the largest value seen in that span.
    pub fn record(
        &mut self,
        at: Timestamp,
        startup: SignedDuration,
        horizon: SignedDuration,
        estimates: Estimates,
        sigma: f64,
    ) {
        if self.pending.back().is_some_and(|p| p.made >= at) {
            return;
        }
        // The raw candidate's estimate is the observed value: what target tracking scales.
        let raw = estimates[self.levels.len() - LEVEL_TAUS.len()];
        let cutoff = crate::time::before(at, SignedDuration::from_secs(BASELINE_HOLD));
        while self.recent_raw.front().is_some_and(|r| r.0 <= cutoff) {
            self.recent_raw.pop_front();
        }
        self.recent_raw.push_back((at, raw));
        let baseline = self.recent_raw.iter().map(|r| r.1).fold(raw, f64::max);
        self.pending.push_back(Pending {
            baseline,
            made: at,
            serves_from: crate::time::after(at, startup.min(horizon)),
            due: crate::time::after(at, horizon),
            estimates,
            sigma,
            actual: f64::NEG_INFINITY,
        });
        // A stalled clock must not grow this without bound.
        while self.pending.len() > 10_000 {
            self.pending.pop_front();
        }
    }

    /// The candidate and headroom that kept `objective` on the history
    /// at the lowest mean provision; when none could, the one that came closest. `None` until
    /// enough estimates have been scored.
    pub fn choose(&mut self, at: Timestamp, objective: Objective) -> Option<Choice> {
        if let Some((when, o, c)) = self.chosen
            && o == objective
            && at >= when
            && (at.as_second() - when.as_second()) < CHOICE_REUSE
        {
            return c;
        }
        let c = self.choose_now(objective);
        self.chosen = Some((at, objective, c));
        c
    }

    fn choose_now(&mut self, objective: Objective) -> Option<Choice> {
        if let Objective::Reactive { target, .. } = objective
            && target > 0.0
            && target != self.baseline_target
        {
            // Scored from now on against the new target.
            self.baseline_target = target;
        }
        let baseline = if self.baseline_demand > 0.0 {
            (self.baseline_lost / self.baseline_demand).max(0.0)
        } else {
            0.0
        };
        let mut best: Option<(Choice, f64)> = None;
        for (i, h) in self.heads.iter().enumerate() {
            let Some((k, unserved, kept)) = objective.least(h, baseline) else {
                continue;
            };
            let cost = h.mean_provision(k);
            let better = match &best {
                None => true,
                Some((b, bc)) => match (kept, b.met) {
                    (true, false) => true,
                    (false, true) => false,
                    (true, true) => cost < *bc,
                    (false, false) => unserved < b.unserved,
                },
            };
            if better {
                best = Some((
                    Choice {
                        candidate: i,
                        k,
                        unserved,
                        met: kept,
                    },
                    cost,
                ));
            }
        }
        best.map(|(c, _)| c)
    }
}
