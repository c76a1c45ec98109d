//! `groups_from: database`: the daemon evaluates a group imported while it runs, applies a
//! changed row within a second or so (no SIGHUP), and records an invalid row (written straight
//! through the store, past the CLI's validation) in the errors table once while the other
//! groups keep scaling.

use std::path::Path;
use std::time::Duration;

use scalepilot_store::{SqliteStore, Store};

use super::{BIN, Daemon, errors, step_trace, wait_until};

fn group(dir: &Path, max: u32) -> String {
    format!(
        r#"groups:
  - name: web
    min: 1
    max: {max}
    evaluation_interval: 1s
    source: {{kind: trace, file: load.csv}}
    target:
      kind: command
      command: "echo $SCALEPILOT_DESIRED > {}"
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
    behavior:
      scale_down: {{stabilization: 0s}}
"#,
        dir.join("replicas.txt").display()
    )
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn database_groups_are_picked_up_changed_and_checked_without_sighup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 50 req/s throughout: 5 replicas at 10 per replica.
    step_trace(&dir.join("load.csv"), &[(600, 50)]);
    let path = dir.join("dbgroups.yaml");
    std::fs::write(
        &path,
        "store: {kind: sqlite, path: sp.db}\ngroups_from: database\n",
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let mut daemon = Daemon::start(&path, (0, 0), &[]);
    std::thread::sleep(Duration::from_secs(2));

    let replicas = || {
        std::fs::read_to_string(dir.join("replicas.txt"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    // Imported while the daemon runs.
    let file = dir.join("web.yaml");
    std::fs::write(&file, group(dir, 10)).unwrap();
    let out = cli(&[
        "groups",
        "import",
        file.to_str().unwrap(),
        "--config",
        config,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_until(Duration::from_secs(20), || replicas() == "5"),
        "got {:?}:\n{}",
        replicas(),
        daemon.log()
    );

    // A changed row (max lowered) scales down, no SIGHUP.
    std::fs::write(&file, group(dir, 3)).unwrap();
    let out = cli(&[
        "groups",
        "import",
        file.to_str().unwrap(),
        "--config",
        config,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "changed web\n");
    assert!(
        wait_until(Duration::from_secs(15), || replicas() == "3"),
        "got {:?}:\n{}",
        replicas(),
        daemon.log()
    );

    // An invalid row, written past the CLI: recorded, skipped; web keeps scaling.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&dir.join("sp.db")).await.unwrap();
        let spec = serde_json::json!({
            "name": "broken", "min": 9, "max": 4,
            "strategies": [{"kind": "target_tracking", "metric": "request_rate", "target_per_replica": 10}]
        });
        store
            .put_group_row("broken", &spec, true, jiff::Timestamp::now())
            .await
            .unwrap();
    });
    let broken = || {
        errors(&path)
            .into_iter()
            .filter(|e| {
                e["component"] == "config"
                    && e["group"] == "broken"
                    && e["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("groups[broken].min: min 9 is greater than max 4")
            })
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(15), || broken() >= 1),
        "no error recorded for the invalid row:\n{}",
        daemon.log()
    );
    std::fs::write(&file, group(dir, 2)).unwrap();
    let out = cli(&[
        "groups",
        "import",
        file.to_str().unwrap(),
        "--config",
        config,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_until(Duration::from_secs(15), || replicas() == "2"),
        "got {:?}:\n{}",
        replicas(),
        daemon.log()
    );
    // Recorded once, not at every reload or poll.
    assert_eq!(broken(), 1, "{:?}", errors(&path));
    let out = cli(&["groups", "list", "--config", config]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("invalid"),
        "{out:?}"
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
}

/// A change whose rows the store could not give (the poll saw the new version, the read of
/// the rows failed) is applied once the store answers again: the next poll compares with
/// the loaded version, not with the version the failed read was started for. The failure is
/// made real and deterministic by taking the rows table away while the version table stays.
#[test]
fn a_change_whose_rows_could_not_be_read_is_applied_when_the_store_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    step_trace(&dir.join("load.csv"), &[(600, 50)]);
    let path = dir.join("dbgroups.yaml");
    std::fs::write(
        &path,
        "store: {kind: sqlite, path: sp.db}\ngroups_from: database\n",
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let file = dir.join("web.yaml");
    std::fs::write(&file, group(dir, 10)).unwrap();
    let out = cli(&[
        "groups",
        "import",
        file.to_str().unwrap(),
        "--config",
        config,
    ]);
    assert!(out.status.success(), "{out:?}");
    let mut daemon = Daemon::start(&path, (0, 0), &[]);
    let replicas = || {
        std::fs::read_to_string(dir.join("replicas.txt"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(20), || replicas() == "5"),
        "got {:?}:\n{}",
        replicas(),
        daemon.log()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("sqlite://{}", dir.join("sp.db").display());
    let run = |sql: &'static [&'static str]| {
        rt.block_on(async {
            use sqlx::Connection as _;
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            for q in sql {
                sqlx::query(*q).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        })
    };
    // The version moves, the rows cannot be read.
    run(&[
        "ALTER TABLE scaling_groups RENAME TO scaling_groups_away",
        "UPDATE scaling_groups_version SET version = version + 1",
    ]);
    assert!(
        wait_until(Duration::from_secs(15), || daemon
            .log()
            .contains("cannot read the database groups")),
        "{}",
        daemon.log()
    );
    // The rows come back, changed (max 3), without another version bump.
    run(&[
        r#"UPDATE scaling_groups_away SET spec = replace(spec, '"max":10', '"max":3') WHERE name = 'web'"#,
        "ALTER TABLE scaling_groups_away RENAME TO scaling_groups",
    ]);
    let listed = cli(&["groups", "list", "--config", config]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains('3'),
        "the row was not changed: {listed:?}"
    );
    assert!(
        wait_until(Duration::from_secs(15), || replicas() == "3"),
        "the change was never applied: got {:?}:\n{}",
        replicas(),
        daemon.log()
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
}
