//! Metrics end to end: scrape the admin listener over real HTTP, check the exposition with
//! Debian's `promtool check metrics`; the proxy's `/readyz` following a real memcached going
//! away and coming back.
mod common;
mod metrics_common;

use std::net::SocketAddr;
use std::time::Duration;

use common::servers::{Memcached, Proxy};
use common::wait::wait_until;
use metrics_common::{http_get, promtool_check, sample, AdminServer};
use picklebridge::config::Config;
use picklebridge::metrics::{
    Command, Direction, FirewallAction, Metrics, MismatchKind, ReplyOutcome, Runtime, Side,
    TranscodeOutcome,
};
use picklebridge::pickle::Reason;
use picklebridge::upstream::ServerEvents;
use picklebridge::value::Refusal;

/// Records at least one sample in every family, with awkward but legal config names.
fn record_everything(m: &Metrics) {
    let l = m.listener("py2-11311", Runtime::Py2);
    let guard = l.accepted();
    l.rejected();
    l.connection_error(Side::Upstream);
    l.replies(ReplyOutcome::Hit, 3);
    l.observe_request(Duration::from_micros(700));
    l.requests("sessions:v2").inc(Command::Gets);
    l.requests(picklebridge::metrics::NO_ROUTE)
        .inc(Command::Stats);
    let r = m.route("sessions:v2", "main", "transcode");
    r.value_seen(
        Direction::Fetch,
        picklebridge::metrics::PickleProtocol::P5,
        picklebridge::metrics::Writer::Py3,
    );
    r.mismatch(MismatchKind::Py3OnlyGlobal);
    r.transcoded(
        Direction::Store,
        TranscodeOutcome::Rewritten,
        120,
        100,
        Duration::from_micros(9),
    );
    r.refused(
        Direction::Fetch,
        Refusal::Pickle(Reason::NewobjEx),
        50,
        Duration::from_micros(4),
    );
    r.unreadable_miss();
    r.unsafe_global(FirewallAction::Observed);
    let p = m.pool("main");
    p.observe_upstream(Duration::from_micros(400));
    let s = p.server("127.0.0.1:11211");
    s.connected();
    s.connect_failed();
    s.timed_out();
    s.failed();
    m.config_reloaded();
    m.config_reload_failed();
    drop(guard);
}

#[test]
fn admin_listener_serves_every_family_and_promtool_finds_nothing() {
    let registry = prometheus::Registry::new();
    let m = Metrics::register(&registry).expect("register");
    record_everything(&m);
    let admin = AdminServer::start(registry, || true);

    let r = http_get(admin.addr(), "/metrics").expect("scrape");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let families = r.body.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(families, 29, "every family is exposed:\n{}", r.body);
    assert_eq!(
        sample(
            &r.body,
            r#"picklebridge_mismatches_total{kind="py3_only_global",route="sessions:v2"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &r.body,
            r#"picklebridge_transcode_refusals_total{reason="newobj_ex",route="sessions:v2"}"#
        ),
        Some(1.0)
    );

    let (ok, report) = promtool_check(&r.body);
    assert!(
        ok && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );

    assert_eq!(
        http_get(admin.addr(), "/healthz").expect("healthz").status,
        200
    );
    assert_eq!(
        http_get(admin.addr(), "/readyz").expect("readyz").status,
        200
    );
}

#[test]
fn promtool_catches_a_bad_exposition() {
    // The check above is only worth something if promtool does flag problems.
    let (ok, report) = promtool_check(
        "# HELP picklebridge_things Things.\n# TYPE picklebridge_things counter\npicklebridge_things 1\n",
    );
    assert!(
        !ok && report.contains("_total"),
        "promtool accepted a counter without _total: {report}"
    );
}

/// py2 and py3 listeners, one pool, a transcoding default route and an observe-only route.
fn start(mc: &Memcached) -> Proxy {
    let toml = format!(
        r#"
[[listener]]
address = "127.0.0.1:0"
client = "py2"
name = "py2"

[[listener]]
address = "127.0.0.1:0"
client = "py3"
name = "py3"

[pool.main]
servers = ["{mc}"]

[[route]]
name = "default"
prefix = ""
pool = "main"
mode = "transcode"

[[route]]
name = "observed"
prefix = "obs:"
pool = "main"
mode = "observe"

[admin]
listen = "127.0.0.1:{admin_port}"
"#,
        mc = mc.addr_string(),
        admin_port = metrics_common::free_port(),
    );
    let config = Config::from_toml_str(&toml, "metrics_traffic.toml").expect("test config");
    Proxy::start(config)
}

fn scrape(admin: SocketAddr) -> String {
    let r = http_get(admin, "/metrics").expect("scrape /metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.body
}

/// The value of `series` in `text`, failing with the family's lines when it is absent.
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| {
        let family = series.split('{').next().unwrap_or(series);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(family)).collect();
        panic!("no sample {series}; the family has:\n{}", lines.join("\n"))
    })
}

#[test]
fn readyz_follows_upstream_reachability() {
    let mut mc = Memcached::start();
    let proxy = start(&mc);
    let admin = proxy.admin_addr().expect("admin listener configured");
    let status = |path: &str| http_get(admin, path).map(|r| r.status).unwrap_or(0);
    wait_until(
        Duration::from_secs(10),
        "/readyz 200 with memcached up",
        || (status("/readyz") == 200).then_some(()),
    );
    mc.kill();
    // Background reconnects fail within the connect timeout (1 s) plus back-off.
    wait_until(
        Duration::from_secs(15),
        "/readyz 503 with memcached down",
        || (status("/readyz") == 503).then_some(()),
    );
    assert_eq!(
        status("/healthz"),
        200,
        "the process is alive while not ready"
    );
    let text = scrape(admin);
    let server = mc.addr_string();
    assert_eq!(
        value(
            &text,
            &format!(r#"picklebridge_upstream_server_up{{pool="main",server="{server}"}}"#)
        ),
        0.0
    );
    assert!(
        value(
            &text,
            &format!(
                r#"picklebridge_upstream_connect_failures_total{{pool="main",server="{server}"}}"#
            )
        ) >= 1.0
    );
    mc.restart();
    wait_until(
        Duration::from_secs(15),
        "/readyz 200 after memcached returns",
        || (status("/readyz") == 200).then_some(()),
    );
    let text = scrape(admin);
    assert!(
        value(
            &text,
            &format!(r#"picklebridge_upstream_reconnects_total{{pool="main",server="{server}"}}"#)
        ) >= 1.0
    );
}
