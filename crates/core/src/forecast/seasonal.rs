//! Seasonal profiles of load: a daily profile × a weekly profile, as factors around 1.
//!
//! The profiles are learned once per local day from that day's bucket means (one bucket per
//! `resolution`), blended into what was known before, so one odd day (a holiday, an outage)
//! moves them only part of the way and by at most a factor of two per bucket. Levels (see
//! [`super::level`]) run on deseasonalized values; the profiles say how the next minutes
//! differ from now. Until one whole day has been seen there is no profile: the strategy says
//! "cold start" and tracks the observed value.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Which seasons a model learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seasonality {
    pub daily: bool,
    pub weekly: bool,
}

/// How much of a new day's profile is blended into the old one.
const DAILY_GAIN: f64 = 0.3;
/// Weekly slots see one update per week, so each one weighs more.
const WEEKLY_GAIN: f64 = 0.5;
/// A day counts for learning when this share of its buckets has samples.
const MIN_COVERAGE: f64 = 0.8;
/// Profiles never go below this factor, so that deseasonalizing never divides by ~0.
const MIN_FACTOR: f64 = 0.05;
/// The long-run daily mean (the weekly profile's reference) follows about a week.
const WEEK_MEAN_DAYS: f64 = 7.0;

/// The model's state. Memory: (1 + 7 + 2) × buckets per day floats.
#[derive(Debug, Clone, PartialEq)]
pub struct SeasonalModel {
    seasonality: Seasonality,
    resolution: i64,
    tz: TimeZone,
    daily: Vec<f64>,
    daily_learned: bool,
    weekly: Vec<f64>,
    weekly_learned: [bool; 7],
    /// Running mean of daily means: what a weekday's level is relative to.
    week_mean: Option<f64>,
    /// The local day being collected: (day number, weekday 0 = Monday).
    day: Option<(i64, usize)>,
    day_sum: Vec<f64>,
    day_count: Vec<u32>,
    last_at: Option<Timestamp>,
    first_at: Option<Timestamp>,
}

impl SeasonalModel {
    /// `resolution` must divide a day (validation checks it).
    pub fn new(seasonality: Seasonality, resolution: i64, tz: TimeZone) -> SeasonalModel {
        let per_day = (86_400 / resolution.clamp(1, 86_400)) as usize;
        SeasonalModel {
            seasonality,
            resolution: resolution.clamp(1, 86_400),
            tz,
            daily: vec![1.0; per_day],
            daily_learned: false,
            weekly: vec![1.0; per_day * 7],
            weekly_learned: [false; 7],
            week_mean: None,
            day: None,
            day_sum: vec![0.0; per_day],
            day_count: vec![0; per_day],
            last_at: None,
            first_at: None,
        }
    }

    fn per_day(&self) -> usize {
        self.daily.len()
    }

    /// (day number, weekday 0 = Monday, bucket of the day) of `t` in the model's zone. Only
    /// the offset is looked up: the rest is arithmetic (this runs several times per tick).
    fn locate(&self, t: Timestamp) -> (i64, usize, usize) {
        let local = t.as_second() + i64::from(self.tz.to_offset(t).seconds());
        let day = local.div_euclid(86_400);
        let bucket =
            ((local.rem_euclid(86_400) / self.resolution) as usize).min(self.per_day() - 1);
        // 1970-01-01 was a Thursday (3 days after a Monday).
        let weekday = (day + 3).rem_euclid(7) as usize;
        (day, weekday, bucket)
    }

    /// The seasonal factor at `t` (1 when nothing is learned).
    pub fn factor(&self, t: Timestamp) -> f64 {
        let (_, weekday, bucket) = self.locate(t);
        self.factor_at(weekday, bucket)
    }

    fn factor_at(&self, weekday: usize, bucket: usize) -> f64 {
        let mut f = 1.0;
        if self.seasonality.daily && self.daily_learned {
            f *= self.daily[bucket];
        }
        if self.seasonality.weekly && self.weekly_learned[weekday] {
            f *= self.weekly[weekday * self.per_day() + bucket];
        }
        f.max(MIN_FACTOR)
    }

    /// Whether any seasonal profile is in use yet.
    pub fn warm(&self) -> bool {
        (self.seasonality.daily && self.daily_learned)
            || (self.seasonality.weekly && self.weekly_learned.iter().any(|w| *w))
    }

    /// Seconds of history seen so far.
    pub fn history_seconds(&self) -> i64 {
        match (self.first_at, self.last_at) {
            (Some(a), Some(b)) => b.as_second() - a.as_second(),
            _ => 0,
        }
    }

    /// Feed one raw observation. Samples at or before the last one are ignored (a replay that
    /// overlaps what was already learned does not count twice).
    pub fn observe(&mut self, t: Timestamp, v: f64) {
        if !v.is_finite() || v < 0.0 || self.last_at.is_some_and(|l| t <= l) {
            return;
        }
        let (day, weekday, bucket) = self.locate(t);
        if self.day.is_some_and(|(d, _)| d != day) {
            self.close_day();
        }
        if self.day.is_none_or(|(d, _)| d != day) {
            self.day = Some((day, weekday));
        }
        self.day_sum[bucket] += v;
        self.day_count[bucket] += 1;

        self.first_at.get_or_insert(t);
        self.last_at = Some(t);
    }

    /// Learn the day just finished.
    fn close_day(&mut self) {
        let Some((_, weekday)) = self.day else { return };
        let per_day = self.per_day();
        let covered = self.day_count.iter().filter(|c| **c > 0).count();
        let means: Vec<Option<f64>> = self
            .day_sum
            .iter()
            .zip(&self.day_count)
            .map(|(s, c)| (*c > 0).then(|| s / f64::from(*c)))
            .collect();
        self.day_sum.iter_mut().for_each(|s| *s = 0.0);
        self.day_count.iter_mut().for_each(|c| *c = 0);
        if (covered as f64) < MIN_COVERAGE * per_day as f64 {
            return;
        }
        let day_mean = means.iter().flatten().sum::<f64>() / covered as f64;
        if day_mean <= 0.0 {
            // A day without load (an outage) says nothing about the shape of demand.
            return;
        }
        for (b, m) in means.iter().enumerate() {
            let Some(m) = m else { continue };
            let x = (m / day_mean).max(MIN_FACTOR);
            self.daily[b] = blend(self.daily[b], x, DAILY_GAIN, self.daily_learned);
        }
        let week_mean = *self.week_mean.get_or_insert(day_mean);
        let base = weekday * per_day;
        let first = !self.weekly_learned[weekday];
        for (b, m) in means.iter().enumerate() {
            let Some(m) = m else { continue };
            // What the daily profile does not explain: the weekday's level and shape.
            let x = (m / week_mean / self.daily[b]).max(MIN_FACTOR);
            self.weekly[base + b] = blend(self.weekly[base + b], x, WEEKLY_GAIN, !first);
        }
        self.daily_learned = true;
        self.weekly_learned[weekday] = true;
        self.week_mean = Some(week_mean + (day_mean - week_mean) / WEEK_MEAN_DAYS);
    }

    /// Bucket starts in (from, to): where a factor may change. All of them, however long the
    /// horizon: a peak past a cut-off would be silently forecast away.
    pub fn bucket_starts(&self, from: Timestamp, to: Timestamp) -> impl Iterator<Item = Timestamp> {
        let step = jiff::SignedDuration::from_secs(self.resolution);
        let resolution = self.resolution;
        std::iter::successors(next_bucket_start(from, resolution, step), move |t| {
            next_bucket_start(*t, resolution, step)
        })
        .take_while(move |t| *t < to)
    }
}

fn next_bucket_start(
    t: Timestamp,
    resolution: i64,
    step: jiff::SignedDuration,
) -> Option<Timestamp> {
    let s = t.as_second();
    let aligned = s - s.rem_euclid(resolution);
    Timestamp::from_second(aligned).ok()?.checked_add(step).ok()
}

/// Move `old` towards `x` by `gain`, by at most a factor of two; take `x` when nothing was known.
fn blend(old: f64, x: f64, gain: f64, known: bool) -> f64 {
    if !known {
        return x;
    }
    let x = x.clamp(old * 0.5, old * 2.0);
    old + gain * (x - old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    /// 100 req/s at night, 300 by day (08:00-20:00 UTC), weekends half of that.
    fn load(s: i64) -> f64 {
        let tod = s.rem_euclid(86_400);
        let day = if (8 * 3600..20 * 3600).contains(&tod) {
            300.0
        } else {
            100.0
        };
        // 1970-01-01 was a Thursday: days 2 and 3 of each week are Saturday and Sunday.
        let weekday = (s.div_euclid(86_400) + 3).rem_euclid(7);
        if weekday >= 5 { day / 2.0 } else { day }
    }

    fn model() -> SeasonalModel {
        SeasonalModel::new(
            Seasonality {
                daily: true,
                weekly: true,
            },
            300,
            TimeZone::UTC,
        )
    }

    #[test]
    fn cold_until_one_whole_day_then_knows_the_morning_step() {
        let mut m = model();
        // Start at 06:00 on a Monday (day 4 since the epoch).
        let start = 4 * 86_400 + 6 * 3600;
        let mut t = start;
        while t < start + 20 * 3600 {
            m.observe(ts(t), load(t));
            t += 15;
        }
        assert!(!m.warm(), "a partial day must not count as a season");
        while t < start + 2 * 86_400 + 3600 {
            m.observe(ts(t), load(t));
            t += 15;
        }
        assert!(m.warm());
        // Wednesday: 08:00 is expected at three times 07:55.
        let wed = 6 * 86_400;
        let ratio = m.factor(ts(wed + 8 * 3600)) / m.factor(ts(wed + 7 * 3600 + 55 * 60));
        assert!((ratio - 3.0).abs() < 0.2, "ratio {ratio}");
        // The horizon's bucket starts are where a factor can change.
        let starts: Vec<i64> = m
            .bucket_starts(ts(wed + 7 * 3600 + 56 * 60), ts(wed + 8 * 3600 + 6 * 60))
            .map(|t| t.as_second() - wed)
            .collect();
        assert_eq!(starts, vec![8 * 3600, 8 * 3600 + 300]);
    }

    #[test]
    fn bucket_starts_cover_any_horizon() {
        // 100 buckets ahead from a bucket start: 99 starts strictly inside, none dropped.
        assert_eq!(model().bucket_starts(ts(0), ts(100 * 300)).count(), 99);
    }

    #[test]
    fn estimate_sees_a_peak_past_64_buckets() {
        let mut tr = crate::forecast::Tracker::new(
            Some(model()),
            jiff::SignedDuration::from_hours(24),
            crate::forecast::tracker::Signature {
                metric: "m".into(),
                seasonality: Some(Seasonality {
                    daily: true,
                    weekly: true,
                }),
                resolution: 300,
                zone_name: "UTC".into(),
                history: jiff::SignedDuration::from_hours(24),
            },
        );
        // Monday 00:00 to Wednesday 00:00, weekdays only: the 08:00 step is learned.
        let start = 4 * 86_400;
        let mut t = start;
        while t < start + 2 * 86_400 {
            tr.observe(ts(t), load(t));
            t += 60;
        }
        assert!(tr.warm());
        // From Wednesday 00:00 to 21:00 (252 buckets): both ends are night, the day (buckets
        // 96 to 240) lies only between them.
        let e = tr.estimates(ts(t), jiff::SignedDuration::from_hours(21));
        assert!(e[0] > 200.0, "night-only estimate {}", e[0]);
    }

    #[test]
    fn weekly_profile_expects_the_weekend() {
        let mut m = model();
        let start = 4 * 86_400; // Monday 00:00
        let mut t = start;
        // Three weeks.
        while t < start + 21 * 86_400 {
            m.observe(ts(t), load(t));
            t += 60;
        }
        // Saturday noon is expected at about half of Friday noon.
        let fri = m.factor(ts(start + 18 * 86_400 + 12 * 3600));
        let sat = m.factor(ts(start + 19 * 86_400 + 12 * 3600));
        assert!(
            (sat / fri - 0.5).abs() < 0.08,
            "saturday/friday {}",
            sat / fri
        );
    }

    #[test]
    fn a_holiday_moves_the_profile_only_part_of_the_way() {
        let mut m = model();
        let start = 4 * 86_400;
        let mut t = start;
        let stop = start + 14 * 86_400;
        while t < stop {
            // Day 10 (a Thursday) has no daytime peak at all.
            let v = if (t - start) / 86_400 == 10 {
                100.0
            } else {
                load(t)
            };
            m.observe(ts(t), v);
            t += 60;
        }
        // The next Thursday noon is still expected well above night load.
        let f = m.factor(ts(start + 17 * 86_400 + 12 * 3600))
            / m.factor(ts(start + 17 * 86_400 + 2 * 3600));
        assert!(f > 1.8, "day/night ratio after a holiday {f}");
    }

    #[test]
    fn ignores_bad_and_out_of_order_samples() {
        let mut m = model();
        m.observe(ts(1000), 10.0);
        m.observe(ts(900), 1e9);
        m.observe(ts(1015), f64::NAN);
        m.observe(ts(1030), -5.0);
        assert_eq!(m.history_seconds(), 0);
        assert!(!m.warm());
    }
}
