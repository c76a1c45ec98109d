//! HAProxy config-file mode: render, check, atomically replace, reload gracefully.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use tokio::sync::Mutex;

use super::api::Socket;
use super::{CHECK, server_name};

pub(super) struct ConfigFile {
    path: PathBuf,
    template: String,
    master: Socket,
    haproxy: String,
    /// The servers of the file in force, and its text.
    applied: Mutex<(HashSet<String>, String)>,
}

impl ConfigFile {
    pub(super) fn open(
        path: &str,
        template: &str,
        master_socket: &str,
        haproxy: &str,
        backend: &str,
        base: &Path,
    ) -> Result<ConfigFile> {
        let template_path = base.join(template);
        let template = std::fs::read_to_string(&template_path)
            .with_context(|| format!("cannot read template {}", template_path.display()))?;
        if !template.contains("{{servers}}") {
            bail!(
                "template {} has no {{{{servers}}}} placeholder for backend {backend}",
                template_path.display()
            );
        }
        let path = base.join(path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        // The servers of the file in force: HAProxy routes to them until a new file applies.
        let in_force: HashSet<String> = current
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("server"))
                    .then(|| w.nth(1).map(str::to_string))
                    .flatten()
            })
            .collect();
        Ok(ConfigFile {
            path,
            template,
            master: Socket::parse(master_socket).relative_to(base),
            haproxy: haproxy.to_string(),
            applied: Mutex::new((in_force, current)),
        })
    }

    fn render(&self, prefix: &str, serving: &[String]) -> String {
        let mut sorted: Vec<&String> = serving.iter().collect();
        sorted.sort();
        let lines: Vec<String> = sorted
            .iter()
            .map(|a| format!("    server {} {a} {CHECK}", server_name(prefix, a)))
            .collect();
        self.template.replace("{{servers}}", &lines.join("\n"))
    }

    /// Make the file list `serving`; returns the addresses of the file in force.
    pub(super) async fn apply(
        &self,
        prefix: &str,
        serving: &[String],
    ) -> Result<HashSet<String>, String> {
        let mut applied = self.applied.lock().await;
        let text = self.render(prefix, serving);
        if text == applied.1 {
            return Ok(applied.0.clone());
        }
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let tmp = dir.join(format!(
            ".{}.scalepilot-new",
            self.path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        };
        write().map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        let check = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            tokio::process::Command::new(&self.haproxy)
                .args(["-c", "-q", "-f"])
                .arg(&tmp)
                .kill_on_drop(true)
                .output(),
        )
        .await;
        let check = match check {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(format!("cannot run `{} -c`: {e}", self.haproxy));
            }
            Err(_) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(format!("`{} -c` did not finish within 30 s", self.haproxy));
            }
        };
        if !check.status.success() {
            let _ = std::fs::remove_file(&tmp);
            let why = String::from_utf8_lossy(&check.stderr).trim().to_string();
            return Err(format!(
                "the rendered config fails `haproxy -c`; the running one is kept: {why}"
            ));
        }
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| format!("cannot replace {}: {e}", self.path.display()))?;
        // The rename itself must survive a crash: sync the folder too.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        let answer = self.master.command("reload").await?;
        if answer.to_ascii_lowercase().contains("unknown command") {
            return Err(format!(
                "the master socket refused `reload`: {}",
                answer.trim()
            ));
        }
        applied.0 = serving.iter().cloned().collect();
        applied.1 = text;
        tracing::info!(
            "{} rewritten with {} servers and reloaded",
            self.path.display(),
            serving.len()
        );
        Ok(applied.0.clone())
    }
}
