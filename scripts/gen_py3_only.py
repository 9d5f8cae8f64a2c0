#!/usr/bin/env python3
"""Writes src/pickle/compat/py3_only.rs: the globals Python 3 may pickle that Python 2 cannot load,
and src/pickle/compat/py2_only.rs: the globals Python 2 may pickle that Python 3 cannot load.

py3_only.rs also lists the names `fix_imports` renames that Python 2 has as spelled (PY2_TOO_*:
`subprocess`, which becomes `commands`): at protocols 0-2 those may be Python 2's own.

    .cache/bin/python3 scripts/gen_py3_only.py            # regenerate the tables
    .cache/bin/python3 scripts/gen_py3_only.py --verify   # check the committed tables (make test)

Derived from the real interpreters, never by hand:
1. scripts/py3only_probe3.py (CPython 3, isolated: no site-packages) lists the standard library's
   modules (sys.stdlib_module_names and their importable submodules) and, for every class or
   callable in their namespaces (public names and a few private ones pickles use), the pair
   pickle writes: (obj.__module__, obj.__qualname__), kept when looking it up gives obj back.
2. Each module and pair is renamed as CPython 3's `fix_imports` writes it for protocol 2
   (`_compat_pickle`: REVERSE_NAME_MAPPING on the pair, else REVERSE_IMPORT_MAPPING on the exact
   module), as picklebridge's `compat::py3_to_py2` does.
3. scripts/py3only_probe2.py (CPython 2.7, no PYTHONPATH: only the standard library) tries
   `__import__(module); getattr(module, name)`, which is what its unpickler's find_class does,
   for the renamed pair and for the pair as spelled. Only what fails both ways is listed: a
   name Python 2 has as spelled (`subprocess.Popen`, which `fix_imports` renames to
   `commands.Popen`) may be Python 2's own, in a value Python 2 wrote and reads back.
4. SPELLED_NAMES: the renamed pairs of step 2 that no renaming changes again
   (`__builtin__.RecursionError`, written for `builtins.RecursionError`) and that Python 2 cannot
   load as spelled. CPython 3 writes them at protocols 0-2; Python 2 reads exactly that name.
A module of CPython 2.7's standard library that Debian ships apart (Tk, gdbm) or that is
platform-only does not count as missing: PY27_ELSEWHERE.

py2_only.rs, the other direction:
1. scripts/py2only_probe2.py (CPython 2.7, only its standard library) lists its modules (lib
   directory, lib-dynload, built-ins, submodules) and, for every class or callable in their
   namespaces, the pairs a pickle may name it by: (obj.__module__, obj.__name__), what cPickle
   writes, and the namespace's own, each kept when looking it up gives obj back. NAME_MAPPING's
   keys are added.
2. scripts/py2only_probe3.py (CPython 3, -I -S: only its standard library, with the builtins
   `site` adds) tries `__import__(module); getattr(module, name)` for each pair as the
   unpickler's `fix_imports` maps it (`_compat_pickle.NAME_MAPPING` on the pair, else
   IMPORT_MAPPING on the module: protocols 0-2) and as spelled (protocol 3+). Only what fails
   both ways is listed. A failure to import a module of CPython 3's own standard library that
   this build lacks (sys.stdlib_module_names: Debian's python3 without python3-tk has no
   `tkinter`, `_gdbm`; `winreg` is Windows') does not count.
3. MODULES stand for every name in them except NAME_MAPPING's (`exceptions.ValueError` is
   `builtins.ValueError`): those are MAPPED, judged by NAMES alone.

`--verify` re-checks the committed tables against this machine's interpreters: for py3_only.rs
every module listed must fail to import in Python 2 and every pair must fail to load (renamed
and as spelled; a spelled name as spelled); for py2_only.rs every module and pair must fail in
Python 3 (mapped and as spelled). So no table entry can refuse a value its reader could load.
It also generates both tables again and compares them with the committed files, so that none
lacks an entry (a value naming it would pass unchanged and fail in the reader).
"""
import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile

import _compat_pickle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, 'src', 'pickle', 'compat', 'py3_only.rs')
TABLE2 = os.path.join(ROOT, 'src', 'pickle', 'compat', 'py2_only.rs')
COMPAT = os.path.join(ROOT, 'src', 'pickle', 'compat.rs')
PY27_HOME = os.path.join(ROOT, '.cache', 'py27', 'usr')
RIM = _compat_pickle.REVERSE_IMPORT_MAPPING
RNM = _compat_pickle.REVERSE_NAME_MAPPING
IM = _compat_pickle.IMPORT_MAPPING
NM = _compat_pickle.NAME_MAPPING

# CPython 2.7 standard-library modules this unpack of Debian's python2.7 does not import:
# Debian's separate packages (python-tk, python-gdbm) and other platforms' modules.
PY27_ELSEWHERE = (
    'Tkinter', 'ttk', 'Tix', 'ScrolledText', 'tkColorChooser', 'tkCommonDialog',
    'tkFileDialog', 'tkFont', 'tkMessageBox', 'tkSimpleDialog', 'Tkdnd', 'turtle', '_tkinter',
    'gdbm', 'bsddb', 'dbhash', 'ctypes.wintypes', '_winreg', 'msvcrt', 'winsound', 'msilib',
)


# Pairs a hand-made pickle may name although CPython 3 never writes them (no pickle of the object
# gives this name): checked like the probed ones.
EXTRA_PAIRS = (
    ('types', 'MappingProxyType'),
)


def py3_to_py2(module, name):
    if (module, name) in RNM:
        return RNM[(module, name)]
    return RIM.get(module, module), name


def elsewhere(module2):
    return any(module2 == m or module2.startswith(m + '.') for m in PY27_ELSEWHERE)


def module_missing(imports, m):
    """Python 2 imports module `m` neither renamed nor as spelled (and it is not one of its
    standard modules this unpack lacks)."""
    return all(imports.get(x, '') is not None and not elsewhere(x) for x in (RIM.get(m, m), m))


def pair_missing(loads, m, n):
    """Python 2 loads the pair neither renamed nor as spelled."""
    return all(not loads.get(p, False) and not elsewhere(p[0])
               for p in (py3_to_py2(m, n), (m, n)))


def py2_too(workdir):
    """The names `fix_imports` renames that Python 2 also has as spelled: REVERSE_IMPORT_MAPPING
    modules it imports and REVERSE_NAME_MAPPING pairs it loads (`subprocess`, which becomes
    `commands`). At protocols 0-2 such a name may be Python 2's own."""
    imports, loads, _ = python2({'modules': sorted(RIM), 'pairs': sorted(RNM)}, workdir)
    modules = sorted(m for m in RIM if imports.get(m, '') is None)
    names = sorted(p for p in RNM if loads.get(p, False))
    return modules, names


def python2(request, workdir):
    """Runs the Python 2 probe on {"modules": [...], "pairs": [[m, n], ...]} (py2 names)."""
    req = os.path.join(workdir, 'p2_request.json')
    out = os.path.join(workdir, 'p2.json')
    with open(req, 'w') as f:
        json.dump(request, f)
    run_python2(['py3only_probe2.py', req, out])
    with open(out) as f:
        result = json.load(f)
    loads = {(m, n): err is None for m, n, err in result['pairs']}
    # Old-style classes: (m, n) -> whether they define __getinitargs__.
    classic = {(m, n): initargs for m, n, initargs in result['classic']}
    return result['modules'], loads, classic


def run_python2(args):
    """Runs a script of scripts/ under CPython 2.7 with only its standard library (no
    PYTHONPATH: not the wheels `.cache/bin/python2` adds; -s: no user site)."""
    env = {
        'PATH': '/usr/bin:/bin',
        'PYTHONHOME': PY27_HOME,
        'LD_LIBRARY_PATH': os.path.join(PY27_HOME, 'lib', 'x86_64-linux-gnu'),
        'LANG': 'C.UTF-8',
    }
    subprocess.run([os.path.join(PY27_HOME, 'bin', 'python2.7'), '-s',
                    os.path.join(ROOT, 'scripts', args[0])] + args[1:],
                   env=env, timeout=600, check=True, stdin=subprocess.DEVNULL)


def generate(workdir):
    p3 = os.path.join(workdir, 'p3.json')
    subprocess.run([sys.executable, '-I', '-S', os.path.join(ROOT, 'scripts', 'py3only_probe3.py'),
                    p3], timeout=600, check=True, stdin=subprocess.DEVNULL)
    with open(p3) as f:
        d3 = json.load(f)
    top = set(d3['stdlib_module_names'])
    # Dotted names have no GLOBAL form before protocol 4: the transcoder refuses them anyway.
    pairs = sorted({(m, n) for m, n, _kind, _seen in d3['pairs']
                    if m.split('.')[0] in top and '.' not in n} | set(EXTRA_PAIRS))
    modules = sorted(set(d3['modules']) | {m for m, _ in pairs})
    imports, loads, classic = python2({
        'modules': sorted({RIM.get(m, m) for m in modules} | set(modules)),
        'pairs': sorted({py3_to_py2(m, n) for m, n in pairs} | set(RNM.values()) | set(pairs)),
    }, workdir)

    def missing_module(m):
        return module_missing(imports, m)

    def missing_pair(m, n):
        return pair_missing(loads, m, n)

    gone = [m for m in modules if missing_module(m)]
    gone_set = set(gone)
    # A module stands for its submodules only when every one known is gone too and no
    # REVERSE_NAME_MAPPING pair in it loads (urllib.error.HTTPError is urllib2.HTTPError).
    rescued = {m for (m, n) in RNM if not missing_pair(m, n)}
    known = set(modules)
    prefixes = [m for m in gone
                if all(k in gone_set for k in known if k.startswith(m + '.'))
                and not any(r == m or r.startswith(m + '.') for r in rescued)
                and not any(m.startswith(p + '.') for p in gone)]
    names = sorted({(m, n) for m, n in pairs
                    if missing_pair(m, n) and (m not in gone_set or (m, n) in RNM)})
    spelled = sorted({py3_to_py2(m, n) for m, n in pairs if spelled_missing(loads, m, n)})
    keep = sorted({(m, n) for m, n in pairs if keep_spelled(loads, m, n)})
    rename_only = sorted({(m, n) for m, n in pairs if renamed_only(imports, loads, m, n)})
    # The Python 2 names of Python 3 classes that are old-style there (no __getinitargs__: an
    # instance is built empty, then given its state), as the transcoder writes them.
    old_style = sorted({written(loads, m, n) for m, n in pairs
                        if classic.get(written(loads, m, n)) is False})
    return gone, sorted(prefixes), names, spelled, keep, rename_only, old_style, d3['python']


def written(loads, m, n):
    """The name the transcoder writes for a Python 2 reader: renamed by `fix_imports`, unless
    kept as spelled."""
    return (m, n) if keep_spelled(loads, m, n) else py3_to_py2(m, n)


def renamed_only(imports, loads, m, n):
    """`fix_imports` renames the pair's module to one Python 2 has, and Python 2 also imports
    the module as spelled (a PY2_TOO_MODULES module), but lacks the name there: it loads only
    the renamed pair (`subprocess.getoutput` is `commands.getoutput`). At protocols 0-2 such a
    name is Python 3's (written with `fix_imports=False`): the transcoder renames it."""
    r = py3_to_py2(m, n)
    return (m in RIM and (m, n) not in RNM and r != (m, n) and imports.get(m, '') is None
            and loads.get(r, False) and not loads.get((m, n), True)
            and not elsewhere(r[0]) and not elsewhere(m))


def keep_spelled(loads, m, n):
    """`fix_imports` renames the pair to a name Python 2 cannot load, although it loads the pair
    as spelled (`subprocess.Popen` becomes `commands.Popen`; Python 2's `commands` has only the
    functions Python 3 moved to `subprocess`): the transcoder keeps the pair as spelled."""
    r = py3_to_py2(m, n)
    return (r != (m, n) and not loads.get(r, False) and loads.get((m, n), False)
            and not elsewhere(r[0]) and not elsewhere(m))


def spelled_missing(loads, m, n):
    """The name `fix_imports` writes for the pair at protocols 0-2 is Python 2's spelling, one
    the renaming leaves as it is (`__builtin__.RecursionError`, from `builtins`), and Python 2
    cannot load it. A pickle naming it fails there whoever wrote it and whatever its protocol:
    nothing renames it on the way."""
    r = py3_to_py2(m, n)
    return r != (m, n) and py3_to_py2(*r) == r and not loads[r] and not elsewhere(r[0])


def pair_lines(m, n):
    inner = '"%s", "%s"' % (m, n)
    # As rustfmt writes a tuple whose items pass its fn_call_width (60).
    if len(inner) <= 60:
        return ['    (%s),' % inner]
    return ['    (', '        "%s",' % m, '        "%s",' % n, '    ),']


def render_tables(header, tables):
    """The Rust source of a generated file: `//!` header lines, then one `pub(crate) const` per
    (doc lines, declaration, entries) table, formatted as rustfmt would."""
    lines = ['//! ' + h if h else '//!' for h in header]
    for doc, decl, entries in tables:
        lines += [''] + ['/// ' + d for d in doc]
        flat = ', '.join(line.strip().rstrip(',') for entry in entries for line in entry)
        if all(len(e) == 1 for e in entries) and len(flat) <= 60:
            # As rustfmt writes an array whose items fit its array_width (60) on one line.
            lines += ['pub(crate) const %s = &[%s];' % (decl, flat)]
            continue
        lines += ['pub(crate) const %s = &[' % decl]
        lines += [line for entry in entries for line in entry] + ['];']
    return '\n'.join(lines + [''])


def render(modules, prefixes, names, spelled, keep, rename_only, old_style, py3_version,
           too_modules, too_names):
    py3 = py3_version.split()[0]
    header = [
        'Globals Python 3 may pickle that Python 2 cannot load (py3 spelling, before renaming,',
        'and the Python 2 spelling `fix_imports` writes), and the names `fix_imports` renames',
        'that Python 2 has as spelled too.',
        '',
        'GENERATED by scripts/gen_py3_only.py from CPython %s and CPython 2.7.18: do not edit' % py3,
        'by hand (`make py3-only-table`; `--verify` checks every entry against Python 2).',
    ]
    tables = [
        (['Modules Python 2 cannot import after `fix_imports` renames them, sorted.'],
         'MODULES: &[&str]', [['    "%s",' % m] for m in modules]),
        (['Modules of [`MODULES`] whose submodules are all gone too: they cover unlisted',
          'submodules (`asyncio.*`), sorted.'],
         'PREFIXES: &[&str]', [['    "%s",' % m] for m in prefixes]),
        (['Classes and callables Python 2 lacks in a module it has (or whose renamed name is',
          'missing), sorted.'],
         'NAMES: &[(&str, &str)]', [pair_lines(m, n) for m, n in names]),
        (['Classes and callables as `fix_imports` writes them for protocols 0-2, in Python 2\'s',
          'spelling that the renaming leaves as it is (`builtins.RecursionError` is written',
          '`__builtin__.RecursionError`), which Python 2 cannot load, sorted.'],
         'SPELLED_NAMES: &[(&str, &str)]', [pair_lines(m, n) for m, n in spelled]),
        (['Pairs `fix_imports` renames to a name Python 2 cannot load, which Python 2 loads as',
          'spelled (`subprocess.Popen`, not `commands.Popen`): never renamed, sorted.'],
         'KEEP_SPELLED: &[(&str, &str)]', [pair_lines(m, n) for m, n in keep]),
        (['Modules `fix_imports` renames that Python 2 also imports as spelled, sorted.'],
         'PY2_TOO_MODULES: &[&str]', [['    "%s",' % m] for m in too_modules]),
        (['Pairs `fix_imports` renames that Python 2 also loads as spelled, sorted.'],
         'PY2_TOO_NAMES: &[(&str, &str)]', [pair_lines(m, n) for m, n in too_names]),
        (['Pairs of [`PY2_TOO_MODULES`] that Python 2 loads only renamed',
          '(`subprocess.getoutput` is `commands.getoutput`): Python 3\'s names, sorted.'],
         'RENAME_ONLY: &[(&str, &str)]', [pair_lines(m, n) for m, n in rename_only]),
        (['Python 2 names of Python 3 standard-library classes that are old-style in Python 2',
          'and define no `__getinitargs__` (`collections.UserDict` is written',
          '`UserDict.IterableUserDict`): written as `py2_classic` classes are, sorted.'],
         'PY2_CLASSIC: &[(&str, &str)]', [pair_lines(m, n) for m, n in old_style]),
    ]
    return render_tables(header, tables)


PAIR_RE = r'\(\s*"([^"]+)",\s*"([^"]+)",?\s*\)'


def table_block(text, name):
    return text.split('const %s:' % name, 1)[1].split('];', 1)[0]


def parse_strings(text, name):
    return re.findall(r'"([^"]+)"', table_block(text, name))


def parse_pairs(text, name):
    block = table_block(text, name)
    pairs = re.findall(PAIR_RE, block)
    # (Every entry parsed: one opening parenthesis per pair after the type's own.)
    assert block.count('(') - 1 == len(pairs), 'unparsed %s entries' % name
    return pairs


def parse_table(text):
    return (parse_strings(text, 'MODULES'), parse_strings(text, 'PREFIXES'),
            parse_pairs(text, 'NAMES'), parse_pairs(text, 'SPELLED_NAMES'),
            parse_pairs(text, 'KEEP_SPELLED'),
            parse_strings(text, 'PY2_TOO_MODULES'), parse_pairs(text, 'PY2_TOO_NAMES'),
            parse_pairs(text, 'RENAME_ONLY'), parse_pairs(text, 'PY2_CLASSIC'))


def verify(workdir):
    with open(TABLE) as f:
        (modules, prefixes, names, spelled, keep, too_modules, too_names,
         rename_only, old_style) = parse_table(f.read())
    problems = []
    for what, items in (('MODULES', modules), ('PREFIXES', prefixes), ('NAMES', names),
                        ('SPELLED_NAMES', spelled), ('KEEP_SPELLED', keep),
                        ('RENAME_ONLY', rename_only), ('PY2_CLASSIC', old_style)):
        if items != sorted(set(items)):
            problems.append('%s is not sorted and unique' % what)
    problems += ['PREFIXES entry %s is not in MODULES' % p for p in prefixes if p not in modules]
    if len(modules) < 100 or len(names) < 300 or len(spelled) < 10:
        problems.append('the table is too small to be generated (%d modules, %d names, %d '
                        'spelled)' % (len(modules), len(names), len(spelled)))
    imports, loads, classic = python2({
        'modules': sorted({RIM.get(m, m) for m in modules} | set(modules)
                          | {m for m, _ in rename_only}),
        'pairs': sorted({py3_to_py2(m, n) for m, n in names + keep + rename_only} | set(names)
                        | set(spelled) | set(keep) | set(rename_only) | set(old_style)),
    }, workdir)
    for m in modules:
        if not module_missing(imports, m):
            problems.append('Python 2 imports %s (or %s)' % (m, RIM.get(m, m)))
    for m, n in names:
        if not pair_missing(loads, m, n):
            problems.append('Python 2 loads %s.%s (or %s.%s)' % ((m, n) + py3_to_py2(m, n)))
    # A spelled name is refused as it is: Python 2 must fail on it, and nothing may rename it.
    for m, n in spelled:
        if loads[(m, n)] or elsewhere(m) or py3_to_py2(m, n) != (m, n):
            problems.append('Python 2 loads %s.%s, or it is renamed' % (m, n))
    # A pair kept as spelled: Python 2 loads it so, and not as renamed.
    for m, n in keep:
        if not keep_spelled(loads, m, n):
            problems.append('KEEP_SPELLED %s.%s: Python 2 loads it renamed, or not as spelled'
                            % (m, n))
    # A pair renamed at protocols 0-2: Python 2 loads it renamed, not as spelled.
    for m, n in rename_only:
        if not renamed_only(imports, loads, m, n):
            problems.append('RENAME_ONLY %s.%s: Python 2 loads it as spelled, or not renamed'
                            % (m, n))
    # An old-style class: Python 2 loads it so, without __getinitargs__.
    for m, n in old_style:
        if classic.get((m, n)) is not False:
            problems.append('PY2_CLASSIC %s.%s: not an old-style class without __getinitargs__ '
                            'in Python 2' % (m, n))
    # The names Python 2 also has as spelled: exactly what it loads now.
    too_now = tuple(map(list, py2_too(workdir)))
    if (too_modules, too_names) != too_now:
        problems.append('PY2_TOO_MODULES / PY2_TOO_NAMES differ from what Python 2 loads: %r'
                        % (too_now,))
    for p in problems:
        print('FAIL', p)
    print('%d modules, %d prefixes, %d names, %d spelled names checked against Python 2: '
          '%d problems' % (len(modules), len(prefixes), len(names), len(spelled), len(problems)))
    return not problems


def verify_compat_mappings():
    """compat.rs's copies of `_compat_pickle`'s four tables (the names CPython 3 writes for
    protocol 2, and reads at protocols 0-2) equal this Python 3's, entry for entry."""
    with open(COMPAT) as f:
        text = f.read()
    quad = r'\(\(\s*"([^"]+)",\s*"([^"]+)"\s*\),\s*\(\s*"([^"]+)",\s*"([^"]+)"\s*\)\)'
    problems = []
    for name, want in (('REVERSE_IMPORT_MAPPING', _compat_pickle.REVERSE_IMPORT_MAPPING),
                       ('IMPORT_MAPPING', _compat_pickle.IMPORT_MAPPING),
                       ('REVERSE_NAME_MAPPING', _compat_pickle.REVERSE_NAME_MAPPING),
                       ('NAME_MAPPING', _compat_pickle.NAME_MAPPING)):
        block = table_block(text, name)
        if name.endswith('IMPORT_MAPPING'):
            got = dict(parse_pairs(text, name))
        else:
            entries = re.findall(quad, block)
            assert block.count('((') == len(entries), 'unparsed %s entries' % name
            got = dict(((a, b), (c, d)) for a, b, c, d in entries)
        if got != dict(want):
            problems.append('%s differs from _compat_pickle: %d entries here, %d there'
                            % (name, len(got), len(want)))
    for p in problems:
        print('FAIL', p)
    print('compat.rs name mappings checked against Python 3: %d problems' % len(problems))
    return not problems


# --- The other direction: globals Python 2 may pickle that Python 3 cannot load (py2_only.rs).

def py2_to_py3(module, name):
    """What CPython 3's unpickler looks up for a py2 name at protocols 0-2 (`fix_imports`,
    `_Unpickler.find_class`): NAME_MAPPING on the pair, else IMPORT_MAPPING on the module."""
    if (module, name) in NM:
        return NM[(module, name)]
    return IM.get(module, module), name


def python3(request, workdir):
    """Runs scripts/py2only_probe3.py under this CPython 3, isolated (-I -S: its standard library
    only), on {"modules": [...], "pairs": [[m, n], ...]} (py3 lookups, no renaming)."""
    req = os.path.join(workdir, 'p3_request.json')
    out = os.path.join(workdir, 'p3_loads.json')
    with open(req, 'w') as f:
        json.dump(request, f)
    subprocess.run([sys.executable, '-I', '-S', os.path.join(ROOT, 'scripts', 'py2only_probe3.py'),
                    req, out], timeout=600, check=True, stdin=subprocess.DEVNULL)
    with open(out) as f:
        result = json.load(f)
    return result['modules'], {(m, n): err for m, n, err in result['pairs']}


def gone3(err):
    """A lookup failed, and not for a standard module this Python 3 build lacks (`tkinter`)."""
    return err is not None and not err[1]


def py3_request(modules, pairs):
    return {'modules': sorted({IM.get(m, m) for m in modules} | set(modules)),
            'pairs': sorted({py2_to_py3(m, n) for m, n in pairs} | set(pairs))}


def module_missing3(imports, m):
    """Python 3 imports `m` neither as fix_imports renames it nor as spelled."""
    return all(gone3(imports[x]) for x in (IM.get(m, m), m))


def pair_missing3(loads, m, n):
    """Python 3 loads the pair neither as fix_imports renames it nor as spelled (at protocol 3+
    nothing is renamed)."""
    return all(gone3(loads[p]) for p in (py2_to_py3(m, n), (m, n)))


def generate_py2_only(workdir):
    out = os.path.join(workdir, 'p2_list.json')
    run_python2(['py2only_probe2.py', out])
    with open(out) as f:
        d2 = json.load(f)
    # NAME_MAPPING's keys are names Python 2 writes too (`exceptions.StandardError`).
    pairs = {tuple(p) for p in d2['pairs']} | set(NM)
    modules = set(d2['modules']) | {m for m, _ in pairs}
    imports, loads = python3(py3_request(modules, pairs), workdir)
    gone = sorted(m for m in modules if module_missing3(imports, m))
    gone_set = set(gone)
    names = sorted(p for p in pairs
                   if pair_missing3(loads, *p) and (p[0] not in gone_set or p in NM))
    mapped = sorted(k for k in NM if k[0] in gone_set)
    return gone, names, mapped, d2['python']


def render_py2_only(modules, names, mapped, py2_version):
    header = [
        'Globals Python 2 may pickle that Python 3 cannot load (py2 spelling, as the pickle',
        'names them), after its unpickler\'s `fix_imports` maps them and as spelled.',
        '',
        'GENERATED by scripts/gen_py3_only.py from CPython 2.7.18 and CPython %s: do not edit'
        % sys.version.split()[0],
        'by hand (`make py3-only-table`; `--verify` checks every entry against Python 3).',
    ]
    assert py2_version.startswith('2.7.18')
    tables = [
        (['Modules Python 3 cannot import, mapped by IMPORT_MAPPING or as spelled, sorted.'],
         'MODULES: &[&str]', [['    "%s",' % m] for m in modules]),
        (['Classes and callables Python 3 cannot load, mapped or as spelled, in a module it',
          'has, or mapped by NAME_MAPPING out of a module of [`MODULES`], sorted.'],
         'NAMES: &[(&str, &str)]', [pair_lines(m, n) for m, n in names]),
        (['NAME_MAPPING\'s pairs in a module of [`MODULES`] (`exceptions.ValueError` is',
          '`builtins.ValueError`): judged by [`NAMES`] alone, sorted.'],
         'MAPPED: &[(&str, &str)]', [pair_lines(m, n) for m, n in mapped]),
    ]
    return render_tables(header, tables)


def verify_py2_only(workdir):
    with open(TABLE2) as f:
        text = f.read()
    modules = parse_strings(text, 'MODULES')
    names, mapped = parse_pairs(text, 'NAMES'), parse_pairs(text, 'MAPPED')
    problems = ['%s is not sorted and unique' % what
                for what, items in (('MODULES', modules), ('NAMES', names), ('MAPPED', mapped))
                if items != sorted(set(items))]
    if len(modules) < 20 or len(names) < 100:
        problems.append('the table is too small to be generated (%d modules, %d names)'
                        % (len(modules), len(names)))
    imports, loads = python3(py3_request(modules, names), workdir)
    problems += ['Python 3 imports %s (or %s)' % (m, IM.get(m, m))
                 for m in modules if not module_missing3(imports, m)]
    problems += ['Python 3 loads %s.%s (or %s.%s)' % ((m, n) + py2_to_py3(m, n))
                 for m, n in names if not pair_missing3(loads, m, n)]
    # A pair of a listed module is refused unless NAME_MAPPING maps it: those must be MAPPED.
    want = sorted(k for k in NM if k[0] in set(modules))
    if mapped != [list(k) for k in want] and mapped != want:
        problems.append('MAPPED differs from NAME_MAPPING\'s pairs in MODULES: %r' % (want,))
    for p in problems:
        print('FAIL', p)
    print('py2_only: %d modules, %d names checked against Python 3: %d problems'
          % (len(modules), len(names), len(problems)))
    return not problems




def tables(workdir):
    """The two tables as generated from this machine's interpreters: [(path, text, summary)]."""
    modules, prefixes, names, spelled, keep, rename_only, old_style, version = generate(workdir)
    too_modules, too_names = py2_too(workdir)
    modules2, names2, mapped2, version2 = generate_py2_only(workdir)
    return [
        (TABLE,
         render(modules, prefixes, names, spelled, keep, rename_only, old_style, version,
                too_modules, too_names),
         '%d modules, %d prefixes, %d names, %d spelled names, %d kept as spelled, '
         '%d renamed only, %d old-style' % (len(modules), len(prefixes), len(names),
                                            len(spelled), len(keep), len(rename_only),
                                            len(old_style))),
        (TABLE2, render_py2_only(modules2, names2, mapped2, version2),
         '%d modules, %d names' % (len(modules2), len(names2))),
    ]


def verify_complete(workdir):
    """The committed tables are exactly what generating them again writes: no entry missing
    (a global the reader lacks that would pass unchanged and fail there), none extra."""
    ok = True
    for path, text, _ in tables(workdir):
        with open(path) as f:
            committed = f.read()
        if committed != text:
            ok = False
            diff = difflib.unified_diff(committed.splitlines(), text.splitlines(),
                                        'committed', 'generated', n=1, lineterm='')
            for line in list(diff)[:40]:
                print('FAIL %s: %s' % (os.path.basename(path), line))
    print('tables regenerated: %s' % ('identical to the committed files' if ok else
                                      'differ from the committed files (make py3-only-table)'))
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--verify', action='store_true',
                        help='check the committed tables instead of writing them')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        if args.verify:
            ok = verify(workdir)
            ok = verify_py2_only(workdir) and ok
            ok = verify_compat_mappings() and ok
            ok = verify_complete(workdir) and ok
            sys.exit(0 if ok else 1)
        generated = tables(workdir)
    for path, text, summary in generated:
        with open(path, 'w') as f:
            f.write(text)
        print('%s: %s' % (path, summary))


if __name__ == '__main__':
    main()
