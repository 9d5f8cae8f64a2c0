"""Part of scripts/gen_py3_only.py, run by CPython 3 with -I -S (only its standard library):
argv[1] = JSON {"modules": [...], "pairs": [[mod, name], ...]}; argv[2] = output JSON.

A pair loads iff `__import__(mod); getattr(sys.modules[mod], name)` works, which is what the
unpickler's find_class does for protocols 0-3 (the caller applies fix_imports' renaming first).
A failure is "elsewhere" when it is a ModuleNotFoundError for a module of CPython 3's own
standard library (sys.stdlib_module_names) that this build lacks: Debian ships tkinter and _gdbm
apart, winreg is Windows-only. A normal Python 3 has those, so they do not count as missing."""
import contextlib, io, json, signal, site, sys, warnings

warnings.simplefilter("ignore")
# What `site` gives every normal interpreter's builtins (`exit`, `quit`, `help`, `copyright`,
# `credits`, `license`), without the site-packages directories -S keeps off the path.
site.setquit()
site.setcopyright()
site.sethelper()


class Timeout(Exception):
    pass


def _alarm(*_):
    raise Timeout()


signal.signal(signal.SIGALRM, _alarm)


def imp(m):
    """None when `m` imports, else [error, elsewhere]."""
    signal.alarm(10)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            __import__(m, level=0)
        sys.modules[m]
        return None
    except BaseException as e:  # noqa: what fails to import is what we are after
        elsewhere = isinstance(e, ModuleNotFoundError) and e.name in sys.stdlib_module_names
        return ["%s: %s" % (type(e).__name__, e), elsewhere]
    finally:
        signal.alarm(0)


req = json.load(open(sys.argv[1]))
mods = {m: imp(m) for m in sorted(set(req["modules"]) | {p[0] for p in req["pairs"]})}
pairs = []
for m, n in req["pairs"]:
    if mods[m] is not None:
        pairs.append([m, n, mods[m]])
        continue
    try:
        getattr(sys.modules[m], n)
        pairs.append([m, n, None])
    except BaseException as e:  # noqa
        pairs.append([m, n, ["%s: %s" % (type(e).__name__, e), False]])
json.dump({"python": sys.version, "modules": mods, "pairs": pairs}, open(sys.argv[2], "w"), indent=0)
