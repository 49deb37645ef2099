"""Export a graph to ONNX (tinygrad reads ONNX but cannot write it, so the writer is ours).

`export_onnx(graph, weights)` analyses the graph (blocks expand to atomic ops), then asks each
atomic op's `onnx` entry in the op table to emit its ONNX nodes through an `OnnxCtx`. The
batch axis is dynamic ("N"): the graph is analysed at two batch sizes, and every axis whose
size changes is batch-dependent; entries get these flags so they never bake a batch size into
a constant (reshape keeps ONNX's 0/-1 semantics, which are ours too).

Every ONNX node carries its origin in `doc_string`; the first node of each op's group also
holds a hint (`tinyuop {...}`: op, params, input/output value names, weight layout) so
`onnx_import` can rebuild ops that export as several ONNX nodes (RMSNorm, attention, ...).
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterable

import numpy as np

from .errors import GraphError
from .graph import Graph, split_ref
from .infer import Analysis, analyze
from .optable import TT, get_op
from .fileio import atomic_write

DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 17, 21          # LayerNormalization needs 17; onnxruntime runs up to 21 here
HINT = "tinyuop "                      # doc_string prefix of export hints
META_PREFIX = "tinyuop."
_NP = {"float32": np.float32, "float16": np.float16, "float64": np.float64, "int8": np.int8, "int16": np.int16,
       "int32": np.int32, "int64": np.int64, "uint8": np.uint8, "bool": np.bool_}


def onnx_dtype(name: str) -> int:
    from onnx import TensorProto as T
    return {"float32": T.FLOAT, "float16": T.FLOAT16, "bfloat16": T.BFLOAT16, "float64": T.DOUBLE, "int8": T.INT8,
            "int16": T.INT16, "int32": T.INT32, "int64": T.INT64, "uint8": T.UINT8, "bool": T.BOOL}[name]


class OnnxCtx:
    """What an op's `onnx` entry uses to emit ONNX nodes, one atomic graph node at a time.

    Entry signature: `entry(ctx, xs, p, types) -> name | list[name]` with `xs` the ONNX value
    names of the inputs, `p` the resolved params and `types` the input types (at the first
    analysis batch size). `ctx.out_types`, `ctx.in_dyn` / `ctx.out_dyn` (per-axis "depends on
    the batch" flags) and `ctx.opset` describe the rest.
    """

    def __init__(self, opset: int):
        from onnx import helper, numpy_helper
        self._helper, self._numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._init_index: dict[str, Any] = {}  # name -> TensorProto, for the per-op digests
        self.inputs: list = []
        self._taken: set[str] = set()
        self._consts: dict[tuple, str] = {}

    # ---- per-node state (set by the exporter) --------------------------------------------
    def begin(self, node_id: str, op: str, in_types: list[TT], out_types: list[TT], in_dyn: list[tuple],
              out_dyn: list[tuple], weights: dict[str, np.ndarray]) -> None:
        self.node_id, self.op = node_id, op
        self.in_types, self.out_types, self.in_dyn, self.out_dyn = in_types, out_types, in_dyn, out_dyn
        self._weights, self._used_weights, self._group_start, self._k = weights, {}, len(self.nodes), 0

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self._taken:
            name, k = f"{base}_{k}", k + 1
        self._taken.add(name)
        return name

    # ---- what entries call ----------------------------------------------------------------
    def node(self, op_type: str, inputs: Iterable[str], n_out: int = 1, **attrs: Any) -> str | list[str]:
        """Add one ONNX node; returns its output name (a list when n_out > 1)."""
        self._k += 1
        outs = [self.unique(f"{self.node_id}/{op_type}{self._k}" + (f"_{i}" if n_out > 1 else "")) for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        node = self._helper.make_node(op_type, list(inputs), outs, name=self.unique(f"{self.node_id}#{self._k}"), **attrs)
        node.doc_string = HINT + json.dumps({"id": self.node_id})
        self.nodes.append(node)
        return outs[0] if n_out == 1 else outs

    def const(self, value: Any, dtype: str = "float32") -> str:
        """A constant tensor (initializer); equal constants are shared."""
        arr = np.asarray(value, dtype=_NP.get(dtype, np.float32))
        key = (dtype, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = self.unique(f"const/{self.node_id}/{len(self._consts)}")
            self._add_init(self._numpy_helper.from_array(arr, name))
            self._consts[key] = name if dtype in _NP else self._cast_const(name, dtype)
        return self._consts[key]

    def _add_init(self, tensor: Any) -> None:
        self.initializers.append(tensor)
        self._init_index[tensor.name] = tensor

    def _cast_const(self, name: str, dtype: str) -> str:  # bfloat16 has no numpy type
        return self.node("Cast", [name], to=onnx_dtype(dtype))

    def ints(self, values: Iterable[int]) -> str:
        return self.const(np.asarray(list(values), np.int64), "int64")

    def weight(self, name: str, perm: tuple[int, ...] | None = None, shape: tuple[int, ...] | None = None) -> str:
        """The op's weight `name` as an initializer, optionally transposed by `perm` then reshaped
        (the layout is recorded in the hint so the importer can undo it)."""
        if name not in self._weights:
            raise GraphError(f"has no weight '{name}' to export", node=self.node_id, op=self.op)
        arr = np.asarray(self._weights[name], np.float32)
        orig = list(arr.shape)
        if perm is not None:
            arr = np.ascontiguousarray(arr.transpose(perm))
        if shape is not None:
            arr = arr.reshape(shape)
        init = self.unique(f"{self.node_id}.{name}" + (".T" if perm is not None else ""))
        self._add_init(self._numpy_helper.from_array(arr, init))
        self._used_weights[name] = [init, list(perm) if perm is not None else None, orig]
        return init

    def has_weight(self, name: str) -> bool:
        return name in self._weights

    @staticmethod
    def onnx_dtype(name: str) -> int:
        return onnx_dtype(name)

    def cast(self, x: str, to: str, frm: str | None = None) -> str:
        return x if frm == to else self.node("Cast", [x], to=onnx_dtype(to))

    def reduce(self, op_type: str, x: str, axes: Iterable[int] | None, keepdims: bool) -> str:
        """Reduce* over `axes` (None = all); axes moved from attribute to input at opset 18."""
        axes = None if axes is None else list(axes)
        if axes == []:  # ONNX would reduce everything; reducing over no axis changes nothing
            return self.node("Identity", [x])
        if axes is None:
            return self.node(op_type, [x], keepdims=int(keepdims))
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.node(op_type, [x], axes=axes, keepdims=int(keepdims))

    def graph_input(self, name: str) -> str:
        t, dyn = self.out_types[0], self.out_dyn[0]
        vi = self._helper.make_tensor_value_info(name, onnx_dtype(t.dtype), _dims(t.shape, dyn))
        vi.doc_string = HINT + json.dumps({"id": self.node_id})
        self.inputs.append(vi)
        return name

    def fail(self, message: str, fix: str | None = None) -> None:
        raise GraphError(message, node=self.node_id, op=self.op, fix=fix)

    def need_static(self, i: int, axes: Iterable[int], what: str) -> None:
        """Refuse to export when a size that must be a constant depends on the batch."""
        if any(self.in_dyn[i][a] for a in axes):
            self.fail(f"cannot export {what}: it depends on the batch size, which is dynamic in ONNX",
                      fix="export with dynamic_batch=False (a fixed batch size)")

    # ---- what the exporter calls after the entry -------------------------------------------
    def finish(self, outs: list[str], wants: list[str], hint: dict) -> None:
        """Give the op's outputs their final names and put the hint on the group's first node."""
        group = self.nodes[self._group_start:]
        produced = {o: n for n in group for o in n.output}
        renamed: set[str] = set()
        for out, want in zip(outs, wants):
            if out == want:
                continue
            if out in produced and out not in renamed:  # rename in place (and in later group uses)
                renamed.add(out)
                for n in group:
                    for seq in (n.output, n.input):
                        for i, v in enumerate(seq):
                            if v == out:
                                seq[i] = want
                continue
            self.node("Identity", [want if out in renamed else out])  # pass-through or repeated value
            self.nodes[-1].output[0] = want
            group = self.nodes[self._group_start:]
        if group:  # the digest lets the importer see whether these nodes were edited after export
            from .onnx_digest import group_digest
            sig = group_digest(group, self._init_index, [w[0] for w in self._used_weights.values()])
            hint = dict(hint, outputs=wants, weights=self._used_weights, sig=sig)
            group[0].doc_string = HINT + json.dumps(hint)


def _dims(shape: tuple, dyn: tuple) -> list:
    return ["N" if d else s for s, d in zip(shape, dyn)]


def _batch_dims(t2: TT, t3: TT, b2: int, b3: int) -> list:
    """"N" where the size is the batch, unknown where it only depends on it (e.g. N*12)."""
    return [x if x == y else ("N" if (x, y) == (b2, b3) else None) for x, y in zip(t2.shape, t3.shape)]


def _resolve_weights(graph: Graph, an: Analysis, weights: Any) -> dict[str, np.ndarray]:
    if weights is None:  # seeded initial weights, exactly as compile_graph(graph, seed=0) makes them
        from .compile import compile_graph
        return compile_graph(graph, seed=0).numpy_weights()
    if hasattr(weights, "numpy_weights"):
        return weights.numpy_weights()
    need = {f"params.{nid}.{w}": spec.shape for nid, ws in an.weights.items() for w, spec in ws.items()}
    missing = [k for k in need if k not in weights]
    if missing:
        raise GraphError(f"weights are missing {len(missing)} key(s): {', '.join(missing[:6])}",
                         fix="pass CompiledModel.numpy_weights() of this graph (keys 'params.<node>.<weight>')")
    for k, shape in need.items():
        if tuple(np.shape(weights[k])) != tuple(shape):
            raise GraphError(f"weight '{k}' has shape {tuple(np.shape(weights[k]))}, the graph needs {tuple(shape)}")
    return weights


def export_onnx(graph: Graph, weights: dict[str, np.ndarray] | None = None, path: str | os.PathLike | None = None, *,
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = True, batch_size: int = 1,
                metadata: dict | None = None, class_labels: list | None = None, check: bool = True):
    """Graph (+ weights keyed 'params.<node>.<weight>') -> onnx.ModelProto; written to `path`
    atomically when given. `batch_size` is the fixed batch when dynamic_batch=False."""
    import onnx
    from onnx import helper
    if not MIN_OPSET <= int(opset) <= MAX_OPSET:
        raise GraphError(f"opset {opset} is not supported", param="opset", fix=f"use {MIN_OPSET}..{MAX_OPSET}")
    b2, b3 = (2, 3) if dynamic_batch else (batch_size, batch_size)
    an = analyze(graph, b2)
    try:
        an3 = analyze(graph, b3) if dynamic_batch else an
    except GraphError as e:
        raise GraphError(f"the graph does not work with another batch size ({e})",
                         fix="use -1 or 0 for the batch axis in reshape/expand shapes, or export with dynamic_batch=False") from None
    w_all = _resolve_weights(graph, an, weights)
    ctx = OnnxCtx(int(opset))
    types3 = an3.types
    in_names = [an.params[n.id]["name"] for n in an.atomic.nodes if n.op == "input"]
    reserved = set(in_names) | set(an.output_names)
    for dup in {n for n in an.output_names if an.output_names.count(n) > 1} | (set(in_names) & set(an.output_names)):
        raise GraphError(f"the name '{dup}' is used by more than one graph input/output",
                         fix="give every Graph Input and Graph Output a distinct name")
    ctx._taken |= reserved
    value: dict[str, str] = {}
    dyn: dict[str, tuple] = {}
    out_name = dict(zip(an.outputs, an.output_names))
    for node in an.atomic.nodes:
        op = get_op(node.op)
        p, nid = an.params[node.id], node.id
        refs = [nid] + [f"{nid}:{k}" for k in range(1, len(an.types[nid]))]
        out_dyn = [tuple(x != y for x, y in zip(t.shape, t3.shape)) for t, t3 in zip(an.types[nid], types3[nid])]
        in_types = [an.types[split_ref(r)[0]][split_ref(r)[1]] for r in node.inputs]
        ws = {w: w_all[f"params.{nid}.{w}"] for w in an.weights.get(nid, {})}
        ctx.begin(nid, node.op, in_types, an.types[nid], [dyn[r] for r in _norm(node.inputs)], out_dyn, ws)
        if not callable(op.onnx):
            raise GraphError("has no ONNX export entry", node=nid, op=node.op, fix="add onnx=... to its OpDef")
        xs = [value[r] for r in _norm(node.inputs)]
        if ws:  # float32 weights: low-precision float inputs are promoted first, as tinygrad does
            low = [t.dtype in ("float16", "bfloat16") for t in in_types]
            xs = [ctx.cast(x, "float32", t.dtype) if lo else x for x, t, lo in zip(xs, in_types, low)]
            in_types = [type(t)(t.shape, "float32") if lo else t for t, lo in zip(in_types, low)]
        try:
            outs = op.onnx(ctx, xs, p, in_types)
        except GraphError as e:
            raise (e if e.node else GraphError(e.reason, node=nid, op=node.op, param=e.param, fix=e.fix)) from None
        outs = [outs] if isinstance(outs, str) else list(outs)
        if len(outs) != len(refs):
            raise GraphError(f"ONNX entry returned {len(outs)} outputs, the op has {len(refs)}", node=nid, op=node.op)
        if node.op in ("input", "output"):
            wants = [p["name"]]
        else:  # the ref itself, unless another value (an input/output name) already has that name
            wants = [r if out_name.get(r) == r else ctx.unique(r) for r in refs]
        ctx.finish(outs, wants, {"id": nid, "op": node.op, "params": _jsonable(p),
                                 "inputs": [value[r] for r in _norm(node.inputs)]})
        for r, w, d in zip(refs, wants, out_dyn):
            value[r], dyn[r] = w, d
    outputs = []
    for ref, name in zip(an.outputs, an.output_names):
        ref = _norm([ref])[0]
        if value[ref] != name:  # a sink without an Output node whose ref name was taken
            ctx.node_id = ""  # belongs to no op: the importer reads it as an alias
            ctx.node("Identity", [value[ref]])
            ctx.nodes[-1].output[0] = name
        nid, k = split_ref(ref)
        dims = _batch_dims(an.types[nid][k], types3[nid][k], b2, b3)
        outputs.append(helper.make_tensor_value_info(name, onnx_dtype(an.types[nid][k].dtype), dims))
    g = helper.make_graph(ctx.nodes, _safe_name(graph.name), ctx.inputs, outputs, initializer=ctx.initializers)
    opsets = [helper.make_opsetid("", int(opset))]
    model = helper.make_model(g, opset_imports=opsets, producer_name="tinyuop", producer_version=_version(),
                              ir_version=helper.find_min_ir_version_for(opsets))
    model.doc_string = f"TinyUOp graph '{graph.name}'"
    from .onnx_digest import structure_digest
    helper.set_model_props(model, _metadata(graph, metadata, class_labels, structure_digest(model, graph.hash())))
    if check:
        _check(model, an)
    if path is not None:
        save_onnx(model, path)
    return model


def _check(model, an: Analysis | None = None) -> None:
    """onnx.checker (full: strict shape/type inference); failures name our node, its op and the
    dtype ONNX refused."""
    import re

    import onnx
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        text = str(e).strip()
        m = re.search(r"node name: ([^#)]*)", text)
        nid = m.group(1) if m else None
        node = next((n for n in an.atomic.nodes if n.id == nid), None) if an is not None and nid else None
        op = node.op if node is not None else None
        bad = re.search(r"op_type:(\w+).*unsupported type: tensor\((\w+)\)", text)
        if op is not None and an.weights.get(nid):
            fix = f"'{nid}' has float32 weights: feed it float32 (add a Cast to float32 before it)"
        elif op is not None and bad:
            dtype = {"float": "float32", "double": "float64"}.get(bad.group(2), bad.group(2))
            fix = (f"ONNX {bad.group(1)}, which {op} exports to, does not take {dtype}: Cast the input of "
                   f"'{nid}' to a wider dtype (int32 or float32) first; the {op} export should do this itself, "
                   "so please report it")
        else:
            fix = f"the ONNX export of {op or 'this op'} needs fixing (please report it with the graph)"
        raise GraphError(f"the exported ONNX model fails onnx.checker: {text}", node=nid, op=op, fix=fix) from None


def _norm(refs: list[str]) -> list[str]:
    """'node:0' and 'node' are the same value."""
    return [split_ref(r)[0] if split_ref(r)[1] == 0 else r for r in refs]


def _jsonable(v: Any) -> Any:
    from .graph import jsonable
    return jsonable(v)


def _safe_name(name: str) -> str:
    return name or "graph"


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("tinyuop-builder")
    except Exception:  # not installed as a distribution (running from src/)
        return "0"


def _metadata(graph: Graph, metadata: dict | None, class_labels: list | None, digest: str) -> dict[str, str]:
    meta = dict(metadata or {})
    out = {f"{META_PREFIX}graph_hash": graph.hash(), f"{META_PREFIX}graph_json": graph.to_json(indent=None),
           f"{META_PREFIX}structure_digest": digest, f"{META_PREFIX}format_version": "1"}
    record = meta.pop("training_record_id", None) or graph.meta.get("training_record_id")
    if record is not None:
        out[f"{META_PREFIX}training_record_id"] = str(record)
    run = meta.pop("experiment_run_id", None)  # the training run in the experiment store (the record id is a digest)
    if run is not None:
        out[f"{META_PREFIX}experiment_run_id"] = str(run)
    labels = class_labels if class_labels is not None else meta.pop("class_labels", None)
    if labels is not None:
        out[f"{META_PREFIX}class_labels"] = json.dumps([_plain(x) for x in labels])
    for k, v in meta.items():
        out[str(k)] = v if isinstance(v, str) else json.dumps(_jsonable(v), default=str)
    return out


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def onnx_metadata(model_or_path: Any) -> dict[str, Any]:
    """metadata_props as a dict; TinyUOp's keys decoded (class_labels -> list, graph_json -> Graph)."""
    model = load_model(model_or_path)
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        k, v = prop.key, prop.value
        if k == f"{META_PREFIX}class_labels":
            v = json.loads(v)
        elif k == f"{META_PREFIX}graph_json":
            v = Graph.from_json(v)
        elif k == f"{META_PREFIX}experiment_run_id" and v.isdigit():
            v = int(v)  # as ExperimentStore.get_run takes it
        out[k[len(META_PREFIX):] if k.startswith(META_PREFIX) else k] = v
    return out


def load_model(model_or_path: Any):
    """onnx.ModelProto from a ModelProto, bytes or path; empty, truncated and non-ONNX files are
    refused with a GraphError saying which (see onnx_file)."""
    from .onnx_file import load_model as load
    return load(model_or_path)


def save_onnx(model, path: str | os.PathLike) -> str:
    atomic_write(path, model.SerializeToString())
    return os.fspath(path)


def export_onnx_bytes(graph: Graph, weights: dict[str, np.ndarray] | None = None, **kw: Any) -> bytes:
    return export_onnx(graph, weights, **kw).SerializeToString()
