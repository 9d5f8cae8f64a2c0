//! Metrics end to end: scrape the admin listener over real HTTP and check the exposition with
//! Debian's `promtool check metrics`; real traffic (real memcached, real CPython 2.7 and 3
//! clients through the proxy's py2 and py3 listeners, values of every mismatch kind) asserted
//! through the scraped counters and the memcache `stats` command; `/readyz` following a real
//! memcached going away and coming back.
mod common;
mod metrics_common;

use std::net::SocketAddr;
use std::time::Duration;

use common::python::{self, Py};
use common::servers::{two_listener_toml, Client, Memcached, Proxy};
use common::wait::wait_until;
use metrics_common::{http_get, promtool_check, sample, AdminServer};
use picklebridge::config::Config;
use picklebridge::metrics::{
    Command, Direction, FirewallAction, Metrics, MismatchKind, ReplyOutcome, RouteMetrics, Runtime,
    Side, TranscodeOutcome,
};
use picklebridge::pickle::Reason;
use picklebridge::upstream::{ConnectFailure, ServerEvents};
use picklebridge::value::Refusal;

const PY_TIMEOUT: Duration = Duration::from_secs(60);

/// CPython 3 `pickle.dumps(C(), 4)` of a `__main__.C` whose `__getnewargs_ex__` returns
/// `((), {'a': 1})`: uses NEWOBJ_EX, which the transcoder refuses for Py2.
const NEWOBJ_EX: &[u8] = b"\x80\x04\x95\x26\x00\x00\x00\x00\x00\x00\x00\x8c\x08__main__\x94\x8c\x01C\x94\x93\x94)}\x94\x8c\x01a\x94K\x01s\x92\x94}\x94h\x04K\x00sb.";

/// CPython 2.7 `cPickle.dumps(sets.Set([1]), 2)`: `sets` is gone from Python 3.
const SETS_SET: &[u8] = b"\x80\x02csets\nSet\nq\x01)\x81q\x02}q\x03K\x01\x88s\x85b.";

/// Records at least one sample in every family, with awkward but legal config names.
/// Returns the route handle: its `route_info` series lives as long as the handle.
fn record_everything(m: &Metrics) -> RouteMetrics {
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
    r.bare_string_converted(picklebridge::pickle::Runtime::Py2);
    r.unsafe_global(FirewallAction::Observed);
    let p = m.pool("main");
    p.observe_upstream(Duration::from_micros(400));
    let s = p.server("127.0.0.1:11211");
    s.connected(false);
    s.connect_failed(ConnectFailure::Connect);
    s.timed_out();
    s.failed();
    m.config_reloaded();
    m.config_reload_failed();
    drop(guard);
    r
}

#[test]
fn admin_listener_serves_every_family_and_promtool_finds_nothing() {
    let registry = prometheus::Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let _route = record_everything(&m);
    let admin = AdminServer::start(registry, || true);

    let r = http_get(admin.addr(), "/metrics").expect("scrape");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let families = r.body.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(families, 32, "every family is exposed:\n{}", r.body);
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
        r#"{listeners}

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
        listeners = two_listener_toml(mc),
        admin_port = common::ports::free_port(),
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

/// Runs scripts/check_clients.py under `py`; asserts it exits 0; returns its stdout.
fn clients(py: Py, args: &[&str]) -> String {
    let mut full = vec!["scripts/check_clients.py"];
    full.extend_from_slice(args);
    let out = python::run(py, &full, b"", PY_TIMEOUT);
    out.assert_ok(&format!(
        "{} check_clients.py {}",
        py.as_str(),
        args.join(" ")
    ));
    out.stdout_str()
}

#[test]
fn real_py2_and_py3_traffic_counts_every_mismatch_kind() {
    let mc = Memcached::start();
    let proxy = start(&mc);
    let (py2, py3) = (proxy.addr(0).to_string(), proxy.addr(1).to_string());
    let admin = proxy.admin_addr().expect("admin listener configured");

    // Writers: Py3 with protocol 4 (Django's default on 3.8+), Py2 with protocol 2.
    clients(
        Py::Py3,
        &[
            "set",
            "--server",
            &py3,
            "--client",
            "memcache",
            "--protocol",
            "4",
            "--prefix",
            "obs:",
            "text_dict",
            "datetime_utc",
        ],
    );
    clients(
        Py::Py2,
        &[
            "set",
            "--server",
            &py2,
            "--client",
            "memcache",
            "--protocol",
            "2",
            "--prefix",
            "obs:",
            "str_in_containers",
            "datetime_naive",
        ],
    );

    // Readers of the other runtime, on the observe route: the values reach them unchanged and
    // fail exactly as they would straight from memcached.
    let seen_by_py2 = clients(
        Py::Py2,
        &["raw", "--server", &py2, "obs:text_dict", "obs:datetime_utc"],
    );
    assert_eq!(
        seen_by_py2
            .matches("unsupported pickle protocol: 4")
            .count(),
        2,
        "observe mode must not rewrite:\n{seen_by_py2}"
    );
    let seen_by_py3 = clients(
        Py::Py3,
        &[
            "raw",
            "--server",
            &py3,
            "obs:str_in_containers",
            "obs:datetime_naive",
        ],
    );
    assert_eq!(
        seen_by_py3.matches("UnicodeDecodeError").count(),
        2,
        "observe mode must not rewrite:\n{seen_by_py3}"
    );

    // The transcoding route: a Py3 value read correctly by Py2.
    clients(
        Py::Py3,
        &[
            "set",
            "--server",
            &py3,
            "--client",
            "memcache",
            "--protocol",
            "4",
            "--prefix",
            "tc:",
            "text_dict",
        ],
    );
    clients(
        Py::Py2,
        &[
            "get",
            "--server",
            &py2,
            "--client",
            "memcache",
            "--writer",
            "py3",
            "--prefix",
            "tc:",
            "text_dict",
        ],
    );

    let text = scrape(admin);
    let m = |s: &str| value(&text, s);
    // Every mismatch kind, on the route that observed it.
    assert_eq!(
        m(r#"picklebridge_mismatches_total{kind="protocol_too_new",route="observed"}"#),
        2.0
    );
    // text_dict and datetime_utc (its tzinfo pickles text) both carry Py3 text.
    assert_eq!(
        m(r#"picklebridge_mismatches_total{kind="py3_text_to_py2",route="observed"}"#),
        2.0
    );
    assert_eq!(
        m(r#"picklebridge_mismatches_total{kind="py3_only_global",route="observed"}"#),
        1.0
    );
    // str_in_containers, and datetime_naive whose binary state (year 2024 = b"\x07\xe8"...) is a
    // non-ASCII py2 str as well.
    assert_eq!(
        m(r#"picklebridge_mismatches_total{kind="py2_str_non_ascii",route="observed"}"#),
        2.0
    );
    assert_eq!(
        m(r#"picklebridge_mismatches_total{kind="py2_binary_payload",route="observed"}"#),
        1.0
    );
    // Four values fetched, each unloadable as stored: counted once each, where the kinds above
    // count six load-breaking mismatches (two on datetime_utc, two on datetime_naive).
    assert_eq!(
        m(r#"picklebridge_unloadable_values_total{route="observed"}"#),
        4.0
    );
    // The transcoding route's value was stored at protocol 2: its text loads (as unicode).
    assert_eq!(
        m(r#"picklebridge_unloadable_values_total{route="default"}"#),
        0.0
    );
    // Observe never rewrites; the transcoding route did (on store: store_protocol = 2).
    for dir in ["store", "fetch"] {
        assert_eq!(
            m(&format!(
                r#"picklebridge_transcodes_total{{direction="{dir}",outcome="rewritten",route="observed"}}"#
            )),
            0.0
        );
    }
    assert_eq!(
        m(
            r#"picklebridge_transcodes_total{direction="store",outcome="rewritten",route="default"}"#
        ),
        1.0
    );
    // What was seen: two protocol-4 values written by Py3 stored on the observe route.
    assert_eq!(
        m(
            r#"picklebridge_pickled_values_total{direction="store",protocol="4",route="observed",writer="py3"}"#
        ),
        2.0
    );
    assert!(
        m(r#"picklebridge_transcoder_input_bytes_total{direction="store",route="default"}"#) > 0.0
    );
    // Requests and replies by listener.
    assert_eq!(
        m(r#"picklebridge_requests_total{command="set",listener="py3",route="observed"}"#),
        2.0
    );
    assert_eq!(
        m(r#"picklebridge_requests_total{command="set",listener="py2",route="observed"}"#),
        2.0
    );
    assert!(m(r#"picklebridge_replies_total{listener="py2",outcome="hit"}"#) >= 3.0);
    assert!(m(r#"picklebridge_replies_total{listener="py3",outcome="stored"}"#) >= 3.0);
    assert!(m(r#"picklebridge_request_duration_seconds_count{listener="py2"}"#) >= 5.0);
    assert!(m(r#"picklebridge_client_connections_accepted_total{listener="py2"}"#) >= 3.0);
    // Upstream.
    let server = mc.addr_string();
    assert!(
        m(&format!(
            r#"picklebridge_upstream_connections_open{{pool="main",server="{server}"}}"#
        )) >= 1.0
    );
    assert_eq!(
        m(&format!(
            r#"picklebridge_upstream_server_up{{pool="main",server="{server}"}}"#
        )),
        1.0
    );
    assert!(m(r#"picklebridge_upstream_request_duration_seconds_count{pool="main"}"#) >= 8.0);
    assert_eq!(
        m(r#"picklebridge_route_info{mode="observe",pool="main",route="observed"}"#),
        1.0
    );
    assert_eq!(
        m(r#"picklebridge_listener_info{listener="py3",runtime="py3"}"#),
        1.0
    );

    // A value the transcoder refuses (NEWOBJ_EX has no protocol-2 form) is stored unchanged,
    // and a Py2 reader, who could not load it, gets a miss (on_unreadable = "miss").
    let mut c3 = Client::connect(proxy.addr(1)).expect("connect py3 listener");
    let mut set = format!("set tc:newobj_ex 1 0 {}\r\n", NEWOBJ_EX.len()).into_bytes();
    set.extend_from_slice(NEWOBJ_EX);
    set.extend_from_slice(b"\r\n");
    assert_eq!(c3.call(&set, b"\r\n"), b"STORED\r\n");
    let mut c2 = Client::connect(proxy.addr(0)).expect("connect py2 listener");
    assert_eq!(c2.call(b"get tc:newobj_ex\r\n", b"END\r\n"), b"END\r\n");
    let text = scrape(admin);
    let m = |s: &str| value(&text, s);
    assert_eq!(
        m(r#"picklebridge_transcode_refusals_total{reason="newobj_ex",route="default"}"#),
        2.0,
        "refused on store and on fetch"
    );
    assert_eq!(
        m(r#"picklebridge_transcodes_total{direction="store",outcome="refused",route="default"}"#),
        1.0
    );
    assert_eq!(
        m(r#"picklebridge_unreadable_misses_total{route="default"}"#),
        1.0
    );
    assert_eq!(
        m(r#"picklebridge_mismatches_total{kind="protocol_too_new",route="default"}"#),
        1.0
    );

    // The same the other way: a Python 2 value naming a global Python 3 lacks is a miss for the
    // Py3 reader, counted as that mismatch.
    let mut set = format!("set tc:sets 1 0 {}\r\n", SETS_SET.len()).into_bytes();
    set.extend_from_slice(SETS_SET);
    set.extend_from_slice(b"\r\n");
    assert_eq!(c2.call(&set, b"\r\n"), b"STORED\r\n");
    assert_eq!(c3.call(b"get tc:sets\r\n", b"END\r\n"), b"END\r\n");
    let text = scrape(admin);
    let m = |s: &str| value(&text, s);
    assert_eq!(
        m(r#"picklebridge_transcode_refusals_total{reason="py2_only_global",route="default"}"#),
        1.0,
        "refused on fetch"
    );
    assert_eq!(
        m(r#"picklebridge_unreadable_misses_total{route="default"}"#),
        2.0
    );
    assert_eq!(
        m(r#"picklebridge_mismatches_total{kind="py2_only_global",route="default"}"#),
        1.0
    );

    // Labels never carry keys.
    assert!(
        !text.contains("text_dict") && !text.contains("obs:"),
        "a key leaked into a label"
    );

    let (ok, report) = promtool_check(&text);
    assert!(
        ok && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );

    // The memcache `stats` command reports the same counters in memcached's format.
    let mut c = Client::connect(proxy.addr(0)).expect("connect py2 listener");
    let stats = String::from_utf8(c.call(b"stats\r\n", b"END\r\n")).expect("ascii stats");
    assert!(
        stats.starts_with("STAT pid ") && stats.ends_with("\r\nEND\r\n"),
        "{stats}"
    );
    let stat = |name: &str| -> f64 {
        stats
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("STAT {name} "))?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no STAT {name} in {stats}"))
    };
    assert_eq!(
        stat("get_hits"),
        m(r#"picklebridge_replies_total{listener="py2",outcome="hit"}"#)
            + m(r#"picklebridge_replies_total{listener="py3",outcome="hit"}"#)
    );
    assert_eq!(
        stat("picklebridge_mismatches"),
        text.lines()
            .filter(|l| l.starts_with("picklebridge_mismatches_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    );
    assert!(
        stat("cmd_set") >= 5.0 && stat("curr_connections") >= 1.0,
        "{stats}"
    );
}

#[test]
fn readyz_follows_upstream_reachability() {
    let mut mc = Memcached::start();
    let proxy = start(&mc);
    let admin = proxy.admin_addr().expect("admin listener configured");
    let status = |path: &str| http_get(admin, path).map(|r| r.status).unwrap_or(0);
    let server = mc.addr_string();
    let series = |name: &str| format!(r#"{name}{{pool="main",server="{server}"}}"#);
    let (open, reconnects) = (
        series("picklebridge_upstream_connections_open"),
        series("picklebridge_upstream_reconnects_total"),
    );
    // Both of the server's connections (`connections` defaults to 2) are up.
    let all_open = || (value(&scrape(admin), &open) == 2.0).then_some(());
    wait_until(
        Duration::from_secs(10),
        "/readyz 200 with memcached up",
        || (status("/readyz") == 200).then_some(()),
    );
    wait_until(Duration::from_secs(10), "2 open connections", all_open);
    assert_eq!(
        value(&scrape(admin), &reconnects),
        0.0,
        "first connections are not reconnects"
    );
    mc.kill();
    // Background reconnects fail within the connect timeout (1 s) plus back-off.
    wait_until(
        Duration::from_secs(15),
        "/readyz 503 with memcached down",
        || (status("/readyz") == 503).then_some(()),
    );
    // What README "Metrics" says it answers (the drain's 503 is checked in proxy_faults).
    assert_eq!(
        http_get(admin, "/readyz").expect("readyz").body,
        "not ready: a pool has no reachable server\n"
    );
    assert_eq!(
        status("/healthz"),
        200,
        "the process is alive while not ready"
    );
    // The connections memcached closed had answered nothing (none was asked): they are
    // reopened after the first back-off (50 ms), and that connect is refused.
    let failures = format!(
        r#"picklebridge_upstream_connect_failures_total{{pool="main",reason="connect",server="{server}"}}"#
    );
    let up = series("picklebridge_upstream_server_up");
    wait_until(
        Duration::from_secs(10),
        "server down, a refused reconnect",
        || {
            let text = scrape(admin);
            (value(&text, &up) == 0.0 && value(&text, &failures) >= 1.0).then_some(())
        },
    );
    mc.restart();
    wait_until(
        Duration::from_secs(15),
        "/readyz 200 after memcached returns",
        || (status("/readyz") == 200).then_some(()),
    );
    wait_until(
        Duration::from_secs(10),
        "2 open connections again",
        all_open,
    );
    // Each connection re-established at least once. (More is possible: a connection dropped
    // by the dying memcached may reconnect at once into its listen backlog, before the
    // listening socket closes too.)
    let n = value(&scrape(admin), &reconnects);
    assert!(n >= 2.0, "{n} reconnects");
}

/// Replies the proxy writes itself (parse errors, `mn`, `verbosity`, `stats`, a disabled
/// `flush_all`) count in `replies_total` like the ones memcached writes.
#[test]
fn replies_the_proxy_writes_itself_are_counted() {
    let mc = Memcached::start();
    let mut config = Config::quick(
        &[(
            "127.0.0.1:0".into(),
            picklebridge::config::ClientRuntime::Py3,
        )],
        &[mc.addr_string()],
    );
    config.commands.flush_all = false;
    let proxy = Proxy::start(config);
    let mut c = Client::connect(proxy.addr(0)).expect("connect");
    for (request, reply) in [
        (&b"bogus\r\n"[..], &b"ERROR\r\n"[..]),
        (
            b"set a 0 0 x\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"mn\r\n", b"MN\r\n"),
        (b"verbosity 1\r\n", b"OK\r\n"),
        (
            b"flush_all\r\n",
            b"SERVER_ERROR flush_all disabled by configuration\r\n",
        ),
    ] {
        assert_eq!(c.call(request, b"\r\n"), reply);
    }
    assert!(c.call(b"stats\r\n", b"END\r\n").starts_with(b"STAT pid "));
    let text = proxy.metrics_text();
    let listener = text
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("picklebridge_replies_total{listener=\"")?;
            rest.split_once('"').map(|(name, _)| name.to_owned())
        })
        .expect("a replies_total series");
    for (outcome, n) in [
        ("error", 1.0),
        ("client_error", 1.0),
        ("ok", 2.0),
        ("server_error", 1.0),
        ("info", 1.0),
    ] {
        let series =
            format!(r#"picklebridge_replies_total{{listener="{listener}",outcome="{outcome}"}}"#);
        assert_eq!(value(&text, &series), n, "{series}");
    }
}

/// Two listeners on `127.0.0.1:0` without names are labelled by the ports they bound, so their
/// series stay apart (review 2026-11-29: both were `py3-0`, and 3 + 7 gets on two ports showed as
/// one series of 10, with two `listener_info` rows for one name).
#[test]
fn port_0_listeners_get_a_label_each() {
    use picklebridge::config::ClientRuntime::Py3;
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[Py3, Py3], &[mc.addr_string()]);
    for (i, n) in [(0, 3), (1, 7)] {
        let mut c = Client::connect(proxy.addr(i)).expect("connect");
        for _ in 0..n {
            assert_eq!(c.call(b"get x\r\n", b"END\r\n"), b"END\r\n");
        }
    }
    let text = proxy.metrics_text();
    for (i, n) in [(0, 3.0), (1, 7.0)] {
        let name = format!("py3-{}", proxy.addr(i).port());
        let series = format!(
            r#"picklebridge_requests_total{{command="get",listener="{name}",route="default"}}"#
        );
        assert_eq!(value(&text, &series), n, "{series} in {text}");
        let info = format!(r#"picklebridge_listener_info{{listener="{name}",runtime="py3"}}"#);
        assert_eq!(value(&text, &info), 1.0, "{info}");
    }
    let rows = text
        .lines()
        .filter(|l| l.starts_with("picklebridge_listener_info{"));
    assert_eq!(rows.count(), 2);
}
