//! Pre-resolved metric handles for the hot path: one per listener and route, created once from
//! [`Metrics`] (at start-up or when a route table is compiled), and one per listener × route,
//! created on first use and shared ([`ListenerMetrics::requests`]); pools and servers are in
//! [`super::upstream`].
//! Recording through a handle is an array index and one atomic add; no label strings are hashed.
//! Every handle is `Clone` (one `Arc`) and `Send + Sync`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

use super::labels::{
    Command, Direction, FirewallAction, MismatchKind, PickleProtocol, ReplyOutcome, Side,
    TranscodeOutcome, Writer,
};
use super::Metrics;
use crate::pickle::{self, Reason, Summary};
use crate::value::{Mismatch, Refusal, ValueOutcome, ValueResult};

/// Counters resolved on first use and cached: for label products too large to create up front.
#[derive(Debug)]
pub(crate) struct LazyCounters {
    vec: IntCounterVec,
    cells: Box<[OnceLock<IntCounter>]>,
}

impl LazyCounters {
    fn new(vec: &IntCounterVec, len: usize) -> Self {
        LazyCounters {
            vec: vec.clone(),
            cells: (0..len).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The counter at `index`; `labels` is called only the first time.
    fn get<'a, const N: usize>(
        &self,
        index: usize,
        labels: impl FnOnce() -> [&'a str; N],
    ) -> &IntCounter {
        // Every caller computes `index` from label enums within `len`; the modulo keeps an
        // out-of-range index from panicking instead of trusting that.
        let cell = &self.cells[index % self.cells.len()];
        cell.get_or_init(|| self.vec.with_label_values(&labels()))
    }
}

/// Keeps a connection gauge incremented while alive; dropping it decrements the gauge.
#[derive(Debug)]
#[must_use = "dropping the guard immediately marks the connection closed"]
pub struct ConnectionGuard {
    open: IntGauge,
}

impl ConnectionGuard {
    pub(crate) fn new(open: &IntGauge) -> Self {
        open.inc();
        ConnectionGuard { open: open.clone() }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Metrics of one listener: client connections, replies, client-seen latency.
#[derive(Clone, Debug)]
pub struct ListenerMetrics {
    inner: Arc<ListenerInner>,
}

#[derive(Debug)]
struct ListenerInner {
    name: String,
    metrics: Metrics,
    open: IntGauge,
    accepted: IntCounter,
    rejected: IntCounter,
    errors: Vec<IntCounter>,
    replies: Vec<IntCounter>,
    latency: Histogram,
    /// Request counters per route, shared by every connection of the listener.
    requests: std::sync::Mutex<Vec<RequestCounters>>,
}

impl ListenerMetrics {
    pub(crate) fn new(metrics: &Metrics, name: &str) -> Self {
        let f = &metrics.f;
        let inner = ListenerInner {
            name: name.to_owned(),
            metrics: metrics.clone(),
            open: f.client_connections_open.with_label_values(&[name]),
            accepted: f.client_connections_accepted.with_label_values(&[name]),
            rejected: f.client_connections_rejected.with_label_values(&[name]),
            errors: Side::ALL
                .iter()
                .map(|s| {
                    f.client_connection_errors
                        .with_label_values(&[name, s.as_str()])
                })
                .collect(),
            replies: ReplyOutcome::ALL
                .iter()
                .map(|o| f.replies.with_label_values(&[name, o.as_str()]))
                .collect(),
            latency: f.request_duration.with_label_values(&[name]),
            requests: std::sync::Mutex::new(Vec::new()),
        };
        ListenerMetrics {
            inner: Arc::new(inner),
        }
    }

    /// The listener name (its `listener` label).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Counts an accepted client connection; the returned guard keeps it counted as open.
    pub fn accepted(&self) -> ConnectionGuard {
        self.inner.accepted.inc();
        ConnectionGuard::new(&self.inner.open)
    }

    /// Counts a client connection refused at the connection limit or out of file descriptors.
    pub fn rejected(&self) {
        self.inner.rejected.inc();
    }

    /// Counts a client connection closed by an error caused by `side`.
    pub fn connection_error(&self, side: Side) {
        self.inner.errors[side.index()].inc();
    }

    /// Counts one reply (for retrievals: one per requested key).
    pub fn reply(&self, outcome: ReplyOutcome) {
        self.inner.replies[outcome.index()].inc();
    }

    /// Counts `n` replies with the same outcome (e.g. the misses of one multi-get).
    pub fn replies(&self, outcome: ReplyOutcome, n: u64) {
        self.inner.replies[outcome.index()].inc_by(n);
    }

    /// Records the latency of one request as the client sees it.
    pub fn observe_request(&self, elapsed: Duration) {
        self.inner.latency.observe(elapsed.as_secs_f64());
    }

    /// Request counters of this listener for `route` (a configured route name, or
    /// [`super::NO_ROUTE`] for keyless commands). Every call for one route returns the same
    /// counters (memoized here), so connections share the resolved series; keep the result for
    /// the life of a connection rather than asking per request.
    pub fn requests(&self, route: &str) -> RequestCounters {
        // A poisoned lock only means a panic elsewhere mid-push; the Vec is intact.
        let mut known = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(found) = known.iter().find(|c| c.inner.route == route) {
            return found.clone();
        }
        let counters = RequestCounters {
            inner: Arc::new(RequestInner {
                listener: self.inner.name.clone(),
                route: route.to_owned(),
                counters: LazyCounters::new(&self.inner.metrics.f.requests, Command::COUNT),
            }),
        };
        known.push(counters.clone());
        counters
    }
}

/// `picklebridge_requests_total` for one listener × route, per command (resolved on first use).
#[derive(Clone, Debug)]
pub struct RequestCounters {
    inner: Arc<RequestInner>,
}

#[derive(Debug)]
struct RequestInner {
    listener: String,
    route: String,
    counters: LazyCounters,
}

impl RequestCounters {
    /// Counts one request of `command`.
    pub fn inc(&self, command: Command) {
        let i = &self.inner;
        i.counters
            .get(command.index(), || {
                [i.listener.as_str(), i.route.as_str(), command.as_str()]
            })
            .inc();
    }
}

/// Metrics of one route: values seen, mismatches, transcodes, refusals, on_unreadable misses.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    inner: Arc<RouteInner>,
}

#[derive(Debug)]
struct RouteInner {
    name: String,
    /// Index: direction × protocol × writer.
    values: LazyCounters,
    mismatches: Vec<IntCounter>,
    unloadable_values: IntCounter,
    /// Index: direction × outcome.
    transcodes: Vec<IntCounter>,
    bytes_in: Vec<IntCounter>,
    bytes_out: Vec<IntCounter>,
    duration: Vec<Histogram>,
    unreadable: IntCounter,
    bare_converted: [IntCounter; 2],
    /// Index: zlib_corrupt, inflate_too_large.
    bare_refused: [IntCounter; 2],
    firewall: Vec<IntCounter>,
    /// Index: see [`refusal_index`].
    refusals: LazyCounters,
    /// Keeps this route's `picklebridge_route_info` series alive.
    _info: super::RouteInfo,
}

impl RouteMetrics {
    pub(crate) fn new(metrics: &Metrics, name: &str, info: super::RouteInfo) -> Self {
        let f = &metrics.f;
        let per_dir = |vec: &IntCounterVec| -> Vec<IntCounter> {
            Direction::ALL
                .iter()
                .map(|d| vec.with_label_values(&[name, d.as_str()]))
                .collect()
        };
        let mut transcodes = Vec::with_capacity(Direction::COUNT * TranscodeOutcome::COUNT);
        for d in Direction::ALL {
            for o in TranscodeOutcome::ALL {
                transcodes.push(
                    f.transcodes
                        .with_label_values(&[name, d.as_str(), o.as_str()]),
                );
            }
        }
        let inner = RouteInner {
            name: name.to_owned(),
            values: LazyCounters::new(
                &f.pickled_values,
                Direction::COUNT * PickleProtocol::COUNT * Writer::COUNT,
            ),
            mismatches: MismatchKind::ALL
                .iter()
                .map(|k| f.mismatches.with_label_values(&[name, k.as_str()]))
                .collect(),
            unloadable_values: f.unloadable_values.with_label_values(&[name]),
            transcodes,
            bytes_in: per_dir(&f.transcoder_input_bytes),
            bytes_out: per_dir(&f.transcoder_output_bytes),
            duration: Direction::ALL
                .iter()
                .map(|d| f.transcode_duration.with_label_values(&[name, d.as_str()]))
                .collect(),
            unreadable: f.unreadable_misses.with_label_values(&[name]),
            bare_converted: [pickle::Runtime::Py2, pickle::Runtime::Py3].map(|r| {
                f.bare_strings_converted
                    .with_label_values(&[name, r.as_str()])
            }),
            bare_refused: [Refusal::ZlibCorrupt, Refusal::InflateTooLarge].map(|r| {
                f.bare_strings_refused
                    .with_label_values(&[name, r.as_str()])
            }),
            firewall: FirewallAction::ALL
                .iter()
                .map(|a| f.unsafe_globals.with_label_values(&[name, a.as_str()]))
                .collect(),
            refusals: LazyCounters::new(&f.refusals, Reason::ALL.len() + 3),
            _info: info,
        };
        RouteMetrics {
            inner: Arc::new(inner),
        }
    }

    /// The route name (its `route` label).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Counts a pickled value seen travelling in `direction`.
    pub fn value_seen(&self, direction: Direction, protocol: PickleProtocol, writer: Writer) {
        let i = &self.inner;
        let index = (direction.index() * PickleProtocol::COUNT + protocol.index()) * Writer::COUNT
            + writer.index();
        i.values
            .get(index, || {
                [
                    i.name.as_str(),
                    direction.as_str(),
                    protocol.as_str(),
                    writer.as_str(),
                ]
            })
            .inc();
    }

    /// Counts a value its reader could not have loaded as stored.
    pub fn mismatch(&self, kind: MismatchKind) {
        self.inner.mismatches[kind.index()].inc();
    }

    /// Records one pass through the transcoder: its outcome, the bytes given and forwarded
    /// (`bytes_out == bytes_in` unless rewritten) and the time it took. For a refusal call
    /// [`RouteMetrics::refused`] instead, which also records the reason.
    pub fn transcoded(
        &self,
        direction: Direction,
        outcome: TranscodeOutcome,
        bytes_in: usize,
        bytes_out: usize,
        elapsed: Duration,
    ) {
        let i = &self.inner;
        let d = direction.index();
        i.transcodes[d * TranscodeOutcome::COUNT + outcome.index()].inc();
        i.bytes_in[d].inc_by(bytes_in as u64);
        i.bytes_out[d].inc_by(bytes_out as u64);
        i.duration[d].observe(elapsed.as_secs_f64());
    }

    /// Records a value that was refused (forwarded unchanged): a `refused` transcode plus one
    /// `picklebridge_transcode_refusals_total{reason}`.
    pub fn refused(&self, direction: Direction, refusal: Refusal, bytes: usize, elapsed: Duration) {
        self.transcoded(direction, TranscodeOutcome::Refused, bytes, bytes, elapsed);
        let i = &self.inner;
        i.refusals
            .get(refusal_index(refusal), || {
                [i.name.as_str(), refusal.as_str()]
            })
            .inc();
    }

    /// Records everything about one value that went through [`crate::value::transcode_value`]
    /// in `direction`, read by `reader`: the value seen, its mismatches (fetches only), the
    /// transcode outcome with bytes in/out and duration, the refusal reason. `bytes_in` is the
    /// length of the value as received; values that are not pickles record nothing.
    pub fn record(
        &self,
        direction: Direction,
        reader: pickle::Runtime,
        result: &ValueResult,
        bytes_in: usize,
        elapsed: Duration,
    ) {
        use TranscodeOutcome as T;
        let forwarded = match &result.outcome {
            ValueOutcome::NotPickle => return,
            ValueOutcome::Unchanged => (T::Unchanged, bytes_in),
            ValueOutcome::Rewritten(new) => (T::Rewritten, new.len()),
            ValueOutcome::Refused(refusal) => {
                self.value(direction, result.summary.as_ref(), reader);
                self.refused(direction, *refusal, bytes_in, elapsed);
                return;
            }
        };
        self.value(direction, result.summary.as_ref(), reader);
        self.transcoded(direction, forwarded.0, bytes_in, forwarded.1, elapsed);
    }

    /// Counts one pickled value seen in `direction` (protocol and writer from `summary`, `unknown`
    /// when the pickle could not be analysed) and, for fetches, every [`MismatchKind`] that
    /// `reader` would have hit loading it as stored, and the value once more when one of them
    /// fails the load. Mismatches are not counted on stores: who
    /// will read a stored value is known only when it is fetched.
    pub fn value(&self, direction: Direction, summary: Option<&Summary>, reader: pickle::Runtime) {
        let Some(summary) = summary else {
            self.value_seen(direction, PickleProtocol::Unknown, Writer::Unknown);
            return;
        };
        let protocol = summary.declared_protocol.unwrap_or(summary.max_protocol);
        self.value_seen(
            direction,
            PickleProtocol::from_number(Some(protocol)),
            summary.writer.into(),
        );
        if direction == Direction::Fetch {
            let mut unloadable = false;
            for kind in Mismatch::of(summary, reader) {
                unloadable |= kind.breaks_loading();
                self.mismatch(kind.into());
            }
            if unloadable {
                self.inner.unloadable_values.inc();
            }
        }
    }

    /// Counts a fetched value the pickle firewall flagged (`unsafe_global`): blocked (served as a
    /// miss) or observed (served and logged).
    pub fn unsafe_global(&self, action: FirewallAction) {
        self.inner.firewall[action.index()].inc();
    }

    /// Counts a value served as a miss because its reader could not load it (`on_unreadable = "miss"`).
    pub fn unreadable_miss(&self) {
        self.inner.unreadable.inc();
    }

    /// Counts a string stored unpickled that `reader` is served converted (`text_flag`).
    pub fn bare_string_converted(&self, reader: pickle::Runtime) {
        self.inner.bare_converted[usize::from(reader == pickle::Runtime::Py3)].inc();
    }

    /// Counts a compressed string stored unpickled that could not be inflated to be judged
    /// (served as stored): `refusal` is `ZlibCorrupt` or `InflateTooLarge`.
    pub fn bare_string_refused(&self, refusal: Refusal) {
        debug_assert!(matches!(
            refusal,
            Refusal::ZlibCorrupt | Refusal::InflateTooLarge
        ));
        self.inner.bare_refused[usize::from(refusal == Refusal::InflateTooLarge)].inc();
    }
}

/// Position of a refusal in the route's lazily resolved refusal counters.
fn refusal_index(refusal: Refusal) -> usize {
    let pickle_reasons = Reason::ALL.len();
    match refusal {
        Refusal::Pickle(reason) => reason as usize,
        Refusal::ZlibCorrupt => pickle_reasons,
        Refusal::InflateTooLarge => pickle_reasons + 1,
        Refusal::TooLarge => pickle_reasons + 2,
    }
}
