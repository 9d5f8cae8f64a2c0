//! Metric handles of upstream pools and servers: upstream latency per pool, connection state per
//! server (recorded through [`crate::upstream::ServerEvents`]). `/readyz` asks the upstreams
//! themselves (`Upstreams::ready`), not these gauges.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Histogram, IntCounter, IntGauge};

use super::Metrics;
use crate::upstream::ConnectFailure;

/// Metrics of one upstream pool: upstream latency, and the handles of its servers.
#[derive(Clone, Debug)]
pub struct PoolMetrics {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    name: String,
    metrics: Metrics,
    latency: Histogram,
}

impl PoolMetrics {
    pub(crate) fn new(metrics: &Metrics, name: &str) -> Self {
        let latency = metrics.f.upstream_duration.with_label_values(&[name]);
        PoolMetrics {
            inner: Arc::new(PoolInner {
                name: name.to_owned(),
                metrics: metrics.clone(),
                latency,
            }),
        }
    }

    /// The pool name (its `pool` label).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Records the time one request took on a server of this pool.
    pub fn observe_upstream(&self, elapsed: Duration) {
        self.inner.latency.observe(elapsed.as_secs_f64());
    }

    /// The handle for one server of this pool; `server` is its address as written in the config.
    pub fn server(&self, server: &str) -> ServerMetrics {
        let f = &self.inner.metrics.f;
        let labels = [self.inner.name.as_str(), server];
        // 1 until a connect attempt fails (connections are opened at once, at start-up).
        let up = f.upstream_server_up.with_label_values(&labels);
        up.set(1);
        ServerMetrics {
            inner: Arc::new(ServerInner {
                up,
                open: f.upstream_connections_open.with_label_values(&labels),
                connect_failures: ConnectFailure::ALL
                    .iter()
                    .map(|r| {
                        f.upstream_connect_failures.with_label_values(&[
                            labels[0],
                            labels[1],
                            r.as_str(),
                        ])
                    })
                    .collect(),
                timeouts: f.upstream_timeouts.with_label_values(&labels),
                reconnects: f.upstream_reconnects.with_label_values(&labels),
                errors: f.upstream_errors.with_label_values(&labels),
            }),
        }
    }
}

/// Metrics of one memcached server of a pool, recorded through its
/// [`crate::upstream::ServerEvents`] implementation (hand it to the server as its event hook).
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    inner: Arc<ServerInner>,
}

#[derive(Debug)]
struct ServerInner {
    up: IntGauge,
    open: IntGauge,
    /// One per [`ConnectFailure`], in [`ConnectFailure::ALL`] order, indexed by
    /// `reason as usize` (declaration order, checked by a unit test in `upstream`).
    connect_failures: Vec<IntCounter>,
    timeouts: IntCounter,
    reconnects: IntCounter,
    errors: IntCounter,
}

/// Upstream connection events recorded into this server's families. A connection established
/// again (after it was lost, or a connect failed) counts as a reconnect; the first of each of
/// the server's `connections` does not.
impl crate::upstream::ServerEvents for ServerMetrics {
    fn connected(&self, reconnect: bool) {
        self.inner.up.set(1);
        self.inner.open.inc();
        if reconnect {
            self.inner.reconnects.inc();
        }
    }

    fn disconnected(&self) {
        self.inner.open.dec();
    }

    fn connect_failed(&self, reason: ConnectFailure) {
        self.inner.up.set(0);
        self.inner.connect_failures[reason as usize].inc();
    }

    fn timed_out(&self) {
        self.inner.timeouts.inc();
    }

    fn failed(&self) {
        self.inner.errors.inc();
    }

    fn backed_off(&self) {
        self.inner.up.set(0);
    }
}
