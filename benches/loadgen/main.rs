//! `loadgen`: a closed-loop memcache text-protocol load generator for `make bench-load`.
//!
//! A `[[bench]]` with `harness = false`, not an example or a binary, so that CI's
//! `cargo test --benches` compiles it AND runs it: called without a subcommand (as `cargo test`
//! and `cargo bench` do) it runs its self-checks and a tiny bounded load against a memcached it
//! starts on a free loopback port (about two seconds). `scripts/bench-load.sh` runs the built
//! executable with subcommands: `prefill`, `run` (one measured run, one JSON line out),
//! `report` (JSON lines to Markdown tables) and `free-port`.
//!
//! It does not start or stop the targets it measures (the script does), and it never retries:
//! an error or a miss is counted and reported, so a broken target cannot look fast.
#![forbid(unsafe_code)]

mod client;
mod histogram;
mod pickle4;
mod procstat;
mod reply;
mod report;
mod run;
mod smoke;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::workload::Load;

/// Closed-loop memcache load generator (see `scripts/bench-load.sh`).
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Store every key of a load's key space (run against memcached directly).
    Prefill {
        /// host:port of the server to fill.
        #[arg(long)]
        target: String,
        #[arg(long, value_enum)]
        load: Load,
        /// Number of keys.
        #[arg(long, default_value_t = 10_000)]
        keys: u64,
        /// Key prefix (default `bench:<load>:`).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// One measured run; prints one JSON line on stdout and a summary on stderr.
    Run(run::RunArgs),
    /// Reads JSON lines written by `run` and prints Markdown tables.
    Report {
        /// Files of JSON lines.
        files: Vec<std::path::PathBuf>,
    },
    /// Prints a free TCP port on 127.0.0.1.
    FreePort,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test` passes nothing; both may pass a filter.
    let bench = args.iter().any(|a| a == "--bench");
    let subcommands = [
        "prefill",
        "run",
        "report",
        "free-port",
        "help",
        "--help",
        "-h",
    ];
    if !args
        .get(1)
        .is_some_and(|a| subcommands.contains(&a.as_str()))
    {
        return smoke::run(bench);
    }
    match Cli::parse_from(args).command {
        Command::Prefill {
            target,
            load,
            keys,
            prefix,
        } => {
            let prefix = prefix.unwrap_or_else(|| load.default_prefix());
            let rt = run::runtime(1);
            match rt.block_on(client::prefill(&target, load, &prefix, keys)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("loadgen prefill: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => run::main(args),
        Command::Report { files } => report::main(&files),
        Command::FreePort => {
            match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                Ok(addr) => {
                    println!("{}", addr.port());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("loadgen free-port: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
