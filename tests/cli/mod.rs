//! Tests that drive the `scalepilot` command line.

mod bench;
mod decide;
mod demo;
mod groups;
mod limits;
mod migrate;
mod schema;
mod simulate;
mod token;
mod validate;

use std::io::Write;
use std::process::{Command, Stdio};

pub(crate) struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run the binary from the repository root with `args`.
pub(crate) fn run(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

pub(crate) fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scalepilot"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scalepilot");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("wait for scalepilot");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run and require exit 0.
pub(crate) fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert_eq!(
        out.code,
        Some(0),
        "scalepilot {args:?} failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}
