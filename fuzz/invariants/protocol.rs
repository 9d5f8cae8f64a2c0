//! Invariants of the memcache request and reply parsers, checked on any input.
//!
//! Shared verbatim by the cargo-fuzz targets (`fuzz/fuzz_targets/parse_{request,response}.rs`)
//! and by the stable replay test (`tests/fuzz_replay.rs`, through `#[path]`). Panics are the
//! report; no I/O. "Pipelined splits agree": a stream parsed as one buffer and the same stream
//! fed in arbitrary chunks (as a socket delivers it) yield the same requests or replies.

use bytes::{Bytes, BytesMut};
use picklebridge::protocol::{
    compose_request, compose_response, parse_request, parse_request_arena, parse_response,
    parse_response_buf, Limits, Parsed, ProtocolError, Request, Response, MAX_UPSTREAM_LINE,
};

/// Small limits, so that short fuzz inputs reach every limit path.
pub fn small_limits() -> Limits {
    Limits {
        max_key_len: 250,
        item_size: 192,
        max_keys_per_get: 8,
        max_line_len: 96,
        read_buffer_len: 160,
        max_get_line_len: 400,
    }
}

/// Chunk sizes for the streamed parse, derived from the input so a failure reproduces.
fn chunk_sizes(data: &[u8]) -> impl Iterator<Item = usize> {
    let mut state = data.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    std::iter::from_fn(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Some(1 + (state % 23) as usize)
    })
}

/// What a stream of client bytes parses to: the requests, then how it ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Bytes left that do not form a request yet.
    Incomplete(usize),
    /// A connection-closing error.
    Closed(ProtocolError),
}

fn check_request(req: &Request, limits: &Limits) {
    let key_ok = |key: &Bytes| {
        !key.is_empty()
            && key.len() <= limits.max_key_len
            && !key.contains(&b' ')
            && !key.contains(&b'\n')
    };
    match req {
        Request::Retrieval(r) => {
            // memcached answers `gat <exptime>` with no key `END`, so only get/gets need a key.
            assert!(
                !r.keys.is_empty() || r.exptime.is_some(),
                "get without keys"
            );
            assert!(
                r.keys.len() <= limits.max_keys_per_get,
                "{} keys",
                r.keys.len()
            );
            for key in &r.keys {
                assert!(key_ok(key), "invalid key {key:?}");
            }
        }
        Request::Storage(s) => {
            assert!(
                s.data.len() + s.key.len() < limits.item_size,
                "value over the limit"
            );
        }
        _ => {}
    }
    if let Some(key) = req.key() {
        assert!(key_ok(key), "invalid key {key:?} in {}", req.name());
    }
    // Composed for the upstream, a request parses again as one complete request.
    if !matches!(req, Request::Reject(_) | Request::Admin(_)) {
        let mut dst = BytesMut::new();
        compose_request(req, &mut dst);
        let mut composed = dst.freeze();
        // A fenced `ma` (quiet, with N) goes upstream with an `mn` behind it.
        if matches!(req, Request::Meta(m) if m.fenced) {
            assert!(composed.ends_with(b"\r\nmn\r\n"), "{composed:?}");
            composed.truncate(composed.len() - 4);
        }
        // No line but a retrieval's goes upstream longer than memcached reads whole when one
        // of its reads cuts it (gat/gats are split by the handler; a long stats line closes).
        if !matches!(req, Request::Retrieval(_)) {
            let line = composed
                .iter()
                .position(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            assert!(
                line <= MAX_UPSTREAM_LINE,
                "{} goes upstream in a line of {line} bytes",
                req.name()
            );
        }
        match parse_request(&composed, &Limits::default()) {
            Ok(Parsed::Complete { consumed, value }) => {
                assert_eq!(
                    consumed,
                    composed.len(),
                    "composed {composed:?} has trailing bytes"
                );
                assert!(
                    !matches!(value, Request::Reject(_)),
                    "composed {composed:?} is rejected: {value:?}"
                );
            }
            other => panic!("composed {composed:?} does not re-parse: {other:?}"),
        }
    }
}

/// Parses `data` as one buffer, request after request, honouring `Reject::swallow`.
fn parse_whole(data: &Bytes, limits: &Limits) -> (Vec<Request>, End) {
    let mut requests = Vec::new();
    let mut pos = 0;
    loop {
        let rest = data.slice(pos..);
        match parse_request(&rest, limits) {
            Err(e) => return (requests, End::Closed(e)),
            Ok(Parsed::Incomplete) => return (requests, End::Incomplete(rest.len())),
            Ok(Parsed::Complete { value, consumed }) => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "consumed {consumed} of {}",
                    rest.len()
                );
                check_prefixes(&rest, consumed, limits);
                check_request(&value, limits);
                pos += consumed;
                if let Request::Reject(reject) = &value {
                    if reject.swallow > data.len() - pos {
                        requests.push(value);
                        return (requests, End::Incomplete(0));
                    }
                    pos += reject.swallow;
                }
                requests.push(value);
            }
        }
    }
}

/// Every strict prefix of a complete request needs more bytes, unless it is a line with no
/// newline yet that is already over `max_line_len` (memcached closes such a connection).
fn check_prefixes(rest: &Bytes, consumed: usize, limits: &Limits) {
    let step = (consumed / 64).max(1);
    for len in (0..consumed).step_by(step) {
        let prefix = rest.slice(..len);
        match parse_request(&prefix, limits) {
            Ok(Parsed::Incomplete) => {}
            Err(_) if !prefix.contains(&b'\n') && len > limits.max_line_len => {}
            other => panic!("prefix of {len} of a {consumed}-byte request: {other:?}"),
        }
    }
}

/// Parses `data` the way a connection does: chunks appended to a `BytesMut`, requests copied
/// out of it into an arena or split off ([`parse_request_arena`], the connection's parser).
fn parse_streamed(data: &Bytes, limits: &Limits) -> (Vec<Request>, End) {
    let mut requests = Vec::new();
    let mut buf = BytesMut::new();
    let mut arena = BytesMut::new();
    let mut fed = 0;
    let mut swallow = 0;
    let mut chunks = chunk_sizes(data);
    loop {
        let discard = swallow.min(buf.len());
        let _ = buf.split_to(discard);
        swallow -= discard;
        let parsed = if swallow > 0 {
            Ok(None)
        } else {
            parse_request_arena(&mut buf, &mut arena, limits)
        };
        match parsed {
            Err(e) => return (requests, End::Closed(e)),
            Ok(Some(request)) => {
                if let Request::Reject(reject) = &request {
                    swallow = reject.swallow;
                }
                requests.push(request);
            }
            Ok(None) if fed == data.len() => {
                let left = if swallow > 0 { 0 } else { buf.len() };
                return (requests, End::Incomplete(left));
            }
            Ok(None) => {
                let n = chunks.next().unwrap_or(1).min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
        }
    }
}

/// Checks the request parser on one fuzz input (a pipelined client stream). Byte 0 picks the
/// limits (default or small), the rest is the stream.
pub fn check_parse_request(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let limits = if selector & 1 == 0 {
        Limits::default()
    } else {
        small_limits()
    };
    let stream = Bytes::copy_from_slice(stream);
    let whole = parse_whole(&stream, &limits);
    let streamed = parse_streamed(&stream, &limits);
    // A streamed parse may close earlier: a line with no newline in the first chunks is over the
    // limit before the newline arrives. Then the requests before it must still agree.
    match (&whole.1, &streamed.1) {
        (_, End::Closed(ProtocolError::LineTooLong { .. })) if whole != streamed => {
            assert!(
                whole.0.starts_with(&streamed.0),
                "split parse disagrees before the long line"
            );
        }
        _ => assert_eq!(whole, streamed, "whole and streamed parses disagree"),
    }
}

/// Requests whose replies the response fuzz target parses, picked by the input's first byte.
fn reply_request(selector: u8) -> Request {
    const REQUESTS: &[&[u8]] = &[
        b"get a\r\n",
        b"gets a b c\r\n",
        b"gat 10 a b\r\n",
        b"set a 1 0 1\r\nx\r\n",
        b"cas a 0 0 1 5\r\nx\r\n",
        b"delete a\r\n",
        b"incr a 1\r\n",
        b"touch a 10\r\n",
        b"mg a v f c k t\r\n",
        b"mg a s\r\n",
        b"ms a 1 T0\r\nx\r\n",
        b"md a q\r\n",
        b"ma a v\r\n",
        b"stats\r\n",
        b"stats slabs\r\n",
        b"version\r\n",
        b"flush_all\r\n",
        b"verbosity 1\r\n",
        b"mn\r\n",
    ];
    let text = Bytes::from_static(REQUESTS[usize::from(selector) % REQUESTS.len()]);
    match parse_request(&text, &Limits::default()) {
        Ok(Parsed::Complete { value, .. }) => value,
        other => panic!("fixed request {text:?} does not parse: {other:?}"),
    }
}

/// Checks the reply parser on one fuzz input: byte 0 picks the request, the rest is a stream of
/// replies to that request, pipelined.
pub fn check_parse_response(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let req = reply_request(selector);
    let stream = Bytes::copy_from_slice(stream);
    let mut whole = Vec::new();
    let mut pos = 0;
    let whole_end = loop {
        let rest = stream.slice(pos..);
        match parse_response(&req, &rest) {
            Err(e) => break Some(e),
            Ok(Parsed::Incomplete) => break None,
            Ok(Parsed::Complete { value, consumed }) => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "consumed {consumed} of {}",
                    rest.len()
                );
                check_reply_prefixes(&req, &rest, consumed);
                check_reply_roundtrip(&req, &value);
                pos += consumed;
                whole.push(value);
            }
        }
    };
    let mut streamed = Vec::new();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut chunks = chunk_sizes(&stream);
    let streamed_end = loop {
        match parse_response_buf(&req, &mut buf) {
            Err(e) => break Some(e),
            Ok(Some(value)) => streamed.push(value),
            Ok(None) if fed == stream.len() => break None,
            Ok(None) => {
                let n = chunks.next().unwrap_or(1).min(stream.len() - fed);
                buf.extend_from_slice(&stream[fed..fed + n]);
                fed += n;
            }
        }
    };
    assert_eq!(whole, streamed, "whole and streamed reply parses disagree");
    assert_eq!(
        whole_end.is_some(),
        streamed_end.is_some(),
        "{whole_end:?} vs {streamed_end:?}"
    );
}

fn check_reply_prefixes(req: &Request, rest: &Bytes, consumed: usize) {
    let step = (consumed / 64).max(1);
    for len in (0..consumed).step_by(step) {
        match parse_response(req, &rest.slice(..len)) {
            Ok(Parsed::Incomplete) => {}
            other => panic!("prefix of {len} of a {consumed}-byte reply: {other:?}"),
        }
    }
}

/// A reply composed for the client parses back, and composing that again gives the same bytes
/// (composing normalizes spacing, so the first parse may differ from the upstream's bytes).
fn check_reply_roundtrip(req: &Request, resp: &Response) {
    let compose = |resp: &Response| {
        let mut dst = BytesMut::new();
        compose_response(resp, &mut dst);
        dst.freeze()
    };
    let composed = compose(resp);
    match parse_response(req, &composed) {
        Ok(Parsed::Complete { value, consumed }) => {
            assert_eq!(
                consumed,
                composed.len(),
                "composed reply has trailing bytes"
            );
            assert_eq!(
                compose(&value),
                composed,
                "composing {composed:?} is not a fixed point"
            );
        }
        other => panic!("composed reply {composed:?} does not re-parse: {other:?}"),
    }
}
