//! Trace simulation: replay a real load trace through any policy under a simple capacity
//! model and report cost and unserved load against a clairvoyant oracle.
//!
//! User policies run through the same [`crate::decide`] as the live engine; only the clock,
//! the metric source (the trace) and the target (a capacity model with startup delay) differ.

mod model;
mod policy;
mod report;
mod trace;

pub use model::{SimParams, simulate, tick_count};
pub use policy::{Controller, SimPolicy};
pub use report::{PolicyResult, Series};
pub use trace::{Trace, TraceError};
