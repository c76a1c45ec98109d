//! `scalepilot token create|list|revoke`: the REST API's bearer tokens, kept in the config's
//! store.
//!
//! A secret is printed once, at creation; the store keeps only its SHA-256 (see
//! `api::secret`), so a lost secret is revoked and replaced, never recovered.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use jiff::Timestamp;
use scalepilot_store::{Role, Store, TokenRecord};
use serde::Serialize;

use crate::api::secret;

/// Manage the REST API's bearer tokens: create (the secret is printed once), list, revoke.
/// The daemon sees a change within a second, without a restart.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Policy file (its `store:` keeps the tokens).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Create a token and print its secret on standard output, once.
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Unique among live tokens: 1 to 63 letters, digits, `-`, `_` and `.`.
        #[arg(long)]
        name: String,
    },
    /// List the tokens: name, role, created, revoked (never a secret or hash).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a live token: requests that present it are refused from then on.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

/// The roles as command-line values (clap lists them in its error for a bad one).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    /// Read everything.
    Viewer,
    /// Also enable, disable, pause, scale and reload.
    Operator,
    /// Everything, tokens and audit log included.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let Some(path) = args.config.clone() else {
        bail!("--config FILE is required: the policy file whose `store:` keeps the tokens");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let store = open_store(&path).await?;
        match args.command {
            Sub::Create { role, name } => create(&*store, &name, role.into()).await,
            Sub::List { json } => list(&*store, json).await,
            Sub::Revoke { name } => revoke(&*store, &name).await,
        }
    })
}

/// The store a config file names, relative paths taken from its folder. A config with errors
/// in its groups still names its store, so tokens can be managed while it is being fixed.
async fn open_store(path: &Path) -> Result<std::sync::Arc<dyn Store>> {
    let cfg = match scalepilot_engine::load(path) {
        Ok(l) => l.config,
        Err(_) => scalepilot_engine::load_config_only(path)?,
    };
    scalepilot_engine::open_store(&cfg, &base_dir(path)).await
}

/// The folder a config's relative paths are taken from.
fn base_dir(config: &Path) -> PathBuf {
    config
        .parent()
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Why `name` cannot name a token, if it cannot: the rule of group names, so names stay
/// plain in logs, the audit log and URLs.
pub(crate) fn check_name(name: &str) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    (!(ok_chars && ok_start && name.len() <= 63)).then(|| {
        format!(
            "invalid token name {name:?}: expected 1 to 63 letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        )
    })
}

/// Create a token with a fresh secret; the secret alone goes to stdout, so
/// `TOKEN=$(scalepilot token create …)` captures it.
pub(crate) async fn create_token(store: &dyn Store, name: &str, role: Role) -> Result<String> {
    if let Some(problem) = check_name(name) {
        bail!("{problem}");
    }
    let secret = secret::generate();
    if !store
        .create_token(name, role, &secret::hash(&secret), Timestamp::now())
        .await?
    {
        bail!(
            "a live token named `{name}` exists: revoke it first (`scalepilot token revoke --name {name}`) or choose another name"
        );
    }
    Ok(secret)
}

async fn create(store: &dyn Store, name: &str, role: Role) -> Result<ExitCode> {
    let secret = match create_token(store, name, role).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    super::emit(&secret);
    eprintln!(
        "created token `{name}` ({role}): keep the secret above, it is not shown again (the store keeps only its hash)"
    );
    Ok(ExitCode::SUCCESS)
}

/// A token as listed: no hash, and of course no secret.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Listed {
    name: String,
    #[schema(value_type = String)]
    role: Role,
    created: String,
    created_ms: i64,
    revoked: Option<String>,
    revoked_ms: Option<i64>,
}

fn time(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

pub(crate) fn listed(t: &TokenRecord) -> Listed {
    Listed {
        name: t.name.clone(),
        role: t.role,
        created: time(t.created_ms),
        created_ms: t.created_ms,
        revoked: t.revoked_ms.map(time),
        revoked_ms: t.revoked_ms,
    }
}

async fn list(store: &dyn Store, json: bool) -> Result<ExitCode> {
    let tokens = store.tokens().await?;
    let rows: Vec<Listed> = tokens.iter().map(listed).collect();
    if json {
        super::emit(&serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("no tokens: create one with `scalepilot token create --role viewer --name NAME`");
        return Ok(ExitCode::SUCCESS);
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut text = format!(
        "{:<width$}  {:<8}  {:<20}  REVOKED",
        "NAME", "ROLE", "CREATED"
    );
    for r in &rows {
        text.push_str(&format!(
            "\n{:<width$}  {:<8}  {:<20}  {}",
            r.name,
            r.role,
            r.created,
            r.revoked.as_deref().unwrap_or("-")
        ));
    }
    super::emit(&text);
    Ok(ExitCode::SUCCESS)
}

async fn revoke(store: &dyn Store, name: &str) -> Result<ExitCode> {
    if store.revoke_token(name, Timestamp::now()).await? {
        super::emit(&format!("revoked {name}"));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: no live token named `{name}` (see `scalepilot token list`)");
        Ok(ExitCode::from(1))
    }
}
