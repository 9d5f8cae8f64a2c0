//! Unit tests: record through the handles, encode the registry to text, assert exact lines.

use std::collections::HashSet;
use std::time::Duration;

use bytes::BytesMut;
use prometheus::{Encoder, Registry, TextEncoder};

use super::*;
use crate::pickle::{self, Reason, Summary};
use crate::upstream::ConnectFailure;
use crate::value::{Refusal, ValueOutcome, ValueResult};

fn encode(registry: &Registry) -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("text encoding");
    String::from_utf8(out).expect("utf-8")
}

fn assert_lines(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            text.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{text}"
        );
    }
}

fn assert_no_line_starting(text: &str, prefix: &str) {
    assert!(
        !text.lines().any(|l| l.starts_with(prefix)),
        "unexpected {prefix:?} in:\n{text}"
    );
}

/// Records one event in every family, so that every family has a series to encode.
/// Returns the route handle: its `route_info` series lives as long as the handle.
fn touch_everything(m: &Metrics) -> RouteMetrics {
    use crate::upstream::ServerEvents;
    let l = m.listener("py2", Runtime::Py2);
    let _guard = l.accepted();
    l.rejected();
    l.connection_error(Side::Client);
    l.reply(ReplyOutcome::Hit);
    l.observe_request(Duration::from_micros(300));
    l.requests("sessions").inc(Command::Get);
    let r = m.route("sessions", "main", "transcode");
    r.value_seen(Direction::Fetch, PickleProtocol::P4, Writer::Py3);
    r.mismatch(MismatchKind::ProtocolTooNew);
    r.transcoded(
        Direction::Fetch,
        TranscodeOutcome::Rewritten,
        100,
        90,
        Duration::from_micros(3),
    );
    r.refused(
        Direction::Store,
        Refusal::Pickle(Reason::Malformed),
        10,
        Duration::from_micros(1),
    );
    r.unreadable_miss();
    r.bare_string_converted(pickle::Runtime::Py3);
    r.bare_string_refused(Refusal::ZlibCorrupt);
    r.unsafe_global(FirewallAction::Blocked);
    let p = m.pool("main");
    p.observe_upstream(Duration::from_micros(200));
    let s = p.server("127.0.0.1:11211");
    s.connected(false);
    s.connect_failed(ConnectFailure::Connect);
    s.timed_out();
    s.failed();
    m.config_reloaded();
    m.config_reload_failed();
    r
}

#[test]
fn every_family_has_help_a_unique_conforming_name() {
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let _route = touch_everything(&m);
    let families = registry.gather();
    assert_eq!(
        families.len(),
        32,
        "a family was added or lost: update this test and README"
    );
    let mut names = HashSet::new();
    for mf in &families {
        let name = mf.name();
        assert!(names.insert(name.to_owned()), "duplicate family {name}");
        assert!(!mf.help().trim().is_empty(), "{name} has no help text");
        let rest = name
            .strip_prefix(PREFIX)
            .unwrap_or_else(|| panic!("{name} lacks prefix"));
        assert!(
            rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && !rest.contains("__"),
            "{name} is not snake_case"
        );
        let is_counter = mf.get_field_type() == prometheus::proto::MetricType::COUNTER;
        assert_eq!(
            is_counter,
            name.ends_with("_total"),
            "{name}: counters and only counters end _total"
        );
        if mf.get_field_type() == prometheus::proto::MetricType::HISTOGRAM {
            assert!(
                name.ends_with("_seconds"),
                "{name}: histograms here measure seconds"
            );
        }
        for m in mf.get_metric() {
            for l in m.get_label() {
                assert!(
                    [
                        "listener",
                        "route",
                        "command",
                        "outcome",
                        "direction",
                        "protocol",
                        "writer",
                        "reader",
                        "kind",
                        "reason",
                        "action",
                        "pool",
                        "server",
                        "side",
                        "runtime",
                        "mode",
                        "version"
                    ]
                    .contains(&l.name()),
                    "{name}: unexpected label {}",
                    l.name()
                );
            }
        }
    }
}

#[test]
fn registering_twice_into_one_registry_fails() {
    let registry = Registry::new();
    Metrics::register(&registry).expect("first");
    assert!(Metrics::register(&registry).is_err());
}

#[test]
fn route_handles_record_exact_lines() {
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let r = m.route("sessions", "main", "observe");
    r.mismatch(MismatchKind::Py2StrNonAscii);
    r.mismatch(MismatchKind::Py2StrNonAscii);
    r.value_seen(
        Direction::Store,
        PickleProtocol::from_number(Some(2)),
        Writer::Py2,
    );
    r.transcoded(
        Direction::Fetch,
        TranscodeOutcome::Unchanged,
        40,
        40,
        Duration::from_micros(4),
    );
    r.refused(
        Direction::Fetch,
        Refusal::Pickle(Reason::Truncated),
        7,
        Duration::from_micros(30),
    );
    let text = encode(&registry);
    assert_lines(
        &text,
        &[
            "# HELP picklebridge_mismatches_total What fetched pickled values would meet in their reader as stored, by route and kind (a value counts once per kind; py3_text_to_py2 loads, as unicode); counted in transcode and observe modes.",
            "# TYPE picklebridge_mismatches_total counter",
            r#"picklebridge_mismatches_total{kind="py2_str_non_ascii",route="sessions"} 2"#,
            // Small label products exist at zero from the start, so rate() sees the first event.
            r#"picklebridge_mismatches_total{kind="protocol_too_new",route="sessions"} 0"#,
            r#"picklebridge_mismatches_total{kind="py3_only_global",route="sessions"} 0"#,
            r#"picklebridge_pickled_values_total{direction="store",protocol="2",route="sessions",writer="py2"} 1"#,
            r#"picklebridge_transcodes_total{direction="fetch",outcome="unchanged",route="sessions"} 1"#,
            r#"picklebridge_transcodes_total{direction="fetch",outcome="refused",route="sessions"} 1"#,
            r#"picklebridge_transcodes_total{direction="store",outcome="rewritten",route="sessions"} 0"#,
            r#"picklebridge_transcode_refusals_total{reason="truncated",route="sessions"} 1"#,
            r#"picklebridge_transcoder_input_bytes_total{direction="fetch",route="sessions"} 47"#,
            r#"picklebridge_transcoder_output_bytes_total{direction="fetch",route="sessions"} 47"#,
            r#"picklebridge_transcode_duration_seconds_bucket{direction="fetch",route="sessions",le="0.000005"} 1"#,
            r#"picklebridge_transcode_duration_seconds_bucket{direction="fetch",route="sessions",le="0.000025"} 1"#,
            r#"picklebridge_transcode_duration_seconds_bucket{direction="fetch",route="sessions",le="0.00005"} 2"#,
            r#"picklebridge_transcode_duration_seconds_bucket{direction="fetch",route="sessions",le="+Inf"} 2"#,
            r#"picklebridge_transcode_duration_seconds_count{direction="fetch",route="sessions"} 2"#,
            r#"picklebridge_unreadable_misses_total{route="sessions"} 0"#,
            r#"picklebridge_bare_strings_converted_total{reader="py2",route="sessions"} 0"#,
            r#"picklebridge_bare_strings_refused_total{reason="inflate_too_large",route="sessions"} 0"#,
            r#"picklebridge_unsafe_globals_total{action="blocked",route="sessions"} 0"#,
            r#"picklebridge_route_info{mode="observe",pool="main",route="sessions"} 1"#,
        ],
    );
    // Large label products are created on first use only.
    assert_no_line_starting(
        &text,
        r#"picklebridge_pickled_values_total{direction="fetch""#,
    );
}

#[test]
fn listener_pool_and_server_handles_record_exact_lines() {
    use crate::upstream::ServerEvents;
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let l = m.listener("py3", Runtime::Py3);
    let guard = l.accepted();
    let _second = l.accepted();
    drop(guard);
    l.rejected();
    let req = l.requests("default");
    req.inc(Command::Get);
    req.inc(Command::Get);
    req.inc(Command::MetaSet);
    l.requests(NO_ROUTE).inc(Command::Version);
    // Asking again for a route returns the same (already resolved) counters.
    l.requests("default").inc(Command::Get);
    l.replies(ReplyOutcome::Miss, 3);
    l.reply(ReplyOutcome::Hit);
    l.observe_request(Duration::from_millis(2));
    let p = m.pool("main");
    p.observe_upstream(Duration::from_millis(30));
    let s = p.server("127.0.0.1:11211");
    s.connected(false);
    s.disconnected();
    s.connected(true);
    s.timed_out();
    m.config_reloaded();
    let text = encode(&registry);
    assert_lines(
        &text,
        &[
            r#"picklebridge_client_connections_accepted_total{listener="py3"} 2"#,
            r#"picklebridge_client_connections_open{listener="py3"} 1"#,
            r#"picklebridge_client_connections_rejected_total{listener="py3"} 1"#,
            r#"picklebridge_client_connection_errors_total{listener="py3",side="upstream"} 0"#,
            r#"picklebridge_requests_total{command="get",listener="py3",route="default"} 3"#,
            r#"picklebridge_requests_total{command="ms",listener="py3",route="default"} 1"#,
            r#"picklebridge_requests_total{command="version",listener="py3",route=""} 1"#,
            r#"picklebridge_replies_total{listener="py3",outcome="miss"} 3"#,
            r#"picklebridge_replies_total{listener="py3",outcome="hit"} 1"#,
            r#"picklebridge_replies_total{listener="py3",outcome="upstream_timeout"} 0"#,
            r#"picklebridge_request_duration_seconds_bucket{listener="py3",le="0.001"} 0"#,
            r#"picklebridge_request_duration_seconds_bucket{listener="py3",le="0.0025"} 1"#,
            r#"picklebridge_upstream_request_duration_seconds_bucket{pool="main",le="0.025"} 0"#,
            r#"picklebridge_upstream_request_duration_seconds_bucket{pool="main",le="0.05"} 1"#,
            r#"picklebridge_upstream_connections_open{pool="main",server="127.0.0.1:11211"} 1"#,
            r#"picklebridge_upstream_reconnects_total{pool="main",server="127.0.0.1:11211"} 1"#,
            r#"picklebridge_upstream_timeouts_total{pool="main",server="127.0.0.1:11211"} 1"#,
            r#"picklebridge_upstream_connect_failures_total{pool="main",reason="connect",server="127.0.0.1:11211"} 0"#,
            r#"picklebridge_listener_info{listener="py3",runtime="py3"} 1"#,
            "picklebridge_config_reloads_total 1",
            "picklebridge_config_reload_failures_total 0",
            concat!(
                r#"picklebridge_build_info{version=""#,
                env!("CARGO_PKG_VERSION"),
                r#""} 1"#
            ),
        ],
    );
    s.disconnected();
    assert_lines(
        &encode(&registry),
        &[r#"picklebridge_upstream_connections_open{pool="main",server="127.0.0.1:11211"} 0"#],
    );
}

#[test]
fn stats_reply_reports_the_proxys_counters_in_memcached_format() {
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let l = m.listener("py2", Runtime::Py2);
    let _c = l.accepted();
    let req = l.requests("default");
    req.inc(Command::Set);
    req.inc(Command::Cas);
    req.inc(Command::Get);
    l.replies(ReplyOutcome::Hit, 2);
    l.reply(ReplyOutcome::Miss);
    l.reply(ReplyOutcome::Stored);
    let route = m.route("default", "main", "transcode");
    route.mismatch(MismatchKind::ProtocolTooNew);
    route.unsafe_global(FirewallAction::Blocked);
    route.unsafe_global(FirewallAction::Blocked);
    route.unsafe_global(FirewallAction::Observed);
    let mut out = BytesMut::new();
    stats::render_stats(&m, "1.6.18\r\nEND", &mut out);
    let text = std::str::from_utf8(&out).expect("ascii");
    assert!(
        text.starts_with(&format!("STAT pid {}\r\n", std::process::id())),
        "{text}"
    );
    assert!(text.ends_with("\r\nEND\r\n"), "{text}");
    for line in [
        "STAT version 1.6.18END",
        "STAT curr_connections 1",
        "STAT total_connections 1",
        "STAT cmd_get 3",
        "STAT cmd_set 2",
        "STAT get_hits 2",
        "STAT get_misses 1",
        "STAT picklebridge_mismatches 1",
        "STAT picklebridge_unloadable_values 0",
        "STAT picklebridge_unsafe_globals_blocked 2",
    ] {
        assert!(
            text.contains(&format!("{line}\r\n")),
            "missing {line:?} in {text}"
        );
    }
    // Every line but the last is `STAT <name> <value>` with no spaces in name or value.
    for line in text.trim_end_matches("END\r\n").split_terminator("\r\n") {
        assert_eq!(line.split(' ').count(), 3, "{line:?}");
    }
}

/// `stats reset` restarts the `stats` counters from zero, as memcached's, and leaves gauges
/// and the Prometheus counters alone.
#[test]
fn stats_reset_restarts_the_stats_counters_only() {
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let l = m.listener("py3", Runtime::Py3);
    let _c = l.accepted();
    l.requests("default").inc(Command::Set);
    l.replies(ReplyOutcome::Hit, 2);
    let lines = |m: &Metrics| {
        let mut out = BytesMut::new();
        stats::render_stats(m, "1.6.18", &mut out);
        String::from_utf8(out.to_vec()).expect("ascii")
    };
    stats::reset_stats(&m);
    l.reply(ReplyOutcome::Miss);
    let text = lines(&m);
    for line in [
        "STAT curr_connections 1",
        "STAT total_connections 0",
        "STAT cmd_get 1",
        "STAT cmd_set 0",
        "STAT get_hits 0",
        "STAT get_misses 1",
    ] {
        assert!(
            text.contains(&format!("{line}\r\n")),
            "missing {line:?} in {text}"
        );
    }
    assert_lines(
        &encode(&registry),
        &[r#"picklebridge_replies_total{listener="py3",outcome="hit"} 2"#],
    );
}

fn summary(declared: Option<u8>, max: u8) -> Summary {
    Summary {
        declared_protocol: declared,
        max_protocol: max,
        writer: pickle::Writer::Py3,
        py2_str_non_ascii: false,
        py2_binary_state: false,
        py3_text: false,
        py3_only_global: false,
        py2_only_global: false,
        globals: Default::default(),
        globals_complete: true,
    }
}

#[test]
fn record_covers_every_value_outcome() {
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let r = m.route("r", "main", "transcode");
    let us = Duration::from_micros(2);
    let result = |outcome, summary| ValueResult {
        outcome,
        summary,
        compressed: false,
    };
    let py3 = pickle::Runtime::Py3;
    r.record(
        Direction::Fetch,
        py3,
        &result(ValueOutcome::NotPickle, None),
        5,
        us,
    );
    let mut old = summary(None, 2);
    old.writer = pickle::Writer::Py2;
    old.py2_str_non_ascii = true;
    let rewritten = ValueOutcome::Rewritten(bytes::Bytes::from_static(b"0123456789ab"));
    r.record(Direction::Fetch, py3, &result(rewritten, Some(old)), 10, us);
    r.record(
        Direction::Store,
        py3,
        &result(ValueOutcome::Unchanged, Some(summary(Some(2), 2))),
        30,
        us,
    );
    r.record(
        Direction::Fetch,
        py3,
        &result(ValueOutcome::Refused(Refusal::ZlibCorrupt), None),
        7,
        us,
    );
    let text = encode(&registry);
    assert_lines(
        &text,
        &[
            r#"picklebridge_pickled_values_total{direction="fetch",protocol="2",route="r",writer="py2"} 1"#,
            r#"picklebridge_pickled_values_total{direction="store",protocol="2",route="r",writer="py3"} 1"#,
            r#"picklebridge_pickled_values_total{direction="fetch",protocol="unknown",route="r",writer="unknown"} 1"#,
            r#"picklebridge_mismatches_total{kind="py2_str_non_ascii",route="r"} 1"#,
            r#"picklebridge_transcodes_total{direction="fetch",outcome="rewritten",route="r"} 1"#,
            r#"picklebridge_transcodes_total{direction="store",outcome="unchanged",route="r"} 1"#,
            r#"picklebridge_transcodes_total{direction="fetch",outcome="refused",route="r"} 1"#,
            r#"picklebridge_transcode_refusals_total{reason="zlib_corrupt",route="r"} 1"#,
            r#"picklebridge_transcoder_input_bytes_total{direction="fetch",route="r"} 17"#,
            r#"picklebridge_transcoder_output_bytes_total{direction="fetch",route="r"} 19"#,
            r#"picklebridge_transcoder_output_bytes_total{direction="store",route="r"} 30"#,
        ],
    );
}

#[test]
fn route_value_counts_seen_values_and_fetch_mismatches() {
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let r = m.route("r", "main", "observe");
    let s = summary(Some(4), 4);
    r.value(Direction::Store, Some(&s), pickle::Runtime::Py2);
    r.value(Direction::Fetch, Some(&s), pickle::Runtime::Py2);
    r.value(Direction::Fetch, None, pickle::Runtime::Py2);
    // Two kinds that fail the load: one unloadable value.
    let mut two = summary(Some(4), 4);
    two.py3_only_global = true;
    r.value(Direction::Fetch, Some(&two), pickle::Runtime::Py2);
    // Text only: loads (as `unicode`), so not unloadable.
    let mut text_only = summary(Some(2), 2);
    text_only.py3_text = true;
    r.value(Direction::Fetch, Some(&text_only), pickle::Runtime::Py2);
    let text = encode(&registry);
    assert_lines(
        &text,
        &[
            r#"picklebridge_pickled_values_total{direction="store",protocol="4",route="r",writer="py3"} 1"#,
            r#"picklebridge_pickled_values_total{direction="fetch",protocol="4",route="r",writer="py3"} 2"#,
            r#"picklebridge_pickled_values_total{direction="fetch",protocol="unknown",route="r",writer="unknown"} 1"#,
            r#"picklebridge_mismatches_total{kind="protocol_too_new",route="r"} 2"#,
            r#"picklebridge_mismatches_total{kind="py3_only_global",route="r"} 1"#,
            r#"picklebridge_mismatches_total{kind="py3_text_to_py2",route="r"} 1"#,
            r#"picklebridge_unloadable_values_total{route="r"} 2"#,
        ],
    );
}

#[test]
fn server_events_drive_upstream_families() {
    use crate::upstream::ServerEvents;
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let s = m.pool("p").server("127.0.0.1:1");
    // Two connections of the server come up: not reconnects.
    s.connected(false);
    s.connected(false);
    s.failed();
    s.disconnected();
    s.connect_failed(ConnectFailure::Connect);
    s.connected(true);
    s.timed_out();
    assert_lines(
        &encode(&registry),
        &[
            r#"picklebridge_upstream_connections_open{pool="p",server="127.0.0.1:1"} 2"#,
            r#"picklebridge_upstream_reconnects_total{pool="p",server="127.0.0.1:1"} 1"#,
            r#"picklebridge_upstream_errors_total{pool="p",server="127.0.0.1:1"} 1"#,
            r#"picklebridge_upstream_connect_failures_total{pool="p",reason="connect",server="127.0.0.1:1"} 1"#,
            r#"picklebridge_upstream_timeouts_total{pool="p",server="127.0.0.1:1"} 1"#,
        ],
    );
}

#[test]
fn server_up_is_0_from_a_failed_connect_until_one_succeeds() {
    use crate::upstream::ServerEvents;
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let s = m.pool("a").server("127.0.0.1:1");
    let up =
        |v: u8| format!(r#"picklebridge_upstream_server_up{{pool="a",server="127.0.0.1:1"}} {v}"#);
    assert_lines(&encode(&registry), &[&up(1)]);
    s.connect_failed(ConnectFailure::Connect);
    assert_lines(&encode(&registry), &[&up(0)]);
    s.connected(false);
    assert_lines(&encode(&registry), &[&up(1)]);
}

#[test]
fn route_info_follows_the_live_route_tables() {
    let registry = Registry::new();
    let m = Metrics::register(&registry).expect("register");
    let old = m.route("sessions", "main", "observe");
    // A reload flips the route to transcode; the old table is still in use for a moment.
    let new = m.route("sessions", "main", "transcode");
    let again = m.route("sessions", "main", "transcode");
    let text = encode(&registry);
    assert_lines(
        &text,
        &[
            r#"picklebridge_route_info{mode="observe",pool="main",route="sessions"} 1"#,
            r#"picklebridge_route_info{mode="transcode",pool="main",route="sessions"} 1"#,
        ],
    );
    old.mismatch(MismatchKind::ProtocolTooNew);
    drop(old);
    drop(again);
    let text = encode(&registry);
    assert_no_line_starting(&text, r#"picklebridge_route_info{mode="observe""#);
    assert_lines(
        &text,
        &[
            r#"picklebridge_route_info{mode="transcode",pool="main",route="sessions"} 1"#,
            // Counters stay.
            r#"picklebridge_mismatches_total{kind="protocol_too_new",route="sessions"} 1"#,
        ],
    );
    drop(new);
    assert_no_line_starting(&encode(&registry), "picklebridge_route_info{");
}
