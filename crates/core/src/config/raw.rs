//! The config file as written: serde structs that mirror the YAML one to one.
//!
//! Values that need parsing (durations, time zones, cron and business-hours specs, step sizes)
//! stay strings here so that a bad value does not stop deserialization: `validate` checks them
//! all and reports every problem at once. Doc comments here are the user reference: they feed
//! `scalepilot schema`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A scalepilot policy file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where config snapshots, state, activities, errors and metric samples are kept.
    /// Default: a SQLite file `scalepilot.db` next to the config file.
    #[serde(default)]
    pub store: Option<RawStore>,
    /// Webhook alerts on scaling events, failures and repeated errors.
    #[serde(default)]
    pub alerts: Option<RawAlerts>,
    /// Engine settings.
    #[serde(default)]
    pub engine: Option<RawEngine>,
    /// A budget over all groups that have a `cost` section: hard caps on their spend together.
    #[serde(default)]
    pub budget: Option<RawGlobalBudget>,
    /// The REST API served by the daemon (bearer tokens from `scalepilot token create`). Off
    /// unless this section is present.
    #[serde(default)]
    pub api: Option<RawApi>,
    /// Where the groups come from: `file` (the `groups:` list, the default), `database` (the
    /// store's group rows, managed with `scalepilot groups`), or `both` (names unique across
    /// the two; on a clash the file wins).
    #[serde(default)]
    pub groups_from: Option<GroupsFrom>,
    /// The scaling groups: each one is a thing that is scaled, with its own policy. Required
    /// (at least one) unless `groups_from` is `database` or `both`.
    #[serde(default)]
    pub groups: Vec<RawGroup>,
}

/// Where the engine takes its groups from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupsFrom {
    /// The config file's `groups:` list.
    #[default]
    File,
    /// The store's group rows (`scalepilot groups import`).
    Database,
    /// Both: the file's groups and the store's rows.
    Both,
}

impl GroupsFrom {
    /// Whether the store's group rows are read.
    pub fn database(self) -> bool {
        self != GroupsFrom::File
    }
}

/// The store.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawStore {
    /// An embedded SQLite database file.
    Sqlite {
        /// Path of the database file, relative to the config file's folder.
        path: String,
        /// Keep metric samples this long. Default "7d", or "15d" when a predictive strategy
        /// learns a weekly profile (it is rebuilt from them after a restart).
        #[serde(default)]
        sample_retention: Option<String>,
    },
    /// A PostgreSQL database (its tables are created by migrations at connect, or by
    /// `scalepilot migrate`).
    Postgres {
        /// `postgres://USER@HOST:PORT/DB` (or `postgresql://`); `?sslmode=require` or
        /// `verify-full` for TLS. A password may be written here, but `password_file` or the
        /// `PGPASSWORD` environment variable keep it out of the config; it is never shown.
        url: String,
        /// Connections in the pool, at most. Default 8.
        #[serde(default)]
        pool: Option<u32>,
        /// File holding the password (relative to the config file's folder; surrounding
        /// whitespace is trimmed). Used when the URL has no password; else `PGPASSWORD`.
        #[serde(default)]
        password_file: Option<String>,
        /// Keep metric samples this long. Default "7d", or "15d" when a predictive strategy
        /// learns a weekly profile.
        #[serde(default)]
        sample_retention: Option<String>,
    },
}

/// Webhook alerts.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// URL that receives a JSON POST per alert.
    pub webhook: String,
    /// Per-attempt timeout. Default "5s".
    #[serde(default)]
    pub timeout: Option<String>,
    /// Attempts per alert, with exponential backoff. Default 4.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Alert when a group has failed this many evaluations in a row. Default 3.
    #[serde(default)]
    pub consecutive_errors: Option<u32>,
    /// Which events to send: `scaled`, `scale_failed`, `errors`, `config_rejected`, `budget`
    /// (a budget started capping a group). Default all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// Engine settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEngine {
    /// Groups evaluated at the same time, at most. Default 8.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Random delay added to each evaluation, as a fraction of the interval. Default 0.1.
    #[serde(default)]
    pub jitter: Option<f64>,
    /// Several daemons share one database: each group is evaluated by one live daemon at a
    /// time, under a lease with a fencing epoch (see docs/ha.md). Default false.
    #[serde(default)]
    pub ha: bool,
    /// With `ha: true`: how long a group's lease lasts without renewal (renewed every third
    /// of it). At most the smallest `evaluation_interval`, so a killed daemon's groups are
    /// taken over within two intervals. Default "10s", or the smallest interval when shorter.
    #[serde(default)]
    pub lease_ttl: Option<String>,
}

/// The REST API.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// Address and port to listen on: an IP address (`127.0.0.1:8080`, `[::1]:8080`,
    /// `0.0.0.0:8080`) or `localhost:PORT` (127.0.0.1); other host names are not resolved.
    /// Port 0 picks a free port. Default "127.0.0.1:8080".
    #[serde(default)]
    pub listen: Option<String>,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    #[serde(default)]
    pub tls: Option<RawApiTls>,
}

/// The API's TLS certificate and key.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApiTls {
    /// PEM file with the certificate chain (leaf first), relative to the config file's folder.
    pub cert: String,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1), relative to the config file's
    /// folder.
    pub key: String,
}

fn yes() -> bool {
    true
}

/// One scaling group.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// Unique name: 1 to 63 letters, digits, `-`, `_` and `.`, starting with a letter or digit.
    pub name: String,
    /// Fewest replicas. 0 allows scale to zero (then use an absolute metric, such as a request
    /// rate, so that scale-from-zero has something to go on).
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    /// How often the group is evaluated, e.g. "15s", "1m". Default "15s".
    #[serde(default)]
    pub evaluation_interval: Option<String>,
    /// Strategies; the largest recommendation wins (Kubernetes HPA semantics).
    pub strategies: Vec<RawStrategy>,
    /// Safety rules between recommendation and action.
    #[serde(default)]
    pub behavior: RawBehavior,
    /// Decide and record, never act.
    #[serde(default)]
    pub dry_run: bool,
    /// A disabled group is not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where the group's metrics come from. Without a source, the group sees the metrics that
    /// `simulate` provides: `request_rate` (req/s) and `utilization` (%).
    #[serde(default)]
    pub source: Option<RawSource>,
    /// What is scaled.
    #[serde(default)]
    pub target: Option<RawTarget>,
    /// Prices and budgets: `simulate` reports money, and budgets cap the count.
    #[serde(default)]
    pub cost: Option<RawCost>,
}

/// A group's prices and budget.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    /// Price of one replica for one hour, in your currency.
    pub price_per_replica_hour: f64,
    /// IANA time zone of the price hours and of the budget month. Default "UTC".
    #[serde(default)]
    pub timezone: Option<String>,
    /// Other prices at some hours (e.g. peak hours); the first matching entry wins.
    #[serde(default)]
    pub prices: Option<Vec<RawPrice>>,
    /// Hard caps on this group's spend.
    #[serde(default)]
    pub budget: Option<RawBudget>,
}

/// A price that applies at some hours.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    /// Business-hours spec such as "Mon-Fri 08:00-20:00".
    pub hours: String,
    pub price_per_replica_hour: f64,
}

/// A group's budget.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Spend per hour, at most: caps the count at floor(per_hour / price now).
    #[serde(default)]
    pub per_hour: Option<f64>,
    /// Spend per calendar month, at most, paced over what is left of the month.
    #[serde(default)]
    pub per_month: Option<f64>,
    /// Replicas kept even when that exceeds the budget. Default: the group's min.
    #[serde(default)]
    pub min_replicas: Option<u32>,
}

/// The budget of all groups together.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGlobalBudget {
    /// Spend per hour of all groups, at most.
    #[serde(default)]
    pub per_hour: Option<f64>,
    /// Spend per calendar month (UTC) of all groups, at most.
    #[serde(default)]
    pub per_month: Option<f64>,
}

/// A tolerance, one value for both directions or one per direction.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RawTolerance {
    /// The same relative band both ways, e.g. 0.1 = ±10 %.
    Both(f64),
    /// Separate bands.
    PerDirection(RawTolerances),
}

/// One tolerance band per direction.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTolerances {
    /// Band above the target before scaling up (default 0.1).
    #[serde(default)]
    pub up: Option<f64>,
    /// Band below the target before scaling down (default 0.1).
    #[serde(default)]
    pub down: Option<f64>,
}

/// A strategy: one way of turning observations into a recommended replica count.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawStrategy {
    /// Keep a metric at a target. Either `target` (value form: desired = ceil(current × value /
    /// target), e.g. utilization 70 %; from 0 replicas ceil(value / target)) or
    /// `target_per_replica` (per-replica form: desired = ceil(total / target_per_replica), e.g.
    /// 50 req/s per instance).
    TargetTracking {
        /// Metric name (must be provided by the group's source).
        metric: String,
        /// Target value of the metric (value form).
        #[serde(default)]
        target: Option<f64>,
        /// Target amount of the metric per replica (per-replica form).
        #[serde(default)]
        target_per_replica: Option<f64>,
        /// No change while |value/target − 1| stays within this band (a ratio exactly on the
        /// edge is within it). Default 0.1.
        #[serde(default)]
        tolerance: Option<RawTolerance>,
    },
    /// Step scaling on upper/lower bounds of one or more metrics.
    Threshold {
        /// The metrics and their bounds. Any metric above its upper bound votes up; scaling down
        /// needs every metric below its lower bound.
        metrics: Vec<RawThresholdMetric>,
        /// Step up: a count ("2") or a percentage of the current count ("50%"). Default 1.
        #[serde(default)]
        scale_up_by: Option<RawStep>,
        /// Step down: a count or a percentage. Default 1.
        #[serde(default)]
        scale_down_by: Option<RawStep>,
        /// Act only when the confidence (0..1) reaches this. Default 0 (any crossing acts).
        #[serde(default)]
        min_confidence: Option<f64>,
        /// "N of M": act only when the condition (a crossing with enough confidence) held in
        /// at least this many of the last `evaluation_periods` evaluations, this one included
        /// (which must hold too). Default: `evaluation_periods`; 1 when neither is set.
        #[serde(default)]
        datapoints_to_alarm: Option<u32>,
        /// How many recent evaluations `datapoints_to_alarm` counts over, 1 to 100. Default:
        /// `datapoints_to_alarm`; 1 when neither is set.
        #[serde(default)]
        evaluation_periods: Option<u32>,
        /// Scale to exactly this many replicas while the condition holds (either direction),
        /// instead of stepping by `scale_up_by`/`scale_down_by`.
        #[serde(default)]
        set_to: Option<u32>,
    },
    /// Time windows in an IANA time zone that set min/max/fixed replicas while active.
    Schedule {
        /// IANA time zone, e.g. "Asia/Dhaka", "America/New_York". Default "UTC".
        #[serde(default)]
        timezone: Option<String>,
        /// The windows; while several are active the largest min and smallest max apply.
        windows: Vec<RawWindow>,
    },
    /// Forecast the metric from its own history (daily and weekly seasonality, a fast level
    /// with a damped trend) and provision for the largest value expected over the next
    /// startup + evaluation interval, never below what the observed value asks for. With less
    /// than one day of history it tracks the observed value (cold start).
    Predictive {
        /// Metric name: a total such as a request rate (not a per-replica average).
        metric: String,
        /// How much of the metric one replica serves (e.g. 50 req/s). Required when the group
        /// has a source; `simulate` uses its own capacity when omitted.
        #[serde(default)]
        capacity_per_replica: Option<f64>,
        /// Service objective (default): the headroom over the estimate is the least that would
        /// have left no more unserved demand over `history` than target tracking at this
        /// utilization (holding its largest recommendation for 5 minutes, like the HPA) would
        /// have left on the same traffic. Default 70.
        #[serde(default)]
        baseline_target_pct: Option<f64>,
        /// Accept this many times the baseline's unserved demand (the frontier knob: above 1
        /// is cheaper, below 1 serves more). Default 1.
        #[serde(default)]
        baseline_unserved_factor: Option<f64>,
        /// Service objective instead of the baseline: the least headroom that would have left
        /// at most this percentage of demand unserved over `history` (scored against the
        /// largest value seen within each horizon).
        #[serde(default)]
        max_unserved_pct: Option<f64>,
        /// Service objective instead of `max_unserved_pct`: the least headroom that would have
        /// fully served this percentage of horizons over `history`. A rare huge spike counts
        /// once, not by its size, so spiky traffic does not buy headroom for spikes it cannot
        /// catch anyway.
        #[serde(default)]
        coverage_pct: Option<f64>,
        /// Least headroom fraction while no season has been learned (cold start). Default 0.5,
        /// about a 67 % target: without a forecast, behave like target tracking.
        #[serde(default)]
        cold_start_headroom: Option<f64>,
        /// Headroom fraction used until 20 forecasts have been scored. Default 0.25.
        #[serde(default)]
        initial_headroom: Option<f64>,
        /// Never less headroom than this fraction of the estimate (0.2 = 20 %): room for bursts
        /// shorter than the metric's resolution, which no history of it can show. Default 0.
        #[serde(default)]
        min_headroom: Option<f64>,
        /// Seasons to learn: `daily`, `weekly`. Default both.
        #[serde(default)]
        seasonality: Option<Vec<String>>,
        /// Width of a seasonal bucket; must divide a day. Default "5m".
        #[serde(default)]
        resolution: Option<String>,
        /// IANA time zone whose days and weeks the seasons follow. Default "UTC".
        #[serde(default)]
        timezone: Option<String>,
        /// Time from asking for a replica to it serving. Default "60s".
        #[serde(default)]
        startup: Option<String>,
        /// How long scored forecasts count when learning the headroom: they are exponentially
        /// weighted, one scored this long ago weighing 1/e. Default "1d".
        #[serde(default)]
        history: Option<String>,
        /// Record forecasts and would-be decisions, but recommend only what the observed value
        /// asks for.
        #[serde(default)]
        forecast_only: bool,
        /// A trace (`timestamp_seconds,value` CSV, a count per step; second 0 = `start`)
        /// replayed into the model before the first evaluation, so a new group starts with
        /// its seasons learned.
        #[serde(default)]
        warm_start: Option<RawWarmStart>,
    },
    /// Reactive cost-aware scaling: provision for a level of the observed value with the least
    /// headroom that met the service objective over `history` (the same objectives and
    /// learning as `predictive`, without seasons).
    Cost {
        /// Metric name: a total such as a request rate.
        metric: String,
        /// How much of the metric one replica serves. Required when the group has a source.
        #[serde(default)]
        capacity_per_replica: Option<f64>,
        /// Service objective (default): no more unserved demand than target tracking at this
        /// utilization would have left on the same history. Default 70.
        #[serde(default)]
        baseline_target_pct: Option<f64>,
        /// Accept this many times the baseline's unserved demand. Default 1.
        #[serde(default)]
        baseline_unserved_factor: Option<f64>,
        /// Service objective instead: percent of demand left unserved.
        #[serde(default)]
        max_unserved_pct: Option<f64>,
        /// Service objective instead: percent of horizons fully served.
        #[serde(default)]
        coverage_pct: Option<f64>,
        /// Headroom fraction used until 20 estimates have been scored. Default 0.25.
        #[serde(default)]
        initial_headroom: Option<f64>,
        /// Never less headroom than this fraction of the estimate. Default 0.
        #[serde(default)]
        min_headroom: Option<f64>,
        /// Time from asking for a replica to it serving. Default "60s".
        #[serde(default)]
        startup: Option<String>,
        /// How long scored estimates count (exponential weighting, 1/e at this age). Default
        /// "1d".
        #[serde(default)]
        history: Option<String>,
    },
}

/// A trace replayed into a predictive model before it starts.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWarmStart {
    /// CSV file `timestamp_seconds,value` (value = count per step, as in traces/); relative to
    /// the config file's folder.
    pub trace: String,
    /// Wall-clock time of the trace's second 0, RFC 3339 (e.g. "2026-11-01T00:00:00Z").
    pub start: String,
    /// Seconds per row when the CSV's timestamps do not say (default: their spacing).
    #[serde(default)]
    pub step: Option<u32>,
    /// Multiply the trace's rate by this to get the metric (default 1).
    #[serde(default)]
    pub scale: Option<f64>,
}

/// A step size: a replica count or a percentage string such as "50%".
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RawStep {
    /// Replicas.
    Count(u32),
    /// "N%" of the current count (rounded up, at least 1).
    Text(String),
}

/// One metric of a threshold strategy.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawThresholdMetric {
    /// Metric name (cpu, memory, request_rate, queue_length, error_rate, latency_p95, …).
    pub metric: String,
    /// How samples in the window are combined: avg, max or p95. Default avg.
    #[serde(default)]
    pub aggregation: Option<String>,
    /// Aggregation window, e.g. "5m". Default "0s": the latest value only.
    #[serde(default)]
    pub window: Option<String>,
    /// Above this, vote to scale up. Strict: a value equal to it does not cross.
    #[serde(default)]
    pub upper: Option<f64>,
    /// Below this, vote to scale down. Strict: a value equal to it does not cross.
    #[serde(default)]
    pub lower: Option<f64>,
    /// Weight in the confidence score. Default 1.
    #[serde(default)]
    pub weight: Option<f64>,
}

/// A schedule window: business hours or a cron start with a duration.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Optional label used in reasons.
    #[serde(default)]
    pub name: Option<String>,
    /// Business hours such as "Mon-Fri 09:00-17:00" or "Sat,Sun 10:00-14:00"; an end before
    /// the start runs past midnight ("Fri 22:00-02:00").
    #[serde(default)]
    pub business_hours: Option<String>,
    /// A 5-field cron expression for the window's start, e.g. "0 18 * * FRI".
    #[serde(default)]
    pub cron: Option<String>,
    /// How long a cron window lasts, e.g. "2h". Required with `cron`.
    #[serde(default)]
    pub duration: Option<String>,
    /// Raise the minimum while active.
    #[serde(default)]
    pub min: Option<u32>,
    /// Lower the maximum while active.
    #[serde(default)]
    pub max: Option<u32>,
    /// Pin the count while active (sets min and max).
    #[serde(default)]
    pub replicas: Option<u32>,
}

/// What stands between the combined recommendation and the action.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBehavior {
    /// Rules for scaling up. Defaults: no stabilization, at most max(4 pods, 100 %) per 15 s.
    #[serde(default)]
    pub scale_up: Option<RawDirection>,
    /// Rules for scaling down. Defaults: 300 s stabilization, at most 100 % per 15 s.
    #[serde(default)]
    pub scale_down: Option<RawDirection>,
    /// General cooldown: after any scaling action, no action of either kind for this long.
    #[serde(default)]
    pub cooldown: Option<String>,
    /// After this many consecutive evaluations with a missing or failed metric, go to a fixed
    /// count. Without it, missing data only ever holds.
    #[serde(default)]
    pub fallback: Option<RawFallback>,
    /// Scale only inside these hours; outside them the count holds (min/max still apply).
    #[serde(default)]
    pub business_hours_only: Option<RawBusinessHours>,
}

/// Rules for one direction.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDirection {
    /// Act on the most conservative recommendation of this window (max for down, min for up).
    #[serde(default)]
    pub stabilization: Option<String>,
    /// Rate policies (Kubernetes autoscaling/v2 semantics).
    #[serde(default)]
    pub policies: Option<Vec<RawRatePolicy>>,
    /// How policies combine: max (the largest change allowed), min, or disabled (no scaling
    /// in this direction). Default max.
    #[serde(default)]
    pub select: Option<String>,
    /// After a scaling action in this direction, no further action in this direction for this long.
    #[serde(default)]
    pub cooldown: Option<String>,
    /// At most this many replicas per action.
    #[serde(default)]
    pub max_step: Option<u32>,
}

/// A rate policy: at most `value` pods or percent per `period`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRatePolicy {
    /// "pods" or "percent".
    #[serde(rename = "type")]
    pub kind: String,
    /// Pods or percent allowed per period.
    pub value: u32,
    /// The period, e.g. "15s", "1m".
    pub period: String,
}

/// Fixed count to use while metrics keep failing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    /// Consecutive failed evaluations before the fallback applies.
    pub after: u32,
    /// Replica count to go to.
    pub replicas: u32,
}

/// Hours inside which scaling is allowed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBusinessHours {
    /// IANA time zone. Default "UTC".
    #[serde(default)]
    pub timezone: Option<String>,
    /// One or more specs such as "Mon-Fri 09:00-17:00".
    pub hours: Vec<String>,
}

/// Where a group's metrics come from.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawSource {
    /// PromQL instant queries over Prometheus' HTTP API.
    Prometheus {
        /// Base URL, e.g. "http://127.0.0.1:9090".
        url: String,
        /// Metric name → PromQL query returning one number.
        queries: BTreeMap<String, String>,
        /// Request timeout. Default "5s".
        #[serde(default)]
        timeout: Option<String>,
    },
    /// GET a URL and pick numbers with JSON pointers.
    HttpJson {
        /// The URL to GET.
        url: String,
        /// Metric name → JSON pointer, e.g. "/stats/qps".
        metrics: BTreeMap<String, String>,
        /// Request timeout. Default "5s".
        #[serde(default)]
        timeout: Option<String>,
    },
    /// Scrape each pool instance's /metrics (Prometheus text format) directly.
    PrometheusText {
        /// Metric name → `rate(NAME)` (per-second increase of a counter, summed over instances),
        /// `sum(NAME)`, `avg(NAME)` or `max(NAME)` of a gauge over instances.
        metrics: BTreeMap<String, String>,
        /// Path scraped on each instance. Default "/metrics".
        #[serde(default)]
        path: Option<String>,
    },
    /// Fixed values (tests, dry runs).
    Static {
        /// Metric name → value.
        values: BTreeMap<String, f64>,
    },
    /// Replay a trace file (`timestamp_seconds,value`) as `request_rate` and `utilization`.
    Trace {
        /// Path of the CSV file.
        file: String,
        /// Time compression: 60 plays a minute of trace per second. Default 1.
        #[serde(default)]
        speedup: Option<f64>,
        /// Capacity of one replica in req/s, used to derive `utilization`.
        #[serde(default)]
        capacity_per_replica: Option<f64>,
        /// Multiply the (time-compressed) rate by this. Default 1.
        #[serde(default)]
        scale: Option<f64>,
        /// Trace second where the replay starts. Default: the trace's first row.
        #[serde(default)]
        from: Option<u64>,
    },
}

/// What a group scales.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawTarget {
    /// Local processes started from a command with `{port}` (and `{host}`) substituted.
    ProcessPool(RawProcessPool),
    /// An HAProxy backend kept equal to a pool's healthy instances.
    Haproxy(RawHaproxy),
    /// A Docker Compose service. Not implemented yet: refused by validation.
    Compose {
        /// Path of the compose file.
        file: String,
        /// Service name.
        service: String,
    },
    /// A Terraform variable holding the count. Not implemented yet: refused by validation.
    Terraform {
        /// Working directory of the configuration.
        dir: String,
        /// Name of the count variable.
        variable: String,
    },
    /// An AWS (or compatible) auto scaling group. Not implemented yet: refused by validation.
    AwsAsg {
        /// Auto scaling group name.
        name: String,
        /// Region. Default "us-east-1".
        #[serde(default)]
        region: Option<String>,
        /// Endpoint override (e.g. a local moto server).
        #[serde(default)]
        endpoint: Option<String>,
    },
    /// Run a command with the desired count in `SCALEPILOT_DESIRED` (and `SCALEPILOT_GROUP`).
    Command {
        /// The command line (run with `sh -c`).
        command: String,
        /// A command that prints the current count on stdout. Without it, the current count is
        /// the last one applied successfully (or the group's min before any).
        #[serde(default)]
        status_command: Option<String>,
        /// Timeout. Default "60s".
        #[serde(default)]
        timeout: Option<String>,
    },
}

/// A pool of local processes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProcessPool {
    /// Command line, e.g. "scalepilot backend --host {host} --port {port}".
    pub command: String,
    /// Port range "20000-20100" (on each host).
    pub ports: String,
    /// Addresses to place instances on, each with an optional maximum. Default: 127.0.0.1
    /// without a maximum.
    #[serde(default)]
    pub hosts: Option<Vec<RawHost>>,
    /// Health check path. Default "/healthz".
    #[serde(default)]
    pub health_path: Option<String>,
    /// Health check interval. Default "10s".
    #[serde(default)]
    pub health_interval: Option<String>,
    /// Failed checks in a row before an instance is replaced. Default 3.
    #[serde(default)]
    pub unhealthy_after: Option<u32>,
    /// Which instance scale-in removes: `lifo` (newest first) or `least_loaded` (the lowest
    /// `load_metric`). Default lifo.
    #[serde(default)]
    pub scale_in: Option<String>,
    /// With `least_loaded`: the metric whose value is an instance's load, read from the
    /// Prometheus text each instance serves (at the `prometheus_text` source's `path`, else
    /// /metrics). Default `backend_in_flight` (requests in flight of `scalepilot backend`).
    /// `least_loaded` needs a `prometheus_text` source or an explicit `load_metric`.
    #[serde(default)]
    pub load_metric: Option<String>,
    /// Time between taking an instance out of rotation and stopping it. Default "5s".
    #[serde(default)]
    pub drain: Option<String>,
    /// Stop the instances when scalepilot exits. Default false: they keep serving and the
    /// next run adopts them.
    #[serde(default)]
    pub stop_on_exit: Option<bool>,
}

impl RawProcessPool {
    /// `ports` as (first, last), when it reads "FIRST-LAST" (validation also checks the bounds).
    pub fn port_range(&self) -> Option<(u16, u16)> {
        let (a, b) = self.ports.split_once('-')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    }
}

/// A host of a process pool.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// IP address the instances listen on (e.g. 127.0.0.2).
    pub address: String,
    /// Most instances on this host. Default: no limit.
    #[serde(default)]
    pub max: Option<u32>,
}

/// An HAProxy backend in front of a pool.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHaproxy {
    /// Backend name in HAProxy.
    pub backend: String,
    /// Runtime API socket (`stats socket … level admin`): a unix path or "host:port".
    /// Required unless `config_file` is used.
    #[serde(default)]
    pub admin_socket: Option<String>,
    /// Config-file mode, for setups without a runtime API.
    #[serde(default)]
    pub config_file: Option<RawHaproxyFile>,
    /// Prefix of the server names scalepilot manages. Default "sp-".
    #[serde(default)]
    pub server_prefix: Option<String>,
    /// Remove servers of the backend that scalepilot does not manage. Default false (they are
    /// reported).
    #[serde(default)]
    pub remove_unknown: Option<bool>,
    /// Longest wait for a draining server's sessions to reach zero. Default "30s".
    #[serde(default)]
    pub drain_timeout: Option<String>,
    /// The pool behind the backend.
    pub pool: RawProcessPool,
}

/// HAProxy config-file mode.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHaproxyFile {
    /// The config file HAProxy runs with (rewritten atomically).
    pub path: String,
    /// Template of the whole file; `{{servers}}` is replaced by the backend's server lines.
    pub template: String,
    /// HAProxy's master socket (`-S`), for a graceful `reload`.
    pub master_socket: String,
    /// The haproxy binary used to check a new file (`haproxy -c`). Default "haproxy".
    #[serde(default)]
    pub haproxy: Option<String>,
}
