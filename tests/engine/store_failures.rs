//! Store failures while `scalepilot run` runs are failed evaluations, and a store file
//! deleted under the daemon is noticed and reopened (before: writes went on into the unlinked
//! file and nothing was ever recorded at the path again).

use std::time::Duration;

use super::{Daemon, activities, errors, wait_until};

#[test]
fn a_store_file_deleted_while_running_is_reopened_and_counted_as_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = dir.join("gone.yaml");
    std::fs::write(
        &config,
        r#"store: {kind: sqlite, path: sp.db}
groups:
  - name: web
    min: 1
    max: 10
    evaluation_interval: 1s
    source: {kind: static, values: {request_rate: 40}}
    target: {kind: command, command: "true"}
    strategies:
      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}
"#,
    )
    .unwrap();
    let db = dir.join("sp.db");
    let mut daemon = Daemon::start(&config, (0, 0), &[]);
    assert!(
        wait_until(Duration::from_secs(20), || activities(&config).len() == 1),
        "{}",
        daemon.log()
    );
    std::fs::remove_file(&db).unwrap();
    // The next evaluation notices, fails, reopens; the failure is recorded in the new file
    // and the group's state goes on there.
    let recorded = wait_until(Duration::from_secs(20), || {
        errors(&config).iter().any(|e| {
            e["component"] == "store"
                && e["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("deleted or replaced")
        })
    });
    assert!(
        recorded,
        "no store error in the new file: {:?}\n{}",
        errors(&config),
        daemon.log()
    );
    assert!(daemon.log().contains("reopening it"), "{}", daemon.log());
    assert!(db.exists());
    assert_eq!(daemon.stop(), Some(0));
}
