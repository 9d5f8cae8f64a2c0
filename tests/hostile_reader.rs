//! A client that pipelines thousands of gets of large values and never reads a reply, against
//! the real binary and a real memcached: the proxy's memory (its `/proc` VmRSS and VmHWM) stays
//! within `limits.max_pending_bytes` of where it started, other clients are served meanwhile, and
//! the hog is disconnected after `write_stall_timeout_s`.
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::binary::{admin_get, ServeBin};
use common::ports::free_port;
use common::servers::{show, Client, Memcached};

/// Size of each stored value.
const VALUE: usize = 512 * 1024;
/// Distinct keys holding such values.
const KEYS: usize = 8;
/// The configured `max_pending_bytes`.
const BUDGET_MIB: u64 = 32;
/// Gets the hog pipelines: 20 000 x 512 KiB = 10 GiB of replies if the proxy buffered them.
const GETS: usize = 20_000;
/// What the proxy may grow by over its idle size: the budget plus room for the write buffer
/// (4 MiB), the upstream connection's read buffer, allocator slack and the bystander's traffic.
/// The estimate-based bound this replaced reached ~128 MiB of held replies here at once.
const GROWTH_BOUND_MIB: u64 = BUDGET_MIB + 24;

fn config(port: u16, admin: u16, mc: &Memcached) -> String {
    format!(
        r#"
[[listener]]
address = "127.0.0.1:{port}"
client = "py3"

[admin]
listen = "127.0.0.1:{admin}"

[pool.main]
servers = ["{mc}"]

[limits]
max_pending_bytes = {budget}
write_stall_timeout_s = 4
"#,
        mc = mc.addr_string(),
        budget = BUDGET_MIB << 20,
    )
}

/// Sets `key` to `VALUE` bytes straight into memcached.
fn store(mc: &Memcached, key: &str) {
    let mut c = Client::connect(mc.addr()).expect("memcached client");
    let mut req = format!("set {key} 0 0 {VALUE}\r\n").into_bytes();
    req.extend(std::iter::repeat(b'v').take(VALUE));
    req.extend_from_slice(b"\r\n");
    assert_eq!(show(&c.call(&req, b"\r\n")), "STORED\\r\\n", "set {key}");
}

/// The hog: writes `GETS` pipelined gets (in batches) and never reads. Returns the socket (kept
/// open by the caller) and how many gets it managed to write within `deadline`.
fn hog(listen: SocketAddr, deadline: Instant) -> (TcpStream, usize) {
    let mut s = TcpStream::connect(listen).expect("hog connect");
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .expect("write timeout");
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend_from_slice(format!("get big{}\r\n", i % KEYS).as_bytes());
    }
    let mut written = 0;
    while written < GETS && Instant::now() < deadline {
        match s.write_all(&batch) {
            Ok(()) => written += 100,
            // Back pressure: the proxy stopped reading. Keep trying until the deadline.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    (s, written)
}

/// `client_connection_errors_total{side="client"}` summed over listeners.
fn client_side_errors(admin: u16) -> f64 {
    let (_, page) = admin_get(admin, "/metrics");
    page.lines()
        .filter(|l| l.starts_with("picklebridge_client_connection_errors_total{"))
        .filter(|l| l.contains(r#"side="client""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A memcached holding the `KEYS` large values and the real binary in front of it.
struct Started {
    mc: Memcached,
    proxy: ServeBin,
    listen: SocketAddr,
    admin: u16,
    /// The client that warmed the proxy up.
    client: Client,
    /// The proxy's VmRSS after the warm-up, in KiB.
    idle_kib: u64,
}

/// Starts both and warms the proxy up: one full 512 KiB reply through it, so the idle size
/// includes the buffers any client's traffic grows.
fn start() -> Started {
    let mc = Memcached::start();
    for i in 0..KEYS {
        store(&mc, &format!("big{i}"));
    }
    let (port, admin) = (free_port(), free_port());
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let proxy = ServeBin::start(&config(port, admin, &mc), listen);
    let mut client = Client::connect(listen).expect("client");
    let got = client.call(b"get big0\r\n", b"END\r\n");
    assert_eq!(
        got.len(),
        VALUE + "VALUE big0 0 524288\r\n\r\nEND\r\n".len()
    );
    let idle_kib = proxy.status_kib("VmRSS").expect("VmRSS");
    Started {
        mc,
        proxy,
        listen,
        admin,
        client,
        idle_kib,
    }
}

#[test]
fn a_client_that_never_reads_large_replies_is_held_to_the_byte_budget() {
    let Started {
        mc: _mc,
        proxy,
        listen,
        admin,
        client: mut bystander,
        idle_kib,
    } = start();
    assert_eq!(client_side_errors(admin), 0.0);

    let deadline = Instant::now() + Duration::from_secs(15);
    let hog = std::thread::spawn(move || hog(listen, deadline));
    // While the hog is stalled: sample the proxy's memory and serve a bystander.
    let mut peak_kib = idle_kib;
    let mut served = 0;
    let disconnected = Instant::now() + Duration::from_secs(30);
    while client_side_errors(admin) == 0.0 {
        assert!(
            Instant::now() < disconnected,
            "the stalled client was not disconnected within 30 s"
        );
        peak_kib = peak_kib.max(proxy.status_kib("VmRSS").expect("VmRSS"));
        let key = format!("big{}", served % KEYS);
        let start = Instant::now();
        let got = bystander.call(format!("get {key}\r\n").as_bytes(), b"END\r\n");
        assert!(
            got.starts_with(format!("VALUE {key} 0 {VALUE}\r\n").as_bytes())
                && got.len() == VALUE + format!("VALUE {key} 0 {VALUE}\r\n\r\nEND\r\n").len(),
            "bystander get {key} while the hog stalls: {} bytes",
            got.len()
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "bystander waited {:?}",
            start.elapsed()
        );
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let (hog_socket, written) = hog.join().expect("hog thread");
    let hwm_kib = proxy.status_kib("VmHWM").expect("VmHWM");
    let growth_mib = hwm_kib.saturating_sub(idle_kib) / 1024;
    eprintln!(
        "idle {idle_kib} KiB, sampled peak {peak_kib} KiB, VmHWM {hwm_kib} KiB; hog wrote {written} \
         gets; bystander served {served} gets"
    );
    assert!(served >= 3, "the bystander was served only {served} times");
    assert!(written >= 1_000, "the hog wrote only {written} gets");
    assert!(
        growth_mib < GROWTH_BOUND_MIB,
        "the proxy grew by {growth_mib} MiB (VmHWM {hwm_kib} KiB, idle {idle_kib} KiB) for one \
         client that never reads; budget {BUDGET_MIB} MiB"
    );
    // After the disconnect the proxy serves as before.
    let mut fresh = Client::connect(listen).expect("fresh client");
    assert_eq!(fresh.call(b"get nope\r\n", b"\r\n"), b"END\r\n");
    drop(hog_socket);
}

/// One `get` naming many keys of large values (400 x 512 KiB: a 200 MiB reply) is sent
/// upstream in parts that fit the byte budget, so the proxy holds about one budget of it at a
/// time, not the whole reply (twice: the upstream read buffer, then the client's write buffer);
/// the client reads one complete reply.
#[test]
fn one_get_of_many_large_values_is_held_to_the_byte_budget() {
    const MANY: usize = 400;
    let Started {
        mc: _mc,
        proxy,
        listen,
        idle_kib,
        ..
    } = start();

    let keys: Vec<String> = (0..MANY).map(|i| format!("big{}", i % KEYS)).collect();
    let want: usize = keys
        .iter()
        .map(|k| format!("VALUE {k} 0 {VALUE}\r\n\r\n").len() + VALUE)
        .sum::<usize>()
        + "END\r\n".len();
    // Read as a client does, at its own pace (Client's reads rescan what they hold).
    let mut raw = TcpStream::connect(listen).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    raw.write_all(format!("get {}\r\n", keys.join(" ")).as_bytes())
        .expect("write");
    let mut got = vec![0u8; want];
    raw.read_exact(&mut got).expect("one complete reply");
    let mut at = 0;
    for k in &keys {
        let header = format!("VALUE {k} 0 {VALUE}\r\n");
        assert!(
            got[at..].starts_with(header.as_bytes()),
            "at byte {at}: {k}"
        );
        at += header.len() + VALUE + 2;
    }
    assert_eq!(&got[at..], b"END\r\n");
    let hwm_kib = proxy.status_kib("VmHWM").expect("VmHWM");
    let growth_mib = hwm_kib.saturating_sub(idle_kib) / 1024;
    eprintln!("idle {idle_kib} KiB, VmHWM {hwm_kib} KiB for one get of {MANY} large values");
    assert!(
        growth_mib < GROWTH_BOUND_MIB,
        "the proxy grew by {growth_mib} MiB (VmHWM {hwm_kib} KiB, idle {idle_kib} KiB) for one \
         get of {MANY} values of {VALUE} bytes; budget {BUDGET_MIB} MiB"
    );
    // The connection is in step: nothing follows the reply.
    raw.write_all(b"get nope\r\n").expect("write");
    let mut end = [0u8; 5];
    raw.read_exact(&mut end).expect("reply");
    assert_eq!(&end, b"END\r\n");
}
