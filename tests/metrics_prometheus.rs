//! A real Prometheus server (Debian's `prometheus`, loopback only, 500 ms scrape interval,
//! temporary storage) scrapes picklebridge's admin listener; the test queries the Prometheus HTTP
//! API until the expected `picklebridge_mismatches_total` series is visible (bounded wait).
mod metrics_common;

use std::time::{Duration, Instant};

use metrics_common::{AdminServer, Prometheus};
use picklebridge::metrics::{Metrics, MismatchKind};

/// Polls `query` until it returns a series with value `want`, or fails after `timeout` with what
/// Prometheus last saw and the target's health.
fn wait_for_value(prom: &Prometheus, query: &str, want: f64, timeout: Duration) {
    let start = Instant::now();
    let mut last = Vec::new();
    while start.elapsed() < timeout {
        last = prom.query(query);
        let value = last
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok());
        if value == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "after {:?}, {query} = {last:?} (want {want}); target: {}\n{}",
        start.elapsed(),
        prom.target_health(),
        prom.log()
    );
}

#[test]
fn prometheus_scrapes_mismatches_from_the_admin_listener() {
    let registry = prometheus::Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let route = m.route("legacy:", "main", "observe");
    route.mismatch(MismatchKind::ProtocolTooNew);
    route.mismatch(MismatchKind::ProtocolTooNew);
    let admin = AdminServer::start(registry, || true);
    let prom = Prometheus::start(admin.addr());
    wait_for_value(
        &prom,
        r#"picklebridge_mismatches_total{route="legacy:",kind="protocol_too_new"}"#,
        2.0,
        Duration::from_secs(30),
    );
    // Prometheus stored the whole exposition, not just one family.
    assert!(!prom.query("picklebridge_build_info == 1").is_empty());
}
