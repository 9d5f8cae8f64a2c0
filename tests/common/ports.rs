//! Loopback ports for the servers a test starts (memcached, the proxy binary, Prometheus).
//!
//! A port is picked here and bound later by another process, so two races matter:
//! - another thread of the same test binary picks the same port: a process-wide counter hands
//!   each port out once;
//! - a parallel test's outgoing connection takes the port as its local (ephemeral) port in
//!   between, and the server then fails to bind. The ports come from below the kernel's
//!   ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 by default), where
//!   the kernel never puts an outgoing connection.
//!
//! Each candidate is bound once here to skip ports something else already holds.
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// How many ports the allocator cycles through.
const SPAN: u32 = 8_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A free port on 127.0.0.1, never handed out twice by this process (within `SPAN` picks).
pub fn free_port() -> u16 {
    static FIRST: OnceLock<Option<u32>> = OnceLock::new();
    let Some(low) = *FIRST.get_or_init(first_port) else {
        // No room below the ephemeral range: the kernel's own pick.
        return TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
    };
    // Test binaries started at the same moment begin apart.
    let offset = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + (offset + n) % SPAN;
        let port = u16::try_from(port).expect("port below the ephemeral range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{}", low + SPAN);
}

/// The first port of the span just below the ephemeral range, or `None` when the span would
/// reach below 1024 (read once per test binary).
fn first_port() -> Option<u32> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let ephemeral_low: u32 = range
        .as_deref()
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(32_768);
    ephemeral_low.checked_sub(SPAN).filter(|&low| low >= 1_024)
}
