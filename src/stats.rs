//! The proxy's own counters, reported by the memcache `stats` command in memcached's format
//! (`STAT <name> <value>\r\n` lines, then `END\r\n`). Plain atomics: cheap to bump from every
//! connection; Prometheus metrics are [`crate::metrics`]'s business.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};

/// Counters of one proxy process.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// Client connections open now.
    pub curr_connections: AtomicU64,
    /// Client connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections closed at accept because of `limits.max_connections`.
    pub rejected_connections: AtomicU64,
    /// Retrieval commands.
    pub cmd_get: AtomicU64,
    /// Storage commands.
    pub cmd_set: AtomicU64,
    /// Keys found by retrievals.
    pub get_hits: AtomicU64,
    /// Keys not found by retrievals.
    pub get_misses: AtomicU64,
    /// Values rewritten by the transcoder.
    pub values_rewritten: AtomicU64,
    /// Pickled values refused by the transcoder (forwarded unchanged).
    pub values_refused: AtomicU64,
    /// Fetched values served as a miss by `on_unreadable = "miss"`.
    pub values_unreadable: AtomicU64,
    /// Requests answered with an upstream `SERVER_ERROR`.
    pub upstream_errors: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// All counters zero, uptime starting now.
    pub fn new() -> Stats {
        let z = || AtomicU64::new(0);
        Stats {
            started: Instant::now(),
            curr_connections: z(),
            total_connections: z(),
            rejected_connections: z(),
            cmd_get: z(),
            cmd_set: z(),
            get_hits: z(),
            get_misses: z(),
            values_rewritten: z(),
            values_refused: z(),
            values_unreadable: z(),
            upstream_errors: z(),
        }
    }

    /// A client connection was accepted.
    pub fn connection_opened(&self) {
        self.curr_connections.fetch_add(1, Ordering::Relaxed);
        self.total_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A client connection ended.
    pub fn connection_closed(&self) {
        self.curr_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the `stats` reply: memcached's general-purpose names where they mean the same
    /// thing, `picklebridge_*` for the proxy's own, then `END`.
    pub fn compose(&self, dst: &mut BytesMut) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let lines: [(&str, String); 17] = [
            ("pid", std::process::id().to_string()),
            ("uptime", self.started.elapsed().as_secs().to_string()),
            ("time", now.to_string()),
            (
                "version",
                format!("picklebridge-{}", env!("CARGO_PKG_VERSION")),
            ),
            ("pointer_size", (usize::BITS).to_string()),
            ("curr_connections", get(&self.curr_connections).to_string()),
            (
                "total_connections",
                get(&self.total_connections).to_string(),
            ),
            (
                "rejected_connections",
                get(&self.rejected_connections).to_string(),
            ),
            ("cmd_get", get(&self.cmd_get).to_string()),
            ("cmd_set", get(&self.cmd_set).to_string()),
            ("get_hits", get(&self.get_hits).to_string()),
            ("get_misses", get(&self.get_misses).to_string()),
            (
                "picklebridge_values_rewritten",
                get(&self.values_rewritten).to_string(),
            ),
            (
                "picklebridge_values_refused",
                get(&self.values_refused).to_string(),
            ),
            (
                "picklebridge_values_unreadable",
                get(&self.values_unreadable).to_string(),
            ),
            (
                "picklebridge_upstream_errors",
                get(&self.upstream_errors).to_string(),
            ),
            ("threads", "1".to_string()),
        ];
        for (name, value) in lines {
            dst.put_slice(b"STAT ");
            dst.put_slice(name.as_bytes());
            dst.put_u8(b' ');
            dst.put_slice(value.as_bytes());
            dst.put_slice(b"\r\n");
        }
        dst.put_slice(b"END\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_reply_is_memcached_shaped() {
        let s = Stats::new();
        s.connection_opened();
        Stats::bump(&s.cmd_get);
        let mut out = BytesMut::new();
        s.compose(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.ends_with("END\r\n"));
        for line in text.lines().filter(|l| *l != "END") {
            let parts: Vec<_> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "{line}");
            assert_eq!(parts[0], "STAT");
        }
        assert!(text.contains("STAT curr_connections 1\r\n"));
        assert!(text.contains("STAT cmd_get 1\r\n"));
    }
}
