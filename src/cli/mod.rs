//! Subcommands. Each file holds one command's arguments and its run function.

mod backend;
mod bench;
mod bench_api;
mod bench_engine;
mod decide;
mod demo;
mod groups;
mod history;
mod load;
mod migrate;
mod run;
mod schema;
pub(crate) mod simulate;
mod sweep;
pub(crate) mod token;

mod validate;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use scalepilot_core::config::{self, Config};
use scalepilot_engine::limits;

/// scalepilot: a self-hosted autoscaler. Write a scaling policy in YAML, check it, ask it what
/// it would do, and replay real traffic traces through it before it goes live.
#[derive(Debug, Parser)]
#[command(name = "scalepilot", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::Args),
    Schema(schema::Args),
    Decide(decide::Args),
    Simulate(simulate::Args),
    Bench(bench::Args),
    Backend(backend::Args),
    Run(run::RunArgs),
    Once(run::OnceArgs),
    History(history::Args),
    Migrate(migrate::Args),
    Groups(groups::Args),
    Load(load::Args),
    Demo(demo::Args),
    Token(token::Args),
}

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Decide(a) => decide::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Backend(a) => backend::run(a),
        Command::Run(a) => run::run(a),
        Command::Once(a) => run::once(a),
        Command::History(a) => history::run(a),
        Command::Migrate(a) => migrate::run(a),
        Command::Groups(a) => groups::run(a),
        Command::Load(a) => load::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Token(a) => token::run(a),
    }
}

/// Print to stdout; a closed pipe (`scalepilot … | head`) ends the program quietly instead
/// of panicking like `println!`.
pub(crate) fn emit(text: &str) {
    if !try_emit(text) {
        std::process::exit(0);
    }
}

/// Print a line to stdout; false when stdout is closed (the reader, `head` say, has gone), so
/// a long-running command (the demo) can stop cleanly, its processes included, instead of
/// exiting on the spot. Other write errors end the program with an error.
pub(crate) fn try_emit(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// Read and validate a config file; problems come back as one error listing all of them.
fn load_config(path: &Path) -> Result<Config> {
    let text = read_config_text(path)?;
    Ok(config::parse(&text, &path.display().to_string())?)
}

/// A config file's text, at most [`limits::CONFIG_LIMIT`] bytes.
fn read_config_text(path: &Path) -> Result<String> {
    limits::read_to_string(path, limits::CONFIG_LIMIT, "config")
}

/// A trace CSV's text, at most [`limits::TRACE_LIMIT`] bytes.
fn read_trace_text(path: &Path) -> Result<String> {
    limits::read_to_string(path, limits::TRACE_LIMIT, "trace")
}

/// Seconds from "90", "90s", "5m", "28d".
fn parse_seconds(s: &str) -> std::result::Result<i64, String> {
    if let Ok(n) = s.trim().parse::<i64>() {
        return if n >= 0 {
            Ok(n)
        } else {
            Err(format!("{s} is negative"))
        };
    }
    let d = scalepilot_core::duration::parse(s)?;
    if d.is_negative() {
        return Err(format!("{s} is negative"));
    }
    if d.subsec_nanos() != 0 {
        return Err(format!("{s}: whole seconds only"));
    }
    Ok(d.as_secs())
}
