//! A 10× load step scales a pool of real backends out; the new instances serve; the drop
//! scales it in, draining first, without a single failed request.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    BIN, Daemon, activities, backend_pids, counter, endpoints, load_summary, start_load,
    step_trace, wait_until,
};

const PORTS: (u16, u16) = (25000, 25019);

fn load(dir: &std::path::Path, trace: &std::path::Path) -> std::process::Child {
    start_load(
        &[
            "--targets-file",
            dir.join("web.endpoints").to_str().unwrap(),
        ],
        trace,
    )
}

#[test]
fn load_step_scales_out_and_drop_scales_in_without_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = dir.join("scale.yaml");
    std::fs::write(
        &config,
        format!(
            r#"store: {{kind: sqlite, path: sp.db}}
groups:
  - name: web
    min: 1
    max: 8
    evaluation_interval: 1s
    source:
      kind: prometheus_text
      metrics: {{request_rate: rate(backend_received_total)}}
    target:
      kind: process_pool
      command: "{BIN} backend --port {{port}} --work-ms 20 --max-queue 5000"
      ports: {}-{}
      health_interval: 1s
      drain: 2s
      stop_on_exit: true
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 25}}
    behavior:
      scale_down: {{stabilization: 5s}}
"#,
            PORTS.0, PORTS.1
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(&config, PORTS, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || endpoints(dir, "web").len() == 1),
        "pool never served:\n{}",
        daemon.log()
    );
    let first = endpoints(dir, "web");

    // Phase A: 8 s at 10 req/s, then a 10× step held for 25 s.
    let up = dir.join("up.csv");
    step_trace(&up, &[(8, 10), (25, 100)]);
    let start = Instant::now();
    let step_at = start + Duration::from_secs(8);
    let a = load(dir, &up);
    let mut reaction: Option<Duration> = None;
    while start.elapsed() < Duration::from_secs(33) {
        if reaction.is_none() {
            for url in endpoints(dir, "web").iter().filter(|u| !first.contains(u)) {
                if counter(url, "backend_requests_total").unwrap_or(0.0) > 0.0 {
                    reaction = Some(Instant::now().saturating_duration_since(step_at));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let a = load_summary(a);
    let serving: Vec<String> = endpoints(dir, "web")
        .into_iter()
        .filter(|u| counter(u, "backend_requests_total").unwrap_or(0.0) > 0.0)
        .collect();
    assert!(
        serving.len() >= 3,
        "after the step, only {serving:?} served traffic\n{}",
        daemon.log()
    );
    let peak = endpoints(dir, "web").len();
    let acts = activities(&config);
    let ups: Vec<&Value> = acts
        .iter()
        .filter(|x| {
            x["to_replicas"].as_i64() > x["from_replicas"].as_i64() && x["status"] == "succeeded"
        })
        .collect();
    assert!(
        ups.iter().any(|x| x["to_replicas"].as_i64() >= Some(3)),
        "no scale-out: {acts:?}"
    );
    let reasons = ups[0]["decision"]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reasons.contains("target_tracking"), "{reasons}");
    let reaction = reaction.expect("no new instance served traffic");
    eprintln!(
        "reaction time (load step → first new instance serving): {:.2} s; phase A: {a}",
        reaction.as_secs_f64()
    );

    // Phase B: back to 10 req/s; the pool drains and shrinks while the load keeps going.
    let down = dir.join("down.csv");
    step_trace(&down, &[(25, 10)]);
    let b_start = jiff::Timestamp::now().as_millisecond();
    let b = load_summary(load(dir, &down));
    assert_eq!(
        b["failed"],
        0,
        "failed requests during scale-in: {b}\n{}",
        daemon.log()
    );
    assert!(b["ok"].as_u64().unwrap() >= 200, "{b}");
    let acts = activities(&config);
    let downs: Vec<&Value> = acts
        .iter()
        .filter(|x| {
            x["to_replicas"].as_i64() < x["from_replicas"].as_i64()
                && x["started_ms"].as_i64() > Some(b_start)
        })
        .collect();
    assert!(!downs.is_empty(), "no scale-in during the drop: {acts:?}");
    assert!(
        endpoints(dir, "web").len() < peak,
        "still {} endpoints",
        endpoints(dir, "web").len()
    );

    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert!(backend_pids(PORTS).is_empty(), "instances left running");
}
