//! `prometheus`: PromQL instant queries over Prometheus' HTTP API (`/api/v1/query`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{Context, Observed, Source};

pub(crate) struct Prometheus {
    http: reqwest::Client,
    endpoint: String,
    queries: BTreeMap<String, String>,
    timeout: Duration,
}

impl Prometheus {
    pub(crate) fn new(
        http: reqwest::Client,
        url: &str,
        queries: BTreeMap<String, String>,
        timeout: Duration,
    ) -> Prometheus {
        Prometheus {
            http,
            endpoint: format!("{}/api/v1/query", url.trim_end_matches('/')),
            queries,
            timeout,
        }
    }

    async fn query(&self, promql: &str) -> Result<f64, String> {
        let url = reqwest::Url::parse_with_params(&self.endpoint, [("query", promql)])
            .map_err(|e| format!("bad URL {}: {e}", self.endpoint))?;
        let resp = self
            .http
            .get(url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("query `{promql}`: {}", super::chain(&e)))?;
        let status = resp.status();
        let bytes = crate::http::body(resp, crate::http::BODY_LIMIT)
            .await
            .map_err(|e| format!("query `{promql}`: HTTP {status}: {e}"))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("query `{promql}`: HTTP {status}, response is not JSON: {e}"))?;
        value_of(&body).map_err(|e| format!("query `{promql}`: {e}"))
    }
}

/// The single number of an instant-query response.
pub(super) fn value_of(body: &Value) -> Result<f64, String> {
    if body["status"] != "success" {
        let kind = body["errorType"].as_str().unwrap_or("error");
        let msg = body["error"].as_str().unwrap_or("no error message");
        return Err(format!("Prometheus answered {kind}: {msg}"));
    }
    let data = &body["data"];
    let sample = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => {
            let result = data["result"].as_array().ok_or("malformed vector result")?;
            match result.len() {
                0 => return Err("empty result: no series matched".into()),
                1 => &result[0]["value"],
                n => {
                    return Err(format!(
                        "{n} series returned: aggregate them (e.g. sum(...)) to one number"
                    ));
                }
            }
        }
        other => {
            return Err(format!(
                "unsupported result type {other:?}: expected a vector or a scalar"
            ));
        }
    };
    let text = sample[1].as_str().ok_or("malformed sample")?;
    let v: f64 = text
        .parse()
        .map_err(|_| format!("sample \"{text}\" is not a number"))?;
    if v.is_nan() {
        return Err("the query returned NaN (e.g. a division by zero over no traffic)".into());
    }
    Ok(v)
}

#[async_trait]
impl Source for Prometheus {
    async fn observe(&mut self, _: &Context) -> Observed {
        let mut out = Observed::default();
        for (name, q) in &self.queries {
            let v = self.query(q).await;
            out.set(name, v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instant_query_results() {
        let ok = json!({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,"42.5"]}]}});
        assert_eq!(value_of(&ok), Ok(42.5));
        let scalar = json!({"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}});
        assert_eq!(value_of(&scalar), Ok(3.0));
        let empty = json!({"status":"success","data":{"resultType":"vector","result":[]}});
        assert!(value_of(&empty).unwrap_err().contains("no series"));
        let two = json!({"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}});
        assert!(value_of(&two).unwrap_err().contains("2 series"));
        let nan = json!({"status":"success","data":{"resultType":"vector","result":[{"value":[1,"NaN"]}]}});
        assert!(value_of(&nan).unwrap_err().contains("NaN"));
        let bad = json!({"status":"error","errorType":"bad_data","error":"parse error at char 5"});
        assert_eq!(
            value_of(&bad),
            Err("Prometheus answered bad_data: parse error at char 5".into())
        );
    }
}
