//! The allowed range of every duration and number a config (or a CLI flag that feeds the same
//! model) may set, in one place. Values outside them validated before and then overflowed
//! timestamps, spun the evaluation loop or misbehaved at runtime.

use jiff::SignedDuration;

const fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

const fn days(d: i64) -> SignedDuration {
    SignedDuration::from_hours(d * 24)
}

/// An inclusive range of durations. `min` zero with `min_exclusive` means "longer than 0s".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub min: SignedDuration,
    pub max: SignedDuration,
    /// The minimum itself is not allowed (used with a zero minimum: "more than 0s").
    pub min_exclusive: bool,
}

impl DurationRange {
    const fn new(min: SignedDuration, max: SignedDuration) -> DurationRange {
        DurationRange {
            min,
            max,
            min_exclusive: false,
        }
    }

    const fn positive(max: SignedDuration) -> DurationRange {
        DurationRange {
            min: SignedDuration::ZERO,
            max,
            min_exclusive: true,
        }
    }

    pub fn contains(&self, d: SignedDuration) -> bool {
        let above = if self.min_exclusive {
            d > self.min
        } else {
            d >= self.min
        };
        above && d <= self.max
    }

    /// "1s to 1h", "more than 0s, at most 10m".
    pub fn describe(&self) -> String {
        if self.min_exclusive {
            format!("more than {}, at most {}", human(self.min), human(self.max))
        } else {
            format!("{} to {}", human(self.min), human(self.max))
        }
    }
}

/// A duration as it would be written in a config: "400d", "24h", "30m", "500ms".
pub fn human(d: SignedDuration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() == 0 && s != 0 && s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else {
        format!("{d:#}")
    }
}

/// A number as messages show it: `1e300`, `1e12`, `0.35`, `-5`.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && a.is_finite() && !(1e-4..1e6).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `store.sample_retention`: a prune computes now − retention; far beyond this it overflowed.
pub const SAMPLE_RETENTION: DurationRange = DurationRange::positive(days(400));
/// `groups[].evaluation_interval`: below 1 s the loop ran hundreds of evaluations a second.
pub const EVALUATION_INTERVAL: DurationRange =
    DurationRange::new(SignedDuration::from_secs(1), hours(1));
/// `engine.lease_ttl`: below 1 s renewals would load the database; above 5 min a killed
/// daemon's groups wait too long.
pub const LEASE_TTL: DurationRange =
    DurationRange::new(SignedDuration::from_secs(1), SignedDuration::from_mins(5));
/// `behavior.cooldown`, `behavior.scale_up.cooldown`, `behavior.scale_down.cooldown`.
pub const COOLDOWN: DurationRange = DurationRange::new(SignedDuration::ZERO, hours(24));
/// `behavior.scale_*.stabilization` (Kubernetes' limit, 3600 s).
pub const STABILIZATION: DurationRange = DurationRange::new(SignedDuration::ZERO, hours(1));
/// `behavior.scale_*.policies[].period` (Kubernetes' limit, 1800 s).
pub const RATE_POLICY_PERIOD: DurationRange =
    DurationRange::positive(SignedDuration::from_mins(30));
/// `alerts.timeout` and the `prometheus` / `http_json` source `timeout`: one HTTP request.
pub const HTTP_TIMEOUT: DurationRange = DurationRange::positive(SignedDuration::from_mins(10));
/// The `command` target's `timeout`: one run of the command.
pub const COMMAND_TIMEOUT: DurationRange = DurationRange::positive(hours(1));
/// A process pool's `drain`: out of rotation → SIGTERM.
pub const DRAIN: DurationRange = DurationRange::new(SignedDuration::ZERO, hours(1));
/// HAProxy's `drain_timeout`: the longest wait for a draining server's sessions.
pub const DRAIN_TIMEOUT: DurationRange = DurationRange::positive(hours(1));
/// A process pool's `health_interval`.
pub const HEALTH_INTERVAL: DurationRange =
    DurationRange::new(SignedDuration::from_millis(100), hours(1));
/// A schedule window's `duration` (a cron window).
pub const WINDOW_DURATION: DurationRange = DurationRange::positive(days(7));
/// Predictive / cost `startup`: asking for a replica → it serving.
/// A threshold metric's aggregation `window` (its samples are kept in the group's state).
pub const THRESHOLD_WINDOW: DurationRange = DurationRange::new(SignedDuration::ZERO, hours(1));
/// Largest threshold `weight`.
pub const MAX_WEIGHT: f64 = 1e6;
pub const STARTUP: DurationRange = DurationRange::new(SignedDuration::ZERO, hours(24));
/// Predictive / cost `history`: age at which a scored estimate weighs 1/e.
pub const HISTORY: DurationRange = DurationRange::positive(days(90));

/// Longest group name, in characters (a DNS label's limit): it names files (`GROUP.endpoints`),
/// store keys and metric label values.
pub const MAX_GROUP_NAME: usize = 63;

/// Replica counts: group `min`/`max`, window `min`/`max`/`replicas`, `fallback.replicas`,
/// `max_step`, rate-policy pods, host `max`, `budget.min_replicas`.
pub const MAX_REPLICAS: u32 = 100_000;
/// A scale-up rate policy's percent (a scale-down one: at most 100).
pub const MAX_RATE_PERCENT: u32 = 10_000;
/// Metric targets (`target`, `target_per_replica`), `capacity_per_replica`, `static` values:
/// finite, and at most this (targets and capacities also more than 0).
pub const MAX_METRIC_VALUE: f64 = 1e12;
/// Price of one replica-hour, at most (0 allowed).
pub const MAX_PRICE: f64 = 1e6;
/// A budget (`per_hour`, `per_month`), at most (0 allowed).
pub const MAX_BUDGET: f64 = 1e12;
/// `alerts.attempts`.
pub const ALERT_ATTEMPTS: (u32, u32) = (1, 20);
/// `alerts.consecutive_errors`, `behavior.fallback.after`, pool `unhealthy_after`.
pub const MAX_CONSECUTIVE: u32 = 10_000;
/// `store.pool` (PostgreSQL): connections in the pool.
pub const STORE_POOL: (u32, u32) = (1, 256);
/// `engine.max_concurrency`.
pub const MAX_CONCURRENCY: (u32, u32) = (1, 10_000);
/// Multipliers: trace `scale`, warm-start `scale`, trace `speedup` (more than 0, at most this).
pub const MAX_FACTOR: f64 = 1e6;
/// `baseline_unserved_factor`, at most (0 allowed).
pub const MAX_UNSERVED_FACTOR: f64 = 1_000.0;
/// A trace source's `from` (trace second), at most: 100 years.
pub const MAX_TRACE_SECOND: u64 = 3_153_600_000;
/// A warm start's `step` in seconds.
pub const WARM_START_STEP: (u32, u32) = (1, 86_400);

/// Check a capacity per replica (config `capacity_per_replica`, `simulate --capacity`):
/// finite, more than 0 and at most [`MAX_METRIC_VALUE`]. Also refuses values so small that
/// a replica count derived from them overflows (below 1e-6).
pub fn capacity_per_replica(c: f64) -> Result<f64, String> {
    if c.is_finite() && (MIN_CAPACITY..=MAX_METRIC_VALUE).contains(&c) {
        Ok(c)
    } else {
        Err(format!(
            "capacity_per_replica {} is out of range: expected {} to {}",
            num(c),
            num(MIN_CAPACITY),
            num(MAX_METRIC_VALUE)
        ))
    }
}

/// The least capacity per replica: at 1e-6, a load of 1e12 needs 1e18 replicas, still a
/// finite count; below it the sizing math turns into nonsense.
pub const MIN_CAPACITY: f64 = 1e-6;

/// A metric target (`target`, `target_per_replica`): finite, more than 0, at most
/// [`MAX_METRIC_VALUE`].
pub fn metric_target(v: f64) -> bool {
    v.is_finite() && v > 0.0 && v <= MAX_METRIC_VALUE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_describe_themselves_as_written_in_configs() {
        assert_eq!(SAMPLE_RETENTION.describe(), "more than 0s, at most 400d");
        assert_eq!(EVALUATION_INTERVAL.describe(), "1s to 1h");
        assert_eq!(HEALTH_INTERVAL.describe(), "100ms to 1h");
        assert_eq!(COOLDOWN.describe(), "0s to 1d");
        assert!(EVALUATION_INTERVAL.contains(SignedDuration::from_secs(1)));
        assert!(!EVALUATION_INTERVAL.contains(SignedDuration::from_millis(1)));
        assert!(!SAMPLE_RETENTION.contains(SignedDuration::ZERO));
    }

    #[test]
    fn capacity_range() {
        assert_eq!(capacity_per_replica(50.0), Ok(50.0));
        assert!(capacity_per_replica(1e-300).is_err());
        assert!(capacity_per_replica(f64::NAN).is_err());
        assert!(capacity_per_replica(f64::INFINITY).is_err());
        assert!(capacity_per_replica(0.0).is_err());
        assert_eq!(
            capacity_per_replica(1e-300),
            Err("capacity_per_replica 1e-300 is out of range: expected 1e-6 to 1e12".into())
        );
        assert!(capacity_per_replica(1e13).is_err());
        assert_eq!(
            (num(0.35), num(-5.0), num(1e300)),
            ("0.35".into(), "-5".into(), "1e300".into())
        );
    }
}
