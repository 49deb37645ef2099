"""Static screen of generated Python source, run before anything executes.

The screen is the first of three walls (then the audit hook in the sandboxed child, see
`llm.sandbox_boot`, then the kernel fences of `llm.oslimits`). It refuses:
- imports outside a short allowlist, and the parts of allowed packages that reach the OS;
- the builtins that reach around it (eval, exec, open, __import__, getattr, vars, ...) and
  their library twins (`operator.attrgetter`/`methodcaller`, `string.Formatter.get_field`,
  `typing.get_type_hints` and `pytest.mark.skipif("...")`, which evaluate strings);
- every attribute whose name starts with `_` except a few harmless dunders (`__init__`,
  `__name__`, ...), which closes `().__class__.__subclasses__()` and `random._os`;
- attribute names that lead to processes, files, frames or foreign code;
- changing imported modules (`np.testing.assert_allclose = ...`), pytest hooks,
  `pytest_plugins` and fixtures that reach pytest's internals (`request`, `monkeypatch`):
  these could make failing tests report as passing.
It is a syntax-level check, so it can be fooled by code it never sees as such; the walls
behind it do not depend on it.
"""
from __future__ import annotations

import ast
import re

# top-level modules generated blocks and their tests may import
ALLOWED_IMPORTS = frozenset({
    "__future__", "math", "cmath", "numbers", "typing", "dataclasses", "functools", "itertools", "operator",
    "collections", "enum", "abc", "fractions", "decimal", "statistics", "random", "string", "re", "copy",
    "warnings", "numpy", "tinygrad", "uop_engine", "pytest"})
# parts of allowed packages that reach the OS, foreign code or the network
DENIED_SUBMODULES = ("tinygrad.runtime", "tinygrad.helpers", "tinygrad.device", "tinygrad.engine",
                     "numpy.ctypeslib", "numpy.distutils", "numpy.f2py", "numpy.testing._private.extbuild",
                     "uop_engine.cli", "uop_engine.cli_commands", "uop_engine.pipeline", "uop_engine.logger",
                     "uop_engine.blocklib", "uop_engine.checkpoint", "uop_engine.model_bundle", "uop_engine.fileio")
DENIED_CALLS = frozenset({"eval", "exec", "compile", "__import__", "open", "getattr", "setattr", "delattr",
                          "globals", "locals", "vars", "breakpoint", "input", "exit", "quit", "help"})
DENIED_ATTRS = frozenset({
    # modules and process / file / network functions
    "os", "sys", "subprocess", "socket", "shutil", "ctypes", "importlib", "builtins", "pathlib", "tempfile",
    "gc", "inspect", "pickle", "marshal", "signal", "threading", "io",
    "system", "popen", "spawnv", "spawnve", "spawnl", "execv", "execve", "execvp", "fork", "forkpty", "kill",
    "killpg", "dlopen", "CDLL", "PyDLL", "cdll", "pythonapi", "autogen", "libc", "environ", "getenv", "putenv",
    "modules", "atomic_write", "unlink", "rmtree", "rmdir", "makedirs", "write_text", "write_bytes", "chmod",
    "chown", "lchown", "mkfifo", "mknod", "listdir", "scandir", "symlink_to", "hardlink_to", "readlink",
    "urlopen", "fetch", "sysexec", "pyimport",
    # frames, code and tracing: the way to the sandbox's own state
    "frame", "f_back", "f_globals", "f_locals", "f_code", "f_builtins", "f_trace", "gi_frame", "gi_code",
    "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "currentframe", "walk_stack", "settrace",
    "setprofile", "get_objects", "get_referrers", "get_referents",
    # dynamic attribute access and code from strings, under other names
    "getattr", "setattr", "delattr", "attrgetter", "methodcaller", "get_field", "Formatter", "get_type_hints",
    "ForwardRef", "singledispatch", "singledispatchmethod",
    # pytest internals: loading modules by name, the plugin manager and its hooks
    "importorskip", "register_assert_rewrite", "pluginmanager", "ihook", "hook",
    # raw memory views (read past an array's buffer)
    "as_strided", "byte_bounds"})
ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__doc__", "__call__", "__len__", "__repr__", "__str__",
                             "__eq__", "__hash__", "__future__", "__all__", "__version__", "__post_init__"})
# fixtures that hand out pytest's session, config or a way to patch anything by name
DENIED_FIXTURES = frozenset({"request", "pytestconfig", "monkeypatch", "pytester", "testdir", "cache",
                             "record_property", "record_testsuite_property", "record_xml_attribute",
                             "doctest_namespace"})
# "{0._os}" / "{x.__class__}": str.format walks attributes named in the string
_FORMAT_PRIVATE = re.compile(r"\{[^{}]*[.\[]\s*_")


def _module_ok(name: str, local: frozenset[str]) -> str | None:
    top = name.split(".")[0]
    if top in local:
        return None
    if top not in ALLOWED_IMPORTS:
        return f"import of '{name}' (allowed: {', '.join(sorted(ALLOWED_IMPORTS))})"
    for bad in DENIED_SUBMODULES:
        if name == bad or name.startswith(bad + "."):
            return f"import of '{name}' (that part of {top} reaches the operating system)"
    return None


def _root_name(node: ast.AST) -> str | None:
    """`np` for `np.testing.assert_allclose` (through attributes, subscripts and calls)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _imported_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    return names


def _attr_problem(a: str) -> str | None:
    if a.startswith("__") and a.endswith("__") and a not in ALLOWED_DUNDERS:
        return f"access to dunder attribute '{a}'"
    if a.startswith("_") and a not in ALLOWED_DUNDERS:
        return f"access to private attribute '{a}' (names starting with '_' are refused: use the public API)"
    if a in DENIED_ATTRS:
        return f"access to attribute '{a}'"
    return None


def _check(tree: ast.AST, local: frozenset[str], bad) -> None:
    imported = _imported_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if (msg := _module_ok(a.name, local)):
                    bad(node, msg)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                bad(node, "relative import (import the module by name)")
            elif (msg := _module_ok(node.module or "", local)):
                bad(node, msg)
            else:
                for a in node.names:
                    if a.name == "*" and node.module.split(".")[0] not in local:
                        bad(node, f"import of '*' from '{node.module}'")
                    elif a.name != "*" and (msg := _attr_problem(a.name)):
                        bad(node, f"import of '{a.name}' from '{node.module}' ({msg})")
        elif isinstance(node, ast.Name) and node.id in DENIED_CALLS:
            bad(node, f"use of builtin '{node.id}'")
        elif isinstance(node, ast.Name) and node.id.startswith("__") and node.id not in ALLOWED_DUNDERS:
            bad(node, f"use of '{node.id}'")
        elif isinstance(node, ast.Name) and node.id == "pytest_plugins":
            bad(node, "pytest_plugins (tests may not load pytest plugins)")
        elif isinstance(node, ast.Attribute):
            if (msg := _attr_problem(node.attr)):
                bad(node, msg)
            if isinstance(node.ctx, (ast.Store, ast.Del)) and _root_name(node.value) in imported:
                bad(node, f"changing attribute '{node.attr}' of imported '{_root_name(node.value)}' (imported "
                          "modules and their objects may not be modified: it could make failing tests pass)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            s = node.value
            if s.startswith("__") and s.endswith("__") and s not in ALLOWED_DUNDERS and len(s) > 4:
                bad(node, f"dunder name in a string ({s!r})")
            elif "{" in s and _FORMAT_PRIVATE.search(s):
                bad(node, f"format field reaching a private attribute in {s[:60]!r}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("pytest_"):
                bad(node, f"pytest hook '{node.name}' (tests may not change how pytest runs)")
            for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
                if arg.arg in DENIED_FIXTURES:
                    bad(arg, f"fixture or parameter '{arg.arg}' (it reaches pytest's internals)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr == "skipif" or node.func.attr == "xfail" and _root_name(node.func) != "pytest"
                or node.func.attr == "xfail" and isinstance(node.func.value, ast.Attribute)):
            cond = node.args[:1] + [k.value for k in node.keywords if k.arg == "condition"]
            if any(isinstance(c, ast.Constant) and isinstance(c.value, str) for c in cond):
                bad(node, f"string condition in pytest.mark.{node.func.attr} (pytest evaluates it as code: "
                          "pass a bool)")
        # annotations written as strings are code to typing and dataclasses: screen them as code
        for ann in _string_annotations(node):
            try:
                sub = ast.parse(ann.value, mode="eval")
            except SyntaxError:
                bad(ann, f"annotation string that is not an expression ({ann.value[:40]!r})")
                continue
            for n in ast.walk(sub):  # report at the annotation's line
                ast.copy_location(n, ann)
            _check(sub, local, bad)


def _string_annotations(node: ast.AST) -> list[ast.Constant]:
    anns = []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        anns.append(node.returns)
    elif isinstance(node, ast.arg):
        anns.append(node.annotation)
    elif isinstance(node, ast.AnnAssign):
        anns.append(node.annotation)
    return [a for a in anns if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def screen_source(source: str, filename: str = "<generated>", local_modules=()) -> list[str]:
    """Problems found in `source` as 'file:line: what' strings (empty = passes the screen).

    `local_modules`: names of the other generated files, which may import each other.
    A syntax error is reported as a problem too (the code cannot run anyway)."""
    local = frozenset(local_modules)
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        return [f"{filename}:{e.lineno}: syntax error: {e.msg}"]
    found: set[tuple[int, int, int, str]] = set()

    def bad(node: ast.AST, what: str) -> None:  # (line, start, end): `a._b.c` names `_b` before `c`
        found.add((getattr(node, "lineno", 0), getattr(node, "col_offset", 0),
                   getattr(node, "end_col_offset", 0) or 0, what))

    _check(tree, local, bad)
    # in source order, so the first problem named is the first one a reader meets
    return list(dict.fromkeys(f"{filename}:{line}: {what}" for line, _, _, what in sorted(found)))


def screen_files(files: dict[str, str]) -> list[str]:
    """Screen every .py file of a generated set (names are file names such as 'my_block.py')."""
    local = {n[:-3] for n in files if n.endswith(".py")}
    problems: list[str] = []
    for name, src in files.items():
        if name.endswith(".py"):
            problems += screen_source(src, name, local)
    return problems
