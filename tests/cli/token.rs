//! `scalepilot token`: create prints a secret once and stores only its hash, names are unique
//! among live tokens, list never shows a secret or hash, revoke ends a token, and a bad role
//! is refused by the command line.

use std::path::Path;

use scalepilot_store::{Role, Store as _, TokenRecord};
use serde_json::Value;

use super::{run, run_ok};

fn setup(dir: &Path) -> String {
    let config = dir.join("sp.yaml");
    std::fs::write(
        &config,
        "store: {kind: sqlite, path: sp.db}\ngroups_from: database\n",
    )
    .unwrap();
    config.display().to_string()
}

/// The tokens as the store holds them (read directly, not through the command).
fn stored(dir: &Path) -> Vec<TokenRecord> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = scalepilot_store::SqliteStore::open(&dir.join("sp.db"))
                .await
                .unwrap();
            store.tokens().await.unwrap()
        })
}

/// Lowercase hex SHA-256, computed here independently of the binary's code.
fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn create(config: &str, role: &str, name: &str) -> super::Output {
    run(&[
        "token", "create", "--config", config, "--role", role, "--name", name,
    ])
}

#[test]
fn create_prints_a_secret_once_and_stores_only_its_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let out = create(&config, "viewer", "grafana");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let secret = out.stdout.trim_end_matches('\n');
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(secret.starts_with("sp_") && secret.len() == 67, "{secret}");
    assert!(out.stderr.contains("not shown again"), "{}", out.stderr);
    assert!(!out.stderr.contains(secret), "{}", out.stderr);

    let tokens = stored(tmp.path());
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].name, "grafana");
    assert_eq!(tokens[0].role, Role::Viewer);
    assert_eq!(tokens[0].hash, sha256_hex(secret));
    assert_eq!(tokens[0].revoked_ms, None);
    // No database file (the WAL included) holds the secret itself, while the hash is there.
    let mut files = String::new();
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("sp.db")
        {
            files.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    assert!(files.contains(&tokens[0].hash));
    assert!(!files.contains(secret));

    // A second token gets another secret.
    let other = create(&config, "admin", "ops");
    assert_eq!(other.code, Some(0), "{}", other.stderr);
    assert_ne!(other.stdout, out.stdout);
}

#[test]
fn a_live_name_cannot_be_reused_until_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    assert_eq!(create(&config, "operator", "deploy").code, Some(0));
    let again = create(&config, "viewer", "deploy");
    assert_eq!(again.code, Some(1));
    assert_eq!(again.stdout, "");
    assert_eq!(
        again.stderr,
        "error: a live token named `deploy` exists: revoke it first (`scalepilot token revoke --name deploy`) or choose another name\n"
    );
    let tokens = stored(tmp.path());
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].role, Role::Operator);

    let out = run_ok(&["token", "revoke", "--config", &config, "--name", "deploy"]);
    assert_eq!(out.stdout, "revoked deploy\n");
    let tokens = stored(tmp.path());
    assert!(tokens[0].revoked_ms.is_some());
    // Revoking it again: there is no live token of that name.
    let out = run(&["token", "revoke", "--config", &config, "--name", "deploy"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "error: no live token named `deploy` (see `scalepilot token list`)\n"
    );
    // Once revoked, the name is free again.
    assert_eq!(create(&config, "viewer", "deploy").code, Some(0));
    let tokens = stored(tmp.path());
    let live: Vec<_> = tokens.iter().filter(|t| t.revoked_ms.is_none()).collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].role, Role::Viewer);
}

#[test]
fn list_shows_names_roles_and_dates_never_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let empty = run_ok(&["token", "list", "--config", &config, "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&empty.stdout).unwrap(),
        Value::Array(vec![])
    );

    let a = create(&config, "viewer", "grafana").stdout;
    let b = create(&config, "admin", "ops").stdout;
    run_ok(&["token", "revoke", "--config", &config, "--name", "ops"]);
    let hashes: Vec<String> = stored(tmp.path()).into_iter().map(|t| t.hash).collect();

    let json = run_ok(&["token", "list", "--config", &config, "--json"]).stdout;
    let text = run_ok(&["token", "list", "--config", &config]).stdout;
    for out in [&json, &text] {
        for secret in [a.trim(), b.trim()] {
            assert!(!out.contains(secret), "{out}");
        }
        for hash in &hashes {
            assert!(!out.contains(hash.as_str()), "{out}");
        }
    }
    let v: Value = serde_json::from_str(&json).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "grafana");
    assert_eq!(rows[0]["role"], "viewer");
    assert!(rows[0]["created_ms"].as_i64().unwrap() > 0);
    assert_eq!(rows[0]["revoked"], Value::Null);
    assert_eq!(rows[1]["name"], "ops");
    assert_eq!(rows[1]["role"], "admin");
    assert!(rows[1]["revoked"].as_str().unwrap().ends_with('Z'));
    assert!(rows[0].get("hash").is_none());

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].ends_with("REVOKED"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("grafana  viewer") && lines[1].ends_with(" -"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("ops      admin") && lines[2].ends_with('Z'),
        "{text}"
    );
}

#[test]
fn bad_roles_and_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let out = create(&config, "root", "x");
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("invalid value 'root' for '--role <ROLE>'")
            && out
                .stderr
                .contains("[possible values: viewer, operator, admin]"),
        "{}",
        out.stderr
    );
    let out = create(&config, "viewer", "has space");
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "error: invalid token name \"has space\": expected 1 to 63 letters, digits, `-`, `_` and `.`, starting with a letter or digit\n"
    );
    let out = run(&["token", "list"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("--config FILE is required"),
        "{}",
        out.stderr
    );
    assert!(stored(tmp.path()).is_empty());
}
