//! The `picklebridge` binary: parses the command line and dispatches to [`picklebridge::cli`].
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use picklebridge::cli;

/// A memcache proxy that transcodes pickled values between Python 2 and Python 3 readers.
#[derive(Debug, Parser)]
#[command(name = "picklebridge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the memcache proxy.
    Serve(cli::serve::Args),
    /// Validate a configuration file and print every problem found.
    CheckConfig(cli::check_config::Args),
    /// Transcode pickles for a Python 2 or Python 3 reader (stdin to stdout, or many files).
    Transcode(cli::transcode::Args),
    /// Disassemble a pickle and print what picklebridge detects in it.
    Inspect(cli::inspect::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => cli::serve::run(args),
        Command::CheckConfig(args) => cli::check_config::run(args),
        Command::Transcode(args) => cli::transcode::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
    }
}
