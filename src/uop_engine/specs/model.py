"""Graph-shaped specs: symbolic refs and `Model`, which converts to and from the graph IR.

    x = specs.Input(shape=(1, 8, 8), name="image")()
    h = specs.ConvBlock(out_channels=8)(x)
    y = specs.Linear(out_features=10)(specs.Flatten()(h))
    model = specs.Model(y, name="tiny")

Node ids are given in call order exactly as `GraphBuilder` gives them ('<op>_<k>', or the
`id=` passed to the call), so the same sequence of calls through GraphBuilder and through
specs yields the same graph JSON and hash. A Model holds op specs only: composites
(Sequential, Residual, Parallel) expand into op nodes when they are applied.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterable

from ..errors import GraphError
from ..graph import Graph, Node, split_ref
from .base import OpSpec, Spec, SpecError, from_dict, spec_class, suggest

_SEQ = itertools.count()


class _FNode:
    __slots__ = ("spec", "inputs", "seq", "id")

    def __init__(self, spec: OpSpec, inputs: list["Ref"], id: str | None):
        self.spec, self.inputs, self.seq, self.id = spec, inputs, next(_SEQ), id


class Ref:
    """A symbolic tensor: output `k` of a node made by applying a spec. `ref[k]` picks another
    output of a multi-output op (split)."""

    __slots__ = ("node", "k")

    def __init__(self, node: _FNode, k: int = 0):
        self.node, self.k = node, k

    def __getitem__(self, k: int) -> "Ref":
        return Ref(self.node, int(k))

    def __repr__(self) -> str:
        return f"Ref({self.node.spec!r}{f', output {self.k}' if self.k else ''})"


def apply_op(spec: OpSpec, inputs: list, id: str | None) -> Ref:
    op, name = spec._op, type(spec).spec_name
    for i, r in enumerate(inputs):
        if not isinstance(r, Ref):
            raise SpecError(name, f"input {i + 1} is a {type(r).__name__}, not a Ref",
                            fix="apply specs to refs: x = specs.Input(shape=...)(), then specs.Relu()(x)")
    if not op.n_inputs_ok(len(inputs)):
        want = f"at least {len(op.inputs)}" if op.variadic else str(len(op.inputs))
        raise SpecError(name, f"takes {want} input(s) ({', '.join(op.inputs) or 'none'}), got {len(inputs)}",
                        fix="use specs.Model (or Residual/Parallel) for ops with several inputs" if len(op.inputs) > 1
                        else None)
    if id is not None and (not isinstance(id, str) or not id or ":" in id or "/" in id):
        raise SpecError(name, f"node id {id!r} is not valid", fix="use a non-empty string without ':' or '/'")
    return Ref(_FNode(spec, list(inputs), id))


def _collect(outputs: list[Ref]) -> list[_FNode]:
    seen: dict[int, _FNode] = {}
    stack = [r.node for r in outputs]
    while stack:
        n = stack.pop()
        if id(n) not in seen:
            seen[id(n)] = n
            stack.extend(r.node for r in n.inputs)
    return sorted(seen.values(), key=lambda n: n.seq)


class Model(Spec):
    """A whole graph of op specs with ids; `to_graph()` / `from_graph()` use the graph IR."""

    spec_name = "Model"

    def __init__(self, outputs: Ref | Iterable[Ref] | None = None, *, name: str = "graph",
                 meta: dict | None = None):
        self.name, self.meta = name, dict(meta or {})
        self.nodes: list[tuple[str, OpSpec, list[str]]] = []
        if outputs is None:
            return
        outs = [outputs] if isinstance(outputs, Ref) else list(outputs)
        if not outs or not all(isinstance(r, Ref) for r in outs):
            raise SpecError("Model", "outputs must be one Ref or a list of Refs (from applying specs)")
        g = Graph(name=name)
        ids: dict[int, str] = {}
        for fn in _collect(outs):  # call order, so ids follow GraphBuilder's numbering
            nid = fn.id or g.unique_id(fn.spec.op_name)
            if nid in g:
                raise SpecError("Model", f"node id '{nid}' is used twice", fix="give every node a unique id")
            ins = [ids[id(r.node)] + (f":{r.k}" if r.k else "") for r in fn.inputs]
            g.add(Node(nid, fn.spec.op_name, {}, ins))
            ids[id(fn)] = nid
            self.nodes.append((nid, fn.spec, ins))

    # ---- access --------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return [nid for nid, _, _ in self.nodes]

    def __getitem__(self, node_id: str) -> OpSpec:
        for nid, spec, _ in self.nodes:
            if nid == node_id:
                return spec
        raise KeyError(f"Model '{self.name}' has no node '{node_id}' ({suggest(node_id, self.ids())[:300]})")

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, nodes={len(self.nodes)})"

    # ---- graph IR --------------------------------------------------------------------------------
    def to_graph(self, input_shape: Any = None, **kw: Any) -> Graph:
        if input_shape is not None or kw:
            raise SpecError("Model.to_graph", "a Model has its own Graph Inputs; it takes no input_shape")
        g = Graph([Node(nid, spec.op_name, dict(spec.given), list(ins)) for nid, spec, ins in self.nodes],
                  self.name, dict(self.meta))
        g.check_structure()
        return g

    def to_model(self, input_shape: Any = None, **kw: Any) -> "Model":
        if input_shape is not None:
            raise SpecError("Model.to_model", "a Model has its own Graph Inputs; it takes no input_shape")
        return self

    @classmethod
    def from_graph(cls, graph: Graph | dict | str) -> "Model":
        """The Model of a graph (Graph, graph dict or graph JSON text); ids and params kept."""
        if isinstance(graph, str):
            graph = Graph.from_json(graph)
        elif isinstance(graph, dict):
            graph = Graph.from_dict(graph)
        graph.check_structure()
        m = cls(name=graph.name, meta=graph.meta)
        for n in graph.nodes:
            try:
                spec = spec_class(n.op)(**n.params)
            except SpecError as e:
                raise SpecError(f"node '{n.id}' ({e.where})", e.reason, fix=e.fix, field=e.field) from None
            m.nodes.append((n.id, spec, list(n.inputs)))
        return m

    def to_dict(self) -> dict:
        return {"spec": "Model", "graph": self.to_graph().to_dict()}

    @classmethod
    def _from_dict(cls, d: dict) -> "Model":
        if "graph" not in d:
            raise SpecError("Model", "the dict needs a 'graph' entry (graph JSON)")
        return cls.from_graph(d["graph"])

    # ---- variants --------------------------------------------------------------------------------
    def fork(self, changes: dict | None = None, *, name: str | None = None, **per_node: dict) -> "Model":
        """A copy with node fields changed: `m.fork(conv_block_1={"out_channels": 32})` or
        `m.fork({"conv_block_1.out_channels": 32})`; unknown nodes or fields are errors."""
        todo: dict[str, dict] = {k: dict(v) for k, v in per_node.items()}
        for k, v in (changes or {}).items():
            nid, _, field = k.rpartition(".")
            if not nid:
                raise SpecError("Model.fork", f"change '{k}' must look like 'node_id.field'")
            todo.setdefault(nid, {})[field] = v
        unknown = [k for k in todo if k not in self.ids()]
        if unknown:
            raise SpecError("Model.fork", f"no node '{unknown[0]}'", fix=suggest(unknown[0], self.ids())[:300])
        m = Model(name=self.name if name is None else name, meta=self.meta)
        for nid, spec, ins in self.nodes:
            if nid in todo:
                try:
                    spec = spec.fork(**todo[nid])
                except SpecError as e:
                    raise SpecError(f"node '{nid}' ({e.where})", e.reason, fix=e.fix, field=e.field) from None
            m.nodes.append((nid, spec, list(ins)))
        return m

    # ---- applying a whole model inside another -----------------------------------------------------
    def _apply(self, inputs: list, id: str | None):
        """Inline this model: its Graph Inputs take the given refs (in order); returns its
        output ref (or a tuple of refs). Inner ids are given anew in the outer graph."""
        g = self.to_graph()
        in_ids = [n.id for n in g.inputs()]
        if len(inputs) != len(in_ids):
            raise SpecError(f"Model '{self.name}'", f"has {len(in_ids)} input(s) ({', '.join(in_ids)}), "
                            f"got {len(inputs)}")
        refs: dict[str, Ref] = dict(zip(in_ids, inputs))
        for nid, spec, ins in self.nodes:
            if nid not in refs:
                refs[nid] = spec(*[refs[split_ref(r)[0]][split_ref(r)[1]] for r in ins])
        outs = [refs[split_ref(r)[0]][split_ref(r)[1]] for r in g.output_refs()]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def hash(self) -> str:
        return self.to_graph().hash()


def model_from(obj: Any) -> Model:
    """A Model from a Model, any spec (needs an Input inside), a Graph, graph dict or JSON text."""
    if isinstance(obj, Model):
        return obj
    if isinstance(obj, Spec):
        return obj.to_model()
    if isinstance(obj, dict) and obj.get("format") != "tinyuop.graph":
        spec = from_dict(obj)
        return spec if isinstance(spec, Model) else spec.to_model()
    try:
        return Model.from_graph(obj)
    except GraphError:
        raise
