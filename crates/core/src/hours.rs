//! Business-hours specs such as "Mon-Fri 09:00-17:00", evaluated in an IANA time zone.
//!
//! Membership is decided on the local wall clock of the zone, so a window means the same
//! local hours on both sides of a DST change (a 09:00-17:00 window is 8 real hours on most
//! days and still 09:00-17:00 local on the day clocks move).

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Days (Monday first) and a local time range in minutes since midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoursSpec {
    days: [bool; 7],
    start: u16,
    end: u16,
    text: String,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(s: &str) -> Result<usize, String> {
    let lower = s.trim().to_ascii_lowercase();
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    DAY_NAMES
        .iter()
        .position(|d| *d == lower)
        .or_else(|| full.iter().position(|d| *d == lower))
        .ok_or_else(|| format!("unknown day `{s}` (expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)"))
}

fn minutes(s: &str) -> Result<u16, String> {
    let bad = || format!("bad time `{s}` (expected HH:MM, 00:00 to 24:00)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl HoursSpec {
    /// Parse "Mon-Fri 09:00-17:00", "Sat,Sun 10:00-14:00", "daily 08:00-20:00" or
    /// "Fri 22:00-02:00" (an end before the start runs into the next day).
    pub fn parse(text: &str) -> Result<HoursSpec, String> {
        let expected = "expected e.g. \"Mon-Fri 09:00-17:00\"";
        let mut parts = text.split_whitespace();
        let (Some(days_part), Some(time_part), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("`{text}` is not a business-hours spec: {expected}"));
        };
        let mut days = [false; 7];
        if matches!(days_part.to_ascii_lowercase().as_str(), "daily" | "*") {
            days = [true; 7];
        } else {
            for item in days_part.split(',') {
                match item.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day_index(a)?, day_index(b)?);
                        // Ranges may wrap around the week ("Fri-Mon").
                        let mut d = a;
                        loop {
                            days[d] = true;
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => days[day_index(item)?] = true,
                }
            }
        }
        let (s, e) = time_part
            .split_once('-')
            .ok_or_else(|| format!("`{time_part}` is not a time range: {expected}"))?;
        let (start, end) = (minutes(s)?, minutes(e)?);
        if start == end {
            return Err(format!("`{time_part}` is an empty time range"));
        }
        if start == 24 * 60 {
            return Err(format!("`{time_part}` starts at 24:00"));
        }
        Ok(HoursSpec {
            days,
            start,
            end,
            text: text.to_string(),
        })
    }

    /// Whether `now` falls inside the spec on the wall clock of `tz`.
    pub fn contains(&self, now: Timestamp, tz: &TimeZone) -> bool {
        let dt = tz.to_datetime(now);
        let day = dt.weekday().to_monday_zero_offset() as usize;
        let minute = dt.hour() as u16 * 60 + dt.minute() as u16;
        if self.start < self.end {
            self.days[day] && minute >= self.start && minute < self.end
        } else {
            // Overnight: the listed day owns the evening, the next day the early hours.
            let yesterday = (day + 6) % 7;
            (self.days[day] && minute >= self.start) || (self.days[yesterday] && minute < self.end)
        }
    }
}

impl fmt::Display for HoursSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A zone and the specs of a business-hours gate.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    pub timezone: TimeZone,
    pub zone_name: String,
    pub specs: Vec<HoursSpec>,
}

impl BusinessHours {
    pub fn contains(&self, now: Timestamp) -> bool {
        self.specs.iter().any(|s| s.contains(now, &self.timezone))
    }
}

/// Look up an IANA zone by name, with a helpful error.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("unknown time zone `{name}` (expected an IANA name such as \"Asia/Dhaka\" or \"America/New_York\")")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn weekday_hours_in_dhaka() {
        let tz = zone("Asia/Dhaka").unwrap(); // UTC+6, no DST
        let spec = HoursSpec::parse("Mon-Fri 09:00-17:00").unwrap();
        // Monday 2026-11-23 03:00 UTC = 09:00 Dhaka.
        assert!(spec.contains(at("2026-11-23T03:00:00Z"), &tz));
        assert!(!spec.contains(at("2026-11-23T02:59:59Z"), &tz));
        assert!(!spec.contains(at("2026-11-23T11:00:00Z"), &tz)); // 17:00 local: closed
        // Saturday.
        assert!(!spec.contains(at("2026-11-28T05:00:00Z"), &tz));
    }

    #[test]
    fn new_york_across_spring_forward() {
        let tz = zone("America/New_York").unwrap();
        let spec = HoursSpec::parse("Mon-Fri 09:00-17:00").unwrap();
        // Fri 2026-03-06 09:00 EST = 14:00 UTC; Mon 2026-03-09 09:00 EDT = 13:00 UTC.
        assert!(spec.contains(at("2026-03-06T14:00:00Z"), &tz));
        assert!(!spec.contains(at("2026-03-06T13:59:00Z"), &tz));
        assert!(spec.contains(at("2026-03-09T13:00:00Z"), &tz));
        assert!(!spec.contains(at("2026-03-09T12:59:00Z"), &tz));
    }

    #[test]
    fn melbourne_across_dst_end() {
        // Melbourne leaves DST on Sun 2026-04-05 (UTC+11 → UTC+10).
        let tz = zone("Australia/Melbourne").unwrap();
        let spec = HoursSpec::parse("daily 08:00-10:00").unwrap();
        assert!(spec.contains(at("2026-04-03T21:00:00Z"), &tz)); // Sat 08:00 AEDT
        assert!(spec.contains(at("2026-04-05T22:00:00Z"), &tz)); // Mon 08:00 AEST
        assert!(!spec.contains(at("2026-04-05T21:30:00Z"), &tz)); // Mon 07:30 AEST
    }

    #[test]
    fn overnight_and_wrapping_ranges() {
        let tz = TimeZone::UTC;
        let spec = HoursSpec::parse("Fri 22:00-02:00").unwrap();
        assert!(spec.contains(at("2026-11-27T23:00:00Z"), &tz)); // Fri 23:00
        assert!(spec.contains(at("2026-11-28T01:59:00Z"), &tz)); // Sat 01:59
        assert!(!spec.contains(at("2026-11-28T02:00:00Z"), &tz));
        assert!(!spec.contains(at("2026-11-27T01:00:00Z"), &tz)); // Fri 01:00: Thu not listed
        let weekend = HoursSpec::parse("Sat-Sun 00:00-24:00").unwrap();
        assert!(weekend.contains(at("2026-11-29T23:59:00Z"), &tz));
        assert!(!weekend.contains(at("2026-11-30T00:00:00Z"), &tz));
    }

    #[test]
    fn bad_specs_say_why() {
        assert!(
            HoursSpec::parse("Mon-Fry 09:00-17:00")
                .unwrap_err()
                .contains("unknown day `Fry`")
        );
        assert!(
            HoursSpec::parse("Mon-Fri 9-17")
                .unwrap_err()
                .contains("bad time")
        );
        assert!(
            HoursSpec::parse("Mon-Fri")
                .unwrap_err()
                .contains("expected e.g.")
        );
        assert!(
            HoursSpec::parse("Mon 10:00-10:00")
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            zone("Mars/Olympus")
                .unwrap_err()
                .contains("unknown time zone")
        );
    }

    /// Wall-clock (weekday Monday=0, minute of day) from the zone's UTC offset by plain
    /// arithmetic, independent of the civil-time conversion under test.
    fn manual_local(ts: Timestamp, tz: &TimeZone) -> (usize, i64) {
        let local = ts.as_second() + tz.to_offset(ts).seconds() as i64;
        let days = local.div_euclid(86_400);
        // 1970-01-01 was a Thursday (Monday = 0 → 3).
        let weekday = (days + 3).rem_euclid(7) as usize;
        (weekday, local.rem_euclid(86_400) / 60)
    }

    /// `secs`, or (with `near`) a time within ±36 h of the zone's next DST change after it,
    /// so that the hours around the changes are well covered.
    fn instant(secs: i64, tz: &TimeZone, near: Option<i64>) -> Timestamp {
        let ts = Timestamp::from_second(secs).unwrap();
        match (near, tz.following(ts).next()) {
            (Some(d), Some(tr)) => tr.timestamp() + jiff::SignedDuration::from_secs(d),
            _ => ts,
        }
    }

    const ZONES: [&str; 5] = [
        "America/New_York",
        "Europe/Berlin",
        "Australia/Melbourne",
        "Asia/Dhaka",
        "America/Santiago",
    ];

    proptest::proptest! {
        /// Business hours agree with offset arithmetic at any instant of 2025-2027 in zones
        /// with northern, southern and no DST, including the hours around each change.
        #[test]
        fn business_hours_match_offset_arithmetic(secs in 1_735_689_600i64..1_830_297_600, z in 0usize..5, near in proptest::option::of(-129_600i64..129_600)) {
            let tz = zone(ZONES[z]).unwrap();
            let ts = instant(secs, &tz, near);
            let (wd, minute) = manual_local(ts, &tz);
            let day = HoursSpec::parse("Mon-Fri 09:00-17:00").unwrap();
            proptest::prop_assert_eq!(day.contains(ts, &tz), wd < 5 && (540..1020).contains(&minute));
            let night = HoursSpec::parse("Sat 22:00-06:00").unwrap();
            let expect = (wd == 5 && minute >= 1320) || (wd == 6 && minute < 360);
            proptest::prop_assert_eq!(night.contains(ts, &tz), expect);
        }

        /// A cron window "0 9 * * MON-FRI" lasting 1h is active exactly in the local 09:00
        /// hour on weekdays, on both sides of DST changes.
        #[test]
        fn cron_window_matches_offset_arithmetic(secs in 1_735_689_600i64..1_830_297_600, z in 0usize..5, near in proptest::option::of(-129_600i64..129_600)) {
            use crate::strategy::{Schedule, ScheduleWindow, When};
            let tz = zone(ZONES[z]).unwrap();
            let cron = croner::parser::CronParser::new().parse("0 9 * * MON-FRI").unwrap();
            let s = Schedule {
                zone_name: ZONES[z].into(),
                timezone: tz.clone(),
                windows: vec![ScheduleWindow {
                    label: "w".into(),
                    when: When::Cron { cron: Box::new(cron), duration: jiff::SignedDuration::from_hours(1) },
                    min: Some(3),
                    max: None,
                }],
            };
            let ts = instant(secs, &tz, near);
            let (wd, minute) = manual_local(ts, &tz);
            let active = s.evaluate(ts).1 == Some(3);
            proptest::prop_assert_eq!(active, wd < 5 && (540..600).contains(&minute));
        }
    }
}
