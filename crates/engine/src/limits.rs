//! Size limits on the files scalepilot reads whole, and the one bounded reader they all go
//! through.
//!
//! Reading a file whole with no limit reads `/dev/zero` (or a mistaken multi-gigabyte path,
//! or a FIFO nobody closes) until memory runs out; a limit turns that into a clear error that
//! names the file and the limit. The limits are far above any real input.

use std::io::Read;
use std::path::Path;

/// A config file (YAML): the largest real ones (thousands of groups) are a few MiB.
pub const CONFIG_LIMIT: u64 = 16 << 20;
/// `scalepilot decide` input (JSON: one observation and one state).
pub const DECIDE_INPUT_LIMIT: u64 = 16 << 20;
/// A trace CSV (simulate, warm starts, the trace source, load, demo, bench): about 13 million
/// rows, five months at one row per second.
pub const TRACE_LIMIT: u64 = 256 << 20;

/// A limit in words ("16 MiB").
pub fn describe(limit: u64) -> String {
    if limit >= 1 << 20 && limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    }
}

/// Read `path` whole as UTF-8, failing once it is larger than `limit` bytes. `what` names the
/// file's role in messages ("config", "trace"…).
pub fn read_to_string(path: &Path, limit: u64, what: &str) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))?;
    // A regular file says its size: refuse a huge one before reading a byte of it.
    if let Ok(m) = file.metadata()
        && m.is_file()
        && m.len() > limit
    {
        return Err(too_large(&path.display().to_string(), limit, what));
    }
    read_limited(file, limit, &path.display().to_string(), what)
}

/// Read `reader` (standard input, a device, a pipe) whole as UTF-8, failing once more than
/// `limit` bytes came; `name` names it in messages.
pub fn read_limited(
    reader: impl Read,
    limit: u64,
    name: &str,
    what: &str,
) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    // One byte more than allowed tells "exactly at the limit" from "over it".
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {name}: {e}"))?;
    if buf.len() as u64 > limit {
        return Err(too_large(name, limit, what));
    }
    String::from_utf8(buf)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {name}: not UTF-8 text ({e})"))
}

fn too_large(name: &str, limit: u64, what: &str) -> anyhow::Error {
    // "an input file", "a config file".
    let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    anyhow::anyhow!(
        "{what} {name} is larger than the {} limit for {article} {what} file",
        describe(limit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "0123456789").unwrap();
        assert_eq!(read_to_string(&p, 10, "trace").unwrap(), "0123456789");
        let e = read_to_string(&p, 9, "trace").unwrap_err().to_string();
        assert!(e.contains("larger than the 9 bytes limit"), "{e}");
        assert!(e.contains(&p.display().to_string()), "{e}");
        // A device never ends: the limit ends it.
        let e = read_to_string(Path::new("/dev/zero"), 1 << 20, "config")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config /dev/zero is larger than the 1 MiB limit for a config file"
        );
    }
}
