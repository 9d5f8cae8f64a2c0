//! Differential: the same bytes sent to a real memcached directly and through the proxy (in
//! front of a second, identical memcached) must produce the same reply bytes, and the
//! connection must be closed in both cases or in neither. Values here are not pickles (flags
//! without the pickle bit), so the proxy must be byte-transparent.
mod common;

use std::time::Duration;

use common::servers::{show, Client, Memcached, Proxy};
use picklebridge::config::ClientRuntime;

/// A case ends with this sentinel request; its reply marks the end of the case's replies.
fn sentinel(i: usize) -> (Vec<u8>, Vec<u8>) {
    (
        format!("mg __end__ k Oc{i}\r\n").into_bytes(),
        format!("EN k__end__ Oc{i}\r\n").into_bytes(),
    )
}

/// Sends `input` then the sentinel, in `chunk`-byte writes; returns (replies, closed).
fn run(addr: std::net::SocketAddr, input: &[u8], i: usize, chunk: usize) -> (Vec<u8>, bool) {
    let mut c = Client::connect(addr).expect("connect");
    c.set_read_timeout(Duration::from_secs(3));
    let (sent, expect) = sentinel(i);
    let mut all = input.to_vec();
    all.extend_from_slice(&sent);
    for piece in all.chunks(chunk.max(1)) {
        c.send(piece);
    }
    let mut got = c.read_until(&expect);
    if got.ends_with(&expect) {
        got.truncate(got.len() - expect.len());
        (got, false)
    } else {
        // No sentinel reply: that must be because the server closed, not a hang.
        assert!(
            c.is_closed(),
            "case {i}: neither the sentinel's reply nor a close after {}",
            show(&got)
        );
        (got, true)
    }
}

fn cases() -> Vec<Vec<u8>> {
    let big = vec![b'x'; 1024 * 1024 + 1];
    let mut too_large = b"set big 0 0 1048577\r\n".to_vec();
    too_large.extend_from_slice(&big);
    too_large.extend_from_slice(b"\r\nget big\r\n");
    let large = vec![b'y'; 500_000];
    let mut large_set = b"set large 3 0 500000\r\n".to_vec();
    large_set.extend_from_slice(&large);
    large_set.extend_from_slice(b"\r\nget large\r\n");
    let long_key = "k".repeat(251);
    let mut v: Vec<Vec<u8>> = [
        "set a 0 0 1\r\n1\r\nget a\r\n",
        "get missing\r\n",
        "set a 5 0 3\r\nabc\r\ngets a\r\n",
        "add a 0 0 1\r\nx\r\nadd fresh 0 0 1\r\nx\r\nreplace nope 0 0 1\r\nx\r\n",
        "set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr nope 1\r\nincr a 1\r\n",
        "append a 0 0 2\r\nzz\r\nprepend a 0 0 2\r\nyy\r\nget a\r\nappend nope 0 0 1\r\nq\r\n",
        "delete a\r\ndelete a\r\ndelete fresh 0\r\ndelete x 1\r\n",
        "set t 0 0 1\r\nt\r\ntouch t 100\r\ntouch nope 1\r\ngat 100 t\r\ngats 0 t nope\r\n",
        "set nr 0 0 1 noreply\r\nx\r\nget nr\r\ndelete nr noreply\r\nget nr\r\n",
        "set m1 1 0 1\r\n1\r\nset m2 2 0 1\r\n2\r\nget m1 nope m2 m1\r\n",
        "set c 0 0 1\r\n1\r\ngets c\r\ncas c 0 0 1 999999\r\n2\r\ncas nope 0 0 1 1\r\n3\r\n",
        "bogus\r\nget\r\nset a 0 0\r\nset a x 0 1\r\n1\r\nincr n abc\r\n",
        "set bad 0 0 3\r\nabcdef\r\nget bad\r\n",
        "set neg 0 -1 1\r\nx\r\nget neg\r\nset abs 0 4000000000 1\r\nx\r\n",
        "verbosity 1\r\nverbosity 1 noreply\r\nverbosity\r\n",
        "flush_all\r\nget m1\r\nflush_all 0\r\nflush_all noreply\r\n",
        "ms mk 2 T0 F7\r\nhi\r\nmg mk v f\r\nmg mk v\r\nmg mk s t\r\nmg nope v\r\nmg nope v q\r\nmn\r\n",
        "ms q1 1 q\r\na\r\nmd q1 q\r\nmd q1 q\r\nmn\r\n",
        "ma cnt N0 J13 v\r\nma cnt v\r\nmd cnt\r\nme cnt\r\n",
        "mg bWs= b v\r\nms bWs= 2 b\r\nzz\r\nmg bWs= b v k\r\n",
        "\r\n \r\nGET a\r\n",
        "lru mode flat noreply\r\ncache_memlimit 100 noreply\r\nshutdown\r\nmn\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(format!("get {long_key}\r\nset {long_key} 0 0 1\r\nx\r\n").into_bytes());
    v.push(too_large);
    v.push(large_set);
    v.push(
        format!(
            "get {}\r\n",
            (0..300)
                .map(|i| format!("k{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .into_bytes(),
    );
    v
}

#[test]
fn replies_match_memcached_byte_for_byte() {
    let direct = Memcached::start();
    let behind = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[behind.addr_string()]);
    let mut failures = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let want = run(direct.addr(), case, i, case.len() + 100);
        let got = run(proxy.addr(0), case, i, case.len() + 100);
        assert!(
            !want.0.is_empty(),
            "case {i}: memcached sent nothing, the case tests nothing"
        );
        if want != got {
            failures.push(format!(
                "case {i} {}\n  memcached: {} closed={}\n  proxy:     {} closed={}",
                show(&case[..case.len().min(120)]),
                show(&want.0[..want.0.len().min(400)]),
                want.1,
                show(&got.0[..got.0.len().min(400)]),
                got.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pipelined_input_split_at_every_byte() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py2], &[mc.addr_string()]);
    let input = b"set s 3 0 5\r\nhello\r\nget s nope s\r\nincr s 1\r\ndelete s\r\nmn\r\n";
    let want = b"STORED\r\nVALUE s 3 5\r\nhello\r\nVALUE s 3 5\r\nhello\r\nEND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nDELETED\r\nMN\r\n";
    for chunk in [1, 2, 3, 7] {
        let (got, closed) = run(proxy.addr(0), input, 0, chunk);
        assert!(!closed);
        assert_eq!(show(&got), show(want), "chunk {chunk}");
    }
}

#[test]
fn multi_get_across_two_servers_keeps_request_order() {
    let a = Memcached::start();
    let b = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[a.addr_string(), b.addr_string()]);
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("key{i}")).collect();
    for k in &keys {
        let r = c.call(
            format!("set {k} 0 0 {}\r\n{k}\r\n", k.len()).as_bytes(),
            b"\r\n",
        );
        assert_eq!(r, b"STORED\r\n");
    }
    // Keys really are spread over both servers, as python-memcached would place them.
    let mut on_a = 0;
    let mut direct_a = Client::connect(a.addr()).unwrap();
    for k in &keys {
        let r = direct_a.call(format!("get {k}\r\n").as_bytes(), b"END\r\n");
        let here = r.starts_with(b"VALUE");
        let want = picklebridge::route::server_index(k.as_bytes(), 2) == 0;
        assert_eq!(here, want, "{k}");
        on_a += usize::from(here);
    }
    assert!(on_a > 5 && on_a < 35, "{on_a} of 40 on server a");
    let mut req = String::from("gets");
    let mut want = Vec::new();
    for k in keys
        .iter()
        .rev()
        .chain(["nope".to_string(), keys[3].clone()].iter())
    {
        req.push(' ');
        req.push_str(k);
        if k != "nope" {
            want.push(k.clone());
        }
    }
    req.push_str("\r\n");
    let got = String::from_utf8(c.call(req.as_bytes(), b"END\r\n")).unwrap();
    let got_keys: Vec<&str> = got
        .lines()
        .filter_map(|l| l.strip_prefix("VALUE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(got_keys, want);
}
