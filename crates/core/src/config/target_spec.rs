//! Targets compiled once at validation: durations parsed, defaults applied, the port range
//! and the scale-in order typed. The engine builds its targets from these and never re-reads
//! a config string or falls back to a silent default.

use std::time::Duration;

use super::ScaleIn;
use super::raw::{RawHaproxy, RawProcessPool, RawTarget};

/// Defaults of the pool, HAProxy and command targets (documented in docs/targets.md).
pub const DEFAULT_HEALTH_PATH: &str = "/healthz";
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_UNHEALTHY_AFTER: u32 = 3;
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_SERVER_PREFIX: &str = "sp-";
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A validated target of a kind the engine implements.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    ProcessPool(PoolSpec),
    Haproxy(HaproxySpec),
    Command(CommandSpec),
}

/// Local processes started from a command.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// With `{port}` (and `{host}`) to substitute.
    pub command: String,
    /// Inclusive port range.
    pub ports: (u16, u16),
    /// Addresses with an optional per-host maximum; 127.0.0.1 when none is configured.
    pub hosts: Vec<HostSpec>,
    pub health_path: String,
    pub health_interval: Duration,
    pub unhealthy_after: u32,
    pub scale_in: ScaleIn,
    pub drain: Duration,
    pub stop_on_exit: bool,
}

/// One host of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub address: String,
    pub max: Option<u32>,
}

/// An HAProxy backend kept equal to a pool's healthy instances.
#[derive(Debug, Clone, PartialEq)]
pub struct HaproxySpec {
    pub backend: String,
    pub mode: HaproxyMode,
    pub server_prefix: String,
    pub remove_unknown: bool,
    pub drain_timeout: Duration,
    pub pool: PoolSpec,
}

/// How scalepilot changes HAProxy's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaproxyMode {
    /// Runtime API on this admin socket (unix path or host:port).
    Runtime { admin_socket: String },
    /// Render `template` into `path`, check it with `haproxy -c`, reload through the master.
    ConfigFile {
        path: String,
        template: String,
        master_socket: String,
        haproxy: String,
    },
}

/// A script that sets the count (and optionally reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub command: String,
    pub status_command: Option<String>,
    pub timeout: Duration,
}

fn duration(text: &Option<String>, default: Duration) -> Option<Duration> {
    match text {
        None => Some(default),
        Some(t) => Duration::try_from(crate::duration::parse(t).ok()?).ok(),
    }
}

fn pool(raw: &RawProcessPool, scale_in: ScaleIn) -> Option<PoolSpec> {
    let hosts = match &raw.hosts {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|h| HostSpec {
                address: h.address.clone(),
                max: h.max,
            })
            .collect(),
        _ => vec![HostSpec {
            address: "127.0.0.1".into(),
            max: None,
        }],
    };
    Some(PoolSpec {
        command: raw.command.clone(),
        ports: raw.port_range()?,
        hosts,
        health_path: raw
            .health_path
            .clone()
            .unwrap_or_else(|| DEFAULT_HEALTH_PATH.into()),
        health_interval: duration(&raw.health_interval, DEFAULT_HEALTH_INTERVAL)?,
        unhealthy_after: raw.unhealthy_after.unwrap_or(DEFAULT_UNHEALTHY_AFTER),
        scale_in,
        drain: duration(&raw.drain, DEFAULT_DRAIN)?,
        stop_on_exit: raw.stop_on_exit.unwrap_or(false),
    })
}

fn haproxy(raw: &RawHaproxy, scale_in: ScaleIn) -> Option<HaproxySpec> {
    let mode = match (&raw.config_file, &raw.admin_socket) {
        (Some(f), _) => HaproxyMode::ConfigFile {
            path: f.path.clone(),
            template: f.template.clone(),
            master_socket: f.master_socket.clone(),
            haproxy: f.haproxy.clone().unwrap_or_else(|| "haproxy".into()),
        },
        (None, Some(s)) => HaproxyMode::Runtime {
            admin_socket: s.clone(),
        },
        (None, None) => return None,
    };
    Some(HaproxySpec {
        backend: raw.backend.clone(),
        mode,
        server_prefix: raw
            .server_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER_PREFIX.into()),
        remove_unknown: raw.remove_unknown.unwrap_or(false),
        drain_timeout: duration(&raw.drain_timeout, DEFAULT_DRAIN_TIMEOUT)?,
        pool: pool(&raw.pool, scale_in)?,
    })
}

/// Compile a target that validation accepted; `None` while any field is invalid or the kind
/// is not implemented (validation has reported it, and the config is refused).
pub(super) fn compile(raw: &RawTarget, scale_in: Option<ScaleIn>) -> Option<TargetSpec> {
    let scale_in = scale_in.unwrap_or(ScaleIn::Lifo);
    Some(match raw {
        RawTarget::ProcessPool(p) => TargetSpec::ProcessPool(pool(p, scale_in)?),
        RawTarget::Haproxy(h) => TargetSpec::Haproxy(haproxy(h, scale_in)?),
        RawTarget::Command {
            command,
            status_command,
            timeout,
        } => TargetSpec::Command(CommandSpec {
            command: command.clone(),
            status_command: status_command.clone(),
            timeout: duration(timeout, DEFAULT_COMMAND_TIMEOUT)?,
        }),
        RawTarget::Compose { .. } | RawTarget::Terraform { .. } | RawTarget::AwsAsg { .. } => {
            return None;
        }
    })
}
