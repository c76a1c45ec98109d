//! Prometheus metrics of the engine (and of the REST API, which reports through
//! [`Metrics::observe_api`]), encoded in the text exposition format by [`Metrics::encode`].
//!
//! Series are labelled per group, so their number grows with the groups (100,000 groups make
//! a /metrics page of tens of MB); a group's series are removed when it leaves the config
//! ([`Metrics::forget_group`]), so the page does not grow forever across reloads.
//!
//! `kind` of `scalepilot_source_errors_total` and `scalepilot_target_errors_total` is one of a
//! small fixed set (see [`ErrorKind`]), classified from the error's text: a free-form label
//! would make a series per distinct message.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A series' labels, as (name, value) pairs in a fixed order per family.
type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Decision and action directions.
const DIRECTIONS: [&str; 3] = ["up", "down", "none"];
/// Outcomes of a scaling action.
const OUTCOMES: [&str; 4] = ["succeeded", "failed", "dry_run", "interrupted"];

/// The classification of a source's or target's error, for the `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// It did not answer in time.
    Timeout,
    /// It could not be reached (connection refused or reset, DNS).
    Connect,
    /// It answered with an HTTP error status (or a command exited non-zero).
    HttpStatus,
    /// Its answer could not be read (not JSON, not a number, invalid value).
    Parse,
    /// The value asked for is not there (no series, no such field or file).
    Missing,
    /// Anything else.
    Other,
}

impl ErrorKind {
    const ALL: [ErrorKind; 6] = [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::HttpStatus,
        ErrorKind::Parse,
        ErrorKind::Missing,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Parse => "parse",
            ErrorKind::Missing => "missing",
            ErrorKind::Other => "other",
        }
    }

    /// Classify an error message. The messages come from many sources and targets, so this
    /// goes by well-known words; the order matters (a timed-out connect is a timeout).
    pub fn of(message: &str) -> ErrorKind {
        let m = message.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
        if has(&["timed out", "timeout", "did not answer within"]) {
            ErrorKind::Timeout
        } else if has(&["connect", "connection", "dns", "unreachable", "refused"]) {
            ErrorKind::Connect
        } else if has(&[
            "http ",
            "status code",
            "exited with",
            "exit status",
            "exit code",
        ]) {
            ErrorKind::HttpStatus
        } else if has(&["parse", "invalid", "json", "expected", "not a number"]) {
            ErrorKind::Parse
        } else if has(&[
            "missing",
            "no data",
            "not found",
            "no series",
            "no such",
            "empty",
        ]) {
            ErrorKind::Missing
        } else {
            ErrorKind::Other
        }
    }
}

/// Every metric scalepilot exports. Cheap to share (`Arc`); all methods take `&self`.
pub struct Metrics {
    registry: Registry,
    desired: Family<Labels, Gauge>,
    current: Family<Labels, Gauge>,
    ready: Family<Labels, Gauge>,
    cost: Family<Labels, FloatGauge>,
    metric_value: Family<Labels, FloatGauge>,
    forecast_value: Family<Labels, FloatGauge>,
    decisions: Family<Labels, Counter>,
    actions: Family<Labels, Counter>,
    source_errors: Family<Labels, Counter>,
    target_errors: Family<Labels, Counter>,
    alerts_sent: Counter,
    alerts_dropped: Counter,
    api_requests: Family<Labels, Counter>,
    budget_spend: FloatGauge,
    engine_enabled: Gauge,
    groups: Gauge,
    evaluation_duration: Histogram,
    loop_lag: Histogram,
    store_duration: Histograms,
    api_duration: Histograms,
    /// Per group, the metric names with a `metric` label series (to remove them with it) and
    /// its cost per hour (summed into the budget spend when encoding, not at each evaluation).
    per_group: Mutex<HashMap<String, GroupSeries>>,
}

#[derive(Default)]
struct GroupSeries {
    metrics: BTreeSet<String>,
    forecasts: BTreeSet<String>,
    cost: Option<f64>,
}

fn group(g: &str) -> Labels {
    vec![("group", g.to_string())]
}

fn group_and(g: &str, key: &'static str, value: &str) -> Labels {
    vec![("group", g.to_string()), (key, value.to_string())]
}

fn duration_histogram() -> Histogram {
    // 1 ms to about 2 min.
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            desired: Family::default(),
            current: Family::default(),
            ready: Family::default(),
            cost: Family::default(),
            metric_value: Family::default(),
            forecast_value: Family::default(),
            decisions: Family::default(),
            actions: Family::default(),
            source_errors: Family::default(),
            target_errors: Family::default(),
            alerts_sent: Counter::default(),
            alerts_dropped: Counter::default(),
            api_requests: Family::default(),
            budget_spend: FloatGauge::default(),
            engine_enabled: Gauge::default(),
            groups: Gauge::default(),
            evaluation_duration: duration_histogram(),
            loop_lag: duration_histogram(),
            store_duration: Family::new_with_constructor(duration_histogram),
            api_duration: Family::new_with_constructor(duration_histogram),
            per_group: Mutex::default(),
            registry: Registry::default(),
        };
        let r = &mut m.registry;
        r.register(
            "scalepilot_group_desired_replicas",
            "The count the group's last evaluation decided on",
            m.desired.clone(),
        );
        r.register(
            "scalepilot_group_current_replicas",
            "The target's count at the group's last evaluation",
            m.current.clone(),
        );
        r.register(
            "scalepilot_group_ready_replicas",
            "The target's serving replicas at the group's last evaluation",
            m.ready.clone(),
        );
        r.register(
            "scalepilot_group_cost_per_hour",
            "What the group's current replicas cost per hour (priced groups)",
            m.cost.clone(),
        );
        r.register(
            "scalepilot_group_metric_value",
            "The last observed value of each of the group's metrics",
            m.metric_value.clone(),
        );
        r.register(
            "scalepilot_group_forecast_value",
            "The latest forecast estimate of a predictive strategy's metric",
            m.forecast_value.clone(),
        );
        r.register(
            "scalepilot_decisions",
            "Evaluations by the direction decided (up, down, none)",
            m.decisions.clone(),
        );
        r.register(
            "scalepilot_scaling_actions",
            "Scaling actions by direction and outcome (succeeded, failed, dry_run, interrupted)",
            m.actions.clone(),
        );
        r.register(
            "scalepilot_source_errors",
            "Metrics a source failed to observe, by kind (timeout, connect, http_status, parse, missing, other)",
            m.source_errors.clone(),
        );
        r.register(
            "scalepilot_target_errors",
            "Failed target calls, by kind (timeout, connect, http_status, parse, missing, other)",
            m.target_errors.clone(),
        );
        r.register(
            "scalepilot_alerts_sent",
            "Alerts the webhook accepted",
            m.alerts_sent.clone(),
        );
        r.register(
            "scalepilot_alerts_dropped",
            "Alerts given up on (queue full, webhook failing, stopping)",
            m.alerts_dropped.clone(),
        );
        r.register(
            "scalepilot_api_requests",
            "REST API requests by method, route template and status",
            m.api_requests.clone(),
        );
        r.register(
            "scalepilot_budget_spend_per_hour",
            "What all priced groups' current replicas cost per hour together",
            m.budget_spend.clone(),
        );
        r.register(
            "scalepilot_engine_enabled",
            "1 while groups are evaluated, 0 when switched off globally",
            m.engine_enabled.clone(),
        );
        r.register(
            "scalepilot_groups",
            "Groups in the config",
            m.groups.clone(),
        );
        r.register(
            "scalepilot_evaluation_duration_seconds",
            "How long one group's evaluation took (observe, decide, act, record)",
            m.evaluation_duration.clone(),
        );
        r.register(
            "scalepilot_loop_lag_seconds",
            "How late a group's evaluation started after it was due",
            m.loop_lag.clone(),
        );
        r.register(
            "scalepilot_store_operation_duration_seconds",
            "Store operations of the evaluations, by operation",
            m.store_duration.clone(),
        );
        r.register(
            "scalepilot_api_request_duration_seconds",
            "REST API request durations by route template",
            m.api_duration.clone(),
        );
        m.engine_enabled.set(1);
        m
    }

    /// The text exposition format (what /metrics serves).
    pub fn encode(&self) -> String {
        let total: f64 = self
            .per_group
            .lock()
            .map(|g| g.values().filter_map(|s| s.cost).sum())
            .unwrap_or(0.0);
        self.budget_spend.set(total);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// One REST API request (`route` is the template, like `/api/v1/groups/{name}`).
    pub fn observe_api(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = vec![
            ("method", method.to_string()),
            ("route", route.to_string()),
            ("status", status.to_string()),
        ];
        self.api_requests.get_or_create(&labels).inc();
        self.api_duration
            .get_or_create(&vec![("route", route.to_string())])
            .observe(seconds);
    }

    fn series(&self, g: &str, f: impl FnOnce(&mut GroupSeries)) {
        let mut map = self.per_group.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(g.to_string()).or_default());
    }

    /// A group's evaluation: its counts, metrics and decided direction.
    pub(crate) fn evaluated(
        &self,
        g: &str,
        current: u32,
        ready: u32,
        desired: u32,
        metrics: &std::collections::BTreeMap<String, f64>,
    ) {
        self.current.get_or_create(&group(g)).set(current.into());
        self.ready.get_or_create(&group(g)).set(ready.into());
        self.desired.get_or_create(&group(g)).set(desired.into());
        self.decisions
            .get_or_create(&group_and(g, "direction", direction(current, desired)))
            .inc();
        for (name, value) in metrics {
            self.metric_value
                .get_or_create(&group_and(g, "metric", name))
                .set(*value);
        }
        let fresh: Vec<&String> = {
            let map = self.per_group.lock().unwrap_or_else(|p| p.into_inner());
            let known = map.get(g).map(|s| &s.metrics);
            metrics
                .keys()
                .filter(|m| known.is_none_or(|k| !k.contains(*m)))
                .collect()
        };
        if !fresh.is_empty() {
            self.series(g, |s| s.metrics.extend(fresh.into_iter().cloned()));
        }
    }

    /// A manual scale or a successful action changed the count outside an evaluation.
    pub(crate) fn counts(&self, g: &str, current: u32, desired: u32) {
        self.current.get_or_create(&group(g)).set(current.into());
        self.desired.get_or_create(&group(g)).set(desired.into());
    }

    /// The latest forecast of a predictive strategy's metric.
    pub(crate) fn forecast(&self, g: &str, metric: &str, estimate: f64) {
        self.forecast_value
            .get_or_create(&group_and(g, "metric", metric))
            .set(estimate);
        self.series(g, |s| {
            if !s.forecasts.contains(metric) {
                s.forecasts.insert(metric.to_string());
            }
        });
    }

    /// A priced group's cost per hour at its current count.
    pub(crate) fn cost(&self, g: &str, per_hour: f64) {
        self.cost.get_or_create(&group(g)).set(per_hour);
        self.series(g, |s| s.cost = Some(per_hour));
    }

    /// A scaling action ended (`outcome` is one of succeeded, failed, dry_run, interrupted).
    pub(crate) fn action(&self, g: &str, from: u32, to: u32, outcome: &'static str) {
        let labels = vec![
            ("group", g.to_string()),
            ("direction", direction(from, to).to_string()),
            ("outcome", outcome.to_string()),
        ];
        self.actions.get_or_create(&labels).inc();
    }

    pub(crate) fn source_error(&self, g: &str, message: &str) {
        let kind = ErrorKind::of(message).as_str();
        self.source_errors
            .get_or_create(&group_and(g, "kind", kind))
            .inc();
    }

    pub(crate) fn target_error(&self, g: &str, message: &str) {
        let kind = ErrorKind::of(message).as_str();
        self.target_errors
            .get_or_create(&group_and(g, "kind", kind))
            .inc();
    }

    pub(crate) fn alert_sent(&self) {
        self.alerts_sent.inc();
    }

    pub(crate) fn alert_dropped(&self) {
        self.alerts_dropped.inc();
    }

    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.engine_enabled.set(i64::from(enabled));
    }

    pub(crate) fn set_groups(&self, n: usize) {
        self.groups.set(n.try_into().unwrap_or(i64::MAX));
    }

    pub(crate) fn evaluation(&self, seconds: f64) {
        self.evaluation_duration.observe(seconds);
    }

    pub(crate) fn lag(&self, seconds: f64) {
        self.loop_lag.observe(seconds);
    }

    /// How long a store operation took (save_state, begin_activity, finish_activity,
    /// record_samples, load_state).
    pub(crate) fn store_op(&self, operation: &'static str, seconds: f64) {
        self.store_duration
            .get_or_create(&vec![("operation", operation.to_string())])
            .observe(seconds);
    }

    /// Remove every series of a group that left the config.
    pub(crate) fn forget_group(&self, g: &str) {
        let series = self
            .per_group
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(g)
            .unwrap_or_default();
        for family in [&self.desired, &self.current, &self.ready] {
            family.remove(&group(g));
        }
        self.cost.remove(&group(g));
        for m in &series.metrics {
            self.metric_value.remove(&group_and(g, "metric", m));
        }
        for m in &series.forecasts {
            self.forecast_value.remove(&group_and(g, "metric", m));
        }
        for d in DIRECTIONS {
            self.decisions.remove(&group_and(g, "direction", d));
            for o in OUTCOMES {
                self.actions.remove(&vec![
                    ("group", g.to_string()),
                    ("direction", d.to_string()),
                    ("outcome", o.to_string()),
                ]);
            }
        }
        for k in ErrorKind::ALL {
            self.source_errors.remove(&group_and(g, "kind", k.as_str()));
            self.target_errors.remove(&group_and(g, "kind", k.as_str()));
        }
    }
}

fn direction(from: u32, to: u32) -> &'static str {
    match to.cmp(&from) {
        std::cmp::Ordering::Greater => "up",
        std::cmp::Ordering::Less => "down",
        std::cmp::Ordering::Equal => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_into_the_fixed_kinds() {
        assert_eq!(
            ErrorKind::of("the source timed out after 30s"),
            ErrorKind::Timeout
        );
        assert_eq!(
            ErrorKind::of("error sending request: Connection refused"),
            ErrorKind::Connect
        );
        assert_eq!(
            ErrorKind::of("HTTP 503 Service Unavailable"),
            ErrorKind::HttpStatus
        );
        assert_eq!(ErrorKind::of("cannot parse `abc`"), ErrorKind::Parse);
        assert_eq!(ErrorKind::of("no series for the query"), ErrorKind::Missing);
        assert_eq!(ErrorKind::of("something odd"), ErrorKind::Other);
    }

    /// A removed group's series go; another group's stay.
    #[test]
    fn forgetting_a_group_removes_all_its_series() {
        let m = Metrics::new();
        let values = [("rps".to_string(), 3.0)].into_iter().collect();
        for g in ["a", "b"] {
            m.evaluated(g, 1, 1, 2, &values);
            m.action(g, 1, 2, "succeeded");
            m.source_error(g, "timed out");
            m.target_error(g, "HTTP 500");
            m.forecast(g, "rps", 4.5);
            m.cost(g, 2.0);
        }
        let text = m.encode();
        assert!(
            text.contains("scalepilot_budget_spend_per_hour 4.0"),
            "{text}"
        );
        m.forget_group("a");
        let text = m.encode();
        assert!(!text.contains("group=\"a\""), "{text}");
        assert!(
            text.contains("scalepilot_group_desired_replicas{group=\"b\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("scalepilot_budget_spend_per_hour 2.0"),
            "{text}"
        );
    }
}
