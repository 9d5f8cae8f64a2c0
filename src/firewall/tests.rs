//! Firewall unit tests: spellings, wildcards, dotted and dunder names, config entries, modes.
use super::*;
use crate::pickle::MAX_SUMMARY_GLOBALS;

fn g(module: &str, name: &str) -> Global {
    Global {
        module: module.into(),
        name: name.into(),
    }
}

fn rule(firewall: &Firewall, module: &str, name: &str) -> Option<Rule> {
    firewall.rule_for(&g(module, name))
}

#[test]
fn denies_process_execution_in_every_spelling() {
    let fw = Firewall::default();
    for (module, name) in [
        ("os", "system"),
        ("posix", "system"),
        ("nt", "system"),
        ("os", "popen"),
        ("os", "execv"),
        ("os", "execvpe"),
        ("posix", "spawnv"),
        ("os", "spawnlp"),
        ("subprocess", "Popen"),
        ("subprocess", "check_output"),
        ("commands", "getoutput"),
        ("popen2", "popen3"),
        ("pty", "spawn"),
        ("platform", "popen"),
        ("_posixsubprocess", "fork_exec"),
        ("multiprocessing.popen_fork", "Popen"),
    ] {
        assert_eq!(
            rule(&fw, module, name),
            Some(Rule::Denied),
            "{module}.{name}"
        );
    }
}

#[test]
fn denies_builtins_in_py2_and_py3_spellings() {
    let fw = Firewall::default();
    for module in ["builtins", "__builtin__", "__builtins__", "exceptions"] {
        for name in [
            "eval",
            "exec",
            "execfile",
            "compile",
            "getattr",
            "setattr",
            "open",
            "file",
            "input",
            "raw_input",
            "apply",
            "globals",
            "vars",
            "exit",
        ] {
            assert_eq!(
                rule(&fw, module, name),
                Some(Rule::Denied),
                "{module}.{name}"
            );
        }
        // `__import__` is on the list, and would be caught as a dunder anyway.
        assert!(rule(&fw, module, "__import__").is_some());
    }
}

#[test]
fn denies_nested_loaders_and_interpreter_internals() {
    let fw = Firewall::default();
    for (module, name) in [
        ("pickle", "loads"),
        ("pickle", "load"),
        ("cPickle", "loads"),
        ("_pickle", "loads"),
        ("pickle", "Unpickler"),
        ("marshal", "loads"),
        ("sys", "modules"),
        ("sys", "exit"),
        ("code", "InteractiveInterpreter"),
        ("codeop", "compile_command"),
        ("importlib", "import_module"),
        ("_frozen_importlib", "_bootstrap"),
        ("ctypes", "CDLL"),
        ("ctypes.util", "find_library"),
        ("_ctypes", "dlopen"),
        ("types", "FunctionType"),
        ("types", "CodeType"),
        ("new", "function"),
        ("webbrowser", "open"),
        ("shutil", "rmtree"),
        ("socket", "create_connection"),
        ("_socket", "socket"),
        ("urllib2", "urlopen"),
        ("urllib.request", "urlopen"),
        ("urllib", "urlopen"),
        ("httplib", "HTTPConnection"),
        ("operator", "attrgetter"),
        ("_operator", "methodcaller"),
        ("io", "open"),
        ("_io", "FileIO"),
        ("logging.config", "listen"),
        ("yaml", "unsafe_load"),
        ("numpy", "load"),
        ("timeit", "timeit"),
        ("gc", "get_objects"),
        // Found by review on 2026-11-29: code run, commands run, files written.
        ("typing", "_eval_type"),
        ("typing", "get_type_hints"),
        ("uuid", "_get_command_stdout"),
        ("uuid", "_find_mac"),
        ("Cookie", "SerialCookie"),
        ("logging", "FileHandler"),
        ("logging.handlers", "RotatingFileHandler"),
        ("zipfile", "ZipFile"),
        ("sqlite3", "connect"),
        ("_sqlite3", "connect"),
        ("dbm.gnu", "open"),
        ("anydbm", "open"),
        ("django.utils.module_loading", "import_string"),
        ("django.core.management", "call_command"),
        ("platform", "_syscmd_uname"),
        ("pkg_resources", "load_entry_point"),
        ("werkzeug.utils", "import_string"),
        ("xmlrpc.server", "SimpleXMLRPCServer"),
        ("venv", "create"),
        ("requests", "get"),
        ("requests.api", "post"),
        ("faulthandler", "_sigsegv"),
        ("time", "sleep"),
        // Found by a second review on 2026-11-29.
        ("django.urls", "get_callable"),
        ("django.core.files.storage", "get_storage_class"),
        ("django.utils.log", "configure_logging"),
        ("dataclasses", "_create_fn"),
        ("test.support.script_helper", "run_python_until_end"),
        ("mimetools", "pipeto"),
        ("tarfile", "bltn_open"),
        ("_pyio", "open"),
        ("tokenize", "_builtin_open"),
        ("wave", "Wave_write"),
        // Python 3's fix_imports maps whichdb to dbm.
        ("whichdb", "open"),
    ] {
        assert_eq!(
            rule(&fw, module, name),
            Some(Rule::Denied),
            "{module}.{name}"
        );
    }
}

#[test]
fn passes_globals_of_ordinary_cached_values() {
    let fw = Firewall::default();
    for (module, name) in [
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copy_reg", "__newobj__"),
        ("__builtin__", "object"),
        ("__builtin__", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("__builtin__", "unicode"),
        ("exceptions", "ValueError"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("decimal", "Decimal"),
        ("collections", "OrderedDict"),
        ("uuid", "UUID"),
        ("django.db.models.base", "model_unpickle"),
        ("myapp.models", "Order"),
        ("myapp.models", "Order.Status"),
        ("functools", "partial"),
        ("pathlib", "PosixPath"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("codecs", "encode"),
        ("types", "SimpleNamespace"),
        ("posixpath", "join"),
        ("ossify", "thing"),
        ("system", "os"),
    ] {
        assert_eq!(rule(&fw, module, name), None, "{module}.{name}");
    }
}

#[test]
fn module_wildcards_cover_submodules_but_not_lookalikes() {
    let fw = Firewall::default();
    assert_eq!(rule(&fw, "subprocess", "anything"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "subprocess.sub", "x"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "os.path", "join"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "subprocessing", "x"), None);
    assert_eq!(rule(&fw, "my.subprocess", "x"), None);
}

#[test]
fn dotted_names_pass_only_through_classes() {
    let fw = Firewall::default();
    // posixpath.os is the os module: protocol 4 resolves `os.system` by walking attributes.
    assert_eq!(rule(&fw, "posixpath", "os.system"), Some(Rule::DottedName));
    assert_eq!(rule(&fw, "glob", "os.system"), Some(Rule::DottedName));
    assert_eq!(
        rule(&fw, "pathlib", "Path.write_text"),
        Some(Rule::DottedName)
    );
    assert_eq!(
        rule(&fw, "builtins", "object.__subclasses__"),
        Some(Rule::Dunder)
    );
    assert_eq!(rule(&fw, "myapp", "f.__globals__"), Some(Rule::Dunder));
    assert_eq!(rule(&fw, "myapp", "__loader__"), Some(Rule::Dunder));
    assert_eq!(rule(&fw, "enum", "Outer.Inner.Leaf"), None);
    // Reached through a denied global (a Python 2 reader's rewrite of the nested class names
    // `types.FunctionType` itself): denied as it is.
    assert_eq!(rule(&fw, "types", "FunctionType.Inner"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "__builtin__", "file.Mode"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "io", "FileIO.Raw.Inner"), Some(Rule::Denied));
    // How CPython pickles a zoneinfo.ZoneInfo (a datetime's tzinfo in Django 4.x's localtime).
    assert_eq!(rule(&fw, "zoneinfo", "ZoneInfo._unpickle"), None);
    assert_eq!(
        rule(&fw, "zoneinfo", "ZoneInfo.from_file"),
        Some(Rule::DottedName)
    );
}

#[test]
fn extra_entries_deny_and_allow() {
    let rules = FirewallRules {
        deny: vec![
            "myapp.tasks.*".into(),
            "myapp.admin:reset".into(),
            "requests.get".into(),
        ],
        allow: vec!["os.stat_result".into(), "posix:terminal_size".into()],
        ..FirewallRules::default()
    };
    let fw = Firewall::new(FirewallMode::Block, &rules).expect("valid rules");
    assert_eq!(rule(&fw, "myapp.tasks", "run"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "myapp.tasks.celery", "run"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "myapp.admin", "reset"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "requests", "get"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "myapp.admin", "other"), None);
    assert_eq!(rule(&fw, "posix", "stat_result"), None);
    assert_eq!(rule(&fw, "os", "terminal_size"), None);
    assert_eq!(rule(&fw, "os", "system"), Some(Rule::Denied));
}

/// An `only` list: a global passes when an entry names it (a module with its submodules, a
/// class with what is reached through it) or it is a known value type; the deny rules come
/// first, so an entry never lets a denied global through; `allow` still lets its globals by.
#[test]
fn only_lists_what_may_pass() {
    let rules = FirewallRules {
        only: vec!["myapp.*".into(), "shop.models.Order".into(), "os.*".into()],
        allow: vec!["posix:stat_result".into()],
        ..FirewallRules::default()
    };
    let fw = Firewall::new(FirewallMode::Block, &rules).expect("valid rules");
    assert_eq!(rule(&fw, "myapp", "Thing"), None);
    assert_eq!(rule(&fw, "myapp.models.sub", "Thing"), None);
    assert_eq!(rule(&fw, "shop.models", "Order"), None);
    assert_eq!(rule(&fw, "shop.models", "Order.PAID"), None);
    assert_eq!(rule(&fw, "shop.models", "Customer"), Some(Rule::NotListed));
    assert_eq!(rule(&fw, "myappx", "Thing"), Some(Rule::NotListed));
    assert_eq!(rule(&fw, "typing", "List"), Some(Rule::NotListed));
    // Value types pass unnamed, in either runtime's spelling.
    for (m, n) in [
        ("datetime", "datetime"),
        ("decimal", "Decimal"),
        ("__builtin__", "set"),
        ("copy_reg", "_reconstructor"),
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
        ("zoneinfo", "ZoneInfo._unpickle"),
    ] {
        assert_eq!(rule(&fw, m, n), None, "{m}.{n}");
    }
    // Deny rules first: `os.*` in `only` does not let os.system through; `allow` does its own.
    assert_eq!(rule(&fw, "posix", "system"), Some(Rule::Denied));
    assert_eq!(rule(&fw, "os", "stat_result"), None);
    assert_eq!(rule(&fw, "builtins", "eval"), Some(Rule::Denied));
    assert_eq!(Rule::NotListed.as_str(), "not_listed");
    // Without entries nothing changes.
    assert_eq!(rule(&Firewall::default(), "typing", "List"), None);
    let bad = FirewallRules {
        only: vec!["ok.*".into(), "no dots".into()],
        ..FirewallRules::default()
    };
    let errors = Firewall::new(FirewallMode::Block, &bad).expect_err("invalid");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().starts_with("only[1] = \"no dots\""),
        "{errors:?}"
    );
}

#[test]
fn rejects_malformed_entries_all_at_once() {
    let rules = FirewallRules {
        deny: vec![
            "os".into(),
            "ok.name".into(),
            "a..b".into(),
            " os.system".into(),
            "x:".into(),
        ],
        allow: vec![
            "subprocess.*".into(),
            "builtins:*".into(),
            "fine:name".into(),
        ],
        ..FirewallRules::default()
    };
    let errors = Firewall::new(FirewallMode::Block, &rules).expect_err("invalid rules");
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 6, "{shown:#?}");
    assert!(shown[0].starts_with("deny[0] = \"os\""), "{shown:#?}");
    assert!(
        shown[4].starts_with("allow[0] = \"subprocess.*\""),
        "{shown:#?}"
    );
}

#[test]
fn rules_deserialize_strictly() {
    let rules: FirewallRules =
        toml::from_str("deny = [\"a.b\"]\nallow = [\"c.d\"]\n").expect("toml");
    assert_eq!(rules.deny, ["a.b"]);
    assert!(toml::from_str::<FirewallRules>("denny = []").is_err());
    #[derive(Deserialize)]
    struct Route {
        firewall: FirewallMode,
    }
    for (text, mode) in [
        ("block", FirewallMode::Block),
        ("observe", FirewallMode::Observe),
        ("allow", FirewallMode::Allow),
    ] {
        let route: Route = toml::from_str(&format!("firewall = \"{text}\"")).expect("mode");
        assert_eq!(route.firewall, mode);
        assert_eq!(mode.as_str(), text);
    }
    assert!(toml::from_str::<Route>("firewall = \"off\"").is_err());
    assert_eq!(FirewallMode::default(), FirewallMode::Block);
}

#[test]
fn check_returns_the_first_denied_global() {
    let fw = Firewall::default();
    let globals = [
        g("datetime", "datetime"),
        g("posix", "system"),
        g("os", "popen"),
    ];
    assert_eq!(fw.check(&globals), Some(&globals[1]));
    assert_eq!(fw.check(&globals[..1]), None);
    assert_eq!(fw.check(&[]), None);
}

#[test]
fn merged_rules_keep_both_lists_in_order() {
    let a = FirewallRules {
        deny: vec!["a.b".into()],
        allow: vec!["c.d".into()],
        ..FirewallRules::default()
    };
    let b = FirewallRules {
        deny: vec!["e.f".into()],
        allow: vec![],
        ..FirewallRules::default()
    };
    let m = a.merged(&b);
    assert_eq!(m.deny, ["a.b", "e.f"]);
    assert_eq!(m.allow, ["c.d"]);
    let c = FirewallRules {
        only: vec!["g.*".into()],
        ..FirewallRules::default()
    };
    assert_eq!(m.merged(&c).only, ["g.*"]);
}

fn summary(globals: Vec<Global>) -> Summary {
    Summary {
        declared_protocol: Some(2),
        max_protocol: 2,
        writer: crate::pickle::Writer::Unknown,
        py2_str_non_ascii: false,
        py2_binary_state: false,
        py3_text: false,
        py3_only_global: false,
        py2_only_global: false,
        globals: globals.into(),
        globals_complete: true,
    }
}

fn transcoded(outcome: Outcome, globals: Option<Vec<Global>>) -> Transcoded {
    Transcoded {
        outcome,
        summary: globals.map(summary),
    }
}

#[test]
fn modes_decide_what_the_handler_does() {
    let bad = transcoded(
        Outcome::Unchanged,
        Some(vec![g("datetime", "date"), g("nt", "system")]),
    );
    let finding = Finding::Global {
        global: &bad.summary.as_ref().expect("s").globals[1],
        rule: Rule::Denied,
    };
    let block = Firewall::with_defaults(FirewallMode::Block);
    let observe = Firewall::with_defaults(FirewallMode::Observe);
    let allow = Firewall::with_defaults(FirewallMode::Allow);
    assert_eq!(block.judge(&bad), Judgement::Block(finding));
    assert_eq!(observe.judge(&bad), Judgement::Observe(finding));
    assert_eq!(allow.judge(&bad), Judgement::Pass);
    assert_eq!(finding.global_name(), "nt.system");
    assert_eq!(finding.rule_str(), "deny_list");

    let good = transcoded(
        Outcome::Rewritten(bytes::Bytes::new()),
        Some(vec![g("datetime", "date")]),
    );
    assert_eq!(block.judge(&good), Judgement::Pass);
    assert_eq!(observe.judge(&good), Judgement::Pass);
    let no_globals = transcoded(Outcome::Refused(Reason::TrailingData), Some(vec![]));
    assert_eq!(block.judge(&no_globals), Judgement::Pass);
}

#[test]
fn an_incomplete_global_list_is_unsafe() {
    let fw = Firewall::default();
    let unparseable = transcoded(Outcome::Refused(Reason::Malformed), None);
    assert_eq!(
        fw.judge(&unparseable),
        Judgement::Block(Finding::Incomplete("unparseable"))
    );
    for reason in [
        Reason::Malformed,
        Reason::Truncated,
        Reason::LimitExceeded,
        Reason::Extension,
    ] {
        let partial = transcoded(Outcome::Refused(reason), Some(vec![g("datetime", "date")]));
        assert_eq!(
            fw.judge(&partial),
            Judgement::Block(Finding::Incomplete(reason.as_str()))
        );
    }
    // A full list the transcoder vouches for passes; any list it does not vouch for is blocked,
    // however short.
    let many: Vec<Global> = (0..MAX_SUMMARY_GLOBALS)
        .map(|i| g("app", &format!("C{i}")))
        .collect();
    let full = transcoded(Outcome::Unchanged, Some(many));
    assert_eq!(fw.judge(&full), Judgement::Pass);
    let mut capped = transcoded(Outcome::Unchanged, Some(vec![g("datetime", "date")]));
    if let Some(s) = capped.summary.as_mut() {
        s.globals_complete = false;
    }
    assert_eq!(
        fw.judge(&capped),
        Judgement::Block(Finding::Incomplete("globals_incomplete"))
    );
    assert_eq!(
        Firewall::with_defaults(FirewallMode::Observe).judge(&capped),
        Judgement::Observe(Finding::Incomplete("globals_incomplete"))
    );
    // A denied global found in the list wins over the incompleteness (better log line).
    let denied = transcoded(
        Outcome::Refused(Reason::Truncated),
        Some(vec![g("os", "system")]),
    );
    assert!(matches!(
        fw.judge(&denied),
        Judgement::Block(Finding::Global {
            rule: Rule::Denied,
            ..
        })
    ));
    assert_eq!(
        Firewall::with_defaults(FirewallMode::Allow).judge(&unparseable),
        Judgement::Pass
    );
}

/// What the firewall finds in `pickle` as a Python 2 and a Python 3 reader's transcode and as
/// `analyze` sees it (all three must agree): `None` to pass, else the global and rule.
fn walk_verdict(pickle: &'static [u8]) -> Option<(String, Rule)> {
    use crate::pickle::{analyze, transcode, Policy, Runtime};
    let fw = Firewall::default();
    let src = bytes::Bytes::from_static(pickle);
    let verdict = |j: Judgement<'_>| match j {
        Judgement::Pass => None,
        Judgement::Block(Finding::Global { global, rule }) => Some((global.to_string(), rule)),
        other => panic!("{other:?}"),
    };
    let analyzed = analyze(&src).expect("parses");
    let of_analyze = verdict(fw.judge_summary(Some(&analyzed), None));
    for target in [Runtime::Py2, Runtime::Py3] {
        let t = transcode(&src, &Policy::for_target(target));
        let refused = match t.outcome {
            Outcome::Refused(r) => Some(r),
            _ => None,
        };
        let got = verdict(fw.judge_summary(t.summary.as_ref(), refused));
        assert_eq!(got, of_analyze, "{target:?}");
    }
    of_analyze
}

/// CPython 3.11.2 (Debian 12) pickles enum members as `getattr(Class, 'NAME')`: such calls
/// are judged as the dotted name they walk to (`Class.NAME`), so enum members pass and a
/// method or dunder reached through `getattr` does not; any other use of `getattr` keeps it
/// listed, and denied.
#[test]
fn getattr_of_a_class_is_judged_as_the_dotted_name_it_walks_to() {
    // [Color.RED, Status.ACTIVE, re.RegexFlag.MULTILINE] by CPython 3.11.2, protocol 5.
    let members: &[u8] = b"\x80\x05\x95{\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x08builtins\x94\
        \x8c\x07getattr\x94\x93\x94\x8c\x07enummod\x94\x8c\x05Color\x94\x93\x94\x8c\x03RED\x94\x86\
        \x94R\x94h\x03h\x04\x8c\x06Status\x94\x93\x94\x8c\x06ACTIVE\x94\x86\x94R\x94h\x03\x8c\x02re\
        \x94\x8c\tRegexFlag\x94\x93\x94\x8c\tMULTILINE\x94\x86\x94R\x94e.";
    assert_eq!(walk_verdict(members), None);
    let summary = crate::pickle::analyze(&bytes::Bytes::from_static(members)).unwrap();
    let listed: Vec<String> = summary.globals.iter().map(Global::to_string).collect();
    assert_eq!(
        listed,
        [
            "enummod.Color",
            "enummod.Status",
            "re.RegexFlag",
            "enummod.Color.RED",
            "enummod.Status.ACTIVE",
            "re.RegexFlag.MULTILINE"
        ]
    );
    // Protocol 2, as the downgrade writes it for Python 2: `__builtin__.getattr`, a unicode name.
    let p2: &[u8] = b"\x80\x02c__builtin__\ngetattr\nq\x00cenummod\nColor\nq\x01X\x03\x00\x00\x00\
        REDq\x02\x86q\x03Rq\x04.";
    assert_eq!(walk_verdict(p2), None);
    let denied = |module: &str, name: &str, rule| Some((format!("{module}.{name}"), rule));
    // A method reached through getattr: pathlib.Path.write_text.
    let method: &[u8] = b"\x80\x02c__builtin__\ngetattr\nq\x00cpathlib\nPath\nq\x01X\n\x00\x00\x00\
        write_textq\x02\x86q\x03Rq\x04.";
    assert_eq!(
        walk_verdict(method),
        denied("pathlib", "Path.write_text", Rule::DottedName)
    );
    // A dunder: enummod.Color.__init__.
    let dunder: &[u8] =
        b"\x80\x02c__builtin__\ngetattr\nq\x00cenummod\nColor\nq\x01X\x08\x00\x00\x00\
        __init__q\x02\x86q\x03Rq\x04.";
    assert_eq!(
        walk_verdict(dunder),
        denied("enummod", "Color.__init__", Rule::Dunder)
    );
    // A denied module stays denied: os.environ walked to (a GLOBAL of os is denied already).
    let module: &[u8] = b"\x80\x02c__builtin__\ngetattr\nq\x00cos\nEnviron\nq\x01X\x03\x00\x00\x00\
        GETq\x02\x86q\x03Rq\x04.";
    assert_eq!(walk_verdict(module), denied("os", "Environ", Rule::Denied));
    let getattr = denied("__builtin__", "getattr", Rule::Denied);
    // Three arguments (a default): not a walk.
    let three: &[u8] =
        b"\x80\x02c__builtin__\ngetattr\nq\x00cenummod\nColor\nq\x01X\x03\x00\x00\x00\
        REDq\x02N\x87q\x03Rq\x04.";
    assert_eq!(walk_verdict(three), getattr);
    // getattr also kept as a value, beside one walk: [Color.RED, getattr].
    let kept: &[u8] = b"\x80\x02]q\x00(c__builtin__\ngetattr\nq\x01cenummod\nColor\nq\x02X\x03\x00\
        \x00\x00REDq\x03\x86q\x04Rq\x05h\x01e.";
    assert_eq!(walk_verdict(kept), getattr);
    // A walk from a walk's result: getattr(getattr(Color, 'RED'), 'Value').
    let nested: &[u8] = b"\x80\x02c__builtin__\ngetattr\nq\x00h\x00cenummod\nColor\nq\x01X\x03\x00\
        \x00\x00REDq\x02\x86q\x03Rq\x04X\x05\x00\x00\x00Valueq\x05\x86q\x06Rq\x07.";
    assert_eq!(walk_verdict(nested), getattr);
    // Called by INST and by OBJ.
    let inst: &[u8] = b"(cenummod\nColor\nX\x03\x00\x00\x00REDi__builtin__\ngetattr\n.";
    assert_eq!(walk_verdict(inst), getattr);
    let obj: &[u8] = b"\x80\x02(c__builtin__\ngetattr\ncenummod\nColor\nX\x03\x00\x00\x00REDo.";
    assert_eq!(walk_verdict(obj), getattr);
    // A DUP of getattr counts as one more use.
    let dup: &[u8] =
        b"\x80\x02c__builtin__\ngetattr\n2cenummod\nColor\nX\x03\x00\x00\x00RED\x86R0.";
    assert_eq!(walk_verdict(dup), getattr);
}
