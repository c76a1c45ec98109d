//! The least headroom that keeps a service objective on recent history.
//!
//! Each scored estimate is (estimate e, actual a, noise scale σ at the time). Provisioning
//! e + k·σ would have left max(0, a − e − k·σ) unserved. Headroom is counted in σ because
//! noise, not load, sets what is needed: 10 % is far too little for 5 req/s of Poisson
//! traffic and far too much for 5,000 req/s. Pairs are kept in a histogram of z = (a − e)/σ
//! (0.1 wide bins) holding Σσ, Σ(a − e) and a weight per bin, exponentially weighted over
//! `history` (decayed every history/100, at most every 5 minutes), so adding and answering "least k with Σ unserved /
//! Σ a ≤ objective" cost O(1) and O(bins), in a few kilobytes whatever the history length.

use jiff::{SignedDuration, Timestamp};

const Z_MIN: f64 = -10.0;
const Z_STEP: f64 = 0.1;
const BINS: usize = 400; // up to z = 30
/// k is searched in [MIN_K, MAX_K]: an estimate that runs high may be trimmed a little.
pub const MIN_K: f64 = -1.0;
pub const MAX_K: f64 = 30.0;
/// Scored pairs needed before the learned headroom is used.
pub const MIN_PAIRS: usize = 20;
/// Weights are decayed every history/100, within these bounds (seconds): decaying touches
/// every bin, so not at every evaluation.
const DECAY_EVERY: (i64, i64) = (15, 300);
/// A bin whose weight decays below this is emptied: a spike of long ago must not hold a
/// zero-unserved objective's headroom up forever.
const FORGOTTEN: f64 = 1e-3;

/// Exponentially weighted error histogram: a pair scored `history` ago weighs 1/e, so memory
/// is a few kilobytes whatever the evaluation rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Headroom {
    tau: f64,
    last_decay: Option<Timestamp>,
    /// Pairs ever added (the learned headroom is used from MIN_PAIRS on).
    scored: usize,
    sum_sigma: Vec<f64>,
    sum_miss: Vec<f64>,
    weight: Vec<f64>,
    total_estimate: f64,
    total_sigma: f64,
    total_actual: f64,
    total_weight: f64,
}

impl Headroom {
    pub fn new(history: SignedDuration) -> Headroom {
        Headroom {
            tau: history.as_secs_f64().max(1.0),
            last_decay: None,
            scored: 0,
            sum_sigma: vec![0.0; BINS + 2],
            sum_miss: vec![0.0; BINS + 2],
            weight: vec![0.0; BINS + 2],
            total_estimate: 0.0,
            total_sigma: 0.0,
            total_actual: 0.0,
            total_weight: 0.0,
        }
    }

    /// Pairs scored so far.
    pub fn len(&self) -> usize {
        self.scored
    }

    pub fn is_empty(&self) -> bool {
        self.scored == 0
    }

    /// Bin 0: below Z_MIN; 1..=BINS: the 0.1 σ bins; BINS + 1: above the top.
    fn bin(z: f64) -> usize {
        if z < Z_MIN {
            return 0;
        }
        let k = ((z - Z_MIN) / Z_STEP).floor();
        if k >= BINS as f64 {
            BINS + 1
        } else {
            k as usize + 1
        }
    }

    /// Lower edge of bin `b` (1..=BINS + 1) in σ.
    fn edge(b: usize) -> f64 {
        Z_MIN + (b as f64 - 1.0) * Z_STEP
    }

    /// Score one estimate against what happened; older pairs weigh less as time passes.
    pub fn add(&mut self, at: Timestamp, estimate: f64, actual: f64, sigma: f64) {
        let ok = [estimate, actual, sigma]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0);
        if !ok || sigma <= 0.0 {
            return;
        }
        self.decay(at);
        let miss = actual - estimate;
        let bin = Self::bin(miss / sigma);
        self.sum_sigma[bin] += sigma;
        self.sum_miss[bin] += miss;
        self.weight[bin] += 1.0;
        self.total_estimate += estimate;
        self.total_sigma += sigma;
        self.total_actual += actual;
        self.total_weight += 1.0;
        self.scored += 1;
    }

    fn decay(&mut self, at: Timestamp) {
        let Some(last) = self.last_decay else {
            self.last_decay = Some(at);
            return;
        };
        let dt = at.as_second() - last.as_second();
        if dt < ((self.tau / 100.0) as i64).clamp(DECAY_EVERY.0, DECAY_EVERY.1) {
            return;
        }
        let f = (-(dt as f64) / self.tau).exp();
        for b in 0..BINS + 2 {
            self.weight[b] *= f;
            if self.weight[b] < FORGOTTEN {
                self.weight[b] = 0.0;
                self.sum_sigma[b] = 0.0;
                self.sum_miss[b] = 0.0;
            } else {
                self.sum_sigma[b] *= f;
                self.sum_miss[b] *= f;
            }
        }
        self.total_estimate *= f;
        self.total_sigma *= f;
        self.total_actual *= f;
        self.total_weight *= f;
        self.last_decay = Some(at);
    }

    /// Share of demand (0..1) that provisioning estimate + k·σ left unserved.
    pub fn unserved(&self, k: f64) -> f64 {
        if self.total_actual <= 0.0 {
            return 0.0;
        }
        let lost: f64 = (1..=BINS + 1)
            .filter(|b| *b == BINS + 1 || Self::edge(*b) > k)
            .map(|b| (self.sum_miss[b] - k * self.sum_sigma[b]).max(0.0))
            .sum();
        lost / self.total_actual
    }

    /// The least k in [MIN_K, MAX_K] whose unserved share on the history is at most
    /// `objective` (a fraction), with that share (MAX_K and its share when even that is
    /// not enough); `None` with fewer than MIN_PAIRS pairs.
    pub fn least(&self, objective: f64) -> Option<(f64, f64)> {
        if self.scored < MIN_PAIRS {
            return None;
        }
        let budget = objective.max(0.0) * self.total_actual.max(0.0) + 1e-12;
        // Walk the bin edges from the top down: at k = edge(b) every bin above b is unserved.
        // Beyond the top bin a pair is unserved at any k we may choose.
        let (mut miss, mut sigma) = (self.sum_miss[BINS + 1], self.sum_sigma[BINS + 1]);
        let mut best: Option<(f64, f64)> = None;
        // Empty bins above the highest pair change nothing: start there (MAX_K until then).
        let top = self.highest();
        if top < BINS {
            best = Some((MAX_K.min(Self::edge(top + 1)), 0.0)).filter(|_| miss <= budget);
        }
        for b in (1..=top).rev() {
            let k = Self::edge(b);
            if k <= MAX_K {
                let lost = (miss - k * sigma).max(0.0);
                if lost > budget {
                    break;
                }
                best = Some((k, lost));
                if k <= MIN_K {
                    break;
                }
            }
            miss += self.sum_miss[b];
            sigma += self.sum_sigma[b];
        }
        let total = self.total_actual.max(1e-300);
        Some(match best {
            Some((k, lost)) => (k.max(MIN_K), lost / total),
            None => (MAX_K, self.unserved(MAX_K)),
        })
    }

    /// The least k in [MIN_K, MAX_K] at which at most `1 − coverage` of the horizons on the
    /// history would have been short (the newsvendor's critical fractile: a rare huge spike
    /// counts once, not by its size), with the unserved share at that k.
    pub fn least_coverage(&self, coverage: f64) -> Option<(f64, f64)> {
        if self.scored < MIN_PAIRS {
            return None;
        }
        let allowed = (1.0 - coverage).max(0.0) * self.total_weight + 1e-9;
        let mut short = self.weight[BINS + 1];
        let mut best = None;
        let top = self.highest();
        if top < BINS && short <= allowed {
            best = Some(MAX_K.min(Self::edge(top + 1)));
        }
        for b in (1..=top).rev() {
            let k = Self::edge(b);
            if k <= MAX_K {
                if short > allowed {
                    break;
                }
                best = Some(k.max(MIN_K));
                if k <= MIN_K {
                    break;
                }
            }
            short += self.weight[b];
        }
        let k = best.unwrap_or(MAX_K);
        Some((k, self.unserved(k)))
    }

    /// The highest regular bin holding a pair (0 when none).
    fn highest(&self) -> usize {
        (1..=BINS)
            .rev()
            .find(|b| self.weight[*b] > 0.0)
            .unwrap_or(0)
    }

    /// Mean provision per pair over the history at headroom k: what the estimate costs.
    pub fn mean_provision(&self, k: f64) -> f64 {
        if self.total_weight <= 0.0 {
            return f64::INFINITY;
        }
        (self.total_estimate + k * self.total_sigma) / self.total_weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn zero_objective_covers_the_largest_miss() {
        let mut h = Headroom::new(SignedDuration::from_hours(1));
        for i in 0..100 {
            // Actual runs 0..2 σ above the estimate (σ = 10).
            h.add(ts(i * 15), 100.0, 100.0 + (i % 21) as f64, 10.0);
        }
        let (least, share) = h.least(0.0).unwrap();
        assert!((1.95..=2.05).contains(&least), "{least}");
        assert!(h.unserved(least) < 1e-9 && share < 1e-9);
        // A looser objective needs less.
        let (loose, share) = h.least(0.02).unwrap();
        assert!(loose < least && h.unserved(loose) <= 0.02 + 1e-9, "{loose}");
        assert!((share - h.unserved(loose)).abs() < 1e-9);
    }

    #[test]
    fn coverage_ignores_the_size_of_rare_spikes() {
        let mut h = Headroom::new(SignedDuration::from_hours(1));
        for i in 0..100 {
            // 1 σ above in 10 % of horizons, 25 σ above in 1 %.
            let miss = match i % 100 {
                0 => 250.0,
                1..=10 => 10.0,
                _ => 0.0,
            };
            h.add(ts(i * 15), 100.0, 100.0 + miss, 10.0);
        }
        // Covering 95 % of horizons needs 1 σ; the spike alone would cost 25 σ.
        let (k, share) = h.least_coverage(0.95).unwrap();
        assert!((0.95..=1.05).contains(&k), "{k}");
        assert!(share > 0.0);
        assert!(h.least_coverage(1.0).unwrap().0 >= 24.9);
        assert!(h.least(0.0).unwrap().0 >= 24.9);
    }

    #[test]
    fn biased_high_estimates_are_trimmed_down_to_the_floor() {
        let mut h = Headroom::new(SignedDuration::from_hours(1));
        for i in 0..100 {
            h.add(ts(i * 15), 200.0, 100.0, 10.0);
        }
        assert_eq!(h.least(0.0).map(|x| x.0), Some(MIN_K));
    }

    #[test]
    fn old_pairs_fade_out() {
        let mut h = Headroom::new(SignedDuration::from_mins(10));
        for i in 0..40 {
            h.add(ts(i * 15), 100.0, 150.0, 10.0);
        }
        assert!(h.least(0.0).unwrap().0 >= 4.95);
        // Two hours of good estimates: the misses weigh e^-12 and are forgotten.
        for i in 40..520 {
            h.add(ts(i * 15), 100.0, 100.0, 10.0);
        }
        assert!(h.least(0.0).unwrap().0 <= 0.05, "{:?}", h.least(0.0));
        assert_eq!(h.len(), 520);
        assert!((h.mean_provision(1.0) - 110.0).abs() < 1e-6);
    }

    #[test]
    fn needs_enough_pairs_and_sane_values() {
        let mut h = Headroom::new(SignedDuration::from_hours(1));
        for i in 0..(MIN_PAIRS as i64 - 1) {
            h.add(ts(i), 1.0, 1.0, 1.0);
        }
        h.add(ts(100), f64::NAN, 1.0, 1.0);
        h.add(ts(101), 1.0, -1.0, 1.0);
        h.add(ts(102), 1.0, 1.0, 0.0);
        assert_eq!(h.least(0.01), None);
        h.add(ts(103), 0.0, 500.0, 1.0); // 500 σ off: lost at any k
        assert!(h.unserved(MAX_K) > 0.0);
        let (k, share) = h.least(0.0).unwrap();
        assert_eq!(k, MAX_K);
        assert!(share > 0.0);
    }
}
