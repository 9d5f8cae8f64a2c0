//! flush_all, verbosity, stats, version, quit and the administration commands.
//!
//! memcached 1.6.18 behaviour reproduced (verified):
//! - `flush_all [delay] [noreply]`: 1..3 arguments; the delay is parsed only when the token
//!   count says one is present, so `flush_all 1 2` is `OK` and `flush_all noreply x` is
//!   `CLIENT_ERROR invalid exptime argument`.
//! - `verbosity <level> [noreply]`: exactly 1 or 2 arguments, `verbosity 1 2` is `OK`;
//!   `verbosity noreply` sets noreply *and* fails to parse the level: no reply at all.
//! - `version` and `quit` ignore any arguments.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::{Reject, BAD_EXPTIME, BAD_FORMAT};
use crate::protocol::token::{all_tokens, put_i32, strtol, strtoul, Line};
use crate::protocol::{Request, Src};

/// flush_all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushAll {
    /// The delay as memcached's `safe_strtol` reads it, when it parses one.
    pub delay: Option<i32>,
    /// `noreply` was given.
    pub noreply: bool,
}

/// verbosity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verbosity {
    /// The level (memcached clamps it to its maximum).
    pub level: u32,
    /// `noreply` was given.
    pub noreply: bool,
}

/// stats with its arguments (`stats`, `stats settings`, `stats items`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Arguments after `stats`.
    pub args: Vec<Bytes>,
}

impl Stats {
    /// `stats sizes_enable` / `stats sizes_disable` (further arguments are ignored, as
    /// memcached does): the stats whose reply has no `END`.
    pub fn toggles_sizes(&self) -> bool {
        matches!(
            self.args.first().map(|a| &a[..]),
            Some(b"sizes_enable" | b"sizes_disable")
        )
    }

    /// `stats reset` (memcached ignores further arguments).
    pub fn resets(&self) -> bool {
        self.args.first().is_some_and(|a| &a[..] == b"reset")
    }

    /// `stats cachedump ...` / `stats detail dump`: replies that list stored keys (or their
    /// prefixes) raw, one per line, where a key stored through the binary protocol may hold CR
    /// LF or `END`: the reply's end cannot be found on a shared upstream connection.
    pub fn dumps_keys(&self) -> bool {
        match self.args.first().map(|a| &a[..]) {
            Some(b"cachedump") => true,
            Some(b"detail") => self.args.get(1).is_some_and(|a| &a[..] == b"dump"),
            _ => false,
        }
    }
}

/// A server administration command (shutdown, slabs, lru, lru_crawler, watch,
/// cache_memlimit, extstore, refresh_certs), kept as its raw line.
///
/// memcached 1.6.18 replies with one line to each, except `watch` (an `OK` line, then the
/// connection becomes a log stream) and `lru_crawler metadump` (`key=...` lines up to `END`,
/// as long as the cache): those are marked `streams` and cannot share an upstream connection
/// as a request/reply pair (each is streamed from a connection of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The request line without its terminator, and without a trailing `noreply` token when
    /// the command honours it (the reply is then hidden from the client instead).
    pub line: Bytes,
    /// `noreply` given to a command that honours it (cache_memlimit, lru, extstore, watch,
    /// slabs automove). `refresh_certs noreply` is not: without TLS memcached 1.6.18 still
    /// answers `Error TLS not enabled`.
    pub noreply: bool,
    /// The reply is a stream rather than one line (watch, lru_crawler metadump).
    pub streams: bool,
}

impl Admin {
    /// `lru_crawler metadump <classes>`: a listing of every item, `key=...` lines up to `END`
    /// (a stream, but one that ends).
    pub fn lists_items(&self) -> bool {
        self.streams && self.line.starts_with(b"lru_crawler ")
    }
}

/// Parses flush_all (dispatch checked 2..=4 tokens).
pub(crate) fn parse_flush_all(src: Src<'_>, line: &Line) -> Request {
    let noreply = line.noreply(src.buf);
    let mut delay = None;
    if line.ntokens() != if noreply { 3 } else { 2 } {
        let Some(d) = strtol(line.token(src.buf, 1)) else {
            return Request::Reject(Reject::unless_noreply(BAD_EXPTIME, noreply));
        };
        delay = Some(d);
    }
    Request::FlushAll(FlushAll { delay, noreply })
}

/// Parses verbosity (dispatch checked 3 or 4 tokens).
pub(crate) fn parse_verbosity(src: Src<'_>, line: &Line) -> Request {
    let noreply = line.noreply(src.buf);
    match strtoul(line.token(src.buf, 1)) {
        Some(level) => Request::Verbosity(Verbosity { level, noreply }),
        None => Request::Reject(Reject::unless_noreply(BAD_FORMAT, noreply)),
    }
}

/// Parses stats: every argument, including those past memcached's 23-token split.
pub(crate) fn parse_stats(src: Src<'_>, line: &Line) -> Request {
    let mut ranges: Vec<(usize, usize)> = line.tokens()[1..].to_vec();
    if let Some(rest) = line.rest {
        ranges.extend(all_tokens(src.buf, rest, line.end));
    }
    let args = src.slices(&ranges);
    Request::Stats(Stats { args })
}

/// Keeps an administration command as its raw line.
pub(crate) fn parse_admin(src: Src<'_>, line: &Line) -> Request {
    let buf = src.buf;
    let cmd = line.token(buf, 0);
    let sub = line.token(buf, 1);
    let honours_noreply = matches!(cmd, b"cache_memlimit" | b"lru" | b"extstore" | b"watch")
        || (cmd == b"slabs" && sub == b"automove" && line.ntokens() >= 4);
    let noreply = honours_noreply && line.noreply(buf);
    let end = match line.tokens().last() {
        Some(&(s, _)) if noreply => buf[..s]
            .iter()
            .rposition(|&b| b != b' ')
            .map_or(0, |i| i + 1),
        _ => line.end,
    };
    let streams =
        cmd == b"watch" || (cmd == b"lru_crawler" && sub == b"metadump" && line.ntokens() == 4);
    Request::Admin(Admin {
        line: src.slice(0, end),
        noreply,
        streams,
    })
}

/// `flush_all [delay]\r\n`.
pub(crate) fn compose_flush_all(f: &FlushAll, dst: &mut BytesMut) {
    dst.put_slice(b"flush_all");
    if let Some(d) = f.delay {
        dst.put_u8(b' ');
        put_i32(dst, d);
    }
    dst.put_slice(b"\r\n");
}

/// `verbosity <level>\r\n`.
pub(crate) fn compose_verbosity(v: &Verbosity, dst: &mut BytesMut) {
    dst.put_slice(format!("verbosity {}\r\n", v.level).as_bytes());
}

/// `stats [args]\r\n`.
pub(crate) fn compose_stats(s: &Stats, dst: &mut BytesMut) {
    dst.put_slice(b"stats");
    for a in &s.args {
        dst.put_u8(b' ');
        dst.put_slice(a);
    }
    dst.put_slice(b"\r\n");
}

/// The raw line, verbatim.
pub(crate) fn compose_admin(a: &Admin, dst: &mut BytesMut) {
    dst.put_slice(&a.line);
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::testutil::{
        assert_prefixes_incomplete, assert_reject, parse_all, upstream,
    };

    #[test]
    fn good_requests() {
        let table: &[(&[u8], &[u8])] = &[
            (b"flush_all\r\n", b"flush_all\r\n"),
            (b"flush_all 0\r\n", b"flush_all 0\r\n"),
            (b"flush_all -1\r\n", b"flush_all -1\r\n"),
            (b"flush_all 10 noreply\r\n", b"flush_all 10\r\n"),
            (b"flush_all noreply\r\n", b"flush_all\r\n"),
            (b"flush_all 1 2\r\n", b"flush_all 1\r\n"),
            (b"verbosity 1\r\n", b"verbosity 1\r\n"),
            (b"verbosity 1 2\r\n", b"verbosity 1\r\n"),
            (b"verbosity 1 noreply\r\n", b"verbosity 1\r\n"),
            (b"version\r\n", b"version\r\n"),
            (b"version x y\r\n", b"version\r\n"),
            (b"quit x\r\n", b"quit\r\n"),
            (b"stats\r\n", b"stats\r\n"),
            (b"stats  settings\r\n", b"stats settings\r\n"),
            (b"slabs automove 1\r\n", b"slabs automove 1\r\n"),
            (b"shutdown\r\n", b"shutdown\r\n"),
            (b"cache_memlimit 100 noreply\r\n", b"cache_memlimit 100\r\n"),
            (b"slabs automove 1  noreply\r\n", b"slabs automove 1\r\n"),
            (
                b"slabs reassign 1 noreply\r\n",
                b"slabs reassign 1 noreply\r\n",
            ),
            (b"refresh_certs\r\n", b"refresh_certs\r\n"),
        ];
        for &(input, composed) in table {
            assert_eq!(
                upstream(input),
                composed,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(parse_all(b"flush_all 0 noreply\r\n").noreply());
        assert!(parse_all(b"verbosity 0 noreply\r\n").noreply());
        assert!(parse_all(b"lru mode flat noreply\r\n").noreply());
        assert!(!parse_all(b"shutdown noreply\r\n").noreply());
        for (line, streams) in [
            (&b"watch\r\n"[..], true),
            (b"lru_crawler metadump all\r\n", true),
            (b"lru_crawler crawl all\r\n", false),
        ] {
            match parse_all(line) {
                Request::Admin(a) => assert_eq!(a.streams, streams),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bad_requests() {
        let table: &[(&[u8], Option<&str>)] = &[
            (b"flush_all x\r\n", Some(BAD_EXPTIME)),
            (b"flush_all noreply x\r\n", Some(BAD_EXPTIME)),
            (b"flush_all x noreply\r\n", None),
            (b"flush_all 1 2 3\r\n", Some("ERROR")),
            (b"verbosity\r\n", Some("ERROR")),
            (b"verbosity x\r\n", Some(BAD_FORMAT)),
            (b"verbosity noreply\r\n", None),
            (b"verbosity 1 2 3\r\n", Some("ERROR")),
            (b"x\r\n", Some("ERROR")),
            (b"\r\n", Some("ERROR")),
            (b"\n", Some("ERROR")),
            (b"cache_memlimit\r\n", Some("ERROR")),
            (b"lru\r\n", Some("ERROR")),
        ];
        for &(input, reply) in table {
            assert_reject(input, reply, 0);
        }
    }

    #[test]
    fn prefixes_are_incomplete() {
        assert_prefixes_incomplete(b"flush_all 10 noreply\r\n");
        assert_prefixes_incomplete(b"stats items\r\n");
    }
}
