#!/usr/bin/env python3
"""Differential probe: the same request bytes to memcached directly and through picklebridge.

    make protocol-diff                      # every family
    python3 scripts/protocol_diff/run.py [FAMILY ...] [--out DIR]

Starts two memcached on free loopback ports (one direct, one behind the proxy) and
`picklebridge serve` (PB_BIN, default $CARGO_TARGET_DIR or target, then release/picklebridge) with a py3 listener. Before
every case both memcached are flushed; each case is sent on a fresh connection followed by a
sentinel `mg __end__ k O<n>`, and the replies (up to the sentinel's, a close or a timeout) are
compared after masking what differs between two memcached (cas values, TTLs, STAT values).
A difference is re-checked twice and printed with both replies; results go to
DIR/results_<families>.json. Values here are not pickles, so the proxy must be transparent.

Families (scripts/protocol_diff/cases.py): mg, ms, md, ma, mn_me, classic_store, classic_get,
arith, touch_delete, misc, lines, split, pipeline, halfclose, dropquirk, admin, quiet. The known
differences README "Where a client can tell it from memcached" documents show up in pipeline
(replies held before an unfinished data block), halfclose and dropquirk; anything else is a bug.
`one.py` replays single cases. Bounded: every case has a timeout (2 s by default).
"""
import json, os, re, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PB = os.environ.get(
    "PB_BIN",
    os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "picklebridge"),
)
# Where proxy.log and the results go (main: a fresh temporary directory, or --out).
OUT = tempfile.gettempdir()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            s.close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Env:
    def __init__(self):
        self.procs = []
        ports = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.pd, self.pm, self.pp = sorted(ports)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        for p in (self.pd, self.pm):
            self.procs.append(subprocess.Popen(
                ["memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(p), "-U", "0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for p in (self.pd, self.pm):
            if not wait_port(p):
                raise RuntimeError(f"memcached did not start on {p}")
        self.plog = open(os.path.join(OUT, "proxy.log"), "ab")
        self.procs.append(subprocess.Popen(
            [PB, "serve", "--listen", f"127.0.0.1:{self.pp}", "--client", "py3",
             "--upstream", f"127.0.0.1:{self.pm}"], stdout=self.plog, stderr=self.plog))
        if not wait_port(self.pp):
            raise RuntimeError(f"the proxy did not start on {self.pp} (see {OUT}/proxy.log)")
        time.sleep(0.3)

    def stop(self):
        for pr in self.procs:
            pr.terminate()
        for pr in self.procs:
            try:
                pr.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pr.kill()

    def flush_both(self, crawl=False):
        for p in (self.pd, self.pm):
            s = socket.create_connection(("127.0.0.1", p), timeout=5)
            s.sendall(b"flush_all\r\n")
            read_until(s, (b"OK\r\n",))
            if crawl:
                reclaim_flushed(s)
            s.close()


def read_until(s, endings):
    buf = b""
    while not buf.endswith(endings):
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return buf


def reclaim_flushed(s):
    """Has memcached's LRU crawler reclaim the flushed items now, and waits (at most 2 s) until it
    is done: left to its own schedule, `stats items` and `stats cachedump` list flushed items in
    one memcached and not in the other, by timing alone."""
    deadline = time.time() + 2.0
    while time.time() < deadline:
        s.sendall(b"lru_crawler crawl all\r\n")
        if read_until(s, (b"\r\n",)).startswith(b"OK"):
            break
        time.sleep(0.02)  # BUSY: a crawl is running already
    while time.time() < deadline:
        s.sendall(b"stats\r\n")
        if b"STAT lru_crawler_running 0\r\n" in read_until(s, (b"END\r\n",)):
            return
        time.sleep(0.02)


def run_one(port, data, chunks=None, delay=0.0, tag=0, timeout=2.0, sentinel=True, halfclose=False):
    # Sends too are bounded: a server that stops reading must not hang the run.
    s = socket.create_connection(("127.0.0.1", port), timeout=max(timeout, 5.0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = b"mg __end__ k O%d\r\n" % tag
    exp = b"EN k__end__ O%d\r\n" % tag
    payload = data + (sent if sentinel else b"")
    closed = False
    got = b""
    try:
        if chunks:
            i = 0
            while i < len(payload):
                s.sendall(payload[i:i + chunks])
                i += chunks
                if delay:
                    time.sleep(delay)
        else:
            s.sendall(payload)
    except OSError:
        pass
    if halfclose:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    s.settimeout(timeout)
    end = time.time() + timeout
    state = "timeout"
    while True:
        if sentinel and got.endswith(exp):
            got = got[:-len(exp)]
            state = "open"
            break
        try:
            s.settimeout(max(0.01, end - time.time()))
            d = s.recv(1 << 20)
        except socket.timeout:
            break
        except ConnectionResetError:
            state = "closed(reset)"
            break
        if not d:
            state = "closed"
            break
        got += d
        if time.time() > end:
            break
    s.close()
    return got, state


CAS_VALUE = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+$")


def normalize(reply):
    lines = reply.split(b"\r\n")
    out = []
    for ln in lines:
        m = CAS_VALUE.match(ln)
        if m:
            ln = m.group(1) + b" <cas>"
        if ln[:3] in (b"HD ", b"VA ", b"EN ", b"NF ", b"NS ", b"EX ") or ln in (b"HD", b"EN"):
            toks = ln.split(b" ")
            nt = []
            for t in toks:
                if t[:1] == b"c" and t[1:].isdigit():
                    t = b"c<cas>"
                elif t[:1] in (b"t", b"l", b"h") and t[1:].isdigit() and len(t) > 1 and t != b"t0":
                    t = t[:1] + b"<n>"
                nt.append(t)
            ln = b" ".join(nt)
        if ln.startswith(b"STAT "):
            ln = b"STAT <x>"
        if ln.startswith(b"ME "):
            ln = re.sub(rb"(exp|la|cas|fetch|cls|size)=\S+", rb"\1=<x>", ln)
        out.append(ln)
    # collapse runs of STAT lines
    res = []
    for ln in out:
        if ln == b"STAT <x>" and res and res[-1] == b"STAT <x>":
            continue
        res.append(ln)
    return b"\r\n".join(res)


def show(b, n=600):
    r = repr(b)
    return r if len(r) <= n else r[:n] + f"...(+{len(b)} bytes total)"


# Cases whose replies list items: the flushed ones are reclaimed first in both memcached.
LISTS_ITEMS = re.compile(rb"stats (items|cachedump|slabs)")


def compare(env, data, tag, chunks=None, delay=0.0, timeout=2.0, sentinel=True, halfclose=False):
    env.flush_both(crawl=bool(LISTS_ITEMS.search(data)))
    a = run_one(env.pd, data, chunks, delay, tag, timeout, sentinel, halfclose)
    b = run_one(env.pp, data, chunks, delay, tag, timeout, sentinel, halfclose)
    return a, b, (normalize(a[0]) == normalize(b[0]) and a[1] == b[1])


def main():
    global OUT
    import cases as C
    args = sys.argv[1:]
    if "--out" in args:
        i = args.index("--out")
        OUT = args[i + 1]
        del args[i:i + 2]
    else:
        OUT = tempfile.mkdtemp(prefix="protocol_diff.")
    os.makedirs(OUT, exist_ok=True)
    fams = args or list(C.FAMILIES)
    # SIGTERM unwinds like Ctrl-C, so that the servers below are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = Env()
    counts = {}
    diffs = []
    tag = 0
    try:
        for fam in fams:
            for case in C.FAMILIES[fam]():
                if isinstance(case, tuple):
                    data, opts = case
                else:
                    data, opts = case, {}
                tag += 1
                counts[fam] = counts.get(fam, 0) + 1
                a, b, ok = compare(env, data, tag, **opts)
                if not ok:
                    # recheck twice
                    stable = 0
                    for _ in range(2):
                        tag += 1
                        a2, b2, ok2 = compare(env, data, tag, **opts)
                        if not ok2:
                            stable += 1
                    diffs.append(dict(fam=fam, sent=show(data), opts=opts, mc=show(a[0]), mc_state=a[1],
                                      px=show(b[0]), px_state=b[1], rechecks_failed=stable))
                    print(f"DIFF [{fam}] rechecks_failed={stable}/2 opts={opts}\n  sent: {show(data, 300)}\n"
                          f"  mc:   {show(a[0])} [{a[1]}]\n  px:   {show(b[0])} [{b[1]}]", flush=True)
    finally:
        env.stop()
    print("COUNTS", json.dumps(counts))
    print("TOTAL", sum(counts.values()), "DIFFS", len(diffs))
    results = os.path.join(OUT, "results_%s.json" % "_".join(fams)[:60])
    with open(results, "w") as f:
        json.dump(dict(counts=counts, diffs=diffs), f, indent=1)
    print("results:", results)


if __name__ == "__main__":
    main()
