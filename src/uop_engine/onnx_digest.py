"""Digests of an ONNX graph's structure, so the importer can tell whether a file is still what
`export_onnx` wrote.

The exporter stores two kinds of notes in a file: the graph JSON (metadata) and, per op, an
export hint (the first ONNX node's doc_string). Both describe the structure as it was written; a
tool that later edits the graph (Relu -> Sigmoid, another attribute, another constant) usually
keeps them. The digests below cover what decides the computation: op types and domains,
attributes, the wiring (value names), graph inputs/outputs, opsets, initializer names, types and
shapes, and the values of constant initializers (reshape shapes, clip bounds, scales). Weight
values are left out on purpose: the importer always takes the weights from the file, so
retrained weights in the same structure still import as the exact graph.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from .onnx_export import HINT


def _attr(a: Any) -> list:
    # a deterministic encoding of the whole attribute (ints, floats, tensors, graphs alike)
    return [a.name, hashlib.sha256(a.SerializeToString(deterministic=True)).hexdigest()]


def _node(n: Any, doc: bool) -> list:
    return [n.domain, n.op_type, list(n.input), list(n.output), sorted(_attr(a) for a in n.attribute)] + \
        ([n.doc_string] if doc else [])


def _tensor(t: Any, with_values: bool) -> list:
    out = [t.name, int(t.data_type), list(t.dims)]
    if with_values:  # through numpy: raw_data and typed fields holding the same numbers digest alike
        from onnx import numpy_helper
        arr = numpy_helper.to_array(t)
        out.append(hashlib.sha256(arr.dtype.str.encode() + arr.tobytes()).hexdigest())
    return out


def _value_info(vi: Any) -> list:
    t = vi.type.tensor_type
    dims = [d.dim_param or d.dim_value for d in t.shape.dim] if t.HasField("shape") else None
    return [vi.name, int(t.elem_type), dims, vi.doc_string]


def _digest(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()[:32]


def group_digest(nodes: Iterable[Any], initializers: dict[str, Any], weights: Iterable[str]) -> str:
    """Digest of one op's ONNX nodes (doc_strings excluded: the first one holds the digest) and of
    the initializers they read; `weights` are the initializer names whose values are left out."""
    nodes, weights = list(nodes), set(weights)
    used = sorted({v for n in nodes for v in n.input if v in initializers})
    return _digest([[_node(n, False) for n in nodes],
                    [_tensor(initializers[v], v not in weights) for v in used]])


def _strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def _ints(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)


def _weight_ok(w: Any) -> bool:
    # [initializer name, permutation it was stored with or None, the weight's own shape]
    return isinstance(w, list) and len(w) == 3 and isinstance(w[0], str) and (w[1] is None or _ints(w[1])) \
        and _ints(w[2])


def parse_hint(doc_string: str) -> dict | None:
    """The export hint in a node's (or graph input's) doc_string, or None when there is none or it
    is not what export_onnx writes: {"id"} on every node, plus op, params, inputs, outputs, weights
    (and sig) on an op's first node. A hand-edited or foreign hint is ignored, not trusted: the
    nodes it sits on are then imported as the plain ONNX ops they are."""
    if not doc_string.startswith(HINT):
        return None
    try:
        h = json.loads(doc_string[len(HINT):])
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        return None
    if not isinstance(h, dict) or not isinstance(h.get("id"), str):
        return None
    if "op" not in h:
        return h
    ws = h.get("weights", {})
    ok = isinstance(h["op"], str) and isinstance(h.get("params"), dict) and _strs(h.get("inputs")) \
        and _strs(h.get("outputs")) and isinstance(ws, dict) and all(_weight_ok(w) for w in ws.values()) \
        and isinstance(h.get("sig", ""), str)
    return h if ok else None


def hint_weights(model: Any) -> set[str]:
    """Initializer names that the export hints declare as weights."""
    names: set[str] = set()
    for n in model.graph.node:
        h = parse_hint(n.doc_string)
        if h is not None and "op" in h:
            names.update(w[0] for w in h.get("weights", {}).values())
    return names


def structure_digest(model: Any, graph_hash: str | None) -> str:
    """Digest of the whole ONNX graph's structure (metadata excluded, hints included), bound to
    the hash of the graph JSON stored alongside, so neither can be swapped on its own."""
    g = model.graph
    weights = hint_weights(model)
    return _digest([graph_hash, sorted([o.domain, int(o.version)] for o in model.opset_import),
                    [_value_info(v) for v in g.input], [_value_info(v) for v in g.output],
                    [_node(n, True) for n in g.node],
                    [_tensor(t, t.name not in weights) for t in g.initializer],
                    len(g.sparse_initializer), [f.name for f in model.functions]])
