//! Upstream memcached servers: persistent pipelined connections (`conn`), servers and pools
//! ([`pool`]). Callers hand a [`Server`] composed request bytes plus an [`Exchange`] that knows
//! how the reply is framed, and get a oneshot receiver that always resolves: with the reply, or
//! with an [`UpstreamError`] within the connect + request timeouts.
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

mod conn;
mod connect;
pub mod pool;

pub use connect::Transport;

pub use pool::{Duplex, Pool, Server, StreamReceiver, Upstreams};

/// One request/reply exchange: how to frame the reply to the request that was sent.
///
/// The proxy's implementation wraps a protocol `Request` and calls `parse_response`; tests
/// implement it for simple one-line commands.
pub trait Exchange: Send + 'static {
    /// The parsed reply.
    type Reply: Send + 'static;
    /// Takes one complete reply off the front of `buf` (advancing it), `Ok(None)` when more
    /// bytes are needed.
    ///
    /// # Errors
    /// `Err(())` when the bytes cannot be this request's reply: the connection is dropped.
    #[allow(clippy::result_unit_err)]
    fn parse_reply(&self, buf: &mut BytesMut) -> Result<Option<Self::Reply>, ()>;
}

/// Why an upstream request failed. Every variant maps to one `SERVER_ERROR` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connect refused or failed.
    #[error("connect failed")]
    Connect,
    /// TCP connect and TLS handshake did not finish within the connect timeout.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The TLS handshake failed (certificate not trusted, wrong name, client certificate
    /// refused, or TLS not loaded).
    #[error("TLS handshake failed")]
    Tls,
    /// The server is backing off after failed connects.
    #[error("server unavailable")]
    Unavailable,
    /// No complete reply within the request timeout; the connection was dropped.
    #[error("request timed out")]
    Timeout,
    /// The server closed the connection.
    #[error("connection closed")]
    Closed,
    /// A read or write failed.
    #[error("i/o error")]
    Io,
    /// The server sent bytes that are not a reply to the request in flight.
    #[error("unexpected reply")]
    Protocol,
    /// The proxy is shutting down or its queue to the server is gone.
    #[error("proxy shutting down")]
    Shutdown,
}

impl UpstreamError {
    /// The line sent to the client, in the shape memcached clients expect.
    pub fn reply_line(self) -> &'static [u8] {
        match self {
            UpstreamError::Connect
            | UpstreamError::ConnectTimeout
            | UpstreamError::Tls
            | UpstreamError::Unavailable => b"SERVER_ERROR upstream unavailable\r\n",
            UpstreamError::Timeout => b"SERVER_ERROR upstream timeout\r\n",
            UpstreamError::Closed | UpstreamError::Io | UpstreamError::Protocol => {
                b"SERVER_ERROR upstream connection error\r\n"
            }
            UpstreamError::Shutdown => b"SERVER_ERROR proxy shutting down\r\n",
        }
    }

    /// Short stable name for logs and metric labels.
    pub fn kind(self) -> &'static str {
        match self {
            UpstreamError::Connect => "connect",
            UpstreamError::ConnectTimeout => "connect_timeout",
            UpstreamError::Tls => "tls",
            UpstreamError::Unavailable => "unavailable",
            UpstreamError::Timeout => "timeout",
            UpstreamError::Closed => "closed",
            UpstreamError::Io => "io",
            UpstreamError::Protocol => "protocol",
            UpstreamError::Shutdown => "shutdown",
        }
    }
}

/// Why a connection attempt failed: the `reason` label of
/// `picklebridge_upstream_connect_failures_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    /// TCP connect refused or failed (also DNS resolution).
    Connect,
    /// TCP connect plus TLS handshake took longer than the connect timeout.
    Timeout,
    /// The TLS handshake failed.
    Tls,
}

impl ConnectFailure {
    /// Every reason, for pre-registering the series.
    pub const ALL: &'static [ConnectFailure] = &[
        ConnectFailure::Connect,
        ConnectFailure::Timeout,
        ConnectFailure::Tls,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Connect => "connect",
            ConnectFailure::Timeout => "timeout",
            ConnectFailure::Tls => "tls",
        }
    }
}

impl From<ConnectFailure> for UpstreamError {
    fn from(f: ConnectFailure) -> UpstreamError {
        match f {
            ConnectFailure::Connect => UpstreamError::Connect,
            ConnectFailure::Timeout => UpstreamError::ConnectTimeout,
            ConnectFailure::Tls => UpstreamError::Tls,
        }
    }
}

/// What a pending upstream request resolves to.
pub type UpstreamResult<R> = Result<R, UpstreamError>;

/// A request queued for a connection task.
pub(crate) struct Job<E: Exchange> {
    pub bytes: Bytes,
    /// A data block written after `bytes`, then CRLF (not copied into `bytes`; see
    /// [`crate::protocol::compose_request_parts`]).
    pub body: Option<Bytes>,
    pub exchange: E,
    pub deadline: Instant,
    pub reply: oneshot::Sender<UpstreamResult<E::Reply>>,
}

impl<E: Exchange> Job<E> {
    fn fail(self, e: UpstreamError) {
        let _ = self.reply.send(Err(e));
    }
}

/// Hooks for upstream connection events (metrics). Called from connection tasks.
pub trait ServerEvents: Send + Sync + 'static {
    /// A connection was established (after failed connects: once it proved itself, by a reply
    /// or a second alive); `reconnect` when the same connection (one of a server's
    /// `connections`) was established before.
    fn connected(&self, _reconnect: bool) {}
    /// A connection [`ServerEvents::connected`] reported ended.
    fn disconnected(&self) {}
    /// A connect attempt (TCP connect, then the TLS handshake if any) failed or timed out.
    fn connect_failed(&self, _reason: ConnectFailure) {}
    /// A request timed out (the connection was dropped).
    fn timed_out(&self) {}
    /// The connection failed (closed, i/o or protocol error).
    fn failed(&self) {}
    /// A connection that ended before answering anything is backed off like a failed connect
    /// (after [`ServerEvents::failed`]): the server is not usable.
    fn backed_off(&self) {}
}

/// [`ServerEvents`] that ignores everything.
#[derive(Debug, Default)]
pub struct NoEvents;
impl ServerEvents for NoEvents {}

/// A resolved-later reply. Always resolves (the connection task answers every job).
pub struct Pending<R> {
    rx: oneshot::Receiver<UpstreamResult<R>>,
}

impl<R> Pending<R> {
    /// A pending reply that is already failed.
    pub fn failed(e: UpstreamError) -> Pending<R> {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(e));
        Pending { rx }
    }

    /// Waits for the reply. Cancel-safe only in the sense that dropping it drops the reply.
    pub async fn wait(&mut self) -> UpstreamResult<R> {
        (&mut self.rx).await.unwrap_or(Err(UpstreamError::Shutdown))
    }

    /// The reply if it has arrived, without waiting.
    pub fn try_take(&mut self) -> Option<UpstreamResult<R>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(UpstreamError::Shutdown)),
        }
    }
}

pub(crate) fn job_channel<E: Exchange>(
    bytes: Bytes,
    body: Option<Bytes>,
    exchange: E,
    deadline: Instant,
) -> (Job<E>, Pending<E::Reply>) {
    let (tx, rx) = oneshot::channel();
    (
        Job {
            bytes,
            body,
            exchange,
            deadline,
            reply: tx,
        },
        Pending { rx },
    )
}

pub(crate) type JobSender<E> = mpsc::Sender<Job<E>>;
/// Shared event hooks of one server.
pub type Events = Arc<dyn ServerEvents>;

#[cfg(test)]
mod tests;
