"""Build graphs in Python with the same node ids the KNIME nodes produce.

    g = GraphBuilder("tiny_cnn")
    x = g.input((1, 8, 8))
    h = g.conv_block(x, out_channels=8)
    y = g.linear(g.flatten(h), out_features=10)
    graph = g.build()
"""
from __future__ import annotations

from typing import Any

from .graph import Graph, Node
from .optable import get_op


class GraphBuilder:
    def __init__(self, name: str = "graph"):
        self.graph = Graph(name=name)

    def add(self, op: str, *inputs: str, id: str | None = None, **params: Any) -> str:
        """Append an op; returns its ref. Ids default to '<op>_<k>' like the KNIME nodes."""
        get_op(op)
        nid = id or self.graph.unique_id(op)
        self.graph.add(Node(nid, op, params, list(inputs)))
        return nid

    def input(self, shape, name: str | None = None, dtype: str = "float32", **kw) -> str:
        """A graph input; unnamed ones are 'x', then 'x_2', 'x_3', ... (input names must be unique)."""
        if name is None:
            taken = {n.params.get("name") for n in self.graph.inputs()}
            name = next(c for c in ("x", *(f"x_{k}" for k in range(2, len(taken) + 2))) if c not in taken)
        return self.add("input", name=name, shape=tuple(shape), dtype=dtype, **kw)

    def output(self, ref: str, name: str = "y") -> str:
        return self.add("output", ref, name=name)

    def __getattr__(self, op: str):
        if op.startswith("_"):
            raise AttributeError(op)
        get_op(op)  # raises a helpful GraphError for unknown ops
        return lambda *inputs, **params: self.add(op, *inputs, **params)

    def build(self, check: bool = True) -> Graph:
        if check:
            self.graph.check_structure()
        return self.graph.copy()
