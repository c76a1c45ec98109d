//! A global budget shared by two HA daemons (`engine.ha: true`, one PostgreSQL): twelve
//! priced groups that together want four times the per-hour budget. The ledger is in the
//! store, so whichever daemon evaluates a group, the sum of the rates the groups scaled to
//! never exceeds the budget, the budget binds, and a lease hand-over (one daemon stops)
//! keeps the entries of the groups that moved.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{Daemon, wait_until};

const GROUPS: usize = 12;
/// Each group wants 10 replicas at 1.00 per replica-hour: 120/h together.
const WANT: i64 = 10;
const BUDGET_PER_HOUR: i64 = 30;
/// Not used by these groups (command targets); only to satisfy `Daemon`.
const PORTS: (u16, u16) = (26610, 26611);

fn config(dir: &Path, url: &str) -> std::path::PathBuf {
    let mut text = format!(
        "store: {{kind: postgres, url: \"{url}\", pool: 4}}\nengine: {{ha: true, lease_ttl: 2s, jitter: 0}}\nbudget: {{per_hour: {BUDGET_PER_HOUR}}}\ngroups:\n",
    );
    for i in 0..GROUPS {
        // The target keeps its count in a file: what a group scaled to is what it reports.
        let count = dir.join(format!("g{i:02}.count"));
        text.push_str(&format!(
            r#"  - name: g{i:02}
    min: 1
    max: {WANT}
    evaluation_interval: 2s
    source: {{kind: static, values: {{request_rate: {rate}}}}}
    target:
      kind: command
      command: 'echo "$SCALEPILOT_DESIRED" > {count}'
      status_command: 'cat {count} 2>/dev/null || echo 1'
    cost: {{price_per_replica_hour: 1}}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#,
            rate = WANT * 10,
            count = count.display()
        ));
    }
    let path = dir.join("ha_budget.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Rows read from the database directly (none while the first daemon creates the tables).
fn query<T>(db: &str, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let Ok(pool) = sqlx::PgPool::connect(db).await else {
            return Vec::new();
        };
        let rows = sqlx::query_as(sql)
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
        pool.close().await;
        rows
    })
}

/// group, to_replicas, started_ms, status.
type ActivityRow = (String, i64, i64, String);

#[test]
fn two_daemons_share_one_global_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = crate::fresh_pg_database();
    let config = config(dir, &db);
    let db = db.as_str();
    let mut a = Daemon::start(&config, PORTS, &[]);
    let mut b = Daemon::start(&config, PORTS, &[]);
    let evaluated =
        || query::<(String,)>(db, "SELECT DISTINCT grp FROM metric_samples").len() == GROUPS;
    assert!(
        wait_until(Duration::from_secs(60), evaluated),
        "not every group evaluated:\n{}",
        a.log()
    );
    // Both daemons hold groups (12 over two: all on one is a 1 in 2,048 hashing outcome),
    // so each decides against entries the other wrote.
    let split = || {
        let holders: Vec<(String,)> = query(db, "SELECT DISTINCT holder FROM leases");
        holders.len() >= 2
    };
    assert!(
        wait_until(Duration::from_secs(30), split),
        "the groups were not split between the daemons:\n{}",
        b.log()
    );
    // The groups grow (4 replicas a step) into the budget, then hold.
    std::thread::sleep(Duration::from_secs(8));
    // a leaves: b takes its groups over, and their entries stay counted meanwhile.
    assert_eq!(a.stop(), Some(0), "a did not stop cleanly:\n{}", a.log());
    std::thread::sleep(Duration::from_secs(8));
    let log = b.log();
    assert_eq!(b.stop(), Some(0), "b did not stop cleanly:\n{log}");

    let acts: Vec<ActivityRow> = query(
        db,
        "SELECT grp, to_replicas, started_ms, status FROM activities ORDER BY started_ms, id",
    );
    assert!(!acts.is_empty(), "no activity:\n{log}");

    // Every activity that may have changed a target (all but failed ones), in the order their
    // intents were written (after the ledger's write): the sum of the counts, at one per hour
    // each, never exceeds the budget. Nothing scales down here (the load is steady), so a
    // count only grows from its intent on.
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    let mut most = 0;
    for (g, to, at, status) in &acts {
        if status == "failed" || status == "dry_run" {
            continue;
        }
        let before = counts.get(g.as_str()).copied().unwrap_or(1);
        assert!(*to >= before, "{g} scaled down ({before} → {to}) at {at}");
        counts.insert(g, *to);
        let total: i64 = (0..GROUPS)
            .map(|i| {
                counts
                    .get(format!("g{i:02}").as_str())
                    .copied()
                    .unwrap_or(1)
            })
            .sum();
        most = most.max(total);
        assert!(
            total <= BUDGET_PER_HOUR,
            "the groups' rates add up to {total}/h > {BUDGET_PER_HOUR}/h after {g} → {to} at {at}: {counts:?}"
        );
    }
    // Binding: the groups want 120/h; they took (nearly) all the budget, some were capped
    // below what they want, and the decisions say the budget did it.
    assert!(
        most > BUDGET_PER_HOUR - 4,
        "the groups took only {most}/h of {BUDGET_PER_HOUR}/h: {counts:?}"
    );
    let capped = (0..GROUPS)
        .filter(|i| {
            counts
                .get(format!("g{i:02}").as_str())
                .is_none_or(|c| *c < WANT)
        })
        .count();
    assert!(capped > 0, "no group was capped: {counts:?}");
    let states: Vec<(String, Option<String>)> =
        query(db, "SELECT grp, last_decision FROM group_state");
    let by_budget = states
        .iter()
        .filter(|(_, d)| d.as_deref().is_some_and(|d| d.contains("\"budget\"")))
        .count();
    assert!(by_budget > 0, "no decision limited by the budget:\n{log}");

    // The ledger: one entry per group (those that moved to b kept theirs), and what they
    // count is what the targets run.
    let entries: Vec<(String, f64)> = query(
        db,
        "SELECT grp, rate_per_hour FROM budget_ledger ORDER BY grp",
    );
    assert_eq!(entries.len(), GROUPS, "{entries:?}");
    let ledger: f64 = entries.iter().map(|e| e.1).sum();
    assert!(ledger <= BUDGET_PER_HOUR as f64, "{entries:?}");
    let running: i64 = (0..GROUPS)
        .map(|i| {
            std::fs::read_to_string(dir.join(format!("g{i:02}.count")))
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .unwrap_or(1)
        })
        .sum();
    assert!(
        running <= BUDGET_PER_HOUR,
        "the targets run {running} replicas"
    );
    assert_eq!(ledger, running as f64, "{entries:?}");
}
