"""Composite specs: `Sequential`, `Residual` and `Parallel` nest any specs (blocks included).

They are macros over the op specs: applying one to a ref adds its op nodes in order, so a
graph made from composites is an ordinary graph (same ids as GraphBuilder would give).
"""
from __future__ import annotations

from typing import Any, Iterable

from ..optable import get_op
from .base import OpSpec, Spec, SpecError, from_dict, spec_class

_ACT_NONE = "none"


def _as_spec(x: Any, where: str) -> Spec:
    if isinstance(x, Spec):
        return x
    if isinstance(x, dict):
        try:
            return from_dict(x)
        except SpecError as e:  # say which layer of the (nested) dict was wrong
            raise SpecError(f"{where} > {e.where}", e.reason, fix=e.fix, field=e.field) from None
    raise SpecError(where, f"expected a spec, got {type(x).__name__}", fix="use specs.Conv2d(...), specs.Sequential([...]), ...")


def _one(x: Any, where: str) -> Any:
    if isinstance(x, tuple):
        raise SpecError(where, f"the layer gives {len(x)} outputs; a chain needs one",
                        fix="use specs.Model for layers with several outputs")
    return x


def _check_activation(act: str, where: str) -> str:
    if act == _ACT_NONE:
        return act
    try:
        op = get_op(act)
    except Exception:
        op = None
    if op is None or op.category != "activation" or op.inputs != ("x",):
        raise SpecError(where, f"'{act}' is not an activation op", field="activation",
                        fix="use 'none' or an op of the activation category, e.g. relu, gelu, silu")
    return act


def _fork_path(spec: Spec, path: str, value: Any, where: str) -> Spec:
    """Change one field addressed by a dotted path ('0.out_channels', 'body.1.stride')."""
    head, _, rest = path.partition(".")
    if not rest:
        return spec.fork(**{head: value})
    if isinstance(spec, OpSpec):
        raise SpecError(where, f"'{path}' goes below {type(spec).spec_name}, which has no children")
    return spec._fork_child(head, rest, value)


class Sequential(Spec):
    """Layers applied one after another. `Sequential([Input(shape=...), ...])` starts with its own
    Graph Input; otherwise give `input_shape` to `build` / `to_graph`."""

    spec_name = "Sequential"

    def __init__(self, layers: Iterable[Any] = (), name: str | None = None):
        if isinstance(layers, (Spec, dict)):
            raise SpecError("Sequential", "layers must be a list of specs", fix="wrap it: Sequential([layer])")
        self.layers: tuple[Spec, ...] = tuple(_as_spec(x, f"Sequential layer {i}") for i, x in enumerate(layers))
        self._name = name
        for i, s in enumerate(self.layers):
            if i > 0 and first_input(s) is not None:
                raise SpecError(f"Sequential layer {i}", "a Graph Input may only come first")

    @property
    def name(self) -> str | None:
        return self._name

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Spec:
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __add__(self, other: Any) -> "Sequential":
        more = other.layers if isinstance(other, Sequential) else (other,)
        return Sequential(self.layers + tuple(more), self._name)

    def _apply(self, inputs: list, id: str | None):
        if id is not None:
            raise SpecError("Sequential", "takes no id (its layers get their own)")
        x = inputs
        for i, layer in enumerate(self.layers):
            try:
                y = layer._apply(x, None)
            except SpecError as e:  # say where in the (possibly nested) chain it failed
                raise SpecError(f"Sequential layer {i} > {e.where}", e.reason, fix=e.fix, field=e.field) from None
            x = [_one(y, f"Sequential layer {i}")]
        if len(x) != 1:
            raise SpecError("Sequential", f"needs one input, got {len(x)}")
        return x[0]

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"spec": "Sequential", "layers": [s.to_dict() for s in self.layers]}
        if self._name is not None:
            d["name"] = self._name
        return d

    @classmethod
    def _from_dict(cls, d: dict) -> "Sequential":
        _no_extra(d, {"spec", "layers", "name"}, "Sequential")
        if not isinstance(d.get("layers", []), list):
            raise SpecError("Sequential", "'layers' must be a list")
        return cls(d.get("layers", []), d.get("name"))

    def fork(self, changes: dict | None = None, **kw: Any) -> "Sequential":
        """`seq.fork(name="v2")`, `seq.fork(layers=[...])` or `seq.fork({"1.out_channels": 32})`."""
        _no_extra(kw, {"layers", "name"}, "Sequential.fork")
        out = Sequential(kw.get("layers", self.layers), kw.get("name", self._name))
        for path, v in (changes or {}).items():
            out = _fork_path(out, path, v, "Sequential.fork")
        return out

    def _fork_child(self, head: str, rest: str, value: Any) -> "Sequential":
        i = _index(head, len(self.layers), "Sequential.fork", "layer")
        layers = list(self.layers)
        layers[i] = _fork_path(layers[i], rest, value, f"Sequential layer {i}")
        return Sequential(layers, self._name)

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.layers)
        return f"Sequential([{inner}]{f', name={self._name!r}' if self._name else ''})"


class Residual(Spec):
    """`activation(body(x) + shortcut(x))`; the shortcut is the identity unless given (e.g. a
    1x1 Conv2d when the body changes the shape)."""

    spec_name = "Residual"

    def __init__(self, body: Any, shortcut: Any = None, activation: str = _ACT_NONE):
        self.body = _as_spec(body if not isinstance(body, list) else Sequential(body), "Residual.body")
        self.shortcut = None if shortcut is None else _as_spec(
            shortcut if not isinstance(shortcut, list) else Sequential(shortcut), "Residual.shortcut")
        self.activation = _check_activation(activation, "Residual.activation")

    def _apply(self, inputs: list, id: str | None):
        if len(inputs) != 1:
            raise SpecError("Residual", f"takes one input, got {len(inputs)}")
        h = _one(self.body._apply(inputs, None), "Residual.body")
        s = inputs[0] if self.shortcut is None else _one(self.shortcut._apply(inputs, None), "Residual.shortcut")
        y = spec_class("add")()(h, s, id=None if self.activation != _ACT_NONE else id)
        return y if self.activation == _ACT_NONE else spec_class(self.activation)()(y, id=id)

    def to_dict(self) -> dict:
        return {"spec": "Residual", "body": self.body.to_dict(),
                "shortcut": None if self.shortcut is None else self.shortcut.to_dict(), "activation": self.activation}

    @classmethod
    def _from_dict(cls, d: dict) -> "Residual":
        _no_extra(d, {"spec", "body", "shortcut", "activation"}, "Residual")
        if "body" not in d:
            raise SpecError("Residual", "the dict needs a 'body'")
        return cls(d["body"], d.get("shortcut"), d.get("activation", _ACT_NONE))

    def fork(self, changes: dict | None = None, **kw: Any) -> "Residual":
        _no_extra(kw, {"body", "shortcut", "activation"}, "Residual.fork")
        out = Residual(kw.get("body", self.body), kw.get("shortcut", self.shortcut),
                       kw.get("activation", self.activation))
        for path, v in (changes or {}).items():
            out = _fork_path(out, path, v, "Residual.fork")
        return out

    def _fork_child(self, head: str, rest: str, value: Any) -> "Residual":
        if head == "body":
            return Residual(_fork_path(self.body, rest, value, "Residual.body"), self.shortcut, self.activation)
        if head == "shortcut" and self.shortcut is not None:
            return Residual(self.body, _fork_path(self.shortcut, rest, value, "Residual.shortcut"), self.activation)
        raise SpecError("Residual.fork", f"'{head}' is not a child (body{', shortcut' if self.shortcut else ''})")

    def __repr__(self) -> str:
        return f"Residual({self.body!r}, shortcut={self.shortcut!r}, activation={self.activation!r})"


class Parallel(Spec):
    """Branches applied to the same input, combined by `concat` (along `axis`), `add` or `mul`."""

    spec_name = "Parallel"
    COMBINE = ("concat", "add", "mul")

    def __init__(self, branches: Iterable[Any], combine: str = "concat", axis: int = 1):
        self.branches = tuple(_as_spec(b if not isinstance(b, list) else Sequential(b), f"Parallel branch {i}")
                              for i, b in enumerate(branches))
        if len(self.branches) < 2:
            raise SpecError("Parallel.branches", f"needs at least 2 branches, got {len(self.branches)}")
        if combine not in self.COMBINE:
            raise SpecError("Parallel.combine", f"'{combine}' is not one of {list(self.COMBINE)}", field="combine")
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise SpecError("Parallel.axis", f"{axis!r} is not an int", field="axis")
        self.combine, self.axis = combine, axis

    def _apply(self, inputs: list, id: str | None):
        if len(inputs) != 1:
            raise SpecError("Parallel", f"takes one input, got {len(inputs)}")
        outs = [_one(b._apply(inputs, None), f"Parallel branch {i}") for i, b in enumerate(self.branches)]
        if self.combine == "concat":
            return spec_class("concat")(axis=self.axis)(*outs, id=id)
        y = outs[0]
        for k, o in enumerate(outs[1:], 1):
            y = spec_class(self.combine)()(y, o, id=id if k == len(outs) - 1 else None)
        return y

    def to_dict(self) -> dict:
        return {"spec": "Parallel", "branches": [b.to_dict() for b in self.branches], "combine": self.combine,
                "axis": self.axis}

    @classmethod
    def _from_dict(cls, d: dict) -> "Parallel":
        _no_extra(d, {"spec", "branches", "combine", "axis"}, "Parallel")
        return cls(d.get("branches", []), d.get("combine", "concat"), d.get("axis", 1))

    def fork(self, changes: dict | None = None, **kw: Any) -> "Parallel":
        _no_extra(kw, {"branches", "combine", "axis"}, "Parallel.fork")
        out = Parallel(kw.get("branches", self.branches), kw.get("combine", self.combine), kw.get("axis", self.axis))
        for path, v in (changes or {}).items():
            out = _fork_path(out, path, v, "Parallel.fork")
        return out

    def _fork_child(self, head: str, rest: str, value: Any) -> "Parallel":
        i = _index(head, len(self.branches), "Parallel.fork", "branch")
        bs = list(self.branches)
        bs[i] = _fork_path(bs[i], rest, value, f"Parallel branch {i}")
        return Parallel(bs, self.combine, self.axis)

    def __repr__(self) -> str:
        return f"Parallel({list(self.branches)!r}, combine={self.combine!r}, axis={self.axis})"


def _index(head: str, n: int, where: str, what: str) -> int:
    if not head.lstrip("-").isdigit() or not -n <= int(head) < n:
        raise SpecError(where, f"'{head}' is not a {what} index (0..{n - 1})")
    return int(head) % n


def _no_extra(d: dict, allowed: set[str], where: str) -> None:
    for k in d:
        if k not in allowed:
            raise SpecError(f"{where}.{k}", "is not a field", fix=f"valid: {', '.join(sorted(allowed - {'spec'}))}",
                            field=k)


def first_input(spec: Spec) -> OpSpec | None:
    """The Input spec a spec starts with (through nested Sequentials), or None."""
    while isinstance(spec, Sequential) and spec.layers:
        spec = spec.layers[0]
    return spec if isinstance(spec, OpSpec) and spec.op_name == "input" else None


COMPOSITES: dict[str, type] = {"Sequential": Sequential, "Residual": Residual, "Parallel": Parallel}
