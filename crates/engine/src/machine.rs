//! This machine's name, as the HA daemons' identities and the process pool's instance markers
//! record it: a pool's instances are processes of one machine, and only a daemon on that
//! machine can find, adopt or stop them.

/// The kernel's host name, or "localhost" when it cannot be read.
pub(crate) fn name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    }
}
