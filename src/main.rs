//! The `scalepilot` command line: a thin layer over `scalepilot-core`.

mod api;
mod backend;
mod chart;
mod cli;
mod load;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // Print the whole cause chain: the outermost context names what was being done.
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
