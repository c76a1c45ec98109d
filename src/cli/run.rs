//! `scalepilot run --config FILE` and `scalepilot once --config FILE`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use scalepilot_engine::signals::Signals;
use scalepilot_engine::{Engine, Options};

/// Run the engine: evaluate every enabled group on its interval and scale its target.
/// SIGHUP or a change to the file reloads the config (an invalid one is rejected and the
/// previous one keeps running); SIGTERM or Ctrl-C finishes in-flight actions and exits 0.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Policy file (with `store:`, `alerts:`, `engine:` and `groups:`).
    #[arg(long)]
    config: PathBuf,
}

/// Evaluate every enabled group once and exit (for cron or FaaS); exit 1 when any failed.
#[derive(Debug, clap::Args)]
pub(crate) struct OnceArgs {
    /// Policy file.
    #[arg(long)]
    config: PathBuf,
}

/// Logs on stderr at `SCALEPILOT_LOG` (default `info`).
pub(crate) fn init_logging() {
    init_logging_at("info");
}

/// Logging for the demo: errors only, so the live view stays readable (the expected
/// warnings of a cold start, such as "a rate needs two scrapes", would clutter it).
pub(crate) fn init_logging_quiet() {
    init_logging_at("error");
}

fn init_logging_at(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCALEPILOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

fn open_engine(config: &std::path::Path) -> impl std::future::Future<Output = Result<Engine>> + '_ {
    Engine::open(
        config,
        Options {
            fault_pause: fault_pause(),
        },
    )
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// `SCALEPILOT_FAULT_PAUSE_BEFORE_COMPLETION_MS`: a test hook that widens the window
/// between the target call and the activity's completion, so crash recovery can be tested.
fn fault_pause() -> Option<Duration> {
    std::env::var("SCALEPILOT_FAULT_PAUSE_BEFORE_COMPLETION_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

pub(crate) fn run(args: RunArgs) -> Result<ExitCode> {
    init_logging();
    runtime()?.block_on(async {
        // First, before the config is read or any group starts: until these listeners exist,
        // SIGHUP and SIGTERM kill the process (a start of thousands of groups takes a while).
        let signals = Signals::install().context("cannot listen for signals")?;
        tracing::info!(
            "starting with {}: SIGHUP reloads, SIGTERM or Ctrl-C stops",
            args.config.display()
        );
        let engine = open_engine(&args.config).await?;
        // Signals drive the engine through its handle, like any other client.
        signals.forward(engine.handle());
        // The API (`api:`), read once: a change to `api:` needs a restart, as a listener
        // cannot move under its clients.
        let cfg = super::load_config(&args.config)?;
        let api = match &cfg.api {
            Some(api) => {
                let base = args
                    .config
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default();
                let running = crate::api::start(engine.handle(), api, &base)
                    .await
                    .context("cannot start the API")?;
                tracing::info!("API listening on {}", running.url());
                Some(running)
            }
            None => None,
        };
        let result = engine.run().await;
        if let Some(api) = api {
            api.stop().await?;
        }
        result?;
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn once(args: OnceArgs) -> Result<ExitCode> {
    init_logging();
    runtime()?.block_on(async {
        let mut engine = open_engine(&args.config).await?;
        let failures = engine.once(super::emit).await;
        for (group, e) in &failures {
            eprintln!("error: group {group}: {e}");
        }
        Ok(if failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
