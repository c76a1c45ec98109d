//! The REST API served by the daemon.

// Until the server (src/api, branch api-core) and `scalepilot token` use them.
#![allow(dead_code)]

pub(crate) mod listen;
pub(crate) mod secret;
