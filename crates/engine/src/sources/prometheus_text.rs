//! `prometheus_text`: scrape each pool instance's /metrics directly and combine the values:
//! no Prometheus server needed (what the demo uses).
//!
//! Instances that answer no value this time (their first scrape, for a rate, or a failed
//! scrape) are assumed to carry the average of the others: the pool's balancer spreads the
//! load evenly, and leaving them out would read as a drop in load right after a scale-out.
//!
//! The exposition parser reads the subset scalepilot needs: `name{labels} value` lines (all
//! label sets of a name are summed). A full parser crate would pull in a date library for
//! timestamps we ignore.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use scalepilot_core::config::TextMetric;
use scalepilot_core::config::text_metric::TextAgg;

use super::{Context, Observed, Source};

pub(crate) struct PrometheusText {
    http: reqwest::Client,
    path: String,
    specs: Vec<TextMetric>,
    /// Last counter reading per (series, endpoint), for rates.
    last: HashMap<(String, String), (f64, Instant)>,
}

impl PrometheusText {
    pub(crate) fn new(
        http: reqwest::Client,
        metrics: &[TextMetric],
        path: String,
    ) -> PrometheusText {
        PrometheusText {
            http,
            path,
            specs: metrics.to_vec(),
            last: HashMap::new(),
        }
    }
}

/// Sum of every sample of `name` in an exposition (all label sets).
pub(crate) fn sample_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || !line.starts_with(name) {
            continue;
        }
        let rest = &line[name.len()..];
        let rest = if let Some(labels) = rest.strip_prefix('{') {
            match labels.find('}') {
                Some(i) => &labels[i + 1..],
                None => continue,
            }
        } else if rest.starts_with(' ') {
            rest
        } else {
            continue; // a longer name with this prefix
        };
        if let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[async_trait]
impl Source for PrometheusText {
    async fn observe(&mut self, ctx: &Context) -> Observed {
        let mut out = Observed::default();
        let mut pages: Vec<(String, Instant, String)> = Vec::new();
        let mut failures = Vec::new();
        for ep in &ctx.endpoints {
            let url = format!("{}{}", ep.trim_end_matches('/'), self.path);
            let got = async {
                let resp = self
                    .http
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map_err(|e| super::chain(&e))?;
                if !resp.status().is_success() {
                    return Err(format!("HTTP {}", resp.status()));
                }
                let bytes = crate::http::body(resp, crate::http::BODY_LIMIT).await?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            .await;
            match got {
                Ok(text) => pages.push((ep.clone(), Instant::now(), text)),
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        // Forget instances that are gone, so a returning port starts a fresh rate.
        self.last.retain(|(_, ep), _| ctx.endpoints.contains(ep));
        for spec in &self.specs {
            if pages.is_empty() {
                let why = if ctx.endpoints.is_empty() {
                    "no instance to scrape".to_string()
                } else {
                    format!("every scrape failed: {}", failures.join("; "))
                };
                out.set(&spec.name, Err(why));
                continue;
            }
            let values: Vec<(&str, Instant, f64)> = pages
                .iter()
                .filter_map(|(ep, at, text)| {
                    sample_sum(text, &spec.series).map(|v| (ep.as_str(), *at, v))
                })
                .collect();
            if values.is_empty() {
                out.set(
                    &spec.name,
                    Err(format!("no `{}` in the scraped metrics", spec.series)),
                );
                continue;
            }
            let value = match spec.agg {
                // Instances that did not answer are assumed to carry the average of the others
                // (the balancer spreads load evenly): leaving them out would read as a load drop.
                TextAgg::Sum => Ok(values.iter().map(|v| v.2).sum::<f64>()
                    * ctx.endpoints.len().max(values.len()) as f64
                    / values.len() as f64),
                TextAgg::Max => Ok(values.iter().map(|v| v.2).fold(f64::MIN, f64::max)),
                TextAgg::Avg => Ok(values.iter().map(|v| v.2).sum::<f64>() / values.len() as f64),
                TextAgg::Rate => {
                    let mut rate = 0.0;
                    let mut known = 0;
                    for (ep, at, v) in &values {
                        let key = (spec.series.clone(), ep.to_string());
                        if let Some((prev, prev_at)) = self.last.get(&key) {
                            let dt = at.duration_since(*prev_at).as_secs_f64();
                            if dt > 0.0 {
                                // A counter that went down was reset (a restarted instance).
                                let inc = if v >= prev { v - prev } else { *v };
                                rate += inc / dt;
                                known += 1;
                            }
                        }
                        self.last.insert(key, (*v, *at));
                    }
                    if known == 0 {
                        Err("first scrape: a rate needs two".to_string())
                    } else {
                        // New or silent instances are assumed to carry the average of the
                        // others, so a scale-out does not read as a drop in load.
                        Ok(rate * ctx.endpoints.len().max(known) as f64 / known as f64)
                    }
                }
            };
            out.set(&spec.name, value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_series_of_a_name() {
        let text = "# HELP x_total X\n# TYPE x_total counter\nx_total{code=\"200\"} 10\nx_total{code=\"500\"} 2\nx_total_created 99\nxy_total 5\n";
        assert_eq!(sample_sum(text, "x_total"), Some(12.0));
        assert_eq!(sample_sum("up 1\n", "up"), Some(1.0));
        assert_eq!(sample_sum("up 1\n", "down"), None);
    }
}
