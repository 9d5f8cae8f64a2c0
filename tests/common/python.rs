//! Locating and running the real CPython 2.7 and 3 interpreters that `make setup`
//! (scripts/setup-debian.sh) installs under `.cache/bin/`. `PB_PYTHON2` / `PB_PYTHON3` override the
//! paths. A missing interpreter FAILS the test with instructions; it is never a skip.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A Python runtime the tests drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Py {
    /// CPython 2.7.18 from Debian bullseye debs.
    Py2,
    /// CPython 3 in the project's virtualenv.
    Py3,
}

impl Py {
    /// `"py2"` or `"py3"`, as in fixture file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Py::Py2 => "py2",
            Py::Py3 => "py3",
        }
    }

    /// The other runtime.
    pub fn other(self) -> Py {
        match self {
            Py::Py2 => Py::Py3,
            Py::Py3 => Py::Py2,
        }
    }

    /// Path of the interpreter: `$PB_PYTHON2`/`$PB_PYTHON3`, else `.cache/bin/python{2,3}` of the
    /// repository.
    ///
    /// # Panics
    /// When the interpreter does not exist: the message says to run `make setup`.
    pub fn path(self) -> PathBuf {
        let (var, name) = match self {
            Py::Py2 => ("PB_PYTHON2", "python2"),
            Py::Py3 => ("PB_PYTHON3", "python3"),
        };
        let path = match std::env::var_os(var) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => repo_root().join(".cache/bin").join(name),
        };
        assert!(
            path.is_file(),
            "{} interpreter not found at {} (set {var} or run `make setup`, which installs \
             CPython 2.7 and the Python 3 virtualenv into .cache/)",
            self.as_str(),
            path.display()
        );
        path
    }
}

/// The repository root (`CARGO_MANIFEST_DIR`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What one interpreter run produced.
#[derive(Debug)]
pub struct PyOutput {
    /// Exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, lossily decoded.
    pub stderr: String,
}

impl PyOutput {
    /// stdout decoded lossily.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with both streams unless the run exited 0.
    pub fn assert_ok(&self, what: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed (exit {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.stdout_str(),
            self.stderr
        );
        self
    }
}

/// Runs `py args...` from the repository root with `stdin` fed in, killing it after `timeout`.
///
/// # Panics
/// When the interpreter is missing, cannot be started, or runs past `timeout`.
pub fn run(py: Py, args: &[&str], stdin: &[u8], timeout: Duration) -> PyOutput {
    run_path(&py.path(), args, stdin, timeout)
}

/// [`run`] for an interpreter given by path.
pub fn run_path(interp: &Path, args: &[&str], stdin: &[u8], timeout: Duration) -> PyOutput {
    let mut child = Command::new(interp)
        .args(args)
        .current_dir(repo_root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", interp.display()));
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A child that exits early closes the pipe; its exit status tells the story.
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for interpreter") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {:?} still running after {:?}; killed",
                interp.display(),
                args,
                start.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    PyOutput {
        code: status.code(),
        stdout,
        stderr,
    }
}
