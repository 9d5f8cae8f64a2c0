//! The default deny list of the pickle firewall and the module aliases it normalizes through.
//!
//! Owns data only: which globals a poisoned cache entry would use to run code, touch files or the
//! network, or unpickle a nested payload. Matching lives in [`super`]. Entries use the module's
//! Python 3 spelling; [`canonical_module`] maps the Python 2 and platform spellings onto it, so
//! `posix.system`, `nt.system` and `os.system` are one rule, and so are `__builtin__.eval` and
//! `builtins.eval`.

/// Modules denied as a whole, with their submodules (`"subprocess"` denies `subprocess.Popen`
/// and `subprocess.x.y`). Written `module.*` in the README and in config entries.
pub(super) const DENIED_MODULES: &[&str] = &[
    // Processes and shells.
    "os",
    "subprocess",
    "commands",
    "popen2",
    "pty",
    "multiprocessing",
    "asyncio",
    "_thread",
    "signal",
    "resource",
    // Interpreter internals: module table, frames, the garbage collector, code objects.
    "sys",
    "gc",
    "inspect",
    "ctypes",
    "cffi",
    "new",
    "marshal",
    // Importing and running code.
    "code",
    "codeop",
    "importlib",
    "imp",
    "pkgutil",
    "runpy",
    "zipimport",
    "site",
    "timeit",
    "profile",
    "cProfile",
    "pdb",
    "bdb",
    "trace",
    "doctest",
    "idlelib",
    "pydoc",
    "distutils",
    "setuptools",
    "pip",
    "logging.config",
    // Nested deserialization (a payload inside the payload would be invisible to the firewall).
    "pickle",
    "shelve",
    "dill",
    "cloudpickle",
    "jsonpickle",
    "yaml",
    // Files and the network.
    "shutil",
    "tempfile",
    "socket",
    "ssl",
    "socketserver",
    "http.client",
    "http.server",
    "urllib.request",
    "ftplib",
    "smtplib",
    "telnetlib",
    "poplib",
    "imaplib",
    "nntplib",
    "webbrowser",
    "antigravity",
    // Database files opened or created by path, and in-place file rewriting.
    "dbm",
    "_dbm",
    "_gdbm",
    "anydbm",
    "dbhash",
    "gdbm",
    "dumbdbm",
    "bsddb",
    "sqlite3",
    "_sqlite3",
    "mailbox",
    "fileinput",
    // Handlers open files and sockets when made.
    "logging.handlers",
    // Import any object by a dotted name given as text (then callable by REDUCE), or run
    // commands: Django's and other frameworks' helpers, entry points.
    "django.utils.module_loading",
    "django.core.management",
    "pkg_resources",
    "celery.utils.imports",
    "kombu.utils.imports",
    // Servers that listen on a port when made.
    "xmlrpc.server",
    "SimpleXMLRPCServer",
    "DocXMLRPCServer",
    "wsgiref.simple_server",
    "smtpd",
    "asyncore",
    "asynchat",
    // Writing or compiling files, installing packages, running shell pipelines.
    "venv",
    "ensurepip",
    "compileall",
    "py_compile",
    "zipapp",
    "lib2to3",
    "pipes",
    // HTTP and mail clients of common libraries (requests to any address from a worker).
    "requests",
    "urllib3",
    "httplib2",
    "django.core.mail",
    // Crashing the worker on purpose.
    "faulthandler",
    "_testcapi",
    "_testinternalcapi",
    // Test helpers that run interpreters and commands (Debian ships `test.support`), and
    // Django's test runner lookup.
    "test.support",
    "test.libregrtest",
    "django.test",
    // Another module's name for `open`, and file writers by path.
    "_pyio",
    "uu",
    "binhex",
    "compiler",
    // Python 2 modules that load code or libraries (or run ~/.pythonrc.py when imported).
    "dl",
    "rexec",
    "imputil",
    "ihooks",
    "user",
];

/// Single globals denied by `(module, name)`; the module in its canonical spelling.
pub(super) const DENIED_GLOBALS: &[(&str, &str)] = &[
    // Code execution and attribute access: the head of every gadget chain.
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "execfile"),
    ("builtins", "compile"),
    ("builtins", "__import__"),
    ("builtins", "__build_class__"),
    ("builtins", "getattr"),
    ("builtins", "setattr"),
    ("builtins", "delattr"),
    ("builtins", "globals"),
    ("builtins", "locals"),
    ("builtins", "vars"),
    ("builtins", "apply"),
    ("builtins", "reload"),
    ("builtins", "breakpoint"),
    // Files, terminals, and ending the worker process.
    ("builtins", "open"),
    ("builtins", "file"),
    ("builtins", "input"),
    ("builtins", "raw_input"),
    ("builtins", "help"),
    ("builtins", "exit"),
    ("builtins", "quit"),
    ("io", "open"),
    ("io", "open_code"),
    ("io", "FileIO"),
    ("codecs", "open"),
    // Function and code object construction.
    ("types", "FunctionType"),
    ("types", "LambdaType"),
    ("types", "CodeType"),
    ("types", "MethodType"),
    ("types", "BuiltinFunctionType"),
    ("types", "BuiltinMethodType"),
    // Attribute and method access by name on any object.
    ("operator", "attrgetter"),
    ("operator", "methodcaller"),
    ("operator", "call"),
    // Python 2 homes of things denied above.
    ("platform", "popen"),
    ("urllib", "urlopen"),
    ("urllib", "urlretrieve"),
    ("urllib", "URLopener"),
    ("urllib", "FancyURLopener"),
    // Files opened for writing (created or truncated) by path when made.
    ("logging", "FileHandler"),
    ("logging", "basicConfig"),
    ("zipfile", "ZipFile"),
    ("zipfile", "PyZipFile"),
    ("tarfile", "open"),
    ("tarfile", "TarFile"),
    ("gzip", "open"),
    ("gzip", "GzipFile"),
    ("bz2", "open"),
    ("bz2", "BZ2File"),
    ("lzma", "open"),
    ("lzma", "LZMAFile"),
    ("wave", "open"),
    ("sunau", "open"),
    ("aifc", "open"),
    // Code run by less obvious callables: `typing` evaluates a `ForwardRef`'s text (and
    // `get_type_hints` an object's `__annotations__`, which BUILD can set); `uuid`'s helpers
    // run the command they are given; Python 2's `Cookie.SerialCookie`/`SmartCookie` unpickle
    // cookie values.
    ("typing", "_eval_type"),
    ("typing", "get_type_hints"),
    ("uuid", "_get_command_stdout"),
    ("uuid", "_find_mac_near_keyword"),
    ("uuid", "_find_mac_under_heading"),
    ("uuid", "_find_mac"),
    ("uuid", "_popen"),
    ("Cookie", "SerialCookie"),
    ("Cookie", "SmartCookie"),
    // Python 2's `platform._syscmd_uname` passes its argument to a shell (`os.popen`), and
    // its kin run commands.
    ("platform", "_syscmd_file"),
    ("platform", "_syscmd_uname"),
    ("platform", "_syscmd_ver"),
    // Importers by dotted name in Django (the next REDUCE calls what they return), and its
    // logging set-up, which imports and calls a configured function.
    ("django.urls", "get_callable"),
    ("django.urls.utils", "get_callable"),
    ("django.core.files.storage", "get_storage_class"),
    ("django.core.cache.backends.base", "get_key_func"),
    ("django.utils.log", "configure_logging"),
    ("django.db.utils", "load_backend"),
    ("django.contrib.auth", "load_backend"),
    // `exec` of the text given (a default argument's expression runs).
    ("dataclasses", "_create_fn"),
    // Other modules' names for `open` and file writers by path.
    ("tarfile", "bltn_open"),
    ("tokenize", "_builtin_open"),
    ("wave", "Wave_write"),
    ("aifc", "Aifc_write"),
    ("sunau", "Au_write"),
    ("plistlib", "writePlist"),
    // Python 2's `mimetools` runs its command argument (`os.popen`).
    ("mimetools", "pipeto"),
    ("mimetools", "pipethrough"),
    ("werkzeug.utils", "import_string"),
    // Holding the worker for as long as the value says.
    ("time", "sleep"),
    ("select", "select"),
    ("unittest", "main"),
    ("unittest", "TestProgram"),
    // Loaders of nested pickles in common libraries.
    ("numpy", "load"),
    ("numpy", "loads"),
    ("pandas", "read_pickle"),
    ("joblib", "load"),
    ("torch", "load"),
];

/// Dunder names that are safe: `copyreg.__newobj__` appears in ordinary protocol 0/1 pickles.
pub(super) const ALLOWED_DUNDERS: &[(&str, &str)] =
    &[("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__")];

/// Dotted names CPython writes for values of the standard library that the class-only rule
/// would deny: a `zoneinfo.ZoneInfo` pickles as its classmethod `ZoneInfo._unpickle(key,
/// from_cache)`, which looks the key up among the system's time zones (the `backports`
/// package is the same for Python 3.8).
pub(super) const ALLOWED_DOTTED: &[(&str, &str)] = &[
    ("zoneinfo", "ZoneInfo._unpickle"),
    ("backports.zoneinfo", "ZoneInfo._unpickle"),
];

/// The value types of the standard library that pass a route's `only` list without being
/// named there (canonical modules): what CPython 2.7 and 3 write for plain data, datetimes,
/// decimals, UUIDs, collections, compiled patterns, arrays and the UTC zones `py2_utc`
/// converts. The deny rules are applied before this list.
pub(super) const VALUE_TYPES: &[(&str, &str)] = &[
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("builtins", "range"),
    ("builtins", "xrange"),
    ("builtins", "object"),
    ("builtins", "int"),
    ("builtins", "long"),
    ("builtins", "float"),
    ("builtins", "str"),
    ("builtins", "unicode"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("builtins", "tuple"),
    ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("copyreg", "__newobj_ex__"),
    ("codecs", "encode"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "datetime"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("decimal", "Decimal"),
    ("fractions", "Fraction"),
    ("uuid", "UUID"),
    ("uuid", "SafeUUID"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "deque"),
    ("collections", "Counter"),
    ("re", "_compile"),
    ("array", "array"),
    ("array", "_array_reconstructor"),
    ("zoneinfo", "ZoneInfo"),
    ("zoneinfo", "ZoneInfo._unpickle"),
    ("pytz", "_UTC"),
    ("pytz", "_p"),
];

/// Maps a module as written in a pickle to the spelling the deny lists use.
///
/// Python 2 names come from CPython's `Lib/_compat_pickle.py` `IMPORT_MAPPING` (which a Python 3
/// unpickler applies to protocol < 3 streams); platform modules (`posix`, `nt`) and C
/// accelerator modules (`_pickle`, `_io`, `_socket`, ...) map to the module that re-exports them.
/// `exceptions` maps to `builtins` although CPython maps only its exception names: denying
/// `exceptions.eval` as `builtins.eval` costs nothing.
pub(super) fn canonical_module(module: &str) -> &str {
    match module {
        "__builtin__" | "__builtins__" | "exceptions" => "builtins",
        "posix" | "nt" | "_os" => "os",
        "cPickle" | "_pickle" => "pickle",
        "copy_reg" => "copyreg",
        "commands" | "_posixsubprocess" | "_subprocess" | "_winapi" => "subprocess",
        "_operator" => "operator",
        "_io" => "io",
        "_codecs" => "codecs",
        "_socket" => "socket",
        "_ssl" => "ssl",
        "_ctypes" => "ctypes",
        "_imp" | "_frozen_importlib" | "_frozen_importlib_external" => "importlib",
        "thread" | "dummy_thread" | "_dummy_thread" => "_thread",
        "_multiprocessing" => "multiprocessing",
        "_signal" => "signal",
        "_asyncio" => "asyncio",
        "urllib2" => "urllib.request",
        "httplib" => "http.client",
        "SocketServer" => "socketserver",
        "BaseHTTPServer" | "SimpleHTTPServer" | "CGIHTTPServer" => "http.server",
        "StringIO" | "cStringIO" => "io",
        other => other,
    }
}
