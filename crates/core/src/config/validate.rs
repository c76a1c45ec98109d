//! Semantic checks: raw groups → validated groups, collecting every problem with its path.

use std::collections::HashSet;
use std::sync::Arc;

use croner::parser::CronParser;
use jiff::SignedDuration;

use super::ranges::{self, DurationRange};
use super::raw::*;
use super::structure::Structured;
use super::{
    AlertEvent, Alerts, Api, ApiTls, Config, DEFAULT_API_LISTEN, DEFAULT_LOAD_METRIC, Engine,
    GlobalBudget, Group, IMPLEMENTED_TARGET_KINDS, SIMULATED_METRICS, ScaleIn, Store,
};
use crate::behavior::{Behavior, DirectionRules, Fallback, RateKind, RatePolicy, Select};
use crate::forecast::{Objective, Seasonality};
use crate::hours::{BusinessHours, HoursSpec, zone};
use crate::strategy::{
    Aggregation, Goal, Predictive, Schedule, ScheduleWindow, Step, Strategy, TargetTracking,
    Threshold, ThresholdMetric, WarmStart, When,
};

/// Most evaluations a threshold strategy's "N of M" looks back over: each one is kept in the
/// persisted state.
const MAX_EVALUATION_PERIODS: u32 = 100;

/// Default sample retention, in days, when a group learns a weekly profile.
const WEEKLY_RETENTION_DAYS: i64 = 15;

/// Collects (path, message) problems.
#[derive(Default)]
struct Ctx {
    problems: Vec<(String, String)>,
}

impl Ctx {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push((path.to_string(), message.into()));
    }

    /// A non-negative duration such as "90s", "5m", "1h30m"; `default` when absent.
    fn duration(
        &mut self,
        path: &str,
        text: Option<&str>,
        default: SignedDuration,
    ) -> SignedDuration {
        let Some(text) = text else { return default };
        match crate::duration::parse(text) {
            Ok(d) if d.is_negative() => {
                self.err(path, format!("duration \"{text}\" is negative"));
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.err(path, e);
                default
            }
        }
    }

    fn positive_duration(
        &mut self,
        path: &str,
        text: Option<&str>,
        default: SignedDuration,
    ) -> SignedDuration {
        let d = self.duration(path, text, default);
        if d.is_zero() && text.is_some() {
            self.err(path, "must be longer than 0s");
        }
        d
    }

    /// A duration within `range` (see [`ranges`]); `default` when absent or invalid.
    fn ranged_duration(
        &mut self,
        path: &str,
        text: Option<&str>,
        default: SignedDuration,
        range: DurationRange,
    ) -> SignedDuration {
        let Some(text) = text else { return default };
        match crate::duration::parse(text) {
            Ok(d) if range.contains(d) => d,
            Ok(d) if d.is_negative() => {
                self.err(path, format!("duration \"{text}\" is negative"));
                default
            }
            Ok(_) => {
                self.err(
                    path,
                    format!(
                        "{} \"{text}\" is out of range: expected {}",
                        field(path),
                        range.describe()
                    ),
                );
                default
            }
            Err(e) => {
                self.err(path, e);
                default
            }
        }
    }

    /// A count of at most `max` (the lower bound is checked where it has its own message).
    fn at_most(&mut self, path: &str, v: u32, min: u32, max: u32) {
        if v > max {
            self.err(
                path,
                format!(
                    "{} {v} is out of range: expected {min} to {max}",
                    field(path)
                ),
            );
        }
    }

    /// A finite number in `min..=max` (more than `min` when `min_exclusive`).
    fn number(&mut self, path: &str, v: f64, min: f64, min_exclusive: bool, max: f64) -> bool {
        let above = if min_exclusive { v > min } else { v >= min };
        let ok = v.is_finite() && above && v <= max;
        if !ok {
            let (lo, hi, v) = (ranges::num(min), ranges::num(max), ranges::num(v));
            let expected = if min_exclusive {
                format!("more than {lo}, at most {hi}")
            } else {
                format!("{lo} to {hi}")
            };
            self.err(
                path,
                format!("{} {v} is out of range: expected {expected}", field(path)),
            );
        }
        ok
    }

    fn zone(&mut self, path: &str, name: Option<&str>) -> (Arc<str>, jiff::tz::TimeZone) {
        let name = name.unwrap_or("UTC");
        match zone(name) {
            Ok(tz) => (name.into(), tz),
            Err(e) => {
                self.err(path, e);
                (name.into(), jiff::tz::TimeZone::UTC)
            }
        }
    }

    fn fraction(&mut self, path: &str, v: f64, what: &str) {
        if !(0.0..1.0).contains(&v) {
            self.err(
                path,
                format!("{what} {v} is out of range: expected 0 ≤ {what} < 1 (0.1 = 10 %)"),
            );
        }
    }
}

/// The field a path ends with: `groups[0].behavior.cooldown` → `cooldown`.
fn field(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

pub(super) fn config(raw: &Structured) -> (Config, Vec<(String, String)>) {
    let mut ctx = Ctx::default();
    let mut store = match &raw.store {
        None => Store::default(),
        Some(RawStore::Sqlite {
            path,
            sample_retention,
        }) => {
            if path.trim().is_empty() {
                ctx.err("store.path", "empty path");
            }
            Store::Sqlite {
                path: path.clone(),
                sample_retention: ctx.ranged_duration(
                    "store.sample_retention",
                    sample_retention.as_deref(),
                    SignedDuration::from_hours(7 * 24),
                    ranges::SAMPLE_RETENTION,
                ),
            }
        }
        Some(RawStore::Postgres {
            url,
            pool,
            password_file,
            sample_retention,
        }) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                // The URL itself is not repeated: it may hold a password.
                ctx.err("store.url", "expected a postgres:// or postgresql:// URL");
            }
            let pool = pool.unwrap_or(8);
            let (lo, hi) = ranges::STORE_POOL;
            ctx.at_most("store.pool", pool, lo, hi);
            if pool < lo {
                ctx.err(
                    "store.pool",
                    format!("pool {pool} is out of range: expected {lo} to {hi}"),
                );
            }
            if password_file.as_ref().is_some_and(|f| f.trim().is_empty()) {
                ctx.err("store.password_file", "empty path");
            }
            Store::Postgres {
                url: url.clone(),
                pool: pool.clamp(lo, hi),
                password_file: password_file.clone(),
                sample_retention: ctx.ranged_duration(
                    "store.sample_retention",
                    sample_retention.as_deref(),
                    SignedDuration::from_hours(7 * 24),
                    ranges::SAMPLE_RETENTION,
                ),
            }
        }
    };
    let alerts = raw.alerts.as_ref().map(|a| {
        check_url(&mut ctx, "alerts.webhook", &a.webhook);
        let attempts = a.attempts.unwrap_or(4);
        if attempts == 0 {
            ctx.err("alerts.attempts", "attempts must be at least 1");
        }
        let (lo, hi) = ranges::ALERT_ATTEMPTS;
        ctx.at_most("alerts.attempts", attempts, lo, hi);
        let consecutive_errors = a.consecutive_errors.unwrap_or(3);
        if consecutive_errors == 0 {
            ctx.err("alerts.consecutive_errors", "consecutive_errors must be at least 1");
        }
        ctx.at_most("alerts.consecutive_errors", consecutive_errors, 1, ranges::MAX_CONSECUTIVE);
        let events = match &a.events {
            None => AlertEvent::ALL.to_vec(),
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(k, e)| {
                    let event = AlertEvent::parse(e);
                    if event.is_none() {
                        ctx.err(
                            &format!("alerts.events[{k}]"),
                            format!("unknown event `{e}`, expected one of `scaled`, `scale_failed`, `errors`, `config_rejected`, `budget`"),
                        );
                    }
                    event
                })
                .collect(),
        };
        Alerts {
            webhook: a.webhook.clone(),
            timeout: ctx.ranged_duration("alerts.timeout", a.timeout.as_deref(), SignedDuration::from_secs(5), ranges::HTTP_TIMEOUT),
            attempts: attempts.max(1),
            consecutive_errors: consecutive_errors.max(1),
            events,
        }
    });
    let engine = match &raw.engine {
        None => Engine::default(),
        Some(e) => {
            let max_concurrency = e.max_concurrency.unwrap_or(8);
            if max_concurrency == 0 {
                ctx.err(
                    "engine.max_concurrency",
                    "max_concurrency must be at least 1",
                );
            }
            let (lo, hi) = ranges::MAX_CONCURRENCY;
            ctx.at_most("engine.max_concurrency", max_concurrency, lo, hi);
            let jitter = e.jitter.unwrap_or(0.1);
            ctx.fraction("engine.jitter", jitter, "jitter");
            let lease_ttl = ctx.ranged_duration(
                "engine.lease_ttl",
                e.lease_ttl.as_deref(),
                SignedDuration::from_secs(10),
                ranges::LEASE_TTL,
            );
            Engine {
                max_concurrency: max_concurrency.max(1),
                jitter: jitter.clamp(0.0, 0.99),
                ha: e.ha,
                lease_ttl,
            }
        }
    };
    let mut engine = engine;
    let groups = groups(&mut ctx, &raw.groups);
    if engine.ha {
        ha_checks(&mut ctx, raw, &mut engine, &groups);
    }
    // A weekly profile is rebuilt from stored samples after a restart: by default keep two
    // weeks of them when a group learns one (8 days is the least that works).
    let weekly = groups.iter().flat_map(|g| &g.strategies).any(|s| {
        matches!(s, crate::strategy::Strategy::Predictive(p) if p.seasonality.is_some_and(|s| s.weekly))
    });
    let explicit = matches!(
        &raw.store,
        Some(
            RawStore::Sqlite {
                sample_retention: Some(_),
                ..
            } | RawStore::Postgres {
                sample_retention: Some(_),
                ..
            }
        )
    );
    if weekly && !explicit {
        *store.sample_retention_mut() = SignedDuration::from_hours(WEEKLY_RETENTION_DAYS * 24);
    }
    let budget = raw.budget.as_ref().map(|b| {
        for (field, v) in [("per_hour", b.per_hour), ("per_month", b.per_month)] {
            money(&mut ctx, &format!("budget.{field}"), v);
        }
        if !groups.iter().any(|g| g.cost.is_some()) {
            ctx.err(
                "budget",
                "a global budget needs at least one group with a `cost` section (prices)",
            );
        }
        GlobalBudget {
            per_hour: b.per_hour,
            per_month: b.per_month,
        }
    });
    let api = raw.api.as_ref().map(|a| api(&mut ctx, a));
    (
        Config {
            groups_from: raw.groups_from,
            store,
            alerts,
            engine,
            budget,
            api,
            groups,
        },
        ctx.problems,
    )
}

/// The `api:` section: a listen address, and a TLS certificate and key that are not empty.
fn api(ctx: &mut Ctx, a: &RawApi) -> Api {
    let listen = a.listen.as_deref().unwrap_or(DEFAULT_API_LISTEN);
    let listen = super::parse_listen(listen).unwrap_or_else(|e| {
        ctx.err("api.listen", e);
        ([127, 0, 0, 1], 8080).into()
    });
    let tls = a.tls.as_ref().map(|t| {
        for (field, path) in [("cert", &t.cert), ("key", &t.key)] {
            if path.trim().is_empty() {
                ctx.err(&format!("api.tls.{field}"), "empty path");
            }
        }
        ApiTls {
            cert: t.cert.clone(),
            key: t.key.clone(),
        }
    });
    Api { listen, tls }
}

/// `engine.ha: true`: the lease must be short enough for the two-interval takeover, and
/// what is still kept per process is refused.
fn ha_checks(ctx: &mut Ctx, raw: &Structured, engine: &mut Engine, groups: &[Group]) {
    let explicit = raw.engine.as_ref().is_some_and(|e| e.lease_ttl.is_some());
    if let Some(smallest) = groups.iter().map(|g| g.evaluation_interval).min() {
        if !explicit && engine.lease_ttl > smallest {
            // The default follows the fastest group.
            engine.lease_ttl = smallest.max(SignedDuration::from_secs(1));
        } else if engine.lease_ttl > smallest {
            ctx.err(
                "engine.lease_ttl",
                format!(
                    "a lease of {:?} is longer than the smallest evaluation_interval ({smallest:?}): a killed daemon's groups would not be taken over within two intervals",
                    engine.lease_ttl
                ),
            );
        }
    }
    // A global budget works with HA: its ledger is then kept in the store, shared by every
    // daemon (docs/ha.md), so nothing more to check here.
}

fn groups(ctx: &mut Ctx, raw: &[(usize, RawGroup)]) -> Vec<Group> {
    let prefixed: Vec<(String, &RawGroup)> = raw
        .iter()
        .map(|(i, g)| (format!("groups[{i}]"), g))
        .collect();
    groups_at(ctx, &prefixed)
}

/// Validate groups (names unique among them) whose field paths start with the given prefixes:
/// `groups[1]` in a file, `groups[web]` for a database row. Returns (path, message) problems.
pub(super) fn groups_only(raw: &[(String, &RawGroup)]) -> (Vec<Group>, Vec<(String, String)>) {
    let mut ctx = Ctx::default();
    let out = groups_at(&mut ctx, raw);
    (out, ctx.problems)
}

fn groups_at(ctx: &mut Ctx, raw: &[(String, &RawGroup)]) -> Vec<Group> {
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (p, g) in raw {
        if g.name.is_empty()
            || !g
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            ctx.err(
                &format!("{p}.name"),
                format!(
                    "invalid group name \"{}\": use letters, digits, `-`, `_` and `.`",
                    g.name
                ),
            );
        } else if g.name.len() > ranges::MAX_GROUP_NAME {
            ctx.err(
                &format!("{p}.name"),
                format!(
                    "group name is {} characters long: expected 1 to {} characters",
                    g.name.len(),
                    ranges::MAX_GROUP_NAME
                ),
            );
        } else if !g.name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            ctx.err(
                &format!("{p}.name"),
                format!(
                    "invalid group name \"{}\": a group name starts with a letter or a digit",
                    g.name
                ),
            );
        } else if !names.insert(g.name.clone()) {
            ctx.err(
                &format!("{p}.name"),
                format!("duplicate group name \"{}\"", g.name),
            );
        }
        out.push(group(ctx, p, g));
    }
    out
}

fn group(ctx: &mut Ctx, p: &str, g: &RawGroup) -> Group {
    if g.min > g.max {
        ctx.err(
            &format!("{p}.min"),
            format!("min {} is greater than max {}", g.min, g.max),
        );
    }
    if g.max == 0 {
        ctx.err(&format!("{p}.max"), "max must be at least 1");
    }
    ctx.at_most(&format!("{p}.min"), g.min, 0, ranges::MAX_REPLICAS);
    ctx.at_most(&format!("{p}.max"), g.max, 1, ranges::MAX_REPLICAS);
    let evaluation_interval = ctx.ranged_duration(
        &format!("{p}.evaluation_interval"),
        g.evaluation_interval.as_deref(),
        SignedDuration::from_secs(15),
        ranges::EVALUATION_INTERVAL,
    );
    if let Some(source) = &g.source {
        check_source(ctx, &format!("{p}.source"), source);
    }
    if let Some(target) = &g.target {
        check_target(ctx, &format!("{p}.target"), target, g.source.as_ref());
    }
    let metrics = available_metrics(g.source.as_ref());
    if g.strategies.is_empty() {
        ctx.err(
            &format!("{p}.strategies"),
            "no strategies: expected at least one",
        );
    }
    let strategies = g
        .strategies
        .iter()
        .enumerate()
        .map(|(j, s)| strategy(ctx, &format!("{p}.strategies[{j}]"), s, &metrics, g))
        .collect();
    let behavior = behavior(ctx, &format!("{p}.behavior"), &g.behavior, g);
    let cost = g.cost.as_ref().map(|c| cost(ctx, &format!("{p}.cost"), c));
    Group {
        name: g.name.as_str().into(),
        min: g.min,
        max: g.max,
        evaluation_interval,
        strategies,
        behavior,
        dry_run: g.dry_run,
        enabled: g.enabled,
        source: g.source.as_ref().and_then(super::source_spec::compile),
        target: g.target.as_ref().and_then(|t| {
            let scale_in = match t {
                RawTarget::ProcessPool(pool) => Some(scale_in_of(pool, g.source.as_ref())),
                RawTarget::Haproxy(h) => Some(scale_in_of(&h.pool, g.source.as_ref())),
                _ => None,
            };
            super::target_spec::compile(t, scale_in)
        }),
        cost,
    }
}

/// A positive amount of money, when given.
fn money(ctx: &mut Ctx, path: &str, v: Option<f64>) {
    if let Some(v) = v
        && !(v.is_finite() && v >= 0.0)
    {
        ctx.err(path, format!("expected an amount of 0 or more, got {v}"));
    } else if let Some(v) = v {
        ctx.number(path, v, 0.0, false, ranges::MAX_BUDGET);
    }
}

fn cost(ctx: &mut Ctx, p: &str, c: &RawCost) -> crate::cost::Cost {
    let price = |ctx: &mut Ctx, path: &str, v: f64| {
        if !(v.is_finite() && v >= 0.0) {
            ctx.err(path, format!("price must be 0 or more, got {v}"));
        } else {
            ctx.number(path, v, 0.0, false, ranges::MAX_PRICE);
        }
        v.clamp(0.0, ranges::MAX_PRICE)
    };
    let base = price(
        ctx,
        &format!("{p}.price_per_replica_hour"),
        c.price_per_replica_hour,
    );
    let (zone_name, timezone) = ctx.zone(&format!("{p}.timezone"), c.timezone.as_deref());
    let mut schedule = Vec::new();
    for (k, e) in c.prices.iter().flatten().enumerate() {
        let ep = format!("{p}.prices[{k}]");
        let v = price(
            ctx,
            &format!("{ep}.price_per_replica_hour"),
            e.price_per_replica_hour,
        );
        match HoursSpec::parse(&e.hours) {
            Ok(spec) => schedule.push((spec, v)),
            Err(err) => ctx.err(&format!("{ep}.hours"), err),
        }
    }
    let budget = c.budget.as_ref().map(|b| {
        money(ctx, &format!("{p}.budget.per_hour"), b.per_hour);
        money(ctx, &format!("{p}.budget.per_month"), b.per_month);
        if let Some(r) = b.min_replicas {
            ctx.at_most(
                &format!("{p}.budget.min_replicas"),
                r,
                0,
                ranges::MAX_REPLICAS,
            );
        }
        if b.per_hour.is_none() && b.per_month.is_none() {
            ctx.err(
                &format!("{p}.budget"),
                "a budget needs `per_hour`, `per_month` or both",
            );
        }
        crate::cost::Budget {
            per_hour: b.per_hour,
            per_month: b.per_month,
            min_replicas: b.min_replicas,
        }
    });
    crate::cost::Cost {
        pricing: crate::cost::Pricing {
            base,
            zone_name: zone_name.to_string(),
            timezone,
            schedule,
        },
        budget,
    }
}

/// The metric names a group's source provides.
fn available_metrics(source: Option<&RawSource>) -> Vec<String> {
    match source {
        None
        | Some(RawSource::Trace {
            capacity_per_replica: Some(_),
            ..
        }) => SIMULATED_METRICS.iter().map(|s| s.to_string()).collect(),
        // Utilization needs a capacity to divide by.
        Some(RawSource::Trace { .. }) => vec!["request_rate".to_string()],
        Some(RawSource::Prometheus { queries, .. }) => queries.keys().cloned().collect(),
        Some(RawSource::HttpJson { metrics, .. })
        | Some(RawSource::PrometheusText { metrics, .. }) => metrics.keys().cloned().collect(),
        Some(RawSource::Static { values }) => values.keys().cloned().collect(),
    }
}

fn check_metric(ctx: &mut Ctx, path: &str, metric: &str, available: &[String]) {
    if !available.iter().any(|m| m == metric) {
        ctx.err(
            path,
            format!(
                "unknown metric `{metric}`: the group's source provides {}",
                if available.is_empty() {
                    "no metrics".to_string()
                } else {
                    available
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        );
    }
}

fn strategy(ctx: &mut Ctx, p: &str, s: &RawStrategy, metrics: &[String], g: &RawGroup) -> Strategy {
    match s {
        RawStrategy::TargetTracking {
            metric,
            target,
            target_per_replica,
            tolerance,
        } => {
            check_metric(ctx, &format!("{p}.metric"), metric, metrics);
            let goal = match (target, target_per_replica) {
                (Some(t), None) => Goal::Value(*t),
                (None, Some(t)) => Goal::PerReplica(*t),
                (Some(_), Some(_)) => {
                    ctx.err(p, "set either `target` or `target_per_replica`, not both");
                    Goal::Value(1.0)
                }
                (None, None) => {
                    ctx.err(
                        p,
                        "missing `target` (value form) or `target_per_replica` (per-replica form)",
                    );
                    Goal::Value(1.0)
                }
            };
            let t = match goal {
                Goal::Value(t) | Goal::PerReplica(t) => t,
            };
            let field = if target.is_some() {
                "target"
            } else {
                "target_per_replica"
            };
            if t <= 0.0 {
                ctx.err(
                    &format!("{p}.{field}"),
                    format!("{field} must be greater than 0, got {t}"),
                );
            } else if !ranges::metric_target(t) {
                ctx.number(
                    &format!("{p}.{field}"),
                    t,
                    0.0,
                    true,
                    ranges::MAX_METRIC_VALUE,
                );
            }
            let (up, down) = match tolerance {
                None => (0.1, 0.1),
                Some(RawTolerance::Both(v)) => (*v, *v),
                Some(RawTolerance::PerDirection(t)) => (t.up.unwrap_or(0.1), t.down.unwrap_or(0.1)),
            };
            let tp = format!("{p}.tolerance");
            match tolerance {
                Some(RawTolerance::PerDirection(_)) => {
                    ctx.fraction(&format!("{tp}.up"), up, "tolerance");
                    ctx.fraction(&format!("{tp}.down"), down, "tolerance");
                }
                _ => ctx.fraction(&tp, up, "tolerance"),
            }
            Strategy::TargetTracking(TargetTracking {
                metric: metric.as_str().into(),
                goal,
                tolerance_up: up,
                tolerance_down: down,
            })
        }
        RawStrategy::Threshold {
            metrics: ms,
            scale_up_by,
            scale_down_by,
            min_confidence,
            datapoints_to_alarm,
            evaluation_periods,
            set_to,
        } => {
            if ms.is_empty() {
                ctx.err(&format!("{p}.metrics"), "no metrics: expected at least one");
            }
            let list = ms
                .iter()
                .enumerate()
                .map(|(k, m)| threshold_metric(ctx, &format!("{p}.metrics[{k}]"), m, metrics))
                .collect();
            let min_confidence = min_confidence.unwrap_or(0.0);
            if !(0.0..=1.0).contains(&min_confidence) {
                ctx.err(
                    &format!("{p}.min_confidence"),
                    format!("min_confidence {min_confidence} is out of range: expected 0 to 1"),
                );
            }
            // Like CloudWatch alarms: one of the two alone means "every one of them".
            let periods = evaluation_periods.or(*datapoints_to_alarm).unwrap_or(1);
            let needed = datapoints_to_alarm.unwrap_or(periods);
            if !(1..=MAX_EVALUATION_PERIODS).contains(&periods) {
                ctx.err(
                    &format!("{p}.evaluation_periods"),
                    format!("evaluation_periods {periods} is out of range: expected 1 to {MAX_EVALUATION_PERIODS}"),
                );
            }
            if needed == 0 {
                ctx.err(
                    &format!("{p}.datapoints_to_alarm"),
                    "datapoints_to_alarm must be at least 1",
                );
            } else if needed > periods {
                ctx.err(
                    &format!("{p}.datapoints_to_alarm"),
                    format!("datapoints_to_alarm {needed} is greater than evaluation_periods {periods}: expected 1 ≤ datapoints_to_alarm ≤ evaluation_periods ≤ {MAX_EVALUATION_PERIODS}"),
                );
            }
            if let Some(k) = set_to {
                if scale_up_by.is_some() || scale_down_by.is_some() {
                    ctx.err(
                        &format!("{p}.set_to"),
                        "set either `set_to` or `scale_up_by`/`scale_down_by`, not both",
                    );
                }
                if *k < g.min || *k > g.max {
                    ctx.err(
                        &format!("{p}.set_to"),
                        format!(
                            "set_to {k} is outside the group's range {}..={}",
                            g.min, g.max
                        ),
                    );
                }
            }
            Strategy::Threshold(Threshold {
                metrics: list,
                scale_up_by: step(ctx, &format!("{p}.scale_up_by"), scale_up_by.as_ref()),
                scale_down_by: step(ctx, &format!("{p}.scale_down_by"), scale_down_by.as_ref()),
                min_confidence,
                datapoints_to_alarm: needed.clamp(1, MAX_EVALUATION_PERIODS),
                evaluation_periods: periods.clamp(1, MAX_EVALUATION_PERIODS),
                set_to: *set_to,
            })
        }
        RawStrategy::Predictive {
            metric,
            capacity_per_replica,
            baseline_target_pct,
            baseline_unserved_factor,
            max_unserved_pct,
            coverage_pct,
            cold_start_headroom,
            initial_headroom,
            min_headroom,
            seasonality,
            resolution,
            timezone,
            startup,
            history,
            forecast_only,
            warm_start,
        } => {
            let mut pr = forecasting(
                ctx,
                p,
                g,
                metrics,
                Forecasting {
                    metric,
                    capacity: *capacity_per_replica,
                    baseline: (*baseline_target_pct, *baseline_unserved_factor),
                    max_unserved_pct: *max_unserved_pct,
                    coverage_pct: *coverage_pct,
                    initial_headroom: *initial_headroom,
                    min_headroom: *min_headroom,
                    startup: startup.as_deref(),
                    history: history.as_deref(),
                },
            );
            let mut seasons = Seasonality {
                daily: true,
                weekly: true,
            };
            if let Some(list) = seasonality {
                seasons = Seasonality {
                    daily: false,
                    weekly: false,
                };
                for (k, name) in list.iter().enumerate() {
                    match name.as_str() {
                        "daily" => seasons.daily = true,
                        "weekly" => seasons.weekly = true,
                        other => ctx.err(
                            &format!("{p}.seasonality[{k}]"),
                            format!("unknown season `{other}`: expected `daily` or `weekly`"),
                        ),
                    }
                }
                if list.is_empty() {
                    ctx.err(
                        &format!("{p}.seasonality"),
                        "no seasons: expected `daily`, `weekly` or both (use kind: cost for none)",
                    );
                }
            }
            let rp = format!("{p}.resolution");
            let res =
                ctx.positive_duration(&rp, resolution.as_deref(), SignedDuration::from_mins(5));
            let res_s = res.as_secs();
            if res.subsec_nanos() != 0 || res_s == 0 || 86_400 % res_s != 0 {
                ctx.err(
                    &rp,
                    format!("resolution {res:#} must be a whole number of seconds that divides a day (e.g. 1m, 5m, 15m, 1h)"),
                );
            }
            let (zone_name, tz) = ctx.zone(&format!("{p}.timezone"), timezone.as_deref());
            pr.seasonality = Some(seasons);
            let cold = cold_start_headroom.unwrap_or(0.5);
            if !(0.0..=10.0).contains(&cold) {
                ctx.err(
                    &format!("{p}.cold_start_headroom"),
                    format!(
                        "cold_start_headroom {cold} is out of range: expected 0 to 10 (0.5 = 50 %)"
                    ),
                );
            }
            pr.cold_headroom = cold;
            pr.resolution = res_s.clamp(1, 86_400);
            pr.zone_name = zone_name;
            pr.timezone = tz;
            pr.forecast_only = *forecast_only;
            pr.warm_start = warm_start
                .as_ref()
                .and_then(|w| warm(ctx, &format!("{p}.warm_start"), w));
            Strategy::Predictive(pr)
        }
        RawStrategy::Cost {
            metric,
            capacity_per_replica,
            baseline_target_pct,
            baseline_unserved_factor,
            max_unserved_pct,
            coverage_pct,
            initial_headroom,
            min_headroom,
            startup,
            history,
        } => Strategy::Predictive(forecasting(
            ctx,
            p,
            g,
            metrics,
            Forecasting {
                metric,
                capacity: *capacity_per_replica,
                baseline: (*baseline_target_pct, *baseline_unserved_factor),
                max_unserved_pct: *max_unserved_pct,
                coverage_pct: *coverage_pct,
                initial_headroom: *initial_headroom,
                min_headroom: *min_headroom,
                startup: startup.as_deref(),
                history: history.as_deref(),
            },
        )),
        RawStrategy::Schedule { timezone, windows } => {
            let (zone_name, tz) = ctx.zone(&format!("{p}.timezone"), timezone.as_deref());
            if windows.is_empty() {
                ctx.err(&format!("{p}.windows"), "no windows: expected at least one");
            }
            let windows = windows
                .iter()
                .enumerate()
                .filter_map(|(k, w)| window(ctx, &format!("{p}.windows[{k}]"), w, g))
                .collect();
            Strategy::Schedule(Schedule {
                zone_name,
                timezone: tz,
                windows,
            })
        }
    }
}

/// Fields the predictive and cost strategies share.
struct Forecasting<'a> {
    metric: &'a str,
    capacity: Option<f64>,
    baseline: (Option<f64>, Option<f64>),
    max_unserved_pct: Option<f64>,
    coverage_pct: Option<f64>,
    initial_headroom: Option<f64>,
    min_headroom: Option<f64>,
    startup: Option<&'a str>,
    history: Option<&'a str>,
}

fn forecasting(
    ctx: &mut Ctx,
    p: &str,
    g: &RawGroup,
    metrics: &[String],
    f: Forecasting,
) -> Predictive {
    check_metric(ctx, &format!("{p}.metric"), f.metric, metrics);
    match f.capacity {
        Some(c) if c <= 0.0 => ctx.err(
            &format!("{p}.capacity_per_replica"),
            format!("capacity_per_replica must be greater than 0, got {c}"),
        ),
        Some(c) => {
            if let Err(e) = ranges::capacity_per_replica(c) {
                ctx.err(&format!("{p}.capacity_per_replica"), e);
            }
        }
        None if g.source.is_some() => ctx.err(
            &format!("{p}.capacity_per_replica"),
            "missing capacity_per_replica: how much of the metric one replica serves (only groups without a source, which simulate runs, may omit it)",
        ),
        _ => {}
    }
    let given = [
        f.baseline.0.is_some() || f.baseline.1.is_some(),
        f.max_unserved_pct.is_some(),
        f.coverage_pct.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        ctx.err(
            p,
            "set one service objective: `baseline_target_pct`/`baseline_unserved_factor`, `max_unserved_pct` or `coverage_pct`",
        );
    }
    let pct = |ctx: &mut Ctx, field: &str, v: f64, what: &str| {
        if !(0.0..=100.0).contains(&v) {
            ctx.err(
                &format!("{p}.{field}"),
                format!("{field} {v} is out of range: expected 0 to 100 ({what})"),
            );
        }
        v.clamp(0.0, 100.0) / 100.0
    };
    let objective = if let Some(o) = f.max_unserved_pct {
        Objective::MaxUnserved(pct(ctx, "max_unserved_pct", o, "percent of demand"))
    } else if let Some(q) = f.coverage_pct {
        Objective::Coverage(pct(ctx, "coverage_pct", q, "percent of horizons"))
    } else {
        let t = f.baseline.0.unwrap_or(70.0);
        if !(t > 0.0 && t <= 100.0) {
            ctx.err(
                &format!("{p}.baseline_target_pct"),
                format!(
                    "baseline_target_pct {t} is out of range: expected more than 0, at most 100"
                ),
            );
        }
        let factor = f.baseline.1.unwrap_or(1.0);
        if !(factor.is_finite() && factor >= 0.0) {
            ctx.err(
                &format!("{p}.baseline_unserved_factor"),
                format!("baseline_unserved_factor must be 0 or more, got {factor}"),
            );
        } else {
            ctx.number(
                &format!("{p}.baseline_unserved_factor"),
                factor,
                0.0,
                false,
                ranges::MAX_UNSERVED_FACTOR,
            );
        }
        Objective::Reactive {
            target: t.clamp(1.0, 100.0) / 100.0,
            factor: if factor.is_finite() {
                factor.max(0.0)
            } else {
                1.0
            },
        }
    };
    let initial_headroom = f.initial_headroom.unwrap_or(0.25);
    if !(0.0..=10.0).contains(&initial_headroom) {
        ctx.err(
            &format!("{p}.initial_headroom"),
            format!("initial_headroom {initial_headroom} is out of range: expected 0 to 10"),
        );
    }
    let min_headroom = f.min_headroom.unwrap_or(0.0);
    if !(0.0..=10.0).contains(&min_headroom) {
        ctx.err(
            &format!("{p}.min_headroom"),
            format!("min_headroom {min_headroom} is out of range: expected 0 to 10 (0.2 = 20 %)"),
        );
    }
    Predictive {
        metric: f.metric.into(),
        min_headroom,
        capacity: f.capacity,
        seasonality: None,
        resolution: 300,
        zone_name: "UTC".into(),
        timezone: jiff::tz::TimeZone::UTC,
        startup: ctx.ranged_duration(
            &format!("{p}.startup"),
            f.startup,
            SignedDuration::from_secs(60),
            ranges::STARTUP,
        ),
        objective,
        cold_headroom: 0.0,
        initial_headroom,
        history: ctx.ranged_duration(
            &format!("{p}.history"),
            f.history,
            SignedDuration::from_hours(24),
            ranges::HISTORY,
        ),
        forecast_only: false,
        warm_start: None,
    }
}

fn warm(ctx: &mut Ctx, p: &str, w: &RawWarmStart) -> Option<WarmStart> {
    if w.trace.trim().is_empty() {
        ctx.err(&format!("{p}.trace"), "empty path");
    }
    let start = match w.start.parse::<jiff::Timestamp>() {
        Ok(t) => Some(t),
        Err(e) => {
            ctx.err(
                &format!("{p}.start"),
                format!(
                    "invalid time \"{}\": {e} (expected RFC 3339 such as \"2026-11-01T00:00:00Z\")",
                    w.start
                ),
            );
            None
        }
    };
    if w.step == Some(0) {
        ctx.err(&format!("{p}.step"), "step must be at least 1 second");
    }
    if let Some(step) = w.step {
        let (lo, hi) = ranges::WARM_START_STEP;
        ctx.at_most(&format!("{p}.step"), step, lo, hi);
    }
    let scale = w.scale.unwrap_or(1.0);
    if !(scale.is_finite() && scale > 0.0) {
        ctx.err(
            &format!("{p}.scale"),
            format!("scale must be greater than 0, got {scale}"),
        );
    } else {
        ctx.number(&format!("{p}.scale"), scale, 0.0, true, ranges::MAX_FACTOR);
    }
    Some(WarmStart {
        trace: w.trace.clone(),
        start: start?,
        step: w.step.map(i64::from),
        scale,
    })
}

fn threshold_metric(
    ctx: &mut Ctx,
    p: &str,
    m: &RawThresholdMetric,
    metrics: &[String],
) -> ThresholdMetric {
    check_metric(ctx, &format!("{p}.metric"), &m.metric, metrics);
    let aggregation = match m.aggregation.as_deref().unwrap_or("avg") {
        "avg" => Aggregation::Avg,
        "max" => Aggregation::Max,
        "p95" => Aggregation::P95,
        other => {
            ctx.err(
                &format!("{p}.aggregation"),
                format!("unknown aggregation `{other}`, expected one of `avg`, `max`, `p95`"),
            );
            Aggregation::Avg
        }
    };
    let window = ctx.ranged_duration(
        &format!("{p}.window"),
        m.window.as_deref(),
        SignedDuration::ZERO,
        ranges::THRESHOLD_WINDOW,
    );
    let most = ranges::MAX_METRIC_VALUE;
    for (key, v) in [("upper", m.upper), ("lower", m.lower)] {
        if let Some(v) = v {
            ctx.number(&format!("{p}.{key}"), v, -most, false, most);
        }
    }
    if m.upper.is_none() && m.lower.is_none() {
        ctx.err(p, "set `upper`, `lower` or both");
    }
    if let (Some(u), Some(l)) = (m.upper, m.lower)
        && l >= u
    {
        ctx.err(
            &format!("{p}.lower"),
            format!("lower {l} must be below upper {u}"),
        );
    }
    let weight = m.weight.unwrap_or(1.0);
    if weight <= 0.0 {
        ctx.err(
            &format!("{p}.weight"),
            format!("weight must be greater than 0, got {weight}"),
        );
    } else {
        ctx.number(
            &format!("{p}.weight"),
            weight,
            0.0,
            true,
            ranges::MAX_WEIGHT,
        );
    }
    ThresholdMetric {
        metric: m.metric.as_str().into(),
        aggregation,
        window,
        upper: m.upper,
        lower: m.lower,
        weight: weight.max(f64::MIN_POSITIVE),
    }
}

fn step(ctx: &mut Ctx, p: &str, s: Option<&RawStep>) -> Step {
    match s {
        None => Step::Count(1),
        Some(RawStep::Count(0)) => {
            ctx.err(p, "step must be at least 1");
            Step::Count(1)
        }
        Some(RawStep::Count(n)) => Step::Count(*n),
        Some(RawStep::Text(t)) => {
            match t.trim().strip_suffix('%').map(|n| n.trim().parse::<f64>()) {
                Some(Ok(v)) if v > 0.0 && v <= 1000.0 => Step::Percent(v),
                Some(Ok(v)) => {
                    ctx.err(p, format!("percentage {v}% is out of range: expected more than 0% and at most 1000%"));
                    Step::Count(1)
                }
                _ => {
                    ctx.err(p, format!("invalid step \"{t}\": expected a replica count such as 2 or a percentage such as \"50%\""));
                    Step::Count(1)
                }
            }
        }
    }
}

fn window(ctx: &mut Ctx, p: &str, w: &RawWindow, g: &RawGroup) -> Option<ScheduleWindow> {
    let when = match (&w.business_hours, &w.cron) {
        (Some(h), None) => {
            if w.duration.is_some() {
                ctx.err(
                    &format!("{p}.duration"),
                    "`duration` only applies to `cron` windows",
                );
            }
            match HoursSpec::parse(h) {
                Ok(spec) => Some(When::Hours(spec)),
                Err(e) => {
                    ctx.err(&format!("{p}.business_hours"), e);
                    None
                }
            }
        }
        (None, Some(c)) => {
            let cron = CronParser::new().parse(c);
            if let Err(e) = &cron {
                ctx.err(
                    &format!("{p}.cron"),
                    format!("invalid cron expression \"{c}\": {e}"),
                );
            }
            let duration = match &w.duration {
                Some(d) => ctx.ranged_duration(
                    &format!("{p}.duration"),
                    Some(d),
                    SignedDuration::ZERO,
                    ranges::WINDOW_DURATION,
                ),
                None => {
                    ctx.err(p, "a `cron` window needs a `duration` such as \"2h\"");
                    SignedDuration::ZERO
                }
            };
            cron.ok().map(|cron| When::Cron {
                cron: Box::new(cron),
                duration,
            })
        }
        (Some(_), Some(_)) => {
            ctx.err(p, "set either `business_hours` or `cron`, not both");
            None
        }
        (None, None) => {
            ctx.err(p, "missing `business_hours` or `cron`");
            None
        }
    };
    let (min, max) = match (w.replicas, w.min, w.max) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            ctx.err(
                &format!("{p}.replicas"),
                "`replicas` pins the count: do not combine it with `min`/`max`",
            );
            (None, None)
        }
        (Some(r), None, None) => (Some(r), Some(r)),
        (None, None, None) => {
            ctx.err(p, "a window needs `min`, `max` or `replicas`");
            (None, None)
        }
        (None, min, max) => (min, max),
    };
    if let (Some(a), Some(b)) = (w.min, w.max)
        && a > b
    {
        ctx.err(
            &format!("{p}.min"),
            format!("min {a} is greater than max {b}"),
        );
    }
    for (field, v) in [("min", w.min), ("max", w.max), ("replicas", w.replicas)] {
        if let Some(v) = v
            && (v < g.min || v > g.max)
        {
            ctx.err(
                &format!("{p}.{field}"),
                format!(
                    "{field} {v} is outside the group's range {}..={}",
                    g.min, g.max
                ),
            );
        }
    }
    let label = w
        .name
        .clone()
        .or_else(|| w.business_hours.clone())
        .or_else(|| w.cron.as_ref().map(|c| format!("cron \"{c}\"")))
        .unwrap_or_default();
    Some(ScheduleWindow {
        label: label.into(),
        when: when?,
        min,
        max,
    })
}

fn behavior(ctx: &mut Ctx, p: &str, b: &RawBehavior, g: &RawGroup) -> Behavior {
    let scale_up = direction(
        ctx,
        &format!("{p}.scale_up"),
        b.scale_up.as_ref(),
        DirectionRules::default_up(),
        true,
    );
    let scale_down = direction(
        ctx,
        &format!("{p}.scale_down"),
        b.scale_down.as_ref(),
        DirectionRules::default_down(),
        false,
    );
    let cooldown = ctx.ranged_duration(
        &format!("{p}.cooldown"),
        b.cooldown.as_deref(),
        SignedDuration::ZERO,
        ranges::COOLDOWN,
    );
    let fallback = b.fallback.as_ref().map(|f| {
        if f.after == 0 {
            ctx.err(&format!("{p}.fallback.after"), "after must be at least 1");
        }
        ctx.at_most(
            &format!("{p}.fallback.after"),
            f.after,
            1,
            ranges::MAX_CONSECUTIVE,
        );
        if f.replicas < g.min || f.replicas > g.max {
            ctx.err(
                &format!("{p}.fallback.replicas"),
                format!(
                    "replicas {} is outside the group's range {}..={}",
                    f.replicas, g.min, g.max
                ),
            );
        }
        Fallback {
            after: f.after.max(1),
            replicas: f.replicas,
        }
    });
    let business_hours_only = b.business_hours_only.as_ref().map(|h| {
        let (zone_name, timezone) = ctx.zone(
            &format!("{p}.business_hours_only.timezone"),
            h.timezone.as_deref(),
        );
        if h.hours.is_empty() {
            ctx.err(
                &format!("{p}.business_hours_only.hours"),
                "no hours: expected at least one spec",
            );
        }
        let specs = h
            .hours
            .iter()
            .enumerate()
            .filter_map(|(k, s)| match HoursSpec::parse(s) {
                Ok(spec) => Some(spec),
                Err(e) => {
                    ctx.err(&format!("{p}.business_hours_only.hours[{k}]"), e);
                    None
                }
            })
            .collect();
        BusinessHours {
            timezone,
            zone_name: zone_name.to_string(),
            specs,
        }
    });
    Behavior {
        scale_up,
        scale_down,
        cooldown,
        fallback,
        business_hours_only,
    }
}

fn direction(
    ctx: &mut Ctx,
    p: &str,
    d: Option<&RawDirection>,
    defaults: DirectionRules,
    up: bool,
) -> DirectionRules {
    let Some(d) = d else { return defaults };
    let stabilization = ctx.ranged_duration(
        &format!("{p}.stabilization"),
        d.stabilization.as_deref(),
        defaults.stabilization,
        ranges::STABILIZATION,
    );
    let policies = match &d.policies {
        None => defaults.policies,
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(k, rp)| rate_policy(ctx, &format!("{p}.policies[{k}]"), rp, up))
            .collect(),
    };
    let select = match d.select.as_deref() {
        None | Some("max") => Select::Max,
        Some("min") => Select::Min,
        Some("disabled") => Select::Disabled,
        Some(other) => {
            ctx.err(
                &format!("{p}.select"),
                format!("unknown select `{other}`, expected one of `max`, `min`, `disabled`"),
            );
            Select::Max
        }
    };
    let cooldown = ctx.ranged_duration(
        &format!("{p}.cooldown"),
        d.cooldown.as_deref(),
        defaults.cooldown,
        ranges::COOLDOWN,
    );
    if d.max_step == Some(0) {
        ctx.err(
            &format!("{p}.max_step"),
            "max_step must be at least 1 (use `select: disabled` to stop scaling)",
        );
    }
    if let Some(n) = d.max_step {
        ctx.at_most(&format!("{p}.max_step"), n, 1, ranges::MAX_REPLICAS);
    }
    DirectionRules {
        stabilization,
        policies,
        select,
        cooldown,
        max_step: d.max_step,
    }
}

fn rate_policy(ctx: &mut Ctx, p: &str, rp: &RawRatePolicy, up: bool) -> Option<RatePolicy> {
    let kind = match rp.kind.as_str() {
        "pods" => RateKind::Pods,
        "percent" => RateKind::Percent,
        other => {
            ctx.err(
                &format!("{p}.type"),
                format!("unknown policy type `{other}`, expected `pods` or `percent`"),
            );
            return None;
        }
    };
    if rp.value == 0 {
        ctx.err(&format!("{p}.value"), "value must be at least 1");
    }
    let most = match kind {
        RateKind::Pods => ranges::MAX_REPLICAS,
        RateKind::Percent if up => ranges::MAX_RATE_PERCENT,
        RateKind::Percent => 100,
    };
    if up || kind == RateKind::Pods {
        ctx.at_most(&format!("{p}.value"), rp.value, 1, most);
    }
    if kind == RateKind::Percent && !up && rp.value > 100 {
        ctx.err(
            &format!("{p}.value"),
            format!(
                "a scale-down percentage cannot exceed 100, got {}",
                rp.value
            ),
        );
    }
    let period = ctx.ranged_duration(
        &format!("{p}.period"),
        Some(&rp.period),
        SignedDuration::from_secs(15),
        ranges::RATE_POLICY_PERIOD,
    );
    Some(RatePolicy {
        kind,
        value: rp.value,
        period,
    })
}

fn check_url(ctx: &mut Ctx, path: &str, url: &str) {
    if let Err(e) = super::url::check(url) {
        ctx.err(path, format!("invalid URL \"{url}\": {e}"));
    }
}

fn check_source(ctx: &mut Ctx, p: &str, s: &RawSource) {
    let five = SignedDuration::from_secs(5);
    match s {
        RawSource::Prometheus {
            url,
            queries,
            timeout,
        } => {
            check_url(ctx, &format!("{p}.url"), url);
            if queries.is_empty() {
                ctx.err(
                    &format!("{p}.queries"),
                    "no queries: expected metric name → PromQL",
                );
            }
            for (name, q) in queries {
                if q.trim().is_empty() {
                    ctx.err(&format!("{p}.queries.{name}"), "empty PromQL query");
                }
            }
            ctx.ranged_duration(
                &format!("{p}.timeout"),
                timeout.as_deref(),
                five,
                ranges::HTTP_TIMEOUT,
            );
        }
        RawSource::HttpJson {
            url,
            metrics,
            timeout,
        } => {
            check_url(ctx, &format!("{p}.url"), url);
            if metrics.is_empty() {
                ctx.err(
                    &format!("{p}.metrics"),
                    "no metrics: expected metric name → JSON pointer",
                );
            }
            for (name, ptr) in metrics {
                if !ptr.is_empty() && !ptr.starts_with('/') {
                    ctx.err(
                        &format!("{p}.metrics.{name}"),
                        format!("invalid JSON pointer \"{ptr}\": expected it to start with `/`, e.g. \"/stats/qps\""),
                    );
                }
            }
            ctx.ranged_duration(
                &format!("{p}.timeout"),
                timeout.as_deref(),
                five,
                ranges::HTTP_TIMEOUT,
            );
        }
        RawSource::PrometheusText { metrics, path } => {
            for (name, spec) in metrics {
                if let Err(e) = super::text_metric::parse(spec) {
                    ctx.err(&format!("{p}.metrics.{name}"), e);
                }
            }
            if metrics.is_empty() {
                ctx.err(
                    &format!("{p}.metrics"),
                    "no metrics: expected metric name → exposition name",
                );
            }
            if let Some(path_) = path
                && !path_.starts_with('/')
            {
                ctx.err(
                    &format!("{p}.path"),
                    format!("path \"{path_}\" must start with `/`"),
                );
            }
        }
        RawSource::Static { values } => {
            if values.is_empty() {
                ctx.err(
                    &format!("{p}.values"),
                    "no values: expected metric name → number",
                );
            }
            let most = ranges::MAX_METRIC_VALUE;
            for (name, v) in values {
                ctx.number(&format!("{p}.values.{name}"), *v, -most, false, most);
            }
        }
        RawSource::Trace {
            file,
            speedup,
            capacity_per_replica,
            scale,
            from,
        } => {
            if scale.is_some_and(|s| s <= 0.0) {
                ctx.err(&format!("{p}.scale"), "scale must be greater than 0");
            } else if let Some(s) = scale {
                ctx.number(&format!("{p}.scale"), *s, 0.0, true, ranges::MAX_FACTOR);
            }
            if file.trim().is_empty() {
                ctx.err(&format!("{p}.file"), "empty file path");
            }
            if speedup.is_some_and(|s| s <= 0.0) {
                ctx.err(&format!("{p}.speedup"), "speedup must be greater than 0");
            } else if let Some(s) = speedup {
                ctx.number(&format!("{p}.speedup"), *s, 0.0, true, ranges::MAX_FACTOR);
            }
            if capacity_per_replica.is_some_and(|c| c <= 0.0) {
                ctx.err(
                    &format!("{p}.capacity_per_replica"),
                    "capacity_per_replica must be greater than 0",
                );
            } else if let Some(Err(e)) = capacity_per_replica.map(ranges::capacity_per_replica) {
                ctx.err(&format!("{p}.capacity_per_replica"), e);
            }
            if let Some(f) = from
                && *f > ranges::MAX_TRACE_SECOND
            {
                ctx.err(
                    &format!("{p}.from"),
                    format!(
                        "from {f} is out of range: expected 0 to {} (trace seconds)",
                        ranges::MAX_TRACE_SECOND
                    ),
                );
            }
        }
    }
}

/// The scale-in order: `least_loaded` needs a way to read each instance's load, which is
/// the Prometheus text the instances serve: known from a `prometheus_text` source (at its
/// `path`), or declared by an explicit `load_metric` (at /metrics).
fn scale_in(ctx: &mut Ctx, p: &str, pool: &RawProcessPool, source: Option<&RawSource>) -> ScaleIn {
    let text_path = match source {
        Some(RawSource::PrometheusText { path, .. }) => {
            Some(path.clone().unwrap_or_else(|| "/metrics".into()))
        }
        _ => None,
    };
    if let Some(m) = &pool.load_metric {
        let valid = !m.is_empty()
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !m.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            ctx.err(
                &format!("{p}.load_metric"),
                format!("invalid metric name \"{m}\": use letters, digits, `_` and `:`, not starting with a digit"),
            );
        }
    }
    match pool.scale_in.as_deref() {
        None | Some("lifo") => {
            if pool.load_metric.is_some() {
                ctx.err(
                    &format!("{p}.load_metric"),
                    "`load_metric` only applies to `scale_in: least_loaded`",
                );
            }
            ScaleIn::Lifo
        }
        Some("least_loaded") => {
            if text_path.is_none() && pool.load_metric.is_none() {
                ctx.err(
                    &format!("{p}.scale_in"),
                    format!("`least_loaded` has no load to read: set `load_metric` to a metric every instance serves on /metrics (`{DEFAULT_LOAD_METRIC}` for `scalepilot backend`), give the group a `prometheus_text` source, or use `lifo`"),
                );
            }
            ScaleIn::LeastLoaded {
                metric: pool
                    .load_metric
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LOAD_METRIC.into()),
                path: text_path.unwrap_or_else(|| "/metrics".into()),
            }
        }
        Some(s) => {
            ctx.err(
                &format!("{p}.scale_in"),
                format!("unknown scale_in `{s}`, expected `lifo` or `least_loaded`"),
            );
            ScaleIn::Lifo
        }
    }
}

/// The scale-in order of a pool that validation accepted (see [`super::Group::scale_in`]).
fn scale_in_of(pool: &RawProcessPool, source: Option<&RawSource>) -> ScaleIn {
    scale_in(&mut Ctx::default(), "", pool, source)
}

fn check_pool(ctx: &mut Ctx, p: &str, pool: &RawProcessPool, source: Option<&RawSource>) {
    let RawProcessPool {
        command,
        ports,
        hosts,
        health_path,
        health_interval,
        unhealthy_after,
        scale_in: _,
        load_metric: _,
        drain,
        stop_on_exit: _,
    } = pool;
    if *unhealthy_after == Some(0) {
        ctx.err(
            &format!("{p}.unhealthy_after"),
            "unhealthy_after must be at least 1",
        );
    }
    if let Some(n) = unhealthy_after {
        ctx.at_most(
            &format!("{p}.unhealthy_after"),
            *n,
            1,
            ranges::MAX_CONSECUTIVE,
        );
    }
    scale_in(ctx, p, pool, source);
    ctx.ranged_duration(
        &format!("{p}.drain"),
        drain.as_deref(),
        SignedDuration::from_secs(5),
        ranges::DRAIN,
    );
    if !command.contains("{port}") {
        ctx.err(&format!("{p}.command"), "the command must contain `{port}`");
    }
    let range = pool.port_range();
    match range {
        Some((a, b)) if a >= 1024 && a <= b => {}
        _ => ctx.err(
            &format!("{p}.ports"),
            format!("invalid port range \"{ports}\": expected \"FIRST-LAST\" with 1024 ≤ FIRST ≤ LAST ≤ 65535"),
        ),
    }
    if let Some(hosts) = hosts {
        if hosts.is_empty() {
            ctx.err(
                &format!("{p}.hosts"),
                "no hosts: expected at least one (or leave `hosts` out)",
            );
        }
        if hosts.len() > 1 && !command.contains("{host}") {
            ctx.err(
                &format!("{p}.command"),
                "with several hosts the command must contain `{host}` (the address to listen on)",
            );
        }
        let mut seen = HashSet::new();
        for (k, h) in hosts.iter().enumerate() {
            if h.address.parse::<std::net::IpAddr>().is_err() {
                ctx.err(
                    &format!("{p}.hosts[{k}].address"),
                    format!("invalid IP address \"{}\"", h.address),
                );
            } else if !seen.insert(h.address.clone()) {
                ctx.err(
                    &format!("{p}.hosts[{k}].address"),
                    format!("duplicate host \"{}\"", h.address),
                );
            }
            if h.max == Some(0) {
                ctx.err(&format!("{p}.hosts[{k}].max"), "max must be at least 1");
            }
            if let Some(n) = h.max {
                ctx.at_most(&format!("{p}.hosts[{k}].max"), n, 1, ranges::MAX_REPLICAS);
            }
        }
    }
    if health_path.as_deref().is_some_and(|h| !h.starts_with('/')) {
        ctx.err(
            &format!("{p}.health_path"),
            "health_path must start with `/`",
        );
    }
    ctx.ranged_duration(
        &format!("{p}.health_interval"),
        health_interval.as_deref(),
        SignedDuration::from_secs(10),
        ranges::HEALTH_INTERVAL,
    );
}

/// A target kind that parses but that the engine does not implement yet.
fn not_implemented(ctx: &mut Ctx, p: &str, kind: &str) {
    ctx.err(
        &format!("{p}.kind"),
        format!(
            "target kind `{kind}` is not implemented yet (planned); implemented kinds: {}",
            IMPLEMENTED_TARGET_KINDS.join(", ")
        ),
    );
}

fn check_target(ctx: &mut Ctx, p: &str, t: &RawTarget, source: Option<&RawSource>) {
    match t {
        RawTarget::ProcessPool(pool) => check_pool(ctx, p, pool, source),
        RawTarget::Haproxy(h) => {
            if h.backend.trim().is_empty() {
                ctx.err(&format!("{p}.backend"), "empty backend name");
            }
            match (&h.admin_socket, &h.config_file) {
                (None, None) => ctx.err(p, "set `admin_socket` (runtime API) or `config_file`"),
                (Some(s), _) if s.trim().is_empty() => {
                    ctx.err(&format!("{p}.admin_socket"), "empty admin socket")
                }
                _ => {}
            }
            if let Some(f) = &h.config_file {
                for (field, v) in [
                    ("path", &f.path),
                    ("template", &f.template),
                    ("master_socket", &f.master_socket),
                ] {
                    if v.trim().is_empty() {
                        ctx.err(
                            &format!("{p}.config_file.{field}"),
                            format!("empty {field}"),
                        );
                    }
                }
            }
            if let Some(prefix) = &h.server_prefix
                && (prefix.is_empty()
                    || !prefix
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
            {
                ctx.err(
                    &format!("{p}.server_prefix"),
                    format!("invalid server_prefix \"{prefix}\": use letters, digits, `-` and `_`"),
                );
            }
            ctx.ranged_duration(
                &format!("{p}.drain_timeout"),
                h.drain_timeout.as_deref(),
                SignedDuration::from_secs(30),
                ranges::DRAIN_TIMEOUT,
            );
            check_pool(ctx, &format!("{p}.pool"), &h.pool, source);
        }
        RawTarget::Compose { file, service } => {
            not_implemented(ctx, p, "compose");
            if file.trim().is_empty() {
                ctx.err(&format!("{p}.file"), "empty file path");
            }
            if service.trim().is_empty() {
                ctx.err(&format!("{p}.service"), "empty service name");
            }
        }
        RawTarget::Terraform { dir, variable } => {
            not_implemented(ctx, p, "terraform");
            if dir.trim().is_empty() {
                ctx.err(&format!("{p}.dir"), "empty directory");
            }
            if variable.trim().is_empty() {
                ctx.err(&format!("{p}.variable"), "empty variable name");
            }
        }
        RawTarget::AwsAsg {
            name,
            region,
            endpoint,
        } => {
            not_implemented(ctx, p, "aws_asg");
            if name.trim().is_empty() {
                ctx.err(&format!("{p}.name"), "empty auto scaling group name");
            }
            if region.as_deref().is_some_and(|r| r.trim().is_empty()) {
                ctx.err(&format!("{p}.region"), "empty region");
            }
            if let Some(e) = endpoint {
                check_url(ctx, &format!("{p}.endpoint"), e);
            }
        }
        RawTarget::Command {
            command,
            timeout,
            status_command,
        } => {
            if status_command
                .as_deref()
                .is_some_and(|c| c.trim().is_empty())
            {
                ctx.err(&format!("{p}.status_command"), "empty status command");
            }
            if command.trim().is_empty() {
                ctx.err(&format!("{p}.command"), "empty command");
            }
            ctx.ranged_duration(
                &format!("{p}.timeout"),
                timeout.as_deref(),
                SignedDuration::from_secs(60),
                ranges::COMMAND_TIMEOUT,
            );
        }
    }
}
