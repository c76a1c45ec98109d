//! `scalepilot history`: the recorded scaling activities (with their reasons) and errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use jiff::Timestamp;

/// Show what scaled and why (newest first), or the recorded errors.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Policy file (its `store:` is read).
    #[arg(long)]
    config: PathBuf,
    /// Only this group.
    #[arg(long)]
    group: Option<String>,
    /// How many entries.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Show errors instead of activities.
    #[arg(long)]
    errors: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn when(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let loaded = crate::engine::load_config_only(&args.config)?;
        let base = args
            .config
            .parent()
            .map(PathBuf::from)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let (store, _) = crate::engine::open_store(&loaded, &base).await?;
        if args.errors {
            let errors = store.errors(args.group.as_deref(), args.limit).await?;
            if args.json {
                super::emit(&serde_json::to_string_pretty(&errors)?);
            } else {
                for e in errors {
                    super::emit(&format!(
                        "{}  {:<12} {:<7} {}",
                        when(e.at_ms),
                        e.group.unwrap_or_default(),
                        e.component,
                        e.message
                    ));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        let activities = store.activities(args.group.as_deref(), args.limit).await?;
        if args.json {
            super::emit(&serde_json::to_string_pretty(&activities)?);
        } else {
            for a in activities {
                let summary = a.decision["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let error = a.error.map(|e| format!(" ({e})")).unwrap_or_default();
                super::emit(&format!(
                    "{}  {:<12} {:>4} → {:<4} {:<11}{error}\n    {summary}",
                    when(a.started_ms),
                    a.group,
                    a.from_replicas,
                    a.to_replicas,
                    a.status
                ));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
