//! Inputs that validated and then crashed or misbehaved the daemon (fault campaign): ranges,
//! group names, URLs, unimplemented target kinds, the scale-in load signal, enums.

use super::*;

const GROUP: &str = "groups:\n  - name: web\n    min: 1\n    max: 10\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 50}\n";

/// Every problem line (without the file name) of a config that must fail.
fn problems(text: &str) -> Vec<String> {
    match parse(text, "") {
        Ok(_) => panic!("validated:\n{text}"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

/// The single problem (path: message, without the position) of `GROUP` with `extra` added
/// to the group.
fn problem(extra: &str) -> String {
    let p = problems(&format!("{GROUP}{extra}"));
    assert_eq!(p.len(), 1, "{extra}: {p:?}");
    // ":LINE:COL: path: message" → "path: message"
    p[0].splitn(4, ':')
        .nth(3)
        .unwrap_or_default()
        .trim_start()
        .to_string()
}

/// Check each (extra group YAML, expected "path: message").
fn check(cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(extra, want)| {
            let got = problem(extra);
            (got != *want).then(|| format!("{extra}\n  got  {got}\n  want {want}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn out_of_range_values_fail_with_the_field_and_its_range() {
    let text = include_str!("../../../../tests/configs/invalid/out-of-range-values.yaml");
    assert_eq!(
        problems(text),
        [
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
        ]
    );
}

#[test]
fn every_duration_has_a_range() {
    let pool = "    target:\n      kind: process_pool\n      command: x --port {port}\n      ports: 20000-20010\n";
    let cases: &[(&str, &str)] = &[
        (
            "    evaluation_interval: 2h\n",
            "groups[0].evaluation_interval: evaluation_interval \"2h\" is out of range: expected 1s to 1h",
        ),
        (
            "    behavior:\n      scale_up: {cooldown: 8d}\n",
            "groups[0].behavior.scale_up.cooldown: cooldown \"8d\" is out of range: expected 0s to 1d",
        ),
        (
            "    source: {kind: prometheus, url: \"http://p:9090\", queries: {request_rate: up}, timeout: 1h}\n",
            "groups[0].source.timeout: timeout \"1h\" is out of range: expected more than 0s, at most 10m",
        ),
        (
            "    source: {kind: http_json, url: \"http://p:9090\", metrics: {request_rate: /x}, timeout: 0s}\n",
            "groups[0].source.timeout: timeout \"0s\" is out of range: expected more than 0s, at most 10m",
        ),
        (
            &format!("{pool}      health_interval: 1ms\n"),
            "groups[0].target.health_interval: health_interval \"1ms\" is out of range: expected 100ms to 1h",
        ),
        (
            &format!("{pool}      drain: 2h\n"),
            "groups[0].target.drain: drain \"2h\" is out of range: expected 0s to 1h",
        ),
        (
            "    target: {kind: command, command: x, timeout: 2h}\n",
            "groups[0].target.timeout: timeout \"2h\" is out of range: expected more than 0s, at most 1h",
        ),
        (
            "    target:\n      kind: haproxy\n      backend: b\n      admin_socket: /run/h.sock\n      drain_timeout: 5000000d\n      pool: {command: \"x --port {port}\", ports: 20000-20010}\n",
            "groups[0].target.drain_timeout: drain_timeout \"5000000d\" is out of range: expected more than 0s, at most 1h",
        ),
    ];
    check(cases);
}

#[test]
fn every_number_has_a_range() {
    let pool = "    target:\n      kind: process_pool\n      command: x --port {port}\n      ports: 20000-20010\n";
    let cases: &[(&str, &str)] = &[
        (
            "    behavior:\n      scale_up: {max_step: 200000}\n",
            "groups[0].behavior.scale_up.max_step: max_step 200000 is out of range: expected 1 to 100000",
        ),
        (
            "    behavior:\n      scale_up:\n        policies: [{type: percent, value: 20000, period: 15s}]\n",
            "groups[0].behavior.scale_up.policies[0].value: value 20000 is out of range: expected 1 to 10000",
        ),
        (
            "    behavior:\n      fallback: {after: 20000, replicas: 2}\n",
            "groups[0].behavior.fallback.after: after 20000 is out of range: expected 1 to 10000",
        ),
        (
            "    source: {kind: static, values: {request_rate: 1e300}}\n",
            "groups[0].source.values.request_rate: request_rate 1e300 is out of range: expected -1e12 to 1e12",
        ),
        (
            "    source: {kind: trace, file: t.csv, from: 99999999999}\n",
            "groups[0].source.from: from 99999999999 is out of range: expected 0 to 3153600000 (trace seconds)",
        ),
        (
            "    source: {kind: trace, file: t.csv, speedup: 1e9}\n",
            "groups[0].source.speedup: speedup 1e9 is out of range: expected more than 0, at most 1e6",
        ),
        (
            "    source: {kind: trace, file: t.csv, scale: 1e9}\n",
            "groups[0].source.scale: scale 1e9 is out of range: expected more than 0, at most 1e6",
        ),
        (
            "    source: {kind: trace, file: t.csv, capacity_per_replica: 1e-300}\n",
            "groups[0].source.capacity_per_replica: capacity_per_replica 1e-300 is out of range: expected 1e-6 to 1e12",
        ),
        (
            &format!("{pool}      unhealthy_after: 100000\n"),
            "groups[0].target.unhealthy_after: unhealthy_after 100000 is out of range: expected 1 to 10000",
        ),
        (
            &format!("{pool}      hosts: [{{address: 127.0.0.1, max: 4000000000}}]\n"),
            "groups[0].target.hosts[0].max: max 4000000000 is out of range: expected 1 to 100000",
        ),
        (
            "    cost: {price_per_replica_hour: 1e300}\n",
            "groups[0].cost.price_per_replica_hour: price_per_replica_hour 1e300 is out of range: expected 0 to 1e6",
        ),
        (
            "    cost:\n      price_per_replica_hour: 1\n      budget: {per_month: 1e13}\n",
            "groups[0].cost.budget.per_month: per_month 1e13 is out of range: expected 0 to 1e12",
        ),
    ];
    check(cases);
    // Two problems in one: min_replicas too.
    let p = problems(&format!(
        "{GROUP}    cost:\n      price_per_replica_hour: 1\n      budget: {{per_hour: 5, min_replicas: 4000000000}}\n"
    ));
    assert!(
        p[0].ends_with("groups[0].cost.budget.min_replicas: min_replicas 4000000000 is out of range: expected 0 to 100000"),
        "{p:?}"
    );
}

#[test]
fn strategy_numbers_and_durations_have_ranges() {
    let strategy = |s: &str| {
        format!("groups:\n  - name: web\n    min: 1\n    max: 10\n    strategies:\n      - {s}\n")
    };
    let cases = [
        (
            "{kind: target_tracking, metric: request_rate, target: 1e13}",
            "groups[0].strategies[0].target: target 1e13 is out of range: expected more than 0, at most 1e12",
        ),
        (
            "{kind: cost, metric: request_rate, capacity_per_replica: 1e300}",
            "groups[0].strategies[0].capacity_per_replica: capacity_per_replica 1e300 is out of range: expected 1e-6 to 1e12",
        ),
        (
            "{kind: cost, metric: request_rate, startup: 2d}",
            "groups[0].strategies[0].startup: startup \"2d\" is out of range: expected 0s to 1d",
        ),
        (
            "{kind: cost, metric: request_rate, history: 5000000d}",
            "groups[0].strategies[0].history: history \"5000000d\" is out of range: expected more than 0s, at most 90d",
        ),
        (
            "{kind: cost, metric: request_rate, baseline_unserved_factor: 1e9}",
            "groups[0].strategies[0].baseline_unserved_factor: baseline_unserved_factor 1e9 is out of range: expected 0 to 1000",
        ),
        (
            "{kind: threshold, metrics: [{metric: request_rate, upper: 10, window: 10000d}]}",
            "groups[0].strategies[0].metrics[0].window: window \"10000d\" is out of range: expected 0s to 1h",
        ),
        (
            "{kind: threshold, metrics: [{metric: request_rate, upper: 1e300}]}",
            "groups[0].strategies[0].metrics[0].upper: upper 1e300 is out of range: expected -1e12 to 1e12",
        ),
        (
            "{kind: threshold, metrics: [{metric: request_rate, upper: 10, weight: 1e300}]}",
            "groups[0].strategies[0].metrics[0].weight: weight 1e300 is out of range: expected more than 0, at most 1e6",
        ),
        (
            "{kind: schedule, windows: [{cron: \"0 8 * * *\", duration: 30d, min: 2}]}",
            "groups[0].strategies[0].windows[0].duration: duration \"30d\" is out of range: expected more than 0s, at most 7d",
        ),
        (
            "{kind: predictive, metric: request_rate, warm_start: {trace: t.csv, start: \"2026-11-01T00:00:00Z\", step: 1000000}}",
            "groups[0].strategies[0].warm_start.step: step 1000000 is out of range: expected 1 to 86400",
        ),
        (
            "{kind: predictive, metric: request_rate, warm_start: {trace: t.csv, start: \"2026-11-01T00:00:00Z\", scale: 1e300}}",
            "groups[0].strategies[0].warm_start.scale: scale 1e300 is out of range: expected more than 0, at most 1e6",
        ),
    ];
    for (s, want) in cases {
        let p = problems(&strategy(s));
        assert_eq!(p.len(), 1, "{s}: {p:?}");
        assert!(p[0].ends_with(want), "{s}\n  got  {}\n  want {want}", p[0]);
    }
}

#[test]
fn the_largest_allowed_values_validate() {
    let text = "store: {kind: sqlite, path: x.db, sample_retention: 400d}\nalerts: {webhook: \"https://h.example.com/x\", timeout: 10m, attempts: 20}\nengine: {max_concurrency: 10000, jitter: 0.5}\ngroups:\n  - name: w\n    min: 0\n    max: 100000\n    evaluation_interval: 1h\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 1e12}\n    behavior:\n      cooldown: 24h\n      scale_up: {stabilization: 1h, cooldown: 1d, max_step: 100000, policies: [{type: percent, value: 10000, period: 30m}]}\n";
    let c = parse(text, "max.yaml").unwrap();
    assert_eq!(
        c.groups[0].evaluation_interval,
        SignedDuration::from_hours(1)
    );
    let text = GROUP.replace("max: 10", "max: 10\n    evaluation_interval: 1s");
    assert_eq!(
        parse(&text, "min.yaml").unwrap().groups[0].evaluation_interval,
        SignedDuration::from_secs(1)
    );
}

#[test]
fn group_names_are_1_to_63_characters_starting_alphanumeric() {
    let named = |name: &str| GROUP.replace("name: web", &format!("name: \"{name}\""));
    let text = include_str!("../../../../tests/configs/invalid/group-name-too-long.yaml");
    assert_eq!(
        problems(text),
        [
            ":2:5: groups[0].name: group name is 250 characters long: expected 1 to 63 characters",
            ":7:5: groups[1].name: invalid group name \"-web\": a group name starts with a letter or a digit",
        ]
    );
    assert!(parse(&named(&"a".repeat(63)), "n.yaml").is_ok());
    assert!(parse(&named("9.web_v2-eu"), "n.yaml").is_ok());
    assert!(parse(&named(&"a".repeat(64)), "n.yaml").is_err());
    for bad in ["", ".web", "_web", "web tier", "wéb"] {
        assert_eq!(problems(&named(bad)).len(), 1, "{bad:?}");
    }
}

#[test]
fn every_url_must_be_an_absolute_http_url() {
    let text = include_str!("../../../../tests/configs/invalid/url-unclosed-ipv6.yaml");
    assert_eq!(
        problems(text),
        [
            ":7:7: groups[0].source.url: invalid URL \"http://[::1\": unclosed `[`: an IPv6 address is written as [::1]"
        ]
    );
    check(&[
        (
            "    source: {kind: http_json, url: \"http://host:99999/stats\", metrics: {request_rate: /x}}\n",
            "groups[0].source.url: invalid URL \"http://host:99999/stats\": invalid port `99999`: expected 1 to 65535",
        ),
        (
            "    source: {kind: prometheus, url: \"http://\", queries: {request_rate: up}}\n",
            "groups[0].source.url: invalid URL \"http://\": no host",
        ),
    ]);
    let alerts = |url: &str| format!("alerts: {{webhook: \"{url}\"}}\n{GROUP}");
    assert_eq!(
        problems(&alerts("https://[::1]:99/x y")),
        [
            ":1:10: alerts.webhook: invalid URL \"https://[::1]:99/x y\": contains ' ': encode it or remove it"
        ]
    );
    assert!(parse(&alerts("https://[::1]:8443/hook"), "a.yaml").is_ok());
}

#[test]
fn unimplemented_target_kinds_fail_validation() {
    let text = include_str!("../../../../tests/configs/invalid/target-kind-not-implemented.yaml");
    assert_eq!(
        problems(text),
        [
            ":8:7: groups[0].target.kind: target kind `compose` is not implemented yet (planned); implemented kinds: process_pool, haproxy, command"
        ]
    );
    check(&[
        (
            "    target: {kind: terraform, dir: infra, variable: count}\n",
            "groups[0].target.kind: target kind `terraform` is not implemented yet (planned); implemented kinds: process_pool, haproxy, command",
        ),
        (
            "    target: {kind: aws_asg, name: web}\n",
            "groups[0].target.kind: target kind `aws_asg` is not implemented yet (planned); implemented kinds: process_pool, haproxy, command",
        ),
    ]);
    assert!(
        parse(
            &format!("{GROUP}    target: {{kind: command, command: x}}\n"),
            "c.yaml"
        )
        .is_ok()
    );
}

#[test]
fn least_loaded_needs_a_load_signal() {
    let text =
        include_str!("../../../../tests/configs/invalid/least-loaded-without-load-signal.yaml");
    assert_eq!(
        problems(text),
        [
            ":14:7: groups[0].target.scale_in: `least_loaded` has no load to read: set `load_metric` to a metric every instance serves on /metrics (`backend_in_flight` for `scalepilot backend`), give the group a `prometheus_text` source, or use `lifo`"
        ]
    );
    let pool = |source: &str, extra: &str| {
        format!(
            "groups:\n  - name: web\n    min: 1\n    max: 3\n{source}    strategies:\n      - {{kind: target_tracking, metric: request_rate, target_per_replica: 50}}\n    target:\n      kind: process_pool\n      command: x --port {{port}}\n      ports: 20000-20100\n{extra}"
        )
    };
    let text_source = "    source: {kind: prometheus_text, path: /stats, metrics: {request_rate: rate(reqs_total)}}\n";
    let static_source = "    source: {kind: static, values: {request_rate: 10}}\n";
    let order = |text: &str| match parse(text, "p.yaml").unwrap().groups[0].target.clone() {
        Some(super::TargetSpec::ProcessPool(p)) => Some(p.scale_in),
        Some(super::TargetSpec::Haproxy(h)) => Some(h.pool.scale_in),
        _ => None,
    };
    // The instances serve Prometheus text: the default metric, read at the source's path.
    assert_eq!(
        order(&pool(text_source, "      scale_in: least_loaded\n")),
        Some(ScaleIn::LeastLoaded {
            metric: "backend_in_flight".into(),
            path: "/stats".into()
        })
    );
    // An explicit load_metric: read at /metrics.
    assert_eq!(
        order(&pool(
            static_source,
            "      scale_in: least_loaded\n      load_metric: app_sessions_active\n"
        )),
        Some(ScaleIn::LeastLoaded {
            metric: "app_sessions_active".into(),
            path: "/metrics".into()
        })
    );
    assert_eq!(order(&pool(static_source, "")), Some(ScaleIn::Lifo));
    assert_eq!(
        order(&pool(static_source, "      scale_in: lifo\n")),
        Some(ScaleIn::Lifo)
    );
    // Behind HAProxy: the pool's order.
    let haproxy = format!(
        "{GROUP}{}",
        "    target:\n      kind: haproxy\n      backend: b\n      admin_socket: /run/h.sock\n      pool: {command: \"x --port {port}\", ports: 20000-20010, scale_in: least_loaded, load_metric: inflight}\n"
    );
    assert!(matches!(order(&haproxy), Some(ScaleIn::LeastLoaded { .. })));
    assert_eq!(
        order(&format!(
            "{GROUP}    target: {{kind: command, command: x}}\n"
        )),
        None
    );
    let bad = problems(&pool(text_source, "      load_metric: in_flight\n"));
    assert!(
        bad[0].ends_with(
            "groups[0].target.load_metric: `load_metric` only applies to `scale_in: least_loaded`"
        ),
        "{bad:?}"
    );
    let bad = problems(&pool(
        static_source,
        "      scale_in: least_loaded\n      load_metric: \"in flight\"\n",
    ));
    assert!(
        bad[0].ends_with("groups[0].target.load_metric: invalid metric name \"in flight\": use letters, digits, `_` and `:`, not starting with a digit"),
        "{bad:?}"
    );
}

#[test]
fn alert_events_are_an_enum_spelled_as_before() {
    let alerts = |events: &str| {
        parse(
            &format!("alerts: {{webhook: \"http://h:9000/x\"{events}}}\n{GROUP}"),
            "a.yaml",
        )
        .map(|c| c.alerts.unwrap().events)
    };
    assert_eq!(alerts(""), Ok(AlertEvent::ALL.to_vec()));
    assert_eq!(
        alerts(", events: [scale_failed, config_rejected]"),
        Ok(vec![AlertEvent::ScaleFailed, AlertEvent::ConfigRejected])
    );
    let e = alerts(", events: [scaled, paged]").unwrap_err().to_string();
    assert!(e.ends_with("alerts.events[1]: unknown event `paged`, expected one of `scaled`, `scale_failed`, `errors`, `config_rejected`, `budget`"), "{e}");
    for (event, name) in AlertEvent::ALL.into_iter().zip(ALERT_EVENTS) {
        assert_eq!(event.as_str(), name);
        assert_eq!(event.to_string(), name);
        assert_eq!(serde_json::to_value(event).unwrap(), name);
        assert_eq!(
            serde_json::from_value::<AlertEvent>(name.into()).unwrap(),
            event
        );
        assert_eq!(AlertEvent::parse(name), Some(event));
    }
}

/// A PostgreSQL store: the URL scheme, the pool range, a non-empty password file; the
/// config's `Debug` never shows the URL's password.
#[test]
fn postgres_store_settings() {
    let store = |s: &str| format!("store: {s}\n{GROUP}");
    let c = parse(
        &store("{kind: postgres, url: \"postgres://sp:hunter2@db:5432/sp\", pool: 3, password_file: pw, sample_retention: 2d}"),
        "",
    )
    .unwrap();
    match &c.store {
        Store::Postgres {
            url,
            pool,
            password_file,
            sample_retention,
        } => {
            assert_eq!(url, "postgres://sp:hunter2@db:5432/sp");
            assert_eq!((*pool, password_file.as_deref()), (3, Some("pw")));
            assert_eq!(*sample_retention, SignedDuration::from_hours(48));
        }
        other => panic!("{other:?}"),
    }
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("postgres://sp:***@db:5432/sp"), "{debug}");
    let c = parse(&store("{kind: postgres, url: \"postgresql://db/sp\"}"), "").unwrap();
    assert!(matches!(c.store, Store::Postgres { pool: 8, .. }));
    assert_eq!(
        c.store.sample_retention(),
        SignedDuration::from_hours(7 * 24)
    );

    let one = |s: &str| {
        let p = problems(&store(s));
        assert_eq!(p.len(), 1, "{p:?}");
        p[0].splitn(4, ':').nth(3).unwrap().trim_start().to_string()
    };
    let bad_url = one("{kind: postgres, url: \"mysql://sp:hunter2@db/sp\"}");
    assert_eq!(
        bad_url,
        "store.url: expected a postgres:// or postgresql:// URL"
    );
    assert_eq!(
        one("{kind: postgres, url: \"postgres://db/sp\", pool: 0}"),
        "store.pool: pool 0 is out of range: expected 1 to 256"
    );
    assert_eq!(
        one("{kind: postgres, url: \"postgres://db/sp\", pool: 257}"),
        "store.pool: pool 257 is out of range: expected 1 to 256"
    );
    assert_eq!(
        one("{kind: postgres, url: \"postgres://db/sp\", password_file: \" \"}"),
        "store.password_file: empty path"
    );
}

#[test]
fn urls_are_redacted() {
    use crate::config::url::{redact, userinfo_password};
    assert_eq!(redact("postgres://u:p@h/d"), "postgres://u:***@h/d");
    assert_eq!(
        redact("postgres://u@h/d?password=p"),
        "postgres://u@h/d?password=***"
    );
    assert_eq!(
        redact("postgres://u@h/d?password="),
        "postgres://u@h/d?password="
    );
    assert_eq!(userinfo_password("postgres://u:p%40@h/d"), Some("p%40"));
    assert_eq!(userinfo_password("postgres://u@h/d"), None);
}
