//! Logs of the real `picklebridge serve` binary: `[log] format = "json"` gives one JSON object per
//! line naming every listener, pool and route at start-up; `RUST_LOG` overrides `[log] level`;
//! warnings about refused values and pickle-firewall blocks are rate-limited and name the route
//! and the reason or global, never the value's bytes or the key.
mod common;
mod metrics_common;

use std::time::Duration;

use common::binary::ServeBin;
use common::ports::free_port;
use common::servers::{Client, Memcached};
use common::wait::wait_until;
use metrics_common::http_get;

/// CPython 3 `pickle.dumps(C(), 4)` of a `__main__.C` with `__getnewargs_ex__` (NEWOBJ_EX: the
/// transcoder refuses it for Py2).
/// Protocol 0 `os.system('echo FIREWALLARG')` (denied by the pickle firewall; never loaded here).
const OS_SYSTEM: &[u8] = b"cos\nsystem\n(S'echo FIREWALLARG'\ntR.";

const NEWOBJ_EX: &[u8] = b"\x80\x04\x95\x26\x00\x00\x00\x00\x00\x00\x00\x8c\x08__main__\x94\x8c\x01C\x94\x93\x94)}\x94\x8c\x01a\x94K\x01s\x92\x94}\x94h\x04K\x00sb.";

fn config(mc: &Memcached, py2: u16, py3: u16, admin: u16, level: &str) -> String {
    format!(
        r#"
[[listener]]
address = "127.0.0.1:{py2}"
client = "py2"
name = "py2"

[[listener]]
address = "127.0.0.1:{py3}"
client = "py3"
name = "py3"

[pool.main]
servers = ["{mc}"]

[[route]]
name = "objects"
prefix = "obj:"
pool = "main"
mode = "transcode"

[log]
level = "{level}"
format = "json"

[admin]
listen = "127.0.0.1:{admin}"
"#,
        mc = mc.addr_string()
    )
}

/// The binary with `config`, `RUST_LOG` set to `rust_log` or unset, listening on `port`.
fn start(config: &str, rust_log: Option<&str>, port: u16) -> ServeBin {
    let env: Vec<(&str, &str)> = rust_log.map(|f| ("RUST_LOG", f)).into_iter().collect();
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    ServeBin::start_with(&[], Some(config), &env, listen)
}

fn wait_ready(admin: u16) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin));
    wait_until(
        Duration::from_secs(20),
        "picklebridge serve to answer /healthz",
        || http_get(addr, "/healthz").ok().filter(|r| r.status == 200),
    );
}

/// Stores `value` (pickle flag) under `key` through `setter`, then asserts `getter` gets a miss.
fn set_then_miss(setter: &mut Client, getter: &mut Client, key: &str, value: &[u8]) {
    let mut set = format!("set {key} 1 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(setter.call(&set, b"\r\n"), b"STORED\r\n", "set {key}");
    assert_eq!(
        getter.call(format!("get {key}\r\n").as_bytes(), b"END\r\n"),
        b"END\r\n",
        "get {key}"
    );
}

/// The WARN lines whose `field` is `value`, after asserting that the limiter (10 a minute) let
/// through at least one and at most 10 of the `events`.
fn rate_limited<'a>(
    lines: &'a [serde_json::Value],
    (field, value): (&str, &str),
    events: usize,
    log: &str,
) -> Vec<&'a serde_json::Value> {
    let warnings: Vec<_> = lines
        .iter()
        .filter(|l| l["level"] == "WARN" && l[field].as_str() == Some(value))
        .collect();
    assert!(
        (1..=10).contains(&warnings.len()),
        "{} warnings with {field}={value} for {events} events (limit 10 a minute):\n{log}",
        warnings.len()
    );
    warnings
}

fn json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l:?}"))
        })
        .collect()
}

#[test]
fn json_logs_name_listeners_pools_routes_and_rate_limit_refusals() {
    let mc = Memcached::start();
    let (py2, py3, admin) = (free_port(), free_port(), free_port());
    let serve = start(&config(&mc, py2, py3, admin, "info"), None, py2);
    wait_ready(admin);

    // 30 refused values, stored and fetched: 60 refusals, far above the limiter's 10 a minute.
    let mut c3 = Client::connect(([127, 0, 0, 1], py3).into()).expect("connect py3");
    let mut c2 = Client::connect(([127, 0, 0, 1], py2).into()).expect("connect py2");
    for i in 0..30 {
        set_then_miss(&mut c3, &mut c2, &format!("obj:secret-key-{i}"), NEWOBJ_EX);
    }
    // 20 values naming a denied global, fetched: blocked (a miss), warnings rate-limited too.
    let mut reader3 = Client::connect(([127, 0, 0, 1], py3).into()).expect("connect py3");
    for i in 0..20 {
        set_then_miss(&mut c3, &mut reader3, &format!("obj:fw-key-{i}"), OS_SYSTEM);
    }
    let log = serve.stop();
    let lines = json_lines(&log);
    assert!(!lines.is_empty(), "no log lines");
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();

    // Start-up names every listener, pool and route.
    for needle in [
        format!("127.0.0.1:{py2}"),
        format!("127.0.0.1:{py3}"),
        "main".to_owned(),
        "objects".to_owned(),
        format!("127.0.0.1:{admin}"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l["level"] == "INFO" && l.to_string().contains(&needle)),
            "no INFO line names {needle}:\n{log}"
        );
    }
    // Refusal warnings: rate-limited, with direction, route, key prefix and reason, without
    // value or key. Stores and fetches alternate, so both directions are among the first.
    let refusals = rate_limited(&lines, ("reason", "newobj_ex"), 60, &log);
    for w in &refusals {
        assert_eq!(text(w, "route"), "objects", "{w}");
        assert_eq!(text(w, "key_prefix"), "obj:", "{w}");
    }
    for direction in ["store", "fetch"] {
        assert!(
            refusals.iter().any(|w| text(w, "direction") == direction),
            "no refusal warning for a {direction}:\n{log}"
        );
    }
    // Firewall warnings: rate-limited, with route, global, rule and action, without value or key.
    for w in rate_limited(&lines, ("action", "blocked"), 20, &log) {
        assert_eq!(text(w, "route"), "objects", "{w}");
        assert_eq!(text(w, "global"), "os.system", "{w}");
        assert!(!text(w, "rule").is_empty(), "{w}");
    }
    for (leak, what) in [
        ("__main__", "value bytes"),
        ("FIREWALLARG", "value bytes"),
        ("secret-key", "a key"),
        ("fw-key", "a key"),
    ] {
        assert!(
            !log.contains(leak),
            "{what} leaked into the log at info level:\n{log}"
        );
    }
}

#[test]
fn rust_log_overrides_the_configured_level() {
    let mc = Memcached::start();
    let (py2, py3, admin) = (free_port(), free_port(), free_port());
    // Configured `info`, but RUST_LOG=warn: no start-up INFO lines at all.
    let serve = start(&config(&mc, py2, py3, admin, "info"), Some("warn"), py2);
    wait_ready(admin);
    let log = serve.stop();
    assert!(
        json_lines(&log).iter().all(|l| l["level"] != "INFO"),
        "INFO lines despite RUST_LOG=warn:\n{log}"
    );
    // And the other way round: configured `warn`, RUST_LOG=info brings them back.
    let (py2, py3, admin) = (free_port(), free_port(), free_port());
    let serve = start(&config(&mc, py2, py3, admin, "warn"), Some("info"), py2);
    wait_ready(admin);
    let log = serve.stop();
    assert!(
        json_lines(&log).iter().any(|l| l["level"] == "INFO"),
        "no INFO lines with RUST_LOG=info:\n{log}"
    );
}

/// A server that cannot be reached is logged with its pool: two pools may list the same
/// address, and the warning must say which one has lost it.
#[test]
fn upstream_connect_failures_name_the_pool_and_server() {
    let mc = Memcached::start();
    let (py3, admin, dead) = (free_port(), free_port(), free_port());
    let toml = format!(
        r#"
[[listener]]
address = "127.0.0.1:{py3}"
client = "py3"

[pool.main]
servers = ["{mc}"]

[pool.sessions]
servers = ["127.0.0.1:{dead}"]

[[route]]
prefix = "s:"
pool = "sessions"

[[route]]
prefix = ""
pool = "main"

[log]
format = "json"

[admin]
listen = "127.0.0.1:{admin}"
"#,
        mc = mc.addr_string()
    );
    let serve = start(&toml, None, py3);
    wait_ready(admin);
    wait_until(
        Duration::from_secs(20),
        "a connect failure in the log",
        || Some(()).filter(|()| serve.log().contains("upstream connect failed")),
    );
    let log = serve.stop();
    let failed: Vec<_> = json_lines(&log)
        .into_iter()
        .filter(|l| l["message"] == "upstream connect failed")
        .collect();
    assert!(!failed.is_empty(), "{log}");
    for l in &failed {
        assert_eq!(l["level"], "WARN", "{l}");
        assert_eq!(l["pool"], "sessions", "{l}");
        assert_eq!(l["server"], format!("127.0.0.1:{dead}"), "{l}");
    }
}
