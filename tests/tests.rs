//! Integration tests: one binary (so it links once), one module per area.
//!
//! They run the real `scalepilot` binary from the repository root.

mod cli;
