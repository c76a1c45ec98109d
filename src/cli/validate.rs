//! `scalepilot validate FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use scalepilot_core::config;

/// Check policy files: exit 0 when all are valid, else print every problem
/// (file:line:column: field.path: what was expected) and exit 1.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Config files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let mut ok = true;
    for path in &args.files {
        let name = path.display().to_string();
        let text = match super::read_config_text(path) {
            Ok(t) => t,
            Err(e) => {
                // The error names the file ("cannot read config NAME: …", "… is larger than").
                eprintln!("{e:#}");
                ok = false;
                continue;
            }
        };
        match config::parse(&text, &name) {
            Ok(c) => super::emit(&format!(
                "{name}: ok ({} groups: {})",
                c.groups.len(),
                names_shown(&c.group_names())
            )),
            Err(e) => {
                ok = false;
                eprintln!("{e}");
                eprintln!("{name}: {} problem(s)", e.problems.len());
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Group names for the summary line: all of a small file's, the first ten of a big one's.
fn names_shown(names: &[&str]) -> String {
    const SHOWN: usize = 10;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{}, … and {} more",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}
