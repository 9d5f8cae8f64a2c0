# Part of scripts/gen_py3_only.py, run by CPython 2.7 with only its standard library on the path
# (-S -s, no PYTHONPATH): lists the standard library's modules (the .py files and packages of its
# lib directory, lib-dynload, the built-in modules, and their importable submodules) and, for
# every class or callable in their namespaces, the pairs a Python 2 pickle may name it by: the
# one pickle writes, (obj.__module__, obj.__name__), and the namespace's own (module, name); each
# kept only when `__import__(module); getattr(module, name) is obj`, what cPickle's save_global
# checks before it writes a global. Writes JSON to argv[1].
import json, os, pkgutil, sys, types, warnings
warnings.simplefilter("ignore")

# Never imported: side effects (opens a browser, prints the Zen, starts IDLE / GUI demos).
NO_IMPORT = set(["antigravity", "this", "__main__", "idlelib", "lib2to3.__main__"])
NO_WALK = set(["idlelib", "test", "lib2to3"])
# Private names Python 2 pickles write (the reducers of os.stat_result and os.statvfs_result that
# copy_reg registers; the others Python 3 has too, under fix_imports' names); the rest of the
# private names are never written by a pickle of the standard library.
PRIVATE_OK = set([
    ("os", "_make_stat_result"), ("os", "_make_statvfs_result"),
    ("copy_reg", "_reconstructor"), ("copy_reg", "__newobj__"), ("re", "_compile"),
])

from py2_imports import imp  # noqa: E402


def skip_sub(name):
    return any(p in ("test", "tests", "__main__") for p in name.split(".")[1:])


lib = os.path.dirname(os.__file__)
roots = [lib, os.path.join(lib, "lib-dynload")]
top = set(sys.builtin_module_names)
for _, name, _ in pkgutil.iter_modules(roots):
    top.add(name)
top = sorted(m for m in top if m not in NO_IMPORT and not m.startswith("_test"))
mods, failed = [], {}
for m in top:
    err = imp(m)
    if err:
        failed[m] = err
        continue
    mods.append(m)
    mod = sys.modules[m]
    if m in NO_WALK or not hasattr(mod, "__path__"):
        continue
    todo = [m]
    while todo:
        pkg = todo.pop()
        for _, sub, ispkg in pkgutil.iter_modules(sys.modules[pkg].__path__, pkg + "."):
            if skip_sub(sub) or sub in NO_IMPORT:
                continue
            err = imp(sub)
            if err:
                failed[sub] = err
                continue
            mods.append(sub)
            if ispkg:
                todo.append(sub)
mods = sorted(set(mods))


def loads(m, n, obj):
    """What cPickle's save_global checks: the module imports and has `obj` under `n`."""
    if imp(m):
        return False
    return getattr(sys.modules[m], n, None) is obj


pairs = set()
for m in mods:
    mod = sys.modules.get(m)
    if mod is None:
        continue
    for n, obj in sorted(vars(mod).items()):
        if (n.startswith("_") and (m, n) not in PRIVATE_OK) or isinstance(obj, types.ModuleType):
            continue
        if not (isinstance(obj, (type, types.ClassType)) or callable(obj)):
            continue
        qn = getattr(obj, "__name__", None)
        om = getattr(obj, "__module__", None)
        if isinstance(qn, str) and isinstance(om, str) and loads(om, qn, obj):
            pairs.add((om, qn))
        if loads(m, n, obj):
            pairs.add((m, n))

json.dump({
    "python": sys.version,
    "modules": mods,
    "failed": failed,
    "pairs": sorted(pairs),
}, open(sys.argv[1], "w"), indent=0)
