//! Differential conformance: a table of good and bad requests is sent to a real memcached
//! 1.6.18 directly, and through a minimal synchronous proxy built only from the protocol codec
//! (parse_request -> local reply or compose_request -> memcached -> parse_response ->
//! client_sees -> compose_response) talking to a second, identical memcached. The bytes the
//! client receives, and whether the connection is closed, must be identical.
//!
//! The same table then goes through the real proxy (`picklebridge serve`, in-process) in front
//! of a third memcached and must again match memcached; a shorter pipelined session of good and
//! bad requests does too when split into two writes at every byte.
//!
//! All memcached instances see the same sequence of operations, so their state (and cas
//! uniques) stay in step. Time-dependent replies (stats, `me`, delayed flush, exptimes short
//! enough to expire during the run) are left out.
mod common;
#[path = "protocol_support/mod.rs"]
mod support;

use std::time::Duration;

use bytes::BytesMut;
use common::servers::{show, Client, Memcached, Proxy};
use picklebridge::config::ClientRuntime;
use picklebridge::protocol::{compose_response, parse_request_buf, parse_response_buf, Limits};
use support::{direct, sentinel, via_codec, End};

fn long_key(n: usize) -> String {
    "k".repeat(n)
}

/// The table: (request bytes, how the case ends).
fn table() -> Vec<(Vec<u8>, End)> {
    use End::*;
    let mut t: Vec<(Vec<u8>, End)> = Vec::new();
    let mut s = |b: &[u8]| t.push((b.to_vec(), Sentinel));
    // Storage and retrieval.
    s(b"set a 0 0 1\r\nx\r\n");
    s(b"set b 5 0 2 noreply\r\nhi\r\nget a b c\r\n");
    s(b"gets a b\r\n");
    s(b"add a 0 0 1\r\ny\r\nreplace a 1 0 1\r\nz\r\nget a\r\n");
    s(b"append a 0 0 2\r\n12\r\nprepend a 0 0 2\r\n00\r\nget a\r\n");
    s(b"add nx 0 0 1 noreply\r\nv\r\nreplace ny 0 0 1\r\nv\r\n");
    s(b"set k 4294967296 0 1\r\nx\r\nget k\r\n");
    s(b"set k 0 0 +01\r\nx\r\nset k 0 0 \t1\r\ny\r\nget k\r\n");
    s(b"set k 0 -1 1\r\nx\r\nget k\r\n");
    s(b"set k 0 2147483648 1\r\nx\r\n");
    s(b"set e 0 0 0\r\n\r\nget e\r\n");
    s(b"set bin 0 0 4\r\n\r\n\0\xff\r\nget bin\r\n");
    s(b"gat 100 a b\r\ngats 0 a\r\ngat 10\r\n");
    s(b"get a a a\r\n");
    s(b"  get  a   b \r\n");
    s(b"get a\tb a\r\n");
    s(b"get a\0zz yy\r\n");
    s(b"bget a\r\n");
    // cas races.
    s(b"set c 0 0 1\r\n1\r\ngets c\r\n");
    s(b"cas c 0 0 1 999\r\n2\r\ncas nope 0 0 1 1\r\n2\r\n");
    s(b"cas c 0 0 1 999 noreply\r\n2\r\nget c\r\n");
    // Bad storage lines.
    s(b"set k 0 0\r\nx\r\n");
    s(b"set k 0 0 1 noreply x\r\nx\r\n");
    s(b"set k x 0 1\r\nx\r\n");
    s(b"set k -1 0 1\r\nx\r\n");
    s(b"set k 0 x 1\r\nx\r\n");
    s(b"set k 0 0 1x\r\nx\r\n");
    s(b"set k 0 0 -1\r\nabc\r\n");
    s(b"set k 0 0 -1 noreply\r\nabc\r\n");
    s(b"set k 0 0 noreply\r\nabc\r\n");
    s(b"set k 0 0 2147483646\r\nx\r\n");
    s(b"cas k 0 0 1\r\nx\r\n");
    s(b"cas k 0 0 1 x\r\nx\r\n");
    s(b"set k 0 0 3\r\nabcde\r\nget k\r\n");
    s(b"set k 0 0 3 noreply\r\nabcde\r\nget k\r\n");
    s(b"set k 0 0 1\nx\nget k\n");
    s(b"set k 0 0 1\r\nx\n\nget k\r\n");
    let lk = long_key(251);
    s(format!("set {lk} 0 0 1\r\nx\r\n").as_bytes());
    s(format!("set {lk} 0 0 1 noreply\r\nx\r\n").as_bytes());
    s(format!("get a {lk} b\r\n").as_bytes());
    s(format!("get {} a\r\n", long_key(250)).as_bytes());
    // Large and over-limit values.
    let big = |n: usize, tail: &str| {
        let mut v = format!("set big 0 0 {n}{tail}\r\n").into_bytes();
        v.extend(std::iter::repeat(b'v').take(n));
        v.extend_from_slice(b"\r\nget big\r\n");
        v
    };
    s(&big(1_048_516, ""));
    s(&big(1_048_517, ""));
    s(&big(1_048_576, ""));
    s(&big(1_048_577, ""));
    s(&big(2_000_000, ""));
    s(&big(2_000_000, " noreply"));
    // A too-large set or ms deletes the old item; add/replace/append/prepend/cas keep it.
    for cmd in [
        "set", "add", "replace", "append", "prepend", "cas", "ms", "ms2",
    ] {
        let mut v = b"set old 0 0 1\r\nx\r\nset oldb 0 0 1\r\nx\r\n".to_vec();
        v.extend_from_slice(&match cmd {
            "cas" => b"cas old 0 0 2000000 1\r\n".to_vec(),
            "ms" => b"ms old 2000000 ME q\r\n".to_vec(),
            "ms2" => b"ms b2xkYg== 2000000 b\r\n".to_vec(),
            _ => format!("{cmd} old 0 0 2000000\r\n").into_bytes(),
        });
        v.extend(std::iter::repeat(b'v').take(2_000_000));
        v.extend_from_slice(b"\r\nget old oldb\r\n");
        s(&v);
    }
    // delete.
    s(b"set d 0 0 1\r\nx\r\ndelete d\r\ndelete d\r\n");
    s(b"delete d 0\r\ndelete d 1\r\ndelete d 0 noreply\r\ndelete d noreply\r\n");
    s(b"delete d x noreply\r\ndelete d noreply 0\r\ndelete d 0 x\r\ndelete\r\n");
    s(b"delete a b c d\r\ndelete noreply\r\n");
    // incr / decr.
    s(b"set n 0 0 2\r\n10\r\nincr n 18446744073709551615\r\n");
    s(b"set n 0 0 2\r\n10\r\ndecr n 100\r\n");
    s(b"set n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\n");
    s(b"incr n 18446744073709551616\r\nincr n abc\r\nincr n -1\r\n");
    s(b"incr n 1 noreply\r\nincr n\r\nincr n 1 2\r\nincr n 1 noreply x\r\n");
    s(b"incr a 1\r\nincr missing 1\r\ndecr missing 1\r\nincr n noreply\r\n");
    // decr keeps the item length: "100" decr 1 reads back as "99 " (space padded).
    s(b"set p 0 0 3\r\n100\r\ndecr p 1\r\nget p\r\nincr p 1\r\nget p\r\n");
    s(b"set p 0 0 3\r\n 10\r\nincr p 1\r\nset p 0 0 3\r\n10 \r\nincr p 1\r\n");
    // touch.
    s(b"touch a 100\r\ntouch missing 1\r\ntouch a x\r\ntouch a\r\ntouch a 100 noreply\r\n");
    s(b"touch a noreply\r\ntouch a 100 x\r\n");
    // flush_all, version, verbosity.
    s(b"flush_all x\r\nflush_all noreply x\r\nflush_all x noreply\r\nflush_all 1 2 3\r\n");
    s(b"version\r\nversion x y\r\n");
    s(b"verbosity\r\nverbosity 1\r\nverbosity 1 noreply\r\nverbosity x\r\nverbosity 1 2\r\n");
    s(b"verbosity noreply\r\nverbosity 0\r\n");
    // Unknown and malformed lines.
    s(b"x\r\n\r\n\n\rGET a\r\nget\r\nget \r\ngets\r\nsett a\r\nmx\r\nm\r\nmgg a\r\n");
    s(b"stats nosuch\r\nstats detail\r\nstats x y z\r\n");
    // mg with v, without f, at memcached's limit of 17 flags (no room for the proxy's f).
    s(b"set k18 0 0 2\r\nhi\r\nmg k18 v s t c k O1 h l u N30 T30 R30 P L I C1 D1\r\n");
    s(b"mg nok18 v s t c k O1 h l u N30 T30 R30 P L I C1 D1\r\nmg k18 v s t k O1 h l u q\r\nmn\r\n");
    // Quiet ma that creates its item shows its reply; one on an existing item hides it.
    s(b"ma nope N0 q\r\nmn\r\nma nope N0 q\r\nmn\r\nma nope2 N0 J7 q v t k O9\r\nmn\r\n");
    s(b"ma nope3 N30 MD q v\r\nma nope3 N30 q v\r\nma nope4 q\r\nma nope5 N0 q x\r\nmn\r\n");
    s(b"set txt 0 0 1\r\na\r\nma txt N0 q\r\nma txt N0 q v\r\nmn\r\n");
    // No END after these two: the get behind them must get its own reply.
    s(b"stats sizes_enable\r\nget a\r\nstats sizes_disable x\r\nget missing\r\nget a\r\n");
    let mut tokens = b"set a".to_vec();
    for _ in 0..30 {
        tokens.extend_from_slice(b" 1");
    }
    tokens.extend_from_slice(b"\r\nx\r\n");
    s(&tokens);
    let mut many = b"get".to_vec();
    for i in 0..300 {
        many.extend_from_slice(format!(" a k{i}").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    s(&many);
    let mut long_line = vec![b'x'; 3000];
    long_line.extend_from_slice(b"\r\n");
    s(&long_line);
    // Meta commands.
    s(b"ms m 2\r\nhi\r\nmg m v\r\nmg m\r\nmg m v f c k s t O9\r\nmg m s v q\r\n");
    s(b"ms bQ== 2 b k c\r\nhi\r\nmg bQ== b v k\r\n");
    s(b"mg nope v q\r\nmg nope v\r\nmg nope v k O1\r\nmg nope q k\r\n");
    s(b"mg m v v\r\nmg m x\r\nmg\r\nmg m zz\r\nmg m 1\r\nmg m \x80\r\nmg m q q\r\n");
    s(format!("mg m v O{}\r\nmg m v q O{}\r\n", long_key(33), long_key(40)).as_bytes());
    s(b"ms m\r\nms m x\r\nhi\r\nms m -1\r\nhi\r\n");
    s(b"ms m 2 MZ\r\nhi\r\nms m 2 MZ q\r\nhi\r\nms m 2 MAB\r\nhi\r\nms m 2 Ma\r\nhi\r\n");
    s(b"ms m 2 q\r\nhi\r\nms m 2 ME q\r\nhi\r\nms m 2 MS q\r\nho\r\nmg m v\r\n");
    s(b"ms m 2 q\r\nhiX\r\nms m 2\r\nhiX\r\nms m 2 x\r\nhi\r\nms m 2 x\r\nhiX\r\n");
    s(b"ms m 2 F-1\r\nhi\r\nms m 2 Fx\r\nhi\r\nms m 2 Tx\r\nhi\r\nms m 2 T0 F5 c k O123 b\r\nhi\r\n");
    s(b"ms m 2 I\r\nhi\r\nms m 2 S2\r\nhi\r\nms m 2 c q C1\r\nhi\r\n");
    s(b"md m q\r\nmd m\r\nmd m x\r\nmd nope q\r\nmd m q C1\r\n");
    s(b"ma m\r\nma cnt N0 J5 v\r\nma cnt v MD D2\r\nma cnt MX\r\nma cnt Dx\r\nma cnt q\r\n");
    s(b"ma cnt q C1\r\nma nope q\r\nma cnt v q k\r\n");
    s(b"mn\r\nmn x\r\nme\r\nme nope\r\n");
    // Stale-while-revalidate: vivify on miss (N), win tokens (W/Z), invalidation (I), recache.
    s(b"mg viv N30 v c t\r\nmg viv N30 v c\r\nms viv 3 T60\r\nnew\r\nmg viv v c t\r\n");
    s(b"md viv I T30 q\r\nmg viv v c\r\nmg viv v c\r\nms viv 3 I C1\r\nold\r\n");
    s(b"mg viv v c s f k O7 q\r\nma viv\r\nma ctr N0 J10 v t\r\nma ctr MI D5 v c\r\n");
    s(b"ma ctr M- D100 v\r\nma ctr C1 v\r\nmg ctr R30 v\r\nmg ctr h l u v\r\n");
    s(b"ms Zm9vIGJhcg== 3 b k c\r\nabc\r\nmg Zm9vIGJhcg== b k v\r\nget foo\r\n");
    s(b"md Zm9vIGJhcg== b k q\r\nmg Zm9vIGJhcg== b k v q\r\nmg Zm9v b v\r\n");
    s(b"ms app 1 MA\r\nx\r\nms app 1 ME\r\nx\r\nms app 1 MA\r\ny\r\nms app 1 MP\r\nz\r\n");
    s(b"ms app 1 MR\r\nr\r\nmg app v\r\nms app2 1 MR q\r\nr\r\nms app 1 F4294967295\r\nq\r\n");
    s(b"mg app v f\r\nms app 1 F4294967296\r\nq\r\nmg app f\r\n");
    s(format!("mg {lk} v\r\nmg {lk} v q\r\nms {lk} 2\r\nhi\r\n").as_bytes());
    s(format!("mg m {}\r\n", ["v"; 19].join(" ")).as_bytes());
    s(format!("md m {}\r\n", ["q"; 19].join(" ")).as_bytes());
    let mut ms_big = b"ms mbig 2000000 T0\r\n".to_vec();
    ms_big.extend(std::iter::repeat(b'v').take(2_000_000));
    ms_big.extend_from_slice(b"\r\nmg mbig v\r\n");
    s(&ms_big);
    s(b"set z 0 0 1\r\nz\r\nflush_all -1\r\nget z\r\nflush_all 0 noreply\r\n");
    // Binary garbage, stray CRs and control bytes (but not a leading 0x80 on a fresh
    // connection: memcached then switches that connection to the binary protocol).
    s(b"get a\r\n\x80\r\n\0get a\r\n\xff\xfe\r\n\x01\x02 \x03\r\n");
    s(b"get a\r\r\nset a 0 0 1\r\r\nx\r\nset a 0 0 1 \r\ny\r\nget a \x0b\r\n");
    s(b"set ctl\x01\x7f 0 0 1\r\nx\r\nget ctl\x01\x7f\r\ndelete ctl\x01\x7f\r\n");
    // Administration commands with one-line replies.
    s(b"shutdown\r\nshutdown graceful\r\nslabs\r\nslabs automove 1\r\nslabs automove 5\r\n");
    s(b"slabs automove 1 noreply\r\nlru mode flat\r\nlru mode segmented noreply\r\nlru\r\n");
    s(b"lru x\r\nlru temp_ttl 10\r\nlru_crawler\r\ncache_memlimit 100 noreply\r\n");
    s(b"cache_memlimit 4\r\ncache_memlimit x\r\ncache_memlimit\r\nextstore x y\r\n");
    s(b"misbehave\r\ndebugtime 1\r\nrefresh_certs\r\nrefresh_certs noreply\r\n");
    // 10 000 keys in one get (a 110 KB line; memcached grows its buffer for get lines).
    let mut huge_get = b"get".to_vec();
    for i in 0..10_000 {
        huge_get.extend_from_slice(format!(" k{i:08}").as_bytes());
    }
    huge_get.extend_from_slice(b" a\r\n");
    s(&huge_get);
    // Cases after which memcached closes the connection.
    t.push((b"quit\r\nversion\r\n".to_vec(), Close));
    t.push((b"set a 0 0 1\r\nx\r\nquit x\r\nget a\r\n".to_vec(), Close));
    t.push((vec![b'x'; 3000], Close));
    let mut set_line = format!("set {} 0 0 1\r\nx\r\n", long_key(20000)).into_bytes();
    set_line.truncate(20010);
    t.push((set_line, Close));
    t
}

#[test]
fn codec_replies_match_memcached_byte_for_byte() {
    let codec_mc = Memcached::start();
    let failures = diff_table(&|input, end, i| via_codec(codec_mc.addr(), input, end, i));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Replies received for a case, and whether the connection was closed.
type Outcome = (Vec<u8>, bool);

/// Runs the whole table against `target` and collects differences from memcached direct.
fn diff_table(target: &dyn Fn(&[u8], End, usize) -> Outcome) -> Vec<String> {
    let direct_mc = Memcached::start();
    let mut failures = Vec::new();
    for (i, (input, end)) in table().iter().enumerate() {
        let want = direct(direct_mc.addr(), input, *end, i);
        // Guard against a vacuous pass: memcached itself answered the sentinel or closed.
        assert_eq!(
            want.1,
            *end == End::Close,
            "case {i}: memcached {}",
            show(&want.0)
        );
        let got = target(input, *end, i);
        if want != got {
            failures.push(format!(
                "case {i} {}\n  memcached: {} closed={}\n  proxy:     {} closed={}",
                show(&input[..input.len().min(120)]),
                show(&want.0[..want.0.len().min(300)]),
                want.1,
                show(&got.0[..got.0.len().min(300)]),
                got.1
            ));
        }
    }
    failures
}

#[test]
fn proxy_replies_match_memcached_byte_for_byte() {
    let upstream = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[upstream.addr_string()]);
    let addr = proxy.addr(0);
    let failures = diff_table(&|input, end, i| direct(addr, input, end, i));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A pipelined session of good and bad requests (every reply deterministic).
const SPLIT_SESSION: &[u8] = b"set a 0 0 3\r\nabc\r\nget a b\r\nset k 0 0 -1\r\nxy\r\n\
gets a\r\ndelete a noreply\r\nincr a 1\r\nms m 2 T0 q\r\nhi\r\nmg m v q k\r\nbogus\r\n\
set b 0 0 2\r\nxyz\r\nmn\r\n";

/// Sends `input` to `addr` in two writes split at `at` (a pause between), and reads up to the
/// sentinel reply.
fn split_send(addr: std::net::SocketAddr, input: &[u8], at: usize, i: usize) -> Vec<u8> {
    let mut c = Client::connect(addr).expect("connect");
    let (sent, expect) = sentinel(i);
    c.send(&input[..at]);
    std::thread::sleep(Duration::from_millis(2));
    c.send(&input[at..]);
    c.send(&sent);
    let mut got = c.read_until(&expect);
    assert!(
        got.ends_with(&expect),
        "no sentinel reply from {addr}: {}",
        show(&got)
    );
    got.truncate(got.len() - expect.len());
    got
}

#[test]
fn proxy_matches_memcached_when_requests_are_split_at_every_byte() {
    let direct_mc = Memcached::start();
    let upstream = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[upstream.addr_string()]);
    let mut failures = Vec::new();
    for at in 0..=SPLIT_SESSION.len() {
        let want = split_send(direct_mc.addr(), SPLIT_SESSION, at, at);
        let got = split_send(proxy.addr(0), SPLIT_SESSION, at, at);
        if want != got {
            failures.push(format!(
                "split at {at}\n  memcached: {}\n  proxy:     {}",
                show(&want),
                show(&got)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Replies whose content differs between servers (stats, me) still frame exactly: each
/// reply memcached sends parses as one complete response that composes back to its bytes.
#[test]
fn time_dependent_replies_frame_and_round_trip() {
    let mc = Memcached::start();
    let mut c = Client::connect(mc.addr()).expect("connect");
    c.send(b"set a 1 0 3\r\nabc\r\nset b 0 100 0\r\n\r\n");
    assert_eq!(
        c.read_until(b"STORED\r\nSTORED\r\n"),
        b"STORED\r\nSTORED\r\n"
    );
    let limits = Limits::default();
    let requests: &[&[u8]] = &[
        b"stats\r\n",
        b"stats settings\r\n",
        b"stats items\r\n",
        b"stats slabs\r\n",
        b"stats sizes\r\n",
        b"stats sizes_enable\r\n",
        b"stats sizes_disable\r\n",
        b"stats conns\r\n",
        b"stats detail on\r\n",
        b"stats detail dump\r\n",
        b"stats cachedump 1 10\r\n",
        b"stats reset\r\n",
        b"me a\r\n",
        b"me b\r\n",
        b"mg a v t l h c f s k O1\r\n",
        b"gats 100 a b\r\n",
    ];
    for (i, line) in requests.iter().enumerate() {
        let req = match parse_request_buf(&mut BytesMut::from(*line), &limits) {
            Ok(Some(req)) => req,
            other => panic!("{}: {other:?}", show(line)),
        };
        let (sent, expect) = sentinel(i);
        c.send(line);
        c.send(&sent);
        let mut reply = c.read_until(&expect);
        assert!(reply.ends_with(&expect), "{}: {}", show(line), show(&reply));
        reply.truncate(reply.len() - expect.len());
        let mut buf = BytesMut::from(&reply[..]);
        let resp = parse_response_buf(&req, &mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", show(line), show(&reply)))
            .unwrap_or_else(|| panic!("{}: incomplete: {}", show(line), show(&reply)));
        assert!(buf.is_empty(), "{}: left {}", show(line), show(&buf));
        let mut out = BytesMut::new();
        compose_response(&resp, &mut out);
        assert_eq!(&out[..], &reply[..], "{}", show(line));
    }
}

/// Sends `input` one byte per write (a 1 ms pause between) and reads up to the sentinel.
fn drip(addr: std::net::SocketAddr, input: &[u8], i: usize) -> Vec<u8> {
    let mut c = Client::connect(addr).expect("connect");
    let (sent, expect) = sentinel(i);
    for b in input.iter().chain(sent.iter()) {
        c.send(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut got = c.read_until(&expect);
    assert!(
        got.ends_with(&expect),
        "no sentinel reply from {addr}: {}",
        show(&got)
    );
    got.truncate(got.len() - expect.len());
    got
}

#[test]
fn proxy_matches_memcached_when_fed_one_byte_at_a_time() {
    let direct_mc = Memcached::start();
    let upstream = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py2], &[upstream.addr_string()]);
    let session: &[u8] = b"set a 1 0 3\r\nabc\r\nget a\r\nincr a 1\r\nset n 0 0 1\r\n1\r\n\
incr n 41 noreply\r\nget n\r\ndelete k 1\r\nmg a f v q\r\nmg zz v q\r\nmd a q\r\nmg a v\r\n\
set b 0 0 1 noreply\r\nbad\r\nms c 2 q\r\nhiX\r\nget b c\r\n";
    let want = drip(direct_mc.addr(), session, 1);
    let got = drip(proxy.addr(0), session, 1);
    assert_eq!(show(&got), show(&want));
}
