//! The docs keep up with the config: every field of the JSON Schema is named in
//! docs/configuration.md, so a new key cannot ship undocumented.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::cli::run_ok;

/// Every property name anywhere in the schema (groups, strategies, sources, targets, …).
fn fields(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get("properties") {
                out.extend(props.keys().cloned());
            }
            m.values().for_each(|x| fields(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| fields(x, out)),
        _ => {}
    }
}

#[test]
fn every_config_field_is_in_the_configuration_doc() {
    let schema: Value = serde_json::from_str(&run_ok(&["schema"]).stdout).unwrap();
    let mut names = BTreeSet::new();
    fields(&schema, &mut names);
    assert!(names.len() > 50, "too few fields found: {names:?}");
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")) && !doc.contains(&format!("{n}:")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not mention these config fields: {missing:?}"
    );
}
