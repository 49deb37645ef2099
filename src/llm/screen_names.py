"""The static screen's tables and name rules: which modules, names, attributes and pytest parts code may use.

Kept apart from the checks (`llm.screen`) so the rules can be read in one place. A name is
here for one of four reasons: it reaches the operating system, it hands out frames or
tracebacks (the way to pytest's internals and the harness), it turns data into attribute
names or code (the way around a syntax-level screen), or it changes how pytest reports.
"""
from __future__ import annotations

import re

# top-level modules generated blocks and their tests may import
ALLOWED_IMPORTS = frozenset({
    "__future__", "math", "cmath", "numbers", "typing", "dataclasses", "functools", "itertools", "operator",
    "collections", "enum", "abc", "fractions", "decimal", "statistics", "random", "string", "re", "copy",
    "warnings", "numpy", "tinygrad", "uop_engine", "pytest"})
# parts of allowed packages that reach the OS, foreign code or the network (as `import a.b`,
# `from a import b` or `a.b`)
DENIED_SUBMODULES = ("tinygrad.runtime", "tinygrad.helpers", "tinygrad.device", "tinygrad.engine",
                     "numpy.ctypeslib", "numpy.distutils", "numpy.f2py", "numpy.testing._private.extbuild",
                     "uop_engine.cli", "uop_engine.cli_commands", "uop_engine.pipeline", "uop_engine.logger",
                     "uop_engine.blocklib", "uop_engine.checkpoint", "uop_engine.model_bundle", "uop_engine.fileio")
# functions of allowed packages that run code from strings or files, or start a second pytest
DENIED_QUALIFIED = {
    "numpy.testing.measure": "it runs a string as code", "numpy.testing.runstring": "it runs a string as code",
    "numpy.testing.rundocs": "it runs a file's doctests", "numpy.testing.extbuild": "it compiles C code",
    "numpy.testing.test": "it starts pytest", "numpy.test": "it starts pytest",
    "numpy.testing.decorate_methods": "it rewrites classes", "numpy.testing.overrides": "it rewrites numpy",
    "uop_engine.plugins.load_plugin_file": "it runs a file's code", "uop_engine.plugins.load_plugins":
    "it runs files' code", "uop_engine.plugins.save_plugin": "it writes the block library",
}
DENIED_CALLS = frozenset({"eval", "exec", "compile", "__import__", "open", "getattr", "setattr", "delattr",
                          "globals", "locals", "vars", "breakpoint", "input", "exit", "quit", "help"})
# builtins the checks rely on (`type(x)` with one argument, `bool(...)` as a skipif condition)
PROTECTED_BUILTINS = frozenset({"type", "bool", "isinstance", "issubclass", "super", "object"})
DENIED_ATTRS = frozenset({
    # modules and process / file / network functions
    "os", "sys", "subprocess", "socket", "shutil", "ctypes", "importlib", "builtins", "pathlib", "tempfile",
    "gc", "inspect", "pickle", "marshal", "signal", "threading", "io",
    "system", "popen", "spawnv", "spawnve", "spawnl", "execv", "execve", "execvp", "fork", "forkpty", "kill",
    "killpg", "dlopen", "CDLL", "PyDLL", "cdll", "pythonapi", "autogen", "libc", "environ", "getenv", "putenv",
    "modules", "atomic_write", "unlink", "rmtree", "rmdir", "makedirs", "write_text", "write_bytes", "chmod",
    "chown", "lchown", "mkfifo", "mknod", "listdir", "scandir", "symlink_to", "hardlink_to", "readlink",
    "urlopen", "fetch", "sysexec", "pyimport", "ctypeslib",
    # modules outside the allowlist that allowed modules import (`uop_engine.plugins.logging`)
    "logging", "traceback", "copyreg", "weakref", "contextlib", "linecache", "runpy", "pdb", "bdb",
    "codeop", "dis", "unittest", "doctest", "tokenize", "pkgutil", "zipimport", "faulthandler", "tracemalloc",
    "atexit", "mmap", "multiprocessing", "concurrent", "asyncio", "selectors", "select", "fcntl", "posix",
    "resource", "pty", "sqlite3", "urllib", "http", "zipfile", "tarfile", "sysconfig", "site",
    # frames, tracebacks, code and tracing: the way to pytest's internals and the harness
    "frame", "f_back", "f_globals", "f_locals", "f_code", "f_builtins", "f_trace", "gi_frame", "gi_code",
    "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "currentframe", "walk_stack", "settrace",
    "setprofile", "get_objects", "get_referrers", "get_referents", "tb", "traceback", "exc_info",
    "last_traceback", "last_value", "last_type", "locals", "globals",
    # dynamic attribute access and code from strings, under other names
    "getattr", "setattr", "delattr", "attrgetter", "methodcaller", "get_field", "Formatter", "get_type_hints",
    "ForwardRef", "singledispatch", "singledispatchmethod",
    # data that becomes attribute names: classes or objects built from a dict or keywords
    "update_wrapper", "make_dataclass", "SimpleNamespace", "new_class", "FunctionType", "CodeType",
    "makeLogRecord",
    # pytest internals: loading modules by name, the plugin manager and its hooks
    "importorskip", "register_assert_rewrite", "pluginmanager", "ihook", "hook",
    # raw memory views (read past an array's buffer, or at an address)
    "as_strided", "byte_bounds", "DummyArray", "from_blob"})
# module names that are also ordinary attribute names (`analyze(g).types`): refused only as an
# attribute of an imported module (`uop_engine.plugins.types`)
MODULE_ONLY_DENIED = frozenset({"types", "ast", "code", "codecs", "platform"})
# denied names that are ordinary on the code's own objects (`self.modules = [...]` in a container
# class): allowed as `self.<name>` when the class sets the attribute itself (see llm.screen_self)
SELF_ALLOWED_PUBLIC = frozenset({"modules", "signal", "io", "hook"})
# dunders that may be read as attributes or names (all are plain protocol methods or metadata)
ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__doc__", "__len__", "__repr__", "__str__",
                             "__eq__", "__hash__", "__future__", "__all__", "__version__", "__post_init__"})
# dunder methods a generated class may define: operators and protocols that only see the
# class's own objects. Not allowed: __getattr__/__setattr__/__getattribute__ (library code
# would hand them names and values), __getstate__/__reduce__ (copy would set attributes by
# name), __set_name__/__init_subclass__/__class_getitem__ (class creation hooks), __del__.
DUNDER_DEFS = frozenset({
    "__init__", "__post_init__", "__repr__", "__str__", "__format__", "__hash__", "__bool__", "__len__",
    "__iter__", "__next__", "__reversed__", "__contains__", "__getitem__", "__setitem__", "__delitem__",
    "__missing__", "__call__", "__enter__", "__exit__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
    "__neg__", "__pos__", "__abs__", "__invert__", "__int__", "__float__", "__complex__", "__index__", "__round__",
    "__trunc__", "__floor__", "__ceil__", "__array__",
    *(f"__{p}{op}__" for op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow",
                                "lshift", "rshift", "and", "xor", "or") for p in ("", "r", "i"))})
# the same protocol methods may be called by name (`self.__getitem__(i)`): it is the operator
CALLABLE_DUNDERS = (DUNDER_DEFS | ALLOWED_DUNDERS) - {"__call__"}
# strings that look like dunders but are harmless data
STRING_DUNDERS = ALLOWED_DUNDERS | {"__main__"}
# class-body names that may be set (with literal values only, see llm.screen)
CLASS_DUNDERS = frozenset({"__slots__", "__hash__"})
# fixtures that hand out pytest's session, config or a way to patch anything by name
DENIED_FIXTURES = frozenset({"request", "pytestconfig", "monkeypatch", "pytester", "testdir", "cache",
                             "record_property", "record_testsuite_property", "record_xml_attribute",
                             "doctest_namespace"})
# the parts of pytest tests need; the rest (Config, Session, MonkeyPatch, ExceptionInfo, CallInfo,
# main, Pytester, ...) reaches the running session or runs code
PYTEST_ALLOWED = frozenset({"raises", "approx", "mark", "fixture", "param", "warns", "deprecated_call", "fail", "exit",
                            "skip", "xfail", "RaisesGroup", "RaisesExc", "TempPathFactory", "CaptureFixture",
                            "LogCaptureFixture", "WarningsRecorder", "UsageError", "FixtureLookupError"})
# pytest.mark.* that evaluate their first arguments as code when given strings
EVALUATING_MARKS = frozenset({"skipif", "xfail"})
# metaclasses: only as `metaclass=` of a class statement (called directly they build classes from a dict)
METACLASSES = frozenset({"abc.ABCMeta", "enum.EnumMeta", "enum.EnumType"})
ENUM_BASES = frozenset({"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag",
                        "enum.ReprEnum"})

# "{0._os}" / "{x.__class__}": str.format walks attributes named in the string
_FORMAT_PRIVATE = re.compile(r"\{[^{}]*\.\s*_")


def module_problem(name: str, local: frozenset[str]) -> str | None:
    top = name.split(".")[0]
    if top in local:
        return None
    if top not in ALLOWED_IMPORTS:
        return f"import of '{name}' (allowed: {', '.join(sorted(ALLOWED_IMPORTS))})"
    return qualified_problem(name, "import of")


def qualified_problem(q: str | None, what: str = "use of") -> str | None:
    """Why the library name `q` ("numpy.testing.measure") is refused, or None."""
    if q is None or q.split(".")[0] not in ALLOWED_IMPORTS:
        return None
    top, parts = q.split(".")[0], q.split(".")
    for bad in DENIED_SUBMODULES:
        if q == bad or q.startswith(bad + "."):
            return f"{what} '{q}' (that part of {top} reaches the operating system)"
    for bad, why in DENIED_QUALIFIED.items():
        if q == bad or q.startswith(bad + "."):
            return f"{what} '{q}' ({why})"
    if top == "pytest" and len(parts) > 1 and parts[1] not in PYTEST_ALLOWED and not parts[1].endswith("Warning"):
        return (f"{what} 'pytest.{parts[1]}' (it reaches pytest's running session; tests may use pytest."
                + ", pytest.".join(sorted(PYTEST_ALLOWED - {"RaisesExc", "FixtureLookupError"})) + ")")
    bad = next((p for p in parts[1:] if p in MODULE_ONLY_DENIED), None)
    if bad is not None:
        return f"{what} '{q}' (module '{bad}' is not among the allowed imports)"
    return None


def attr_problem(a: str) -> str | None:
    if a.startswith("__") and a.endswith("__") and a not in CALLABLE_DUNDERS:
        hint = " (use type(x) for x.__class__)" if a == "__class__" else ""
        return f"access to dunder attribute '{a}'{hint}"
    if a.startswith("_") and not (a.startswith("__") and a.endswith("__")):
        return f"access to private attribute '{a}' (names starting with '_' are refused: use the public API)"
    if a in DENIED_ATTRS:
        return f"access to attribute '{a}'"
    return None


def string_problem(s: str) -> str | None:
    # a dunder name built from pieces; text with spaces (docstrings, messages) is no attribute name
    if len(s) >= 2 and (s.startswith("__") or s.endswith("__")) and s not in STRING_DUNDERS \
            and not any(c.isspace() for c in s):
        return f"string {s[:60]!r} that starts or ends with '__' (dunder names may not be built from strings)"
    if "{" in s and _FORMAT_PRIVATE.search(s):
        return f"format field reaching a private attribute in {s[:60]!r}"
    return None
