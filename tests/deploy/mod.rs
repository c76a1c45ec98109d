//! deploy/grafana/scalepilot.json queries only metrics the daemon exports (read from a real
//! daemon's /metrics), with the type its queries assume (`_total` of a counter, `_bucket` of a
//! histogram), and shows every metric an operator needs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::engine::{Daemon, http_get, wait_until};

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/scalepilot.json"
);

/// The metrics the dashboard must show, as exported: (family, type).
const COVERED: &[(&str, &str)] = &[
    ("scalepilot_group_desired_replicas", "gauge"),
    ("scalepilot_group_current_replicas", "gauge"),
    ("scalepilot_group_ready_replicas", "gauge"),
    ("scalepilot_group_cost_per_hour", "gauge"),
    ("scalepilot_group_metric_value", "gauge"),
    ("scalepilot_group_forecast_value", "gauge"),
    ("scalepilot_budget_spend_per_hour", "gauge"),
    ("scalepilot_engine_enabled", "gauge"),
    ("scalepilot_groups", "gauge"),
    ("scalepilot_decisions", "counter"),
    ("scalepilot_scaling_actions", "counter"),
    ("scalepilot_source_errors", "counter"),
    ("scalepilot_target_errors", "counter"),
    ("scalepilot_alerts_sent", "counter"),
    ("scalepilot_alerts_dropped", "counter"),
    ("scalepilot_api_requests", "counter"),
    ("scalepilot_evaluation_duration_seconds", "histogram"),
    ("scalepilot_loop_lag_seconds", "histogram"),
    ("scalepilot_store_operation_duration_seconds", "histogram"),
    ("scalepilot_api_request_duration_seconds", "histogram"),
];

/// Every PromQL expression of the dashboard: panel targets' `expr` and the variables' queries.
fn expressions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition" | "query", Value::String(s)) => out.push(s.clone()),
                    _ => expressions(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| expressions(x, out)),
        _ => {}
    }
}

/// Every `scalepilot_[a-z_]+` name in `s`.
fn metric_names(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("scalepilot_") {
        // Not the tail of a longer identifier.
        let before = rest[..i].chars().next_back();
        let tail = &rest[i..];
        let len = tail
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_lowercase() || c == '_'))
            .map_or(tail.len(), |(j, _)| j);
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.push(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    names
}

/// A queried series name as (family, the type the query needs): `x_bucket`/`_sum`/`_count` →
/// (x, histogram), `x_total` → (x, counter), else (x, gauge).
fn family(name: &str) -> (String, &'static str) {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(f) = name.strip_suffix(suffix) {
            return (f.to_string(), "histogram");
        }
    }
    if let Some(f) = name.strip_suffix("_total") {
        return (f.to_string(), "counter");
    }
    (name.to_string(), "gauge")
}

/// The families in a text exposition: `# TYPE name type` lines.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// Every family the daemon exports, with its type. prometheus-client prints a labelled
/// family only once it has a series, so besides `Metrics::new()` (the unlabelled ones) this
/// runs the real daemon with groups that produce every kind of series — a priced group with a
/// forecast that scales, one whose target fails, one whose source cannot be reached — and
/// reads its /metrics until every family the dashboard needs is there.
fn exported() -> BTreeMap<String, String> {
    let mut all = families(&scalepilot_engine::metrics::Metrics::new().encode());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = free_port();
    let closed = free_port();
    let config = dir.join("scalepilot.yaml");
    std::fs::write(
        &config,
        format!(
            r#"store: {{kind: sqlite, path: "{db}"}}
api: {{listen: "127.0.0.1:{port}"}}
groups:
  - name: web
    min: 1
    max: 10
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 20}}}}
    target: {{kind: command, command: "echo $SCALEPILOT_DESIRED > {out}"}}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 5}}
      - {{kind: predictive, metric: request_rate, capacity_per_replica: 5, startup: 2s, forecast_only: true}}
    cost: {{price_per_replica_hour: 0.10}}
  - name: failing
    min: 1
    max: 10
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 20}}}}
    target: {{kind: command, command: "exit 3"}}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 5}}
  - name: blind
    min: 1
    max: 10
    evaluation_interval: 1s
    source: {{kind: http_json, url: "http://127.0.0.1:{closed}/", metrics: {{request_rate: /qps}}, timeout: 1s}}
    target: {{kind: command, command: "true"}}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 5}}
"#,
            db = dir.join("sp.db").display(),
            out = dir.join("web.txt").display(),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config, (0, 0), &[]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut live = BTreeMap::new();
    // A bound on waiting for the first evaluations, not a timing under test.
    let complete = wait_until(Duration::from_secs(60), || {
        // An API request of its own, so the API's families have a series too.
        let _ = http_get(&format!("http://127.0.0.1:{port}/healthz"));
        live = http_get(&url).map(|t| families(&t)).unwrap_or_default();
        COVERED.iter().all(|(f, _)| live.contains_key(*f))
    });
    let missing: Vec<&str> = COVERED
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| !live.contains_key(*f))
        .collect();
    assert!(
        complete,
        "{url} never listed {missing:?}; it listed {live:?}\n--- daemon log\n{}",
        daemon.log()
    );
    drop(daemon);
    all.extend(live);
    all
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    serde_json::from_str(&text).expect("deploy/grafana/scalepilot.json is not JSON")
}

#[test]
fn the_name_scanner_finds_names_and_families() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(scalepilot_loop_lag_seconds_bucket{group=~"$group"}[5m]))) / scalepilot_groups"#
        ),
        ["scalepilot_loop_lag_seconds_bucket", "scalepilot_groups"]
    );
    assert!(metric_names("my_scalepilot_x + notscalepilot_y").is_empty());
    assert_eq!(
        family("scalepilot_decisions_total"),
        ("scalepilot_decisions".to_string(), "counter")
    );
    assert_eq!(
        family("scalepilot_loop_lag_seconds_count"),
        ("scalepilot_loop_lag_seconds".to_string(), "histogram")
    );
    assert_eq!(
        family("scalepilot_groups"),
        ("scalepilot_groups".to_string(), "gauge")
    );
}

#[test]
fn the_grafana_dashboard_queries_only_exported_metrics() {
    let dash = dashboard();
    assert!(dash["schemaVersion"].as_u64().unwrap_or(0) >= 39);
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        vars.contains(&"datasource") && vars.contains(&"group"),
        "{vars:?}"
    );

    let mut exprs = Vec::new();
    expressions(&dash, &mut exprs);
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert!(
        queried.len() >= 20,
        "too few metric names found: {queried:?}"
    );

    let exported = exported();
    let mut wrong = Vec::new();
    for name in &queried {
        let (fam, ty) = family(name);
        match exported.get(&fam) {
            Some(t) if t == ty => {}
            Some(t) => wrong.push(format!("{name}: queried as a {ty}, exported as a {t}")),
            None => wrong.push(format!("{name}: no family {fam} is exported")),
        }
    }
    assert!(
        wrong.is_empty(),
        "deploy/grafana/scalepilot.json queries metrics the daemon does not export:\n{}",
        wrong.join("\n")
    );

    // The reverse: every metric an operator needs is on the dashboard, and exported as listed.
    let families: BTreeSet<(String, &str)> = queried.iter().map(|n| family(n)).collect();
    for &(fam, ty) in COVERED {
        assert_eq!(
            exported.get(fam).map(String::as_str),
            Some(ty),
            "{fam} is not exported as a {ty}"
        );
        assert!(
            families.contains(&(fam.to_string(), ty)),
            "deploy/grafana/scalepilot.json does not show {fam} ({ty})"
        );
    }
}
