# -*- coding: utf-8 -*-
"""`make demo`, the Python 3 side: Django's PyMemcacheCache (pickle protocol 5).

    demo_py3.py write HOST:PORT KEY     # cache.set(KEY, a profile dict)
    demo_py3.py read  HOST:PORT KEY     # raw bytes + pickle.loads (what the client does), then
                                        # cache.get(KEY) with the real client

Exit 0: done; 1 (read): the value does not unpickle, with the error Python 3 gives a py2 str
of UTF-8; 2: anything else (a missing value, a failed set, another error).
"""
import datetime
import decimal
import pickle
import sys

import django
from django.conf import settings


def cache_for(server):
    settings.configure(CACHES={'default': {
        'BACKEND': 'django.core.cache.backends.memcached.PyMemcacheCache',
        'LOCATION': server, 'KEY_FUNCTION': lambda key, prefix, version: key}})
    django.setup()
    from django.core.cache import cache
    return cache


def raw_get(server, key):
    from pymemcache.client.base import Client
    host, port = server.rsplit(':', 1)
    return Client((host, int(port)), connect_timeout=3, timeout=3).get(key)


def main():
    cmd, server, key = sys.argv[1:4]
    if cmd == 'write':
        value = {'name': 'Zoë', 'joined': datetime.datetime(2024, 2, 29, 13, 14, 15),
                 'balance': decimal.Decimal('12.50'), 'tags': {'admin', 'beta'},
                 'avatar': b'\x89PNG\r\n'}
        cache_for(server).set(key, value)
        if raw_get(server, key) is None:
            print('  py3  cache.set(%s) stored nothing' % key)
            return 2
        print('  py3  wrote %s = %r  (Django PyMemcacheCache, pickle protocol %d)'
              % (key, value, pickle.HIGHEST_PROTOCOL))
        return 0
    data = raw_get(server, key)
    if data is None:
        print('  py3  %s: no such value' % key)
        return 2
    try:
        pickle.loads(data)
    except UnicodeDecodeError as exc:
        print('  py3  pickle.loads(%s) -> %s: %s' % (key, type(exc).__name__, exc))
        return 1
    value = cache_for(server).get(key)
    print('  py3  cache.get(%s) = %r' % (key, value))
    return 0 if value is not None else 2


if __name__ == '__main__':
    sys.exit(main())
