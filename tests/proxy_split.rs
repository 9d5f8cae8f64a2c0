//! A get/gets/gat/gats of more keys than `max_pending_bytes` fits goes upstream in parts: the
//! client must not be able to tell (same bytes as an unsplit get, or as memcached), with
//! servers down, pipelined around other requests, at client EOF and at shutdown.
mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::binary::labelled_sum;
use common::memcache_binary as mb;
use common::servers::{show, with_admin, Client, Memcached, Proxy};
use picklebridge::config::{ClientRuntime, Config, GetErrors};

fn config(upstreams: &[String]) -> Config {
    let mut c = Config::quick(&[("127.0.0.1:0".into(), ClientRuntime::Py3)], upstreams);
    c.timeouts.request_ms = 5000;
    c.timeouts.connect_ms = 200;
    c
}

/// The same config with a budget that fits one value: every multi-key get goes a key a part.
fn tiny(mut c: Config) -> Config {
    c.limits.max_pending_bytes = c.limits.item_size;
    c
}

/// A client that sends part of a line and never the rest does not hold the shutdown past its
/// grace period; its connection is closed.
#[test]
fn shutdown_with_a_line_that_never_ends_finishes_within_the_grace_period() {
    let mc = Memcached::start();
    let mut c = config(&[mc.addr_string()]);
    c.timeouts.shutdown_grace_ms = 500;
    let mut proxy = Proxy::start(c);
    let mut stuck = Client::connect(proxy.addr(0)).unwrap();
    stuck.send(b"get never");
    // The proxy read the partial line, so the drain waits for its end.
    stuck.wait_until_read();
    let started = Instant::now();
    proxy.begin_shutdown();
    while !proxy.is_stopped() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        proxy.is_stopped(),
        "stopped within the grace period: {:?}",
        started.elapsed()
    );
    assert!(stuck.is_closed(), "its connection is closed");
    proxy.shutdown();
}

/// Sends `req` and reads until `terminator` appears (or the connection closes or times out).
fn exchange(c: &mut Client, req: &[u8], terminator: &[u8]) -> Vec<u8> {
    c.send(req);
    c.read_until(terminator)
}

/// Pipelines of split gets around other requests read the same split, whole, and from
/// memcached itself (one server: same cas values, touch results, error lines).
#[test]
fn split_gets_in_pipelines_read_as_from_memcached() {
    let mc = Memcached::start();
    let whole = Proxy::start(config(&[mc.addr_string()]));
    let parts = Proxy::start(tiny(config(&[mc.addr_string()])));
    let long = "k".repeat(251);
    let many: Vec<String> = (0..3000).map(|i| format!("m{}", i % 7)).collect();
    let many = many.join(" ");
    let huge: Vec<String> = (0..9000).map(|i| format!("m{}", i % 7)).collect();
    let huge = huge.join(" ");
    let cases: Vec<(String, &str)> = vec![
        ("set a 0 0 1\r\nx\r\nset b 5 0 2\r\nyy\r\nset c 7 0 0\r\n\r\nmn\r\n".into(), "MN\r\n"),
        ("get a b nope c a a\r\nmn\r\n".into(), "MN\r\n"),
        ("gets a b nope c a\r\nmn\r\n".into(), "MN\r\n"),
        ("gat 100 a b nope c\r\nmn\r\n".into(), "MN\r\n"),
        ("gats 0 a nope b c\r\nmn\r\n".into(), "MN\r\n"),
        ("gat -1 nope1 nope2\r\nmn\r\n".into(), "MN\r\n"),
        ("gets a b c\r\nmn\r\n".into(), "MN\r\n"),
        (
            "set n 0 0 1 noreply\r\n1\r\nget a n b\r\nset n 0 0 1 noreply\r\n2\r\nget n a n\r\nmn\r\n"
                .into(),
            "MN\r\n",
        ),
        ("mg a v q\r\nget a b c\r\nmg zz v q\r\nmg b v\r\nmn\r\n".into(), "MN\r\n"),
        ("get zz yy\r\nget a\r\nget a b\r\nmn\r\n".into(), "MN\r\n"),
        (format!("get a b {long} c\r\nmn\r\n"), "MN\r\n"),
        (format!("gat 50 a b {long} c\r\nmn\r\n"), "MN\r\n"),
        ("set m3 0 0 2\r\nm3\r\nset m6 1 0 2\r\nm6\r\nmn\r\n".into(), "MN\r\n"),
        (format!("get {many}\r\nmn\r\n"), "MN\r\n"),
        (format!("gat 0 {many}\r\nmn\r\n"), "MN\r\n"),
        (format!("gets {huge}\r\nmn\r\n"), "MN\r\n"),
        (format!("get {many} {long} a\r\nmn\r\n"), "MN\r\n"),
        ("get a b c\r\nquit\r\n".into(), "c\r\nEND\r\n"),
    ];
    for (req, terminator) in &cases {
        let mut d = Client::connect(mc.addr()).unwrap();
        let mut w = Client::connect(whole.addr(0)).unwrap();
        let mut p = Client::connect(parts.addr(0)).unwrap();
        let term = terminator.as_bytes();
        let want = exchange(&mut d, req.as_bytes(), term);
        let got_whole = exchange(&mut w, req.as_bytes(), term);
        let got = exchange(&mut p, req.as_bytes(), term);
        let head = &req[..req.len().min(60)];
        assert_eq!(show(&got_whole), show(&want), "whole: {head}");
        assert_eq!(show(&got), show(&want), "split: {head}");
        if req.ends_with("quit\r\n") {
            assert!(p.is_closed(), "quit closes");
        }
    }
}

/// A py2 pickle stored through the py2 listener reads through the py3 listener transcoded, the
/// same split as whole, among misses and values of other kinds.
#[test]
fn split_gets_transcode_each_value_as_whole() {
    let mc = Memcached::start();
    let make = || {
        Config::quick(
            &[
                ("127.0.0.1:0".into(), ClientRuntime::Py2),
                ("127.0.0.1:0".into(), ClientRuntime::Py3),
            ],
            &[mc.addr_string()],
        )
    };
    let whole = Proxy::start(make());
    let parts = Proxy::start(tiny(make()));
    let mut py2 = Client::connect(whole.addr(0)).unwrap();
    // A py2 pickle (protocol 2) of the str 'caf\xc3\xa9'.
    let pickle: &[u8] = b"\x80\x02U\x05caf\xc3\xa9q\x00.";
    for key in ["p1", "p2"] {
        let mut req = format!("set {key} 1 0 {}\r\n", pickle.len()).into_bytes();
        req.extend_from_slice(pickle);
        req.extend_from_slice(b"\r\n");
        assert_eq!(py2.call(&req, b"\r\n"), b"STORED\r\n");
    }
    assert_eq!(
        py2.call(b"set raw 0 0 3\r\nabc\r\n", b"\r\n"),
        b"STORED\r\n"
    );
    for cmd in ["get", "gets", "gat 0"] {
        let req = format!("{cmd} p1 nope raw p2 p1\r\n");
        for listener in [0, 1] {
            let mut w = Client::connect(whole.addr(listener)).unwrap();
            let mut p = Client::connect(parts.addr(listener)).unwrap();
            let want = exchange(&mut w, req.as_bytes(), b"END\r\n");
            let got = exchange(&mut p, req.as_bytes(), b"END\r\n");
            assert_eq!(show(&got), show(&want), "{cmd} on listener {listener}");
            if listener == 1 {
                assert_ne!(
                    show(&want),
                    show(&exchange(&mut py2, req.as_bytes(), b"END\r\n")),
                    "transcoded for py3"
                );
            }
        }
    }
}

/// Stores `n` values of `size` bytes as `big0..`, through `c`.
fn store_big(c: &mut Client, n: usize, size: usize) {
    for i in 0..n {
        let mut req = format!("set big{i} {i} 0 {size}\r\n").into_bytes();
        req.extend(vec![b'a' + (i % 26) as u8; size]);
        req.extend_from_slice(b"\r\n");
        assert_eq!(c.call(&req, b"\r\n"), b"STORED\r\n");
    }
}

/// The reply memcached gives to `get big0 .. big{n-1}` for [`store_big`]'s values.
fn big_reply(keys: &[usize], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for &i in keys {
        out.extend(format!("VALUE big{i} {i} {size}\r\n").into_bytes());
        out.extend(vec![b'a' + (i % 26) as u8; size]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"END\r\n");
    out
}

/// The client half-closes right after a split get (and a get behind it): every part is still
/// answered, then the one behind, then the connection closes.
#[test]
fn client_eof_in_the_middle_of_a_split_get_answers_every_part() {
    use std::io::{Read, Write};
    const N: usize = 40;
    const SIZE: usize = 300_000;
    let mc = Memcached::start();
    let parts = Proxy::start(tiny(config(&[mc.addr_string()])));
    let mut c = Client::connect(parts.addr(0)).unwrap();
    store_big(&mut c, N, SIZE);
    let keys: Vec<usize> = (0..N).chain(0..N).collect();
    let line: Vec<String> = keys.iter().map(|i| format!("big{i}")).collect();
    let mut raw = std::net::TcpStream::connect(parts.addr(0)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(format!("get {}\r\nget big1\r\n", line.join(" ")).as_bytes())
        .unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    // Read nothing for a while: the parts after the first wait for room.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    raw.read_to_end(&mut got).expect("every reply, then EOF");
    let mut want = big_reply(&keys, SIZE);
    want.extend(big_reply(&[1], SIZE));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the replies, byte for byte");
}

/// Shutdown while a split get waits for its parts (the client reads slowly): every part is
/// answered within the grace period, then the connection closes; a request pipelined behind it
/// is answered too.
#[test]
fn shutdown_in_the_middle_of_a_split_get_answers_every_part() {
    use std::io::{Read, Write};
    const N: usize = 30;
    const SIZE: usize = 300_000;
    let mc = Memcached::start();
    let mut cfg = tiny(config(&[mc.addr_string()]));
    cfg.timeouts.shutdown_grace_ms = 10_000;
    let mut parts = Proxy::start(cfg);
    let mut c = Client::connect(parts.addr(0)).unwrap();
    store_big(&mut c, N, SIZE);
    drop(c);
    let keys: Vec<usize> = (0..N).collect();
    let line: Vec<String> = keys.iter().map(|i| format!("big{i}")).collect();
    let mut raw = std::net::TcpStream::connect(parts.addr(0)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(format!("get {}\r\nget big2\r\n", line.join(" ")).as_bytes())
        .unwrap();
    let mut first = vec![0u8; 1000];
    raw.read_exact(&mut first).unwrap();
    parts.begin_shutdown();
    std::thread::sleep(Duration::from_millis(300));
    let mut got = first;
    raw.read_to_end(&mut got).expect("every reply, then EOF");
    let mut want = big_reply(&keys, SIZE);
    want.extend(big_reply(&[2], SIZE));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the replies, byte for byte");
    parts.shutdown();
}

/// A client that reads none of a split get's reply is closed after `write_stall_timeout_s`,
/// and the proxy serves others meanwhile.
#[test]
fn a_client_that_never_reads_a_split_get_is_closed_by_the_stall_timeout() {
    use std::io::{Read, Write};
    const N: usize = 40;
    const SIZE: usize = 500_000;
    let mc = Memcached::start();
    let mut cfg = tiny(config(&[mc.addr_string()]));
    cfg.limits.write_stall_timeout_s = 1;
    let parts = Proxy::start(cfg);
    let mut c = Client::connect(parts.addr(0)).unwrap();
    store_big(&mut c, N, SIZE);
    let line: Vec<String> = (0..N).map(|i| format!("big{i}")).collect();
    let mut raw = std::net::TcpStream::connect(parts.addr(0)).unwrap();
    raw.write_all(format!("get {}\r\n", line.join(" ")).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.call(b"get big1 nope\r\n", b"END\r\n"),
        big_reply(&[1], SIZE)
    );
    std::thread::sleep(Duration::from_millis(2500));
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = vec![0u8; 1 << 20];
    let started = Instant::now();
    let mut total = 0;
    loop {
        match raw.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        assert!(started.elapsed() < Duration::from_secs(10), "closed");
    }
    assert!(
        total < N * SIZE,
        "cut off by the stall timeout, not answered whole: {total} bytes"
    );
}

/// Over three servers, gets and long gats split into parts read as whole.
#[test]
fn split_gets_over_three_servers_read_as_whole() {
    let mcs = [Memcached::start(), Memcached::start(), Memcached::start()];
    let upstreams: Vec<String> = mcs.iter().map(|m| m.addr_string()).collect();
    let whole = Proxy::start(config(&upstreams));
    let mut split_cfg = config(&upstreams);
    // Three values a part.
    split_cfg.limits.max_pending_bytes = 3 * split_cfg.limits.item_size + 3 * 1024;
    let parts = Proxy::start(split_cfg);
    let tinier = Proxy::start(tiny(config(&upstreams)));
    let mut w = Client::connect(whole.addr(0)).unwrap();
    for i in 0..60 {
        if i % 4 != 3 {
            let set = format!("set key{i} {i} 0 3\r\nv{:02}\r\n", i % 100);
            assert_eq!(w.call(set.as_bytes(), b"\r\n"), b"STORED\r\n");
        }
    }
    let mut keys: Vec<String> = (0..60).map(|i| format!("key{i}")).collect();
    keys.extend((0..60).rev().map(|i| format!("key{i}")));
    // A long gat: past an upstream line, in runs.
    let long: Vec<String> = (0..400)
        .map(|i| format!("key{}{}", i % 60, "x".repeat(i % 3)))
        .collect();
    for req in [
        format!("get {}\r\n", keys.join(" ")),
        format!("gets {}\r\n", keys.join(" ")),
        format!("gat 0 {}\r\n", keys.join(" ")),
        format!("gats 0 {}\r\n", long.join(" ")),
    ] {
        let want = exchange(&mut w, req.as_bytes(), b"END\r\n");
        for proxy in [&parts, &tinier] {
            let mut p = Client::connect(proxy.addr(0)).unwrap();
            let got = exchange(&mut p, req.as_bytes(), b"END\r\n");
            assert_eq!(show(&got), show(&want), "{}", &req[..20]);
            assert_eq!(p.call(b"mn\r\n", b"\r\n"), b"MN\r\n");
        }
    }
}

/// Reads one retrieval reply: up to `END`, or a single error line.
fn reply(c: &mut Client) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = c.read_line();
        if line.is_empty() {
            return out;
        }
        out.extend_from_slice(&line);
        if line.starts_with(b"VALUE ") {
            let n: usize = String::from_utf8_lossy(&line)
                .trim_end()
                .split(' ')
                .nth(3)
                .and_then(|n| n.parse().ok())
                .expect("VALUE length");
            out.extend(c.read_exact(n + 2));
            continue;
        }
        return out;
    }
}

/// A proxy that reads each get whole and one that splits every multi-key get a key a part,
/// both over `mc` and a server that is down, answering failed gets per `get_errors`.
fn whole_and_split_with_a_server_down(mc: &Memcached, get_errors: GetErrors) -> (Proxy, Proxy) {
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let upstreams = [mc.addr_string(), dead_addr];
    let make = || {
        let mut c = config(&upstreams);
        c.listeners[0].get_errors = get_errors;
        c
    };
    (Proxy::start(make()), Proxy::start(tiny(make())))
}

/// A key that the dead server holds and one the live one holds, `n` of each.
fn keys_by_server(w: &mut Client, n: usize) -> (Vec<String>, Vec<String>) {
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let key = format!("key{i}");
        // A delete: a miss on the live server (NOT_FOUND), an error on the dead one.
        let r = w.call(format!("delete {key}\r\n").as_bytes(), b"\r\n");
        match &r[..] {
            b"NOT_FOUND\r\n" => up.push(key),
            _ => down.push(key),
        }
        if up.len() >= n && down.len() >= n {
            break;
        }
    }
    assert!(up.len() >= n && down.len() >= n, "{up:?} {down:?}");
    (up, down)
}

/// Every sequence of two or three keys out of a hit, a miss (both on the server that is up)
/// and a key of the server that is down reads the same split as whole, under both
/// `get_errors` settings.
#[test]
fn a_split_get_with_a_server_down_answers_as_whole_for_every_mix() {
    let mc = Memcached::start();
    for get_errors in [GetErrors::Error, GetErrors::Miss] {
        let (whole, parts) = whole_and_split_with_a_server_down(&mc, get_errors);
        let mut w = Client::connect(whole.addr(0)).unwrap();
        let mut p = Client::connect(parts.addr(0)).unwrap();
        let (up, down) = keys_by_server(&mut w, 4);
        let hit = &up[0];
        assert_eq!(
            w.call(format!("set {hit} 0 0 1\r\nx\r\n").as_bytes(), b"\r\n"),
            b"STORED\r\n"
        );
        let kinds = [hit.as_str(), up[1].as_str(), down[0].as_str()];
        let mut mismatches = Vec::new();
        for len in 2..=3u32 {
            for n in 0..3usize.pow(len) {
                let keys: Vec<&str> = (0..len).map(|i| kinds[n / 3usize.pow(i) % 3]).collect();
                let req = format!("get {}\r\n", keys.join(" "));
                w.send(req.as_bytes());
                p.send(req.as_bytes());
                let (want, got) = (reply(&mut w), reply(&mut p));
                if want != got {
                    mismatches.push(format!(
                        "{get_errors:?} get {}: whole {} split {}",
                        keys.join(" "),
                        show(&want),
                        show(&got)
                    ));
                }
                assert_eq!(p.call(b"mn\r\n", b"\r\n"), b"MN\r\n", "in step");
            }
        }
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }
}

/// A partial request line at shutdown that completes into a `set` too large to store: the
/// proxy swallows its data as memcached does, so (as for a value being swallowed when the
/// signal comes) its error reply goes out and the connection closes. It must not hang until the
/// grace period ends with no reply.
#[test]
fn shutdown_with_a_partial_line_that_becomes_a_too_large_set_replies_and_closes() {
    let mc = Memcached::start();
    let mut c = config(&[mc.addr_string()]);
    c.timeouts.shutdown_grace_ms = 3000;
    let mut proxy = Proxy::start(with_admin(c));
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    assert_eq!(c.call(b"mn\r\n", b"\r\n"), b"MN\r\n");
    c.send(b"set big 0 0 2000000");
    c.wait_until_read();
    proxy.signal_shutdown();
    let mut rest = b"\r\n".to_vec();
    rest.extend_from_slice(&[b'x'; 1000]);
    c.send(&rest);
    let started = Instant::now();
    assert_eq!(
        show(&c.read_line()),
        show(b"SERVER_ERROR object too large for cache\r\n")
    );
    assert!(c.is_closed(), "then the connection is closed");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "before the grace period ends: {:?}",
        started.elapsed()
    );
    proxy.shutdown();
}

/// Requests that arrive after the signal in the same write as the end of the one partly read
/// are not read: the connection answers the partial one and closes (what the drain promises).
#[test]
fn shutdown_reads_no_request_after_the_one_partly_read() {
    let mc = Memcached::start();
    let mut proxy = Proxy::start(with_admin(config(&[mc.addr_string()])));
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    assert_eq!(c.call(b"set seen 0 0 1\r\ns\r\n", b"\r\n"), b"STORED\r\n");
    c.send(b"get se");
    c.wait_until_read();
    proxy.signal_shutdown();
    c.send(b"en\r\nset after 0 0 1\r\na\r\n");
    assert_eq!(c.read_until(b"END\r\n"), b"VALUE seen 0 1\r\ns\r\nEND\r\n");
    assert!(
        c.is_closed(),
        "then the connection is closed, the set unread"
    );
    proxy.shutdown();
    let mut direct = Client::connect(mc.addr()).unwrap();
    assert_eq!(direct.call(b"get after\r\n", b"END\r\n"), b"END\r\n");
}

/// `picklebridge_replies_total` of `outcome`, `requests_total` and the latency count.
fn counts(proxy: &Proxy) -> Vec<(String, Option<f64>)> {
    let page = proxy.metrics_text();
    let mut out: Vec<(String, Option<f64>)> = ["hit", "miss", "upstream_error", "upstream_timeout"]
        .iter()
        .map(|o| {
            let label = format!("outcome=\"{o}\"");
            (
                o.to_string(),
                labelled_sum(&page, "picklebridge_replies_total", &[&label]),
            )
        })
        .collect();
    out.push((
        "requests".into(),
        labelled_sum(&page, "picklebridge_requests_total", &[]),
    ));
    out.push((
        "latencies".into(),
        labelled_sum(&page, "picklebridge_request_duration_seconds_count", &[]),
    ));
    out
}

/// What each of [`counts`] moved by from `before` to `after`.
fn delta(
    before: Vec<(String, Option<f64>)>,
    after: Vec<(String, Option<f64>)>,
) -> Vec<(String, f64)> {
    before
        .into_iter()
        .zip(after)
        .map(|((k, b), (_, a))| (k, a.unwrap_or(0.0) - b.unwrap_or(0.0)))
        .collect()
}

/// A split get counts what it would whole: one request, one latency, a hit or miss per key
/// (a failed server's keys are misses when another answered). Its failures are counted per
/// upstream request, as for the runs of a long gat: a server failing in several parts counts
/// once per part.
#[test]
fn a_split_get_counts_as_whole_with_a_server_down() {
    let mc = Memcached::start();
    let (whole, parts) = whole_and_split_with_a_server_down(&mc, GetErrors::Miss);
    let mut w = Client::connect(whole.addr(0)).unwrap();
    let mut p = Client::connect(parts.addr(0)).unwrap();
    let (up, down) = keys_by_server(&mut w, 4);
    assert_eq!(
        w.call(format!("set {} 0 0 1\r\nx\r\n", up[0]).as_bytes(), b"\r\n"),
        b"STORED\r\n"
    );
    let (before_w, before_p) = (counts(&whole), counts(&parts));
    let req = format!(
        "get {} {} {} {} {} {}\r\n",
        up[0], down[0], up[1], down[1], down[2], up[0]
    );
    let want = exchange(&mut w, req.as_bytes(), b"END\r\n");
    let got = exchange(&mut p, req.as_bytes(), b"END\r\n");
    assert_eq!(show(&got), show(&want));
    let mut dw = delta(before_w, counts(&whole));
    let mut dp = delta(before_p, counts(&parts));
    let failures = |d: &mut Vec<(String, f64)>| {
        let i = d.iter().position(|(k, _)| k == "upstream_error").unwrap();
        d.remove(i).1
    };
    let (fw, fp) = (failures(&mut dw), failures(&mut dp));
    assert_eq!(dp, dw, "split (left) against whole (right)");
    assert_eq!((fw, fp), (1.0, 3.0), "a failure per upstream request");
}

/// A stand-in for memcached that answers each `get <key>` by the key's start: `oom...` with
/// memcached's own error line, `hit...` with a one-byte value, anything else as a miss. Serves
/// every connection the proxy opens, until the test ends.
fn scripted_memcached() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    let reply = match line.strip_prefix("get ") {
                        Some(k) if k.starts_with("oom") => {
                            "SERVER_ERROR out of memory writing get response\r\n".to_string()
                        }
                        Some(k) if k.starts_with("hit") => format!("VALUE {k} 0 1\r\nx\r\nEND\r\n"),
                        Some(_) => "END\r\n".to_string(),
                        None => "ERROR\r\n".to_string(),
                    };
                    if out.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A part of a split get that memcached answers with a line of its own (out of memory) writes
/// nothing when another part has values, and its keys count as misses, as those of a server
/// that failed do: one request, a hit and a miss per key, the error line counted once.
#[test]
fn a_split_part_answered_with_memcacheds_error_line_counts_its_keys_as_misses() {
    let upstream = scripted_memcached();
    let parts = Proxy::start(tiny(config(&[upstream])));
    let mut c = Client::connect(parts.addr(0)).unwrap();
    let before = counts(&parts);
    for req in [
        "get hit1 oom1 miss1\r\n",
        "get oom2 hit2\r\n",
        "get hit3 oom3\r\n",
    ] {
        let key = req
            .split_whitespace()
            .find(|k| k.starts_with("hit"))
            .unwrap();
        assert_eq!(
            show(&c.call(req.as_bytes(), b"END\r\n")),
            show(format!("VALUE {key} 0 1\r\nx\r\nEND\r\n").as_bytes()),
            "{req}"
        );
    }
    let delta = delta(before, counts(&parts));
    let get = |name: &str| delta.iter().find(|(k, _)| k == name).unwrap().1;
    assert_eq!(
        (get("hit"), get("miss"), get("requests"), get("latencies")),
        (3.0, 4.0, 3.0, 3.0),
        "{delta:?}"
    );
    let page = parts.metrics_text();
    assert_eq!(
        labelled_sum(
            &page,
            "picklebridge_replies_total",
            &["outcome=\"server_error\""]
        ),
        Some(3.0),
        "the error lines, once each"
    );
}

/// What a split get's parts recorded (whether a server answered) does not leak into the next
/// request: split gets, whole gets and single-key gets pipelined, some with a server down,
/// under `get_errors = "error"`, read as whole.
#[test]
fn split_gets_pipelined_with_a_server_down_read_as_whole() {
    let mc = Memcached::start();
    let (whole, parts) = whole_and_split_with_a_server_down(&mc, GetErrors::Error);
    let mut w = Client::connect(whole.addr(0)).unwrap();
    let mut p = Client::connect(parts.addr(0)).unwrap();
    let (up, down) = keys_by_server(&mut w, 3);
    assert_eq!(
        w.call(format!("set {} 0 0 1\r\nx\r\n", up[0]).as_bytes(), b"\r\n"),
        b"STORED\r\n"
    );
    let (h, m, d, d2) = (&up[0], &up[1], &down[0], &down[1]);
    let lines = [
        format!("get {h} {d}"),
        format!("get {d} {d2}"),
        format!("get {d}"),
        format!("get {m} {d}"),
        format!("get {d} {d2} {d}"),
        format!("gets {h} {m}"),
        format!("get {d} {d2}"),
        format!("get {d} {m}"),
        format!("gat 0 {d} {d2}"),
        "mn".to_string(),
    ];
    let req = lines.join("\r\n") + "\r\n";
    let want = exchange(&mut w, req.as_bytes(), b"MN\r\n");
    let got = exchange(&mut p, req.as_bytes(), b"MN\r\n");
    assert_eq!(show(&got), show(&want));
}

/// A binary-protocol client (spliced to memcached) at shutdown: the request it was sending
/// when the signal came is read to its end and answered, as are those before it (a quiet
/// `getq` miss stays quiet, its `setq` is applied); then the connection closes, and what it
/// sends after that request is not passed on.
#[test]
fn shutdown_finishes_a_binary_clients_request_half_sent() {
    use mb::{GET, GETQ, NOOP, SET, SETQ};
    let flags_exptime = [0u8; 8];
    let mc = Memcached::start();
    let mut cfg = config(&[mc.addr_string()]);
    cfg.timeouts.shutdown_grace_ms = 5000;
    let mut proxy = Proxy::start(with_admin(cfg));
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    c.send(&mb::noop(1));
    assert_eq!(mb::response(&mut c), (NOOP, 0, 1, vec![]), "spliced");
    let mut before = mb::request(SETQ, b"bq", &flags_exptime, b"quiet", 2);
    before.extend(mb::request(GETQ, b"absent", b"", b"", 3));
    before.extend(mb::request(SET, b"b1", &flags_exptime, b"one", 4));
    let half = mb::request(SET, b"b2", &flags_exptime, &[b'v'; 5000], 5);
    before.extend_from_slice(&half[..100]);
    c.send(&before);
    c.wait_until_read();
    let started = Instant::now();
    proxy.signal_shutdown();
    let mut rest = half[100..].to_vec();
    rest.extend(mb::request(SET, b"after", &flags_exptime, b"no", 6));
    c.send(&rest);
    let (op, status, opaque, _) = mb::response(&mut c);
    assert_eq!((op, status, opaque), (SET, 0, 4), "the set before");
    let (op, status, opaque, _) = mb::response(&mut c);
    assert_eq!((op, status, opaque), (SET, 0, 5), "the set half sent");
    assert!(c.is_closed(), "then the connection closes");
    assert!(started.elapsed() < Duration::from_millis(4500));
    proxy.shutdown();
    let mut direct = Client::connect(mc.addr()).unwrap();
    for (key, want) in [(&b"bq"[..], 0u16), (b"b1", 0), (b"b2", 0), (b"after", 1)] {
        direct.send(&mb::request(GET, key, b"", b"", 9));
        let (_, status, _, _) = mb::response(&mut direct);
        assert_eq!(status, want, "{}", String::from_utf8_lossy(key));
    }
}

/// A binary client between requests at shutdown, or one that never finishes its request, is
/// closed: at once (after memcached answers what it had), or at the end of the grace period.
#[test]
fn shutdown_closes_binary_clients_idle_or_stuck() {
    let mc = Memcached::start();
    let mut cfg = config(&[mc.addr_string()]);
    cfg.timeouts.shutdown_grace_ms = 1500;
    let mut proxy = Proxy::start(cfg);
    let noop = mb::noop(7);
    let mut idle = Client::connect(proxy.addr(0)).unwrap();
    let mut stuck = Client::connect(proxy.addr(0)).unwrap();
    for c in [&mut idle, &mut stuck] {
        c.send(&noop);
        assert_eq!(mb::response(c), (mb::NOOP, 0, 7, vec![]), "spliced");
    }
    stuck.send(&noop[..10]);
    stuck.wait_until_read();
    let started = Instant::now();
    proxy.begin_shutdown();
    assert!(idle.is_closed(), "the idle one is closed");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "at the signal: {:?}",
        started.elapsed()
    );
    assert!(stuck.is_closed(), "the stuck one is closed");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_millis(4000),
        "at the end of the grace period: {took:?}"
    );
    proxy.shutdown();
}

/// Several clients at once, each pipelining gets of random keys (hits of random sizes, misses,
/// repeats) over two servers, through proxies whose budgets fit one, two and three values:
/// every reply reads as whole.
#[test]
fn concurrent_random_split_gets_read_as_whole() {
    let (mc1, mc2) = (Memcached::start(), Memcached::start());
    let upstreams = [mc1.addr_string(), mc2.addr_string()];
    let whole = Proxy::start(config(&upstreams));
    let budgets: Vec<Proxy> = (1..=3)
        .map(|n| {
            let mut c = config(&upstreams);
            c.limits.max_pending_bytes = n * c.limits.item_size + n * 1024;
            Proxy::start(c)
        })
        .collect();
    let mut w = Client::connect(whole.addr(0)).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for i in 0..60 {
        if i % 5 != 0 {
            let size = next(20_000) as usize;
            let mut req = format!("set r{i} {i} 0 {size}\r\n").into_bytes();
            req.extend(vec![b'a' + (i % 26) as u8; size]);
            req.extend_from_slice(b"\r\n");
            assert_eq!(w.call(&req, b"\r\n"), b"STORED\r\n");
        }
    }
    let mut batches = Vec::new();
    for _ in 0..8 {
        let mut req = String::new();
        for _ in 0..4 {
            let cmd = ["get", "gets", "gat 0", "gats 0"][next(4) as usize];
            let n = 1 + next(30);
            let keys: Vec<String> = (0..n).map(|_| format!("r{}", next(70))).collect();
            req.push_str(&format!("{cmd} {}\r\n", keys.join(" ")));
        }
        req.push_str("mn\r\n");
        let want = exchange(&mut w, req.as_bytes(), b"MN\r\n");
        batches.push((req, want));
    }
    let batches = std::sync::Arc::new(batches);
    let addrs: Vec<_> = budgets.iter().map(|p| p.addr(0)).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let batches = batches.clone();
            let addr = addrs[t % addrs.len()];
            std::thread::spawn(move || {
                let mut c = Client::connect(addr).unwrap();
                for round in 0..2 {
                    for (i, (req, want)) in batches.iter().enumerate() {
                        let got = exchange(&mut c, req.as_bytes(), b"MN\r\n");
                        assert!(
                            &got == want,
                            "client {t} round {round} batch {i}: {} bytes, want {}",
                            got.len(),
                            want.len()
                        );
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("every client reads as whole");
    }
}
