//! `picklebridge inspect` (not yet written).
use std::process::ExitCode;

/// Arguments of `picklebridge inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("picklebridge inspect: not implemented yet");
    ExitCode::from(70)
}
