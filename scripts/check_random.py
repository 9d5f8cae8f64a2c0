# -*- coding: utf-8 -*-
"""Checks `picklebridge transcode` outputs of the random corpus (scripts/gen_random.py) in the
REAL interpreter that runs it.

    check_random.py --writer py2|py3 --manifest GEN/manifest_<writer>.json [--log LOG]...
                    [--py3-str P] [--py2-text T] [--py2-utc none|pytz] DIR

For every pickle the manifest lists, the checker rebuilds value (seed, index) with
``ReaderKit(writer, policy)`` (verifying the generator's draw fingerprint, so both runtimes built
the same structure), then:

- when a ``--log`` (the stdout of ``picklebridge transcode --out-dir``) says the file was
  refused: the reason must be one this value must be refused for in this runtime, as README
  "Refusals" documents it (``collision`` when two keys distinct for the writer are equal here,
  ``py3_only_global`` for a global Python 2 lacks, ``unsupported`` for a py2 char array);
- otherwise ``DIR/<file>`` is loaded with the DEFAULT ``pickle.loads`` (and ``cPickle.loads``
  under Python 2) and compared with ``pbfixtures.mismatch``; a value that had to be refused and
  was not is a failure too.

When this runtime is the writer's (``--writer`` names it), the check is the round trip: the
output must load back to the original (used for the py2-targeted output loaded in Python 3);
refused files are skipped there, since the cross check judges them.

Prints ``ok``/``refused <reason>``/``FAIL <file> (seed S index I): <why>`` per file and a final
``N passed, N refused as documented, N failed`` line; exits 1 when anything failed.
"""
from __future__ import print_function

import argparse
import json
import os
import sys
import traceback
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_random  # noqa: E402
import pbfixtures  # noqa: E402

warnings.simplefilter('ignore', UnicodeWarning)

PY2 = sys.version_info[0] == 2
READER = 'py2' if PY2 else 'py3'
# `--py2-utc`: with pytz, Python 3's timezone.utc reaches Python 2 as pytz.utc (not refused).
PY2_UTC = 'none'


def must_refuse(notes, writer, proto):
    """The reasons a value with ``notes`` must be refused for a reader of this runtime."""
    reasons = set()
    if writer == READER:
        return reasons
    if 'collision' in notes:
        reasons.add('collision')
    utc_refused = 'utc' in notes and PY2_UTC != 'pytz'
    # (An array at protocols 3+, `array._array_reconstructor(...)`, is converted: every
    # typecode the generator draws is one Python 2 has.)
    if READER == 'py2' and ('py3_only' in notes or utc_refused):
        reasons.add('py3_only_global')
    if READER == 'py2' and 'newobj_ex' in notes and proto >= 4:
        # NEWOBJ_EX. (At protocols 2-3 CPython 3.11 writes functools.partial(getattr(cls,
        # '__new__'), cls, **kw), which Python 2 loads.)
        reasons.add('newobj_ex')
    if READER == 'py3' and 'array_c' in notes:
        reasons.add('unsupported')
    if READER == 'py3' and 'newargs_bytes' in notes and proto >= 2:
        reasons.add('unsupported')
    return reasons


def read_logs(paths):
    """{file name: (status, reason)} from `picklebridge transcode --out-dir` stdout."""
    out = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.rstrip('\n').split('\t')
                if len(parts) >= 2:
                    out[os.path.basename(parts[0])] = (parts[1], parts[2] if len(parts) > 2
                                                       else '')
    return out


class Expected(object):
    """Builds (and caches) the reader's expected value of each index."""

    def __init__(self, manifest, kit):
        self.manifest = manifest
        self.kit = kit
        self.cache = {}

    def get(self, index):
        if index not in self.cache:
            m = self.manifest
            value, notes, fingerprint = gen_random.build(m['seed'], index, m['writer'], self.kit,
                                                         m.get('include_open', False))
            if fingerprint != m['fingerprints'][str(index)]:
                raise AssertionError('generator diverged between runtimes: draws %s here, %s in '
                                     'the writer' % (fingerprint, m['fingerprints'][str(index)]))
            self.cache = {index: (value, notes)}  # one index at a time (files come grouped)
        return self.cache[index]


def check_file(path, value):
    """None when every loader gives ``value``, else the failure text."""
    with open(path, 'rb') as f:
        return pbfixtures.check_loads(f.read(), value)


def judge(entry, expected, logs, out_dir):
    """('ok' | 'refused' | 'skipped', detail) or ('FAIL', why) for one manifest entry."""
    name, proto, writer = entry['file'], entry['protocol'], expected.manifest['writer']
    try:
        value, notes = expected.get(entry['index'])
    except Exception:
        return 'FAIL', 'building the expected value raised\n%s' % traceback.format_exc()
    required = must_refuse(notes, writer, proto)
    status, reason = logs.get(name, ('', ''))
    if status == 'refused':
        if writer == READER:
            return 'skipped', reason
        if reason in required:
            return 'refused', reason
        return 'FAIL', 'refused %s; documented refusals for this value: %s' % (
            reason, ', '.join(sorted(required)) or 'none')
    if status == 'error':
        return 'FAIL', 'transcode error: %s' % reason
    if required:
        return 'FAIL', 'not refused; must be refused: %s' % ', '.join(sorted(required))
    path = os.path.join(out_dir, name)
    if not os.path.exists(path):
        return 'FAIL', 'no output file and no refusal in the log'
    why = check_file(path, value)
    return ('FAIL', why) if why else ('ok', '')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--writer', choices=('py2', 'py3'), required=True)
    parser.add_argument('--manifest', required=True)
    parser.add_argument('--log', action='append', default=[])
    parser.add_argument('--py3-str', default='utf8-or-bytes',
                        choices=('utf8-or-bytes', 'bytes', 'latin1'))
    parser.add_argument('--py2-text', default='keep', choices=('keep', 'utf8'))
    parser.add_argument('--py2-utc', default='none', choices=('none', 'pytz'))
    parser.add_argument('dir')
    args = parser.parse_args()
    global PY2_UTC
    PY2_UTC = args.py2_utc
    with open(args.manifest) as f:
        manifest = json.load(f)
    assert manifest['writer'] == args.writer, 'manifest of another writer'
    kit = pbfixtures.ReaderKit(args.writer, py3_str=args.py3_str, py2_text=args.py2_text)
    expected = Expected(manifest, kit)
    logs = read_logs(args.log)
    counts = {'ok': 0, 'refused': 0, 'skipped': 0, 'FAIL': 0}
    for entry in sorted(manifest['files'], key=lambda e: (e['index'], e['file'])):
        verdict, detail = judge(entry, expected, logs, args.dir)
        counts[verdict] += 1
        if verdict == 'FAIL':
            lines = detail.rstrip('\n').split('\n')
            print('FAIL %s (seed %d index %d): %s' % (entry['file'], manifest['seed'],
                                                     entry['index'], lines[0]))
            for line in lines[1:]:
                print('    ' + line)
        else:
            print('%s %s%s' % (verdict, entry['file'], ' ' + detail if detail else ''))
    print('%d passed, %d refused as documented, %d skipped, %d failed'
          % (counts['ok'], counts['refused'], counts['skipped'], counts['FAIL']))
    sys.exit(1 if counts['FAIL'] else 0)


if __name__ == '__main__':
    main()
