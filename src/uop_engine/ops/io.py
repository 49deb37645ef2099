"""Graph inputs and outputs."""
from __future__ import annotations

from ..errors import GraphError
from ..optable import OpDef, TT, DTYPES, register
from ..params import Param, INTS, STR, OPT_INT


def _input_infer(ts, p):
    if any(d <= 0 for d in p["shape"]):
        raise GraphError(f"all sizes must be positive, got {p['shape']}", param="shape",
                         fix="give the per-sample shape without the batch, e.g. 1,28,28")
    if not p["name"].isidentifier():
        raise GraphError(f"'{p['name']}' is not a valid input name", param="name",
                         fix="use letters, digits and underscores, starting with a letter")
    return [TT((p["batch"] or 0,) + tuple(p["shape"]), p["dtype"])]


register(OpDef("input", "Graph Input", "io", "A graph input: per-sample shape and dtype; the batch axis comes first.",
               (Param("name", STR, "x", "input name (used for ONNX and tables)"),
                Param("shape", INTS, (1,), "per-sample shape without the batch axis, e.g. 1,28,28"),
                Param("dtype", STR, "float32", "element type", choices=DTYPES),
                Param("batch", OPT_INT, None, "fixed batch size (empty = any)", min=1, advanced=True)),
               (), _input_infer, lower=lambda ctx, xs, p, w: xs[0], keywords=("source", "placeholder"),
               onnx=lambda c, xs, p, ts: c.graph_input(p["name"])))

register(OpDef("output", "Graph Output", "io", "Marks a named graph output.",
               (Param("name", STR, "y", "output name"),), ("x",), lambda ts, p: [ts[0]],
               lower=lambda ctx, xs, p, w: xs[0], keywords=("sink", "result"),
               onnx=lambda c, xs, p, ts: c.node("Identity", xs)))
