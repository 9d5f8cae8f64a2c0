"""Part of scripts/gen_py3_only.py, run by CPython 3 with -I -S: lists the standard library's
modules (sys.stdlib_module_names and their importable submodules) and the (module, qualname)
pairs pickle would write for the classes and callables in their namespaces. Writes JSON to
argv[1]."""
import contextlib, enum, importlib, inspect, io, json, pkgutil, signal, sys, types, warnings

warnings.simplefilter("ignore")

# Private names pickles are known to reference (reduce helpers / private types written by pickle).
PRIVATE_OK = {
    ("array", "_array_reconstructor"), ("copyreg", "__newobj_ex__"), ("copyreg", "__newobj__"),
    ("copyreg", "_reconstructor"), ("_codecs", "encode"), ("re", "_compile"),
    ("os", "_make_stat_result"), ("os", "_make_statvfs_result"),
    ("itertools", "_tee"), ("itertools", "_tee_dataobject"),
    ("_collections", "_deque_iterator"), ("_collections", "_deque_reverse_iterator"),
    ("collections", "_deque_iterator"), ("collections", "_deque_reverse_iterator"),
}
# Never imported: side effects (opens a browser / starts IDLE / GUI demos).
NO_IMPORT = {"antigravity", "__hello__", "__phello__"}
NO_WALK = {"idlelib", "turtledemo", "test"}


def skip_sub(name):
    parts = name.split(".")
    return any(p in ("test", "tests", "idle_test", "__main__") for p in parts[1:])


class Timeout(Exception):
    pass


def _alarm(*_):
    raise Timeout()


signal.signal(signal.SIGALRM, _alarm)


def try_import(name):
    signal.alarm(10)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            importlib.import_module(name)
        return None
    except BaseException as e:  # noqa
        return "%s: %s" % (type(e).__name__, e)
    finally:
        signal.alarm(0)


top = sorted(sys.stdlib_module_names)
mods, failed, skipped = [], {}, sorted(NO_IMPORT)
for m in top:
    if m in NO_IMPORT:
        continue
    err = try_import(m)
    if err:
        failed[m] = err
        continue
    mods.append(m)
    mod = sys.modules[m]
    if m in NO_WALK or not hasattr(mod, "__path__"):
        continue
    # bounded recursive walk of submodules
    todo, seen = [m], 0
    while todo and seen < 2000:
        pkg = todo.pop()
        pmod = sys.modules.get(pkg)
        for info in pkgutil.iter_modules(getattr(pmod, "__path__", []) or [], pkg + "."):
            seen += 1
            if skip_sub(info.name):
                continue
            err = try_import(info.name)
            if err:
                failed[info.name] = err
                continue
            mods.append(info.name)
            if info.ispkg:
                todo.append(info.name)
mods = sorted(set(mods))


def lookup(modname, qualname):
    obj = sys.modules.get(modname)
    if obj is None:
        if try_import(modname):
            return None
        obj = sys.modules[modname]
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


pairs = {}  # (pickled_module, qualname) -> info
unpicklable = 0
no_module = []
for m in mods:
    mod = sys.modules.get(m)
    if mod is None:
        continue
    try:
        names = list(vars(mod))
    except TypeError:
        continue
    for n in names:
        if n.startswith("_") and (m, n) not in PRIVATE_OK:
            continue
        try:
            obj = getattr(mod, n)
        except Exception:
            continue
        if isinstance(obj, types.ModuleType):
            continue
        is_cls = isinstance(obj, type)
        if not (is_cls or inspect.isroutine(obj) or (callable(obj) and hasattr(obj, "__qualname__"))):
            # Non-callables written by name: objects whose __reduce_ex__ returns a string, e.g.
            # 3.11 @global_enum members (re.NOFLAG, signal.SIGINT, ssl.OP_*) -> "module NAME".
            if n.startswith("_") or not isinstance(obj, enum.Enum):
                continue
            try:
                rv = obj.__reduce_ex__(2)
            except Exception:
                continue
            if not isinstance(rv, str):
                continue
            om = getattr(obj, "__module__", None) or m
            if lookup(om, rv) is not obj:
                unpicklable += 1
                continue
            rec = pairs.setdefault((om, rv), {"kind": "enum-global", "seen_in": []})
            if m not in rec["seen_in"]:
                rec["seen_in"].append(m)
            continue
        qn = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        om = getattr(obj, "__module__", None)
        if not isinstance(qn, str):
            continue
        if not isinstance(om, str):
            # pickle's whichmodule() would scan sys.modules; the namespace module is the best guess
            om = m
            no_module.append("%s.%s" % (m, n))
        if "<locals>" in qn or "<lambda>" in qn:
            continue
        if lookup(om, qn) is not obj:
            unpicklable += 1
            continue
        key = (om, qn)
        rec = pairs.setdefault(key, {"kind": "class" if is_cls else "callable", "seen_in": []})
        if m not in rec["seen_in"]:
            rec["seen_in"].append(m)

# modules that pairs point to which we did not list (private implementation modules)
extra = sorted({k[0] for k in pairs} - set(mods))
json.dump({
    "python": sys.version,
    "stdlib_module_names": top,
    "modules": mods,
    "failed": failed,
    "not_imported": skipped,
    "extra_modules": extra,
    "unpicklable_skipped": unpicklable,
    "no___module__": no_module,
    "pairs": [[k[0], k[1], v["kind"], v["seen_in"]] for k, v in sorted(pairs.items())],
}, open(sys.argv[1], "w"), indent=0)
