//! Rate policies (Kubernetes `calculateScaleUpLimitWithScalingRules` and its scale-down twin).

use std::collections::VecDeque;

use jiff::Timestamp;

use super::{DirectionRules, RateKind, Select};
use crate::state::ScaleEvent;

/// The replica count at the start of a policy's period: current minus the changes made in
/// (now − period, now].
fn period_start(
    current: u32,
    events: &VecDeque<ScaleEvent>,
    now: Timestamp,
    policy_period: jiff::SignedDuration,
) -> i64 {
    let cutoff = crate::time::before(now, policy_period);
    // i128: changes come from persisted state (user input for `decide`), so no overflow.
    let changed: i128 = events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.change as i128)
        .sum();
    (current as i128 - changed).clamp(i64::MIN as i128 / 4, i64::MAX as i128 / 4) as i64
}

/// Largest count scale-up may reach now (never below `current`).
pub fn rate_limit_up(
    rules: &DirectionRules,
    current: u32,
    events: &VecDeque<ScaleEvent>,
    now: Timestamp,
) -> u32 {
    let mut result: Option<i64> = None;
    match rules.select {
        Select::Disabled => return current,
        Select::Max | Select::Min => {}
    }
    for p in &rules.policies {
        let start = period_start(current, events, now, p.period);
        let proposed = match p.kind {
            RateKind::Pods => start + p.value as i64,
            // Rounded up so that a small group can always grow; from zero a percentage alone
            // would never move, so it allows at least one.
            RateKind::Percent => {
                let grown = (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i64;
                if p.value > 0 {
                    grown.max(start + 1)
                } else {
                    grown
                }
            }
        };
        result = Some(match (result, rules.select) {
            (None, _) => proposed,
            (Some(r), Select::Min) => r.min(proposed),
            (Some(r), _) => r.max(proposed),
        });
    }
    // No policies: unlimited.
    let limit = result.unwrap_or(i64::from(u32::MAX));
    limit.clamp(current as i64, u32::MAX as i64) as u32
}

/// Smallest count scale-down may reach now (never above `current`).
pub fn rate_limit_down(
    rules: &DirectionRules,
    current: u32,
    events: &VecDeque<ScaleEvent>,
    now: Timestamp,
) -> u32 {
    let mut result: Option<i64> = None;
    if rules.select == Select::Disabled {
        return current;
    }
    for p in &rules.policies {
        let start = period_start(current, events, now, p.period);
        let proposed = match p.kind {
            RateKind::Pods => start - p.value as i64,
            // Truncated like Kubernetes' int32 conversion: removes no more than the percentage.
            RateKind::Percent => (start as f64 * (1.0 - p.value as f64 / 100.0)) as i64,
        };
        result = Some(match (result, rules.select) {
            (None, _) => proposed,
            (Some(r), Select::Min) => r.max(proposed),
            (Some(r), _) => r.min(proposed),
        });
    }
    let limit = result.unwrap_or(0);
    limit.clamp(0, current as i64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behavior::{DirectionRules, RatePolicy};
    use jiff::SignedDuration;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn default_up_allows_max_of_4_pods_and_double() {
        let r = DirectionRules::default_up();
        let none = VecDeque::new();
        assert_eq!(rate_limit_up(&r, 1, &none, t(0)), 5);
        assert_eq!(rate_limit_up(&r, 10, &none, t(0)), 20);
    }

    #[test]
    fn changes_inside_the_period_count_from_the_period_start() {
        let r = DirectionRules::default_up();
        let ev: VecDeque<_> = [ScaleEvent {
            at: t(10),
            change: 6,
        }]
        .into();
        // current 16 = 10 + 6 added at t=10; at t=20 the period (5, 20] holds that event.
        assert_eq!(rate_limit_up(&r, 16, &ev, t(20)), 20);
        // At t=25 the event is exactly 15 s old: out of the period.
        assert_eq!(rate_limit_up(&r, 16, &ev, t(25)), 32);
    }

    #[test]
    fn select_min_and_disabled() {
        let mut r = DirectionRules::default_up();
        r.select = Select::Min;
        assert_eq!(rate_limit_up(&r, 10, &VecDeque::new(), t(0)), 14);
        r.select = Select::Disabled;
        assert_eq!(rate_limit_up(&r, 10, &VecDeque::new(), t(0)), 10);
    }

    #[test]
    fn scale_down_percent_truncates() {
        let mut r = DirectionRules::default_down();
        r.policies = vec![RatePolicy {
            kind: RateKind::Percent,
            value: 10,
            period: SignedDuration::from_secs(60),
        }];
        assert_eq!(rate_limit_down(&r, 15, &VecDeque::new(), t(0)), 13);
        r.policies.push(RatePolicy {
            kind: RateKind::Pods,
            value: 5,
            period: SignedDuration::from_secs(60),
        });
        assert_eq!(rate_limit_down(&r, 15, &VecDeque::new(), t(0)), 10);
        r.select = Select::Min;
        assert_eq!(rate_limit_down(&r, 15, &VecDeque::new(), t(0)), 13);
    }

    #[test]
    fn percent_up_from_zero_allows_one() {
        let mut r = DirectionRules::default_up();
        r.policies.retain(|p| p.kind == RateKind::Percent);
        assert_eq!(rate_limit_up(&r, 0, &VecDeque::new(), t(0)), 1);
    }
}
