"""Shape/dtype inference and block expansion, before any tensor exists.

`analyze(graph, batch)` walks the graph in topological order, expands every block into
atomic ops (recursively, so blocks nest), resolves parameters and infers each output's
type. Any problem raises GraphError naming the node (a block's inner node as
"block_id/inner") and the parameter. `summarize(graph)` runs it at two batch sizes to tell
which dimensions are the (dynamic) batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import GraphError
from .graph import Graph, Node, split_ref
from .optable import TT, WeightSpec, get_op
from .params import resolve_params


@dataclass
class Analysis:
    atomic: Graph                                  # only ops with a lowering
    types: dict[str, list[TT]]                     # atomic node id -> output types
    params: dict[str, dict]                        # atomic node id -> resolved params
    weights: dict[str, dict[str, WeightSpec]]      # atomic node id -> weight specs
    refmap: dict[str, str]                         # user-graph ref -> atomic ref
    outputs: list[str]                             # atomic refs of the graph outputs
    output_names: list[str]                        # Output node names, else the refs
    origin: dict[str, str] = field(default_factory=dict)  # atomic id -> top-level node id

    def type_of(self, ref: str) -> TT:
        nid, k = split_ref(self.refmap.get(ref, ref))
        return self.types[nid][k]

    def n_params(self) -> int:
        return sum(math.prod(w.shape) for ws in self.weights.values() for w in ws.values() if w.trainable)


class _Sub:
    """What a block's expand() uses to add its inner ops."""

    def __init__(self, an: "_Analyzer", prefix: str, top: str):
        self.an, self.prefix, self.top = an, prefix, top

    def add(self, op: str, inputs: list[str], name: str, /, **params) -> str:  # params may be called "name"
        nid = f"{self.prefix}/{name}"
        return self.an.add(Node(nid, op, params, list(inputs)), self.top)


class _Analyzer:
    def __init__(self, batch: int):
        self.batch = batch
        self.atomic = Graph(name="atomic")
        self.types: dict[str, list[TT]] = {}
        self.params: dict[str, dict] = {}
        self.weights: dict[str, dict[str, WeightSpec]] = {}
        self.origin: dict[str, str] = {}
        self.block_outs: dict[str, list[str]] = {}

    def type_of(self, ref: str) -> TT:
        nid, k = split_ref(ref)
        ts = self.types[nid]
        if k >= len(ts):
            raise GraphError(f"output {k} of '{nid}' does not exist (it has {len(ts)})", node=nid)
        return ts[k]

    def add(self, node: Node, top: str) -> str:
        """Add `node` (inputs already atomic refs); returns the atomic ref of its output."""
        op = get_op(node.op)
        p = resolve_params(op.params, node.params, node=node.id, op=node.op)
        in_types = [self.type_of(r) for r in node.inputs]
        try:
            if op.is_block:
                outs = op.expand(_Sub(self, node.id, top), list(node.inputs), p, in_types)
                self.types[node.id] = [self.type_of(r) for r in outs]
                self.block_outs[node.id] = outs
                return outs[0]
            types = op.infer(in_types, p)
            if node.op == "input":
                types = [TT((p["batch"] or self.batch,) + t.shape[1:], t.dtype) for t in types]
            weights = op.weights(p, in_types) if op.weights else {}
            if weights:  # weights are float32: tinygrad promotes a float16/bfloat16 input with them
                types = [TT(t.shape, "float32") if t.dtype in ("float16", "bfloat16") else t for t in types]
        except GraphError as e:
            if e.node is not None:
                raise
            raise GraphError(e.reason, node=node.id, op=node.op, param=e.param, fix=e.fix) from None
        self.atomic.nodes.append(Node(node.id, node.op, node.params, list(node.inputs)))
        self.types[node.id], self.params[node.id], self.weights[node.id] = types, p, weights
        self.origin[node.id] = top
        return node.id


def analyze(graph: Graph, batch: int = 2) -> Analysis:
    """Expand blocks, resolve parameters and infer every type (see module docs)."""
    graph.check_structure()
    _check_input_names(graph)
    an = _Analyzer(batch)
    refmap: dict[str, str] = {}

    def atomic_ref(ref: str) -> str:
        nid, k = split_ref(ref)
        if nid in an.block_outs:
            outs = an.block_outs[nid]
            if k >= len(outs):
                raise GraphError(f"block '{nid}' has {len(outs)} outputs, '{ref}' asks for output {k}")
            return outs[k]
        return ref

    for n in graph.topo_order():
        ins = [atomic_ref(r) for r in n.inputs]
        an.add(Node(n.id, n.op, n.params, ins), n.id)
        refmap[n.id] = atomic_ref(n.id)
        for k in range(1, len(an.types[n.id])):
            refmap[f"{n.id}:{k}"] = atomic_ref(f"{n.id}:{k}")
    outs, names = [], []
    for r in graph.output_refs():  # a sink with several outputs (split) exposes all of them
        n_out = len(an.types[r]) if ":" not in r else 1
        node = graph.node(split_ref(r)[0])
        for x in [r] + [f"{r}:{k}" for k in range(1, n_out)]:
            outs.append(refmap.get(x, atomic_ref(x)))
            names.append(str(an.params[r]["name"]) if node.op == "output" else x)
    if not outs:
        raise GraphError("the graph has no output", fix="add ops after the Graph Input")
    return Analysis(an.atomic, an.types, an.params, an.weights, refmap, outs, names, an.origin)


def _check_input_names(graph: Graph) -> None:
    """Inputs are fed by name (tables, ONNX, inference): two with one name would overwrite each other."""
    seen: dict[str, str] = {}
    for n in graph.inputs():
        name = resolve_params(get_op("input").params, n.params, node=n.id, op="input")["name"]
        if name in seen:
            raise GraphError(f"Graph Inputs '{seen[name]}' and '{n.id}' are both named '{name}'", node=n.id, op="input",
                             param="name", fix="give every Graph Input its own name")
        seen[name] = n.id


@dataclass
class Summary:
    inputs: dict[str, tuple]      # input name -> shape with None for the batch axis
    input_dtypes: dict[str, str]
    outputs: dict[str, tuple]     # output name (or ref) -> shape with None for batch axes
    output_dtypes: dict[str, str]
    n_params: int
    hash: str
    n_nodes: int

    def to_dict(self) -> dict:
        return {"inputs": {k: list(v) for k, v in self.inputs.items()}, "input_dtypes": self.input_dtypes,
                "outputs": {k: list(v) for k, v in self.outputs.items()}, "output_dtypes": self.output_dtypes,
                "n_params": self.n_params, "hash": self.hash, "n_nodes": self.n_nodes}


def _sym(a: tuple, b: tuple) -> tuple:
    return tuple(x if x == y else None for x, y in zip(a, b))


def summarize(graph: Graph) -> Summary:
    """Input/output shapes (None = batch-dependent), parameter count and hash."""
    a2, a3 = analyze(graph, 2), analyze(graph, 3)
    ins, in_dt = {}, {}
    for n in graph.inputs():
        p = a2.params[n.id]
        ins[p["name"]] = _sym(a2.types[n.id][0].shape, a3.types[n.id][0].shape)
        in_dt[p["name"]] = p["dtype"]
    outs, out_dt = {}, {}
    for name, r2, r3 in zip(a2.output_names, a2.outputs, a3.outputs):
        t2, t3 = a2.type_of(r2), a3.type_of(r3)
        outs[name] = _sym(t2.shape, t3.shape)
        out_dt[name] = t2.dtype
    return Summary(ins, in_dt, outs, out_dt, a2.n_params(), graph.hash(), len(graph.nodes))


def fmt_shape(shape: tuple) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"
