"""Import an ONNX model as a graph plus weights: `import_onnx(path_or_model) -> (Graph, weights)`.

Standard ONNX ops map back to ours (Conv -> conv1d/conv2d, Gemm or MatMul(+Add) with a
constant weight -> linear, BatchNormalization -> batch_norm, Gather on a constant table ->
embedding, ...). Models written by `export_onnx` carry a hint on each op's first node (op,
params, value names, weight layout); with `use_hints=True` those groups come back as the
original op with its exact parameters, so ops exported as several ONNX nodes (RMSNorm,
attention, GELU below opset 20, ...) round-trip and `graph.hash()` is preserved. Hints and the
stored graph JSON are used only while the nodes still match the digests recorded at export
(onnx_digest): a file edited afterwards imports as the ONNX ops it now holds.

Everything that cannot be imported is collected and reported in one GraphError: unsupported op
types with counts and node names, and supported ops used in a way we cannot express (e.g. a
constant operand of Add: our graphs hold constants only as weights). The per-op-type
handlers live in `onnx_import_ops`.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from .errors import GraphError
from .graph import Graph, Node
from .onnx_digest import parse_hint
from .onnx_export import load_model
from .onnx_import_ops import DTYPES, HANDLERS, SUPPORTED, Unsupported
from .optable import OPS


class _Importer:
    """Walks the ONNX nodes in order: hinted groups first as their original op, others through
    the plain-ONNX handlers in onnx_import_ops; problems are collected, not raised one by one."""

    def __init__(self, model, use_hints: bool):
        import onnx
        from onnx import numpy_helper
        try:
            model = onnx.shape_inference.infer_shapes(model)
        except Exception:  # shapes only refine a few mappings; import without them
            pass
        self.m, self.gr = model, model.graph
        self.g = Graph(name=model.graph.name or "imported")
        self.weights: dict[str, np.ndarray] = {}
        self.consts = {t.name: numpy_helper.to_array(t) for t in self.gr.initializer}
        self.init_protos = {t.name: t for t in self.gr.initializer}
        self.ignored_hints: list[str] = []     # ops whose hint no longer matched their ONNX nodes
        self.val: dict[str, str] = {}          # ONNX value name -> our ref
        self.shapes = {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
                       for vi in list(self.gr.value_info) + list(self.gr.input) + list(self.gr.output)
                       if vi.type.tensor_type.HasField("shape")}
        self.users: dict[str, list] = defaultdict(list)
        for n in self.gr.node:
            for v in n.input:
                self.users[v].append(n)
        self.done: set[int] = set()            # ids of ONNX nodes already imported (fused into another)
        self.unsupported: dict[str, list[str]] = defaultdict(list)
        self.uses: list[str] = []
        self.hints = self._hints() if use_hints else {}

    # ---- helpers for handlers -------------------------------------------------------------
    def add(self, op: str, inputs: list[str], weights: dict | None = None, nid: str | None = None, **params) -> str:
        nid = nid if nid and nid not in self.g and ":" not in nid else self.g.unique_id(op)
        self.g.add(Node(nid, op, params, list(inputs)))
        for k, v in (weights or {}).items():
            self.weights[f"params.{nid}.{k}"] = np.ascontiguousarray(v, dtype=np.float32)
        return nid

    def x(self, n, i: int) -> str:
        name = n.input[i] if i < len(n.input) else ""
        if name in self.val:
            return self.val[name]
        raise Unsupported(f"input {i} ('{name}') must be a tensor computed in the graph, not a constant"
                   if name in self.consts else f"input {i} is missing")

    def c(self, n, i: int, default: Any = None) -> Any:
        name = n.input[i] if i < len(n.input) else ""
        if not name:
            return default
        if name not in self.consts:
            raise Unsupported(f"input {i} ('{name}') must be a constant (an initializer or Constant node)")
        return self.consts[name]

    def attrs(self, n) -> dict[str, Any]:
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in n.attribute}

    def sole_user(self, value: str, op_type: str):
        us = self.users.get(value, [])
        out_names = {o.name for o in self.gr.output}
        return us[0] if len(us) == 1 and us[0].op_type == op_type and value not in out_names else None

    # ---- hints from export_onnx -------------------------------------------------------------
    def _hints(self) -> dict[str, dict]:
        heads: dict[str, dict] = {}
        for n in self.gr.node:
            h = parse_hint(n.doc_string)
            if h is not None and "op" in h and h["id"] not in heads:
                heads[h["id"]] = h
        return heads

    def _group_of(self, n) -> str | None:
        h = parse_hint(n.doc_string)
        return None if h is None else h["id"]

    def _use_hint(self, h: dict, group: list) -> bool:
        if "sig" in h:  # nodes edited after export (Relu -> Sigmoid, an attribute, a constant): the hint is stale
            from .onnx_digest import group_digest
            ws = [w[0] for w in h.get("weights", {}).values() if isinstance(w, list) and w]
            if group_digest(group, self.init_protos, ws) != h["sig"]:
                self.ignored_hints.append(h["id"])
                return False
        op = OPS.get(h["op"])
        produced = {o for n in group for o in n.output}
        if op is None or op.is_block or op.name == "input" or not all(v in self.val for v in h["inputs"]) \
                or not all(o in produced for o in h["outputs"]) \
                or not all(w[0] in self.consts for w in h.get("weights", {}).values()):
            return False
        ws = {}
        try:
            for wname, (init, perm, shape) in h.get("weights", {}).items():
                arr = self.consts[init]
                if perm is not None:  # stored transposed: undo it
                    arr = arr.reshape([shape[i] for i in perm]).transpose(np.argsort(perm))
                ws[wname] = arr.reshape(shape)
        except (ValueError, IndexError):  # a hint whose weight layout does not fit the initializer: not ours
            self.ignored_hints.append(h["id"])
            return False
        nid = self.add(h["op"], [self.val[v] for v in h["inputs"]], ws, nid=h["id"], **h["params"])
        for k, o in enumerate(h["outputs"]):
            self.val[o] = nid if k == 0 else f"{nid}:{k}"
        return True

    # ---- driver -------------------------------------------------------------------------------
    def run(self) -> tuple[Graph, dict[str, np.ndarray]]:
        self._inputs()
        for n in self.gr.node:
            if n.op_type == "Constant" and not n.domain:
                from onnx import numpy_helper
                a = n.attribute[0]
                self.consts[n.output[0]] = numpy_helper.to_array(a.t) if a.HasField("t") else np.asarray(
                    self.attrs(n)[a.name])
        groups: dict[str, list] = defaultdict(list)
        for n in self.gr.node:
            gid = self._group_of(n)
            if gid in self.hints:
                groups[gid].append(n)
        for n in self.gr.node:
            if id(n) in self.done or (n.op_type == "Constant" and not n.domain):
                continue
            gid = self._group_of(n)
            if gid in self.hints and gid in groups:
                group = groups.pop(gid)
                if self._use_hint(self.hints[gid], group):
                    self.done.update(id(m) for m in group)
                    continue
            self._generic(n)
        self._outputs()
        if self.unsupported or self.uses:
            raise GraphError(self._report(), fix="replace these ops before exporting (or export the model with "
                                                 "TinyUOp-compatible ops); supported ONNX ops: " + ", ".join(sorted(SUPPORTED)))
        from .infer import analyze
        try:
            analyze(self.g)
        except GraphError as e:
            where = GraphError(e.reason, node=e.node, param=e.param, op=e.op)  # the problem without its help
            raise GraphError(f"the imported graph is not valid: {where}",
                             fix=(f"{e.fix}; " if e.fix else "") + "check the ONNX model's shapes") from None
        return self.g, self.weights

    def _generic(self, n) -> None:
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        handler = HANDLERS.get(key)
        if handler is None:
            self.unsupported[key].append(n.name or f"#{list(self.gr.node).index(n)}")
            return
        if any(v and v not in self.val and v not in self.consts for v in n.input):
            return  # fed by something we could not import: already reported there
        try:
            outs = handler(self, n, self.attrs(n))
        except Unsupported as e:
            self.uses.append(f"{n.op_type} '{n.name or n.output[0]}': {e}")
            return
        for name, ref in zip(n.output, outs):
            if name:
                self.val[name] = ref

    def _inputs(self) -> None:
        for vi in self.gr.input:
            if vi.name in self.consts:
                continue  # old-style models list initializers as inputs too
            t = vi.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            dtype = DTYPES.get(t.elem_type)
            if dtype is None or len(dims) < 2 or any(d is None for d in dims[1:]):
                self.uses.append(f"graph input '{vi.name}': needs a known dtype and shape (batch, sizes...), "
                                 f"got dims {dims}")
                continue
            h = parse_hint(vi.doc_string)
            hid = None if h is None else h["id"]
            self.val[vi.name] = self.add("input", [], nid=hid, name=vi.name, shape=tuple(dims[1:]), dtype=dtype,
                                         batch=dims[0])

    def _outputs(self) -> None:
        outs = [(o.name, self.val.get(o.name)) for o in self.gr.output]
        if any(r is None for _, r in outs):
            return  # an output depends on an unsupported op: reported
        has_output_ops = any(n.op == "output" for n in self.g.nodes)
        sinks = list(dict.fromkeys(r.split(":")[0] for _, r in outs))
        if not has_output_ops and self.hints and sinks == self.g.output_refs():
            return  # written by export_onnx from a graph without Output nodes: keep it that way
        for name, ref in outs:
            node = self.g.node(ref.split(":")[0])
            if node.op != "output" or node.params.get("name") != name:
                self.add("output", [ref], name=name)

    def _report(self) -> str:
        parts = []
        if self.unsupported:
            n = sum(len(v) for v in self.unsupported.values())
            items = [f"{k} x{len(v)} ({', '.join(v[:5])}{', ...' if len(v) > 5 else ''})"
                     for k, v in sorted(self.unsupported.items())]
            parts.append(f"{n} node(s) of {len(self.unsupported)} unsupported op type(s): " + "; ".join(items))
        if self.uses:
            parts.append(f"{len(self.uses)} unsupported use(s): " + "; ".join(self.uses[:10]))
        return "cannot import the ONNX model: " + " | ".join(parts)


def import_onnx(path_or_model: Any, *, use_hints: bool = True) -> tuple[Graph, dict[str, np.ndarray]]:
    """ONNX model (path, bytes or ModelProto) -> (Graph, weights keyed 'params.<node>.<weight>').
    `use_hints=False` ignores TinyUOp's export hints and maps plain ONNX ops only. A file written
    by our exporter carries its graph JSON: when the file's structure still matches the digest
    recorded at export and the imported weights fit that graph, it comes back as it was (blocks
    unexpanded, same hash), else as the imported atomic ops; why is noted in
    `graph.meta["import_note"]` (and warned)."""
    model = load_model(path_or_model)
    importer = _Importer(model, use_hints)
    graph, weights = importer.run()
    notes = []
    if importer.ignored_hints:
        notes.append(f"the ONNX nodes of {len(importer.ignored_hints)} op(s) ({', '.join(importer.ignored_hints[:5])}"
                     f"{', ...' if len(importer.ignored_hints) > 5 else ''}) were changed after export: imported as "
                     "the ONNX ops they now are")
    original = None
    if use_hints:
        original, why = _original(model, graph, weights)
        if why:
            notes.append(why)
    if notes:
        import warnings
        note = "; ".join(notes)
        warnings.warn(note, stacklevel=2)
        graph.meta["import_note"] = note
    return original or graph, weights


def _original(model: Any, imported: Graph, weights: dict[str, np.ndarray]) -> tuple[Graph | None, str | None]:
    """(the graph stored at export, None) when it can be trusted, else (None, why not; None when
    the file simply has no stored graph)."""
    from .infer import analyze
    from .onnx_digest import structure_digest
    from .onnx_export import META_PREFIX
    props = {p.key: p.value for p in model.metadata_props}
    text = props.get(f"{META_PREFIX}graph_json")
    if not text:
        return None, None
    recorded = props.get(f"{META_PREFIX}structure_digest")
    fallback = "imported op by op instead of from the stored graph JSON"
    if not recorded:
        return None, f"the file has no structure digest (written by an older TinyUOp): {fallback}"
    if structure_digest(model, props.get(f"{META_PREFIX}graph_hash")) != recorded:
        return None, f"the ONNX graph was changed after export (its structure digest no longer matches): {fallback}"
    try:
        g = Graph.from_json(text)
        if g.hash() != props.get(f"{META_PREFIX}graph_hash"):
            return None, f"the stored graph JSON does not match its hash: {fallback}"
        an = analyze(g)
        want = {f"params.{n}.{w}": tuple(s.shape) for n, ws in an.weights.items() for w, s in ws.items()}
        got = {k: tuple(v.shape) for k, v in weights.items()}
        if want != got or len(analyze(imported).output_names) != len(an.output_names):
            return None, f"the weights do not fit the stored graph JSON: {fallback}"
        return g, None
    except GraphError as e:
        return None, f"the stored graph JSON is not valid ({e}): {fallback}"


def unsupported_ops(path_or_model: Any) -> Counter:
    """ONNX op types in the model that have no mapping (a quick check before importing)."""
    model = load_model(path_or_model)
    return Counter(n.op_type for n in model.graph.node if n.op_type not in HANDLERS and n.op_type != "Constant")
