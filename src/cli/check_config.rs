//! `picklebridge check-config FILE...`: parse and validate configuration files, print every
//! problem with its TOML path, exit 64 (EX_USAGE) if any file has one.
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// Arguments of `picklebridge check-config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let mut ok = true;
    for file in &args.files {
        match Config::load(file) {
            Ok(c) => println!(
                "{}: ok ({} listener(s), {} pool(s), {} route(s))",
                file.display(),
                c.listeners.len(),
                c.pools.len(),
                c.effective_routes().len()
            ),
            Err(e) => {
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EX_USAGE)
    }
}
