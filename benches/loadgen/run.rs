//! One measured run: idle connections, then `connections` closed loops for warm-up + duration,
//! bounded by a request budget; CPU and memory of the target process sampled around the window.

use std::process::ExitCode;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{self, Plan, Stats};
use crate::procstat;
use crate::workload::Load;

/// Arguments of `loadgen run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// host:port of the target (memcached, twemproxy or picklebridge).
    #[arg(long)]
    pub target: String,
    /// Name of the target in reports (e.g. memcached, twemproxy, pb-passthrough).
    #[arg(long)]
    pub label: String,
    #[arg(long, value_enum)]
    pub load: Load,
    /// Scenario name in reports (default: the load's name).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Keys in the (pre-filled) key space.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Key prefix (default `bench:<load>:`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Active closed-loop connections.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Extra connections that send one get and then stay open, idle, for the whole run.
    #[arg(long, default_value_t = 0)]
    pub idle_connections: usize,
    /// Requests written per batch on each connection (pipeline depth).
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
    /// Unmeasured warm-up, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Measured time, seconds (the run also stops when the request budget is spent).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Request budget for warm-up + measured window together.
    #[arg(long, default_value_t = 20_000_000)]
    pub max_requests: i64,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// PID of the process under test (CPU seconds and RSS are read from /proc).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Round number, for interleaved A/B runs.
    #[arg(long, default_value_t = 1)]
    pub round: u32,
}

/// The result of one run: one JSON line.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    pub label: String,
    pub scenario: String,
    pub load: String,
    pub round: u32,
    pub connections: usize,
    pub idle_connections: usize,
    pub depth: usize,
    pub seconds: f64,
    pub requests: u64,
    pub ops_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub hits: u64,
    pub misses: u64,
    pub proto4_values: u64,
    pub wrong_len: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Target's utime+stime during the measured window.
    pub cpu_s: Option<f64>,
    pub cpu_s_per_mreq: Option<f64>,
    /// Target's resident set at the end of the window (idle connections still open).
    pub rss_kb: Option<u64>,
    /// Target's peak resident set since it started.
    pub hwm_kb: Option<u64>,
}

/// A tokio runtime with `threads` workers.
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime")
}

/// `loadgen run`: executes, prints, and fails when any error or miss was seen.
pub fn main(args: RunArgs) -> ExitCode {
    let result = match runtime(args.threads).block_on(execute(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen run: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("{}", summary(&result));
    match serde_json::to_string(&result) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("loadgen run: {e}"),
    }
    if result.errors > 0 || result.misses > 0 || result.wrong_len > 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// A one-line human summary.
pub fn summary(r: &RunResult) -> String {
    format!(
        "{:<16} {:<9} r{} {:>9.0} ops/s p50 {:>7.1} us p99 {:>7.1} us p99.9 {:>7.1} us \
         cpu/Mreq {:>6} rss {:>7} kB errors {} misses {}{}",
        r.label,
        r.scenario,
        r.round,
        r.ops_per_s,
        r.p50_us,
        r.p99_us,
        r.p999_us,
        r.cpu_s_per_mreq.map_or("-".into(), |c| format!("{c:.2}")),
        r.rss_kb.map_or("-".into(), |k| k.to_string()),
        r.errors,
        r.misses,
        r.first_error
            .as_deref()
            .map_or(String::new(), |e| format!(" (first: {e})")),
    )
}

/// Runs the load described by `args`.
///
/// # Errors
/// When idle connections cannot be opened or /proc of `--pid` cannot be read.
pub async fn execute(args: &RunArgs) -> Result<RunResult, String> {
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| args.load.default_prefix());
    let mut idle = tokio::task::JoinSet::new();
    for _ in 0..args.idle_connections {
        idle.spawn(client::idle_connection(args.target.clone(), prefix.clone()));
    }
    let mut held = Vec::with_capacity(args.idle_connections);
    while let Some(joined) = idle.join_next().await {
        held.push(joined.map_err(|e| e.to_string())??);
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup.max(0.0));
    let plan = Arc::new(Plan {
        load: args.load,
        prefix,
        keys: args.keys,
        depth: args.depth.max(1),
        measure_from,
        deadline: measure_from + Duration::from_secs_f64(args.duration.max(0.0)),
        budget: Arc::new(AtomicI64::new(args.max_requests)),
    });
    let mut active = tokio::task::JoinSet::new();
    for i in 0..args.connections {
        let seed = (args.round as u64) << 32 | i as u64;
        active.spawn(client::run_connection(
            args.target.clone(),
            plan.clone(),
            seed,
        ));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = args.pid.map(procstat::cpu_ticks).transpose()?;
    let mut stats = Stats::default();
    while let Some(joined) = active.join_next().await {
        stats.merge(joined.map_err(|e| e.to_string())?);
    }
    let seconds = measure_from.elapsed().as_secs_f64();
    let cpu_after = args.pid.map(procstat::cpu_ticks).transpose()?;
    let memory = args.pid.map(procstat::memory_kb).transpose()?;
    drop(held);

    let cpu_s = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / procstat::clock_ticks()),
        _ => None,
    };
    let us = |ns: u64| ns as f64 / 1000.0;
    Ok(RunResult {
        label: args.label.clone(),
        scenario: args
            .scenario
            .clone()
            .unwrap_or_else(|| args.load.as_str().to_owned()),
        load: args.load.as_str().to_owned(),
        round: args.round,
        connections: args.connections,
        idle_connections: args.idle_connections,
        depth: plan.depth,
        seconds,
        requests: stats.requests,
        ops_per_s: stats.requests as f64 / seconds.max(1e-9),
        p50_us: us(stats.hist.quantile(0.50)),
        p99_us: us(stats.hist.quantile(0.99)),
        p999_us: us(stats.hist.quantile(0.999)),
        max_us: us(stats.hist.max()),
        hits: stats.hits,
        misses: stats.misses(),
        proto4_values: stats.proto4,
        wrong_len: stats.wrong_len,
        errors: stats.errors,
        first_error: stats.first_error,
        cpu_s,
        cpu_s_per_mreq: cpu_s
            .filter(|_| stats.requests > 0)
            .map(|c| c * 1e6 / stats.requests as f64),
        rss_kb: memory.map(|m| m.0),
        hwm_kb: memory.map(|m| m.1),
    })
}
