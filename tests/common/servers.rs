//! Real memcached and the in-process proxy on free loopback ports, both stopped on drop.
//!
//! - [`Memcached::start`]: `/usr/bin/memcached -l 127.0.0.1 -p <free port> -U 0`, ready when it
//!   answers `version`; [`Memcached::kill`] / [`Memcached::restart`] for fault tests;
//!   [`Memcached::start_tls`] for a TLS-only memcached (`-Z`).
//! - [`Proxy::start`]: `picklebridge::server::run` on its own tokio runtime thread, every
//!   listener bound on the address of the config (use `127.0.0.1:0`); [`Proxy::addr`] gives
//!   the bound address of listener `i`; drop (or [`Proxy::shutdown`]) stops it gracefully.
//! - [`Client`]: a blocking memcache text-protocol client for byte-exact assertions;
//!   [`Client::wait_until_read`] proves the server read what was sent.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use picklebridge::config::{ClientRuntime, Config};
use picklebridge::metrics::Metrics;
use picklebridge::route::RouteTable;
use picklebridge::server::Admin;

use super::ports::free_port;
use super::tcp_queues;
use super::wait::wait_until;

/// A memcached process on a free loopback port, killed on drop.
pub struct Memcached {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
    /// TLS only (`-Z`): readiness is the port accepting, a plain `version` gets no answer.
    tls: bool,
}

impl Memcached {
    /// Starts memcached on a free port and waits (bounded) until it answers.
    pub fn start() -> Memcached {
        Memcached::start_with(&[])
    }

    /// Like [`Memcached::start`] with extra command-line arguments (e.g. `["-I", "2m"]`).
    pub fn start_with(extra: &[&str]) -> Memcached {
        let mut m = Memcached {
            child: None,
            port: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls: false,
        };
        m.spawn();
        m
    }

    /// A memcached that speaks only TLS: `-Z -o <options>` (e.g.
    /// `ssl_chain_cert=server.pem,ssl_key=server.key`).
    pub fn start_tls(options: &str) -> Memcached {
        let mut m = Memcached {
            child: None,
            port: free_port(),
            extra: vec!["-Z".into(), "-o".into(), options.into()],
            tls: true,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let child = Command::new("/usr/bin/memcached")
            // `-u root` only matters when running as root (CI containers), where memcached
            // refuses to start without it; otherwise it is ignored.
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "0",
                "-t",
                "1",
            ])
            .args(["-u", "root"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/memcached (apt-get install memcached)");
        self.child = Some(child);
        let addr = self.addr();
        wait_until(Duration::from_secs(10), "memcached to answer", || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("memcached exited at start: {status}");
            }
            let mut c = Client::connect(addr).ok()?;
            if self.tls {
                return Some(());
            }
            c.send(b"version\r\n");
            c.read_line().starts_with(b"VERSION ").then_some(())
        });
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `"127.0.0.1:<port>"`.
    pub fn addr_string(&self) -> String {
        self.addr().to_string()
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (an empty cache).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The proxy running in-process on its own runtime thread.
pub struct Proxy {
    addrs: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    registry: prometheus::Registry,
    metrics: Metrics,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    routes: tokio::sync::watch::Sender<Arc<RouteTable>>,
}

impl Proxy {
    /// Starts the proxy for a validated `config` (listen on `127.0.0.1:0`), with a fresh
    /// metrics registry ([`Proxy::registry`]). With `config.admin` set (use `127.0.0.1:0`), the
    /// admin HTTP listener runs too ([`Proxy::admin_addr`]).
    pub fn start(config: Config) -> Proxy {
        let problems = config.validate();
        assert!(problems.is_empty(), "invalid test config: {problems:?}");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry).expect("register metrics");
        let table = Arc::new(RouteTable::compile(&config, &metrics));
        let (routes_tx, routes_rx) = tokio::sync::watch::channel(table);
        let (run_metrics, run_registry) = (metrics.clone(), registry.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listeners = picklebridge::server::bind(&config)
                    .await
                    .expect("bind proxy");
                let addrs: Vec<_> = listeners
                    .iter()
                    .map(|l| l.local_addr().expect("addr"))
                    .collect();
                let admin = match &config.admin {
                    Some(a) => Some(Admin {
                        socket: tokio::net::TcpListener::bind(a.listen)
                            .await
                            .expect("bind admin"),
                        registry: run_registry,
                    }),
                    None => None,
                };
                let admin_addr = admin
                    .as_ref()
                    .map(|a| a.socket.local_addr().expect("admin addr"));
                addr_tx.send((addrs, admin_addr)).expect("send addrs");
                let stop = async {
                    let _ = stop_rx.await;
                };
                picklebridge::server::run(listeners, config, routes_rx, run_metrics, admin, stop)
                    .await;
            });
        });
        let (addrs, admin) = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("proxy did not bind within 10 s");
        Proxy {
            addrs,
            admin,
            registry,
            metrics,
            stop: Some(stop_tx),
            thread: Some(thread),
            routes: routes_tx,
        }
    }

    /// One listener per runtime in front of `upstreams` (default pool, default route), with a
    /// 5 s request timeout.
    pub fn quick(clients: &[ClientRuntime], upstreams: &[String]) -> Proxy {
        let listeners: Vec<_> = clients
            .iter()
            .map(|c| ("127.0.0.1:0".to_string(), *c))
            .collect();
        let mut config = Config::quick(&listeners, upstreams);
        // Tests share 2 busy cores: a 1 s request timeout would turn a slow scheduler into a
        // SERVER_ERROR. Fault tests that want a short timeout build their own config.
        config.timeouts.request_ms = 5000;
        Proxy::start(config)
    }

    /// The bound address of listener `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.addrs[i]
    }

    /// The admin listener's address, when `config.admin` was set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The registry the proxy's metrics live in.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// The registry encoded in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encode metrics");
        String::from_utf8(out).expect("utf-8 metrics")
    }

    /// Swaps in the routes of `config` (what SIGHUP does after validating the file).
    pub fn reload(&self, config: &Config) {
        let _ = self
            .routes
            .send(Arc::new(RouteTable::compile(config, &self.metrics)));
    }

    /// Stops the proxy and waits (bounded by its grace period) for `run` to return.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let start = Instant::now();
            while !t.is_finished() {
                assert!(
                    start.elapsed() < Duration::from_secs(15),
                    "proxy did not stop within 15 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = t.join();
        }
    }

    /// Whether `run` has returned.
    pub fn is_stopped(&self) -> bool {
        self.thread.as_ref().map_or(true, |t| t.is_finished())
    }

    /// Asks the proxy to stop without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Asks the proxy to stop and returns once the shutdown signal is set: `/readyz` answers
    /// `503 not ready: shutting down`, read from the flag every client connection checks when
    /// it reads, so whatever a client sends from here on comes after the signal. Needs
    /// `config.admin` ([`with_admin`]).
    pub fn signal_shutdown(&mut self) {
        let admin = self.admin.expect("signal_shutdown needs config.admin");
        self.begin_shutdown();
        wait_until(
            Duration::from_secs(10),
            "/readyz answering 503 shutting down",
            || {
                let r = super::http::http_get(admin, "/readyz").ok()?;
                (r.status == 503 && r.body.contains("shutting down")).then_some(())
            },
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shutdown();
        } else if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A blocking memcache client with a read timeout, for byte-exact tests.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The server closed (EOF or reset): set by `fill`, never by a read timeout.
    closed: bool,
}

impl Client {
    /// Connects with 5 s read/write timeouts.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buf: Vec::new(),
            closed: false,
        })
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// Reads what is there into the buffer; `false` when nothing came (closed, or the read
    /// timed out: `closed` tells them apart).
    fn fill(&mut self) -> bool {
        use std::io::ErrorKind;
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) => {
                self.closed = !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
                false
            }
        }
    }

    /// Reads one line including its `\r\n` (empty when the connection closed or timed out).
    pub fn read_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return self.buf.drain(..i + 2).collect();
            }
            if !self.fill() {
                return std::mem::take(&mut self.buf);
            }
        }
    }

    /// Reads exactly `n` bytes (fewer if the connection closed or timed out).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if !self.fill() {
                break;
            }
        }
        let n = n.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    /// Reads until the bytes read end with `terminator` (or the connection closes / times out).
    pub fn read_until(&mut self, terminator: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = self
                .buf
                .windows(terminator.len())
                .position(|w| w == terminator)
            {
                return self.buf.drain(..i + terminator.len()).collect();
            }
            if !self.fill() {
                return std::mem::take(&mut self.buf);
            }
        }
    }

    /// Sends `request` and reads a reply ending with `terminator`.
    pub fn call(&mut self, request: &[u8], terminator: &[u8]) -> Vec<u8> {
        self.send(request);
        self.read_until(terminator)
    }

    /// Whether the server closed the connection: EOF or a reset within the read timeout, with
    /// nothing unread before it. A read that times out is not a close.
    pub fn is_closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill() && self.closed
    }

    /// Waits until the server has read every byte sent on this connection (not merely been
    /// sent it: its process took them from its socket), for at most 10 s. What a test needs
    /// before a signal that must find a request partly read.
    ///
    /// # Panics
    ///
    /// After 10 s, naming the queues last seen ([`tcp_queues::wait_read_by_peer`]).
    pub fn wait_until_read(&self) {
        if let Err(e) = self.try_wait_until_read(Duration::from_secs(10)) {
            panic!("{e}");
        }
    }

    /// [`Client::wait_until_read`] for at most `timeout`.
    ///
    /// # Errors
    ///
    /// After `timeout`, the queues last seen.
    pub fn try_wait_until_read(&self, timeout: Duration) -> Result<(), String> {
        let local = self.stream.local_addr().expect("local_addr");
        let peer = self.stream.peer_addr().expect("peer_addr");
        tcp_queues::wait_read_by_peer(local, peer, timeout)
    }

    /// Sets the read timeout.
    pub fn set_read_timeout(&self, t: Duration) {
        self.stream
            .set_read_timeout(Some(t))
            .expect("set_read_timeout");
    }
}

/// `config` with the admin listener on a free loopback port ([`Proxy::admin_addr`]).
pub fn with_admin(mut config: Config) -> Config {
    config.admin = Some(picklebridge::metrics::AdminConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    });
    config
}

/// Shows bytes with escapes, for assertion messages.
pub fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// The TOML most proxy tests start from: a `py2` and a `py3` listener (in that order, so
/// `Proxy::addr(0)` is py2 and `addr(1)` py3) on free loopback ports, and one pool `main` holding
/// `mc`. Tests append their routes and sections.
pub fn two_listener_toml(mc: &Memcached) -> String {
    format!(
        r#"
[[listener]]
address = "127.0.0.1:0"
client = "py2"
name = "py2"

[[listener]]
address = "127.0.0.1:0"
client = "py3"
name = "py3"

[pool.main]
servers = ["{}"]
"#,
        mc.addr_string()
    )
}
