//! Real exploit pickles through the transcoder and the default firewall: each must be judged
//! unsafe, and for the right global, whatever protocol and spelling it uses. The bytes were
//! produced by CPython (`pickle.dumps` of a `__reduce__` returning `os.system`) or written by hand
//! and checked to run the payload under CPython 3.11 / 2.7 (`pickle.loads` printed the echo).
//! Also: ordinary values pass, pickle bombs are refused by limits instead of exhausting memory,
//! and end to end a poisoned entry never reaches real Python clients through the proxy.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::python::{run, Py};
use common::servers::{show, Client, Memcached, Proxy};
use picklebridge::config::Config;
use picklebridge::firewall::{Finding, Firewall, FirewallMode, Judgement, Rule};
use picklebridge::pickle::{transcode, Outcome, Policy, Reason, Runtime};

/// (name, pickle, the global the firewall must report as `module.name`).
const EXPLOITS: &[(&str, &[u8], &str)] = &[
    // py3 pickle.dumps(protocol=0) of a class whose __reduce__ returns (os.system, (cmd,)).
    ("os_system_p0", b"cposix\nsystem\np0\n(Vecho pwned\np1\ntp2\nRp3\n.", "posix.system"),
    // The same from CPython 2.7 (BINSTRING argument).
    (
        "os_system_py2_p2",
        b"\x80\x02cposix\nsystem\nq\x00U\necho pwnedq\x01\x85q\x02Rq\x03.",
        "posix.system",
    ),
    (
        "os_system_p2",
        b"\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.",
        "posix.system",
    ),
    // Protocol 4: FRAME, SHORT_BINUNICODE module and name, MEMOIZE, STACK_GLOBAL.
    (
        "os_system_p4",
        b"\x80\x04\x95%\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\
\x8c\necho pwned\x94\x85\x94R\x94.",
        "posix.system",
    ),
    // INST calls the class with the marked arguments: `ios\nsystem\n` runs os.system.
    ("os_system_inst_p0", b"(S'echo inst'\nios\nsystem\n.", "os.system"),
    // getattr(__import__('os'), 'system')('...') in protocol 0.
    (
        "getattr_chain_p0",
        b"c__builtin__\ngetattr\n(c__builtin__\n__import__\n(S'os'\ntRS'system'\ntR\
(S'echo chain-p0'\ntR.",
        "__builtin__.getattr",
    ),
    // The same chain in protocol 4, the module string reused through the memo (BINGET 0).
    (
        "getattr_chain_p4_memo",
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x07getattr\x94\x93\x94\
h\x00\x8c\n__import__\x94\x93\x94\x8c\x02os\x94\x85\x94R\x94\x8c\x06system\x94\x86\x94R\x94\
\x8c\x0eecho chain-p4!\x94\x85\x94R\x94.",
        "builtins.getattr",
    ),
    // Nested unpickling: whatever the inner pickle does is invisible, so loads itself is denied.
    (
        "nested_loads_p3",
        b"\x80\x03cpickle\nloads\nq\x00C\x05\x80\x02K\x01.\x85R.",
        "pickle.loads",
    ),
    // Protocol 4 resolves dotted names by walking attributes: posixpath.os is the os module.
    (
        "dotted_name_p4",
        b"\x80\x04\x8c\tposixpath\x8c\tos.system\x93\x8c\x0cecho dotted!\x85R.",
        "posixpath.os.system",
    ),
    (
        "subprocess_p2",
        b"\x80\x02csubprocess\ncheck_output\nq\x00]q\x01(X\x04\x00\x00\x00echoq\x02e\x85q\x03Rq\x04.",
        "subprocess.check_output",
    ),
    (
        "eval_py2_spelling",
        b"\x80\x02c__builtin__\neval\nX\x04\x00\x00\x001+41\x85R.",
        "__builtin__.eval",
    ),
    // Found by review on 2026-11-29 (each ran its payload in CPython 3.11):
    // typing._eval_type(typing.ForwardRef("__import__('os').getpid()"), None, None).
    (
        "typing_eval_type",
        b"\x80\x04\x8c\x06typing\x8c\n_eval_type\x93\x8c\x06typing\x8c\nForwardRef\x93X\x19\x00\
\x00\x00__import__('os').getpid()\x85RNN\x87R.",
        "typing._eval_type",
    ),
    // Django's import_string('os.system') hands the function to the next REDUCE.
    (
        "django_import_string",
        b"cdjango.utils.module_loading\nimport_string\n(Vos.system\ntR(Vecho pwned\ntR.",
        "django.utils.module_loading.import_string",
    ),
    // uuid._get_command_stdout('echo', 'pwned'): runs the command.
    (
        "uuid_command",
        b"\x80\x04\x8c\x04uuid\x8c\x13_get_command_stdout\x93\x8c\x04echo\x8c\x05pwned\x86R.",
        "uuid._get_command_stdout",
    ),
];

fn judge_for(pickle: &[u8], target: Runtime, mode: FirewallMode) -> (Judgement<'static>, String) {
    let transcoded = Box::leak(Box::new(transcode(
        &Bytes::copy_from_slice(pickle),
        &Policy::for_target(target),
    )));
    let judgement = Firewall::with_defaults(mode).judge(transcoded);
    let name = match judgement {
        Judgement::Block(f) | Judgement::Observe(f) => f.global_name(),
        Judgement::Pass => String::new(),
    };
    (judgement, name)
}

#[test]
fn every_exploit_is_blocked_for_the_right_global() {
    for &(case, pickle, global) in EXPLOITS {
        for target in [Runtime::Py2, Runtime::Py3] {
            let (judgement, name) = judge_for(pickle, target, FirewallMode::Block);
            assert!(
                matches!(judgement, Judgement::Block(Finding::Global { .. })),
                "{case} for {target:?}: expected a denied global, got {judgement:?}"
            );
            assert_eq!(name, global, "{case} for {target:?}");
        }
    }
}

#[test]
fn observe_reports_and_allow_passes() {
    for &(case, pickle, _) in EXPLOITS {
        let (observed, _) = judge_for(pickle, Runtime::Py3, FirewallMode::Observe);
        assert!(
            matches!(observed, Judgement::Observe(_)),
            "{case}: {observed:?}"
        );
        let (allowed, _) = judge_for(pickle, Runtime::Py3, FirewallMode::Allow);
        assert_eq!(allowed, Judgement::Pass, "{case}");
    }
}

#[test]
fn the_dotted_walk_is_its_own_rule() {
    let (judgement, _) = judge_for(EXPLOITS[8].1, Runtime::Py3, FirewallMode::Block);
    assert!(
        matches!(
            judgement,
            Judgement::Block(Finding::Global {
                rule: Rule::DottedName,
                ..
            })
        ),
        "{judgement:?}"
    );
}

/// Ordinary values written by CPython pass: the corpus seeds of the fuzz target (py2 and py3,
/// every protocol: datetime, Decimal, sets, class instances, recursive lists).
#[test]
fn ordinary_values_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/transcode");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.expect("entry").path();
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !(file.starts_with("py2_") || file.starts_with("py3_")) {
            continue;
        }
        let data = std::fs::read(&path).expect("seed");
        for target in [Runtime::Py2, Runtime::Py3] {
            let (judgement, _) = judge_for(&data[1..], target, FirewallMode::Block);
            assert_eq!(judgement, Judgement::Pass, "{file} for {target:?}");
        }
        checked += 1;
    }
    assert!(
        checked >= 80,
        "only {checked} seeds found in {}",
        dir.display()
    );
}

/// A billion-laughs style memo bomb: each level duplicates the previous list twice by memo
/// reference. The transcoder must answer quickly (refusal or output within its limits), never
/// expand the references.
#[test]
fn memo_bomb_stays_within_limits() {
    // EMPTY_LIST BINPUT 0, BININT1 1, APPEND, POP; then per level k: EMPTY_LIST BINPUT k MARK
    // BINGET k-1 BINGET k-1 APPENDS POP; finally BINGET 200 STOP. CPython loads it instantly.
    let mut bomb = b"\x80\x02]q\x00K\x01a0".to_vec();
    for level in 1..=200u8 {
        bomb.extend_from_slice(&[b']', b'q', level, b'(', b'h', level - 1, b'h', level - 1]);
        bomb.extend_from_slice(b"e0");
    }
    bomb.extend_from_slice(b"h\xc8");
    bomb.push(b'.');
    let input_len = bomb.len();
    for target in [Runtime::Py2, Runtime::Py3] {
        let out = transcode(&Bytes::from(bomb.clone()), &Policy::for_target(target));
        // References stay references: a rewrite is about as long as the input, never 2^200.
        if let Outcome::Rewritten(bytes) = &out.outcome {
            assert!(
                bytes.len() <= 4 * input_len,
                "{target:?}: {} bytes",
                bytes.len()
            );
        }
        assert!(
            out.summary.is_some(),
            "{target:?}: a valid bomb must parse: {:?}",
            out.outcome
        );
    }
}

/// Deep nesting past the depth limit is refused with `limit_exceeded`, and the firewall treats the
/// unscanned remainder as unsafe.
#[test]
fn nesting_bomb_is_refused_and_blocked() {
    let depth = Policy::for_target(Runtime::Py3).limits.max_depth + 10;
    let mut bomb = b"\x80\x02".to_vec();
    bomb.extend(std::iter::repeat(b'(').take(depth));
    bomb.extend_from_slice(b"cposix\nsystem\n");
    bomb.extend(std::iter::repeat(b't').take(depth));
    bomb.push(b'.');
    let transcoded = transcode(&Bytes::from(bomb), &Policy::for_target(Runtime::Py3));
    assert_eq!(transcoded.outcome, Outcome::Refused(Reason::LimitExceeded));
    let judgement = Firewall::default().judge(&transcoded);
    assert!(matches!(judgement, Judgement::Block(_)), "{judgement:?}");
}

/// A proxy with a py2 (0) and a py3 (1) listener in front of `mc`, the default route and
/// `routes` (more `[[route]]` tables) on pool `main`.
fn firewall_proxy(mc: &Memcached, routes: &str) -> Proxy {
    let toml = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\nclient = \"py2\"\n\n\
         [[listener]]\naddress = \"127.0.0.1:0\"\nclient = \"py3\"\n\n\
         [pool.main]\nservers = [\"{}\"]\n\n\
         [[route]]\nprefix = \"\"\npool = \"main\"\n\n{routes}",
        mc.addr_string()
    );
    Proxy::start(Config::from_toml_str(&toml, "firewall.toml").expect("config"))
}

/// Stores `value` with `flags` straight into memcached (as an attacker with access to it).
fn store_raw(direct: &mut Client, key: &str, flags: u32, value: &[u8]) {
    let mut set = format!("set {key} {flags} 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(direct.call(&set, b"\r\n"), b"STORED\r\n", "set {key}");
}

/// A path a payload would create (`touch`), removed first; unique to this test process.
fn fresh_marker(tag: &str) -> std::path::PathBuf {
    let marker = std::env::temp_dir().join(format!("picklebridge-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    marker
}

/// `zlib.compress(data)`.
fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).expect("deflate");
    z.finish().expect("deflate")
}

/// python-memcached under CPython 2.7 (listener 0) and 3 (listener 1) gets `None` for every key.
fn python_gets_none<K: AsRef<str>>(proxy: &Proxy, keys: &[K]) {
    let list: Vec<String> = keys.iter().map(|k| format!("'{}'", k.as_ref())).collect();
    let script = format!(
        "import memcache, sys\n\
         mc = memcache.Client([sys.argv[1]])\n\
         print(repr([mc.get(k) for k in [{}]]))\n",
        list.join(", ")
    );
    let want = format!("[{}]", vec!["None"; keys.len()].join(", "));
    for (listener, py) in [(0, Py::Py2), (1, Py::Py3)] {
        let addr = proxy.addr(listener).to_string();
        let out = run(py, &["-c", &script, &addr], b"", Duration::from_secs(30));
        out.assert_ok("python-memcached get through the proxy");
        assert_eq!(out.stdout_str().trim(), want, "{} got a value", py.as_str());
    }
}

/// End to end: a poisoned entry written straight into memcached (as an attacker with network
/// access to it would) never reaches a Python process through the proxy. Real python-memcached
/// clients under CPython 2.7 and 3 read it through both listeners and get a miss; the payload
/// would create a marker file, which must not exist afterwards; so does a zlib-compressed copy
/// with bytes after its zlib stream. An `observe` route serves the
/// value (checked at the protocol level only) and counts it.
#[test]
fn a_poisoned_entry_never_reaches_python_through_the_proxy() {
    let mc = Memcached::start();
    let proxy = firewall_proxy(
        &mc,
        "[[route]]\nprefix = \"watched:\"\npool = \"main\"\nfirewall = \"observe\"\n",
    );
    let marker = fresh_marker("pwned");
    let command = format!("touch {}", marker.display());
    // Protocol 2 os.system(command), as CPython 2.7 writes it (BINSTRING argument).
    let mut exploit = b"\x80\x02cposix\nsystem\nq\x00U".to_vec();
    exploit.push(u8::try_from(command.len()).expect("short path"));
    exploit.extend_from_slice(command.as_bytes());
    exploit.extend_from_slice(b"q\x01\x85q\x02Rq\x03.");
    // The same, zlib-compressed (flags 9, python-memcached's pickle and zlib bits) with bytes
    // after the zlib stream, which Python's zlib.decompress ignores (it was refused
    // zlib_corrupt, so never judged, and python-memcached ran it).
    let mut zlib_exploit = deflate(&exploit);
    zlib_exploit.extend_from_slice(b"\x00trailing");
    let mut direct = Client::connect(mc.addr()).expect("memcached");
    for (key, flags, value) in [
        ("poisoned", 1, &exploit),
        ("watched:poisoned", 1, &exploit),
        ("zpoisoned", 9, &zlib_exploit),
    ] {
        store_raw(&mut direct, key, flags, value);
    }
    for listener in 0..2 {
        let mut client = Client::connect(proxy.addr(listener)).expect("proxy");
        for key in ["poisoned", "zpoisoned"] {
            let get = format!("get {key}\r\n");
            assert_eq!(show(&client.call(get.as_bytes(), b"END\r\n")), "END\\r\\n");
            let mg = format!("mg {key} v\r\n");
            assert_eq!(show(&client.call(mg.as_bytes(), b"\r\n")), "EN\\r\\n");
        }
        let watched = client.call(b"get watched:poisoned\r\n", b"END\r\n");
        assert!(
            watched.starts_with(b"VALUE watched:poisoned 1 "),
            "{}",
            show(&watched)
        );
    }
    python_gets_none(&proxy, &["poisoned", "zpoisoned"]);
    assert!(
        !marker.exists(),
        "the payload ran: {} exists",
        marker.display()
    );
    let text = proxy.metrics_text();
    let count = |action: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("picklebridge_unsafe_globals_total{"))
            .filter(|l| l.contains(&format!("action=\"{action}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // get and mg of both keys on both listeners, then two gets by each Python; the watched
    // key twice.
    assert_eq!(count("blocked"), 12.0, "blocked");
    assert_eq!(count("observed"), 2.0, "observed");
}

/// A denied global hidden behind many harmless ones: the transcoder's global list is capped
/// (`MAX_SUMMARY_GLOBALS`) and then says it is incomplete (`globals_complete`), so the value is
/// unsafe as a whole. A value that references exactly as many harmless globals as the list holds
/// is complete, and passes.
#[test]
fn a_denied_global_past_the_summary_cap_is_still_blocked() {
    let cap = picklebridge::pickle::MAX_SUMMARY_GLOBALS;
    let mut harmless = b"\x80\x02(".to_vec();
    for i in 0..cap {
        harmless.extend_from_slice(format!("cmyapp.models\nModel{i}\n").as_bytes());
    }
    harmless.extend_from_slice(b"l.");
    let transcoded = transcode(&Bytes::from(harmless), &Policy::for_target(Runtime::Py3));
    let summary = transcoded.summary.as_ref().expect("summary");
    assert!(summary.globals_complete, "{transcoded:?}");
    assert_eq!(Firewall::default().judge(&transcoded), Judgement::Pass);

    let mut pickle = b"\x80\x02(".to_vec();
    for i in 0..picklebridge::pickle::MAX_SUMMARY_GLOBALS + 6 {
        pickle.extend_from_slice(format!("cmyapp.models\nModel{i}\n").as_bytes());
    }
    pickle.extend_from_slice(b"cposix\nsystem\nX\x02\x00\x00\x00id\x85Rl.");
    for target in [Runtime::Py2, Runtime::Py3] {
        let transcoded = transcode(&Bytes::from(pickle.clone()), &Policy::for_target(target));
        let judgement = Firewall::default().judge(&transcoded);
        assert!(
            matches!(judgement, Judgement::Block(_)),
            "{target:?}: {judgement:?}"
        );
    }
}

/// EXT1 names a global through the process-local copyreg extension registry: invisible, so
/// unsafe. A global after STOP never runs (CPython stops there), and is not what gets blocked.
#[test]
fn extension_codes_block_and_globals_after_stop_do_not_count() {
    let ext = b"\x80\x02\x82\x01)R.";
    let transcoded = transcode(&Bytes::from_static(ext), &Policy::for_target(Runtime::Py3));
    let judgement = Firewall::default().judge(&transcoded);
    assert!(matches!(judgement, Judgement::Block(_)), "{judgement:?}");

    let trailing = b"\x80\x02K\x01.cposix\nsystem\n.";
    let transcoded = transcode(
        &Bytes::from_static(trailing),
        &Policy::for_target(Runtime::Py3),
    );
    let judgement = Firewall::default().judge(&transcoded);
    assert!(
        !matches!(judgement, Judgement::Block(Finding::Global { .. })),
        "a global after STOP was judged: {judgement:?} ({:?})",
        transcoded.outcome
    );
}

/// A value the transcoder cannot parse is blocked when Python could reach a denied global
/// before failing. The reader's line arguments are stricter than CPython's: a first op such as
/// `I0x10` (strtol base 0), `I+5`, `I010`, `L1_0L`, `p01` or Python 2's `S'x' ` (trailing space)
/// loads in CPython but ended the proxy's look, so `posix.system` after it was served and ran
/// in python-memcached on both runtimes. Such an op is now passed over by its newline.
#[test]
fn a_line_argument_the_reader_refuses_does_not_hide_a_denied_global() {
    let mc = Memcached::start();
    let proxy = firewall_proxy(&mc, "");
    let marker = fresh_marker("line");
    let prefixes: [&[u8]; 8] = [
        b"I0x10\n", b"I+5\n", b"I010\n", b"I 5\n", b"L1_0L\n", b"Np+1\n", b"Np01\n", b"S'x' \n",
    ];
    let mut direct = Client::connect(mc.addr()).expect("memcached");
    let mut keys = Vec::new();
    for (i, prefix) in prefixes.iter().enumerate() {
        // <one value> POP, then os.system('touch <marker>') at protocol 0.
        let mut value = prefix.to_vec();
        value.extend_from_slice(b"0cposix\nsystem\n(S'touch ");
        value.extend_from_slice(marker.display().to_string().as_bytes());
        value.extend_from_slice(b"'\ntR.");
        let key = format!("line{i}");
        store_raw(&mut direct, &key, 1, &value);
        keys.push(key);
    }
    for listener in 0..2 {
        let mut client = Client::connect(proxy.addr(listener)).expect("proxy");
        for key in &keys {
            let get = format!("get {key}\r\n");
            assert_eq!(
                show(&client.call(get.as_bytes(), b"END\r\n")),
                "END\\r\\n",
                "{key} on listener {listener}"
            );
        }
    }
    python_gets_none(&proxy, &keys);
    assert!(
        !marker.exists(),
        "the payload ran: {} exists",
        marker.display()
    );
}

/// `firewall_only`: on a route with the list, a value naming a global no entry names (nor a
/// known value type) is a miss; one naming only listed globals and value types is served. The
/// same values on a route without the list are served.
#[test]
fn a_route_with_an_only_list_serves_only_what_it_names() {
    let mc = Memcached::start();
    let proxy = firewall_proxy(
        &mc,
        "[[route]]\nprefix = \"strict:\"\npool = \"main\"\nfirewall_only = [\"shop.*\"]\n",
    );
    let values: [(&str, &[u8], bool); 3] = [
        // collections.ChainMap(): not listed.
        ("chain", b"ccollections\nChainMap\n)R.", false),
        // shop.models.Order(): listed by `shop.*`.
        ("order", b"cshop.models\nOrder\n)R.", true),
        // set([]) (__builtin__.set): a value type.
        ("set", b"c__builtin__\nset\n(lR.", true),
    ];
    let mut direct = Client::connect(mc.addr()).expect("memcached");
    for (name, value, _) in &values {
        for prefix in ["strict:", "open:"] {
            store_raw(&mut direct, &format!("{prefix}{name}"), 1, value);
        }
    }
    let mut client = Client::connect(proxy.addr(1)).expect("proxy");
    for (name, value, passes) in values {
        for (prefix, served) in [("strict:", passes), ("open:", true)] {
            let got = client.call(format!("get {prefix}{name}\r\n").as_bytes(), b"END\r\n");
            let want = if served {
                let mut v = format!("VALUE {prefix}{name} 1 {}\r\n", value.len()).into_bytes();
                v.extend_from_slice(value);
                v.extend_from_slice(b"\r\nEND\r\n");
                v
            } else {
                b"END\r\n".to_vec()
            };
            assert_eq!(show(&got), show(&want), "{prefix}{name}");
        }
    }
}

/// A zlib pickle that inflates past `max_inflated` cannot be read, but Python's
/// zlib.decompress has no such limit: it is blocked, not forwarded as "never unpickled" (a
/// posix.system followed by padding ran in python-memcached through the proxy on both
/// runtimes).
#[test]
fn a_zlib_pickle_past_max_inflated_is_blocked() {
    let mc = Memcached::start();
    let proxy = firewall_proxy(&mc, "[limits]\nitem_size = 4096\nmax_inflated = 4096\n");
    let marker = fresh_marker("big");
    let mut pickle = b"cposix\nsystem\n(S'touch ".to_vec();
    pickle.extend_from_slice(marker.display().to_string().as_bytes());
    pickle.extend_from_slice(b"'\ntR.");
    // Past STOP nothing runs, but the whole stream is inflated first.
    pickle.resize(pickle.len() + 8192, 0);
    let value = deflate(&pickle);
    let mut direct = Client::connect(mc.addr()).expect("memcached");
    store_raw(&mut direct, "big", 9, &value);
    for listener in 0..2 {
        let mut client = Client::connect(proxy.addr(listener)).expect("proxy");
        assert_eq!(show(&client.call(b"get big\r\n", b"END\r\n")), "END\\r\\n");
    }
    python_gets_none(&proxy, &["big"]);
    assert!(!marker.exists(), "the payload ran: {}", marker.display());
}
