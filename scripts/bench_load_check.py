"""Fetches one `pickle`-load value through a proxy and unpickles it (run under CPython 2.7).

Used by scripts/bench-load.sh to prove that the transcode rows of the load benchmark measure
a real rewrite: the value was stored as a protocol-4 pickle, which Python 2 cannot load.
Usage: python2 scripts/bench_load_check.py HOST:PORT  (prints what it loaded; exit 1 on failure)
"""
import pickle
import socket
import sys

KEY = b"bench:pickle:00000007"


def fetch(addr):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"get " + KEY + b"\r\n")
    data = b""
    for _ in range(1000):  # bounded: a 1 KB value arrives in a few reads
        if data.endswith(b"END\r\n"):
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    header, _, rest = data.partition(b"\r\n")
    fields = header.split()
    if len(fields) < 4 or fields[0] != b"VALUE":
        raise SystemExit("no value for %r: %r" % (KEY, data[:80]))
    return int(fields[2]), rest[: int(fields[3])]


def main():
    flags, value = fetch(sys.argv[1])
    obj = pickle.loads(value)
    if obj["id"] != 7 or not obj["name"].endswith("00000007"):
        raise SystemExit("unexpected object: %r" % (obj,))
    print("protocol %d, flags %d, %d bytes, name %r, bio type %s" % (
        ord(value[1:2]) if value[:1] == b"\x80" else 0, flags, len(value), obj["name"],
        type(obj["bio"]).__name__))


if __name__ == "__main__":
    main()
