"""The op table: the single source of truth for every op and block.

Each `OpDef` holds everything an op needs: typed parameters, shape/dtype inference, the
tinygrad lowering (or, for blocks, an expansion into other ops), weight shapes, the ONNX
export entry, its palette category and one-line doc. KNIME node classes, Python specs,
docs and tests are all generated from `OPS`; adding an op means one `register(OpDef(...))`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from .params import Param


class TT(NamedTuple):
    """A tensor type: full shape (batch dimension included) and dtype name."""
    shape: tuple[int, ...]
    dtype: str = "float32"


class WeightSpec(NamedTuple):
    shape: tuple[int, ...]
    init: str            # see uop_engine.init: "fan_in_uniform", "ones", "zeros", "normal"
    trainable: bool = True
    fan_in: int = 1


FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)

# palette categories: path -> (label, description); nodes and docs mirror this tree
CATEGORIES: dict[str, tuple[str, str]] = {
    "io": ("Graph I/O", "Graph inputs and outputs."),
    "elementwise": ("Elementwise", "Unary, binary and ternary elementwise ops."),
    "activation": ("Activations", "Activation functions."),
    "reduce": ("Reduce", "Reductions over axes."),
    "movement": ("Movement", "Reshape, permute, pad, slice and friends."),
    "layers": ("Layers", "Linear, convolution, normalisation, embedding, pooling, dropout."),
    "attention": ("Attention", "Scaled dot-product and multi-head attention."),
    "blocks": ("Blocks", "Composite blocks that expand to atomic ops."),
    "user": ("User Blocks", "Blocks saved from your own subgraphs."),
}


@dataclass(frozen=True)
class OpDef:
    name: str                                  # stable id used in graph JSON, e.g. "conv2d"
    label: str                                 # display name, e.g. "Conv2D"
    category: str                              # key of CATEGORIES
    doc: str                                   # one line for palette, node description, docs
    params: tuple[Param, ...]
    inputs: tuple[str, ...]                    # input port names; variadic repeats the last
    infer: Callable[[list[TT], dict], list[TT]]
    lower: Callable[..., Any] | None = None     # (ctx, xs, p, w) -> Tensor | tuple[Tensor]
    expand: Callable[..., Any] | None = None    # blocks: (sub, refs, p, types) -> list[ref]
    weights: Callable[[dict, list[TT]], dict[str, WeightSpec]] | None = None
    onnx: Callable[..., Any] | str | None = None  # (onnx_ctx, names, p, types) or "expand"
    variadic: bool = False                      # accepts >= len(inputs) inputs (concat)
    keywords: tuple[str, ...] = ()
    user: bool = False                          # defined by a user block file, not built in
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def is_block(self) -> bool:
        return self.expand is not None

    def n_inputs_ok(self, n: int) -> bool:
        return n >= len(self.inputs) if self.variadic else n == len(self.inputs)


OPS: dict[str, OpDef] = {}


def register(op: OpDef, replace: bool = False) -> OpDef:
    if op.name in OPS and not replace:
        raise ValueError(f"op '{op.name}' is already registered")
    if op.category not in CATEGORIES:
        raise ValueError(f"op '{op.name}': unknown category '{op.category}'")
    if (op.lower is None) == (op.expand is None):
        raise ValueError(f"op '{op.name}' needs exactly one of lower/expand")
    OPS[op.name] = op
    return op


def unregister(name: str) -> None:
    OPS.pop(name, None)


def get_op(name: str) -> OpDef:
    from . import ops  # noqa: F401  (registers the built-in ops on first use)
    if name not in OPS:
        close = [n for n in OPS if name.lower().replace("-", "_") in n or n in name.lower()]
        from .errors import GraphError
        raise GraphError(f"unknown op '{name}'", fix=f"did you mean {', '.join(close[:5])}?" if close
                         else "see uop_engine.list_ops() for the available ops")
    return OPS[name]


def list_ops(category: str | None = None) -> list[OpDef]:
    from . import ops  # noqa: F401
    return [o for o in OPS.values() if category is None or o.category == category]
