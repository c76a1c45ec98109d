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

/// A reload reads the file in a task of its own: a config path that blocks the read (a FIFO
/// with no writer) does not stop the control loop, `groups()` and `shutdown()` still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_config_read_does_not_stop_the_control_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("handle.yaml");
    let text = config(dir, false, 10);
    std::fs::write(&path, &text).unwrap();
    let engine = Engine::open(&path, Options::default()).await.unwrap();
    let handle = engine.handle();
    let run = tokio::spawn(engine.run());
    wait_for("fast to scale", || dir.join("fast.txt").exists()).await;

    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let reloading = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.reload().await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let groups = tokio::time::timeout(Duration::from_secs(5), handle.groups())
        .await
        .expect("groups() waited for the config read")
        .unwrap();
    assert_eq!(groups.len(), 2);
    // A second reload meanwhile waits for the next read, without blocking the loop either.
    let second = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.reload().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(5), handle.groups())
            .await
            .is_ok()
    );

    // Feed the FIFO (when a read is waiting on it) until both reloads answered.
    let fifo = path.clone();
    let fed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_feeding = fed.clone();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        while !stop_feeding.load(std::sync::atomic::Ordering::SeqCst) {
            // Non-blocking: fails at once when no reader waits.
            if let Ok(mut w) = std::fs::OpenOptions::new()
                .write(true)
                // O_NONBLOCK (Linux)
                .custom_flags(0o4000)
                .open(&fifo)
            {
                let _ = w.write_all(text.as_bytes());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(20), reloading)
        .await
        .expect("the first reload never answered")
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(20), second)
        .await
        .expect("the second reload never answered")
        .unwrap();
    // The text read is the running config (unchanged): accepted, or refused by a read limit
    // on non-regular files; either way answered.
    let _ = (first, second);
    fed.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(30), handle.shutdown())
        .await
        .expect("shutdown() did not answer");
    run.await.unwrap().unwrap();
    feeder.join().unwrap();
}

/// A group removed by a reload and added back by the next one starts only after its old
/// task has finished its action in flight (never two loops on one target).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_added_back_waits_for_its_retiring_task() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("handle.yaml");
    let text = config(dir, false, 10);
    std::fs::write(&path, &text).unwrap();
    let engine = Engine::open(&path, Options::default()).await.unwrap();
    let handle = engine.handle();
    let run = tokio::spawn(engine.run());
    wait_for("the slow action to start", || dir.join("started").exists()).await;
    let done = || dir.join("done").exists();

    let without_slow = text
        .split("  - name: ")
        .filter(|g| !g.starts_with("slow"))
        .collect::<Vec<_>>()
        .join("  - name: ");
    std::fs::write(&path, without_slow).unwrap();
    handle.reload().await.unwrap();
    std::fs::write(&path, &text).unwrap();
    handle.reload().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !done(),
        "the slow action ended early: it is not slow enough"
    );
    assert!(
        !running(&handle, "slow").await,
        "slow started again while its removed task was still in its action"
    );
    wait_for("the slow action to end", done).await;
    wait_for_running(&handle, "slow").await;
    tokio::time::timeout(Duration::from_secs(60), handle.shutdown())
        .await
        .expect("shutdown() did not answer");
    run.await.unwrap().unwrap();
}

async fn wait_for_running(handle: &EngineHandle, name: &str) {
    for _ in 0..300 {
        if running(handle, name).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} did not run");
}
