# -*- coding: utf-8 -*-
"""A seeded RANDOM corpus of pickles, written by the REAL interpreter that runs it.

    .cache/bin/python3 scripts/gen_random.py --seed 7 --count 40 OUT_DIR   # pickle, p0-5
    .cache/bin/python2 scripts/gen_random.py --seed 7 --count 40 OUT_DIR   # pickle + cPickle, p0-2

Value ``index`` of ``seed`` is built by :func:`build` from a grammar of what both runtimes can
represent (None/bools, boundary and huge ints, floats incl. -0.0/inf/nan, py2 ``str`` of every
flavour, text up to non-BMP, py3 ``bytes``, bytearray, tuples, lists, dicts with one or mixed key
kinds (dates, times, timedeltas, UUIDs, Decimals, Fractions and complex numbers among them), sets/frozensets up to 1500 members, OrderedDict, built-in exceptions, shared and recursive references, dates,
times, datetimes naive/aware, timedelta, Decimal, complex, array, the user classes of
scripts/pbfixtures.py, and a few py3-only globals), at most 5 containers deep. As in pbfixtures,
strings go through a *kit*: the writer builds with ``NativeKit``; the checker
(scripts/check_random.py) rebuilds the same (seed, index) in the OTHER runtime with ``ReaderKit``
and compares. Every choice comes from integer draws of ``random.Random(seed << 32 | index)``
(``getrandbits`` agrees between CPython 2.7 and 3) and never from hash order, so both runtimes
build the same structure; a fingerprint of the draws goes into the manifest and the checker
verifies it.

Files: ``OUT_DIR/r<seed>_<index>_<writer>_p<N>[_c].pickle`` (``_c``: cPickle). The manifest
``OUT_DIR/manifest_<writer>.json`` lists every file with its index, protocol and pickler, the
fingerprint per index, and what the writer itself could not pickle or read back (writer limits,
recorded rather than hidden; the checker ignores them).
"""
from __future__ import print_function

import argparse
import array
import binascii
import collections
import datetime
import decimal
import fractions
import json
import os
import pickle
import random
import sys
import types
import uuid
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbfixtures  # noqa: E402
from pbfixtures import (FixedOffset, KwNew, NewArgs, OldStyle, Outer,  # noqa: E402
                        Plain, Reduced, Slotted, WithState)

# Python 2 warns on every str/unicode comparison that cannot decode; they are expected here.
warnings.simplefilter('ignore', UnicodeWarning)

PY2 = sys.version_info[0] == 2
if PY2:  # pragma: no cover - exercised under CPython 2.7
    unichr_ = unichr  # noqa: F821
    long_ = long  # noqa: F821
else:
    unichr_ = chr
    long_ = int

MAX_DEPTH = 5
# Shapes of known, reported and still open transcoder bugs, generated only with
# --include-open (so the default corpus checks everything else strictly). None at the moment:
# tuple/frozenset keys and OrderedDict/defaultdict keys whose strings differ only in kind, and
# datetime/time with fold=1 at protocol 4/5, were open; fixed, they are in the default corpus.
OPEN_SHAPES = ()
# Sizes a binary string or text is drawn at; the large ones are drawn rarely.
SIZES = (0, 1, 2, 3, 5, 8, 13, 40, 255, 256)
BIG_SIZES = (300, 1000, 70000)
# Code point ranges of text, by flavour (surrogates excluded: both runtimes must encode them).
TEXT_RANGES = {
    'ascii': [(0x20, 0x7e)],
    'controls': [(0x00, 0x1f), (0x7f, 0x7f), (0x5c, 0x5c), (0x27, 0x27), (0x22, 0x22)],
    'latin1': [(0x80, 0xff)],
    'bmp': [(0x100, 0x7ff), (0x4e00, 0x9fff), (0xe000, 0xfffd), (0xfffe, 0xffff)],
    'astral': [(0x10000, 0x10ffff), (0x1f600, 0x1f64f)],
}
TEXT_FLAVOURS = ('ascii', 'ascii', 'controls', 'latin1', 'bmp', 'astral', 'mixed', 'mixed')
# Key texts drawn from a small pool, so a dict or set often holds the same content as two kinds
# (b'a' and 'a'; 'é' as UTF-8 or latin-1 bytes and as text): the collisions the transcoder must
# refuse, and the near-collisions it must not.
KEY_TEXTS = (u'a', u'b', u'key', u'', u'a\x00', u'\xe9', u'\xff', u'caf\xe9', u'\u7231',
             u'\U0001f600', u'\xc3\xa9')
INT_POOL = (0, 1, -1, 2, 255, 256, 65535, 65536, -65536, 2 ** 31 - 1, -2 ** 31, 2 ** 31,
            -2 ** 31 - 1, 2 ** 32, 2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1, 2 ** 64, 2 ** 70,
            -(2 ** 200) + 7)
FLOAT_POOL = (0.0, -0.0, 1.5, -2.5e-300, 1e300, 5e-324, float('inf'), float('-inf'),
              float('nan'), 0.1, 1e16, 123456789.125)


class Draw(object):
    """Integer draws from ``random.Random(seed << 32 | index)`` with a running fingerprint."""

    def __init__(self, seed, index):
        self.rng = random.Random((seed << 32) | index)
        self.fingerprint = 0
        self.count = 0

    def bits(self, k):
        v = int(self.rng.getrandbits(k))
        self.fingerprint = (self.fingerprint * 1000003 + v + self.count) % (2 ** 61 - 1)
        self.count += 1
        return v

    def below(self, n):
        """Uniform in [0, n) by rejection (no float arithmetic, identical in both runtimes)."""
        if n <= 1:
            return 0
        k = (n - 1).bit_length()
        while True:
            v = self.bits(k)
            if v < n:
                return v

    def chance(self, num, den):
        return self.below(den) < num

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def raw(self, n):
        """n random bytes (one draw)."""
        if n == 0:
            return b''
        return binascii.unhexlify('%0*x' % (2 * n, self.bits(8 * n)))


class Gen(object):
    """Builds value ``index`` of ``seed`` for ``writer`` ('py2' or 'py3') with ``kit``.

    ``notes`` collects what the target runtime's transcoder must refuse: 'collision' (two keys
    that are distinct for the writer are equal once built with the reader's kit), 'py3_only' (a
    global Python 2 lacks), 'utc' (``timezone.utc``: refused unless ``py2_utc = pytz``),
    'array_c' (py2 char array; the other arrays are converted for every typecode drawn here,
    protocol 3+'s reconstructor included, so they get no note), 'newobj_ex' (keyword arguments to ``__new__``),
    'newargs_bytes' (a py2 `str` as the one argument of NEWOBJ that a Python 3 checker's kit
    makes `bytes`: refused, as a `str` subclass's value would be).
    """

    def __init__(self, seed, index, writer, kit, include_open=False):
        self.d = Draw(seed, index)
        self.writer = writer
        self.include_open = include_open
        self.k = kit
        self.native = isinstance(kit, pbfixtures.NativeKit)
        self.notes = set()
        self.shared = []      # objects a later slot may reference again (memo GETs)
        self.open = []        # mutable containers being filled (recursive references)
        self.keys = []        # (key, canon) already used: keys shared between containers
        self.tzs = []         # FixedOffset objects already used

    # ---------------------------------------------------------------------------------------
    # Strings. ``canon`` is the writer's equality class of a key, computed from the drawn content
    # (never from the kit's object): py2 'a' == u'a', but b'a' != 'a' in Python 3.

    def text(self, flavour=None, size=None):
        d = self.d
        flavour = flavour or d.pick(TEXT_FLAVOURS)
        if size is None:
            size = d.pick(BIG_SIZES) if d.chance(1, 40) else d.pick(SIZES)
        chunk = min(size, 64)
        chars = []
        for _ in range(chunk):
            fl = d.pick(('ascii', 'controls', 'latin1', 'bmp', 'astral')) \
                if flavour == 'mixed' else flavour
            lo, hi = d.pick(TEXT_RANGES[fl])
            chars.append(unichr_(lo + d.below(hi - lo + 1)))
        t = u''.join(chars)
        if size > chunk:
            t = (t * (size // chunk + 1))[:size]
        return t

    def binary(self, size=None):
        d = self.d
        if size is None:
            size = d.pick(BIG_SIZES) if d.chance(1, 40) else d.pick(SIZES)
        how = d.below(4)
        if how == 0:  # ASCII
            return self.text('ascii', size).encode('ascii')
        if how == 1:  # UTF-8 of text (valid UTF-8, maybe not ASCII)
            return self.text(None, size).encode('utf-8')
        if how == 2:  # latin-1 of text: rarely valid UTF-8
            return self.text('latin1', size).encode('latin-1')
        if size > 4096:
            return (d.raw(4096) * (size // 4096 + 1))[:size]
        return d.raw(size)

    def string(self):
        """A string value of a kind this writer has."""
        d, k = self.d, self.k
        if self.writer == 'py2':
            kind = d.below(5)
            if kind <= 1:
                return k.s(self.binary())
            if kind <= 3:
                return k.u(self.text())
            return k.n(self.text('ascii', d.pick(SIZES[:8])))
        kind = d.below(5)
        if kind <= 1:
            return k.b(self.binary())
        if kind <= 3:
            return k.u(self.text())
        return k.n(self.text('ascii', d.pick(SIZES[:8])))

    def str_key(self):
        """(key, canon) of a string key from the small pool."""
        d, k = self.d, self.k
        t = d.pick(KEY_TEXTS)
        if self.writer == 'py2':
            form = d.below(4)
            if form == 0:
                return k.u(t), ('t', t)
            enc = 'utf-8' if form <= 2 else 'latin-1'
            try:
                b = t.encode(enc)
            except UnicodeEncodeError:
                b = t.encode('utf-8')
            if all(ord(b[i:i + 1]) < 0x80 for i in range(len(b))):
                return k.s(b), ('t', b.decode('ascii'))
            return k.s(b), ('b', b)
        form = d.below(4)
        if form <= 1:
            return k.u(t), ('t', t)
        enc = 'utf-8' if form == 2 else 'latin-1'
        try:
            b = t.encode(enc)
        except UnicodeEncodeError:
            b = t.encode('utf-8')
        return k.b(b), ('b', b)

    # ---------------------------------------------------------------------------------------
    # Hashable values (dict keys, set members).

    def key(self, depth, kinds, inner=False):
        """(key, canon); ``kinds``: 's' strings, 'i' ints, 't' tuples, 'm' anything hashable."""
        d = self.d
        if self.keys and d.chance(1, 8):
            pair = self.keys[d.below(len(self.keys))]
            found = set()
            _numbers(pair[1], found)
            if not (inner and found):  # no numbers inside tuple keys (see value_key)
                return pair
        kind = d.pick(kinds) if kinds != 'm' else d.pick('ssiitfnFo')
        if depth >= MAX_DEPTH and kind in 'tF':
            kind = 'i'
        if kind == 's':
            pair = self.str_key()
        elif kind == 'i':
            n = d.pick(INT_POOL) if d.chance(1, 2) else d.below(2000) - 1000
            pair = n, ('num', n)
        elif kind == 'f':
            f = d.pick((2.5, -0.5, 1e300, float('inf'), 0.125))
            pair = f, ('num', f)
        elif kind == 'n':
            pair = None, ('none',)
        elif kind == 'o':
            pair = self.value_key(inner)
        elif kind == 't':
            items = [self.key(depth + 1, 'm', True) for _ in range(d.below(4))]
            pair = tuple(i for i, _ in items), ('tuple', tuple(c for _, c in items))
        else:
            members = self.members(depth + 1, 'm', d.below(4), True)
            made = frozenset(m for m, _ in members)
            self.check_distinct(made, len(members))
            pair = made, ('fs', frozenset(c for _, c in members))
        if d.chance(1, 4):
            self.keys.append(pair)
        return pair

    def value_key(self, inner=False):
        """(key, canon) of a standard value type the transcoder compares by value as a key
        (`compat::value_key`), from small pools so that equal ones meet inside tuple keys. None
        equals a string, a number of the pools or a key of another type in either runtime: the
        Decimals end in a 1 at the third decimal (no float or third equals one), the Fractions
        are thirds. ``inner`` (inside a tuple or frozenset key): no numbers, which the transcoder
        judges there like any object (they equal other numbers), refusing them next to strings
        of two kinds that could meet."""
        d = self.d
        r = d.below(5 if inner else 8)
        if r == 0:
            v = (2000 + d.below(3), 1 + d.below(2), 1 + d.below(2))
            return datetime.date(*v), ('date',) + v
        if r == 1:
            v = (2000 + d.below(2), 1, 1, d.below(2), d.below(2))
            return datetime.datetime(*v), ('datetime',) + v
        if r == 2:
            v = (d.below(2), d.below(2))
            return datetime.time(*v), ('time',) + v
        if r == 3:
            v = d.below(3)
            return datetime.timedelta(days=v), ('timedelta', v)
        if r == 4:
            v = d.below(3)
            return uuid.UUID(int=v), ('uuid', v)
        if r == 5:
            v = '%d.%d%d1' % (d.below(3), d.below(2), d.below(2))
            return decimal.Decimal(v), ('decimal', v)
        if r == 6:
            v = d.pick((1, 2, 4, 5))
            return fractions.Fraction(v, 3), ('fraction', v)
        v = d.below(2)
        return complex(v, 1), ('complex', v)

    def members(self, depth, kinds, n, inner=False):
        """``n`` draws of (key, canon), distinct for the writer (repeats dropped)."""
        seen, out = set(), []
        for _ in range(n):
            key, canon = self.key(depth, kinds, inner)
            if canon not in seen:
                seen.add(canon)
                out.append((key, canon))
        # Python 3 finds a Decimal equal to a Fraction or complex of one value, and Python 2 does
        # not: the transcoder refuses a py3 reader's dict or set holding both (inside tuple and
        # frozenset keys too), whatever their values.
        if self.writer == 'py2':
            found = set()
            for _, canon in out:
                _numbers(canon, found)
            if 'decimal' in found and found & set(('fraction', 'complex')):
                self.notes.add('collision')
        return out

    def check_distinct(self, built, n):
        """The writer's own objects are distinct (the canons are right); the reader's may
        collide: then the target must refuse the value."""
        if len(built) < n:
            assert not self.native, 'canon failed: writer sees a repeated key'
            self.notes.add('collision')

    # ---------------------------------------------------------------------------------------
    # Values.

    def value(self, depth=0):
        d = self.d
        r = d.below(100) if depth else 25 + d.below(75)  # the value itself: mostly a container
        if depth >= MAX_DEPTH or r < 40:
            return self.leaf()
        if r < 47 and self.shared:
            return self.shared[d.below(len(self.shared))]
        if r < 51 and self.open:
            return self.open[d.below(len(self.open))]
        if r < 60:
            return self.tuple_(depth)
        if r < 70:
            return self.list_(depth)
        if r < 80:
            return self.dict_(depth)
        if r < 85:
            return self.set_(depth)
        if r < 87:
            return self.ordered(depth)
        if r < 95:
            return self.instance(depth)
        return self.remember(self.special())

    def remember(self, obj):
        if self.d.chance(1, 3):
            self.shared.append(obj)
        return obj

    def size(self):
        return self.d.pick((0, 1, 1, 2, 2, 3, 3, 4, 5, 8)) if not self.d.chance(1, 30) \
            else self.d.below(60)

    def tuple_(self, depth):
        n = self.d.pick((0, 1, 2, 3, 1, 2, 3, 4, 5))
        return self.remember(tuple(self.value(depth + 1) for _ in range(n)))

    def list_(self, depth):
        lst = []
        self.open.append(lst)
        if self.d.chance(1, 40):  # past APPENDS' batch of 1000 and the 1-byte memo ids
            for _ in range(1000 + self.d.below(300)):
                lst.append(self.leaf())
        else:
            for _ in range(self.size()):
                lst.append(self.value(depth + 1))
        self.open.pop()
        return self.remember(lst)

    def dict_(self, depth):
        kinds = self.d.pick(('s', 's', 'i', 't', 'si', 'm', 'so'))
        dct = {}
        self.open.append(dct)
        if self.d.chance(1, 40):  # past SETITEMS' batch of 1000
            entries = self.members(depth + 1, kinds, 1000 + self.d.below(300))
            for key, _ in entries:
                dct[key] = self.leaf()
        else:
            entries = self.members(depth + 1, kinds, self.size())
            for key, _ in entries:
                dct[key] = self.value(depth + 1)
        self.open.pop()
        self.check_distinct(dct, len(entries))
        return self.remember(dct)

    def set_(self, depth):
        d = self.d
        if d.chance(1, 12):
            lo = d.below(3000) - 1500
            members = [(i, None) for i in range(lo, lo + 1001 + d.below(500))]
        else:
            members = self.members(depth + 1, d.pick(('s', 'i', 'm')), self.size())
        made = (frozenset if d.chance(1, 3) else set)(m for m, _ in members)
        self.check_distinct(made, len(members))
        return self.remember(made)

    def ordered(self, depth):
        od = collections.OrderedDict()
        entries = self.members(depth + 1, self.d.pick(('s', 'i', 'si')), self.size())
        for key, _ in entries:
            od[key] = self.value(depth + 1)
        self.check_distinct(od, len(entries))
        return self.remember(od)

    def instance(self, depth):
        d = self.d
        which = d.below(9)  # Slotted (1): the writers pickle it at protocol 2+ only
        if which in (0, 6):
            # Python 3 also pickles a nested class (Python 2 cannot): the same draws either way.
            obj = Outer.Inner() if which == 6 and self.writer == 'py3' else Plain()
            self.open.append(obj)
            obj.name = self.value(depth + 1)
            obj.tags = self.value(depth + 1)
            self.open.pop()
        elif which == 1:
            obj = Slotted(self.value(depth + 1), self.value(depth + 1))
        elif which in (2, 7):
            obj = WithState(self.value(depth + 1))
        elif which == 3:
            obj = Reduced(self.value(depth + 1), self.value(depth + 1))
        elif which == 4:
            key = self.value(depth + 1)
            obj = NewArgs(key)
            # Python 2's NEWOBJ hands `__new__` one py2 `str`, as it would a `str` subclass its
            # value: refused for Python 3 where that becomes `bytes` (under a checker's kit,
            # `bytes` from a Python 2 writer is exactly such a `str`).
            if self.writer == 'py2' and not PY2 and type(key) is bytes:
                self.notes.add('newargs_bytes')
        elif which == 8:
            obj = KwNew(key=self.value(depth + 1))
            if self.writer == 'py3':
                self.notes.add('newobj_ex')
        else:
            obj = OldStyle(self.value(depth + 1))
        return self.remember(obj)

    # ---------------------------------------------------------------------------------------
    # Leaves.

    def leaf(self):
        d = self.d
        r = d.below(100)
        if r < 8:
            return d.pick((None, True, False))
        if r < 30:
            return self.int_()
        if r < 40:
            f = d.pick(FLOAT_POOL) if d.chance(1, 2) else self.float_bits()
            return f
        if r < 80:
            return self.remember(self.string())
        if r < 85:
            # A string key object again, as a value: one memoized string in two roles (a key
            # and a value, kept and converted under some policies).
            strings = [key for key, canon in self.keys if canon[0] in ('t', 'b')]
            return self.remember(d.pick(strings) if strings else self.string())
        if r < 90:
            return self.remember(bytearray(self.binary()))
        return self.remember(self.special())

    def int_(self):
        d = self.d
        r = d.below(6)
        if r == 0:
            n = d.pick(INT_POOL)
        elif r <= 2:
            n = d.below(600) - 300
        elif r == 3:
            n = d.bits(32) - 2 ** 31
        elif r == 4:
            n = d.bits(1 + d.below(300)) * d.pick((1, -1))
        else:
            n = d.bits(2041 + d.below(200)) * d.pick((1, -1))  # LONG4 territory
        # Python 2 writes a small `long` differently from an int (LONG / 'L' suffix).
        return long_(n) if d.chance(1, 5) else n

    def float_bits(self):
        import struct
        while True:
            f = struct.unpack('>d', self.d.raw(8))[0]
            if f == f:
                return f

    def special(self):
        d = self.d
        r = d.below(16)
        if r == 0:
            return datetime.date(1 + d.below(9999), 1 + d.below(12), 1 + d.below(28))
        if r == 1:
            return self.fold(datetime.time(d.below(24), d.below(60), d.below(60),
                                           d.below(1000000), self.tz()))
        if r in (2, 3):
            return self.fold(datetime.datetime(1 + d.below(9999), 1 + d.below(12),
                                               1 + d.below(28), d.below(24), d.below(60),
                                               d.below(60), d.below(1000000), self.tz()))
        if r == 4:
            return datetime.timedelta(days=d.below(1999999999) - 999999999,
                                      seconds=d.below(86400), microseconds=d.below(1000000))
        if r == 5:
            return self.decimal_()
        if r == 6:
            return complex(d.pick(FLOAT_POOL[:8]), self.float_bits())
        if r == 7:
            return self.array_()
        if r == 8:
            return self.py3_only()
        if r == 9:
            return FixedOffset(d.below(2879) - 1439)
        if r == 10:
            return self.stdlib()
        return self.remember(self.string())

    def stdlib(self):
        """Standard-library types a Django cache also holds (as pbfixtures' stdlib_misc)."""
        d = self.d
        r = d.below(7)
        if r == 6:
            return self.exception()
        if r <= 1:
            # Built by REDUCE then SETITEMS on the result (py3) like OrderedDict.
            entries = self.members(1, d.pick(('s', 'i', 'si')), self.size())
            if r == 0:
                made = collections.defaultdict(d.pick((int, list)))
                for key, _ in entries:
                    made[key] = d.below(100)
            else:
                made = collections.Counter(dict((key, d.below(100) - 50) for key, _ in entries))
            self.check_distinct(made, len(entries))
            return made
        if r == 2:
            return collections.deque(self.leaf() for _ in range(d.below(5)))
        if r == 3:
            return uuid.UUID(int=d.bits(128))
        if r == 4:
            return fractions.Fraction(d.bits(1 + d.below(100)) - 2 ** 20, 1 + d.bits(20))
        return slice(d.below(100), self.leaf() if d.chance(1, 2) else None, d.below(5) + 1)

    def exception(self):
        """A built-in exception: its class and arguments (REDUCE), the class renamed between
        Python 2's ``exceptions`` and Python 3's ``builtins``. ``OSError(errno, ...)`` is a
        ``FileNotFoundError``, ``PermissionError``... in Python 3, which Python 2 reads as
        ``OSError`` (``_compat_pickle``), and the Python 3 checker builds as Python 3 does."""
        d = self.d
        r = d.below(4)
        if r == 0:
            return ValueError(self.leaf())
        if r == 1:
            return KeyError(self.leaf())
        if r == 2:
            return Exception(*[self.leaf() for _ in range(d.below(3))])
        return OSError(d.pick((1, 2, 13, 17)), self.string())

    def tz(self):
        d = self.d
        r = d.below(6)
        if r <= 2:
            return None
        if r <= 4:
            if self.tzs and d.chance(1, 3):  # one tzinfo object in several datetimes
                return d.pick(self.tzs)
            self.tzs.append(FixedOffset(d.below(2879) - 1439))
            return self.tzs[-1]
        if self.writer == 'py3' and d.chance(1, 2):
            return self.py3_only(tz=True)
        return FixedOffset(0)

    def fold(self, when):
        """Python 3.6+'s fold=1 (PEP 495) now and then: its pickle sets the high bit of a state
        byte, which Python 2 rejects; the transcoder clears it, as CPython 3's own protocol-2
        pickle drops fold (note 'fold'; Python 2 builds fold 0, and fold is not in ==)."""
        if self.writer == 'py3' and self.d.chance(1, 10):
            self.notes.add('fold')
            if not PY2:
                return when.replace(fold=1)
        return when

    def decimal_(self):
        d = self.d
        r = d.below(5)
        if r == 0:
            text = d.pick(('0', '-0', 'NaN', '-Infinity', 'Infinity', '1E+30', '-1E-30',
                           '0E-7', '3.14159265358979323846264338327950288'))
        else:
            digits = str(d.bits(1 + d.below(200)))
            text = '%s%sE%d' % (d.pick(('', '-')), digits, d.below(80) - 40)
        return decimal.Decimal(text)

    def array_(self):
        d = self.d
        code = d.pick(('i', 'l', 'd', 'B', 'u', 'c'))
        if code == 'c' and self.writer == 'py3':
            code = 'b'
        n = d.below(6)
        if code in 'il':
            items = [d.below(2 ** 31) - 2 ** 30 for _ in range(n)]
        elif code == 'd':
            items = [float(d.below(10 ** 6)) / 8 for _ in range(n)]
        elif code in 'Bb':
            items = [d.below(128) for _ in range(n)]
        elif code == 'u':
            items = self.text('mixed', n)
        else:
            items = self.binary(n)
        if code == 'c':
            self.notes.add('array_c')
        if code == 'c' and not PY2:  # the checker of a py2 writer's char array (refused)
            return bytearray(items)
        typecode = str(code)
        if code == 'u':
            return array.array(typecode, items)
        return array.array(typecode, items)

    def py3_only(self, tz=False):
        """A Python 3 value whose global Python 2 lacks (mandatory refusal for py2 readers):
        a ``datetime.timezone`` (only those when ``tz``) or a ``types.SimpleNamespace``. A py2
        writer gets a FixedOffset instead; a Python 2 checker builds a stand-in. ``timezone.utc``
        is noted ``utc`` (converted to ``pytz.utc`` under ``py2_utc = pytz``, the checker's
        stand-in), the others ``py3_only``."""
        d = self.d
        which = d.below(2 if tz else 3)
        minutes = d.below(2879) - 1439
        if which == 1 and minutes == 0:
            # CPython 3's timezone(timedelta(0)) is the timezone.utc singleton, and pickles
            # as it does (found by seed 419, noted py3_only and converted under pytz).
            which = 0
        if self.writer == 'py2' or PY2:
            if self.writer == 'py3':
                self.notes.add('utc' if which == 0 else 'py3_only')
                if which == 0:
                    import pytz
                    return pytz.utc
            return FixedOffset(minutes)
        self.notes.add('utc' if which == 0 else 'py3_only')
        if which == 0:
            return datetime.timezone.utc
        if which == 1:
            return datetime.timezone(datetime.timedelta(minutes=minutes))
        return types.SimpleNamespace(a=minutes)


def _numbers(canon, found):
    """Adds the number types (`decimal`, `fraction`, `complex`) of key ``canon`` to ``found``,
    nested tuple and frozenset keys included."""
    if canon[0] in ('decimal', 'fraction', 'complex'):
        found.add(canon[0])
    elif canon[0] in ('tuple', 'fs'):
        for item in canon[1]:
            _numbers(item, found)


def build(seed, index, writer, kit, include_open=False):
    """(value, notes, fingerprint) of value ``index`` of ``seed`` for ``writer`` under ``kit``
    (with the OPEN_SHAPES when ``include_open``)."""
    gen = Gen(seed, index, writer, kit, include_open)
    value = gen.value()
    return value, gen.notes, '%d:%d' % (gen.d.count, gen.d.fingerprint)


def picklers():
    """(suffix, module, protocols) of this interpreter."""
    if PY2:
        import cPickle
        return [('', pickle, (0, 1, 2)), ('_c', cPickle, (0, 1, 2))]
    return [('', pickle, tuple(range(0, pickle.HIGHEST_PROTOCOL + 1)))]


def main():
    if os.environ.get('PYTHONHASHSEED') != '0':
        os.environ['PYTHONHASHSEED'] = '0'
        os.execv(sys.executable, [sys.executable] + sys.argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, required=True)
    parser.add_argument('--count', type=int, required=True)
    parser.add_argument('--include-open', action='store_true',
                        help='also the shapes of the open transcoder bugs (OPEN_SHAPES)')
    parser.add_argument('out_dir')
    args = parser.parse_args()
    assert 0 <= args.seed < 2 ** 31 and 0 <= args.count < 2 ** 32
    writer = 'py2' if PY2 else 'py3'
    if not os.path.isdir(args.out_dir):
        os.makedirs(args.out_dir)
    kit = pbfixtures.NativeKit()
    files, skipped, fingerprints = [], [], {}
    for index in range(args.count):
        value, _notes, fingerprint = build(args.seed, index, writer, kit, args.include_open)
        fingerprints[str(index)] = fingerprint
        for suffix, module, protocols in picklers():
            for proto in protocols:
                stem = 'r%d_%d_%s_p%d%s' % (args.seed, index, writer, proto, suffix)
                try:
                    data = module.dumps(value, proto)
                    why = pbfixtures.mismatch(module.loads(data), value)
                except Exception as exc:  # the writer itself cannot: recorded, not hidden
                    why = '%s: %s' % (type(exc).__name__, str(exc)[:200])
                if why:
                    skipped.append({'file': stem, 'error': why})
                    continue
                with open(os.path.join(args.out_dir, stem + '.pickle'), 'wb') as f:
                    f.write(data)
                files.append({'file': stem + '.pickle', 'index': index, 'protocol': proto,
                              'pickler': module.__name__})
    manifest = {'writer': writer, 'version': '%d.%d.%d' % sys.version_info[:3],
                'seed': args.seed, 'count': args.count, 'include_open': args.include_open,
                'files': files,
                'writer_limits': skipped, 'fingerprints': fingerprints}
    with open(os.path.join(args.out_dir, 'manifest_%s.json' % writer), 'w') as f:
        json.dump(manifest, f, indent=0, sort_keys=True)
        f.write('\n')
    print('%s seed %d: %d values, %d pickles, %d skipped (writer limits)'
          % (writer, args.seed, args.count, len(files), len(skipped)))


if __name__ == '__main__':
    main()
