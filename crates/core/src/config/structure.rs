//! Structural check: the JSON value of the file → raw structs, collecting several errors.
//!
//! serde stops at the first error. To report more than one, each group is deserialized on
//! its own, and an unknown field (the usual typo) is removed and the group tried again, so
//! every typo in a group is reported; any other structural error ends that group's check.

use serde_json::Value;
use serde_path_to_error::{Path, Segment};

use super::raw::{GroupsFrom, RawAlerts, RawApi, RawEngine, RawGlobalBudget, RawGroup, RawStore};

/// Path segments as our field-path syntax: `groups[1].behavior.scale_up`.
fn render(prefix: &str, path: &Path) -> String {
    let mut s = prefix.to_string();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => s.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    s
}

/// The name in "unknown field `x`, expected …".
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The fields whose value is a list. serde would also fill a struct from a list (in field
/// order), which would let `behavior: [[0s], [600s]]` through; lists anywhere else are refused
/// before deserializing. A test keeps this in step with the schema.
pub(super) const LIST_FIELDS: [&str; 10] = [
    "groups",
    "seasonality",
    "prices",
    "hosts",
    "strategies",
    "metrics",
    "windows",
    "policies",
    "hours",
    "events",
];

/// Fields holding a duration, for a hint when a bare number is written.
const DURATION_FIELDS: [&str; 15] = [
    "resolution",
    "startup",
    "history",
    "drain_timeout",
    "evaluation_interval",
    "stabilization",
    "cooldown",
    "period",
    "window",
    "duration",
    "timeout",
    "drain",
    "health_interval",
    "sample_retention",
    "status_timeout",
];

/// (path, message) for every list in a place that takes a mapping or a single value.
fn misplaced_lists(path: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if v.is_array() && !LIST_FIELDS.contains(&k.as_str()) {
                    out.push((
                        p,
                        "expected a mapping or a single value, found a list".into(),
                    ));
                } else {
                    misplaced_lists(&p, v, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if v.is_array() {
                    out.push((
                        p,
                        "expected a mapping or a single value, found a list".into(),
                    ));
                } else {
                    misplaced_lists(&p, v, out);
                }
            }
        }
        _ => {}
    }
}

/// Make serde's wording speak config rather than Rust.
fn humanize(message: &str) -> String {
    if message.contains("untagged enum RawTolerance") {
        return "expected a number such as 0.1, or a mapping with `up` and/or `down`".into();
    }
    if message.contains("untagged enum RawStep") {
        return "expected a replica count such as 2 or a percentage such as \"50%\"".into();
    }
    let mut out = message
        .replace("expected variant identifier", "expected a kind name")
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected f64", "expected a number")
        .replace("expected a boolean", "expected true or false");
    // "expected struct RawGroup" / "expected internally tagged enum RawStrategy": Rust names.
    for marker in ["expected struct ", "expected internally tagged enum "] {
        if let Some(i) = out.find(marker) {
            let end = out[i + marker.len()..]
                .find(|c: char| !c.is_alphanumeric())
                .map_or(out.len(), |j| i + marker.len() + j);
            out.replace_range(i..end, "expected a mapping");
        }
    }
    out
}

/// Remove the object key at `path` + `field` from `value`.
fn remove(value: &mut Value, path: &Path, field: &str) -> bool {
    let mut node = value;
    let segs: Vec<&Segment> = path.iter().collect();
    // serde_path_to_error may or may not have pushed the unknown key itself.
    let segs = match segs.last() {
        Some(Segment::Map { key }) if key == field => &segs[..segs.len() - 1],
        _ => &segs[..],
    };
    for seg in segs {
        node = match (seg, node) {
            (Segment::Seq { index }, Value::Array(a)) => match a.get_mut(*index) {
                Some(n) => n,
                None => return false,
            },
            (Segment::Map { key }, Value::Object(o)) => match o.get_mut(key) {
                Some(n) => n,
                None => return false,
            },
            (Segment::Enum { .. } | Segment::Unknown, n) => n,
            _ => return false,
        };
    }
    match node {
        Value::Object(o) => o.remove(field).is_some(),
        _ => false,
    }
}

/// What deserialized: the top-level sections and the groups (with their index in the file).
#[derive(Default)]
pub(super) struct Structured {
    pub store: Option<RawStore>,
    pub alerts: Option<RawAlerts>,
    pub engine: Option<RawEngine>,
    pub budget: Option<RawGlobalBudget>,
    pub api: Option<RawApi>,
    pub groups_from: GroupsFrom,
    pub groups: Vec<(usize, RawGroup)>,
}

const TOP_LEVEL: [&str; 7] = [
    "store",
    "alerts",
    "engine",
    "budget",
    "api",
    "groups_from",
    "groups",
];

/// Deserialize one group (a `groups:` item or a database row) whose field paths start with
/// `prefix`; `None` (and `problems`) when it could not be read.
pub(super) fn group(
    prefix: &str,
    item: Value,
    problems: &mut Vec<(String, String)>,
) -> Option<RawGroup> {
    deserialize(prefix, item, problems)
}

/// Deserialize `item` as `T`, reporting every unknown field (removing it and retrying) and
/// then the first other error. `None` when it could not be read.
fn deserialize<T: serde::de::DeserializeOwned>(
    prefix: &str,
    mut item: Value,
    problems: &mut Vec<(String, String)>,
) -> Option<T> {
    let before = problems.len();
    if item.is_array() {
        problems.push((
            prefix.to_string(),
            "expected a mapping or a single value, found a list".into(),
        ));
    }
    misplaced_lists(prefix, &item, problems);
    if problems.len() > before {
        return None;
    }
    // Bounded: each retry removes one key, and a file has finitely many.
    for _ in 0..100 {
        match serde_path_to_error::deserialize::<_, T>(item.clone()) {
            Ok(v) => return Some(v),
            Err(e) => {
                let message = e.inner().to_string();
                let field = unknown_field(&message).map(str::to_string);
                let mut path = render(prefix, e.path());
                if let Some(f) = &field
                    && !path.ends_with(&format!(".{f}"))
                {
                    path = format!("{path}.{f}");
                }
                let mut text = humanize(&message);
                let last = path.rsplit('.').next().unwrap_or_default();
                if DURATION_FIELDS.contains(&last) && text.contains("expected a string") {
                    text.push_str(": write a duration such as \"15s\" or \"5m\"");
                }
                problems.push((path, text));
                match field {
                    Some(f) if remove(&mut item, e.path(), &f) => continue,
                    _ => return None,
                }
            }
        }
    }
    None
}

/// Deserialize the file's sections; (path, message) for every problem found.
pub(super) fn check(value: Value) -> (Structured, Vec<(String, String)>) {
    let mut problems = Vec::new();
    let mut out = Structured::default();
    let Value::Object(mut top) = value else {
        problems.push((
            String::new(),
            "expected a mapping with `groups:` at the top".into(),
        ));
        return (out, problems);
    };
    for key in top.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            problems.push((
                key.clone(),
                format!(
                    "unknown field `{key}`, expected one of `store`, `alerts`, `engine`, `budget`, `api`, `groups_from`, `groups`"
                ),
            ));
        }
    }
    // A bare `api:` turns the API on with its defaults, unlike the other sections where
    // null means absent: writing the key is the only way to ask for the API.
    let api = top.remove("api").map(|v| {
        if v.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            v
        }
    });
    let mut section = |name: &str| top.remove(name).filter(|v| !v.is_null());
    let (store, alerts, engine, budget, groups_from, groups) = (
        section("store"),
        section("alerts"),
        section("engine"),
        section("budget"),
        section("groups_from"),
        section("groups"),
    );
    out.store = store.and_then(|v| deserialize("store", v, &mut problems));
    out.alerts = alerts.and_then(|v| deserialize("alerts", v, &mut problems));
    out.engine = engine.and_then(|v| deserialize("engine", v, &mut problems));
    out.budget = budget.and_then(|v| deserialize("budget", v, &mut problems));
    out.api = api.and_then(|v| deserialize("api", v, &mut problems));
    out.groups_from = groups_from
        .and_then(|v| deserialize("groups_from", v, &mut problems))
        .unwrap_or_default();
    // With groups in the database, the file may have none.
    let optional = out.groups_from.database();
    let list = match groups {
        Some(Value::Array(list)) => list,
        None if optional => Vec::new(),
        None => {
            problems.push((
                "groups".into(),
                "missing field `groups`: expected a list of scaling groups".into(),
            ));
            return (out, problems);
        }
        Some(_) => {
            problems.push(("groups".into(), "expected a list of scaling groups".into()));
            return (out, problems);
        }
    };
    if out.groups_from == GroupsFrom::Database && !list.is_empty() {
        problems.push((
            "groups".into(),
            "`groups_from: database` takes every group from the store: import these with `scalepilot groups import`, or use `groups_from: both`".into(),
        ));
    }
    if list.is_empty() && !optional {
        problems.push((
            "groups".into(),
            "no groups: expected at least one scaling group".into(),
        ));
    }
    for (i, item) in list.into_iter().enumerate() {
        if let Some(g) = deserialize::<RawGroup>(&format!("groups[{i}]"), item, &mut problems) {
            out.groups.push((i, g));
        }
    }
    (out, problems)
}
