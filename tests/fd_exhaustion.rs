//! The accept loop out of file descriptors (`EMFILE`): clients waiting in the listen queue are
//! refused with `ERROR Too many open connections` and counted, not left without a reply until a
//! descriptor frees; once descriptors free, clients are served again.
//!
//! Alone in its test binary: it lowers this process's soft open-file limit, which every thread
//! of the process shares.
mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::binary::labelled_sum;
use common::servers::{Client, Memcached, Proxy};
use picklebridge::config::ClientRuntime;
use rlimit::Resource;

/// The highest descriptor number this process has open.
fn highest_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .max()
        .expect("some descriptor")
}

/// The reply to `version\r\n` on `stream`: its first line, or what came before EOF or the
/// 5 s read timeout.
fn version_reply(stream: &mut std::net::TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(b"version\r\n");
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn out_of_descriptors_waiting_clients_are_refused_not_left_hanging() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[mc.addr_string()]);
    let addr = proxy.addr(0);
    let mut first = Client::connect(addr).unwrap();
    assert_eq!(first.call(b"set k 0 0 1\r\nx\r\n", b"\r\n"), b"STORED\r\n");

    // The clients' sockets are made before the limit is lowered: connecting them takes no
    // descriptor of this process, so only the proxy's accepts run out.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sockets: Vec<_> = (0..40)
        .map(|_| tokio::net::TcpSocket::new_v4().unwrap())
        .collect();
    // Descriptors are handed out lowest first: fill the holes below the highest one in use, so
    // the lowered limit leaves room for exactly 8 accepted clients.
    let highest = highest_fd();
    let mut fillers = Vec::new();
    loop {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::unix::io::AsRawFd::as_raw_fd(&file) as u64;
        fillers.push(file);
        if fd >= highest {
            break;
        }
    }
    let (soft, hard) = Resource::NOFILE.get().unwrap();
    Resource::NOFILE.set(highest_fd() + 1 + 8, hard).unwrap();
    let streams: Vec<_> = rt.block_on(async {
        let mut out = Vec::new();
        for s in sockets {
            out.push(s.connect(addr).await.expect("connect"));
        }
        out
    });
    let mut replies = Vec::new();
    for s in streams {
        let mut s = s.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        replies.push((version_reply(&mut s), s));
    }
    let served = replies
        .iter()
        .filter(|(r, _)| r.starts_with("VERSION "))
        .count();
    let refused = replies
        .iter()
        .filter(|(r, _)| r == "ERROR Too many open connections\r\n")
        .count();
    Resource::NOFILE.set(soft, hard).unwrap();
    let silent: Vec<_> = replies
        .iter()
        .enumerate()
        .filter(|(_, (r, _))| !r.starts_with("VERSION ") && !r.starts_with("ERROR Too many"))
        .map(|(i, (r, _))| format!("client {i}: {r:?}"))
        .collect();
    assert!(silent.is_empty(), "clients without an answer: {silent:?}");
    assert!(
        served >= 1 && refused >= 1,
        "served {served}, refused {refused}"
    );
    let counted = labelled_sum(
        &proxy.metrics_text(),
        "picklebridge_client_connections_rejected_total",
        &[],
    )
    .unwrap_or(0.0);
    assert_eq!(counted, refused as f64, "rejected_total");

    // Descriptors back: a new client is served.
    drop(replies);
    drop(fillers);
    let mut again = Client::connect(addr).unwrap();

    assert_eq!(
        again.call(b"get k\r\n", b"END\r\n"),
        b"VALUE k 0 1\r\nx\r\nEND\r\n"
    );
}
