//! The real `picklebridge serve` binary as a child process: configuration from a TOML string,
//! stderr (the log) captured to a file, ports picked free on loopback, killed on drop. For tests
//! that need what only a process shows: start-up behaviour, its log, its memory (`/proc`).
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::wait::{poll_until, wait_until};

/// A running `picklebridge serve`, killed on drop.
pub struct ServeBin {
    child: Child,
    log: tempfile::NamedTempFile,
    config: Option<tempfile::NamedTempFile>,
    /// The memcache listener the test configured (first `[[listener]]`).
    pub listen: SocketAddr,
}

impl ServeBin {
    /// Starts `serve --config FILE` holding `toml` and waits (bounded) until `listen` accepts
    /// connections. Panics with the log if the process exits first.
    pub fn start(toml: &str, listen: SocketAddr) -> ServeBin {
        ServeBin::start_with(&[], Some(toml), &[], listen)
    }

    /// Starts `serve ARGS`, then `--config FILE` holding `toml` when given, with `env` set and
    /// `RUST_LOG` unset unless `env` sets it; waits like [`ServeBin::start`].
    pub fn start_with(
        args: &[&str],
        toml: Option<&str>,
        env: &[(&str, &str)],
        listen: SocketAddr,
    ) -> ServeBin {
        ServeBin::start_command(serve_command(None), args, toml, env, listen)
    }

    /// Like [`ServeBin::start`], run by `sh` after `ulimit ULIMIT` (`"-Sn 64"`: a soft open-file
    /// limit of 64 for the proxy, as a service manager's would be).
    pub fn start_under_ulimit(ulimit: &str, toml: &str, listen: SocketAddr) -> ServeBin {
        ServeBin::start_command(serve_command(Some(ulimit)), &[], Some(toml), &[], listen)
    }

    /// Like [`ServeBin::start_with`], running `command`, which must run `picklebridge serve`
    /// with the arguments added to it (see [`serve_command`]).
    pub fn start_command(
        mut command: Command,
        args: &[&str],
        toml: Option<&str>,
        env: &[(&str, &str)],
        listen: SocketAddr,
    ) -> ServeBin {
        let config = toml.map(|toml| {
            let mut file = tempfile::NamedTempFile::new().expect("config file");
            file.write_all(toml.as_bytes()).expect("write config");
            file
        });
        let log = tempfile::NamedTempFile::new().expect("log file");
        command.args(args);
        if let Some(file) = &config {
            command.arg("--config").arg(file.path());
        }
        let child = command
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log handle"))
            .spawn()
            .expect("start picklebridge serve");
        let mut serve = ServeBin {
            child,
            log,
            config,
            listen,
        };
        wait_until(Duration::from_secs(30), "the proxy to listen", || {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("picklebridge exited with {status}:\n{}", serve.log());
            }
            TcpStream::connect_timeout(&listen, Duration::from_millis(200))
                .ok()
                .map(drop)
        });
        serve
    }

    /// Kills the process and returns everything it logged.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }

    /// The configuration file (for a test that rewrites it and sends SIGHUP).
    pub fn config_path(&self) -> &Path {
        self.config.as_ref().expect("started with a config").path()
    }

    /// Sends `sig` (`-HUP`, `-TERM`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} failed");
    }

    /// Waits (bounded) for the process to exit after a signal; panics with the log on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = &mut self.child;
        poll_until(timeout, || child.try_wait().expect("try_wait")).unwrap_or_else(|| {
            panic!(
                "picklebridge still running after {timeout:?}:\n{}",
                self.log()
            )
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything logged so far, without ANSI colour codes.
    pub fn log(&self) -> String {
        let raw = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw.as_str();
        while let Some(at) = rest.find("\x1b[") {
            out.push_str(&rest[..at]);
            let tail = &rest[at + 2..];
            rest = tail.find('m').map_or("", |end| &tail[end + 1..]);
        }
        out.push_str(rest);
        out
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), `None` once the process is gone.
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status
            .lines()
            .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
        line[field.len() + 1..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for ServeBin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `picklebridge serve`, or `sh -c 'ulimit ULIMIT && exec picklebridge serve ...'` (further
/// arguments go after `serve`).
pub fn serve_command(ulimit: Option<&str>) -> Command {
    let bin = env!("CARGO_BIN_EXE_picklebridge");
    match ulimit {
        None => {
            let mut c = Command::new(bin);
            c.arg("serve");
            c
        }
        Some(ulimit) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit {ulimit} && exec \"$0\" serve \"$@\""))
                .arg(bin);
            c
        }
    }
}

/// `GET path` from an admin listener on 127.0.0.1: (status code, body); `(0, "")` on any error
/// (for polling while the listener may not be up yet).
pub fn admin_get(port: u16, path: &str) -> (u16, String) {
    match super::http::http_get(SocketAddr::from(([127, 0, 0, 1], port)), path) {
        Ok(r) => (r.status, r.body),
        Err(_) => (0, String::new()),
    }
}

/// The sum of the samples of `name` carrying every one of `labels` (`pool="a"`, in any order
/// among the sample's labels); `None` when there is none.
pub fn labelled_sum(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let prefix = format!("{name}{{");
    let values: Vec<f64> = page
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once("} "))
        .filter(|(set, _)| {
            let set: Vec<&str> = set.split(',').collect();
            labels.iter().all(|l| set.contains(l))
        })
        .filter_map(|(_, value)| value.trim().parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}
