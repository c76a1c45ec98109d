//! Webhook alerts: a JSON POST per event, retried with exponential backoff.
//!
//! Alerts go through a bounded queue to one sender task, so a slow or dead webhook never
//! blocks scaling. Every alert that is not delivered is logged (warn) with its event, group
//! and why: the queue was full, the webhook failed `attempts` times, or the engine stopped
//! before it could be sent (at shutdown the count of those is logged too).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use scalepilot_core::config::{AlertEvent, Alerts};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use scalepilot_store::{ErrorComponent, Store};

const QUEUE: usize = 1000;

/// One queued alert.
struct Queued {
    event: AlertEvent,
    group: Option<String>,
    body: Value,
}

/// Log an alert that will never be delivered: which one, and why.
fn dropped(metrics: Option<&Metrics>, event: AlertEvent, group: Option<&str>, reason: &str) {
    if let Some(m) = metrics {
        m.alert_dropped();
    }
    tracing::warn!(
        event = %event,
        group = %group.unwrap_or("-"),
        "alert dropped: {reason}"
    );
}

/// Sends alerts; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Alerter {
    tx: Option<mpsc::Sender<Queued>>,
    events: Arc<Vec<AlertEvent>>,
    metrics: Option<Arc<Metrics>>,
}

/// [`AlertTask`]'s control: the sender task drains the queue, then gives up when told.
const RUNNING: u8 = 0;
/// Take no new alert (the engine stops): send what is queued, then end.
const CLOSING: u8 = 1;
/// The shutdown grace ran out: drop (and log) the alert in flight and all queued ones.
const GIVE_UP: u8 = 2;

/// The sender task, owned by the engine: [`AlertTask::finish`] drains it at shutdown.
pub(crate) struct AlertTask {
    handle: tokio::task::JoinHandle<()>,
    control: watch::Sender<u8>,
}

impl AlertTask {
    /// Stop taking alerts and wait up to `grace` for the queued ones to be delivered, then
    /// drop the rest, logging each and their count. (`Alerter` clones may live on: alerts
    /// they send later are dropped and logged.)
    pub(crate) async fn finish(mut self, grace: Duration) {
        let _ = self.control.send(CLOSING);
        if tokio::time::timeout(grace, &mut self.handle).await.is_ok() {
            return;
        }
        let _ = self.control.send(GIVE_UP);
        // The task logs each alert it drops and the count, then ends at once.
        if tokio::time::timeout(Duration::from_secs(1), &mut self.handle)
            .await
            .is_err()
        {
            self.handle.abort();
            tracing::warn!("alerts: the sender did not stop; queued alerts dropped");
        }
    }
}

impl Alerter {
    /// An alerter posting to `cfg.webhook`, or a silent one without config.
    pub(crate) fn start(
        cfg: Option<&Alerts>,
        http: reqwest::Client,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> (Alerter, Option<AlertTask>) {
        let Some(cfg) = cfg else {
            return (Alerter::default(), None);
        };
        let (tx, mut rx) = mpsc::channel::<Queued>(QUEUE);
        let (control, mut ctl) = watch::channel(RUNNING);
        let url = cfg.webhook.clone();
        let timeout = Duration::try_from(cfg.timeout).unwrap_or(Duration::from_secs(5));
        let attempts = cfg.attempts.max(1);
        let counted = metrics.clone();
        let task = tokio::spawn(async move {
            let m = Some(&*counted);
            let mut closed = false;
            loop {
                let q = tokio::select! {
                    // Queued alerts first: closing still delivers them.
                    biased;
                    q = rx.recv() => q,
                    _ = ctl.wait_for(|c| *c >= CLOSING), if !closed => {
                        rx.close();
                        closed = true;
                        continue;
                    }
                };
                let Some(q) = q else { break };
                let group = q.group.as_deref();
                let mut delay = Duration::from_millis(500);
                let mut last_err = String::new();
                let mut sent = false;
                let mut stopped = false;
                for attempt in 1..=attempts {
                    let post = http.post(&url).timeout(timeout).json(&q.body).send();
                    let result = tokio::select! {
                        r = post => r,
                        _ = ctl.wait_for(|c| *c >= GIVE_UP) => { stopped = true; break; }
                    };
                    match result {
                        Ok(r) if r.status().is_success() => {
                            counted.alert_sent();
                            sent = true;
                            break;
                        }
                        Ok(r) => last_err = format!("HTTP {}", r.status()),
                        Err(e) => last_err = e.to_string(),
                    }
                    if attempt < attempts {
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = ctl.wait_for(|c| *c >= GIVE_UP) => { stopped = true; break; }
                        }
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
                if stopped {
                    // Shutdown's grace ran out: this alert and every queued one are lost.
                    dropped(m, q.event, group, "scalepilot is stopping");
                    let mut n = 1;
                    while let Ok(q) = rx.try_recv() {
                        dropped(m, q.event, q.group.as_deref(), "scalepilot is stopping");
                        n += 1;
                    }
                    tracing::warn!("stopping: {n} queued alert(s) dropped undelivered");
                    return;
                }
                if !sent {
                    let msg = format!("webhook {url} failed after {attempts} attempts: {last_err}");
                    dropped(m, q.event, group, &msg);
                    let _ = store
                        .record_error(group, ErrorComponent::Alert, &msg, Timestamp::now())
                        .await;
                }
            }
        });
        let events = cfg.events.clone();
        (
            Alerter {
                tx: Some(tx),
                events: Arc::new(events),
                metrics: Some(metrics),
            },
            Some(AlertTask {
                handle: task,
                control,
            }),
        )
    }

    /// Queue an alert of kind `event` (not sent when that event is not configured).
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
        let q = Queued {
            event,
            group: group.map(str::to_string),
            body,
        };
        match tx.try_send(q) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped(
                    self.metrics.as_deref(),
                    event,
                    group,
                    &format!("the queue is full ({QUEUE} alerts waiting)"),
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                dropped(
                    self.metrics.as_deref(),
                    event,
                    group,
                    "the alert sender has stopped",
                );
            }
        }
    }
}
