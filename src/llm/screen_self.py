"""When `self._name` is safe to allow in generated classes (for `llm.screen`).

`self._cache = {}` in a method is ordinary Python, but a method is also a plain function:
`Block.get(collections)` runs `get` with `self` bound to the `collections` module, so a
method reading `self._sys` reads `collections._sys`. An access on `self` is therefore
allowed only when all of these hold:
- `self` is the first parameter of a method (not a staticmethod) and is never rebound in it
  (no assignment, no nested parameter, global or import of that name);
- the class (or a base class in the same file) sets or defines the attribute itself
  (`self._cache = ...` in a method, or `_cache = ...`/`def _cache` in the class body);
- no object of the libraries the code can reach uses that name: the name is looked up among
  the private names of every loaded module, class and function of the installation
  (`library_private_names`), so an unbound call can only reach attributes of the code's own
  objects. `self.__x` (Python's class-private form, stored as `_Class__x`) collides far less.
"""
from __future__ import annotations

import ast
import functools
import os
import sys

# what the sandboxed child loads before generated code runs (llm.sandbox_boot._preload),
# so the scan sees the same libraries the code can reach
# (and the parts tests load later: numpy's submodules, tinygrad's optimizers, every engine module)
_SCAN_IMPORTS = ("numpy", "numpy.testing", "numpy.fft", "numpy.linalg", "numpy.polynomial", "numpy.random",
                 "numpy.ma", "numpy.lib", "numpy.char", "numpy.rec", "numpy.strings", "numpy.dtypes", "numpy.emath",
                 "pytest", "_pytest.config", "pluggy", "tinygrad", "tinygrad.tensor", "tinygrad.nn",
                 "tinygrad.nn.state", "tinygrad.nn.optim", "tinygrad.engine.realize", "tinygrad.engine.jit",
                 "tinygrad.runtime.ops_python", "uop_engine", "uop_engine.ops", "uop_engine.plugins", "math", "cmath",
                 "numbers", "typing", "dataclasses", "functools", "itertools", "operator", "collections", "enum",
                 "abc", "fractions", "decimal", "statistics", "random", "string", "re", "copy", "warnings")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@functools.lru_cache(maxsize=1)
def library_private_names() -> frozenset[str]:
    """Every private attribute name (`_x`, `_Class__x`) the reachable libraries define or use.

    Scanned in a fresh interpreter that loads what the sandboxed child loads, so the answer does
    not depend on what this process happened to import before (KNIME, a test suite, torch...)."""
    import json
    import subprocess
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys, json; sys.path.insert(0, {src!r}); from llm.screen_self import scan_private_names; "
            "print(json.dumps(sorted(scan_private_names())))")
    env = {"PATH": os.environ.get("PATH", ""), "DEV": "PYTHON", "PARALLEL": "0"}  # as the sandboxed child
    try:
        out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300, env=env)
        return frozenset(json.loads(out.stdout.strip().splitlines()[-1]))
    except Exception:  # no subprocess possible here: scan this process (a superset of what the child loads)
        return scan_private_names()


def scan_private_names() -> frozenset[str]:
    """The scan behind `library_private_names`, over the modules loaded in this process."""
    import importlib
    import types
    for m in _SCAN_IMPORTS:
        try:
            importlib.import_module(m)
        except Exception:  # an optional part missing here: scan what is there
            pass
    try:  # every module of the engine (importing them has no side effects)
        import uop_engine
        for f in sorted(os.listdir(os.path.dirname(uop_engine.__file__))):
            if f.endswith(".py") and f != "__init__.py":
                try:
                    importlib.import_module(f"uop_engine.{f[:-3]}")
                except Exception:
                    pass
    except ImportError:
        pass
    try:  # pytest's own plugins, which the child's pytest.main loads
        from _pytest.config import default_plugins
        for p in default_plugins:
            try:
                importlib.import_module(f"_pytest.{p}")
            except Exception:
                pass
    except ImportError:
        pass
    names: set[str] = set()
    seen: set[int] = set()

    def code(co) -> None:
        if id(co) in seen:
            return
        seen.add(id(co))
        names.update(n for n in co.co_names if _private(n))
        for c in co.co_consts:
            if isinstance(c, types.CodeType):
                code(c)

    def value(v) -> None:  # only known kinds: getattr on any object could run its code
        if isinstance(v, (staticmethod, classmethod)):
            v = v.__func__
        if isinstance(v, property):
            for f in (v.fget, v.fset, v.fdel):
                value(f)
        elif isinstance(v, types.FunctionType):
            code(v.__code__)

    for mod in list(sys.modules.values()):
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for k, v in list(d.items()):
            if _private(k):
                names.add(k)
            value(v)
            if isinstance(v, type):
                for kk, vv in list(vars(v).items()):
                    if _private(kk):
                        names.add(kk)
                    value(vv)
            elif not isinstance(v, (types.ModuleType, types.FunctionType)):
                try:  # module-level objects (pytest.mark's generator holds the running config)
                    inst = object.__getattribute__(v, "__dict__")
                except Exception:  # no __dict__ (or a proxy): nothing stored by name
                    continue
                if isinstance(inst, dict):
                    names.update(k2 for k2 in inst if isinstance(k2, str) and _private(k2))
    return frozenset(names)


class SelfAccess:
    """Which `<self>.<name>` nodes of a file are accesses to the code's own objects."""

    def __init__(self, tree: ast.AST):
        self.receivers: dict[int, ast.ClassDef] = {}  # id(Name node of self) -> its class
        self.owned: dict[int, set[str]] = {}           # id(ClassDef) -> attribute names it sets itself
        classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        by_name = {c.name: c for c in classes}
        own: dict[int, set[str]] = {}
        for cls in classes:
            names = own.setdefault(id(cls), set())
            for stmt in cls.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(stmt.name)
                elif isinstance(stmt, ast.Assign):
                    names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
                elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    names.add(stmt.target.id)
            for fn in cls.body:
                me = _self_param(fn)
                if me is None:
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                            and node.value.id == me:
                        self.receivers[id(node.value)] = cls
                        if isinstance(node.ctx, ast.Store):
                            names.add(node.attr)
        for cls in classes:  # attributes set by a base class in the same file count too
            names, todo, seen = set(own[id(cls)]), list(cls.bases), set()
            while todo:
                b = todo.pop()
                if isinstance(b, ast.Name) and b.id in by_name and b.id not in seen:
                    seen.add(b.id)
                    names |= own[id(by_name[b.id])]
                    todo.extend(by_name[b.id].bases)
            self.owned[id(cls)] = names

    def problem(self, node: ast.Attribute) -> str | None:
        """None when `node` (an attribute on a method's `self`) may use its private/denied name."""
        cls = self.receivers.get(id(node.value))
        if cls is None:
            return "not on the method's own `self`"
        if node.attr not in self.owned[id(cls)]:
            return f"class '{cls.name}' does not set '{node.attr}' itself"
        stored = node.attr
        if node.attr.startswith("__") and not node.attr.endswith("__"):
            stored = f"_{cls.name.lstrip('_')}{node.attr}"  # Python's name mangling
        if _private(stored) and stored in library_private_names():
            return f"'{stored}' is also a private name in the libraries (an unbound call could reach theirs)"
        return None


def _self_param(fn: ast.AST) -> str | None:
    """The name of a method's first parameter when it is never rebound, else None."""
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    for d in fn.decorator_list:
        if isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod") or \
                isinstance(d, ast.Attribute) and d.attr in ("staticmethod", "classmethod"):
            return None
    pos = [*fn.args.posonlyargs, *fn.args.args]
    if not pos:
        return None
    me = pos[0].arg
    for node in ast.walk(fn):
        if isinstance(node, ast.arg) and node.arg == me and node is not pos[0]:
            return None
        if isinstance(node, ast.Name) and node.id == me and not isinstance(node.ctx, ast.Load):
            return None
        if isinstance(node, (ast.Global, ast.Nonlocal)) and me in node.names:
            return None
        if isinstance(node, ast.ExceptHandler) and node.name == me:
            return None
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == me for a in node.names):
            return None
        if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name == me:
            return None
        if isinstance(node, ast.MatchMapping) and node.rest == me:
            return None
    return me
