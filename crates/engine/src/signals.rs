//! Process signals: SIGHUP reloads, SIGTERM and SIGINT (Ctrl-C) stop gracefully.
//!
//! [`Signals::install`] must run first thing in a daemon, before the config is read, the
//! store opened or any group started: until a listener is registered a signal has its
//! default action, and SIGHUP's and SIGTERM's is to kill the process on the spot. Once
//! installed, a signal that arrives during start-up waits in tokio's queue and is acted on
//! by [`Signals::forward`] as soon as the engine runs: SIGHUP reloads after the start,
//! SIGTERM stops gracefully.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;

use crate::EngineHandle;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGHUP.
    Reload,
    /// SIGTERM or SIGINT.
    Stop,
}

/// Listeners for SIGHUP, SIGTERM and SIGINT (registered when created).
pub struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Register the listeners (inside a tokio runtime). From here on these signals no longer
    /// kill the process: they queue until [`Signals::next`] takes them.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's request.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.hup.recv() => Request::Reload,
            _ = self.term.recv() => Request::Stop,
            _ = self.int.recv() => Request::Stop,
        }
    }

    /// Act on signals through `handle` until the first SIGTERM or SIGINT has stopped the
    /// engine: SIGHUP → [`EngineHandle::reload`], SIGTERM/SIGINT → [`EngineHandle::shutdown`].
    pub fn forward(mut self, handle: EngineHandle) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.next().await {
                    Request::Reload => {
                        tracing::info!("SIGHUP: reloading the config");
                        // A rejected config is logged, recorded and alerted by the engine.
                        if let Err(crate::HandleError::Stopped) = handle.reload().await {
                            return;
                        }
                    }
                    Request::Stop => {
                        tracing::info!("stop requested by signal");
                        handle.shutdown().await;
                        return;
                    }
                }
            }
        })
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn terminated() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
