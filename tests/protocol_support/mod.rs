//! Shared helpers of the protocol differential tests (tests/protocol_*.rs): send bytes to a
//! server and collect its replies up to a sentinel or the connection close, and the same
//! exchange driven through the protocol codec alone.
#![allow(dead_code)]

use std::time::Duration;

use bytes::{Buf, BytesMut};
use picklebridge::protocol::{
    compose_request, compose_response, parse_request_buf, parse_response_buf, Limits, Request,
    Response,
};

use crate::common::servers::{show, Client};

/// How a case ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// A sentinel `mg` is appended; its reply marks the end of the case's replies.
    Sentinel,
    /// memcached closes the connection.
    Close,
}

/// The reply to the sentinel of case `i` (a miss that echoes its key and opaque).
pub fn sentinel(i: usize) -> (Vec<u8>, Vec<u8>) {
    (
        format!("mg __end__ k Oc{i}\r\n").into_bytes(),
        format!("EN k__end__ Oc{i}\r\n").into_bytes(),
    )
}

/// Sends `input` on a fresh connection and reads the replies: up to the sentinel reply, or
/// until the server closes. Returns the bytes and whether the connection was closed.
pub fn direct(addr: std::net::SocketAddr, input: &[u8], end: End, i: usize) -> (Vec<u8>, bool) {
    let mut c = Client::connect(addr).expect("connect memcached");
    let (sent, expect) = sentinel(i);
    if end == End::Sentinel {
        c.send(input);
    }
    match end {
        End::Sentinel => {
            c.send(&sent);
            let mut got = c.read_until(&expect);
            let closed = !got.ends_with(&expect);
            if !closed {
                got.truncate(got.len() - expect.len());
            }
            (got, closed)
        }
        End::Close => {
            drop(c);
            read_to_close(addr, input)
        }
    }
}

/// Sends `input` and reads until EOF (closed) or a 2 s silence (still open).
pub fn read_to_close(addr: std::net::SocketAddr, input: &[u8]) -> (Vec<u8>, bool) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s.write_all(input).expect("write");
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

/// Sends one composed request upstream and reads its framed reply.
pub fn exchange(up: &mut Client, req: &Request, i: usize) -> Response {
    let mut wire = BytesMut::new();
    compose_request(req, &mut wire);
    up.send(&wire);
    let mut rbuf = BytesMut::new();
    loop {
        match parse_response_buf(req, &mut rbuf) {
            Ok(Some(resp)) => return resp,
            Ok(None) => {
                let more = up.read_exact(1);
                assert!(!more.is_empty(), "case {i}: upstream reply cut short");
                rbuf.extend_from_slice(&more);
            }
            Err(e) => panic!("case {i}: unframeable reply {e}: {}", show(&rbuf)),
        }
    }
}

/// The same exchange through the codec: what the proxy's client would receive.
pub fn via_codec(addr: std::net::SocketAddr, input: &[u8], end: End, i: usize) -> (Vec<u8>, bool) {
    let mut up = Client::connect(addr).expect("connect memcached");
    let limits = Limits::default();
    let mut buf = BytesMut::from(input);
    if end == End::Sentinel {
        buf.extend_from_slice(&sentinel(i).0);
    }
    let mut out = Vec::new();
    let mut swallow = 0usize;
    loop {
        let n = swallow.min(buf.len());
        buf.advance(n);
        swallow -= n;
        let req = match parse_request_buf(&mut buf, &limits) {
            Err(_) => return (out, true),
            Ok(None) => break,
            Ok(Some(req)) => req,
        };
        match &req {
            Request::Reject(r) => {
                if let Some(side_effect) = &r.side_effect {
                    exchange(&mut up, side_effect, i); // reply discarded
                }
                swallow = r.swallow;
                r.write_reply(&mut out);
                continue;
            }
            Request::Quit => return (out, true),
            _ => {}
        }
        let resp = exchange(&mut up, &req, i);
        if req.client_sees(&resp) {
            let mut dst = BytesMut::new();
            compose_response(&resp, &mut dst);
            out.extend_from_slice(&dst);
        }
    }
    if end == End::Sentinel {
        let reply = sentinel(i).1;
        assert!(
            out.ends_with(&reply),
            "case {i}: no sentinel reply in {}",
            show(&out)
        );
        out.truncate(out.len() - reply.len());
        (out, false)
    } else {
        (out, false)
    }
}

/// Where two reply streams first differ, with 200 bytes of context each side.
pub fn first_difference(want: &[u8], got: &[u8]) -> String {
    let at = want
        .iter()
        .zip(got.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    let from = at.saturating_sub(200);
    format!(
        "replies differ at byte {at}\n  memcached: ...{}\n  proxy:     ...{}",
        show(&want[from..(at + 200).min(want.len())]),
        show(&got[from..(at + 200).min(got.len())])
    )
}
