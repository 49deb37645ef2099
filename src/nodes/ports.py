"""The TinyUOp Graph port type.

Spec: a JSON dict with the inferred input/output shapes (None = batch axis), the head's
shape, parameter count and graph hash, plus the graph JSON itself so every downstream node
can infer its own shapes in configure. Object: the graph JSON and the head ref.
"""
from __future__ import annotations

import json
import secrets

import knime.extension as knext

from uop_engine.graph import Graph


class GraphPortSpec(knext.PortObjectSpec):
    def __init__(self, data: dict):
        self._data = data

    @property
    def data(self) -> dict:
        return self._data

    @property
    def graph(self) -> Graph:
        return Graph.from_dict(self._data["graph"])

    @property
    def head(self) -> str:
        return self._data["head"]

    def serialize(self) -> dict:
        return self._data

    @classmethod
    def deserialize(cls, data: dict) -> "GraphPortSpec":
        return cls(data)


class GraphPortObject(knext.PortObject):
    def __init__(self, spec: GraphPortSpec, graph: Graph | None = None, head: str | None = None):
        super().__init__(spec)
        self._graph = graph if graph is not None else spec.graph
        self._head = head if head is not None else spec.head

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def head(self) -> str:
        return self._head

    def serialize(self) -> bytes:
        return json.dumps({"graph": self._graph.to_dict(), "head": self._head}).encode()

    @classmethod
    def deserialize(cls, spec: GraphPortSpec, storage: bytes) -> "GraphPortObject":
        d = json.loads(storage.decode())
        return cls(spec, Graph.from_dict(d["graph"]), d["head"])


graph_port_type = knext.port_type("TinyUOp Graph", GraphPortObject, GraphPortSpec,
                                  id="org.tinyuop.builder.ports.GraphPortObject")


def make_spec(graph: Graph, head: str) -> GraphPortSpec:
    """Full spec of a graph ending at `head`: shapes inferred now, so errors show in configure."""
    from uop_engine.infer import analyze, summarize
    s = summarize(graph)
    a2, a3 = analyze(graph, 2), analyze(graph, 3)
    t2, t3 = a2.type_of(head), a3.type_of(head)
    head_shape = [x if x == y else None for x, y in zip(t2.shape, t3.shape)]
    return GraphPortSpec({"graph": graph.to_dict(), "head": head, "head_shape": head_shape, "head_dtype": t2.dtype,
                          **s.to_dict()})


def make_object(graph: Graph, head: str) -> GraphPortObject:
    return GraphPortObject(make_spec(graph, head), graph, head)


class GraphBuildingNode:
    """configure/execute of nodes whose output is a graph built by `self._build(*inputs)`, which
    returns (graph, head) or (graph, head, warning); the same build runs on specs in configure
    (so shape errors show there) and on port objects in execute."""

    def configure(self, config_context, *specs):
        spec, warning = self._graph_port(make_spec, specs)
        if warning:
            config_context.set_warning(warning)
        return spec

    def execute(self, exec_context, *objects):
        return self._graph_port(make_object, objects)[0]

    def _graph_port(self, make, inputs):
        from uop_engine.errors import GraphError
        from ._base import user_error
        try:
            graph, head, *warning = self._build(*inputs)
            return make(graph, head), (warning[0] if warning else None)
        except GraphError as e:
            raise user_error(e) from None


def _new_instance_key(_version=None) -> str:
    return secrets.token_hex(8)


def instance_key_parameter():
    """The 'Instance key' setting of every node that adds nodes to a graph.

    KNIME gives Python nodes no node-instance id, yet two Linear nodes with the same settings on
    the same input must stay two layers when their branches meet again. A random default is made
    when the node is created and saved with its settings, so configure and execute stamp the same
    key (uop_engine.graph.merge keeps nodes with different keys apart)."""
    return knext.StringParameter(
        "Instance key", "Random key made when this node was created. Nodes with the same settings and inputs "
        "but different keys are separate layers when their branches meet; nodes with equal keys are one shared "
        "node. A copy-pasted node keeps the key of its original: type any other text to make it a layer of its "
        "own (empty = shared with every identical node).", _new_instance_key, is_advanced=True)


def stamp(graph: Graph, node_ids, key: str) -> Graph:
    """Mark the nodes this KNIME node added with its instance key (nothing when the key is empty)."""
    key = (key or "").strip()
    if key:
        graph.stamp(list(node_ids), key)
    return graph
