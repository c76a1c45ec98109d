//! `scalepilot schema`: JSON Schemas for editors and for `decide`'s input.

use serde_json::Value;

use super::run_ok;

#[test]
fn config_schema_describes_groups_and_strategies() {
    let v: Value = serde_json::from_str(&run_ok(&["schema"]).stdout).unwrap();
    assert_eq!(v["title"], "ConfigFile");
    assert!(v["properties"]["groups"].is_object());
    let text = v.to_string();
    for word in [
        "target_tracking",
        "target_per_replica",
        "business_hours",
        "stabilization",
        "process_pool",
    ] {
        assert!(text.contains(word), "schema lacks {word}");
    }
    // Field docs become descriptions.
    assert!(text.contains("Fewest replicas"));
}

#[test]
fn decide_input_schema() {
    let v: Value = serde_json::from_str(&run_ok(&["schema", "--decide-input"]).stdout).unwrap();
    let required: Vec<&str> = v["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(required, ["now", "observation"]);
    assert!(v.to_string().contains("consecutive_failures"));
}
