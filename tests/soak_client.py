"""Soak client for tests/soak.rs: runs under CPython 2.7 and 3 with python-memcached.

usage: soak_client.py HOST:PORT WRITER_ID SECONDS SEED

Writes and reads random pickled values for a small shared key space through the proxy, for
SECONDS. Every value written for key k with sequence s is value(k, s): a dict carrying its key
and a payload derived from (k, s) only, so any reader can check that what it got was written for
that key, whoever wrote it, and is intact. Reads must be a miss or such a value. Prints one JSON
line of counts; exits 1 with the offending value's repr on the first bad read.
"""
import datetime
import decimal
import json
import random
import sys
import time
import zlib

import memcache

PY2 = sys.version_info[0] == 2
if PY2:
    text_type = unicode  # noqa: F821 (py2 only)
else:
    text_type = str

KEYS = 40


class Lcg(object):
    """A generator that gives the same numbers under Python 2 and 3 (random.Random seeded with
    a string does not)."""

    def __init__(self, key, seq):
        self.x = (zlib.crc32(key.encode("ascii")) & 0xFFFFFFFF) ^ seq

    def below(self, n):
        self.x = (self.x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return (self.x >> 33) % n


def payload(key, seq):
    # Text with non-ASCII characters, binary bytes, and types whose py2/py3 pickles differ.
    rnd = Lcg(key, seq)
    alphabet = u"ab\u00e9\u7231\U0001f600 "
    n = rnd.below(200)
    text = u"".join(alphabet[rnd.below(len(alphabet))] for _ in range(n))
    raw = bytes(bytearray(rnd.below(256) for _ in range(rnd.below(64))))
    return {
        u"text": text,
        u"raw": raw,
        u"when": datetime.datetime(2024, 1, 1 + seq % 28, seq % 24, 5, 6, seq % 1000000),
        u"price": decimal.Decimal("%d.%02d" % (seq % 100000, seq % 100)),
        u"tags": frozenset([seq % 7, seq % 11]),
        u"nested": [n, [seq, (key, seq)], {u"deep": text[:5]}],
    }


def value(key, seq):
    return {u"key": key, u"seq": seq, u"payload": payload(key, seq)}


def norm(obj):
    """Maps a value read back onto one comparable form, as the route policy allows it to differ:
    py3 text reads as `unicode` in py2 (py2_text = keep), py2 UTF-8 `str` reads as text in py3
    (py3_str = utf8-or-bytes), py2 binary `str` reads as `bytes` in py3."""
    if isinstance(obj, dict):
        return dict((norm(k), norm(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return [norm(v) for v in obj]
    if isinstance(obj, frozenset):
        return frozenset(norm(v) for v in obj)
    if isinstance(obj, text_type):
        return ("t", obj)
    if isinstance(obj, bytes):
        try:
            return ("t", obj.decode("utf-8"))
        except UnicodeDecodeError:
            return ("b", obj)
    return obj


def main():
    addr, writer, seconds, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    rnd = random.Random(seed)
    # Highest protocol, as Django writes: py3 values arrive as protocol 4/5 pickles.
    mc = memcache.Client([addr], dead_retry=0, socket_timeout=3, pickleProtocol=-1)
    unreadable = []
    # python-memcached turns unpickling errors into misses; catch them as failures here.
    mc.debuglog = lambda msg: unreadable.append(msg) if "ickle" in msg else None
    counts = dict(sets=0, set_failed=0, gets=0, hits=0, misses=0)
    deadline = time.time() + seconds
    seq = writer * 1000000
    while time.time() < deadline:
        key = "soak:%d" % rnd.randrange(KEYS)
        if rnd.random() < 0.4:
            seq += 1
            ok = mc.set(key, value(key, seq))
            counts["sets" if ok else "set_failed"] += 1
            continue
        got = mc.get(key)
        counts["gets"] += 1
        if unreadable:
            sys.stdout.write(json.dumps(dict(error="unreadable", key=key, log=unreadable)) + "\n")
            sys.exit(1)
        if got is None:
            counts["misses"] += 1
            continue
        bad = None
        if not isinstance(got, dict) or norm(got.get(u"key")) != norm(key):
            bad = "another key's value or not a dict"
        elif norm(got) != norm(value(key, got[u"seq"])):
            bad = "corrupted value"
        if bad:
            sys.stdout.write(json.dumps(dict(error=bad, key=key, got=repr(got))) + "\n")
            sys.exit(1)
        counts["hits"] += 1
    sys.stdout.write(json.dumps(counts) + "\n")


main()
