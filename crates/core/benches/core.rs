//! Throughput of `decide` (a group with three strategies) and of `simulate` (a month of
//! 15 s ticks on the NASA trace through the HPA policy).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use scalepilot_core::sim::{SimParams, SimPolicy, Trace, simulate};
use scalepilot_core::{GroupState, Observation, config, decide};

const THREE_STRATEGIES: &str = r#"
groups:
  - name: web
    min: 2
    max: 60
    source:
      kind: static
      values: {request_rate: 0, cpu: 0}
    strategies:
      - kind: target_tracking
        metric: request_rate
        target_per_replica: 50
      - kind: threshold
        metrics:
          - {metric: cpu, aggregation: avg, window: 1m, upper: 80, lower: 20}
      - kind: schedule
        timezone: America/New_York
        windows:
          - {business_hours: "Mon-Fri 09:00-17:00", min: 4}
"#;

fn bench_decide(c: &mut Criterion) {
    let group = config::parse(THREE_STRATEGIES, "bench.yaml")
        .unwrap()
        .groups
        .remove(0);
    let start: Timestamp = "2026-11-23T14:00:00Z".parse().unwrap();
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    g.bench_function("three_strategies", |b| {
        let mut state = GroupState::default();
        let mut obs = Observation {
            current_replicas: 10,
            ..Observation::default()
        };
        obs.metrics.insert("request_rate".into(), 0.0);
        obs.metrics.insert("cpu".into(), 0.0);
        let mut i: i64 = 0;
        b.iter(|| {
            i += 1;
            // A load that wanders so every rule gets exercised, 15 s apart.
            let phase = (i % 400) as f64 / 400.0 * std::f64::consts::TAU;
            *obs.metrics.get_mut("request_rate").unwrap() = 500.0 + 400.0 * phase.sin();
            *obs.metrics.get_mut("cpu").unwrap() = 50.0 + 40.0 * phase.cos();
            let now = start + SignedDuration::from_secs(i * 15);
            let d = decide(&group, &obs, &mut state, now);
            obs.current_replicas = d.desired_replicas;
            black_box(d.desired_replicas)
        });
    });
    g.finish();
}

fn bench_simulate(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../traces/nasa_http_1995/trace.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let trace = Trace::parse(&text, Some(60)).unwrap();
    let month = 30 * 86_400;
    let capacity = trace.peak(0, month) / 40.0;
    let params = SimParams {
        from: 0,
        to: month,
        capacity,
        startup: 60,
        window: 60,
        epoch: Timestamp::UNIX_EPOCH,
        chart_points: 0,
    };
    let mut g = c.benchmark_group("simulate");
    g.sample_size(20);
    g.throughput(Throughput::Elements((month / 15) as u64));
    for policy in [SimPolicy::hpa(capacity, 15), SimPolicy::oracle()] {
        g.bench_function(format!("month_15s_ticks_{}", policy.name), |b| {
            b.iter(|| black_box(simulate(&trace, &params, &policy, &mut |_| {}).cost_ratio))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decide, bench_simulate);
criterion_main!(benches);
