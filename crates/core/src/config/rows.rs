//! Groups kept in the database (`groups_from: database|both`) and the files they are imported
//! from. Each group is validated by the same code as a config file's `groups:` items, so it
//! gets the same messages; only the field path's prefix differs.
//!
//! A database row's problems name the row: `groups[web].strategies[0].target_per_replica`
//! (the name in brackets where a file has the index), in a pseudo-file `database` with no
//! line. An import file's problems have the file's line and column and, when the group has a
//! usable name, the same row form: `groups.yaml:7:9: groups[web].max: …`.

use serde_json::Value;

use super::problems::{ConfigError, Problem};
use super::raw::RawGroup;
use super::yaml::Locations;
use super::{Group, structure, validate};

/// What database rows' problems give as their file.
pub const DATABASE: &str = "database";

/// The field-path prefix that names a database row: `groups[web]`.
pub fn row_path(name: &str) -> String {
    format!("groups[{name}]")
}

/// Validate a database row exactly as the same group inside a config file's `groups:` list.
/// The row's `name` and `enabled` columns are authoritative over the spec's own fields.
pub fn group_from_row(name: &str, spec: &Value, enabled: bool) -> Result<Group, ConfigError> {
    let mut item = spec.clone();
    if let Value::Object(m) = &mut item {
        m.insert("name".into(), Value::String(name.to_string()));
        m.insert("enabled".into(), Value::Bool(enabled));
    }
    let prefix = row_path(name);
    let mut found = Vec::new();
    let raw = structure::group(&prefix, item, &mut found);
    let mut groups = Vec::new();
    if let Some(raw) = &raw {
        let (g, semantic) = validate::groups_only(&[(prefix.clone(), raw)]);
        groups = g;
        found.extend(semantic);
    }
    match groups.pop() {
        Some(g) if found.is_empty() => Ok(g),
        _ => Err(ConfigError {
            problems: found
                .into_iter()
                .map(|(path, message)| Problem {
                    file: DATABASE.into(),
                    location: None,
                    path,
                    message,
                })
                .collect(),
        }),
    }
}

/// A group read from an import file: what to store, and the group it compiles to.
#[derive(Debug, Clone)]
pub struct ImportedGroup {
    pub name: String,
    /// The group's mapping as written, without `enabled` (the row's column holds it).
    pub spec: Value,
    pub enabled: bool,
    pub group: Group,
}

/// Groups in an import file: a mapping with a `groups:` list (a config file's other sections
/// are ignored), or a single group mapping. Every group is validated as in a config file;
/// any problem fails the whole file (every problem is reported).
pub fn groups_from_text(text: &str, file: &str) -> Result<Vec<ImportedGroup>, ConfigError> {
    let fail = |problems| Err(ConfigError { problems });
    let (value, locations) = match super::yaml::parse(text) {
        Ok(v) => v,
        Err(e) => {
            return fail(vec![Problem {
                file: file.to_string(),
                location: e.location,
                path: e.path,
                message: e.message,
            }]);
        }
    };
    // A single group is located as if it were `groups[0]` of a list.
    let (items, single) = match value {
        Value::Object(mut m) if m.contains_key("groups") => match m.remove("groups") {
            Some(Value::Array(a)) => (a, false),
            _ => {
                return fail(vec![problem(
                    file,
                    &locations,
                    false,
                    "groups",
                    "groups",
                    "expected a list of scaling groups",
                )]);
            }
        },
        v @ Value::Object(_) => (vec![v], true),
        _ => {
            return fail(vec![problem(
                file,
                &locations,
                false,
                "",
                "",
                "expected a mapping with `groups:`, or a single group",
            )]);
        }
    };
    if items.is_empty() {
        return fail(vec![problem(
            file,
            &locations,
            false,
            "groups",
            "groups",
            "no groups: expected at least one scaling group",
        )]);
    }
    let mut found: Vec<(String, String)> = Vec::new();
    let mut raws: Vec<(String, RawGroup)> = Vec::new();
    // The row form of each item's prefix, when it has a usable name.
    let mut shown: Vec<(String, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("groups[{i}]");
        if let Some(name) = item.get("name").and_then(Value::as_str)
            && !name.is_empty()
            && !name.contains(['[', ']'])
        {
            shown.push((prefix.clone(), row_path(name)));
        }
        if let Some(g) = structure::group(&prefix, item.clone(), &mut found) {
            raws.push((prefix, g));
        }
    }
    let refs: Vec<(String, &RawGroup)> = raws.iter().map(|(p, g)| (p.clone(), g)).collect();
    let (groups, semantic) = validate::groups_only(&refs);
    found.extend(semantic);
    if !found.is_empty() {
        let mut problems: Vec<Problem> = found
            .into_iter()
            .map(|(path, message)| {
                let display = shown
                    .iter()
                    .find_map(|(index, row)| {
                        let rest = path.strip_prefix(index.as_str())?;
                        (rest.is_empty() || rest.starts_with(['.', '[']))
                            .then(|| format!("{row}{rest}"))
                    })
                    .unwrap_or_else(|| path.clone());
                problem(file, &locations, single, &path, &display, &message)
            })
            .collect();
        problems.sort_by_key(|p| p.location.map(|l| (l.line, l.column)));
        return fail(problems);
    }
    Ok(items
        .into_iter()
        .zip(groups)
        .map(|(mut spec, group)| {
            if let Value::Object(m) = &mut spec {
                m.remove("enabled");
            }
            ImportedGroup {
                name: group.name.to_string(),
                spec,
                enabled: group.enabled,
                group,
            }
        })
        .collect())
}

/// A problem at `path` (located in the file), shown with the path `display`.
fn problem(
    file: &str,
    locations: &Locations,
    single: bool,
    path: &str,
    display: &str,
    message: &str,
) -> Problem {
    let located = if single {
        path.strip_prefix("groups[0]")
            .map(|r| r.trim_start_matches('.'))
            .unwrap_or(path)
    } else {
        path
    };
    Problem {
        file: file.to_string(),
        location: locations.find(located),
        path: display.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"name": "web", "min": 1, "max": 4, "strategies": [{"kind": "target_tracking", "metric": "request_rate", "target_per_replica": 10}]}"#;

    #[test]
    fn a_valid_row_compiles_with_its_columns_winning() {
        let spec: Value = serde_json::from_str(GOOD).unwrap();
        let g = group_from_row("api", &spec, false).unwrap();
        assert_eq!(&*g.name, "api");
        assert!(!g.enabled);
        assert_eq!((g.min, g.max), (1, 4));
    }

    #[test]
    fn a_row_problem_names_the_row_with_the_files_message() {
        let mut spec: Value = serde_json::from_str(GOOD).unwrap();
        spec["min"] = 9.into();
        spec["strategies"][0]["target_per_replica"] = (-1).into();
        let e = group_from_row("web", &spec, true).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("database: groups[web].min: min 9 is greater than max 4"),
            "{text}"
        );
        assert!(
            text.contains("database: groups[web].strategies[0].target_per_replica:"),
            "{text}"
        );
        // The same message as in a file, where the path has the index.
        let file = format!("groups:\n  - {}\n", serde_json::to_string(&spec).unwrap());
        let in_file = super::super::parse(&file, "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            in_file.contains("groups[0].min: min 9 is greater than max 4"),
            "{in_file}"
        );
        let mut unknown: Value = serde_json::from_str(GOOD).unwrap();
        unknown["maxx"] = 3.into();
        let e = group_from_row("web", &unknown, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("database: groups[web].maxx: unknown field `maxx`"),
            "{e}"
        );
        assert!(group_from_row("web", &Value::Null, true).is_err());
    }

    #[test]
    fn an_import_file_is_located_and_names_its_rows() {
        let text = "groups:\n  - name: web\n    min: 1\n    max: 4\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}\n  - name: api\n    min: 5\n    max: 4\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}\n";
        let e = groups_from_text(text, "g.yaml").unwrap_err().to_string();
        assert_eq!(
            e,
            "g.yaml:8:5: groups[api].min: min 5 is greater than max 4"
        );
        let ok = groups_from_text(&text.replace("min: 5", "min: 2"), "g.yaml").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].name, "api");
        assert!(ok[1].spec.get("enabled").is_none());
        let dup = groups_from_text(
            &text.replace("api", "web").replace("min: 5", "min: 2"),
            "g.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(dup.contains("duplicate group name"), "{dup}");
    }

    #[test]
    fn groups_from_decides_whether_the_file_needs_groups() {
        use super::super::{GroupsFrom, parse};
        let store = "store: {kind: sqlite, path: a.db}\n";
        assert!(parse(store, "f").is_err());
        let c = parse(&format!("{store}groups_from: database\n"), "f").unwrap();
        assert_eq!(c.groups_from, GroupsFrom::Database);
        assert!(c.groups.is_empty());
        let c = parse(&format!("{store}groups_from: both\ngroups: []\n"), "f").unwrap();
        assert_eq!(c.groups_from, GroupsFrom::Both);
        let with = format!("{store}groups_from: database\ngroups:\n  - {GOOD}\n");
        let e = parse(&with, "f").unwrap_err().to_string();
        assert!(
            e.contains("f:3:1: groups: `groups_from: database` takes every group"),
            "{e}"
        );
        let e = parse(&format!("{store}groups_from: db\n"), "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("groups_from: unknown variant `db`"), "{e}");
    }

    #[test]
    fn a_single_group_file_is_located_too() {
        let text = "name: web\nmin: 1\nmax: 4\nenabled: false\nstrategies:\n  - {kind: target_tracking, metric: request_rate, target_per_replica: 0}\n";
        let e = groups_from_text(text, "one.yaml").unwrap_err().to_string();
        assert!(
            e.starts_with("one.yaml:6:")
                && e.contains("groups[web].strategies[0].target_per_replica"),
            "{e}"
        );
        let ok = groups_from_text(&text.replace(": 0}", ": 5}"), "one.yaml").unwrap();
        assert!(!ok[0].enabled);
    }
}
