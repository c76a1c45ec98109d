//! `command`: run a user script with the desired count in its environment.
//!
//! `SCALEPILOT_DESIRED` and `SCALEPILOT_GROUP` are set; exit 0 means done, anything else is a
//! failed activity carrying the script's stderr. The current count comes from
//! `status_command` (its stdout) when given, else it is the last count applied successfully.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use scalepilot_core::config::{CommandSpec, Group};
use tokio::process::Command;
use tokio::sync::Mutex;

use super::{Status, Target};
use scalepilot_store::{ActivityStatus, Store};

pub(crate) struct CommandTarget {
    group: String,
    command: String,
    status_command: Option<String>,
    timeout: Duration,
    applied: Mutex<u32>,
}

impl CommandTarget {
    pub(crate) async fn new(
        group: &Group,
        spec: &CommandSpec,
        store: Arc<dyn Store>,
    ) -> Result<CommandTarget> {
        // Resume from the last count applied by a previous run.
        let last = store
            .activities(Some(&group.name), 50)
            .await?
            .into_iter()
            .find(|a| a.status == ActivityStatus::Succeeded)
            .map(|a| a.to_replicas.clamp(0, u32::MAX as i64) as u32);
        Ok(CommandTarget {
            group: group.name.to_string(),
            command: spec.command.clone(),
            status_command: spec.status_command.clone(),
            timeout: spec.timeout,
            applied: Mutex::new(last.unwrap_or(group.min)),
        })
    }

    async fn sh(&self, script: &str, desired: Option<u32>) -> Result<String, String> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .env("SCALEPILOT_GROUP", &self.group)
            .kill_on_drop(true);
        if let Some(d) = desired {
            cmd.env("SCALEPILOT_DESIRED", d.to_string());
        }
        let out = tokio::time::timeout(self.timeout, cmd.output())
            .await
            .map_err(|_| format!("`{script}` timed out after {:?}", self.timeout))?
            .map_err(|e| format!("cannot run `{script}`: {e}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "`{script}` failed ({}): {}",
                out.status,
                stderr.trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[async_trait]
impl Target for CommandTarget {
    async fn status(&self) -> Result<Status, String> {
        let current = match &self.status_command {
            Some(sc) => {
                let out = self.sh(sc, None).await?;
                out.trim().parse::<u32>().map_err(|_| {
                    format!(
                        "status command `{sc}` printed {:?}, expected a replica count",
                        out.trim()
                    )
                })?
            }
            None => *self.applied.lock().await,
        };
        Ok(Status {
            current,
            ready: current,
            limits: None,
            endpoints: Vec::new(),
        })
    }

    async fn scale_to(&self, desired: u32) -> Result<(), String> {
        self.sh(&self.command, Some(desired)).await?;
        *self.applied.lock().await = desired;
        Ok(())
    }

    async fn shutdown(&self) {}
}
