//! Schedules: windows in an IANA time zone that set min, max or a fixed count while active.
//!
//! A schedule has no opinion on the count itself; it moves the bounds that every other
//! strategy's recommendation is clamped to. Windows are business hours ("Mon-Fri 09:00-17:00")
//! or a cron start plus a duration; both are evaluated on the zone's wall clock, so they follow
//! DST changes.

use std::sync::Arc;

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::decision::{Reason, StrategyOutcome};
use crate::hours::HoursSpec;

#[derive(Debug, Clone)]
pub struct Schedule {
    pub zone_name: Arc<str>,
    pub timezone: TimeZone,
    pub windows: Vec<ScheduleWindow>,
}

#[derive(Debug, Clone)]
pub struct ScheduleWindow {
    pub label: Arc<str>,
    pub when: When,
    pub min: Option<u32>,
    pub max: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum When {
    Hours(HoursSpec),
    Cron {
        cron: Box<Cron>,
        duration: SignedDuration,
    },
}

impl When {
    fn active(&self, now: Timestamp, tz: &TimeZone) -> bool {
        match self {
            When::Hours(spec) => spec.contains(now, tz),
            When::Cron { cron, duration } => {
                let local = now.to_zoned(tz.clone());
                match cron.find_previous_occurrence(&local, true) {
                    Ok(start) => now < crate::time::after(start.timestamp(), *duration),
                    // No earlier occurrence at all (e.g. a date before the pattern's first).
                    Err(_) => false,
                }
            }
        }
    }
}

impl Schedule {
    /// The outcome plus the bounds the active windows impose.
    pub fn evaluate(&self, now: Timestamp) -> (StrategyOutcome, Option<u32>, Option<u32>) {
        let mut active = Vec::new();
        let (mut min, mut max): (Option<u32>, Option<u32>) = (None, None);
        for w in &self.windows {
            if !w.when.active(now, &self.timezone) {
                continue;
            }
            active.push(w.label.clone());
            if let Some(m) = w.min {
                min = Some(min.map_or(m, |x| x.max(m)));
            }
            if let Some(m) = w.max {
                max = Some(max.map_or(m, |x| x.min(m)));
            }
        }
        // Overlapping windows that disagree: the larger count wins (capacity over savings).
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            max = Some(lo);
        }
        let outcome = StrategyOutcome {
            kind: "schedule",
            replicas: None,
            missing_data: false,
            reason: Reason::Schedule {
                active,
                min,
                max,
                zone: self.zone_name.clone(),
            },
        };
        (outcome, min, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use croner::parser::CronParser;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sched(zone: &str, windows: Vec<ScheduleWindow>) -> Schedule {
        Schedule {
            zone_name: zone.into(),
            timezone: TimeZone::get(zone).unwrap(),
            windows,
        }
    }

    #[test]
    fn cron_window_follows_berlin_dst() {
        let cron = CronParser::new().parse("0 9 * * MON-FRI").unwrap();
        let s = sched(
            "Europe/Berlin",
            vec![ScheduleWindow {
                label: "morning".into(),
                when: When::Cron {
                    cron: Box::new(cron),
                    duration: SignedDuration::from_hours(1),
                },
                min: Some(5),
                max: None,
            }],
        );
        // Fri 2026-03-27 09:30 CET = 08:30 UTC; Mon 2026-03-30 09:30 CEST = 07:30 UTC.
        assert_eq!(s.evaluate(at("2026-03-27T08:30:00Z")).1, Some(5));
        assert_eq!(s.evaluate(at("2026-03-30T07:30:00Z")).1, Some(5));
        assert_eq!(s.evaluate(at("2026-03-30T08:30:00Z")).1, None); // 10:30 CEST: over
        assert_eq!(s.evaluate(at("2026-03-30T06:59:00Z")).1, None); // 08:59 CEST: not yet
    }

    #[test]
    fn overlapping_windows_take_largest_min_smallest_max() {
        let s = sched(
            "UTC",
            vec![
                ScheduleWindow {
                    label: "a".into(),
                    when: When::Hours(HoursSpec::parse("daily 00:00-24:00").unwrap()),
                    min: Some(3),
                    max: Some(10),
                },
                ScheduleWindow {
                    label: "b".into(),
                    when: When::Hours(HoursSpec::parse("daily 00:00-24:00").unwrap()),
                    min: Some(6),
                    max: Some(8),
                },
            ],
        );
        let (out, min, max) = s.evaluate(at("2026-11-23T12:00:00Z"));
        assert_eq!((min, max), (Some(6), Some(8)));
        assert_eq!(out.reason.to_string(), "active (UTC): a, b; min 6, max 8");
    }
}
