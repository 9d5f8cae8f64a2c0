//! `py2_utc = pytz`: the UTC `tzinfo` of aware datetimes between Python 3's
//! `datetime.timezone.utc` and Python 2's `pytz.utc`. Inputs written by real CPython 3.11 and
//! CPython 2.7.18 (with pytz 2024.2); the outputs were loaded in the other interpreter
//! (`tests/cross_version.rs` does so through the proxy with Django).

use super::*;

fn pytz(target: Runtime) -> Policy {
    Policy {
        py2_utc: Py2Utc::Pytz,
        ..Policy::for_target(target)
    }
}

/// py3: datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc) at protocol 2
const P3_AWARE_P2: &[u8] = b"\x80\x02cdatetime\ndatetime\nq\x00c_codecs\nencode\nq\x01X\x0b\x00\x00\x00\x07\xc3\xa8\x01\x02\x03\x04\x05\x00\x00\x06q\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05cdatetime\ntimezone\nq\x06cdatetime\ntimedelta\nq\x07K\x00K\x00K\x00\x87q\x08Rq\t\x85q\nRq\x0b\x86q\x0cRq\r.";
/// py3: [timedelta(0), timezone.utc] at protocol 2 (the user's timedelta stays one)
const P3_TD_AND_UTC_P2: &[u8] = b"\x80\x02]q\x00(cdatetime\ntimedelta\nq\x01K\x00K\x00K\x00\x87q\x02Rq\x03cdatetime\ntimezone\nq\x04h\x01K\x00K\x00K\x00\x87q\x05Rq\x06\x85q\x07Rq\x08e.";
/// py3: [timezone.utc.utcoffset(None), timezone.utc] at protocol 2 (the offset object itself,
/// fetched for the call)
const P3_OFFSET_AND_UTC_P2: &[u8] = b"\x80\x02]q\x00(cdatetime\ntimedelta\nq\x01K\x00K\x00K\x00\x87q\x02Rq\x03cdatetime\ntimezone\nq\x04h\x03\x85q\x05Rq\x06e.";
/// py3: timezone(timedelta(hours=2)) at protocol 2
const P3_PLUS2_P2: &[u8] = b"\x80\x02cdatetime\ntimezone\nq\x00cdatetime\ntimedelta\nq\x01K\x00M \x1cK\x00\x87q\x02Rq\x03\x85q\x04Rq\x05.";
/// py3: timezone(timedelta(0), 'Z') at protocol 2
const P3_NAMED_P2: &[u8] = b"\x80\x02cdatetime\ntimezone\nq\x00cdatetime\ntimedelta\nq\x01K\x00K\x00K\x00\x87q\x02Rq\x03X\x01\x00\x00\x00Zq\x04\x86q\x05Rq\x06.";
/// py3: [timezone, timezone.utc] at protocol 2 (the class itself, then fetched for the call)
const P3_CLASS_P2: &[u8] = b"\x80\x02]q\x00(cdatetime\ntimezone\nq\x01h\x01cdatetime\ntimedelta\nq\x02K\x00K\x00K\x00\x87q\x03Rq\x04\x85q\x05Rq\x06e.";
/// py2: datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=pytz.utc) by cPickle protocol 2
const P2_AWARE_P2: &[u8] = b"\x80\x02cdatetime\ndatetime\nq\x01U\n\x07\xe8\x01\x02\x03\x04\x05\x00\x00\x06cpytz\n_UTC\nq\x02)Rq\x03\x86Rq\x04.";
/// py2: pytz.utc by cPickle protocol 0
const P2_UTC_P0: &[u8] = b"cpytz\n_UTC\np1\n(tRp2\n.";
/// py2: [pytz._UTC, pytz.utc] by cPickle protocol 2 (the class itself, then fetched)
const P2_CLASS_P2: &[u8] = b"\x80\x02]q\x01(cpytz\n_UTC\nq\x02h\x02)Rq\x03e.";

#[test]
fn py2_reader_gets_pytz_utc_for_timezone_utc_in_every_protocol() {
    // The class op becomes `pytz._UTC` and its call drops the `(timedelta(0),)` argument.
    let out = rewritten(P3_TZ_P4, &pytz(Runtime::Py2));
    assert_eq!(
        out,
        b"\x80\x02cpytz\n_UTC\nq\x00cdatetime\ntimedelta\nq\x01K\x00K\x00K\x00\x87q\x02\
          Rq\x03\x85q\x040)Rq\x05."
    );
    let out = rewritten(P3_AWARE_P2, &pytz(Runtime::Py2));
    let tail = b"cpytz\n_UTC\nq\x06cdatetime\ntimedelta\nq\x07K\x00K\x00K\x00\x87q\x08Rq\t\x85q\n0)Rq\x0b\x86q\x0cRq\r.";
    assert!(out.ends_with(tail), "{out:?}");
    assert_eq!(
        out[..out.len() - tail.len()],
        P3_AWARE_P2[..out.len() - tail.len()]
    );
    // Protocol 0 (MARK ... TUPLE and `I0`) too.
    let p0 =
        b"cdatetime\ntimezone\np0\n(cdatetime\ntimedelta\np1\n(I0\nI0\nI0\ntp2\nRp3\ntp4\nRp5\n.";
    let out = rewritten(p0, &pytz(Runtime::Py2));
    assert!(out.starts_with(b"\x80\x02cpytz\n_UTC\n"), "{out:?}");
    assert!(out.ends_with(b"0)Rq\x05."), "{out:?}");
    // A timedelta of the value's own is left alone.
    let out = rewritten(P3_TD_AND_UTC_P2, &pytz(Runtime::Py2));
    assert_eq!(
        out,
        b"\x80\x02]q\x00(cdatetime\ntimedelta\nq\x01K\x00K\x00K\x00\x87q\x02Rq\x03cpytz\n_UTC\n\
          q\x04h\x01K\x00K\x00K\x00\x87q\x05Rq\x06\x85q\x070)Rq\x08e."
    ); // The offset object fetched for the call: still `timedelta(0)`, written before the class.
    assert_eq!(
        rewritten(P3_OFFSET_AND_UTC_P2, &pytz(Runtime::Py2)),
        b"\x80\x02]q\x00(cdatetime\ntimedelta\nq\x01K\x00K\x00K\x00\x87q\x02Rq\x03\
          cpytz\n_UTC\nq\x04h\x03\x85q\x050)Rq\x06e."
    );
}

#[test]
fn py2_reader_still_refuses_other_timezones_and_the_class_itself() {
    for src in [P3_PLUS2_P2, P3_NAMED_P2, P3_CLASS_P2] {
        assert_eq!(refused(src, &pytz(Runtime::Py2)), Reason::Py3OnlyGlobal);
    }
    // `timezone(timedelta(False, 0, 0))`: `I00` is False, not the `0` Python 3 writes.
    let false_day =
        b"cdatetime\ntimezone\np0\n(cdatetime\ntimedelta\np1\n(I00\nI0\nI0\ntp2\nRp3\ntp4\nRp5\n.";
    assert_eq!(
        refused(false_day, &pytz(Runtime::Py2)),
        Reason::Py3OnlyGlobal
    );
    // Without the policy nothing changes: timezone.utc is refused.
    assert_eq!(refused(P3_AWARE_P2, &py2()), Reason::Py3OnlyGlobal);
}

#[test]
fn py3_reader_gets_timezone_utc_for_pytz_utc() {
    let out = rewritten(P2_AWARE_P2, &pytz(Runtime::Py3));
    assert_eq!(
        out,
        b"\x80\x02cdatetime\ndatetime\nq\x01C\n\x07\xe8\x01\x02\x03\x04\x05\x00\x00\x06\
          cdatetime\ntimezone\nq\x02)0cdatetime\ntimedelta\nK\x00K\x00K\x00\x87R\x85Rq\x03\
          \x86Rq\x04."
    );
    let out = rewritten(P2_UTC_P0, &pytz(Runtime::Py3));
    assert_eq!(
        out,
        b"cdatetime\ntimezone\np1\n(t0cdatetime\ntimedelta\nK\x00K\x00K\x00\x87R\x85Rp2\n."
    );
    // The value after a second pass for Python 2 is the Python 2 form again.
    let back = rewritten(&out, &pytz(Runtime::Py2));
    assert!(back.windows(10).any(|w| w == b"pytz\n_UTC\n"), "{back:?}");
}

#[test]
fn py3_reader_gets_pytz_as_it_is_when_the_class_has_another_use() {
    let t = transcode(&Bytes::from_static(P2_CLASS_P2), &pytz(Runtime::Py3));
    assert_eq!(t.outcome, Outcome::Unchanged);
    // And without the policy.
    let t = transcode(&Bytes::from_static(P2_UTC_P0), &py3());
    assert_eq!(t.outcome, Outcome::Unchanged);
}

#[test]
fn other_uses_of_the_class_or_the_other_utc_keep_the_default() {
    // Found by a differential probe (hand-made unless said otherwise). A DUP of the class is a
    // second use: `(timezone, timezone.utc)`, and `(pytz._UTC, pytz.utc)`.
    let dup = b"\x80\x02cdatetime\ntimezone\n2cdatetime\ntimedelta\nK\x00K\x00K\x00\x87R\x85R\x86.";
    assert_eq!(refused(dup, &pytz(Runtime::Py2)), Reason::Py3OnlyGlobal);
    let dup = b"\x80\x02cpytz\n_UTC\n2)R\x86.";
    let t = transcode(&Bytes::from_static(dup), &pytz(Runtime::Py3));
    assert_eq!(t.outcome, Outcome::Unchanged);
    // py3 with pytz: {timezone.utc: 'a', pytz.utc: 'b'} at protocol 2. Two keys in Python 3,
    // one once either UTC becomes the other.
    let both = b"\x80\x02}q\x00(cdatetime\ntimezone\nq\x01cdatetime\ntimedelta\nq\x02K\x00K\x00\
                 K\x00\x87q\x03Rq\x04\x85q\x05Rq\x06X\x01\x00\x00\x00aq\x07cpytz\n_UTC\nq\x08)Rq\t\
                 X\x01\x00\x00\x00bq\nu.";
    assert_eq!(refused(both, &pytz(Runtime::Py2)), Reason::Py3OnlyGlobal);
    let t = transcode(&Bytes::copy_from_slice(both), &pytz(Runtime::Py3));
    assert_eq!(t.outcome, Outcome::Unchanged);
    // `pytz.utc` named directly next to `_UTC()`: one object in Python 2, so not converted.
    let named = b"\x80\x02}(cpytz\n_UTC\n)RK\x01cpytz\nutc\nK\x02u.";
    let t = transcode(&Bytes::from_static(named), &pytz(Runtime::Py3));
    assert_eq!(t.outcome, Outcome::Unchanged);
    // State given to the UTC object: the other runtime's class takes none.
    let build = b"\x80\x02cpytz\n_UTC\n)R}b.";
    let t = transcode(&Bytes::from_static(build), &pytz(Runtime::Py3));
    assert_eq!(t.outcome, Outcome::Unchanged);
    let build = b"\x80\x02cdatetime\ntimezone\ncdatetime\ntimedelta\nK\x00K\x00K\x00\x87R\x85R}b.";
    assert_eq!(refused(build, &pytz(Runtime::Py2)), Reason::Py3OnlyGlobal);
}

/// Under `py2_utc = pytz` the scan marks `timedelta(0, 0, 0)` for a Python 2 reader (it may be
/// `timezone.utc`'s offset); inside a tuple key it is digested as any `timedelta(0)` is, so
/// keys that differ elsewhere are converted and keys that meet are refused. (It had no digest:
/// the first value was refused `collision`; found by `cross_random`, seed 92.)
#[test]
fn a_zero_timedelta_inside_tuple_keys_is_digested() {
    // py3 protocol 4: {(timedelta(0), 'a'): 1, (timedelta(0), b'b'): 2}
    let distinct = b"\x80\x04\x95D\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08datetime\x94\x8c\x09timedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x8c\x01a\x94\x86\x94K\x01h\x03K\x00K\x00K\x00\x87\x94R\x94C\x01b\x94\x86\x94K\x02u.";
    converted(distinct, &pytz(Runtime::Py2));
    // {(timedelta(0), 'a'): 1, (timedelta(0), b'a'): 2}: one key in Python 2.
    let merged = b"\x80\x04\x95D\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08datetime\x94\x8c\x09timedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x8c\x01a\x94\x86\x94K\x01h\x03K\x00K\x00K\x00\x87\x94R\x94C\x01a\x94\x86\x94K\x02u.";
    assert_eq!(refused(merged, &pytz(Runtime::Py2)), Reason::Collision);
}

/// The store policy (`lossless_for_py3`) under `py2_utc = pytz` stores Python 3's
/// `timezone.utc` as `pytz.utc` only when a Python 3 reader's rewrite turns it back: a value
/// whose Python 3 rewrite is refused (a `Decimal` key beside a `Fraction` key, which the
/// collision check cannot tell apart) is refused `lossy_for_py3`, not stored with a `pytz.utc`
/// that Python 3 without pytz cannot load.
#[test]
fn the_store_policy_makes_pytz_utc_only_where_python_3_readers_get_timezone_utc_back() {
    let store = Policy {
        lossless_for_py3: true,
        ..pytz(Runtime::Py2)
    };
    // {Decimal('1.5'): datetime(2024, 1, 1, tzinfo=timezone.utc), Fraction(1, 3): 0}, protocol 5.
    let keys: &[u8] = b"\x80\x05\x95\x9e\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x07decimal\x94\x8c\x07\
        Decimal\x94\x93\x94\x8c\x031.5\x94\x85\x94R\x94\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\
        \x94C\n\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x94h\x07\x8c\x08timezone\x94\x93\x94h\x07\x8c\
        \ttimedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x85\x94R\x94\x86\x94R\x94\x8c\tfractions\
        \x94\x8c\x08Fraction\x94\x93\x94K\x01K\x03\x86\x94R\x94K\x00u.";
    // A Python 2 reader's rewrite makes pytz.utc, which Python 3 readers would not get back.
    let for_py2 = rewritten(keys, &pytz(Runtime::Py2));
    assert!(for_py2.windows(10).any(|w| w == b"pytz\n_UTC\n"));
    assert!(matches!(
        transcode(&Bytes::from(for_py2), &pytz(Runtime::Py3)).outcome,
        Outcome::Refused(Reason::Collision)
    ));
    assert_eq!(refused(keys, &store), Reason::LossyForPy3);
    // Without the Fraction key it is stored with pytz.utc, and comes back as timezone.utc.
    let alone: &[u8] = b"\x80\x05\x95z\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x07decimal\x94\x8c\x07\
        Decimal\x94\x93\x94\x8c\x031.5\x94\x85\x94R\x94\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\
        \x94C\n\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x94h\x07\x8c\x08timezone\x94\x93\x94h\x07\x8c\
        \ttimedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x85\x94R\x94\x86\x94R\x94s.";
    let stored = rewritten(alone, &store);
    assert!(stored.windows(10).any(|w| w == b"pytz\n_UTC\n"));
    let back = rewritten(&stored, &pytz(Runtime::Py3));
    assert!(back.windows(18).any(|w| w == b"datetime\ntimezone\n"));
}
