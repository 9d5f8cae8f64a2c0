//! Differential sessions beyond the fixed table: the proxy over two servers, a cas race
//! between two clients, libmemcached's `memccapable` ASCII suite, and seeded random pipelined
//! sessions (sent whole or in random chunks) compared with memcached 1.6.18 byte for byte.
mod common;
#[path = "protocol_support/mod.rs"]
mod support;

use common::servers::{show, Client, Memcached, Proxy};
use picklebridge::config::ClientRuntime;
use support::{direct, first_difference, sentinel, via_codec, End};

#[test]
fn proxy_over_two_servers_matches_one_memcached() {
    let direct_mc = Memcached::start();
    let (up1, up2) = (Memcached::start(), Memcached::start());
    let proxy = Proxy::quick(
        &[ClientRuntime::Py3],
        &[up1.addr_string(), up2.addr_string()],
    );
    // No cas uniques in this session: two servers count them independently.
    let mut session = Vec::new();
    for i in 0..60 {
        session.extend_from_slice(format!("set key{i} {i} 0 {}\r\n", i % 7).as_bytes());
        session.extend(std::iter::repeat(b'a' + (i % 26) as u8).take(i % 7));
        session.extend_from_slice(b"\r\n");
    }
    session.extend_from_slice(b"get");
    for i in (0..80).rev() {
        session.extend_from_slice(format!(" key{i} miss{i}").as_bytes());
    }
    session.extend_from_slice(b"\r\ndelete key3 noreply\r\nincr key0 5\r\ntouch key5 100\r\n");
    session.extend_from_slice(b"mg key6 v f k\r\nmg key3 v q k\r\nget key3 key4 key3\r\n");
    session.extend_from_slice(b"flush_all\r\nget key1 key2\r\n");
    let want = direct(direct_mc.addr(), &session, End::Sentinel, 7);
    let got = direct(proxy.addr(0), &session, End::Sentinel, 7);
    assert_eq!(show(&got.0), show(&want.0));
    assert_eq!(got.1, want.1);
}

#[test]
fn cas_race_through_the_proxy_matches_memcached() {
    fn race(addr: std::net::SocketAddr) -> Vec<u8> {
        let mut a = Client::connect(addr).expect("connect");
        let mut b = Client::connect(addr).expect("connect");
        let mut out = a.call(b"set r 0 0 1\r\n0\r\n", b"\r\n");
        let gets = a.call(b"gets r\r\n", b"END\r\n");
        let header = String::from_utf8_lossy(&gets).into_owned();
        let cas = header
            .split("\r\n")
            .next()
            .and_then(|l| l.split(' ').nth(4))
            .expect("cas unique in gets reply")
            .to_string();
        out.extend_from_slice(&b.call(format!("cas r 0 0 1 {cas}\r\nb\r\n").as_bytes(), b"\r\n"));
        out.extend_from_slice(&a.call(format!("cas r 0 0 1 {cas}\r\na\r\n").as_bytes(), b"\r\n"));
        out.extend_from_slice(&a.call(b"get r\r\n", b"END\r\n"));
        out.extend_from_slice(&b.call(
            format!("cas r 0 0 1 {cas} noreply\r\nc\r\nget r\r\n").as_bytes(),
            b"END\r\n",
        ));
        out
    }
    let direct_mc = Memcached::start();
    let upstream = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[upstream.addr_string()]);
    let want = race(direct_mc.addr());
    assert_eq!(
        show(&want),
        "STORED\\r\\nSTORED\\r\\nEXISTS\\r\\nVALUE r 0 1\\r\\nb\\r\\nEND\\r\\nVALUE r 0 1\\r\\nb\\r\\nEND\\r\\n"
    );
    assert_eq!(show(&race(proxy.addr(0))), show(&want));
}

/// libmemcached's protocol checker (`memccapable`, Debian libmemcached-tools, installed by
/// scripts/setup-debian.sh), ASCII and binary tests: what it reports for memcached direct it
/// must report through the proxy (binary connections are spliced to one server).
#[test]
fn memccapable_suite_through_the_proxy_matches_memcached() {
    fn run(addr: std::net::SocketAddr) -> String {
        let out = std::process::Command::new("/usr/bin/memccapable")
            .args(["-h", "127.0.0.1", "-p", &addr.port().to_string(), "-t", "5"])
            .output()
            .expect("run /usr/bin/memccapable (apt-get install libmemcached-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    let direct_mc = Memcached::start();
    let upstream = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[upstream.addr_string()]);
    let want = run(direct_mc.addr());
    assert!(
        want.contains("ascii mget")
            && want.contains("binary setq")
            && want.contains("All tests passed"),
        "memccapable against memcached itself:\n{want}"
    );
    assert_eq!(run(proxy.addr(0)), want);
}

/// A seeded generator of pipelined sessions mixing good and bad requests (no time-dependent
/// replies), for a bounded differential run of memcached against the proxy.
fn random_session(seed: u64, n: usize, with_cas: bool) -> Vec<u8> {
    let mut s = seed;
    let mut next = move |m: u64| {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D) % m
    };
    let mut out = Vec::new();
    for _ in 0..n {
        let key = format!("r{}", next(12));
        let flags = [0, 1, 5, 8, 4294967295u64][next(5) as usize];
        let len = next(40) as usize;
        let data: Vec<u8> = (0..len)
            .map(|i| b"0123456789ab\r\n\0 "[(i * 7 + len) % 16])
            .collect();
        let nr = if next(4) == 0 { " noreply" } else { "" };
        let cmd = ["set", "add", "replace", "append", "prepend"][next(5) as usize];
        let line: Vec<u8> = match next(16) {
            0..=3 => {
                let mut v = format!("{cmd} {key} {flags} 0 {len}{nr}\r\n").into_bytes();
                v.extend_from_slice(&data);
                v.extend_from_slice(b"\r\n");
                v
            }
            4 => {
                // A data block of the wrong length: bad data chunk, then garbage lines.
                let mut v = format!("set {key} {flags} 0 {}{nr}\r\n", len + 1).into_bytes();
                v.extend_from_slice(&data);
                v.extend_from_slice(b"\r\nxx\r\n");
                v
            }
            5..=7 => format!("get {key} r{} {key}\r\n", next(12)).into_bytes(),
            8 if with_cas => format!("gets {key}\r\n").into_bytes(),
            8 => format!("gat 1000 {key}\r\n").into_bytes(),
            9 => format!("delete {key}{nr}\r\n").into_bytes(),
            // Counters live in their own keys and only grow, decr only misses: memcached pads
            // a number that shrinks in place ("100" decr 1 reads "99 ") or reallocates it
            // exactly, depending on in-flight references (how requests were batched into
            // reads), not on the bytes sent; leading zeros shrink too ("01" incr 1 is "2 ").
            10 => {
                let c = next(4);
                match next(3) {
                    0 => format!("set c{c} 0 0 2{nr}\r\n{}\r\n", 10 + next(90)).into_bytes(),
                    _ => format!("incr c{c} {}{nr}\r\n", next(1000)).into_bytes(),
                }
            }
            11 => format!("decr missing{key} {}{nr}\r\n", next(1000)).into_bytes(),
            12 => {
                let c = if with_cas { " c" } else { "" };
                format!("mg {key} v f{c} k s{}\r\n", [" q", ""][next(2) as usize]).into_bytes()
            }
            13 => {
                let q = [" q", "", " MA", " ME q", " I"][next(5) as usize];
                let mut v = format!("ms {key} {len} F{flags}{q}\r\n").into_bytes();
                v.extend_from_slice(&data);
                v.extend_from_slice(b"\r\n");
                v
            }
            14 => format!(
                "md {key}{}\r\nma c{} N0 J7 v\r\n",
                [" q", ""][next(2) as usize],
                next(4)
            )
            .into_bytes(),
            _ => [
                &b"bogus\r\n"[..],
                b"get\r\n",
                b"set x 0 0\r\n",
                b"delete k 1\r\n",
                b"mg r1 x\r\n",
                b"incr c1 x\r\n",
                b"touch r2 100\r\n",
                b"mn\r\n",
            ][next(8) as usize]
                .to_vec(),
        };
        out.extend_from_slice(&line);
    }
    out
}

#[test]
fn random_pipelined_sessions_through_the_proxy_match_memcached() {
    for seed in [1u64, 0xfeed, 0x5eed_cafe, 42, 7, 0xdead_beef] {
        let direct_mc = Memcached::start();
        let upstream = Memcached::start();
        let codec_mc = Memcached::start();
        let proxy = Proxy::quick(&[ClientRuntime::Py2], &[upstream.addr_string()]);
        let session = random_session(seed, 2000, true);
        let want = direct(direct_mc.addr(), &session, End::Sentinel, 1);
        assert!(!want.1, "seed {seed:#x}: memcached closed");
        let by_codec = via_codec(codec_mc.addr(), &session, End::Sentinel, 1);
        assert!(
            by_codec == want,
            "seed {seed:#x}: the codec alone differs from memcached"
        );
        let got = direct(proxy.addr(0), &session, End::Sentinel, 1);
        assert!(
            got == want,
            "seed {seed:#x}: {}",
            first_difference(&want.0, &got.0)
        );
    }
}

/// Sends `input` in seeded random chunks of 1..=64 bytes (one write each, Nagle off).
fn chunked(addr: std::net::SocketAddr, input: &[u8], seed: u64) -> Vec<u8> {
    let mut c = Client::connect(addr).expect("connect");
    let (sent, expect) = sentinel(0);
    let mut all = input.to_vec();
    all.extend_from_slice(&sent);
    let mut s = seed | 1;
    let mut pos = 0;
    while pos < all.len() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = (1 + (s % 64) as usize).min(all.len() - pos);
        c.send(&all[pos..pos + n]);
        pos += n;
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
fn random_sessions_in_random_chunks_over_two_servers_match_memcached() {
    for seed in [3u64, 0xabc, 0x1234_5678] {
        let direct_mc = Memcached::start();
        let (up1, up2) = (Memcached::start(), Memcached::start());
        let proxy = Proxy::quick(
            &[ClientRuntime::Py3],
            &[up1.addr_string(), up2.addr_string()],
        );
        // No cas uniques: two servers count them independently.
        let session = random_session(seed, 1500, false);
        let want = direct(direct_mc.addr(), &session, End::Sentinel, 0);
        assert!(!want.1, "seed {seed:#x}: memcached closed");
        let got = chunked(proxy.addr(0), &session, seed);
        assert!(
            got == want.0,
            "seed {seed:#x}: {}",
            first_difference(&want.0, &got)
        );
    }
}

/// A complete line over 2048 bytes that is no `get`/`gets` (here a `gat` of 300 keys) is
/// served when it arrives whole, after any earlier traffic, by memcached and by the proxy.
/// memcached closes only when more than 2048 bytes wait for their newline; it reads into its
/// 16 KiB buffer from the start whenever the buffer was emptied, and so did not close here
/// where the proxy did: the proxy's read buffer kept its consumed front (13 824 bytes of an
/// earlier `get` line), the next read took the 2 560 bytes left, without the newline.
#[test]
fn long_gat_line_after_earlier_traffic_is_served_like_memcached() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[mc.addr_string()]);
    // A `get` line of exactly `len` bytes: keys of 199 bytes, the last one shorter.
    let get_line = |len: usize| {
        let mut line = b"get".to_vec();
        let mut i = 0;
        while line.len() + 2 < len {
            let k = (len - 2 - line.len() - 1).min(199);
            line.push(b' ');
            line.extend(format!("{i:0>k$}").bytes().take(k));
            i += 1;
        }
        line.extend_from_slice(b"\r\n");
        assert_eq!(line.len(), len);
        line
    };
    let gat: String = format!(
        "gat 100{}\r\n",
        (0..300).map(|i| format!(" key{i:05}")).collect::<String>()
    );
    assert_eq!(gat.len(), 2709);
    for earlier in [13_824, 14_000, 14_304] {
        for addr in [mc.addr(), proxy.addr(0)] {
            let mut c = Client::connect(addr).unwrap();
            assert_eq!(c.call(&get_line(earlier), b"END\r\n"), b"END\r\n");
            assert_eq!(
                c.call(gat.as_bytes(), b"END\r\n"),
                b"END\r\n",
                "{addr}, after {earlier} bytes"
            );
        }
    }
}

/// memcached looks for a line's newline in its 16 KiB read buffer, which it fills afresh after
/// a data block larger than it: a line of 16 385 bytes with its CRLF (no get) closes the
/// connection, one of 16 384 is served. The proxy served the longer one after a 40 KB `set`,
/// which had grown its own buffer. Each line goes in a write of its own after the earlier
/// request's reply (memcached's close also depends on how much of a line one read takes).
#[test]
fn lines_around_the_16_kib_read_buffer_close_like_memcached() {
    let mc = Memcached::start();
    let upstream = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[upstream.addr_string()]);
    // A line of `len` bytes with its CRLF, keys of 199 bytes.
    let line = |head: &str, len: usize| {
        let mut l = head.as_bytes().to_vec();
        while l.len() + 2 < len {
            l.push(if l.len() % 200 == 0 { b' ' } else { b'k' });
        }
        l.extend_from_slice(b"\r\n");
        l
    };
    let set = |len: usize| {
        let mut s = format!("set big 0 0 {len}\r\n").into_bytes();
        s.resize(s.len() + len, b'v');
        s.extend_from_slice(b"\r\n");
        s
    };
    let cases = [
        (set(40_000), line("bogus ", 16_384), false),
        (set(40_000), line("bogus ", 16_385), true),
        (set(100_000), line("gat 100 ", 16_384), false),
        (set(100_000), line("gat 100 ", 16_385), true),
        (set(10), line("bogus ", 16_385), true),
        (line("get ", 20_000), line("bogus ", 16_385), true),
        (line("get ", 20_000), line("get ", 16_385), false),
    ];
    // The earlier request and its reply, then the line with the sentinel in one write (a
    // second write could meet the reset of the close): the replies up to the sentinel's, or
    // to the close.
    let run = |addr: std::net::SocketAddr, earlier: &[u8], line: &[u8], i: usize| {
        use std::io::{Read, Write};
        let (sent, expect) = sentinel(i);
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        let mut w = s.try_clone().expect("clone");
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut read = |got: &mut Vec<u8>, until: &[u8]| {
            while !got.ends_with(until) {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
            false
        };
        w.write_all(earlier).expect("write");
        assert!(!read(&mut got, b"\r\n"), "case {i}: {addr} closed early");
        let _ = w.write_all(&[line, &sent].concat());
        let closed = read(&mut got, &expect);
        if !closed {
            got.truncate(got.len() - expect.len());
        }
        (got, closed)
    };
    for (i, (earlier, line, closes)) in cases.iter().enumerate() {
        let want = run(mc.addr(), earlier, line, i);
        assert_eq!(want.1, *closes, "case {i}: memcached");
        let got = run(proxy.addr(0), earlier, line, i);
        assert_eq!((show(&got.0), got.1), (show(&want.0), want.1), "case {i}");
    }
}

/// memcached decides "too large" at the command line, from the item it would need (data,
/// key, flags, CAS and its item header against `-I`), and swallows the data whatever it holds.
/// The proxy checked the data length alone against `item_size`, so a `set` between the two
/// limits whose block did not end in CRLF got `CLIENT_ERROR bad data chunk` and kept the old
/// value, where memcached answers `SERVER_ERROR object too large for cache` and unlinks it.
#[test]
fn values_at_the_item_limit_are_refused_like_memcached() {
    let mc = Memcached::start();
    let upstream = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[upstream.addr_string()]);
    let mut cases = Vec::new();
    for (line, vlen) in [
        ("set x 0 0 1048516", 1_048_516),
        ("set x 0 0 1048517", 1_048_517),
        ("set x 0 0 1048576", 1_048_576),
        ("set x 5 0 1048513 noreply", 1_048_513),
        ("add x 0 0 1048517", 1_048_517),
        ("ms x 1048517 T0", 1_048_517),
        ("ms eA== 1048513 b F5", 1_048_513),
    ] {
        for end in [&b"\r\n"[..], b"xx"] {
            let mut case = b"set x 0 0 3\r\nold\r\n".to_vec();
            case.extend_from_slice(format!("{line}\r\n").as_bytes());
            case.resize(case.len() + vlen, b'v');
            case.extend_from_slice(end);
            case.extend_from_slice(b"mg x s v\r\n");
            cases.push(case);
        }
    }
    for (i, case) in cases.iter().enumerate() {
        let want = direct(mc.addr(), case, End::Sentinel, i);
        let got = direct(proxy.addr(0), case, End::Sentinel, i);
        assert!(!want.1, "case {i}: memcached closed");
        assert!(
            got == want,
            "case {i}: {}",
            first_difference(&want.0, &got.0)
        );
    }
}

/// A retrieval with a key over 250 bytes after valid keys: memcached answers `CLIENT_ERROR`
/// alone, but has fetched, and for gat/gats touched, the keys before the bad one (`gats -1`
/// expires them), not those after it. The proxy sent nothing upstream, so they kept their
/// exptime behind it.
#[test]
fn keys_before_a_long_key_are_touched_like_memcached() {
    let mc = Memcached::start();
    let (up1, up2) = (Memcached::start(), Memcached::start());
    let proxy = Proxy::quick(
        &[ClientRuntime::Py3],
        &[up1.addr_string(), up2.addr_string()],
    );
    let long = "x".repeat(251);
    // Stored in a write of their own: memcached drops the queued replies of the earlier
    // requests of a read when it meets the bad key (see README).
    let mut sets = String::new();
    for k in 0..12 {
        sets.push_str(&format!("set k{k} 0 0 1\r\n{}\r\n", k % 10));
    }
    let mut cases = Vec::new();
    for cmd in ["gat -1", "gats -1", "get", "gets"] {
        let mut case = String::new();
        case.push_str(&format!("{cmd} k0 k1 k2 k3 k4 k5 {long} k6 k7\r\n"));
        case.push_str("get k0 k1 k2 k3 k4 k5 k6 k7 k8\r\n");
        case.push_str(&format!("{cmd} {long} k8\r\nget k8\r\n"));
        cases.push(case);
    }
    for (i, case) in cases.iter().enumerate() {
        let want = [&sets, case].map(|s| direct(mc.addr(), s.as_bytes(), End::Sentinel, i));
        let got = [&sets, case].map(|s| direct(proxy.addr(0), s.as_bytes(), End::Sentinel, i));
        assert!(!want[1].1, "case {i}: memcached closed");
        assert!(
            got[1] == want[1],
            "case {i}: {}",
            first_difference(&want[1].0, &got[1].0)
        );
    }
}
