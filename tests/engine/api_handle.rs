//! What the REST API asks of the engine, through its handle: pauses, the global switch,
//! manual scaling with actor, reason and force, the status snapshot and the Prometheus
//! metrics. The engine runs as a library here, with `command` targets (real `sh` processes
//! writing the count to a file) and a SQLite store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scalepilot_engine::{Engine, EngineHandle, HandleError, ManualScale, Options, Pause};

/// A group: a static `request_rate` of `rate`, 10 per replica, and a target writing the
/// count it is asked for to `NAME.txt` (it starts at `min`).
fn group(dir: &Path, name: &str, rate: u32, max: u32, interval: &str) -> String {
    let d = dir.display();
    format!(
        r#"  - name: {name}
    min: 1
    max: {max}
    evaluation_interval: {interval}
    source: {{kind: static, values: {{request_rate: {rate}}}}}
    target: {{kind: command, command: "echo $SCALEPILOT_DESIRED > {d}/{name}.txt"}}
    behavior:
      scale_up: {{cooldown: 1h}}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#
    )
}

fn config(groups: &[String]) -> String {
    format!(
        "store: {{kind: sqlite, path: sp.db}}\ngroups:\n{}",
        groups.concat()
    )
}

/// A running engine on a config file in a temporary folder.
struct Running {
    handle: EngineHandle,
    run: tokio::task::JoinHandle<anyhow::Result<()>>,
    path: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Running {
    async fn start(make: impl FnOnce(&Path) -> String) -> Running {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sp.yaml");
        std::fs::write(&path, make(tmp.path())).unwrap();
        let engine = Engine::open(&path, Options::default()).await.unwrap();
        let handle = engine.handle();
        let run = tokio::spawn(engine.run());
        Running {
            handle,
            run,
            path,
            _tmp: tmp,
        }
    }

    fn dir(&self) -> PathBuf {
        self.path.parent().unwrap().to_path_buf()
    }

    /// The count `group`'s target was last asked for (None before any).
    fn count(&self, group: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir().join(format!("{group}.txt"))).ok()?;
        text.trim().parse().ok()
    }

    async fn reload(&self, text: String) {
        std::fs::write(&self.path, text).unwrap();
        self.handle.reload().await.unwrap();
    }

    async fn stop(self) {
        self.handle.shutdown().await;
        self.run.await.unwrap().unwrap();
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A sample's value in the text exposition, by its full series name (`name{labels}`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The latest decision record's `limited_by`, if any.
fn limited_by(h: &EngineHandle, group: &str) -> Option<String> {
    let s = h.status(group)?;
    let d = s.last_decision.as_ref()?;
    d["decision"]["limited_by"].as_str().map(str::to_string)
}

/// Paused in scale-out, a group that wants to grow decides so but holds, its decision
/// saying `paused`; the pause survives a reload; unpaused, it grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_direction_holds_until_unpaused() {
    let quiet = |d: &Path| config(&[group(d, "web", 10, 10, "1s")]);
    let e = Running::start(quiet).await;
    let h = &e.handle;
    wait_for("a first evaluation", || {
        h.status("web").is_some_and(|s| s.last_decision.is_some())
    })
    .await;
    let pause = Pause {
        scale_in: false,
        scale_out: true,
    };
    h.set_paused("web", pause).await.unwrap();
    assert_eq!(h.status("web").unwrap().paused, pause);
    assert_eq!(
        h.set_paused("nope", pause).await,
        Err(HandleError::NoGroup("nope".into()))
    );
    // Busy now (40 req/s wants 4): the reload restarts the group, the pause stays.
    e.reload(config(&[group(&e.dir(), "web", 40, 10, "1s")]))
        .await;
    wait_for("a paused decision", || {
        limited_by(h, "web").as_deref() == Some("paused")
    })
    .await;
    let s = h.status("web").unwrap();
    assert_eq!(s.paused, pause, "kept across the reload");
    assert_eq!(s.desired, Some(1), "{s:?}");
    let record = s.last_decision.as_ref().unwrap();
    let limit = record["decision"]["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rule"] == "paused")
        .expect("a paused limit");
    assert_eq!(
        (limit["from"].as_u64(), limit["to"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(e.count("web"), None, "the target was not asked to scale");
    // No cooldown was started by a decision that did not act.
    assert_eq!(s.cooldowns.scale_out_until, None, "{s:?}");

    h.set_paused("web", Pause::default()).await.unwrap();
    wait_for("the group to grow", || e.count("web") == Some(4)).await;
    wait_for("the status to follow", || {
        h.status("web").is_some_and(|s| s.desired == Some(4))
    })
    .await;
    let s = h.status("web").unwrap();
    assert_eq!(s.paused, Pause::default());
    assert!(s.cooldowns.scale_out_until.is_some(), "{s:?}");
    e.stop().await;
}

/// The global switch off stops every evaluation, and a reload does not switch it on again;
/// switched on, the groups evaluate (and act) again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_switch_stops_evaluations_and_survives_a_reload() {
    let quiet = |d: &Path| config(&[group(d, "web", 10, 10, "1s")]);
    let e = Running::start(quiet).await;
    let h = &e.handle;
    wait_for("a first evaluation", || {
        h.status("web").is_some_and(|s| s.last_evaluation.is_some())
    })
    .await;
    assert!(h.all_enabled());
    h.set_all_enabled(false).await.unwrap();
    assert!(!h.all_enabled());
    let text = h.metrics().encode();
    assert_eq!(
        sample(&text, "scalepilot_engine_enabled"),
        Some(0.0),
        "{text}"
    );
    // Manual scaling is refused while switched off.
    let m = ManualScale {
        replicas: 2,
        actor: "ops".into(),
        reason: "test".into(),
        force: false,
    };
    assert_eq!(
        h.scale(m, "web").await.unwrap_err(),
        HandleError::NotRunning("web".into())
    );
    // A reload that would make the group grow, and that restarts it.
    e.reload(config(&[group(&e.dir(), "web", 40, 10, "1s")]))
        .await;
    assert!(!h.all_enabled(), "a reload switched it on");
    // An evaluation in flight at the switch may finish: the baseline is taken after it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = h.status("web").unwrap().last_evaluation;
    // Three intervals, then neither an evaluation nor an action happened.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.status("web").unwrap().last_evaluation, before);
    assert_eq!(e.count("web"), None, "scaled while switched off");

    h.set_all_enabled(true).await.unwrap();
    wait_for("the group to grow", || e.count("web") == Some(4)).await;
    let text = h.metrics().encode();
    assert_eq!(
        sample(&text, "scalepilot_engine_enabled"),
        Some(1.0),
        "{text}"
    );
    e.stop().await;
}

/// Outside min/max a manual scale needs force; forced, it is done and its activity says
/// who asked and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_scaling_outside_the_bounds_needs_force_and_records_who_and_why() {
    // A quiet group evaluated once an hour: nothing scales it back during the test.
    let e = Running::start(|d| config(&[group(d, "web", 10, 5, "1h")])).await;
    let h = &e.handle;
    wait_for("a first evaluation", || {
        h.status("web")
            .is_some_and(|s| s.running && s.last_evaluation.is_some())
    })
    .await;
    let manual = |replicas, force| ManualScale {
        replicas,
        actor: "alice".into(),
        reason: "load test".into(),
        force,
    };
    let err = h.scale(manual(8, false), "web").await.unwrap_err();
    let HandleError::Invalid(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("min 1") && msg.contains("max 5"), "{msg}");
    assert_eq!(e.count("web"), None);

    let ev = h.scale(manual(8, true), "web").await.unwrap();
    assert!(ev.scaled && ev.desired == 8, "{ev:?}");
    assert_eq!(e.count("web"), Some(8));
    assert_eq!(h.status("web").unwrap().current, Some(8));
    // set_replicas is a manual scale by `cli`, within the bounds.
    h.set_replicas("web", 3).await.unwrap();
    assert_eq!(e.count("web"), Some(3));
    assert_eq!(
        h.scale(manual(2, true), "nope").await.unwrap_err(),
        HandleError::NoGroup("nope".into())
    );

    let acts = h.store().activities(Some("web"), 10).await.unwrap();
    let forced = acts.iter().find(|a| a.to_replicas == 8).expect("activity");
    assert_eq!(forced.status, "succeeded");
    let m = &forced.decision["manual"];
    assert_eq!(m["actor"], "alice", "{m}");
    assert_eq!(m["reason"], "load test");
    assert_eq!(m["force"], true);
    let cli = acts.iter().find(|a| a.to_replicas == 3).expect("activity");
    assert_eq!(cli.decision["manual"]["actor"], "cli");
    assert_eq!(cli.decision["manual"]["force"], false);
    assert_eq!(h.config_path(), e.path);
    e.stop().await;
}

/// statuses() and status() follow the evaluations (counts, ready, bounds, the decision
/// with its strategies) and the config (order, a removed group gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_snapshot_follows_evaluations_and_reloads() {
    let e = Running::start(|d| {
        config(&[
            group(d, "busy", 40, 10, "1s"),
            group(d, "quiet", 10, 7, "1s"),
        ])
    })
    .await;
    let h = &e.handle;
    let names: Vec<String> = h.statuses().iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["busy", "quiet"]);
    wait_for("busy to run 4, ready", || {
        h.status("busy")
            .is_some_and(|s| s.current == Some(4) && s.ready == Some(4))
    })
    .await;
    let s = h.status("busy").unwrap();
    assert!(s.running && s.enabled && !s.dry_run, "{s:?}");
    assert_eq!((s.min, s.max, s.desired), (1, 10, Some(4)));
    let record = s.last_decision.as_ref().expect("a decision record");
    let strategy = &record["decision"]["strategies"][0];
    assert_eq!(strategy["kind"], "target_tracking", "{record}");
    assert_eq!(strategy["replicas"], 4, "{record}");
    assert!(strategy["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(record["decision"]["desired_replicas"], 4);
    // It scaled up with a 1 h cooldown.
    assert!(s.cooldowns.scale_out_until.is_some(), "{s:?}");
    assert_eq!(s.cooldowns.scale_in_until, None, "{s:?}");
    wait_for("quiet to be evaluated", || {
        h.status("quiet").is_some_and(|s| s.desired.is_some())
    })
    .await;
    let quiet = h.status("quiet").unwrap();
    assert_eq!((quiet.max, quiet.desired), (7, Some(1)), "{quiet:?}");
    // The control loop's answer comes from the same snapshot.
    let groups = h.groups().await.unwrap();
    assert_eq!(groups[1].max, 7);
    assert_eq!(groups[0].min, 1);

    e.reload(config(&[group(&e.dir(), "quiet", 10, 7, "1s")]))
        .await;
    let names: Vec<String> = h.statuses().iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["quiet"]);
    assert!(h.status("busy").is_none());
    e.stop().await;
}

/// After evaluations the metrics hold each group's counts and decisions; a group removed
/// by a reload loses its series, the others keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_evaluations_and_forget_removed_groups() {
    let e = Running::start(|d| {
        config(&[
            group(d, "busy", 40, 10, "1s"),
            group(d, "quiet", 10, 7, "1s"),
        ])
    })
    .await;
    let h = &e.handle;
    // Two evaluations of busy: 1 → 4 (up), then 4 → 4 (none).
    wait_for("busy to be evaluated at 4", || {
        h.status("busy").is_some_and(|s| s.current == Some(4))
    })
    .await;
    let text = h.metrics().encode();
    let busy = |name: &str, more: &str| sample(&text, &format!("{name}{{group=\"busy\"{more}}}"));
    assert_eq!(
        busy("scalepilot_group_desired_replicas", ""),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        busy("scalepilot_group_current_replicas", ""),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        busy("scalepilot_decisions_total", ",direction=\"up\""),
        Some(1.0),
        "{text}"
    );
    assert!(
        busy("scalepilot_decisions_total", ",direction=\"none\"").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        busy(
            "scalepilot_scaling_actions_total",
            ",direction=\"up\",outcome=\"succeeded\""
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        busy("scalepilot_group_metric_value", ",metric=\"request_rate\""),
        Some(40.0),
        "{text}"
    );
    assert_eq!(sample(&text, "scalepilot_groups"), Some(2.0), "{text}");
    // Every evaluation observed its duration and how late it started (two of busy's at least).
    for histogram in [
        "scalepilot_evaluation_duration_seconds_count",
        "scalepilot_loop_lag_seconds_count",
    ] {
        assert!(sample(&text, histogram).is_some_and(|n| n >= 2.0), "{text}");
    }
    assert!(text.contains("operation=\"save_state\""), "{text}");

    h.metrics()
        .observe_api("GET", "/api/v1/groups/{name}", 200, 0.002);
    let text = h.metrics().encode();
    let api = "scalepilot_api_requests_total{method=\"GET\",route=\"/api/v1/groups/{name}\",status=\"200\"}";
    assert_eq!(sample(&text, api), Some(1.0), "{text}");

    e.reload(config(&[group(&e.dir(), "quiet", 10, 7, "1s")]))
        .await;
    wait_for("busy's series to go", || {
        !h.metrics().encode().contains("group=\"busy\"")
    })
    .await;
    let text = h.metrics().encode();
    assert_eq!(sample(&text, "scalepilot_groups"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "scalepilot_group_desired_replicas{group=\"quiet\"}"),
        Some(1.0),
        "{text}"
    );
    e.stop().await;
}
