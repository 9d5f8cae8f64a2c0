//! Pickled values through the proxy with a real memcached, checked by the real interpreters:
//! a Py3 pickle (protocol 4) is readable by Py2 through the py2 listener and stored as protocol
//! 2; a Py2 `str` with UTF-8 bytes is readable by Py3; zlib-compressed pickles keep their flags
//! and are rewritten inside; `observe` routes change nothing and count; mg v is rewritten too;
//! values the client libraries store unpickled (flags 0/2/4/16) cross byte for byte.
mod common;

use std::time::Duration;

use common::python::{run, Py};
use common::servers::{show, Client, Memcached, Proxy};
use picklebridge::config::{ClientRuntime, Config, Mode};
use picklebridge::pickle::{Py2Text, Py3Str};

const T: Duration = Duration::from_secs(30);

/// Runs `code` under `py`, returns stdout bytes.
fn py(py: Py, code: &str, stdin: &[u8]) -> Vec<u8> {
    let out = run(py, &["-c", code], stdin, T);
    out.assert_ok(code);
    out.stdout
}

/// `repr(pickle.loads(stdin))` under `py` (after zlib.decompress when `zlib`).
fn load_repr(p: Py, value: &[u8], zlib: bool) -> String {
    let code = format!(
        "import sys, pickle, zlib\n\
         data = sys.stdin{}.read()\n\
         data = zlib.decompress(data) if {} else data\n\
         sys.stdout.write(repr(pickle.loads(data)))",
        if p == Py::Py3 { ".buffer" } else { "" },
        if zlib { "True" } else { "False" }
    );
    String::from_utf8(py(p, &code, value)).unwrap()
}

fn store(c: &mut Client, key: &str, flags: u32, value: &[u8]) {
    let mut req = format!("set {key} {flags} 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n");
    assert_eq!(c.call(&req, b"\r\n"), b"STORED\r\n");
}

/// `get key` -> (flags, value).
fn fetch(c: &mut Client, key: &str) -> (u32, Vec<u8>) {
    c.send(format!("get {key}\r\n").as_bytes());
    let header = String::from_utf8(c.read_line()).unwrap();
    let parts: Vec<&str> = header.trim_end().split(' ').collect();
    assert_eq!(parts[0], "VALUE", "{header:?}");
    let len: usize = parts[3].parse().unwrap();
    let value = c.read_exact(len + 2);
    assert_eq!(c.read_line(), b"END\r\n");
    (parts[2].parse().unwrap(), value[..len].to_vec())
}

/// A py2 listener (0) and a py3 listener (1) in front of `mc`, one default route.
fn two_listener_config(mc: &Memcached) -> Config {
    Config::quick(
        &[
            ("127.0.0.1:0".into(), ClientRuntime::Py2),
            ("127.0.0.1:0".into(), ClientRuntime::Py3),
        ],
        &[mc.addr_string()],
    )
}

fn two_listeners(mc: &Memcached, mode: Mode) -> Proxy {
    let mut config = two_listener_config(mc);
    config.routes[0].mode = mode;
    Proxy::start(config)
}

const PY3_OBJ: &str = "{'name': 'caf\\u00e9', 'n': [1, 2.5, None, True], 't': ('x', 3)}";

#[test]
fn py3_protocol4_value_reads_in_py2_and_is_stored_as_protocol2() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    let p4 = py(
        Py::Py3,
        &format!("import pickle, sys; sys.stdout.buffer.write(pickle.dumps({PY3_OBJ}, 4))"),
        b"",
    );
    assert_eq!(&p4[..2], b"\x80\x04");
    let mut py3 = Client::connect(proxy.addr(1)).unwrap();
    store(&mut py3, "obj", 1, &p4);
    // store_protocol = 2: memcached holds a protocol-2 pickle.
    let mut direct = Client::connect(mc.addr()).unwrap();
    let (flags, stored) = fetch(&mut direct, "obj");
    assert_eq!(flags, 1);
    assert_eq!(&stored[..2], b"\x80\x02", "{}", show(&stored));
    // Python 2 loads it through the py2 listener.
    let mut py2 = Client::connect(proxy.addr(0)).unwrap();
    let (flags, value) = fetch(&mut py2, "obj");
    assert_eq!(flags, 1);
    // The dict's items in key order: exact values and types (`keep`: Python 3 text is unicode).
    let items = "import sys, pickle\n\
                 sys.stdout.write(repr(sorted(pickle.loads(sys.stdin.read()).items())))";
    assert_eq!(
        String::from_utf8(py(Py::Py2, items, &value)).unwrap(),
        "[(u'n', [1, 2.5, None, True]), (u'name', u'caf\\xe9'), (u't', (u'x', 3))]"
    );
    // And Python 3 still reads the original object through its listener.
    let (_, value) = fetch(&mut py3, "obj");
    let got = load_repr(Py::Py3, &value, false);
    assert_eq!(
        got,
        "{'name': 'café', 'n': [1, 2.5, None, True], 't': ('x', 3)}"
    );
}

/// `py2_text = utf8` is how values are served to Python 2 readers, not how they are stored:
/// the protocol-2 form stored for Python 2 hosts keeps text as `unicode`, so it still loads in
/// Python 3 as written, under every `py3_str` and straight from memcached (stored as UTF-8
/// `str`, a Python 3 dict came back mangled under `latin1`, as bytes under `bytes`, and failed
/// straight from memcached), and a Python 2 value holding only `unicode` is stored as sent (it
/// was stored as UTF-8 `str`, and Django 1.11's own non-ASCII `SafeText` failed to load).
#[test]
fn py2_text_utf8_serves_python2_readers_and_stores_text_as_unicode() {
    let mc = Memcached::start();
    let mut config = two_listener_config(&mc);
    config.routes[0].py2_text = Py2Text::Utf8;
    config.routes[0].py3_str = Py3Str::Latin1;
    let proxy = Proxy::start(config);
    let p4 = py(
        Py::Py3,
        &format!("import pickle, sys; sys.stdout.buffer.write(pickle.dumps({PY3_OBJ}, 4))"),
        b"",
    );
    let mut py3 = Client::connect(proxy.addr(1)).unwrap();
    store(&mut py3, "obj", 1, &p4);
    let mut direct = Client::connect(mc.addr()).unwrap();
    let (_, stored) = fetch(&mut direct, "obj");
    assert_eq!(&stored[..2], b"\x80\x02", "{}", show(&stored));
    let original = "{'name': 'café', 'n': [1, 2.5, None, True], 't': ('x', 3)}";
    assert_eq!(load_repr(Py::Py3, &stored, false), original);
    // Python 2's dict items in key order.
    let py2_items = |value: &[u8]| {
        let items = "import sys, pickle\n\
                     sys.stdout.write(repr(sorted(pickle.loads(sys.stdin.read()).items())))";
        String::from_utf8(py(Py::Py2, items, value)).unwrap()
    };
    assert_eq!(
        py2_items(&stored),
        "[(u'n', [1, 2.5, None, True]), (u'name', u'caf\\xe9'), (u't', (u'x', 3))]"
    );
    let (_, value) = fetch(&mut py3, "obj");
    assert_eq!(load_repr(Py::Py3, &value, false), original);
    let mut py2 = Client::connect(proxy.addr(0)).unwrap();
    let (_, value) = fetch(&mut py2, "obj");
    assert_eq!(
        py2_items(&value),
        "[('n', [1, 2.5, None, True]), ('name', 'caf\\xc3\\xa9'), ('t', ('x', 3))]"
    );
    // Python 2's own unicode-only value, stored through its listener, is stored as sent.
    let p2 = py(
        Py::Py2,
        "import cPickle, sys; sys.stdout.write(cPickle.dumps([u'\\xe9t\\xe9'], 2))",
        b"",
    );
    store(&mut py2, "u", 1, &p2);
    assert_eq!(fetch(&mut direct, "u").1, p2);
}

/// A Python 3 value whose protocol-2 form Python 3 itself would load differently is stored as
/// sent (counted refused `lossy_for_py3`): `FileNotFoundError` and `ModuleNotFoundError` would
/// come back as `OSError` and `ImportError`, a `datetime` with `fold=1` with `fold=0`, straight
/// from memcached and through the proxy. Python 2 readers of the proxy still get protocol 2.
#[test]
fn a_store_python_3_would_read_back_changed_is_stored_as_sent() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    let mut py3 = Client::connect(proxy.addr(1)).unwrap();
    let mut py2 = Client::connect(proxy.addr(0)).unwrap();
    let mut direct = Client::connect(mc.addr()).unwrap();
    let show_py3 = "import sys, pickle\n\
                    v = pickle.loads(sys.stdin.buffer.read())\n\
                    sys.stdout.write(repr([(type(x).__name__, getattr(x, 'fold', None)) for x in v]))";
    let cases = [
        (
            "FileNotFoundError('gone'), ModuleNotFoundError('m')",
            "[('FileNotFoundError', None), ('ModuleNotFoundError', None)]",
            "[('OSError', None), ('ImportError', None)]",
        ),
        (
            "datetime.datetime(2020, 11, 1, 1, 30, fold=1)",
            "[('datetime', 1)]",
            "[('datetime', 0)]",
        ),
    ];
    for (i, (values, as_written, changed)) in cases.iter().enumerate() {
        let key = format!("lossy{i}");
        let code = format!(
            "import pickle, sys, datetime\n\
             sys.stdout.buffer.write(pickle.dumps([{values}], 4))"
        );
        let p4 = py(Py::Py3, &code, b"");
        // What storing the protocol-2 form would do: CPython 3's own protocol 2 shows it.
        let p2 = py(
            Py::Py3,
            &format!("import pickle, sys, datetime\nsys.stdout.buffer.write(pickle.dumps([{values}], 2))"),
            b"",
        );
        assert_eq!(
            String::from_utf8(py(Py::Py3, show_py3, &p2)).unwrap(),
            *changed
        );
        store(&mut py3, &key, 1, &p4);
        assert_eq!(fetch(&mut direct, &key).1, p4, "stored as sent");
        let (_, through) = fetch(&mut py3, &key);
        assert_eq!(
            String::from_utf8(py(Py::Py3, show_py3, &through)).unwrap(),
            *as_written
        );
        let (_, for_py2) = fetch(&mut py2, &key);
        assert_eq!(&for_py2[..2], b"\x80\x02", "{}", show(&for_py2));
        let types = "import sys, pickle\n\
                     sys.stdout.write(repr([type(x).__name__ for x in pickle.loads(sys.stdin.read())]))";
        let want = if i == 0 {
            "['OSError', 'ImportError']"
        } else {
            "['datetime']"
        };
        assert_eq!(
            String::from_utf8(py(Py::Py2, types, &for_py2)).unwrap(),
            want
        );
    }
    let metrics = proxy.metrics_text();
    for line in [
        r#"picklebridge_transcode_refusals_total{reason="lossy_for_py3",route="default"} 2"#,
        r#"picklebridge_transcodes_total{direction="store",outcome="refused",route="default"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

/// CPython 3.11.2 (Debian 12's) pickles enum members as `getattr(Class, 'NAME')`, and the
/// firewall denies `getattr`: such a call is judged as the dotted name it walks to, so a
/// Python 3 client reads its own enum members back through the proxy (it got a miss, at every
/// pickle protocol python-memcached can be given). A flag combination is
/// `_operator.or_(getattr(..), getattr(..))`. A datetime with a `zoneinfo` zone (Django 4.x's
/// `localtime()`) names `zoneinfo.ZoneInfo._unpickle`, a dotted name the class-only rule
/// denied: it was a miss too.
#[test]
fn enum_members_and_zoneinfo_datetimes_read_back() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    let script = "import memcache, sys, http, re, pickle, datetime, zoneinfo\n\
                  z = zoneinfo.ZoneInfo('Europe/Paris')\n\
                  v = [http.HTTPStatus.NOT_FOUND, re.RegexFlag.MULTILINE, re.I | re.M, 'x',\n\
                  \x20    datetime.datetime(2024, 7, 1, 12, 30, tzinfo=z)]\n\
                  assert b'getattr' in pickle.dumps(v, 5), 'this Python pickles enums by value'\n\
                  out = []\n\
                  for proto in (0, 2, 5):\n\
                  \x20   mc = memcache.Client([sys.argv[1]], pickleProtocol=proto)\n\
                  \x20   assert mc.set('enum%d' % proto, v)\n\
                  \x20   out.append(repr(mc.get('enum%d' % proto)) == repr(v))\n\
                  print(out)\n";
    let addr = proxy.addr(1).to_string();
    let out = run(Py::Py3, &["-c", script, &addr], b"", T);
    out.assert_ok("enum members through the py3 listener");
    assert_eq!(out.stdout_str().trim(), "[True, True, True]");
    let metrics = proxy.metrics_text();
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("picklebridge_unsafe_globals_total{") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn py2_utf8_str_reads_in_py3() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    let p2 = py(
        Py::Py2,
        "import pickle, sys; sys.stdout.write(pickle.dumps({'a': '\\xe7\\x88\\xb1', 'b': 1}, 2))",
        b"",
    );
    // Without the proxy, Python 3 cannot load it.
    let direct_fail = run(
        Py::Py3,
        &[
            "-c",
            "import sys, pickle; pickle.loads(sys.stdin.buffer.read())",
        ],
        &p2,
        T,
    );
    assert_ne!(direct_fail.code, Some(0));
    assert!(
        direct_fail.stderr.contains("UnicodeDecodeError"),
        "{}",
        direct_fail.stderr
    );
    let mut py2 = Client::connect(proxy.addr(0)).unwrap();
    store(&mut py2, "s", 1, &p2);
    let mut py3 = Client::connect(proxy.addr(1)).unwrap();
    let (_, value) = fetch(&mut py3, "s");
    let got = load_repr(Py::Py3, &value, false);
    assert_eq!(got, "{'a': '爱', 'b': 1}");
}

#[test]
fn zlib_compressed_pickle_is_rewritten_inside_and_keeps_its_flags() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    let code = format!("import pickle, zlib, sys; sys.stdout.buffer.write(zlib.compress(pickle.dumps({PY3_OBJ}, 4)))");
    let z = py(Py::Py3, &code, b"");
    // Written straight to memcached (as a py3 host without the proxy would).
    let mut direct = Client::connect(mc.addr()).unwrap();
    store(&mut direct, "z", 9, &z);
    let mut py2 = Client::connect(proxy.addr(0)).unwrap();
    let (flags, value) = fetch(&mut py2, "z");
    assert_eq!(flags, 9);
    assert_ne!(value, z);
    let got = load_repr(Py::Py2, &value, true);
    assert!(got.contains("'t': (u'x', 3)"), "{got}");
}

#[test]
fn observe_mode_changes_no_byte_and_counts_the_mismatch() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Observe);
    let p4 = py(
        Py::Py3,
        &format!("import pickle, sys; sys.stdout.buffer.write(pickle.dumps({PY3_OBJ}, 4))"),
        b"",
    );
    let mut py3 = Client::connect(proxy.addr(1)).unwrap();
    store(&mut py3, "o", 1, &p4);
    let mut py2 = Client::connect(proxy.addr(0)).unwrap();
    let (_, value) = fetch(&mut py2, "o");
    assert_eq!(value, p4, "observe must forward the stored bytes");
    let mut direct = Client::connect(mc.addr()).unwrap();
    assert_eq!(
        fetch(&mut direct, "o").1,
        p4,
        "observe must store the written bytes"
    );
    let text = proxy.metrics_text();
    let line = text
        .lines()
        .find(|l| l.starts_with("picklebridge_mismatches_total") && l.contains("protocol_too_new"))
        .unwrap_or_else(|| panic!("no protocol_too_new mismatch in\n{text}"));
    assert!(line.ends_with(" 1"), "{line}");
}

#[test]
fn meta_get_value_is_rewritten_and_flags_flag_hidden() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    let p4 = py(
        Py::Py3,
        "import pickle, sys; sys.stdout.buffer.write(pickle.dumps([1, 'x'], 4))",
        b"",
    );
    let mut direct = Client::connect(mc.addr()).unwrap();
    store(&mut direct, "m", 1, &p4);
    let mut py2 = Client::connect(proxy.addr(0)).unwrap();
    py2.send(b"mg m v t\r\n");
    let header = String::from_utf8(py2.read_line()).unwrap();
    let parts: Vec<&str> = header.trim_end().split(' ').collect();
    assert_eq!(parts[0], "VA", "{header}");
    assert_eq!(
        parts[2..],
        ["t-1"],
        "the f flag the proxy added is not shown: {header}"
    );
    let len: usize = parts[1].parse().unwrap();
    let value = py2.read_exact(len + 2);
    assert_eq!(&value[..2], b"\x80\x02");
    assert_eq!(load_repr(Py::Py2, &value[..len], false), "[1, u'x']");
    // `s` with `v` is the length sent; without `v`, the stored size (README "Where a client
    // can tell it from memcached").
    let sized = String::from_utf8(py2.call(b"mg m s v\r\n", b"\r\n")).unwrap();
    assert_eq!(sized, format!("VA {len} s{len}\r\n"));
    py2.read_exact(len + 2);
    let stored = format!("HD s{}\r\n", p4.len());
    assert_ne!(p4.len(), len);
    assert_eq!(py2.call(b"mg m s\r\n", b"\r\n"), stored.as_bytes());
}

#[test]
fn firewall_blocks_poisoned_pickles_and_passes_flagged_non_pickles() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    let mut direct = Client::connect(mc.addr()).unwrap();
    // A complete exploit, and a truncated one (Python runs the REDUCE before failing).
    store(&mut direct, "evil", 1, b"cos\nsystem\n(S'echo pwned'\ntR.");
    store(&mut direct, "evil2", 1, b"cos\nsystem\n(S'echo pwned'\ntR");
    // Bytes that merely carry the pickle flag: Python fails before calling anything.
    store(&mut direct, "junk", 5, b"hi");
    for listener in [0, 1] {
        let mut c = Client::connect(proxy.addr(listener)).unwrap();
        assert_eq!(c.call(b"get evil evil2\r\n", b"END\r\n"), b"END\r\n");
        assert_eq!(
            c.call(b"get junk\r\n", b"END\r\n"),
            b"VALUE junk 5 2\r\nhi\r\nEND\r\n"
        );
    }
    let text = proxy.metrics_text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("picklebridge_unsafe_globals_total")
                && l.contains("blocked")
                && l.ends_with(" 4")),
        "{text}"
    );
    // An mg at memcached's limit of flags, with v and without f: the proxy cannot ask for the
    // flags, serves values as memcached returns them, and still blocks the exploit.
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    let many = "v s k O1 h l u N30 T30 R30 P L I C1 D1 t c";
    let evil = format!("mg evil {many}\r\n");
    assert_eq!(c.call(evil.as_bytes(), b"\r\n"), b"EN kevil O1\r\n");
    let junk = format!("mg junk {many}\r\n");
    let got = c.call(junk.as_bytes(), b"hi\r\n");
    assert!(
        got.starts_with(b"VA 2 s2 kjunk O1 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

/// Values the client libraries store without pickling (README "Django"): python-memcached marks
/// a py2 `str` / py3 `bytes` with flags 0 and text with 16, and the proxy can tell neither
/// writer from the value, so such values cross byte for byte, flags included, and read as they
/// would straight from memcached. The same string inside a list is a pickle, and is converted.
#[test]
fn values_stored_unpickled_cross_untouched_and_pickled_ones_convert() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    let client = |listener: usize| {
        format!(
            "import memcache; mc = memcache.Client(['{}'])\n",
            proxy.addr(listener)
        )
    };
    let py2_set = "mc.set('s', '\\xc3\\xa9t\\xc3\\xa9'); mc.set('u', u'\\xe9'); mc.set('i', 5)\n\
                   mc.set('l', 2**70); mc.set('boxed', ['\\xc3\\xa9t\\xc3\\xa9'])";
    py(Py::Py2, &(client(0) + py2_set), b"");
    let py3_set = "mc.set('t', '\\u00e9t\\u00e9'); mc.set('b', b'\\xff')";
    py(Py::Py3, &(client(1) + py3_set), b"");
    let read = "import sys\n\
                sys.stdout.write(repr([mc.get(k) for k in ['s', 'u', 'i', 'l', 't', 'b', 'boxed']]))";
    assert_eq!(
        String::from_utf8(py(Py::Py3, &(client(1) + read), b"")).unwrap(),
        "[b'\\xc3\\xa9t\\xc3\\xa9', '\u{e9}', 5, 1180591620717411303424, '\u{e9}t\u{e9}', b'\\xff', \
         ['\u{e9}t\u{e9}']]"
    );
    assert_eq!(
        String::from_utf8(py(Py::Py2, &(client(0) + read), b"")).unwrap(),
        "['\\xc3\\xa9t\\xc3\\xa9', u'\\xe9', 5, 1180591620717411303424L, u'\\xe9t\\xe9', '\\xff', \
         ['\\xc3\\xa9t\\xc3\\xa9']]"
    );
    // Through either listener, every unpickled value is memcached's, flags and bytes.
    let mut direct = Client::connect(mc.addr()).unwrap();
    let plain = b"get s u i l t b\r\n";
    let want = direct.call(plain, b"END\r\n");
    assert_eq!(
        want,
        &b"VALUE s 0 5\r\n\xc3\xa9t\xc3\xa9\r\nVALUE u 16 2\r\n\xc3\xa9\r\nVALUE i 2 1\r\n5\r\n\
           VALUE l 4 22\r\n1180591620717411303424\r\nVALUE t 16 5\r\n\xc3\xa9t\xc3\xa9\r\n\
           VALUE b 0 1\r\n\xff\r\nEND\r\n"[..]
    );
    for listener in [0, 1] {
        let mut c = Client::connect(proxy.addr(listener)).unwrap();
        assert_eq!(c.call(plain, b"END\r\n"), want, "listener {listener}");
    }
}

/// With the route's `text_flag` named (16, python-memcached's and pymemcache's `FLAG_TEXT`),
/// strings stored unpickled are served by the text policies as inside pickles: text reads as a
/// UTF-8 `str` in Python 2 under `py2_text = utf8`, and a Python 2 `str` as text in Python 3
/// when it is valid UTF-8 (binary stays `bytes`); compressed ones too. Checked with
/// python-memcached on both runtimes and pymemcache's `pickle_serde` (Django 4.2's).
#[test]
fn bare_strings_follow_the_text_policies_when_the_text_flag_is_named() {
    let mc = Memcached::start();
    let mut config = two_listener_config(&mc);
    config.routes[0].text_flag = 16;
    config.routes[0].py2_text = Py2Text::Utf8;
    // 'big' (1.1 MB of 'a', compressed) inflates past it: not judged, served as stored.
    config.limits.max_inflated = config.limits.item_size;
    let proxy = Proxy::start(config);
    let client = |listener: usize| {
        format!(
            "import memcache; mc = memcache.Client(['{}'])\n",
            proxy.addr(listener)
        )
    };
    let py2_set = "mc.set('s', '\\xc3\\xa9t\\xc3\\xa9'); mc.set('bin', '\\xff\\x00')\n\
                   mc.set('z', '\\xc3\\xa9' * 300, min_compress_len=10); mc.set('i', 5)\n\
                   mc.set('big', 'a' * 1100000, min_compress_len=10)";
    py(Py::Py2, &(client(0) + py2_set), b"");
    let py3_set = "mc.set('t', '\\u00e9t\\u00e9'); mc.set('b', b'\\xff')";
    py(Py::Py3, &(client(1) + py3_set), b"");
    let mut direct = Client::connect(mc.addr()).unwrap();
    let stored = direct.call(b"get s bin z i t b big\r\n", b"END\r\n");
    for key in ["z", "big"] {
        assert!(
            show(&stored).contains(&format!("VALUE {key} 8 ")),
            "python-memcached compressed {key}: {}",
            show(&stored)
        );
    }
    let keys = "['s', 'bin', 'z', 'i', 't', 'b']";
    let read = format!("import sys\nsys.stdout.write(repr([mc.get(k) for k in {keys}]))");
    assert_eq!(
        String::from_utf8(py(Py::Py3, &(client(1) + &read), b"")).unwrap(),
        format!(
            "['\u{e9}t\u{e9}', b'\\xff\\x00', '{}', 5, '\u{e9}t\u{e9}', b'\\xff']",
            "\u{e9}".repeat(300)
        )
    );
    let pymemcache = format!(
        "import sys\nfrom pymemcache.client.base import Client\nfrom pymemcache import serde\n\
         mc = Client('{}', serde=serde.pickle_serde)\n\
         sys.stdout.write(repr([mc.get(k) for k in {keys}]))",
        proxy.addr(1)
    );
    // pymemcache's pickle_serde (Django's PyMemcacheCache) inflates nothing: compressed text
    // is served to it inflated.
    assert_eq!(
        String::from_utf8(py(Py::Py3, &pymemcache, b"")).unwrap(),
        format!(
            "['\u{e9}t\u{e9}', b'\\xff\\x00', '{}', 5, '\u{e9}t\u{e9}', b'\\xff']",
            "\u{e9}".repeat(300)
        )
    );
    // Past max_inflated: as stored, so python-memcached inflates it to bytes, and counted.
    let read_big = "import sys\nsys.stdout.write(repr(mc.get('big') == b'a' * 1100000))";
    assert_eq!(py(Py::Py3, &(client(1) + read_big), b""), b"True");
    // Python 2 code compares what it reads with its own literals.
    let py2_check = format!(
        "import sys\nsys.stdout.write(repr([mc.get('t') == '\\xc3\\xa9t\\xc3\\xa9', \
         [mc.get(k) for k in {keys}]]))"
    );
    assert_eq!(
        String::from_utf8(py(Py::Py2, &(client(0) + &py2_check), b"")).unwrap(),
        format!(
            "[True, ['\\xc3\\xa9t\\xc3\\xa9', '\\xff\\x00', '{}', 5, '\\xc3\\xa9t\\xc3\\xa9', '\\xff']]",
            "\\xc3\\xa9".repeat(300)
        )
    );
    // The meta protocol: the client's own `f` shows the flags served.
    let mut py3 = Client::connect(proxy.addr(1)).unwrap();
    assert_eq!(
        py3.call(b"mg s f v\r\n", b"\r\n\xc3\xa9t\xc3\xa9\r\n"),
        b"VA 5 f16\r\n\xc3\xa9t\xc3\xa9\r\n"
    );
    assert_eq!(
        py3.call(b"mg b f v\r\n", b"\r\n\xff\r\n"),
        b"VA 1 f0\r\n\xff\r\n"
    );
    let z = format!("VA 600 f16\r\n{}\r\n", "\u{e9}".repeat(300));
    assert_eq!(py3.call(b"mg z f v\r\n", b"\xc3\xa9\r\n"), z.as_bytes());
    let mut py2 = Client::connect(proxy.addr(0)).unwrap();
    assert_eq!(
        py2.call(b"mg t v f\r\n", b"\r\n\xc3\xa9t\xc3\xa9\r\n"),
        b"VA 5 f0\r\n\xc3\xa9t\xc3\xa9\r\n"
    );
    // Stored as the clients wrote them.
    assert_eq!(
        direct.call(b"get s bin z i t b big\r\n", b"END\r\n"),
        stored
    );
    let metrics = proxy.metrics_text();
    for line in [
        r#"picklebridge_bare_strings_converted_total{reader="py2",route="default"} 3"#,
        r#"picklebridge_bare_strings_converted_total{reader="py3",route="default"} 6"#,
        r#"picklebridge_bare_strings_refused_total{reason="inflate_too_large",route="default"} 1"#,
        r#"picklebridge_bare_strings_refused_total{reason="zlib_corrupt",route="default"} 0"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

/// A stored pickle whose protocol-2 rewrite would fit `item_size` only without memcached's own
/// item overhead (header, key, flags, cas) is stored as sent, as memcached takes it directly:
/// the rewrite would be refused there (`SERVER_ERROR object too large for cache`), and the set
/// would fail where it succeeds without the proxy.
#[test]
fn a_store_whose_rewrite_would_not_fit_memcached_keeps_the_original() {
    let mc = Memcached::start();
    let proxy = two_listeners(&mc, Mode::Transcode);
    // 1 048 409 bytes at protocol 4; its rewrite is 1 048 543 bytes (under 1 MiB, but not
    // with memcached's item overhead and the key: 67 bytes here, so 1 048 509 at most).
    let value = py(
        Py::Py3,
        "import pickle, sys\n\
         sys.stdout.buffer.write(pickle.dumps(b'a' * 1048300 + b'\\xe9' * 100, 4))",
        b"",
    );
    assert_eq!(value.len(), 1_048_409);
    let mut py3 = Client::connect(proxy.addr(1)).unwrap();
    store(&mut py3, "near", 1, &value);
    let mut direct = Client::connect(mc.addr()).unwrap();
    let (flags, stored) = fetch(&mut direct, "near");
    assert_eq!(flags, 1);
    assert!(stored == value, "stored as sent");
    // ms with flags past 32 bits (memcached keeps the low 32: 1) is a pickle store too.
    let small = py(
        Py::Py3,
        "import pickle, sys; sys.stdout.buffer.write(pickle.dumps({'a': b'\\xff'}, 4))",
        b"",
    );
    let mut req = format!("ms wide {} F4294967297\r\n", small.len()).into_bytes();
    req.extend_from_slice(&small);
    req.extend_from_slice(b"\r\n");
    assert_eq!(py3.call(&req, b"\r\n"), b"HD\r\n");
    let (flags, stored) = fetch(&mut direct, "wide");
    assert_eq!(flags, 1);
    assert_eq!(&stored[..2], b"\x80\x02", "{}", show(&stored));
}
