//! `scalepilot migrate`: apply the configured store's pending schema migrations (SQLite or
//! PostgreSQL) ahead of a deployment, or with `--dry-run` show what would be applied.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use scalepilot_core::config::Store as StoreConfig;
use scalepilot_store::{MigrationPlan, MigrationStep, PostgresStore, SqliteStore};

/// Apply the store's pending schema migrations and print the versions applied. The daemon
/// also applies them when it opens the store; this runs them on their own (before a rollout,
/// say). With `--dry-run` nothing is changed (a SQLite file that does not exist is not
/// created): it prints the versions already applied and those that would be.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Policy file (its `store:` is read).
    #[arg(long, default_value = "scalepilot.yaml")]
    config: PathBuf,
    /// Show what would be applied; change nothing.
    #[arg(long)]
    dry_run: bool,
}

fn list(steps: &[MigrationStep]) -> String {
    if steps.is_empty() {
        return "none".into();
    }
    steps
        .iter()
        .map(|m| format!("{} ({})", m.version, m.description))
        .collect::<Vec<_>>()
        .join(", ")
}

fn newly_applied(before: &[MigrationStep], after: MigrationPlan) -> Vec<MigrationStep> {
    after
        .applied
        .into_iter()
        .filter(|m| !before.iter().any(|b| b.version == m.version))
        .collect()
}

fn print_plan(plan: &MigrationPlan) {
    super::emit(&format!("already applied: {}", list(&plan.applied)));
    super::emit(&format!("would apply: {}", list(&plan.pending)));
}

fn print_applied(applied: &[MigrationStep]) {
    if applied.is_empty() {
        super::emit("applied: none (the store is up to date)");
    } else {
        super::emit(&format!("applied: {}", list(applied)));
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let config = scalepilot_engine::load_config_only(&args.config)?;
        let base = args
            .config
            .parent()
            .map(PathBuf::from)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        match &config.store {
            StoreConfig::Sqlite { path, .. } => sqlite(&base.join(path), args.dry_run).await,
            StoreConfig::Postgres { .. } => {
                let settings = scalepilot_engine::pg_settings(&config.store, &base)?
                    .context("a PostgreSQL store has connection settings")?;
                let shown = settings.redacted_url();
                super::emit(&format!("store: PostgreSQL {shown}"));
                if args.dry_run {
                    let plan = PostgresStore::migration_plan(&settings)
                        .await
                        .with_context(|| format!("cannot read the migrations of {shown}"))?;
                    print_plan(&plan);
                } else {
                    let applied = PostgresStore::migrate(&settings)
                        .await
                        .with_context(|| format!("cannot migrate {shown}"))?;
                    print_applied(&applied);
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn sqlite(file: &Path, dry_run: bool) -> Result<ExitCode> {
    super::emit(&format!("store: SQLite {}", file.display()));
    let existed = file.exists();
    let before = SqliteStore::migration_plan(file)
        .await
        .with_context(|| format!("cannot read the migrations of {}", file.display()))?;
    if dry_run {
        if !existed {
            super::emit(&format!(
                "{} does not exist: migrate would create it (a dry run does not)",
                file.display()
            ));
        }
        print_plan(&before);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let store = SqliteStore::open(file)
        .await
        .with_context(|| format!("cannot open the store {}", file.display()))?;
    drop(store);
    let after = SqliteStore::migration_plan(file)
        .await
        .with_context(|| format!("cannot read the migrations of {}", file.display()))?;
    print_applied(&newly_applied(&before.applied, after));
    Ok(ExitCode::SUCCESS)
}
