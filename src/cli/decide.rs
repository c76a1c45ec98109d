//! `scalepilot decide --config FILE --group NAME --input STATE.json`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use jiff::Timestamp;
use scalepilot_core::{GroupState, Observation, decide};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Run one decision offline: "what would you do now, and why?". Prints the decision (desired
/// replicas, each strategy's recommendation and reason, the rules that limited it) and the new
/// state as JSON. The input format: `scalepilot schema --decide-input`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Policy file.
    #[arg(long)]
    config: PathBuf,
    /// Group to decide for (optional when the file has one group).
    #[arg(long)]
    group: Option<String>,
    /// Input JSON: now, observation and state. `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
}

/// Input of `scalepilot decide`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecideInput {
    /// Evaluation time, RFC 3339 (e.g. "2026-11-23T09:00:00Z").
    #[schemars(with = "String")]
    now: Timestamp,
    /// What the sources and target report.
    observation: Observation,
    /// The group's state from the previous decision (omit for a fresh group).
    #[serde(default)]
    state: GroupState,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let config = super::load_config(&args.config)?;
    let group = match &args.group {
        Some(name) => config.group(name).ok_or_else(|| {
            anyhow!(
                "no group `{name}` in {}: it has {}",
                args.config.display(),
                config.group_names().join(", ")
            )
        })?,
        None if config.groups.len() == 1 => &config.groups[0],
        None => {
            return Err(anyhow!(
                "{} has several groups ({}): pick one with --group",
                args.config.display(),
                config.group_names().join(", ")
            ));
        }
    };
    use scalepilot_engine::limits::{DECIDE_INPUT_LIMIT, read_limited, read_to_string};
    let (text, name) = if args.input.as_os_str() == "-" {
        let name = "<stdin>".to_string();
        let text = read_limited(std::io::stdin(), DECIDE_INPUT_LIMIT, &name, "input")?;
        (text, name)
    } else {
        (
            read_to_string(&args.input, DECIDE_INPUT_LIMIT, "input")?,
            args.input.display().to_string(),
        )
    };
    let de = &mut serde_json::Deserializer::from_str(&text);
    let input: DecideInput = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        anyhow!("{name}: invalid input at `{path}`: {}", e.into_inner())
    })?;
    let mut state = input.state;
    let decision = decide(group, &input.observation, &mut state, input.now);
    let out = serde_json::json!({
        "decision": decision,
        "summary": decision.summary(),
        "state": state,
    });
    super::emit(&serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
