# -*- coding: utf-8 -*-
"""Real memcache clients storing and reading golden-corpus values (scripts/pbfixtures.py), run
under CPython 2.7 (python-memcached) or CPython 3 (pymemcache, python-memcached, Django's
PyMemcacheCache). Used by tests/cross_version.rs against memcached and picklebridge.

    check_clients.py set --server H:P --client C [--protocol N] [--compress N] --prefix P CASE...
    check_clients.py get --server H:P --client C --writer py2|py3 [--py3-str S] [--py2-text T]
                         --prefix P CASE...
    check_clients.py raw --server H:P KEY...   # plain `get`, then the default pickle.loads

Key of a case: PREFIX + CASE (Django's key function is set to use the key as is). ``get``
prints ``ok KEY`` or ``FAIL KEY: why`` per case and ``N passed, N failed``; exits 1 on failure.
``raw`` prints ``loaded KEY`` or ``error KEY: <ExceptionType>: <message>`` per key.
"""
from __future__ import print_function

import argparse
import os
import pickle
import socket
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbfixtures  # noqa: E402

PY2 = sys.version_info[0] == 2


def _raw_key(key, key_prefix, version):
    return key


class Store(object):
    """One client library behind set/get."""

    def __init__(self, kind, server, protocol=None, compress=0):
        self.kind, self.compress = kind, compress
        if kind == 'memcache':
            import memcache
            proto = pickle.HIGHEST_PROTOCOL if protocol is None else protocol
            self.client = memcache.Client([server], pickleProtocol=proto, socket_timeout=3)
        elif kind == 'pymemcache':
            from pymemcache.client.base import Client
            from pymemcache import serde
            host, port = server.rsplit(':', 1)
            version = pickle.HIGHEST_PROTOCOL if protocol is None else protocol
            self.client = Client((host, int(port)), serde=serde.PickleSerde(version),
                                 connect_timeout=3, timeout=3)
        elif kind == 'django':
            import django
            from django.conf import settings
            settings.configure(CACHES={'default': {
                'BACKEND': 'django.core.cache.backends.memcached.PyMemcacheCache',
                'LOCATION': server, 'KEY_FUNCTION': _raw_key, 'TIMEOUT': None}})
            django.setup()
            from django.core.cache import cache
            self.client = cache
        else:
            raise SystemExit('unknown client %r' % kind)

    def set(self, key, value):
        if self.kind == 'memcache':
            ok = self.client.set(key, value, min_compress_len=self.compress)
        elif self.kind == 'django':
            self.client.set(key, value)
            ok = True
        else:
            ok = self.client.set(key, value, noreply=False)
        if not ok:
            raise RuntimeError('set %s failed' % key)

    def get(self, key):
        return self.client.get(key)


def cmd_set(args):
    store = Store(args.client, args.server, args.protocol, args.compress)
    kit = pbfixtures.NativeKit()
    for case in args.cases:
        store.set(args.prefix + case, pbfixtures.build(case, kit))
        print('set %s%s' % (args.prefix, case))


def cmd_get(args):
    store = Store(args.client, args.server)
    kit = pbfixtures.ReaderKit(args.writer, py3_str=args.py3_str, py2_text=args.py2_text)
    passed = failed = 0
    for case in args.cases:
        key = args.prefix + case
        try:
            got = store.get(key)
            why = pbfixtures.mismatch(got, pbfixtures.build(case, kit))
        except Exception:
            why = 'raised\n' + traceback.format_exc()
        if why is None:
            passed += 1
            print('ok %s' % key)
        else:
            failed += 1
            lines = why.rstrip('\n').split('\n')
            print('FAIL %s: %s' % (key, lines[0]))
            for line in lines[1:]:
                print('    ' + line)
    print('%d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


def raw_get(server, key):
    """(flags, data) of one key by a plain text-protocol `get`, None on a miss."""
    host, port = server.rsplit(':', 1)
    sock = socket.create_connection((host, int(port)), timeout=3)
    try:
        sock.sendall(b'get ' + key.encode('ascii') + b'\r\n')
        buf = b''
        while not buf.endswith(b'END\r\n'):
            chunk = sock.recv(65536)
            if not chunk:
                raise IOError('connection closed')
            buf += chunk
    finally:
        sock.close()
    if buf == b'END\r\n':
        return None
    header, rest = buf.split(b'\r\n', 1)
    _, _, flags, length = header.split(b' ')[:4]
    return int(flags), rest[:int(length)]


def cmd_raw(args):
    import zlib
    for key in args.keys:
        item = raw_get(args.server, key)
        if item is None:
            print('miss %s' % key)
            continue
        flags, data = item
        try:
            if flags & 8:
                data = zlib.decompress(data)
            pickle.loads(data)
            print('loaded %s' % key)
        except Exception as exc:
            print('error %s: %s: %s' % (key, type(exc).__name__, exc))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='cmd')
    for name in ('set', 'get'):
        p = sub.add_parser(name)
        p.add_argument('--server', required=True)
        p.add_argument('--client', required=True, choices=('memcache', 'pymemcache', 'django'))
        p.add_argument('--prefix', default='')
        p.add_argument('cases', nargs='+')
        if name == 'set':
            p.add_argument('--protocol', type=int, default=None)
            p.add_argument('--compress', type=int, default=0,
                           help='python-memcached min_compress_len (0: never)')
        else:
            p.add_argument('--writer', required=True, choices=('py2', 'py3'))
            p.add_argument('--py3-str', default='utf8-or-bytes')
            p.add_argument('--py2-text', default='keep')
    p = sub.add_parser('raw')
    p.add_argument('--server', required=True)
    p.add_argument('keys', nargs='+')
    args = parser.parse_args()
    {'set': cmd_set, 'get': cmd_get, 'raw': cmd_raw}[args.cmd](args)


if __name__ == '__main__':
    main()
