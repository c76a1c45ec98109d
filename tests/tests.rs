//! Integration tests: one binary (so it links once), one module per area.
//!
//! They run the real `scalepilot` binary from the repository root; the engine tests start
//! the real daemon and real backend processes on loopback and stop them by PID.

mod api;
mod cli;
mod deploy;
mod docs;
mod engine;
mod stack;

/// A new, empty database on the PostgreSQL server `scripts/test.sh` started (fails, never
/// skips, without one).
fn fresh_pg_database() -> String {
    let base = scalepilot_testkit::shared_pg_url();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(scalepilot_testkit::fresh_database(&base))
}
