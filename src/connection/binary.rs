//! Binary-protocol clients: spliced byte for byte to the default route's server.
//!
//! The proxy does not speak memcached's binary protocol; it only frames the requests (a 24-byte
//! header whose bytes 8-11 give the body length, big-endian), so that a shutdown finishes the
//! request being read, as for text clients: what the client had sent when the signal came is
//! read up to the end of its last request and passed on, nothing after it, and the upstream
//! side is then half-closed. memcached answers every request it got before it sees the end of
//! the stream and closes, quiet ones included (`getq` misses stay quiet, their errors do not),
//! so the client gets every reply it is owed, then the close. `idle_timeout_s` closes a binary
//! client when no byte has gone either way for that long.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep_until, Instant};

use super::READ_BUFFER;
use crate::server::Shared;

/// Length of a binary-protocol header.
const HEADER: usize = 24;

/// Where a client's stream of binary requests stands: inside a header, inside a body, or
/// between requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Framing {
    /// Bytes of the current header read so far (0 between requests and in a body).
    header_read: usize,
    /// The body-length bytes of the current header (bytes 8-11) as they arrive.
    body_len: [u8; 4],
    /// Bytes of the current body still to come.
    body_left: u64,
}

impl Framing {
    /// Whether the stream is between two requests.
    fn at_boundary(&self) -> bool {
        self.header_read == 0 && self.body_left == 0
    }

    /// Takes `buf` as the next bytes of the stream, up to the end of the first request that
    /// ends in it when `stop_at_end`, else all of it. Returns how many bytes were taken.
    fn advance(&mut self, buf: &[u8], stop_at_end: bool) -> usize {
        let mut at = 0;
        while at < buf.len() {
            if self.body_left > 0 {
                let n = usize::try_from(self.body_left)
                    .unwrap_or(usize::MAX)
                    .min(buf.len() - at);
                at += n;
                self.body_left -= n as u64;
            } else {
                let n = (HEADER - self.header_read).min(buf.len() - at);
                // The header bytes 8-11 among those read now.
                let (from, to) = (self.header_read, self.header_read + n);
                for i in from.max(8)..to.min(12) {
                    self.body_len[i - 8] = buf[at + i - from];
                }
                self.header_read += n;
                at += n;
                if self.header_read == HEADER {
                    self.header_read = 0;
                    self.body_left = u64::from(u32::from_be_bytes(self.body_len));
                }
            }
            if stop_at_end && self.at_boundary() {
                break;
            }
        }
        at
    }
}

/// Splices a binary-protocol client connection to the default route's server for the empty
/// key: `already` (bytes read so far) first, then both directions until either side closes,
/// or, at shutdown, until memcached has answered the requests read (see the module docs).
pub(super) async fn splice(
    rd: &mut tokio::net::tcp::ReadHalf<'_>,
    wr: &mut tokio::net::tcp::WriteHalf<'_>,
    already: &[u8],
    shared: &Arc<Shared>,
    idle: Option<Duration>,
) -> io::Result<()> {
    let table = shared.routes.borrow().clone();
    let pool = shared.upstreams.pool(table.default_route().pool.0);
    let server = pool.server_for(b"").clone();
    // Its upstream connection counts against `max_connections` like a client's (a file
    // descriptor `fd_limit` budgets there); past the limit the client is closed (memcached
    // writes its text `ERROR Too many open connections` to a client it has no room for, which
    // a binary client cannot read).
    let Ok(_permit) = shared.connections.clone().try_acquire_owned() else {
        if let Some(suppressed) = shared.limit_log.check() {
            tracing::warn!(
                server = server.addr(),
                suppressed,
                "binary-protocol client closed: max_connections reached (its upstream connection counts as one)"
            );
        }
        return Ok(());
    };
    // Over the pool's transport: a TLS pool's server gets TLS here too.
    let upstream = match server.open_stream().await {
        Ok(stream) => stream,
        Err(error) => {
            // Nothing sensible to say in a protocol we do not speak: close.
            tracing::debug!(server = server.addr(), %error, "binary-protocol splice: connect failed");
            return Ok(());
        }
    };
    let (mut up_rd, mut up_wr) = tokio::io::split(upstream);
    let mut stop = shared.shutting_down.clone();
    let mut framing = Framing::default();
    // `already` was read before the signal (bytes read once it is set are dropped before the
    // splice starts): all of it goes on, however many requests it holds, also when the signal
    // came during the connect above; the drain below then reads to the end of the last one.
    framing.advance(already, false);
    up_wr.write_all(already).await?;
    let mut draining = *stop.borrow();
    // When a byte last went either way, for `idle_timeout_s` (the proxy cannot tell a binary
    // client waiting for a reply from an idle one: memcached answers in microseconds).
    // (Milliseconds since `start`: the futures below share it, and a `Cell` would make the
    // connection's future not `Send`.)
    let start = Instant::now();
    let last_activity = AtomicU64::new(0);
    let active = || {
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_activity.store(ms, Ordering::Relaxed);
    };
    // memcached's replies, until it closes: then the client connection closes too.
    let to_client = async {
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let n = up_rd.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            wr.write_all(&buf[..n]).await?;
            active();
        }
    };
    // The client's requests, until its EOF or, at shutdown, the end of the request being
    // read; then the end of the stream is passed on (memcached answers what it got, then
    // closes).
    let to_upstream = async {
        let mut buf = vec![0u8; READ_BUFFER];
        while !(draining && framing.at_boundary()) {
            tokio::select! {
                // (The watch guard is dropped inside: it must not live across an await.)
                _ = async { drop(stop.wait_for(|s| *s).await) }, if !draining => draining = true,
                read = rd.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        break;
                    }
                    active();
                    // Bytes that arrive once the signal is set come after it, even when this
                    // branch won the race with the one above: only the end of a request
                    // under way is taken from them.
                    if !draining && *stop.borrow() {
                        draining = true;
                        if framing.at_boundary() {
                            break;
                        }
                    }
                    let take = framing.advance(&buf[..n], draining);
                    up_wr.write_all(&buf[..take]).await?;
                }
            }
        }
        up_wr.shutdown().await?;
        std::future::pending::<io::Result<()>>().await
    };
    let idled_out = async {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        // A deadline past the clock's range is none (`+` would panic).
        let last =
            || start.checked_add(Duration::from_millis(last_activity.load(Ordering::Relaxed)));
        while let Some(at) = last().and_then(|t| t.checked_add(idle)) {
            if at <= Instant::now() {
                tracing::debug!("idle timeout (binary protocol)");
                return Ok(());
            }
            sleep_until(at).await;
        }
        std::future::pending().await
    };
    tokio::select! {
        r = to_client => r,
        r = to_upstream => r,
        r = idled_out => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request: header (magic, opcode, body length) and body.
    fn request(opcode: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; HEADER];
        r[0] = 0x80;
        r[1] = opcode;
        r[8..12].copy_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn framing_finds_request_ends_however_the_bytes_arrive() {
        let mut stream = request(0x0a, b"");
        stream.extend(request(0x00, b"key"));
        stream.extend(request(0x01, &[7u8; 300]));
        let ends = [24, 24 + 27, stream.len()];
        // Every way of cutting the stream in two reads gives the same boundaries.
        for cut in 0..=stream.len() {
            let mut f = Framing::default();
            let mut seen = Vec::new();
            let mut at = 0;
            for part in [&stream[..cut], &stream[cut..]] {
                let mut i = 0;
                while i < part.len() {
                    i += f.advance(&part[i..], true);
                    if f.at_boundary() {
                        seen.push(at + i);
                    }
                }
                at += part.len();
            }
            seen.dedup();
            assert_eq!(seen, ends, "cut at {cut}");
        }
    }

    #[test]
    fn framing_stops_at_the_end_of_the_request_under_way() {
        let mut stream = request(0x00, b"ab");
        stream.extend(request(0x00, b"cd"));
        let mut f = Framing::default();
        assert_eq!(f.advance(&stream[..10], true), 10, "a header cut short");
        assert!(!f.at_boundary());
        assert_eq!(
            f.advance(&stream[10..], true),
            26 - 10,
            "up to its end only"
        );
        assert!(f.at_boundary());
        let mut f = Framing::default();
        assert_eq!(
            f.advance(&stream, false),
            stream.len(),
            "all when not stopping"
        );
        assert!(f.at_boundary());
        // A body longer than any read: counted down across reads.
        let mut f = Framing::default();
        let big = request(0x01, &vec![0u8; 100_000]);
        assert_eq!(f.advance(&big[..50_000], true), 50_000);
        assert_eq!(f.advance(&big[50_000..], true), big.len() - 50_000);
        assert!(f.at_boundary());
    }
}
