//! The `picklebridge` binary: check-config and serve exit 64 listing every problem, serve 69 for
//! a port in use; the one-line quick start serves; SIGHUP swaps routes from a valid file and keeps
//! them on a bad one; SIGTERM or SIGINT stops it with exit 0, and a SIGINT during the drain
//! at once; DNS lookups that hang do not hold the exit past the grace period.
mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::binary::{admin_get, ServeBin};
use common::ports::free_port;
use common::servers::{Client, Memcached};
use common::wait::wait_until;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_picklebridge"))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn bad_config_exits_64_with_every_problem() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[[listener]]\naddress = \"nowhere\"\nclient = \"py3\"\n[pool.a]\nservers = []\n[typo]\nx = 1").unwrap();
    for args in [vec!["check-config"], vec!["serve", "--config"]] {
        let out = bin().args(&args).arg(file.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for want in [
            "typo: unknown section",
            "listener[0].address",
            "pool.a.servers",
        ] {
            assert!(err.contains(want), "{args:?}: missing {want:?} in {err}");
        }
    }
    let ok = bin()
        .args([
            "check-config",
            "config/picklebridge.toml",
            "config/demo.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = bin()
        .args(["serve", "--listen", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

/// A value of the wrong type is reported under its key, and the table it is in is not then
/// reported as missing (`no pool named`), by check-config and serve alike.
#[test]
fn a_type_error_names_its_key_without_follow_ons() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let text = "[[listener]]\naddress = \"127.0.0.1:1\"\nclient = \"py3\"\n\
                [pool.main]\nservers = [\"127.0.0.1:2\"]\nconnections = \"2\"\n\
                [[route]]\nprefix = \"\"\npool = \"main\"\nmode = 5\n";
    write!(file, "{text}").unwrap();
    for args in [vec!["check-config"], vec!["serve", "--config"]] {
        let out = bin().args(&args).arg(file.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!(
            "{}: 2 problem(s)\n  \
             pool.main.connections: invalid type: string \"2\", expected usize\n  \
             route[0].mode: expected one of `transcode`, `observe`, `passthrough`, found integer 5\n",
            file.path().display()
        );
        assert_eq!(err, want, "{args:?}");
    }
}

/// With `[log] format = "json"`, what stops the start (a bad configuration: exit 64; a port in
/// use: exit 69) is one JSON object on one line, like the log's events, not plain text.
#[test]
fn start_up_errors_are_json_lines_with_log_format_json() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").to_string();
    let good = format!(
        "[[listener]]\naddress = \"{busy}\"\nclient = \"py3\"\n\
         [pool.main]\nservers = [\"127.0.0.1:1\"]\n[log]\nformat = \"json\"\n"
    );
    let bad = format!(
        "{good}[[route]]\nprefix = \"\"\npool = \"main\"\nmode = 5\n[timeouts]\nrequest_ms = 0\n"
    );
    for (text, code, message, want) in [
        (
            &bad,
            64,
            "invalid configuration",
            "found integer 5; timeouts.request_ms: must be",
        ),
        (&good, 69, "cannot listen", busy.as_str()),
    ] {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{text}").unwrap();
        let out = bin()
            .args(["serve", "--config"])
            .arg(file.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let event: serde_json::Value = serde_json::from_str(&err).expect("a JSON line");
        assert_eq!(event["level"], "ERROR", "{err}");
        assert_eq!(event["message"], message, "{err}");
        let error = event["error"].as_str().unwrap_or_default();
        assert!(error.contains(want), "{want} not in {err}");
    }
}

/// A listener or admin port another socket holds: exit 69 (EX_UNAVAILABLE) at start-up, naming
/// the address, rather than running without it.
#[test]
fn a_port_in_use_exits_69() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").to_string();
    let free = loopback(free_port()).to_string();
    for extra in [
        vec!["--listen", busy.as_str()],
        vec!["--listen", free.as_str(), "--admin", busy.as_str()],
    ] {
        let mut cmd = bin();
        cmd.args(["serve", "--client", "py3", "--upstream", "127.0.0.1:11211"])
            .args(&extra);
        let out = cmd.output().expect("run serve");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{extra:?}: {err}");
        assert!(err.contains(&busy), "{extra:?}: {err}");
    }
}

fn config_text(port: u16, upstream: &str, mode: &str) -> String {
    format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\nclient = \"py2\"\n\
         [pool.main]\nservers = [\"{upstream}\"]\n\
         [[route]]\nprefix = \"\"\npool = \"main\"\nmode = \"{mode}\"\n"
    )
}

#[test]
fn quick_start_serves_and_sigterm_or_sigint_stops() {
    let mc = Memcached::start();
    let upstream = mc.addr_string();
    for signal in ["-TERM", "-INT"] {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let args = [
            "--listen",
            &listen,
            "--client",
            "py3",
            "--upstream",
            &upstream,
        ];
        let mut serve = ServeBin::start_with(&args, None, &[], loopback(port));
        let mut c = Client::connect(serve.listen).unwrap();
        assert_eq!(
            c.call(b"set q 0 0 1\r\nx\r\nget q\r\n", b"END\r\n"),
            b"STORED\r\nVALUE q 0 1\r\nx\r\nEND\r\n"
        );
        serve.signal(signal);
        let status = serve.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{signal}: {}", serve.log());
    }
}

/// A request in flight to a server that never answers holds the drain for the grace period
/// (60 s here); a repeated SIGTERM leaves it draining, a SIGINT ends it at once with 130.
#[test]
fn sigint_ends_the_drain_at_once() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let upstream = silent.local_addr().expect("addr").to_string();
    let (got, requests) = std::sync::mpsc::channel();
    // Accepts the proxy's connections (bounded: it opens few) and answers nothing; each
    // connection reports what it read, then is held until the proxy closes it (or 60 s).
    std::thread::spawn(move || {
        for mut conn in silent.incoming().take(8).map_while(Result::ok) {
            let got = got.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                conn.set_read_timeout(Some(Duration::from_secs(60))).ok();
                let mut buf = [0u8; 256];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    let _ = got.send(buf[..n].to_vec());
                }
            });
        }
    });
    for first in ["-TERM", "-INT"] {
        let port = free_port();
        let toml = format!(
            "{}[timeouts]\nrequest_ms = 60000\nshutdown_grace_ms = 60000\n",
            config_text(port, &upstream, "transcode")
        );
        let mut serve = ServeBin::start(&toml, loopback(port));
        let mut c = Client::connect(serve.listen).unwrap();
        c.send(b"get k\r\n");
        let forwarded = requests.recv_timeout(Duration::from_secs(10));
        assert_eq!(forwarded.as_deref().ok(), Some(&b"get k\r\n"[..]));
        serve.signal(first);
        wait_until(Duration::from_secs(10), "the drain to start", || {
            serve.log().contains("draining connections").then_some(())
        });
        serve.signal("-TERM");
        wait_until(Duration::from_secs(10), "the repeated SIGTERM", || {
            serve.log().contains("SIGTERM received again").then_some(())
        });
        assert!(serve.is_running(), "{first}, -TERM: {}", serve.log());
        serve.signal("-INT");
        let status = serve.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(130), "{first}: {}", serve.log());
    }
}

#[test]
fn runtime_workers_sets_the_worker_threads() {
    let mc = Memcached::start();
    for workers in [1, 3] {
        let port = free_port();
        let text = config_text(port, &mc.addr_string(), "transcode");
        let toml = format!("{text}[runtime]\nworkers = {workers}\n");
        let mut serve = ServeBin::start(&toml, loopback(port));
        let mut c = Client::connect(serve.listen).unwrap();
        assert!(c.call(b"version\r\n", b"\r\n").starts_with(b"VERSION "));
        serve.signal("-TERM");
        serve.wait_exit(Duration::from_secs(10));
        let log = serve.log();
        let line = log.lines().find(|l| l.contains(" runtime")).unwrap_or("");
        let want = format!("workers={workers}");
        assert!(line.contains(&want), "{want} not in {line:?} ({log})");
    }
}

#[test]
fn sighup_swaps_routes_and_keeps_them_on_a_bad_file() {
    let mc = Memcached::start();
    let port = free_port();
    let admin_port = free_port();
    let admin = format!("127.0.0.1:{admin_port}");
    let toml = config_text(port, &mc.addr_string(), "transcode");
    let mut serve = ServeBin::start_with(&["--admin", &admin], Some(&toml), &[], loopback(port));
    let mut c = Client::connect(serve.listen).unwrap();
    // A protocol-4 pickle of [1] stored directly; the py2 listener rewrites it (transcode).
    let p4: &[u8] = b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94K\x01a.";
    let mut direct = Client::connect(mc.addr()).unwrap();
    let mut req = format!("set p 1 0 {}\r\n", p4.len()).into_bytes();
    req.extend_from_slice(p4);
    req.extend_from_slice(b"\r\n");
    assert_eq!(direct.call(&req, b"\r\n"), b"STORED\r\n");
    let fetch = |c: &mut Client| c.call(b"get p\r\n", b"END\r\n");
    assert!(
        !fetch(&mut c).windows(2).any(|w| w == b"\x80\x04"),
        "transcoded at first"
    );
    // Reload to observe: the stored bytes come back unchanged.
    let observe = config_text(port, &mc.addr_string(), "observe");
    std::fs::write(serve.config_path(), observe).unwrap();
    serve.signal("-HUP");
    wait_until(
        Duration::from_secs(10),
        "the observe route to apply",
        || {
            fetch(&mut c)
                .windows(2)
                .any(|w| w == b"\x80\x04")
                .then_some(())
        },
    );
    // A bad file keeps the observe routes (and is counted as a failed reload).
    std::fs::write(serve.config_path(), "[[listener]]\nmode = 1\n").unwrap();
    serve.signal("-HUP");
    wait_until(
        Duration::from_secs(10),
        "the failed reload to be counted",
        || {
            admin_get(admin_port, "/metrics")
                .1
                .lines()
                .any(|l| {
                    l.starts_with("picklebridge_config_reload_failures_total") && l.ends_with(" 1")
                })
                .then_some(())
        },
    );
    for _ in 0..20 {
        assert!(fetch(&mut c).windows(2).any(|w| w == b"\x80\x04"));
    }
    // One event, one line (plain format): the problems are joined, not on lines of their own.
    let log = serve.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reload failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains("3 problem(s): listener[0]: unknown field `mode`")
            && failed[0].contains("; listener[0]: missing field `address`; pool: at least one"),
        "{log}"
    );
    assert!(!log.lines().any(|l| l.starts_with(' ')), "{log}");
    serve.signal("-TERM");
    let status = serve.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", serve.log());
}

/// SIGTERM while DNS lookups of an upstream name hang: the process exits within the grace period
/// (plus the runtime's bounded shutdown), not after the resolver's timeouts. Before, dropping the
/// runtime waited for the blocking getaddrinfo calls: exit ~10 s after SIGTERM with a 1 s grace.
/// The resolver is a UDP socket of this test that never answers, named in a resolv.conf
/// bind-mounted over /etc/resolv.conf in a private mount namespace (`unshare -m`, root), so the
/// host's resolver is untouched.
#[test]
fn sigterm_exits_within_the_grace_period_while_dns_lookups_hang() {
    let silent = std::net::UdpSocket::bind("127.77.0.1:53")
        .expect("bind 127.77.0.1:53 for the silent resolver (needs root, as CI runs)");
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.77.0.1\noptions timeout:5 attempts:2\n",
    )
    .unwrap();
    let port = free_port();
    let toml = format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\nclient = \"py3\"\n\
         [pool.main]\nservers = [\"memcached.example.internal:11211\"]\n\
         [timeouts]\nshutdown_grace_ms = 1000\nconnect_ms = 500\n"
    );
    let mut unshare = Command::new("unshare");
    unshare
        .args(["-m", "sh", "-c"])
        .arg(r#"mount --bind "$0" /etc/resolv.conf && bin="$1" && shift && exec "$bin" serve "$@""#)
        .arg(&resolv)
        .arg(env!("CARGO_BIN_EXE_picklebridge"));
    let mut serve = ServeBin::start_command(unshare, &[], Some(&toml), &[], loopback(port));
    // Requests fail at once while the name does not resolve; lookups are in flight from the
    // start (the start-up check and every reconnect start one, each outliving its connect_ms).
    let mut c = Client::connect(serve.listen).unwrap();
    assert_eq!(
        c.call(b"set a 0 0 1\r\nx\r\n", b"\r\n"),
        b"SERVER_ERROR upstream unavailable\r\n"
    );
    let start = std::time::Instant::now();
    serve.signal("-TERM");
    let status = serve.wait_exit(Duration::from_secs(15));
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0), "{}", serve.log());
    assert!(
        took < Duration::from_millis(2500),
        "exit {took:?} after SIGTERM with shutdown_grace_ms = 1000:\n{}",
        serve.log()
    );
    drop(silent);
}
