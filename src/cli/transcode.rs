//! `picklebridge transcode`: one pickle from stdin to stdout, or many files into `--out-dir`.
//!
//! Exit codes: 0 rewritten or unchanged; 3 refused (the reason on stderr, nothing on stdout; in
//! batch mode: at least one file refused); 64 bad usage; 74 I/O error.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;

use crate::pickle::{self, Global, Outcome, Policy, Py2Text, Py2Utc, Py3Str, Runtime};

/// Exit code of a refused value.
pub const EXIT_REFUSED: u8 = 3;

/// Arguments of `picklebridge transcode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The reader of the output: py2 or py3.
    #[arg(long, value_parser = parse_runtime)]
    pub to: Runtime,
    /// For py2 readers: py3 text stays unicode (keep) or becomes a UTF-8 str (utf8).
    #[arg(long, value_parser = parse_py2_text, default_value = "keep")]
    pub py2_text: Py2Text,
    /// For py2 readers: comma-separated classic (old-style) classes, e.g. `app.models.Point`,
    /// written with OBJ and no constructor arguments (list none that defines __getinitargs__).
    #[arg(long, value_delimiter = ',', value_parser = parse_global)]
    pub py2_classic: Vec<Global>,
    /// The UTC tzinfo of py2 readers: none (datetime.timezone is refused for them) or pytz
    /// (timezone.utc becomes pytz.utc for py2 readers, a py2-written pytz.utc becomes
    /// timezone.utc for py3 readers).
    #[arg(long, value_parser = parse_py2_utc, default_value = "none")]
    pub py2_utc: Py2Utc,
    /// For py3 readers: py2 str becomes utf8-or-bytes, bytes or latin1 text.
    #[arg(long, value_parser = parse_py3_str, default_value = "utf8-or-bytes")]
    pub py3_str: Py3Str,
    /// Write one output file per input FILE into this directory (same file name).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Pickle files to convert (needs --out-dir); without them, stdin to stdout.
    pub files: Vec<PathBuf>,
}

fn parse_runtime(s: &str) -> Result<Runtime, String> {
    match s {
        "py2" => Ok(Runtime::Py2),
        "py3" => Ok(Runtime::Py3),
        _ => Err("expected py2 or py3".into()),
    }
}

fn parse_py2_text(s: &str) -> Result<Py2Text, String> {
    match s {
        "keep" => Ok(Py2Text::Keep),
        "utf8" => Ok(Py2Text::Utf8),
        _ => Err("expected keep or utf8".into()),
    }
}

fn parse_py2_utc(s: &str) -> Result<Py2Utc, String> {
    match s {
        "none" => Ok(Py2Utc::None),
        "pytz" => Ok(Py2Utc::Pytz),
        _ => Err("expected none or pytz".into()),
    }
}

fn parse_py3_str(s: &str) -> Result<Py3Str, String> {
    match s {
        "utf8-or-bytes" => Ok(Py3Str::Utf8OrBytes),
        "bytes" => Ok(Py3Str::Bytes),
        "latin1" => Ok(Py3Str::Latin1),
        _ => Err("expected utf8-or-bytes, bytes or latin1".into()),
    }
}

fn parse_global(s: &str) -> Result<Global, String> {
    s.trim().parse()
}

impl Args {
    /// The policy these arguments describe.
    pub fn policy(&self) -> Policy {
        let mut p = Policy::for_target(self.to);
        p.py2_text = self.py2_text;
        p.py3_str = self.py3_str;
        p.py2_classic = Arc::from(self.py2_classic.clone());
        p.py2_utc = self.py2_utc;
        p
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let policy = args.policy();
    match (&args.out_dir, args.files.is_empty()) {
        (None, true) => single(&policy),
        (Some(dir), false) => batch(&policy, dir, &args.files),
        (Some(_), true) => usage("--out-dir needs FILE arguments"),
        (None, false) => usage("FILE arguments need --out-dir DIR"),
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("picklebridge transcode: {msg}");
    ExitCode::from(super::EX_USAGE)
}

fn single(policy: &Policy) -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("picklebridge transcode: reading stdin: {e}");
        return ExitCode::from(super::EX_IOERR);
    }
    let input = Bytes::from(input);
    let result = pickle::transcode(&input, policy);
    let out = match &result.outcome {
        Outcome::Unchanged => &input,
        Outcome::Rewritten(b) => b,
        Outcome::Refused(reason) => {
            eprintln!("refused: {reason}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picklebridge transcode: writing stdout: {e}");
            ExitCode::from(super::EX_IOERR)
        }
    }
}

/// Per-file outcome counts of a batch run.
#[derive(Debug, Default)]
struct Tally {
    rewritten: usize,
    unchanged: usize,
    refused: usize,
    failed: usize,
}

fn batch(policy: &Policy, dir: &Path, files: &[PathBuf]) -> ExitCode {
    // Checked first, so that a refused batch leaves no trace (not even DIR): a DIR that does
    // not exist yet cannot hold an input.
    if let Err(msg) = check_outputs(dir, files) {
        return usage(&msg);
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("picklebridge transcode: creating {}: {e}", dir.display());
        return ExitCode::from(super::EX_IOERR);
    }
    let mut tally = Tally::default();
    let mut stdout = std::io::stdout().lock();
    for file in files {
        let line = match convert_file(policy, dir, file) {
            Ok(Outcome::Unchanged) => {
                tally.unchanged += 1;
                "unchanged".to_owned()
            }
            Ok(Outcome::Rewritten(_)) => {
                tally.rewritten += 1;
                "rewritten".to_owned()
            }
            Ok(Outcome::Refused(reason)) => {
                tally.refused += 1;
                format!("refused\t{reason}")
            }
            Err(e) => {
                tally.failed += 1;
                format!("error\t{e}")
            }
        };
        let _ = writeln!(stdout, "{}\t{line}", file.display());
    }
    let _ = writeln!(
        stdout,
        "{} files: {} rewritten, {} unchanged, {} refused, {} errors",
        files.len(),
        tally.rewritten,
        tally.unchanged,
        tally.refused,
        tally.failed
    );
    if tally.failed > 0 {
        ExitCode::from(super::EX_IOERR)
    } else if tally.refused > 0 {
        ExitCode::from(EXIT_REFUSED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Checks, before anything is written, that every output has its own name and that none is an
/// input: two FILEs with one file name (`a/x.pickle b/x.pickle`) would leave one output for two
/// inputs, and `--out-dir` naming an input's own directory would overwrite the input with its
/// conversion. Files without a file name, or that cannot be read, are reported per file later.
fn check_outputs(dir: &Path, files: &[PathBuf]) -> Result<(), String> {
    let mut seen: HashMap<&OsStr, &Path> = HashMap::new();
    for file in files {
        let Some(name) = file.file_name() else {
            continue;
        };
        if let Some(first) = seen.insert(name, file) {
            return Err(format!(
                "{} and {} would both be written to {}; convert them into separate directories",
                first.display(),
                file.display(),
                dir.join(name).display()
            ));
        }
        if same_file(file, &dir.join(name)) {
            return Err(format!(
                "{} would be overwritten by its own output; choose another --out-dir",
                file.display()
            ));
        }
    }
    Ok(())
}

/// Whether two paths name one existing file (through symlinks, `..` or hard links).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

/// Whether two paths name one existing file (through symlinks or `..`).
#[cfg(not(unix))]
fn same_file(a: &Path, b: &Path) -> bool {
    matches!(
        (std::fs::canonicalize(a), std::fs::canonicalize(b)),
        (Ok(x), Ok(y)) if x == y
    )
}

/// Converts one file; the output (also for unchanged values) goes to `dir/<file name>`, written
/// under a temporary name and renamed into place, so that the name never holds half a value.
fn convert_file(policy: &Policy, dir: &Path, file: &Path) -> std::io::Result<Outcome> {
    let input = Bytes::from(std::fs::read(file)?);
    let name = file
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let outcome = pickle::transcode(&input, policy).outcome;
    let out = match &outcome {
        Outcome::Unchanged => &input,
        Outcome::Rewritten(b) => b,
        Outcome::Refused(_) => return Ok(outcome),
    };
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".picklebridge-tmp");
    let tmp = dir.join(tmp);
    std::fs::write(&tmp, out)
        .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
    Ok(outcome)
}
