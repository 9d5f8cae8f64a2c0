//! One client connection, owned by one task: the read buffer, the reply slots in request order
//! and the write buffer. The loop reads, parses every complete request
//! ([`crate::protocol::parse_request_arena`]), dispatches it ([`crate::handler::dispatch`]),
//! moves finished replies from the head of the slot queue into the write buffer and writes it
//! (once per batch, not once per reply).
//!
//! Bounded in count and in bytes: at most `limits.max_pending` requests await replies, and the
//! bytes a connection may make the proxy hold stay under `limits.max_pending_bytes`. Each
//! request reserves, before it is dispatched, the most its reply (and its own data) can occupy
//! ([`reservation`]: every requested key a full `item_size` value); the reservation is released
//! when the reply moves into the write buffer, whose actual bytes count instead. A request that
//! does not fit waits parsed (no further bytes are read), so a client that never reads its
//! replies gets TCP back pressure, not a growing buffer, and is closed after
//! `write_stall_timeout_s`. One request is always admitted when nothing else is held, so the
//! bound is the larger of the budget and one request's reservation; a retrieval of more keys
//! than the budget fits is sent in parts that fit (`first_part`, [`crate::handler::Chunk`]).
//!
//! The connection is closed exactly where memcached closes it: `quit`, a request line it cannot
//! frame ([`crate::protocol::ProtocolError`]), client EOF; plus the proxy's own idle
//! timeout and shutdown (after the replies to everything already read are written, a request
//! partly read at the signal read to its end first).
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};

use crate::handler::{dispatch, Chunk, Ctx, Finished, Slot, Streaming};
use crate::metrics::Side;
use crate::protocol::{data_block_end, parse_request_arena, Limits, Request, Retrieval};
use crate::server::{ListenerInfo, Shared};

mod binary;

/// The read buffer's size, memcached's (`READ_BUFFER_SIZE`): each read may fill it up to here.
const READ_BUFFER: usize = 16 * 1024;

/// Reply bytes in the write buffer past which finished replies stay in their slots (they are
/// composed, and transcoded, only as the client reads).
pub const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;

/// Log stream bytes (`watch`) in the write buffer past which the proxy stops reading the
/// server: memcached skips log lines for a watcher that does not keep up (and says how many),
/// which a deep buffer in between would turn into lines arriving late, or in bursts.
const LOG_HIGH_WATER: usize = 64 * 1024;

/// Most bytes of one `VALUE <key> <flags> <bytes> [<cas>]\r\n ... \r\n` block besides its data
/// (250-byte key, 10-digit flags and length, 20-digit cas), rounded up.
const VALUE_OVERHEAD: usize = 320;
/// Reserved for a reply of any other kind: a line, or a multi-line `stats <args>` block.
const LINE_RESERVE: usize = 4 * 1024;
/// What one `mg` reply without a value takes while held (`HD`/`EN` and its bookkeeping).
const MG_LINE_RESERVE: usize = 64;
const STATS_RESERVE: usize = 256 * 1024;
/// Reserved for a key dump: memcached 1.6.18 cuts `stats cachedump` at 2 MiB.
const DUMP_RESERVE: usize = 2 * 1024 * 1024 + LINE_RESERVE;

/// The most bytes `req` can make the proxy hold until its reply is in the write buffer: every
/// key it asks for a full `item_size` value, plus the data a storage command carries (held by
/// its slot and, composed, by the upstream queue).
pub fn reservation(req: &Request, item_size: usize) -> usize {
    let value = item_size.saturating_add(VALUE_OVERHEAD);
    match req {
        Request::Retrieval(r) => keys_reservation(r.keys.len(), item_size),
        Request::Storage(s) => s.data.len().saturating_mul(2).saturating_add(LINE_RESERVE),
        Request::Meta(m) => match &m.data {
            Some(data) => data.len().saturating_mul(2).saturating_add(LINE_RESERVE),
            None => value.saturating_add(LINE_RESERVE),
        },
        Request::Stats(s) if s.dumps_keys() => DUMP_RESERVE,
        // The discarded replies of a side effect are held until they are in: a delete's line,
        // or one `mg` line (no value) per key before a bad one.
        Request::Reject(r) => match r.side_effect.as_deref() {
            Some(Request::Retrieval(side)) => side
                .keys
                .len()
                .saturating_mul(MG_LINE_RESERVE)
                .saturating_add(LINE_RESERVE),
            Some(side) => reservation(side, item_size).saturating_add(LINE_RESERVE),
            None => LINE_RESERVE,
        },
        Request::Stats(_) | Request::Admin(_) => STATS_RESERVE,
        _ => LINE_RESERVE,
    }
}

/// The reservation of a retrieval of `keys` keys: each a full `item_size` value, then `END`.
fn keys_reservation(keys: usize, item_size: usize) -> usize {
    keys.saturating_mul(item_size.saturating_add(VALUE_OVERHEAD))
        .saturating_add(8)
}

/// How many keys the first part of `req` asks for, when it is a retrieval whose reservation
/// passes `budget`: as many as fit (at least one). Such a get goes upstream in parts, each sent
/// when the replies before it have made room ([`Chunk`]): whole, one request line of many keys
/// made the proxy hold every value at once, twice (a 1 000-key get of a 1 MB value: 1.9 GB).
fn first_part(req: &Request, need: usize, budget: usize, item_size: usize) -> Option<usize> {
    match req {
        Request::Retrieval(r) if need > budget && r.keys.len() > 1 => {
            let per_key = item_size.saturating_add(VALUE_OVERHEAD);
            Some((budget.saturating_sub(8) / per_key).clamp(1, r.keys.len() - 1))
        }
        _ => None,
    }
}

/// The keys of `req` to dispatch next ([`first_part`]; `None`: all of it) and that part's
/// reservation (`need`, the whole request's, when it is not split).
fn next_part(
    req: &Request,
    need: usize,
    budget: usize,
    item_size: usize,
) -> (Option<usize>, usize) {
    let part = first_part(req, need, budget, item_size);
    let part_need = part.map_or(need, |keys| keys_reservation(keys, item_size));
    (part, part_need)
}

/// Splits the retrieval `req` after its first `keys` keys, leaving them in `req`: the rest, a
/// retrieval of its own whose keys are kept last-first. Each later part then comes off the end
/// of that list (`reversed`: `req` is such a rest), not off its front: taken off the front,
/// every part copied all the keys after it (a get of 100 000 keys a key a part spent 11 s of
/// CPU there). A rest sent without a further split is put back in order ([`in_order`]).
fn split_retrieval(req: &mut Request, keys: usize, reversed: bool) -> Option<Request> {
    let Request::Retrieval(r) = req else {
        return None;
    };
    let keys = keys.min(r.keys.len());
    let rest = if reversed {
        let mut part = r.keys.split_off(r.keys.len() - keys);
        part.reverse();
        std::mem::replace(&mut r.keys, part)
    } else {
        let mut rest = r.keys.split_off(keys);
        rest.reverse();
        rest
    };
    Some(Request::Retrieval(Retrieval {
        cmd: r.cmd,
        exptime: r.exptime,
        keys: rest,
    }))
}

/// The last part of a split retrieval, its keys put back in request order ([`split_retrieval`]
/// keeps a rest's last-first).
fn in_order(mut req: Request) -> Request {
    if let Request::Retrieval(r) = &mut req {
        r.keys.reverse();
    }
    req
}

/// At shutdown, the error reply of a too-large value being swallowed goes out now: the rest of
/// the value will not be read. False when no value is being swallowed.
fn reply_held_now(
    held: &mut Option<Slot>,
    slots: &mut VecDeque<(Slot, usize)>,
    swallow: &mut usize,
) -> bool {
    let Some(h) = held.take() else {
        return false;
    };
    slots.push_back((h, 0));
    *swallow = 0;
    true
}

/// Shutdown ends a log stream (`watch`): the connection closes once what was written is out.
/// What the client sent during the stream is dropped, as memcached drops it: nothing more is
/// read or parsed (with the stream's slot gone, the loop would otherwise parse what the read
/// buffer holds, and apply it upstream).
fn end_log_stream(
    closing: &mut bool,
    reading: &mut bool,
    parsing: &mut bool,
    slots: &mut VecDeque<(Slot, usize)>,
    reserved: &mut usize,
    barriers: &mut usize,
) {
    *closing = true;
    *reading = false;
    *parsing = false;
    slots.clear();
    *reserved = 0;
    *barriers = 0;
}

/// How full the write buffer may get before the head slot's reply waits: [`LOG_HIGH_WATER`]
/// for a log stream, else [`WRITE_HIGH_WATER`].
fn high_water(slots: &VecDeque<(Slot, usize)>) -> usize {
    match slots.front() {
        Some((front, _)) if front.is_endless() => LOG_HIGH_WATER,
        _ => WRITE_HIGH_WATER,
    }
}

/// Whether `req` is a key dump that must wait until every earlier request of the client is
/// answered. memcached runs a client's requests in order, but a dump goes on a connection of
/// its own ([`crate::upstream::Server::send_alone`]): sent at once, it could list the keys
/// before the `set`s pipelined ahead of it were applied, `noreply` ones included (the proxy
/// forwards those without `noreply`, so their replies tell). Requests after a dump wait for it
/// in turn ([`Slot::is_barrier`]). The same holds for `lru_crawler metadump` and `watch` when
/// they run (behind replies memcached has not written yet they are refused, as by memcached).
fn waits_its_turn(req: &Request, slots: &VecDeque<(Slot, usize)>) -> bool {
    let dump = match req {
        Request::Stats(s) => s.dumps_keys(),
        Request::Admin(a) => a.streams,
        _ => false,
    };
    dump && !slots.is_empty()
}

/// Whether memcached 1.6.18 writes every queued reply right after `req`: a retrieval and `mn`
/// end with a flush (proto_text.c), so a `watch` or `metadump` behind them runs.
fn flushes_replies(req: &Request) -> bool {
    matches!(req, Request::Retrieval(_) | Request::MetaNoop)
}

/// How many bytes the next read may take: what memcached's next read would, so that a line
/// is cut (or not) where memcached's 16 KiB buffer cuts it (`frame_line` closes on a line that
/// does not fit in it). memcached moves what is left unparsed to the front of its buffer and
/// fills it, so a read must not take more, even when an earlier large value grew the proxy's
/// buffer (a line of 16 385 bytes was served after a 40 KB `set`; memcached closes on it); nor
/// less, or a long line (over 2048 bytes, not a get) that memcached reads whole would be cut.
/// A data block still arriving is read to its end and not past it, whatever its size
/// (memcached reads the rest of it straight into the item, then starts its buffer afresh at the
/// next line: a 16 300-byte line after a 100-byte block that arrived late is answered there),
/// and so is a block being swallowed. A multi-get line that fills the buffer doubles what is
/// read.
fn read_size(rbuf: &BytesMut, swallow: usize, limits: &Limits) -> usize {
    if swallow > 0 {
        // The buffer was used up: what is left of the block is read, at most a buffer a time.
        return swallow.min(READ_BUFFER);
    }
    match data_block_end(rbuf, limits) {
        Some(end) => end - rbuf.len(),
        _ if rbuf.len() < READ_BUFFER => READ_BUFFER - rbuf.len(),
        _ => rbuf.len(),
    }
}

/// Whether a request reserving `need` bytes may be dispatched while the connection holds
/// `held` (replies written or reserved): within the budget, or always when it holds nothing.
fn admits(need: usize, holds_nothing: bool, held: usize, budget: usize) -> bool {
    holds_nothing || held + need <= budget
}

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
        item_size: config.limits.item_size,
        ..Limits::default()
    };
    let max_pending = config.limits.max_pending;
    let budget = config.limits.max_pending_bytes;
    let item_size = config.limits.item_size;
    let idle = (config.limits.idle_timeout_s > 0)
        .then(|| Duration::from_secs(config.limits.idle_timeout_s));
    let stall = (config.limits.write_stall_timeout_s > 0)
        .then(|| Duration::from_secs(config.limits.write_stall_timeout_s));
    let mut stalled_since: Option<Instant> = None;
    let mut first_request = true;
    let mut ctx = Ctx::new(shared.clone(), info.clone());
    let mut stop = shared.shutting_down.clone();
    let (mut rd, mut wr) = socket.split();
    let mut rbuf = BytesMut::with_capacity(READ_BUFFER);
    // Small requests are copied here out of `rbuf`, which then stays reusable while they wait
    // for their replies ([`parse_request_arena`]).
    let mut arena = BytesMut::new();
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    // Each slot with its reservation; `reserved` is their sum.
    let mut slots: VecDeque<(Slot, usize)> = VecDeque::new();
    let mut reserved = 0usize;
    // Slots of dumps in flight ([`Slot::is_barrier`]): nothing after them is dispatched until
    // they are finished.
    let mut barriers = 0usize;
    // Requests dispatched since memcached would last have written its queued replies (its
    // "response stack", which `watch` and `lru_crawler metadump` refuse to run behind).
    let mut unflushed = false;
    // A parsed request waiting for its reservation (the second item) to fit; the third, for
    // the later parts of a split retrieval (their keys last-first: [`split_retrieval`]), when
    // its first part was dispatched.
    let mut parked: Option<(Request, usize, Option<std::time::Instant>)> = None;
    let mut swallow = 0usize;
    let mut held: Option<Slot> = None;
    // No more bytes are read after quit, a fatal parse error, EOF or shutdown; no more requests
    // are parsed after quit or a fatal parse error (after EOF and shutdown, the complete
    // requests already read still are: they are answered).
    let mut reading = true;
    let mut parsing = true;
    // The read buffer holds no complete request (the parser said so since the last read).
    let mut exhausted = false;
    let mut closing = false;
    // After a shutdown signal, the bytes of the read buffer then still unparsed: a request
    // partly read when the signal came is read to its end (within the grace period) and
    // answered; reading stops once these bytes are parsed.
    let mut draining: Option<usize> = None;
    let mut last_activity = Instant::now();
    loop {
        // Parse and dispatch every complete request, within the pending bounds; none while a
        // dump is in flight.
        while slots.len() < max_pending && wbuf.len() < WRITE_HIGH_WATER && barriers == 0 {
            let (mut req, need, since) = match parked.take() {
                Some(parked) => parked,
                // After the request partly read at shutdown, nothing is parsed (below).
                None if !parsing || draining == Some(0) => break,
                None => {
                    if first_request && rbuf.first() == Some(&0x80) {
                        // memcached picks the binary protocol from the first byte. The proxy
                        // does not speak it: splice the connection byte for byte to the default
                        // route's server (no routing, no transcoding), so binary clients get
                        // memcached's behaviour.
                        tracing::debug!(
                            "binary protocol connection: spliced to the default server"
                        );
                        return binary::splice(&mut rd, &mut wr, &rbuf, shared, idle).await;
                    }
                    if swallow > 0 {
                        let n = swallow.min(rbuf.len());
                        rbuf.advance(n);
                        swallow -= n;
                        if let Some(left) = &mut draining {
                            *left = left.saturating_sub(n);
                        }
                        if swallow > 0 {
                            break;
                        }
                    }
                    if let Some(h) = held.take() {
                        slots.push_back((h, 0));
                    }
                    let before = rbuf.len();
                    let parsed = parse_request_arena(&mut rbuf, &mut arena, &limits);
                    if let Some(left) = &mut draining {
                        *left = left.saturating_sub(before - rbuf.len());
                    }
                    match parsed {
                        Ok(Some(req)) => {
                            first_request = false;
                            let need = reservation(&req, item_size);
                            (req, need, None)
                        }
                        Ok(None) => {
                            exhausted = true;
                            // memcached writes its queued replies when a read is used up.
                            unflushed = false;
                            break;
                        }
                        Err(e) => {
                            // memcached closes without a reply (after answering what came before).
                            tracing::debug!(error = %e, "closing client connection");
                            info.metrics.connection_error(Side::Client);
                            reading = false;
                            parsing = false;
                            slots.push_back((Slot::Close, 0));
                            continue;
                        }
                    }
                }
            };
            let holds_nothing = slots.is_empty() && wbuf.is_empty();
            let (part, part_need) = next_part(&req, need, budget, item_size);
            if !admits(part_need, holds_nothing, wbuf.len() + reserved, budget)
                || waits_its_turn(&req, &slots)
            {
                parked = Some((req, need, since));
                break;
            }
            // A rest of a split retrieval (`since`) holds its keys last-first.
            let is_rest = since.is_some();
            let more = match part.and_then(|keys| split_retrieval(&mut req, keys, is_rest)) {
                Some(rest) => {
                    let rest_need = reservation(&rest, item_size);
                    let first_sent = since.unwrap_or_else(std::time::Instant::now);
                    parked = Some((rest, rest_need, Some(first_sent)));
                    true
                }
                None => {
                    if is_rest {
                        req = in_order(req);
                    }
                    false
                }
            };
            let need = part_need;
            ctx.chunk = Chunk { since, more };
            reserved += need;
            ctx.replies_pending = unflushed;
            unflushed = !flushes_replies(&req);
            let mut dispatched = dispatch(&mut ctx, req).await.into_iter().peekable();
            while let Some(slot) = dispatched.next() {
                // The last slot of a request carries its reservation.
                let share = if dispatched.peek().is_none() { need } else { 0 };
                match slot {
                    Slot::Held { reply, swallow: n } if n > 0 => {
                        swallow = n;
                        held = Some(Slot::Local(reply));
                        reserved -= share;
                    }
                    Slot::Close => {
                        reading = false;
                        parsing = false;
                        slots.push_back((Slot::Close, share));
                    }
                    slot => {
                        barriers += usize::from(slot.is_barrier());
                        slots.push_back((slot, share));
                    }
                }
            }
        }
        // Move finished replies, in order, into the write buffer.
        while wbuf.len() < high_water(&slots) {
            let Some((front, _)) = slots.front_mut() else {
                break;
            };
            if !front.is_ready() {
                break;
            }
            let finished = match front.write_streamed(&ctx, &mut wbuf) {
                // A streamed reply stays at the head until its end.
                Streaming::More => continue,
                Streaming::Ended(finished) => {
                    if let Some((slot, share)) = slots.pop_front() {
                        reserved -= share;
                        barriers -= usize::from(slot.is_barrier());
                    }
                    finished
                }
                Streaming::NotAStream => {
                    let Some((slot, share)) = slots.pop_front() else {
                        break;
                    };
                    reserved -= share;
                    barriers -= usize::from(slot.is_barrier());
                    slot.finish(&ctx, &mut wbuf)
                }
            };
            if finished == Finished::Close {
                closing = true;
                slots.clear();
                reserved = 0;
                barriers = 0;
                parked = None;
                break;
            }
        }
        if closing && wbuf.is_empty() {
            let _ = wr.shutdown().await;
            return Ok(());
        }
        if draining == Some(0) {
            // The request partly read at shutdown is complete: nothing more is read or parsed
            // (bytes that came with its end are requests sent after the signal).
            draining = None;
            reading = false;
            parsing = false;
            // If it was a value too large to store, being swallowed: as for one being swallowed
            // when the signal comes (with nothing read, the connection had nothing to wait for).
            reply_held_now(&mut held, &mut slots, &mut swallow);
        }
        // Replies that wrote nothing (`noreply`, a quiet meta miss) may have made the room a
        // parked or unparsed request waits for, and then no read or reply need ever come to
        // wake the loop (the client waits for that request's reply): parse on. Each pass
        // dispatches, parks, swallows or finds the buffer exhausted, so this cannot spin.
        let room =
            !closing && slots.len() < max_pending && wbuf.len() < WRITE_HIGH_WATER && barriers == 0;
        let more = match &parked {
            Some((req, need, _)) => {
                let holds_nothing = slots.is_empty() && wbuf.is_empty();
                let (_, need) = next_part(req, *need, budget, item_size);
                admits(need, holds_nothing, wbuf.len() + reserved, budget)
                    && !waits_its_turn(req, &slots)
            }
            None => parsing && !exhausted && (swallow == 0 || !rbuf.is_empty()),
        };
        if room && more {
            continue;
        }
        if !reading
            && (!parsing || exhausted)
            && parked.is_none()
            && slots.is_empty()
            && wbuf.is_empty()
            && held.is_none()
        {
            let _ = wr.shutdown().await;
            return Ok(());
        }
        // After a `watch`'s OK memcached reads the client only to notice when it goes away:
        // what the client sends is dropped, its EOF closes the connection.
        let watching = !closing && slots.front().is_some_and(|(s, _)| s.is_endless());
        if watching && *stop.borrow() {
            // A log stream that starts once the signal is set (its `watch` read, or finished,
            // before the drain ends) ends as one running at the signal does: its `OK` goes out,
            // then the close, not at the end of the grace period.
            end_log_stream(
                &mut closing,
                &mut reading,
                &mut parsing,
                &mut slots,
                &mut reserved,
                &mut barriers,
            );
            continue;
        }
        if watching {
            rbuf.clear();
        }
        let can_read = reading
            && !closing
            && (watching
                || parked.is_none()
                    && barriers == 0
                    && slots.len() < max_pending
                    && wbuf.len() < WRITE_HIGH_WATER
                    && wbuf.len() + reserved < budget);
        let want = if can_read {
            read_size(&rbuf, swallow, &limits)
        } else {
            0
        };
        if rbuf.capacity() - rbuf.len() < want {
            rbuf.reserve(want);
        }
        if wbuf.is_empty() {
            stalled_since = None;
        } else if stalled_since.is_none() {
            stalled_since = Some(Instant::now());
        }
        // A deadline past the clock's range is none (`+` would panic).
        let stall_at = stall.zip(stalled_since).and_then(|(d, t)| t.checked_add(d));
        let idle_at = idle
            .filter(|_| slots.is_empty() && wbuf.is_empty())
            .and_then(|d| last_activity.checked_add(d));
        let has_slot = !slots.is_empty() && !closing && wbuf.len() < high_water(&slots);
        let mut into_rbuf = (&mut rbuf).limit(want);
        // Bytes read by this turn, and whether it finds the shutdown signal.
        let mut read_now = 0;
        let mut signal_seen = false;
        tokio::select! {
            r = rd.read_buf(&mut into_rbuf), if can_read => match r {
                Ok(0) if watching => {
                    // The client went away: so does its log stream.
                    reading = false;
                    closing = true;
                    slots.clear();
                    reserved = 0;
                    barriers = 0;
                }
                Ok(0) => {
                    // Client EOF: answer what was read (memcached does), then close. A value
                    // being swallowed never ends: no reply for it, nothing after it.
                    reading = false;
                    if held.take().is_some() || swallow > 0 {
                        parsing = false;
                    }
                    swallow = 0;
                }
                Ok(n) => {
                    last_activity = Instant::now();
                    exhausted = false;
                    read_now = n;
                }
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
            _ = async { if let Some((front, _)) = slots.front_mut() { front.ready().await } }, if has_slot => {}
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
            _ = stop.wait_for(|s| *s), if reading && draining.is_none() => signal_seen = true,
            else => {
                // Every branch disabled: nothing can make progress (a bug; close rather than
                // spin or panic in release builds).
                debug_assert!(false, "client connection loop has nothing to wait for");
                return Ok(());
            }
        }
        // Bytes that arrive once the shutdown signal is set come after it, even when this turn
        // read them before its branch ran: of them only the end of a request partly read
        // before the signal is taken, so what a connection answers does not depend on when
        // its task was scheduled.
        let mut after_signal = 0;
        if read_now > 0 && draining.is_none() && *stop.borrow() {
            after_signal = read_now;
            signal_seen = true;
        }
        if signal_seen {
            let before_signal = rbuf.len() - after_signal;
            if watching {
                end_log_stream(
                    &mut closing,
                    &mut reading,
                    &mut parsing,
                    &mut slots,
                    &mut reserved,
                    &mut barriers,
                );
            } else if reply_held_now(&mut held, &mut slots, &mut swallow) {
                // Shutdown while a too-large value is being swallowed: nothing after it
                // is parsed.
                reading = false;
                parsing = false;
            } else if parsing && before_signal > 0 {
                // Shutdown: answer the requests already read, and read on only to the end
                // of the one partly read (a value's data block still arriving).
                draining = Some(before_signal);
                exhausted = false;
            } else {
                // Shutdown: read nothing more; answer the requests already read.
                reading = false;
                rbuf.truncate(before_signal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::request_of;

    fn reserve(line: &[u8]) -> usize {
        reservation(&request_of(line), 1000)
    }

    #[test]
    fn a_retrieval_past_the_budget_goes_in_parts() {
        let item = 1000;
        let per_key = item + VALUE_OVERHEAD;
        let mut req = request_of(b"gets a b c d e\r\n");
        let need = reservation(&req, item);
        assert_eq!(first_part(&req, need, need, item), None, "it fits");
        assert_eq!(first_part(&req, need, 2 * per_key + 8, item), Some(2));
        assert_eq!(
            first_part(&req, need, 10, item),
            Some(1),
            "one key at least"
        );
        assert_eq!(
            next_part(&req, need, 2 * per_key + 8, item),
            (Some(2), 2 * per_key + 8)
        );
        assert_eq!(next_part(&req, need, need, item), (None, need));
        let mut rest = split_retrieval(&mut req, 2, false).expect("a retrieval");
        assert_eq!(req, request_of(b"gets a b\r\n"));
        assert_eq!(in_order(rest.clone()), request_of(b"gets c d e\r\n"));
        // Later parts come off a rest kept last-first.
        let last = split_retrieval(&mut rest, 1, true).expect("a retrieval");
        assert_eq!(rest, request_of(b"gets c\r\n"));
        assert_eq!(in_order(last), request_of(b"gets d e\r\n"));
        let mut gat = request_of(b"gat 10 a b\r\n");
        let rest = split_retrieval(&mut gat, 1, false).expect("a retrieval");
        assert_eq!(
            rest,
            request_of(b"gat 10 b\r\n"),
            "the exptime goes with every part"
        );
        // One key, or not a retrieval: never split.
        let one = request_of(b"get a\r\n");
        assert_eq!(first_part(&one, usize::MAX, 10, item), None);
        let set = request_of(b"set a 0 0 1\r\nx\r\n");
        assert_eq!(first_part(&set, usize::MAX, 10, item), None);
    }

    /// A get split a key a part goes out in request order, and taking a part copies none of
    /// the keys after it: the rest's key list stays where it is (taken off the front, each
    /// part copied the whole tail into a new list: quadratic in the keys).
    #[test]
    fn parts_come_off_a_rest_without_copying_it() {
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        let line = format!("get {}\r\n", keys.join(" "));
        let mut req = request_of(line.as_bytes());
        let mut sent = Vec::new();
        let mut rest = split_retrieval(&mut req, 1, false).expect("a retrieval");
        sent.push(req);
        let at = match &rest {
            Request::Retrieval(r) => r.keys.as_ptr(),
            _ => unreachable!(),
        };
        while matches!(&rest, Request::Retrieval(r) if r.keys.len() > 1) {
            // As the connection does: the part taken stays in the request, the rest is parked.
            let mut part = rest;
            rest = split_retrieval(&mut part, 1, true).expect("a retrieval");
            sent.push(part);
            match &rest {
                Request::Retrieval(r) => assert_eq!(r.keys.as_ptr(), at, "the rest was copied"),
                _ => unreachable!(),
            }
        }
        sent.push(in_order(rest));
        let order: Vec<String> = sent
            .iter()
            .flat_map(|r| match r {
                Request::Retrieval(r) => r.keys.clone(),
                _ => unreachable!(),
            })
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect();
        assert_eq!(order, keys);
    }

    #[test]
    fn each_request_reserves_its_largest_reply() {
        // Every key a full item, repeated keys included (memcached answers each).
        assert_eq!(reserve(b"get a\r\n"), 1000 + VALUE_OVERHEAD + 8);
        assert_eq!(reserve(b"gets a b a\r\n"), 3 * (1000 + VALUE_OVERHEAD) + 8);
        // A storage command holds its data twice (slot, upstream queue) until it is sent.
        assert_eq!(reserve(b"set a 0 0 5\r\nhello\r\n"), 10 + LINE_RESERVE);
        assert_eq!(reserve(b"ms a 5\r\nhello\r\n"), 10 + LINE_RESERVE);
        assert_eq!(reserve(b"mg a v\r\n"), 1000 + VALUE_OVERHEAD + LINE_RESERVE);
        assert_eq!(reserve(b"stats slabs\r\n"), STATS_RESERVE);
        assert_eq!(reserve(b"stats cachedump 1 0\r\n"), DUMP_RESERVE);
        assert_eq!(reserve(b"delete a\r\n"), LINE_RESERVE);
        // The keys before a key over 250 bytes are fetched by `mg` without a value.
        let bad = format!("gat 10 a b {}\r\n", "k".repeat(251));
        assert_eq!(reserve(bad.as_bytes()), 2 * MG_LINE_RESERVE + LINE_RESERVE);
    }

    /// Each read takes what memcached's would: the rest of a data block still arriving,
    /// whatever its size, and not past it (a 16 300-byte line after a 100-byte block that came
    /// in a later write was cut by a 16 KiB read and closed on; memcached answers it), else
    /// what its 16 KiB buffer has room for.
    #[test]
    fn reads_stop_where_memcached_reads_stop() {
        let limits = Limits::default();
        let size = |buf: &[u8], swallow| read_size(&BytesMut::from(buf), swallow, &limits);
        assert_eq!(size(b"set k 0 0 100\r\n", 0), 102);
        assert_eq!(size(b"set k 0 0 100\r\nabc", 0), 99);
        assert_eq!(size(b"set k 0 0 40000\r\n", 0), 40_002);
        assert_eq!(size(b"ms k 100 T0\r\n", 0), 102);
        assert_eq!(size(b"get k\r\nset k 0 0 100\r\n", 0), READ_BUFFER - 22);
        assert_eq!(size(b"", 0), READ_BUFFER);
        assert_eq!(size(b"version", 0), READ_BUFFER - 7);
        assert_eq!(size(b"", 5), 5);
        assert_eq!(size(b"", 1 << 20), READ_BUFFER);
    }
}
