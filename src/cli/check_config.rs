//! `picklebridge check-config` (not yet written).
use std::process::ExitCode;

/// Arguments of `picklebridge check-config`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("picklebridge check-config: not implemented yet");
    ExitCode::from(70)
}
