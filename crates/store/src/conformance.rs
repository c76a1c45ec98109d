//! The store's contract, as tests any backend must pass unchanged: each function takes a fresh,
//! empty store and checks one promise of the [`Store`] trait through the trait alone (no SQL,
//! no backend type), so the SQLite and PostgreSQL backends (and the outage spool around them)
//! mean the same thing.
//!
//! A backend runs them all with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! scalepilot_store::conformance_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
//!     (dir, std::sync::Arc::new(store) as std::sync::Arc<dyn Store>)
//! });
//! ```
//!
//! The async block yields (a guard kept alive for the test, the store).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::json;

use std::time::Duration;

use crate::{
    ActivityStatus, AuditRecord, BudgetEntry, ErrorComponent, HistoryQuery, InstanceRecord,
    NewActivity, NewAudit, NewForecast, Role, Store, StoreError, StoredState, TokenRecord, ms,
};

/// A fixed time plus `s` seconds (far from the epoch, within every backend's range).
pub fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn intent<'a>(key: &'a str, group: &'a str, to: u32, d: &'a serde_json::Value) -> NewActivity<'a> {
    NewActivity {
        key,
        group,
        from: 3,
        to,
        status: ActivityStatus::Pending,
        decision: d,
        at: t(0),
        owner: Some("4242:99"),
        fence: None,
    }
}

fn state(failures: u32, errors: u32) -> StoredState {
    let mut st = StoredState::default();
    st.state.consecutive_failures = failures;
    st.consecutive_errors = errors;
    st
}

/// An intent is written once per key; finishing settles it with status and error.
pub async fn activity_begin_and_finish(store: &dyn Store) {
    let d = json!({"desired_replicas": 5, "why": ["rps"]});
    let a = intent("web:5:100", "web", 5, &d);
    assert!(store.begin_activity(&a).await.unwrap());
    let all = store.activities(Some("web"), 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, ActivityStatus::Pending);
    assert_eq!((all[0].from_replicas, all[0].to_replicas), (3, 5));
    assert_eq!(all[0].decision, d);
    assert_eq!(all[0].owner.as_deref(), Some("4242:99"));
    assert_eq!(all[0].started_ms, ms(t(0)));
    assert_eq!(all[0].finished_ms, None);
    store
        .finish_activity("web:5:100", ActivityStatus::Failed, Some("no quota"), t(2))
        .await
        .unwrap();
    let all = store.activities(Some("web"), 10).await.unwrap();
    assert_eq!(all[0].status, ActivityStatus::Failed);
    assert_eq!(all[0].error.as_deref(), Some("no quota"));
    assert_eq!(all[0].finished_ms, Some(ms(t(2))));
}

/// The same key twice: the second begin reports false and changes nothing.
pub async fn activity_keys_are_idempotent(store: &dyn Store) {
    let d = json!({});
    let a = intent("web:5:100", "web", 5, &d);
    assert!(store.begin_activity(&a).await.unwrap());
    let again = NewActivity {
        at: t(1),
        to: 9,
        ..a
    };
    assert!(!store.begin_activity(&again).await.unwrap());
    let all = store.activities(None, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].to_replicas, all[0].started_ms), (5, ms(t(0))));
}

/// Pending activities: only this group's, only pending ones, oldest first.
pub async fn pending_activities_of_a_group(store: &dyn Store) {
    let d = json!({});
    for key in ["web:1", "web:2", "web:3"] {
        assert!(
            store
                .begin_activity(&intent(key, "web", 4, &d))
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .begin_activity(&intent("api:1", "api", 4, &d))
            .await
            .unwrap()
    );
    let dry = NewActivity {
        status: ActivityStatus::DryRun,
        owner: None,
        ..intent("web:dry", "web", 4, &d)
    };
    assert!(store.begin_activity(&dry).await.unwrap());
    store
        .finish_activity("web:2", ActivityStatus::Succeeded, None, t(1))
        .await
        .unwrap();
    let keys: Vec<String> = store
        .pending_activities("web")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.key)
        .collect();
    assert_eq!(keys, ["web:1", "web:3"]);
}

/// Activities list newest first, filtered by group, limited.
pub async fn activities_newest_first(store: &dyn Store) {
    let d = json!({});
    for (k, g) in [("a", "web"), ("b", "api"), ("c", "web"), ("d", "web")] {
        store.begin_activity(&intent(k, g, 2, &d)).await.unwrap();
    }
    let keys = |v: Vec<crate::Activity>| v.into_iter().map(|a| a.key).collect::<Vec<_>>();
    assert_eq!(
        keys(store.activities(Some("web"), 10).await.unwrap()),
        ["d", "c", "a"]
    );
    assert_eq!(keys(store.activities(None, 2).await.unwrap()), ["d", "c"]);
}

/// Every status round-trips through the store as itself.
pub async fn activity_statuses_round_trip(store: &dyn Store) {
    let d = json!({});
    for (n, status) in ActivityStatus::ALL.iter().enumerate() {
        let key = format!("k{n}");
        let a = NewActivity {
            status: *status,
            ..intent(&key, "web", 2, &d)
        };
        store.begin_activity(&a).await.unwrap();
    }
    let mut back: Vec<ActivityStatus> = store
        .activities(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.status)
        .collect();
    back.reverse();
    assert_eq!(back, ActivityStatus::ALL);
}

/// A group's state round-trips; an unknown group has none; a later save replaces it and
/// keeps the last decision when given none.
pub async fn state_round_trip(store: &dyn Store) {
    assert!(store.load_state("web").await.unwrap().is_none());
    let st = state(2, 4);
    store
        .save_state("web", &st, Some(&json!({"d": 1})), t(3))
        .await
        .unwrap();
    let back = store.load_state("web").await.unwrap().unwrap();
    assert_eq!(back.state, st.state);
    assert_eq!(back.consecutive_errors, 4);
    store
        .save_state("web", &state(0, 0), None, t(4))
        .await
        .unwrap();
    let back = store.load_state("web").await.unwrap().unwrap();
    assert_eq!(
        (back.state.consecutive_failures, back.consecutive_errors),
        (0, 0)
    );
    assert!(store.load_state("api").await.unwrap().is_none());
}

/// Intent and state in one transaction: both are written, or (key taken) neither.
pub async fn intent_with_state_is_atomic(store: &dyn Store) {
    let d = json!({"desired_replicas": 5});
    store
        .save_state("web", &state(1, 1), None, t(0))
        .await
        .unwrap();
    let a = intent("web:5:100", "web", 5, &d);
    assert!(
        store
            .begin_activity_with_state(&a, &state(2, 0), Some(&d))
            .await
            .unwrap()
    );
    let back = store.load_state("web").await.unwrap().unwrap();
    assert_eq!(
        (back.state.consecutive_failures, back.consecutive_errors),
        (2, 0)
    );
    assert_eq!(store.pending_activities("web").await.unwrap().len(), 1);

    // The key exists: no second activity, and the state stays what the first attempt wrote.
    let again = NewActivity { at: t(1), ..a };
    assert!(
        !store
            .begin_activity_with_state(&again, &state(7, 7), Some(&d))
            .await
            .unwrap()
    );
    let back = store.load_state("web").await.unwrap().unwrap();
    assert_eq!(
        (back.state.consecutive_failures, back.consecutive_errors),
        (2, 0)
    );
    assert_eq!(store.activities(None, 10).await.unwrap().len(), 1);

    // A group without a state yet gets one with its first intent.
    let b = intent("api:2:100", "api", 2, &d);
    assert!(
        store
            .begin_activity_with_state(&b, &state(3, 0), None)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .load_state("api")
            .await
            .unwrap()
            .unwrap()
            .state
            .consecutive_failures,
        3
    );
}

/// Errors: newest first, by group or all, with their component.
pub async fn errors_are_recorded(store: &dyn Store) {
    store
        .record_error(Some("web"), ErrorComponent::Source, "timeout", t(1))
        .await
        .unwrap();
    store
        .record_error(None, ErrorComponent::Config, "bad reload", t(2))
        .await
        .unwrap();
    for (n, c) in ErrorComponent::ALL.iter().enumerate() {
        store
            .record_error(Some("api"), *c, &format!("e{n}"), t(3))
            .await
            .unwrap();
    }
    let web = store.errors(Some("web"), 5).await.unwrap();
    assert_eq!(web.len(), 1);
    assert_eq!(
        (web[0].component, web[0].message.as_str(), web[0].at_ms),
        (ErrorComponent::Source, "timeout", ms(t(1)))
    );
    let all = store.errors(None, 100).await.unwrap();
    assert_eq!(all.len(), 2 + ErrorComponent::ALL.len());
    assert_eq!(all.last().unwrap().group, Some("web".to_string()));
    let mut api: Vec<ErrorComponent> = store
        .errors(Some("api"), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.component)
        .collect();
    api.reverse();
    assert_eq!(api, ErrorComponent::ALL);
    assert!(
        store.errors(None, 1).await.unwrap()[0]
            .message
            .starts_with('e')
    );
}

/// Samples: per group and metric, oldest first from `since`; pruning deletes older ones.
pub async fn samples_and_prune(store: &dyn Store) {
    let m = |v: f64| -> BTreeMap<String, f64> {
        [("rps".to_string(), v), ("cpu".to_string(), 1.0)].into()
    };
    store.record_samples("web", t(0), &m(1.0)).await.unwrap();
    store.record_samples("web", t(100), &m(2.0)).await.unwrap();
    store.record_samples("api", t(50), &m(9.0)).await.unwrap();
    assert_eq!(
        store.samples("web", "rps", t(0)).await.unwrap(),
        vec![(t(0), 1.0), (t(100), 2.0)]
    );
    assert_eq!(
        store.samples("web", "rps", t(1)).await.unwrap(),
        vec![(t(100), 2.0)]
    );
    // Two metrics per sample time, before t(60): web at 0, api at 50.
    assert_eq!(store.prune_samples(t(60)).await.unwrap(), 4);
    assert!(store.samples("api", "rps", t(0)).await.unwrap().is_empty());
    assert_eq!(store.samples("web", "cpu", t(0)).await.unwrap().len(), 1);
}

/// Forecasts: newest first, each with the largest sample in [serves_from, due] once due;
/// pruned by the time they were made.
pub async fn forecasts_meet_their_actuals(store: &dyn Store) {
    let sample = |v: f64| -> BTreeMap<String, f64> { [("rps".to_string(), v)].into() };
    for (s, v) in [(0, 10.0), (10, 30.0), (20, 25.0), (30, 50.0), (40, 5.0)] {
        store.record_samples("web", t(s), &sample(v)).await.unwrap();
    }
    let other: BTreeMap<String, f64> = [("cpu".to_string(), 99.0)].into();
    store.record_samples("web", t(15), &other).await.unwrap();
    store
        .record_samples("api", t(15), &sample(99.0))
        .await
        .unwrap();
    let f = |made: i64, due: i64, estimate: f64| NewForecast {
        metric: "rps".into(),
        made: t(made),
        serves_from: t(made + 10),
        due: t(due),
        estimate,
        provision: estimate * 1.2,
        seasonal: made > 0,
        forecast_only: true,
    };
    store
        .record_forecasts("web", &[f(0, 20, 20.0), f(20, 40, 60.0), f(40, 200, 7.0)])
        .await
        .unwrap();
    let rows = store.forecasts(Some("web"), 10, t(100)).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.actual).collect::<Vec<_>>(),
        vec![None, Some(50.0), Some(30.0)]
    );
    assert_eq!(rows[1].estimate, 60.0);
    assert_eq!(rows[1].provision, 72.0);
    assert!(rows[1].seasonal && !rows[2].seasonal && rows[0].forecast_only);
    assert_eq!(rows[2].serves_from_ms, ms(t(10)));
    assert_eq!(rows[2].group, "web");
    assert!(
        store
            .forecasts(Some("api"), 10, t(100))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.forecasts(None, 2, t(100)).await.unwrap().len(), 2);
    assert_eq!(store.prune_forecasts(t(20)).await.unwrap(), 1);
    assert_eq!(store.forecasts(None, 10, t(100)).await.unwrap().len(), 2);
}

/// Instances: intent (no pid) then settled, replaced per (group, host, port), listed oldest
/// first, deleted.
pub async fn instances_intent_settle_delete(store: &dyn Store) {
    let starting = InstanceRecord {
        host: "127.0.0.2".into(),
        port: 20001,
        pid: None,
        started_ms: 7,
        marker: Some("web/127.0.0.2:20001/ab12".into()),
    };
    store.put_instance("web", starting.clone()).await.unwrap();
    assert_eq!(
        store.instances("web").await.unwrap(),
        vec![starting.clone()]
    );
    let settled = InstanceRecord {
        pid: Some(42),
        ..starting.clone()
    };
    store.put_instance("web", settled.clone()).await.unwrap();
    let older = InstanceRecord {
        host: "127.0.0.1".into(),
        port: 20002,
        pid: Some(43),
        started_ms: 3,
        marker: None,
    };
    store.put_instance("web", older.clone()).await.unwrap();
    store.put_instance("api", older.clone()).await.unwrap();
    assert_eq!(
        store.instances("web").await.unwrap(),
        vec![older.clone(), settled]
    );
    store
        .delete_instance("web", "127.0.0.2", 20001)
        .await
        .unwrap();
    assert_eq!(store.instances("web").await.unwrap(), vec![older.clone()]);
    assert_eq!(store.instances("api").await.unwrap(), vec![older]);
}

/// History pruning deletes old errors and old dry-run records, never real activities.
pub async fn history_pruning_keeps_real_activities(store: &dyn Store) {
    let d = json!({});
    let dry = |key: &'static str, at| NewActivity {
        status: ActivityStatus::DryRun,
        at,
        ..intent(key, "web", 2, &d)
    };
    store.begin_activity(&dry("dry-old", t(0))).await.unwrap();
    store.begin_activity(&dry("dry-new", t(100))).await.unwrap();
    store
        .begin_activity(&intent("real-old", "web", 2, &d))
        .await
        .unwrap();
    store
        .finish_activity("real-old", ActivityStatus::Succeeded, None, t(1))
        .await
        .unwrap();
    store
        .record_error(Some("web"), ErrorComponent::Target, "old", t(0))
        .await
        .unwrap();
    store
        .record_error(Some("web"), ErrorComponent::Target, "new", t(100))
        .await
        .unwrap();
    assert_eq!(store.prune_history(t(50)).await.unwrap(), 2);
    let mut keys: Vec<String> = store
        .activities(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["dry-new", "real-old"]);
    let errors = store.errors(None, 10).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "new");
}

/// Group configs are saved (and replaced) without error.
pub async fn group_config_saves(store: &dyn Store) {
    store
        .save_group_config("web", &json!({"name": "web"}), t(0))
        .await
        .unwrap();
    store
        .save_group_config("web", &json!({"name": "web", "max": 3}), t(1))
        .await
        .unwrap();
}

/// Progress counts what was written from a moment on.
pub async fn progress_counts_recent_writes(store: &dyn Store) {
    let d = json!({});
    store
        .save_state("a", &state(0, 0), None, t(0))
        .await
        .unwrap();
    store
        .save_state("b", &state(0, 0), None, t(5))
        .await
        .unwrap();
    store
        .save_state("b", &state(1, 0), None, t(6))
        .await
        .unwrap();
    let m = BTreeMap::from([("rps".to_string(), 1.0), ("cpu".to_string(), 2.0)]);
    store.record_samples("a", t(0), &m).await.unwrap();
    store.record_samples("b", t(5), &m).await.unwrap();
    store
        .begin_activity(&NewActivity {
            at: t(5),
            ..intent("b:1", "b", 4, &d)
        })
        .await
        .unwrap();
    let p = store.progress_since(t(5)).await.unwrap();
    assert_eq!((p.groups, p.samples, p.activities), (1, 2, 1));
    let p = store.progress_since(t(0)).await.unwrap();
    assert_eq!((p.groups, p.samples, p.activities), (2, 4, 1));
}

/// Groups kept in the database: put, replace, enable, delete, each a new version.
pub async fn group_rows_round_trip(store: &dyn Store) {
    let v0 = store.group_rows_version().await.unwrap();
    assert!(store.group_rows().await.unwrap().is_empty());
    let web = json!({"name": "web", "min": 1, "max": 4, "strategies": []});
    store.put_group_row("web", &web, true, t(0)).await.unwrap();
    store
        .put_group_row("api", &json!({"name": "api"}), false, t(1))
        .await
        .unwrap();
    let v1 = store.group_rows_version().await.unwrap();
    assert!(v1 > v0);
    let rows = store.group_rows().await.unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!((rows[1].spec.clone(), rows[1].enabled), (web, true));
    assert_eq!((rows[0].enabled, rows[0].updated_ms), (false, ms(t(1))));
    assert!(
        rows[0].version > rows[1].version,
        "the later put has the later version"
    );

    // Replacing a row and enabling one both move the counter.
    let web2 = json!({"name": "web", "min": 2, "max": 4, "strategies": []});
    store.put_group_row("web", &web2, true, t(2)).await.unwrap();
    let v2 = store.group_rows_version().await.unwrap();
    assert!(v2 > v1);
    assert!(
        store
            .set_group_row_enabled("api", true, t(3))
            .await
            .unwrap()
    );
    let v3 = store.group_rows_version().await.unwrap();
    assert!(v3 > v2);
    let rows = store.group_rows().await.unwrap();
    assert!(rows[0].enabled);
    assert_eq!(rows[1].spec, web2);
    assert!(
        !store
            .set_group_row_enabled("nope", true, t(3))
            .await
            .unwrap()
    );

    assert!(store.delete_group_row("api").await.unwrap());
    assert!(!store.delete_group_row("api").await.unwrap());
    assert!(store.group_rows_version().await.unwrap() > v3);
    assert_eq!(store.group_rows().await.unwrap().len(), 1);
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A short lease for the expiry tests: long enough to be taken and checked, short enough
/// to wait out.
const SHORT: Duration = Duration::from_millis(400);
const LONG: Duration = Duration::from_secs(60);

/// A lease is held by one daemon at a time; renewing keeps the epoch, taking a lapsed lease
/// bumps it, and the old holder's renewal is then refused. Acquiring also renews the
/// holder's session (with `SHORT`, its leases lapse unless renewed).
pub async fn leases_are_exclusive(store: &dyn Store) {
    let a = store
        .acquire_leases("a", &names(&["g1", "g2"]), SHORT)
        .await
        .unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|l| l.holder == "a" && l.epoch == 1));
    let b = store
        .acquire_leases("b", &names(&["g1", "g2", "g3"]), LONG)
        .await
        .unwrap();
    let got: Vec<&str> = b.iter().map(|l| l.group.as_str()).collect();
    assert_eq!(got, ["g3"], "b gets only the free group");
    // Renewed by its holder: same epoch, later expiry.
    let again = store
        .acquire_leases("a", &names(&["g1"]), SHORT)
        .await
        .unwrap();
    assert_eq!(again[0].epoch, 1);
    assert!(again[0].expires_ms >= a[0].expires_ms);

    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    let b = store
        .acquire_leases("b", &names(&["g1"]), LONG)
        .await
        .unwrap();
    assert_eq!(
        (b.len(), b[0].epoch),
        (1, 2),
        "a lapsed lease is taken at the next epoch"
    );
    assert!(
        store
            .acquire_leases("a", &names(&["g1"]), SHORT)
            .await
            .unwrap()
            .is_empty(),
        "the old holder cannot renew a lease taken over"
    );
    // g2 lapsed but nobody took it: its old holder gets it back, at a new epoch.
    let back = store
        .acquire_leases("a", &names(&["g2"]), LONG)
        .await
        .unwrap();
    assert_eq!(back[0].epoch, 2);
    let all = store.leases().await.unwrap();
    let holders: Vec<(&str, &str, i64)> = all
        .iter()
        .map(|l| (l.group.as_str(), l.holder.as_str(), l.epoch))
        .collect();
    assert_eq!(holders, [("g1", "b", 2), ("g2", "a", 2), ("g3", "b", 1)]);

    // Released leases are free at once, at a new epoch.
    store.release_leases("b", &names(&["g3"])).await.unwrap();
    let c = store
        .acquire_leases("c", &names(&["g3"]), LONG)
        .await
        .unwrap();
    assert_eq!(c[0].epoch, 2);
}

/// A write under a lease that was taken over is refused, and writes nothing: not the
/// intent, not the state.
pub async fn fenced_writes_need_the_lease(store: &dyn Store) {
    let d = json!({});
    let a = store
        .acquire_leases("a", &names(&["web"]), SHORT)
        .await
        .unwrap()
        .remove(0);
    let fence_a = a.fence();
    let with_a = NewActivity {
        fence: Some(&fence_a),
        ..intent("web:1", "web", 4, &d)
    };
    assert!(
        store
            .begin_activity_with_state(&with_a, &state(1, 0), None)
            .await
            .unwrap()
    );
    store
        .save_state_fenced("web", &state(2, 0), None, t(1), &fence_a)
        .await
        .unwrap();

    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    // Lapsed, not yet taken: the fence no longer holds either (the holder must stop acting
    // when its lease ends, whoever takes it next).
    let late = NewActivity {
        fence: Some(&fence_a),
        ..intent("web:2", "web", 5, &d)
    };
    let err = store.begin_activity(&late).await.unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");

    let b = store
        .acquire_leases("b", &names(&["web"]), LONG)
        .await
        .unwrap()
        .remove(0);
    let err = store
        .begin_activity_with_state(&late, &state(9, 9), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    let err = store
        .save_state_fenced("web", &state(9, 9), None, t(2), &fence_a)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    let keys: Vec<String> = store
        .activities(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.key)
        .collect();
    assert_eq!(keys, ["web:1"], "nothing written under the old lease");
    let st = store.load_state("web").await.unwrap().unwrap();
    assert_eq!(st.state.consecutive_failures, 2);

    // The new holder writes.
    let fence_b = b.fence();
    let with_b = NewActivity {
        fence: Some(&fence_b),
        ..intent("web:3", "web", 5, &d)
    };
    assert!(store.begin_activity(&with_b).await.unwrap());
    store
        .save_state_fenced("web", &state(3, 0), None, t(3), &fence_b)
        .await
        .unwrap();
}

/// Heartbeats: the live daemons, in order; one that leaves (or stops beating) drops out,
/// and leaving ends its leases.
pub async fn heartbeats_and_leaving(store: &dyn Store) {
    assert_eq!(store.heartbeat("b", LONG).await.unwrap(), ["b"]);
    assert_eq!(store.heartbeat("a", LONG).await.unwrap(), ["a", "b"]);
    assert_eq!(store.heartbeat("c", SHORT).await.unwrap(), ["a", "b", "c"]);
    // A lease taken alone (`scalepilot once`) starts a session, not a member's: the running
    // daemons must not hand it a share of the groups.
    let once = store
        .acquire_leases("once", &names(&["g9"]), LONG)
        .await
        .unwrap();
    assert_eq!(once.len(), 1);
    assert_eq!(store.heartbeat("b", LONG).await.unwrap(), ["a", "b", "c"]);
    store
        .acquire_leases("a", &names(&["g1"]), LONG)
        .await
        .unwrap();
    store.leave("a").await.unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    assert_eq!(store.heartbeat("b", LONG).await.unwrap(), ["b"]);
    let got = store
        .acquire_leases("b", &names(&["g1"]), LONG)
        .await
        .unwrap();
    assert_eq!(got[0].epoch, 2, "a's lease ended when it left");
}

fn entry(group: &str, rate: f64, spent: f64) -> BudgetEntry {
    BudgetEntry {
        group: group.to_string(),
        rate_per_hour: rate,
        month: "2027-01".into(),
        spent,
        updated_ms: ms(t(0)),
    }
}

/// Budget entries round-trip; every write moves the version; a delete removes the entry.
pub async fn budget_entries_round_trip(store: &dyn Store) {
    let (v0, none) = store.budget_entries().await.unwrap();
    assert!(none.is_empty());
    assert!(
        store
            .put_budget_entry(&entry("web", 2.5, 10.25), v0, None)
            .await
            .unwrap()
    );
    let (v1, got) = store.budget_entries().await.unwrap();
    assert_ne!(v1, v0);
    assert_eq!(got, [entry("web", 2.5, 10.25)]);
    assert!(
        store
            .put_budget_entry(&entry("api", 1.0, 0.0), v1, None)
            .await
            .unwrap()
    );
    // Settled whatever the version, replacing the entry.
    store
        .settle_budget_entry(&entry("web", 0.5, 10.5), None)
        .await
        .unwrap();
    let (v2, got) = store.budget_entries().await.unwrap();
    assert!(v2 != v1 && v2 != v0);
    assert_eq!(got, [entry("api", 1.0, 0.0), entry("web", 0.5, 10.5)]);
    store.delete_budget_entry("web").await.unwrap();
    store.delete_budget_entry("nothing").await.unwrap();
    let (v3, got) = store.budget_entries().await.unwrap();
    assert_ne!(v3, v2);
    assert_eq!(got, [entry("api", 1.0, 0.0)]);
}

/// A write against a version that moved is refused and writes nothing.
pub async fn budget_cas_refuses_a_stale_version(store: &dyn Store) {
    let (v0, _) = store.budget_entries().await.unwrap();
    assert!(
        store
            .put_budget_entry(&entry("a", 3.0, 0.0), v0, None)
            .await
            .unwrap()
    );
    let stale = store
        .put_budget_entry(&entry("b", 9.0, 0.0), v0, None)
        .await
        .unwrap();
    assert!(!stale, "a stale version must be refused");
    let (v1, got) = store.budget_entries().await.unwrap();
    assert_eq!(
        got,
        [entry("a", 3.0, 0.0)],
        "nothing written by the refused write"
    );
    assert!(
        store
            .put_budget_entry(&entry("b", 9.0, 0.0), v1, None)
            .await
            .unwrap()
    );
}

/// Two writers that read the same version race: exactly one wins, every round.
pub async fn budget_racing_writers_never_both_win(store: &dyn Store) {
    for round in 0..20 {
        let (v, _) = store.budget_entries().await.unwrap();
        let (a, b) = (
            entry("a", f64::from(round), 0.0),
            entry("b", f64::from(round), 0.0),
        );
        let (ra, rb) = tokio::join!(
            store.put_budget_entry(&a, v, None),
            store.put_budget_entry(&b, v, None)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            ra ^ rb,
            "round {round}: exactly one of two racing writers wins ({ra}, {rb})"
        );
    }
}

/// A ledger write under a lease that lapsed or was taken over is refused and writes
/// nothing; the new holder writes.
pub async fn budget_fenced_write_under_a_lost_lease_writes_nothing(store: &dyn Store) {
    let a = store
        .acquire_leases("a", &names(&["web"]), SHORT)
        .await
        .unwrap()
        .remove(0);
    let fence_a = a.fence();
    let (v, _) = store.budget_entries().await.unwrap();
    assert!(
        store
            .put_budget_entry(&entry("web", 1.0, 0.0), v, Some(&fence_a))
            .await
            .unwrap()
    );
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    let b = store
        .acquire_leases("b", &names(&["web"]), LONG)
        .await
        .unwrap()
        .remove(0);
    let (v, before) = store.budget_entries().await.unwrap();
    let err = store
        .put_budget_entry(&entry("web", 7.0, 0.0), v, Some(&fence_a))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    let err = store
        .settle_budget_entry(&entry("web", 7.0, 0.0), Some(&fence_a))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    assert_eq!(
        store.budget_entries().await.unwrap(),
        (v, before),
        "nothing written under the old lease, the version unmoved"
    );
    let fence_b = b.fence();
    assert!(
        store
            .put_budget_entry(&entry("web", 2.0, 0.0), v, Some(&fence_b))
            .await
            .unwrap()
    );
    assert_eq!(
        store.budget_entries().await.unwrap().1,
        [entry("web", 2.0, 0.0)]
    );
}

/// Session-based leases: a daemon's heartbeat renews all of its leases, with no write per
/// lease; its session lapsing ends all of them at once; a daemon back after a lapse does not
/// get its old fences back (its heartbeat releases them), and every takeover bumps the epoch.
pub async fn one_heartbeat_renews_every_lease(store: &dyn Store) {
    let a = store
        .acquire_leases("a", &names(&["g1", "g2"]), SHORT)
        .await
        .unwrap();
    assert_eq!(a.len(), 2);
    // Only the session is renewed, far beyond the leases' first expiry.
    store.heartbeat("a", LONG).await.unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    assert!(
        store
            .acquire_leases("b", &names(&["g1", "g2"]), LONG)
            .await
            .unwrap()
            .is_empty(),
        "a's heartbeat renewed both leases"
    );
    store
        .save_state_fenced("g1", &state(1, 0), None, t(1), &a[0].fence())
        .await
        .unwrap();
    // Held groups are read, not taken again: same epochs, the session's expiry.
    let again = store
        .acquire_leases("a", &names(&["g1", "g2", "g3"]), LONG)
        .await
        .unwrap();
    let got: Vec<(&str, i64)> = again.iter().map(|l| (l.group.as_str(), l.epoch)).collect();
    assert_eq!(got, [("g1", 1), ("g2", 1), ("g3", 1)]);
    let listed = store.leases().await.unwrap();
    assert!(listed.iter().all(|l| l.expires_ms == again[0].expires_ms));

    // c's session lapses: every one of its leases ends, taken or not.
    let c = store
        .acquire_leases("c", &names(&["h1", "h2"]), SHORT)
        .await
        .unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    let err = store
        .save_state_fenced("h1", &state(2, 0), None, t(2), &c[0].fence())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    let b = store
        .acquire_leases("b", &names(&["h2"]), LONG)
        .await
        .unwrap();
    assert_eq!(
        (b[0].group.as_str(), b[0].epoch),
        ("h2", 2),
        "takeover bumps"
    );
    // c is back: its heartbeat releases what it held, so its old fence stays dead...
    store.heartbeat("c", LONG).await.unwrap();
    let h1 = store.leases().await.unwrap().remove(3);
    assert_eq!((h1.group.as_str(), h1.expires_ms), ("h1", 0), "released");
    let err = store
        .save_state_fenced("h1", &state(3, 0), None, t(3), &c[0].fence())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    // ...and taking the group again is a new epoch, under which it writes.
    let back = store
        .acquire_leases("c", &names(&["h1", "h2"]), LONG)
        .await
        .unwrap();
    assert_eq!(back.len(), 1, "h2 is b's now");
    assert_eq!((back[0].group.as_str(), back[0].epoch), ("h1", 2));
    store
        .save_state_fenced("h1", &state(4, 0), None, t(4), &back[0].fence())
        .await
        .unwrap();
}

fn token(name: &str, role: Role, hash: &str, created: i64, revoked: Option<i64>) -> TokenRecord {
    TokenRecord {
        name: name.to_string(),
        role,
        hash: hash.to_string(),
        created_ms: ms(t(created)),
        revoked_ms: revoked.map(|r| ms(t(r))),
    }
}

/// Tokens: one live token per name; a revoked one stays listed until a new one of that name
/// replaces it; the version moves with every creation and revocation, and only then.
pub async fn api_tokens_create_revoke_recreate(store: &dyn Store) {
    assert!(store.tokens().await.unwrap().is_empty());
    let mut versions = vec![store.tokens_version().await.unwrap()];
    let moved = |versions: &mut Vec<i64>, v: i64| {
        assert!(
            !versions.contains(&v),
            "version {v} seen before: {versions:?}"
        );
        versions.push(v);
    };

    assert!(
        store
            .create_token("ci", Role::Operator, "h1", t(1))
            .await
            .unwrap()
    );
    moved(&mut versions, store.tokens_version().await.unwrap());
    // A live token of that name: refused, nothing written, the version unchanged.
    assert!(
        !store
            .create_token("ci", Role::Admin, "h2", t(2))
            .await
            .unwrap()
    );
    assert_eq!(
        store.tokens_version().await.unwrap(),
        *versions.last().unwrap()
    );
    assert!(
        store
            .create_token("alice", Role::Viewer, "h3", t(3))
            .await
            .unwrap()
    );
    moved(&mut versions, store.tokens_version().await.unwrap());
    assert_eq!(
        store.tokens().await.unwrap(),
        [
            token("alice", Role::Viewer, "h3", 3, None),
            token("ci", Role::Operator, "h1", 1, None),
        ]
    );

    assert!(store.revoke_token("ci", t(4)).await.unwrap());
    moved(&mut versions, store.tokens_version().await.unwrap());
    assert_eq!(
        store.tokens().await.unwrap(),
        [
            token("alice", Role::Viewer, "h3", 3, None),
            token("ci", Role::Operator, "h1", 1, Some(4)),
        ]
    );
    // Revoked already, or never there: false, and nothing moves.
    assert!(!store.revoke_token("ci", t(5)).await.unwrap());
    assert!(!store.revoke_token("nobody", t(5)).await.unwrap());
    assert_eq!(
        store.tokens_version().await.unwrap(),
        *versions.last().unwrap()
    );
    assert_eq!(store.tokens().await.unwrap()[1].revoked_ms, Some(ms(t(4))));

    // A new token of a revoked name replaces it.
    assert!(
        store
            .create_token("ci", Role::Admin, "h4", t(6))
            .await
            .unwrap()
    );
    moved(&mut versions, store.tokens_version().await.unwrap());
    assert_eq!(
        store.tokens().await.unwrap(),
        [
            token("alice", Role::Viewer, "h3", 3, None),
            token("ci", Role::Admin, "h4", 6, None),
        ]
    );
    assert!(
        !store
            .create_token("ci", Role::Viewer, "h5", t(7))
            .await
            .unwrap()
    );
    assert_eq!(store.tokens().await.unwrap()[1].hash, "h4");
}

/// Two creations of one name at once: exactly one wins, and the token is the winner's.
pub async fn api_tokens_racing_creations_never_both_win(store: &dyn Store) {
    for round in 0..20 {
        let name = format!("t{round}");
        let (ra, rb) = tokio::join!(
            store.create_token(&name, Role::Viewer, "ha", t(round)),
            store.create_token(&name, Role::Admin, "hb", t(round))
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            ra ^ rb,
            "round {round}: exactly one creation wins ({ra}, {rb})"
        );
        let tokens = store.tokens().await.unwrap();
        let mine: Vec<_> = tokens.iter().filter(|t| t.name == name).collect();
        assert_eq!(mine.len(), 1);
        let winner = if ra {
            (Role::Viewer, "ha")
        } else {
            (Role::Admin, "hb")
        };
        assert_eq!((mine[0].role, mine[0].hash.as_str()), winner);
    }
}

fn ids<T>(rows: &[T], id: impl Fn(&T) -> i64) -> Vec<i64> {
    rows.iter().map(id).collect()
}

/// The audit log: entries read back as written (JSON before and after included), newest
/// first, filtered by actor, time and allowed/denied, paged by id; history pruning keeps it.
pub async fn audit_round_trip_filters_and_cursor(store: &dyn Store) {
    let before =
        json!({"paused": false, "replicas": [1, 2], "cost": 0.1, "big": 9_007_199_254_740_993_u64});
    let after = json!({"paused": true, "note": "é \u{0} \"quoted\""});
    let odd = json!({"nul": "a\u{0}b", "nested": {"z": 1, "a": [null, true]}});
    let entries = [
        NewAudit {
            actor: "ci",
            role: Some(Role::Operator),
            at: t(10),
            method: "POST",
            route: "/groups/web/pause",
            status: 200,
            allowed: true,
            before: Some(&before),
            after: Some(&after),
            detail: None,
        },
        NewAudit {
            actor: "anonymous",
            role: None,
            at: t(20),
            method: "GET",
            route: "/groups?enabled=true",
            status: 401,
            allowed: false,
            before: None,
            after: None,
            detail: Some("no token"),
        },
        NewAudit {
            actor: "ci",
            role: Some(Role::Operator),
            at: t(30),
            method: "POST",
            route: "/reload",
            status: 403,
            allowed: false,
            before: Some(&odd),
            after: None,
            detail: Some("needs admin"),
        },
        NewAudit {
            actor: "root",
            role: Some(Role::Admin),
            at: t(40),
            method: "DELETE",
            route: "/tokens/ci",
            status: 204,
            allowed: true,
            before: None,
            after: Some(&odd),
            detail: None,
        },
    ];
    let mut id = Vec::new();
    for e in &entries {
        id.push(store.record_audit(e).await.unwrap());
    }
    assert!(id.windows(2).all(|w| w[0] < w[1]), "{id:?}");
    let expected: Vec<AuditRecord> = entries
        .iter()
        .zip(&id)
        .rev()
        .map(|(e, id)| AuditRecord {
            id: *id,
            actor: e.actor.to_string(),
            role: e.role,
            at_ms: ms(e.at),
            method: e.method.to_string(),
            route: e.route.to_string(),
            status: e.status,
            allowed: e.allowed,
            before: e.before.cloned(),
            after: e.after.cloned(),
            detail: e.detail.map(str::to_string),
        })
        .collect();
    let q = |f: fn(&mut HistoryQuery)| {
        let mut q = HistoryQuery {
            limit: 100,
            ..HistoryQuery::default()
        };
        f(&mut q);
        q
    };
    let page =
        |q: HistoryQuery<'static>| async move { ids(&store.audit(&q).await.unwrap(), |a| a.id) };
    assert_eq!(store.audit(&q(|_| {})).await.unwrap(), expected);
    assert_eq!(page(q(|q| q.group = Some("ci"))).await, [id[2], id[0]]);
    assert!(page(q(|q| q.group = Some("nobody"))).await.is_empty());
    assert_eq!(page(q(|q| q.status = Some("denied"))).await, [id[2], id[1]]);
    assert_eq!(
        page(q(|q| q.status = Some("allowed"))).await,
        [id[3], id[0]]
    );
    assert!(page(q(|q| q.status = Some("Allowed"))).await.is_empty());
    assert_eq!(
        page(q(|q| q.since = Some(t(20)))).await,
        [id[3], id[2], id[1]]
    );
    assert_eq!(page(q(|q| q.until = Some(t(30)))).await, [id[1], id[0]]);
    let window = q(|q| {
        q.since = Some(t(20));
        q.until = Some(t(40));
    });
    assert_eq!(page(window).await, [id[2], id[1]]);
    let mine_allowed = q(|q| {
        q.group = Some("ci");
        q.status = Some("allowed");
    });
    assert_eq!(page(mine_allowed).await, [id[0]]);
    let mut cursor = q(|_| {});
    cursor.before_id = Some(id[2]);
    assert_eq!(page(cursor.clone()).await, [id[1], id[0]]);
    cursor.limit = 1;
    assert_eq!(page(cursor).await, [id[1]]);

    // Pruning history never touches the audit log.
    store.prune_history(t(1_000_000)).await.unwrap();
    assert_eq!(store.audit(&q(|_| {})).await.unwrap(), expected);
}

/// Pages `q` by its cursor until an empty page: each page's ids, in order.
async fn walk<F, Fut>(mut q: HistoryQuery<'static>, read: F) -> Vec<Vec<i64>>
where
    F: Fn(HistoryQuery<'static>) -> Fut,
    Fut: std::future::Future<Output = Vec<i64>>,
{
    let mut pages = Vec::new();
    loop {
        let page = read(q.clone()).await;
        let Some(last) = page.last() else {
            return pages;
        };
        assert!(pages.len() < 100, "the cursor does not advance");
        q.before_id = Some(*last);
        pages.push(page);
    }
}

/// Pages of activities: by group, start time, status text and cursor, newest first.
pub async fn activities_page_filters_and_cursor(store: &dyn Store) {
    use ActivityStatus::*;
    let rows = [
        ("a0", "api", Succeeded),
        ("a1", "web", Succeeded),
        ("a2", "web", Failed),
        ("a3", "api", DryRun),
        ("a4", "web", Succeeded),
        ("a5", "web", Pending),
        ("a6", "api", Failed),
        ("a7", "web", DryRun),
        ("a8", "web", Succeeded),
    ];
    let d = json!({"desired_replicas": 4});
    for (n, (key, group, status)) in rows.iter().enumerate() {
        let a = NewActivity {
            at: t(10 * n as i64),
            status: if *status == DryRun { DryRun } else { Pending },
            ..intent(key, group, 4, &d)
        };
        assert!(store.begin_activity(&a).await.unwrap());
        if !matches!(status, DryRun | Pending) {
            store
                .finish_activity(key, *status, None, t(10 * n as i64 + 5))
                .await
                .unwrap();
        }
    }
    let q = |f: fn(&mut HistoryQuery)| {
        let mut q = HistoryQuery {
            limit: 100,
            ..HistoryQuery::default()
        };
        f(&mut q);
        q
    };
    let keys = |q: HistoryQuery<'static>| async move {
        store
            .activities_page(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.key)
            .collect::<Vec<_>>()
    };
    let all = store.activities_page(&q(|_| {})).await.unwrap();
    let id = |key: &str| all.iter().find(|a| a.key == key).unwrap().id;
    assert_eq!(
        all.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(),
        ["a8", "a7", "a6", "a5", "a4", "a3", "a2", "a1", "a0"]
    );
    // The same rows as `activities` reads.
    let old = store.activities(None, 100).await.unwrap();
    assert_eq!(ids(&all, |a| a.id), ids(&old, |a| a.id));
    assert_eq!((all[6].status, all[6].started_ms), (Failed, ms(t(20))));
    assert_eq!(
        (all[6].finished_ms, &all[6].decision),
        (Some(ms(t(25))), &d)
    );

    assert_eq!(
        keys(q(|q| q.group = Some("web"))).await,
        ["a8", "a7", "a5", "a4", "a2", "a1"]
    );
    assert_eq!(keys(q(|q| q.group = Some("api"))).await, ["a6", "a3", "a0"]);
    assert_eq!(keys(q(|q| q.group = Some("we"))).await, [""; 0]);
    assert_eq!(
        keys(q(|q| q.since = Some(t(40)))).await,
        ["a8", "a7", "a6", "a5", "a4"]
    );
    assert_eq!(
        keys(q(|q| q.until = Some(t(40)))).await,
        ["a3", "a2", "a1", "a0"]
    );
    let window = q(|q| {
        q.since = Some(t(20));
        q.until = Some(t(60));
    });
    assert_eq!(keys(window).await, ["a5", "a4", "a3", "a2"]);
    assert_eq!(
        keys(q(|q| q.status = Some("succeeded"))).await,
        ["a8", "a4", "a1", "a0"]
    );
    assert_eq!(keys(q(|q| q.status = Some("dry_run"))).await, ["a7", "a3"]);
    assert_eq!(keys(q(|q| q.status = Some("pending"))).await, ["a5"]);
    assert_eq!(keys(q(|q| q.status = Some("done"))).await, [""; 0]);
    let web_failed = q(|q| {
        q.group = Some("web");
        q.since = Some(t(20));
        q.until = Some(t(80));
        q.status = Some("failed");
    });
    assert_eq!(keys(web_failed).await, ["a2"]);
    let mut before = q(|_| {});
    before.before_id = Some(id("a5"));
    assert_eq!(keys(before.clone()).await, ["a4", "a3", "a2", "a1", "a0"]);
    before.group = Some("web");
    assert_eq!(keys(before).await, ["a4", "a2", "a1"]);
    assert_eq!(keys(q(|q| q.limit = 2)).await, ["a8", "a7"]);

    // Three pages of two by the cursor: every row once, in order.
    let web = HistoryQuery {
        group: Some("web"),
        limit: 2,
        ..HistoryQuery::default()
    };
    let read = |q: HistoryQuery<'static>| async move {
        ids(&store.activities_page(&q).await.unwrap(), |a| a.id)
    };
    let pages = walk(web, read).await;
    assert_eq!(
        pages,
        [
            vec![id("a8"), id("a7")],
            vec![id("a5"), id("a4")],
            vec![id("a2"), id("a1")]
        ]
    );
}

/// Pages of errors: by group, time, component text and cursor, newest first.
pub async fn errors_page_filters_and_cursor(store: &dyn Store) {
    use ErrorComponent::*;
    let rows = [
        (Some("web"), Source),
        (None, Config),
        (Some("api"), Target),
        (Some("web"), Target),
        (Some("web"), Store),
        (Some("api"), Source),
        (Some("web"), Alert),
    ];
    for (n, (group, component)) in rows.iter().enumerate() {
        store
            .record_error(*group, *component, &format!("e{n}"), t(10 * n as i64))
            .await
            .unwrap();
    }
    let q = |f: fn(&mut HistoryQuery)| {
        let mut q = HistoryQuery {
            limit: 100,
            ..HistoryQuery::default()
        };
        f(&mut q);
        q
    };
    let messages = |q: HistoryQuery<'static>| async move {
        store
            .errors_page(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
    };
    let all = store.errors_page(&q(|_| {})).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["e6", "e5", "e4", "e3", "e2", "e1", "e0"]
    );
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "{all:?}");
    // `errors` reads the same rows, ids included.
    let old = store.errors(None, 100).await.unwrap();
    assert_eq!(ids(&old, |e| e.id), ids(&all, |e| e.id));
    assert_eq!(
        (all[5].group.as_deref(), all[5].component, all[5].at_ms),
        (None, Config, ms(t(10)))
    );
    let id = |m: &str| all.iter().find(|e| e.message == m).unwrap().id;

    assert_eq!(
        messages(q(|q| q.group = Some("web"))).await,
        ["e6", "e4", "e3", "e0"]
    );
    assert_eq!(
        messages(q(|q| q.since = Some(t(30)))).await,
        ["e6", "e5", "e4", "e3"]
    );
    assert_eq!(
        messages(q(|q| q.until = Some(t(30)))).await,
        ["e2", "e1", "e0"]
    );
    let window = q(|q| {
        q.since = Some(t(10));
        q.until = Some(t(50));
    });
    assert_eq!(messages(window).await, ["e4", "e3", "e2", "e1"]);
    assert_eq!(
        messages(q(|q| q.status = Some("target"))).await,
        ["e3", "e2"]
    );
    assert_eq!(
        messages(q(|q| q.status = Some("source"))).await,
        ["e5", "e0"]
    );
    assert_eq!(messages(q(|q| q.status = Some("sources"))).await, [""; 0]);
    let web_target = q(|q| {
        q.group = Some("web");
        q.status = Some("target");
    });
    assert_eq!(messages(web_target).await, ["e3"]);
    let mut before = q(|_| {});
    before.before_id = Some(id("e4"));
    assert_eq!(messages(before).await, ["e3", "e2", "e1", "e0"]);

    // Three pages by the cursor (the last one short): every row once, in order.
    let three = HistoryQuery {
        limit: 3,
        ..HistoryQuery::default()
    };
    let read = |q: HistoryQuery<'static>| async move {
        ids(&store.errors_page(&q).await.unwrap(), |e| e.id)
    };
    let pages = walk(three, read).await;
    assert_eq!(
        pages,
        [
            vec![id("e6"), id("e5"), id("e4")],
            vec![id("e3"), id("e2"), id("e1")],
            vec![id("e0")]
        ]
    );
}

/// No page is longer than 1000 rows, whatever limit is asked for; the newest come first.
pub async fn history_pages_are_capped(store: &dyn Store) {
    let n = crate::MAX_PAGE as i64 + 5;
    let a = NewAudit {
        actor: "ci",
        role: Some(Role::Viewer),
        at: t(0),
        method: "GET",
        route: "/groups",
        status: 200,
        allowed: true,
        before: None,
        after: None,
        detail: None,
    };
    let mut last_audit = 0;
    for i in 0..n {
        store
            .record_error(Some("web"), ErrorComponent::Source, &format!("e{i}"), t(i))
            .await
            .unwrap();
        last_audit = store
            .record_audit(&NewAudit {
                at: t(i),
                ..a.clone()
            })
            .await
            .unwrap();
    }
    for limit in [u32::MAX, crate::MAX_PAGE + 1] {
        let q = HistoryQuery {
            limit,
            ..HistoryQuery::default()
        };
        let errors = store.errors_page(&q).await.unwrap();
        assert_eq!(errors.len(), crate::MAX_PAGE as usize);
        assert_eq!(errors[0].message, format!("e{}", n - 1));
        let audit = store.audit(&q).await.unwrap();
        assert_eq!(audit.len(), crate::MAX_PAGE as usize);
        assert_eq!(audit[0].id, last_audit);
    }
    let q = |limit| HistoryQuery {
        limit,
        ..HistoryQuery::default()
    };
    assert_eq!(store.errors_page(&q(7)).await.unwrap().len(), 7);
    assert!(store.errors_page(&q(0)).await.unwrap().is_empty());
}

/// Generates one `#[tokio::test]` per conformance function, each on a fresh store from
/// `$open` (an async block yielding `(guard, Arc<dyn Store>)`; the guard lives for the test).
#[macro_export]
macro_rules! conformance_tests {
    ($open:expr) => {
        $crate::conformance_tests!(@each $open;
            activity_begin_and_finish,
            activity_keys_are_idempotent,
            pending_activities_of_a_group,
            activities_newest_first,
            activity_statuses_round_trip,
            state_round_trip,
            intent_with_state_is_atomic,
            errors_are_recorded,
            samples_and_prune,
            forecasts_meet_their_actuals,
            instances_intent_settle_delete,
            history_pruning_keeps_real_activities,
            group_config_saves,
            group_rows_round_trip,
            progress_counts_recent_writes,
            leases_are_exclusive,
            fenced_writes_need_the_lease,
            heartbeats_and_leaving,
            budget_entries_round_trip,
            budget_cas_refuses_a_stale_version,
            budget_racing_writers_never_both_win,
            budget_fenced_write_under_a_lost_lease_writes_nothing,
            one_heartbeat_renews_every_lease,
            api_tokens_create_revoke_recreate,
            api_tokens_racing_creations_never_both_win,
            audit_round_trip_filters_and_cursor,
            activities_page_filters_and_cursor,
            errors_page_filters_and_cursor,
            history_pages_are_capped,
        );
    };
    (@each $open:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $open.await;
                $crate::conformance::$name(&*store).await;
            }
        )+
    };
}
