//! Upstream connection tests against scripted TCP peers on loopback: pipelining order, timeouts
//! that drop the connection (a late reply never reaches the next request), reconnect after the
//! server comes back. Real-memcached tests live in `tests/proxy_*.rs`.
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::pool::{Server, UpstreamTimeouts};
use super::*;

/// A reply is one line.
struct Line;
impl Exchange for Line {
    type Reply = Bytes;
    fn parse_reply(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, ()> {
        match buf.windows(2).position(|w| w == b"\r\n") {
            Some(i) => Ok(Some(buf.split_to(i + 2).freeze())),
            None => Ok(None),
        }
    }
}

fn timeouts(request_ms: u64) -> UpstreamTimeouts {
    UpstreamTimeouts {
        connect: Duration::from_millis(500),
        request: Duration::from_millis(request_ms),
    }
}

fn server(addr: &str, request_ms: u64) -> Server<Line> {
    Server::start(
        "test",
        addr,
        1,
        timeouts(request_ms),
        Transport::Plain,
        Arc::new(NoEvents),
    )
}

async fn call(s: &Server<Line>, line: &str) -> UpstreamResult<Bytes> {
    s.send(7, Bytes::from(format!("{line}\r\n")), Line)
        .await
        .wait()
        .await
}

/// Answers every line with "re:<line>", or, for lines starting with "hold", with nothing until
/// the next line arrives, then "late" first.
async fn spawn_peer(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (rd, mut wr) = sock.into_split();
                let mut lines = BufReader::new(rd).lines();
                let mut held = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.starts_with("hold") {
                        held = true;
                        continue;
                    }
                    if held {
                        let _ = wr.write_all(b"late\r\n").await;
                        held = false;
                    }
                    let _ = wr.write_all(format!("re:{line}\r\n").as_bytes()).await;
                }
            });
        }
    });
}

#[tokio::test]
async fn pipelined_replies_match_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    spawn_peer(listener).await;
    let s = server(&addr, 1000);
    let mut pending = Vec::new();
    for i in 0..200 {
        pending.push(s.send(1, Bytes::from(format!("k{i}\r\n")), Line).await);
    }
    for (i, p) in pending.iter_mut().enumerate() {
        assert_eq!(p.wait().await.unwrap(), format!("re:k{i}\r\n").as_bytes());
    }
}

/// A data block sent apart from its line goes right after it, then CRLF, in request order.
#[tokio::test]
async fn a_body_apart_follows_its_line() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    spawn_peer(listener).await;
    let s = server(&addr, 1000);
    let mut pending = Vec::new();
    for i in 0..50 {
        let body = Some(Bytes::from(format!("body{i}")));
        // The peer answers lines: the line is the head, the body and the CRLF after it.
        pending.push(
            s.send_parts(1, Bytes::from(format!("k{i} ")), body, Line)
                .await,
        );
    }
    for (i, p) in pending.iter_mut().enumerate() {
        assert_eq!(
            p.wait().await.unwrap(),
            format!("re:k{i} body{i}\r\n").as_bytes()
        );
    }
}

#[tokio::test]
async fn timeout_drops_connection_and_late_reply_is_never_matched() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    spawn_peer(listener).await;
    let s = server(&addr, 100);
    let started = tokio::time::Instant::now();
    assert_eq!(call(&s, "hold").await, Err(UpstreamError::Timeout));
    assert!(started.elapsed() < Duration::from_millis(900));
    // On the old connection the peer would now answer "late" first; the proxy must be on a new
    // connection, where the first reply is the one for this request.
    assert_eq!(call(&s, "next").await.unwrap(), &b"re:next\r\n"[..]);
}

#[tokio::test]
async fn refused_then_recovers_when_server_comes_back() {
    // Reserve a port, then close it so connects are refused.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let s = server(&addr.to_string(), 200);
    // Refused, or backing off after the eager connect was refused: fails at once, never hangs.
    let started = tokio::time::Instant::now();
    let r = call(&s, "a").await;
    assert!(
        matches!(r, Err(UpstreamError::Unavailable | UpstreamError::Connect)),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let r = call(&s, "b").await;
    assert!(
        matches!(r, Err(UpstreamError::Unavailable | UpstreamError::Connect)),
        "{r:?}"
    );
    let listener = TcpListener::bind(addr).await.unwrap();
    spawn_peer(listener).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match call(&s, "c").await {
            Ok(r) => {
                assert_eq!(r, &b"re:c\r\n"[..]);
                assert!(s.is_up());
                break;
            }
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "no recovery: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn server_closing_fails_in_flight_and_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        // First connection: answer one request, then read the next and hang up without
        // replying (memcached restarted); later ones: answer.
        let (sock, _) = listener.accept().await.unwrap();
        let (rd, mut wr) = sock.into_split();
        let mut lines = BufReader::new(rd).lines();
        let line = lines.next_line().await.unwrap().unwrap();
        wr.write_all(format!("re:{line}\r\n").as_bytes())
            .await
            .unwrap();
        let _ = lines.next_line().await;
        drop((lines, wr));
        spawn_peer(listener).await;
    });
    let s = server(&addr, 1000);
    assert_eq!(call(&s, "w").await.unwrap(), &b"re:w\r\n"[..]);
    let r = call(&s, "x").await;
    assert!(
        matches!(r, Err(UpstreamError::Closed | UpstreamError::Io)),
        "{r:?}"
    );
    // A connection that answered was healthy: the next one is opened at once, not after a
    // back-off during which requests would fail.
    assert_eq!(call(&s, "y").await.unwrap(), &b"re:y\r\n"[..]);
}

/// Accepts connections on `listener` for `period`, writing `greeting` to each and closing it
/// at once; returns how many it accepted.
async fn count_accepts(listener: TcpListener, greeting: &'static [u8], period: Duration) -> usize {
    let mut accepted = 0;
    let until = tokio::time::Instant::now() + period;
    while let Ok(Ok((mut sock, _))) = tokio::time::timeout_at(until, listener.accept()).await {
        accepted += 1;
        let _ = sock.write_all(greeting).await;
    }
    accepted
}

/// A server that accepts and closes at once (a balancer with no backend, a crash-looping
/// memcached) is backed off like one that refuses: 50 ms doubling, so a few connects in
/// 1.5 s, not one per round trip (a review counted 51 490 in 3 s).
#[tokio::test]
async fn a_server_that_accepts_and_closes_is_backed_off() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepts = tokio::spawn(count_accepts(listener, b"", Duration::from_millis(1500)));
    let s = server(&addr, 1000);
    let r = call(&s, "a").await;
    assert!(
        matches!(
            r,
            Err(UpstreamError::Closed | UpstreamError::Io | UpstreamError::Unavailable)
        ),
        "{r:?}"
    );
    let accepted = accepts.await.unwrap();
    // Connects at 0, 50, 150, 350, 750 and 1350 ms (plus scheduling).
    assert!((2..=8).contains(&accepted), "{accepted} connects in 1.5 s");
}

/// Counts connection events.
#[derive(Default)]
struct Counted {
    connected: std::sync::atomic::AtomicUsize,
    reconnects: std::sync::atomic::AtomicUsize,
}

impl ServerEvents for Counted {
    fn connected(&self, reconnect: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.connected.fetch_add(1, Relaxed);
        self.reconnects.fetch_add(usize::from(reconnect), Relaxed);
    }
}

/// memcached past its connection limit writes `ERROR Too many open connections` and closes:
/// requests fail as for a refused connect (never with that line as their reply), and the
/// server is backed off. Its retries, which connect and are refused, do not count as the server
/// up or as reconnects: only the first connection, before any failure, was taken as up.
#[tokio::test]
async fn too_many_connections_is_a_refused_connect() {
    use std::sync::atomic::Ordering::Relaxed;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepts = tokio::spawn(count_accepts(
        listener,
        b"ERROR Too many open connections\r\n",
        Duration::from_millis(1500),
    ));
    let events = Arc::new(Counted::default());
    let s = Server::start(
        "test",
        &addr,
        1,
        timeouts(1000),
        Transport::Plain,
        events.clone(),
    );
    for line in ["a", "b", "c"] {
        let r = call(&s, line).await;
        assert!(
            matches!(r, Err(UpstreamError::Connect | UpstreamError::Unavailable)),
            "{r:?}"
        );
    }
    let accepted = accepts.await.unwrap();
    assert!((2..=8).contains(&accepted), "{accepted} connects in 1.5 s");
    assert!(!s.is_up());
    assert_eq!(
        (
            events.connected.load(Relaxed),
            events.reconnects.load(Relaxed)
        ),
        (1, 0),
        "{accepted} connects"
    );
}

/// After failures, a connection that is accepted and stays quiet is up once it has lived a
/// second (an idle connection proves itself by time), and one that answers is up at once.
#[tokio::test]
async fn after_failures_a_connection_is_up_once_it_proves_itself() {
    use std::sync::atomic::Ordering::Relaxed;
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let events = Arc::new(Counted::default());
    let s = Server::start(
        "test",
        &addr.to_string(),
        1,
        timeouts(1000),
        Transport::Plain,
        events.clone(),
    );
    // Refused for a while: failures in a row.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    spawn_peer(listener).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while events.connected.load(Relaxed) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.is_up());
    assert_eq!(call(&s, "x").await.unwrap(), &b"re:x\r\n"[..]);
    assert_eq!(events.connected.load(Relaxed), 1);
}

/// A request sent alone gets a connection of its own, closed after its reply with whatever
/// followed it; the server's shared connection never sees it. Refused, silent and closing
/// servers fail it within the timeouts.
#[tokio::test]
async fn a_request_sent_alone_has_a_connection_of_its_own() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (conns_tx, mut conns) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let conns_tx = conns_tx.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = sock.into_split();
                let mut lines = BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = conns_tx.send(line.clone());
                    match line.as_str() {
                        // A reply followed by bytes that would answer a later request.
                        "dump" => {
                            let _ = wr.write_all(b"one\r\nSTRAY\r\n").await;
                        }
                        "silent" => {}
                        "hangup" => return,
                        _ => {
                            let _ = wr.write_all(format!("re:{line}\r\n").as_bytes()).await;
                        }
                    }
                }
            });
        }
    });
    let s = server(&addr, 200);
    // The shared connection first: it must not be the one the dump uses.
    assert_eq!(call(&s, "a").await.unwrap(), &b"re:a\r\n"[..]);
    assert_eq!(conns.recv().await.as_deref(), Some("a"));
    let alone = |line: &str| s.send_alone(Bytes::from(format!("{line}\r\n")), Line);
    assert_eq!(alone("dump").wait().await.unwrap(), &b"one\r\n"[..]);
    assert_eq!(conns.recv().await.as_deref(), Some("dump"));
    // The stray line went with the one-off connection.
    assert_eq!(call(&s, "b").await.unwrap(), &b"re:b\r\n"[..]);
    assert_eq!(alone("c").wait().await.unwrap(), &b"re:c\r\n"[..]);
    let started = tokio::time::Instant::now();
    assert_eq!(alone("silent").wait().await, Err(UpstreamError::Timeout));
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(alone("hangup").wait().await, Err(UpstreamError::Closed));
    // The shared connection was never disturbed.
    assert_eq!(call(&s, "d").await.unwrap(), &b"re:d\r\n"[..]);

    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = probe.local_addr().unwrap().to_string();
    drop(probe);
    let r = server(&refused, 200)
        .send_alone(Bytes::from_static(b"x\r\n"), Line)
        .wait()
        .await;
    assert_eq!(r, Err(UpstreamError::Connect));
}

/// Requests sent alone to one server open at most four connections at once; the others wait
/// for one to close (within their deadline) rather than open more.
#[tokio::test]
async fn requests_sent_alone_take_turns() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (o, m) = (open.clone(), most.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (o, m) = (o.clone(), m.clone());
            tokio::spawn(async move {
                let (rd, mut wr) = sock.into_split();
                let mut lines = BufReader::new(rd).lines();
                // Requests being answered at once (the server's shared connection sends none).
                if let Ok(Some(line)) = lines.next_line().await {
                    let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    // Slow enough that the connections overlap.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = wr.write_all(format!("re:{line}\r\n").as_bytes()).await;
                    o.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    let s = server(&addr, 2000);
    let mut pending: Vec<_> = (0..12)
        .map(|i| s.send_alone(Bytes::from(format!("d{i}\r\n")), Line))
        .collect();
    for (i, p) in pending.iter_mut().enumerate() {
        assert_eq!(p.wait().await.unwrap(), format!("re:d{i}\r\n").as_bytes());
    }
    let most = most.load(Ordering::SeqCst);
    assert!((1..=4).contains(&most), "{most} connections at once");
}

/// A streamed reply arrives in parts of whole lines up to its end; a receiver that goes away
/// closes its connection, so the server stops writing to nobody.
#[tokio::test]
async fn a_streamed_reply_comes_in_parts_and_ends_with_its_receiver() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = sock.into_split();
                let mut lines = BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "list" {
                        // A partial line first: only whole lines are passed on.
                        let _ = wr.write_all(b"a\nb").await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let _ = wr.write_all(b"\nEND\nafter\n").await;
                    } else if line == "quiet" {
                        let _ = wr.write_all(b"first\n").await;
                    } else if line == "endless" {
                        for _ in 0..100_000 {
                            if wr.write_all(&[b'x'; 1023]).await.is_err()
                                || wr.write_all(b"\n").await.is_err()
                            {
                                break;
                            }
                        }
                    }
                }
                let _ = closed_tx.send(());
            });
        }
    });
    let s = server(&addr, 1000);
    // Whole lines; `END` ends the reply.
    let cut = |buf: &[u8], _first: bool| {
        let mut len = 0;
        for line in buf.split_inclusive(|&b| b == b'\n') {
            if !line.ends_with(b"\n") {
                break;
            }
            len += line.len();
            if line == b"END\n" {
                return Ok((len, true));
            }
        }
        Ok((len, false))
    };
    let mut rx = s.stream_alone(Bytes::from_static(b"list\r\n"), cut, false);
    let mut got = Vec::new();
    while let Some(part) = rx.recv().await {
        let part = part.unwrap();
        assert!(part.ends_with(b"\n"), "{part:?}");
        got.extend_from_slice(&part);
    }
    assert_eq!(got, b"a\nb\nEND\n");
    // The connection closed once the reply ended.
    closed.recv().await.unwrap();

    let mut rx = s.stream_alone(Bytes::from_static(b"endless\r\n"), cut, true);
    assert!(rx.recv().await.unwrap().is_ok());
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), closed.recv())
        .await
        .expect("the connection of a dropped stream closes")
        .unwrap();

    // An endless stream may be quiet past the request timeout, and closes as soon as its
    // receiver goes, not at the server's next line; a bounded one times out.
    let quick = server(&addr, 50);
    let mut rx = quick.stream_alone(Bytes::from_static(b"quiet\r\n"), cut, true);
    assert_eq!(rx.recv().await.unwrap().unwrap(), &b"first\n"[..]);
    let quiet = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), closed.recv())
        .await
        .expect("a quiet stream closes with its receiver")
        .unwrap();
    let mut rx = quick.stream_alone(Bytes::from_static(b"quiet\r\n"), cut, false);
    assert_eq!(rx.recv().await.unwrap().unwrap(), &b"first\n"[..]);
    assert_eq!(rx.recv().await.unwrap(), Err(UpstreamError::Timeout));
    assert!(rx.recv().await.is_none());
}

#[test]
fn every_error_is_a_server_error_line() {
    for e in [
        UpstreamError::Connect,
        UpstreamError::ConnectTimeout,
        UpstreamError::Unavailable,
        UpstreamError::Timeout,
        UpstreamError::Closed,
        UpstreamError::Io,
        UpstreamError::Protocol,
        UpstreamError::Shutdown,
    ] {
        let line = e.reply_line();
        assert!(
            line.starts_with(b"SERVER_ERROR ") && line.ends_with(b"\r\n"),
            "{e:?}"
        );
        assert!(!e.kind().is_empty());
    }
}

#[test]
fn connect_failure_all_is_in_declaration_order() {
    // The metrics index their per-reason counters by `reason as usize`.
    for (i, r) in ConnectFailure::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r:?}");
    }
}
