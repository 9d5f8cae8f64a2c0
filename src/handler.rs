//! The per-request pipeline: `request -> route(key) -> upstream -> parse_response -> transcode
//! -> compose`, as a plain function chain (no framework). [`dispatch`] turns one parsed client
//! request into its reply [`Slots`] (one [`Slot`]: a local reply or upstream calls in flight; two
//! for a rejected request with a side effect upstream, such as an oversized store, which must
//! also unlink the key); the connection
//! ([`crate::connection`]) keeps slots in request order and [`Slot::finish`]es each into reply
//! bytes once its upstream replies are in. Value transcoding lives in [`values`].
//!
//! Forwarded requests never carry `noreply` or meta `q` (the composer strips them), so every
//! forwarded request gets exactly one reply, which is dropped for the client when it asked for
//! none ([`Request::client_sees`]).
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::metrics::{Command, ReplyOutcome, RequestCounters, NO_ROUTE};
use crate::protocol::{
    compose_request, compose_request_parts, metadump_cut, parse_response_buf, watch_cut, Meta,
    MetaCmd, Request, Response, Retrieval, RetrievalCmd, MAX_UPSTREAM_LINE,
};
use crate::route::{Route, RouteTable};
use crate::server::{ListenerInfo, Shared};
use crate::upstream::{self, Pending, UpstreamError};

mod slot;
pub mod values;

pub use slot::{Finished, Slot, Streaming};

/// The reply slots of one request, in order: almost always one; two for a rejected request
/// with a side effect upstream (its reply discarded), which goes before the reply.
pub enum Slots {
    One(Slot),
    Two(Slot, Slot),
}

impl IntoIterator for Slots {
    type Item = Slot;
    type IntoIter = std::iter::Chain<std::iter::Once<Slot>, std::option::IntoIter<Slot>>;

    fn into_iter(self) -> Self::IntoIter {
        let (first, second) = match self {
            Slots::One(a) => (a, None),
            Slots::Two(a, b) => (a, Some(b)),
        };
        std::iter::once(first).chain(second)
    }
}

/// The proxy's upstream exchange: a request and the framing of its reply.
pub struct Exchange {
    req: Arc<Request>,
}

impl upstream::Exchange for Exchange {
    type Reply = Response;
    fn parse_reply(&self, buf: &mut BytesMut) -> Result<Option<Response>, ()> {
        match parse_response_buf(&self.req, buf) {
            Ok(Some(Response::Line(line))) if !plausible_line(&self.req, &line) => Err(()),
            Ok(r) => Ok(r),
            Err(_) => Err(()),
        }
    }
}

/// Whether a one-line reply can come from memcached for `req`: anything else means the upstream
/// stream is out of step (or not memcached), and the connection is dropped rather than a
/// stray line being handed to a client as its reply.
fn plausible_line(req: &Request, line: &[u8]) -> bool {
    let word = line.split(|&b| b == b' ').next().unwrap_or_default();
    if matches!(word, b"ERROR" | b"CLIENT_ERROR" | b"SERVER_ERROR") {
        return true;
    }
    let number = !word.is_empty() && word.iter().all(u8::is_ascii_digit);
    match req {
        Request::Retrieval(_) => false,
        Request::Storage(_) => matches!(word, b"STORED" | b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND"),
        Request::Delete(_) => matches!(word, b"DELETED" | b"NOT_FOUND"),
        Request::Arith(_) => number || word == b"NOT_FOUND",
        Request::Touch(_) => matches!(word, b"TOUCHED" | b"NOT_FOUND"),
        Request::FlushAll(_) => word == b"OK",
        Request::Version => word == b"VERSION",
        Request::Meta(m) => match m.cmd {
            MetaCmd::Debug => matches!(word, b"ME" | b"EN"),
            _ => word.len() == 2 && word.iter().all(u8::is_ascii_uppercase),
        },
        // Admin and stats-with-arguments replies vary by command and version.
        _ => true,
    }
}

/// Per-connection state the pipeline needs.
pub struct Ctx {
    /// Shared proxy state.
    pub shared: Arc<Shared>,
    /// The listener the client came in on.
    pub info: ListenerInfo,
    /// Picks this client's upstream connection (keeps its requests to one server in order).
    pub client_id: u64,
    /// Request counters per route name, created on first use.
    counters: Vec<(String, RequestCounters)>,
    /// Where upstream requests are composed.
    wire: Wire,
    /// Requests of this client dispatched since memcached would last have written its queued
    /// replies (set by the connection before each dispatch): memcached's "response stack",
    /// which `watch` and `lru_crawler metadump` refuse to run behind.
    pub replies_pending: bool,
    /// Where the request being dispatched stands in a retrieval the connection split (set by
    /// the connection before each dispatch; [`Chunk::WHOLE`] for every other request).
    pub chunk: Chunk,
    /// Whether a server answered a part of the split retrieval being answered with values
    /// (hits or misses) yet.
    pub(crate) split_answered: std::cell::Cell<bool>,
    /// The keys of the parts of that split retrieval that got no values: their servers all
    /// failed, or memcached answered with a line of its own (see `slot::part_failed`).
    pub(crate) split_failed_keys: std::cell::Cell<u64>,
}

/// A part of a get/gets/gat/gats that the connection split so that one request cannot make
/// it hold more than its byte budget (`max_pending_bytes`): each part is sent when the replies
/// before it have made room, and the client sees one reply, `END` after the last part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// When the first part was dispatched, for a later part (counted with the first, its
    /// latency observed from then); `None` for the first part or a whole request.
    pub since: Option<Instant>,
    /// Parts follow: no `END`, and a part that fails reads as misses (the reply goes on).
    pub more: bool,
}

impl Chunk {
    /// A request that was not split.
    pub const WHOLE: Chunk = Chunk {
        since: None,
        more: false,
    };
}

/// Upstream requests are composed into a chunk and split off it: one allocation per chunk, not
/// per request. A large stored value is not copied into it ([`compose_request_parts`]).
#[derive(Default)]
struct Wire {
    buf: BytesMut,
}

/// The chunk [`Ctx::wire`] grows by: ~30 pipelined gets per allocation, and at most 1 KiB held
/// by an idle connection.
const WIRE_CHUNK: usize = 1024;

impl Wire {
    /// `req` as its upstream request bytes.
    fn compose(&mut self, req: &Request) -> Bytes {
        self.compose_with(req, |req, buf| {
            compose_request(req, buf);
            None
        })
        .0
    }

    /// `req` as its upstream request line and, apart, a large data block
    /// ([`compose_request_parts`]: the value is not copied here).
    fn compose_parts(&mut self, req: &Request) -> (Bytes, Option<Bytes>) {
        self.compose_with(req, compose_request_parts)
    }

    fn compose_with(
        &mut self,
        req: &Request,
        compose: impl FnOnce(&Request, &mut BytesMut) -> Option<Bytes>,
    ) -> (Bytes, Option<Bytes>) {
        if self.buf.capacity() == 0 {
            self.buf = BytesMut::with_capacity(WIRE_CHUNK);
        }
        let body = compose(req, &mut self.buf);
        let wire = self.buf.split().freeze();
        if wire.len() > WIRE_CHUNK {
            // It got a buffer of its own: what is left of that is not kept (an idle connection
            // would pin a large value's buffer with it).
            self.buf = BytesMut::new();
        }
        (wire, body)
    }
}

impl Ctx {
    /// Context for a new client connection.
    pub fn new(shared: Arc<Shared>, info: ListenerInfo) -> Ctx {
        let client_id = shared.client_id();
        Ctx {
            shared,
            info,
            client_id,
            counters: Vec::new(),
            wire: Wire::default(),
            replies_pending: false,
            chunk: Chunk::WHOLE,
            split_answered: std::cell::Cell::new(false),
            split_failed_keys: std::cell::Cell::new(0),
        }
    }

    fn count(&mut self, route: &str, command: Command) {
        let i = match self.counters.iter().position(|(r, _)| r == route) {
            Some(i) => i,
            None => {
                self.counters
                    .push((route.to_string(), self.info.metrics.requests(route)));
                self.counters.len() - 1
            }
        };
        self.counters[i].1.inc(command);
    }
}

/// The metrics `command` label of a request.
pub fn command_label(req: &Request) -> Command {
    use crate::protocol::{ArithCmd, RetrievalCmd, StorageCmd};
    match req {
        Request::Retrieval(r) => match r.cmd {
            RetrievalCmd::Get => Command::Get,
            RetrievalCmd::Gets => Command::Gets,
            RetrievalCmd::Gat => Command::Gat,
            RetrievalCmd::Gats => Command::Gats,
        },
        Request::Storage(s) => match s.cmd {
            StorageCmd::Set => Command::Set,
            StorageCmd::Add => Command::Add,
            StorageCmd::Replace => Command::Replace,
            StorageCmd::Append => Command::Append,
            StorageCmd::Prepend => Command::Prepend,
            StorageCmd::Cas => Command::Cas,
        },
        Request::Delete(_) => Command::Delete,
        Request::Arith(a) => match a.cmd {
            ArithCmd::Incr => Command::Incr,
            ArithCmd::Decr => Command::Decr,
        },
        Request::Touch(_) => Command::Touch,
        Request::FlushAll(_) => Command::FlushAll,
        Request::Version => Command::Version,
        Request::Verbosity(_) => Command::Verbosity,
        Request::Quit => Command::Quit,
        Request::Stats(_) => Command::Stats,
        Request::Meta(m) => match m.cmd {
            MetaCmd::Get => Command::MetaGet,
            MetaCmd::Set => Command::MetaSet,
            MetaCmd::Delete => Command::MetaDelete,
            MetaCmd::Arith => Command::MetaArithmetic,
            MetaCmd::Debug => Command::MetaDebug,
        },
        Request::MetaNoop => Command::MetaNoop,
        Request::Admin(_) => Command::Other,
        Request::Reject(_) => Command::Invalid,
    }
}

/// The key a request is routed by (meta keys base64-decoded when flagged `b`).
fn routing_key(req: &Request) -> Option<Bytes> {
    match req {
        Request::Meta(m) => Some(m.decoded_key().unwrap_or_else(|| m.key.clone())),
        Request::Retrieval(r) => r.keys.first().cloned(),
        other => other.key().cloned(),
    }
}

/// Sends `req` to the server holding `key` in the route's pool.
async fn call(ctx: &mut Ctx, route: &Route, key: &[u8], req: Arc<Request>) -> Pending<Response> {
    let server = server_of(ctx, route, key);
    send(ctx, server, req).await
}

/// Sends `req` to server `(pool, server)`.
async fn send(
    ctx: &mut Ctx,
    (pool, server): (usize, usize),
    req: Arc<Request>,
) -> Pending<Response> {
    let (wire, body) = ctx.wire.compose_parts(&req);
    let server = &ctx.shared.upstreams.pool(pool).servers()[server];
    server
        .send_parts(ctx.client_id, wire, body, Exchange { req })
        .await
}

/// Turns one parsed client request into its reply slot, sending upstream what must be sent.
/// Storage values are transcoded here (store policy) before they are forwarded.
pub async fn dispatch(ctx: &mut Ctx, req: Request) -> Slots {
    let table: Arc<RouteTable> = ctx.shared.routes.borrow().clone();
    let command = command_label(&req);
    let key = routing_key(&req);
    let route = key.as_ref().map(|k| table.route(k).clone());
    let chunk = std::mem::replace(&mut ctx.chunk, Chunk::WHOLE);
    if chunk.since.is_none() {
        ctx.count(
            route.as_ref().map_or(NO_ROUTE, |r| r.name.as_str()),
            command,
        );
    }
    let started = Instant::now();
    match req {
        Request::Reject(reject) => {
            let mut out = BytesMut::new();
            reject.write_reply(&mut out);
            if let Some(line) = reject.reply {
                ctx.info
                    .metrics
                    .reply(values::line_outcome(line.as_bytes(), None));
            }
            let reply = Slot::held(out.freeze(), reject.swallow);
            match reject.side_effect.clone().map(|b| *b) {
                // memcached has fetched (gat/gats: touched) the keys before a bad one: the same
                // fetch (touch) as `mg <key>` (`mg <key> T<exptime>`) per distinct key, whose
                // replies hold no value (a `get` of them pulled every value nobody reads).
                Some(Request::Retrieval(r)) => {
                    let mut seen = std::collections::HashSet::new();
                    let mut parts = Vec::new();
                    let touch = r.exptime.map(|e| Bytes::from(format!("T{e}")));
                    for key in r.keys {
                        if !seen.insert(key.clone()) {
                            continue;
                        }
                        let mg = Arc::new(Request::Meta(Meta {
                            cmd: MetaCmd::Get,
                            key: key.clone(),
                            flags: touch.iter().cloned().collect(),
                            quiet: false,
                            fenced: false,
                            data: None,
                        }));
                        let route = table.route(&key).clone();
                        parts.push(call(ctx, &route, &key, mg).await);
                    }
                    Slots::Two(Slot::discard_all(parts), reply)
                }
                // memcached drops the old item of a too-large set/ms: so must we.
                Some(unlink) => {
                    let unlink = Arc::new(unlink);
                    let k = routing_key(&unlink).unwrap_or_default();
                    let r = table.route(&k).clone();
                    Slots::Two(Slot::discard(call(ctx, &r, &k, unlink).await), reply)
                }
                None => Slots::One(reply),
            }
        }
        Request::Quit => Slots::One(Slot::Close),
        Request::MetaNoop => local(ctx, ReplyOutcome::Ok, "MN\r\n", false),
        // Only changes memcached's logging; answered here as memcached answers it.
        Request::Verbosity(v) => local(ctx, ReplyOutcome::Ok, "OK\r\n", v.noreply),
        Request::Stats(s) if s.args.is_empty() => {
            let mut out = BytesMut::new();
            let version = ctx.shared.upstream_version();
            crate::metrics::stats::render_stats(&ctx.shared.metrics, &version, &mut out);
            ctx.info.metrics.reply(ReplyOutcome::Info);
            Slots::One(Slot::Local(out.freeze()))
        }
        Request::FlushAll(f) if !ctx.shared.config.commands.flush_all => local(
            ctx,
            ReplyOutcome::ServerError,
            "SERVER_ERROR flush_all disabled by configuration\r\n",
            f.noreply,
        ),
        Request::FlushAll(f) => {
            let req = Arc::new(Request::FlushAll(f));
            let mut parts = Vec::new();
            let shared = ctx.shared.clone();
            for (p, pool) in shared.upstreams.pools().iter().enumerate() {
                for s in 0..pool.servers().len() {
                    parts.push(send(ctx, (p, s), req.clone()).await);
                }
            }
            Slots::One(Slot::flush(req, parts, started))
        }
        // A key dump lists stored keys raw: one stored through the binary protocol may hold CR
        // LF and `END`, so the reply's end is not certain. It goes on a connection of its own,
        // closed after it: a crafted key can confuse only this reply, as from memcached.
        Request::Stats(s) if s.dumps_keys() => {
            let req = Arc::new(Request::Stats(s));
            let wire = ctx.wire.compose(&req);
            let server = keyless_server(ctx, &table);
            let pending = server.send_alone(wire, Exchange { req: req.clone() });
            Slots::One(Slot::call(req, None, table, pending, started))
        }
        // The listing of every item: streamed from a connection of its own as it comes.
        // memcached 1.6.18 runs neither behind replies it has yet to send (commands earlier in
        // the same read).
        Request::Admin(a) if a.streams && ctx.replies_pending => local(
            ctx,
            ReplyOutcome::Error,
            match a.lists_items() {
                true => "ERROR cannot pipeline other commands before metadump\r\n",
                false => "ERROR cannot pipeline other commands before watch\r\n",
            },
            a.noreply,
        ),
        // memcached reads `noreply` as an unknown event: `ERROR`, hidden, and no watch.
        Request::Admin(a) if a.streams && a.noreply => local(ctx, ReplyOutcome::Error, "", true),
        // The listing of every item, or a log stream: streamed from a connection of its own as
        // it comes.
        Request::Admin(a) if a.streams => {
            let lists_items = a.lists_items();
            let req = Arc::new(Request::Admin(a));
            let wire = ctx.wire.compose(&req);
            let server = keyless_server(ctx, &table);
            let cut = match lists_items {
                true => metadump_cut,
                false => watch_cut,
            };
            let rx = server.stream_alone(
                wire,
                move |buf, first| cut(buf, first).map(|c| (c.len, c.ends)).map_err(drop),
                !lists_items,
            );
            Slots::One(Slot::stream(req, rx, !lists_items, started))
        }
        Request::Version | Request::Stats(_) | Request::Admin(_) => {
            if let Request::Stats(s) = &req {
                if s.resets() {
                    // The proxy's own `stats` counters restart too (memcached's are reset by
                    // the forwarded request).
                    crate::metrics::stats::reset_stats(&ctx.shared.metrics);
                }
            }
            // Keyless: the default route's server for the empty key.
            let route = table.default_route().clone();
            let req = Arc::new(req);
            let pending = call(ctx, &route, b"", req.clone()).await;
            Slots::One(Slot::call(req, None, table, pending, started))
        }
        Request::Retrieval(r) => {
            let route = route.unwrap_or_else(|| table.default_route().clone());
            let mut slot = retrieval(ctx, r, route, table, started).await;
            slot.set_chunk(chunk);
            Slots::One(slot)
        }
        Request::Meta(m) if m.cmd == MetaCmd::Get => {
            let (fwd, injected) = inject_flags_flag(&m);
            let (route, key) = (
                route.unwrap_or_else(|| table.default_route().clone()),
                key.unwrap_or_default(),
            );
            let client_req = Arc::new(Request::Meta(m));
            let pending = match fwd {
                Some(fwd) => call(ctx, &route, &key, Arc::new(Request::Meta(fwd))).await,
                None => call(ctx, &route, &key, client_req.clone()).await,
            };
            let mut slot = Slot::call(client_req, Some(route), table, pending, started);
            slot.set_flags_asked(injected);
            Slots::One(slot)
        }
        req => {
            let route = route.unwrap_or_else(|| table.default_route().clone());
            let key = key.unwrap_or_default();
            let req = values::transcode_store(req, &route, &ctx.shared);
            let req = Arc::new(req);
            let pending = call(ctx, &route, &key, req.clone()).await;
            Slots::One(Slot::call(req, Some(route), table, pending, started))
        }
    }
}

/// For `mg ... v` without `f`: the forwarded request asks for the client flags too (the proxy
/// needs them to know a value is pickled); the reply's `f` token is removed again. At
/// memcached's limit of tokens one more flag would be an error memcached does not give: the
/// request goes as it came, and its value is served as memcached returns it
/// ([`FlagsAsked::Unknowable`]).
fn inject_flags_flag(m: &Meta) -> (Option<Meta>, FlagsAsked) {
    let has = |c: u8| m.flags.iter().any(|f| f.first() == Some(&c));
    if !has(b'v') || has(b'f') {
        return (None, FlagsAsked::No);
    }
    // `mg <key> <flags> f`: memcached takes at most MAX_META_TOKENS tokens, counting its
    // terminal one.
    if 2 + m.flags.len() + 1 + 1 > crate::protocol::MAX_META_TOKENS {
        return (None, FlagsAsked::Unknowable);
    }
    let mut fwd = m.clone();
    fwd.flags.push(Bytes::from_static(b"f"));
    (Some(fwd), FlagsAsked::Injected)
}

/// Whether the proxy asked memcached for an `mg`'s client flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagsAsked {
    /// The client asked for them, or no value was asked for.
    No,
    /// The proxy added `f`: its token is removed from the reply.
    Injected,
    /// Not possible (see [`inject_flags_flag`]): the value is served as memcached returns it,
    /// checked only by the firewall.
    Unknowable,
}

/// A reply the proxy writes itself, counted like memcached's (`noreply`: counted, not sent).
fn local(ctx: &Ctx, outcome: ReplyOutcome, reply: &'static str, noreply: bool) -> Slots {
    ctx.info.metrics.reply(outcome);
    let reply = if noreply { "" } else { reply };
    Slots::One(Slot::Local(Bytes::from_static(reply.as_bytes())))
}

/// Whether `r` is a gat/gats whose request line is longer than [`MAX_UPSTREAM_LINE`].
fn long_gat(r: &Retrieval) -> bool {
    matches!(r.cmd, RetrievalCmd::Gat | RetrievalCmd::Gats)
        && GAT_HEAD + r.keys.iter().map(|k| 1 + k.len()).sum::<usize>() > MAX_UPSTREAM_LINE
}

/// The most bytes of a gat/gats line besides its keys: `gats <exptime>` and CRLF.
const GAT_HEAD: usize = "gats -2147483648\r\n".len();

/// The keys of one gat/gats request cut into runs whose request line fits
/// [`MAX_UPSTREAM_LINE`] (one key a run at least).
fn gat_runs(keys: Vec<Bytes>) -> Vec<Vec<Bytes>> {
    let mut runs: Vec<Vec<Bytes>> = Vec::new();
    let mut len = 0;
    for key in keys {
        let add = 1 + key.len();
        match runs.last_mut() {
            Some(run) if len + add <= MAX_UPSTREAM_LINE => {
                run.push(key);
                len += add;
            }
            _ => {
                runs.push(vec![key]);
                len = GAT_HEAD + add;
            }
        }
    }
    runs
}

/// get/gets/gat/gats: keys grouped by (pool, server), one upstream request per group (per run
/// of a gat/gats, [`gat_runs`]), the replies reassembled in request order. `route` is
/// the first key's.
async fn retrieval(
    ctx: &mut Ctx,
    r: Retrieval,
    route: Arc<Route>,
    table: Arc<RouteTable>,
    started: Instant,
) -> Slot {
    let first = r
        .keys
        .first()
        .map_or((route.pool.0, 0), |k| server_of(ctx, &route, k));
    // Grouped only from the first key on another server: the usual get (one key, or one
    // server behind the routes) builds nothing, and each key's server is found once.
    let mut groups: Vec<((usize, usize), Vec<Bytes>)> = Vec::new();
    for (i, key) in r.keys.iter().enumerate().skip(1) {
        let g = group_of(ctx, &table, key);
        if groups.is_empty() {
            if g == first {
                continue;
            }
            groups.push((first, r.keys[..i].to_vec()));
        }
        match groups.iter_mut().find(|(id, _)| *id == g) {
            Some((_, keys)) => keys.push(key.clone()),
            None => groups.push((g, vec![key.clone()])),
        }
    }
    if groups.is_empty() {
        if !long_gat(&r) {
            let client_req = Arc::new(Request::Retrieval(r));
            let pending = send(ctx, first, client_req.clone()).await;
            return Slot::call(client_req, Some(route), table, pending, started);
        }
        groups.push((first, r.keys.clone()));
    }
    let client_req = Arc::new(Request::Retrieval(r));
    let Request::Retrieval(orig) = client_req.as_ref() else {
        // Built just above from a Retrieval.
        return Slot::Local(Bytes::from_static(UpstreamError::Protocol.reply_line()));
    };
    let gat = matches!(orig.cmd, RetrievalCmd::Gat | RetrievalCmd::Gats);
    let mut parts = Vec::with_capacity(groups.len());
    let sub = |keys| {
        Arc::new(Request::Retrieval(Retrieval {
            cmd: orig.cmd,
            exptime: orig.exptime,
            keys,
        }))
    };
    for (g, keys) in groups {
        if gat {
            for keys in gat_runs(keys) {
                parts.push((g, send(ctx, g, sub(keys)).await));
            }
        } else {
            parts.push((g, send(ctx, g, sub(keys)).await));
        }
    }
    Slot::multi(client_req, table, parts, started)
}

/// The (pool, server) holding `key`.
pub(crate) fn group_of(ctx: &Ctx, table: &RouteTable, key: &[u8]) -> (usize, usize) {
    server_of(ctx, table.route(key), key)
}

/// The (pool, server) holding `key` in `route`'s pool.
/// The server keyless commands go to: the default route's server for the empty key.
fn keyless_server<'a>(ctx: &'a Ctx, table: &RouteTable) -> &'a upstream::Server<Exchange> {
    let (pool, server) = server_of(ctx, table.default_route(), b"");
    &ctx.shared.upstreams.pool(pool).servers()[server]
}

fn server_of(ctx: &Ctx, route: &Route, key: &[u8]) -> (usize, usize) {
    let pool = route.pool.0;
    (pool, ctx.shared.upstreams.pool(pool).server_index(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::{request_of as req, DATA_APART};

    #[test]
    fn plausible_reply_lines_per_request() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"get a\r\n", b"HELLO", false),
            (b"get a\r\n", b"SERVER_ERROR out of memory", true),
            (b"set a 0 0 1\r\nx\r\n", b"STORED", true),
            (b"set a 0 0 1\r\nx\r\n", b"DELETED", false),
            (b"delete a\r\n", b"NOT_FOUND", true),
            (b"incr a 1\r\n", b"42", true),
            (b"incr a 1\r\n", b"STORED", false),
            (b"touch a 1\r\n", b"TOUCHED", true),
            (b"flush_all\r\n", b"OK", true),
            (b"version\r\n", b"VERSION 1.6.18", true),
            (b"version\r\n", b"OK", false),
            (b"md a\r\n", b"HD", true),
            (b"md a\r\n", b"hello", false),
            (b"me a\r\n", b"ME a exp=-1", true),
        ];
        for (request, line, want) in cases {
            assert_eq!(
                plausible_line(&req(request), line),
                *want,
                "{} -> {}",
                request.escape_ascii(),
                line.escape_ascii()
            );
        }
    }

    #[test]
    fn mg_with_v_asks_for_flags_once() {
        let Request::Meta(m) = req(b"mg k v t\r\n") else {
            panic!()
        };
        let (fwd, asked) = inject_flags_flag(&m);
        assert_eq!(asked, FlagsAsked::Injected);
        assert_eq!(fwd.unwrap().flags.last().unwrap().as_ref(), b"f");
        let Request::Meta(m) = req(b"mg k v f t\r\n") else {
            panic!()
        };
        assert_eq!(inject_flags_flag(&m), (None, FlagsAsked::No));
        let Request::Meta(m) = req(b"mg k t\r\n") else {
            panic!()
        };
        assert_eq!(inject_flags_flag(&m), (None, FlagsAsked::No));
        // 16 flags: room for f; 17 (memcached's limit): none, the request goes as it came.
        let Request::Meta(m) = req(b"mg k v s t c k O1 h l u N30 T30 R30 P L I C1 D1\r\n") else {
            panic!()
        };
        assert_eq!(m.flags.len(), 17);
        assert_eq!(inject_flags_flag(&m), (None, FlagsAsked::Unknowable));
        let Request::Meta(m) = req(b"mg k v s t c k O1 h l u N30 T30 R30 P L I C1\r\n") else {
            panic!()
        };
        assert_eq!(inject_flags_flag(&m).1, FlagsAsked::Injected);
    }

    #[test]
    fn requests_share_a_wire_chunk_but_never_pin_a_large_one() {
        let mut wire = Wire::default();
        let a = wire.compose(&req(b"get a\r\n"));
        let b = wire.compose(&req(b"gets b c\r\n"));
        assert_eq!((&a[..], &b[..]), (&b"get a\r\n"[..], &b"gets b c\r\n"[..]));
        // Both came out of one chunk, whose rest is kept for the next request.
        assert_eq!(b.as_ptr(), a[a.len()..].as_ptr());
        assert!(wire.buf.capacity() > 0 && wire.buf.capacity() <= WIRE_CHUNK);
        let mut set = b"set k 0 0 5000\r\n".to_vec();
        set.extend([b'x'; 5000]);
        set.extend(b"\r\n");
        assert_eq!(&wire.compose(&req(&set))[..], &set[..]);
        assert_eq!(
            wire.buf.capacity(),
            0,
            "the large request's buffer stays pinned"
        );
        let c = wire.compose(&req(b"get a\r\n"));
        assert_eq!(&c[..], b"get a\r\n");
        assert!(wire.buf.capacity() <= WIRE_CHUNK);
    }

    /// A stored value past DATA_APART bytes goes upstream as the client's own bytes, after a
    /// line composed alone: composed whole, it was copied into the wire, then again into the
    /// upstream queue. What goes upstream is the same either way.
    #[test]
    fn large_values_are_not_copied_into_the_wire() {
        let mut wire = Wire::default();
        let value = [b'x'; DATA_APART + 1];
        let mut set = b"set k 1 0 1025\r\n".to_vec();
        set.extend(value);
        set.extend(b"\r\n");
        let mut ms = b"ms k 1025 T0 F1\r\n".to_vec();
        ms.extend(value);
        ms.extend(b"\r\n");
        for input in [&set, &ms] {
            let r = req(input);
            let data = match &r {
                Request::Storage(s) => s.data.clone(),
                Request::Meta(m) => m.data.clone().unwrap(),
                _ => unreachable!(),
            };
            let (line, body) = wire.compose_parts(&r);
            let body = body.expect("the value apart");
            assert_eq!(body.as_ptr(), data.as_ptr(), "the value was copied");
            assert!(line.len() < 32, "{}", line.escape_ascii());
            let mut whole = BytesMut::new();
            compose_request(&r, &mut whole);
            assert_eq!([&line[..], &body[..], b"\r\n"].concat(), &whole[..]);
        }
        // A small value is composed whole, in the shared chunk.
        let (line, body) = wire.compose_parts(&req(b"set k 0 0 5\r\nhello\r\n"));
        assert_eq!((&line[..], body), (&b"set k 0 0 5\r\nhello\r\n"[..], None));
    }

    #[test]
    fn command_labels_and_routing_keys() {
        assert_eq!(command_label(&req(b"gats 1 a b\r\n")), Command::Gats);
        assert_eq!(command_label(&req(b"bogus\r\n")), Command::Invalid);
        assert_eq!(command_label(&req(b"ms k 1\r\nx\r\n")), Command::MetaSet);
        assert_eq!(routing_key(&req(b"get a b\r\n")).unwrap(), "a");
        assert_eq!(routing_key(&req(b"mg a2V5 b v\r\n")).unwrap(), "key");
        assert_eq!(routing_key(&req(b"version\r\n")), None);
    }
}
