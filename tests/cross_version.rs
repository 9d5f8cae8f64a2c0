//! Real clients across Python versions through the proxy (issue 3 "done means"): a real memcached
//! on a free loopback port, the proxy with a py2 and a py3 listener, python-memcached under real
//! CPython 2.7 and pymemcache + python-memcached + Django's PyMemcacheCache under CPython 3
//! (scripts/check_clients.py), values from the golden corpus (scripts/pbfixtures.py).
mod common;
mod metrics_common;

use std::net::SocketAddr;
use std::time::Duration;

use common::python::{self, Py};
use common::servers::{show, two_listener_toml, Client, Memcached, Proxy};
use picklebridge::config::Config;

const PY_TIMEOUT: Duration = Duration::from_secs(120);

/// Values Python 3 writes (containers, datetime, Decimal, sets, bytes, non-ASCII text, classes,
/// a nested class).
const PY3_CASES: &[&str] = &[
    "text_dict",
    "datetime_naive",
    "datetime_aware",
    "decimal",
    "set_large",
    "frozenset_small",
    "bytes_in_containers",
    "bytes_set",
    "dict_mixed_keys",
    "class_plain",
    "class_all",
    "class_nested",
    "shared_refs",
];

/// Values Python 2 writes (py2 str with UTF-8 and binary bytes inside pickles, datetime, nests).
const PY2_CASES: &[&str] = &[
    "str_in_containers",
    "str_dict_mixed_keys",
    "str_binary_in_dict",
    "str_utf8_long",
    "datetime_naive",
    "datetime_many",
    "list_nested",
    "decimal",
    "class_all",
];

const PY3_CLIENTS: &[&str] = &["memcache", "pymemcache", "django"];

/// One memcached and one proxy: listener 0 serves py2 clients, listener 1 py3 clients.
/// Keys under `observe:` take an observe-mode route.
struct Setup {
    mc: Memcached,
    proxy: Proxy,
}

impl Setup {
    fn start() -> Setup {
        let mc = Memcached::start();
        let toml = format!(
            r#"{listeners}

[[route]]
prefix = ""
pool = "main"
mode = "transcode"
py2_classic = ["pbfixtures.OldStyle"]

[[route]]
prefix = "observe:"
pool = "main"
mode = "observe"

# Django's keys are `:VERSION:KEY`.
[[route]]
prefix = ":1:tz"
pool = "main"
mode = "transcode"
py2_utc = "pytz"
"#,
            listeners = two_listener_toml(&mc),
        );
        let config = Config::from_toml_str(&toml, "cross_version").expect("test config");
        let proxy = Proxy::start(config);
        Setup { mc, proxy }
    }

    fn py2_listener(&self) -> SocketAddr {
        self.proxy.addr(0)
    }

    fn py3_listener(&self) -> SocketAddr {
        self.proxy.addr(1)
    }
}

/// Runs scripts/check_clients.py with `args` under `py`: (exit code, stdout).
fn clients_status(py: Py, args: &[&str]) -> (Option<i32>, String) {
    let mut argv = vec!["scripts/check_clients.py"];
    argv.extend_from_slice(args);
    let out = python::run(py, &argv, b"", PY_TIMEOUT);
    if out.code != Some(0) && out.code != Some(1) {
        panic!(
            "{} check_clients.py {} crashed ({:?}):\n{}\n{}",
            py.as_str(),
            args.join(" "),
            out.code,
            out.stdout_str(),
            out.stderr
        );
    }
    (out.code, out.stdout_str())
}

/// Like [`clients_status`]; panics with the output unless the run exited 0.
fn clients(py: Py, args: &[&str]) -> String {
    let (code, out) = clients_status(py, args);
    assert_eq!(
        code,
        Some(0),
        "{} check_clients.py {}:\n{out}",
        py.as_str(),
        args.join(" ")
    );
    out
}

/// `set` of `cases` under `prefix` with one client library (`extra`: --protocol/--compress).
fn set(py: Py, server: &str, client: &str, prefix: &str, extra: &[&str], cases: &[&str]) {
    let mut args = vec![
        "set", "--server", server, "--client", client, "--prefix", prefix,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(cases);
    clients(py, &args);
}

/// `get` of `cases` written by `writer`, compared under the default policies; asserts all pass.
fn get_ok(py: Py, server: &str, client: &str, writer: &str, prefix: &str, cases: &[&str]) {
    let mut args = vec![
        "get", "--server", server, "--client", client, "--writer", writer, "--prefix", prefix,
    ];
    args.extend_from_slice(cases);
    let out = clients(py, &args);
    let want = format!("{} passed, 0 failed", cases.len());
    assert!(
        out.contains(&want),
        "{} {client} via {server}: {out}",
        py.as_str()
    );
}

#[test]
fn values_set_by_python_3_clients_are_read_by_python_2() {
    let s = Setup::start();
    let py3 = s.py3_listener().to_string();
    let py2 = s.py2_listener().to_string();
    let direct = s.mc.addr_string();
    for client in PY3_CLIENTS {
        let prefix = format!("{client}:");
        // Highest protocol (Django's default): Python 2 cannot read it from memcached directly.
        set(Py::Py3, &py3, client, &prefix, &[], PY3_CASES);
        // Through the py2 listener.
        get_ok(Py::Py2, &py2, "memcache", "py3", &prefix, PY3_CASES);
        // store_protocol = 2: Python 2 hosts reading memcached directly can load it too.
        get_ok(Py::Py2, &direct, "memcache", "py3", &prefix, PY3_CASES);
        // And the Python 3 writer reads back its own objects through its listener.
        get_ok(Py::Py3, &py3, client, "py3", &prefix, PY3_CASES);
    }
}

#[test]
fn values_set_by_python_2_are_read_by_python_3_clients() {
    let s = Setup::start();
    let py2 = s.py2_listener().to_string();
    let py3 = s.py3_listener().to_string();
    set(Py::Py2, &py2, "memcache", "p2:", &[], PY2_CASES);
    for client in PY3_CLIENTS {
        get_ok(Py::Py3, &py3, client, "py2", "p2:", PY2_CASES);
    }
    // Python 2 still reads its own values through its listener.
    get_ok(Py::Py2, &py2, "memcache", "py2", "p2:", PY2_CASES);
}

#[test]
fn observe_mode_changes_no_byte_and_counts() {
    let s = Setup::start();
    let py3 = s.py3_listener().to_string();
    let py2 = s.py2_listener().to_string();
    set(
        Py::Py3,
        &py3,
        "pymemcache",
        "observe:",
        &[],
        &["text_dict", "datetime_naive"],
    );
    // Byte for byte, memcached direct and through either listener agree.
    let mut direct = Client::connect(s.mc.addr()).expect("memcached");
    let want = direct.call(
        b"get observe:text_dict observe:datetime_naive\r\n",
        b"END\r\n",
    );
    assert!(
        want.starts_with(b"VALUE observe:text_dict 1 "),
        "{}",
        show(&want)
    );
    for listener in [s.py2_listener(), s.py3_listener()] {
        let mut c = Client::connect(listener).expect("proxy");
        let got = c.call(
            b"get observe:text_dict observe:datetime_naive\r\n",
            b"END\r\n",
        );
        assert_eq!(show(&got), show(&want));
    }
    // So Python 2 still fails on the protocol-5 pickle, as without the proxy.
    let out = clients(Py::Py2, &["raw", "--server", &py2, "observe:text_dict"]);
    assert!(out.contains("unsupported pickle protocol: 5"), "{out}");
    // ... and the proxy counted what would have broken, rewriting nothing on that route.
    let text = scrape(&s.proxy);
    let series = |name: &str, label: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with(name) && l.contains(r#"route="observe:""#) && l.contains(label)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let too_new = series(
        "picklebridge_mismatches_total{",
        r#"kind="protocol_too_new""#,
    );
    // Two values through the py2 listener by hand, then one by Python 2.
    assert_eq!(too_new, 3.0, "protocol_too_new:\n{text}");
    assert_eq!(
        series("picklebridge_values_rewritten_total{", ""),
        0.0,
        "{text}"
    );
}

/// The proxy's metrics in the Prometheus text format.
fn scrape(proxy: &Proxy) -> String {
    let mut buf = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &proxy.registry().gather(),
        &mut buf,
    )
    .expect("encode metrics");
    String::from_utf8(buf).expect("utf-8 metrics")
}

#[test]
fn zlib_compressed_pickles_cross_versions() {
    let s = Setup::start();
    let py3 = s.py3_listener().to_string();
    let py2 = s.py2_listener().to_string();
    let mut direct = Client::connect(s.mc.addr()).expect("memcached");
    // python-memcached compresses (flag 8) values longer than min_compress_len when it helps.
    let py3_cases = ["set_large", "bytes_in_containers", "text_dict"];
    let extra = ["--protocol", "5", "--compress", "1"];
    set(Py::Py3, &py3, "memcache", "z3:", &extra, &py3_cases);
    let stored = direct.call(b"get z3:set_large\r\n", b"END\r\n");
    assert!(
        stored.starts_with(b"VALUE z3:set_large 9 "),
        "compressed pickle: {}",
        show(&stored)
    );
    get_ok(Py::Py2, &py2, "memcache", "py3", "z3:", &py3_cases);

    let py2_cases = ["str_utf8_long", "datetime_many"];
    set(
        Py::Py2,
        &py2,
        "memcache",
        "z2:",
        &["--compress", "1"],
        &py2_cases,
    );
    let stored = direct.call(b"get z2:str_utf8_long\r\n", b"END\r\n");
    assert!(
        stored.starts_with(b"VALUE z2:str_utf8_long 9 "),
        "{}",
        show(&stored)
    );
    // python-memcached is the client that compresses; Django's PyMemcacheCache (pymemcache's
    // plain pickle serde) does not inflate flag 8 even between Python 3 hosts.
    get_ok(Py::Py3, &py3, "memcache", "py2", "z2:", &py2_cases);
}

#[test]
fn without_the_proxy_the_cross_reads_fail() {
    // The baseline the proxy fixes, with the same clients straight against memcached.
    let mc = Memcached::start();
    let server = mc.addr_string();
    set(Py::Py3, &server, "django", "raw:", &[], &["text_dict"]);
    let out = clients(Py::Py2, &["raw", "--server", &server, "raw:text_dict"]);
    assert!(
        out.contains("ValueError: unsupported pickle protocol: 5"),
        "{out}"
    );
    set(
        Py::Py2,
        &server,
        "memcache",
        "raw:",
        &[],
        &["datetime_naive"],
    );
    let out = clients(Py::Py3, &["raw", "--server", &server, "raw:datetime_naive"]);
    assert!(out.contains("UnicodeDecodeError"), "{out}");
    let args = [
        "get",
        "--server",
        &server,
        "--client",
        "pymemcache",
        "--writer",
        "py2",
        "--prefix",
        "raw:",
        "datetime_naive",
    ];
    let (code, out) = clients_status(Py::Py3, &args);
    // pymemcache turns the unpickling error into a miss (None), as python-memcached does.
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("got type builtins.NoneType"), "{out}");
}

/// Runs scripts/check_django.py with `args` under `py`; panics with the output unless it exited 0.
fn django(py: Py, args: &[&str]) -> String {
    let mut argv = vec!["scripts/check_django.py"];
    argv.extend_from_slice(args);
    let out = python::run(py, &argv, b"", PY_TIMEOUT);
    assert_eq!(
        out.code,
        Some(0),
        "{} check_django.py {}:\n{}\n{}",
        py.as_str(),
        args.join(" "),
        out.stdout_str(),
        out.stderr
    );
    out.stdout_str()
}

#[test]
fn django_model_instances_cross_versions_through_django_caches() {
    // Django 4.2's PyMemcacheCache (protocol 5) and Django 1.11's MemcachedCache (cPickle,
    // protocol 2) store model instances, a page dict sharing one instance and a list of 40; the
    // other Django reads each through its listener and checks every field's value and type.
    let s = Setup::start();
    let py3 = s.py3_listener().to_string();
    let py2 = s.py2_listener().to_string();
    let direct = s.mc.addr_string();
    django(Py::Py3, &["set", "--server", &py3, "--prefix", "dj3:"]);
    django(Py::Py2, &["set", "--server", &py2, "--prefix", "dj2:"]);
    for server in [&py2, &direct] {
        let out = django(Py::Py2, &["get", "--server", server, "--prefix", "dj3:"]);
        assert!(
            out.contains("3 passed, 0 failed"),
            "py2 via {server}: {out}"
        );
    }
    let out = django(Py::Py3, &["get", "--server", &py3, "--prefix", "dj2:"]);
    assert!(out.contains("3 passed, 0 failed"), "py3: {out}");

    // Straight from memcached, Django 4.2 gets a miss for what Django 1.11 stored: pymemcache
    // turns the UnicodeDecodeError of the py2 `str` body into None.
    let argv = [
        "scripts/check_django.py",
        "get",
        "--server",
        &direct,
        "--prefix",
        "dj2:",
    ];
    let out = python::run(Py::Py3, &argv, b"", PY_TIMEOUT);
    let text = out.stdout_str();
    assert_eq!(out.code, Some(1), "{text}\n{}", out.stderr);
    assert!(text.contains("FAIL dj2:article: a miss"), "{text}");
    assert!(text.contains("0 passed, 3 failed"), "{text}");
}

#[test]
fn django_aware_datetimes_cross_versions_with_py2_utc_pytz() {
    // `USE_TZ = True`: Django 4.2's `timezone.now()` gives `datetime.timezone.utc`, which does
    // not exist in Python 2; Django 1.11's gives `pytz.utc`, which Django 4.2 does not install.
    // Under a `py2_utc = "pytz"` route each Django reads the other's model instances with its
    // own UTC object (check_django.py checks `tzinfo is`); on the default route the Python 3
    // value is refused `py3_only_global` for Python 2 (a miss) and the Python 2 value needs pytz
    // in Python 3 (a miss too).
    let s = Setup::start();
    let py3 = s.py3_listener().to_string();
    let py2 = s.py2_listener().to_string();
    let direct = s.mc.addr_string();
    for prefix in ["tz3:", "plain3:"] {
        django(
            Py::Py3,
            &["set", "--tz", "--server", &py3, "--prefix", prefix],
        );
    }
    for prefix in ["tz2:", "plain2:"] {
        django(
            Py::Py2,
            &["set", "--tz", "--server", &py2, "--prefix", prefix],
        );
    }
    // Stored for both runtimes (protocol 2, `pytz.utc`): Python 2 reads it from memcached too.
    for server in [&py2, &direct] {
        let out = django(
            Py::Py2,
            &["get", "--tz", "--server", server, "--prefix", "tz3:"],
        );
        assert!(
            out.contains("3 passed, 0 failed"),
            "py2 via {server}: {out}"
        );
    }
    let out = django(
        Py::Py3,
        &["get", "--tz", "--server", &py3, "--prefix", "tz2:"],
    );
    assert!(out.contains("3 passed, 0 failed"), "py3: {out}");

    for (py, server, prefix) in [(Py::Py2, &py2, "plain3:"), (Py::Py3, &py3, "plain2:")] {
        let argv = [
            "scripts/check_django.py",
            "get",
            "--tz",
            "--server",
            server,
            "--prefix",
            prefix,
        ];
        let out = python::run(py, &argv, b"", PY_TIMEOUT);
        let text = out.stdout_str();
        assert_eq!(out.code, Some(1), "{text}\n{}", out.stderr);
        assert!(
            text.contains(&format!("FAIL {prefix}article: a miss")),
            "{text}"
        );
        assert!(text.contains("0 passed, 3 failed"), "{text}");
    }
    // Refused on the store (py3 -> stored form) and on each fetch by Python 2: 3 values, twice.
    let text = s.proxy.metrics_text();
    let series =
        r#"picklebridge_transcode_refusals_total{reason="py3_only_global",route="default"}"#;
    let refused =
        metrics_common::sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(refused, 6.0, "refusals");
}

/// python-memcached under Python 2 and 3, straight to three memcached servers, and the proxy in
/// front of the same three in the same order: each finds every key the other stored, so hosts
/// still talking to memcached directly share the cache with hosts behind the proxy.
#[test]
fn python_memcached_and_the_proxy_put_each_key_on_the_same_server() {
    const SCRIPT: &str = r#"
import sys, memcache
mode, servers, prefix, n = sys.argv[1], sys.argv[2].split(','), sys.argv[3], int(sys.argv[4])
c = memcache.Client(servers)
keys = [':1:%s%d' % (prefix, i) for i in range(n)]
if mode == 'set':
    for k in keys:
        assert c.set(k, 'v-' + k), k
else:
    want = lambda k: ('v-' + k, ('v-' + k).encode('ascii'))
    missing = [k for k in keys if c.get(k) not in want(k)]
    sys.stdout.write('%d missing %s\n' % (len(missing), missing[:3]))
"#;
    let mcs = [Memcached::start(), Memcached::start(), Memcached::start()];
    let servers: Vec<String> = mcs.iter().map(Memcached::addr_string).collect();
    let list = servers.join(",");
    let proxy = Proxy::quick(
        &[
            picklebridge::config::ClientRuntime::Py2,
            picklebridge::config::ClientRuntime::Py3,
        ],
        &servers,
    );
    let n = 150;
    let keys =
        |prefix: &str| -> Vec<String> { (0..n).map(|i| format!(":1:{prefix}{i}")).collect() };
    // python-memcached 1.62 marks Python 3 text with flag 16 (`_FLAG_TEXT`); 1.59 stores a
    // Python 2 `str` as it is.
    for (py, prefix, flags) in [(Py::Py2, "direct2-", 0), (Py::Py3, "direct3-", 16)] {
        let args = ["-c", SCRIPT, "set", &list, prefix, "150"];
        python::run(py, &args, b"", PY_TIMEOUT).assert_ok(&format!("{} set", py.as_str()));
        // Through the proxy, and where the proxy looks: spread over all three servers.
        let mut c = Client::connect(proxy.addr(0)).unwrap();
        let mut per_server = [0; 3];
        for key in keys(prefix) {
            let want = format!(
                "VALUE {key} {flags} {}\r\nv-{key}\r\nEND\r\n",
                key.len() + 2
            );
            let got = c.call(format!("get {key}\r\n").as_bytes(), b"END\r\n");
            assert_eq!(show(&got), show(want.as_bytes()), "{}", py.as_str());
            for (i, mc) in mcs.iter().enumerate() {
                let mut direct = Client::connect(mc.addr()).unwrap();
                if direct.call(format!("get {key}\r\n").as_bytes(), b"END\r\n") != b"END\r\n" {
                    per_server[i] += 1;
                }
            }
        }
        assert_eq!(per_server.iter().sum::<usize>(), n, "{per_server:?}");
        assert!(per_server.iter().all(|&k| k > 10), "{per_server:?}");
    }
    // Stored through the proxy, found by both clients on their own.
    let mut c = Client::connect(proxy.addr(1)).unwrap();
    for key in keys("proxied-") {
        let set = format!("set {key} 0 0 {}\r\nv-{key}\r\n", key.len() + 2);
        assert_eq!(c.call(set.as_bytes(), b"\r\n"), b"STORED\r\n");
    }
    for py in [Py::Py2, Py::Py3] {
        let args = ["-c", SCRIPT, "get", &list, "proxied-", "150"];
        let out = python::run(py, &args, b"", PY_TIMEOUT);
        out.assert_ok(&format!("{} get", py.as_str()));
        assert_eq!(out.stdout_str(), "0 missing []\n", "{}", py.as_str());
    }
}
