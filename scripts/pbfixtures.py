# -*- coding: utf-8 -*-
"""The golden-fixture corpus of picklebridge, importable by CPython 2.7 and CPython 3.

One source describes every case for both runtimes. A case is a function of a *kit* that makes
its strings: ``k.s(b)`` is a Python 2 ``str`` (bytes), ``k.u(t)`` is text, ``k.b(b)`` is a
Python 3 ``bytes`` and ``k.n(t)`` is the writer's native ASCII ``str``. The generator builds the
objects with a native kit (what the writer pickles); the checker builds the objects the READER
must get with a kit that applies the text policy (what the transcoded pickle must load to).

The user classes live here too, so both interpreters can import them (module ``pbfixtures``).
"""
from __future__ import print_function

import array
import collections
import datetime
import decimal
import fractions
import math
import pickle
import sys
import traceback
import uuid

PY2 = sys.version_info[0] == 2
if PY2:  # pragma: no cover - exercised under CPython 2.7
    text_type = unicode  # noqa: F821
    bytes_type = str
    int_types = (int, long)  # noqa: F821
else:
    text_type = str
    bytes_type = bytes
    int_types = (int,)


# --------------------------------------------------------------------------------------------
# User classes (both runtimes). OldStyle is a classic class under Python 2.


class Plain(object):
    """An instance pickled through its __dict__."""

    def __init__(self, name=None, tags=None):
        self.name = name
        self.tags = tags


class Slotted(object):
    """__slots__ only: protocol 2 pickles (None, {slot: value}) state via copyreg."""

    __slots__ = ('x', 'y')

    def __init__(self, x=None, y=None):
        self.x = x
        self.y = y


class WithState(object):
    """__getstate__/__setstate__ with a state that is not the __dict__: ``derived`` is left
    out of the state and recomputed by __setstate__ (a BUILD that skipped it would show)."""

    def __init__(self, value=None):
        self.value = value
        self.derived = 'set'

    def __getstate__(self):
        return {'v': self.value}

    def __setstate__(self, state):
        self.value = state['v']
        self.derived = 'set'


class Reduced(object):
    """__reduce__ returning a callable and its arguments."""

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __reduce__(self):
        return (Reduced, (self.a, self.b))


class NewArgs(object):
    """__getnewargs__: __new__ needs its arguments (protocol 2 NEWOBJ)."""

    def __new__(cls, key):
        obj = object.__new__(cls)
        obj.key = key
        return obj

    def __getnewargs__(self):
        return (self.key,)


class KwNew(object):
    """__getnewargs_ex__: keyword arguments to __new__. Python 3 writes NEWOBJ_EX (protocol 4+)
    or copyreg.__newobj_ex__ (2-3), which Python 2 lacks; Python 2 ignores the method."""

    def __new__(cls, **kw):
        obj = object.__new__(cls)
        obj.key = kw.get('key')
        return obj

    def __getnewargs_ex__(self):
        return (), {'key': self.key}


class OldStyle:
    """A classic class in Python 2 (a plain class in Python 3)."""

    def __init__(self, name=None):
        self.name = name


class Outer(object):
    """Holds a nested class. Python 3 pickles it by its qualified name (protocol 4+:
    ``Outer.Inner``; 0-3: ``getattr(Outer, 'Inner')``); Python 2 cannot pickle it."""

    class Inner(object):
        def __init__(self, value=None):
            self.value = value


class FixedOffset(datetime.tzinfo):
    """A picklable tzinfo that exists in both runtimes (datetime.timezone is py3 only)."""

    def __init__(self, minutes=0):
        self.minutes = minutes

    def __getinitargs__(self):
        return (self.minutes,)

    def utcoffset(self, dt):
        return datetime.timedelta(minutes=self.minutes)

    def dst(self, dt):
        return datetime.timedelta(0)

    def tzname(self, dt):
        return 'UTC%+03d:%02d' % divmod(self.minutes, 60)


class Samples(array.array):
    """An array subclass, the only kind of array with an instance ``__dict__``."""


USER_CLASSES = (Plain, Slotted, WithState, Reduced, NewArgs, KwNew, OldStyle, FixedOffset,
                Samples)

# Classes that are classic in Python 2: the transcoder's py2_classic list for this corpus.
PY2_CLASSIC = ('pbfixtures.OldStyle',)


# --------------------------------------------------------------------------------------------
# Kits: how a case's strings become objects.


class NativeKit(object):
    """What the writing interpreter itself pickles."""

    def __init__(self):
        self.writer = 'py2' if PY2 else 'py3'

    def s(self, b):
        assert PY2, 'py2 str only exists in Python 2 cases'
        return b

    def u(self, t):
        return t

    def b(self, b):
        assert not PY2, 'bytes cases are written by Python 3'
        return b

    def n(self, t):
        return t.encode('ascii') if PY2 else t


class ReaderKit(object):
    """What the reader must get from a transcoded pickle written by ``writer``.

    ``py3_str``: how a py2 str reaches a py3 reader (utf8-or-bytes | bytes | latin1).
    ``py2_text``: how py3 text reaches a py2 reader (keep | utf8).
    A reader of the writer's own runtime gets the writer's objects (round trip).
    """

    def __init__(self, writer, py3_str='utf8-or-bytes', py2_text='keep'):
        self.writer = writer
        self.reader = 'py2' if PY2 else 'py3'
        self.py3_str = py3_str
        self.py2_text = py2_text

    def s(self, b):
        if PY2 or self.py3_str == 'bytes':
            return b
        if self.py3_str == 'latin1':
            return b.decode('latin-1')
        try:
            return b.decode('utf-8')
        except UnicodeDecodeError:
            return b

    def u(self, t):
        if PY2 and self.writer == 'py3' and self.py2_text == 'utf8':
            return t.encode('utf-8')
        return t

    def b(self, b):
        return b

    def n(self, t):
        if self.writer == 'py2':
            return self.s(t if isinstance(t, bytes_type) else t.encode('ascii'))
        return self.u(t if isinstance(t, text_type) else t.decode('ascii'))


# --------------------------------------------------------------------------------------------
# The corpus. Each case: (name, writers, plain, build). ``plain`` marks plain data that
# serde-pickle can decode (no classes, no recursion).

BINARY_SIZES = (0, 1, 255, 256, 70000)


# Every typecode both runtimes' array has, with the extremes of its items (case name suffix,
# typecode, items); `l`/`L` are 64-bit as on the Linux hosts the fixtures are made on.
ARRAY_TYPECODES = (
    ('i8', 'b', [-128, 0, 127]),
    ('u8', 'B', [0, 1, 255]),
    ('i16', 'h', [-32768, -1, 32767]),
    ('u16', 'H', [0, 256, 65535]),
    ('i32', 'i', [-2 ** 31, 2 ** 31 - 1]),
    ('u32', 'I', [0, 2 ** 32 - 1]),
    ('long', 'l', [-2 ** 63, 0, 2 ** 63 - 1]),
    ('ulong', 'L', [0, 2 ** 64 - 1]),
    ('float', 'f', [1.5, -0.0, float('inf'), -2.5e38]),
    ('double', 'd', [0.1, -0.0, 1e300, float('-inf')]),
    ('unicode', 'u', u'a\xe9\u7231\U0001f600'),
)


def _array_dict(k):
    a = Samples('i', [1, -2])
    a.label = k.n('x')
    return a


def _array_same_twice(k):
    a = array.array('h', [1, 2])
    return [a, a]


def _binary(n):
    return bytes_type(bytearray(i % 256 for i in range(n)))


def _recursive_list(k):
    lst = [k.n('head')]
    lst.append(lst)
    return lst


def _recursive_dict(k):
    d = {k.n('name'): k.n('root')}
    d[k.n('self')] = d
    return d


def _shared(k):
    inner = [1, k.n('x')]
    d = {k.n('k'): inner}
    return [inner, inner, d, d, (inner,)]


def _mixed_keys(k):
    return {1: k.n('int'), k.n('ascii'): 2, k.u(u'\u00e9t\u00e9'): 3, (1, k.n('t')): None,
            2.5: [k.n('float')], None: True}


def _py2_mixed_keys(k):
    return {1: k.s(b'int'), k.s(b'str'): 2, k.u(u'uni'): 3, k.s(b'caf\xc3\xa9'): 4,
            k.u(u'\u00e9t\u00e9'): 5, (1, k.s(b't')): None}


def _py3_mixed_keys(k):
    return {k.b(b'bytes'): 1, k.u(u'text'): 2, k.u(u'\u7231'): 3, k.b(b'\xff'): 4}


def _value_keys(k):
    # Keys whose classes compare by a value no conversion changes, next to string keys of two
    # kinds (py2: str and unicode; py3: text, and the bytes of the datetime states).
    return {datetime.date(2024, 2, 29): k.n('d'), datetime.datetime(2024, 2, 29, 1, 2, 3): 0,
            datetime.time(1, 2, 3): 1, decimal.Decimal('1.5'): 2,
            datetime.timedelta(days=1): 3, uuid.UUID(int=5): 4,
            (datetime.date(2024, 1, 1), k.u(u'x')): 5, (datetime.date(2024, 1, 2), k.n('y')): 6,
            k.u(u'\u00e9t\u00e9'): 7, k.n('ascii'): 8}


def _py2_value_keys(k):
    return {datetime.date(2024, 2, 29): k.s(b'caf\xc3\xa9'), k.u(u'x'): 1, k.s(b'y'): 2,
            (datetime.date(2024, 1, 1), k.s(b'\xc3\xa9')): 3,
            (datetime.date(2024, 1, 1), k.u(u'\xe9t\xe9')): 4}


def _py3_value_keys(k):
    return {datetime.date(2024, 2, 29): k.b(b'\xff'), k.u(u'x'): 1, k.b(b'y'): 2,
            (datetime.date(2024, 1, 1), k.b(b'z')): 3, (datetime.date(2024, 1, 2), k.u(u'z')): 4}


def _aware(minutes):
    return datetime.datetime(2024, 2, 29, 13, 14, 15, 123456, FixedOffset(minutes))


def _utc():
    return datetime.datetime(2024, 2, 29, 13, 14, 15, 123456, datetime.timezone.utc)


def _plain_instance(k):
    return Plain(k.u(u'\u00e9l\u00e8ve'), [k.n('a'), 1])


def _all_classes(k):
    return [Plain(k.n('p'), None), WithState(k.n('w')),
            Reduced(1, k.n('r')), NewArgs(k.n('key')), OldStyle(k.n('old'))]


def _cases():
    both, py2, py3 = ('py2', 'py3'), ('py2',), ('py3',)
    c = [
        ('none_bool', both, True, lambda k: [None, True, False]),
        ('int_small', both, True, lambda k: [0, 1, -1, 255, 256, 65535, 65536, -65536]),
        ('int_32', both, True, lambda k: [2 ** 31 - 1, -2 ** 31, 2 ** 31, -2 ** 31 - 1]),
        ('int_big', both, True, lambda k: [2 ** 63, -2 ** 63 - 1, 2 ** 70, -(2 ** 200) + 7]),
        # More digits than CPython 3.11 reads from a protocol 0/1 line (4 300): Python 2 writes
        # `L<digits>L` there; Python 3 cannot write such a line (its repr refuses).
        ('int_digits', py2, False, lambda k: [10 ** 4400, -(3 ** 9001), 10 ** 4299, k.n('x')]),
        ('float', both, True, lambda k: [0.0, -1.5, 1e300, -2.5e-300, float('inf')]),
        ('unicode_ascii', both, True, lambda k: k.u(u'hello world')),
        ('unicode_nonascii', both, True, lambda k: k.u(u'h\u00e9llo \u7231 \U0001f600 \x00')),
        ('unicode_long', both, True, lambda k: k.u(u'\u00e9\u7231' * 3000)),
        ('native_ascii', both, True, lambda k: k.n('hello')),
        ('tuples', both, True, lambda k: [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)]),
        ('list_nested', both, True, lambda k: [[1, [2, [3, []]]], [k.n('a')] * 3]),
        ('dict_mixed_keys', both, True, _mixed_keys),
        ('dict_large', both, True, lambda k: dict((i, [i]) for i in range(1500))),
        ('dict_value_keys', both, False, _value_keys),
        ('set_small', both, True, lambda k: set([1, 2, 3, k.n('a')])),
        ('set_large', both, True, lambda k: set(range(1500))),
        ('frozenset_small', both, True, lambda k: frozenset([1, k.n('b')])),
        ('frozenset_large', both, True, lambda k: frozenset(range(-700, 800))),
        ('set_empty', both, True, lambda k: [set(), frozenset()]),
        ('shared_refs', both, False, _shared),
        ('recursive_list', both, False, _recursive_list),
        ('recursive_dict', both, False, _recursive_dict),
        ('date', both, False, lambda k: datetime.date(2024, 2, 29)),
        ('time', both, False, lambda k: datetime.time(13, 14, 15, 123456)),
        ('datetime_naive', both, False,
         lambda k: datetime.datetime(2024, 2, 29, 13, 14, 15, 123456)),
        ('datetime_many', both, False,
         lambda k: [datetime.datetime(2000 + i, 1 + i % 12, 1 + i, i % 24, i, i, i * 1000)
                    for i in range(28)]),
        ('datetime_aware', both, False, lambda k: [_aware(60), _aware(-330), _aware(0)]),
        ('timedelta', both, False,
         lambda k: [datetime.timedelta(days=-1, seconds=5, microseconds=7),
                    datetime.timedelta(days=9999)]),
        ('decimal', both, False,
         lambda k: [decimal.Decimal('3.14159265358979323846264338327950288'),
                    decimal.Decimal('-0'), decimal.Decimal('1E+30')]),
        ('ordereddict', both, False,
         lambda k: collections.OrderedDict([(k.n('b'), 1), (k.n('a'), 2), (3, k.n('c'))])),
        ('complex', both, False, lambda k: [complex(1.5, -2), complex(0, 1)]),
        ('class_plain', both, False, _plain_instance),
        ('class_slots', both, False, lambda k: Slotted(1, [k.n('y')])),
        ('class_getstate', both, False, lambda k: WithState([1, k.n('v')])),
        ('class_reduce', both, False, lambda k: Reduced(2, k.n('r'))),
        ('class_newargs', both, False, lambda k: NewArgs(k.n('key'))),
        ('class_oldstyle', both, False, lambda k: OldStyle(k.n('old'))),
        ('class_all', both, False, _all_classes),
        # A nested class and its instances (shared: the class is memoized).
        ('class_nested', py3, False,
         lambda k: [Outer.Inner(k.n('i')), Outer.Inner, Outer.Inner([1, k.u(u'\u7231')])]),
        # Python 3 writes NEWOBJ_EX at protocols 4-5 and a functools.partial of __new__ at 2-3.
        ('class_kwnew', both, False, lambda k: [KwNew(key=k.n('k')), KwNew(key=1)]),
        # Standard-library types a Django cache also holds.
        ('stdlib_misc', both, False,
         lambda k: [collections.defaultdict(int, {k.n('a'): 1}), collections.deque([1, k.n('b')]),
                    collections.Counter({k.n('x'): 2}),
                    uuid.UUID(int=0x12345678123456781234567812345678),
                    fractions.Fraction(1, 3), slice(1, 10, 2)]),
        ('array_int', both, False, lambda k: array.array('i', [1, -2, 3])),
        # Python 2 str: ASCII, UTF-8, invalid UTF-8 and binary of every length class.
        ('str_ascii', py2, True, lambda k: k.s(b'hello')),
        ('str_utf8', py2, True, lambda k: k.s(b'\xe7\x88\xb1 caf\xc3\xa9')),
        ('str_invalid_utf8', py2, True, lambda k: k.s(b'\xff\x00\xfe\x80 abc')),
        ('str_dict_mixed_keys', py2, True, _py2_mixed_keys),
        ('str_dict_value_keys', py2, False, _py2_value_keys),
        # Two keys in Python 2, one in Python 3 (equal numbers hashed alike there only).
        ('decimal_fraction_keys', py2, False,
         lambda k: {decimal.Decimal('1.5'): 1, fractions.Fraction(3, 2): 2}),
        ('str_in_containers', py2, True,
         lambda k: {k.s(b'a'): [k.s(b'\xc3\xa9'), (k.s(b'\xff'), k.u(u'\xff'))]}),
        ('bytearray', both, True,
         lambda k: [bytearray(b''), bytearray(b'\x00\xff abc'), bytearray(_binary(300))]),
        ('bytes_utf8_payload', py3, True, lambda k: k.b(u'\u7231'.encode('utf-8'))),
        ('str_binary_in_dict', py2, True,
         lambda k: {k.s(b'blob'): k.s(_binary(300)), k.s(b'empty'): k.s(b'')}),
        ('array_char', py2, False, lambda k: array.array('c', b'ab')),
        # Its object is binary state: Python 3's constructor takes bytes only, even where the
        # bytes are valid UTF-8 (which the default policy would make text).
        ('unicode_decode_error', py2, False,
         lambda k: [UnicodeDecodeError(k.n('utf-8'), b'caf\xc3\xa9 \xff', 5, 6, k.n('bad byte')),
                    UnicodeDecodeError(k.n('ascii'), b'ok', 0, 1, k.n('x')), ValueError(k.n('v'))]),
        ('str_utf8_long', py2, True,
         lambda k: {k.s(b'text'): k.s(u'\u00e9\u7231 '.encode('utf-8') * 2000)}),
        # Python 3 only.
        ('bytes_in_containers', py3, True,
         lambda k: {k.u(u'data'): [k.b(_binary(256)), k.b(b'\x00'), k.b(b'abc')]}),
        ('bytes_dict_value_keys', py3, False, _py3_value_keys),
        ('text_dict', py3, True, lambda k: {k.u(u'a'): k.u(u'\u7231'), k.u(u'b'): [k.u(u'x')]}),
        ('bytes_set', py3, True, lambda k: set([k.b(b'a'), k.b(b'\xff')])),
        ('datetime_utc', py3, False, lambda k: _utc()),
        ('collision_dict', py3, True, lambda k: {k.b(b'a'): 1, k.u(u'a'): 2}),
        ('collision_set', py3, True, lambda k: set([k.b(b'a'), k.u(u'a')])),
    ]
    for suffix, typecode, items in ARRAY_TYPECODES:
        c.append(('array_%s' % suffix, both, False,
                  lambda k, t=typecode, i=items: array.array(t, i)))
    c.extend([
        ('array_empty', both, False, lambda k: array.array('d')),
        ('array_with_dict', both, False, _array_dict),
        ('array_same_twice', both, False, _array_same_twice),
        # The second array fetches `array.array` (and, at 3+, the reconstructor) by GET.
        ('array_two', both, False,
         lambda k: [array.array('i', [1]), array.array('d', [2.5]), array.array('i')]),
        # CPython keeps one `b''` and one `bytes` per byte value: at 3+ these arrays' items
        # are the same objects as the bytes beside them, fetched by GET one way or the other.
        ('array_shared_bytes', py3, False,
         lambda k: [array.array('B'), array.array('d'), k.b(b''), array.array('B', [1]),
                    k.b(b'\x01'), array.array('b', [1]), k.b(b'')]),
        # Python 2's array lacks `q`: refused for it at every protocol.
        ('array_q', py3, False, lambda k: array.array('q', [1, -2 ** 63])),
    ])
    for n in BINARY_SIZES:
        c.append(('str_binary_%d' % n, py2, True, lambda k, n=n: k.s(_binary(n))))
        c.append(('bytes_%d' % n, py3, True, lambda k, n=n: k.b(_binary(n))))
    return c


CASES = _cases()
CASE_INDEX = dict((name, (writers, plain, build)) for name, writers, plain, build in CASES)


def build(name, kit):
    """The object of case ``name`` made with ``kit``."""
    return CASE_INDEX[name][2](kit)


# --------------------------------------------------------------------------------------------
# Comparison: structural equality that also checks string types strictly (u'a' == 'a' in
# Python 2 must not hide a wrong type), shared references and cycles.

_STRINGS = (text_type, bytes_type)


def _attrs(obj):
    out = {}
    d = getattr(obj, '__dict__', None)
    if d is not None:
        for key, value in d.items():
            out[str(key)] = value
    for cls in type(obj).__mro__ if hasattr(type(obj), '__mro__') else ():
        for slot in getattr(cls, '__slots__', ()):
            if hasattr(obj, slot):
                out[slot] = getattr(obj, slot)
    return out


def mismatch(got, want, path='$', seen=None):
    """None when ``got`` is ``want`` structurally, else a description of the first difference."""
    if seen is None:
        seen = {}
    if isinstance(want, _STRINGS) or isinstance(got, _STRINGS):
        if type(got) is not type(want) or got != want:
            return '%s: got %s %r, want %s %r' % (path, type(got).__name__, _short(got),
                                                   type(want).__name__, _short(want))
        return None
    if isinstance(want, (bool, type(None))) or isinstance(want, int_types + (float, complex)):
        # int and long are one number type across the runtimes; bool is not (True == 1).
        if type(got) is not type(want) and not (
                isinstance(got, int_types) and isinstance(want, int_types)
                and not isinstance(got, bool) and not isinstance(want, bool)):
            return '%s: got %s %r, want %s %r' % (path, type(got).__name__, got,
                                                   type(want).__name__, want)
        if isinstance(want, float) and want != want:  # NaN: equal to nothing, itself included
            return None if got != got else '%s: got %r, want nan' % (path, got)
        if isinstance(want, float) and want == 0 and math.copysign(1, got) != \
                math.copysign(1, want):
            return '%s: got %r, want %r' % (path, got, want)
        return None if got == want else '%s: got %r, want %r' % (path, got, want)
    if id(want) in seen:
        if seen[id(want)] is not got:
            return '%s: shared/recursive reference not preserved' % path
        return None
    if type(got) is not type(want):
        return '%s: got type %s.%s, want %s.%s' % (
            path, type(got).__module__, type(got).__name__,
            type(want).__module__, type(want).__name__)
    if isinstance(want, (list, dict, set, frozenset, bytearray, array.array)) \
            or hasattr(want, '__dict__') \
            or hasattr(type(want), '__slots__'):
        seen[id(want)] = got
    if isinstance(want, (list, tuple, collections.deque)):
        if len(got) != len(want):
            return '%s: length %d, want %d' % (path, len(got), len(want))
        for i, (g, w) in enumerate(zip(got, want)):
            m = mismatch(g, w, '%s[%d]' % (path, i), seen)
            if m:
                return m
        return None
    if isinstance(want, dict):
        if len(got) != len(want):
            return '%s: %d keys, want %d' % (path, len(got), len(want))
        if isinstance(want, collections.OrderedDict) and list(got) != list(want):
            return '%s: key order %r, want %r' % (path, list(got), list(want))
        for key, w in want.items():
            gkey = _find_key(got, key)
            if gkey is _MISSING:
                return '%s: missing key %r (have %r)' % (path, key, sorted(map(repr, got)))
            m = mismatch(gkey, key, '%s key %r' % (path, key), {}) or \
                mismatch(got[gkey], w, '%s[%r]' % (path, key), seen)
            if m:
                return m
        return None
    if isinstance(want, (set, frozenset)):
        if len(got) != len(want):
            return '%s: %d members, want %d' % (path, len(got), len(want))
        for w in want:
            g = _find_key(got, w)
            if g is _MISSING:
                return '%s: missing member %r' % (path, w)
            m = mismatch(g, w, '%s member %r' % (path, w), {})
            if m:
                return m
        return None
    if isinstance(want, slice):
        return mismatch((got.start, got.stop, got.step), (want.start, want.stop, want.step),
                        path + '.slice', seen)
    if isinstance(want, decimal.Decimal):  # by text: -0 and 0, NaN, exponent all count
        return None if str(got) == str(want) else '%s: got %r, want %r' % (path, got, want)
    if isinstance(want, (bytearray, datetime.date, datetime.time, datetime.timedelta)):
        if got != want:
            return '%s: got %r, want %r' % (path, got, want)
        if isinstance(want, (datetime.datetime, datetime.time)) and \
                (got.utcoffset() if isinstance(got, datetime.datetime) else got.utcoffset()) != \
                (want.utcoffset() if isinstance(want, datetime.datetime) else want.utcoffset()):
            return '%s: utcoffset %r, want %r' % (path, got.utcoffset(), want.utcoffset())
        return None
    if isinstance(want, array.array):  # `==` ignores the typecode
        if got.typecode != want.typecode or got.tolist() != want.tolist():
            return '%s: got %r, want %r' % (path, got, want)
        if not hasattr(want, '__dict__'):
            return None
    if isinstance(want, BaseException):  # `==` is identity: compare the arguments, then __dict__
        m = mismatch(tuple(got.args), tuple(want.args), path + '.args', seen)
        if m:
            return m
    if type(want) in USER_CLASSES or hasattr(want, '__dict__'):
        # Attribute by attribute: the _attrs() dicts are temporaries, so they must not enter
        # ``seen`` (a later temporary could reuse the id).
        if getattr(got, '__class__', None) is not getattr(want, '__class__', None):
            return '%s: got class %r, want %r' % (path, got.__class__, want.__class__)
        got_attrs, want_attrs = _attrs(got), _attrs(want)
        if sorted(got_attrs) != sorted(want_attrs):
            return '%s: attributes %r, want %r' % (path, sorted(got_attrs), sorted(want_attrs))
        for name in sorted(want_attrs):
            m = mismatch(got_attrs[name], want_attrs[name], '%s.%s' % (path, name), seen)
            if m:
                return m
        return None
    return None if got == want else '%s: got %r, want %r' % (path, got, want)


_MISSING = object()


def _find_key(container, key):
    """The member of ``container`` equal to ``key`` (the stored object, to check its type)."""
    if key not in container:
        return _MISSING
    for member in container:
        if member == key and hash(member) == hash(key):
            return member
    return _MISSING


def _short(value):
    r = repr(value)
    return r if len(r) <= 80 else r[:60] + '...(%d chars)' % len(r)


def loaders():
    """(name, loads) of every unpickler of this interpreter with default arguments: the pure
    Python one and the C one (pickle and cPickle in 2; pickle._loads and pickle.loads in 3)."""
    if sys.version_info[0] == 2:
        import cPickle
        return (('pickle', pickle.loads), ('cPickle', cPickle.loads))
    return (('pickle', pickle.loads), ('pickle._loads', pickle._loads))


def check_loads(data, want):
    """None when every default unpickler loads ``data`` to ``want``, else the failure text."""
    for loader_name, loads in loaders():
        try:
            got = loads(data)
        except Exception:
            return '%s.loads raised\n%s' % (loader_name, traceback.format_exc())
        try:
            why = mismatch(got, want)
        except Exception:
            return 'comparing %s.loads result raised\n%s' % (loader_name, traceback.format_exc())
        if why:
            return '%s.loads: %s' % (loader_name, why)
    return None
