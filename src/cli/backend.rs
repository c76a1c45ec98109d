//! `scalepilot backend --port P [--work-ms N]`

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use crate::backend::{Settings, serve};

/// Run the built-in backend: GET / does a fixed amount of work, /healthz answers ok, /metrics
/// exposes request counters. Capacity per instance: concurrency × 1000 / work-ms requests/s.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Port to listen on.
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Service time of one request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    work_ms: u64,
    /// Part of the service time spent busy on the CPU, in milliseconds.
    #[arg(long, default_value_t = 1)]
    cpu_ms: u64,
    /// Requests worked on at the same time.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Requests allowed to wait; more get 503.
    #[arg(long, default_value_t = 200)]
    max_queue: i64,
    /// Wait this long before listening (a slow-starting service).
    #[arg(long, default_value_t = 0)]
    startup_delay_ms: u64,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let settings = Settings {
        addr: SocketAddr::new(args.host, args.port),
        work: Duration::from_millis(args.work_ms),
        cpu: Duration::from_millis(args.cpu_ms.min(args.work_ms)),
        concurrency: args.concurrency,
        max_queue: args.max_queue,
        startup_delay: Duration::from_millis(args.startup_delay_ms),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(settings))?;
    Ok(ExitCode::SUCCESS)
}
