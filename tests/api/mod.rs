//! The REST API against a real `scalepilot run` with `api:` on loopback: roles, the error
//! shape of bad requests, groups and their changes, history pages, the audit log, the
//! OpenAPI document and readiness. Requests go over plain TCP so that malformed ones (bad
//! JSON, wrong Content-Type, oversized bodies) are sent exactly as written.

mod auth;
mod groups;
mod malformed;
mod openapi;
mod readyz;
mod shutdown;
mod simulate;
mod tokens;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use scalepilot_store::{Role, SqliteStore, Store};
use serde_json::Value;
use sha2::Digest;

use crate::engine::{Daemon, step_trace, wait_until};

/// The secrets of the three tokens every test daemon gets.
pub(crate) const VIEWER: &str = "sp_test_viewer_secret";
pub(crate) const OPERATOR: &str = "sp_test_operator_secret";
pub(crate) const ADMIN: &str = "sp_test_admin_secret";

/// A daemon serving the API, with a viewer, an operator and an admin token.
pub(crate) struct Api {
    pub daemon: Daemon,
    /// host:port
    pub addr: String,
    pub dir: tempfile::TempDir,
}

/// A group evaluated every second over a steady 50 req/s (5 replicas at 10 per replica),
/// scaled by a command that writes the count to a file.
pub(crate) fn group(dir: &Path, name: &str, min: u32, max: u32) -> String {
    format!(
        r#"  - name: {name}
    min: {min}
    max: {max}
    evaluation_interval: 1s
    source: {{kind: trace, file: load.csv}}
    target:
      kind: command
      command: "echo $SCALEPILOT_DESIRED > {}"
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
    behavior:
      scale_down: {{stabilization: 0s}}
"#,
        dir.join(format!("{name}.replicas")).display()
    )
}

impl Api {
    /// Start a daemon with `store` (YAML of the `store:` value) and the file groups `groups`
    /// (YAML list items), `groups_from: both`.
    pub(crate) fn start_with(store: &str, groups: impl Fn(&Path) -> String) -> Api {
        let dir = tempfile::tempdir().unwrap();
        step_trace(&dir.path().join("load.csv"), &[(3600, 50)]);
        let path = dir.path().join("api.yaml");
        std::fs::write(
            &path,
            format!(
                "store: {store}\ngroups_from: both\napi: {{listen: \"127.0.0.1:0\"}}\ngroups:\n{}",
                groups(dir.path())
            ),
        )
        .unwrap();
        let daemon = Daemon::start(&path, (0, 0), &[]);
        let mut addr = None;
        let up = wait_until(Duration::from_secs(30), || {
            addr = daemon
                .log()
                .lines()
                .find_map(|l| l.split("API listening on http://").nth(1))
                .map(|a| a.trim().to_string());
            addr.is_some()
        });
        assert!(up, "the API did not start:\n{}", daemon.log());
        Api {
            daemon,
            addr: addr.unwrap(),
            dir,
        }
    }

    /// A daemon on SQLite with one file group `web` (min 1, max 10), tokens ready.
    pub(crate) fn start() -> Api {
        let api = Api::start_with("{kind: sqlite, path: sp.db}", |d| group(d, "web", 1, 10));
        api.add_tokens_sqlite();
        api
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.dir.path().join("sp.db")
    }

    /// Create the three tokens in the SQLite store and wait until the API knows them.
    pub(crate) fn add_tokens_sqlite(&self) {
        let db = self.db();
        block_on(async move {
            let store = SqliteStore::open(&db).await.unwrap();
            add_tokens(&store).await;
        });
        self.wait_for_tokens();
    }

    /// Until the admin token is accepted (the API re-reads tokens within a second or so).
    pub(crate) fn wait_for_tokens(&self) {
        let ok = wait_until(Duration::from_secs(15), || {
            self.call("GET", "/api/v1/whoami", Some(ADMIN), None).status == 200
        });
        assert!(ok, "the tokens were not picked up:\n{}", self.daemon.log());
    }

    /// `method path` with `token` and, when given, a JSON body.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Resp {
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(format!("Authorization: Bearer {t}"));
        }
        if body.is_some() {
            headers.push("Content-Type: application/json".to_string());
        }
        self.send(method, path, &headers, body.map(str::as_bytes))
    }

    pub(crate) fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), None)
    }

    pub(crate) fn post(&self, path: &str, token: &str, body: &str) -> Resp {
        self.call("POST", path, Some(token), Some(body))
    }

    /// A request as written: extra header lines, a body with its Content-Length.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[String],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        if let Some(b) = body {
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.raw(bytes)
    }

    /// Send `bytes` (from another thread, so a server that answers before reading them all
    /// does not block the test) and read the response.
    pub(crate) fn raw(&self, bytes: Vec<u8>) -> Resp {
        let conn = std::net::TcpStream::connect(&self.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut writer = conn.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(&bytes);
        });
        let mut out = Vec::new();
        let mut reader = conn;
        let _ = reader.read_to_end(&mut out);
        let _ = sender.join();
        Resp::parse(&out)
    }
}

/// The three tokens, hashed as the daemon expects (hex SHA-256).
pub(crate) async fn add_tokens(store: &dyn Store) {
    for (name, role, secret) in [
        ("viewer", Role::Viewer, VIEWER),
        ("operator", Role::Operator, OPERATOR),
        ("admin", Role::Admin, ADMIN),
    ] {
        let hash = hex_sha256(secret);
        assert!(
            store
                .create_token(name, role, &hash, Timestamp::now())
                .await
                .unwrap()
        );
    }
}

pub(crate) fn hex_sha256(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// An HTTP response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub head: String,
    pub body: String,
    pub json: Value,
}

impl Resp {
    fn parse(raw: &[u8]) -> Resp {
        let text = String::from_utf8_lossy(raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        Resp {
            status,
            json: serde_json::from_str(&body).unwrap_or(Value::Null),
            head: head.to_string(),
            body,
        }
    }

    /// The error's code, message and field.
    pub(crate) fn error(&self) -> (&str, &str, Option<&str>) {
        let e = &self.json["error"];
        (
            e["code"].as_str().unwrap_or("<none>"),
            e["message"].as_str().unwrap_or("<none>"),
            e["field"].as_str(),
        )
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
