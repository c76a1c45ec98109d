//! Saturating time arithmetic: `now` comes from input (a `decide` request, a trace's start),
//! and jiff's operators panic at the ends of its range. A deadline or cutoff past the end of
//! time saturates instead.

use jiff::{SignedDuration, Timestamp};

/// `t − d`, or the earliest timestamp.
pub fn before(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_sub(d).unwrap_or(Timestamp::MIN)
}

/// `t + d`, or the latest timestamp.
pub fn after(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}
