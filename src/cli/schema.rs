//! `scalepilot schema [--decide-input]`

use std::process::ExitCode;

use anyhow::Result;
use scalepilot_core::config::raw::ConfigFile;

use super::decide::DecideInput;

/// Print the JSON Schema of the policy config (for editors), or of `decide`'s input.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print the schema of the `scalepilot decide --input` JSON instead.
    #[arg(long)]
    decide_input: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let schema = if args.decide_input {
        schemars::schema_for!(DecideInput)
    } else {
        schemars::schema_for!(ConfigFile)
    };
    super::emit(&serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
