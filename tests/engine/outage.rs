//! Database outages on a real PostgreSQL stopped in the middle of a run
//! (`pg_ctl stop -m immediate`, then started again on the same port): see docs/outages.md
//! and docs/ha.md.
//!
//! Each test starts a private cluster (the shared server must not be stopped). The groups'
//! targets are commands that append every call to `calls.txt` (group, desired, the daemon's
//! PID, the time in ms): the target's own record, compared with the database's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scalepilot_testkit::PgCluster;

use super::{Daemon, wait_until};

/// key, group, started, status, owner, finished.
type ActivityRow = (String, String, i64, String, Option<String>, Option<i64>);
/// An activity's start, end and owner.
type Window<'a> = (i64, Option<i64>, &'a Option<String>);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A private cluster with an empty database `scalepilot`; the cluster and the database's URL.
/// Panics (the test fails) when PostgreSQL is missing or does not start.
fn cluster() -> (PgCluster, String) {
    let pg = PgCluster::new();
    runtime().block_on(pg.create_database("scalepilot"));
    let url = pg.url("scalepilot");
    (pg, url)
}

/// Rows read from the database directly; panics when the database does not answer.
fn query<T>(db: &str, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    runtime().block_on(async {
        let pool = sqlx::PgPool::connect(db)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {db}: {e}"));
        let rows = sqlx::query_as(sql)
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
        rows
    })
}

/// [`query`] that answers nothing (instead of failing) while the tables are not there yet.
fn try_query<T>(db: &str, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    runtime().block_on(async {
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

fn activities(db: &str) -> Vec<ActivityRow> {
    query(
        db,
        "SELECT key, grp, started_ms, status, owner, finished_ms FROM activities ORDER BY started_ms",
    )
}

/// Group names `g0`, `g1`, …
fn group_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("g{i}")).collect()
}

/// A config of `groups` groups evaluated every `interval_s` seconds, each scaling at every
/// evaluation (the target always reports 1 replica, the source asks for 4, and the scale-up
/// rate limit only looks back 1 s).
fn config(path: &Path, url: &str, engine: &str, groups: usize, interval_s: u64) -> PathBuf {
    let calls = path.parent().unwrap().join("calls.txt");
    let mut text =
        format!("store: {{kind: postgres, url: \"{url}\", pool: 4}}\nengine: {engine}\ngroups:\n");
    for name in group_names(groups) {
        text.push_str(&format!(
            r#"  - name: {name}
    min: 1
    max: 10
    evaluation_interval: {interval_s}s
    source: {{kind: static, values: {{request_rate: 40}}}}
    target:
      kind: command
      command: 'echo "$SCALEPILOT_GROUP $SCALEPILOT_DESIRED $PPID $(date +%s%3N)" >> {calls}'
      status_command: "echo 1"
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
    behavior:
      scale_up: {{policies: [{{type: pods, value: 100, period: 1s}}]}}
"#,
            calls = calls.display()
        ));
    }
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// One call of the target: (group, desired, daemon PID, time in ms).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    at: i64,
    group: String,
    desired: String,
    pid: String,
}

fn calls(dir: &Path) -> Vec<Call> {
    let text = std::fs::read_to_string(dir.join("calls.txt")).unwrap_or_default();
    let mut out: Vec<Call> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 4, "a torn line in calls.txt: {line:?}");
            Call {
                at: f[3].parse().unwrap(),
                group: f[0].to_string(),
                desired: f[1].to_string(),
                pid: f[2].to_string(),
            }
        })
        .collect();
    out.sort();
    out
}

/// No duplicate keys, and an activity of another owner starts only after the previous one
/// of its group ended. An activity started before `held_until` ends there at the latest: its
/// outcome could not be written before the database came back (its target call, checked by
/// the target's record, was over by then).
fn assert_unique_and_not_overlapping(acts: &[ActivityRow], held_until: i64) {
    let keys: BTreeSet<&String> = acts.iter().map(|a| &a.0).collect();
    assert_eq!(keys.len(), acts.len(), "duplicate activity keys");
    let mut windows: BTreeMap<&String, Vec<Window>> = BTreeMap::new();
    for (_, g, started, _, owner, finished) in acts {
        let finished = if *started < held_until {
            finished.map(|f| f.min(held_until))
        } else {
            *finished
        };
        windows
            .entry(g)
            .or_default()
            .push((*started, finished, owner));
    }
    for (g, w) in &mut windows {
        w.sort();
        for pair in w.windows(2) {
            let ((_, end, a), (start, _, b)) = (pair[0], pair[1]);
            if a != b {
                let end = end.unwrap_or(i64::MAX);
                assert!(
                    end <= start,
                    "{g}: {b:?} acted while {a:?} was acting: {w:?}"
                );
            }
        }
    }
}

/// The single daemon's groups: evaluated every 2 s, so an outage of 8 s spans four
/// evaluations of each.
const SINGLE_GROUPS: usize = 3;
const SINGLE_INTERVAL_MS: i64 = 2000;

#[test]
fn single_daemon_rides_out_a_postgres_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (pg, db) = cluster();
    let db = db.as_str();
    let config = config(
        &dir.join("single.yaml"),
        db,
        "{ha: false, jitter: 0}",
        SINGLE_GROUPS,
        (SINGLE_INTERVAL_MS / 1000) as u64,
    );
    let spool = dir.join("scalepilot.spool");
    let groups = group_names(SINGLE_GROUPS);
    let mut daemon = Daemon::start(&config, (26610, 26611), &[]);

    // Every group evaluated, and has acted twice, before the outage.
    let acted = wait_until(Duration::from_secs(60), || {
        let rows: Vec<(String, i64)> = try_query(
            db,
            "SELECT grp, COUNT(*) FROM activities WHERE status = 'succeeded' GROUP BY grp",
        );
        rows.len() == SINGLE_GROUPS && rows.iter().all(|(_, n)| *n >= 2)
    });
    assert!(acted, "the groups did not act:\n{}", daemon.log());

    // The outage: about four evaluations of each group.
    let down = now_ms();
    pg.stop_immediate();
    let mut spool_seen = 0u64;
    let outage_end = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < outage_end {
        if let Ok(m) = std::fs::metadata(&spool) {
            spool_seen = spool_seen.max(m.len());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let up = now_ms();
    pg.start();
    let back = now_ms();
    assert!(
        spool_seen > 0,
        "nothing was spooled to {} during the outage:\n{}",
        spool.display(),
        daemon.log()
    );

    // The replay: the end of the outage recorded, the spool truncated.
    let flushed = wait_until(Duration::from_secs(60), || {
        let ends: Vec<(String,)> = try_query(
            db,
            "SELECT message FROM errors WHERE component = 'store' AND message LIKE 'database back at %'",
        );
        !ends.is_empty() && std::fs::metadata(&spool).is_ok_and(|m| m.len() == 0)
    });
    assert!(flushed, "the spool was not replayed:\n{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0), "unclean stop:\n{}", daemon.log());
    let log = daemon.log();
    assert!(
        log.contains("spooling writes to"),
        "the daemon did not log the outage:\n{log}"
    );
    assert_eq!(
        std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0),
        0,
        "the spool is not empty after the replay"
    );

    // The daemon kept acting during the outage: every group called the target in it.
    let calls = calls(dir);
    let errs: Vec<(Option<String>, String, String, i64)> = query(
        db,
        "SELECT grp, component, message, at_ms FROM errors ORDER BY at_ms",
    );
    for g in &groups {
        let during = calls
            .iter()
            .filter(|c| &c.group == g && (down..=up).contains(&c.at))
            .count();
        assert!(
            during >= 2,
            "{g}: {during} calls of the target during the 8 s outage ({down}..{up}); errors: {errs:?}\n{log}"
        );
    }

    // Nothing lost: the target's calls are exactly the succeeded activities, one by one and in
    // order, each call inside its activity's window (intent before the call, outcome after).
    let acts = activities(db);
    assert_unique_and_not_overlapping(&acts, i64::MIN);
    for g in &groups {
        let seen: Vec<&Call> = calls.iter().filter(|c| &c.group == g).collect();
        let done: Vec<&ActivityRow> = acts
            .iter()
            .filter(|a| &a.1 == g && a.3 == "succeeded")
            .collect();
        let others: Vec<&ActivityRow> = acts
            .iter()
            .filter(|a| &a.1 == g && a.3 != "succeeded")
            .collect();
        assert!(
            others.is_empty(),
            "{g}: activities not succeeded: {others:?}\n{log}"
        );
        assert_eq!(
            seen.len(),
            done.len(),
            "{g}: the target saw {} calls, {} activities succeeded: {seen:?} {done:?}\n{log}",
            seen.len(),
            done.len()
        );
        for (call, act) in seen.iter().zip(&done) {
            let finished = act.5.unwrap_or_else(|| panic!("{act:?} has no end"));
            assert!(
                act.2 <= call.at && call.at <= finished,
                "{g}: the call {call:?} is outside its activity {act:?}"
            );
            assert!(
                act.0.starts_with(&format!("{g}:{}:", call.desired)),
                "{g}: the call {call:?} does not match the activity {act:?}"
            );
        }
        let in_outage = done.iter().filter(|a| (down..=up).contains(&a.2)).count();
        assert!(
            in_outage >= 2,
            "{g}: no activity of the outage was replayed"
        );
    }

    // The samples cover the outage: no group went two intervals without one.
    let samples: Vec<(String, i64)> = query(
        db,
        "SELECT grp, at_ms FROM metric_samples WHERE metric = 'request_rate' ORDER BY at_ms",
    );
    let limit = 2 * SINGLE_INTERVAL_MS + 500;
    for g in &groups {
        let mut edges = vec![down];
        edges.extend(
            samples
                .iter()
                .filter(|(s, at)| s == g && (down..=back).contains(at))
                .map(|(_, at)| *at),
        );
        edges.push(back);
        for w in edges.windows(2) {
            assert!(
                w[1] - w[0] <= limit,
                "{g}: no sample for {} ms, {} ms after the outage began (it lasted {} ms): {edges:?}",
                w[1] - w[0],
                w[0] - down,
                back - down
            );
        }
    }

    // The outage recorded once: its start and its end, in the errors table.
    let rows: Vec<(Option<String>, String, i64)> = query(
        db,
        "SELECT grp, message, at_ms FROM errors WHERE component = 'store' ORDER BY at_ms",
    );
    let starts: Vec<_> = rows
        .iter()
        .filter(|r| r.1.starts_with("database unavailable since "))
        .collect();
    let ends: Vec<_> = rows
        .iter()
        .filter(|r| r.1.starts_with("database back at "))
        .collect();
    assert_eq!(starts.len(), 1, "outage starts: {rows:?}");
    assert_eq!(ends.len(), 1, "outage ends: {rows:?}");
    let (start, end) = (starts[0], ends[0]);
    assert!(start.0.is_none() && end.0.is_none(), "{rows:?}");
    assert!(
        (down..=up).contains(&start.2),
        "the outage began at {} (the database stopped at {down}, started at {up})",
        start.2
    );
    assert!(end.2 >= up, "the outage ended at {} before {up}", end.2);
    let replayed: u64 = end
        .1
        .split("; ")
        .nth(1)
        .and_then(|s| s.strip_suffix(" writes replayed from the spool"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected end row: {:?}", end.1));
    assert!(replayed > 0, "{:?}", end.1);
    assert!(
        !end.1.contains("refused"),
        "writes refused at the replay: {:?}\n{log}",
        end.1
    );
}

/// HA: two daemons, groups evaluated every 2 s with leases of 2 s.
const HA_GROUPS: usize = 12;
const HA_INTERVAL_MS: i64 = 2000;
const HA_TTL_MS: i64 = 2000;

#[test]
fn ha_daemons_stop_acting_during_a_postgres_outage_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (pg, db) = cluster();
    let db = db.as_str();
    let engine = format!("{{ha: true, lease_ttl: {}s, jitter: 0}}", HA_TTL_MS / 1000);
    let interval = (HA_INTERVAL_MS / 1000) as u64;
    // Two files with the same content: one log each.
    let config_a = config(&dir.join("a.yaml"), db, &engine, HA_GROUPS, interval);
    let config_b = config(&dir.join("b.yaml"), db, &engine, HA_GROUPS, interval);
    let groups = group_names(HA_GROUPS);
    let mut a = Daemon::start(&config_a, (26612, 26613), &[]);
    let mut b = Daemon::start(&config_b, (26614, 26615), &[]);
    let logs = |a: &Daemon, b: &Daemon| format!("--- a:\n{}\n--- b:\n{}", a.log(), b.log());

    // Both daemons acting, every group acted on.
    let shared = wait_until(Duration::from_secs(60), || {
        let calls = calls(dir);
        let g: BTreeSet<&String> = calls.iter().map(|c| &c.group).collect();
        let p: BTreeSet<&String> = calls.iter().map(|c| &c.pid).collect();
        g.len() == HA_GROUPS && p.len() == 2
    });
    assert!(
        shared,
        "the daemons did not share the groups:\n{}",
        logs(&a, &b)
    );

    let down = now_ms();
    pg.stop_immediate();
    // Well past the last local deadline: ttl + one interval (an evaluation in flight) + the
    // quiet time observed.
    std::thread::sleep(Duration::from_millis(
        (HA_TTL_MS + HA_INTERVAL_MS + 5000) as u64,
    ));
    let up = now_ms();
    pg.start();

    // Both stopped acting, and said so.
    let quiet_from = down + HA_TTL_MS + HA_INTERVAL_MS + 1000;
    let late: Vec<Call> = calls(dir)
        .into_iter()
        .filter(|c| c.at > quiet_from && c.at < up)
        .collect();
    assert!(
        late.is_empty(),
        "calls while the database was down, {} ms after it stopped and later: {late:?}\n{}",
        quiet_from - down,
        logs(&a, &b)
    );
    for d in [&a, &b] {
        let log = d.log();
        assert!(
            log.contains("ha: leases expired: not acting until the database is back"),
            "a daemon did not stop acting:\n{log}"
        );
    }

    // Both resume by themselves: every group acted on again, by both daemons between them.
    let resumed = wait_until(Duration::from_secs(60), || {
        let calls: Vec<Call> = calls(dir).into_iter().filter(|c| c.at > up).collect();
        let g: BTreeSet<&String> = calls.iter().map(|c| &c.group).collect();
        let p: BTreeSet<&String> = calls.iter().map(|c| &c.pid).collect();
        g.len() == HA_GROUPS && p.len() == 2
    });
    assert!(resumed, "the daemons did not resume:\n{}", logs(&a, &b));
    for d in [&a, &b] {
        let log = d.log();
        assert!(
            log.contains("ha: leases renewed: acting again"),
            "a daemon did not say it resumed:\n{log}"
        );
    }
    // One more interval after the handover, then a clean stop.
    std::thread::sleep(Duration::from_millis(HA_INTERVAL_MS as u64));
    let all_logs = logs(&a, &b);
    assert_eq!(a.stop(), Some(0), "unclean stop:\n{all_logs}");
    assert_eq!(b.stop(), Some(0), "unclean stop:\n{all_logs}");
    assert!(
        !dir.join("scalepilot.spool").exists(),
        "an HA daemon spooled"
    );

    // The store: unique keys, never two owners acting on a group at once, and every call of
    // the target has its activity.
    let acts = activities(db);
    assert_unique_and_not_overlapping(&acts, quiet_from);
    let calls = calls(dir);
    for g in &groups {
        let seen = calls.iter().filter(|c| &c.group == g).count();
        let may = acts
            .iter()
            .filter(|a| &a.1 == g)
            .filter(|a| ["succeeded", "interrupted", "pending"].contains(&a.3.as_str()))
            .count();
        assert!(
            seen <= may,
            "{g}: the target saw {seen} calls, {may} intents:\n{all_logs}"
        );
    }
}
