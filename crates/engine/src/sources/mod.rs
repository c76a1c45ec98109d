//! Sources: where a group's metrics come from. One trait, one file per kind.
//!
//! A source never fails as a whole: each metric either has a value or an error, and the
//! decision core treats an errored metric as missing (hold, never scale down).

mod http_json;
mod prometheus;
mod prometheus_text;
mod static_values;
mod trace;

pub(crate) use prometheus_text::sample_sum;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use async_trait::async_trait;
use scalepilot_core::config::SourceSpec;

/// An error with its causes ("error sending request: connection refused"): reqwest's own
/// message leaves the cause out.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// What the engine knows about the target when it observes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// Base URLs of the serving instances (for sources that scrape them).
    pub endpoints: Vec<String>,
    /// Ready replicas (to derive utilization).
    pub ready: u32,
}

/// One observation: a value or an error per metric.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    pub metrics: BTreeMap<String, f64>,
    pub errors: BTreeMap<String, String>,
}

impl Observed {
    fn set(&mut self, name: &str, value: std::result::Result<f64, String>) {
        match value {
            Ok(v) if v.is_finite() => {
                self.metrics.insert(name.to_string(), v);
            }
            Ok(v) => {
                self.errors
                    .insert(name.to_string(), format!("value is {v}"));
            }
            Err(e) => {
                self.errors.insert(name.to_string(), e);
            }
        }
    }
}

#[async_trait]
pub(crate) trait Source: Send + Sync {
    async fn observe(&mut self, ctx: &Context) -> Observed;
}

/// Build a group's source. `base` is the config file's folder (relative paths start there).
pub(crate) fn build(
    spec: Option<&SourceSpec>,
    base: &Path,
    http: &reqwest::Client,
) -> Result<Box<dyn Source>> {
    Ok(match spec {
        None => anyhow::bail!(
            "the group has no `source`: the engine needs one (simulate provides its own)"
        ),
        Some(SourceSpec::Prometheus {
            url,
            queries,
            timeout,
        }) => Box::new(prometheus::Prometheus::new(
            http.clone(),
            url,
            queries.clone(),
            *timeout,
        )),
        Some(SourceSpec::HttpJson {
            url,
            metrics,
            timeout,
        }) => Box::new(http_json::HttpJson {
            http: http.clone(),
            url: url.clone(),
            metrics: metrics.clone(),
            timeout: *timeout,
        }),
        Some(SourceSpec::PrometheusText { metrics, path }) => Box::new(
            prometheus_text::PrometheusText::new(http.clone(), metrics, path.clone()),
        ),
        Some(SourceSpec::Static { values }) => {
            Box::new(static_values::StaticValues(values.clone()))
        }
        Some(SourceSpec::Trace {
            file,
            speedup,
            capacity_per_replica,
            scale,
            from,
        }) => Box::new(trace::TraceReplay::open(
            &base.join(file),
            *speedup,
            *scale,
            *capacity_per_replica,
            *from,
        )?),
    })
}
