//! The open-file limit at start-up, on the real binary: `serve` raises a low soft limit to what
//! the configuration needs (every client then gets an answer), and refuses to start, exit 71
//! naming both numbers, when the hard limit is too low.
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use common::binary::{serve_command, ServeBin};
use common::ports::free_port;
use common::servers::Memcached;
use common::wait::{poll_until, wait_until};

fn config(listen: SocketAddr, upstream: &str, limits: &str) -> String {
    format!(
        "[[listener]]\naddress = \"{listen}\"\nclient = \"py3\"\n\
         [pool.main]\nservers = [\"{upstream}\"]\n{limits}"
    )
}

/// The soft and hard "Max open files" of a process, from `/proc/<pid>/limits`.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// A soft limit of 64 with the default `max_connections = 4096` (systemd's default soft limit,
/// 1024, is below it too): before, clients past ~60 got no reply at all. Now the soft limit is
/// raised and 200 clients are all served.
#[test]
fn a_low_soft_limit_is_raised_and_every_client_is_served() {
    let mc = Memcached::start();
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let proxy =
        ServeBin::start_under_ulimit("-Sn 64", &config(listen, &mc.addr_string(), ""), listen);
    let (soft, hard) = open_file_limits(proxy.pid());
    assert!(
        soft >= 4096 + 64 && soft <= hard,
        "soft limit {soft} (hard {hard}):\n{}",
        proxy.log()
    );
    assert!(
        proxy.log().contains("open-file limit raised"),
        "{}",
        proxy.log()
    );
    let mut clients: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(listen).expect("connect"))
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"version\r\n").unwrap();
        let mut reply = [0u8; 8];
        c.read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("client {i}: no reply within 5 s ({e})"));
        assert_eq!(&reply, b"VERSION ", "client {i}");
    }
}

/// A hard limit below what the configuration needs: exit 71 (EX_OSERR) at start-up, naming what
/// it needs, the hard limit and the `max_connections` that would fit, as memcached refuses to
/// start when it cannot raise its limit for `-c`. A `max_connections` under that starts.
#[test]
fn a_hard_limit_too_low_exits_71_naming_both_numbers() {
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(config(listen, "127.0.0.1:1", "").as_bytes())
        .unwrap();
    let mut child = serve_command(Some("-n 512"))
        .arg("--config")
        .arg(file.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start picklebridge serve");
    let status = poll_until(Duration::from_secs(10), || child.try_wait().unwrap());
    if status.is_none() {
        let _ = child.kill();
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = status.unwrap_or_else(|| panic!("still running after 10 s:\n{stderr}"));
    assert_eq!(status.code(), Some(71), "{stderr}");
    // 4096 clients + 1 server x (2 + 4 + 20) upstream + 1 listener + 64 spare = 4187;
    // 512 - 91 = 421.
    for part in [
        "needs 4187 file descriptors",
        "hard limit (RLIMIT_NOFILE) is 512",
        "max_connections to at most 421",
    ] {
        assert!(stderr.contains(part), "{part:?} in:\n{stderr}");
    }

    let mc = Memcached::start();
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let limits = "[limits]\nmax_connections = 421\n";
    let proxy =
        ServeBin::start_under_ulimit("-n 512", &config(listen, &mc.addr_string(), limits), listen);
    assert_eq!(open_file_limits(proxy.pid()), (512, 512));
    let mut c = wait_until(Duration::from_secs(5), "a connection", || {
        TcpStream::connect(listen).ok()
    });
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"version\r\n").unwrap();
    let mut reply = [0u8; 8];
    c.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"VERSION ");
}
