//! The one HTTP client of the process (sources, alerts, HAProxy's data plane).

use std::time::Duration;

use anyhow::Result;

pub fn client() -> Result<reqwest::Client> {
    // One TLS provider for the whole process (ring: no C toolchain beyond cc needed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?)
}
