//! The proxy end to end with a real memcached: commands round-trip, replies match memcached.
mod common;

use std::net::TcpListener;

use common::binary::labelled_sum;
use common::servers::{show, Client, Memcached, Proxy};
use picklebridge::config::{ClientRuntime, Config, GetErrors};

#[test]
fn set_get_delete_round_trip_through_the_proxy() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[mc.addr_string()]);
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    assert_eq!(c.call(b"set k 5 0 3\r\nabc\r\n", b"\r\n"), b"STORED\r\n");
    assert_eq!(
        c.call(b"get k\r\n", b"END\r\n"),
        b"VALUE k 5 3\r\nabc\r\nEND\r\n"
    );
    assert_eq!(c.call(b"delete k\r\n", b"\r\n"), b"DELETED\r\n");
    assert_eq!(c.call(b"get k\r\n", b"END\r\n"), b"END\r\n");
    // The value is really in memcached.
    assert_eq!(c.call(b"set k2 0 0 2\r\nhi\r\n", b"\r\n"), b"STORED\r\n");
    let mut direct = Client::connect(mc.addr()).unwrap();
    let got = direct.call(b"get k2\r\n", b"END\r\n");
    assert_eq!(got, b"VALUE k2 0 2\r\nhi\r\nEND\r\n", "{}", show(&got));
}

#[test]
fn graceful_shutdown_stops_accepting() {
    let mc = Memcached::start();
    let mut proxy = Proxy::quick(&[ClientRuntime::Py2], &[mc.addr_string()]);
    let addr = proxy.addr(0);
    let mut c = Client::connect(addr).unwrap();
    assert_eq!(c.call(b"version\r\n", b"\r\n")[..8], *b"VERSION ");
    proxy.shutdown();
    assert!(proxy.is_stopped());
    assert!(c.is_closed(), "an idle connection is closed at shutdown");
    assert!(Client::connect(addr).is_err(), "no longer accepting");
}

#[test]
fn flush_all_disabled_by_configuration_is_answered_by_the_proxy() {
    let mc = Memcached::start();
    let mut config = Config::quick(
        &[("127.0.0.1:0".into(), ClientRuntime::Py3)],
        &[mc.addr_string()],
    );
    config.commands.flush_all = false;
    let proxy = Proxy::start(config);
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    assert_eq!(c.call(b"set k 0 0 1\r\nv\r\n", b"\r\n"), b"STORED\r\n");
    assert_eq!(
        c.call(b"flush_all\r\n", b"\r\n"),
        b"SERVER_ERROR flush_all disabled by configuration\r\n"
    );
    // noreply: no reply at all; the next command's reply comes next.
    assert_eq!(
        c.call(b"flush_all noreply\r\nget k\r\n", b"END\r\n"),
        b"VALUE k 0 1\r\nv\r\nEND\r\n",
        "the value is still there"
    );
}

/// A multi-get over two servers, one of them down: the live server's values, in request order,
/// and the dead one's keys as misses. A get whose servers all failed is all misses too
/// (`get_errors = "miss"`, the default, as mcrouter answers), or the error line
/// (`get_errors = "error"`), for a get of one key or many, split or not.
#[test]
fn multi_get_with_one_server_down_reads_its_keys_as_misses() {
    let mc = Memcached::start();
    // A port nothing listens on, on 127.0.0.2 (loopback) where tests do not start servers.
    let dead = TcpListener::bind("127.0.0.2:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.2")
        .to_string();
    let mut config = Config::quick(
        &[
            ("127.0.0.1:0".into(), ClientRuntime::Py3),
            ("127.0.0.1:0".into(), ClientRuntime::Py3),
        ],
        &[mc.addr_string(), dead],
    );
    config.listeners[1].get_errors = GetErrors::Error;
    let proxy = Proxy::start(config);
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    let (mut live, mut down) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let key = format!("k{i}");
        let reply = c.call(
            format!("set {key} 0 0 1\r\n{}\r\n", i % 10).as_bytes(),
            b"\r\n",
        );
        match reply.as_slice() {
            b"STORED\r\n" => live.push(i),
            b"SERVER_ERROR upstream unavailable\r\n" => down.push(key),
            other => panic!("set {key}: {}", show(other)),
        }
    }
    assert!(!live.is_empty() && !down.is_empty(), "{live:?} {down:?}");
    let all: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let want: String = live
        .iter()
        .map(|i| format!("VALUE k{i} 0 1\r\n{}\r\n", i % 10))
        .chain(["END\r\n".to_string()])
        .collect();
    let mut error_mode = Client::connect(proxy.addr(1)).unwrap();
    for client in [&mut c, &mut error_mode] {
        let got = client.call(format!("get {}\r\n", all.join(" ")).as_bytes(), b"END\r\n");
        assert_eq!(show(&got), show(want.as_bytes()));
    }
    // Every key on the dead server: one request to it (`get` of one key or several, `gets`,
    // `gat`), and one that also names a key twice.
    let requests = [
        format!("get {}\r\n", down.join(" ")),
        format!("get {}\r\n", down[0]),
        format!("gets {}\r\n", down.join(" ")),
        format!("gat 0 {} {}\r\n", down[0], down[0]),
    ];
    let replies = |outcome: &str| {
        let label = format!("outcome=\"{outcome}\"");
        labelled_sum(
            &proxy.metrics_text(),
            "picklebridge_replies_total",
            &[&label],
        )
        .unwrap_or(0.0)
    };
    let (misses, errors) = (replies("miss"), replies("upstream_error"));
    for request in &requests {
        let got = c.call(request.as_bytes(), b"\r\n");
        assert_eq!(show(&got), "END\\r\\n", "{}", request.trim_end());
    }
    // Counted as the failures they are, one per request, not as misses.
    assert_eq!(replies("upstream_error") - errors, requests.len() as f64);
    assert_eq!(replies("miss"), misses);
    for request in &requests {
        let got = error_mode.call(request.as_bytes(), b"\r\n");
        assert_eq!(
            show(&got),
            "SERVER_ERROR upstream unavailable\\r\\n",
            "{}",
            request.trim_end()
        );
    }
    // A live key still answers on both connections afterwards.
    let key = format!("k{}", live[0]);
    for client in [&mut c, &mut error_mode] {
        let got = client.call(format!("get {key}\r\n").as_bytes(), b"END\r\n");
        assert_eq!(
            show(&got),
            show(format!("VALUE {key} 0 1\r\n{}\r\nEND\r\n", live[0] % 10).as_bytes())
        );
    }
}

/// A burst of connects that no one has accepted yet is queued by the kernel up to the listen
/// backlog; past it the SYNs are dropped and the clients wait for a retransmit (1 s). 300
/// connects overflow the 128 that `TcpListener::bind` gives, not memcached's 1024.
#[test]
fn a_listener_queues_a_burst_of_connects_past_128() {
    use std::time::Duration;
    let config = Config::quick(
        &[("127.0.0.1:0".to_string(), ClientRuntime::Py3)],
        &["127.0.0.1:1".to_string()],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Bound and never accepted: every connect below stays in the accept queue.
    let listeners = rt.block_on(picklebridge::server::bind(&config)).unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let mut queued = Vec::new();
    for i in 0..300 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(700)) {
            Ok(s) => queued.push(s),
            Err(e) => panic!("connect {i} not queued within 700 ms: {e}"),
        }
    }
    assert_eq!(queued.len(), 300);
}

/// A get whose keys' reservation passes `max_pending_bytes` goes upstream in parts, one after
/// the other: the client still gets one reply, the same bytes as unsplit, `END` once. Here the
/// budget fits one value (a part per key), over two servers, with misses and repeated keys.
#[test]
fn a_get_past_the_byte_budget_is_one_reply_sent_in_parts() {
    let (mc1, mc2) = (Memcached::start(), Memcached::start());
    let upstreams = [mc1.addr_string(), mc2.addr_string()];
    let whole = Proxy::start(Config::quick(
        &[("127.0.0.1:0".into(), ClientRuntime::Py3)],
        &upstreams,
    ));
    let mut config = Config::quick(&[("127.0.0.1:0".into(), ClientRuntime::Py3)], &upstreams);
    config.limits.max_pending_bytes = config.limits.item_size;
    let parts = Proxy::start(config);
    let mut w = Client::connect(whole.addr(0)).unwrap();
    let mut p = Client::connect(parts.addr(0)).unwrap();
    for i in 0..12 {
        let set = format!("set k{i} {i} 0 2\r\nv{}\r\n", i % 10);
        assert_eq!(w.call(set.as_bytes(), b"\r\n"), b"STORED\r\n");
    }
    let keys = "k0 k1 nope k2 k3 k1 k4 k5 k6 k7 gone k8 k9 k10 k11 k0";
    for cmd in ["get", "gets", "gat 0", "gats 0"] {
        let req = format!("{cmd} {keys}\r\n");
        let want = w.call(req.as_bytes(), b"END\r\n");
        assert_eq!(show(&want).matches("VALUE ").count(), 14, "{}", show(&want));
        let got = p.call(req.as_bytes(), b"END\r\n");
        assert_eq!(show(&got), show(&want), "{cmd}");
        // One END, and the connection is in step: the next request gets its own reply.
        assert_eq!(
            p.call(b"get k3\r\n", b"END\r\n"),
            b"VALUE k3 3 2\r\nv3\r\nEND\r\n"
        );
    }
    // Pipelined behind other requests, and every key missing.
    let got = p.call(b"get k1\r\nget a b c d\r\nget k2\r\n", b"v2\r\nEND\r\n");
    assert_eq!(
        show(&got),
        show(b"VALUE k1 1 2\r\nv1\r\nEND\r\nEND\r\nVALUE k2 2 2\r\nv2\r\nEND\r\n")
    );
    let page = parts.metrics_text();
    // 1 + 4 + 3 gets, one of each other kind, however many parts each went in.
    for (command, n) in [("get", 8.0), ("gets", 1.0), ("gat", 1.0), ("gats", 1.0)] {
        assert_eq!(
            labelled_sum(
                &page,
                "picklebridge_requests_total",
                &[&format!("command=\"{command}\"")]
            ),
            Some(n),
            "a split {command} counts as one request:\n{page}"
        );
    }
    // And its latency is observed once, at its last part.
    assert_eq!(
        labelled_sum(&page, "picklebridge_request_duration_seconds_count", &[]),
        Some(11.0),
        "{page}"
    );
}
