//! `scalepilot groups`: import validates every group like a config file (and imports nothing
//! when one is invalid), list and export show the rows, export re-imports unchanged, enable
//! and disable flip a row.

use std::path::Path;

use serde_json::Value;

use super::{run, run_ok};

const GROUPS: &str = "groups:
  - name: web
    min: 1
    max: 8
    evaluation_interval: 5s
    strategies:
      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}
    behavior:
      scale_down: {stabilization: 0s}
  - name: api
    min: 2
    max: 4
    dry_run: true
    strategies:
      - {kind: target_tracking, metric: utilization, target: 60}
";

fn setup(dir: &Path) -> String {
    let config = dir.join("sp.yaml");
    std::fs::write(
        &config,
        "store: {kind: sqlite, path: sp.db}\ngroups_from: database\n",
    )
    .unwrap();
    config.display().to_string()
}

fn rows(config: &str) -> Vec<Value> {
    let out = run_ok(&["groups", "list", "--json", "--config", config]);
    serde_json::from_str::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

#[test]
fn import_list_export_reimport_and_enable_disable() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let file = tmp.path().join("groups.yaml");
    std::fs::write(&file, GROUPS).unwrap();
    let out = run_ok(&[
        "groups",
        "import",
        file.to_str().unwrap(),
        "--config",
        &config,
    ]);
    assert_eq!(out.stdout, "added web\nadded api\n");

    let list = rows(&config);
    assert_eq!(list.len(), 2, "{list:?}");
    let api = list.iter().find(|r| r["name"] == "api").unwrap();
    assert_eq!(
        (api["min"].as_u64(), api["max"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(api["enabled"], true);
    assert_eq!(api["valid"], true);
    let table = run_ok(&["groups", "list", "--config", &config]).stdout;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("web") && l.contains(" yes ")),
        "{table}"
    );

    // Export, then import the export: every row unchanged.
    run_ok(&["groups", "disable", "api", "--config", &config]);
    let exported = tmp.path().join("export.yaml");
    run_ok(&[
        "groups",
        "export",
        "--out",
        exported.to_str().unwrap(),
        "--config",
        &config,
    ]);
    let stdout_export = run_ok(&["groups", "export", "--config", &config]).stdout;
    assert_eq!(stdout_export, std::fs::read_to_string(&exported).unwrap());
    assert!(stdout_export.contains("enabled: false"), "{stdout_export}");
    let again = run_ok(&[
        "groups",
        "import",
        exported.to_str().unwrap(),
        "--config",
        &config,
    ]);
    // Rows come out by name.
    assert_eq!(
        again.stdout, "unchanged api\nunchanged web\n",
        "{stdout_export}"
    );
    // The export is also a valid `groups:` list for a config file.
    let as_config = tmp.path().join("as-config.yaml");
    std::fs::write(&as_config, &stdout_export).unwrap();
    run_ok(&["validate", as_config.to_str().unwrap()]);

    // Enable and disable.
    assert_eq!(
        rows(&config).iter().find(|r| r["name"] == "api").unwrap()["enabled"],
        false
    );
    let out = run_ok(&["groups", "enable", "api", "--config", &config]);
    assert_eq!(out.stdout, "enabled api\n");
    assert_eq!(
        rows(&config).iter().find(|r| r["name"] == "api").unwrap()["enabled"],
        true
    );
    let missing = run(&["groups", "disable", "nope", "--config", &config]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("no group `nope`"),
        "{}",
        missing.stderr
    );

    // A changed group is reported as such.
    std::fs::write(&file, GROUPS.replace("max: 8", "max: 6")).unwrap();
    let out = run_ok(&[
        "groups",
        "import",
        file.to_str().unwrap(),
        "--config",
        &config,
    ]);
    assert_eq!(out.stdout, "changed web\nunchanged api\n");
    run_ok(&["groups", "delete", "api", "--config", &config]);
    assert_eq!(rows(&config).len(), 1);
}

#[test]
fn an_invalid_import_names_the_row_and_line_and_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let file = tmp.path().join("bad.yaml");
    // web is valid; api has min > max (line 12) and a typo (line 13).
    let bad = GROUPS
        .replace("min: 2\n    max: 4", "min: 5\n    max: 4")
        .replace("dry_run: true", "dry_runn: true");
    std::fs::write(&file, bad).unwrap();
    let out = run(&[
        "groups",
        "import",
        file.to_str().unwrap(),
        "--config",
        &config,
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let name = file.display().to_string();
    assert!(
        out.stderr.contains(&format!(
            "{name}:11:5: groups[api].min: min 5 is greater than max 4"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "{name}:13:5: groups[api].dry_runn: unknown field `dry_runn`"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing imported"), "{}", out.stderr);
    assert!(rows(&config).is_empty());
}
