//! Integration tests: one binary (so it links once), one module per area.
//!
//! They run the real `scalepilot` binary from the repository root; the engine tests start
//! the real daemon and real backend processes on loopback and stop them by PID.

mod cli;
mod docs;
mod engine;
mod stack;
