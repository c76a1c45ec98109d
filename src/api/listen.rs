//! Binding the API's listener (temporary minimal version until the `api-edge` branch lands
//! its own, with TLS): plain HTTP only.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, bail};
use scalepilot_core::config::Api;

/// A bound listener, ready to serve.
pub(crate) struct Bound {
    pub(crate) addr: SocketAddr,
    listener: tokio::net::TcpListener,
}

/// Bind `api.listen`.
pub(crate) async fn bind(api: &Api, _base_dir: &Path) -> Result<Bound> {
    if api.tls.is_some() {
        bail!("api.tls is not supported by this build yet");
    }
    let listener = tokio::net::TcpListener::bind(api.listen)
        .await
        .with_context(|| format!("cannot listen on {}", api.listen))?;
    let addr = listener.local_addr()?;
    Ok(Bound { addr, listener })
}

impl Bound {
    /// Serve `app` until `shutdown` completes.
    pub(crate) async fn serve(
        self,
        app: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the API server failed")
    }
}
