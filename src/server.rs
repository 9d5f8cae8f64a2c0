//! The proxy's lifecycle: bind listeners, accept with a connection limit, hand each socket to a
//! connection task, reload routes when told, and shut down gracefully (stop accepting, let
//! connections finish what they read, bounded by the grace period).
//!
//! `run` takes already bound listeners and a shutdown future (mini-redis `server::run`), so
//! tests start the proxy on `127.0.0.1:0` in-process and `serve` wires signals to it.
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;
use tracing::Instrument;

use crate::config::{ClientRuntime, Config, GetErrors, ListenerConfig};
use crate::handler::Exchange;
use crate::metrics::{ListenerMetrics, Metrics, PoolMetrics};
use crate::protocol::TOO_MANY_CONNECTIONS;
use crate::route::RouteTable;
use crate::upstream::{Events, Upstreams};

/// A bound listener and its configuration.
pub struct Listener {
    /// The bound socket.
    pub socket: TcpListener,
    /// Its `[[listener]]` entry.
    pub config: ListenerConfig,
    /// Its name in logs and metrics ([`ListenerConfig::bound_name`]).
    pub name: String,
}

impl Listener {
    /// The bound address (useful with port 0).
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.socket.local_addr()
    }
}

/// Connections the kernel completes and queues per listener before the proxy accepts them:
/// memcached's `-b` default. Linux caps it at `net.core.somaxconn` (4096 since 5.4, 128 before),
/// as it does memcached's. `TcpListener::bind` would use 128, which a burst of reconnecting
/// clients (every uWSGI worker restarting at once) overflows: the SYNs past it are dropped and
/// those clients wait for a retransmit, 1 s and more.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds every `[[listener]]` of a validated configuration (`SO_REUSEADDR`, as memcached and
/// `TcpListener::bind`, so a restart need not wait out `TIME_WAIT`; backlog [`LISTEN_BACKLOG`])
/// and names each ([`ListenerConfig::bound_name`]).
///
/// # Errors
/// The first address that cannot be bound, with the address in the message; two listeners
/// whose names are only known now to be the same (a default name from a port-0 bind equal to
/// another listener's name, which validation could not see).
pub async fn bind(config: &Config) -> io::Result<Vec<Listener>> {
    let mut out: Vec<Listener> = Vec::with_capacity(config.listeners.len());
    for (i, l) in config.listeners.iter().enumerate() {
        let socket = listen(&l.address).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {}: {e}", l.address))
        })?;
        let name = l.bound_name(socket.local_addr()?);
        if let Some(first) = out.iter().position(|o| o.name == name) {
            let message = format!(
                "listener[{i}] ({}) would be named `{name}` like listener[{first}]: give it a `name`",
                l.address
            );
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        out.push(Listener {
            socket,
            config: l.clone(),
            name,
        });
    }
    Ok(out)
}

/// A listening socket on `address` (an `IP:port`, as validated) with [`LISTEN_BACKLOG`].
fn listen(address: &str) -> io::Result<TcpListener> {
    let addr: std::net::SocketAddr = address
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not an IP:port address"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Which listener a client connection came in on.
#[derive(Clone, Debug)]
pub struct ListenerInfo {
    /// The listener's name (metric label).
    pub name: Arc<str>,
    /// The runtime of its clients.
    pub runtime: ClientRuntime,
    /// What a retrieval whose servers all failed answers.
    pub get_errors: GetErrors,
    /// Its metric handles.
    pub metrics: ListenerMetrics,
}

/// The admin HTTP listener and the registry it exposes.
pub struct Admin {
    /// Bound socket for `/metrics`, `/healthz`, `/readyz`.
    pub socket: TcpListener,
    /// The registry the [`Metrics`] were registered into.
    pub registry: prometheus::Registry,
}

/// Everything connection tasks share.
pub struct Shared {
    /// The validated configuration the proxy started with (limits, timeouts, commands).
    pub config: Config,
    /// The current route table; replaced on reload.
    pub routes: watch::Receiver<Arc<RouteTable>>,
    /// Upstream pools, indexed like the route table's pools.
    pub upstreams: Upstreams<Exchange>,
    /// Metric families (also what `stats` reports).
    pub metrics: Metrics,
    /// Per-pool metric handles, indexed like the pools.
    pub pool_metrics: Vec<PoolMetrics>,
    /// Hands out client connection ids (they pick the upstream connection).
    next_client: AtomicU64,
    /// Becomes `true` when shutdown begins.
    pub shutting_down: watch::Receiver<bool>,
    /// The last `VERSION` line an upstream sent (what `stats` reports as `version`).
    version: std::sync::Mutex<Option<String>>,
    /// Rate limit of the per-value "refused" warnings.
    pub refusal_log: crate::telemetry::RateLimiter,
    /// Rate limit of the per-value firewall warnings.
    pub firewall_log: crate::telemetry::RateLimiter,
    /// `max_connections` permits: one per client connection, and one more per binary-protocol
    /// client for its own upstream connection (see `connection::binary`), so the file
    /// descriptors of both stay within what `fd_limit` budgets.
    pub connections: Arc<Semaphore>,
    /// Rate limit of the warnings about clients closed at `max_connections`.
    pub limit_log: crate::telemetry::RateLimiter,
}

impl Shared {
    /// A new client connection id.
    pub fn client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }

    /// Remembers the version an upstream reported (`VERSION 1.6.18` line).
    pub fn set_upstream_version(&self, line: &[u8]) {
        if let Some(v) = line.strip_prefix(b"VERSION ") {
            let v = String::from_utf8_lossy(v).into_owned();
            *self.version.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
        }
    }

    /// The upstream memcached's version if one was seen, else picklebridge's own.
    pub fn upstream_version(&self) -> String {
        let v = self
            .version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        v.unwrap_or_else(|| format!("picklebridge-{}", env!("CARGO_PKG_VERSION")))
    }
}

/// Runs the proxy on `listeners` until `shutdown` completes, then drains connections for at
/// most `config.timeouts.shutdown_grace_ms`. `routes` carries the route table (compiled with
/// the same `metrics`); send a new one to reload (see [`crate::cli::serve`] for SIGHUP).
/// `admin`, when given, serves `/metrics`, `/healthz` and `/readyz` until shutdown. Must run
/// inside a tokio runtime.
pub async fn run(
    listeners: Vec<Listener>,
    config: Config,
    routes: watch::Receiver<Arc<RouteTable>>,
    metrics: Metrics,
    admin: Option<Admin>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let max = config.limits.max_connections;
    let grace = config.timeouts.shutdown_grace();
    let pool_metrics: Vec<PoolMetrics> = config.pools.keys().map(|p| metrics.pool(p)).collect();
    let upstreams = Upstreams::start(&config, |pool, server| -> Events {
        Arc::new(metrics.pool(pool).server(server))
    });
    let shared = Arc::new(Shared {
        upstreams,
        config,
        routes,
        metrics,
        pool_metrics,
        next_client: AtomicU64::new(1),
        shutting_down: stop_rx,
        version: std::sync::Mutex::new(None),
        refusal_log: crate::telemetry::RateLimiter::default(),
        firewall_log: crate::telemetry::RateLimiter::default(),
        connections: Arc::new(Semaphore::new(max)),
        limit_log: crate::telemetry::RateLimiter::default(),
    });
    // The admin listener serves until the drain below is over, so that a final scrape sees
    // the last counts; meanwhile `/readyz` answers 503 (shutting down).
    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = admin.map(|admin| {
        let ready_shared = shared.clone();
        tokio::spawn(crate::metrics::serve_admin(
            admin.socket,
            admin.registry,
            move || {
                if *ready_shared.shutting_down.borrow() {
                    Err("shutting down")
                } else if ready_shared.upstreams.ready() {
                    Ok(())
                } else {
                    Err("a pool has no reachable server")
                }
            },
            async move {
                let _ = admin_stopped.await;
            },
        ))
    });
    let spare = Arc::new(Spare::new());
    for l in &listeners {
        tracing::info!(
            listener = %l.name,
            address = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            client = l.config.client.as_str(),
            "listening"
        );
        // Security default: the proxy serves unauthenticated cache access and pickles, so a
        // listener reachable from other hosts is worth a loud line at start-up.
        if let Ok(addr) = l.local_addr() {
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    listener = %l.name,
                    address = %addr,
                    "listener is not on a loopback address: any host that reaches it can read and write the cache"
                );
            }
        }
    }
    let accept_loops: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(accept_loop(l, shared.clone(), spare.clone())))
        .collect();
    shutdown.await;
    tracing::info!("shutting down: no longer accepting, draining connections");
    for task in &accept_loops {
        task.abort();
    }
    let _ = stop_tx.send(true);
    // Every connection holds one permit: all permits back means all connections are done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if timeout(grace, shared.connections.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "grace period over, closing remaining connections"
        );
    }
    drop(admin_stop);
    if let Some(task) = admin_task {
        let _ = timeout(Duration::from_secs(1), task).await;
    }
}

/// Accepts connections on one listener until aborted.
async fn accept_loop(listener: Listener, shared: Arc<Shared>, spare: Arc<Spare>) {
    let info = ListenerInfo {
        metrics: shared
            .metrics
            .listener(&listener.name, listener.config.client),
        name: listener.name.as_str().into(),
        runtime: listener.config.client,
        get_errors: listener.config.get_errors,
    };
    let first_backoff = Duration::from_millis(5);
    let mut backoff = first_backoff;
    // One line per 10 s with the count of those suppressed: a queue of clients refused one by one
    // must not flood the log.
    let log = crate::telemetry::RateLimiter::new(Duration::from_secs(10), 1);
    loop {
        let (mut socket, peer) = match listener.socket.accept().await {
            Ok(accepted) => {
                backoff = first_backoff;
                accepted
            }
            Err(e) if out_of_descriptors(&e) => {
                // The waiting clients would get no reply until a descriptor frees: take them off
                // the queue one by one with the spare descriptor and refuse them, as at the
                // connection limit.
                let refused = spare.refuse_one(&listener.socket).await;
                if refused {
                    info.metrics.rejected();
                }
                if let Some(suppressed) = log.check() {
                    tracing::warn!(
                        error = %e,
                        suppressed,
                        refused,
                        "accept failed, out of file descriptors: refusing waiting clients with ERROR Too many open connections (raise the open-file limit or lower max_connections)"
                    );
                }
                if !refused {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                }
                continue;
            }
            Err(e) => {
                // Wait a little instead of spinning (mini-redis `accept`).
                if let Some(suppressed) = log.check() {
                    tracing::warn!(error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            info.metrics.rejected();
            tokio::spawn(async move {
                let _ = socket.write_all(TOO_MANY_CONNECTIONS).await;
            });
            continue;
        };
        let _ = socket.set_nodelay(true);
        let shared = shared.clone();
        let info = info.clone();
        tokio::spawn(async move {
            let open = info.metrics.accepted();
            serve_socket(socket, peer, &info, &shared).await;
            drop(open);
            drop(permit);
        });
    }
}

/// Longest pause between two failed accepts.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether an accept error means the process (`EMFILE`) or the system (`ENFILE`) is out of file
/// descriptors (Linux, BSD and macOS numbers).
fn out_of_descriptors(e: &io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(e.raw_os_error(), Some(ENFILE | EMFILE))
}

/// A descriptor held in reserve (`/dev/null` opened for reading) so that, out of descriptors,
/// an accept loop can free it, take one waiting client off the queue, send it
/// `ERROR Too many open connections`, close it and take the spare again: each queued client gets
/// an answer rather than a hang. Shared by the listeners; one refusal at a time.
struct Spare(std::sync::Mutex<Option<std::fs::File>>);

impl Spare {
    fn new() -> Spare {
        Spare(std::sync::Mutex::new(std::fs::File::open("/dev/null").ok()))
    }

    /// Refuses one client waiting on `listener` using the spare descriptor; `false` when there
    /// was no spare (another loop holds it, or it could not be taken again since) or no client.
    async fn refuse_one(&self, listener: &TcpListener) -> bool {
        let spare = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        let refused = match spare {
            Some(file) => {
                drop(file);
                // Only a client already queued: Linux fails accept with EMFILE before it looks
                // at the queue, so the queue may be empty, and a client arriving later, once
                // descriptors are back, must be served. Another thread may also have taken the
                // freed descriptor: EMFILE again, tried next time.
                let queued = tokio::select! {
                    biased;
                    accepted = listener.accept() => Some(accepted),
                    () = std::future::ready(()) => None,
                };
                match queued {
                    Some(Ok((socket, _))) => {
                        // 33 bytes into an empty send buffer: a plain non-blocking write
                        // completes; the socket closes when dropped.
                        if let Ok(socket) = socket.into_std() {
                            let _ = std::io::Write::write(&mut &socket, TOO_MANY_CONNECTIONS);
                        }
                        true
                    }
                    _ => false,
                }
            }
            None => false,
        };
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = std::fs::File::open("/dev/null").ok();
        }
        refused
    }
}

async fn serve_socket(
    socket: TcpStream,
    peer: std::net::SocketAddr,
    info: &ListenerInfo,
    shared: &Arc<Shared>,
) {
    let span = tracing::debug_span!("conn", peer = %peer, listener = %info.name);
    if let Err(e) = crate::connection::serve(socket, info, shared)
        .instrument(span)
        .await
    {
        tracing::debug!(peer = %peer, error = %e, "connection ended with error");
    }
}
