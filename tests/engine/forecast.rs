//! Predictive forecasting in the engine: the state rebuilt at start from a warm-start trace
//! and the stored samples, forecasts stored and set against what happened
//! (`history --forecasts`), and a broken warm start reported without stopping the group.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::{BIN, Daemon, activities, errors, json_of, step_trace, wait_until};

const DAY: i64 = 86_400;

/// Start of the UTC day `days` days before today, RFC 3339.
fn midnight_days_ago(days: i64) -> String {
    let now = jiff::Timestamp::now().as_second();
    let t = now - now.rem_euclid(DAY) - days * DAY;
    jiff::Timestamp::from_second(t).unwrap().to_string()
}

/// Two days of a clear daily pattern (5-minute rows, counts per row): 5 req/s at night,
/// 45 req/s in the afternoon.
fn warm_trace(path: &Path) {
    let mut text = String::from("timestamp_seconds,value\n");
    for i in 0..2 * 288 {
        let t = i * 300;
        let phase = (t % DAY) as f64 / DAY as f64;
        let rate = 25.0 - 20.0 * (2.0 * std::f64::consts::PI * phase).cos();
        text.push_str(&format!("{t},{}\n", (rate * 300.0).round()));
    }
    std::fs::write(path, text).unwrap();
}

/// A config with one group: a replayed trace as the source, a command target, a predictive
/// strategy in forecast_only mode with an optional warm start.
fn config(dir: &Path, warm_start: Option<&str>, retention: Option<&str>) -> PathBuf {
    let path = dir.join("forecast.yaml");
    let retention = retention
        .map(|r| format!(", sample_retention: {r}"))
        .unwrap_or_default();
    let warm = warm_start
        .map(|w| {
            format!(
                "\n        warm_start: {{trace: {w}, start: \"{}\"}}",
                midnight_days_ago(2)
            )
        })
        .unwrap_or_default();
    // 20 and 30 req/s alternating every 3 s: forecasts meet both.
    let mut segments = Vec::new();
    for _ in 0..200 {
        segments.extend([(3, 20), (3, 30)]);
    }
    step_trace(&dir.join("load.csv"), &segments);
    std::fs::write(
        &path,
        format!(
            r#"store: {{kind: sqlite, path: sp.db{retention}}}
groups:
  - name: web
    min: 1
    max: 20
    evaluation_interval: 1s
    source: {{kind: trace, file: load.csv}}
    target: {{kind: command, command: "echo $SCALEPILOT_DESIRED > {}"}}
    strategies:
      - kind: predictive
        metric: request_rate
        capacity_per_replica: 10
        startup: 2s
        forecast_only: true{warm}
"#,
            dir.join("replicas.txt").display()
        ),
    )
    .unwrap();
    path
}

/// `history --forecasts --json`: (rows newest first, summary).
fn forecasts(config: &Path) -> (Vec<Value>, Value) {
    let v = json_of(&[
        "history",
        "--config",
        config.to_str().unwrap(),
        "--forecasts",
        "--json",
        "--limit",
        "100000",
    ]);
    (
        v["forecasts"].as_array().cloned().unwrap_or_default(),
        v["summary"].clone(),
    )
}

fn once(config: &Path) -> Output {
    Command::new(BIN)
        .args(["once", "--config", config.to_str().unwrap()])
        .output()
        .expect("run scalepilot once")
}

/// The last "forecasts of … rebuilt" line of a log.
fn rebuilt_line(log: &str) -> String {
    log.lines()
        .rfind(|l| l.contains("forecasts of request_rate rebuilt from"))
        .unwrap_or_default()
        .to_string()
}

/// The number before `what` in `line` ("… and 12 stored samples" → 12).
fn count_before(line: &str, what: &str) -> Option<u64> {
    let head = line.split(what).next()?;
    head.split_whitespace().last()?.parse().ok()
}

#[test]
fn warm_start_forecasts_meet_their_actuals_and_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    warm_trace(&dir.join("warm.csv"));
    let path = config(dir, Some("warm.csv"), Some("8d"));
    let mut daemon = Daemon::start(&path, (0, 0), &[]);

    // Forecasts are stored from the first evaluation; actuals come once horizons end.
    let with_actuals = |rows: &[Value]| rows.iter().filter(|r| r["actual"].is_number()).count();
    assert!(
        wait_until(Duration::from_secs(90), || with_actuals(
            &forecasts(&path).0
        ) >= 5),
        "no forecasts with actuals: {:#?}\n{}",
        forecasts(&path),
        daemon.log()
    );
    let (rows, summary) = forecasts(&path);
    let first = rows.last().unwrap();
    // The warm start taught the daily profile: not a cold start, from the first evaluation.
    assert_eq!(first["seasonal"], true, "{first}\n{}", daemon.log());
    assert!(rows.iter().all(|r| r["forecast_only"] == true
        && r["metric"] == "request_rate"
        && r["group"] == "web"));
    let line = rebuilt_line(&daemon.log());
    assert_eq!(
        count_before(&line, "warm-start values"),
        Some(2 * DAY as u64 + 1),
        "{line}"
    );
    assert!(line.contains("seasonal profile learned"), "{line}");
    // 8 days of retention keep a weekly profile: no warning.
    assert!(!daemon.log().contains("weekly profile will not survive"));

    // Actuals are the largest samples while the replicas asked for would serve; the error
    // and coverage follow from them.
    for r in rows.iter().filter(|r| r["actual"].is_number()) {
        let (actual, estimate, provision) = (
            r["actual"].as_f64().unwrap(),
            r["estimate"].as_f64().unwrap(),
            r["provision"].as_f64().unwrap(),
        );
        assert!(actual == 20.0 || actual == 30.0, "{r}");
        assert!((r["error"].as_f64().unwrap() - (actual - estimate)).abs() < 1e-9);
        assert_eq!(r["covered"], provision >= actual, "{r}");
        assert_eq!(
            r["due_ms"].as_i64().unwrap() - r["made_ms"].as_i64().unwrap(),
            3000,
            "horizon = startup + interval: {r}"
        );
    }
    assert_eq!(summary["rows"], rows.len());
    assert_eq!(summary["with_actual"], with_actuals(&rows));

    // The decisions say so too: the first one scaled (forecast_only recommends the reactive
    // count) with a seasonal forecast as its reason, not a cold start.
    let acts = activities(&path);
    let summary_text = acts.last().unwrap()["decision"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        summary_text.contains("predictive: forecast request_rate")
            && summary_text.contains("forecast_only")
            && !summary_text.contains("cold start"),
        "{summary_text}"
    );

    // The text view lists the rows and ends with the summary.
    let out = Command::new(BIN)
        .args(["history", "--config", path.to_str().unwrap(), "--forecasts"])
        .args(["--group", "web", "--limit", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 5 + 1, "{text}");
    assert!(
        lines[1..6]
            .iter()
            .all(|l| l.ends_with(" seasonal forecast_only") && !l.contains("not seasonal")),
        "{text}"
    );
    assert!(
        lines[6].starts_with("5 forecasts, ") && lines[6].contains("mean absolute error"),
        "{text}"
    );
    assert!(!text.contains("cold start"));

    // A restart rebuilds the state: the warm start again, then the samples stored so far.
    assert_eq!(daemon.stop(), Some(0));
    // Read what the first run left only once it has stopped: it kept evaluating after `rows`
    // was read, and a forecast of its own must not pass for one made after the restart.
    let (stopped_rows, _) = forecasts(&path);
    let last_made = stopped_rows[0]["made_ms"].as_i64().unwrap();
    let stored_before = stopped_rows.len() as u64;
    let mut daemon = Daemon::start(&path, (0, 0), &[]);
    let after_restart = || {
        forecasts(&path)
            .0
            .into_iter()
            .filter(|r| r["made_ms"].as_i64().unwrap() > last_made)
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(Duration::from_secs(60), || !after_restart().is_empty()),
        "no forecast after the restart:\n{}",
        daemon.log()
    );
    let first = after_restart().last().cloned().unwrap();
    assert_eq!(first["seasonal"], true, "{first}");
    let line = rebuilt_line(&daemon.log());
    let stored = count_before(&line, "stored samples").unwrap_or(0);
    assert!(
        stored >= stored_before,
        "{stored} samples replayed, {stored_before} evaluations before: {line}"
    );

    // A reload that changes the group restarts it: the state is rebuilt once more, with the
    // samples stored since.
    let rebuilds = |log: &str| {
        log.matches("forecasts of request_rate rebuilt from")
            .count()
    };
    let before = rebuilds(&daemon.log());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("max: 20", "max: 19")).unwrap();
    daemon.hup();
    assert!(
        wait_until(Duration::from_secs(30), || rebuilds(&daemon.log()) > before),
        "no rebuild on reload:\n{}",
        daemon.log()
    );
    let line = rebuilt_line(&daemon.log());
    assert!(
        count_before(&line, "stored samples").unwrap_or(0) > stored,
        "{line}"
    );
    assert!(line.contains("seasonal profile learned"), "{line}");
    assert_eq!(daemon.stop(), Some(0));
}

/// Two days of samples in the store, without any warm start, are enough for a seasonal
/// forecast after a restart; the same group with none is a cold start (the control).
#[test]
fn stored_samples_alone_rebuild_the_seasonal_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = config(dir, None, Some("7d"));

    let out = once(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("cold start"), "{stdout}");
    assert_eq!(forecasts(&path).0[0]["seasonal"], false);
    // A 7-day retention (set explicitly: the default is 15 days with a weekly profile)
    // cannot keep a weekly profile across restarts: said once.
    assert_eq!(
        stderr
            .matches("store.sample_retention is 7d: a restart replays only that much history, so the weekly profile will not survive it")
            .count(),
        1,
        "{stderr}"
    );

    // Two days of the metric, a value a minute, as earlier evaluations would have stored.
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", dir.join("sp.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        for m in (1..=2 * 1440).rev() {
            let at = now_ms - m * 60_000;
            let phase = (at / 1000).rem_euclid(DAY) as f64 / DAY as f64;
            let value = 25.0 - 20.0 * (2.0 * std::f64::consts::PI * phase).cos();
            sqlx::query("INSERT INTO metric_samples (grp, metric, at_ms, value) VALUES ('web', 'request_rate', ?, ?)")
                .bind(at)
                .bind(value)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        pool.close().await;
    });

    let out = once(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("predictive: forecast request_rate") && !stdout.contains("cold start"),
        "{stdout}\n{stderr}"
    );
    let line = rebuilt_line(&stderr);
    assert_eq!(count_before(&line, "warm-start values"), Some(0), "{line}");
    assert!(
        count_before(&line, "stored samples").unwrap_or(0) > 2 * 1440,
        "{line}"
    );
    let rows = forecasts(&path).0;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["seasonal"], true);
}

#[test]
fn a_broken_warm_start_is_reported_and_the_group_still_evaluates() {
    for (file, content, expected) in [
        ("missing.csv", None, "cannot read"),
        (
            "bad.csv",
            Some("timestamp_seconds,value\n0,10\n300,ten\n"),
            "line 3: value `ten` is not a number",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        if let Some(c) = content {
            std::fs::write(dir.join(file), c).unwrap();
        }
        let path = config(dir, Some(file), Some("8d"));
        let out = once(&path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The group evaluated and scaled, cold: exit 0.
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stdout.starts_with("web: 1 → ") && stdout.contains("cold start"),
            "{stdout}"
        );
        assert_eq!(activities(&path)[0]["status"], "succeeded");
        let rows = forecasts(&path).0;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["seasonal"], false);
        let errs = errors(&path);
        assert!(
            errs.iter().any(|e| e["component"] == "config"
                && e["group"] == "web"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("warm start")
                        && m.contains(file)
                        && m.contains(expected))),
            "{errs:#?}"
        );
    }
}
