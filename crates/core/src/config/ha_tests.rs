//! `engine.ha` and `engine.lease_ttl`.

use jiff::SignedDuration;

use super::*;

fn config(engine: &str, interval: &str) -> String {
    format!(
        "engine: {engine}\ngroups:\n  - name: web\n    min: 1\n    max: 10\n    evaluation_interval: {interval}\n    strategies:\n      - {{kind: target_tracking, metric: request_rate, target_per_replica: 50}}\n"
    )
}

fn problems(text: &str) -> String {
    match parse(text, "") {
        Ok(_) => panic!("validated:\n{text}"),
        Err(e) => e
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn ha_is_off_by_default_and_the_lease_follows_the_fastest_group() {
    let c = parse(&config("{max_concurrency: 4}", "15s"), "").unwrap();
    assert!(!c.engine.ha);
    assert_eq!(c.engine.lease_ttl, SignedDuration::from_secs(10));
    let c = parse(&config("{ha: true}", "3s"), "").unwrap();
    assert!(c.engine.ha);
    assert_eq!(c.engine.lease_ttl, SignedDuration::from_secs(3));
    let c = parse(&config("{ha: true, lease_ttl: 2s}", "3s"), "").unwrap();
    assert_eq!(c.engine.lease_ttl, SignedDuration::from_secs(2));
}

#[test]
fn a_lease_longer_than_an_interval_or_out_of_range_is_refused() {
    let p = problems(&config("{ha: true, lease_ttl: 20s}", "15s"));
    assert!(
        p.contains("engine.lease_ttl")
            && p.contains("longer than the smallest evaluation_interval"),
        "{p}"
    );
    let p = problems(&config("{ha: true, lease_ttl: 500ms}", "15s"));
    assert!(p.contains("engine.lease_ttl"), "{p}");
    let p = problems(&config("{ha: true, lease_ttl: 10m}", "1h"));
    assert!(p.contains("engine.lease_ttl"), "{p}");
}

#[test]
fn a_global_budget_is_accepted_with_ha() {
    // Its ledger is kept in the store, shared by the daemons (it was refused while it was
    // kept per daemon).
    let text = config("{ha: true}", "15s")
        .replace("groups:", "budget: {per_hour: 10}\ngroups:")
        .replace(
            "    strategies:",
            "    cost: {price_per_replica_hour: 0.5}\n    strategies:",
        );
    let c = parse(&text, "").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.engine.ha);
    assert_eq!(c.budget.and_then(|b| b.per_hour), Some(10.0));
}
