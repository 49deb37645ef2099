"""What names stand for in one generated file, as far as the syntax shows (for `llm.screen`).

- `Bindings`: imports and plain aliases (`t = np.testing`, `sk = pytest.mark.skipif`,
  `def f(t=np.testing)`, `for t in (np.testing,)`), so a store or call through an alias is
  judged like the one it stands for. Flow-insensitive on purpose: a name that is an alias
  anywhere in the file counts as one everywhere.
- `fold_str`: the value of a string built from constants (`'__array_' + 'interface__'`,
  `'_' * 2`, `'%s' % '__x'`), so splitting a name into pieces does not hide it.
- `surely_bool`: whether an expression is a bool whatever its operands are (pytest evaluates
  a *string* condition of skipif/xfail as code).
"""
from __future__ import annotations

import ast


class Bindings:
    """Local name -> qualified name ("np" -> "numpy", "t" -> "numpy.testing") for one file."""

    def __init__(self, tree: ast.AST):
        self.names: dict[str, str] = {}
        self.modules: set[str] = set()  # names bound by `import x` (always a module)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    name = a.asname or a.name.split(".")[0]
                    self.names.setdefault(name, a.name if a.asname else name)
                    self.modules.add(name)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name != "*":
                        self.names.setdefault(a.asname or a.name, f"{node.module}.{a.name}")
        pairs = list(_bound_pairs(tree))
        self.aliases: set[str] = set()
        changed = True
        while changed:  # aliases of aliases
            changed = False
            for name, value in pairs:
                q = self.resolve(value)
                if q is not None and name not in self.aliases:
                    self.names.setdefault(name, q)
                    self.aliases.add(name)
                    changed = True

    def resolve(self, node: ast.AST) -> str | None:
        """"numpy.testing.assert_allclose" for `np.testing.assert_allclose` or `t.assert_allclose`."""
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base is not None else None
        return None


def _bound_pairs(tree: ast.AST):
    """(name, expression) for every plain binding of a name to an expression."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                yield from _pair(t, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            yield from _pair(node.target, node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and isinstance(
                node.iter, (ast.Tuple, ast.List, ast.Set)):
            for elt in node.iter.elts:
                yield from _pair(node.target, elt)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            pos = [*a.posonlyargs, *a.args]
            for arg, default in zip(pos[len(pos) - len(a.defaults):], a.defaults):
                yield arg.arg, default
            for arg, default in zip(a.kwonlyargs, a.kw_defaults):
                if default is not None:
                    yield arg.arg, default


def _pair(target: ast.AST, value: ast.AST):
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, (ast.Tuple, ast.List)):
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
            for t, v in zip(target.elts, value.elts):
                yield from _pair(t, v)
        else:  # `a, b = x` where x is not a literal: any element may be any part of x
            for t in target.elts:
                yield from _pair(t.value if isinstance(t, ast.Starred) else t, value)


def parents(tree: ast.AST) -> dict[int, ast.AST]:
    """id(node) -> its parent node."""
    out = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            out[id(child)] = node
    return out


def annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation (types there are only looked at, not called)."""
    anns = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            anns.append(node.returns)
        elif isinstance(node, ast.arg) and node.annotation is not None:
            anns.append(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            anns.append(node.annotation)
    return {id(n) for a in anns for n in ast.walk(a)}


def fold_str(node: ast.AST) -> str | None:
    """The string a constant expression evaluates to, or None when it is not one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            s = fold_str(v.value) if isinstance(v, ast.FormattedValue) and v.format_spec is None \
                and v.conversion == -1 else fold_str(v)
            if s is None:
                return None
            parts.append(s)
        return "".join(parts)
    if isinstance(node, ast.BinOp):
        left = fold_str(node.left)
        if isinstance(node.op, ast.Add):
            right = fold_str(node.right)
            return left + right if left is not None and right is not None else None
        if isinstance(node.op, ast.Mult):
            n = node.right if left is not None else node.left
            s = left if left is not None else fold_str(node.right)
            if s is not None and isinstance(n, ast.Constant) and type(n.value) is int and 0 <= n.value <= 64:
                return s * n.value
            return None
        if isinstance(node.op, ast.Mod) and left is not None:
            args = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            vals = [fold_str(a) for a in args]
            if all(v is not None for v in vals):
                try:
                    return left % tuple(vals)
                except (TypeError, ValueError):
                    return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], (ast.List, ast.Tuple)):
        sep, parts = fold_str(node.func.value), [fold_str(e) for e in node.args[0].elts]
        if sep is not None and all(p is not None for p in parts):
            return sep.join(parts)
    return None


def surely_bool(node: ast.AST, shadowed: set[str]) -> bool:
    """True when `node` is a bool (or None/number) whatever its operands are."""
    if isinstance(node, ast.Constant):
        return not isinstance(node.value, (str, bytes))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return True  # `not x` is always a bool
    if isinstance(node, ast.Compare):  # `is`/`in` always give bools; `==`/`<` may return anything
        return all(isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)) for op in node.ops)
    if isinstance(node, ast.BoolOp):  # `a or b` is one of its operands
        return all(surely_bool(v, shadowed) for v in node.values)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
            "bool", "isinstance", "issubclass", "callable", "hasattr") and node.func.id not in shadowed:
        return True
    return False


def constant_names(node: ast.AST) -> list[str] | None:
    """Member names of a functional Enum's `names` argument when they are written out, else None."""
    s = fold_str(node)
    if s is not None:
        return s.replace(",", " ").split()
    if isinstance(node, (ast.List, ast.Tuple)):
        out = []
        for e in node.elts:
            if isinstance(e, (ast.Tuple, ast.List)) and len(e.elts) == 2:
                e = e.elts[0]
            s = fold_str(e)
            if s is None:
                return None
            out.append(s)
        return out
    return None
