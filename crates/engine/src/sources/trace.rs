//! `trace`: replay a trace file as `request_rate` (and `utilization`), time-compressed.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use scalepilot_core::sim::Trace;

use super::{Context, Observed, Source};

pub(crate) struct TraceReplay {
    trace: Trace,
    start: Instant,
    from: i64,
    speedup: f64,
    scale: f64,
    capacity: Option<f64>,
}

impl TraceReplay {
    pub(crate) fn open(
        path: &Path,
        speedup: f64,
        scale: f64,
        capacity: Option<f64>,
        from: Option<i64>,
    ) -> Result<TraceReplay> {
        let text = crate::limits::read_to_string(path, crate::limits::TRACE_LIMIT, "trace")?;
        let trace = Trace::parse(&text, None)
            .with_context(|| format!("invalid trace {}", path.display()))?;
        Ok(TraceReplay {
            from: from.unwrap_or(trace.first),
            trace,
            start: Instant::now(),
            speedup,
            scale,
            capacity,
        })
    }
}

#[async_trait]
impl Source for TraceReplay {
    async fn observe(&mut self, ctx: &Context) -> Observed {
        let mut out = Observed::default();
        let t = self.from + (self.start.elapsed().as_secs_f64() * self.speedup) as i64;
        if t >= self.trace.end() {
            out.set(
                "request_rate",
                Err(format!("the trace ended at t={}", self.trace.end())),
            );
            return out;
        }
        // Compressed time: a trace second lasts 1/speedup seconds, so the rate is speedup× higher.
        let rate = self.trace.rate(t) * self.speedup * self.scale;
        out.set("request_rate", Ok(rate));
        // Without a capacity there is no utilization (validation refuses strategies using it).
        match (self.capacity, ctx.ready) {
            (Some(c), r) if r > 0 => out.set("utilization", Ok(rate / (r as f64 * c) * 100.0)),
            (Some(_), _) => out.set("utilization", Err("no ready replica".into())),
            (None, _) => {}
        }
        out
    }
}
