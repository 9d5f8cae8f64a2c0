# -*- coding: utf-8 -*-
"""Writes the golden pickles of picklebridge with the REAL interpreter that runs it.

    .cache/bin/python2 scripts/gen_fixtures.py tests/fixtures/pickles   # pickle + cPickle, p0-2
    .cache/bin/python3 scripts/gen_fixtures.py tests/fixtures/pickles   # pickle, p0-5

(`make fixtures` runs both.) Files are named <case>_py{2,3}_p{N}[_c].pickle (`_c`: cPickle).
The corpus is scripts/pbfixtures.py. The Python 3 run also writes cases.json (every case, its
writers, whether it is plain data). Each run writes manifest_py{2,3}.json: the files it wrote and
the (case, protocol) pairs the writer itself cannot pickle, with the writer's error, so nothing
goes missing silently. Hash randomization is pinned (PYTHONHASHSEED=0) so reruns are identical.
"""
from __future__ import print_function

import json
import os
import pickle
import sys

if os.environ.get('PYTHONHASHSEED') != '0':
    os.environ['PYTHONHASHSEED'] = '0'
    os.execv(sys.executable, [sys.executable] + sys.argv)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbfixtures  # noqa: E402

PY2 = sys.version_info[0] == 2


def writers():
    """(suffix, module, protocols) for this interpreter."""
    if PY2:
        import cPickle
        return [('', pickle, (0, 1, 2)), ('_c', cPickle, (0, 1, 2))]
    return [('', pickle, tuple(range(0, pickle.HIGHEST_PROTOCOL + 1)))]


def main(out_dir):
    runtime = 'py2' if PY2 else 'py3'
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    for old in os.listdir(out_dir):
        if old.endswith('.pickle') and ('_%s_p' % runtime) in old:
            os.remove(os.path.join(out_dir, old))
    kit = pbfixtures.NativeKit()
    written, unpicklable = [], []
    for name, case_writers, _plain, build in pbfixtures.CASES:
        if runtime not in case_writers:
            continue
        for suffix, module, protocols in writers():
            for proto in protocols:
                stem = '%s_%s_p%d%s' % (name, runtime, proto, suffix)
                try:
                    data = module.dumps(build(kit), proto)
                except Exception as exc:  # the writer itself refuses: recorded, not hidden
                    unpicklable.append({'file': stem, 'error': '%s: %s' % (type(exc).__name__,
                                                                           exc)})
                    continue
                with open(os.path.join(out_dir, stem + '.pickle'), 'wb') as f:
                    f.write(data)
                written.append(stem)
    manifest = {'writer': runtime, 'version': '%d.%d.%d' % sys.version_info[:3],
                'written': sorted(written), 'unpicklable': unpicklable}
    with open(os.path.join(out_dir, 'manifest_%s.json' % runtime), 'w') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write('\n')
    if not PY2:
        cases = [{'name': n, 'writers': list(w), 'plain': p} for n, w, p, _ in pbfixtures.CASES]
        with open(os.path.join(out_dir, 'cases.json'), 'w') as f:
            json.dump({'py2_classic': list(pbfixtures.PY2_CLASSIC), 'cases': cases}, f,
                      indent=1, sort_keys=True)
            f.write('\n')
    print('%s: wrote %d pickles, %d unpicklable by the writer' % (runtime, len(written),
                                                                  len(unpicklable)))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: gen_fixtures.py OUT_DIR')
    main(sys.argv[1])
