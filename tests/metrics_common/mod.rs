//! Helpers shared by tests/metrics.rs and tests/metrics_prometheus.rs: `promtool check
//! metrics`, and a real Prometheus server on a free loopback port with a temporary storage
//! directory, killed on drop (the HTTP GET for scraping is `common::http`'s).
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;

pub use crate::common::http::http_get;
use crate::common::ports::free_port;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `promtool check metrics` on `text`; returns (success, combined output).
pub fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/promtool (Debian package `prometheus`, installed by `make setup`)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), report)
}

/// Finds the value of the sample line `series` (exact name and labels as encoded) in `text`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A real Prometheus server scraping one target, killed on drop.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `/usr/bin/prometheus` on a free loopback port scraping `target` every 500 ms,
    /// with storage in a temporary directory, and waits (bounded) until it is ready.
    pub fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: picklebridge\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=1h")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(
                "run /usr/bin/prometheus (Debian package `prometheus`, installed by `make setup`)",
            );
        let mut p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            if matches!(http_get(addr, "/-/ready"), Ok(r) if r.status == 200) {
                break;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited with {status}:\n{}", p.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus not ready after {:?}:\n{}",
                started.elapsed(),
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant PromQL query; returns the `data.result` array.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let r = http_get(
            self.addr,
            &format!("/api/v1/query?query={}", url_encode(promql)),
        )
        .expect("query prometheus");
        assert_eq!(r.status, 200, "query {promql}: {}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The health of the scrape target as Prometheus sees it (`up`, `down`, `unknown`), with the
    /// last scrape error.
    pub fn target_health(&self) -> String {
        let r = http_get(self.addr, "/api/v1/targets").expect("targets");
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        let t = &v["data"]["activeTargets"][0];
        format!("{} {}", t["health"], t["lastError"])
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `picklebridge::metrics::serve_admin` on its own runtime thread on `127.0.0.1:0`, stopped on
/// drop. `ready` answers `/readyz`.
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AdminServer {
    /// Serves `registry`.
    pub fn start(
        registry: prometheus::Registry,
        ready: impl Fn() -> bool + Send + Sync + 'static,
    ) -> AdminServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind admin");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send");
                let stop = async {
                    let _ = stop_rx.await;
                };
                let ready = move || {
                    if ready() {
                        Ok(())
                    } else {
                        Err("a pool has no reachable server")
                    }
                };
                picklebridge::metrics::serve_admin(listener, registry, ready, stop)
                    .await
                    .expect("admin server");
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("admin listener bound within 10 s");
        AdminServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
