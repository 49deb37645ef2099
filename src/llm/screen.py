"""Static screen of generated Python source, run before anything executes.

The screen is the first of the sandbox's walls (then the child process and its limits, the
kernel fences of `llm.oslimits`, the audit hook of `llm.sandbox_guard`). It refuses:
- imports outside a short allowlist, and the parts of allowed packages that reach the OS,
  however they are named (`import numpy.ctypeslib`, `from numpy import ctypeslib`, `np.ctypeslib`);
- the builtins that reach around it (eval, exec, open, __import__, getattr, vars, ...) and
  their library twins: everything that turns data into attribute names (`operator.attrgetter`,
  `functools.update_wrapper`, `wraps(..., assigned=...)`, three-argument `type()`, metaclass
  calls, functional `Enum` with computed names, `make_dataclass`, `SimpleNamespace`), strings
  that form dunder names (`'__array_' + 'interface__'`), dunder methods beyond plain operators
  (`__getattr__`, `__reduce__`, ... would be handed names and values by library code), and
  the functions that run strings or files as code (`numpy.testing.measure`, skipif strings);
- every attribute whose name starts with `_` except a few harmless dunders, and names that
  lead to processes, files, frames or tracebacks (`f_back`, `tb`, `traceback`, `exc_info`), so
  generated code cannot walk up to pytest's session; `self._x` on the code's own classes is
  allowed under the conditions of `llm.screen_self`;
- changing imported modules, also through aliases (`t = np.testing; t.x = ...`), pytest hooks,
  `pytest_plugins`, pytest's internals (anything but raises/approx/mark/fixture/...), and
  fixtures that reach them (`request`, `monkeypatch`).
It is a syntax-level check, so code it never sees as such (a string built at run time) can
fool it; the walls behind it do not depend on it (docs/security.md).
"""
from __future__ import annotations

import ast

from .screen_flow import Bindings, annotation_nodes, constant_names, fold_str, parents, surely_bool
from .screen_names import (ALLOWED_DUNDERS, ALLOWED_IMPORTS, CLASS_DUNDERS, DENIED_ATTRS, DENIED_CALLS,
                           DENIED_FIXTURES, DENIED_SUBMODULES, DUNDER_DEFS, ENUM_BASES, EVALUATING_MARKS, METACLASSES,
                           PROTECTED_BUILTINS, SELF_ALLOWED_PUBLIC, attr_problem, module_problem,
                           qualified_problem, string_problem)
from .screen_self import SelfAccess

__all__ = ["screen_source", "screen_files", "ALLOWED_IMPORTS", "ALLOWED_DUNDERS", "DENIED_FIXTURES",
           "DENIED_ATTRS", "DENIED_CALLS", "DENIED_SUBMODULES"]

class _Screen:
    """One pass over one file's syntax tree; problems go to `bad(node, what)`."""

    def __init__(self, tree: ast.AST, local: frozenset[str], bad):
        self.tree, self.local, self.bad = tree, local, bad
        self.b = Bindings(tree)
        self.parent = parents(tree)
        self.in_annotation = annotation_nodes(tree)
        self.selves = SelfAccess(tree)
        self.shadowed = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        self.imported = set(self.b.names) - self.b.aliases
        self.enums = self._local_enums()

    def _local_enums(self) -> set[str]:
        out: set[str] = set()
        classes = [n for n in ast.walk(self.tree) if isinstance(n, ast.ClassDef)]
        changed = True
        while changed:
            changed = False
            for c in classes:
                if c.name not in out and any(self.b.resolve(x) in ENUM_BASES or isinstance(x, ast.Name) and x.id in out
                                             for x in c.bases):
                    out.add(c.name)
                    changed = True
        return out

    def run(self) -> None:
        for node in ast.walk(self.tree):
            kind = type(node).__name__
            check = getattr(self, f"_{kind}", None)
            if check is not None:
                check(node)
            for ann in _string_annotations(node):  # string annotations are code to typing/dataclasses
                self._annotation(ann)

    # --- imports ---------------------------------------------------------------------------------
    def _Import(self, node: ast.Import) -> None:
        for a in node.names:
            if (msg := module_problem(a.name, self.local)):
                self.bad(node, msg)

    def _ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            return self.bad(node, "relative import (import the module by name)")
        if (msg := module_problem(node.module or "", self.local)):
            return self.bad(node, msg)
        for a in node.names:
            if a.name == "*":
                if node.module.split(".")[0] not in self.local:
                    self.bad(node, f"import of '*' from '{node.module}'")
            elif (msg := attr_problem(a.name)):
                self.bad(node, f"import of '{a.name}' from '{node.module}' ({msg})")
            elif (msg := qualified_problem(f"{node.module}.{a.name}", "import of")):
                self.bad(node, msg)

    # --- names and attributes ----------------------------------------------------------------------
    def _Name(self, node: ast.Name) -> None:
        n, store = node.id, not isinstance(node.ctx, ast.Load)
        if n in DENIED_CALLS:
            self.bad(node, f"use of builtin '{n}'")
        elif n.startswith("__") and n not in ALLOWED_DUNDERS and not (n in CLASS_DUNDERS and self._class_literal(node)):
            self.bad(node, f"use of '{n}'")
        elif n == "pytest_plugins":
            self.bad(node, "pytest_plugins (tests may not load pytest plugins)")
        elif n in PROTECTED_BUILTINS and store:
            self.bad(node, f"rebinding the builtin '{n}' (the screen relies on it: use another name)")
        elif n == "type" and not store:
            self._type_use(node)
        elif not store:
            self._reference(node, self.b.resolve(node))

    def _Attribute(self, node: ast.Attribute) -> None:
        msg = attr_problem(node.attr)
        if msg and (node.attr.startswith("_") or node.attr in SELF_ALLOWED_PUBLIC) \
                and not (node.attr.startswith("__") and node.attr.endswith("__")):
            why = self.selves.problem(node)
            if why is None:
                msg = None
            elif not why.startswith("not on"):
                msg = f"access to '{node.attr}' on self: {why}; use another name"
        if msg:
            self.bad(node, msg)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            q, root = self.b.resolve(node.value), _root_name(node.value)
            if q is not None or root in self.b.names:
                self.bad(node, f"changing attribute '{node.attr}' of imported '{q or root}' (imported modules and "
                               "their objects may not be modified, also not through an alias: it could make "
                               "failing tests pass)")
        elif qualified_problem(self.b.resolve(node.value)) is None:  # name a refused part only once
            self._reference(node, self.b.resolve(node))
        if node.attr in EVALUATING_MARKS:
            self._mark_reference(node)

    def _reference(self, node: ast.AST, q: str | None) -> None:
        """A library name used in the code: refused parts, metaclasses, wraps outside a decorator."""
        if q is None:
            return
        if (msg := qualified_problem(q)):
            return self.bad(node, msg)
        p = self.parent.get(id(node))
        if q in METACLASSES and not (isinstance(p, ast.keyword) and p.arg == "metaclass"):
            self.bad(node, f"use of '{q}' other than as metaclass= of a class (called, it builds a class from a "
                           "dict of names)")
        elif q == "functools.wraps" and not self._is_plain_wraps(node, p):
            self.bad(node, "functools.wraps other than as @functools.wraps(f) on a function (with assigned= or "
                           "updated= it copies any attribute by name)")
        elif q.startswith("pytest.mark.") and q.split(".")[2] in EVALUATING_MARKS \
                and not isinstance(node, ast.Attribute):
            self._mark_reference(node)

    def _is_plain_wraps(self, node: ast.AST, p: ast.AST | None) -> bool:
        if not (isinstance(p, ast.Call) and p.func is node and len(p.args) == 1 and not p.keywords
                and not isinstance(p.args[0], ast.Starred)):
            return False
        deco = self.parent.get(id(p))
        return isinstance(deco, (ast.FunctionDef, ast.AsyncFunctionDef)) and p in deco.decorator_list

    def _mark_reference(self, node: ast.AST) -> None:
        """skipif/xfail may be called or used bare as a mark, but not bound to another name."""
        p = self.parent.get(id(node))
        if isinstance(p, ast.Call) and p.func is node:
            return
        if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node in p.decorator_list:
            return
        up = self.parent.get(id(p)) if isinstance(p, (ast.List, ast.Tuple)) else None
        holder = up if up is not None else p
        if isinstance(holder, ast.keyword) and holder.arg == "marks":
            return
        if isinstance(holder, ast.Assign) and all(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                  for t in holder.targets):
            return
        name = node.attr if isinstance(node, ast.Attribute) else node.id
        self.bad(node, f"pytest.mark.{name} used other than where it is called (through an alias it could be "
                       "given a string condition, which pytest runs as code)")

    def _class_literal(self, node: ast.Name) -> bool:
        """`__slots__ = ('a', 'b')` / `__hash__ = None` in a class body, with literal values only."""
        assign = self.parent.get(id(node))
        if not (isinstance(assign, ast.Assign) and isinstance(self.parent.get(id(assign)), ast.ClassDef)
                and isinstance(node.ctx, ast.Store)):
            return False
        v = assign.value
        if node.id == "__hash__":
            return isinstance(v, ast.Constant) and v.value is None
        elts = v.elts if isinstance(v, (ast.Tuple, ast.List)) else [v]
        return all(isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value.isidentifier()
                   and not e.value.startswith("__") for e in elts)

    def _type_use(self, node: ast.Name) -> None:
        p = self.parent.get(id(node))
        if id(node) in self.in_annotation or isinstance(p, ast.Compare):
            return
        if isinstance(p, ast.Call) and p.func is node:
            if len(p.args) != 1 or p.keywords or isinstance(p.args[0], ast.Starred):
                self.bad(node, "type() with more than one argument (it builds a class from a dict of names: "
                               "write a class statement)")
            return
        call = self.parent.get(id(p)) if isinstance(p, ast.Tuple) else p
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in (
                "isinstance", "issubclass"):
            return
        self.bad(node, "the builtin 'type' other than as type(x), in isinstance() or in annotations")

    # --- definitions -------------------------------------------------------------------------------
    def _FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name.startswith("pytest_"):
            self.bad(node, f"pytest hook '{node.name}' (tests may not change how pytest runs)")
        if node.name.startswith("__") and node.name.endswith("__") and node.name not in DUNDER_DEFS:
            self.bad(node, f"defining '{node.name}' (library code would call it with names or values of its own; "
                           "allowed special methods are operators, containers, __init__, __repr__, __call__, "
                           "__enter__/__exit__, __array__)")
        elif node.name in PROTECTED_BUILTINS:
            self.bad(node, f"rebinding the builtin '{node.name}' (use another name)")
        for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
            if arg.arg in DENIED_FIXTURES:
                self.bad(arg, f"fixture or parameter '{arg.arg}' (it reaches pytest's internals)")

    _AsyncFunctionDef = _FunctionDef

    def _arg(self, node: ast.arg) -> None:
        if node.arg in PROTECTED_BUILTINS:
            self.bad(node, f"parameter named like the builtin '{node.arg}' (use another name)")
        elif node.arg.startswith("__") and node.arg not in ALLOWED_DUNDERS:
            self.bad(node, f"parameter '{node.arg}'")

    def _ClassDef(self, node: ast.ClassDef) -> None:
        if node.name in PROTECTED_BUILTINS:
            self.bad(node, f"rebinding the builtin '{node.name}' (use another name)")
        for k in node.keywords:
            if k.arg == "metaclass" and self.b.resolve(k.value) != "abc.ABCMeta":
                self.bad(node, "a metaclass other than abc.ABCMeta")
            elif k.arg is None:
                self.bad(node, "class keywords from ** (write them out)")
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id == "type" or self.b.resolve(base) in METACLASSES:
                self.bad(node, f"class '{node.name}' derives from a metaclass (metaclasses build classes from "
                               "names)")
            elif isinstance(base, ast.Starred):
                self.bad(node, "class bases from * (write them out)")

    def _keyword(self, node: ast.keyword) -> None:
        if node.arg and node.arg.startswith("__") and node.arg.endswith("__") and node.arg not in ALLOWED_DUNDERS:
            self.bad(node.value, f"keyword argument '{node.arg}' (dunder names may not be passed as data)")

    # --- calls -------------------------------------------------------------------------------------
    def _Call(self, node: ast.Call) -> None:
        f = node.func
        q = self.b.resolve(f)
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if q is not None and q.startswith("pytest.mark.") and q.count(".") == 2:
            name = q.split(".")[2]  # an alias (`sk = pytest.mark.skipif`) is judged as what it stands for
        spread = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
        if name in EVALUATING_MARKS and (q is None or q.startswith("pytest.mark.")):
            conds = node.args + [k.value for k in node.keywords if k.arg == "condition"]
            if spread or not all(surely_bool(c, self.shadowed) for c in conds):
                self.bad(node, f"condition of pytest.mark.{name} that may be a string (pytest evaluates a string "
                               "condition as code: pass a bool, e.g. bool(x) or not x, and no *args)")
        elif name == "filterwarnings" and (q == "pytest.mark.filterwarnings" or q is None and isinstance(
                f, ast.Attribute) and isinstance(f.value, ast.Attribute) and f.value.attr == "mark"):
            self._filterwarnings(node, spread)
        if isinstance(f, ast.Call) and isinstance(f.func, ast.Name) and f.func.id == "type" and (
                len(node.args) == 3 or spread):
            self.bad(node, "calling the class of an object with three arguments or * (type(x) may be a metaclass, "
                           "which builds a class from a dict of names)")
        if q in ENUM_BASES or isinstance(f, ast.Name) and f.id in self.enums:
            self._enum_call(node, spread)
        if isinstance(f, ast.Attribute) and f.attr == "join":
            self._folded(node)

    def _filterwarnings(self, node: ast.Call, spread: bool) -> None:
        # pytest imports the module named in the category field ("ignore::mod.Warning")
        for a in node.args:
            s = fold_str(a)
            if spread or s is None:
                return self.bad(node, "pytest.mark.filterwarnings with a filter that is not a string literal")
            parts = s.split(":")
            cat = parts[2].strip() if len(parts) > 2 else ""
            if "." in cat and not (cat.split(".")[0] in ("numpy", "pytest") and "_" not in cat):
                self.bad(node, f"warning category '{cat}' in pytest.mark.filterwarnings (pytest imports the module "
                               "it names: use a builtin warning class or one of numpy/pytest)")

    def _enum_call(self, node: ast.Call, spread: bool) -> None:
        names = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "names"),
                                                             None)
        if names is None and not spread:
            return  # Color(1): a member lookup
        members = None if spread else constant_names(names)
        if members is None:
            self.bad(node, "functional Enum whose member names are not written out (names built at run time "
                           "could be dunders)")
        elif any(m.startswith("_") for m in members):
            self.bad(node, f"functional Enum with member names starting with '_' ({members})")

    # --- strings -------------------------------------------------------------------------------------
    def _Constant(self, node: ast.Constant) -> None:
        v = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
        if isinstance(v, str) and (msg := string_problem(v)):
            self.bad(node, msg)

    def _BinOp(self, node: ast.BinOp) -> None:
        self._folded(node)

    def _JoinedStr(self, node: ast.JoinedStr) -> None:
        self._folded(node)

    def _folded(self, node: ast.AST) -> None:
        if fold_str(self.parent.get(id(node))) is not None:
            return  # the enclosing expression is checked as a whole
        s = fold_str(node)
        if s is not None and (msg := string_problem(s)):
            self.bad(node, msg)

    def _annotation(self, ann: ast.Constant) -> None:
        try:
            sub = ast.parse(ann.value, mode="eval")
        except SyntaxError:
            return self.bad(ann, f"annotation string that is not an expression ({ann.value[:40]!r})")
        for n in ast.walk(sub):  # report at the annotation's line
            ast.copy_location(n, ann)
        _Screen(sub, self.local, self.bad).run()


def _root_name(node: ast.AST) -> str | None:
    """`np` for `np.testing.assert_allclose` (through attributes, subscripts and calls)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


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

    _Screen(tree, local, bad).run()
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
