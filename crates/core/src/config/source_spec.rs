//! Sources compiled once at validation: durations parsed, defaults applied, metric specs
//! parsed. The engine builds its sources from these and never re-reads a config string.

use std::collections::BTreeMap;
use std::time::Duration;

use super::raw::RawSource;
use super::text_metric::{self, TextAgg};

/// Timeout of a source's HTTP request when the config sets none.
pub const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(5);

/// A validated source.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Prometheus {
        url: String,
        /// Metric name → PromQL query.
        queries: BTreeMap<String, String>,
        timeout: Duration,
    },
    HttpJson {
        url: String,
        /// Metric name → JSON pointer.
        metrics: BTreeMap<String, String>,
        timeout: Duration,
    },
    PrometheusText {
        metrics: Vec<TextMetric>,
        /// Path scraped on each instance.
        path: String,
    },
    Static {
        values: BTreeMap<String, f64>,
    },
    Trace {
        /// As written; relative paths are relative to the config file's folder.
        file: String,
        speedup: f64,
        capacity_per_replica: Option<f64>,
        scale: f64,
        /// Trace second where the replay starts; `None` for the first row.
        from: Option<i64>,
    },
}

/// One `prometheus_text` metric: `agg(series)` over the pool's instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMetric {
    pub name: String,
    pub agg: TextAgg,
    pub series: String,
}

impl SourceSpec {
    /// The metric names this source provides.
    pub fn metrics(&self) -> Vec<String> {
        match self {
            SourceSpec::Prometheus { queries, .. } => queries.keys().cloned().collect(),
            SourceSpec::HttpJson { metrics, .. } => metrics.keys().cloned().collect(),
            SourceSpec::PrometheusText { metrics, .. } => {
                metrics.iter().map(|m| m.name.clone()).collect()
            }
            SourceSpec::Static { values } => values.keys().cloned().collect(),
            SourceSpec::Trace {
                capacity_per_replica,
                ..
            } => {
                let mut m = vec!["request_rate".to_string()];
                if capacity_per_replica.is_some() {
                    m.push("utilization".into());
                }
                m
            }
        }
    }
}

/// Compile a source that validation accepted. Returns `None` when a field is still invalid
/// (validation has reported it; the group is not built).
pub(super) fn compile(raw: &RawSource) -> Option<SourceSpec> {
    let timeout = |t: &Option<String>| -> Option<Duration> {
        match t {
            None => Some(DEFAULT_SOURCE_TIMEOUT),
            Some(text) => Duration::try_from(crate::duration::parse(text).ok()?).ok(),
        }
    };
    Some(match raw {
        RawSource::Prometheus {
            url,
            queries,
            timeout: t,
        } => SourceSpec::Prometheus {
            url: url.clone(),
            queries: queries.clone(),
            timeout: timeout(t)?,
        },
        RawSource::HttpJson {
            url,
            metrics,
            timeout: t,
        } => SourceSpec::HttpJson {
            url: url.clone(),
            metrics: metrics.clone(),
            timeout: timeout(t)?,
        },
        RawSource::PrometheusText { metrics, path } => SourceSpec::PrometheusText {
            metrics: metrics
                .iter()
                .map(|(name, spec)| {
                    let (agg, series) = text_metric::parse(spec).ok()?;
                    Some(TextMetric {
                        name: name.clone(),
                        agg,
                        series,
                    })
                })
                .collect::<Option<_>>()?,
            path: path.clone().unwrap_or_else(|| "/metrics".into()),
        },
        RawSource::Static { values } => SourceSpec::Static {
            values: values.clone(),
        },
        RawSource::Trace {
            file,
            speedup,
            capacity_per_replica,
            scale,
            from,
        } => SourceSpec::Trace {
            file: file.clone(),
            speedup: speedup.unwrap_or(1.0),
            capacity_per_replica: *capacity_per_replica,
            scale: scale.unwrap_or(1.0),
            from: match from {
                Some(f) => Some(i64::try_from(*f).ok()?),
                None => None,
            },
        },
    })
}
