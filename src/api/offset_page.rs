//! Pages over the engine's groups (`limit` and `cursor` on `/groups` and `/recommendations`).
//!
//! The cursor is the offset of the next group in the engine's (config) order: the status
//! snapshot is already in that order, so a page costs no sort and no store read. A reload that
//! adds or removes groups between two pages may shift a group by a place; history pages,
//! which must never skip a row, use id cursors instead (see `history.rs`).

use super::error::{ApiError, ApiResult};
use super::extract::Params;

/// Groups per page by default and at most.
pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 1000;

/// A page's first group and size, from the query's `cursor` and `limit`.
pub(crate) struct OffsetPage {
    pub(crate) from: usize,
    pub(crate) limit: usize,
}

impl OffsetPage {
    pub(crate) fn take(params: &mut Params) -> ApiResult<OffsetPage> {
        let limit = match params.take("limit") {
            None => DEFAULT_LIMIT,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}, got {s:?}"
                    ))
                    .field("limit")
                })?,
        };
        let from = match params.take("cursor") {
            None => 0,
            Some(s) => s.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!(
                    "cursor {s:?} is not one this API gave: pass next_cursor as it came"
                ))
                .field("cursor")
            })?,
        };
        Ok(OffsetPage { from, limit })
    }

    /// The `next_cursor` after `taken` groups of `total`: None after the last.
    pub(crate) fn next_cursor(&self, taken: usize, total: usize) -> Option<String> {
        (self.from + taken < total).then(|| (self.from + taken).to_string())
    }
}
