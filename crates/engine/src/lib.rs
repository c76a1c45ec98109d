//! scalepilot's live engine: sources observe, the core decides, targets act, the store
//! remembers. One loop per group, alerts, the global budget's ledger, signal handling.
//!
//! The binary drives it; nothing here prints to the terminal or exits the process.

mod alerts;
mod budget;
mod budget_store;
mod db_groups;
mod engine;
mod forecast;
mod group;
mod group_pause;
mod group_probe;
mod ha;
mod handle;
pub mod http;
pub mod limits;
mod machine;
pub mod metrics;
pub mod signals;
mod sources;
pub mod spool;
mod status_board;
mod targets;

pub use engine::{
    Engine, Loaded, Options, RawGroup, compact, load, load_config_only, open_store, pg_settings,
};
pub use forecast::read_warm_start;
pub use group::Event;
pub use handle::{
    Cooldowns, EngineHandle, Evaluation, GroupStatus, HaStatus, HandleError, LeaseStatus,
    ManualScale, Pause,
};
pub use scalepilot_core::config::AlertEvent;
