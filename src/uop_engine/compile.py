"""Compile a graph to a tinygrad model object.

The model keeps its weights in `self.params[node_id][weight_name]`, so tinygrad's
`nn.state.get_parameters` / `get_state_dict` find them (keys "params.<node>.<weight>").
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import GraphError
from .graph import Graph, split_ref
from .infer import analyze
from .init import init_weight
from .optable import DTYPES, get_op


def tg_dtype(name: str):
    """Our dtype name (see optable.DTYPES) -> tinygrad dtype; tinygrad names them alike."""
    from tinygrad import dtypes
    return getattr(dtypes, name)


def dtype_name(dtype) -> str:
    """tinygrad dtype -> our dtype name; one tinygrad gives that the graph has no name for is an error."""
    from tinygrad import dtypes
    for name in DTYPES:
        if getattr(dtypes, name) == dtype:
            return name
    raise GraphError(f"tinygrad dtype {dtype} has no graph dtype", fix=f"use one of {', '.join(DTYPES)}")


class LowerCtx:
    """Passed to every lowering: the mode, and a hook for state updates (BatchNorm stats)."""

    def __init__(self, training: bool):
        self.training = training
        self.updated: list = []

    def assign(self, target, value) -> None:
        target.assign(value)
        self.updated.append(target)


class CompiledModel:
    """A graph made runnable: `model(x)` or `model(image=x, mask=m)` returns tinygrad Tensors."""

    def __init__(self, graph: Graph, seed: int = 0, device: str | None = None,
                 weights: dict[str, np.ndarray] | None = None):
        from tinygrad import Tensor
        self.graph = graph
        self.seed = seed
        self.device = device
        self._an = analyze(graph)
        self.input_nodes = [(n.id, self._an.params[n.id]) for n in graph.inputs()]
        self.params: dict[str, dict[str, Any]] = {}
        for nid, specs in self._an.weights.items():
            if not specs:
                continue
            self.params[nid] = {}
            for name, spec in specs.items():
                arr = init_weight(spec, seed, nid, name)
                t = Tensor(arr, device=device)
                if not spec.trainable:
                    t = t.is_param_(False)
                self.params[nid][name] = t
        if weights is not None:
            self.load_weights(weights)
        tensors = [t for ws in self.params.values() for t in ws.values()]
        if tensors:  # weights live on the device from here on: forward passes schedule compute only
            Tensor.realize(*tensors)

    # ---- running ------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [p["name"] for _, p in self.input_nodes]

    def __call__(self, *args, training: bool = False, **kwargs):
        return self.forward(*args, training=training, **kwargs)

    def forward(self, *args, training: bool = False, **kwargs):
        from tinygrad import Tensor, dtypes
        names = self.input_names
        if len(args) > len(names):
            raise GraphError(f"the graph has {len(names)} inputs ({', '.join(names)}) but {len(args)} were given")
        feed = dict(zip(names, args)) | kwargs
        missing = [n for n in names if n not in feed]
        if missing:
            raise GraphError(f"missing graph input(s) {', '.join(missing)}", fix="pass them by position or name")
        vals: dict[str, tuple] = {}
        ctx = LowerCtx(training)
        for nid, p in self.input_nodes:
            x = feed[p["name"]]
            if not isinstance(x, Tensor):
                x = Tensor(np.ascontiguousarray(x), device=self.device)
            want = tuple(p["shape"])
            if tuple(x.shape[1:]) != want:
                raise GraphError(f"got an array of shape {tuple(x.shape)}, expected (batch, {', '.join(map(str, want))})",
                                 node=nid, op="input", param="shape", fix="reshape the data or change the input shape")
            vals[nid] = (x.cast(tg_dtype(p["dtype"])) if x.dtype != tg_dtype(p["dtype"]) else x,)
        for node in self._an.atomic.nodes:
            if node.op == "input":
                continue
            xs = [vals[split_ref(r)[0]][split_ref(r)[1]] for r in node.inputs]
            if node.id in self.params:  # float32 weights: compute in float32 (as shape inference and ONNX say)
                xs = [x.cast(dtypes.float32) if x.dtype in (dtypes.float16, dtypes.bfloat16) else x for x in xs]
            out = get_op(node.op).lower(ctx, xs, self._an.params[node.id], self.params.get(node.id, {}))
            vals[node.id] = out if isinstance(out, tuple) else (out,)
        outs = tuple(vals[split_ref(r)[0]][split_ref(r)[1]] for r in self._an.outputs)
        self.last_updated = ctx.updated
        return outs[0] if len(outs) == 1 else outs

    # ---- weights ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        from tinygrad.nn.state import get_state_dict
        return get_state_dict(self.params, "params.")

    def parameters(self) -> list:
        """Trainable tensors plus buffers (running statistics), as tinygrad's optimizers want."""
        return list(self.state_dict().values())

    def numpy_weights(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.state_dict().items()}

    def load_weights(self, weights: dict[str, np.ndarray], strict: bool = True) -> None:
        """Set weights from arrays keyed like state_dict(); shapes must match."""
        sd = self.state_dict()
        missing = [k for k in sd if k not in weights]
        extra = [k for k in weights if k not in sd]
        if strict and (missing or extra):
            raise GraphError(f"weights do not fit the graph: missing {missing[:5]}, unexpected {extra[:5]}",
                             fix="load weights saved from the same graph (compare graph hashes)")
        for k, t in sd.items():
            if k in weights:
                arr = np.asarray(weights[k], dtype=np.float32)
                if tuple(arr.shape) != tuple(t.shape):
                    raise GraphError(f"weight '{k}' has shape {arr.shape}, the graph needs {tuple(t.shape)}")
                from tinygrad import Tensor
                t.assign(Tensor(np.ascontiguousarray(arr), device=t.device)).realize()


def compile_graph(graph: Graph, seed: int = 0, device: str | None = None,
                  weights: dict[str, np.ndarray] | None = None) -> CompiledModel:
    """Graph -> runnable tinygrad model with seeded weights (or the given ones)."""
    return CompiledModel(graph, seed=seed, device=device, weights=weights)
