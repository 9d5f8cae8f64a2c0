//! `picklebridge serve` (not yet written).
use std::process::ExitCode;

/// Arguments of `picklebridge serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("picklebridge serve: not implemented yet");
    ExitCode::from(70)
}
