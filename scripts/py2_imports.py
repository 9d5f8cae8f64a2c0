# Shared by scripts/py3only_probe2.py and scripts/py2only_probe2.py, run by CPython 2.7 with only
# its standard library (and this folder, the script's own) on the path: imports a module quietly
# and within a time limit, as the probes try every module of the standard library.
import signal, sys, StringIO


class Timeout(Exception):
    pass


def _alarm(*a):
    raise Timeout()


signal.signal(signal.SIGALRM, _alarm)


def imp(m):
    """None when module `m` imports (within 10 s, its output discarded), else the error."""
    signal.alarm(10)
    out, err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = StringIO.StringIO()
    try:
        __import__(m)
        sys.modules[m]
        return None
    except BaseException as e:
        return "%s: %s" % (type(e).__name__, e)
    finally:
        sys.stdout, sys.stderr = out, err
        signal.alarm(0)
