//! Memcache text and meta protocol codec, byte-exact with memcached 1.6.18 (sans-IO).
//!
//! This module owns framing, parsing and composing of requests and replies. It never imports
//! tokio and never does I/O: callers hand it buffers and get back values plus bytes consumed.
//!
//! - [`parse_request`] / [`parse_request_arena`] (the connection's; [`parse_request_buf`] splits
//!   every request off the buffer, kept for tests): client bytes to a [`Request`]. Requests
//!   memcached answers with an error but survives are values ([`Request::Reject`]); only
//!   conditions after which memcached closes the connection are `Err(`[`ProtocolError`]`)`.
//! - [`compose_request`]: a request for the upstream, with `noreply` and meta `q` removed so that
//!   every forwarded request gets exactly one reply (see [`Request::client_sees`]).
//! - [`parse_response`] / [`compose_response`]: upstream replies, framed by the request.
//!
//! Every rule here was checked against the real memcached 1.6.18 (`tests/protocol_conformance.rs`
//! replays the table); comments quote `proto_text.c` where behaviour is surprising.

pub mod command;
pub mod error;
mod response;
mod token;

/// A number in decimal, without a `String` (for flags and lengths written on the request path).
pub(crate) use token::put_u64;
/// memcached's reading of a client flags number (`safe_strtoflags`: 64-bit, then 32 bits kept).
pub(crate) use token::strtoul as client_flags;

use bytes::{Bytes, BytesMut};

pub use command::arith::{Arith, ArithCmd};
pub use command::delete::Delete;
pub use command::meta::{Meta, MetaCmd, MAX_META_TOKENS};
pub use command::misc::{Admin, FlushAll, Stats, Verbosity};
pub use command::retrieval::{Retrieval, RetrievalCmd};
pub use command::storage::{Storage, StorageCmd};
pub use command::touch::Touch;
pub use error::{ProtocolError, Reject};
pub use response::{
    compose_response, compose_values, metadump_cut, parse_response, parse_response_buf, watch_cut,
    Response, StreamCut, Value,
};

use error::ERROR;
use token::Line;

/// Result of a parse attempt: a complete value and the bytes it used, or "need more bytes".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A complete value was parsed from the first `consumed` bytes.
    Complete {
        /// The parsed value.
        value: T,
        /// Bytes of the input it spans.
        consumed: usize,
    },
    /// The input is a valid prefix; read more bytes and retry with the whole buffer.
    Incomplete,
}

/// Parser limits (memcached's compiled-in and default settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `KEY_MAX_LENGTH`: longer keys get `CLIENT_ERROR bad command line format`.
    pub max_key_len: usize,
    /// memcached's item size limit (`-I`, default 1 MiB), which an item's header, key, client
    /// flags and CAS count against besides its data (`item_too_large`). A storage request
    /// whose item would not fit is answered `SERVER_ERROR object too large for cache` and its
    /// data swallowed, as memcached decides from the command line, before it reads the data.
    pub item_size: usize,
    /// Most keys accepted in one get/gets/gat/gats (memcached has no limit; a proxy needs one).
    pub max_keys_per_get: usize,
    /// A line not terminated within this many bytes closes the connection (memcached: 2048),
    /// except a line starting with `get `/`gets ` (a large multi-get).
    pub max_line_len: usize,
    /// memcached's read buffer (16 KiB): a non-get line longer than it with its newline (the
    /// newline at offset 16 384 or later) closes the connection; a multi-get line may grow up
    /// to `max_get_line_len`.
    pub read_buffer_len: usize,
    /// Longest multi-get line accepted before closing the connection.
    pub max_get_line_len: usize,
}

/// `sizeof(item)` of memcached 1.6.18 on 64-bit builds.
const ITEM_HEADER: usize = 48;
/// The CAS memcached keeps in every item unless started with `-C`.
const ITEM_CAS: usize = 8;

/// memcached's `item_size_ok`: whether an item for a key of `nkey` bytes, `flags` and a data
/// block of `vlen` bytes is larger than `limits.item_size`. The item holds its header, the
/// key and a NUL, the client flags (4 bytes, none when 0), the data with its CRLF and the CAS
/// (`item_make_header`; `slabs_clsid` finds no class past `-I`). Checked against 1.6.18 at its
/// default `-I 1m`: `set x 0 0 1048516` is stored and `1048517` is too large, 4 bytes less
/// with flags, 249 less with a 250-byte key.
pub(crate) fn item_too_large(limits: &Limits, nkey: usize, flags: u32, vlen: usize) -> bool {
    item_overhead(nkey, flags).saturating_add(vlen) > limits.item_size
}

/// The largest data block memcached takes for a key of `nkey` bytes and `flags` under `-I
/// item_size` ([`item_too_large`]'s limit): what a rewritten value stored for the client must
/// fit in.
pub(crate) fn item_room(item_size: usize, nkey: usize, flags: u32) -> usize {
    item_size.saturating_sub(item_overhead(nkey, flags))
}

/// What an item takes besides its data: header, key and NUL, flags, CRLF, CAS.
fn item_overhead(nkey: usize, flags: u32) -> usize {
    let suffix = if flags == 0 { 0 } else { 4 };
    ITEM_HEADER + nkey + 1 + suffix + 2 + ITEM_CAS
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_key_len: 250,
            item_size: 1024 * 1024,
            max_keys_per_get: 100_000,
            max_line_len: 2048,
            read_buffer_len: 16 * 1024,
            max_get_line_len: 8 * 1024 * 1024,
        }
    }
}

/// The longest line the proxy sends upstream, other than get/gets. memcached closes a
/// connection on which more than 2048 bytes of any other line wait for their newline
/// (`try_read_command_ascii`), so a longer line that one of its reads cuts (as one pipelined
/// behind other clients' requests on a shared upstream connection may be) would cost every
/// request on that connection. Numbers go up in decimal without padding, meta flags that long
/// are shortened ([`compose_request`]), gat/gats are split, and a stats or administration line
/// that long closes the client's connection, as memcached closes one it reads in two parts.
pub const MAX_UPSTREAM_LINE: usize = 2048;

/// What memcached writes to a connection it accepts past its connection limit (`-c`), before
/// closing it: what the proxy writes to a client past `max_connections`, and what it takes from
/// a server as a refused connect.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"ERROR Too many open connections\r\n";

/// One client request, keys and data as zero-copy slices of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// get / gets / gat / gats (and the legacy `bget`, answered like `get`).
    Retrieval(Retrieval),
    /// set / add / replace / append / prepend / cas with their data block.
    Storage(Storage),
    /// delete (incl. the legacy `delete <key> 0`).
    Delete(Delete),
    /// incr / decr.
    Arith(Arith),
    /// touch.
    Touch(Touch),
    /// `flush_all [delay] [noreply]`.
    FlushAll(FlushAll),
    /// version (any arguments are ignored, as memcached does).
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity(Verbosity),
    /// quit: memcached closes the connection without a reply.
    Quit,
    /// `stats [args]`.
    Stats(Stats),
    /// mg / ms / md / ma / me.
    Meta(Meta),
    /// mn: answered `MN`.
    MetaNoop,
    /// Server administration (shutdown, slabs, lru, lru_crawler, watch, cache_memlimit,
    /// extstore, refresh_certs): not a cache operation; the proxy decides whether to forward it.
    Admin(Admin),
    /// A request memcached answers with a fixed error and survives; answer it locally.
    Reject(Reject),
}

impl Request {
    /// A stats or administration request whose line upstream would be longer than
    /// [`MAX_UPSTREAM_LINE`]: its arguments are the server's to read, so it cannot be
    /// shortened, and the client's connection is closed instead.
    fn too_long_to_forward(&self) -> bool {
        let len = match self {
            Request::Stats(s) => "stats".len() + s.args.iter().map(|a| 1 + a.len()).sum::<usize>(),
            Request::Admin(a) => a.line.len(),
            _ => return false,
        };
        len + 2 > MAX_UPSTREAM_LINE
    }

    /// A short, stable name (metrics label).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Retrieval(r) => r.cmd.as_str(),
            Request::Storage(s) => s.cmd.as_str(),
            Request::Delete(_) => "delete",
            Request::Arith(a) => a.cmd.as_str(),
            Request::Touch(_) => "touch",
            Request::FlushAll(_) => "flush_all",
            Request::Version => "version",
            Request::Verbosity(_) => "verbosity",
            Request::Quit => "quit",
            Request::Stats(_) => "stats",
            Request::Meta(m) => m.cmd.as_str(),
            Request::MetaNoop => "mn",
            Request::Admin(_) => "admin",
            Request::Reject(_) => "rejected",
        }
    }

    /// True when the client asked for no reply (`noreply`); meta `q` is [`Meta::quiet`].
    pub fn noreply(&self) -> bool {
        match self {
            Request::Storage(s) => s.noreply,
            Request::Delete(d) => d.noreply,
            Request::Arith(a) => a.noreply,
            Request::Touch(t) => t.noreply,
            Request::FlushAll(f) => f.noreply,
            Request::Verbosity(v) => v.noreply,
            Request::Admin(a) => a.noreply,
            _ => false,
        }
    }

    /// The single key of a keyed request (None for multi-key gets and keyless commands).
    pub fn key(&self) -> Option<&Bytes> {
        match self {
            Request::Storage(s) => Some(&s.key),
            Request::Delete(d) => Some(&d.key),
            Request::Arith(a) => Some(&a.key),
            Request::Touch(t) => Some(&t.key),
            Request::Meta(m) => Some(&m.key),
            _ => None,
        }
    }

    /// True when the upstream answers this request (everything but `quit` and rejections).
    pub fn has_upstream_reply(&self) -> bool {
        !matches!(self, Request::Quit | Request::Reject(_))
    }
}

/// The input being parsed, and where zero-copy slices come from (None: framing only).
#[derive(Clone, Copy)]
pub(crate) struct Src<'a> {
    pub buf: &'a [u8],
    pub bytes: Option<&'a Bytes>,
}

impl Src<'_> {
    /// `buf[start..end]` as `Bytes` (a zero-copy slice, or empty when only framing).
    pub fn slice(&self, start: usize, end: usize) -> Bytes {
        match self.bytes {
            Some(b) => b.slice(start..end),
            None => Bytes::new(),
        }
    }

    /// The tokens at `ranges` as `Bytes`; empty when only framing (nothing is kept then, so
    /// nothing is allocated: every request and reply is framed before it is parsed).
    pub fn slices<'r>(&self, ranges: impl IntoIterator<Item = &'r (usize, usize)>) -> Vec<Bytes> {
        match self.bytes {
            Some(b) => ranges.into_iter().map(|&(s, e)| b.slice(s..e)).collect(),
            None => Vec::new(),
        }
    }

    /// Whether the parse keeps what it finds (not only framing).
    pub fn keeps(&self) -> bool {
        self.bytes.is_some()
    }
}

/// Test helper: the one complete request in `line` under default limits (panics otherwise).
#[cfg(test)]
pub(crate) fn request_of(line: &[u8]) -> Request {
    match parse_request(&Bytes::copy_from_slice(line), &Limits::default()) {
        Ok(Parsed::Complete { value, .. }) => value,
        other => panic!("{other:?}"),
    }
}

/// Parses one request from the start of `buf`.
///
/// # Errors
/// [`ProtocolError::LineTooLong`] when memcached would close the connection (it writes nothing).
pub fn parse_request(buf: &Bytes, limits: &Limits) -> Result<Parsed<Request>, ProtocolError> {
    parse_src(
        Src {
            buf,
            bytes: Some(buf),
        },
        limits,
    )
}

/// Parses one request from a read buffer, splitting the consumed bytes off it (zero-copy).
/// Returns `Ok(None)` when more bytes are needed.
///
/// # Errors
/// As [`parse_request`].
pub fn parse_request_buf(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Request>, ProtocolError> {
    let consumed = match parse_src(Src { buf, bytes: None }, limits)? {
        Parsed::Incomplete => return Ok(None),
        Parsed::Complete { consumed, .. } => consumed,
    };
    let frame = buf.split_to(consumed).freeze();
    parse_frame(&frame, limits)
}

/// Requests (line and data block) of at most this many bytes are copied out of the read buffer
/// by [`parse_request_arena`]; larger ones are split off it.
pub const COPY_REQUEST_MAX: usize = 1024;

/// The chunk a connection's request arena ([`parse_request_arena`]) grows by.
const REQUEST_ARENA_CHUNK: usize = 4 * 1024;

/// Like [`parse_request_buf`], except that a request of at most [`COPY_REQUEST_MAX`] bytes is
/// copied into `arena` (a per-connection chunk, split like [`crate::handler`]'s upstream wire)
/// and only advanced past in `buf`. A request split off the read buffer shares its allocation
/// until it is answered: the next read, which wants the buffer's whole 16 KiB window, then
/// cannot reuse it and allocates a new one, 16 KiB per request of a client that waits for each
/// reply. Copied, the small requests leave `buf` its own and it is reused in place; larger ones
/// (a data block past 1 KiB) are still split off, not copied.
///
/// # Errors
/// As [`parse_request`].
pub fn parse_request_arena(
    buf: &mut BytesMut,
    arena: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Request>, ProtocolError> {
    let consumed = match parse_src(Src { buf, bytes: None }, limits)? {
        Parsed::Incomplete => return Ok(None),
        Parsed::Complete { consumed, .. } => consumed,
    };
    let frame = if consumed <= COPY_REQUEST_MAX {
        if arena.capacity() < consumed {
            // Takes the chunk back from its start once every request copied into it is
            // answered (the arena then owns it alone), else starts another.
            arena.reserve(REQUEST_ARENA_CHUNK);
        }
        arena.extend_from_slice(&buf[..consumed]);
        bytes::Buf::advance(buf, consumed);
        arena.split().freeze()
    } else {
        buf.split_to(consumed).freeze()
    };
    parse_frame(&frame, limits)
}

/// The request in `frame`, which framing found complete.
fn parse_frame(frame: &Bytes, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
    match parse_request(frame, limits)? {
        Parsed::Complete { value, .. } => Ok(Some(value)),
        // Framing is a pure function of the bytes; the frame parses the same way again.
        Parsed::Incomplete => Err(ProtocolError::LineTooLong {
            limit: limits.max_line_len,
        }),
    }
}

/// The length of the request at the front of `buf` (line and data block with its CRLF) when
/// its line is complete and its data block is not: a storage or `ms` request still waiting for
/// data. `None` for anything else, including a request that is complete or rejected.
///
/// memcached reads the rest of such a block straight into the item, and not a byte past it:
/// its next read starts at the next request, with the whole 16 KiB buffer for its line. A
/// reader that wants to frame that line as memcached does reads no further either.
pub fn data_block_end(buf: &[u8], limits: &Limits) -> Option<usize> {
    let src = Src { buf, bytes: None };
    let Ok(Parsed::Incomplete) = parse_src(src, limits) else {
        return None;
    };
    let (end, line_len) = frame_line(buf, limits).ok()??;
    // A complete line that still parses as incomplete passed every check of its command (a
    // bad one is rejected at once): only its data block, of the length it gives, is missing.
    let line = Line::tokenize(buf, 0, end);
    let len_token = if line.token(buf, 0) == b"ms" { 2 } else { 4 };
    let vlen = usize::try_from(token::strtol(line.token(buf, len_token))?).ok()?;
    Some(line_len + vlen + 2)
}

/// Finds the end of the first line: `(content_end, consumed)`, memcached's CR rule applied.
fn frame_line(buf: &[u8], limits: &Limits) -> Result<Option<(usize, usize)>, ProtocolError> {
    let newline = buf.iter().position(|&b| b == b'\n');
    let get_like = || {
        // "We didn't have a '\n' in the first few k. This _has_ to be a large multiget, if
        // not we should just nuke the connection." (try_read_command_ascii)
        let spaces = buf.iter().take_while(|&&b| b == b' ').count();
        let rest = &buf[spaces..];
        spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
    };
    let seen = newline.unwrap_or(buf.len());
    if seen > limits.max_line_len {
        // memcached looks for the newline in what its read buffer holds, 16 KiB from the
        // line's start: a line whose newline is not among those bytes (its newline at offset
        // 16 384 or later) has more than 2048 bytes without one there, and is closed on.
        let (limit, over) = if get_like() {
            (limits.max_get_line_len, seen > limits.max_get_line_len)
        } else if newline.is_some() {
            (limits.read_buffer_len, seen >= limits.read_buffer_len)
        } else {
            (limits.max_line_len, true)
        };
        if over {
            return Err(ProtocolError::LineTooLong { limit });
        }
    }
    Ok(newline.map(|el| {
        let end = if el > 1 && buf[el - 1] == b'\r' {
            el - 1
        } else {
            el
        };
        (end, el + 1)
    }))
}

fn parse_src(src: Src<'_>, limits: &Limits) -> Result<Parsed<Request>, ProtocolError> {
    let Some((end, line_len)) = frame_line(src.buf, limits)? else {
        return Ok(Parsed::Incomplete);
    };
    let line = Line::tokenize(src.buf, 0, end);
    if hangs_up_on(src.buf, &line) {
        return Err(ProtocolError::HttpRequest);
    }
    let parsed = dispatch(src, &line, line_len, limits);
    if let Parsed::Complete { value, .. } = &parsed {
        if value.too_long_to_forward() {
            return Err(ProtocolError::LineTooLong {
                limit: MAX_UPSTREAM_LINE,
            });
        }
    }
    Ok(parsed)
}

/// memcached's last branch of `process_command_ascii`: a command of no family it knows, whose
/// last token (of the 23 it splits at most) starts with `HTTP/`, closes the connection without
/// a reply (`GET / HTTP/1.0` from a stray HTTP client). A known first letter (`g`, `s`, `a`,
/// `c`, `i`, `d`, `t`, a two-letter `m..`) or a known command name with the wrong number of
/// tokens gets `ERROR` instead, as does a command shorter than two bytes.
fn hangs_up_on(buf: &[u8], line: &Line) -> bool {
    let cmd = line.token(buf, 0);
    let nt = line.ntokens();
    if nt < 2 || cmd.len() < 2 || !line.token(buf, nt - 2).starts_with(b"HTTP/") {
        return false;
    }
    let family = matches!(cmd[0], b'g' | b's' | b'a' | b'c' | b'i' | b'd' | b't')
        || (cmd[0] == b'm' && cmd.len() == 2);
    let named = matches!(
        cmd,
        b"replace"
            | b"prepend"
            | b"bget"
            | b"flush_all"
            | b"version"
            | b"quit"
            | b"lru_crawler"
            | b"watch"
            | b"verbosity"
            | b"lru"
            | b"extstore"
            | b"refresh_certs"
    );
    !family && !named
}

/// `process_command_ascii`: picks the command family exactly as memcached does.
fn dispatch(src: Src<'_>, line: &Line, line_len: usize, limits: &Limits) -> Parsed<Request> {
    use command::{arith, delete, meta, misc, retrieval, storage, touch};
    let done = |value: Request| Parsed::Complete {
        value,
        consumed: line_len,
    };
    let error = || done(Request::Reject(Reject::line(ERROR)));
    let cmd = line.token(src.buf, 0);
    let nt = line.ntokens();
    // "All commands need a minimum of two tokens: cmd and NULL finalizer. There are also no
    // valid commands shorter than two bytes."
    if nt < 2 || cmd.len() < 2 {
        return error();
    }
    let between = |lo: usize, hi: usize| nt >= lo && nt <= hi;
    match cmd {
        [b'm', c] => meta::parse(src, line, line_len, *c, limits),
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" if nt >= 3 => {
            done(retrieval::parse(src, line, limits))
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" if nt == 6 || nt == 7 => {
            storage::parse(src, line, line_len, limits)
        }
        b"cas" if nt == 7 || nt == 8 => storage::parse(src, line, line_len, limits),
        b"incr" | b"decr" if nt == 4 || nt == 5 => done(arith::parse(src, line, limits)),
        b"delete" if between(3, 5) => done(delete::parse(src, line, limits)),
        b"touch" if nt == 4 || nt == 5 => done(touch::parse(src, line, limits)),
        b"flush_all" if between(2, 4) => done(misc::parse_flush_all(src, line)),
        b"verbosity" if nt == 3 || nt == 4 => done(misc::parse_verbosity(src, line)),
        b"version" => done(Request::Version),
        b"quit" => done(Request::Quit),
        b"stats" => done(misc::parse_stats(src, line)),
        b"cache_memlimit" if nt == 3 || nt == 4 => done(misc::parse_admin(src, line)),
        b"lru" if nt >= 3 => done(misc::parse_admin(src, line)),
        b"shutdown" | b"slabs" | b"lru_crawler" | b"watch" | b"extstore" | b"refresh_certs" => {
            done(misc::parse_admin(src, line))
        }
        _ => error(),
    }
}

/// Past this many bytes, the data block of a storage request (`set`..., `ms`) is not copied
/// into the composed request by [`compose_request_parts`].
pub const DATA_APART: usize = 1024;

/// [`compose_request`], except that a data block past [`DATA_APART`] bytes is not copied into
/// `dst`: `dst` gets the request line, and the data (the request's own bytes, zero-copy) is
/// returned, to be written after it followed by CRLF. The upstream queue copies what it writes
/// once; composed whole, every stored value was copied twice (here, then into the queue).
pub fn compose_request_parts(req: &Request, dst: &mut BytesMut) -> Option<Bytes> {
    use command::{meta, storage};
    match req {
        Request::Storage(s) if s.data.len() > DATA_APART => {
            storage::compose_line(s, dst);
            Some(s.data.clone())
        }
        Request::Meta(m) if !m.fenced && m.data.as_ref().is_some_and(|d| d.len() > DATA_APART) => {
            meta::compose_line(m, dst);
            m.data.clone()
        }
        _ => {
            compose_request(req, dst);
            None
        }
    }
}

/// Composes `req` for the upstream into `dst`: canonical spacing, `noreply` and meta `q`
/// removed, the data length taken from the (possibly rewritten) data. Writes nothing for
/// [`Request::Reject`].
pub fn compose_request(req: &Request, dst: &mut BytesMut) {
    use command::{arith, delete, meta, misc, retrieval, storage, touch};
    match req {
        Request::Retrieval(r) => retrieval::compose(r, dst),
        Request::Storage(s) => storage::compose(s, dst),
        Request::Delete(d) => delete::compose(d, dst),
        Request::Arith(a) => arith::compose(a, dst),
        Request::Touch(t) => touch::compose(t, dst),
        Request::FlushAll(f) => misc::compose_flush_all(f, dst),
        Request::Version => dst.extend_from_slice(b"version\r\n"),
        Request::Verbosity(v) => misc::compose_verbosity(v, dst),
        Request::Quit => dst.extend_from_slice(b"quit\r\n"),
        Request::Stats(s) => misc::compose_stats(s, dst),
        Request::Meta(m) => meta::compose(m, dst),
        Request::MetaNoop => dst.extend_from_slice(b"mn\r\n"),
        Request::Admin(a) => misc::compose_admin(a, dst),
        Request::Reject(_) => {}
    }
}

#[cfg(test)]
mod tests;
