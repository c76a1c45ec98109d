//! The REST API served by the daemon.

// Until the server (src/api, branch api-core) uses them.
#![allow(dead_code)]

pub(crate) mod listen;
pub(crate) mod secret;
