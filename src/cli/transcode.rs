//! `picklebridge transcode` (not yet written).
use std::process::ExitCode;

/// Arguments of `picklebridge transcode`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("picklebridge transcode: not implemented yet");
    ExitCode::from(70)
}
