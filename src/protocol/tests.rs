//! Whole-parser tests: line limits, pipelines, split reads, and bounded random input.
use bytes::{Bytes, BytesMut};

use super::*;

fn parse(input: &[u8]) -> Result<Parsed<Request>, ProtocolError> {
    parse_request(&Bytes::copy_from_slice(input), &Limits::default())
}

#[test]
fn lines_without_newline_close_after_2048_bytes_unless_get() {
    assert_eq!(parse(&[b'x'; 2048]), Ok(Parsed::Incomplete));
    assert_eq!(
        parse(&[b'x'; 2049]),
        Err(ProtocolError::LineTooLong { limit: 2048 })
    );
    let mut get = b"get ".to_vec();
    get.extend(std::iter::repeat(b'k').take(5000));
    assert_eq!(parse(&get), Ok(Parsed::Incomplete));
    let mut spaced = vec![b' '; 101];
    spaced.extend_from_slice(&get);
    assert!(parse(&spaced).is_err());
    // A long line that arrived whole is processed, as memcached does within its read buffer.
    let mut long = vec![b'x'; 3000];
    long.extend_from_slice(b"\r\n");
    assert!(matches!(
        parse(&long),
        Ok(Parsed::Complete {
            value: Request::Reject(_),
            ..
        })
    ));
    let mut huge = vec![b'x'; 20000];
    huge.extend_from_slice(b"\r\n");
    assert!(parse(&huge).is_err());
}

/// memcached 1.6.18 looks for a line's newline in its 16 KiB read buffer: a line of 16 384
/// bytes with its CRLF (or LF) is served, one of 16 385 closes the connection, whatever came
/// before on it (checked with lines of 16 383..16 386 bytes, with and without a `set` of
/// 20 000, 40 000 and 100 000 bytes before them). A `get`/`gets` line is not bound by it.
#[test]
fn lines_with_their_newline_past_16_kib_close_unless_get() {
    let line = |head: &str, len: usize, end: &str| {
        let mut l = head.as_bytes().to_vec();
        while l.len() + end.len() < len {
            l.extend_from_slice(if l.len() % 200 == 0 { b" " } else { b"k" });
        }
        l.extend_from_slice(end.as_bytes());
        assert_eq!(l.len(), len);
        l
    };
    for end in ["\r\n", "\n"] {
        for head in ["bogus ", "gat 100 k", "get k", "gets k"] {
            for len in 16_383..=16_386 {
                let input = line(head, len, end);
                let closes = len > 16_384 && !head.starts_with("get");
                match parse(&input) {
                    Err(ProtocolError::LineTooLong { limit: 16_384 }) if closes => {}
                    Ok(Parsed::Complete { consumed, .. }) if !closes => {
                        assert_eq!(consumed, len)
                    }
                    other => panic!("{head:?} {len} {end:?}: {other:?}"),
                }
            }
        }
    }
}

/// A stats or administration line that would go upstream longer than `MAX_UPSTREAM_LINE`
/// closes the connection (its arguments are the server's to read; memcached closes one too
/// when a read cuts it); numbers of other commands go up without their padding.
#[test]
fn long_lines_that_cannot_go_upstream_close_and_numbers_lose_their_padding() {
    let long_stats = format!("stats {}\r\n", "x".repeat(2100));
    let long_admin = format!("lru_crawler crawl {}\r\n", "1,".repeat(1100));
    for line in [&long_stats, &long_admin] {
        assert_eq!(
            parse(line.as_bytes()),
            Err(ProtocolError::LineTooLong {
                limit: MAX_UPSTREAM_LINE
            }),
            "{}",
            &line[..20]
        );
    }
    // Spaces between the arguments do not go upstream.
    let spaced = format!("stats{}settings\r\n", " ".repeat(2100));
    assert!(matches!(
        parse(spaced.as_bytes()),
        Ok(Parsed::Complete {
            value: Request::Stats(_),
            ..
        })
    ));
    let zeros = "0".repeat(2100);
    for (input, composed) in [
        (format!("touch k {zeros}5\r\n"), "touch k 5\r\n".to_string()),
        (
            format!("set k 0 -{zeros}1 1\r\nx\r\n"),
            "set k 0 -1 1\r\nx\r\n".to_string(),
        ),
        (format!("gat {zeros}9 k\r\n"), "gat 9 k\r\n".to_string()),
        (
            format!("flush_all {zeros}3\r\n"),
            "flush_all 3\r\n".to_string(),
        ),
        (format!("incr k {zeros}2\r\n"), "incr k 2\r\n".to_string()),
    ] {
        let Ok(Parsed::Complete { value, .. }) = parse(input.as_bytes()) else {
            panic!("{}", &input[..12]);
        };
        let mut dst = BytesMut::new();
        compose_request(&value, &mut dst);
        assert_eq!(String::from_utf8_lossy(&dst), composed);
    }
}

const PIPELINE: &[u8] = b"set a 0 0 1\r\nx\r\nget a b\r\nset k 0 0 -1\r\nabc\r\n\
delete a noreply\r\nmg a v q\r\nms b 2 T0\r\nhi\r\nincr n 5\r\nbogus\r\nmn\r\nquit\r\n";

fn names(mut buf: BytesMut) -> Vec<&'static str> {
    let mut out = Vec::new();
    while let Some(req) = parse_request_buf(&mut buf, &Limits::default()).expect("parse") {
        out.push(req.name());
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    out
}

#[test]
fn pipelined_requests_parse_in_order() {
    let want = vec![
        "set", "get", "rejected", "rejected", "delete", "mg", "ms", "incr", "rejected", "mn",
        "quit",
    ];
    assert_eq!(names(BytesMut::from(PIPELINE)), want);
}

/// A client that waits for each reply: its request is in flight (held by its slot) when the
/// connection reserves its next 16 KiB read. Split off the read buffer, the request shared its
/// allocation and every request cost a fresh 16 KiB buffer; copied to the arena, the read
/// buffer is reused in place. The requests are the same either way, large ones included.
#[test]
fn small_requests_leave_the_read_buffer_reusable() {
    const READ: usize = 16 * 1024;
    let limits = Limits::default();
    let mut rbuf = BytesMut::with_capacity(READ);
    let mut arena = BytesMut::new();
    let at = rbuf.as_ptr();
    let mut held = Vec::new();
    for _ in 0..100 {
        rbuf.extend_from_slice(b"get some_key\r\n");
        let req = parse_request_arena(&mut rbuf, &mut arena, &limits).expect("parse");
        held.push(req.expect("complete"));
        // What the connection does before its next read.
        rbuf.reserve(READ - rbuf.len());
        assert_eq!(rbuf.as_ptr(), at, "the read buffer was reallocated");
    }
    assert!(held
        .iter()
        .all(|r| r == &parse_complete(b"get some_key\r\n")));
    // The same requests as split off the buffer, a data block past the copy limit included.
    let mut big = b"set k 0 0 2000\r\n".to_vec();
    big.extend([b'v'; 2000]);
    big.extend(b"\r\n");
    for input in [PIPELINE, &big[..]] {
        let mut a = BytesMut::from(input);
        let mut b = BytesMut::from(input);
        loop {
            let x = parse_request_arena(&mut a, &mut arena, &limits).expect("parse");
            let y = parse_request_buf(&mut b, &limits).expect("parse");
            assert_eq!(x, y);
            if x.is_none() {
                break;
            }
        }
        assert!(a.is_empty());
    }
}

/// Once every request copied into the arena's chunk is answered (dropped), the next request
/// goes at the chunk's start again, also when the requests had used the chunk up exactly.
#[test]
fn the_arena_takes_its_chunk_back_once_its_requests_are_answered() {
    let limits = Limits::default();
    let mut arena = BytesMut::new();
    // A set of exactly COPY_REQUEST_MAX bytes: four fill the 4 KiB chunk.
    let head = |n: usize| format!("set k 0 0 {n}\r\n");
    let n = (0..COPY_REQUEST_MAX)
        .find(|&n| head(n).len() + n + 2 == COPY_REQUEST_MAX)
        .expect("a length");
    let mut input = head(n).into_bytes();
    input.extend(std::iter::repeat(b'v').take(n));
    input.extend(b"\r\n");
    let data_at = |req: &Request| match req {
        Request::Storage(s) => s.data.as_ptr(),
        other => panic!("{other:?}"),
    };
    let mut starts = Vec::new();
    for _ in 0..3 {
        let reqs: Vec<Request> = (0..4)
            .map(|_| {
                let mut rbuf = BytesMut::from(&input[..]);
                let req = parse_request_arena(&mut rbuf, &mut arena, &limits).expect("parse");
                req.expect("complete")
            })
            .collect();
        starts.push(data_at(&reqs[0]));
        assert_eq!(arena.capacity(), 0, "the chunk is used up");
    }
    assert!(
        starts.windows(2).all(|w| w[0] == w[1]),
        "one chunk, taken back: {starts:?}"
    );
}

fn parse_complete(input: &[u8]) -> Request {
    match parse(input) {
        Ok(Parsed::Complete { value, .. }) => value,
        other => panic!("{other:?}"),
    }
}

#[test]
fn split_reads_give_the_same_requests() {
    let whole: Vec<Request> = {
        let mut buf = BytesMut::from(PIPELINE);
        std::iter::from_fn(|| parse_request_buf(&mut buf, &Limits::default()).expect("parse"))
            .collect()
    };
    for split in 0..PIPELINE.len() {
        let mut buf = BytesMut::from(&PIPELINE[..split]);
        let mut got = Vec::new();
        while let Some(r) = parse_request_buf(&mut buf, &Limits::default()).expect("parse") {
            got.push(r);
        }
        buf.extend_from_slice(&PIPELINE[split..]);
        while let Some(r) = parse_request_buf(&mut buf, &Limits::default()).expect("parse") {
            got.push(r);
        }
        assert_eq!(got, whole, "split at {split}");
    }
}

/// `req` as the upstream sees it: no `noreply`, no meta `q`.
fn forwarded(req: &Request) -> Request {
    let mut r = req.clone();
    match &mut r {
        Request::Storage(s) => s.noreply = false,
        Request::Delete(d) => d.noreply = false,
        Request::Arith(a) => a.noreply = false,
        Request::Touch(t) => t.noreply = false,
        Request::FlushAll(f) => f.noreply = false,
        Request::Verbosity(v) => v.noreply = false,
        Request::Admin(a) => a.noreply = false,
        Request::Meta(m) => m.quiet = false,
        _ => {}
    }
    r
}

/// xorshift64*: a fixed-seed generator so failures reproduce.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn random_bytes_never_panic_and_consume_within_bounds() {
    const ALPHABET: &[&[u8]] = &[
        b"get ",
        b"gets ",
        b"set ",
        b"cas ",
        b"mg ",
        b"ms ",
        b"md ",
        b"ma ",
        b"delete ",
        b"incr ",
        b"touch ",
        b"flush_all ",
        b"verbosity ",
        b"noreply",
        b" ",
        b"\r\n",
        b"\n",
        b"\r",
        b"\0",
        b"0",
        b"1",
        b"-1",
        b"99999999999",
        b"k",
        b"v",
        b"q",
        b"b",
        b"T1",
        b"O",
        b"\xff",
        b"VALUE ",
        b"END\r\n",
        b"VA ",
        b"STAT ",
        b"2000000",
        b"1048577",
        b"ms k 2000000 ",
        b"set k 0 0 ",
    ];
    let seed = 0x5eed_1234_u64;
    let mut next = rng(seed);
    for case in 0..3000 {
        let mut input = Vec::new();
        for _ in 0..(next() % 40) {
            input.extend_from_slice(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
        }
        let buf = Bytes::from(input);
        // The framing-only pass (used by parse_request_buf) must agree with the full parse.
        let mut framed = BytesMut::from(&buf[..]);
        let via_buf = parse_request_buf(&mut framed, &Limits::default());
        let direct = parse_request(&buf, &Limits::default());
        match (&via_buf, &direct) {
            (Ok(Some(a)), Ok(Parsed::Complete { value, consumed })) => {
                assert_eq!(a, value, "seed {seed:#x} case {case}");
                assert_eq!(
                    framed.len(),
                    buf.len() - consumed,
                    "seed {seed:#x} case {case}"
                );
            }
            (Ok(None), Ok(Parsed::Incomplete)) | (Err(_), Err(_)) => {}
            other => panic!("seed {seed:#x} case {case}: {other:?}"),
        }
        if let Ok(Parsed::Complete { consumed, value }) = parse_request(&buf, &Limits::default()) {
            assert!(
                consumed <= buf.len() && consumed > 0,
                "seed {seed:#x} case {case}"
            );
            if value.has_upstream_reply() {
                let _ = parse_response(&value, &buf);
                let mut dst = BytesMut::new();
                compose_request(&value, &mut dst);
                // What goes upstream parses back to the same request, minus noreply / q.
                let again = parse_request(&dst.freeze(), &Limits::default());
                match again {
                    Ok(Parsed::Complete { value: again, .. }) => {
                        assert_eq!(again, forwarded(&value), "seed {seed:#x} case {case}")
                    }
                    other => panic!("seed {seed:#x} case {case}: {other:?}"),
                }
            }
        }
    }
}

/// memcached 1.6.18 hangs up on an unknown command whose last token starts with `HTTP/`
/// (t/malicious-commands.t); a known family or name with that token gets its usual reply.
#[test]
fn http_request_lines_close_like_memcached() {
    // `HTTP/` as the 23rd token: memcached stops splitting there and looks at it.
    let many = format!("{} HTTP/1.1 x", vec!["a"; 22].join(" "));
    let past_the_limit = format!("GET {} HTTP/1.1", vec!["a"; 22].join(" "));
    for line in [
        "GET / HTTP/1.0",
        "PUT /asdf/asd/fasdfasdf/sadf HTTP/1.1",
        "DELETE HTTP/1.1",
        "HTTP/1.1",
        "foo bar HTTP/",
        "misbehave HTTP/1.1",
        many.replacen('a', "POST", 1).as_str(),
    ] {
        let input = format!("{line}\r\n");
        assert_eq!(
            parse(input.as_bytes()),
            Err(ProtocolError::HttpRequest),
            "{line}"
        );
    }
    // `ERROR`: a known first letter or name, a one-byte command, `HTTP/` not last, or last only
    // past the 23 tokens memcached splits.
    for line in [
        "gx / HTTP/1.1",
        "go / HTTP/1.1",
        "mx / HTTP/1.1",
        "replace / HTTP/1.1",
        "flush_all 1 2 HTTP/1.1",
        "verbosity 1 2 HTTP/1.1",
        "touch HTTP/1.1",
        "x HTTP/1.1",
        "GET / HTTP/1.1 now",
        "GET / http/1.1",
        past_the_limit.as_str(),
    ] {
        let input = format!("{line}\r\n");
        let Ok(Parsed::Complete { value, .. }) = parse(input.as_bytes()) else {
            panic!("{line}: {:?}", parse(input.as_bytes()));
        };
        assert_eq!(value, Request::Reject(Reject::line(ERROR)), "{line}");
    }
    // Known commands keep their meaning.
    for line in ["get HTTP/1.1", "version HTTP/1.1", "stats HTTP/1.1"] {
        let input = format!("{line}\r\n");
        assert!(
            matches!(parse(input.as_bytes()), Ok(Parsed::Complete { value, .. }) if !matches!(value, Request::Reject(_))),
            "{line}"
        );
    }
}

#[test]
fn data_block_end_is_known_only_for_a_block_still_arriving() {
    let limits = Limits::default();
    let cases: &[(&[u8], Option<usize>)] = &[
        (b"set k 0 0 5\r\nhe", Some(20)),
        (b"set k 0 0 5\r\n", Some(20)),
        (b"cas k 0 0 5 9 noreply\r\nhello\r", Some(30)),
        (b"ms k 3 T0\r\nab", Some(16)),
        (b"set k 0 0 5\r\nhello\r\n", None),
        (b"set k 0 0 5", None),
        (b"set k 0 0 2000000\r\n", None),
        (b"set k 0 0 x\r\n", None),
        (b"get k\r\n", None),
        (b"get k", None),
    ];
    for &(input, end) in cases {
        assert_eq!(
            data_block_end(input, &limits),
            end,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}
