"""User block library: save any subgraph as a named block (JSON) and use it like a built-in.

A block file holds the subgraph (its Graph Input nodes become the block's inputs, its
outputs the block's outputs), a description, optional exposed parameters that map a block
parameter to inner node parameters, and provenance. Loading registers an op
`user_<name>` that expands to the saved nodes, so shapes, compile, ONNX and the KNIME
nodes all work through the op table. Blocks may contain other blocks (they nest).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .errors import GraphError
from .graph import Graph, jsonable, split_ref
from .optable import OPS, OpDef, register
from .params import Param, INT, FLOAT, BOOL, STR, INTS
from .fileio import atomic_write

BLOCK_FORMAT = "tinyuop.block"
DEFAULT_LIBRARY = Path(os.environ.get("TINYUOP_BLOCK_LIBRARY", Path.home() / ".tinyuop" / "blocks"))
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,48}$")


def op_name(block_name: str) -> str:
    return f"user_{block_name}"




def _param_for(name: str, value: Any, doc: str) -> Param:
    kind = BOOL if isinstance(value, bool) else INT if isinstance(value, int) else FLOAT if isinstance(value, float) \
        else INTS if isinstance(value, (list, tuple)) else STR
    return Param(name, kind, tuple(value) if kind == INTS else value, doc)


def block_document(graph: Graph, name: str, description: str, exposed: dict[str, list[str]] | None = None,
                   provenance: dict | None = None) -> dict:
    """Validate a subgraph as a block and return its JSON document."""
    if not _NAME.match(name):
        raise GraphError(f"block name '{name}' is not valid", param="name",
                         fix="use lower-case letters, digits and underscores, starting with a letter (max 49)")
    from .infer import analyze
    analyze(graph)  # the block must be a valid graph on its own
    if not graph.inputs():
        raise GraphError("a block needs at least one Graph Input", fix="start the subgraph with a Graph Input node")
    exposed = exposed or {}
    params = {}
    for pname, targets in exposed.items():
        if not targets:
            raise GraphError(f"exposed parameter '{pname}' maps to nothing", param=pname)
        nid, _, key = targets[0].rpartition(".")
        node = graph.node(nid)
        from .optable import get_op
        from .params import resolve_params
        value = resolve_params(get_op(node.op).params, node.params)[key] if key in {p.name for p in get_op(node.op).params} \
            else None
        if value is None:
            raise GraphError(f"'{targets[0]}' is not a parameter of node '{nid}'", param=pname)
        params[pname] = {"default": jsonable(value), "targets": list(targets)}
    return {"format": BLOCK_FORMAT, "version": 1, "name": name, "description": description.strip() or name,
            "graph": graph.to_dict(), "params": params, "provenance": provenance or {}}


def save_block(graph: Graph, name: str, description: str = "", folder: str | Path | None = None,
               exposed: dict[str, list[str]] | None = None, overwrite: bool = False,
               provenance: dict | None = None) -> Path:
    """Save `graph` as block `name` in the library folder (atomically) and register it."""
    doc = block_document(graph, name, description, exposed, provenance)
    path = Path(folder or DEFAULT_LIBRARY) / f"{name}.block.json"
    if path.exists() and not overwrite:
        raise GraphError(f"block '{name}' already exists at {path}", param="name",
                         fix="choose another name or allow overwriting")
    atomic_write(path, json.dumps(doc, indent=1).encode())
    register_block(doc, replace=True)
    return path


def _expand_user(doc: dict):
    inner = Graph.from_dict(doc["graph"])
    input_ids = [n.id for n in inner.inputs()]
    exposed = doc.get("params", {})

    def expand(sub, refs, p, types):
        overrides: dict[str, dict] = {}
        for pname, spec in exposed.items():
            for target in spec["targets"]:
                nid, _, key = target.rpartition(".")
                overrides.setdefault(nid, {})[key] = p[pname]
        local: dict[str, str] = dict(zip(input_ids, refs))
        for n in inner.topo_order():
            if n.op == "input":
                continue
            ins = []
            for r in n.inputs:
                src, k = split_ref(r)
                base = local[src]
                ins.append(base if k == 0 else f"{base}:{k}")
            local[n.id] = sub.add(n.op, ins, n.id, **{**n.params, **overrides.get(n.id, {})})
        return [local[split_ref(r)[0]] for r in inner.output_refs()]
    return expand


def register_block(doc: dict, replace: bool = False) -> OpDef:
    if doc.get("format") != BLOCK_FORMAT:
        raise GraphError(f"not a TinyUOp block file (format '{doc.get('format')}')")
    inner = Graph.from_dict(doc["graph"])
    params = tuple(_param_for(k, v["default"], f"sets {', '.join(v['targets'])}") for k, v in doc.get("params", {}).items())
    inputs = tuple(n.params.get("name", n.id) for n in inner.inputs())
    existing = OPS.get(op_name(doc["name"]))
    if existing is not None and existing.meta.get("plugin"):
        raise GraphError(f"block '{doc['name']}' clashes with the approved plugin of the same name",
                         param="name", fix="rename the block")
    op = OpDef(op_name(doc["name"]), doc["name"].replace("_", " ").title(), "user",
               (doc["description"].splitlines()[0].rstrip(".") + "."), params, inputs,
               infer=lambda ts, p: [], expand=_expand_user(doc), onnx="expand", user=True,
               meta={"document": doc})
    return register(op, replace=replace)


def load_library(folder: str | Path | None = None) -> list[OpDef]:
    """Register every `*.block.json` in the folder; unreadable files raise naming the file."""
    folder = Path(folder or DEFAULT_LIBRARY)
    ops = []
    if not folder.is_dir():
        return ops
    from . import ops as _builtin  # noqa: F401  (built-ins first: user blocks may use them)
    for path in sorted(folder.glob("*.block.json")):
        try:
            doc = json.loads(path.read_text())
            ops.append(register_block(doc, replace=True))
        except (json.JSONDecodeError, KeyError, GraphError) as e:
            raise GraphError(f"block file {path} cannot be loaded: {e}",
                             fix="fix or remove the file from the block library") from None
    return ops


def remove_block(name: str) -> None:
    OPS.pop(op_name(name), None)
