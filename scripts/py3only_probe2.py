# Part of scripts/gen_py3_only.py, run by CPython 2.7 with only its standard library on the path.
# argv[1] = JSON {"modules": [...], "pairs": [[mod, name], ...]}; argv[2] = output JSON.
# A pair loads iff `__import__(mod); getattr(sys.modules[mod], name)` works (pickle's find_class).
# "classic": the pairs that load as old-style classes, [mod, name, defines __getinitargs__].
import json, sys, types, warnings
warnings.simplefilter("ignore")
from py2_imports import imp

req = json.load(open(sys.argv[1]))
mods = {}
for m in sorted(set(req["modules"]) | set(p[0] for p in req["pairs"])):
    mods[m] = imp(m)
pairs = []
classic = []
for m, n in req["pairs"]:
    if mods.get(m) is not None:
        pairs.append([m, n, "module: " + mods[m]])
        continue
    try:
        obj = getattr(sys.modules[m], n)
        pairs.append([m, n, None])
    except BaseException as e:
        pairs.append([m, n, "%s: %s" % (type(e).__name__, e)])
        continue
    if isinstance(obj, types.ClassType):
        classic.append([m, n, hasattr(obj, "__getinitargs__")])
json.dump({"python": sys.version, "modules": mods, "pairs": pairs, "classic": classic},
          open(sys.argv[2], "w"), indent=0)
