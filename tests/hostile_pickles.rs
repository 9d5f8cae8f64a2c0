//! Real exploit pickles through the transcoder and the default firewall: each must be judged
//! unsafe, and for the right global, whatever protocol and spelling it uses. The bytes were
//! produced by CPython (`pickle.dumps` of a `__reduce__` returning `os.system`) or written by hand
//! and checked to run the payload under CPython 3.11 / 2.7 (`pickle.loads` printed the echo).
//! Also: ordinary values pass, and pickle bombs are refused by limits instead of exhausting memory.

use bytes::Bytes;
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
    assert!(
        matches!(
            transcoded.outcome,
            Outcome::Refused(Reason::LimitExceeded | Reason::Malformed)
        ),
        "{:?}",
        transcoded.outcome
    );
    let judgement = Firewall::default().judge(&transcoded);
    assert!(matches!(judgement, Judgement::Block(_)), "{judgement:?}");
}
