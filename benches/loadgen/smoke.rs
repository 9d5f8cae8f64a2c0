//! What `cargo test --benches` (and a bare `cargo bench`) runs: the self-checks of the sans-IO
//! parts, then every load for a moment against a real memcached started on a free loopback port,
//! asserting that requests flowed with no error, no miss and no wrong-length value.
//!
//! memcached is required, not optional: `make setup` installs it, and a missing binary fails
//! here with that hint rather than skipping (a skipped check would hide the missing dependency).

use std::net::TcpStream;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::run::{self, RunArgs};
use crate::workload::Load;
use crate::{client, histogram, pickle4, procstat, reply, report};

/// A memcached child process on a free loopback port, killed on drop.
struct Memcached {
    child: Child,
    addr: String,
}

impl Memcached {
    fn start() -> Memcached {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("no free loopback port")
            .port();
        let bin = ["/usr/bin/memcached", "memcached"]
            .into_iter()
            .find(|b| Command::new(b).arg("-V").output().is_ok())
            .expect("memcached not found: run `make setup` (apt-get install memcached)");
        let child = Command::new(bin)
            .args(["-l", "127.0.0.1", "-U", "0", "-m", "64", "-t", "1", "-p"])
            .arg(port.to_string())
            .arg("-u")
            .arg("root")
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start memcached");
        let addr = format!("127.0.0.1:{port}");
        let mut server = Memcached { child, addr };
        let start = Instant::now();
        while TcpStream::connect(&server.addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("memcached exited at start-up: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "memcached not ready after 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the self-checks and the tiny live run; `bench` (under `cargo bench`) runs longer.
pub fn run(bench: bool) -> ExitCode {
    histogram::self_check();
    reply::self_check();
    pickle4::self_check();
    procstat::self_check();
    let memcached = Memcached::start();
    let rt = run::runtime(1);
    let mut results = Vec::new();
    for load in Load::ALL {
        let keys = 200;
        rt.block_on(client::prefill(
            &memcached.addr,
            load,
            &load.default_prefix(),
            keys,
        ))
        .unwrap_or_else(|e| panic!("prefill {}: {e}", load.as_str()));
        let args = RunArgs {
            target: memcached.addr.clone(),
            label: "memcached".into(),
            load,
            scenario: None,
            keys,
            prefix: None,
            connections: 4,
            idle_connections: if load == Load::Small { 16 } else { 0 },
            depth: 4,
            warmup: if bench { 0.5 } else { 0.05 },
            duration: if bench { 2.0 } else { 0.25 },
            max_requests: if bench { 2_000_000 } else { 100_000 },
            threads: 1,
            pid: Some(memcached.child.id()),
            round: 1,
        };
        let r = rt
            .block_on(run::execute(&args))
            .unwrap_or_else(|e| panic!("run {}: {e}", load.as_str()));
        eprintln!("{}", run::summary(&r));
        assert!(r.requests > 0, "no request answered: {r:?}");
        assert_eq!((r.errors, r.misses, r.wrong_len), (0, 0, 0), "{r:?}");
        if load == Load::Pickle {
            // memcached returns what was stored: every value is still protocol 4.
            assert_eq!(r.proto4_values, r.hits, "{r:?}");
        }
        assert!(
            r.rss_kb.is_some_and(|k| k > 0) && r.cpu_s.is_some(),
            "{r:?}"
        );
        results.push(r);
    }
    let md = report::render(&results);
    assert!(md.contains("| memcached |"), "{md}");
    println!("{md}");
    println!(
        "loadgen smoke: ok (self-checks and {} live loads against memcached)",
        results.len()
    );
    ExitCode::SUCCESS
}
