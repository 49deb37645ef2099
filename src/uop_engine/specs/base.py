"""Spec base classes and the spec classes generated from the op table.

A spec is a small, immutable piece of configuration: it validates its fields when created,
serialises to a JSON-able dict (`to_dict` / `from_dict`), makes variants (`fork`), applies to
symbolic refs to form a graph (`spec(x)`), and builds a runnable tinygrad model (`build`).
One `OpSpec` subclass exists per op in `uop_engine.optable.OPS`; it is made on first use by
`spec_class()`, so user blocks registered later get their spec too. Field checks are the op
table's `Param.coerce`, so the spec, the KNIME dialog and graph validation agree.
"""
from __future__ import annotations

import difflib
import inspect
import json
import re
from typing import Any, ClassVar

from ..errors import GraphError
from ..optable import OPS, OpDef, get_op, list_ops


class SpecError(GraphError):
    """A spec field is invalid; the message starts with `Spec.field` (or a node id in a Model)."""

    def __init__(self, where: str, message: str, fix: str | None = None, field: str | None = None):
        GraphError.__init__(self, f"{where}: {message}", fix=fix)
        self.where, self.field, self.reason = where, field, message


def plain(v: Any) -> Any:
    """A JSON-able copy of a field value: tuples become lists, numpy scalars Python numbers."""
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if hasattr(v, "item") and callable(v.item) and not isinstance(v, (str, bytes)):
        try:
            return v.item()  # numpy scalar
        except (TypeError, ValueError):
            return v
    return v


def suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3)
    return (f"did you mean {', '.join(close)}? " if close else "") + f"valid: {', '.join(choices) or '(none)'}"


class Spec:
    """Base of all specs. Subclasses implement `_apply`, `to_dict`, `fork` and `_from_dict`."""

    spec_name: ClassVar[str] = "Spec"

    # ---- composing ---------------------------------------------------------------------------
    def __call__(self, *inputs: Any, id: str | None = None) -> Any:
        """Apply to symbolic refs (from `Input(...)()` or earlier calls); returns a Ref."""
        return self._apply(list(inputs), id)

    def _apply(self, inputs: list, id: str | None):
        raise NotImplementedError

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        raise NotImplementedError

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict) -> "Spec":
        spec = from_dict(d)
        if not isinstance(spec, cls):
            raise SpecError(cls.spec_name, f"the dict describes a {type(spec).__name__}, not a {cls.spec_name}")
        return spec

    @classmethod
    def from_json(cls, text: str | bytes) -> "Spec":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(cls.spec_name, f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        return cls.from_dict(d)

    def fork(self, changes: dict | None = None, **kw: Any) -> "Spec":
        raise NotImplementedError

    # ---- graphs and models ---------------------------------------------------------------------
    def to_model(self, input_shape: Any = None, *, input_name: str = "x", dtype: str = "float32",
                 name: str | None = None, output_name: str | None = None):
        """A graph-shaped `Model`: a Graph Input (unless the spec starts with one) fed through
        this spec, plus a named Graph Output when `output_name` is given."""
        from .model import Model
        from .compose import first_input
        start = first_input(self)
        if start is None:
            if input_shape is None:
                raise SpecError(f"{self.spec_name}.to_model", "needs input_shape (the per-sample shape, "
                                "without the batch axis)", fix="pass input_shape=(1, 8, 8) or start with specs.Input")
            x = spec_class("input")(name=input_name, shape=tuple(input_shape), dtype=dtype)()
            y = self(x)
        else:
            if input_shape is not None:
                raise SpecError(f"{self.spec_name}.to_model", "starts with an Input, so input_shape must not be "
                                "given as well", fix="drop input_shape or the Input layer")
            y = self._apply([], None)
        if output_name is not None:
            y = spec_class("output")(name=output_name)(y)
        return Model(y, name=name or getattr(self, "_name", None) or "graph")

    def to_graph(self, input_shape: Any = None, **kw: Any):
        """The graph IR (`uop_engine.graph.Graph`) this spec stands for; see `to_model`."""
        return self.to_model(input_shape, **kw).to_graph()

    def build(self, input_shape: Any = None, *, seed: int = 0, device: str | None = None,
              weights: dict | None = None, **kw: Any):
        """Compile through the engine: a tinygrad-callable `CompiledModel` (its weights are found
        by tinygrad's `nn.state.get_parameters`)."""
        from ..compile import compile_graph
        return compile_graph(self.to_graph(input_shape, **kw), seed=seed, device=device, weights=weights)

    def summary(self, input_shape: Any = None, **kw: Any):
        from ..infer import summarize
        return summarize(self.to_graph(input_shape, **kw))

    # ---- value semantics -----------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))


class OpSpec(Spec):
    """A spec for one op of the op table; fields are the op's parameters."""

    _op: ClassVar[OpDef]
    __slots__ = ("_given",)

    def __init__(self, *args: Any, **kw: Any):
        op, cls = self._op, type(self).spec_name
        names = [p.name for p in op.params]
        if len(args) > len(names):
            raise SpecError(cls, f"takes at most {len(names)} positional field(s) ({', '.join(names) or 'none'}), "
                            f"got {len(args)}", fix="pass fields by name")
        for name, v in zip(names, args):
            if name in kw:
                raise SpecError(cls, f"field '{name}' given twice (by position and by name)", field=name)
            kw[name] = v
        known = {p.name: p for p in op.params}
        given = {}
        for k, v in kw.items():
            if k not in known:
                raise SpecError(f"{cls}.{k}", "is not a field of this spec", fix=suggest(k, names), field=k)
            try:
                known[k].coerce(v)
            except GraphError as e:
                raise SpecError(f"{cls}.{k}", e.reason, fix=e.fix, field=k) from None
            given[k] = plain(v)
        object.__setattr__(self, "_given", given)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).spec_name} is immutable; use .fork({name}=...) for a changed copy")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for p in type(self)._op.params:
            if p.name == name:
                return p.coerce(self._given[name]) if name in self._given else p.default
        raise AttributeError(f"{type(self).spec_name} has no field '{name}' "
                             f"({suggest(name, [p.name for p in type(self)._op.params])})")

    @property
    def op_name(self) -> str:
        return type(self)._op.name

    @property
    def given(self) -> dict[str, Any]:
        """The fields set explicitly (as JSON values); everything else is the op table default."""
        return dict(self._given)

    @property
    def params(self) -> dict[str, Any]:
        """All fields, resolved: defaults filled in and values coerced to their kinds."""
        return {p.name: getattr(self, p.name) for p in type(self)._op.params}

    def to_dict(self) -> dict:
        return {"spec": type(self).spec_name, "op": self.op_name, "params": dict(self._given)}

    @classmethod
    def _from_dict(cls, d: dict) -> "OpSpec":
        params = d.get("params", {})
        if not isinstance(params, dict):
            raise SpecError(cls.spec_name, "'params' must be an object of field values")
        return cls(**params)

    def fork(self, changes: dict | None = None, **kw: Any) -> "OpSpec":
        """A copy with fields changed (validated like the constructor)."""
        return type(self)(**{**self._given, **(changes or {}), **kw})

    def _apply(self, inputs: list, id: str | None):
        from .model import apply_op
        return apply_op(self, inputs, id)

    def __repr__(self) -> str:
        return f"{type(self).spec_name}({', '.join(f'{k}={v!r}' for k, v in self._given.items())})"


# ---- generating one class per op ---------------------------------------------------------------
_CLASSES: dict[str, type[OpSpec]] = {}
RESERVED = {"Spec", "OpSpec", "Sequential", "Residual", "Parallel", "Model", "Ref", "SpecError"}


def camel(text: str) -> str:
    """'conv_block' -> 'ConvBlock', 'max_pool2d' -> 'MaxPool2d', 'Leaky ReLU' -> 'LeakyReLU'."""
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^0-9A-Za-z]+", text) if w)


def _signature(op: OpDef) -> inspect.Signature:
    ps = [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default) for p in op.params]
    return inspect.Signature(ps)


def _doc(op: OpDef, name: str) -> str:
    lines = [f"{op.label}: {op.doc}", "", f"Spec for op '{op.name}' (category {op.category}); "
             f"inputs: {', '.join(op.inputs) or 'none'}{' (variadic)' if op.variadic else ''}."]
    if op.params:
        lines += ["", "Fields:"]
        for p in op.params:
            extra = f"; one of {', '.join(p.choices)}" if p.choices else ""
            lines.append(f"    {p.name} ({p.kind}, default {p.default!r}): {p.doc}{extra}")
    return "\n".join(lines)


def spec_class(op_name: str) -> type[OpSpec]:
    """The spec class of an op (generated once per OpDef; a re-registered op gets a new one)."""
    op = get_op(op_name)
    cls = _CLASSES.get(op.name)
    if cls is None or cls._op is not op:
        name = camel(op.name)
        cls = type(name, (OpSpec,), {"_op": op, "spec_name": name, "__doc__": _doc(op, name), "__slots__": (),
                                     "__module__": "uop_engine.specs", "__qualname__": name})
        cls.__signature__ = _signature(op)  # type: ignore[attr-defined]
        _CLASSES[op.name] = cls
    return cls


def class_names() -> dict[str, str]:
    """Spec class name -> op name: the CamelCase op name, plus the label spelling as an alias
    ('Relu' and 'ReLU', 'Conv2d' and 'Conv2D') where it names no other op."""
    ops = list_ops()
    out = {camel(o.name): o.name for o in ops if camel(o.name) not in RESERVED}
    for o in ops:
        alias = camel(o.label)
        if alias and alias not in out and alias not in RESERVED and alias.isidentifier():
            out[alias] = o.name
    return out


def available() -> list[str]:
    """Names of all op spec classes (CamelCase op names and label aliases)."""
    return sorted(class_names())


def spec_by_name(name: str) -> type[OpSpec]:
    names = class_names()
    if name not in names:
        raise AttributeError(f"uop_engine.specs has no spec '{name}' ({suggest(name, sorted(names))[:300]})")
    return spec_class(names[name])


def from_dict(d: Any) -> Spec:
    """Any spec from its `to_dict()` form; a plain graph JSON dict gives a Model."""
    from .compose import COMPOSITES
    from .model import Model
    if not isinstance(d, dict):
        raise SpecError("spec", f"a spec must be a dict, got {type(d).__name__}")
    if d.get("format") == "tinyuop.graph":
        return Model.from_graph(d)
    kind = d.get("spec")
    if kind == "Model":
        return Model._from_dict(d)
    if kind in COMPOSITES:
        return COMPOSITES[kind]._from_dict(d)
    op = d.get("op")
    if isinstance(op, str):
        if op not in OPS:
            get_op(op)  # registers the built-ins; raises a helpful error for unknown ops
        return spec_class(op)._from_dict(d)
    if isinstance(kind, str):
        try:
            return spec_by_name(kind)._from_dict(d)
        except AttributeError as e:
            raise SpecError("spec", str(e)) from None
    raise SpecError("spec", f"the dict names no spec: {str(d)[:80]}",
                    fix="give 'spec' (e.g. 'Conv2d', 'Sequential', 'Model') or 'op'")
