//! One persistent, pipelined connection to one memcached server, owned by one task.
//!
//! The task owns the socket, a bounded write buffer and the FIFO of in-flight requests: requests
//! are written in arrival order and memcached answers in the same order, so the reply at the
//! head of the read buffer always belongs to the head of the FIFO. A request that passes its
//! deadline fails every in-flight request with [`UpstreamError::Timeout`] and drops the
//! connection: a late reply must never be matched to the wrong request. The task connects
//! eagerly and reconnects in the background; connect failures, and connections the server ends
//! before answering anything, back off exponentially (50 ms to 1 s), and while backing off
//! requests fail at once (the client gets its `SERVER_ERROR`
//! immediately rather than after a timeout), so the proxy recovers by itself within a second of
//! memcached's return.
//!
//! The task is generic over the read and write halves, so TLS (see [`super::connect`]) and plain
//! TCP share the loop and the plain path keeps `TcpStream::split`'s borrowed halves.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::connect::{connect, Stream, Transport};
use super::{ConnectFailure, Exchange, Job, ServerEvents, UpstreamError};
use crate::protocol::TOO_MANY_CONNECTIONS;

/// Most requests written to one connection and not yet answered.
const MAX_IN_FLIGHT: usize = 4096;
/// Past this many bytes waiting to be written, stop taking new requests.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// First and largest reconnect back-off.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(1000);
/// Of the connect failures in a row, the first and then one in this many are logged as
/// warnings (at the largest back-off, one a minute per connection), the rest at debug.
const WARN_EVERY: u32 = 60;

/// Settings of a connection task.
#[derive(Clone, Debug)]
pub(crate) struct ConnSettings {
    /// The pool's name, for logs.
    pub pool: String,
    pub addr: String,
    pub connect_timeout: Duration,
    pub transport: Transport,
}

/// Runs one upstream connection until every sender of `rx` is dropped.
///
/// Connects eagerly and reconnects in the background (with back-off), so `up` reflects
/// reachability even without traffic (`/readyz`) and the first request after memcached returns
/// finds a live connection.
pub(crate) async fn run<E: Exchange>(
    settings: ConnSettings,
    mut rx: mpsc::Receiver<Job<E>>,
    events: Arc<dyn ServerEvents>,
    up: Arc<AtomicBool>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut connected_before = false;
    // Connect failures and unhealthy connections in a row: the first is logged as a warning,
    // then one in `WARN_EVERY` (a server down for an hour costs a line a minute per
    // connection, not one per back-off).
    let mut failures = 0u32;
    loop {
        let connect = connect(
            &settings.addr,
            &settings.transport,
            settings.connect_timeout,
        )
        .await;
        let failure = match connect {
            Ok(stream) => {
                tracing::debug!(pool = %settings.pool, server = %settings.addr, "upstream connected");
                let since = Instant::now();
                let mut uplink = Uplink {
                    up: &up,
                    events: &*events,
                    connected_before: &mut connected_before,
                    marked: false,
                };
                // After failures in a row the connection must prove itself first (see
                // `Uplink`); otherwise it is up at once.
                let prove_at = match failures {
                    0 => {
                        uplink.mark();
                        None
                    }
                    _ => Some(since + BACKOFF_MAX),
                };
                let (result, ended) = match stream {
                    Stream::Plain(mut tcp) => {
                        let (rd, wr) = tcp.split();
                        serve(rd, wr, false, &mut rx, &mut uplink, prove_at).await
                    }
                    Stream::Tls(tls) => {
                        let (rd, wr) = tokio::io::split(tls);
                        serve(rd, wr, true, &mut rx, &mut uplink, prove_at).await
                    }
                };
                up.store(false, Ordering::Relaxed);
                if uplink.marked {
                    events.disconnected();
                }
                match next_step(result, ended, since, &*events, &mut failures, &settings) {
                    Next::Stop => return,
                    Next::Reconnect => {
                        backoff = BACKOFF_MIN;
                        continue;
                    }
                    Next::BackOff(failure) => failure,
                }
            }
            Err((reason, e)) => {
                log_failure(&mut failures, &settings, reason.as_str(), &e);
                Some(reason)
            }
        };
        up.store(false, Ordering::Relaxed);
        if let Some(failure) = failure {
            events.connect_failed(failure);
        }
        let until = Instant::now() + backoff;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if !back_off(&mut rx, failure, until).await {
            return;
        }
    }
}

/// Marks a connection up (`up` for `/readyz`, [`ServerEvents::connected`]) once. The first
/// connection, and one after a healthy one, is up at once; after failures in a row, only once
/// it proves healthy (its first reply, or [`BACKOFF_MAX`] alive), so a server that accepts and
/// closes at every retry (memcached at its `-c` limit) neither reads as up for an instant nor
/// counts a reconnect per retry.
struct Uplink<'a> {
    up: &'a AtomicBool,
    events: &'a dyn ServerEvents,
    connected_before: &'a mut bool,
    marked: bool,
}

impl Uplink<'_> {
    fn mark(&mut self) {
        if !self.marked {
            self.marked = true;
            self.up.store(true, Ordering::Relaxed);
            self.events.connected(*self.connected_before);
            *self.connected_before = true;
        }
    }
}

/// What the connection task does after a connection ended.
enum Next {
    /// Every sender is gone.
    Stop,
    /// The connection was healthy: open the next one at once.
    Reconnect,
    /// Back off as after a failed connect: the failure to count (`None`: the connection
    /// ended before any reply, counted as an upstream error).
    BackOff(Option<ConnectFailure>),
}

/// Judges how a served connection ended (see [`Next`]), counting and logging it.
fn next_step(
    result: Result<(), UpstreamError>,
    ended: Ended,
    since: Instant,
    events: &dyn ServerEvents,
    failures: &mut u32,
    settings: &ConnSettings,
) -> Next {
    let more = ended != Ended::NoMoreRequests;
    match result {
        // With TLS 1.3 the server checks the client certificate after the client finished its
        // handshake: a refusal arrives as an alert on the first read. That is a failed connect
        // (counted as `tls`, backed off), not a dropped connection to reconnect at once, which
        // would spin.
        Err(UpstreamError::Tls) if more => {
            log_failure(
                failures,
                settings,
                "tls",
                &"the server refused the TLS session",
            );
            Next::BackOff(Some(ConnectFailure::Tls))
        }
        // memcached at its connection limit (`-c`) accepts, writes this line and closes: a
        // refused connect.
        Err(UpstreamError::Connect) if more => {
            log_failure(
                failures,
                settings,
                "connect",
                &"ERROR Too many open connections",
            );
            Next::BackOff(Some(ConnectFailure::Connect))
        }
        result => {
            if let Err(e) = result {
                if matches!(e, UpstreamError::Timeout) {
                    events.timed_out();
                } else {
                    events.failed();
                }
            }
            if !more {
                return Next::Stop;
            }
            // A connection that answered, lived a while or was dropped for a request's timeout
            // (paced by the timeout) was healthy: reconnect at once (memcached restarted, or
            // stalled with requests waiting). One that the server ended before answering
            // anything, at once (a server or balancer that accepts and closes, a crash-looping
            // memcached), is backed off like a failed connect, or the task would spin
            // reconnecting.
            let e = result.err().unwrap_or(UpstreamError::Closed);
            let healthy = ended == Ended::Replied
                || e == UpstreamError::Timeout
                || since.elapsed() >= BACKOFF_MAX;
            if healthy {
                *failures = 0;
                tracing::warn!(pool = %settings.pool, server = %settings.addr, error = %e, "upstream connection dropped");
                return Next::Reconnect;
            }
            log_failure(
                failures,
                settings,
                e.kind(),
                &"the connection ended before any reply",
            );
            events.backed_off();
            Next::BackOff(None)
        }
    }
}

/// Waits out a back-off until `until`, failing every request at once meanwhile: those queued
/// while connecting with the connect `failure`'s error, later ones as unavailable, so clients
/// never wait on a dead server. `false` when every sender is gone.
async fn back_off<E: Exchange>(
    rx: &mut mpsc::Receiver<Job<E>>,
    failure: Option<ConnectFailure>,
    until: Instant,
) -> bool {
    let mut error = failure.map_or(UpstreamError::Unavailable, UpstreamError::from);
    loop {
        while let Ok(job) = rx.try_recv() {
            job.fail(error);
        }
        error = UpstreamError::Unavailable;
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => job.fail(error),
                None => return false,
            },
            _ = sleep_until(until) => return true,
        }
    }
}

/// Logs a connect failure, the `failures`-th in a row: a warning for the first and then one in
/// [`WARN_EVERY`], saying how many came before; the others at debug.
fn log_failure(
    failures: &mut u32,
    settings: &ConnSettings,
    reason: &str,
    error: &dyn std::fmt::Display,
) {
    *failures = failures.saturating_add(1);
    let in_a_row = *failures;
    let (pool, server) = (&settings.pool, &settings.addr);
    if in_a_row % WARN_EVERY == 1 {
        tracing::warn!(%pool, %server, reason, %error, in_a_row, "upstream connect failed");
    } else {
        tracing::debug!(%pool, %server, reason, %error, in_a_row, "upstream connect failed");
    }
}

/// How a served connection ended, besides its error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Every sender of the request channel is gone: the task ends.
    NoMoreRequests,
    /// More requests may come, and the server answered at least one.
    Replied,
    /// More requests may come; the server answered none.
    Unanswered,
}

/// Serves a connected socket. Returns why it ended and how (see [`Ended`]).
///
/// `flush`: the writer buffers (TLS: a write may return once the bytes are encrypted, with
/// records still queued), so it is flushed once the write buffer is drained. Plain TCP never
/// needs it. `uplink` is marked at the first reply, or at `prove_at` (see [`Uplink`]).
async fn serve<R, W, E>(
    mut rd: R,
    mut wr: W,
    flush: bool,
    rx: &mut mpsc::Receiver<Job<E>>,
    uplink: &mut Uplink<'_>,
    prove_at: Option<Instant>,
) -> (Result<(), UpstreamError>, Ended)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    E: Exchange,
{
    let mut unflushed = false;
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    let mut fifo: VecDeque<Job<E>> = VecDeque::new();
    let mut open = true;
    let mut replied = false;
    loop {
        if !open && fifo.is_empty() {
            return (Ok(()), Ended::NoMoreRequests);
        }
        let deadline = fifo.front().map(|j| j.deadline);
        let can_take = open && fifo.len() < MAX_IN_FLIGHT && wbuf.len() < WRITE_HIGH_WATER;
        let result = tokio::select! {
            r = rd.read_buf(&mut rbuf) => match r {
                Ok(0) => Err(UpstreamError::Closed),
                // Refused past memcached's connection limit: nothing of that line may reach
                // a client as the reply to its request.
                Ok(_) if !replied && rbuf.starts_with(TOO_MANY_CONNECTIONS) => {
                    Err(UpstreamError::Connect)
                }
                Ok(_) => {
                    let r = match_replies(&mut rbuf, &mut fifo, &mut replied);
                    if replied {
                        uplink.mark();
                    }
                    r
                }
                Err(e) => Err(read_error(&e)),
            },
            // Alive long enough to count as up without a reply (an idle connection).
            _ = sleep_until(prove_at.unwrap_or_else(Instant::now)), if prove_at.is_some() && !uplink.marked => {
                uplink.mark();
                Ok(())
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                Err(UpstreamError::Timeout)
            }
            r = write_or_flush(&mut wr, &mut wbuf), if !wbuf.is_empty() || unflushed => match r {
                Ok(Some(0)) | Err(_) => Err(UpstreamError::Io),
                Ok(Some(_)) => {
                    unflushed = flush;
                    Ok(())
                }
                Ok(None) => {
                    unflushed = false;
                    Ok(())
                }
            },
            job = rx.recv(), if can_take => {
                match job {
                    Some(job) => {
                        accept(job, &mut wbuf, &mut fifo);
                        // Take whatever else is queued now: one write for the batch.
                        while fifo.len() < MAX_IN_FLIGHT && wbuf.len() < WRITE_HIGH_WATER {
                            match rx.try_recv() {
                                Ok(job) => accept(job, &mut wbuf, &mut fifo),
                                Err(_) => break,
                            }
                        }
                    }
                    None => open = false,
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            for job in fifo.drain(..) {
                job.fail(e);
            }
            let ended = match (open, replied) {
                (false, _) => Ended::NoMoreRequests,
                (true, true) => Ended::Replied,
                (true, false) => Ended::Unanswered,
            };
            return (Err(e), ended);
        }
    }
}

/// A read error: TLS when rustls refused the session (an alert from the server, a bad record),
/// else plain i/o.
fn read_error(e: &std::io::Error) -> UpstreamError {
    match e.get_ref().map(|inner| inner.is::<rustls::Error>()) {
        Some(true) => UpstreamError::Tls,
        _ => UpstreamError::Io,
    }
}

/// Writes some of `wbuf` (`Some(written)`), or flushes `wr` when `wbuf` is empty (`None`).
async fn write_or_flush<W: AsyncWrite + Unpin>(
    wr: &mut W,
    wbuf: &mut BytesMut,
) -> std::io::Result<Option<usize>> {
    if wbuf.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write_buf(wbuf).await.map(Some)
    }
}

/// Queues a job's bytes for writing and its reply slot in the FIFO (or fails it if it is late).
fn accept<E: Exchange>(job: Job<E>, wbuf: &mut BytesMut, fifo: &mut VecDeque<Job<E>>) {
    if job.deadline <= Instant::now() {
        job.fail(UpstreamError::Timeout);
        return;
    }
    wbuf.extend_from_slice(&job.bytes);
    if let Some(body) = &job.body {
        wbuf.extend_from_slice(body);
        wbuf.extend_from_slice(b"\r\n");
    }
    fifo.push_back(job);
}

/// Completes every in-flight request whose reply is complete in `rbuf`.
/// `replied`: set once a reply is taken.
fn match_replies<E: Exchange>(
    rbuf: &mut BytesMut,
    fifo: &mut VecDeque<Job<E>>,
    replied: &mut bool,
) -> Result<(), UpstreamError> {
    while !rbuf.is_empty() {
        let Some(front) = fifo.front() else {
            // Bytes nobody asked for: the stream is out of step, never guess.
            return Err(UpstreamError::Protocol);
        };
        match front.exchange.parse_reply(rbuf) {
            Ok(Some(reply)) => {
                *replied = true;
                if let Some(job) = fifo.pop_front() {
                    // The client may have gone away; the reply is consumed either way.
                    let _ = job.reply.send(Ok(reply));
                }
            }
            Ok(None) => break,
            Err(()) => return Err(UpstreamError::Protocol),
        }
    }
    Ok(())
}

/// Sends one request on a connection of its own and returns its reply; the connection is
/// closed after it, with whatever the server sent past the reply. Connects within the connect
/// timeout, then waits for the reply up to `request_timeout`.
pub(crate) async fn one_off<E: Exchange>(
    settings: &ConnSettings,
    bytes: Bytes,
    exchange: E,
    request_timeout: Duration,
) -> Result<E::Reply, UpstreamError> {
    let stream = connect_alone(settings).await?;
    let exchange_on = async move {
        match stream {
            Stream::Plain(mut tcp) => {
                let (rd, wr) = tcp.split();
                exchange_once(rd, wr, &bytes, exchange).await
            }
            Stream::Tls(tls) => {
                let (rd, wr) = tokio::io::split(tls);
                exchange_once(rd, wr, &bytes, exchange).await
            }
        }
    };
    match tokio::time::timeout(request_timeout, exchange_on).await {
        Ok(result) => result,
        Err(_) => Err(UpstreamError::Timeout),
    }
}

async fn exchange_once<R, W, E>(
    mut rd: R,
    mut wr: W,
    bytes: &[u8],
    exchange: E,
) -> Result<E::Reply, UpstreamError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    E: Exchange,
{
    wr.write_all(bytes).await.map_err(|_| UpstreamError::Io)?;
    wr.flush().await.map_err(|_| UpstreamError::Io)?;
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    loop {
        match rd.read_buf(&mut rbuf).await {
            Ok(0) => return Err(UpstreamError::Closed),
            Ok(_) => match exchange.parse_reply(&mut rbuf) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(()) => return Err(UpstreamError::Protocol),
            },
            Err(e) => return Err(read_error(&e)),
        }
    }
}

/// Sends one request on a connection of its own and passes its reply on in chunks as it
/// arrives: `cut(unsent, first)` says how many bytes at the front of what was not passed on
/// yet are complete parts of the reply, and whether they end it (`Err(())`: not a reply). Each
/// read waits at most `request_timeout`, except, for an `endless` reply (a log stream, quiet
/// for as long as the server has nothing to log), those after its first part. A failure is the
/// last item sent. Returns when the reply ended, failed, or the receiver went away (the
/// connection is closed with it).
pub(crate) async fn stream_once<F>(
    settings: &ConnSettings,
    bytes: Bytes,
    cut: F,
    request_timeout: Duration,
    endless: bool,
    tx: &mpsc::Sender<Result<Bytes, UpstreamError>>,
) -> Result<(), UpstreamError>
where
    F: Fn(&[u8], bool) -> Result<(usize, bool), ()>,
{
    let stream = connect_alone(settings).await?;
    match stream {
        Stream::Plain(mut tcp) => {
            let (rd, wr) = tcp.split();
            stream_on(rd, wr, &bytes, cut, request_timeout, endless, tx).await
        }
        Stream::Tls(tls) => {
            let (rd, wr) = tokio::io::split(tls);
            stream_on(rd, wr, &bytes, cut, request_timeout, endless, tx).await
        }
    }
}

async fn stream_on<R, W, F>(
    mut rd: R,
    mut wr: W,
    bytes: &[u8],
    cut: F,
    request_timeout: Duration,
    endless: bool,
    tx: &mpsc::Sender<Result<Bytes, UpstreamError>>,
) -> Result<(), UpstreamError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: Fn(&[u8], bool) -> Result<(usize, bool), ()>,
{
    let write = async {
        wr.write_all(bytes).await?;
        wr.flush().await
    };
    match tokio::time::timeout(request_timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Err(UpstreamError::Io),
        Err(_) => return Err(UpstreamError::Timeout),
    }
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut first = true;
    loop {
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            rbuf.reserve(64 * 1024);
        }
        let read = async {
            if endless && !first {
                Ok(rd.read_buf(&mut rbuf).await)
            } else {
                tokio::time::timeout(request_timeout, rd.read_buf(&mut rbuf)).await
            }
        };
        let read = tokio::select! {
            read = read => read,
            // The client went away while the server had nothing to say: close now, not at the
            // next line (a log stream may be quiet for hours).
            () = tx.closed() => return Ok(()),
        };
        match read {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Ok(0)) => return Err(UpstreamError::Closed),
            Ok(Err(e)) => return Err(read_error(&e)),
            Ok(Ok(_)) => {}
        }
        // Cut until nothing complete is left: what came in the same read after a part (a log
        // stream's lines after its `OK`) is passed on now, not at the next read, which may be
        // hours away.
        loop {
            let (len, ends) = cut(&rbuf, first).map_err(|()| UpstreamError::Protocol)?;
            if len > 0 {
                first = false;
                if tx.send(Ok(rbuf.split_to(len).freeze())).await.is_err() {
                    // The client went away: so does this connection.
                    return Ok(());
                }
            }
            if ends {
                return Ok(());
            }
            if len == 0 || rbuf.is_empty() {
                break;
            }
        }
    }
}

/// Opens a connection of its own (none of the server's `connections`, not in their metrics).
async fn connect_alone(settings: &ConnSettings) -> Result<Stream, UpstreamError> {
    connect(
        &settings.addr,
        &settings.transport,
        settings.connect_timeout,
    )
    .await
    .map_err(|(reason, e)| {
        tracing::debug!(pool = %settings.pool, server = %settings.addr, reason = reason.as_str(), error = %e, "one-off upstream connect failed");
        UpstreamError::from(reason)
    })
}
