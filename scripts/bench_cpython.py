# -*- coding: utf-8 -*-
"""Times what CPython itself would do to convert a value: ``loads`` + ``dumps(obj, 2)``, on the
same golden fixtures and shapes as benches/transcode.rs, to compare with picklebridge.

    .cache/bin/python3 scripts/bench_cpython.py   # py3-written shapes: pickle.loads + dumps(, 2)
    .cache/bin/python2 scripts/bench_cpython.py   # py2-written shapes: cPickle.loads + dumps(, 2)

Prints one line per shape: fixture size, microseconds per value and MB/s (best of 5 repeats,
each repeat at least ~0.1 s). `--quick` runs every shape once (used by tests to keep it honest).
Under Python 3 it then times the three 70 000-byte `bytes` values of the bench group
`transcode_bytes_for_py2` (built here as the bench builds them, written at protocol 5).
"""
from __future__ import print_function

import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbfixtures  # noqa: E402,F401  (user classes must be importable for loads)

PY2 = sys.version_info[0] == 2
if PY2:
    import cPickle as pickle
else:
    import pickle

# (shape, fixture stem) as in benches/transcode.rs, grouped by the runtime that wrote them.
SHAPES = {
    'py3': [
        ('small_text_dict', 'text_dict_py3_p4'),
        ('datetime', 'datetime_naive_py3_p4'),
        ('set_1500', 'set_large_py3_p4'),
        ('bytes_70k', 'bytes_70000_py3_p5'),
        ('classes', 'class_all_py3_p4'),
        ('dict_1500', 'dict_large_py3_p4'),
        ('unchanged_dict_1500', 'dict_large_py3_p2'),
        ('unchanged_text_12k', 'unicode_long_py3_p2'),
    ],
    'py2': [
        ('py2_str_utf8', 'str_utf8_py2_p2_c'),
        ('py2_datetimes', 'datetime_many_py2_p2_c'),
        ('py2_mixed_keys', 'str_dict_mixed_keys_py2_p2_c'),
        ('py2_binary_70k', 'str_binary_70000_py2_p2_c'),
        ('py2_classes', 'class_all_py2_p2_c'),
        ('unchanged_py2_dict_1500', 'dict_large_py2_p2_c'),
        ('unchanged_py2_unicode_12k', 'unicode_long_py2_p2_c'),
        ('py2_p0_containers', 'str_in_containers_py2_p0_c'),
        ('unchanged_py2_p0_dict_1500', 'dict_large_py2_p0_c'),
    ],
}


def bytes_contents(length=70000):
    """The bench group transcode_bytes_for_py2's values: (name, bytes) as benches/transcode.rs
    builds them (the same 64-bit LCG and seed for the bytes with no pattern)."""
    state, mask, random = 0x2545F4914F6CDD1D, (1 << 64) - 1, bytearray()
    for _ in range(length):
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        random.append(state >> 56)
    cjk = (u'\u7231\u60c5'.encode('utf-8') * (length // 6 + 1))[:length]
    ascii = (b'hello world ' * (length // 12 + 1))[:length]
    return [('random', bytes(random)), ('utf8_text', cjk), ('ascii', ascii)]


def main():
    quick = '--quick' in sys.argv[1:]
    here = os.path.dirname(os.path.abspath(__file__))
    fixtures = os.path.join(here, '..', 'tests', 'fixtures', 'pickles')
    runtime = 'py2' if PY2 else 'py3'
    print('# CPython %d.%d.%d %s: loads + dumps(obj, 2) per value' % (
        sys.version_info[:3] + ('cPickle' if PY2 else 'pickle',)))
    print('%-28s %8s %12s %10s' % ('shape', 'bytes', 'us/value', 'MB/s'))
    values = []
    for shape, stem in SHAPES[runtime]:
        with open(os.path.join(fixtures, stem + '.pickle'), 'rb') as f:
            values.append((shape, f.read()))
    if not PY2:
        values += [('bytes_' + name, pickle.dumps(content, 5))
                   for name, content in bytes_contents()]
    for shape, data in values:

        def convert(data=data):
            return pickle.dumps(pickle.loads(data), 2)

        convert()
        if quick:
            number, best = 1, timeit.timeit(convert, number=1)
        else:
            number = 1
            while timeit.timeit(convert, number=number) < 0.1:
                number *= 2
            best = min(timeit.repeat(convert, number=number, repeat=5)) / number
        us = best * 1e6
        print('%-28s %8d %12.2f %10.1f' % (shape, len(data), us, len(data) / best / 1e6))


if __name__ == '__main__':
    main()
