//! scalepilot's decision core.
//!
//! Everything here is pure: no IO, no clock, no randomness. The live engine and the trace
//! simulator call the same [`decide::decide`] with a validated [`config::Group`], an
//! [`observation::Observation`], the group's [`state::GroupState`] and `now`.
//!
//! - [`config`]: raw YAML structs, validation with file:line:column errors, the validated model.
//! - [`strategy`]: one file per way of turning observations into a recommendation.
//! - [`behavior`]: the rules between recommendation and action (stabilization, rate policies…).
//! - [`sim`]: trace replay, the capacity model, built-in reference policies and the report.

pub mod behavior;
pub mod bench;
pub mod config;
pub mod cost;
pub mod decide;
pub mod decision;
pub mod duration;
pub mod forecast;
pub mod hours;
pub mod observation;
pub mod sim;
pub mod state;
pub mod strategy;
pub mod time;

pub use decide::decide;
pub use decision::Decision;
pub use observation::Observation;
pub use state::GroupState;
