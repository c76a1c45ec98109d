//! Smoothed levels of a (deseasonalized) series, with a damped trend.
//!
//! Smoothing trades noise for lag: a level over 10 minutes is steady on noisy, low-volume
//! traffic but late on a flash crowd; the raw value is the opposite. The tracker keeps
//! several and lets recent history pick (see [`super::tracker`]).

use jiff::Timestamp;

/// Trend smoothing time constant, seconds, and the horizon over which a trend is damped out.
const TREND_TAU: f64 = 1800.0;
const TREND_HORIZON: f64 = 600.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Smoothing time constant in seconds; 0 = the last value as is.
    pub tau: f64,
    value: Option<f64>,
    trend: f64,
    /// Sum of the smoothing weights so far: while it is below 1 the level is a plain weighted
    /// mean of what was seen, not pulled towards the first value (bias correction).
    weight: f64,
    last_at: Option<Timestamp>,
}

impl Level {
    pub fn new(tau: f64) -> Level {
        Level {
            tau,
            value: None,
            trend: 0.0,
            weight: 0.0,
            last_at: None,
        }
    }

    pub fn observe(&mut self, t: Timestamp, v: f64) {
        match (self.value, self.last_at) {
            (Some(level), Some(last)) if self.tau > 0.0 => {
                let dt = (t.as_second() - last.as_second()).max(1) as f64;
                let predicted = (level + self.trend * dt).max(0.0);
                let a = 1.0 - (-dt / self.tau).exp();
                self.weight = (1.0 - a) * self.weight + a;
                let gain = (a / self.weight).min(1.0);
                let new = (predicted + gain * (v - predicted)).max(0.0);
                let b = 1.0 - (-dt / TREND_TAU).exp();
                self.trend += b * ((new - level) / dt - self.trend);
                self.value = Some(new);
            }
            _ => {
                self.value = Some(v);
                self.weight = 0.0;
            }
        }
        self.last_at = Some(t);
    }

    /// The level projected `ahead` seconds with the damped trend.
    pub fn at(&self, ahead: f64) -> Option<f64> {
        let damped = TREND_HORIZON * (1.0 - (-ahead.max(0.0) / TREND_HORIZON).exp());
        self.value.map(|v| (v + self.trend * damped).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn raw_level_is_the_last_value() {
        let mut l = Level::new(0.0);
        l.observe(ts(0), 5.0);
        l.observe(ts(15), 9.0);
        assert_eq!(l.at(60.0), Some(9.0));
    }

    #[test]
    fn smoothed_level_follows_a_step_and_a_ramp() {
        let mut l = Level::new(120.0);
        for i in 0..200 {
            l.observe(ts(i * 15), if i < 100 { 10.0 } else { 20.0 });
        }
        assert!((l.at(0.0).unwrap() - 20.0).abs() < 0.5);
        let mut r = Level::new(120.0);
        for i in 0..2000 {
            r.observe(ts(i * 15), i as f64 * 0.15); // +0.01 per second
        }
        // The trend projects the ramp: ahead of the smoothed (lagging) level.
        let now = r.at(0.0).unwrap();
        assert!(r.at(75.0).unwrap() > now + 0.5, "{:?} vs {now}", r.at(75.0));
    }
}
