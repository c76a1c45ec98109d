//! `scalepilot validate` on malformed configs: each must fail with exactly these problems
//! (file:line:column, field path, what was expected), in file order.

use super::{run, run_ok};

/// (file under tests/configs/invalid without `.yaml`, every expected problem line after the
/// file name).
const CASES: &[(&str, &[&str])] = &[
    (
        "predictive-problems",
        &[
            ":6:9: groups[0].strategies[0]: set one service objective: `baseline_target_pct`/`baseline_unserved_factor`, `max_unserved_pct` or `coverage_pct`",
            ":8:9: groups[0].strategies[0].capacity_per_replica: capacity_per_replica must be greater than 0, got 0",
            ":11:30: groups[0].strategies[0].seasonality[1]: unknown season `monthly`: expected `daily` or `weekly`",
            ":12:9: groups[0].strategies[0].resolution: resolution 7m must be a whole number of seconds that divides a day (e.g. 1m, 5m, 15m, 1h)",
            ":13:9: groups[0].strategies[0].timezone: unknown time zone `Mars/Olympus` (expected an IANA name such as \"Asia/Dhaka\" or \"America/New_York\")",
            ":14:9: groups[0].strategies[0].cold_start_headroom: cold_start_headroom -1 is out of range: expected 0 to 10 (0.5 = 50 %)",
            ":17:11: groups[0].strategies[0].warm_start.start: invalid time \"yesterday\": failed to parse four digit integer as year: invalid digit, expected 0-9 but got y (expected RFC 3339 such as \"2026-11-01T00:00:00Z\")",
        ],
    ),
    (
        "predictive-needs-capacity",
        &[
            ":10:9: groups[0].strategies[0].capacity_per_replica: missing capacity_per_replica: how much of the metric one replica serves (only groups without a source, which simulate runs, may omit it)",
            ":12:9: groups[0].strategies[0].baseline_target_pct: baseline_target_pct 140 is out of range: expected more than 0, at most 100",
        ],
    ),
    (
        "budget-problems",
        &[
            ":2:3: budget.per_hour: expected an amount of 0 or more, got -5",
            ":12:7: groups[0].cost.price_per_replica_hour: price must be 0 or more, got -0.1",
            ":14:11: groups[0].cost.prices[0].hours: bad time `25:00` (expected HH:MM, 00:00 to 24:00)",
            ":16:7: groups[0].cost.budget: a budget needs `per_hour`, `per_month` or both",
        ],
    ),
    (
        "list-instead-of-mapping",
        &[":7:5: groups[0].behavior: expected a mapping or a single value, found a list"],
    ),
    (
        "two-documents",
        &[
            ":8:1: the file holds 2 YAML documents (separated by `---`): put the whole config in one",
        ],
    ),
    (
        "tolerance-unknown-direction",
        &[
            ":6:9: groups[0].strategies[0]: expected a number such as 0.1, or a mapping with `up` and/or `down`",
        ],
    ),
    (
        "alerts-and-store-problems",
        &[
            ":3:3: store.path: empty path",
            ":5:3: alerts.webhook: invalid URL \"hooks.example.com/scalepilot\": expected http:// or https://",
            ":6:20: alerts.events[1]: unknown event `paged`, expected one of `scaled`, `scale_failed`, `errors`, `config_rejected`, `budget`",
            ":8:3: engine.max_concurency: unknown field `max_concurency`, expected one of `max_concurrency`, `jitter`, `ha`, `lease_ttl`",
        ],
    ),
    (
        "bad-business-hours-day",
        &[
            ":9:13: groups[0].strategies[0].windows[0].business_hours: unknown day `Fry` (expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)",
        ],
    ),
    (
        "bad-business-hours-time",
        &[
            ":8:13: groups[0].strategies[0].windows[0].business_hours: bad time `9am` (expected HH:MM, 00:00 to 24:00)",
        ],
    ),
    (
        "bad-cron",
        &[
            ":8:13: groups[0].strategies[0].windows[0].cron: invalid cron expression \"0 25 * * *\": Component error: Number out of bounds.",
        ],
    ),
    (
        "bad-duration",
        &[
            ":11:9: groups[0].behavior.scale_down.stabilization: invalid duration \"5 mins please\": expected a duration such as \"90s\", \"5m\" or \"1h30m\"",
        ],
    ),
    (
        "bad-eval-interval",
        &[
            ":5:5: groups[0].evaluation_interval: evaluation_interval \"0s\" is out of range: expected 1s to 1h",
        ],
    ),
    (
        "bad-group-name",
        &[
            ":2:5: groups[0].name: invalid group name \"web tier\": use letters, digits, `-`, `_` and `.`",
        ],
    ),
    (
        "bad-indent",
        &[
            ":3:4: invalid YAML: while parsing a block collection, did not find expected '-' indicator",
        ],
    ),
    (
        "business-hours-only-bad-zone",
        &[
            ":11:9: groups[0].behavior.business_hours_only.timezone: unknown time zone `Europe/Nowhere` (expected an IANA name such as \"Asia/Dhaka\" or \"America/New_York\")",
        ],
    ),
    (
        "cron-without-duration",
        &[
            ":8:13: groups[0].strategies[0].windows[0]: a `cron` window needs a `duration` such as \"2h\"",
        ],
    ),
    (
        "duplicate-group-names",
        &[":9:5: groups[1].name: duplicate group name \"web\""],
    ),
    (
        "empty-file",
        &[": the file is empty: expected a mapping with `groups:`"],
    ),
    (
        "errors-in-three-places",
        &[
            ":11:9: groups[0].behavior.scale_up.cooldwon: unknown field `cooldwon`, expected one of `stabilization`, `policies`, `select`, `cooldown`, `max_step`",
            ":13:5: groups[1].min: min 8 is greater than max 4",
            ":17:9: groups[1].strategies[0].timezone: unknown time zone `America/NewYork` (expected an IANA name such as \"Asia/Dhaka\" or \"America/New_York\")",
            ":20:13: groups[1].strategies[0].windows[0].min: min 2 is outside the group's range 8..=4",
        ],
    ),
    (
        "fallback-outside-range",
        &[
            ":10:28: groups[0].behavior.fallback.replicas: replicas 9 is outside the group's range 1..=3",
        ],
    ),
    (
        "min-confidence-out-of-range",
        &[
            ":9:9: groups[0].strategies[0].min_confidence: min_confidence 2 is out of range: expected 0 to 1",
        ],
    ),
    (
        "min-greater-than-max",
        &[":3:5: groups[0].min: min 5 is greater than max 3"],
    ),
    (
        "min-not-a-number",
        &[
            ":3:5: groups[0].min: invalid type: string \"two\", expected a whole number from 0 to 4294967295",
        ],
    ),
    ("missing-max", &[":2:5: groups[0]: missing field `max`"]),
    (
        "no-strategies",
        &[":5:5: groups[0].strategies: no strategies: expected at least one"],
    ),
    (
        "process-pool-bad-ports",
        &[
            ":8:7: groups[0].target.ports: invalid port range \"80-70\": expected \"FIRST-LAST\" with 1024 ≤ FIRST ≤ LAST ≤ 65535",
        ],
    ),
    (
        "process-pool-no-port-placeholder",
        &[":7:7: groups[0].target.command: the command must contain `{port}`"],
    ),
    (
        "prometheus-bad-url",
        &[
            ":7:7: groups[0].source.url: invalid URL \"127.0.0.1:9090\": expected http:// or https://",
        ],
    ),
    (
        "rate-policy-bad-type",
        &[
            ":12:14: groups[0].behavior.scale_up.policies[0].type: unknown policy type `replicas`, expected `pods` or `percent`",
        ],
    ),
    (
        "rate-policy-percent-down-over-100",
        &[
            ":12:29: groups[0].behavior.scale_down.policies[0].value: a scale-down percentage cannot exceed 100, got 150",
        ],
    ),
    (
        "select-unknown",
        &[
            ":11:9: groups[0].behavior.scale_down.select: unknown select `maximum`, expected one of `max`, `min`, `disabled`",
        ],
    ),
    (
        "target-and-per-replica",
        &[":6:9: groups[0].strategies[0]: set either `target` or `target_per_replica`, not both"],
    ),
    (
        "target-zero",
        &[
            ":8:9: groups[0].strategies[0].target_per_replica: target_per_replica must be greater than 0, got 0",
        ],
    ),
    (
        "threshold-bad-aggregation",
        &[
            ":9:13: groups[0].strategies[0].metrics[0].aggregation: unknown aggregation `median`, expected one of `avg`, `max`, `p95`",
        ],
    ),
    (
        "threshold-bad-percent-step",
        &[
            ":9:9: groups[0].strategies[0].scale_up_by: invalid step \"150 percent\": expected a replica count such as 2 or a percentage such as \"50%\"",
        ],
    ),
    (
        "threshold-lower-above-upper",
        &[":10:13: groups[0].strategies[0].metrics[0].lower: lower 80 must be below upper 50"],
    ),
    (
        "threshold-percent-out-of-range",
        &[
            ":9:9: groups[0].strategies[0].scale_up_by: percentage 5000% is out of range: expected more than 0% and at most 1000%",
        ],
    ),
    (
        "tolerance-down-out-of-range",
        &[
            ":9:30: groups[0].strategies[0].tolerance.down: tolerance -0.2 is out of range: expected 0 ≤ tolerance < 1 (0.1 = 10 %)",
        ],
    ),
    (
        "tolerance-out-of-range",
        &[
            ":9:9: groups[0].strategies[0].tolerance: tolerance 1.5 is out of range: expected 0 ≤ tolerance < 1 (0.1 = 10 %)",
        ],
    ),
    (
        "tolerance-wrong-shape",
        &[
            ":9:9: groups[0].strategies[0].tolerance: expected a mapping or a single value, found a list",
        ],
    ),
    (
        "two-typos-reported",
        &[
            ":5:5: groups[0].evaluation_intervall: unknown field `evaluation_intervall`, expected one of `name`, `min`, `max`, `evaluation_interval`, `strategies`, `behavior`, `dry_run`, `enabled`, `source`, `target`, `cost`",
            ":11:7: groups[0].behavior.cooldwn: unknown field `cooldwn`, expected one of `scale_up`, `scale_down`, `cooldown`, `fallback`, `business_hours_only`",
        ],
    ),
    (
        "typo-in-behavior",
        &[
            ":11:9: groups[0].behavior.scale_down.stabilisation: unknown field `stabilisation`, expected one of `stabilization`, `policies`, `select`, `cooldown`, `max_step`",
        ],
    ),
    (
        "unknown-group-field",
        &[
            ":5:5: groups[0].maxx: unknown field `maxx`, expected one of `name`, `min`, `max`, `evaluation_interval`, `strategies`, `behavior`, `dry_run`, `enabled`, `source`, `target`, `cost`",
        ],
    ),
    (
        "unknown-metric",
        &[
            ":12:9: groups[0].strategies[0].metric: unknown metric `cpu`: the group's source provides `request_rate`",
        ],
    ),
    (
        "unknown-source-kind",
        &[
            ":6:7: groups[0].source.kind: unknown variant `promethus`, expected one of `prometheus`, `http_json`, `prometheus_text`, `static`, `trace`",
        ],
    ),
    (
        "unknown-strategy-kind",
        &[
            ":6:9: groups[0].strategies[0].kind: unknown variant `target_trackin`, expected one of `target_tracking`, `threshold`, `schedule`, `predictive`, `cost`",
        ],
    ),
    (
        "unknown-timezone",
        &[
            ":7:9: groups[0].strategies[0].timezone: unknown time zone `Asia/Dhakka` (expected an IANA name such as \"Asia/Dhaka\" or \"America/New_York\")",
        ],
    ),
    (
        "unknown-top-level-field",
        &[
            ":1:1: group: unknown field `group`, expected one of `store`, `alerts`, `engine`, `budget`, `api`, `groups_from`, `groups`",
            ":1:1: groups: missing field `groups`: expected a list of scaling groups",
        ],
    ),
    (
        "window-outside-group-range",
        &[
            ":9:13: groups[0].strategies[0].windows[0].min: min 20 is outside the group's range 1..=10",
        ],
    ),
    (
        "window-replicas-and-min",
        &[
            ":9:13: groups[0].strategies[0].windows[0].replicas: `replicas` pins the count: do not combine it with `min`/`max`",
        ],
    ),
    (
        "out-of-range-values",
        &[
            ":4:3: store.sample_retention: sample_retention \"5000000d\" is out of range: expected more than 0s, at most 400d",
            ":7:3: alerts.timeout: timeout \"2h\" is out of range: expected more than 0s, at most 10m",
            ":8:3: alerts.attempts: attempts 1000 is out of range: expected 1 to 20",
            ":10:3: engine.max_concurrency: max_concurrency 1000000 is out of range: expected 1 to 10000",
            ":14:5: groups[0].max: max 5000000 is out of range: expected 1 to 100000",
            ":15:5: groups[0].evaluation_interval: evaluation_interval \"1ms\" is out of range: expected 1s to 1h",
            ":19:9: groups[0].strategies[0].target_per_replica: target_per_replica 1e300 is out of range: expected more than 0, at most 1e12",
            ":21:7: groups[0].behavior.cooldown: cooldown \"5000000d\" is out of range: expected 0s to 1d",
            ":23:9: groups[0].behavior.scale_down.stabilization: stabilization \"2h\" is out of range: expected 0s to 1h",
            ":25:26: groups[0].behavior.scale_down.policies[0].value: value 1000000 is out of range: expected 1 to 100000",
            ":25:42: groups[0].behavior.scale_down.policies[0].period: period \"1h\" is out of range: expected more than 0s, at most 30m",
        ],
    ),
    (
        "group-name-too-long",
        &[
            ":2:5: groups[0].name: group name is 250 characters long: expected 1 to 63 characters",
            ":7:5: groups[1].name: invalid group name \"-web\": a group name starts with a letter or a digit",
        ],
    ),
    (
        "url-unclosed-ipv6",
        &[
            ":7:7: groups[0].source.url: invalid URL \"http://[::1\": unclosed `[`: an IPv6 address is written as [::1]",
        ],
    ),
    (
        "target-kind-not-implemented",
        &[
            ":8:7: groups[0].target.kind: target kind `compose` is not implemented yet (planned); implemented kinds: process_pool, haproxy, command",
        ],
    ),
    (
        "least-loaded-without-load-signal",
        &[
            ":14:7: groups[0].target.scale_in: `least_loaded` has no load to read: set `load_metric` to a metric every instance serves on /metrics (`backend_in_flight` for `scalepilot backend`), give the group a `prometheus_text` source, or use `lifo`",
        ],
    ),
    (
        "yaml-syntax-error",
        &[":5:1: invalid YAML: while parsing a flow sequence, expected ',' or ']'"],
    ),
];

#[test]
fn every_malformed_config_fails_with_its_messages() {
    let mut failures = Vec::new();
    for (name, expected) in CASES {
        let file = format!("tests/configs/invalid/{name}.yaml");
        let out = run(&["validate", &file]);
        if out.code != Some(1) {
            failures.push(format!("{name}: exit code {:?}, want 1", out.code));
            continue;
        }
        let got: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.ends_with("problem(s)"))
            .map(|l| l.strip_prefix(file.as_str()).unwrap_or(l))
            .collect();
        if got != *expected {
            failures.push(format!("{name}:\n  got  {got:?}\n  want {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_case_file_is_listed() {
    let mut files: Vec<String> = std::fs::read_dir("tests/configs/invalid")
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".yaml")
                .to_string()
        })
        .collect();
    files.sort();
    let mut listed: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert!(listed.len() >= 25);
}

#[test]
fn shipped_examples_are_valid() {
    for entry in std::fs::read_dir("examples/policies").unwrap() {
        let path = entry.unwrap().path();
        let out = run_ok(&["validate", path.to_str().unwrap()]);
        assert!(out.stdout.contains(": ok ("), "{}", out.stdout);
    }
}

#[test]
fn unreadable_file_fails() {
    let out = run(&["validate", "tests/configs/does-not-exist.yaml"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("cannot read"), "{}", out.stderr);
}

/// A big file's summary names its first ten groups and counts the rest (100,000 names on
/// one line helped nobody).
#[test]
fn a_big_file_lists_ten_group_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("groups:\n");
    for i in 0..12 {
        text.push_str(&format!(
            "  - {{name: g{i:02}, min: 1, max: 2, strategies: [{{kind: target_tracking, metric: request_rate, target_per_replica: 10}}]}}\n"
        ));
    }
    let file = dir.path().join("big.yaml");
    std::fs::write(&file, text).unwrap();
    let out = run_ok(&["validate", file.to_str().unwrap()]);
    assert!(
        out.stdout.contains(
            "(12 groups: g00, g01, g02, g03, g04, g05, g06, g07, g08, g09, … and 2 more)"
        ),
        "{}",
        out.stdout
    );
}
