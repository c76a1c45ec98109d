//! The engine driven through its handle: commands answer while a group's target call is
//! slow (the control loop never waits for an action), and manual actions go through the
//! same intent → act → settle path as evaluations.

use std::path::Path;
use std::time::Duration;

use scalepilot_engine::{Engine, EngineHandle, HandleError, Options};

/// `slow`'s target marks the action's start, sleeps 20 s, then marks its end; `fast` writes
/// its count at once. Both start at 1 and want 4 (20 req/s at 5 per replica).
fn config(dir: &Path, with_extra: bool, slow_max: u32) -> String {
    let group = |name: &str, command: String, max: u32| {
        format!(
            r#"  - name: {name}
    min: 1
    max: {max}
    evaluation_interval: 1s
    source: {{kind: static, values: {{request_rate: 20}}}}
    target:
      kind: command
      command: "{command}"
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 5}}
"#
        )
    };
    let d = dir.display();
    let mut text = format!(
        "store: {{kind: sqlite, path: sp.db}}\ngroups:\n{}{}",
        group(
            "slow",
            format!("touch {d}/started; sleep 20; touch {d}/done"),
            slow_max
        ),
        group(
            "fast",
            format!("echo $SCALEPILOT_DESIRED > {d}/fast.txt"),
            10
        ),
    );
    if with_extra {
        text.push_str(&group(
            "extra",
            format!("echo $SCALEPILOT_DESIRED > {d}/extra.txt"),
            10,
        ));
    }
    text
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

async fn running(handle: &EngineHandle, name: &str) -> bool {
    handle
        .groups()
        .await
        .unwrap()
        .iter()
        .any(|g| g.name == name && g.running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_while_a_target_call_is_slow() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("handle.yaml");
    std::fs::write(&path, config(dir, false, 10)).unwrap();
    let engine = Engine::open(&path, Options::default()).await.unwrap();
    let handle = engine.handle();
    let store = engine.store();
    let run = tokio::spawn(engine.run());

    // `slow` is inside its 20 s target call from here on.
    wait_for("the slow action to start", || dir.join("started").exists()).await;
    let done = || dir.join("done").exists();

    // groups() answers during the action, and shows both groups running.
    let groups = handle.groups().await.unwrap();
    assert!(!done(), "groups() waited for the slow action");
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["slow", "fast"]);
    assert!(groups.iter().all(|g| g.enabled && g.running), "{groups:?}");

    // A reload that adds a group and changes `slow` (so it must restart) answers at once:
    // `slow`'s old loop finishes its action in its own task, the new one starts after it.
    std::fs::write(&path, config(dir, true, 9)).unwrap();
    handle.reload().await.unwrap();
    assert!(!done(), "reload() waited for the slow action");
    wait_for("the new group to run", || dir.join("extra.txt").exists()).await;
    assert!(running(&handle, "extra").await);
    assert!(!done(), "the new group waited for the slow action");
    let slow = handle.groups().await.unwrap().remove(0);
    assert!(
        !slow.running,
        "slow restarts only after its action: {slow:?}"
    );

    // Commands to other groups are served meanwhile: a dry run, a manual scale.
    let probe = handle.evaluate_now("fast").await.unwrap();
    assert_eq!(probe.decision.desired_replicas, 4);
    assert!(!probe.event.scaled);
    let ev = handle.set_replicas("extra", 7).await.unwrap();
    assert!(ev.scaled && ev.desired == 7, "{ev:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("extra.txt"))
            .unwrap()
            .trim(),
        "7"
    );
    assert!(!done(), "commands waited for the slow action");

    // The manual scale is an activity like any other, marked manual.
    let acts = store.activities(Some("extra"), 10).await.unwrap();
    let manual = acts
        .iter()
        .find(|a| a.to_replicas == 7)
        .expect("a manual activity");
    assert_eq!(manual.status, "succeeded");
    assert_eq!(manual.decision["reason"], "manual");

    // Out of bounds, unknown groups, and a group still waiting to restart are refused.
    assert!(matches!(
        handle.set_replicas("extra", 11).await,
        Err(HandleError::Invalid(_))
    ));
    assert_eq!(
        handle.evaluate_now("nope").await.unwrap_err(),
        HandleError::NoGroup("nope".into())
    );

    // Disabling at runtime stops the loop; re-enabling starts it again.
    handle.set_enabled("fast", false).await.unwrap();
    let fast = handle.groups().await.unwrap().remove(1);
    assert!(!fast.enabled && !fast.running, "{fast:?}");
    assert!(matches!(
        handle.evaluate_now("fast").await,
        Err(HandleError::NotRunning(_))
    ));
    handle.set_enabled("fast", true).await.unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if running(&handle, "fast").await {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "fast did not restart");
    assert!(
        !done(),
        "the slow action ended before the test: it is not slow enough"
    );
    // The test ends here: dropping the runtime kills the sleeping command (kill_on_drop).
    run.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_through_the_handle_stops_the_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("handle.yaml");
    // Only the fast group: shutdown does not wait for a slow action here.
    let text = config(dir, false, 10);
    let fast_only = text
        .split("  - name: ")
        .filter(|g| !g.starts_with("slow"))
        .collect::<Vec<_>>()
        .join("  - name: ");
    std::fs::write(&path, fast_only).unwrap();
    let engine = Engine::open(&path, Options::default()).await.unwrap();
    let handle = engine.handle();
    let mut events = handle.subscribe();
    let run = tokio::spawn(engine.run());
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.group, "fast");
    handle.shutdown().await;
    run.await.unwrap().unwrap();
    assert_eq!(handle.groups().await.unwrap_err(), HandleError::Stopped);
    assert_eq!(handle.reload().await.unwrap_err(), HandleError::Stopped);
}
