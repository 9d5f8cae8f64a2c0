//! Heap allocations per request on the proxy's side, counted by a wrapping global allocator
//! around the in-process proxy and a real memcached (another process). The client allocates
//! nothing inside the measured loops (fixed buffers; its thread is not counted). The bounds
//! guard the request path against per-request allocation storms: before 2026-11-29 every
//! request of a client that waits for each reply allocated a fresh 16 KiB read buffer, and a
//! stored value was copied twice. Counts, not times: they do not depend on the machine's load.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::servers::{Memcached, Proxy};
use picklebridge::config::ClientRuntime;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
thread_local! {
    /// Set on the client's thread while it exchanges requests: its own allocations are not
    /// the proxy's.
    static CLIENT: Cell<bool> = const { Cell::new(false) };
}

fn note(size: usize) {
    if CLIENT.with(|c| c.get()) {
        return;
    }
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n);
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Conn {
    s: TcpStream,
    buf: Box<[u8]>,
}

impl Conn {
    fn new(addr: std::net::SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Conn {
            s,
            buf: vec![0u8; 1 << 20].into_boxed_slice(),
        }
    }
    /// Sends `req`, reads exactly `n` bytes (no allocation).
    fn exchange(&mut self, req: &[u8], n: usize) {
        self.s.write_all(req).unwrap();
        let mut got = 0;
        while got < n {
            let want = (n - got).min(self.buf.len());
            let k = self.s.read(&mut self.buf[..want]).unwrap();
            assert!(k > 0, "closed");
            got += k;
        }
    }
    /// Sends `req`, reads until the reply ends with `end` (allocates; setup only).
    fn call(&mut self, req: &[u8], end: &[u8]) -> Vec<u8> {
        self.s.write_all(req).unwrap();
        let mut out = Vec::new();
        while !out.ends_with(end) {
            let k = self.s.read(&mut self.buf).unwrap();
            assert!(k > 0, "closed");
            out.extend_from_slice(&self.buf[..k]);
        }
        out
    }
}

fn set_req(key: &str, flags: u32, v: &[u8]) -> Vec<u8> {
    let mut r = format!("set {key} {flags} 0 {}\r\n", v.len()).into_bytes();
    r.extend_from_slice(v);
    r.extend_from_slice(b"\r\n");
    r
}

/// (allocations, bytes) per request over `n` exchanges of `req` (each one `per` requests).
fn measure(name: &str, c: &mut Conn, req: &[u8], end: &[u8], per: u64, n: u64) -> (f64, f64) {
    let len = if per > 1 {
        // A batch of `per` copies of one request: its reply `per` times.
        let one = &req[..req.len() / per as usize];
        c.call(one, end).len() * per as usize
    } else {
        c.call(req, end).len()
    };
    for _ in 0..200 {
        CLIENT.with(|f| f.set(true));
        c.exchange(req, len);
        CLIENT.with(|f| f.set(false));
    }
    // What the proxy still does after a reply is out (the rest of its loop) falls into the
    // next exchange's count, before and after the measured ones alike: it evens out.
    let (a0, b0) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    CLIENT.with(|f| f.set(true));
    for _ in 0..n {
        c.exchange(req, len);
    }
    CLIENT.with(|f| f.set(false));
    let (a1, b1) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    let reqs = (n * per) as f64;
    let r = ((a1 - a0) as f64 / reqs, (b1 - b0) as f64 / reqs);
    eprintln!(
        "{name:40} {:8.2} allocs/req {:10.1} bytes/req (reply {len} B/exchange)",
        r.0, r.1
    );
    r
}

/// Most allocations and bytes per request.
type Bound = (f64, f64);
/// A case: its name, whether it goes to the py2 listener, the request, how its reply ends,
/// requests per exchange, exchanges, and its bound in a release build and in a debug build
/// (whose transcoder checks its own output).
type Case<'a> = (&'a str, bool, &'a [u8], &'a [u8], u64, u64, Bound, Bound);

#[test]
fn allocations_per_request() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(
        &[ClientRuntime::Py2, ClientRuntime::Py3],
        &[mc.addr_string()],
    );
    let mut direct = Conn::new(mc.addr());
    let plain = b"hello world, a small plain value".to_vec();
    // Protocol 2: needs no change for either reader.
    let p2: &[u8] = b"\x80\x02K\x05.";
    // Protocol 4 `'hello'`: rewritten to protocol 2 for a Python 2 reader.
    let p4: &[u8] = b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8c\x05hello\x94.";
    let mut setup = |k: &str, f, v: &[u8]| {
        assert_eq!(direct.call(&set_req(k, f, v), b"\r\n"), b"STORED\r\n");
    };
    setup("plain", 0, &plain);
    setup("p2", 1, p2);
    setup("p4", 1, p4);
    for i in 0..10 {
        setup(&format!("m{i}"), 0, &plain);
    }
    let mut py2 = Conn::new(proxy.addr(0));
    let mut py3 = Conn::new(proxy.addr(1));
    let got = py2.call(b"get p4\r\n", b"END\r\n");
    assert!(
        !got.windows(4).any(|w| w == b"\x80\x04"),
        "p4 was rewritten"
    );
    let n = 1000;
    let keys: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let multi = format!("get {}\r\n", keys.join(" "));
    let batch: Vec<u8> = b"get plain\r\n".repeat(100);
    let big = vec![b'x'; 100_000];
    let (set_plain, set_p2, set_big) = (
        set_req("s", 0, &plain),
        set_req("sp", 1, p2),
        set_req("big", 0, &big),
    );
    let cases: [Case<'_>; 13] = [
        (
            "get plain",
            false,
            b"get plain\r\n",
            b"END\r\n",
            1,
            n,
            (4.3, 512.0),
            (4.3, 512.0),
        ),
        (
            "get pickle unchanged (py3)",
            false,
            b"get p2\r\n",
            b"END\r\n",
            1,
            n,
            (4.3, 512.0),
            (7.3, 2560.0),
        ),
        (
            "get pickle unchanged (py2)",
            true,
            b"get p2\r\n",
            b"END\r\n",
            1,
            n,
            (4.3, 512.0),
            (7.3, 2560.0),
        ),
        (
            "get pickle rewritten p4 -> p2 (py2)",
            true,
            b"get p4\r\n",
            b"END\r\n",
            1,
            n,
            (5.3, 512.0),
            (14.3, 5120.0),
        ),
        (
            "get miss",
            false,
            b"get nosuch\r\n",
            b"END\r\n",
            1,
            n,
            (3.3, 384.0),
            (3.3, 384.0),
        ),
        (
            "set plain",
            false,
            &set_plain,
            b"\r\n",
            1,
            n,
            (2.3, 384.0),
            (2.3, 384.0),
        ),
        (
            "set pickle (py3)",
            false,
            &set_p2,
            b"\r\n",
            1,
            n,
            (2.3, 384.0),
            (5.3, 2560.0),
        ),
        (
            "10-key get",
            false,
            multi.as_bytes(),
            b"END\r\n",
            1,
            n,
            (4.3, 1792.0),
            (4.3, 1792.0),
        ),
        (
            "100 pipelined gets (per get)",
            false,
            &batch,
            b"END\r\n",
            100,
            100,
            (4.3, 640.0),
            (4.3, 640.0),
        ),
        (
            "mg plain v",
            false,
            b"mg plain v\r\n",
            b"\r\n",
            1,
            n,
            (10.3, 896.0),
            (10.3, 896.0),
        ),
        (
            "mg pickle v f (py3)",
            false,
            b"mg p2 v f\r\n",
            b"\r\n",
            1,
            n,
            (5.3, 640.0),
            (8.3, 2560.0),
        ),
        // One copy of the value, into the upstream queue (composed whole it was two).
        (
            "set 100 KB",
            false,
            &set_big,
            b"\r\n",
            1,
            200,
            (5.3, 130_000.0),
            (5.3, 130_000.0),
        ),
        (
            "get 100 KB",
            false,
            b"get big\r\n",
            b"END\r\n",
            1,
            200,
            (4.3, 512.0),
            (4.3, 512.0),
        ),
    ];
    let mut over = Vec::new();
    for (name, on_py2, req, end, per, exchanges, release, debug) in cases {
        let conn = if on_py2 { &mut py2 } else { &mut py3 };
        let (allocs, bytes) = measure(name, conn, req, end, per, exchanges);
        let (most_allocs, most_bytes) = if cfg!(debug_assertions) {
            debug
        } else {
            release
        };
        if allocs > most_allocs || bytes > most_bytes {
            over.push(format!(
                "{name}: {allocs:.2} allocations, {bytes:.0} bytes per request (at most \
                 {most_allocs}, {most_bytes})"
            ));
        }
    }
    assert!(over.is_empty(), "{over:#?}");
    drop(proxy);
}
