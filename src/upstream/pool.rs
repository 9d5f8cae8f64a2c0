//! Servers and pools: each [`Server`] runs `connections` connection tasks; a client connection
//! always uses the same one (chosen by its id) so that its requests to one server stay in order
//! (a pipelined `set k` then `get k` must not race over two sockets). A [`Pool`] picks the server
//! for a key with python-memcached's distribution ([`crate::route::server_index`]).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};

use super::conn::{self, ConnSettings};
use super::connect::{connect, Stream};
use super::{
    job_channel, Events, Exchange, JobSender, NoEvents, Pending, Transport, UpstreamError,
};
use crate::config::Config;

/// A byte stream to a server, plain TCP or TLS ([`Server::open_stream`]).
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// Requests queued per connection before senders wait (back pressure towards clients).
const QUEUE_DEPTH: usize = 1024;
/// Parts of a streamed reply read ahead of the client ([`Server::stream_alone`]).
const STREAM_DEPTH: usize = 4;
/// Connections of their own ([`Server::send_alone`], [`Server::stream_alone`]) open at once to
/// one server: dumps pipelined by many clients wait their turn rather than open as many
/// connections (memcached runs one item listing at a time anyway).
pub(crate) const ALONE_AT_ONCE: usize = 4;

/// The parts of a streamed reply ([`Server::stream_alone`]).
pub type StreamReceiver = mpsc::Receiver<Result<Bytes, UpstreamError>>;

/// Timeouts every upstream request obeys.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamTimeouts {
    /// TCP connect timeout.
    pub connect: Duration,
    /// Request sent (queued) to reply complete.
    pub request: Duration,
}

/// One memcached server and its connection tasks.
pub struct Server<E: Exchange> {
    /// The pool's name, for logs.
    pool: String,
    addr: String,
    conns: Vec<JobSender<E>>,
    timeouts: UpstreamTimeouts,
    transport: Transport,
    up: Vec<Arc<AtomicBool>>,
    /// Permits for connections of their own.
    alone: Arc<Semaphore>,
}

impl<E: Exchange> Server<E> {
    /// Starts `connections` connection tasks for `addr` (they connect at once and reconnect in
    /// the background), over plain TCP or TLS as `transport` says.
    /// Must be called inside a tokio runtime.
    pub fn start(
        pool: &str,
        addr: &str,
        connections: usize,
        timeouts: UpstreamTimeouts,
        transport: Transport,
        events: Events,
    ) -> Self {
        let mut up = Vec::new();
        let conns = (0..connections.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
                let settings = ConnSettings {
                    pool: pool.to_string(),
                    addr: addr.to_string(),
                    connect_timeout: timeouts.connect,
                    transport: transport.clone(),
                };
                let flag = Arc::new(AtomicBool::new(false));
                up.push(flag.clone());
                tokio::spawn(conn::run(settings, rx, events.clone(), flag));
                tx
            })
            .collect();
        Server {
            pool: pool.to_string(),
            addr: addr.to_string(),
            conns,
            timeouts,
            transport,
            up,
            alone: Arc::new(Semaphore::new(ALONE_AT_ONCE)),
        }
    }

    /// Whether at least one of its connections is established now.
    pub fn is_up(&self) -> bool {
        self.up.iter().any(|u| u.load(Ordering::Relaxed))
    }

    /// The server's `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Opens a connection of its own to the server, over the pool's transport (TLS when the
    /// pool has `[pool.NAME.tls]`) within the connect timeout, for a caller that speaks to the
    /// server directly (the binary-protocol splice). It is none of the server's `connections`
    /// and is not counted in their metrics.
    pub async fn open_stream(&self) -> Result<Box<dyn Duplex>, String> {
        match connect(&self.addr, &self.transport, self.timeouts.connect).await {
            Ok(Stream::Plain(tcp)) => Ok(Box::new(tcp)),
            Ok(Stream::Tls(tls)) => Ok(tls),
            Err((_, message)) => Err(message),
        }
    }

    /// Sends `bytes` (one composed request) on a connection of its own, opened for it over the
    /// pool's transport and closed after the reply, with anything the server sent past it: for
    /// a reply whose end cannot be found for certain (a key dump, where a stored key may hold
    /// `END`), which must not share a connection with other requests. Like
    /// [`Server::open_stream`] it is none of the server's `connections`; the reply is awaited
    /// for the request timeout after the connect.
    pub fn send_alone(&self, bytes: Bytes, exchange: E) -> Pending<E::Reply> {
        let settings = self.settings();
        let request = self.timeouts.request;
        let deadline = Instant::now() + self.timeouts.connect + request;
        let (job, pending) = job_channel(bytes, None, exchange, deadline);
        let alone = self.alone.clone();
        tokio::spawn(async move {
            let reply = match take_turn(alone, deadline).await {
                Ok(_permit) => conn::one_off(&settings, job.bytes, job.exchange, request).await,
                Err(e) => Err(e),
            };
            // The client may have gone away.
            let _ = job.reply.send(reply);
        });
        pending
    }

    /// Sends `bytes` (one composed request) on a connection of its own, like
    /// [`Server::send_alone`], for a reply that may be too long to hold (`lru_crawler
    /// metadump` lists every item) or never ends (`watch`, with `endless`): its parts arrive on
    /// the returned channel as they come, framed by `cut` (see `conn::stream_once`); a
    /// failure is the last item, the channel's end is the reply's. While the receiver does not
    /// take them, the server is not read (back pressure reaches it over TCP); dropping the
    /// receiver closes the connection. An endless stream takes none of the
    /// `ALONE_AT_ONCE` turns (it would hold one for good; memcached limits its watchers).
    pub fn stream_alone<F>(&self, bytes: Bytes, cut: F, endless: bool) -> StreamReceiver
    where
        F: Fn(&[u8], bool) -> Result<(usize, bool), ()> + Send + 'static,
    {
        let settings = self.settings();
        let request = self.timeouts.request;
        let (tx, rx) = mpsc::channel(STREAM_DEPTH);
        let deadline = Instant::now() + self.timeouts.connect + request;
        let alone = self.alone.clone();
        tokio::spawn(async move {
            let permit = match endless {
                true => None,
                false => match take_turn(alone, deadline).await {
                    Ok(permit) => Some(permit),
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                },
            };
            let result = conn::stream_once(&settings, bytes, cut, request, endless, &tx).await;
            drop(permit);
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    /// How a connection to this server is opened.
    fn settings(&self) -> ConnSettings {
        ConnSettings {
            pool: self.pool.clone(),
            addr: self.addr.clone(),
            connect_timeout: self.timeouts.connect,
            transport: self.transport.clone(),
        }
    }

    /// Queues `bytes` (one composed request) on the connection of client `client_id`. Waits
    /// only while that connection's queue is full, and never past the request deadline.
    pub async fn send(&self, client_id: u64, bytes: Bytes, exchange: E) -> Pending<E::Reply> {
        self.send_parts(client_id, bytes, None, exchange).await
    }

    /// [`Server::send`] of a request whose data block `body` comes apart from its line
    /// (`bytes`): written after it, then CRLF, without being copied into it first.
    pub async fn send_parts(
        &self,
        client_id: u64,
        bytes: Bytes,
        body: Option<Bytes>,
        exchange: E,
    ) -> Pending<E::Reply> {
        let deadline = Instant::now() + self.timeouts.request;
        let (job, pending) = job_channel(bytes, body, exchange, deadline);
        let tx = &self.conns[(client_id % self.conns.len() as u64) as usize];
        match timeout_at(deadline, tx.send(job)).await {
            Ok(Ok(())) => pending,
            Ok(Err(_)) => Pending::failed(UpstreamError::Shutdown),
            Err(_) => Pending::failed(UpstreamError::Timeout),
        }
    }
}

/// Waits until `deadline` for one of the server's [`ALONE_AT_ONCE`] turns.
async fn take_turn(
    alone: Arc<Semaphore>,
    deadline: Instant,
) -> Result<OwnedSemaphorePermit, UpstreamError> {
    match timeout_at(deadline, alone.acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) => Err(UpstreamError::Shutdown),
        Err(_) => Err(UpstreamError::Timeout),
    }
}

/// A named set of servers with a key distribution.
pub struct Pool<E: Exchange> {
    name: String,
    servers: Vec<Arc<Server<E>>>,
}

impl<E: Exchange> Pool<E> {
    /// A pool of already started servers.
    pub fn new(name: &str, servers: Vec<Arc<Server<E>>>) -> Self {
        Pool {
            name: name.to_string(),
            servers,
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Index of the server holding `key`.
    pub fn server_index(&self, key: &[u8]) -> usize {
        crate::route::server_index(key, self.servers.len())
    }

    /// The server holding `key`.
    pub fn server_for(&self, key: &[u8]) -> &Arc<Server<E>> {
        &self.servers[self.server_index(key)]
    }

    /// Every server, in configuration order.
    pub fn servers(&self) -> &[Arc<Server<E>>] {
        &self.servers
    }
}

/// All pools, indexed like [`crate::route::RouteTable::pools`] (sorted by name).
pub struct Upstreams<E: Exchange> {
    pools: Vec<Pool<E>>,
}

impl<E: Exchange> Upstreams<E> {
    /// Starts every server of every pool of a validated configuration. `events` is called with
    /// `(pool, server)` to get each server's event hooks. Must be called inside a tokio runtime.
    pub fn start(config: &Config, events: impl Fn(&str, &str) -> Events) -> Self {
        let timeouts = UpstreamTimeouts {
            connect: config.timeouts.connect(),
            request: config.timeouts.request(),
        };
        let pools = config
            .pools
            .iter()
            .map(|(name, pc)| {
                let servers = pc
                    .servers
                    .iter()
                    .map(|s| {
                        let transport = match &pc.tls {
                            None => Transport::Plain,
                            Some(tls) => Transport::Tls {
                                material: tls.material.clone(),
                                name: tls.server_name_for(s),
                            },
                        };
                        let events = events(name, s);
                        Arc::new(Server::start(
                            name,
                            s,
                            pc.connections,
                            timeouts,
                            transport,
                            events,
                        ))
                    })
                    .collect();
                Pool::new(name, servers)
            })
            .collect();
        Upstreams { pools }
    }

    /// Like [`Upstreams::start`] without event hooks.
    pub fn start_quiet(config: &Config) -> Self {
        Self::start(config, |_, _| Arc::new(NoEvents))
    }

    /// The pool at `index` ([`crate::route::PoolId`]). Panics on an index not from the table
    /// compiled from the same configuration.
    pub fn pool(&self, index: usize) -> &Pool<E> {
        &self.pools[index]
    }

    /// Every pool.
    pub fn pools(&self) -> &[Pool<E>] {
        &self.pools
    }

    /// Readiness: every pool has at least one connected server.
    pub fn ready(&self) -> bool {
        self.pools
            .iter()
            .all(|p| p.servers.iter().any(|s| s.is_up()))
    }
}
