//! Subcommands of the `picklebridge` binary. Each file owns one subcommand: its clap `Args` and
//! a `run(args) -> ExitCode`. `main.rs` only dispatches.

pub mod check_config;
pub mod inspect;
pub mod serve;
pub mod transcode;

/// Exit status for a bad configuration or bad arguments (sysexits.h `EX_USAGE`).
pub const EX_USAGE: u8 = 64;
