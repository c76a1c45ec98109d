//! The API's socket: plain HTTP, or HTTPS with the certificate and key of `api.tls`.
//!
//! [`bind`] loads the certificate first and then takes the port, so a bad file fails the
//! start before anything listens, and [`Bound::addr`] is the real address (port 0 in tests).
//! Over TLS, handshakes run in their own tasks, off the accept loop: a client that stalls or
//! speaks plain HTTP to the TLS port costs one task until the handshake timeout, never the
//! server.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use scalepilot_core::config::Api;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Largest certificate or key file read: real ones are a few kilobytes.
const PEM_LIMIT: u64 = 1 << 20;

/// A client gets this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS handshakes in progress at most; further connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// A listening socket, with its TLS setup when `api.tls` is configured.
pub(crate) struct Bound {
    /// The address actually bound (the port chosen when the config said 0).
    pub(crate) addr: SocketAddr,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

/// Load `api.tls` (paths relative to `base_dir`, the config file's folder) and listen on
/// `api.listen`.
pub(crate) async fn bind(api: &Api, base_dir: &Path) -> Result<Bound> {
    let tls = match &api.tls {
        Some(t) => Some(acceptor(&base_dir.join(&t.cert), &base_dir.join(&t.key))?),
        None => None,
    };
    let listener = TcpListener::bind(api.listen)
        .await
        .with_context(|| format!("cannot listen on {} (api.listen)", api.listen))?;
    let addr = listener.local_addr()?;
    Ok(Bound {
        addr,
        listener,
        tls,
    })
}

impl Bound {
    /// Whether the socket speaks HTTPS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The base URL clients use: `http://127.0.0.1:8080` or `https://…` (an unspecified
    /// address such as 0.0.0.0 is shown as loopback, which reaches it from this machine).
    pub(crate) fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("{scheme}://{addr}")
    }

    /// Serve `app` until `shutdown` completes, then finish the requests in progress. Handlers
    /// get no `ConnectInfo` (the TLS listener cannot provide axum's).
    pub(crate) async fn serve(
        self,
        app: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let addr = self.addr;
        match self.tls {
            None => axum::serve(self.listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .with_context(|| format!("API server on {addr}")),
            Some(acceptor) => {
                let listener = TlsListener::start(self.listener, acceptor, addr);
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .with_context(|| format!("API server on {addr} (TLS)"))
            }
        }
    }
}

/// The TLS acceptor of a PEM certificate chain and private key; errors name the file.
fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    // One TLS provider for the whole process, as the HTTP client and the store install it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = certificates(cert)?;
    let key_der = private_key(key)?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            anyhow!(
                "api.tls: cannot use certificate {} with key {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
    // axum serves HTTP/1.1 only here.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificates of a PEM file, leaf first.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let text = pem_text(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("api.tls.cert {}: not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!(
            "api.tls.cert {}: no certificate found: expected PEM with a \"-----BEGIN CERTIFICATE-----\" block",
            path.display()
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let text = pem_text(path, "private key")?;
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow!(
            "api.tls.key {}: no private key found: expected PEM with a \"-----BEGIN PRIVATE KEY-----\" (or RSA/EC) block",
            path.display()
        ),
        e => anyhow!("api.tls.key {}: not valid PEM: {e}", path.display()),
    })
}

fn pem_text(path: &Path, what: &str) -> Result<String> {
    scalepilot_engine::limits::read_to_string(path, PEM_LIMIT, &format!("TLS {what}"))
}

/// Hands axum the connections whose TLS handshake succeeded; a task accepts TCP connections
/// and runs each handshake in a task of its own.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, acceptor: TlsAcceptor, addr: SocketAddr) -> TlsListener {
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, acceptor, tx));
        TlsListener { ready, addr }
    }
}

/// Accept TCP connections until the server is gone (the receiver dropped), handshaking each
/// in its own task.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            () = tx.closed() => return,
            p = handshakes.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = tx.closed() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning, as axum's own
                // TCP listener does.
                tracing::warn!("API: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    // Fails only when the server has stopped: the connection is dropped.
                    let _ = tx.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "API: TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "API: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended, which it does only once this listener is dropped: wait
            // for the graceful shutdown that is under way.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

#[cfg(test)]
#[path = "listen_tests.rs"]
mod tests;
