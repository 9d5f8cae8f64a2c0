//! Turns the JSON lines of many runs into Markdown: one table per scenario (medians over the
//! interleaved rounds) and the issue-5 target checks, computed from the same figures.
//!
//! Target labels are the ones `scripts/bench-load.sh` uses: `memcached`, `twemproxy`,
//! `pb-passthrough`, `pb-transcode` (the targets' subjects) and `pb-passthrough-1w` (a table row
//! only); the 1 000-connection scenario is `conn1000`.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::run::RunResult;
use crate::workload::Load;

/// `loadgen report FILE...`.
pub fn main(files: &[PathBuf]) -> ExitCode {
    let mut results = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("loadgen report: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        };
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<RunResult>(line) {
                Ok(r) => results.push(r),
                Err(e) => {
                    eprintln!("loadgen report: {}:{}: {e}", file.display(), n + 1);
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    print!("{}", render(&results));
    ExitCode::SUCCESS
}

/// Median of `values` (mean of the middle two for an even count); `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// First-seen order of the distinct values of `key`.
fn distinct<'a>(results: &'a [RunResult], key: impl Fn(&'a RunResult) -> &'a str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for r in results {
        if !out.contains(&key(r)) {
            out.push(key(r));
        }
    }
    out
}

/// Runs of one scenario and target.
fn runs<'a>(results: &'a [RunResult], scenario: &str, label: &str) -> Vec<&'a RunResult> {
    results
        .iter()
        .filter(|r| r.scenario == scenario && r.label == label)
        .collect()
}

/// Median of `field` over the runs of one scenario and target.
fn med(
    results: &[RunResult],
    scenario: &str,
    label: &str,
    field: fn(&RunResult) -> Option<f64>,
) -> Option<f64> {
    median(
        runs(results, scenario, label)
            .into_iter()
            .filter_map(field)
            .collect(),
    )
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// Markdown tables for every scenario, then the target checks.
pub fn render(results: &[RunResult]) -> String {
    let mut md = String::new();
    for scenario in distinct(results, |r| &r.scenario) {
        let first = results.iter().find(|r| r.scenario == scenario);
        let Some(first) = first else { continue };
        let what = Load::ALL
            .iter()
            .find(|l| l.as_str() == first.load)
            .map_or("", |l| l.describe());
        let _ = writeln!(
            md,
            "\n#### `{scenario}`: {what}; {} connections{}, pipeline depth {}\n",
            first.connections,
            match first.idle_connections {
                0 => String::new(),
                n => format!(" + {n} idle"),
            },
            first.depth
        );
        md.push_str(
            "| target | ops/s (median) | ops/s per round | p50 µs | p99 µs | p99.9 µs | \
             CPU s / M req | RSS MB (end) | peak RSS MB | pickles rewritten | errors / misses |\n\
             |---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
        );
        for label in distinct(results, |r| &r.label) {
            let rs = runs(results, scenario, label);
            if rs.is_empty() {
                continue;
            }
            let per_round: Vec<String> = rs.iter().map(|r| format!("{:.0}", r.ops_per_s)).collect();
            let mb = |kb: Option<u64>| kb.map(|k| k as f64 / 1024.0);
            let peak = rs.iter().filter_map(|r| mb(r.hwm_kb)).reduce(f64::max);
            let bad: u64 = rs.iter().map(|r| r.errors).sum();
            let missed: u64 = rs.iter().map(|r| r.misses).sum();
            let hits: u64 = rs.iter().map(|r| r.hits).sum();
            let proto4: u64 = rs.iter().map(|r| r.proto4_values).sum();
            let rewritten = match first.load == Load::Pickle.as_str() && hits > 0 {
                true => format!(
                    "{:.0}%",
                    100.0 * (hits - proto4.min(hits)) as f64 / hits as f64
                ),
                false => "-".into(),
            };
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {rewritten} | {bad} / {missed} |",
                fmt_opt(med(results, scenario, label, |r| Some(r.ops_per_s)), 0),
                per_round.join(" / "),
                fmt_opt(med(results, scenario, label, |r| Some(r.p50_us)), 0),
                fmt_opt(med(results, scenario, label, |r| Some(r.p99_us)), 0),
                fmt_opt(med(results, scenario, label, |r| Some(r.p999_us)), 0),
                fmt_opt(med(results, scenario, label, |r| r.cpu_s_per_mreq), 2),
                fmt_opt(
                    med(results, scenario, label, |r| r
                        .rss_kb
                        .map(|k| k as f64 / 1024.0)),
                    1
                ),
                fmt_opt(peak, 1),
            );
        }
    }
    md.push_str(&targets(results));
    md
}

/// The issue-5 targets, evaluated on the medians.
fn targets(results: &[RunResult]) -> String {
    let mut rows = Vec::new();
    let ops = |s: &str, l: &str| med(results, s, l, |r| Some(r.ops_per_s));
    let p99 = |s: &str, l: &str| med(results, s, l, |r| Some(r.p99_us));
    let cpu = |s: &str, l: &str| {
        med(results, s, l, |r| r.cpu_s_per_mreq).map_or("-".into(), |c| format!("{c:.2}"))
    };
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    for load in Load::ALL.map(Load::as_str) {
        if let (Some(p), Some(t), Some(pl), Some(tl)) = (
            ops(load, "pb-passthrough"),
            ops(load, "twemproxy"),
            p99(load, "pb-passthrough"),
            p99(load, "twemproxy"),
        ) {
            rows.push(format!(
                "| passthrough ≥ twemproxy throughput, p99 no worse | {load} | {:.2}× ops/s; p99 {pl:.0} vs {tl:.0} µs; CPU s/M req {} vs {} | {} |",
                p / t,
                cpu(load, "pb-passthrough"),
                cpu(load, "twemproxy"),
                verdict(p >= t && pl <= tl)
            ));
        }
        if let (Some(x), Some(p)) = (ops(load, "pb-transcode"), ops(load, "pb-passthrough")) {
            let transcode_runs = runs(results, load, "pb-transcode");
            let hits: u64 = transcode_runs.iter().map(|r| r.hits).sum();
            let proto4: u64 = transcode_runs.iter().map(|r| r.proto4_values).sum();
            // On the pickle load the figure only means something if the rewrite really ran.
            let judged = if load == Load::Pickle.as_str() && (hits == 0 || proto4 > 0) {
                format!("**not shown**: {proto4} of {hits} replies still protocol 4 (no rewrite)")
            } else {
                verdict(x >= 0.85 * p).to_owned()
            };
            rows.push(format!(
                "| transcode within 15% of passthrough | {load} | {:.2}× ops/s; CPU s/M req {} vs {} | {judged} |",
                x / p,
                cpu(load, "pb-transcode"),
                cpu(load, "pb-passthrough"),
            ));
        }
    }
    for label in ["pb-passthrough", "pb-transcode"] {
        if let Some(rss) = med(results, "conn1000", label, |r| r.rss_kb.map(|k| k as f64)) {
            rows.push(format!(
                "| RSS < 50 MB at 1 000 connections | {label} | {:.1} MB | {} |",
                rss / 1024.0,
                verdict(rss < 50.0 * 1024.0)
            ));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "\n#### Targets (issue 5), from the medians above\n\n| target | load | measured | verdict |\n|---|---|---|---|\n{}\n",
        rows.join("\n")
    )
}
