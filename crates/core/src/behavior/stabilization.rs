//! Stabilization windows (Kubernetes `stabilizeRecommendationWithBehaviors`).

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};

use crate::state::Recommendation;

/// Bring `recommended` within the window limits and remember it.
///
/// Scale-up acts on the smallest recommendation of its window, scale-down on the largest of
/// its window, both including the current one. A remembered recommendation counts while it is
/// strictly newer than `now − window` (Kubernetes compares with `After(cutoff)`): one exactly
/// a window old no longer counts. Returns the stabilized count.
pub fn stabilize(
    history: &mut VecDeque<Recommendation>,
    recommended: u32,
    current: u32,
    now: Timestamp,
    up_window: SignedDuration,
    down_window: SignedDuration,
) -> u32 {
    let up_cutoff = crate::time::before(now, up_window);
    let down_cutoff = crate::time::before(now, down_window);
    let mut up = recommended;
    let mut down = recommended;
    for r in history.iter() {
        if r.at > up_cutoff {
            up = up.min(r.replicas);
        }
        if r.at > down_cutoff {
            down = down.max(r.replicas);
        }
    }
    history.push_back(Recommendation {
        at: now,
        replicas: recommended,
    });
    current.max(up).min(down)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn scale_down_uses_max_of_window_excluding_exact_cutoff() {
        let mut h = VecDeque::new();
        let w = SignedDuration::from_secs(300);
        assert_eq!(stabilize(&mut h, 10, 10, t(0), SignedDuration::ZERO, w), 10);
        assert_eq!(
            stabilize(&mut h, 4, 10, t(150), SignedDuration::ZERO, w),
            10
        );
        // At t=299 the 10 from t=0 still counts; at t=300 it is exactly 300 s old and does not.
        assert_eq!(
            stabilize(&mut h, 3, 10, t(299), SignedDuration::ZERO, w),
            10
        );
        assert_eq!(stabilize(&mut h, 3, 10, t(300), SignedDuration::ZERO, w), 4);
    }

    #[test]
    fn scale_up_without_window_is_immediate() {
        let mut h = VecDeque::new();
        let w = SignedDuration::from_secs(300);
        assert_eq!(stabilize(&mut h, 2, 2, t(0), SignedDuration::ZERO, w), 2);
        assert_eq!(stabilize(&mut h, 9, 2, t(15), SignedDuration::ZERO, w), 9);
    }

    #[test]
    fn scale_up_window_uses_min() {
        let mut h = VecDeque::new();
        let up = SignedDuration::from_secs(60);
        assert_eq!(stabilize(&mut h, 5, 2, t(0), up, SignedDuration::ZERO), 5);
        assert_eq!(stabilize(&mut h, 9, 5, t(30), up, SignedDuration::ZERO), 5);
        assert_eq!(stabilize(&mut h, 9, 5, t(61), up, SignedDuration::ZERO), 9);
    }
}
