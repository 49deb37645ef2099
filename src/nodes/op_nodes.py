"""One KNIME node per op and block, generated from the op table through one base class.

Each generated node takes the graph port(s) of its operand(s), appends its op (parameters
from the dialog, validated by the op table) and returns the graph with shapes inferred in
configure, so a wrong wiring fails there with the node and parameter named.
"""
from __future__ import annotations

import knime.extension as knext

from uop_engine.errors import GraphError
from uop_engine.graph import Node, jsonable, merge, split_ref
from uop_engine.optable import OpDef, get_op, list_ops
from uop_engine.params import BOOL, FLOAT, INT, OPT_INT, OPT_INTS, INTS, Param

from ._base import op_categories
from .ports import GraphBuildingNode, graph_port_type, instance_key_parameter, stamp

EXTRA_VARIADIC_PORTS = 2  # concat-like ops: required ports plus this many optional ones


def knime_parameter(p: Param):
    """The dialog control for an op-table parameter (lists are typed as '3,3')."""
    kw = dict(is_advanced=p.advanced)
    if p.kind == INT:
        return knext.IntParameter(p.name, p.doc, p.default, min_value=p.min, max_value=p.max, **kw)
    if p.kind == FLOAT:
        return knext.DoubleParameter(p.name, p.doc, p.default, min_value=p.min, max_value=p.max, **kw)
    if p.kind == BOOL:
        return knext.BoolParameter(p.name, p.doc, p.default, **kw)
    if p.choices:
        return knext.StringParameter(p.name, p.doc, p.default, enum=list(p.choices), **kw)
    default = p.default
    if p.kind in (INTS, OPT_INTS):
        default = "" if default is None else ",".join(str(v) for v in default)
    elif p.kind == OPT_INT:
        default = "" if default is None else str(default)

    def validate(value, _p=p):
        try:
            _p.coerce(value)
        except GraphError as e:
            raise ValueError(str(e)) from None
    return knext.StringParameter(p.name, p.doc + (" (comma-separated)" if p.kind in (INTS, OPT_INTS) else ""),
                                 default, validator=validate, **kw)


def node_description(op: OpDef) -> str:
    lines = [op.doc, ""]
    if op.is_block:
        lines += ["This block shows as one node and expands to atomic ops when compiled.", ""]
    if _several_outputs(op):
        lines += ["This op has several outputs. Its output port carries output 0; connect a **Select Output** "
                  "node (Graph Tools) per further output you need (index 1 = the second).", ""]
    lines += [f"**Inputs:** {', '.join(op.inputs)}" + (" (more optional)" if op.variadic else ""), "",
              "**Parameters:**", ""]
    lines += [f"- **{p.name}** ({p.kind}, default `{p.default}`): {p.doc}" for p in op.params] or ["- none"]
    return "\n".join(lines)


def _several_outputs(op: OpDef) -> bool:
    if op.name == "split":
        return True
    doc = op.meta.get("document")  # a user block: one output per sink / Graph Output of its graph
    if isinstance(doc, dict):
        from uop_engine.graph import Graph
        return len(Graph.from_dict(doc["graph"]).output_refs()) > 1
    return False


class OpNodeBase(GraphBuildingNode):
    """Shared build of every generated op node."""

    OP: str = ""

    def _params(self) -> dict:
        op = get_op(self.OP)
        values = {}
        for p in op.params:
            v = getattr(self, p.name)
            try:
                v = p.coerce(v)
            except GraphError as e:
                raise GraphError(e.reason, node=self.node_id or self.OP, op=self.OP, param=p.name, fix=e.fix) from None
            if v != p.default:
                values[p.name] = jsonable(v)
        return values

    def _build(self, *ports):
        op = get_op(self.OP)
        names = list(op.inputs) + [f"{op.inputs[-1]}{i + 2}" for i in range(EXTRA_VARIADIC_PORTS)] if op.variadic \
            else list(op.inputs)
        connected = [(name, p) for name, p in zip(names, ports) if p is not None]
        graph, heads = connected[0][1].graph.copy(), [connected[0][1].head]
        for _, other in connected[1:]:
            graph, rename = merge(graph, other.graph)
            src, _, k = other.head.partition(":")
            heads.append(rename.get(src, src) + (f":{k}" if k else ""))
        nid = self.node_id.strip() or graph.unique_id(self.OP)
        if nid in graph:
            raise GraphError("this id is already used in the incoming graph", node=nid, param="node_id",
                             fix="choose another id or leave it empty")
        graph.add(Node(nid, self.OP, self._params(), heads))
        stamp(graph, [nid], self.instance_key)
        return graph, nid, _shared_layer_note(graph, [name for name, _ in connected], heads)


def _shared_layer_note(graph, port_names: list[str], heads: list[str]) -> str | None:
    """A warning when one node feeds several ports and it is, or depends on, a node with weights:
    intended for tied weights, but also what copy-pasted nodes (which keep their original's
    instance key) give, even a pasted Linear -> ReLU chain whose ReLU is the shared node. x*x of
    a weightless path stays silent."""
    seen: dict[str, str] = {}
    for name, head in zip(port_names, heads):
        src = head.partition(":")[0]
        if src in seen and (layer := _weighted_ancestor(graph, src)) is not None:
            via = "" if layer == src else f", which depends on the layer '{layer}'"
            return (f"ports '{seen[src]}' and '{name}' receive the same node '{src}'{via} (one layer, shared "
                    "weights). If they come from two nodes meant to be separate layers (a copy-pasted node keeps "
                    "its original's key), type another 'Instance key' in the copies.")
        seen.setdefault(src, name)
    return None


def _weighted_ancestor(graph, node_id: str) -> str | None:
    """The first node with weights (or a block) among `node_id` and its upstream nodes."""
    todo, done = [node_id], set()
    while todo:
        nid = todo.pop()
        if nid in done:
            continue
        done.add(nid)
        n = graph.node(nid)
        op = get_op(n.op)
        if op.weights is not None or op.is_block:
            return nid
        todo += [split_ref(r)[0] for r in n.inputs]
    return None


def _class_name(op: OpDef) -> str:
    return "".join(w.capitalize() for w in op.name.split("_")) + "Node"


def make_op_node(op: OpDef, module: str = __name__):
    """Build (class, KNIME factory) for an op; ports are applied last-to-first so they
    end up in the order of `op.inputs`, as stacked decorators would."""
    attrs = {"__doc__": node_description(op), "OP": op.name, "__module__": module,
             "node_id": knext.StringParameter("Node id", "Id of this op in the graph (empty = '<op>_<k>'). "
                                              "Ids name weights, errors and ONNX nodes.", "", is_advanced=True),
             "instance_key": instance_key_parameter()}
    for p in op.params:
        attrs[p.name] = knime_parameter(p)
    cls = type(_class_name(op), (OpNodeBase,), attrs)
    target = knext.output_port("Graph", "The graph with this op appended; its output is the new head.",
                               graph_port_type)(cls)
    names = list(op.inputs) + ([f"{op.inputs[-1]}{i + 2}" for i in range(EXTRA_VARIADIC_PORTS)] if op.variadic else [])
    for i, name in reversed(list(enumerate(names))):
        optional = i >= len(op.inputs)
        target = knext.input_port(f"{name}", f"Graph whose head is the '{name}' operand" + (" (optional)." if optional else "."),
                                  graph_port_type, optional=optional)(target)
    factory = knext.node(name=f"{op.label}", node_type=knext.NodeType.MANIPULATOR,
                         icon_path=f"icons/{op.category}.png", category=op_categories[op.category],
                         keywords=list(op.keywords) + [op.name, "tinygrad", "uop"], id=f"tinyuop_{op.name}")(target)
    return cls, factory


OP_NODE_CLASSES: dict[str, type] = {}
OP_NODE_FACTORIES: dict[str, object] = {}


def generate(ops=None) -> None:
    for op in ops if ops is not None else list_ops():
        if op.name == "input" or op.name in OP_NODE_CLASSES:
            continue  # the Graph Input node is hand-written (it can read a table)
        OP_NODE_CLASSES[op.name], OP_NODE_FACTORIES[op.name] = make_op_node(op)


generate()
