# -*- coding: utf-8 -*-
"""Loads transcoded pickles in the REAL target interpreter and compares them to the expected
objects of the golden corpus (scripts/pbfixtures.py) under the text policy.

    check_fixtures.py --writer py2|py3 [--py3-str P] [--py2-text T] DIR

Every ``DIR/<case>@<label>.pickle`` is loaded with the DEFAULT ``pickle.loads`` (and, under
Python 2, ``cPickle.loads`` too) and compared to ``pbfixtures.build(case, ReaderKit(...))``:
the object a reader of this runtime must get from a value written by ``--writer``. A reader of
the writer's own runtime checks the round trip (equal to the original). One process per batch.

Prints ``ok <file>`` or ``FAIL <file>: <why>`` (plus the traceback, indented) per file and a
final ``N passed, N failed`` line; exits 1 when anything failed.
"""
from __future__ import print_function

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbfixtures  # noqa: E402



def check_file(path, case, kit):
    """None when every loader gives the expected object, else the failure text."""
    with open(path, 'rb') as f:
        data = f.read()
    return pbfixtures.check_loads(data, pbfixtures.build(case, kit))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--writer', choices=('py2', 'py3'), required=True)
    parser.add_argument('--py3-str', default='utf8-or-bytes',
                        choices=('utf8-or-bytes', 'bytes', 'latin1'))
    parser.add_argument('--py2-text', default='keep', choices=('keep', 'utf8'))
    parser.add_argument('dir')
    args = parser.parse_args()
    kit = pbfixtures.ReaderKit(args.writer, py3_str=args.py3_str, py2_text=args.py2_text)
    passed = failed = 0
    for name in sorted(os.listdir(args.dir)):
        if not name.endswith('.pickle') or '@' not in name:
            continue
        case = name.split('@', 1)[0]
        if case not in pbfixtures.CASE_INDEX:
            why = 'unknown case %r' % case
        else:
            why = check_file(os.path.join(args.dir, name), case, kit)
        if why is None:
            passed += 1
            print('ok %s' % name)
        else:
            failed += 1
            lines = why.rstrip('\n').split('\n')
            print('FAIL %s: %s' % (name, lines[0]))
            for line in lines[1:]:
                print('    ' + line)
    print('%d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
