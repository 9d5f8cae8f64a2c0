//! TLS from the proxy to memcached (`[pool.NAME.tls]`), against a real TLS memcached (`-Z`):
//! storage, retrieval, multi-get and cas through it; an untrusted server certificate gives
//! clients the unreachable-server `SERVER_ERROR`, is counted as a `tls` connect failure and
//! leaves other pools serving; client-certificate auth (`ssl_verify_mode=2`) works with the
//! certificate and fails without it; `check-config` rejects a missing or garbage `ca_file`
//! naming the file.
//!
//! Certificates are made per test with the `openssl` CLI (installed by
//! `scripts/setup-debian.sh`) in a temporary directory: a CA, a server certificate for
//! `IP:127.0.0.1`, a client certificate, and a second CA that signed nothing we use.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::binary::ServeBin;
use common::memcache_binary as mb;
use common::servers::{show, with_admin, Client, Memcached, Proxy};
use common::wait::wait_until;
use picklebridge::config::Config;
use picklebridge::upstream::UpstreamError;

/// The throwaway PKI of one test.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn generate() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for ca in ["ca", "other-ca"] {
            pki.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=picklebridge test {ca}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &pki.file(&format!("{ca}.key")),
                "-out",
                &pki.file(&format!("{ca}.pem")),
            ]);
        }
        pki.leaf(
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.leaf("client", "extendedKeyUsage=clientAuth\n");
        pki
    }

    /// A key and a certificate signed by `ca` with the given v3 extensions.
    fn leaf(&self, name: &str, extensions: &str) {
        let ext = self.path(&format!("{name}.ext"));
        std::fs::write(&ext, format!("basicConstraints=CA:FALSE\n{extensions}")).expect("ext");
        let (key, csr) = (
            self.file(&format!("{name}.key")),
            self.file(&format!("{name}.csr")),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN=picklebridge test {name}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &self.file("ca.pem"),
            "-CAkey",
            &self.file("ca.key"),
            "-set_serial",
            "1",
            "-days",
            "2",
            "-extfile",
            &ext.display().to_string(),
            "-out",
            &self.file(&format!("{name}.pem")),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("/usr/bin/openssl")
            .args(args)
            .output()
            .expect("run /usr/bin/openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A TLS-only memcached with the server certificate; with `require_client_cert`, it
    /// demands a client certificate signed by the CA (`ssl_verify_mode=2`).
    fn memcached(&self, require_client_cert: bool) -> Memcached {
        let mut options = format!(
            "ssl_chain_cert={},ssl_key={}",
            self.file("server.pem"),
            self.file("server.key")
        );
        if require_client_cert {
            options += &format!(",ssl_ca_cert={},ssl_verify_mode=2", self.file("ca.pem"));
        }
        Memcached::start_tls(&options)
    }
}

/// A py3 listener, pool `tls` (prefix "") behind `tls_table`, pool `plain` (prefix "plain:").
/// Gets answer failures with the error line (`get_errors = "error"`), which the tests watch.
fn config(tls_mc: &Memcached, plain_mc: &Memcached, tls_table: &str) -> Config {
    config_at(&tls_mc.addr_string(), plain_mc, tls_table)
}

/// [`config`] with pool `tls` at `tls_addr` (a relay in front of the TLS memcached).
fn config_at(tls_addr: &str, plain_mc: &Memcached, tls_table: &str) -> Config {
    let text = format!(
        r#"
[[listener]]
address = "127.0.0.1:0"
client = "py3"
get_errors = "error"

[pool.tls]
servers = ["{tls_addr}"]
[pool.tls.tls]
{tls_table}

[pool.plain]
servers = ["{}"]

[[route]]
prefix = ""
pool = "tls"

[[route]]
prefix = "plain:"
pool = "plain"

[timeouts]
connect_ms = 2000
request_ms = 5000
"#,
        plain_mc.addr_string()
    );
    Config::from_toml_str(&text, "upstream_tls.toml").expect("test config")
}

fn ca_table(pki: &Pki, ca: &str) -> String {
    format!("ca_file = \"{}\"", pki.file(ca))
}

/// `proxy`'s `picklebridge_upstream_connect_failures_total` for pool `tls` and `reason`, `None`
/// while the series is not registered yet (the upstreams start after the listeners are bound).
fn connect_failures(proxy: &Proxy, mc: &Memcached, reason: &str) -> Option<u64> {
    let series = format!(
        r#"picklebridge_upstream_connect_failures_total{{pool="tls",reason="{reason}",server="{}"}} "#,
        mc.addr_string()
    );
    let text = proxy.metrics_text();
    let line = text.lines().find(|l| l.starts_with(&series))?;
    Some(line[series.len()..].parse().expect("counter value"))
}

/// Storage, get, multi-get, gets and cas on `c` (all keys on the TLS pool).
fn exercise(c: &mut Client) {
    assert_eq!(c.call(b"set a 0 0 5\r\nhello\r\n", b"\r\n"), b"STORED\r\n");
    assert_eq!(c.call(b"set b 7 0 3\r\nxyz\r\n", b"\r\n"), b"STORED\r\n");
    assert_eq!(
        c.call(b"get a\r\n", b"END\r\n"),
        b"VALUE a 0 5\r\nhello\r\nEND\r\n"
    );
    assert_eq!(
        c.call(b"get a nope b\r\n", b"END\r\n"),
        b"VALUE a 0 5\r\nhello\r\nVALUE b 7 3\r\nxyz\r\nEND\r\n"
    );
    let gets = c.call(b"gets a\r\n", b"END\r\n");
    let header = String::from_utf8_lossy(&gets)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let unique = header.rsplit(' ').next().expect("cas unique");
    assert!(header.starts_with("VALUE a 0 5 "), "{}", show(&gets));
    let cas = format!("cas a 0 0 5 {unique}\r\nworld\r\n");
    assert_eq!(c.call(cas.as_bytes(), b"\r\n"), b"STORED\r\n");
    assert_eq!(c.call(cas.as_bytes(), b"\r\n"), b"EXISTS\r\n", "stale cas");
    assert_eq!(
        c.call(b"get a\r\n", b"END\r\n"),
        b"VALUE a 0 5\r\nworld\r\nEND\r\n"
    );
}

/// A plain-text `version` to a TLS-only memcached gets no `VERSION` line: the proxy really
/// spoke TLS to it.
fn assert_tls_only(mc: &Memcached) {
    let mut c = Client::connect(mc.addr()).expect("connect to memcached");
    c.set_read_timeout(Duration::from_millis(500));
    c.send(b"version\r\n");
    let line = c.read_line();
    assert!(
        !line.starts_with(b"VERSION"),
        "memcached answered plain text: {}",
        show(&line)
    );
}

const UNAVAILABLE: &[u8] = b"SERVER_ERROR upstream unavailable\r\n";

#[test]
fn set_get_multi_get_and_cas_through_a_tls_memcached() {
    let pki = Pki::generate();
    let (tls_mc, plain_mc) = (pki.memcached(false), Memcached::start());
    assert_tls_only(&tls_mc);
    // Default server name: the IP of "127.0.0.1:<port>", checked against the IP SAN.
    let proxy = Proxy::start(config(&tls_mc, &plain_mc, &ca_table(&pki, "ca.pem")));
    let mut c = Client::connect(proxy.addr(0)).expect("connect to proxy");
    exercise(&mut c);
    assert_eq!(connect_failures(&proxy, &tls_mc, "tls"), Some(0));
    // Pipelined: many requests in one write, replies in order over the TLS connection.
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(
            format!(
                "set p{i} 0 0 {}\r\n{i}\r\nget p{i}\r\n",
                i.to_string().len()
            )
            .as_bytes(),
        );
        want.extend_from_slice(
            format!(
                "STORED\r\nVALUE p{i} 0 {}\r\n{i}\r\nEND\r\n",
                i.to_string().len()
            )
            .as_bytes(),
        );
    }
    c.send(&batch);
    assert_eq!(show(&c.read_exact(want.len())), show(&want));
}

/// A binary-protocol client is spliced to the default pool's server over that pool's transport:
/// TLS here, so memcached answers it (plain bytes to its TLS port would get nothing back).
#[test]
fn binary_protocol_clients_reach_a_tls_pool_over_tls() {
    let pki = Pki::generate();
    let (tls_mc, plain_mc) = (pki.memcached(false), Memcached::start());
    let mut proxy = Proxy::start(with_admin(config(
        &tls_mc,
        &plain_mc,
        &ca_table(&pki, "ca.pem"),
    )));
    let mut text = Client::connect(proxy.addr(0)).expect("connect to proxy");
    assert_eq!(
        text.call(b"set bk 7 0 5\r\nhello\r\n", b"\r\n"),
        b"STORED\r\n"
    );
    // Binary GET of "bk" (magic 0x80, opcode 0x00, key length 2, body length 2, opaque 9).
    let mut get = vec![0x80, 0x00, 0x00, 0x02];
    get.resize(24, 0);
    get[8..12].copy_from_slice(&2u32.to_be_bytes());
    get[12..16].copy_from_slice(&9u32.to_be_bytes());
    get.extend_from_slice(b"bk");
    let mut binary = Client::connect(proxy.addr(0)).expect("connect to proxy");
    binary.set_read_timeout(Duration::from_secs(5));
    binary.send(&get);
    let reply = binary.read_exact(24 + 4 + 5);
    // Response: magic 0x81, opcode 0, extras length 4, status 0, body 9, opaque 9, then the
    // flags (7) and the value.
    assert_eq!(&reply[..2], [0x81, 0x00], "{}", show(&reply));
    assert_eq!(reply[4], 4, "extras length");
    assert_eq!(&reply[6..8], [0, 0], "status");
    assert_eq!(&reply[8..12], 9u32.to_be_bytes(), "body length");
    assert_eq!(&reply[12..16], 9u32.to_be_bytes(), "opaque");
    assert_eq!(&reply[24..], b"\x00\x00\x00\x07hello");
    // At shutdown a request half sent is finished and answered over TLS too (the proxy's
    // half-close of the TLS stream is memcached's end of input), then the client is closed.
    binary.send(&get[..10]);
    binary.wait_until_read();
    proxy.signal_shutdown();
    binary.send(&get[10..]);
    assert_eq!(binary.read_exact(24 + 4 + 5), reply, "the same reply");
    assert!(binary.is_closed(), "then the connection closes");
    proxy.shutdown();
}

/// A TCP relay to `target` that holds every connection it accepts (the proxy's TLS handshake
/// waits) until [`Gate::open`], then copies both ways, passing each side's end of stream on.
/// Its threads are bounded to 60 s.
struct Gate {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Gate {
    fn start(target: std::net::SocketAddr) -> Gate {
        use std::net::{Shutdown, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let open = std::sync::Arc::new(AtomicBool::new(false));
        let flag = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let flag = flag.clone();
                std::thread::spawn(move || {
                    let started = std::time::Instant::now();
                    while !flag.load(Ordering::Relaxed) {
                        if started.elapsed() > Duration::from_secs(60) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let Ok(server) = TcpStream::connect(target) else {
                        return;
                    };
                    let pipe = |mut from: TcpStream, to: TcpStream| {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut &to);
                            let _ = to.shutdown(Shutdown::Write);
                        })
                    };
                    let up = pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                    let down = pipe(server, client);
                    let _ = (up.join(), down.join());
                });
            }
        });
        Gate { addr, open }
    }

    fn open(&self) {
        self.open.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A binary client's requests read before the signal are all passed on and answered, also
/// when the signal comes while the proxy is still connecting to memcached for it (a TLS
/// handshake under way): the pipelined NOOPs get both replies, then the close. (Before, the
/// proxy passed on only the first request of what it had read: the second got no reply.)
#[test]
fn a_binary_clients_requests_read_before_the_signal_are_answered_when_the_connect_was_slow() {
    let pki = Pki::generate();
    let (tls_mc, plain_mc) = (pki.memcached(false), Memcached::start());
    let gate = Gate::start(tls_mc.addr());
    let mut cfg = config_at(&gate.addr.to_string(), &plain_mc, &ca_table(&pki, "ca.pem"));
    cfg.timeouts.connect_ms = 10_000;
    let mut proxy = Proxy::start(with_admin(cfg));
    let mut binary = Client::connect(proxy.addr(0)).expect("connect to proxy");
    let mut both = mb::noop(1);
    both.extend(mb::noop(2));
    binary.send(&both);
    // Read by the proxy, whose connect to memcached waits at the gate.
    binary.wait_until_read();
    proxy.signal_shutdown();
    gate.open();
    for opaque in [1u32, 2] {
        assert_eq!(
            mb::response(&mut binary),
            (mb::NOOP, 0, opaque, vec![]),
            "the NOOP reply {opaque}"
        );
    }
    assert!(binary.is_closed(), "then the connection closes");
    proxy.shutdown();
}

#[test]
fn untrusted_server_certificate_is_a_counted_tls_failure_and_other_pools_serve() {
    let pki = Pki::generate();
    let (tls_mc, plain_mc) = (pki.memcached(false), Memcached::start());
    let proxy = Proxy::start(config(&tls_mc, &plain_mc, &ca_table(&pki, "other-ca.pem")));
    let mut c = Client::connect(proxy.addr(0)).expect("connect to proxy");
    // The same line as for a server that is not there at all.
    assert_eq!(UpstreamError::Connect.reply_line(), UNAVAILABLE);
    for _ in 0..3 {
        let r = c.call(b"get a\r\n", b"\r\n");
        assert_eq!(show(&r), show(UNAVAILABLE));
        let r = c.call(b"set a 0 0 1\r\nx\r\n", b"\r\n");
        assert_eq!(show(&r), show(UNAVAILABLE));
    }
    wait_until(
        Duration::from_secs(10),
        "a tls connect failure counted",
        || (connect_failures(&proxy, &tls_mc, "tls")? >= 1).then_some(()),
    );
    assert_eq!(connect_failures(&proxy, &tls_mc, "connect"), Some(0));
    assert_eq!(
        c.call(b"set plain:k 0 0 2\r\nok\r\n", b"\r\n"),
        b"STORED\r\n"
    );
    assert_eq!(
        c.call(b"get plain:k\r\n", b"END\r\n"),
        b"VALUE plain:k 0 2\r\nok\r\nEND\r\n"
    );
}

#[test]
fn wrong_server_name_is_refused() {
    let pki = Pki::generate();
    let (tls_mc, plain_mc) = (pki.memcached(false), Memcached::start());
    let table = format!(
        "{}\nserver_name = \"memcached.example\"",
        ca_table(&pki, "ca.pem")
    );
    let proxy = Proxy::start(config(&tls_mc, &plain_mc, &table));
    let mut c = Client::connect(proxy.addr(0)).expect("connect to proxy");
    assert_eq!(show(&c.call(b"get a\r\n", b"\r\n")), show(UNAVAILABLE));
    wait_until(
        Duration::from_secs(10),
        "a tls connect failure counted",
        || (connect_failures(&proxy, &tls_mc, "tls")? >= 1).then_some(()),
    );
}

#[test]
fn client_certificate_auth_works_with_the_certificate_and_fails_without() {
    let pki = Pki::generate();
    let (tls_mc, plain_mc) = (pki.memcached(true), Memcached::start());
    let with_cert = format!(
        "{}\ncert_file = \"{}\"\nkey_file = \"{}\"",
        ca_table(&pki, "ca.pem"),
        pki.file("client.pem"),
        pki.file("client.key")
    );
    let proxy = Proxy::start(config(&tls_mc, &plain_mc, &with_cert));
    let mut c = Client::connect(proxy.addr(0)).expect("connect to proxy");
    exercise(&mut c);
    drop(c);
    drop(proxy);

    let proxy = Proxy::start(config(&tls_mc, &plain_mc, &ca_table(&pki, "ca.pem")));
    let mut c = Client::connect(proxy.addr(0)).expect("connect to proxy");
    // memcached refuses the session (with TLS 1.3, right after the client's handshake).
    wait_until(
        Duration::from_secs(10),
        "a tls connect failure counted",
        || (connect_failures(&proxy, &tls_mc, "tls")? >= 1).then_some(()),
    );
    for _ in 0..3 {
        let r = c.call(b"get a\r\n", b"\r\n");
        assert_eq!(show(&r), show(UNAVAILABLE));
    }
    assert_eq!(
        c.call(b"set plain:k 0 0 2\r\nok\r\n", b"\r\n"),
        b"STORED\r\n"
    );
}

/// `picklebridge check-config` on a config whose pool has `ca_file`; returns (exit code, stderr).
fn check_config(dir: &Path, ca_file: &Path) -> (Option<i32>, String) {
    let file = dir.join("picklebridge.toml");
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\nclient = \"py3\"\nget_errors = \"error\"\n[pool.main]\nservers = [\"127.0.0.1:11211\"]\n[pool.main.tls]\nca_file = \"{}\"\n",
        ca_file.display()
    );
    std::fs::write(&file, text).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_picklebridge"))
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("run picklebridge");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_rejects_a_missing_or_garbage_ca_file_naming_it() {
    let pki = Pki::generate();
    let (code, err) = check_config(pki.dir.path(), &pki.path("ca.pem"));
    assert_eq!(code, Some(0), "{err}");
    let missing = pki.path("no-such-ca.pem");
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").expect("write garbage");
    for (file, why) in [(&missing, "cannot read"), (&garbage, "no PEM certificate")] {
        let (code, err) = check_config(pki.dir.path(), file);
        assert_eq!(code, Some(64), "{err}");
        let want = format!(
            "pool.main.tls.ca_file: {}",
            if why == "cannot read" {
                format!("cannot read {}", file.display())
            } else {
                format!("{}: {why}", file.display())
            }
        );
        assert!(err.contains(&want), "missing {want:?} in {err}");
    }
    // The key of a client certificate is checked the same way.
    let table = pki.dir.path().join("cert-no-key.toml");
    std::fs::write(
        &table,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\nclient = \"py3\"\nget_errors = \"error\"\n[pool.main]\nservers = [\"127.0.0.1:11211\"]\n[pool.main.tls]\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            pki.file("ca.pem"),
            pki.file("client.pem"),
            pki.file("client.pem"),
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_picklebridge"))
        .arg("check-config")
        .arg(&table)
        .output()
        .expect("run picklebridge");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    let want = format!(
        "pool.main.tls.key_file: {}: no PEM private key found",
        pki.file("client.pem")
    );
    assert!(err.contains(&want), "missing {want:?} in {err}");
}

#[test]
fn sighup_re_reads_the_tls_files() {
    let pki = Pki::generate();
    let mc = pki.memcached(false);
    // The proxy first trusts the wrong CA; the operator then fixes the file and sends SIGHUP.
    let trust = pki.path("trust.pem");
    std::fs::copy(pki.path("other-ca.pem"), &trust).expect("copy CA");
    let port = common::ports::free_port();
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\nclient = \"py3\"\nget_errors = \"error\"\n[pool.main]\nservers = [\"{}\"]\n[pool.main.tls]\nca_file = \"{}\"\n[timeouts]\nconnect_ms = 2000\nrequest_ms = 5000\n",
        mc.addr_string(),
        trust.display()
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let serve = ServeBin::start(&text, addr);
    let mut c = Client::connect(addr).expect("connect to the proxy");
    assert_eq!(show(&c.call(b"get a\r\n", b"\r\n")), show(UNAVAILABLE));
    std::fs::copy(pki.path("ca.pem"), &trust).expect("copy CA");
    serve.signal("-HUP");
    // The next reconnect (the back-off is at most 1 s) uses the re-read CA.
    wait_until(Duration::from_secs(10), "service after the reload", || {
        (c.call(b"get a\r\n", b"\r\n") == b"END\r\n").then_some(())
    });
    assert_eq!(c.call(b"set a 0 0 2\r\nok\r\n", b"\r\n"), b"STORED\r\n");
    assert_eq!(
        c.call(b"get a\r\n", b"END\r\n"),
        b"VALUE a 0 2\r\nok\r\nEND\r\n"
    );
}

/// A TCP listener that accepts connections and never says a word (a TLS handshake to it
/// hangs), until dropped; its thread is bounded to 60 s.
struct Silent {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Silent {
    fn start() -> Silent {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                if let Ok((socket, _)) = listener.accept() {
                    held.push(socket);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Silent {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_handshake_that_never_finishes_times_out_within_connect_ms() {
    let pki = Pki::generate();
    let silent = Silent::start();
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\nclient = \"py3\"\nget_errors = \"error\"\n[pool.tls]\nservers = [\"{}\"]\n[pool.tls.tls]\nca_file = \"{}\"\n[timeouts]\nconnect_ms = 300\nrequest_ms = 5000\n",
        silent.addr,
        pki.file("ca.pem")
    );
    let proxy = Proxy::start(Config::from_toml_str(&text, "timeout.toml").expect("config"));
    let mut c = Client::connect(proxy.addr(0)).expect("connect to proxy");
    let started = std::time::Instant::now();
    assert_eq!(show(&c.call(b"get a\r\n", b"\r\n")), show(UNAVAILABLE));
    // Within the connect timeout (plus scheduling slack), not the 5 s request timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let series = format!(
        r#"picklebridge_upstream_connect_failures_total{{pool="tls",reason="timeout",server="{}"}} "#,
        silent.addr
    );
    wait_until(
        Duration::from_secs(10),
        "a timeout connect failure counted",
        || {
            let text = proxy.metrics_text();
            let line = text.lines().find(|l| l.starts_with(&series))?;
            (line[series.len()..].parse::<u64>().ok()? >= 1).then_some(())
        },
    );
}
