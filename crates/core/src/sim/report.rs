//! Simulation results and the downsampled series behind the chart.

use serde::Serialize;

/// One policy's figures over the simulated range.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    pub policy: String,
    /// Replica-seconds paid / replica-seconds the oracle pays.
    pub cost_ratio: f64,
    /// 100 · unserved requests / demanded requests.
    pub unserved_pct: f64,
    /// Percentage of ticks with unserved load.
    pub underprov_time_pct: f64,
    /// Evaluations that changed the replica count.
    pub actions: u64,
    pub replica_hours: f64,
    pub oracle_replica_hours: f64,
    /// Per-tick series for the chart (only when requested).
    #[serde(skip)]
    pub series: Option<Series>,
}

/// Time series in buckets: demand in replicas' worth (r/c), ready and desired replicas.
/// Each bucket keeps the worst case (demand max, ready min, desired max) so lag stays visible.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Bucket start, seconds since the start of the range.
    pub t: Vec<f64>,
    pub demand: Vec<f64>,
    pub ready: Vec<f64>,
    pub desired: Vec<f64>,
}

impl Series {
    pub(crate) fn push(&mut self, bucket_start: f64, demand: f64, ready: f64, desired: f64) {
        if self.t.last() == Some(&bucket_start) {
            let i = self.t.len() - 1;
            self.demand[i] = self.demand[i].max(demand);
            self.ready[i] = self.ready[i].min(ready);
            self.desired[i] = self.desired[i].max(desired);
        } else {
            self.t.push(bucket_start);
            self.demand.push(demand);
            self.ready.push(ready);
            self.desired.push(desired);
        }
    }
}
