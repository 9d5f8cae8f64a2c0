//! Opening one upstream connection: TCP connect, then the TLS handshake when the pool has
//! `[pool.NAME.tls]`, both within the connect timeout. Returns the stream as a small enum so
//! the connection task stays generic over the transport without boxing: the plain-TCP path is
//! the same code as before TLS existed.
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::ConnectFailure;
use crate::config::TlsMaterial;

/// How to reach one server.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Plain TCP.
    Plain,
    /// TLS over TCP.
    Tls {
        /// The pool's client configuration (replaced on reload, read at each connect).
        material: TlsMaterial,
        /// The name sent as SNI and verified against the certificate, or why the server
        /// address has none (every connect then fails with [`ConnectFailure::Tls`]).
        name: Result<ServerName<'static>, String>,
    },
}

/// An established upstream connection.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP; boxed because rustls' connection state is large (kilobytes) and the
    /// enum is moved around by value.
    Tls(Box<TlsStream<TcpStream>>),
}

/// A failed connect attempt: the metric reason and a message for the log.
pub(crate) type Failure = (ConnectFailure, String);

/// Connects to `addr` (TCP, then TLS if `transport` says so) within `limit`.
pub(crate) async fn connect(
    addr: &str,
    transport: &Transport,
    limit: Duration,
) -> Result<Stream, Failure> {
    match timeout(limit, open(addr, transport)).await {
        Ok(result) => result,
        Err(_) => Err((ConnectFailure::Timeout, "connect timed out".to_string())),
    }
}

async fn open(addr: &str, transport: &Transport) -> Result<Stream, Failure> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| (ConnectFailure::Connect, e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let (material, name) = match transport {
        Transport::Plain => return Ok(Stream::Plain(tcp)),
        Transport::Tls { material, name } => (material, name),
    };
    let tls_failure = |m: String| (ConnectFailure::Tls, m);
    let name = name.clone().map_err(tls_failure)?;
    let config = material
        .get()
        .ok_or_else(|| tls_failure("TLS files were never loaded".to_string()))?;
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| tls_failure(format!("TLS handshake: {e}")))?;
    Ok(Stream::Tls(Box::new(stream)))
}
