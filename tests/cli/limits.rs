//! Files read whole have size limits: `/dev/zero` (endless) as a config, a `decide` input, a
//! trace or a warm-start trace is refused with an error naming the file and the limit,
//! instead of being read until memory runs out.

use super::run;

fn refused(args: &[&str], want: &str) {
    let out = run(args);
    assert_eq!(
        out.code,
        Some(1),
        "{args:?}: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains(want),
        "{args:?}: want {want:?} in:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn a_config_is_at_most_16_mib() {
    let want = "config /dev/zero is larger than the 16 MiB limit for a config file";
    refused(&["validate", "/dev/zero"], want);
    refused(&["decide", "--config", "/dev/zero", "--input", "-"], want);
    refused(
        &[
            "simulate",
            "--trace",
            "traces/nab_nyc_taxi",
            "--config",
            "/dev/zero",
        ],
        want,
    );
    refused(&["once", "--config", "/dev/zero"], want);
}

#[test]
fn a_decide_input_is_at_most_16_mib() {
    refused(
        &[
            "decide",
            "--config",
            "tests/configs/priced.yaml",
            "--input",
            "/dev/zero",
        ],
        "input /dev/zero is larger than the 16 MiB limit for an input file",
    );
}

#[test]
fn traces_are_at_most_256_mib() {
    let want = "trace /dev/zero is larger than the 256 MiB limit for a trace file";
    refused(&["simulate", "--trace", "/dev/zero"], want);
    // A warm start read by simulate (and by the engine: the same function).
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("warm.yaml");
    std::fs::write(
        &cfg,
        std::fs::read_to_string("tests/configs/warm-start.yaml")
            .unwrap()
            .replace("taxi-first-2-weeks.csv", "/dev/zero"),
    )
    .unwrap();
    refused(
        &[
            "simulate",
            "--trace",
            "traces/nab_nyc_taxi",
            "--config",
            cfg.to_str().unwrap(),
        ],
        want,
    );
}
