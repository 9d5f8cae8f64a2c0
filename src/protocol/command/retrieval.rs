//! get / gets / gat / gats: many keys per request, replies run to `END`.
//!
//! protocol.txt: `get <key>*\r\n`, `gets <key>*\r\n`, `gat <exptime> <key>*\r\n`,
//! `gats <exptime> <key>*\r\n`. memcached re-tokenizes the line 23 tokens at a time, so a
//! get has no key limit; any key over 250 bytes fails the whole command with
//! `CLIENT_ERROR bad command line format` and no VALUE is sent, but the keys before it were
//! fetched (gat/gats: touched) already, which the proxy repeats upstream (see [`Reject`]).

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::{Reject, BAD_EXPTIME, BAD_FORMAT, GET_TOO_BIG};
use crate::protocol::token::{all_tokens, put_i32, strtol, Line};
use crate::protocol::{Limits, Request, Src};

/// Which retrieval command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetrievalCmd {
    /// `get`: VALUE key flags bytes.
    Get,
    /// `gets`: VALUE key flags bytes cas.
    Gets,
    /// `gat`: get and touch.
    Gat,
    /// `gats`: get and touch, with cas.
    Gats,
}

impl RetrievalCmd {
    /// The command word.
    pub fn as_str(self) -> &'static str {
        match self {
            RetrievalCmd::Get => "get",
            RetrievalCmd::Gets => "gets",
            RetrievalCmd::Gat => "gat",
            RetrievalCmd::Gats => "gats",
        }
    }

    /// True when VALUE lines carry a cas unique.
    pub fn with_cas(self) -> bool {
        matches!(self, RetrievalCmd::Gets | RetrievalCmd::Gats)
    }
}

/// A retrieval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieval {
    /// The command.
    pub cmd: RetrievalCmd,
    /// gat/gats exptime as memcached's `safe_strtol` reads it (forwarded in decimal).
    pub exptime: Option<i32>,
    /// Keys in request order (duplicates kept: memcached answers each).
    pub keys: Vec<Bytes>,
}

/// Parses a retrieval line (dispatch checked `ntokens >= 3`).
pub(crate) fn parse(src: Src<'_>, line: &Line, limits: &Limits) -> Request {
    let cmd = match line.token(src.buf, 0) {
        b"gets" => RetrievalCmd::Gets,
        b"gat" => RetrievalCmd::Gat,
        b"gats" => RetrievalCmd::Gats,
        _ => RetrievalCmd::Get, // get, and the ancient bget
    };
    let touch = matches!(cmd, RetrievalCmd::Gat | RetrievalCmd::Gats);
    let mut first_key = 1;
    let mut exptime = None;
    if touch {
        let Some(t) = strtol(line.token(src.buf, 1)) else {
            return Request::Reject(Reject::line(BAD_EXPTIME));
        };
        exptime = Some(t);
        first_key = 2;
    }
    // Keys beyond memcached's 23-token split are only re-tokenized (allocated) when present.
    let extra = match line.rest {
        Some(rest) => all_tokens(src.buf, rest, line.end),
        None => Vec::new(),
    };
    let split = line.tokens().get(first_key..).unwrap_or(&[]);
    let ranges = || split.iter().chain(extra.iter());
    if let Some(bad) = ranges().position(|&(s, e)| e - s > limits.max_key_len) {
        // process_get_command fetches each key (item_get, or item_touch for gat/gats) as it
        // reaches it: an item touched before the bad key keeps its new exptime. The VALUEs
        // built are dropped; the proxy's own key limit bounds what it repeats.
        let before = src.slices(ranges().take(bad.min(limits.max_keys_per_get)));
        let side_effect = (!before.is_empty()).then(|| {
            Box::new(Request::Retrieval(Retrieval {
                cmd,
                exptime,
                keys: before,
            }))
        });
        return Request::Reject(Reject {
            side_effect,
            ..Reject::line(BAD_FORMAT)
        });
    }
    if split.len() + extra.len() > limits.max_keys_per_get {
        return Request::Reject(Reject::line(GET_TOO_BIG));
    }
    let keys = src.slices(ranges());
    Request::Retrieval(Retrieval { cmd, exptime, keys })
}

/// `get k1 k2\r\n`, `gat 10 k1\r\n`.
pub(crate) fn compose(r: &Retrieval, dst: &mut BytesMut) {
    compose_keys(r.cmd, r.exptime, &r.keys, dst);
}

/// Composes a retrieval for a subset of keys (the proxy splits multi-gets across servers).
pub fn compose_keys(cmd: RetrievalCmd, exptime: Option<i32>, keys: &[Bytes], dst: &mut BytesMut) {
    let len: usize = keys.iter().map(|k| k.len() + 1).sum();
    dst.reserve(len + 24);
    dst.put_slice(cmd.as_str().as_bytes());
    if let Some(t) = exptime {
        dst.put_u8(b' ');
        put_i32(dst, t);
    }
    for k in keys {
        dst.put_u8(b' ');
        dst.put_slice(k);
    }
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::testutil::{
        assert_prefixes_incomplete, assert_reject, parse_all, upstream,
    };

    fn keys(req: &Request) -> Vec<&[u8]> {
        match req {
            Request::Retrieval(r) => r.keys.iter().map(|k| &k[..]).collect(),
            other => panic!("not a retrieval: {other:?}"),
        }
    }

    #[test]
    fn good_requests() {
        let long_key = format!("get {}\r\n", "k".repeat(250));
        let table: &[(&[u8], &[u8])] = &[
            (b"get a\r\n", b"get a\r\n"),
            (b"get a\n", b"get a\r\n"),
            (b"  get  a   b \r\n", b"get a b\r\n"),
            (b"gets a b a\r\n", b"gets a b a\r\n"),
            (b"gat 10 a\r\n", b"gat 10 a\r\n"),
            (b"gats -1 a\r\n", b"gats -1 a\r\n"),
            (b"gat 10\r\n", b"gat 10\r\n"),
            (b"gat +00010 a\r\n", b"gat 10 a\r\n"),
            (b"get a\tb\r\n", b"get a\tb\r\n"),
            (b"get k\0zz yy\r\n", b"get k\r\n"),
            (b"bget a\r\n", b"get a\r\n"),
            (long_key.as_bytes(), long_key.as_bytes()),
        ];
        for &(input, composed) in table {
            assert_eq!(
                upstream(input),
                composed,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn more_than_23_tokens_keeps_every_key() {
        let mut line = b"get".to_vec();
        for i in 0..60 {
            line.extend_from_slice(format!(" k{i}").as_bytes());
            if i % 7 == 0 {
                line.push(b' ');
            }
        }
        line.extend_from_slice(b"\r\n");
        let req = parse_all(&line);
        let got = keys(&req);
        assert_eq!(got.len(), 60);
        assert_eq!(got[59], b"k59");
    }

    #[test]
    fn bad_requests() {
        let too_long = format!("get a {} a\r\n", "k".repeat(251));
        let table: &[(&[u8], &str)] = &[
            (b"get\r\n", "ERROR"),
            (b"get \r\n", "ERROR"),
            (b"GET a\r\n", "ERROR"),
            (b"gat\r\n", "ERROR"),
            (b"gat x a\r\n", "CLIENT_ERROR invalid exptime argument"),
            (b"gat 1x a\r\n", "CLIENT_ERROR invalid exptime argument"),
            (too_long.as_bytes(), "CLIENT_ERROR bad command line format"),
        ];
        for &(input, reply) in table {
            assert_reject(input, Some(reply), 0);
        }
    }

    /// memcached fetches (gat/gats: touches) the keys before one over 250 bytes, then answers
    /// `CLIENT_ERROR` alone: the proxy repeats that fetch upstream, and only that.
    #[test]
    fn keys_before_a_long_key_are_fetched_upstream() {
        let long = "k".repeat(251);
        let cases = [
            (format!("get a b {long} c\r\n"), Some("get a b\r\n")),
            (format!("gets a {long}\r\n"), Some("gets a\r\n")),
            (format!("gat -1 a b {long} c\r\n"), Some("gat -1 a b\r\n")),
            (format!("gats +07 a {long}\r\n"), Some("gats 7 a\r\n")),
            (format!("gat 10 {long} a\r\n"), None),
            (format!("get {long}\r\n"), None),
        ];
        for (input, fetch) in cases {
            let Request::Reject(r) = parse_all(input.as_bytes()) else {
                panic!("{input}");
            };
            assert_eq!(r.reply, Some(BAD_FORMAT));
            let composed = r.side_effect.map(|side| {
                let mut dst = BytesMut::new();
                crate::protocol::compose_request(&side, &mut dst);
                String::from_utf8(dst.to_vec()).unwrap()
            });
            assert_eq!(composed.as_deref(), fetch, "{input}");
        }
    }

    #[test]
    fn too_many_keys_is_rejected_not_fatal() {
        let limits = Limits {
            max_keys_per_get: 3,
            ..Limits::default()
        };
        let buf = Bytes::from_static(b"get a b c d\r\n");
        let parsed = crate::protocol::parse_request(&buf, &limits);
        assert_eq!(
            parsed,
            Ok(crate::protocol::Parsed::Complete {
                value: Request::Reject(Reject::line(GET_TOO_BIG)),
                consumed: buf.len()
            })
        );
    }

    #[test]
    fn prefixes_are_incomplete() {
        assert_prefixes_incomplete(b"gets a b c\r\n");
        assert_prefixes_incomplete(b"gat 100 a\r\n");
    }
}
