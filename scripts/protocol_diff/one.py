#!/usr/bin/env python3
"""Replays cases (Python bytes expressions) on memcached and the proxy (scripts/protocol_diff/run.py
starts both) and prints both replies in full.
usage: python3 scripts/protocol_diff/one.py "b'get k\\r\\n'" ...   (opts via env: CHUNKS, DELAY, TIMEOUT, NOSENT)"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Env, compare, normalize
import cases
env = Env()
try:
    opts = {}
    if os.environ.get("CHUNKS"): opts["chunks"] = int(os.environ["CHUNKS"])
    if os.environ.get("DELAY"): opts["delay"] = float(os.environ["DELAY"])
    if os.environ.get("TIMEOUT"): opts["timeout"] = float(os.environ["TIMEOUT"])
    if os.environ.get("NOSENT"): opts["sentinel"] = False
    if os.environ.get("HALF"): opts["halfclose"] = True; opts["sentinel"] = False
    for i, expr in enumerate(sys.argv[1:]):
        data = eval(expr, {"SEED": cases.SEED, **vars(cases)})
        for rep in range(int(os.environ.get("REP", "1"))):
            a, b, ok = compare(env, data, 1000 + i * 10 + rep, **opts)
            print("SENT", repr(data)[:400])
            print(" same" if ok else " DIFF")
            print(" mc:", repr(a[0])[:3000], a[1])
            print(" px:", repr(b[0])[:3000], b[1])
finally:
    env.stop()
