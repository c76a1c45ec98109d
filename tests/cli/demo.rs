//! `scalepilot demo | head`: a closed standard output ends the demo cleanly (its pool
//! stopped), never with a panic. While it runs, its REST API answers the viewer token it
//! printed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Ports of this test's pool: not the built-in policy's 24100-24199, which the engine's
/// demo test checks for leftovers while this one may run.
const PORTS: (u16, u16) = (24300, 24349);

/// Ports of the API test's pool (the two tests may run at once).
const API_PORTS: (u16, u16) = (24350, 24399);

/// The built-in demo policy with its pool on `ports`, written into `dir`.
fn policy(dir: &Path, ports: (u16, u16)) -> std::path::PathBuf {
    let policy = dir.join("demo.yaml");
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
            &format!("ports: {}-{}", ports.0, ports.1),
        ),
    )
    .unwrap();
    policy
}

#[test]
fn demo_piped_into_head_stops_without_a_panic() {
    let bin = env!("CARGO_BIN_EXE_scalepilot");
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), PORTS);
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

/// The value after `prefix` on the first line of `lines` that starts with it.
fn field<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:#?}"))
}

#[test]
fn demo_serves_the_api_to_the_viewer_token_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), API_PORTS);
    let mut child = Command::new(env!("CARGO_BIN_EXE_scalepilot"))
        .args(["demo", "--duration", "60s", "--policy"])
        .arg(&policy)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The header, the dashboard's URL and the two tokens come first.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.starts_with("operator token:"))
    {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the demo ended early: {lines:#?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lines.push(line.trim_end().to_string());
    }
    let url = field(&lines, "dashboard:")
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{lines:#?}");
    let viewer = field(&lines, "viewer token:").to_string();
    let operator = field(&lines, "operator token:").to_string();
    assert!(viewer.starts_with("sp_") && operator.starts_with("sp_") && viewer != operator);

    let answers = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let http = reqwest::Client::new();
            let get = |token: Option<&str>| {
                let mut req = http.get(format!("{url}/api/v1/groups"));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                async move {
                    let resp = req.send().await.unwrap();
                    (resp.status().as_u16(), resp.text().await.unwrap())
                }
            };
            (
                get(Some(&viewer)).await,
                get(None).await,
                get(Some("sp_wrong")).await,
            )
        });
    // Stop it as Ctrl-C would, before any assertion can leave it running.
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);

    let ((status, body), (anonymous, _), (wrong, _)) = answers;
    assert_eq!(status, 200, "{body}");
    let groups: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"], "{body}");
    assert_eq!((anonymous, wrong), (401, 401));
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        crate::engine::backend_pids(API_PORTS).is_empty(),
        "the demo left instances running"
    );
}

#[test]
fn a_bad_api_address_is_refused_before_the_demo_starts() {
    let out = super::run(&["demo", "--api-listen", "example.com:80"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.starts_with("error: invalid value 'example.com:80' for '--api-listen <API_LISTEN>': \"example.com:80\": `example.com` is not an IP address"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}
