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
    /// Money paid: replica-hours × the price per replica-hour at the time.
    pub cost: f64,
    /// Money per million requests served.
    pub cost_per_million_served: f64,
    /// Per-tick series for the chart (only when requested).
    #[serde(skip)]
    pub series: Option<Series>,
}

/// Time series in buckets of equal length: the bucket's mean demand in replicas' worth (r/c),
/// mean ready and desired (ready + starting) replicas, and the bucket's largest shortfall
/// max(0, r/c − ready), which marks where a policy lagged even when a bucket spans hours.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Bucket start, seconds since the start of the range.
    pub t: Vec<f64>,
    pub demand: Vec<f64>,
    pub ready: Vec<f64>,
    pub desired: Vec<f64>,
    pub shortfall: Vec<f64>,
    /// Mean forecast (the predictive strategy's estimate, in replicas' worth); NaN where the
    /// policy made none in the bucket.
    pub forecast: Vec<f64>,
    count: Vec<f64>,
    forecast_count: Vec<f64>,
}

impl Series {
    pub(crate) fn push(
        &mut self,
        bucket_start: f64,
        demand: f64,
        ready: f64,
        desired: f64,
        forecast: Option<f64>,
    ) {
        if self.t.last() != Some(&bucket_start) {
            self.t.push(bucket_start);
            for v in [
                &mut self.demand,
                &mut self.ready,
                &mut self.desired,
                &mut self.shortfall,
                &mut self.count,
                &mut self.forecast_count,
            ] {
                v.push(0.0);
            }
            self.forecast.push(f64::NAN);
        }
        let i = self.t.len() - 1;
        if let Some(f) = forecast {
            self.forecast_count[i] += 1.0;
            let prev = if self.forecast[i].is_nan() {
                0.0
            } else {
                self.forecast[i]
            };
            self.forecast[i] = prev + (f - prev) / self.forecast_count[i];
        }
        // Running means, so the series never needs a second pass.
        self.count[i] += 1.0;
        let n = self.count[i];
        self.shortfall[i] = self.shortfall[i].max(demand - ready);
        for (v, x) in [
            (&mut self.demand, demand),
            (&mut self.ready, ready),
            (&mut self.desired, desired),
        ] {
            v[i] += (x - v[i]) / n;
        }
    }
}
