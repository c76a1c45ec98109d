//! `http_json`: GET a URL and pick numbers out of the JSON with JSON pointers.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{Context, Observed, Source};

pub(crate) struct HttpJson {
    pub http: reqwest::Client,
    pub url: String,
    pub metrics: BTreeMap<String, String>,
    pub timeout: Duration,
}

/// A number, or a string holding one (many APIs quote numbers).
pub(super) fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("{n} is not a finite number")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not a number")),
        other => Err(format!("expected a number, found {other}")),
    }
}

#[async_trait]
impl Source for HttpJson {
    async fn observe(&mut self, _: &Context) -> Observed {
        let mut out = Observed::default();
        let body = async {
            let resp = self
                .http
                .get(&self.url)
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| format!("GET {}: {}", self.url, super::chain(&e)))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!("GET {}: HTTP {status}", self.url));
            }
            let bytes = crate::http::body(resp, crate::http::BODY_LIMIT)
                .await
                .map_err(|e| format!("GET {}: {e}", self.url))?;
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| format!("GET {}: invalid JSON: {e}", self.url))
        }
        .await;
        for (name, pointer) in &self.metrics {
            let value = match &body {
                Ok(json) => json
                    .pointer(pointer)
                    .ok_or_else(|| {
                        format!("no value at JSON pointer \"{pointer}\" in {}", self.url)
                    })
                    .and_then(number),
                Err(e) => Err(e.clone()),
            };
            out.set(name, value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a real HTTP server on loopback: values, a missing pointer, a dead server.
    #[tokio::test]
    async fn observes_over_http() {
        let app = axum::Router::new().route(
            "/stats",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({"queue": {"depth": 420, "rate": "12.5"}}))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let metrics: BTreeMap<String, String> = [
            ("depth".to_string(), "/queue/depth".to_string()),
            ("rate".to_string(), "/queue/rate".to_string()),
            ("gone".to_string(), "/queue/nope".to_string()),
        ]
        .into();
        let mut src = HttpJson {
            http: crate::http::client().unwrap(),
            url: format!("http://{addr}/stats"),
            metrics: metrics.clone(),
            timeout: Duration::from_secs(2),
        };
        let got = src.observe(&Context::default()).await;
        assert_eq!(got.metrics["depth"], 420.0);
        assert_eq!(got.metrics["rate"], 12.5);
        assert!(
            got.errors["gone"].contains("no value at JSON pointer \"/queue/nope\""),
            "{:?}",
            got.errors
        );

        let mut dead = HttpJson {
            http: crate::http::client().unwrap(),
            url: "http://127.0.0.1:1/stats".into(),
            metrics,
            timeout: Duration::from_secs(2),
        };
        let got = dead.observe(&Context::default()).await;
        assert!(got.metrics.is_empty());
        assert!(
            got.errors["depth"].starts_with("GET http://127.0.0.1:1/stats"),
            "{:?}",
            got.errors
        );
    }

    #[test]
    fn numbers_and_quoted_numbers() {
        assert_eq!(number(&serde_json::json!(4.5)), Ok(4.5));
        assert_eq!(number(&serde_json::json!("12")), Ok(12.0));
        assert!(
            number(&serde_json::json!("twelve"))
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            number(&serde_json::json!({"a": 1}))
                .unwrap_err()
                .contains("expected a number")
        );
    }
}
