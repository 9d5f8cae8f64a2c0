//! The proxy's own counters in memcached's `stats` reply format, for the `stats` command on a
//! listener. Only what the proxy can truthfully report: memcached's item and memory statistics
//! (curr_items, bytes, evictions...) belong to the upstream servers and are not invented here.
//!
//! protocol.txt, "General-purpose statistics": "the server sends a number of lines which look
//! like this: `STAT <name> <value>\r\n` The server terminates this list with the line `END\r\n`".
//! Counters are read back from the registered families, so the reply always agrees with
//! `/metrics`; collecting them costs a walk over the series, fine for a rare command.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use prometheus::core::Collector;

use super::labels::{Command, FirewallAction, ReplyOutcome, TranscodeOutcome};
use super::Metrics;

/// Sums every series of `family` whose label `label` satisfies `keep` (all series if `label` is
/// empty). Works for counters and gauges.
fn sum(family: &impl Collector, label: &str, keep: impl Fn(&str) -> bool) -> u64 {
    let mut total = 0.0;
    for mf in family.collect() {
        for m in mf.get_metric() {
            let selected = label.is_empty()
                || m.get_label()
                    .iter()
                    .any(|l| l.name() == label && keep(l.value()));
            if selected {
                total += m.get_counter().get_value() + m.get_gauge().get_value();
            }
        }
    }
    // Counter values are integers well below 2^53; gauges here never go negative.
    total.max(0.0) as u64
}

fn is_command(keep: impl Fn(Command) -> bool) -> impl Fn(&str) -> bool {
    move |v| Command::ALL.iter().any(|c| c.as_str() == v && keep(*c))
}

/// Lines `stats reset` leaves alone: identity, clock and gauges (memcached's reset keeps them too).
const NOT_RESET: &[&str] = &[
    "pid",
    "uptime",
    "time",
    "version",
    "pointer_size",
    "curr_connections",
    "picklebridge_upstream_connections",
];

/// The `stats` lines as (name, value) pairs, in reply order, counters counted from the last
/// `stats reset`. `version` is what the proxy reports as its version (e.g. the upstream
/// memcached's version string it answers `version` with).
pub fn stats_lines(metrics: &Metrics, version: &str) -> Vec<(&'static str, String)> {
    let mut lines = totals(metrics, version);
    let base = metrics
        .f
        .stats_base
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (name, value) in &mut lines {
        if let Some(&(_, at_reset)) = base.iter().find(|(n, _)| n == name) {
            let now: u64 = value.parse().unwrap_or(0);
            *value = now.saturating_sub(at_reset).to_string();
        }
    }
    lines
}

/// `stats reset`: the counters of the `stats` reply start again from zero, as memcached's do
/// (the Prometheus families are untouched).
pub fn reset_stats(metrics: &Metrics) {
    let base = totals(metrics, "")
        .into_iter()
        .filter(|(name, _)| !NOT_RESET.contains(name))
        .map(|(name, value)| (name, value.parse().unwrap_or(0)))
        .collect();
    *metrics
        .f
        .stats_base
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = base;
}

/// The `stats` lines with the counters' totals since start.
fn totals(metrics: &Metrics, version: &str) -> Vec<(&'static str, String)> {
    let f = &metrics.f;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let outcome = |o: ReplyOutcome| sum(&f.replies, "outcome", move |v| v == o.as_str());
    let transcodes = |o: TranscodeOutcome| sum(&f.transcodes, "outcome", move |v| v == o.as_str());
    let (hits, misses) = (outcome(ReplyOutcome::Hit), outcome(ReplyOutcome::Miss));
    let n = |v: u64| v.to_string();
    vec![
        ("pid", n(u64::from(std::process::id()))),
        ("uptime", n(metrics.uptime_secs())),
        ("time", n(now)),
        ("version", version.to_owned()),
        ("pointer_size", n(usize::BITS.into())),
        (
            "curr_connections",
            n(sum(&f.client_connections_open, "", |_| true)),
        ),
        (
            "total_connections",
            n(sum(&f.client_connections_accepted, "", |_| true)),
        ),
        (
            "rejected_connections",
            n(sum(&f.client_connections_rejected, "", |_| true)),
        ),
        ("cmd_get", n(hits + misses)),
        (
            "cmd_set",
            n(sum(&f.requests, "command", is_command(Command::is_storage))),
        ),
        (
            "cmd_flush",
            n(sum(
                &f.requests,
                "command",
                is_command(|c| c == Command::FlushAll),
            )),
        ),
        (
            "cmd_touch",
            n(sum(
                &f.requests,
                "command",
                is_command(|c| matches!(c, Command::Touch | Command::Gat | Command::Gats)),
            )),
        ),
        ("get_hits", n(hits)),
        ("get_misses", n(misses)),
        ("delete_hits", n(outcome(ReplyOutcome::Deleted))),
        ("touch_hits", n(outcome(ReplyOutcome::Touched))),
        (
            "picklebridge_values_rewritten",
            n(transcodes(TranscodeOutcome::Rewritten)),
        ),
        (
            "picklebridge_values_unchanged",
            n(transcodes(TranscodeOutcome::Unchanged)),
        ),
        (
            "picklebridge_values_refused",
            n(transcodes(TranscodeOutcome::Refused)),
        ),
        (
            "picklebridge_mismatches",
            n(sum(&f.mismatches, "", |_| true)),
        ),
        (
            "picklebridge_unloadable_values",
            n(sum(&f.unloadable_values, "", |_| true)),
        ),
        (
            "picklebridge_unreadable_misses",
            n(sum(&f.unreadable_misses, "", |_| true)),
        ),
        (
            "picklebridge_unsafe_globals_blocked",
            n(sum(&f.unsafe_globals, "action", |v| {
                v == FirewallAction::Blocked.as_str()
            })),
        ),
        (
            "picklebridge_upstream_connections",
            n(sum(&f.upstream_connections_open, "", |_| true)),
        ),
        (
            "picklebridge_upstream_errors",
            n(sum(&f.upstream_errors, "", |_| true)),
        ),
        (
            "picklebridge_upstream_timeouts",
            n(sum(&f.upstream_timeouts, "", |_| true)),
        ),
    ]
}

/// Appends the complete `stats` reply (`STAT name value\r\n` lines, then `END\r\n`) to `dst`.
pub fn render_stats(metrics: &Metrics, version: &str, dst: &mut BytesMut) {
    for (name, value) in stats_lines(metrics, version) {
        dst.put_slice(b"STAT ");
        dst.put_slice(name.as_bytes());
        dst.put_u8(b' ');
        // A version string from upstream could in theory carry CR/LF; never let it end the line.
        dst.extend(value.bytes().filter(|b| !b.is_ascii_control()));
        dst.put_slice(b"\r\n");
    }
    dst.put_slice(b"END\r\n");
}
