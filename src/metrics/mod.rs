//! Prometheus metrics: one [`Metrics`] struct registered into a caller-owned
//! [`prometheus::Registry`] and passed to the proxy (never a global), typed label sets
//! ([`labels`]), pre-resolved handles for the hot path ([`handles`]), the admin HTTP listener
//! serving `/metrics`, `/healthz`, `/readyz` ([`admin`]) and the memcached-style `stats` reply
//! ([`stats`]).
//!
//! Labels come only from the closed enums in [`labels`] or from names in the configuration
//! (listener, route, pool, server address): never keys or prefixes seen in traffic.
//!
//! # Cost on the hot path
//! Looking a series up by label values (`with_label_values`) hashes the strings and takes a read
//! lock on every call. The proxy instead asks once, at start-up or when it compiles a route table,
//! for a handle per listener ([`Metrics::listener`]), per route ([`Metrics::route`]), per pool
//! ([`Metrics::pool`]) and per server ([`PoolMetrics::server`]); a connection asks its listener
//! once per route it meets for that listener × route's handle ([`ListenerMetrics::requests`],
//! memoized, so every connection shares it). A handle holds the resolved counters in arrays indexed by the label
//! enums, so recording is an array index plus one relaxed atomic add. Handles whose label product
//! is small (mismatch kinds, transcode outcomes, reply outcomes) create every series up front, at
//! zero, so `rate()` sees the first increment; larger products (requests by command, values seen by
//! protocol × writer, refusal reasons) are resolved on first use through a `OnceLock` and cached.
//! Handles are `Clone` (an `Arc` inside) and `Send + Sync`.

pub mod admin;
pub mod handles;
pub mod labels;
pub mod stats;
pub mod upstream;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

pub use admin::{serve_admin, AdminConfig};
pub use handles::{ConnectionGuard, ListenerMetrics, RequestCounters, RouteMetrics};
pub use labels::{
    Command, Direction, FirewallAction, MismatchKind, PickleProtocol, ReplyOutcome, Runtime, Side,
    TranscodeOutcome, Writer,
};
pub use upstream::{PoolMetrics, ServerMetrics};

/// Common prefix of every family name.
pub const PREFIX: &str = "picklebridge_";

/// `route` label value for requests that carry no key (`version`, `stats`, `flush_all`, ...).
pub const NO_ROUTE: &str = "";

/// Buckets (seconds) of the client and upstream request latency histograms: 50 µs to 5 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Buckets (seconds) of the transcode duration histogram: 1 µs to 100 ms.
pub const TRANSCODE_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.01,
    0.1,
];

/// Every metric family of the proxy, registered into one registry. Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub(crate) f: Arc<Families>,
}

/// The registered families. Field names follow the family names without prefix and suffix.
#[derive(Debug)]
pub(crate) struct Families {
    pub(crate) requests: IntCounterVec,
    pub(crate) replies: IntCounterVec,
    pub(crate) request_duration: HistogramVec,
    pub(crate) upstream_duration: HistogramVec,
    pub(crate) pickled_values: IntCounterVec,
    pub(crate) transcoder_input_bytes: IntCounterVec,
    pub(crate) transcoder_output_bytes: IntCounterVec,
    pub(crate) mismatches: IntCounterVec,
    pub(crate) unloadable_values: IntCounterVec,
    pub(crate) transcodes: IntCounterVec,
    pub(crate) refusals: IntCounterVec,
    pub(crate) unreadable_misses: IntCounterVec,
    pub(crate) bare_strings_converted: IntCounterVec,
    pub(crate) bare_strings_refused: IntCounterVec,
    pub(crate) unsafe_globals: IntCounterVec,
    pub(crate) transcode_duration: HistogramVec,
    pub(crate) upstream_connections_open: IntGaugeVec,
    pub(crate) upstream_server_up: IntGaugeVec,
    pub(crate) upstream_connect_failures: IntCounterVec,
    pub(crate) upstream_timeouts: IntCounterVec,
    pub(crate) upstream_reconnects: IntCounterVec,
    pub(crate) upstream_errors: IntCounterVec,
    pub(crate) client_connections_open: IntGaugeVec,
    pub(crate) client_connections_accepted: IntCounterVec,
    pub(crate) client_connections_rejected: IntCounterVec,
    pub(crate) client_connection_errors: IntCounterVec,
    pub(crate) config_reloads: IntCounter,
    pub(crate) config_reload_failures: IntCounter,
    pub(crate) listener_info: IntGaugeVec,
    pub(crate) route_info: IntGaugeVec,
    /// Live [`RouteMetrics`] per `route_info` label set; the series goes when the count is 0.
    pub(crate) route_info_refs: std::sync::Mutex<std::collections::HashMap<[String; 3], usize>>,
    /// The `stats` counters at the last `stats reset`, subtracted in the `stats` reply (the
    /// Prometheus counters never go back).
    pub(crate) stats_base: std::sync::Mutex<Vec<(&'static str, u64)>>,
    pub(crate) started: Instant,
    pub(crate) started_unix: u64,
}

/// Registers collectors one after the other, keeping the first error.
struct Registrar<'r>(&'r Registry);

impl Registrar<'_> {
    fn counter(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        let c = IntCounterVec::new(Opts::new(format!("{PREFIX}{name}"), help), labels)?;
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn counter1(&self, name: &str, help: &str) -> prometheus::Result<IntCounter> {
        let c = IntCounter::with_opts(Opts::new(format!("{PREFIX}{name}"), help))?;
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
        let g = IntGaugeVec::new(Opts::new(format!("{PREFIX}{name}"), help), labels)?;
        self.0.register(Box::new(g.clone()))?;
        Ok(g)
    }

    fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> prometheus::Result<HistogramVec> {
        let opts = HistogramOpts::new(format!("{PREFIX}{name}"), help).buckets(buckets.to_vec());
        let h = HistogramVec::new(opts, labels)?;
        self.0.register(Box::new(h.clone()))?;
        Ok(h)
    }
}

impl Metrics {
    /// Creates every family and registers it into `registry`; sets `picklebridge_build_info`
    /// and `picklebridge_start_time_seconds`.
    ///
    /// # Errors
    /// A [`prometheus::Error`] if a family is already registered in `registry` (call once per
    /// registry; tests each use a fresh one).
    pub fn register(registry: &Registry) -> Result<Metrics, prometheus::Error> {
        let r = Registrar(registry);
        let (lis, route, pool, srv) = ("listener", "route", "pool", "server");
        let f = Families {
            requests: r.counter(
                "requests_total",
                "Client requests, by listener, route of the first key (empty for keyless commands) and command.",
                &[lis, route, "command"],
            )?,
            replies: r.counter(
                "replies_total",
                "Replies to clients by outcome; retrievals count one hit or miss per requested key.",
                &[lis, "outcome"],
            )?,
            request_duration: r.histogram(
                "request_duration_seconds",
                "Time from a complete client request to its reply being queued, as the client sees it.",
                &[lis],
                LATENCY_BUCKETS,
            )?,
            upstream_duration: r.histogram(
                "upstream_request_duration_seconds",
                "Time from sending a request to a memcached server to receiving its complete reply.",
                &[pool],
                LATENCY_BUCKETS,
            )?,
            pickled_values: r.counter(
                "pickled_values_total",
                "Pickled values seen, by route, direction, pickle protocol and writer runtime.",
                &[route, "direction", "protocol", "writer"],
            )?,
            transcoder_input_bytes: r.counter(
                "transcoder_input_bytes_total",
                "Bytes of pickled values given to the transcoder.",
                &[route, "direction"],
            )?,
            transcoder_output_bytes: r.counter(
                "transcoder_output_bytes_total",
                "Bytes of pickled values forwarded after the transcoder (original bytes when not rewritten).",
                &[route, "direction"],
            )?,
            mismatches: r.counter(
                "mismatches_total",
                "What fetched pickled values would meet in their reader as stored, by route and kind (a value counts once per kind; py3_text_to_py2 loads, as unicode); counted in transcode and observe modes.",
                &[route, "kind"],
            )?,
            unloadable_values: r.counter(
                "unloadable_values_total",
                "Fetched pickled values the reading runtime could not have loaded as stored, one per value whatever its mismatch kinds; counted in transcode and observe modes.",
                &[route],
            )?,
            transcodes: r.counter(
                "transcodes_total",
                "Pickled values through the transcoder, by route, direction and outcome.",
                &[route, "direction", "outcome"],
            )?,
            refusals: r.counter(
                "transcode_refusals_total",
                "Values the transcoder refused and forwarded unchanged, by route and reason.",
                &[route, "reason"],
            )?,
            unreadable_misses: r.counter(
                "unreadable_misses_total",
                "Values the reader could not load after transcoding, served as misses (on_unreadable = miss).",
                &[route],
            )?,
            bare_strings_converted: r.counter(
                "bare_strings_converted_total",
                "Strings stored unpickled served to their reader as the route's text policy makes them (text_flag set), by route and reader.",
                &[route, "reader"],
            )?,
            bare_strings_refused: r.counter(
                "bare_strings_refused_total",
                "Compressed strings stored unpickled that could not be inflated to be judged (text_flag set), served as stored, by route and reason.",
                &[route, "reason"],
            )?,
            unsafe_globals: r.counter(
                "unsafe_globals_total",
                "Fetched values referencing a global on the pickle firewall's deny list, by route and action.",
                &[route, "action"],
            )?,
            transcode_duration: r.histogram(
                "transcode_duration_seconds",
                "Time spent analysing and transcoding one pickled value.",
                &[route, "direction"],
                TRANSCODE_BUCKETS,
            )?,
            upstream_connections_open: r.gauge(
                "upstream_connections_open",
                "Open connections to memcached servers.",
                &[pool, srv],
            )?,
            upstream_server_up: r.gauge(
                "upstream_server_up",
                "1 unless the last connection attempt to the memcached server failed or its last connection ended before answering (then 0 until a connection proves itself: its first reply, or a second alive).",
                &[pool, srv],
            )?,
            upstream_connect_failures: r.counter(
                "upstream_connect_failures_total",
                "Failed or timed-out connection attempts to memcached servers, by reason (connect, timeout, tls).",
                &[pool, srv, "reason"],
            )?,
            upstream_timeouts: r.counter(
                "upstream_timeouts_total",
                "Connections to memcached servers dropped because a request got no reply within the request timeout (one per connection; each failed request is a replies_total upstream_timeout).",
                &[pool, srv],
            )?,
            upstream_reconnects: r.counter(
                "upstream_reconnects_total",
                "Connections to memcached servers re-established after a failure.",
                &[pool, srv],
            )?,
            upstream_errors: r.counter(
                "upstream_errors_total",
                "I/O or protocol errors on connections to memcached servers.",
                &[pool, srv],
            )?,
            client_connections_open: r.gauge(
                "client_connections_open",
                "Open client connections.",
                &[lis],
            )?,
            client_connections_accepted: r.counter(
                "client_connections_accepted_total",
                "Client connections accepted.",
                &[lis],
            )?,
            client_connections_rejected: r.counter(
                "client_connections_rejected_total",
                "Client connections refused: the connection limit was reached, or no file descriptor was left.",
                &[lis],
            )?,
            client_connection_errors: r.counter(
                "client_connection_errors_total",
                "Client connections closed by an error, by the side that caused it.",
                &[lis, "side"],
            )?,
            config_reloads: r.counter1(
                "config_reloads_total",
                "Configuration reloads applied.",
            )?,
            config_reload_failures: r.counter1(
                "config_reload_failures_total",
                "Configuration reloads rejected (the previous configuration stays in force).",
            )?,
            listener_info: r.gauge(
                "listener_info",
                "Always 1: each configured listener and the runtime of its clients.",
                &[lis, "runtime"],
            )?,
            route_info: r.gauge(
                "route_info",
                "Always 1: each configured route, its pool and mode.",
                &[route, pool, "mode"],
            )?,
            route_info_refs: std::sync::Mutex::new(std::collections::HashMap::new()),
            stats_base: std::sync::Mutex::new(Vec::new()),
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let build = r.gauge(
            "build_info",
            "Always 1: the version of the running picklebridge.",
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let start = Gauge::with_opts(Opts::new(
            format!("{PREFIX}start_time_seconds"),
            "Unix time the process started, in seconds.",
        ))?;
        registry.register(Box::new(start.clone()))?;
        start.set(f.started_unix as f64);
        Ok(Metrics { f: Arc::new(f) })
    }

    /// The handle for one configured listener, whose clients run `runtime`; sets its
    /// `picklebridge_listener_info` series.
    pub fn listener(&self, name: &str, runtime: impl Into<Runtime>) -> ListenerMetrics {
        let runtime: Runtime = runtime.into();
        self.f
            .listener_info
            .with_label_values(&[name, runtime.as_str()])
            .set(1);
        ListenerMetrics::new(self, name)
    }

    /// The handle for one configured route (`pool` and `mode` as in the configuration). Call when
    /// compiling a route table. Its `picklebridge_route_info` series exists while some handle with
    /// the same labels lives: after a reload that removes the route or changes its mode, the old
    /// series goes when the old table is dropped. Its counters stay (counters never go back).
    pub fn route(&self, name: &str, pool: &str, mode: &str) -> RouteMetrics {
        let labels = [name.to_owned(), pool.to_owned(), mode.to_owned()];
        let mut refs = self
            .f
            .route_info_refs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *refs.entry(labels.clone()).or_insert(0) += 1;
        self.f
            .route_info
            .with_label_values(&[name, pool, mode])
            .set(1);
        drop(refs);
        RouteMetrics::new(
            self,
            name,
            RouteInfo {
                metrics: self.clone(),
                labels,
            },
        )
    }

    /// The handle for one configured upstream pool.
    pub fn pool(&self, name: &str) -> PoolMetrics {
        PoolMetrics::new(self, name)
    }

    /// Counts a configuration reload that was applied.
    pub fn config_reloaded(&self) {
        self.f.config_reloads.inc();
    }

    /// Counts a configuration reload that was rejected.
    pub fn config_reload_failed(&self) {
        self.f.config_reload_failures.inc();
    }

    /// Seconds since [`Metrics::register`] (process uptime for practical purposes).
    pub fn uptime_secs(&self) -> u64 {
        self.f.started.elapsed().as_secs()
    }
}

/// One live reference to a `picklebridge_route_info` series (held by a [`RouteMetrics`]).
#[derive(Debug)]
pub(crate) struct RouteInfo {
    metrics: Metrics,
    labels: [String; 3],
}

impl Drop for RouteInfo {
    fn drop(&mut self) {
        let f = &self.metrics.f;
        let mut refs = f.route_info_refs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(count) = refs.get_mut(&self.labels) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            refs.remove(&self.labels);
            let [a, b, c] = &self.labels;
            // Err only if the series is already gone, which is the goal.
            let _ = f.route_info.remove_label_values(&[a, b, c]);
        }
    }
}

#[cfg(test)]
mod tests;
