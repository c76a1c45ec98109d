//! `scalepilot bench --engine`: the whole daemon at scale. Writes N groups into the store as
//! database groups (`groups_from: database`, the way a fleet of that size is kept; static
//! sources, a `command: "true"` target that 1 in 100 groups calls once), runs one or several
//! real `scalepilot run` processes on them, and reads the store to see how fast evaluations
//! land: the time for one full pass, evaluations and store writes per second, each daemon's
//! memory and CPU, and the database server's CPU.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use serde::Serialize;

/// Settings of one engine benchmark.
pub(crate) struct Settings {
    pub groups: u32,
    pub daemons: u32,
    /// `sqlite` or a `postgres://` URL (an empty database: the bench writes into it).
    pub store: String,
    pub interval: Duration,
    /// Full intervals measured after the first pass.
    pub passes: u32,
    pub lease_ttl: Duration,
}

#[derive(Debug, Serialize)]
pub(crate) struct EngineReport {
    groups: u32,
    daemons: u32,
    store: &'static str,
    interval_seconds: f64,
    /// Writing the groups into the store (one transaction per row).
    import_seconds: f64,
    /// From the daemons' start until every group had been evaluated once (includes reading
    /// and validating the config and starting every group).
    first_pass_seconds: f64,
    /// Evaluations per second in the measured window.
    evaluations_per_second: f64,
    /// N / evaluations per second: how long one full pass takes at that rate. The interval
    /// plus the default jitter's 5 % on average means the daemons keep up.
    pass_seconds: f64,
    /// Rows written per second (a state and a metric sample per evaluation, plus activities).
    store_writes_per_second: f64,
    activities: u64,
    window_seconds: f64,
    /// Per daemon, at the end.
    rss_mib: Vec<f64>,
    peak_rss_mib: Vec<f64>,
    /// Per daemon, in the window, in % of one core.
    daemon_cpu_percent: Vec<f64>,
    /// All `postgres` processes on the machine, in the window, in % of one core (PostgreSQL
    /// only).
    postgres_cpu_percent: Option<f64>,
    /// CPU milliseconds per evaluation in the window: the daemons' together, and PostgreSQL's.
    /// Unlike the rates, these survive other processes competing for the cores.
    daemon_cpu_ms_per_evaluation: f64,
    postgres_cpu_ms_per_evaluation: Option<f64>,
}

/// Groups whose static load asks for more than `min` (1 in 100): they scale once, so
/// activities are part of the load too.
fn scales(i: u32) -> bool {
    i.is_multiple_of(100)
}

fn config_text(s: &Settings) -> String {
    let mut out = String::new();
    if s.store == "sqlite" {
        out.push_str("store: {kind: sqlite, path: bench.db}\n");
    } else {
        let _ = writeln!(
            out,
            "store: {{kind: postgres, url: \"{}\", pool: 8}}",
            s.store
        );
    }
    let _ = write!(out, "engine: {{max_concurrency: 64");
    if s.daemons > 1 {
        let _ = write!(
            out,
            ", ha: true, lease_ttl: \"{}ms\"",
            s.lease_ttl.as_millis()
        );
    }
    out.push_str("}\ngroups_from: database\n");
    out
}

/// Group `i` as a database row.
fn group_spec(s: &Settings, i: u32) -> serde_json::Value {
    let rps = if scales(i) { 350 } else { 50 };
    serde_json::json!({
        "name": format!("g{i:06}"),
        "min": 1,
        "max": 10,
        "evaluation_interval": format!("{}ms", s.interval.as_millis()),
        "source": {"kind": "static", "values": {"rps": rps}},
        "strategies": [{"kind": "target_tracking", "metric": "rps", "target_per_replica": 100}],
        "target": {"kind": "command", "command": "true"},
    })
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}

fn status_kib(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of every process named `postgres` (the server and its backends).
fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(cpu_seconds)
        .sum()
}

struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(pid) = i32::try_from(c.id())
                && let Some(pid) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        for c in &mut self.0 {
            // A daemon that does not stop within its grace period is killed.
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn run(s: &Settings) -> Result<EngineReport> {
    if s.groups == 0 || s.daemons == 0 {
        bail!("--groups and --daemons must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!(
        "scalepilot-bench-{}-{}",
        std::process::id(),
        Timestamp::now().as_millisecond()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = run_in(s, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(s: &Settings, dir: &Path) -> Result<EngineReport> {
    let config = dir.join("bench.yaml");
    std::fs::write(&config, config_text(s))?;
    let exe = std::env::current_exe()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let loaded = scalepilot_engine::load_config_only(&config)?;
    // Open (and migrate) the store first, so the daemons do not race to create it.
    let store = runtime.block_on(scalepilot_engine::open_store(&loaded, dir))?;
    let t_import = Instant::now();
    runtime.block_on(async {
        let now = Timestamp::now();
        for i in 0..s.groups {
            let spec = group_spec(s, i);
            store
                .put_group_row(&format!("g{i:06}"), &spec, true, now)
                .await?;
        }
        anyhow::Ok(())
    })?;
    let import_seconds = t_import.elapsed().as_secs_f64();
    let started = Timestamp::now();
    let t0 = Instant::now();
    let mut daemons = Daemons(Vec::new());
    for k in 0..s.daemons {
        let log = std::fs::File::create(dir.join(format!("daemon-{k}.log")))?;
        let child = Command::new(&exe)
            .args(["run", "--config"])
            .arg(&config)
            .env(
                "SCALEPILOT_LOG",
                std::env::var("SCALEPILOT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start a daemon")?;
        daemons.0.push(child);
    }
    let pids: Vec<u32> = daemons.0.iter().map(Child::id).collect();
    let check_alive = |daemons: &mut Daemons| -> Result<()> {
        for (k, c) in daemons.0.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                let log = std::fs::read_to_string(dir.join(format!("daemon-{k}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                bail!(
                    "daemon {k} exited ({status}) during the benchmark; its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        Ok(())
    };

    // The first pass: every group evaluated once. Generous limit: a machine that cannot
    // start the groups in ten intervals plus a minute is reported as failing, not waited on.
    let limit =
        s.interval * 10 + Duration::from_secs(60) + Duration::from_millis(u64::from(s.groups));
    let first_pass = loop {
        check_alive(&mut daemons)?;
        let p = runtime.block_on(store.progress_since(started))?;
        if p.groups >= u64::from(s.groups) {
            break t0.elapsed();
        }
        if t0.elapsed() > limit {
            bail!(
                "only {} of {} groups were evaluated within {:?}",
                p.groups,
                s.groups,
                limit
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    // The measured window: whole intervals, in the steady state after the first pass.
    let from = Timestamp::now();
    let w0 = Instant::now();
    let cpu0: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p).unwrap_or(0.0))
        .collect();
    let pg0 = postgres_cpu_seconds();
    let window = s.interval * s.passes.max(1);
    while w0.elapsed() < window {
        check_alive(&mut daemons)?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let window_secs = w0.elapsed().as_secs_f64();
    let cpu1: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p).unwrap_or(0.0))
        .collect();
    let pg1 = postgres_cpu_seconds();
    // Samples land with the evaluation's time; count those made inside the window.
    let p = runtime.block_on(store.progress_since(from))?;
    let evaluations = p.samples as f64; // one metric per group: one sample per evaluation
    let rate = evaluations / window_secs;
    let mib = |kib: Option<f64>| kib.map_or(0.0, |k| k / 1024.0);
    let report = EngineReport {
        groups: s.groups,
        daemons: s.daemons,
        store: if s.store == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        },
        interval_seconds: s.interval.as_secs_f64(),
        import_seconds,
        first_pass_seconds: first_pass.as_secs_f64(),
        evaluations_per_second: rate,
        pass_seconds: if rate > 0.0 {
            f64::from(s.groups) / rate
        } else {
            f64::INFINITY
        },
        store_writes_per_second: (2.0 * evaluations + p.activities as f64) / window_secs,
        activities: runtime.block_on(store.progress_since(started))?.activities,
        window_seconds: window_secs,
        rss_mib: pids.iter().map(|&p| mib(status_kib(p, "VmRSS:"))).collect(),
        peak_rss_mib: pids.iter().map(|&p| mib(status_kib(p, "VmHWM:"))).collect(),
        daemon_cpu_percent: cpu0
            .iter()
            .zip(&cpu1)
            .map(|(a, b)| 100.0 * (b - a) / window_secs)
            .collect(),
        postgres_cpu_percent: (s.store != "sqlite").then(|| 100.0 * (pg1 - pg0) / window_secs),
        daemon_cpu_ms_per_evaluation: per_evaluation(
            cpu0.iter().zip(&cpu1).map(|(a, b)| b - a).sum(),
            evaluations,
        ),
        postgres_cpu_ms_per_evaluation: (s.store != "sqlite")
            .then(|| per_evaluation(pg1 - pg0, evaluations)),
    };
    drop(daemons);
    Ok(report)
}

/// CPU milliseconds per evaluation (infinite when nothing was evaluated).
fn per_evaluation(cpu_seconds: f64, evaluations: f64) -> f64 {
    if evaluations > 0.0 {
        1000.0 * cpu_seconds / evaluations
    } else {
        f64::INFINITY
    }
}

/// The report as text lines.
pub(crate) fn lines(r: &EngineReport) -> Vec<String> {
    let list = |v: &[f64], unit: &str| {
        v.iter()
            .map(|x| format!("{x:.0}{unit}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let mut out = vec![
        format!(
            "engine: {} groups, {} daemon(s), {}, every {:.0} s",
            r.groups, r.daemons, r.store, r.interval_seconds
        ),
        format!(
            "  groups written to the store:        {:>8.1} s",
            r.import_seconds
        ),
        format!(
            "  first pass (start → all evaluated): {:>8.1} s",
            r.first_pass_seconds
        ),
        format!(
            "  evaluations:                        {:>8.0} /s  (one pass = {:.1} s{})",
            r.evaluations_per_second,
            r.pass_seconds,
            // The default jitter (0.1) adds up to 10 % to each wait.
            if r.pass_seconds <= r.interval_seconds * 1.1 {
                ", keeps up"
            } else {
                ", FALLS BEHIND"
            }
        ),
        format!(
            "  store writes:                       {:>8.0} /s  ({} activities)",
            r.store_writes_per_second, r.activities
        ),
        format!(
            "  daemon RSS (now / peak):            {} / {}",
            list(&r.rss_mib, " MiB"),
            list(&r.peak_rss_mib, " MiB")
        ),
        format!(
            "  daemon CPU:                         {}",
            list(&r.daemon_cpu_percent, " %")
        ),
    ];
    out.push(format!(
        "  daemon CPU per evaluation:          {:>8.3} ms",
        r.daemon_cpu_ms_per_evaluation
    ));
    if let Some(pg) = r.postgres_cpu_percent {
        out.push(format!("  postgres CPU:                       {pg:.0} %"));
    }
    if let Some(pg) = r.postgres_cpu_ms_per_evaluation {
        out.push(format!(
            "  postgres CPU per evaluation:        {pg:>8.3} ms"
        ));
    }
    out
}
