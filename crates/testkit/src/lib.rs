//! Test support for scalepilot: a real PostgreSQL cluster per test ([`PgCluster`]) or fresh
//! databases on the server `scripts/test.sh` starts ([`shared_pg_url`], [`fresh_database`]).
//!
//! Everything here panics with a clear message when PostgreSQL is missing or will not start:
//! tests that need it fail, they never skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (in this process or another) uses: `prefix_pid_counter_nanos`.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The URL of the PostgreSQL server the test run shares (`SCALEPILOT_PG_URL`, set by
/// `scripts/test.sh` and `scripts/postgres.sh start`).
pub fn shared_pg_url() -> String {
    match std::env::var("SCALEPILOT_PG_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!("set SCALEPILOT_PG_URL (./scripts/test.sh starts PostgreSQL and sets it)"),
    }
}

/// `url` with its database (the path) replaced by `db`; query parameters are kept.
pub fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority_end = scheme_end + rest.find(['/', '?']).unwrap_or(rest.len());
    let query = url[authority_end..]
        .find('?')
        .map_or("", |i| &url[authority_end + i..]);
    format!("{}/{db}{query}", &url[..authority_end])
}

/// Create an empty database with a unique name (`sp_test_<pid>_<n>_<nanos>`) on the server
/// of `base_url`; its URL.
pub async fn fresh_database(base_url: &str) -> String {
    let name = unique_name("sp_test");
    create_database_at(base_url, &name).await;
    with_database(base_url, &name)
}

async fn create_database_at(base_url: &str, name: &str) {
    let mut conn = PgConnection::connect(base_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {base_url}: {e}"));
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name} at {base_url}: {e}"));
    let _ = conn.close().await;
}

/// A PostgreSQL cluster of its own: initdb into a fresh directory, started on a free
/// loopback port with fsync off. Stopped (and its directory removed) on drop.
pub struct PgCluster {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    /// Run the server programs as the `postgres` user (they refuse to run as root).
    as_postgres: bool,
}

impl PgCluster {
    /// initdb a new cluster and start it. Panics when PostgreSQL is missing or fails.
    pub fn new() -> PgCluster {
        let bin = pg_bin();
        let as_postgres = running_as_root();
        let root = PathBuf::from("/tmp").join(unique_name("scalepilot-pg"));
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", root.display()));
        if as_postgres {
            check(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&root)
                    .output(),
                "chown the cluster directory to postgres",
            );
        }
        let port = free_port();
        let cluster = PgCluster {
            bin,
            root,
            port,
            as_postgres,
        };
        let data = cluster.data();
        check(
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ])
                .output(),
            "initdb",
        );
        cluster.start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// Start the (stopped) server again, on the same port and data directory.
    pub fn start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.root.display()
        );
        check(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.root.join("log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .output(),
            &format!("pg_ctl start (log: {})", self.root.join("log").display()),
        );
    }

    /// Stop the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop_immediate(&self) {
        check(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-m", "immediate", "stop"])
                .output(),
            "pg_ctl stop",
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data in `data/`, the server log in `log`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The URL of database `db` (user `postgres`, no password: the cluster trusts loopback).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Create database `name`.
    pub async fn create_database(&self, name: &str) {
        create_database_at(&self.url("postgres"), name).await;
    }

    /// The postmaster's PID while the server runs.
    fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Default for PgCluster {
    fn default() -> Self {
        PgCluster::new()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            let stopped = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-m", "immediate", "stop"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !stopped {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The PostgreSQL programs: `PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "PG_BIN={} has no initdb",
            dir.display()
        );
        return dir;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb (set PG_BIN, or run ./scripts/postgres.sh start, which installs it)"
        ),
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

fn check(out: std::io::Result<Output>, what: &str) {
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "PostgreSQL: {what} failed ({}):\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("PostgreSQL: cannot run {what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5/postgres", "x"),
            "postgres://postgres@127.0.0.1:5/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
