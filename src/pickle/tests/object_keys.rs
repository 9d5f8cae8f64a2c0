//! Dict keys and set members built by a call: namedtuples, subclasses of `str`, `bytes`,
//! `tuple`, and OrderedDict subclasses, which compare by their arguments (or equal a plain
//! string key). Inputs written by real CPython 2.7.18 (`cPickle`) and CPython 3.11 (`pickle`)
//! with a module `probemod` holding `Point = namedtuple('Point', 'x y')`, `class MyText(unicode)`
//! (Python 2) / `str` (Python 3), `class MyBin(bytes)`, `class MyOD(OrderedDict)` and a plain
//! class `Obj`; each value has two keys in its writer. Before the fix each loaded with one key in
//! the other interpreter (checked there).

use super::*;

/// py2: {Point(u'\xe9', 1): 2, Point('\xc3\xa9', 1): 1}
const PY2_NAMEDTUPLE_KEYS: &[u8] = b"\x80\x02}q\x01(cprobemod\nPoint\nq\x02X\x02\x00\x00\x00\xc3\xa9K\x01\x86\x81q\x03K\x02h\x02U\x02\xc3\xa9q\x04K\x01\x86\x81q\x05K\x01u.";
/// py2: {MyText(u'\xe9'): 1, '\xc3\xa9': 2}
const PY2_STR_SUBCLASS_KEY: &[u8] = b"\x80\x02}q\x01(cprobemod\nMyText\nq\x02X\x02\x00\x00\x00\xc3\xa9\x85\x81q\x03}q\x04bK\x01U\x02\xc3\xa9q\x05K\x02u.";
/// py2: OrderedDict([(('\xc3\xa9',), 1), ((u'\xe9',), 2)])
const PY2_ORDERED_DICT_TUPLE_KEYS: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x01]q\x02(]q\x03(U\x02\xc3\xa9q\x04\x85q\x05K\x01e]q\x06(X\x02\x00\x00\x00\xc3\xa9\x85q\x07K\x02ee\x85Rq\x08.";
/// py2: MyOD([('\xc3\xa9', 1), (u'\xe9', 2)])
const PY2_ORDERED_DICT_SUBCLASS: &[u8] = b"\x80\x02cprobemod\nMyOD\nq\x01]q\x02(]q\x03(U\x02\xc3\xa9q\x04K\x01e]q\x05(X\x02\x00\x00\x00\xc3\xa9K\x02ee\x85Rq\x06.";
/// py2: {('\xc3\xa9', o): 1, (u'\xe9', o): 2} with one `Obj` instance `o` (a tuple key holding
/// an object has no digest; its strings are a converted py2 `str` and text).
const PY2_TUPLE_KEYS_WITH_OBJECT: &[u8] = b"\x80\x02}q\x01(X\x02\x00\x00\x00\xc3\xa9cprobemod\nObj\nq\x02)\x81q\x03}q\x04U\x01aK\x01sb\x86K\x02U\x02\xc3\xa9q\x05h\x03\x86K\x01u.";
/// py3, protocol 4: {Point(b'a', 1), Point('a', 1)}
const PY3_NAMEDTUPLE_MEMBERS_P4: &[u8] = b"\x80\x04\x950\x00\x00\x00\x00\x00\x00\x00\x8f\x94(\x8c\x08probemod\x94\x8c\x05Point\x94\x93\x94C\x01a\x94K\x01\x86\x94\x81\x94h\x03\x8c\x01a\x94K\x01\x86\x94\x81\x94\x90.";
/// py3, protocol 2: {MyBin(b'a'): 1, 'a': 2}
const PY3_BYTES_SUBCLASS_KEY_P2: &[u8] = b"\x80\x02}q\x00(cprobemod\nMyBin\nq\x01c_codecs\nencode\nq\x02X\x01\x00\x00\x00aq\x03X\x06\x00\x00\x00latin1q\x04\x86q\x05Rq\x06\x85q\x07\x81q\x08K\x01X\x01\x00\x00\x00aq\tK\x02u.";

#[test]
fn keys_built_by_a_call_from_strings_that_would_meet_are_refused() {
    for (name, src) in [
        ("namedtuple keys", PY2_NAMEDTUPLE_KEYS),
        ("a unicode subclass next to a str key", PY2_STR_SUBCLASS_KEY),
        ("OrderedDict with tuple keys", PY2_ORDERED_DICT_TUPLE_KEYS),
        ("an OrderedDict subclass", PY2_ORDERED_DICT_SUBCLASS),
        ("tuple keys holding one object", PY2_TUPLE_KEYS_WITH_OBJECT),
    ] {
        assert_eq!(refused(src, &py3()), Reason::Collision, "py2 {name} -> py3");
    }
    assert_eq!(
        refused(PY3_NAMEDTUPLE_MEMBERS_P4, &py2()),
        Reason::Collision,
        "py3 namedtuple set members -> py2"
    );
    assert_eq!(
        refused(PY3_BYTES_SUBCLASS_KEY_P2, &py2()),
        Reason::Collision,
        "py3 bytes subclass next to a text key -> py2"
    );
}

#[test]
fn keys_built_by_a_call_are_converted_when_their_strings_cannot_meet() {
    // py2: {Point('a', 1): 1, Point('b', 2): 2, 'c': u'd'}: one string kind among the keys (the
    // text is a value).
    let src = b"\x80\x02}q\x01(cprobemod\nPoint\nq\x02U\x01aK\x01\x86\x81q\x03K\x01h\x02U\x01bK\x02\x86\x81q\x04K\x02U\x01cX\x01\x00\x00\x00du.";
    assert_eq!(
        transcode(&Bytes::from_static(src), &py3()).outcome,
        Outcome::Unchanged
    );
    // py2: set([Obj(a=u'x'), Obj(a='y')]): objects whose strings are in their state (BUILD),
    // which their class's own `__eq__` would have to compare: not looked into.
    let src = b"\x80\x02c__builtin__\nset\nq\x01]q\x02(cprobemod\nObj\nq\x03)\x81q\x04}q\x05U\x01aU\x01ysbh\x03)\x81q\x06}q\x07U\x01aX\x01\x00\x00\x00xsbe\x85Rq\x08.";
    assert_eq!(
        transcode(&Bytes::from_static(src), &py3()).outcome,
        Outcome::Unchanged
    );
}

/// py2: MyStr('\xff\xfe') (`class MyStr(str)`) at protocol 0: `copy_reg._reconstructor`.
const PY2_STR_SUBCLASS_P0: &[u8] = b"ccopy_reg\n_reconstructor\np1\n(cprobemod\nMyStr\np2\nc__builtin__\nstr\np3\nS'\\xff\\xfe'\ntRp4\n.";
/// py2: MyStr('\xff\xfe') at protocol 2: NEWOBJ.
const PY2_STR_SUBCLASS_P2: &[u8] =
    b"\x80\x02cprobemod\nMyStr\nq\x01U\x02\xff\xfeq\x02\x85\x81q\x03}q\x04b.";
/// py2: [MyStr('\xc3\xa9'), MyStr('ab')] at protocols 2 and 0.
const PY2_STR_SUBCLASS_TEXT_P2: &[u8] = b"\x80\x02]q\x01(cprobemod\nMyStr\nq\x02U\x02\xc3\xa9q\x03\x85\x81q\x04}q\x05bh\x02U\x02abq\x06\x85\x81q\x07}q\x08be.";
const PY2_STR_SUBCLASS_TEXT_P0: &[u8] = b"(lp1\nccopy_reg\n_reconstructor\np2\n(cprobemod\nMyStr\np3\nc__builtin__\nstr\np4\nS'\\xc3\\xa9'\ntRp5\nag2\n(g3\ng4\nS'ab'\ntRp6\na.";

/// A `str` subclass's value must reach Python 3 as text: `str.__new__(MyStr, b'\xff\xfe')` is
/// `"b'\\xff\\xfe'"`, loaded without error. Where the value would become `bytes` it is refused.
#[test]
fn a_str_subclass_whose_value_would_become_bytes_is_refused() {
    for src in [PY2_STR_SUBCLASS_P0, PY2_STR_SUBCLASS_P2] {
        assert_eq!(refused(src, &py3()), Reason::Unsupported);
    }
    let bytes = Policy {
        py3_str: Py3Str::Bytes,
        ..py3()
    };
    for src in [PY2_STR_SUBCLASS_TEXT_P2, PY2_STR_SUBCLASS_TEXT_P0] {
        assert_eq!(refused(src, &bytes), Reason::Unsupported);
        // As text (UTF-8, or ASCII kept) they load as `MyStr('é')`, `MyStr('ab')` (checked in
        // CPython 3).
        let out = rewritten(src, &py3());
        let text = b"X\x02\x00\x00\x00\xc3\xa9";
        assert!(out.windows(text.len()).any(|w| w == text), "{out:?}");
    }
    // Under latin-1 every py2 `str` is text.
    let latin1 = Policy {
        py3_str: Py3Str::Latin1,
        ..py3()
    };
    rewritten(PY2_STR_SUBCLASS_P2, &latin1);
}

/// Pairs and members handed to a call as tuples, or in a list fetched from the memo: what a
/// `__reduce__` returning `(OrderedDict, (self.items(),))` writes (Python 2's `items()` gives
/// tuples), or `set((a, b))`. Before the fix each loaded with one key where its writer had two.
#[test]
fn pairs_given_as_tuples_or_by_the_memo_are_collision_checked() {
    // py2: OrderedDict([('\xc3\xa9', 1), (u'\xe9', 2)]) given a list of tuples.
    let od_tuples = b"\x80\x02ccollections\nOrderedDict\nq\x01]q\x02(U\x02\xc3\xa9q\x03K\x01\x86q\x04X\x02\x00\x00\x00\xc3\xa9K\x02\x86q\x05e\x85q\x06Rq\x07.";
    // py2: set(('\xc3\xa9', u'\xe9')) given a tuple.
    let set_tuple =
        b"\x80\x02c__builtin__\nset\nq\x01U\x02\xc3\xa9q\x02X\x02\x00\x00\x00\xc3\xa9\x86\x85q\x03Rq\x04.";
    // py2: [pairs, OrderedDict(pairs)]: the list of pairs filled before the class is named.
    let od_shared = b"\x80\x02]q\x01(]q\x02(]q\x03(U\x02\xc3\xa9q\x04K\x01e]q\x05(X\x02\x00\x00\x00\xc3\xa9K\x02eeccollections\nOrderedDict\nq\x06h\x02\x85q\x07Rq\x08e.";
    for (name, src) in [
        ("tuples", &od_tuples[..]),
        ("set(tuple)", set_tuple),
        ("shared", od_shared),
    ] {
        assert_eq!(refused(src, &py3()), Reason::Collision, "{name}");
    }
    // py3, protocol 3: OrderedDict([(b'a', 1), ('a', 2)]) given a list of tuples.
    let py3_tuples = b"\x80\x03ccollections\nOrderedDict\nq\x00]q\x01(C\x01aq\x02K\x01\x86q\x03X\x01\x00\x00\x00aq\x04K\x02\x86q\x05e\x85q\x06Rq\x07.";
    assert_eq!(refused(py3_tuples, &py2()), Reason::Collision);
}

/// A set subclass given its members as list items (APPENDS, or APPEND per item at protocol 0)
/// by a `__reduce__` of `(SetX, (), None, iter(list(self)))`, with `append = add`, in a module
/// `m`: written by CPython 3.11 (`{b'a', 'a'}`) and CPython 2.7.18 (`{'\xc3\xa9', u'\xe9'}`).
/// Each loaded with one member in the other interpreter before the members were checked.
#[test]
fn members_given_to_an_object_by_appends_are_collision_checked() {
    let py3_written: [&[u8]; 2] = [
        // pickle.dumps(s, 2) and (s, 4)
        b"\x80\x02cm\nSetX\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02c_codecs\nencode\nq\x03X\x01\x00\x00\x00aq\x04X\x06\x00\x00\x00latin1q\x05\x86q\x06Rq\x07e.",
        b"\x80\x04\x95\x1b\x00\x00\x00\x00\x00\x00\x00\x8c\x01m\x94\x8c\x04SetX\x94\x93\x94)R\x94(\x8c\x01a\x94C\x01a\x94e.",
    ];
    for src in py3_written {
        assert_eq!(refused(src, &py2()), Reason::Collision, "{src:?}");
    }
    let py2_written: [&[u8]; 2] = [
        // cPickle.dumps(s, 0) (one APPEND per member) and (s, 2)
        b"cm\nSetX\np1\n(tRp2\nV\xe9\naS'\\xc3\\xa9'\np3\na.",
        b"\x80\x02cm\nSetX\nq\x01)Rq\x02(X\x02\x00\x00\x00\xc3\xa9U\x02\xc3\xa9q\x03e.",
    ];
    for src in py2_written {
        assert_eq!(refused(src, &py3()), Reason::Collision, "{src:?}");
    }
    // A class known to keep its items as a sequence: collections.deque([b'a', 'a']) at
    // protocol 4 is converted.
    let deque = b"\x80\x04\x95&\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x05deque\x94\x93\x94)R\x94(C\x01a\x94\x8c\x01a\x94e.";
    assert!(!matches!(
        transcode(&Bytes::from_static(deque), &py2()).outcome,
        Outcome::Refused(_)
    ));
    // A list subclass of strings that cannot meet (m.L(['a', 'b'])) is converted; the class
    // is unknown, so m.L([b'a', 'a']) would be refused like a set (conservative: Python 2
    // keeps both items of a list).
    let list = b"\x80\x04\x95\x18\x00\x00\x00\x00\x00\x00\x00\x8c\x01m\x94\x8c\x01L\x94\x93\x94)\x81\x94(\x8c\x01a\x94\x8c\x01b\x94e.";
    assert!(!matches!(
        transcode(&Bytes::from_static(list), &py2()).outcome,
        Outcome::Refused(_)
    ));
    let mixed = b"\x80\x04\x95\x18\x00\x00\x00\x00\x00\x00\x00\x8c\x01m\x94\x8c\x01L\x94\x93\x94)\x81\x94(C\x01a\x94\x8c\x01a\x94e.";
    assert_eq!(refused(mixed, &py2()), Reason::Collision);
}

/// py2: {(d, '\xc3\xa9'): 1, (d, u'\xe9'): 2} with one `datetime.date(2020, 1, 1)` `d`.
const PY2_DATE_TUPLE_KEYS_SAME_DATE: &[u8] = b"\x80\x02}q\x01(cdatetime\ndate\nq\x02U\x04\x07\xe4\x01\x01\x85Rq\x03U\x02\xc3\xa9q\x04\x86K\x01h\x03X\x02\x00\x00\x00\xc3\xa9\x86K\x02u.";
/// py2: {(date(2020, 1, 1), u'a'): 1, (date(2020, 1, 2), 'b'): 2}
const PY2_DATE_TUPLE_KEYS: &[u8] = b"\x80\x02}q\x01(cdatetime\ndate\nq\x02U\x04\x07\xe4\x01\x02\x85Rq\x03U\x01b\x86K\x02h\x02U\x04\x07\xe4\x01\x01\x85Rq\x04X\x01\x00\x00\x00a\x86K\x01u.";
/// py2: {(Decimal('1'),): 1, (complex(1, 0),): 2}: two keys in Python 2, one in Python 3.
const PY2_DECIMAL_COMPLEX_TUPLE_KEYS: &[u8] = b"\x80\x02}q\x01(c__builtin__\ncomplex\nq\x02G?\xf0\x00\x00\x00\x00\x00\x00G\x00\x00\x00\x00\x00\x00\x00\x00\x86Rq\x03\x85K\x02cdecimal\nDecimal\nq\x04U\x011\x85Rq\x05\x85K\x01u.";
/// py3, protocol 4: {(d, 'x'): 1, (d, b'x'): 2} with one `datetime.date(2020, 1, 1)` `d`.
const PY3_DATE_TUPLE_KEYS_SAME_DATE: &[u8] = b"\x80\x04\x956\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08datetime\x94\x8c\x04date\x94\x93\x94C\x04\x07\xe4\x01\x01\x94\x85\x94R\x94\x8c\x01x\x94\x86\x94K\x01h\x06C\x01x\x94\x86\x94K\x02u.";
/// py3, protocol 4: {(date(2020, 1, 1), 'x'): 1, (date(2020, 1, 2), b'x'): 2}
const PY3_DATE_TUPLE_KEYS: &[u8] = b"\x80\x04\x95A\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08datetime\x94\x8c\x04date\x94\x93\x94C\x04\x07\xe4\x01\x01\x94\x85\x94R\x94\x8c\x01x\x94\x86\x94K\x01h\x03C\x04\x07\xe4\x01\x02\x94\x85\x94R\x94C\x01x\x94\x86\x94K\x02u.";

/// Objects of classes that compare by a value no conversion changes (`compat::value_key`)
/// are digested inside tuple keys: by their class and arguments, a `date` by its state bytes.
/// Keys with different dates cannot meet whatever their strings; keys with one date meet
/// where their strings do. (Before, a tuple holding a `date` had no digest, and the date's
/// state counted as a string kind: the first pair was refused under every policy.)
#[test]
fn tuple_keys_holding_dates_are_compared_by_the_dates_state() {
    let policy = |py3_str| Policy { py3_str, ..py3() };
    for py3_str in [Py3Str::Utf8OrBytes, Py3Str::Bytes, Py3Str::Latin1] {
        converted(PY2_DATE_TUPLE_KEYS, &policy(py3_str));
    }
    // '\xc3\xa9' and u'\xe9' become one 'é' under utf8-or-bytes only.
    assert_eq!(
        refused(PY2_DATE_TUPLE_KEYS_SAME_DATE, &py3()),
        Reason::Collision
    );
    for py3_str in [Py3Str::Bytes, Py3Str::Latin1] {
        converted(PY2_DATE_TUPLE_KEYS_SAME_DATE, &policy(py3_str));
    }
    for py2_text in [Py2Text::Keep, Py2Text::Utf8] {
        let policy = Policy { py2_text, ..py2() };
        converted(PY3_DATE_TUPLE_KEYS, &policy);
        assert_eq!(
            refused(PY3_DATE_TUPLE_KEYS_SAME_DATE, &policy),
            Reason::Collision,
            "{py2_text:?}"
        );
    }
}

/// py2, protocol 0: {(UUID(int=1),): 1, ('caf\xc3\xa9',): 2, ('key',): 3}, the UUID built by
/// `copy_reg._reconstructor(UUID, object, None)` (its value in the BUILD state).
const PY2_UUID_TUPLE_KEY_P0: &[u8] = b"(dp1\n(S'caf\\xc3\\xa9'\np2\ntp3\nI2\ns(S'key'\np4\ntp5\nI3\ns(ccopy_reg\n_reconstructor\np6\n(cuuid\nUUID\np7\nc__builtin__\nobject\np8\nNtRp9\n(dp10\nS'int'\np11\nI1\nsbtp12\nI1\ns.";

/// A UUID made by `copy_reg._reconstructor` (Python 2's protocols 0 and 1) is digested as
/// NEWOBJ's (protocol 2) is: the tuple key holding it has a digest, and strings of
/// two kinds in the other keys (a py2 `str` kept and one made text, which cannot meet) do not
/// make the dict refused. (Found by `cross_random`, seed 91: refused `collision` at protocols
/// 0 and 1 only.)
#[test]
fn a_uuid_from_copy_reg_reconstructor_is_digested_like_newobjs() {
    converted(PY2_UUID_TUPLE_KEY_P0, &py3());
}

/// py2 cPickle, protocol 2: {('', UUID(int=0)): 1, (u'', UUID(int=2)): 2}
const PY2_UUID_TUPLE_KEYS_P2: &[u8] = b"\x80\x02}q\x01(U\x00cuuid\nUUID\nq\x02)\x81q\x03}q\x04U\x03intq\x05K\x00sb\x86K\x01X\x00\x00\x00\x00h\x02)\x81q\x06}q\x07h\x05K\x02sb\x86K\x02u.";
/// py2 cPickle, protocol 0: the same value (the UUIDs by `copy_reg._reconstructor`).
const PY2_UUID_TUPLE_KEYS_P0: &[u8] = b"(dp1\n(S''\nccopy_reg\n_reconstructor\np2\n(cuuid\nUUID\np3\nc__builtin__\nobject\np4\nNtRp5\n(dp6\nS'int'\np7\nI0\nsbtp8\nI1\ns(V\ng2\n(g3\ng4\nNtRp9\n(dp10\ng7\nI2\nsbtp11\nI2\ns.";
/// py2 cPickle, protocol 2: {(u'\xe9', UUID(int=1)): 2, ('\xc3\xa9', UUID(int=1)): 1}: two
/// UUID objects of one value.
const PY2_EQUAL_UUID_TUPLE_KEYS_P2: &[u8] = b"\x80\x02}q\x01(X\x02\x00\x00\x00\xc3\xa9cuuid\nUUID\nq\x02)\x81q\x03}q\x04U\x03intq\x05K\x01sb\x86K\x02U\x02\xc3\xa9q\x06h\x02)\x81q\x07}q\x08h\x05K\x01sb\x86K\x01u.";
/// py2 cPickle, protocol 0: the same value.
const PY2_EQUAL_UUID_TUPLE_KEYS_P0: &[u8] = b"(dp1\n(V\xe9\nccopy_reg\n_reconstructor\np2\n(cuuid\nUUID\np3\nc__builtin__\nobject\np4\nNtRp5\n(dp6\nS'int'\np7\nI1\nsbtp8\nI2\ns(S'\\xc3\\xa9'\np9\ng2\n(g3\ng4\nNtRp10\n(dp11\ng7\nI1\nsbtp12\nI1\ns.";
/// py2 cPickle, protocol 2: {('\xc3\xa9', a): 1, (u'\xe9', b): 2} with real 128-bit UUIDs (LONG1)
/// `a` = b49f9447-834f-a866-b395-1207f8ed71b0 and `b` one more.
const PY2_BIG_UUID_TUPLE_KEYS_P2: &[u8] = b"\x80\x02}q\x01(U\x02\xc3\xa9q\x02cuuid\nUUID\nq\x03)\x81q\x04}q\x05U\x03intq\x06\x8a\x11\xb0q\xed\xf8\x07\x12\x95\xb3f\xa8O\x83G\x94\x9f\xb4\x00sb\x86K\x01X\x02\x00\x00\x00\xc3\xa9h\x03)\x81q\x07}q\x08h\x06\x8a\x11\xb1q\xed\xf8\x07\x12\x95\xb3f\xa8O\x83G\x94\x9f\xb4\x00sb\x86K\x02u.";
/// py2 cPickle, protocol 2: the same with `b` = `a` (another UUID object of that value).
const PY2_EQUAL_BIG_UUID_TUPLE_KEYS_P2: &[u8] = b"\x80\x02}q\x01(U\x02\xc3\xa9q\x02cuuid\nUUID\nq\x03)\x81q\x04}q\x05U\x03intq\x06\x8a\x11\xb0q\xed\xf8\x07\x12\x95\xb3f\xa8O\x83G\x94\x9f\xb4\x00sb\x86K\x01X\x02\x00\x00\x00\xc3\xa9h\x03)\x81q\x07}q\x08h\x06\x8a\x11\xb0q\xed\xf8\x07\x12\x95\xb3f\xa8O\x83G\x94\x9f\xb4\x00sb\x86K\x02u.";
/// py3, protocol 4: {('x', UUID(int=0)): 1, (b'x', UUID(int=2)): 2}
const PY3_UUID_TUPLE_KEYS_P4: &[u8] = b"\x80\x04\x95A\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01x\x94\x8c\x04uuid\x94\x8c\x04UUID\x94\x93\x94)\x81\x94}\x94\x8c\x03int\x94K\x00sb\x86\x94K\x01C\x01x\x94h\x04)\x81\x94}\x94h\x07K\x02sb\x86\x94K\x02u.";
/// py3, protocol 0: the same value.
const PY3_UUID_TUPLE_KEYS_P0: &[u8] = b"(dp0\n(Vx\np1\nccopy_reg\n_reconstructor\np2\n(cuuid\nUUID\np3\nc__builtin__\nobject\np4\nNtp5\nRp6\n(dp7\nVint\np8\nI0\nsbtp9\nI1\ns(c_codecs\nencode\np10\n(Vx\np11\nVlatin1\np12\ntp13\nRp14\ng2\n(g3\ng4\nNtp15\nRp16\n(dp17\ng8\nI2\nsbtp18\nI2\ns.";
/// py3, protocol 4: {('x', UUID(int=1)): 1, (b'x', UUID(int=1)): 2}
const PY3_EQUAL_UUID_TUPLE_KEYS_P4: &[u8] = b"\x80\x04\x95A\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01x\x94\x8c\x04uuid\x94\x8c\x04UUID\x94\x93\x94)\x81\x94}\x94\x8c\x03int\x94K\x01sb\x86\x94K\x01C\x01x\x94h\x04)\x81\x94}\x94h\x07K\x01sb\x86\x94K\x02u.";
/// py3, protocol 0: the same value.
const PY3_EQUAL_UUID_TUPLE_KEYS_P0: &[u8] = b"(dp0\n(Vx\np1\nccopy_reg\n_reconstructor\np2\n(cuuid\nUUID\np3\nc__builtin__\nobject\np4\nNtp5\nRp6\n(dp7\nVint\np8\nI1\nsbtp9\nI1\ns(c_codecs\nencode\np10\n(Vx\np11\nVlatin1\np12\ntp13\nRp14\ng2\n(g3\ng4\nNtp15\nRp16\n(dp17\ng8\nI1\nsbtp18\nI2\ns.";

/// A UUID inside a tuple key is digested by its value (the `int` of its BUILD state), not by
/// its class alone: keys whose strings are equal in one runtime only (`''` and `u''` in
/// Python 2, `'x'` and `b'x'` in Python 3) but whose UUIDs differ cannot meet, and are
/// converted; with two UUIDs of one value they meet, and are refused. (Found by
/// `cross_random`, seed 410: the first pair was refused `collision`.)
#[test]
fn tuple_keys_holding_uuids_are_compared_by_the_uuids_value() {
    let policy = |py3_str| Policy { py3_str, ..py3() };
    for py3_str in [Py3Str::Utf8OrBytes, Py3Str::Bytes, Py3Str::Latin1] {
        for src in [PY2_UUID_TUPLE_KEYS_P2, PY2_UUID_TUPLE_KEYS_P0] {
            converted(src, &policy(py3_str));
        }
    }
    // '\xc3\xa9' and u'\xe9' become one 'é' under utf8-or-bytes only: with UUIDs of one
    // value the keys meet.
    converted(PY2_BIG_UUID_TUPLE_KEYS_P2, &py3());
    for src in [
        PY2_EQUAL_UUID_TUPLE_KEYS_P2,
        PY2_EQUAL_UUID_TUPLE_KEYS_P0,
        PY2_EQUAL_BIG_UUID_TUPLE_KEYS_P2,
    ] {
        assert_eq!(refused(src, &py3()), Reason::Collision);
    }
    for py2_text in [Py2Text::Keep, Py2Text::Utf8] {
        let policy = Policy { py2_text, ..py2() };
        for src in [PY3_UUID_TUPLE_KEYS_P4, PY3_UUID_TUPLE_KEYS_P0] {
            converted(src, &policy);
        }
        for src in [PY3_EQUAL_UUID_TUPLE_KEYS_P4, PY3_EQUAL_UUID_TUPLE_KEYS_P0] {
            assert_eq!(refused(src, &policy), Reason::Collision, "{py2_text:?}");
        }
    }
}

/// Python 3 finds a `Decimal` equal to a `Fraction` or `complex` of the same value and hashes
/// them alike; Python 2 holds them as two keys. Refused for a Python 3 reader, inside tuple
/// keys too, by the general path and the fast path (which leaves such values to it).
#[test]
fn a_decimal_next_to_a_complex_of_one_value_is_refused_for_python_3() {
    assert_eq!(
        refused(PY2_DECIMAL_COMPLEX_TUPLE_KEYS, &py3()),
        Reason::Collision
    );
    // Python 2 readers: Python 3 holds such keys as one already.
    converted(PY2_DECIMAL_COMPLEX_TUPLE_KEYS, &py2());
    // py2: [Decimal('1'), complex(1, 0), set([Decimal('2')])]: list items and a set member
    // that is no complex's peer are not keys that meet.
    let items = b"\x80\x02]q\x01(cdecimal\nDecimal\nq\x02U\x011\x85Rq\x03c__builtin__\ncomplex\nq\x04G?\xf0\x00\x00\x00\x00\x00\x00G\x00\x00\x00\x00\x00\x00\x00\x00\x86Rq\x05c__builtin__\nset\nq\x06]q\x07h\x02U\x012\x85Rq\x08a\x85Rq\x09e.";
    converted(items, &py3());
}

/// Classes as keys that the reader looks up as one: Python 3's `fix_imports` reads Python 2's
/// `__builtin__.str` and `__builtin__.unicode` as `builtins.str`, and CPython 3 writes
/// `FileNotFoundError` and `OSError` as `exceptions.OSError` for Python 2. Two keys in the
/// writer, one in the reader (with or without the proxy): refused, by the general path and the
/// fast path (which leaves values naming two such globals to it).
#[test]
fn class_keys_the_reader_takes_as_one_are_refused() {
    // py2 cPickle protocol 2: {str: 1, unicode: 2}
    let py2 = b"\x80\x02}q\x01(c__builtin__\nunicode\nq\x02K\x02c__builtin__\nstr\nq\x03K\x01u.";
    assert_eq!(refused(py2, &py3()), Reason::Collision);
    // py3 protocol 4: {FileNotFoundError: 1, OSError: 2}
    let py3_written = b"\x80\x04\x958\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08builtins\x94\x8c\x11FileNotFoundError\x94\x93\x94K\x01h\x01\x8c\x07OSError\x94\x93\x94K\x02u.";
    assert_eq!(refused(py3_written, &super::py2()), Reason::Collision);
    // py2 cPickle protocol 0: {str: 1, int: 2}, two names in Python 3 too.
    let distinct = b"(dp1\nc__builtin__\nstr\np2\nI1\nsc__builtin__\nint\np3\nI2\ns.";
    converted(distinct, &py3());
}

/// Inside tuple keys a number object equals a plain number of its value in both runtimes
/// (`Decimal(1) == 1`, `Fraction(1, 2) == 0.5`), and a `datetime` with `fold=1` equals the one
/// without (fold takes no part in `==`, and Python 2 gets it cleared): such tuples are judged
/// like tuples holding any object, or by the state without its fold bit. Each value below has
/// two keys in Python 3 and one in Python 2, and was converted (exit 0) by the first version of the
/// value-key digests (found by the Python 3 stdlib probe).
#[test]
fn numbers_and_folds_inside_tuple_keys_meet_their_equals() {
    let merged: [&[u8]; 3] = [
        // py3 protocol 4: {(Decimal(1), b'a'): 1, (1, 'a'): 2}
        b"\x80\x04\x955\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x07decimal\x94\x8c\x07Decimal\x94\x93\x94\x8c\x011\x94\x85\x94R\x94C\x01a\x94\x86\x94K\x01K\x01\x8c\x01a\x94\x86\x94K\x02u.",
        // {(Fraction(1, 2), b'a'): 1, (0.5, 'a'): 2}
        b"\x80\x04\x95?\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x09fractions\x94\x8c\x08Fraction\x94\x93\x94K\x01K\x02\x86\x94R\x94C\x01a\x94\x86\x94K\x01G?\xe0\x00\x00\x00\x00\x00\x00\x8c\x01a\x94\x86\x94K\x02u.",
        // {(datetime(2020, 1, 1, fold=1), b'a'): 1, (datetime(2020, 1, 1), 'a'): 2}
        b"\x80\x04\x95Q\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xe4\x81\x01\x00\x00\x00\x00\x00\x00\x94\x85\x94R\x94C\x01a\x94\x86\x94K\x01h\x03C\n\x07\xe4\x01\x01\x00\x00\x00\x00\x00\x00\x94\x85\x94R\x94\x8c\x01a\x94\x86\x94K\x02u.",
    ];
    for src in merged {
        assert_eq!(refused(src, &super::py2()), Reason::Collision, "{src:?}");
    }
    // {(datetime(2020, 1, 1, fold=1), 'a'): 1, (datetime(2020, 1, 2), b'a'): 2}: other days.
    let distinct = b"\x80\x04\x95Q\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xe4\x81\x01\x00\x00\x00\x00\x00\x00\x94\x85\x94R\x94\x8c\x01a\x94\x86\x94K\x01h\x03C\n\x07\xe4\x01\x02\x00\x00\x00\x00\x00\x00\x94\x85\x94R\x94C\x01a\x94\x86\x94K\x02u.";
    converted(distinct, &super::py2());
}

/// Classes inside tuple keys and as an OrderedDict's keys are compared by the name the reader
/// looks them up as, with or without strings in the value (found by the key-collision probe:
/// each loaded with one key in Python 3). And for a Python 2 reader an aware `datetime` key is
/// judged like any object: Python 3 finds two of different zones unequal when an offset
/// depends on fold (PEP 495), where Python 2 compares instants.
#[test]
fn class_keys_inside_tuples_and_aware_datetime_keys_for_python_2() {
    // py2 cPickle protocol 2: {(str,): 1, (unicode,): 2}
    let tuples =
        b"\x80\x02}q\x01(c__builtin__\nunicode\nq\x02\x85K\x02c__builtin__\nstr\nq\x03\x85K\x01u.";
    assert_eq!(refused(tuples, &py3()), Reason::Collision);
    // OrderedDict([(str, 1), (unicode, 2)])
    let ordered = b"\x80\x02ccollections\nOrderedDict\nq\x01]q\x02(]q\x03(c__builtin__\nstr\nq\x04K\x01e]q\x05(c__builtin__\nunicode\nq\x06K\x02ee\x85Rq\x07.";
    assert_eq!(refused(ordered, &py3()), Reason::Collision);
    // py3 protocol 4: {datetime(2020, 1, 1, 1, 30, tzinfo=zmod.FoldTZ()): 1, 'x': 2, b'y': 3}
    let aware = b"\x80\x04\x95Q\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xe4\x01\x01\x01\x1e\x00\x00\x00\x00\x94\x8c\x04zmod\x94\x8c\x06FoldTZ\x94\x93\x94)R\x94\x86\x94R\x94K\x01\x8c\x01x\x94K\x02C\x01y\x94K\x03u.";
    assert_eq!(refused(aware, &super::py2()), Reason::Collision);
    // The same with pytz.utc (pytz predates PEP 495: no offset of it depends on fold).
    let pytz = b"\x80\x04\x95O\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xe4\x01\x01\x01\x1e\x00\x00\x00\x00\x94\x8c\x04pytz\x94\x8c\x04_UTC\x94\x93\x94)R\x94\x86\x94R\x94K\x01\x8c\x01x\x94K\x02C\x01y\x94K\x03u.";
    converted(pytz, &super::py2());
}

/// py2 (cPickle, protocol 2): {(datetime(2020, 1, 1, tzinfo=pytz.utc), u'x'): 1,
/// (datetime(2021, 1, 1, tzinfo=pytz.utc), 'y'): 2}: tuple keys holding an object (no digest)
/// and strings of two kinds, a py2 `str` and text.
const PY2_TUPLE_KEYS_WITH_AWARE_DATETIMES: &[u8] = b"\x80\x02}q\x01(cdatetime\ndatetime\nq\x02U\n\x07\xe4\x01\x01\x00\x00\x00\x00\x00\x00cpytz\n_UTC\nq\x03)Rq\x04\x86Rq\x05X\x01\x00\x00\x00x\x86K\x01h\x02U\n\x07\xe5\x01\x01\x00\x00\x00\x00\x00\x00h\x04\x86Rq\x06U\x01y\x86K\x02u.";

/// For a Python 2 reader under `py2_text = keep` a py2 `str` and text stay what Python 2 wrote:
/// keys holding them cannot meet unless bytes (which become `str`) are there too, so a value
/// Python 2 wrote goes back to Python 2 unchanged (it was refused `collision`, for its own
/// runtime: a review). Python 3 readers still get it refused, as README's object-key rule says.
#[test]
fn object_keys_with_a_str_and_text_are_no_collision_for_python_2_under_keep() {
    let src = Bytes::from_static(PY2_TUPLE_KEYS_WITH_AWARE_DATETIMES);
    assert_eq!(transcode(&src, &py2()).outcome, Outcome::Unchanged);
    let mut utf8 = py2();
    utf8.py2_text = Py2Text::Utf8;
    // `utf8` leaves what Python 2 wrote as it is: judged as under `keep`.
    assert_eq!(transcode(&src, &utf8).outcome, Outcome::Unchanged);
    assert_eq!(
        refused(PY2_TUPLE_KEYS_WITH_AWARE_DATETIMES, &py3()),
        Reason::Collision
    );
    // With bytes among them (Python 3 wrote `(b'a', o)` and `('a', o)`) they still meet.
    assert_eq!(
        refused(PY3_BYTES_SUBCLASS_KEY_P2, &py2()),
        Reason::Collision
    );
}
