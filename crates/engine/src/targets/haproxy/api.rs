//! HAProxy's runtime API (the stats socket at `level admin`), over a unix socket or TCP.
//!
//! One command per connection, as HAProxy's CLI expects without `prompt` mode.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the runtime API listens.
#[derive(Debug, Clone)]
pub(crate) enum Socket {
    Unix(std::path::PathBuf),
    Tcp(String),
}

impl Socket {
    /// "host:port" is TCP; anything else is a unix socket path.
    pub(crate) fn parse(s: &str) -> Socket {
        let looks_tcp = !s.starts_with('/')
            && !s.starts_with('.')
            && s.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        if looks_tcp {
            Socket::Tcp(s.to_string())
        } else {
            Socket::Unix(s.into())
        }
    }

    /// A relative unix socket path is relative to the config file's folder.
    pub(crate) fn relative_to(self, base: &std::path::Path) -> Socket {
        match self {
            Socket::Unix(p) if p.is_relative() => Socket::Unix(base.join(p)),
            other => other,
        }
    }

    fn name(&self) -> String {
        match self {
            Socket::Unix(p) => p.display().to_string(),
            Socket::Tcp(a) => a.clone(),
        }
    }

    /// Send one command; returns HAProxy's answer.
    pub(crate) async fn command(&self, cmd: &str) -> Result<String, String> {
        let io = async {
            let mut out = Vec::new();
            let line = format!("{cmd}\n");
            match self {
                Socket::Unix(p) => {
                    let mut s = tokio::net::UnixStream::connect(p).await?;
                    s.write_all(line.as_bytes()).await?;
                    s.read_to_end(&mut out).await?;
                }
                Socket::Tcp(a) => {
                    let mut s = tokio::net::TcpStream::connect(a).await?;
                    s.write_all(line.as_bytes()).await?;
                    s.read_to_end(&mut out).await?;
                }
            }
            std::io::Result::Ok(String::from_utf8_lossy(&out).into_owned())
        };
        match tokio::time::timeout(TIMEOUT, io).await {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(e)) => Err(format!("HAProxy runtime API {}: {e}", self.name())),
            Err(_) => Err(format!(
                "HAProxy runtime API {}: no answer within {TIMEOUT:?}",
                self.name()
            )),
        }
    }

    /// Send a command whose success HAProxy confirms with one of `ok` (case-insensitive
    /// substrings such as "New server registered"); anything else is an error.
    pub(crate) async fn expect(&self, cmd: &str, ok: &[&str]) -> Result<(), String> {
        let answer = self.command(cmd).await?;
        let trimmed = answer.trim();
        let lower = trimmed.to_ascii_lowercase();
        if trimmed.is_empty() || ok.iter().any(|o| lower.contains(&o.to_ascii_lowercase())) {
            Ok(())
        } else {
            Err(format!("HAProxy refused `{cmd}`: {trimmed}"))
        }
    }
}

/// One server of a backend, from `show stat BACKEND 4 -1`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Server {
    pub name: String,
    /// "host:port".
    pub addr: String,
    /// UP, DOWN, MAINT, DRAIN, "no check", …
    pub status: String,
    /// Current sessions.
    pub sessions: u64,
    /// Sessions served since the server was added.
    pub total: u64,
}

/// Parse `show stat BACKEND 4 -1` (CSV with a `# ` header line).
pub(crate) fn parse_stat(text: &str) -> Result<Vec<Server>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("empty `show stat` answer")?;
    let header = header
        .strip_prefix("# ")
        .ok_or_else(|| format!("unexpected `show stat` answer: {header}"))?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("`show stat` has no `{name}` column"))
    };
    let (sv, st, scur, stot, addr) = (
        col("svname")?,
        col("status")?,
        col("scur")?,
        col("stot")?,
        col("addr")?,
    );
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or_default();
        let name = get(sv);
        if name == "BACKEND" || name == "FRONTEND" {
            continue;
        }
        out.push(Server {
            name: name.to_string(),
            addr: get(addr).to_string(),
            status: get(st).to_string(),
            sessions: get(scur).parse().unwrap_or(0),
            total: get(stot).parse().unwrap_or(0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_kinds() {
        assert!(matches!(Socket::parse("127.0.0.1:9999"), Socket::Tcp(_)));
        assert!(matches!(
            Socket::parse("/run/haproxy/admin.sock"),
            Socket::Unix(_)
        ));
        assert!(matches!(Socket::parse("admin.sock"), Socket::Unix(_)));
    }

    #[test]
    fn stat_csv() {
        let text = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,addr\nbe,sp-1,0,0,2,3,,41,UP,127.0.0.1:9001\nbe,other,0,0,0,0,,0,MAINT,10.0.0.1:80\nbe,BACKEND,0,0,2,3,,41,UP,\n";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            Server {
                name: "sp-1".into(),
                addr: "127.0.0.1:9001".into(),
                status: "UP".into(),
                sessions: 2,
                total: 41
            }
        );
        assert_eq!(s[1].status, "MAINT");
        assert!(parse_stat("Unknown command\n").is_err());
    }
}
