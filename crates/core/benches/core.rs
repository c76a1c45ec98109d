//! Throughput of `decide` (a group with three strategies) and of `simulate` (a month of
//! 15 s ticks on the NASA trace through the HPA policy, the oracle and the recommended
//! predictive policy).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use scalepilot_core::bench::DecideLoop;
use scalepilot_core::sim::{SimParams, SimPolicy, Trace, simulate};

fn bench_decide(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    g.bench_function("three_strategies", |b| {
        let mut l = DecideLoop::default();
        b.iter(|| black_box(l.step()));
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
        price: 0.1,
        global_budget: None,
    };
    let mut g = c.benchmark_group("simulate");
    g.sample_size(20);
    g.throughput(Throughput::Elements((month / 15) as u64));
    let recommended = include_str!("../../../examples/policies/recommended.yaml");
    let group = scalepilot_core::config::parse(recommended, "recommended.yaml")
        .unwrap()
        .groups
        .remove(0);
    let recommended = SimPolicy::group(group, 15);
    for policy in [
        SimPolicy::hpa(capacity, 15),
        SimPolicy::oracle(),
        recommended,
    ] {
        g.bench_function(format!("month_15s_ticks_{}", policy.name), |b| {
            b.iter(|| black_box(simulate(&trace, &params, &policy, &mut |_| {}).cost_ratio))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decide, bench_simulate);
criterion_main!(benches);
