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

/// Largest response body a source reads: a metrics answer is kilobytes, so this only stops a
/// broken or hostile endpoint from streaming until memory runs out.
pub(crate) const BODY_LIMIT: usize = 8 << 20;

/// Read a response's body, failing once it is larger than `limit` bytes.
pub(crate) async fn body(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let too_large = || {
        format!(
            "response body larger than {}",
            crate::limits::describe(limit as u64)
        )
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| crate::sources::chain(&e))? {
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    /// A body over the limit is refused, whether or not the server says its length.
    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let app = axum::Router::new()
            .route("/big", axum::routing::get(|| async { "x".repeat(4096) }))
            .route("/small", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = super::client().unwrap();
        let get = |path: &str| http.get(format!("http://{addr}{path}")).send();
        let big = super::body(get("/big").await.unwrap(), 1024).await;
        assert_eq!(big.unwrap_err(), "response body larger than 1024 bytes");
        let small = super::body(get("/small").await.unwrap(), 1024).await;
        assert_eq!(small.unwrap(), b"ok");
    }
}
