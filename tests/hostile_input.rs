//! Hostile and broken clients against the proxy, compared with a real memcached where memcached
//! defines the behaviour: every bad input gets memcached's reply and memcached's decision to
//! keep or close the connection, and a bystander client keeps being served throughout.
//! Memory-shaped attacks (a client that never reads, slowloris, floods) check that the proxy
//! stays bounded and keeps serving others.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::servers::{show, Client, Memcached, Proxy};
use common::wait::wait_until;
use picklebridge::config::{ClientRuntime, Config};

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The reply ended with the `MN` sentinel.
    Sentinel,
    /// The server closed the connection (FIN or RST).
    Closed,
    /// Nothing more arrived within the quiet period.
    Quiet,
}

const SENTINEL: &[u8] = b"MN\r\n";

/// Sends `input` on a fresh connection and reads until the sentinel reply, a close, or `quiet`.
fn exchange(addr: SocketAddr, input: &[u8], quiet: Duration) -> (Vec<u8>, End) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(quiet)).expect("timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // A server that closes early resets the connection; later writes may fail, reads tell.
    let _ = stream.write_all(input);
    let mut out = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let end = loop {
        if out.ends_with(SENTINEL) {
            break End::Sentinel;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break End::Closed,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break End::Quiet
            }
            Err(_) => break End::Closed,
        }
    };
    (out, end)
}

/// A client connected before the attack, used after each case to prove others are served.
struct Bystander {
    client: Client,
    n: u32,
}

impl Bystander {
    fn check(&mut self) {
        self.n += 1;
        let value = format!("v{}", self.n);
        let set = format!("set bystander 0 0 {}\r\n{value}\r\n", value.len());
        assert_eq!(self.client.call(set.as_bytes(), b"\r\n"), b"STORED\r\n");
        let got = self.client.call(b"get bystander\r\n", b"END\r\n");
        let want = format!("VALUE bystander 0 {}\r\n{value}\r\nEND\r\n", value.len());
        assert_eq!(show(&got), show(want.as_bytes()), "bystander not served");
    }
}

fn seeded_garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn bad_input_gets_memcacheds_reply_and_close_decision() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[mc.addr_string()]);
    let mut bystander = Bystander {
        client: Client::connect(proxy.addr(0)).expect("bystander"),
        n: 0,
    };
    let many_keys: Vec<u8> = {
        let mut line = b"get".to_vec();
        for i in 0..10_000 {
            line.extend_from_slice(format!(" key{i}").as_bytes());
        }
        line.extend_from_slice(b"\r\nmn\r\n");
        line
    };
    let many_hits: Vec<u8> = {
        let mut line = b"set key7 0 0 1\r\nx\r\nset key9999 5 0 2\r\nyy\r\nget".to_vec();
        for i in 0..10_000 {
            line.extend_from_slice(format!(" key{i}").as_bytes());
        }
        line.extend_from_slice(b"\r\nmn\r\n");
        line
    };
    let mut garbage_lines = b"x".to_vec();
    garbage_lines.extend(seeded_garbage(0xbad_5eed, 4096));
    garbage_lines.extend_from_slice(b"\r\nmn\r\n");
    let long_key = format!("get {}\r\nmn\r\n", "k".repeat(251));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "binary garbage line",
            b"\x00\x01\x02\xff\xfe\x80\r\nmn\r\n".to_vec(),
        ),
        // Not first on the connection: a first byte 0x80 switches memcached to its binary
        // protocol, which the proxy does not speak (see README "Failure behaviour").
        (
            "a pickle as a command",
            b"verbosity 1\r\n\x80\x02K\x01.\r\nmn\r\n".to_vec(),
        ),
        ("random bytes with newlines", garbage_lines),
        ("lines without CR", b"set k 0 0 1\nx\nget k\nmn\n".to_vec()),
        ("bare CR inside a line", b"get a\rb\r\nmn\r\n".to_vec()),
        ("empty lines", b"\r\n\n \r\nmn\r\n".to_vec()),
        (
            "line over 2048 bytes",
            [vec![b'x'; 3000], b"\r\nmn\r\n".to_vec()].concat(),
        ),
        ("line over the read buffer, no newline", vec![b'x'; 20_000]),
        ("negative length", b"set k 0 0 -1\r\nmn\r\n".to_vec()),
        (
            "overflowing u32 length",
            b"set k 0 0 4294967296\r\nmn\r\n".to_vec(),
        ),
        (
            "overflowing u64 length",
            b"set k 0 0 99999999999999999999\r\nmn\r\n".to_vec(),
        ),
        ("negative flags", b"set k -1 0 1\r\nx\r\nmn\r\n".to_vec()),
        (
            "data longer than declared",
            b"set k 0 0 3\r\nabcdef\r\nmn\r\n".to_vec(),
        ),
        (
            "data shorter than declared",
            b"set k 0 0 10\r\nabc\r\nxyzw\r\nmn\r\nmn\r\n".to_vec(),
        ),
        ("value over the item size", {
            let mut v = b"set big 0 0 2000000\r\n".to_vec();
            v.extend(std::iter::repeat(b'v').take(2_000_000));
            v.extend_from_slice(b"\r\nmn\r\n");
            v
        }),
        ("10 000 keys in one get", many_keys),
        ("10 000 keys, two hits", many_hits),
        ("key of 251 bytes", long_key.into_bytes()),
        (
            "keys with control characters",
            b"set a\x01b 0 0 1\r\nx\r\nget a\x01b a\tb \x7f\r\nmn\r\n".to_vec(),
        ),
        (
            "incr on garbage delta",
            b"incr k abc\r\nincr k -1\r\nmn\r\n".to_vec(),
        ),
        (
            "unknown command",
            b"frobnicate k\r\nGET k\r\nmn\r\n".to_vec(),
        ),
        // memcached hangs up on an unknown command ending in an `HTTP/` token.
        ("a stray HTTP request", b"GET / HTTP/1.0\r\nmn\r\n".to_vec()),
        (
            "HTTP/ not last, or after a known command",
            b"GET / HTTP/1.0 x\r\nget HTTP/1.0\r\ntouch HTTP/1.1\r\nmn\r\n".to_vec(),
        ),
    ];
    let quiet = Duration::from_millis(600);
    for (name, input) in &cases {
        let direct = exchange(mc.addr(), input, quiet);
        let proxied = exchange(proxy.addr(0), input, quiet);
        assert_eq!(
            (show(&proxied.0), proxied.1),
            (show(&direct.0), direct.1),
            "{name}: proxy (left) differs from memcached (right)"
        );
        bystander.check();
    }
}

#[test]
fn half_closed_client_still_gets_its_replies() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[mc.addr_string()]);
    for addr in [mc.addr(), proxy.addr(0)] {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
            .write_all(b"set hc 0 0 2\r\nhi\r\nget hc\r\nmn\r\n")
            .expect("write");
        stream.shutdown(Shutdown::Write).expect("half close");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        assert_eq!(
            show(&out),
            "STORED\\r\\nVALUE hc 0 2\\r\\nhi\\r\\nEND\\r\\nMN\\r\\n",
            "half-closed client via {addr}"
        );
    }
}

#[test]
fn slowloris_clients_do_not_starve_others() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[mc.addr_string()]);
    let mut slow: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(proxy.addr(0)).expect("slow connect"))
        .collect();
    let mut bystander = Bystander {
        client: Client::connect(proxy.addr(0)).expect("bystander"),
        n: 0,
    };
    let request = b"set slow 0 0 4\r\nslow\r\n";
    // Each slow client dribbles one byte per round; the bystander is served every round.
    for round in 0..request.len() - 1 {
        for s in &mut slow {
            s.write_all(&request[round..round + 1]).expect("dribble");
        }
        bystander.check();
    }
    // The last byte completes every slow request: each gets its reply.
    for s in &mut slow {
        s.write_all(&request[request.len() - 1..])
            .expect("last byte");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reply = [0u8; 8];
        s.read_exact(&mut reply).expect("reply");
        assert_eq!(&reply, b"STORED\r\n");
    }
}

/// Sum of a counter over all its label sets, from the proxy's registry.
fn counter(proxy: &Proxy, name: &str) -> f64 {
    proxy
        .metrics_text()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Resident set size of this process (the proxy runs in-process), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_client_that_never_reads_is_bounded_then_disconnected_and_others_are_served() {
    let mc = Memcached::start();
    let mut config = py3_config(&mc);
    config.limits.write_stall_timeout_s = 2;
    let proxy = Proxy::start(config);
    let mut setup = Client::connect(proxy.addr(0)).expect("setup");
    let value = vec![b'b'; 512 * 1024];
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(setup.call(&set, b"\r\n"), b"STORED\r\n");
    let before = rss_kib();

    // Pipelined gets of 512 KiB that nobody reads, until the proxy stops reading (back
    // pressure reaches this client's socket) or 2 000 000 gets (1 TB of replies) were sent.
    let mut greedy = TcpStream::connect(proxy.addr(0)).expect("greedy");
    greedy
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let batch = b"get big\r\n".repeat(1000);
    let start = Instant::now();
    let mut sent = 0;
    let mut pushed_back = false;
    while sent < 2000 && start.elapsed() < Duration::from_secs(20) {
        match greedy.write_all(&batch) {
            Ok(()) => sent += 1,
            Err(e) => {
                pushed_back = matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
                break;
            }
        }
    }
    assert!(
        pushed_back,
        "the proxy kept reading: {sent} batches of 1000 gets accepted"
    );
    let mut bystander = Bystander {
        client: Client::connect(proxy.addr(0)).expect("bystander"),
        n: 0,
    };
    for _ in 0..20 {
        bystander.check();
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!(
        "never-reading client: {sent} batches of 1000 gets accepted, RSS grew {grown_mib} MiB"
    );
    // In-flight requests per connection are capped at 16 MiB / the average reply size, an
    // average that starts at 64 KiB: up to 256 replies of 512 KiB (128 MiB) before it adapts,
    // plus the 4 MiB write buffer and allocator slack. Bounded, but a burst: see README.
    assert!(
        grown_mib < 300,
        "memory grew by {grown_mib} MiB for a client that never reads ({sent} batches accepted)"
    );
    // After `write_stall_timeout_s` without progress the proxy closes the connection and counts
    // it; draining it then ends in EOF (or a reset) before 1 GiB of replies could be read.
    wait_until(
        Duration::from_secs(15),
        "the stalled client to be dropped",
        || {
            let client_side = proxy
                .metrics_text()
                .lines()
                .filter(|l| l.starts_with("picklebridge_client_connection_errors_total{"))
                .filter(|l| l.contains(r#"side="client""#))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
            (client_side >= 1.0).then_some(())
        },
    );
    greedy
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut drained = 0usize;
    let mut chunk = vec![0u8; 1 << 20];
    let closed = loop {
        match greedy.read(&mut chunk) {
            // A read timeout is a hang, not a close.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false
            }
            Ok(0) | Err(_) => break drained < (1 << 30),
            Ok(n) => drained += n,
        }
        if drained >= 1 << 30 {
            break false;
        }
    };
    assert!(
        closed,
        "never-reading client not disconnected ({drained} bytes drained)"
    );
    bystander.check();
}

#[test]
fn connection_flood_past_the_limit_gets_memcacheds_error() {
    let mc = Memcached::start();
    let mut config = py3_config(&mc);
    config.limits.max_connections = 16;
    let proxy = Proxy::start(config);
    let mut held: Vec<Client> = (0..16)
        .map(|_| Client::connect(proxy.addr(0)).expect("connect"))
        .collect();
    for c in &mut held {
        assert_eq!(c.call(b"mn\r\n", b"\r\n"), b"MN\r\n");
    }
    // Past the limit: memcached's "ERROR Too many open connections" and a close, 20 times.
    for _ in 0..20 {
        let (out, end) = exchange(proxy.addr(0), b"", Duration::from_secs(5));
        assert_eq!(
            (show(&out), end),
            (show(b"ERROR Too many open connections\r\n"), End::Closed)
        );
    }
    // Counted before the reply is written.
    assert_eq!(
        counter(&proxy, "picklebridge_client_connections_rejected_total"),
        20.0
    );
    // The held connections are unaffected; freeing one admits a newcomer.
    for c in &mut held {
        assert_eq!(c.call(b"mn\r\n", b"\r\n"), b"MN\r\n");
    }
    drop(held.pop());
    wait_until(
        Duration::from_secs(5),
        "a freed slot to admit a client",
        || {
            let (out, end) = exchange(proxy.addr(0), b"mn\r\n", Duration::from_secs(2));
            (end == End::Sentinel && out == SENTINEL).then_some(())
        },
    );
}

/// `stats cachedump` lists only the cold LRU, where memcached's LRU maintainer moves new items
/// after a while; without the maintainer they are linked there at once.
const DUMPS_AT_ONCE: &[&str] = &["-o", "no_lru_maintainer"];

/// Stores `key` with a one-byte value through memcached's binary protocol, which takes any
/// bytes in a key (the ASCII protocol cannot send CR, LF or spaces in one).
fn binary_set(addr: SocketAddr, key: &[u8]) {
    // Binary SET: magic 0x80, opcode 0x01, key length, 8 bytes of extras (flags, expiry).
    let value = b"v";
    let mut set = vec![0x80, 0x01];
    set.extend_from_slice(&(key.len() as u16).to_be_bytes());
    set.extend_from_slice(&[8, 0, 0, 0]);
    set.extend_from_slice(&((8 + key.len() + value.len()) as u32).to_be_bytes());
    set.extend_from_slice(&[0; 12]);
    set.extend_from_slice(&[0; 8]);
    set.extend_from_slice(key);
    set.extend_from_slice(value);
    let mut direct = Client::connect(addr).expect("memcached");
    direct.send(&set);
    let reply = direct.read_exact(24);
    assert_eq!(
        (reply[0], &reply[6..8]),
        (0x81, &[0u8, 0][..]),
        "binary SET"
    );
}

/// A key holding CR LF, stored through memcached's binary protocol (here directly; a proxy
/// client could do it through the binary splice), is echoed raw by memcached in `mg ... k`,
/// `me` and `stats cachedump`. Such a reply line ends inside the key, and what follows it would
/// become the reply to another request on the shared upstream connection: a value planted for
/// another client. The proxy refuses the echoing requests instead and reads a key dump on a
/// connection of its own; the others are unaffected.
#[test]
fn a_key_with_crlf_cannot_plant_a_reply_for_another_request() {
    let mc = Memcached::start_with(DUMPS_AT_ONCE);
    let evil_key: &[u8] = b"x\r\nVALUE victim 0 5\r\nEVIL!\r\nEND";
    binary_set(mc.addr(), evil_key);
    // memcached echoes it raw (the premise of this test).
    let b64 = "eA0KVkFMVUUgdmljdGltIDAgNQ0KRVZJTCENCkVORA==";
    let mut direct = Client::connect(mc.addr()).expect("memcached");
    let raw = direct.call(
        format!("mg {b64} b k v\r\n").as_bytes(),
        b"EVIL!\r\nEND\r\n",
    );
    assert!(
        raw.starts_with(b"VA 1 kx\r\nVALUE victim"),
        "{}",
        show(&raw)
    );

    let config = py3_config(&mc);
    let proxy = Proxy::start(config);
    let mut attacker = Client::connect(proxy.addr(0)).expect("proxy");
    let mut victim = Client::connect(proxy.addr(0)).expect("proxy");
    let refused = "CLIENT_ERROR a key with CR or LF cannot be echoed through the proxy\r\n";
    for request in [
        format!("mg {b64} b k v\r\n"),
        format!("md {b64} b k q\r\n"),
        format!("me {b64} b\r\n"),
        format!("ms {b64} 1 b k\r\nz\r\n"),
    ] {
        assert_eq!(
            show(&attacker.call(request.as_bytes(), b"\r\n")),
            show(refused.as_bytes()),
            "{request:?}"
        );
    }
    // The dump lists the key raw, as memcached does; its `END [1 b; 0 s]` line does not end it.
    let dumped = Client::connect(mc.addr())
        .expect("memcached")
        .call(b"stats cachedump 1 0\r\n", b"\r\nEND\r\n");
    assert!(
        dumped.starts_with(b"ITEM x\r\nVALUE victim"),
        "{}",
        show(&dumped)
    );
    assert_eq!(
        show(&attacker.call(b"stats cachedump 1 0\r\n", b"\r\nEND\r\n")),
        show(&dumped)
    );
    // Without `k` the key is not echoed: served as memcached serves it.
    assert_eq!(
        show(&attacker.call(format!("mg {b64} b v\r\n").as_bytes(), b"v\r\n")),
        show(b"VA 1\r\nv\r\n")
    );
    // Nobody got a planted reply.
    assert_eq!(victim.call(b"get victim\r\n", b"\r\n"), b"END\r\n");
    assert_eq!(attacker.call(b"get victim\r\n", b"\r\n"), b"END\r\n");
}

/// A key dump cannot tell a stored key's `END` line from its own end: with a key `x\r\nEND\r\n
/// VALUE victim ...`, a client reading memcached directly stops at that `END` and takes the
/// rest as the next reply. Through the proxy the dump is read on a connection of its own and
/// that connection is closed after the first `END`: the client gets the same cut dump, and the
/// rest reaches nobody, neither the client's next request nor another client.
#[test]
fn a_key_dump_cut_short_by_a_stored_key_stays_with_its_request() {
    let mc = Memcached::start_with(DUMPS_AT_ONCE);
    // Short enough for slab class 1, with the item's header and one-byte value.
    binary_set(mc.addr(), b"x\r\nEND\r\nVALUE victim 0 1\r\nE\r\nEND");
    binary_set(mc.addr(), b"y\nEND\r\nVALUE victim 0 1\r\nE\r\nEND");
    // Straight from memcached: the dump "ends" at the first `END` line (the order of the keys
    // is memcached's, newest first), and the rest stays queued on the connection.
    let mut direct = Client::connect(mc.addr()).expect("memcached");
    let cut = direct.call(b"stats cachedump 1 0\r\n", b"\nEND\r\n");
    assert!(
        cut == b"ITEM x\r\nEND\r\n" || cut == b"ITEM y\nEND\r\n",
        "{}",
        show(&cut)
    );

    let config = py3_config(&mc);
    let proxy = Proxy::start(config);
    let mut client = Client::connect(proxy.addr(0)).expect("proxy");
    let mut other = Client::connect(proxy.addr(0)).expect("proxy");
    // The dump and a get in one write: the get is answered by memcached, not by the rest of
    // the dump; the other client's pipelined get likewise.
    client.send(b"stats cachedump 1 0\r\nget victim\r\n");
    other.send(b"get victim\r\nmn\r\n");
    let want: Vec<u8> = [&cut[..], b"END\r\n"].concat();
    assert_eq!(show(&client.read_until(&want)), show(&want));
    assert_eq!(show(&other.read_until(b"MN\r\n")), show(b"END\r\nMN\r\n"));
    // Both connections go on as before; so does a dump of `stats detail`, which is one line
    // when detail is off.
    assert_eq!(client.call(b"mn\r\n", b"\r\n"), b"MN\r\n");
    assert_eq!(
        show(&client.call(b"stats detail dump\r\n", b"END\r\n")),
        show(&direct_reply(
            mc.addr(),
            b"stats detail dump\r\n",
            b"END\r\n"
        ))
    );
    // An error reply to a dump is one line, as from memcached.
    for line in [
        &b"stats cachedump 1\r\n"[..],
        b"stats cachedump x y\r\n",
        b"stats cachedump 99 0\r\n",
    ] {
        assert_eq!(
            show(&client.call(line, b"\r\n")),
            show(&direct_reply(mc.addr(), line, b"\r\n")),
            "{}",
            show(line)
        );
    }
}

/// A key dump keeps its place among the requests pipelined around it: memcached applies the
/// earlier ones (`noreply` too) before it takes the dump and the later ones after, although the
/// proxy sends the dump on a connection of its own. Compared with memcached on the same
/// sequence, many times (the race it guards against lost about one in thirty).
#[test]
fn key_dumps_keep_their_place_among_pipelined_requests() {
    let mc = Memcached::start_with(DUMPS_AT_ONCE);
    let direct_mc = Memcached::start_with(DUMPS_AT_ONCE);
    let config = py3_config(&mc);
    let proxy = Proxy::start(config);
    let mut through = Client::connect(proxy.addr(0)).expect("proxy");
    let mut direct = Client::connect(direct_mc.addr()).expect("memcached");
    for i in 0..60 {
        let batch = format!(
            "set a{i} 0 0 1 noreply\r\nx\r\nset b{i} 0 0 1\r\ny\r\nstats cachedump 1 2\r\n\
             set z{i} 0 0 1\r\nz\r\nstats cachedump 1 1\r\nmn\r\n"
        );
        let want = direct.call(batch.as_bytes(), b"MN\r\n");
        assert!(
            want.starts_with(format!("STORED\r\nITEM b{i} ").as_bytes()),
            "{}",
            show(&want)
        );
        assert_eq!(
            show(&through.call(batch.as_bytes(), b"MN\r\n")),
            show(&want),
            "round {i}"
        );
    }
}

/// One Python 3 listener on a free loopback port in front of `mc`.
fn py3_config(mc: &Memcached) -> Config {
    Config::quick(
        &[("127.0.0.1:0".into(), ClientRuntime::Py3)],
        &[mc.addr_string()],
    )
}

/// `request`'s reply on a fresh connection to `addr`, read up to `end`.
fn direct_reply(addr: SocketAddr, request: &[u8], end: &[u8]) -> Vec<u8> {
    Client::connect(addr).expect("connect").call(request, end)
}
