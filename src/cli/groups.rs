//! `scalepilot groups`: the scaling groups kept in the database (`groups_from: database|both`).
//!
//! Every change is validated exactly like a config file's groups, with the same messages.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use jiff::Timestamp;
use serde_json::{Map, Value};

use scalepilot_core::config::{self, Config, GroupsFrom};
use scalepilot_store::{GroupRow, Store};

/// Manage the scaling groups kept in the store: import, export, list, enable, disable, delete.
/// The daemon picks a change up within a second, without SIGHUP (with `groups_from: database`
/// or `both` in its config).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Policy file (its `store:` is used).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Validate every group in FILE (a `groups:` list like a config file's, or one group) and,
    /// only when all are valid, add or replace their rows.
    Import {
        /// YAML file.
        file: PathBuf,
    },
    /// Print every row as a YAML `groups:` list that `import` takes back.
    Export {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the rows: name, enabled, min, max, version, last update.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enable a row's group (it is evaluated again).
    Enable { name: String },
    /// Disable a row's group (it is no longer evaluated).
    Disable { name: String },
    /// Delete a row (its group stops).
    Delete { name: String },
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let Some(path) = args.config.clone() else {
        bail!("--config FILE is required: the policy file whose `store:` keeps the groups");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // A config with errors still names its store (see `history`); its file groups are
        // only known when it is valid.
        let (cfg, file_groups) = match scalepilot_engine::load(&path) {
            Ok(l) => {
                let names: Vec<String> = l.config.group_names().iter().map(|n| n.to_string()).collect();
                (l.config, names)
            }
            Err(_) => (scalepilot_engine::load_config_only(&path)?, Vec::new()),
        };
        let base = path
            .parent()
            .map(PathBuf::from)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let store = scalepilot_engine::open_store(&cfg, &base).await?;
        if cfg.groups_from == GroupsFrom::File {
            eprintln!(
                "note: {} has no `groups_from: database` or `both`: its daemon does not read these rows",
                path.display()
            );
        }
        match args.command {
            Sub::Import { file } => import(&*store, &cfg, &file_groups, &file).await,
            Sub::Export { out } => export(&*store, out.as_deref()).await,
            Sub::List { json } => list(&*store, json).await,
            Sub::Enable { name } => set_enabled(&store, &name, true).await,
            Sub::Disable { name } => set_enabled(&store, &name, false).await,
            Sub::Delete { name } => {
                if store.delete_group_row(&name).await? {
                    super::emit(&format!("deleted {name}"));
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("error: no group `{name}` in the database");
                    Ok(ExitCode::from(1))
                }
            }
        }
    })
}

async fn import(
    store: &dyn Store,
    cfg: &Config,
    file_groups: &[String],
    file: &Path,
) -> Result<ExitCode> {
    let text = super::read_config_text(file)?;
    let name = file.display().to_string();
    let groups = match config::groups_from_text(&text, &name) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{name}: {} problem(s); nothing imported", e.problems.len());
            return Ok(ExitCode::from(1));
        }
    };
    // With `both`, names are unique across the file and the database.
    if cfg.groups_from == GroupsFrom::Both {
        let clashes: Vec<&str> = groups
            .iter()
            .map(|g| g.name.as_str())
            .filter(|n| file_groups.iter().any(|f| f == n))
            .collect();
        if !clashes.is_empty() {
            for n in &clashes {
                eprintln!(
                    "{name}: {}.name: a group named \"{n}\" is in the config file already: names are unique across the file and the database",
                    config::row_path(n)
                );
            }
            eprintln!("{name}: {} problem(s); nothing imported", clashes.len());
            return Ok(ExitCode::from(1));
        }
    }
    let existing = store.group_rows().await?;
    let now = Timestamp::now();
    for g in groups {
        let before = existing.iter().find(|r| r.name == g.name);
        let what = match before {
            Some(r) if r.spec == g.spec && r.enabled == g.enabled => "unchanged",
            Some(_) => "changed",
            None => "added",
        };
        if what != "unchanged" {
            store
                .put_group_row(&g.name, &g.spec, g.enabled, now)
                .await
                .with_context(|| format!("storing group `{}`", g.name))?;
        }
        super::emit(&format!("{what} {}", g.name));
    }
    Ok(ExitCode::SUCCESS)
}

/// A row as a `groups:` item: its spec with its name first and its `enabled` column.
fn item(row: &GroupRow) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(row.name.clone()));
    if let Value::Object(spec) = &row.spec {
        for (k, v) in spec {
            if k != "name" && k != "enabled" {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    m.insert("enabled".into(), Value::Bool(row.enabled));
    Value::Object(m)
}

async fn export(store: &dyn Store, out: Option<&Path>) -> Result<ExitCode> {
    let rows = store.group_rows().await?;
    let mut text =
        String::from("# scalepilot groups export: `scalepilot groups import` takes it back\n");
    if rows.is_empty() {
        text.push_str("groups: []\n");
    } else {
        text.push_str("groups:\n");
        let list = Value::Array(rows.iter().map(item).collect());
        yaml(&list, 2, &mut text);
    }
    match out {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!("{} group(s) written to {}", rows.len(), p.display());
        }
        None => super::emit(text.trim_end()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &dyn Store, json: bool) -> Result<ExitCode> {
    let rows = store.group_rows().await?;
    let when = |ms: i64| {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| ms.to_string())
    };
    if json {
        let list: Vec<Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "enabled": r.enabled,
                    "min": r.spec.get("min"),
                    "max": r.spec.get("max"),
                    "version": r.version,
                    "updated": when(r.updated_ms),
                    "valid": config::group_from_row(&r.name, &r.spec, r.enabled).is_ok(),
                })
            })
            .collect();
        super::emit(&serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    super::emit(&format!(
        "{:<24} {:<8} {:>5} {:>5} {:>8}  {}",
        "NAME", "ENABLED", "MIN", "MAX", "VERSION", "UPDATED"
    ));
    let num = |v: Option<&Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    for r in &rows {
        let invalid = config::group_from_row(&r.name, &r.spec, r.enabled).is_err();
        super::emit(&format!(
            "{:<24} {:<8} {:>5} {:>5} {:>8}  {}{}",
            r.name,
            if r.enabled { "yes" } else { "no" },
            num(r.spec.get("min")),
            num(r.spec.get("max")),
            r.version,
            when(r.updated_ms),
            if invalid {
                "  (invalid: skipped by the daemon)"
            } else {
                ""
            }
        ));
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_enabled(store: &Arc<dyn Store>, name: &str, enabled: bool) -> Result<ExitCode> {
    if store
        .set_group_row_enabled(name, enabled, Timestamp::now())
        .await?
    {
        super::emit(&format!(
            "{} {name}",
            if enabled { "enabled" } else { "disabled" }
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: no group `{name}` in the database");
        Ok(ExitCode::from(1))
    }
}

/// A plain scalar that YAML reads back as the same string.
fn plain(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if plain(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        // JSON scalars (strings quoted and escaped) are YAML too.
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

/// Block-style YAML of `v` at `indent` spaces (a mapping's keys, a list's dashes).
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            // The name first, as people write it.
            let named = m.iter().filter(|(k, _)| *k == "name");
            for (k, x) in named.chain(m.iter().filter(|(k, _)| *k != "name")) {
                let key = if plain(k) {
                    k.clone()
                } else {
                    Value::String(k.clone()).to_string()
                };
                if is_block(x) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    yaml(x, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(x)));
                }
            }
        }
        Value::Array(a) => {
            for x in a {
                if is_block(x) {
                    // The item's first line goes after the dash.
                    let mut inner = String::new();
                    yaml(x, indent + 2, &mut inner);
                    out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(x)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}
