//! Workloads shared by the criterion benches and `scalepilot bench`, so both measure the same
//! thing.

use jiff::{SignedDuration, Timestamp};

use crate::config::{self, Group};
use crate::{GroupState, Observation, decide};

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

/// A group with target tracking, a windowed threshold and a business-hours schedule.
pub fn three_strategy_group() -> Group {
    match config::parse(THREE_STRATEGIES, "bench.yaml") {
        Ok(mut c) => c.groups.remove(0),
        Err(e) => unreachable!("the built-in bench config is valid: {e}"),
    }
}

/// Drives one group through evaluations 15 s apart with a load that wanders, so every rule
/// gets exercised.
pub struct DecideLoop {
    group: Group,
    state: GroupState,
    obs: Observation,
    start: Timestamp,
    i: i64,
}

impl Default for DecideLoop {
    fn default() -> Self {
        let mut obs = Observation {
            current_replicas: 10,
            ..Observation::default()
        };
        obs.metrics.insert("request_rate".into(), 0.0);
        obs.metrics.insert("cpu".into(), 0.0);
        DecideLoop {
            group: three_strategy_group(),
            state: GroupState::default(),
            obs,
            // Monday 09:00 in New York: the schedule window is active.
            start: Timestamp::from_second(1_795_442_400).unwrap_or(Timestamp::UNIX_EPOCH),
            i: 0,
        }
    }
}

impl DecideLoop {
    /// One evaluation; returns the desired count.
    pub fn step(&mut self) -> u32 {
        self.i += 1;
        let phase = (self.i % 400) as f64 / 400.0 * std::f64::consts::TAU;
        if let Some(v) = self.obs.metrics.get_mut("request_rate") {
            *v = 500.0 + 400.0 * phase.sin();
        }
        if let Some(v) = self.obs.metrics.get_mut("cpu") {
            *v = 50.0 + 40.0 * phase.cos();
        }
        let now = crate::time::after(self.start, SignedDuration::from_secs(self.i * 15));
        let d = decide(&self.group, &self.obs, &mut self.state, now);
        self.obs.current_replicas = d.desired_replicas;
        d.desired_replicas
    }
}
