//! Reply slots: one per client request, kept in request order by the connection. A slot waits
//! for its upstream replies ([`Slot::ready`], cancel-safe: results are stored in the slot as
//! they arrive) and is then turned into reply bytes ([`Slot::finish`], synchronous).
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc::error::TryRecvError;

use super::{group_of, values, Chunk, Ctx};
use crate::config::GetErrors;
use crate::metrics::ReplyOutcome;
use crate::protocol::{compose_response, compose_values, MetaCmd, Request, Response, Value};
use crate::route::{Route, RouteTable};
use crate::upstream::{Pending, StreamReceiver, UpstreamError, UpstreamResult};

/// What the connection does after a slot is finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Keep serving.
    Continue,
    /// Flush what was written, then close (quit).
    Close,
}

/// A pending upstream reply and, once it arrived, its result.
pub struct Part {
    pending: Pending<Response>,
    result: Option<UpstreamResult<Response>>,
}

impl Part {
    fn new(pending: Pending<Response>) -> Part {
        Part {
            pending,
            result: None,
        }
    }

    async fn ready(&mut self) {
        if self.result.is_none() {
            self.result = Some(self.pending.wait().await);
        }
    }

    fn poll(&mut self) -> bool {
        if self.result.is_none() {
            self.result = self.pending.try_take();
        }
        self.result.is_some()
    }

    fn take(&mut self) -> UpstreamResult<Response> {
        self.result.take().unwrap_or(Err(UpstreamError::Shutdown))
    }
}

/// A request forwarded to one server.
pub struct Call {
    req: Arc<Request>,
    route: Option<Arc<Route>>,
    table: Arc<RouteTable>,
    part: Part,
    started: Instant,
    flags_asked: super::FlagsAsked,
    chunk: Chunk,
}

/// A multi-get split over several servers.
pub struct Multi {
    req: Arc<Request>,
    table: Arc<RouteTable>,
    parts: Vec<((usize, usize), Part)>,
    started: Instant,
    chunk: Chunk,
}

/// flush_all sent to every server.
pub struct Flush {
    req: Arc<Request>,
    parts: Vec<Part>,
    started: Instant,
}

/// A reply streamed from a connection of its own (`lru_crawler metadump`, `watch`): written to
/// the client part by part as the parts arrive, the slot staying at the head until the end.
pub struct Streamed {
    req: Arc<Request>,
    rx: StreamReceiver,
    /// A log stream (`watch`): ends only when a side closes.
    endless: bool,
    /// The next item once received; `Some(None)` is the end of the stream.
    next: Option<Option<Result<Bytes, UpstreamError>>>,
    /// The reply's outcome, known from its first part.
    outcome: Option<ReplyOutcome>,
    started: Instant,
}

/// What [`Slot::write_streamed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streaming {
    /// Not a streamed slot: finish it with [`Slot::finish`].
    NotAStream,
    /// Wrote what had arrived; more is to come.
    More,
    /// The stream ended: the slot is done.
    Ended(Finished),
}

/// The reply to one client request, in request order.
pub enum Slot {
    /// A reply composed locally (possibly empty, for noreply).
    Local(Bytes),
    /// A local reply memcached sends only after swallowing `swallow` more client bytes (the
    /// data block of a rejected storage command).
    Held {
        /// The reply.
        reply: Bytes,
        /// Client bytes to discard first.
        swallow: usize,
    },
    /// `quit`: close once everything before it is written.
    Close,
    /// Upstream requests whose replies nobody sees (the unlink of a too-large set, the fetch
    /// of the keys before a bad one).
    Discard(Vec<Part>),
    /// One upstream request (not boxed: most slots are one, and a box is an allocation per
    /// request).
    Call(Call),
    /// A multi-get over several servers.
    Multi(Box<Multi>),
    /// flush_all to every server.
    Flush(Box<Flush>),
    /// A reply streamed part by part.
    Stream(Box<Streamed>),
}

impl Slot {
    pub(super) fn discard(pending: Pending<Response>) -> Slot {
        Slot::Discard(vec![Part::new(pending)])
    }

    /// Upstream calls whose replies are discarded.
    pub(super) fn discard_all(pending: Vec<Pending<Response>>) -> Slot {
        Slot::Discard(pending.into_iter().map(Part::new).collect())
    }

    pub(super) fn held(reply: Bytes, swallow: usize) -> Slot {
        Slot::Held { reply, swallow }
    }

    pub(super) fn call(
        req: Arc<Request>,
        route: Option<Arc<Route>>,
        table: Arc<RouteTable>,
        pending: Pending<Response>,
        started: Instant,
    ) -> Slot {
        Slot::Call(Call {
            req,
            route,
            table,
            part: Part::new(pending),
            started,
            flags_asked: super::FlagsAsked::No,
            chunk: Chunk::WHOLE,
        })
    }

    pub(super) fn multi(
        req: Arc<Request>,
        table: Arc<RouteTable>,
        parts: Vec<((usize, usize), Pending<Response>)>,
        started: Instant,
    ) -> Slot {
        Slot::Multi(Box::new(Multi {
            req,
            table,
            parts: parts.into_iter().map(|(g, p)| (g, Part::new(p))).collect(),
            started,
            chunk: Chunk::WHOLE,
        }))
    }

    /// Marks a retrieval's slot as a part of a split one ([`Chunk`]).
    pub(super) fn set_chunk(&mut self, chunk: Chunk) {
        match self {
            Slot::Call(c) => c.chunk = chunk,
            Slot::Multi(m) => m.chunk = chunk,
            _ => {}
        }
    }

    pub(super) fn flush(
        req: Arc<Request>,
        parts: Vec<Pending<Response>>,
        started: Instant,
    ) -> Slot {
        Slot::Flush(Box::new(Flush {
            req,
            parts: parts.into_iter().map(Part::new).collect(),
            started,
        }))
    }

    pub(super) fn stream(
        req: Arc<Request>,
        rx: StreamReceiver,
        endless: bool,
        started: Instant,
    ) -> Slot {
        Slot::Stream(Box::new(Streamed {
            req,
            rx,
            endless,
            next: None,
            outcome: None,
            started,
        }))
    }

    /// A dump on a connection of its own (a streamed listing, or a `stats` key dump): the
    /// client's later requests are not dispatched until it is finished, so memcached applies
    /// none of them before the dump is taken, as it would on the client's own connection.
    pub fn is_barrier(&self) -> bool {
        match self {
            Slot::Stream(_) => true,
            Slot::Call(c) => matches!(c.req.as_ref(), Request::Stats(s) if s.dumps_keys()),
            _ => false,
        }
    }

    /// A log stream (`watch`) whose `OK` came: from then on memcached reads the client's
    /// bytes only to notice when it goes away, and the stream ends with the connection.
    pub fn is_endless(&self) -> bool {
        matches!(self, Slot::Stream(s) if s.endless && s.outcome == Some(ReplyOutcome::Ok))
    }

    pub(super) fn set_flags_asked(&mut self, asked: super::FlagsAsked) {
        if let Slot::Call(c) = self {
            c.flags_asked = asked;
        }
    }

    /// Waits until every upstream reply of this slot is in. Cancel-safe.
    pub async fn ready(&mut self) {
        match self {
            Slot::Local(_) | Slot::Held { .. } | Slot::Close => {}
            Slot::Discard(parts) => {
                for p in parts {
                    p.ready().await;
                }
            }
            Slot::Call(c) => c.part.ready().await,
            Slot::Multi(m) => {
                for (_, p) in &mut m.parts {
                    p.ready().await;
                }
            }
            Slot::Flush(f) => {
                for p in &mut f.parts {
                    p.ready().await;
                }
            }
            // The next part, not the whole reply.
            Slot::Stream(s) => {
                if s.next.is_none() {
                    s.next = Some(s.rx.recv().await);
                }
            }
        }
    }

    /// Whether every upstream reply is in, without waiting.
    pub fn is_ready(&mut self) -> bool {
        match self {
            Slot::Local(_) | Slot::Held { .. } | Slot::Close => true,
            Slot::Discard(parts) => parts.iter_mut().all(Part::poll),
            Slot::Call(c) => c.part.poll(),
            Slot::Multi(m) => m.parts.iter_mut().all(|(_, p)| p.poll()),
            Slot::Flush(f) => f.parts.iter_mut().all(Part::poll),
            Slot::Stream(s) => {
                if s.next.is_none() {
                    s.next = match s.rx.try_recv() {
                        Ok(part) => Some(Some(part)),
                        Err(TryRecvError::Disconnected) => Some(None),
                        Err(TryRecvError::Empty) => None,
                    };
                }
                s.next.is_some()
            }
        }
    }

    /// For a streamed reply, writes the part that arrived into `out` (after
    /// [`Slot::is_ready`]): the slot stays at the head until its stream ended. A failure before
    /// any part was written is the client's `SERVER_ERROR` line; after, the client's connection
    /// is closed (a client reading the listing up to `END` would otherwise wait forever, or take
    /// the line as one of the listing's), as when memcached dies in the middle of it.
    pub fn write_streamed(&mut self, ctx: &Ctx, out: &mut BytesMut) -> Streaming {
        let Slot::Stream(s) = self else {
            return Streaming::NotAStream;
        };
        // A stream is counted, and its latency observed, at its first part: a log stream may
        // never end.
        let mut first = |outcome: ReplyOutcome| {
            if s.outcome.is_none() {
                s.outcome = Some(outcome);
                ctx.info.metrics.reply(outcome);
                ctx.info.metrics.observe_request(s.started.elapsed());
            }
        };
        match s.next.take() {
            None => Streaming::More,
            Some(Some(Ok(part))) => {
                first(first_part_outcome(&part));
                out.put_slice(&part);
                Streaming::More
            }
            Some(None) => {
                first(ReplyOutcome::Info);
                Streaming::Ended(Finished::Continue)
            }
            Some(Some(Err(e))) if s.outcome.is_none() => {
                s.outcome = Some(ReplyOutcome::UpstreamError);
                upstream_error(ctx, &s.req, e, out);
                ctx.info.metrics.observe_request(s.started.elapsed());
                Streaming::Ended(Finished::Continue)
            }
            Some(Some(Err(e))) => {
                tracing::debug!(error = %e, "streamed reply failed part-way; closing the client connection");
                Streaming::Ended(Finished::Close)
            }
        }
    }

    /// Writes the reply the client sees into `out`. Call after [`Slot::ready`].
    pub fn finish(self, ctx: &Ctx, out: &mut BytesMut) -> Finished {
        match self {
            Slot::Local(b) | Slot::Held { reply: b, .. } => out.put_slice(&b),
            Slot::Close => return Finished::Close,
            Slot::Discard(_) => {}
            Slot::Call(mut c) => {
                let result = c.part.take();
                let pool = c
                    .route
                    .as_ref()
                    .unwrap_or_else(|| c.table.default_route())
                    .pool
                    .0;
                if let Some(p) = ctx.shared.pool_metrics.get(pool) {
                    p.observe_upstream(c.started.elapsed());
                }
                part_begins(ctx, c.chunk);
                finish_call(ctx, &c, result, out);
                observe_request(ctx, c.started, c.chunk);
            }
            Slot::Multi(mut m) => {
                for ((pool, _), _) in &m.parts {
                    if let Some(p) = ctx.shared.pool_metrics.get(*pool) {
                        p.observe_upstream(m.started.elapsed());
                    }
                }
                part_begins(ctx, m.chunk);
                match merge(ctx, &mut m) {
                    Merged::Values(values) => {
                        finish_values(ctx, &m.req, &m.table, Ok(values), m.chunk, out);
                    }
                    Merged::Reply(line) => {
                        finish_values(ctx, &m.req, &m.table, Err(line), m.chunk, out);
                    }
                    Merged::Failed(e) => retrieval_failed(ctx, &m.req, e, m.chunk, out),
                }
                observe_request(ctx, m.started, m.chunk);
            }
            Slot::Flush(mut f) => {
                finish_flush(ctx, &mut f, out);
                ctx.info.metrics.observe_request(f.started.elapsed());
            }
            // Written by write_streamed; finished only when dropped at a close.
            Slot::Stream(_) => {}
        }
        Finished::Continue
    }
}

/// The outcome of a streamed reply from its first part: a listing (`key=` lines, or an empty
/// one, `END`) is information, a single line counts as its word says (`ERROR`, `BUSY`, ...).
fn first_part_outcome(part: &[u8]) -> ReplyOutcome {
    if part.starts_with(b"key=") || part.starts_with(b"END\r\n") {
        return ReplyOutcome::Info;
    }
    let line = part.strip_suffix(b"\r\n").unwrap_or(part);
    values::line_outcome(line, None)
}

/// Counts a reply the proxy makes of an upstream failure.
fn count_failure(ctx: &Ctx, e: UpstreamError) {
    ctx.info.metrics.reply(if e == UpstreamError::Timeout {
        ReplyOutcome::UpstreamTimeout
    } else {
        ReplyOutcome::UpstreamError
    });
}

fn upstream_error(ctx: &Ctx, req: &Request, e: UpstreamError, out: &mut BytesMut) {
    count_failure(ctx, e);
    if !req.noreply() && !matches!(req, Request::Admin(a) if a.noreply) {
        out.put_slice(e.reply_line());
    }
}

/// A retrieval whose servers all failed (counted as such already, not as misses): every key a
/// miss, or the error line, per the listener's `get_errors`. The proxy shutting down is said
/// as it is (the client is about to be disconnected; a miss would only make it recompute).
///
/// Of a split retrieval ([`Chunk`]), a part with parts after it writes nothing: its keys read
/// as misses, and the reply goes on (an error line would end it for the client). The last part
/// answers as above only when no server answered a part before it with values (hits or
/// misses: a part of misses writes nothing, yet whole it would have made the reply `END`);
/// else its keys are misses too, as for a server that failed in a multi-get (counted as such
/// when the reply ends: whole, a failed server's keys are misses only when another answered).
fn retrieval_failed(ctx: &Ctx, req: &Request, e: UpstreamError, chunk: Chunk, out: &mut BytesMut) {
    let answered = split_answered(ctx, chunk);
    part_failed(ctx, req, chunk);
    match ctx.info.get_errors {
        _ if chunk.more => {}
        _ if answered => end_as_misses(ctx, chunk, out),
        GetErrors::Miss if e != UpstreamError::Shutdown => compose_values(&[], true, out),
        _ => out.put_slice(e.reply_line()),
    }
}

fn finish_call(ctx: &Ctx, c: &Call, result: UpstreamResult<Response>, out: &mut BytesMut) {
    let resp = match result {
        Ok(resp) => resp,
        Err(e) if matches!(c.req.as_ref(), Request::Retrieval(_)) => {
            count_failure(ctx, e);
            return retrieval_failed(ctx, &c.req, e, c.chunk, out);
        }
        Err(e) => return upstream_error(ctx, &c.req, e, out),
    };
    match (resp, c.req.as_ref()) {
        (Response::Values(values), Request::Retrieval(_)) => {
            finish_values(ctx, &c.req, &c.table, Ok(values), c.chunk, out);
        }
        // A line of memcached's own (`SERVER_ERROR out of memory ...`).
        (resp, Request::Retrieval(_)) => {
            finish_values(ctx, &c.req, &c.table, Err(resp), c.chunk, out);
        }
        (Response::MetaValue { flags, data }, Request::Meta(m)) if m.cmd == MetaCmd::Get => {
            let route = c
                .route
                .clone()
                .unwrap_or_else(|| c.table.default_route().clone());
            match values::transcode_meta_fetch(ctx, &route, flags, data, c.flags_asked) {
                Some(resp) => {
                    ctx.info.metrics.reply(ReplyOutcome::Hit);
                    compose_response(&resp, out);
                }
                None => {
                    ctx.info.metrics.reply(ReplyOutcome::Miss);
                    if !m.quiet {
                        values::compose_meta_miss(m, out);
                    }
                }
            }
        }
        (resp, req) => {
            if let (Request::Version, Response::Line(line)) = (req, &resp) {
                ctx.shared.set_upstream_version(line);
            }
            ctx.info.metrics.reply(values::outcome(req, &resp));
            let admin_noreply = matches!(req, Request::Admin(a) if a.noreply);
            if req.client_sees(&resp) && !admin_noreply {
                compose_response(&resp, out);
            }
        }
    }
}

/// A split multi-get put back together.
enum Merged {
    /// The values in request order (a part that failed: its keys are misses).
    Values(Vec<Value>),
    /// No part answered with values, and one answered with a line of memcached's own: passed
    /// on as sent.
    Reply(Response),
    /// Every part failed upstream (already counted): answered per the listener's
    /// `get_errors`.
    Failed(UpstreamError),
}

/// Reassembles the values of a split multi-get in request order. A part that failed counts its
/// keys as misses, unless every part failed (see [`Merged`]).
fn merge(ctx: &Ctx, m: &mut Multi) -> Merged {
    let mut per_part: Vec<((usize, usize), VecDeque<Value>)> = Vec::new();
    let (mut line, mut failed) = (None, None);
    for (group, part) in &mut m.parts {
        match part.take() {
            Ok(Response::Values(v)) => per_part.push((*group, v.into())),
            Ok(other) => {
                line.get_or_insert(other);
            }
            Err(e) => {
                count_failure(ctx, e);
                failed.get_or_insert(e);
            }
        }
    }
    if per_part.is_empty() {
        return match (line, failed) {
            (Some(line), _) => Merged::Reply(line),
            (None, Some(e)) => Merged::Failed(e),
            (None, None) => Merged::Values(Vec::new()),
        };
    }
    let Request::Retrieval(r) = m.req.as_ref() else {
        return Merged::Values(Vec::new());
    };
    let mut merged = Vec::new();
    for key in &r.keys {
        let g = group_of(ctx, &m.table, key);
        // A server's keys may have gone in several runs (a long gat): its values come in
        // request order across them, so the first run with values left holds the next one.
        if let Some((_, q)) = per_part
            .iter_mut()
            .find(|(id, q)| *id == g && !q.is_empty())
        {
            if q.front().is_some_and(|v| v.key == *key) {
                merged.extend(q.pop_front());
            }
        }
    }
    Merged::Values(merged)
}

/// The values of a retrieval, `END` after them unless more parts of a split retrieval follow
/// ([`Chunk`]); `Err`: a line of memcached's own, passed on. A line ends a reply: within a split
/// retrieval, a part answered so with parts after it writes nothing, and the last part writes
/// `END` when a part before it had values; either way its keys read as misses (and count so)
/// when a server answers another part, as a failed server's keys do in a multi-get.
fn finish_values(
    ctx: &Ctx,
    req: &Request,
    table: &RouteTable,
    values: Result<Vec<Value>, Response>,
    chunk: Chunk,
    out: &mut BytesMut,
) {
    let mut values = match values {
        Ok(v) => v,
        Err(resp) => {
            ctx.info.metrics.reply(values::outcome(req, &resp));
            part_failed(ctx, req, chunk);
            if split_answered(ctx, chunk) {
                end_as_misses(ctx, chunk, out);
            } else if !chunk.more {
                compose_response(&resp, out);
            }
            return;
        }
    };
    ctx.split_answered.set(true);
    split_misses(ctx, chunk);
    values::transcode_fetch(ctx, table, &mut values);
    let keys = match req {
        Request::Retrieval(r) => r.keys.len(),
        _ => values.len(),
    };
    ctx.info
        .metrics
        .replies(ReplyOutcome::Hit, values.len() as u64);
    ctx.info
        .metrics
        .replies(ReplyOutcome::Miss, keys.saturating_sub(values.len()) as u64);
    compose_values(&values, !chunk.more, out);
}

/// The first part of a split retrieval (or a whole one) starts its record of whether a server
/// answered a part with values.
fn part_begins(ctx: &Ctx, chunk: Chunk) {
    if chunk.since.is_none() {
        ctx.split_answered.set(false);
        ctx.split_failed_keys.set(0);
    }
}

/// A part of a split retrieval got no values (its servers failed, or memcached answered it with
/// a line of its own): its keys read as misses if a server answers another part
/// ([`split_misses`]).
fn part_failed(ctx: &Ctx, req: &Request, chunk: Chunk) {
    if chunk.since.is_some() || chunk.more {
        let keys = match req {
            Request::Retrieval(r) => r.keys.len() as u64,
            _ => 0,
        };
        ctx.split_failed_keys
            .set(ctx.split_failed_keys.get().saturating_add(keys));
    }
}

/// At the last part of a split retrieval that a server answered with values, the keys of the
/// parts whose servers all failed are counted as misses, as a whole multi-get counts them.
fn split_misses(ctx: &Ctx, chunk: Chunk) {
    if !chunk.more && split_answered(ctx, chunk) {
        let n = ctx.split_failed_keys.replace(0);
        ctx.info.metrics.replies(ReplyOutcome::Miss, n);
    }
}

/// The last part of a split retrieval that a server answered before it, whose own keys read as
/// misses: the failed parts' keys counted ([`split_misses`]), then `END`. A part with parts
/// after it writes nothing.
fn end_as_misses(ctx: &Ctx, chunk: Chunk, out: &mut BytesMut) {
    if !chunk.more {
        split_misses(ctx, chunk);
        compose_values(&[], true, out);
    }
}

/// Whether `chunk` is a later part of a split retrieval that a server answered, in a part
/// before it, with values (hits or misses).
fn split_answered(ctx: &Ctx, chunk: Chunk) -> bool {
    chunk.since.is_some() && ctx.split_answered.get()
}

/// Observes a request's latency when its reply is complete: for a split retrieval, at its
/// last part, from its first.
fn observe_request(ctx: &Ctx, started: Instant, chunk: Chunk) {
    if !chunk.more {
        let since = chunk.since.unwrap_or(started);
        ctx.info.metrics.observe_request(since.elapsed());
    }
}

fn finish_flush(ctx: &Ctx, f: &mut Flush, out: &mut BytesMut) {
    let mut reply: Option<Response> = None;
    for part in &mut f.parts {
        let r = match part.take() {
            Ok(r) => r,
            Err(e) => Response::Line(Bytes::from_static(
                e.reply_line()
                    .strip_suffix(b"\r\n")
                    .unwrap_or(b"SERVER_ERROR"),
            )),
        };
        let ok = matches!(&r, Response::Line(l) if l.as_ref() == b"OK");
        if reply.is_none()
            || !ok && matches!(&reply, Some(Response::Line(l)) if l.as_ref() == b"OK")
        {
            reply = Some(r);
        }
    }
    let reply = reply.unwrap_or(Response::Line(Bytes::from_static(b"OK")));
    ctx.info.metrics.reply(values::outcome(&f.req, &reply));
    if f.req.client_sees(&reply) {
        compose_response(&reply, out);
    }
}
