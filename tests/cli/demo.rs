//! `scalepilot demo | head`: a closed standard output ends the demo cleanly (its pool
//! stopped), never with a panic.

use std::process::{Command, Stdio};

#[test]
fn demo_piped_into_head_stops_without_a_panic() {
    let bin = env!("CARGO_BIN_EXE_scalepilot");
    // head exits after three lines; the demo's next write then meets a closed pipe.
    // pipefail: the status is the demo's own (a panic exits 101).
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{bin}' demo --duration 10s | head -n 3"
        ))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.lines().count(), 3, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("scalepilot demo:"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}
