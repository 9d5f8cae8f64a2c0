//! Subcommands of the `picklebridge` binary. Each file owns one subcommand: its clap `Args` and
//! a `run(args) -> ExitCode`. `main.rs` only dispatches.

pub mod check_config;
pub mod inspect;
pub mod serve;
pub mod transcode;

// Exit statuses from sysexits.h.

/// A bad configuration or bad arguments (`EX_USAGE`).
pub const EX_USAGE: u8 = 64;
/// A port that cannot be bound (`EX_UNAVAILABLE`).
pub const EX_UNAVAILABLE: u8 = 69;
/// An internal error: the metrics could not be registered (`EX_SOFTWARE`).
pub const EX_SOFTWARE: u8 = 70;
/// The system refused a thread, a signal handler or enough open files (`EX_OSERR`).
pub const EX_OSERR: u8 = 71;
/// A file or a standard stream could not be read or written (`EX_IOERR`).
pub const EX_IOERR: u8 = 74;
