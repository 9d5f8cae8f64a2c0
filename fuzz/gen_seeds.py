"""Writes the seed corpus of the `transcode` fuzz target (fuzz/corpus/transcode/).

Run under CPython 2.7 and 3 (both write into the same directory):
    .cache/bin/python2 fuzz/gen_seeds.py && .cache/bin/python3 fuzz/gen_seeds.py
Each file is one selector byte (the policy, see fuzz/invariants/transcode.rs) followed by a real
pickle: a small set of values typical of a Django cache, at every protocol the interpreter has.
"""
import datetime
import decimal
import os
import pickle
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "transcode")
PY = sys.version_info[0]


class Model(object):
    def __init__(self):
        self.id = 7
        self.name = u"caf\xe9"
        self.tags = set([1, 2])


def values():
    shared = [1, 2]
    recursive = []
    recursive.append(recursive)
    return {
        "scalars": [None, True, 1, -1, 2 ** 40, 2 ** 70, 1.5, u"text", b"bytes"],
        "utf8_str": b"\xe7\x88\xb1" if PY == 2 else u"\u7231",
        "binary_str": b"\x00\xff\x80",
        "dict": {u"a": u"\u7231", "b": [1, (2, 3)], "c": {"d": None}},
        "datetime": [datetime.datetime(2024, 1, 2, 3, 4, 5, 6), datetime.date(2024, 1, 2)],
        "decimal": decimal.Decimal("3.14"),
        "sets": [set([1, 2]), frozenset([u"x"])],
        "shared": [shared, shared],
        "recursive": recursive,
        "instance": Model(),
    }


def main():
    if not os.path.isdir(OUT):
        os.makedirs(OUT)
    selector = 0
    for name, value in sorted(values().items()):
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(value, proto)
            selector = (selector + 1) % 12
            path = os.path.join(OUT, "py%d_%s_p%d" % (PY, name, proto))
            with open(path, "wb") as f:
                f.write(bytearray([selector]) + data)


main()
