//! The async side: closed-loop connections, idle connections and the pre-fill.
//!
//! Each active connection loops: compose `depth` requests into one buffer, write it once, read
//! the `depth` replies in order, record each request's latency (batch write to its reply parsed).
//! A connection stops at the deadline, when the shared request budget is spent, or on the first
//! I/O error or timeout; nothing here loops without a bound.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::histogram::Histogram;
use crate::reply::{self, Parsed};
use crate::workload::{push_key, push_set, Expect, Generator, Load};

/// Longest wait for any single read, write or connect.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What one connection (or the merge of all) saw during the measured window.
#[derive(Default)]
pub struct Stats {
    /// Per-request latency, nanoseconds.
    pub hist: Histogram,
    /// Requests answered.
    pub requests: u64,
    /// Keys asked for by gets.
    pub keys_requested: u64,
    /// VALUE blocks received.
    pub hits: u64,
    /// VALUE blocks whose data was still a protocol-4 pickle.
    pub proto4: u64,
    /// VALUE blocks of the wrong length.
    pub wrong_len: u64,
    /// Error replies, sets not stored, I/O errors and timeouts.
    pub errors: u64,
    /// First error seen, for the report.
    pub first_error: Option<String>,
}

impl Stats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: Stats) {
        self.hist.merge(&other.hist);
        self.requests += other.requests;
        self.keys_requested += other.keys_requested;
        self.hits += other.hits;
        self.proto4 += other.proto4;
        self.wrong_len += other.wrong_len;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Keys asked for that came back without a value.
    pub fn misses(&self) -> u64 {
        self.keys_requested.saturating_sub(self.hits)
    }

    fn fail(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// Parameters shared by all connections of a run.
pub struct Plan {
    pub load: Load,
    pub prefix: String,
    pub keys: u64,
    pub depth: usize,
    /// Results count only from here on (warm-up before).
    pub measure_from: Instant,
    /// No batch starts at or after this instant.
    pub deadline: Instant,
    /// Requests left to send, shared by all connections.
    pub budget: Arc<AtomicI64>,
}

/// Connects to `addr` with a timeout and TCP_NODELAY.
pub async fn connect(addr: &str) -> Result<TcpStream, String> {
    let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect {addr}: timed out"))?
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Runs one closed-loop connection until the deadline or the budget ends.
pub async fn run_connection(addr: String, plan: Arc<Plan>, seed: u64) -> Stats {
    let mut stats = Stats::default();
    let mut stream = match connect(&addr).await {
        Ok(s) => s,
        Err(e) => {
            stats.fail(e);
            return stats;
        }
    };
    let mut gen = Generator::new(plan.load, &plan.prefix, plan.keys, seed);
    let mut out = Vec::with_capacity(plan.depth * 2200);
    let mut expects = Vec::with_capacity(plan.depth);
    let mut buf = Vec::with_capacity(64 * 1024);
    while Instant::now() < plan.deadline {
        let want = plan.depth as i64;
        let left = plan.budget.fetch_sub(want, Ordering::Relaxed);
        let n = left.min(want);
        if n <= 0 {
            break;
        }
        out.clear();
        expects.clear();
        for _ in 0..n {
            expects.push(gen.push_request(&mut out));
        }
        let sent = Instant::now();
        if let Err(e) = io(stream.write_all(&out)).await {
            stats.fail(format!("write: {e}"));
            break;
        }
        let measured = sent >= plan.measure_from;
        if let Err(e) = read_replies(
            &mut stream,
            &mut buf,
            &expects,
            plan.load.value_len(),
            sent,
            measured,
            &mut stats,
        )
        .await
        {
            stats.fail(e);
            break;
        }
    }
    stats
}

/// Applies [`IO_TIMEOUT`] to an I/O future.
async fn io<T>(f: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T, String> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no reply within {IO_TIMEOUT:?}")),
    }
}

/// Reads and checks one reply per entry of `expects`, in order.
async fn read_replies(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    expects: &[Expect],
    value_len: Option<usize>,
    sent: Instant,
    measured: bool,
    stats: &mut Stats,
) -> Result<(), String> {
    let mut pos = 0;
    for expect in expects {
        let reply = loop {
            if let Parsed::Complete { reply, consumed } = reply::parse(&buf[pos..], value_len) {
                pos += consumed;
                break reply;
            }
            buf.reserve(16 * 1024);
            if io(stream.read_buf(buf)).await? == 0 {
                return Err("connection closed by target".into());
            }
        };
        if reply.error {
            stats.fail(format!("error reply to {expect:?}: {}", reply.error_line));
        } else if *expect == Expect::Stored && !reply.stored {
            stats.fail("set not STORED".into());
        }
        if !measured {
            continue;
        }
        stats.hist.record(sent.elapsed().as_nanos() as u64);
        stats.requests += 1;
        stats.hits += reply.values as u64;
        stats.proto4 += reply.proto4 as u64;
        stats.wrong_len += reply.wrong_len as u64;
        // An error reply is counted as an error above, not also as misses.
        if let (Expect::Values(n), false) = (expect, reply.error) {
            stats.keys_requested += *n as u64;
        }
    }
    buf.drain(..pos);
    Ok(())
}

/// Opens a connection and checks it answers one get; the caller keeps it open (idle).
pub async fn idle_connection(addr: String, prefix: String) -> Result<TcpStream, String> {
    let mut stream = connect(&addr).await?;
    let mut req = b"get ".to_vec();
    push_key(&mut req, &prefix, 0);
    req.extend_from_slice(b"\r\n");
    io(stream.write_all(&req)).await?;
    let mut buf = Vec::new();
    let mut stats = Stats::default();
    let expects = [Expect::Values(1)];
    read_replies(
        &mut stream,
        &mut buf,
        &expects,
        None,
        Instant::now(),
        false,
        &mut stats,
    )
    .await?;
    match stats.first_error {
        Some(e) => Err(format!("idle connection: {e}")),
        None => Ok(stream),
    }
}

/// Stores every key of the load's key space at `addr`, pipelined 100 sets per write.
pub async fn prefill(addr: &str, load: Load, prefix: &str, keys: u64) -> Result<(), String> {
    let mut stream = connect(addr).await?;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut idx = 0;
    while idx < keys {
        let batch = (keys - idx).min(100);
        out.clear();
        for i in idx..idx + batch {
            push_set(&mut out, prefix, i, load.flags(), &load.value(i));
        }
        io(stream.write_all(&out)).await?;
        let mut stats = Stats::default();
        let expects = vec![Expect::Stored; batch as usize];
        read_replies(
            &mut stream,
            &mut buf,
            &expects,
            None,
            Instant::now(),
            true,
            &mut stats,
        )
        .await?;
        if stats.errors > 0 {
            return Err(format!(
                "prefill of {} at {addr}: {}",
                load.as_str(),
                stats.first_error.unwrap_or_default()
            ));
        }
        idx += batch;
    }
    Ok(())
}
