//! Serving over plain HTTP and TLS on 127.0.0.1:0, with a self-signed certificate made by
//! `openssl` for each test; bad certificate and key files.

use std::path::Path;
use std::process::Command;

use axum::Router;
use axum::routing::get;
use scalepilot_core::config::{Api, ApiTls};
use tokio::sync::oneshot;

use super::*;

/// A self-signed P-256 certificate for localhost and 127.0.0.1 in `dir`: cert.pem and key.pem.
fn self_signed(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            // A leaf, not a CA: webpki refuses a CA certificate used as the server's own.
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn api(tls: bool) -> Api {
    Api {
        listen: "127.0.0.1:0".parse().unwrap(),
        // Relative: `bind` resolves them against the config's folder.
        tls: tls.then(|| ApiTls {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        }),
    }
}

fn app() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

/// Serve `app()` on `bound` in a task; the sender stops it.
fn serve(
    bound: Bound,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(app(), async {
        let _ = stopped.await;
    }));
    (stop, task)
}

fn client(root: Option<&Path>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder().timeout(std::time::Duration::from_secs(20));
    if let Some(dir) = root {
        let pem = std::fs::read(dir.join("cert.pem")).unwrap();
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn plain_http_serves_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let bound = bind(&api(false), dir.path()).await.unwrap();
    assert_ne!(bound.addr.port(), 0);
    assert!(!bound.is_tls());
    let url = format!("{}/hello", bound.url());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let (stop, task) = serve(bound);
    let body = client(None).get(&url).send().await.unwrap().text().await;
    assert_eq!(body.unwrap(), "hello");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    // The port is closed once serve has returned.
    assert!(client(None).get(&url).send().await.is_err());
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_certificate_and_survives_bad_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path());
    let bound = bind(&api(true), dir.path()).await.unwrap();
    assert!(bound.is_tls());
    let port = bound.addr.port();
    let (stop, task) = serve(bound);

    // Plain HTTP to the TLS port fails for that client only.
    let plain = client(None)
        .get(format!("http://127.0.0.1:{port}/hello"))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // A client that does not trust the certificate is refused.
    let untrusted = client(None)
        .get(format!("https://localhost:{port}/hello"))
        .send()
        .await;
    assert!(untrusted.is_err(), "{untrusted:?}");
    // A connection that sends nothing holds its own handshake task, not the server.
    let idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();

    let trusting = client(Some(dir.path()));
    for host in ["localhost", "127.0.0.1"] {
        let resp = trusting
            .get(format!("https://{host}:{port}/hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "hello");
    }
    drop(idle);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_certificate_and_key_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = |api: Api| {
        let dir = dir.path().to_path_buf();
        async move {
            match bind(&api, &dir).await {
                Ok(b) => panic!("bound {}", b.addr),
                Err(e) => format!("{e:#}"),
            }
        }
    };
    let cert = dir.path().join("cert.pem").display().to_string();
    let key = dir.path().join("key.pem").display().to_string();

    let e = err(api(true)).await;
    assert!(
        e.starts_with(&format!("cannot read TLS certificate {cert}: ")),
        "{e}"
    );

    std::fs::write(dir.path().join("cert.pem"), "not a certificate\n").unwrap();
    let e = err(api(true)).await;
    assert_eq!(
        e,
        format!(
            "api.tls.cert {cert}: no certificate found: expected PEM with a \"-----BEGIN CERTIFICATE-----\" block"
        )
    );

    self_signed(dir.path());
    std::fs::remove_file(dir.path().join("key.pem")).unwrap();
    let e = err(api(true)).await;
    assert!(
        e.starts_with(&format!("cannot read TLS private key {key}: ")),
        "{e}"
    );

    // A certificate where the key should be.
    std::fs::copy(dir.path().join("cert.pem"), dir.path().join("key.pem")).unwrap();
    let e = err(api(true)).await;
    assert!(
        e.starts_with(&format!("api.tls.key {key}: no private key found")),
        "{e}"
    );

    // An absolute path is taken as it is, not joined to the config's folder.
    let elsewhere = tempfile::tempdir().unwrap();
    self_signed(elsewhere.path());
    let mut absolute = api(true);
    absolute.tls = Some(ApiTls {
        cert: elsewhere.path().join("cert.pem").display().to_string(),
        key: elsewhere.path().join("key.pem").display().to_string(),
    });
    assert!(bind(&absolute, dir.path()).await.unwrap().is_tls());
}

#[tokio::test]
async fn a_port_in_use_is_an_error_naming_api_listen() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut a = api(false);
    a.listen = taken.local_addr().unwrap();
    let e = match bind(&a, Path::new(".")).await {
        Ok(_) => panic!("bound a port in use"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.starts_with(&format!("cannot listen on {} (api.listen): ", a.listen)),
        "{e}"
    );
}
