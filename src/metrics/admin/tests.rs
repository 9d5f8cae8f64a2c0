//! Admin listener tests over real loopback TCP.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::*;
use crate::metrics::Metrics;

struct Admin {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(ready: Arc<AtomicBool>) -> Admin {
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).expect("register");
    metrics.route("default", "main", "transcode");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_admin(
        listener,
        registry,
        move || {
            if ready.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("a pool has no reachable server")
            }
        },
        async move {
            let _ = stopped.await;
        },
    ));
    Admin {
        addr,
        stop: Some(stop),
        task,
    }
}

async fn request(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(raw).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("response within 5 s")
        .expect("read");
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test]
async fn serves_metrics_health_and_readiness() {
    let ready = Arc::new(AtomicBool::new(false));
    let mut admin = start(ready.clone()).await;
    let r = request(admin.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{r}"
    );
    assert!(r.contains("\r\nConnection: close\r\n"), "{r}");
    let (head, body) = r.split_once("\r\n\r\n").expect("head/body");
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", body.len())),
        "{head}"
    );
    assert!(
        body.contains(
            "picklebridge_mismatches_total{kind=\"protocol_too_new\",route=\"default\"} 0\n"
        ),
        "{body}"
    );

    let r = request(admin.addr, b"GET /healthz HTTP/1.0\r\n\r\n").await;
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\nok\n"),
        "{r}"
    );
    let r = request(admin.addr, b"GET /readyz?verbose=1 HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
    ready.store(true, Ordering::Relaxed);
    let r = request(admin.addr, b"GET /readyz HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    let r = request(admin.addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );

    admin
        .stop
        .take()
        .expect("once")
        .send(())
        .expect("server alive");
    admin.task.await.expect("join").expect("clean stop");
    assert!(
        TcpStream::connect(admin.addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn rejects_bad_requests_with_the_right_status() {
    let admin = start(Arc::new(AtomicBool::new(true))).await;
    let cases: &[(&[u8], &str)] = &[
        (b"GET /nope HTTP/1.1\r\n\r\n", "404 Not Found"),
        (
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "405 Method Not Allowed",
        ),
        (b"GET /metrics\r\n\r\n", "400 Bad Request"),
        (b"GET metrics HTTP/1.1\r\n\r\n", "400 Bad Request"),
        (b"\xff\xfe HTTP/1.1\r\n\r\n", "400 Bad Request"),
    ];
    for (raw, status) in cases {
        let r = request(admin.addr, raw).await;
        assert!(
            r.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{raw:?} -> {r}"
        );
    }
    let r = request(admin.addr, b"POST /x HTTP/1.1\r\n\r\n").await;
    assert!(r.contains("\r\nAllow: GET, HEAD\r\n"), "{r}");
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    let r = request(admin.addr, &huge).await;
    assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_dropped_after_the_read_timeout() {
    let admin = start(Arc::new(AtomicBool::new(true))).await;
    let mut s = TcpStream::connect(admin.addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    // With the clock paused, tokio advances time when every task is idle: the server's timer fires.
    let n = s.read_to_end(&mut out).await.expect("read");
    assert_eq!(n, 0, "closed without a response: {out:?}");
}

#[tokio::test]
async fn idle_connections_past_the_limit_do_not_lock_out_a_scrape() {
    let admin = start(Arc::new(AtomicBool::new(true))).await;
    // Twice the limit of clients that connect and never finish their request head.
    let mut idle = Vec::new();
    for _ in 0..2 * MAX_CONNECTIONS {
        let mut s = TcpStream::connect(admin.addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\n")
            .await
            .expect("write");
        idle.push(s);
    }
    let r = request(admin.addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r:?}");
    // The oldest idle clients were closed to make room, without a response.
    let mut out = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(2), idle[0].read_to_end(&mut out))
        .await
        .expect("the oldest idle connection is closed, not left to its read timeout")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without a response: {out:?}");
}

#[test]
fn admin_config_defaults_and_rejects_unknown_keys() {
    let c: AdminConfig = toml::from_str("").expect("empty");
    assert_eq!(c.listen, "127.0.0.1:9150".parse().expect("addr"));
    let c: AdminConfig = toml::from_str("listen = \"127.0.0.1:9999\"").expect("listen");
    assert_eq!(c.listen.port(), 9999);
    assert!(toml::from_str::<AdminConfig>("listne = \"127.0.0.1:1\"").is_err());
}
