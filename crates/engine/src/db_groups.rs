//! Groups kept in the database (`groups_from: database|both`).
//!
//! At start and on every reload, the store's group rows are read, each validated exactly as a
//! config file's group (problems name the row: `groups[web].max`), and merged with the file's
//! groups. The combined list then goes through the usual reload diff, which restarts only the
//! groups whose raw JSON changed (for a row: its spec with its name and `enabled`). A row that
//! fails validation, or whose name is also a file group's, is skipped and recorded in the
//! errors table (once per change, not at every reload); it never stops the engine.
//!
//! The control loop polls the rows' change counter every second; a new value reloads, so a
//! changed row takes effect at that group's next evaluation, without SIGHUP.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use scalepilot_core::config::group_from_row;
use scalepilot_store::{ErrorComponent, Store};
use serde_json::Value;

use crate::engine::Loaded;

/// Store errors while polling are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What was reported about rows, so the same problem is recorded once, not at every reload.
#[derive(Default)]
pub(crate) struct Reported {
    /// Row name → the problem last recorded for it (a row that turns valid is forgotten).
    problems: Mutex<HashMap<String, String>>,
    /// When a polling error was last logged.
    warned: Mutex<Option<Instant>>,
}

impl Reported {
    /// Whether `message` for row `name` is new (and remember it).
    fn is_new(&self, name: &str, message: &str) -> bool {
        let Ok(mut seen) = self.problems.lock() else {
            return true;
        };
        if seen.get(name).is_some_and(|m| m == message) {
            return false;
        }
        seen.insert(name.to_string(), message.to_string());
        true
    }

    /// Forget rows that have no problem now.
    fn keep_only(&self, names: &HashSet<String>) {
        if let Ok(mut seen) = self.problems.lock() {
            seen.retain(|n, _| names.contains(n));
        }
    }
}

/// The file's groups merged with the store's rows, when the config asks for them; `loaded`
/// unchanged otherwise. Invalid rows are skipped (and recorded); only a store error fails.
pub(crate) async fn merge(
    mut loaded: Loaded,
    store: &dyn Store,
    reported: &Reported,
) -> Result<Loaded> {
    if !loaded.config.groups_from.database() {
        return Ok(loaded);
    }
    // The counter first: a row changed after it is read again at the next poll.
    let version = store
        .group_rows_version()
        .await
        .context("reading the database groups' version")?;
    let rows = store
        .group_rows()
        .await
        .context("reading the database groups")?;
    let in_file: HashSet<String> = loaded
        .config
        .groups
        .iter()
        .map(|g| g.name.to_string())
        .collect();
    let mut invalid = HashSet::new();
    let mut added = 0usize;
    for row in rows {
        let problem = if in_file.contains(&row.name) {
            Err(format!(
                "{}.name: a group named \"{}\" is also in the config file: the file's is used, this row is skipped",
                scalepilot_core::config::row_path(&row.name),
                row.name
            ))
        } else {
            group_from_row(&row.name, &row.spec, row.enabled).map_err(|e| {
                e.problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        };
        match problem {
            Ok(group) => {
                // The row's own spec becomes the raw text (no copy): at 100,000 rows the
                // copies were a second set of `Value`s at the start's peak.
                let mut raw = row.spec;
                if let Value::Object(m) = &mut raw {
                    m.insert("name".into(), Value::String(row.name.clone()));
                    m.insert("enabled".into(), Value::Bool(row.enabled));
                }
                loaded.config.groups.push(group);
                loaded.raw_groups.push(crate::engine::compact(&raw));
                added += 1;
            }
            Err(message) => {
                let message = format!("database group row skipped: {message}");
                if reported.is_new(&row.name, &message) {
                    tracing::error!(group = %row.name, "{message}");
                    if let Err(e) = store
                        .record_error(
                            Some(&row.name),
                            ErrorComponent::Config,
                            &message,
                            Timestamp::now(),
                        )
                        .await
                    {
                        tracing::warn!("recording a database group's problem failed: {e:#}");
                    }
                }
                invalid.insert(row.name);
            }
        }
    }
    reported.keep_only(&invalid);
    tracing::debug!(groups = added, version, "database groups read");
    // The reload diff compares the text first: the rows' version is part of what was loaded.
    loaded
        .text
        .push_str(&format!("\n# database group rows: version {version}\n"));
    loaded.rows_version = Some(version);
    Ok(loaded)
}

/// The rows' change counter, or `None` (logged, at most every [`WARN_EVERY`]) when the store
/// cannot be read: polling never stops the engine.
pub(crate) async fn poll(store: &dyn Store, reported: &Reported) -> Option<i64> {
    match store.group_rows_version().await {
        Ok(v) => Some(v),
        Err(e) => {
            if let Ok(mut warned) = reported.warned.lock()
                && warned.is_none_or(|t| t.elapsed() >= WARN_EVERY)
            {
                *warned = Some(Instant::now());
                tracing::warn!(
                    "cannot read the database groups' version (retrying every second): {e:#}"
                );
            }
            None
        }
    }
}
