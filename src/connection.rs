//! One client connection, owned by one task: the read buffer, the reply slots in request order
//! and the write buffer. The loop reads, parses every complete request
//! ([`crate::protocol::parse_request_buf`]), dispatches it ([`crate::handler::dispatch`]),
//! moves finished replies from the head of the slot queue into the write buffer and writes it
//! (once per batch, not once per reply).
//!
//! Bounded: at most `limits.max_pending` requests await replies and at most
//! [`WRITE_HIGH_WATER`] reply bytes wait for the client; past either the connection stops
//! reading, so a client that never reads its replies gets TCP back pressure, not a growing
//! buffer. The connection is closed exactly where memcached closes it: `quit`, a request line
//! it cannot frame ([`crate::protocol::ProtocolError`]), client EOF; plus the proxy's own idle
//! timeout and shutdown (after the replies to everything already read are written).
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};

use crate::handler::{dispatch, Ctx, Finished, Slot};
use crate::metrics::Side;
use crate::protocol::{parse_request_buf, Limits};
use crate::server::{ListenerInfo, Shared};

/// Reply bytes waiting for a slow client before the connection stops reading requests.
pub const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;

/// Reply bytes a connection aims to hold in flight: the number of requests awaiting replies is
/// capped at this divided by the average reply size seen so far (at least 1, at most
/// `limits.max_pending`), so a client pipelining gets of large values cannot make the proxy hold
/// `max_pending` large replies.
pub const PENDING_BYTES_BUDGET: usize = 16 * 1024 * 1024;

/// The average reply size assumed before any reply was seen.
const INITIAL_REPLY_ESTIMATE: usize = 64 * 1024;

/// Serves one client connection until it closes, misbehaves fatally, idles out, or the proxy
/// shuts down.
///
/// # Errors
/// I/O errors on the client socket.
pub async fn serve(
    mut socket: TcpStream,
    info: &ListenerInfo,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let config = &shared.config;
    let limits = Limits {
        max_value_size: config.limits.item_size,
        ..Limits::default()
    };
    let max_pending = config.limits.max_pending;
    let idle = (config.limits.idle_timeout_s > 0)
        .then(|| Duration::from_secs(config.limits.idle_timeout_s));
    let stall = (config.limits.write_stall_timeout_s > 0)
        .then(|| Duration::from_secs(config.limits.write_stall_timeout_s));
    let mut stalled_since: Option<Instant> = None;
    let mut avg_reply = INITIAL_REPLY_ESTIMATE;
    let mut first_request = true;
    let mut ctx = Ctx::new(shared.clone(), info.clone());
    let mut stop = shared.shutting_down.clone();
    let (mut rd, mut wr) = socket.split();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    let mut slots: VecDeque<Slot> = VecDeque::new();
    let mut swallow = 0usize;
    let mut held: Option<Slot> = None;
    // No more requests are read after quit, a fatal parse error, EOF or shutdown.
    let mut reading = true;
    let mut closing = false;
    let mut last_activity = Instant::now();
    loop {
        // Parse and dispatch every complete request, within the pending bounds.
        let allowed = (PENDING_BYTES_BUDGET / avg_reply.max(1)).clamp(1, max_pending);
        while reading && slots.len() < allowed && wbuf.len() < WRITE_HIGH_WATER {
            if first_request && rbuf.first() == Some(&0x80) {
                // memcached picks the binary protocol from the first byte. The proxy does not
                // speak it: splice the connection byte for byte to the default route's server
                // (no routing, no transcoding), so binary clients get memcached's behaviour.
                tracing::debug!("binary protocol connection: spliced to the default server");
                return splice_binary(&mut rd, &mut wr, &rbuf, shared).await;
            }
            if swallow > 0 {
                let n = swallow.min(rbuf.len());
                rbuf.advance(n);
                swallow -= n;
                if swallow > 0 {
                    break;
                }
            }
            if let Some(h) = held.take() {
                slots.push_back(h);
            }
            match parse_request_buf(&mut rbuf, &limits) {
                Ok(Some(req)) => {
                    first_request = false;
                    for slot in dispatch(&mut ctx, req).await {
                        match slot {
                            Slot::Held { reply, swallow: n } if n > 0 => {
                                swallow = n;
                                held = Some(Slot::Local(reply));
                            }
                            Slot::Close => {
                                reading = false;
                                slots.push_back(Slot::Close);
                            }
                            slot => slots.push_back(slot),
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // memcached closes without a reply (after answering what came before).
                    tracing::debug!(error = %e, "closing client connection");
                    info.metrics.connection_error(Side::Client);
                    reading = false;
                    slots.push_back(Slot::Close);
                }
            }
        }
        // Move finished replies, in order, into the write buffer.
        while wbuf.len() < WRITE_HIGH_WATER {
            let Some(front) = slots.front_mut() else {
                break;
            };
            if !front.is_ready() {
                break;
            }
            let Some(slot) = slots.pop_front() else { break };
            let before = wbuf.len();
            let finished = slot.finish(&ctx, &mut wbuf);
            avg_reply = (avg_reply * 7 + (wbuf.len() - before)) / 8;
            if finished == Finished::Close {
                closing = true;
                slots.clear();
                break;
            }
        }
        if closing && wbuf.is_empty() {
            let _ = wr.shutdown().await;
            return Ok(());
        }
        if !reading && slots.is_empty() && wbuf.is_empty() && held.is_none() {
            let _ = wr.shutdown().await;
            return Ok(());
        }
        let allowed = (PENDING_BYTES_BUDGET / avg_reply.max(1)).clamp(1, max_pending);
        let can_read =
            reading && !closing && slots.len() < allowed && wbuf.len() < WRITE_HIGH_WATER;
        if wbuf.is_empty() {
            stalled_since = None;
        } else if stalled_since.is_none() {
            stalled_since = Some(Instant::now());
        }
        let stall_at = stall.zip(stalled_since).map(|(d, t)| t + d);
        let idle_at = idle
            .filter(|_| slots.is_empty() && wbuf.is_empty())
            .map(|d| last_activity + d);
        let has_slot = !slots.is_empty() && !closing && wbuf.len() < WRITE_HIGH_WATER;
        tokio::select! {
            r = rd.read_buf(&mut rbuf), if can_read => match r {
                Ok(0) => {
                    // Client EOF: answer what was read (memcached does), then close.
                    reading = false;
                    held = None;
                    swallow = 0;
                }
                Ok(_) => last_activity = Instant::now(),
                Err(e) => {
                    info.metrics.connection_error(Side::Client);
                    return Err(e);
                }
            },
            r = wr.write_buf(&mut wbuf), if !wbuf.is_empty() => match r {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    last_activity = Instant::now();
                    stalled_since = Some(last_activity);
                }
                Err(e) => {
                    info.metrics.connection_error(Side::Client);
                    return Err(e);
                }
            },
            _ = async { if let Some(front) = slots.front_mut() { front.ready().await } }, if has_slot => {}
            _ = sleep_until(idle_at.unwrap_or_else(Instant::now)), if idle_at.is_some() && reading => {
                tracing::debug!("idle timeout");
                return Ok(());
            }
            _ = sleep_until(stall_at.unwrap_or_else(Instant::now)), if stall_at.is_some() => {
                // The client has not read a byte of its replies for write_stall_timeout_s.
                tracing::debug!("write stall timeout; closing");
                info.metrics.connection_error(Side::Client);
                return Ok(());
            }
            _ = stop.wait_for(|s| *s), if reading => {
                reading = false;
            }
        }
    }
}

/// Splices a binary-protocol client connection to the default route's server for the empty
/// key: `already` (bytes read so far) first, then both directions until either side closes.
async fn splice_binary(
    rd: &mut tokio::net::tcp::ReadHalf<'_>,
    wr: &mut tokio::net::tcp::WriteHalf<'_>,
    already: &[u8],
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let table = shared.routes.borrow().clone();
    let pool = shared.upstreams.pool(table.default_route().pool.0);
    let addr = pool.server_for(b"").addr().to_string();
    let connect = tokio::time::timeout(shared.config.timeouts.connect(), TcpStream::connect(&addr));
    let Ok(Ok(mut upstream)) = connect.await else {
        // Nothing sensible to say in a protocol we do not speak: close.
        return Ok(());
    };
    let (mut up_rd, mut up_wr) = upstream.split();
    up_wr.write_all(already).await?;
    let mut stop = shared.shutting_down.clone();
    tokio::select! {
        r = tokio::io::copy(rd, &mut up_wr) => r.map(drop),
        r = tokio::io::copy(&mut up_rd, wr) => r.map(drop),
        _ = stop.wait_for(|s| *s) => Ok(()),
    }
}
