//! Several daemons on one PostgreSQL (`engine.ha: true`): three `scalepilot run` share 300
//! groups; two are killed with SIGKILL one after the other, then started again. Every group
//! keeps being evaluated, never by two daemons in one interval, and the target saw exactly
//! the recorded activities.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Daemon, wait_until};

const GROUPS: usize = 300;
/// The groups' evaluation interval, in seconds. Every evaluation scales (a command per group
/// per interval): 300 groups every 4 s start 75 shells a second beside the daemons and
/// PostgreSQL, which two cores carry.
const INTERVAL: i64 = 4;
/// Not used by these groups (command targets); only to satisfy `Daemon`.
const PORTS: (u16, u16) = (26600, 26601);

fn config(dir: &Path, url: &str) -> std::path::PathBuf {
    let calls = dir.join("calls.txt");
    let mut text = format!(
        "store: {{kind: postgres, url: \"{url}\", pool: 4}}\nengine: {{ha: true, lease_ttl: 2s, jitter: 0}}\ngroups:\n",
    );
    for i in 0..GROUPS {
        // The target always reports 1 replica and the source asks for 4: every evaluation
        // scales (one activity per interval), and each call is appended with the daemon's PID
        // (the shell's parent) and the time.
        text.push_str(&format!(
            r#"  - name: g{i:03}
    min: 1
    max: 10
    evaluation_interval: {INTERVAL}s
    source: {{kind: static, values: {{request_rate: 40}}}}
    target:
      kind: command
      command: 'echo "$SCALEPILOT_GROUP $SCALEPILOT_DESIRED $PPID $(date +%s%3N)" >> {calls}'
      status_command: "echo 1"
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#,
            calls = calls.display()
        ));
    }
    let path = dir.join("ha.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

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

/// Each group's evaluation times (one metric sample per evaluation).
fn evaluations(db: &str) -> BTreeMap<String, Vec<i64>> {
    let rows: Vec<(String, i64)> = query(
        db,
        "SELECT grp, at_ms FROM metric_samples WHERE metric = 'request_rate' ORDER BY at_ms",
    );
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (g, at) in rows {
        out.entry(g).or_default().push(at);
    }
    out
}

#[test]
fn three_daemons_share_groups_and_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = crate::fresh_pg_database();
    let config = config(dir, &db);
    let db = db.as_str();
    let mut a = Daemon::start(&config, PORTS, &[]);
    let mut b = Daemon::start(&config, PORTS, &[]);
    let mut c = Daemon::start(&config, PORTS, &[]);
    let all_evaluated = wait_until(Duration::from_secs(60), || evaluations(db).len() == GROUPS);
    assert!(all_evaluated, "not every group evaluated:\n{}", a.log());
    let from = now_ms();
    std::thread::sleep(Duration::from_secs(8));
    let killed_a = now_ms();
    a.kill9();
    std::thread::sleep(Duration::from_secs(10));
    let killed_b = now_ms();
    b.kill9();
    std::thread::sleep(Duration::from_secs(10));
    let mut a2 = Daemon::start(&config, PORTS, &[]);
    let mut b2 = Daemon::start(&config, PORTS, &[]);
    std::thread::sleep(Duration::from_secs(12));
    let to = now_ms();
    let log = c.log();
    for d in [&mut a2, &mut b2, &mut c] {
        assert_eq!(d.stop(), Some(0), "a daemon did not stop cleanly:\n{log}");
    }

    // Every group kept being evaluated: no gap longer than two intervals, kills included.
    let limit = 2 * INTERVAL * 1000;
    let evals = evaluations(db);
    assert_eq!(evals.len(), GROUPS);
    for (g, times) in &evals {
        let inside: Vec<i64> = times
            .iter()
            .copied()
            .filter(|t| (from..=to).contains(t))
            .collect();
        let mut edges = vec![from];
        edges.extend(&inside);
        edges.push(to);
        for w in edges.windows(2) {
            assert!(
                w[1] - w[0] <= limit,
                "{g} was not evaluated for {} ms (from {} ms after the start; kills at {} and {} ms):\n{log}",
                w[1] - w[0],
                w[0] - from,
                killed_a - from,
                killed_b - from,
            );
        }
    }

    // Activities: unique keys, each with an owner.
    let acts: Vec<ActivityRow> = query(
        db,
        "SELECT key, grp, started_ms, status, owner, finished_ms FROM activities",
    );
    let keys: BTreeSet<&String> = acts.iter().map(|a| &a.0).collect();
    assert_eq!(keys.len(), acts.len(), "duplicate activity keys");
    assert!(acts.len() >= GROUPS, "too few activities: {}", acts.len());
    // (group, daemon PID) → activities that may have called the target, and succeeded ones.
    let mut may: HashMap<(String, String), usize> = HashMap::new();
    let mut succeeded: HashMap<(String, String), usize> = HashMap::new();
    for (key, g, _, status, owner, _) in &acts {
        let owner = owner
            .as_deref()
            .unwrap_or_else(|| panic!("{key} has no owner"));
        let pid = owner.split(':').next().unwrap().to_string();
        if ["succeeded", "interrupted", "pending"].contains(&status.as_str()) {
            *may.entry((g.clone(), pid.clone())).or_default() += 1;
        }
        if status == "succeeded" {
            *succeeded.entry((g.clone(), pid)).or_default() += 1;
        }
    }

    // The target's own record: who called it, when.
    let calls = std::fs::read_to_string(dir.join("calls.txt")).unwrap();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut by_group: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for line in calls.lines() {
        // Lines are appended by many shells at once: sorted by time below.
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 4, "{line}");
        let at: i64 = f[3].parse().unwrap();
        *seen
            .entry((f[0].to_string(), f[2].to_string()))
            .or_default() += 1;
        by_group
            .entry(f[0].to_string())
            .or_default()
            .push((at, f[2].to_string()));
    }
    // Never two daemons acting on a group at once: by the target's own record, a group's
    // calls come in runs from one daemon at a time, and a group changes hands only when a
    // daemon joins or leaves (rendezvous hashing may hand it back to an earlier holder when
    // the later one dies). Three daemons start one by one, two die, two come back: at most
    // 7 runs. Two daemons acting at once would interleave their calls into many more.
    const MEMBERSHIP_CHANGES: usize = 6;
    for (g, calls) in by_group.iter_mut() {
        calls.sort();
        let mut runs: Vec<&String> = Vec::new();
        for (_, pid) in calls.iter() {
            if runs.last() != Some(&pid) {
                runs.push(pid);
            }
        }
        assert!(
            runs.len() <= MEMBERSHIP_CHANGES + 1,
            "{g} changed hands {} times: {calls:?}",
            runs.len() - 1
        );
    }
    // …and by the store, an activity of another daemon starts only after the previous one
    // ended.
    let mut windows: BTreeMap<&String, Vec<Window>> = BTreeMap::new();
    for (_, g, started, _, owner, finished) in &acts {
        windows
            .entry(g)
            .or_default()
            .push((*started, *finished, owner));
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
    // Exactly the recorded activities: every success was seen by the target, and every call
    // has an intent (a kill between the call and the outcome leaves it interrupted).
    for (k, n) in &succeeded {
        let got = seen.get(k).copied().unwrap_or(0);
        assert!(got >= *n, "{k:?}: {n} succeeded, the target saw {got}");
    }
    for (k, n) in &seen {
        let max = may.get(k).copied().unwrap_or(0);
        assert!(*n <= max, "{k:?}: the target saw {n} calls, {max} intents");
    }
    // The work was shared: more than one daemon acted before the kills.
    let early: BTreeSet<&String> = acts
        .iter()
        .filter(|a| a.2 < killed_a)
        .filter_map(|a| a.4.as_ref())
        .collect();
    assert!(early.len() >= 2, "only {early:?} acted before the kills");
}
