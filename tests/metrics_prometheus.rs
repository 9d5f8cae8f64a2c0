//! A real Prometheus server (Debian's `prometheus`, loopback only, 500 ms scrape interval,
//! temporary storage) scrapes the admin listener of the proxy serving a real memcached; the test queries the Prometheus HTTP
//! API until the expected `picklebridge_mismatches_total` series is visible (bounded wait).
mod common;
mod metrics_common;

use std::time::{Duration, Instant};

use common::servers::{two_listener_toml, Client, Memcached, Proxy};
use metrics_common::Prometheus;
use picklebridge::config::Config;

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

/// A protocol-4 pickle of `{'a': 1}` as CPython 3 writes it (`pickle.dumps({'a': 1}, 4)`).
const PROTO4_DICT: &[u8] = b"\x80\x04\x95\n\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.";

/// The proxy with a py2 and a py3 listener in front of `mc`, every key on an observe route.
fn start_proxy(mc: &Memcached) -> Proxy {
    let toml = format!(
        r#"{listeners}

[[route]]
name = "legacy"
prefix = ""
pool = "main"
mode = "observe"

[admin]
listen = "127.0.0.1:{admin_port}"
"#,
        listeners = two_listener_toml(mc),
        admin_port = common::ports::free_port(),
    );
    Proxy::start(Config::from_toml_str(&toml, "metrics_prometheus.toml").expect("test config"))
}

#[test]
fn prometheus_scrapes_mismatches_from_the_proxy() {
    let mc = Memcached::start();
    let proxy = start_proxy(&mc);
    let prom = Prometheus::start(proxy.admin_addr().expect("admin listener"));

    // A Py3 writer stores a protocol-4 pickle (flag 1) through the py3 listener; a Py2 reader
    // fetches it through the py2 listener twice: two protocol_too_new mismatches, two
    // unloadable values.
    let mut py3 = Client::connect(proxy.addr(1)).expect("connect py3 listener");
    let mut set = format!("set k 1 0 {}\r\n", PROTO4_DICT.len()).into_bytes();
    set.extend_from_slice(PROTO4_DICT);
    set.extend_from_slice(b"\r\n");
    assert_eq!(py3.call(&set, b"\r\n"), b"STORED\r\n");
    let mut py2 = Client::connect(proxy.addr(0)).expect("connect py2 listener");
    for _ in 0..2 {
        let got = py2.call(b"get k\r\n", b"END\r\n");
        assert!(
            got.starts_with(b"VALUE k 1 21\r\n\x80\x04"),
            "observe mode changes nothing"
        );
    }

    wait_for_value(
        &prom,
        r#"picklebridge_mismatches_total{route="legacy",kind="protocol_too_new"}"#,
        2.0,
        Duration::from_secs(30),
    );
    wait_for_value(
        &prom,
        r#"picklebridge_unloadable_values_total{route="legacy"}"#,
        2.0,
        Duration::from_secs(30),
    );
    // Prometheus stored the whole exposition, not just one family.
    assert!(!prom.query("picklebridge_build_info == 1").is_empty());

    // The README's example queries are valid PromQL over these families (query() asserts success).
    let queries = readme_queries();
    assert_eq!(queries.len(), 4, "{queries:?}");
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
