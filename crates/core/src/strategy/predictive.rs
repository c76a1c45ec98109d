//! `predictive` and `cost`: provision for the load expected over the next startup + evaluation
//! interval, with the least headroom that kept a service objective on recent history.
//!
//! Estimate: a level of the metric (one of several smoothings, see `forecast::tracker`) ×
//! the seasonal factor, the largest over the horizon. predictive learns daily and weekly
//! profiles; with less than one whole day of history it has none and tracks the observed
//! value (it says "cold start"). cost never forecasts: its estimate is the level alone.
//!
//! replicas = ceil((estimate + k·σ) / capacity_per_replica), where σ is the metric's recent
//! noise and k the least that would have left at most `max_unserved_pct` of demand unserved
//! over `history`. The reactive safety net: never fewer than the observed value needs at
//! capacity, ceil(observed / capacity_per_replica). Until enough estimates have been scored,
//! replicas = ceil(observed × (1 + initial_headroom) / capacity) (target tracking).
//! `forecast_only` computes and records all of it but recommends that target-tracking count.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::decision::{Reason, StrategyOutcome};
use crate::forecast::tracker::{Estimates, LEVEL_TAUS, Signature};
use crate::forecast::{Objective, SeasonalModel, Seasonality, Tracker};
use crate::observation::Observation;

#[derive(Debug, Clone)]
pub struct Predictive {
    pub metric: Arc<str>,
    /// What one replica serves, in the metric's unit. `None` only in groups without a source,
    /// where `simulate` fills in the simulation's capacity.
    pub capacity: Option<f64>,
    /// `None`: the cost strategy (no forecast).
    pub seasonality: Option<Seasonality>,
    pub resolution: i64,
    pub zone_name: Arc<str>,
    pub timezone: TimeZone,
    /// Replica startup time; the horizon is startup + the group's evaluation interval.
    pub startup: SignedDuration,
    /// What the headroom must achieve on the history.
    pub objective: Objective,
    /// Least headroom while the seasonal model is cold (predictive only): without a season
    /// of history the strategy behaves like target tracking.
    pub cold_headroom: f64,
    /// Headroom used until enough estimates have been scored.
    pub initial_headroom: f64,
    /// Least headroom as a fraction of the estimate.
    pub min_headroom: f64,
    pub history: SignedDuration,
    pub forecast_only: bool,
    /// Trace replayed into the model before the first evaluation (engine and simulate).
    pub warm_start: Option<WarmStart>,
}

/// A validated warm-start trace reference (the core does no IO: callers read the file).
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    pub trace: String,
    pub start: Timestamp,
    pub step: Option<i64>,
    pub scale: f64,
}

/// What a predictive or cost evaluation found, for the decision's reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlook {
    pub kind: &'static str,
    pub metric: Arc<str>,
    pub observed: f64,
    /// The chosen estimate: the largest expected value over the horizon.
    pub estimate: f64,
    /// Whether `estimate` includes a seasonal forecast (false: cost, or cold start).
    pub seasonal: bool,
    /// Seconds of history the seasonal model has, and the season it needs (cold start).
    pub history_seconds: i64,
    pub season_seconds: i64,
    pub horizon: SignedDuration,
    /// Smoothing of the chosen level, seconds (None: still learning).
    pub smoothing: Option<f64>,
    pub sigma: f64,
    /// Headroom in σ (None: still learning, `initial_headroom` applied).
    pub k: Option<f64>,
    pub objective: Objective,
    /// The provision in the metric's unit: estimate + k·σ.
    pub provision: f64,
    pub capacity: f64,
    /// What the estimate asks for, and the reactive floor ceil(observed / capacity).
    pub forecast_replicas: u32,
    pub floor_replicas: u32,
    pub desired: u32,
    pub forecast_only: bool,
}

impl Predictive {
    pub fn kind(&self) -> &'static str {
        if self.seasonality.is_some() {
            "predictive"
        } else {
            "cost"
        }
    }

    /// The settings the tracker's state depends on.
    pub fn signature(&self) -> Signature {
        Signature {
            metric: self.metric.clone(),
            seasonality: self.seasonality,
            resolution: self.resolution,
            zone_name: self.zone_name.clone(),
            history: self.history,
        }
    }

    pub fn new_tracker(&self) -> Tracker {
        let model = self
            .seasonality
            .map(|s| SeasonalModel::new(s, self.resolution, self.timezone.clone()));
        Tracker::new(model, self.history, self.signature())
    }

    pub fn horizon(&self, eval_interval: SignedDuration) -> SignedDuration {
        self.startup.saturating_add(eval_interval)
    }

    /// Feed one value and record the estimates, exactly as an evaluation does (used to replay
    /// history into a fresh tracker). Returns the estimates and the choice made.
    pub fn step(
        &self,
        tracker: &mut Tracker,
        at: Timestamp,
        value: f64,
        horizon: SignedDuration,
    ) -> (Estimates, Option<crate::forecast::tracker::Choice>) {
        tracker.observe(at, value);
        let estimates = tracker.estimates(at, horizon);
        let choice = tracker.choose(at, self.objective);
        // Every candidate's estimate is scored, whichever is in use (once σ means something).
        if let Some(sigma) = tracker.scale(value) {
            tracker.record(at, self.startup, horizon, estimates, sigma);
        }
        (estimates, choice)
    }

    pub fn evaluate(
        &self,
        obs: &Observation,
        tracker: &mut Tracker,
        now: Timestamp,
        eval_interval: SignedDuration,
    ) -> StrategyOutcome {
        let kind = self.kind();
        let missing = |problem| StrategyOutcome {
            kind,
            replicas: None,
            missing_data: true,
            reason: Reason::Missing {
                metric: self.metric.clone(),
                problem,
            },
        };
        let value = match obs.metric_value(&self.metric) {
            Ok(v) => v,
            Err(problem) => return missing(problem),
        };
        let horizon = self.horizon(eval_interval);
        let (estimates, choice) = self.step(tracker, now, value, horizon);
        let Some(c) = self.capacity.filter(|c| *c > 0.0) else {
            // Validation requires a capacity wherever a source exists; only a hand-built
            // group can get here. No opinion is safer than a guess.
            return missing(crate::observation::MetricProblem::Failed(
                "capacity_per_replica is not set".into(),
            ));
        };
        let sigma = tracker.scale(value).unwrap_or(0.0);
        let initial = value * (1.0 + self.initial_headroom);
        let cold = self.seasonality.is_some() && !tracker.warm();
        let floor = if cold {
            self.min_headroom.max(self.cold_headroom)
        } else {
            self.min_headroom
        };
        let (estimate, provision) = match choice {
            Some(ch) => {
                let e = estimates[ch.candidate];
                (e, (e + ch.k * sigma).max(e * (1.0 + floor)))
            }
            None => (value, initial.max(value * (1.0 + floor))),
        };
        let replicas = |x: f64| (x / c - 1e-9).ceil().clamp(0.0, u32::MAX as f64) as u32;
        let forecast_replicas = replicas(provision);
        let floor_replicas = replicas(value);
        let desired = if self.forecast_only {
            replicas(initial)
        } else {
            forecast_replicas.max(floor_replicas)
        };
        let (history_seconds, season_seconds) = match (&tracker.model, self.seasonality) {
            (Some(m), Some(s)) => (
                m.history_seconds(),
                if s.daily { 86_400 } else { 7 * 86_400 },
            ),
            _ => (0, 0),
        };
        StrategyOutcome {
            kind,
            replicas: Some(desired),
            missing_data: false,
            reason: Reason::Predictive(Box::new(Outlook {
                kind,
                metric: self.metric.clone(),
                observed: value,
                estimate,
                seasonal: tracker.warm(),
                history_seconds,
                season_seconds,
                horizon,
                smoothing: choice.map(|ch| LEVEL_TAUS[ch.candidate % LEVEL_TAUS.len()]),
                sigma,
                k: choice.map(|ch| ch.k),
                objective: self.objective,
                provision,
                capacity: c,
                forecast_replicas,
                floor_replicas,
                desired,
                forecast_only: self.forecast_only,
            })),
        }
    }
}

impl std::fmt::Display for Outlook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.metric;
        if self.kind == "predictive" && !self.seasonal {
            write!(
                f,
                "cold start ({:#} of history, no whole {:#} season yet): tracking {m}; ",
                SignedDuration::from_secs(self.history_seconds),
                SignedDuration::from_secs(self.season_seconds),
            )?;
        }
        match (self.k, self.smoothing) {
            (Some(k), Some(tau)) => {
                let what = if self.seasonal {
                    "forecast"
                } else {
                    "expected"
                };
                write!(
                    f,
                    "{what} {m} ≤{:.3} within {:#} (observed {:.3}, level smoothed over {}s), + {k:.1}σ (σ={:.3}, least for {} over history) = {:.3}",
                    self.estimate,
                    self.horizon,
                    self.observed,
                    tau,
                    self.sigma,
                    self.objective,
                    self.provision
                )?;
            }
            _ => write!(
                f,
                "learning: {m}={:.3} + initial headroom = {:.3}",
                self.observed, self.provision
            )?,
        }
        write!(
            f,
            " at {} per replica → {}",
            self.capacity, self.forecast_replicas
        )?;
        if self.floor_replicas > self.forecast_replicas {
            write!(
                f,
                "; reactive floor ceil({:.3}/{}) = {} wins",
                self.observed, self.capacity, self.floor_replicas
            )?;
        }
        if self.forecast_only {
            write!(
                f,
                "; forecast_only: recommends the target-tracking {} instead",
                self.desired
            )?;
        }
        Ok(())
    }
}
