//! `scalepilot demo | head`: a closed standard output ends the demo cleanly (its pool
//! stopped), never with a panic.

use std::process::{Command, Stdio};

/// Ports of this test's pool: not the built-in policy's 24100-24199, which the engine's
/// demo test checks for leftovers while this one may run.
const PORTS: (u16, u16) = (24300, 24349);

#[test]
fn demo_piped_into_head_stops_without_a_panic() {
    let bin = env!("CARGO_BIN_EXE_scalepilot");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("demo.yaml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/policies/demo.yaml"
    ))
    .unwrap();
    assert!(text.contains("ports: 24100-24199"), "{text}");
    std::fs::write(
        &policy,
        text.replace(
            "ports: 24100-24199",
            &format!("ports: {}-{}", PORTS.0, PORTS.1),
        ),
    )
    .unwrap();
    // head exits after three lines; the demo's next write then meets a closed pipe.
    // pipefail: the status is the demo's own (a panic exits 101).
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{bin}' demo --duration 10s --policy '{}' | head -n 3",
            policy.display()
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
    // It stopped as on Ctrl-C: its pool is gone.
    assert!(
        crate::engine::backend_pids(PORTS).is_empty(),
        "the demo left instances running"
    );
}
