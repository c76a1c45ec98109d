//! `scalepilot migrate [--dry-run]` against a fresh PostgreSQL database (on the server of
//! `SCALEPILOT_PG_URL`) and against a SQLite file.

use std::path::Path;

use super::run_ok;

const GROUPS: &str = "groups:\n  - name: web\n    min: 1\n    max: 10\n    strategies:\n      - {kind: target_tracking, metric: request_rate, target_per_replica: 50}\n";

fn write_config(dir: &Path, store: &str) -> String {
    let file = dir.join("sp.yaml");
    std::fs::write(&file, format!("store: {store}\n{GROUPS}")).unwrap();
    file.display().to_string()
}

fn migrate(config: &str, dry_run: bool) -> String {
    let mut args = vec!["migrate", "--config", config];
    if dry_run {
        args.push("--dry-run");
    }
    let out = run_ok(&args);
    format!("{}{}", out.stdout, out.stderr)
}

use crate::fresh_pg_database;

fn with_password(url: &str, password: &str) -> String {
    url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{password}@"),
        1,
    )
}

/// Dry run: nothing applied, versions 1 and 2 would be; migrate applies it; then nothing is left.
/// The password in the URL is never printed.
#[test]
fn migrate_a_postgres_store() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "Sup3r-S3cret-migrate";
    // The test server trusts loopback, so any password is accepted (and must stay hidden).
    let url = with_password(&fresh_pg_database(), secret);
    let config = write_config(
        dir.path(),
        &format!("{{kind: postgres, url: \"{url}\", pool: 2}}"),
    );

    let out = migrate(&config, true);
    assert!(out.contains("already applied: none"), "{out}");
    assert!(
        out.contains(
            "would apply: 1 (init), 2 (groups_and_leases), 3 (session_leases), 4 (budget_ledger), 5 (api)"
        ),
        "{out}"
    );
    assert!(out.contains("postgres://postgres:***@"), "{out}");
    assert!(!out.contains(secret), "{out}");
    // The dry run created nothing: still everything to apply.
    assert!(migrate(&config, true).contains(
        "would apply: 1 (init), 2 (groups_and_leases), 3 (session_leases), 4 (budget_ledger), 5 (api)"
    ));

    let out = migrate(&config, false);
    assert!(
        out.contains(
            "applied: 1 (init), 2 (groups_and_leases), 3 (session_leases), 4 (budget_ledger), 5 (api)"
        ),
        "{out}"
    );
    assert!(!out.contains(secret), "{out}");

    let out = migrate(&config, true);
    assert!(
        out.contains("already applied: 1 (init), 2 (groups_and_leases), 3 (session_leases), 4 (budget_ledger), 5 (api)"),
        "{out}"
    );
    assert!(out.contains("would apply: none"), "{out}");
    assert!(migrate(&config, false).contains("applied: none"));
}

/// The password from `password_file` (relative to the config's folder) works and is never
/// printed either.
#[test]
fn migrate_a_postgres_store_with_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "Sup3r-S3cret-file";
    std::fs::write(dir.path().join("pg.pass"), format!("  {secret}\n")).unwrap();
    let url = fresh_pg_database();
    let config = write_config(
        dir.path(),
        &format!("{{kind: postgres, url: \"{url}\", password_file: pg.pass}}"),
    );
    let out = migrate(&config, false);
    assert!(
        out.contains(
            "applied: 1 (init), 2 (groups_and_leases), 3 (session_leases), 4 (budget_ledger), 5 (api)"
        ),
        "{out}"
    );
    assert!(!out.contains(secret), "{out}");
}

/// A SQLite file: the dry run on a missing file says so and creates nothing; migrate creates
/// it with every migration; afterwards nothing is pending.
#[test]
fn migrate_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "{kind: sqlite, path: data/sp.db}");
    let file = dir.path().join("data/sp.db");

    let out = migrate(&config, true);
    assert!(out.contains("does not exist"), "{out}");
    assert!(out.contains("already applied: none"), "{out}");
    assert!(
        out.contains(
            "would apply: 1 (init), 2 (forecasts), 3 (owners_and_markers), 4 (groups_and_leases), 5 (session_leases), 6 (budget_ledger), 7 (api)"
        ),
        "{out}"
    );
    assert!(!file.exists(), "a dry run created {}", file.display());
    assert!(!dir.path().join("data").exists());

    let out = migrate(&config, false);
    assert!(
        out.contains(
            "applied: 1 (init), 2 (forecasts), 3 (owners_and_markers), 4 (groups_and_leases), 5 (session_leases), 6 (budget_ledger), 7 (api)"
        ),
        "{out}"
    );
    assert!(file.is_file());

    let out = migrate(&config, true);
    assert!(!out.contains("does not exist"), "{out}");
    assert!(out.contains("would apply: none"), "{out}");
    assert!(migrate(&config, false).contains("applied: none"));
}
