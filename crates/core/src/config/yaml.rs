//! YAML text → a JSON value plus an index from field path to line:column.
//!
//! serde stops at the first error and forgets positions, so the file is first read into
//! saphyr's marked tree; every node's position is recorded under its field path
//! (`groups[1].behavior.scale_down`), and both structural and semantic problems are located
//! through that index.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// Field path → where it is written.
#[derive(Debug, Default)]
pub struct Locations {
    by_path: HashMap<String, Location>,
}

impl Locations {
    /// The location of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(l) = self.by_path.get(p) {
                return Some(*l);
            }
            let Some(cut) = p.rfind(['.', '[']) else {
                return self.by_path.get("").copied();
            };
            p = &p[..cut];
            if p.is_empty() {
                return self.by_path.get("").copied();
            }
        }
    }
}

/// A problem found while reading the YAML itself.
#[derive(Debug)]
pub struct YamlError {
    pub location: Option<Location>,
    pub path: String,
    pub message: String,
}

/// Parse YAML text into a JSON value and the location index.
pub fn parse(text: &str) -> Result<(Value, Locations), YamlError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| YamlError {
        location: Some(Location {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        }),
        path: String::new(),
        message: format!("invalid YAML: {}", e.info()),
    })?;
    if docs.len() > 1 {
        return Err(YamlError {
            location: Some(loc(&docs[1])),
            path: String::new(),
            message: format!(
                "the file holds {} YAML documents (separated by `---`): put the whole config in one",
                docs.len()
            ),
        });
    }
    let Some(doc) = docs.into_iter().next() else {
        return Err(YamlError {
            location: None,
            path: String::new(),
            message: "the file is empty: expected a mapping with `groups:`".into(),
        });
    };
    let mut locations = Locations::default();
    let value = convert(&doc, String::new(), &mut locations)?;
    Ok((value, locations))
}

fn loc(node: &MarkedYaml<'_>) -> Location {
    Location {
        line: node.span.start.line(),
        column: node.span.start.col() + 1,
    }
}

fn convert(node: &MarkedYaml<'_>, path: String, locs: &mut Locations) -> Result<Value, YamlError> {
    locs.by_path
        .entry(path.clone())
        .or_insert_with(|| loc(node));
    let err = |message: String| YamlError {
        location: Some(loc(node)),
        path: path.clone(),
        message,
    };
    match &node.data {
        YamlData::Value(s) => scalar(s).map_err(err),
        YamlData::Representation(text, _, _) => Ok(Value::String(text.to_string())),
        YamlData::Tagged(tag, _) => Err(err(format!(
            "YAML tags such as `{tag}` are not supported: write plain values"
        ))),
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                locs.by_path.insert(p.clone(), loc(item));
                out.push(convert(item, p, locs)?);
            }
            Ok(Value::Array(out))
        }
        YamlData::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter() {
                let key = match &k.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(Scalar::Integer(i)) => i.to_string(),
                    YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
                    YamlData::Representation(text, _, _) => text.to_string(),
                    _ => {
                        return Err(YamlError {
                            location: Some(loc(k)),
                            path: path.clone(),
                            message: "mapping keys must be plain strings".into(),
                        });
                    }
                };
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                // A field's position is its key's: that is the line a person edits.
                locs.by_path.insert(p.clone(), loc(k));
                let value = convert(v, p, locs)?;
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
        YamlData::Alias(_) => Err(err("YAML aliases are not supported here".into())),
        YamlData::BadValue => Err(err("unreadable value".into())),
    }
}

fn scalar(s: &Scalar<'_>) -> Result<Value, String> {
    Ok(match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => Value::Number(
            Number::from_f64(f.into_inner())
                .ok_or_else(|| format!("{} is not a finite number", f.into_inner()))?,
        ),
        Scalar::String(s) => Value::String(s.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_key_positions_by_path() {
        let (v, locs) = parse("groups:\n  - name: a\n    behavior:\n      cooldown: 5s\n").unwrap();
        assert_eq!(v["groups"][0]["behavior"]["cooldown"], "5s");
        assert_eq!(
            locs.find("groups[0].behavior.cooldown"),
            Some(Location { line: 4, column: 7 })
        );
        // Unknown deeper paths fall back to the nearest ancestor.
        assert_eq!(
            locs.find("groups[0].behavior.scale_up.cooldown"),
            Some(Location { line: 3, column: 5 })
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        // saphyr's loader rejects them; this pins that behavior.
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicated key"), "{}", e.message);
        assert_eq!(e.location.unwrap().line, 2);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("groups:\n  - name: [a\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        assert!(e.location.is_some());
    }
}
