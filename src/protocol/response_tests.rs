//! Reply framing tests: round trips of memcached's exact bytes, prefixes, pipelines.
use super::*;
use crate::protocol::request_of as req;

/// (request, a reply memcached 1.6.18 sent for it)
const TABLE: &[(&[u8], &[u8])] = &[
    (b"get a\r\n", b"END\r\n"),
    (
        b"get a b\r\n",
        b"VALUE a 0 1\r\nx\r\nVALUE b 5 0\r\n\r\nEND\r\n",
    ),
    (
        b"gets a\r\n",
        b"VALUE a 4294967295 3 18446744073709551615\r\nx\r\n\r\nEND\r\n",
    ),
    (b"gat 1 a\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    (
        b"get a\r\n",
        b"SERVER_ERROR out of memory writing get response\r\n",
    ),
    (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
    (b"cas a 0 0 1 5\r\nx\r\n", b"EXISTS\r\n"),
    (b"incr a 1\r\n", b"18446744073709551615\r\n"),
    (
        b"incr a 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    ),
    (b"delete a\r\n", b"DELETED\r\n"),
    (b"touch a 1\r\n", b"TOUCHED\r\n"),
    (b"flush_all\r\n", b"OK\r\n"),
    (b"version\r\n", b"VERSION 1.6.18\r\n"),
    (b"stats\r\n", b"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n"),
    (b"stats items\r\n", b"END\r\n"),
    (b"stats nosuch\r\n", b"ERROR\r\n"),
    (b"stats reset\r\n", b"RESET\r\n"),
    (b"stats sizes\r\n", b"STAT sizes_status disabled\r\nEND\r\n"),
    (b"stats sizes_enable\r\n", b"STAT sizes_status enabled\r\n"),
    (
        b"stats sizes_disable x\r\n",
        b"STAT sizes_status disabled\r\n",
    ),
    (
        b"stats sizes_enable\r\n",
        b"STAT sizes_status error\r\nSTAT sizes_error cas_support_disabled\r\n",
    ),
    (b"stats sizes_enablex\r\n", b"ERROR\r\n"),
    (
        b"mg a v f c k s t O9\r\n",
        b"VA 2 f0 c44 ka s2 t-1 O9\r\nhi\r\n",
    ),
    (b"mg a v\r\n", b"VA 0\r\n\r\n"),
    (b"mg a\r\n", b"HD\r\n"),
    (b"mg a v k O1\r\n", b"EN ka O1\r\n"),
    (b"ma a v\r\n", b"VA 1\r\n5\r\n"),
    (b"ms a 2 c\r\nhi\r\n", b"HD c45\r\n"),
    (b"md a q\r\n", b"NF\r\n"),
    (
        b"me a\r\n",
        b"ME a exp=-1 la=1 cas=48 fetch=no cls=1 size=61\r\n",
    ),
    (b"mn\r\n", b"MN\r\n"),
    (
        b"stats cachedump 1 0\r\n",
        b"ITEM b [2 b; 1764342000 s]\r\nITEM a [1 b; 0 s]\r\nEND\r\n",
    ),
    (b"stats cachedump 2 0\r\n", b"END\r\n"),
    (
        b"stats cachedump 1\r\n",
        b"CLIENT_ERROR bad command line\r\n",
    ),
    (
        b"stats detail dump\r\n",
        b"PREFIX a get 1 hit 1 set 1 del 0\r\nEND\r\n",
    ),
];

#[test]
fn memcached_replies_round_trip() {
    for &(line, reply) in TABLE {
        let r = req(line);
        let buf = Bytes::from_static(reply);
        let parsed = parse_response(&r, &buf);
        let Ok(Parsed::Complete { value, consumed }) = parsed else {
            panic!("{:?}: {parsed:?}", String::from_utf8_lossy(reply));
        };
        assert_eq!(
            consumed,
            reply.len(),
            "{:?}",
            String::from_utf8_lossy(reply)
        );
        let mut out = BytesMut::new();
        compose_response(&value, &mut out);
        assert_eq!(&out[..], reply);
        for i in 0..reply.len() {
            let part = Bytes::copy_from_slice(&reply[..i]);
            assert_eq!(
                parse_response(&r, &part),
                Ok(Parsed::Incomplete),
                "prefix {i}"
            );
        }
        // Pipelined: the reply followed by another one parses with the same consumed length.
        let mut two = BytesMut::from(reply);
        two.extend_from_slice(reply);
        assert_eq!(parse_response_buf(&r, &mut two), Ok(Some(value)));
        assert_eq!(&two[..], reply);
    }
}

/// A miss is the commonest reply of a cache: its empty value list allocates nothing (it was
/// given room for the keys asked for, one allocation per miss); hits get room for their keys.
#[test]
fn a_miss_allocates_no_value_list() {
    let r = req(b"get a b c\r\n");
    let mut buf = BytesMut::from(&b"END\r\n"[..]);
    match parse_response_buf(&r, &mut buf) {
        Ok(Some(Response::Values(v))) => assert_eq!((v.len(), v.capacity()), (0, 0)),
        other => panic!("{other:?}"),
    }
    let mut buf = BytesMut::from(&b"VALUE b 0 1\r\nx\r\nEND\r\n"[..]);
    match parse_response_buf(&r, &mut buf) {
        Ok(Some(Response::Values(v))) => assert_eq!((v.len(), v.capacity()), (1, 3)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rewritten_values_get_new_lengths() {
    let mut out = BytesMut::new();
    let v = Value {
        key: Bytes::from_static(b"k"),
        flags: 1,
        cas: Some(7),
        data: Bytes::from_static(b"longer"),
    };
    compose_response(&Response::Values(vec![v]), &mut out);
    assert_eq!(&out[..], b"VALUE k 1 6 7\r\nlonger\r\nEND\r\n");
    out.clear();
    let mv = Response::MetaValue {
        flags: Bytes::from_static(b" f1 s2 c9"),
        data: Bytes::from_static(b"abc"),
    };
    compose_response(&mv, &mut out);
    assert_eq!(&out[..], b"VA 3 f1 s3 c9\r\nabc\r\n");
}

#[test]
fn quiet_and_noreply_hide_replies() {
    let line = |s: &'static [u8]| Response::Line(Bytes::from_static(s));
    let table: &[(&[u8], &[u8], bool)] = &[
        (b"set a 0 0 1 noreply\r\nx\r\n", b"STORED", false),
        (
            b"set a 0 0 1 noreply\r\nx\r\n",
            b"SERVER_ERROR out of memory storing object",
            false,
        ),
        (b"set a 0 0 1\r\nx\r\n", b"STORED", true),
        (b"mg a v q\r\n", b"EN", false),
        (b"mg a q\r\n", b"HD", true),
        (b"ms a 1 q\r\nx\r\n", b"HD", false),
        (b"ms a 1 q c\r\nx\r\n", b"HD c5", false),
        (b"ms a 1 q\r\nx\r\n", b"NS", true),
        (b"md a q\r\n", b"HD", false),
        (b"md a q\r\n", b"NF", true),
        (b"ma a q\r\n", b"HD", false),
        (b"ma a q\r\n", b"EX", true),
        (b"ma a q v\r\n", b"NF", true),
        (b"mg a v q q\r\n", b"CLIENT_ERROR duplicate flag", true),
        (b"mg a v q\r\n", b"CLIENT_ERROR opaque token too long", true),
    ];
    let va = Response::MetaValue {
        flags: Bytes::new(),
        data: Bytes::from_static(b"5"),
    };
    assert!(!req(b"ma a q v\r\n").client_sees(&va));
    assert!(req(b"mg a q v\r\n").client_sees(&va));
    for &(request, reply, seen) in table {
        assert_eq!(
            req(request).client_sees(&line(reply)),
            seen,
            "{:?} -> {:?}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(reply)
        );
    }
}

#[test]
fn broken_upstream_replies_are_errors() {
    let table: &[(&[u8], &[u8])] = &[
        (b"get a\r\n", b"VALUE a 0 1\r\nxy\r\nEND\r\n"),
        (b"get a\r\n", b"VALUE a 0 x\r\n"),
        (b"get a\r\n", b"VALUE a 0 01\r\nx\r\nEND\r\n"),
        (b"get a\r\n", b"VALUE a 00 1\r\nx\r\nEND\r\n"),
        (b"gets a\r\n", b"VALUE a 0 1 4294967296x\r\nx\r\nEND\r\n"),
        (b"get a\r\n", b"VALUE a 4294967296 1\r\nx\r\nEND\r\n"),
        (b"get a\r\n", b"VALUE a 0 1 \r\nx\r\nEND\r\n"),
        (b"mg a v\r\n", b"VA x\r\n"),
        (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nSTORED\r\n"),
        (b"set a 0 0 1\r\nx\r\n", b"STORED\n"),
        (b"quit\r\n", b"OK\r\n"),
    ];
    for &(request, reply) in table {
        let got = parse_response(&req(request), &Bytes::from_static(reply));
        assert!(
            matches!(got, Err(ProtocolError::BadResponse { .. })),
            "{:?}: {got:?}",
            String::from_utf8_lossy(reply)
        );
    }
}

#[test]
fn random_replies_never_panic_and_consume_within_bounds() {
    const ALPHABET: &[&[u8]] = &[
        b"VALUE ",
        b"k ",
        b"0 ",
        b"1",
        b"5",
        b" ",
        b"\r\n",
        b"\n",
        b"END",
        b"VA ",
        b"HD",
        b"EN",
        b"STAT ",
        b"x",
        b"\xff",
        b"\0",
        b"18446744073709551616",
        b"-1",
        b" s",
        b"ERROR",
        b"01",
        b"VALUE k 0 1\r\n",
        b"VA 1 s1 f0\r\n",
    ];
    let requests: Vec<Request> = [
        &b"get k\r\n"[..],
        b"gets k\r\n",
        b"mg k v s\r\n",
        b"ma k v\r\n",
        b"stats\r\n",
        b"set k 0 0 1\r\nx\r\n",
        b"mn\r\n",
    ]
    .iter()
    .map(|r| req(r))
    .collect();
    let seed = 0xc0ff_ee00_u64;
    let mut s = seed;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for case in 0..20_000 {
        let mut input = Vec::new();
        for _ in 0..(next() % 30) {
            input.extend_from_slice(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
        }
        let buf = Bytes::from(input);
        let r = &requests[(next() % requests.len() as u64) as usize];
        let direct = parse_response(r, &buf);
        let mut framed = BytesMut::from(&buf[..]);
        let via_buf = parse_response_buf(r, &mut framed);
        match (&direct, &via_buf) {
            (Ok(Parsed::Complete { value, consumed }), Ok(Some(v))) => {
                assert!(*consumed <= buf.len(), "seed {seed:#x} case {case}");
                assert_eq!(value, v, "seed {seed:#x} case {case}");
                assert_eq!(
                    framed.len(),
                    buf.len() - consumed,
                    "seed {seed:#x} case {case}"
                );
                // What was parsed composes back to exactly the bytes it came from.
                let mut out = BytesMut::new();
                compose_response(value, &mut out);
                assert_eq!(&out[..], &buf[..*consumed], "seed {seed:#x} case {case}");
            }
            (Ok(Parsed::Incomplete), Ok(None)) | (Err(_), Err(_)) => {}
            other => panic!("seed {seed:#x} case {case}: {other:?}"),
        }
    }
}

/// A quiet `ma` with `N` goes upstream with its `q` and an `mn` behind it; its reply is what
/// comes before `MN` (nothing for an item that existed), and the `MN` is consumed with it.
#[test]
fn fenced_ma_replies_end_at_mn() {
    let r = req(b"ma k N0 q v t\r\n");
    let Request::Meta(m) = &r else {
        panic!("{r:?}")
    };
    assert!(m.fenced && m.quiet);
    let mut line = BytesMut::new();
    crate::protocol::compose_request(&r, &mut line);
    assert_eq!(&line[..], b"ma k N0 q v t\r\nmn\r\n");
    let cases: [(&[u8], &[u8]); 4] = [
        (b"MN\r\n", b""),
        (b"HD\r\nMN\r\n", b"HD\r\n"),
        (b"VA 1 t-1\r\n0\r\nMN\r\n", b"VA 1 t-1\r\n0\r\n"),
        (
            b"CLIENT_ERROR bad command line format\r\nMN\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
    ];
    for (reply, shown) in cases {
        let buf = Bytes::from_static(reply);
        assert_eq!(
            parse_response(&r, &buf),
            Ok(Parsed::Complete {
                value: Response::Block(Bytes::from_static(shown)),
                consumed: reply.len()
            }),
            "{}",
            String::from_utf8_lossy(reply)
        );
        for i in 0..reply.len() {
            let part = Bytes::copy_from_slice(&reply[..i]);
            assert_eq!(
                parse_response(&r, &part),
                Ok(Parsed::Incomplete),
                "prefix {i}"
            );
        }
    }
    // Anything but MN after the reply breaks the framing.
    let buf = Bytes::from_static(b"HD\r\nHD\r\n");
    assert!(parse_response(&r, &buf).is_err());
    // Without N, or without q, nothing changes.
    for line in [&b"ma k q v\r\n"[..], b"ma k N0 v\r\n"] {
        let Request::Meta(m) = req(line) else {
            panic!()
        };
        assert!(!m.fenced);
    }
}

/// A key dump lists keys raw: one stored through the binary protocol may hold CR, LF and whole
/// lines. The dump ends at the first `END` line, one that starts the reply or follows an LF,
/// where a client reading memcached line by line stops; a lone LF inside a key is no error.
#[test]
fn key_dumps_end_at_the_first_end_line() {
    let r = req(b"stats cachedump 1 0\r\n");
    // (reply, the dump the client gets)
    let cases: [(&[u8], &[u8]); 5] = [
        (
            b"ITEM x\r\nEND [1 b; 0 s]\r\nEND\r\n",
            b"ITEM x\r\nEND [1 b; 0 s]\r\nEND\r\n",
        ),
        (
            b"ITEM x\r\nEND\r\nVALUE v 0 1\r\nz\r\nEND [1 b; 0 s]\r\nEND\r\n",
            b"ITEM x\r\nEND\r\n",
        ),
        (
            b"ITEM a\nb [1 b; 0 s]\r\nEND\r\n",
            b"ITEM a\nb [1 b; 0 s]\r\nEND\r\n",
        ),
        (
            b"ITEM y\nEND\r\nEND [1 b; 0 s]\r\nEND\r\n",
            b"ITEM y\nEND\r\n",
        ),
        (
            b"ITEM xEND\r\n [1 b; 0 s]\r\nEND\r\n",
            b"ITEM xEND\r\n [1 b; 0 s]\r\nEND\r\n",
        ),
    ];
    for (reply, dump) in cases {
        let buf = Bytes::from_static(reply);
        assert_eq!(
            parse_response(&r, &buf),
            Ok(Parsed::Complete {
                value: Response::Block(Bytes::from_static(dump)),
                consumed: dump.len()
            }),
            "{}",
            String::from_utf8_lossy(reply)
        );
        for i in 0..dump.len() {
            let part = Bytes::copy_from_slice(&reply[..i]);
            assert_eq!(
                parse_response(&r, &part),
                Ok(Parsed::Incomplete),
                "prefix {i}"
            );
        }
    }
    // Bounded: a line, or a whole dump, past its limit is an error rather than a growing buffer.
    let long_line = Bytes::from(vec![b'x'; MAX_REPLY_LINE + 1]);
    assert!(parse_response(&r, &long_line).is_err());
    let mut endless = b"ITEM ".to_vec();
    endless.resize(MAX_DUMP + 1, b'k');
    assert!(parse_response(&r, &Bytes::from(endless)).is_err());
}

/// `lru_crawler metadump`: one error line, or `key=` lines (bare LF) up to `END`, passed on a
/// complete line at a time.
#[test]
fn metadump_streams_whole_lines_up_to_end() {
    let cut = |buf: &[u8], first| metadump_cut(buf, first).map(|c| (c.len, c.ends));
    assert_eq!(cut(b"", true), Ok((0, false)));
    assert_eq!(cut(b"END\r\n", true), Ok((5, true)));
    assert_eq!(cut(b"END\r", true), Ok((0, false)));
    assert_eq!(cut(b"BADCLASS invalid class id\r\n", true), Ok((27, true)));
    assert_eq!(cut(b"BUSY currently", true), Ok((0, false)));
    assert!(cut(b"BUSY\n", true).is_err());
    let listing: &[u8] = b"key=a%0D exp=-1 la=1 cas=1 fetch=no cls=1 size=62\nkey=b exp=-1";
    assert_eq!(cut(listing, true), Ok((50, false)));
    // Later chunks start at a line start; a key line is never an end, an END line is.
    assert_eq!(
        cut(b"key=b exp=-1\nEND\r\nVALUE a 0 1\r\n", false),
        Ok((18, true))
    );
    assert_eq!(cut(b"key=END exp=-1\n", false), Ok((15, false)));
    assert_eq!(cut(b"ENDx\r\nEND\r\n", false), Ok((11, true)));
    assert!(cut(&vec![b'k'; MAX_REPLY_LINE + 1], false).is_err());
}

/// `watch`: one line, or `OK` and then every byte as it comes, never an end.
#[test]
fn watch_streams_after_its_ok() {
    let cut = |buf: &[u8], first| watch_cut(buf, first).map(|c| (c.len, c.ends));
    assert_eq!(cut(b"OK\r", true), Ok((0, false)));
    assert_eq!(cut(b"OK\r\nts=1 gid=", true), Ok((4, false)));
    assert_eq!(cut(b"ERROR\r\n", true), Ok((7, true)));
    assert_eq!(
        cut(b"WATCHER_TOO_MANY log watcher limit reached\r\n", true),
        Ok((44, true))
    );
    assert_eq!(
        cut(b"ts=1 gid=2 type=item_get key=END", false),
        Ok((32, false))
    );
    assert_eq!(cut(b"END\r\n", false), Ok((5, false)));
    assert!(cut(b"OK\n", true).is_err());
}
