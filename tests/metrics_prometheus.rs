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

    // The README's example queries are valid PromQL over these families (query() asserts success).
    let queries = readme_queries();
    assert_eq!(queries.len(), 3, "{queries:?}");
    wait_for_series(&prom, &queries[0], Duration::from_secs(30));
    for q in &queries[1..] {
        prom.query(q);
    }
}

/// The expressions of the README's `promql` block (comment lines dropped, blank-line separated).
fn readme_queries() -> Vec<String> {
    let readme = include_str!("../README.md");
    let block = readme
        .split("```promql\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("README has a ```promql block");
    block
        .split("\n\n")
        .map(|q| {
            q.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|q| !q.trim().is_empty())
        .collect()
}

/// Polls `query` until it returns at least one series (`rate()` needs two scrapes).
fn wait_for_series(prom: &Prometheus, query: &str, timeout: Duration) {
    let start = Instant::now();
    while prom.query(query).is_empty() {
        assert!(
            start.elapsed() < timeout,
            "no series for {query} after {:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
