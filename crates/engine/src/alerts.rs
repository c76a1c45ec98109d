//! Webhook alerts: a JSON POST per event, retried with exponential backoff.
//!
//! Alerts go through a bounded queue to one sender task, so a slow or dead webhook never
//! blocks scaling: when the queue is full, the alert is dropped and the drop is logged.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use scalepilot_core::config::{AlertEvent, Alerts};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use scalepilot_store::{ErrorComponent, Store};

const QUEUE: usize = 1000;

/// Sends alerts; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Alerter {
    tx: Option<mpsc::Sender<Value>>,
    events: Arc<Vec<AlertEvent>>,
}

impl Alerter {
    /// An alerter posting to `cfg.webhook`, or a silent one without config.
    pub(crate) fn start(
        cfg: Option<&Alerts>,
        http: reqwest::Client,
        store: Arc<dyn Store>,
    ) -> (Alerter, Option<tokio::task::JoinHandle<()>>) {
        let Some(cfg) = cfg else {
            return (Alerter::default(), None);
        };
        let (tx, mut rx) = mpsc::channel::<Value>(QUEUE);
        let url = cfg.webhook.clone();
        let timeout = Duration::try_from(cfg.timeout).unwrap_or(Duration::from_secs(5));
        let attempts = cfg.attempts.max(1);
        let task = tokio::spawn(async move {
            while let Some(body) = rx.recv().await {
                let mut delay = Duration::from_millis(500);
                let mut last_err = String::new();
                let mut sent = false;
                for attempt in 1..=attempts {
                    match http.post(&url).timeout(timeout).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            sent = true;
                            break;
                        }
                        Ok(r) => last_err = format!("HTTP {}", r.status()),
                        Err(e) => last_err = e.to_string(),
                    }
                    if attempt < attempts {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
                if !sent {
                    let msg = format!("webhook {url} failed after {attempts} attempts: {last_err}");
                    tracing::warn!("{msg}");
                    let group = body["group"].as_str();
                    let _ = store
                        .record_error(group, ErrorComponent::Alert, &msg, Timestamp::now())
                        .await;
                }
            }
        });
        (
            Alerter {
                tx: Some(tx),
                events: Arc::new(cfg.events.clone()),
            },
            Some(task),
        )
    }

    /// Queue an alert of kind `event` (dropped when that event is not configured).
    pub(crate) fn send(
        &self,
        event: AlertEvent,
        group: Option<&str>,
        message: &str,
        details: Value,
    ) {
        let Some(tx) = &self.tx else { return };
        if !self.events.contains(&event) {
            return;
        }
        let body = json!({
            "event": event,
            "group": group,
            "at": Timestamp::now().to_string(),
            "message": message,
            "details": details,
        });
        if tx.try_send(body).is_err() {
            tracing::warn!(event = event.as_str(), "alert queue full: alert dropped");
        }
    }

    /// Stop accepting alerts; the sender task drains the queue and ends.
    pub(crate) fn close(&mut self) {
        self.tx = None;
    }
}
