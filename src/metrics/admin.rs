//! The admin HTTP listener: `/metrics` (Prometheus text format), `/healthz` (the process is
//! alive and serving) and `/readyz` (every upstream pool has a reachable server and the proxy is
//! not shutting down, as told by a probe the proxy provides). Separate from the memcache
//! listeners; it keeps serving while a shutdown drains the client connections.
//!
//! A deliberately small HTTP/1.1 server on tokio rather than hyper: three read-only GET routes
//! polled by Prometheus and orchestrators need no keep-alive, chunking, bodies or TLS, and one
//! screen of code is easier to bound than a dependency tree. Bounds: the request head is at most
//! [`MAX_HEAD`] bytes and must arrive within [`READ_TIMEOUT`]; at most [`MAX_CONNECTIONS`] are
//! open at once, and when a new one would pass that the oldest connection still waiting for its
//! request head is closed to make room (so idle connections cannot lock a scrape out; only when
//! every one is busy answering is the new one closed); every response says `Connection: close`.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::{Encoder, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

/// Largest accepted request head (request line and headers), in bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its complete request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to write one response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once. A new one past this closes the oldest connection still waiting for
/// its request head, or is itself closed when all are busy answering.
pub const MAX_CONNECTIONS: usize = 64;
/// `Content-Type` of `/metrics`: the Prometheus text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `[admin]` section of the configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin HTTP listener serving `/metrics`, `/healthz` and `/readyz`
    /// (default `127.0.0.1:9150`; keep it off public interfaces).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9150))
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_listen(),
        }
    }
}

/// Serves the admin endpoints on `listener` until `shutdown` completes, then stops accepting and
/// abandons responses still in flight (they are short and idempotent).
///
/// `ready` answers `/readyz`: `Ok` when ready (every pool has a reachable server and the proxy
/// is not shutting down), else why not, which the 503's body gives; it is called on the
/// runtime, so it must be cheap and must not block (read an atomic or a `watch` channel).
///
/// # Errors
/// None in practice: accept errors (e.g. out of file descriptors) are logged and retried after a
/// short pause; the `io::Result` leaves room for fatal listener errors.
pub async fn serve_admin<R, S>(
    listener: TcpListener,
    registry: Registry,
    ready: R,
    shutdown: S,
) -> std::io::Result<()>
where
    R: Fn() -> Result<(), &'static str> + Send + Sync + 'static,
    S: Future<Output = ()>,
{
    let state = Arc::new(State {
        registry,
        ready: Box::new(ready),
    });
    // The open connections, oldest first.
    let mut live: VecDeque<Live> = VecDeque::with_capacity(MAX_CONNECTIONS);
    // A failing accept (out of file descriptors) is retried every 100 ms: one line per 10 s.
    let accept_log = crate::telemetry::RateLimiter::new(Duration::from_secs(10), 1);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                if !make_room(&mut live) {
                    tracing::debug!(%peer, "admin: too many connections answering, closing");
                    continue;
                }
                let state = state.clone();
                let waiting = Arc::new(AtomicBool::new(true));
                let still_waiting = waiting.clone();
                let task = tasks.spawn(async move {
                    if let Err(error) = serve_connection(stream, &state, &still_waiting).await {
                        tracing::debug!(%peer, %error, "admin connection");
                    }
                });
                live.push_back(Live { task, waiting });
            }
            Err(error) => {
                if let Some(suppressed) = accept_log.check() {
                    tracing::warn!(%error, suppressed, "admin listener accept failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tasks.shutdown().await;
    Ok(())
}

/// An open connection as the accept loop tracks it.
struct Live {
    task: AbortHandle,
    /// True until the request head has arrived.
    waiting: Arc<AtomicBool>,
}

/// Forgets finished connections and, at [`MAX_CONNECTIONS`], closes the oldest one still waiting
/// for its request head. False when all are busy answering: the new connection must go.
fn make_room(live: &mut VecDeque<Live>) -> bool {
    live.retain(|c| !c.task.is_finished());
    if live.len() < MAX_CONNECTIONS {
        return true;
    }
    let Some(oldest) = live.iter().position(|c| c.waiting.load(Ordering::Relaxed)) else {
        return false;
    };
    if let Some(idle) = live.remove(oldest) {
        tracing::debug!("admin: at the connection limit, closing the oldest idle connection");
        // Its socket closes when the runtime drops the task, right after this.
        idle.task.abort();
    }
    true
}

/// What every connection needs.
struct State {
    registry: Registry,
    ready: Box<dyn Fn() -> Result<(), &'static str> + Send + Sync>,
}

/// A response: status line text, content type, body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    allow: bool,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            allow: false,
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    state: &State,
    waiting: &AtomicBool,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream, &mut head)).await;
    waiting.store(false, Ordering::Relaxed);
    let parsed = match read {
        Err(_elapsed) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(false)) => Err(Response::text(
            "431 Request Header Fields Too Large",
            "request too large\n",
        )),
        Ok(Ok(true)) => parse_request_line(&head),
    };
    let (response, head_only) = match parsed {
        Ok((method, path)) => (respond(method, path, state), method == "HEAD"),
        Err(bad) => (bad, false),
    };
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        response.status,
        response.content_type,
        response.body.len(),
        if response.allow {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        },
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    let write = async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or(Ok(()))
}

/// Reads until the blank line ending the head. Ok(false) when the head exceeds [`MAX_HEAD`] or
/// the peer closes first.
async fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(true);
        }
        if head.len() >= MAX_HEAD {
            return Ok(false);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(false);
        }
        head.extend_from_slice(&chunk[..n]);
    }
}

/// Parses `METHOD SP request-target SP HTTP/1.x` (RFC 9112 §3); returns method and path without
/// the query string.
fn parse_request_line(head: &[u8]) -> Result<(&str, &str), Response> {
    let bad = || Response::text("400 Bad Request", "bad request\n");
    let end = head.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
    let line = std::str::from_utf8(&head[..end]).map_err(|_| bad())?;
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(bad());
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    Ok((method, path))
}

fn respond(method: &str, path: &str, state: &State) -> Response {
    if method != "GET" && method != "HEAD" {
        let mut r = Response::text("405 Method Not Allowed", "method not allowed\n");
        r.allow = true;
        return r;
    }
    match path {
        "/metrics" => {
            let mut body = Vec::with_capacity(16 * 1024);
            match TextEncoder::new().encode(&state.registry.gather(), &mut body) {
                Ok(()) => Response {
                    status: "200 OK",
                    content_type: METRICS_CONTENT_TYPE,
                    body,
                    allow: false,
                },
                Err(error) => {
                    tracing::warn!(%error, "encoding /metrics failed");
                    Response::text("500 Internal Server Error", "encoding metrics failed\n")
                }
            }
        }
        "/healthz" => Response::text("200 OK", "ok\n"),
        "/readyz" => match (state.ready)() {
            Ok(()) => Response::text("200 OK", "ready\n"),
            Err(why) => Response::text("503 Service Unavailable", &format!("not ready: {why}\n")),
        },
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

#[cfg(test)]
mod tests;
