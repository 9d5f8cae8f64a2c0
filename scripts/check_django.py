# -*- coding: utf-8 -*-
"""Django model instances through Django's own memcached cache backend, run under CPython 2.7
(Django 1.11, MemcachedCache over python-memcached, cPickle protocol 2) or CPython 3 (Django 4.2,
PyMemcacheCache, pickle protocol 5). Used by tests/cross_version.rs against picklebridge.

    check_django.py set --server H:P --prefix P [--tz]
    check_django.py get --server H:P --prefix P [--tz]

``set`` stores the cases below under PREFIX + CASE (through Django's default key function, so
memcached sees ``:1:PREFIX CASE``). ``get`` reads them back, written by the other runtime, and
checks every field under picklebridge's default policies; it prints ``ok KEY`` or
``FAIL KEY: why`` per case and ``N passed, N failed``, and exits 1 on failure.

The writers store text as Django itself holds it (``unicode`` / ``str``) and, in Python 2, a
body as a py2 ``str`` of UTF-8 bytes and a binary field as a py2 ``str`` of non-UTF-8 bytes, as
Python 2 code that never decoded does. The reader expects text for both text fields and bytes
for the binary one, in either direction.

With ``--tz`` Django runs with ``USE_TZ = True`` and ``published`` is an aware datetime in UTC,
with the ``tzinfo`` Django's ``timezone.now()`` gives: ``pytz.utc`` in Django 1.11,
``datetime.timezone.utc`` in Django 4.2 (which does not need pytz). The reader expects its own
runtime's UTC object (picklebridge's ``py2_utc = "pytz"``).
"""
from __future__ import print_function

import argparse
import datetime
import decimal
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PY2 = sys.version_info[0] == 2
TEXT = type(u'')
# Python 2 loads a py3 int beyond 32 bits (LONG1) as a `long`, as CPython 3's own protocol-2
# pickle of it does: the same number, so the check does not tell the two apart.
INTS = (int, type(2 ** 64))

CASES = ('article', 'page', 'articles')
# How many articles the `articles` case (a cached queryset's list) holds.
MANY = 40
# The UTC tzinfo of aware datetimes (--tz): this runtime's own, as timezone.now() gives it.
UTC = None


def setup(server, tz):
    global UTC
    import django
    from django.conf import settings
    backend = ('django.core.cache.backends.memcached.MemcachedCache' if PY2
               else 'django.core.cache.backends.memcached.PyMemcacheCache')
    settings.configure(INSTALLED_APPS=['pbdjango'], USE_TZ=tz, CACHES={'default': {
        'BACKEND': backend, 'LOCATION': server, 'TIMEOUT': None}})
    django.setup()
    if tz:
        from django.utils import timezone
        UTC = timezone.now().tzinfo
    from django.core.cache import cache
    return cache


def fields(n):
    """The field values of article number n, as the reader expects them."""
    return {
        'id': n,
        'title': u'\u7231 caf\xe9 #%d' % n,
        'body': u'\u7231\u60c5 body %d' % n,
        'price': decimal.Decimal('12.50') + n,
        'published': datetime.datetime(2024, 1, 2, 3, 4, 5, 6 + n, tzinfo=UTC),
        'day': datetime.date(2024, 1, 2) + datetime.timedelta(days=n),
        'views': 2 ** 40 + n,
        'blob': b'\x00\xff' + bytes(bytearray([n % 256])),
    }


def article(n):
    from pbdjango.models import Article
    values = fields(n)
    if PY2:
        # A py2 `str` of UTF-8 bytes, as Python 2 code that never decoded stores text.
        values['body'] = values['body'].encode('utf-8')
    return Article(**values)


def build(case):
    if case == 'article':
        return article(7)
    if case == 'page':
        first = article(1)
        # The same instance twice: one object after loading.
        return {u'article': first, u'latest': [first, article(2)], u'count': 2,
                u'heading': u'\xdcberblick'}
    if case == 'articles':
        return [article(n) for n in range(MANY)]
    raise SystemExit('unknown case %r' % case)


def check_article(got, n):
    """None when `got` is article number n as the reader expects it, else why not."""
    from django.db.models.base import ModelState
    from pbdjango.models import Article
    if type(got) is not Article:
        return 'type %r, want Article' % type(got)
    if not isinstance(got._state, ModelState):
        return '_state is %r' % (got._state,)
    for name, want in sorted(fields(n).items()):
        value = getattr(got, name)
        same_kind = type(value) is type(want) or (type(value) in INTS and type(want) in INTS)
        if value != want or not same_kind:
            return '%s = %r (%s), want %r (%s)' % (
                name, value, type(value).__name__, want, type(want).__name__)
        if isinstance(want, datetime.datetime) and value.tzinfo is not want.tzinfo:
            return '%s has tzinfo %r, want %r' % (name, value.tzinfo, want.tzinfo)
    return None


def check(case, got):
    if case == 'article':
        return check_article(got, 7)
    if case == 'page':
        if not isinstance(got, dict) or sorted(got) != [u'article', u'count', u'heading',
                                                        u'latest']:
            return 'got %r' % (got,)
        if got[u'count'] != 2 or got[u'heading'] != u'\xdcberblick':
            return 'got %r' % (got,)
        if got[u'latest'][0] is not got[u'article']:
            return 'the shared instance came back as two objects'
        return check_article(got[u'article'], 1) or check_article(got[u'latest'][1], 2)
    if case == 'articles':
        if not isinstance(got, list) or len(got) != MANY:
            return 'got %r' % (got,)
        for n, one in enumerate(got):
            why = check_article(one, n)
            if why:
                return 'item %d: %s' % (n, why)
        return None
    raise SystemExit('unknown case %r' % case)


def cmd_set(args):
    cache = setup(args.server, args.tz)
    for case in CASES:
        cache.set(args.prefix + case, build(case))
        print('set %s%s' % (args.prefix, case))


def cmd_get(args):
    import warnings
    cache = setup(args.server, args.tz)
    passed = failed = 0
    for case in CASES:
        key = args.prefix + case
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                got = cache.get(key)
            why = 'a miss' if got is None else check(case, got)
            # Django warns that the instance was pickled by another Django version: proof
            # that it went through Model.__setstate__ with the writer's state.
            if why is None and not any('Django version' in str(w.message) for w in caught):
                why = 'no version warning from Model.__setstate__: %r' % (
                    [str(w.message) for w in caught],)
        except Exception:
            why = 'raised\n' + traceback.format_exc()
        if why is None:
            passed += 1
            print('ok %s' % key)
        else:
            failed += 1
            print('FAIL %s: %s' % (key, why))
    print('%d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='cmd')
    for name in ('set', 'get'):
        p = sub.add_parser(name)
        p.add_argument('--server', required=True)
        p.add_argument('--prefix', default='')
        p.add_argument('--tz', action='store_true', help='USE_TZ = True: aware datetimes')
    args = parser.parse_args()
    {'set': cmd_set, 'get': cmd_get}[args.cmd](args)


if __name__ == '__main__':
    main()
