"""Static screen of generated Python source, run before anything executes.

The screen is the first of two walls (the second is the audit hook in the sandboxed child,
see `llm.sandbox_boot`): it refuses imports outside a short allowlist, the builtins that
reach around it (eval, exec, open, __import__, getattr, ...), introspection through dunder
attributes (the classic `().__class__.__bases__[0].__subclasses__()` escape) and attribute
names that lead to processes, files or foreign code through allowed modules. It is a
syntax-level check, so it can be fooled by code it never sees as such; the runtime guard
does not depend on it.
"""
from __future__ import annotations

import ast

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
    "os", "sys", "subprocess", "socket", "shutil", "ctypes", "importlib", "builtins", "pathlib", "tempfile",
    "system", "popen", "spawnv", "spawnve", "spawnl", "execv", "execve", "execvp", "fork", "forkpty", "kill",
    "killpg", "dlopen", "CDLL", "PyDLL", "cdll", "pythonapi", "autogen", "libc", "environ", "getenv", "putenv",
    "modules", "atomic_write", "unlink", "rmtree", "rmdir", "makedirs", "write_text", "write_bytes", "chmod",
    "urlopen", "fetch", "frame", "f_globals", "f_locals", "f_back", "gi_frame", "cr_frame", "tb_frame"})
ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__doc__", "__call__", "__len__", "__repr__", "__str__",
                             "__eq__", "__hash__", "__future__", "__all__", "__version__", "__post_init__"})


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


def screen_source(source: str, filename: str = "<generated>", local_modules=()) -> list[str]:
    """Problems found in `source` as 'file:line: what' strings (empty = passes the screen).

    `local_modules`: names of the other generated files, which may import each other.
    A syntax error is reported as a problem too (the code cannot run anyway)."""
    local = frozenset(local_modules)
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        return [f"{filename}:{e.lineno}: syntax error: {e.msg}"]
    found: list[tuple[int, int, int, str]] = []

    def bad(node: ast.AST, what: str) -> None:
        found.append((getattr(node, "lineno", 0), getattr(node, "col_offset", 0),
                      getattr(node, "end_col_offset", 0) or 0, what))

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
                    if a.name in DENIED_ATTRS or a.name == "*" and node.module.split(".")[0] not in local:
                        bad(node, f"import of '{a.name}' from '{node.module}'")
        elif isinstance(node, ast.Name) and node.id in DENIED_CALLS:
            bad(node, f"use of builtin '{node.id}'")
        elif isinstance(node, ast.Name) and node.id.startswith("__") and node.id not in ALLOWED_DUNDERS:
            bad(node, f"use of '{node.id}'")
        elif isinstance(node, ast.Attribute):
            a = node.attr
            if a.startswith("__") and a.endswith("__") and a not in ALLOWED_DUNDERS:
                bad(node, f"access to dunder attribute '{a}'")
            elif a in DENIED_ATTRS:
                bad(node, f"access to attribute '{a}'")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("__") \
                and node.value.endswith("__") and node.value not in ALLOWED_DUNDERS and len(node.value) > 4:
            bad(node, f"dunder name in a string ({node.value!r})")
    # in source order, so the first problem named is the first one a reader meets
    return [f"{filename}:{line}: {what}" for line, _, _, what in sorted(found)]


def screen_files(files: dict[str, str]) -> list[str]:
    """Screen every .py file of a generated set (names are file names such as 'my_block.py')."""
    local = {n[:-3] for n in files if n.endswith(".py")}
    problems: list[str] = []
    for name, src in files.items():
        if name.endswith(".py"):
            problems += screen_source(src, name, local)
    return problems
