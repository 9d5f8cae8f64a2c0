# -*- coding: utf-8 -*-
"""`make demo`, the Python 2 side: python-memcached under CPython 2.7.

    demo_py2.py write HOST:PORT KEY     # mc.set(KEY, a dict of py2 str with UTF-8 and binary)
    demo_py2.py read  HOST:PORT KEY     # raw bytes + cPickle.loads (what python-memcached does,
                                        # though it hides the error as a miss), then mc.get(KEY)

Exit 0: done; 1 (read): the value does not unpickle, with the error Python 2 gives a protocol
3+ pickle; 2: anything else (a missing value, a failed set, another error).
"""
import cPickle
import datetime
import socket
import sys

import memcache


def raw_get(server, key):
    host, port = server.rsplit(':', 1)
    sock = socket.create_connection((host, int(port)), timeout=3)
    sock.sendall('get %s\r\n' % key)
    buf = ''
    while not buf.endswith('END\r\n'):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    sock.close()
    if not buf.startswith('VALUE '):
        return None
    header, rest = buf.split('\r\n', 1)
    return rest[:int(header.split()[3])]


def main():
    cmd, server, key = sys.argv[1:4]
    mc = memcache.Client([server], socket_timeout=3)
    if cmd == 'write':
        value = {'name': 'Zo\xc3\xab', 'city': 'K\xc3\xb8benhavn',
                 'last_login': datetime.datetime(2024, 2, 29, 13, 14, 15),
                 'token': '\x00\xff\xfe\x80'}
        if not mc.set(key, value):
            print('  py2  mc.set(%s) failed' % key)
            return 2
        print('  py2  wrote %s = %r  (python-memcached, cPickle protocol 0)' % (key, value))
        return 0
    data = raw_get(server, key)
    if data is None:
        print('  py2  %s: no such value' % key)
        return 2
    try:
        cPickle.loads(data)
    except ValueError as exc:
        print('  py2  cPickle.loads(%s) -> %s: %s' % (key, type(exc).__name__, exc))
        return 1 if 'unsupported pickle protocol' in str(exc) else 2
    value = mc.get(key)
    print('  py2  mc.get(%s) = %r' % (key, value))
    return 0 if value is not None else 2


if __name__ == '__main__':
    sys.exit(main())
