//! Global names: the summary's list of a value's globals (each once, complete up to its cap);
//! STACK_GLOBAL's names as GLOBAL writes them (a nested class as `getattr(Outer, 'Inner')`,
//! memoized strings); and renaming between the runtimes' spellings (`fix_imports`' tables
//! applied once, INST like GLOBAL, Python 2's own names kept).

use super::*;

#[test]
fn many_distinct_globals_are_each_listed_once() {
    // [m.g0, ..., m.g39, m.g0, ..., m.g39] at protocol 1 (hand-assembled), then renamed ones.
    let mut p = b"](".to_vec();
    for _ in 0..2 {
        for i in 0..40 {
            p.extend_from_slice(format!("cm\ng{i}\n").as_bytes());
        }
    }
    p.extend_from_slice(b"cbuiltins\nrange\ne.");
    let s = analyze(&p).unwrap();
    assert_eq!(s.globals.len(), 41);
    assert_eq!(s.globals[39], Global::new("m", "g39"));
    let out = rewritten(&p, &py2());
    assert!(out.ends_with(b"c__builtin__\nxrange\ne."));
}

#[test]
fn globals_complete_until_the_summary_cap_or_an_extension_code() {
    // [m.g0, ..., m.g{n-1}] at protocol 1: n distinct globals.
    let list = |n: usize| {
        let mut p = b"](".to_vec();
        for i in 0..n {
            p.extend_from_slice(format!("cm\ng{i}\n").as_bytes());
        }
        p.extend_from_slice(b"e.");
        p
    };
    let full = analyze(&list(MAX_SUMMARY_GLOBALS)).unwrap();
    assert_eq!(full.globals.len(), MAX_SUMMARY_GLOBALS);
    assert!(full.globals_complete);
    let over = analyze(&list(MAX_SUMMARY_GLOBALS + 1)).unwrap();
    assert_eq!(over.globals.len(), MAX_SUMMARY_GLOBALS);
    assert!(!over.globals_complete);
    // Repeats of listed globals keep the list complete.
    let mut repeated = list(MAX_SUMMARY_GLOBALS);
    repeated.truncate(repeated.len() - 2);
    repeated.extend_from_slice(b"cm\ng0\ne.");
    assert!(analyze(&repeated).unwrap().globals_complete);
    let t = transcode(&Bytes::from(list(MAX_SUMMARY_GLOBALS + 1)), &py3());
    assert!(!t.summary.unwrap().globals_complete);
    // EXT1 names a global through the copyreg registry.
    let ext = analyze(b"\x80\x02\x82\x01.").unwrap();
    assert!(ext.globals.is_empty());
    assert!(!ext.globals_complete);
}

#[test]
fn stack_global_of_py2_str_or_computed_strings_is_listed() {
    // Python 3 runs STACK_GLOBAL on STRING args decoded as ASCII: os.system is referenced.
    let s = analyze(b"\x80\x04S'os'\nS'system'\n\x93.").unwrap();
    assert_eq!(s.globals, vec![Global::new("os", "system")]);
    // A module name computed by a REDUCE (here str(u'os')) cannot be known: the sentinel.
    let computed = b"\x80\x04cbuiltins\nstr\n\x8c\x02os\x85R\x8c\x06system\x93.";
    let s = analyze(computed).unwrap();
    assert_eq!(
        s.globals[1],
        Global::new(COMPUTED_GLOBAL.0, COMPUTED_GLOBAL.1)
    );
    assert_eq!(refused(computed, &py2()), Reason::Unsupported);
    let t = transcode(&Bytes::from_static(computed), &py3());
    assert!(t
        .summary
        .unwrap()
        .globals
        .contains(&Global::new("<computed>", "__computed__")));
}

#[test]
fn py2_nested_class_is_written_as_getattr_of_its_outer_class() {
    // py3: pickle.dumps(nm.Outer.Inner, 4) without the frame
    let src = b"\x80\x04\x8c\x02nm\x94\x8c\x0bOuter.Inner\x94\x93\x94.";
    // What CPython 3's protocol 2 writes (`save_global`: `getattr(Outer, 'Inner')`). Checked:
    // loads in CPython 2.7 (pickle and cPickle) to nm.Outer.Inner.
    let out = rewritten(src, &py2());
    assert_eq!(
        out,
        b"\x80\x02c__builtin__\ngetattr\nq\x00cnm\nOuter\nX\x05\x00\x00\x00Inner\x86Rq\x01."
    );
    // The output lists the name the call walks to, as the input does (the firewall judges
    // both alike), and `nm.Outer`, which the call goes through.
    let listed = |p: &[u8]| analyze(p).unwrap().globals.to_vec();
    assert_eq!(listed(src), [Global::new("nm", "Outer.Inner")]);
    assert_eq!(
        listed(&out),
        [Global::new("nm", "Outer"), Global::new("nm", "Outer.Inner")]
    );
    let mut utf8 = py2();
    utf8.py2_text = Py2Text::Utf8;
    assert_eq!(
        rewritten(src, &utf8),
        b"\x80\x02c__builtin__\ngetattr\nq\x00cnm\nOuter\nU\x05Inner\x86Rq\x01."
    );
    // Two nested classes share one `getattr` (memoized as CPython does); a module-level
    // class beside them is a GLOBAL.
    // py3: [nm.Outer.Inner, nm.Outer.Other, nm.Top] at protocol 4 without the frame
    let two = b"\x80\x04]\x94(\x8c\x02nm\x94\x8c\x0bOuter.Inner\x94\x93\x94h\x01\x8c\x0bOuter.Other\x94\x93\x94h\x01\x8c\x03Top\x94\x93\x94e.";
    assert_eq!(
        rewritten(two, &py2()),
        &b"\x80\x02]q\x00(c__builtin__\ngetattr\nq\x01cnm\nOuter\nX\x05\x00\x00\x00Inner\x86Rq\x02\
           h\x01cnm\nOuter\nX\x05\x00\x00\x00Other\x86Rq\x03cnm\nTop\nq\x04e."[..]
    );
    // Python 3 readers get the value as it is.
    assert_eq!(
        transcode(&Bytes::from_static(src), &py3()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn py2_nested_class_in_a_set_is_written_inside_the_set_call() {
    // py3: pickle.dumps({nm.Outer.Inner}, 4) without the frame. The fast path's writer stops
    // at a set (a second pass writes it with the first pass's plan); a nested class is the
    // general path's. Its output lacked the set's closing `TUPLE1 REDUCE` (it loaded as a
    // list) when the second pass gave up at the nested class and `downgrade.rs` followed that
    // pass's unfinished plan.
    let src = b"\x80\x04\x8f\x94(\x8c\x02nm\x94\x8c\x0bOuter.Inner\x94\x93\x94\x90.";
    // Checked: loads in CPython 2.7 (pickle and cPickle) to set([nm.Outer.Inner]).
    assert_eq!(
        rewritten(src, &py2()),
        &b"\x80\x02c__builtin__\nset\nq\x00](c__builtin__\ngetattr\nq\x01cnm\nOuter\n\
           X\x05\x00\x00\x00Inner\x86Rq\x02e\x85Rq\x03."[..]
    );
}

#[test]
fn py2_deeper_nested_names_and_walks_from_nested_classes_are_refused() {
    // A name two levels deep would take a walk from a walk's result, which the firewall
    // denies (`getattr` stays listed) where the input's name passes.
    // py3: pickle.dumps(nm.Outer.Deep.Leaf, 4) without the frame
    let deep = b"\x80\x04\x8c\x02nm\x94\x8c\x0fOuter.Deep.Leaf\x94\x93\x94.";
    assert_eq!(refused(deep, &py2()), Reason::Unsupported);
    // So would a member of a nested enum: CPython 3.11.2 pickles nm.Model.Status.PAID as
    // getattr(nm.Model.Status, 'PAID') (protocol 4, without the frame).
    let member = b"\x80\x04\x8c\x08builtins\x94\x8c\x07getattr\x94\x93\x94\x8c\x02nm\x94\
        \x8c\x0cModel.Status\x94\x93\x94\x8c\x04PAID\x94\x86\x94R\x94.";
    assert_eq!(refused(member, &py2()), Reason::Unsupported);
    // The input itself passes the firewall: the call is listed as the name it walks to.
    assert_eq!(
        analyze(member).unwrap().globals.to_vec(),
        [
            Global::new("nm", "Model.Status"),
            Global::new("nm", "Model.Status.PAID")
        ]
    );
    for src in [&deep[..], &member[..]] {
        assert_eq!(
            transcode(&Bytes::copy_from_slice(src), &py3()).outcome,
            Outcome::Unchanged
        );
    }
}

#[test]
fn py2_memoized_module_string_used_as_a_value_is_written_when_first_fetched() {
    // py3: [datetime.date(2015, 3, 4), 'datetime', datetime.time(1, 2)] at protocol 4: the
    // 'datetime' module string of the first STACK_GLOBAL is memoized and BINGET as a list item
    // and as the second STACK_GLOBAL's module.
    let src = b"\x80\x04\x95>\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x08datetime\x94\x8c\x04date\x94\x93\x94C\x04\x07\xdf\x03\x04\x94\x85\x94R\x94h\x01h\x01\x8c\x04time\x94\x93\x94C\x06\x01\x02\x00\x00\x00\x00\x94\x85\x94R\x94e.";
    // Checked: loads in CPython 2.7 to [date(2015, 3, 4), u'datetime', time(1, 2)].
    assert_eq!(
        rewritten(src, &py2()),
        &b"\x80\x02]q\x00(cdatetime\ndate\nq\x01c_codecs\nencode\nq\x02X\x05\x00\x00\x00\x07\xc3\x9f\
           \x03\x04X\x06\x00\x00\x00latin1q\x03\x86Rq\x04\x85q\x05Rq\x06X\x08\x00\x00\x00datetimeq\x07\
           cdatetime\ntime\nq\x08h\x02X\x06\x00\x00\x00\x01\x02\x00\x00\x00\x00h\x03\x86Rq\t\x85q\nRq\x0be."[..]
    );
}

#[test]
fn names_renamed_twice_by_the_table_are_renamed_once() {
    // `_dbm` -> `dbm` (as `fix_imports` writes it), and `dbm` -> `anydbm`: the rewrite of a
    // protocol-0 `_dbm.open`, transcoded again, stays as it is.
    let out = rewritten(b"c_dbm\nopen\n.", &py2());
    assert_eq!(out, b"\x80\x02cdbm\nopen\n.");
    assert_eq!(
        transcode(&Bytes::from(out), &py2()).outcome,
        Outcome::Unchanged
    );
    // Also when the rewrite holds bytes: `_codecs.encode` is Python 3's, but at protocol 2
    // Python 3 writes Python 2's names (found by the seeded mutations of tests/fuzz_replay.rs).
    let out = rewritten(b"c_dbm\nps\nq\x00C\x05\x80\x02K\x01.\x85R.", &py2());
    assert!(out.starts_with(b"\x80\x02cdbm\nps\n"), "{out:?}");
    // `dbm` at protocol 0-2 is Python 2's own (or `fix_imports`' for `_dbm`), even next to
    // other Python 3 evidence; at protocol 3+ or next to names only Python 3 has (written with
    // `fix_imports` off) it is renamed as `fix_imports` does.
    assert_eq!(
        transcode(
            &Bytes::from_static(b"\x80\x02cdbm\nopen\nc_codecs\nencode\n\x86."),
            &py2()
        )
        .outcome,
        Outcome::Unchanged
    );
    // ... also where the value changes for another reason (text under `py2_text = utf8`).
    let utf8 = Policy {
        py2_text: Py2Text::Utf8,
        ..py2()
    };
    assert_eq!(
        rewritten(
            b"\x80\x02(cdbm\nopen\nc_codecs\nencode\nX\x01\x00\x00\x00at.",
            &utf8
        ),
        b"\x80\x02(cdbm\nopen\nc_codecs\nencode\nU\x01at."
    );
    assert_eq!(
        transcode(&Bytes::from_static(b"cdbm\nopen\n."), &py2()).outcome,
        Outcome::Unchanged
    );
    assert_eq!(
        rewritten(b"\x80\x03cdbm\nopen\n.", &py2()),
        b"\x80\x02canydbm\nopen\n."
    );
    assert_eq!(
        rewritten(b"(cdbm\nopen\ncbuiltins\nlen\nl.", &py2()),
        b"\x80\x02(canydbm\nopen\nc__builtin__\nlen\nl."
    );
}

#[test]
fn py2_str_names_of_a_stack_global_stay_str_under_the_bytes_policy() {
    // STACK_GLOBAL of SHORT_BINSTRING 'os', 'system' (only made by hand: Python 3 decodes them
    // as ASCII `str`), called with 'ls': under `py3_str = bytes` the argument becomes bytes, the
    // names stay `str` (as bytes Python 3 could not look the global up), and the rewrite names
    // the same global as the original.
    let src = b"\x80\x02U\x02osU\x06system\x93U\x02ls\x85R.";
    let policy = Policy {
        py3_str: Py3Str::Bytes,
        ..py3()
    };
    let out = rewritten(src, &policy);
    assert_eq!(out, b"\x80\x02U\x02osU\x06system\x93C\x02ls\x85R.");
    let global = |b: &[u8]| {
        transcode(&Bytes::copy_from_slice(b), &policy)
            .summary
            .unwrap()
            .globals
    };
    assert_eq!(global(src), vec![Global::new("os", "system")]);
    assert_eq!(global(&out), global(src));
}

#[test]
fn inst_names_are_renamed_like_global_for_py2() {
    // INST (only Python 2 writes it, or a hand) of `_pickle.Pickler` given Python 3 bytes (the
    // writer is not certainly Python 2): the class is renamed as a GLOBAL of it is (what Python
    // 3 writes when it round-trips the value), so the rewrite, transcoded again, stays as it is.
    let out = rewritten(b"\x80\x03(C\x01ai_pickle\nPickler\n.", &py2());
    let inst = b"ipickle\nPickler\n.";
    assert_eq!(&out[out.len() - inst.len()..], inst, "{out:?}");
    assert_eq!(
        transcode(&Bytes::from(out), &py2()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn py2_names_that_python_3_renames_away_stay_python_2s_own() {
    // py2: subprocess.Popen (the class) by cPickle protocol 2. Python 3 would write
    // `commands.Popen` for its own `subprocess.Popen` (fix_imports), which Python 2 lacks, but
    // this value is Python 2's: not refused (a refusal is a miss for its Python 2 reader).
    let t = transcode(
        &Bytes::from_static(b"\x80\x02csubprocess\nPopen\nq\x01."),
        &py2(),
    );
    assert_eq!(t.outcome, Outcome::Unchanged);
    // py3: subprocess.run at protocol 2 (as `commands.run`): Python 2 has neither, and
    // refuses the name as `fix_imports` spelled it (`SPELLED_NAMES`).
    let run = b"\x80\x02ccommands\nrun\nq\x00.";
    assert_eq!(refused(run, &py2()), Reason::Py3OnlyGlobal);
    assert_eq!(
        refused(b"\x80\x03csubprocess\nrun\nq\x00.", &py2()),
        Reason::Py3OnlyGlobal
    );
}

/// A name of a module Python 2 has as spelled, but which Python 2 has only under the renamed
/// module, is Python 3's at any protocol: written with `fix_imports=False`, it is renamed.
#[test]
fn py3_names_python_2_has_only_renamed_are_renamed_at_protocol_2() {
    // py3: [subprocess.getoutput, subprocess.getstatusoutput], protocol 2, fix_imports=False.
    // Python 2: "'module' object has no attribute 'getoutput'"; the output loads in Python 2
    // (`commands`) and back in Python 3 (its `fix_imports` maps `commands` to `subprocess`).
    let src = b"\x80\x02]q\x00(csubprocess\ngetoutput\nq\x01csubprocess\ngetstatusoutput\nq\x02e.";
    assert_eq!(
        rewritten(src, &py2()),
        b"\x80\x02]q\x00(ccommands\ngetoutput\nq\x01ccommands\ngetstatusoutput\nq\x02e."
    );
    // py3: functools.cmp_to_key, protocol 2, fix_imports=False (`_functools`, which Python 2
    // has without `cmp_to_key`).
    assert_eq!(
        rewritten(b"\x80\x02c_functools\ncmp_to_key\nq\x00.", &py2()),
        b"\x80\x02cfunctools\ncmp_to_key\nq\x00."
    );
    // Python 2's own name of that module stays as spelled.
    let popen = b"\x80\x02]q\x00(csubprocess\nPopen\nq\x01csubprocess\ncall\nq\x02e.";
    assert_eq!(
        transcode(&Bytes::from_static(popen), &py2()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn py2_nested_class_rewrite_stays_within_the_stack_limit() {
    // py3: (None, None, None, nm.Outer.Inner) at protocol 4 (hand-assembled, no memo): the
    // input holds five items at most, its rewrite six (`getattr`, `Outer`, 'Inner' where the
    // input had two strings).
    let src = b"\x80\x04(NNN\x8c\x02nm\x8c\x0bOuter.Inner\x93t.";
    let mut tight = py2();
    tight.limits.max_stack = 5;
    assert!(analyze(src).is_ok());
    assert_eq!(refused(src, &tight), Reason::LimitExceeded);
    // With room for the rewrite, its output is within the limit it was checked against.
    tight.limits.max_stack = 6;
    let out = rewritten(src, &tight);
    assert_eq!(
        transcode(&Bytes::from(out), &tight).outcome,
        Outcome::Unchanged
    );
    // The same ops under PROTO 2 (by hand): the fast path validates them without writing
    // (it writes protocol 3+ input only) and has `downgrade.rs` follow its plan, so it must
    // leave the nested class to the general path, which counts the rewrite.
    let p2 = b"\x80\x02(NNN\x8c\x02nm\x8c\x0bOuter.Inner\x93t.";
    tight.limits.max_stack = 5;
    assert_eq!(refused(p2, &tight), Reason::LimitExceeded);
}
