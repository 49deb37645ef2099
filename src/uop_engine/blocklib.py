"""User block library: save any subgraph as a named block (JSON) and use it like a built-in.

A block file holds the subgraph (its Graph Input nodes become the block's inputs, its
outputs the block's outputs), a description, optional exposed parameters that map a block
parameter to inner node parameters, and provenance. Loading registers an op
`user_<name>` that expands to the saved nodes, so shapes, compile, ONNX and the KNIME
nodes all work through the op table. Blocks may contain other blocks (they nest).
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
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
_log = logging.getLogger(__name__)
_expanding = threading.local()  # user blocks being expanded, outermost first (a block may not contain itself)


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
    uses = _blocks_used(graph)
    if op_name(name) in uses:
        raise GraphError(f"block '{name}' would contain itself (through {uses[op_name(name)]})", param="name",
                         fix="save it under another name or remove the block from the subgraph")
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


def _blocks_used(graph: Graph, path: str = "") -> dict[str, str]:
    """User-block ops used by `graph`, directly or inside the blocks it uses: op -> path to it."""
    found: dict[str, str] = {}
    todo = [(graph, path)]
    while todo:
        g, where = todo.pop()
        for n in g.nodes:
            op = OPS.get(n.op)
            if op is None or not op.user or n.op in found:
                continue
            found[n.op] = f"{where}{n.id}"
            doc = op.meta.get("document")
            if isinstance(doc, dict):
                todo.append((Graph.from_dict(doc["graph"]), f"{where}{n.id}/"))
    return found


def _expand_user(doc: dict):
    inner = Graph.from_dict(doc["graph"])
    input_ids = [n.id for n in inner.inputs()]
    exposed = doc.get("params", {})

    def expand(sub, refs, p, types):
        stack = getattr(_expanding, "stack", ())
        if doc["name"] in stack:  # a block saved into itself, or two blocks using each other
            raise GraphError(f"block '{doc['name']}' contains itself ({' -> '.join(stack + (doc['name'],))})",
                             fix="remove the block from its own definition (edit or delete its file)")
        overrides: dict[str, dict] = {}
        for pname, spec in exposed.items():
            for target in spec["targets"]:
                nid, _, key = target.rpartition(".")
                overrides.setdefault(nid, {})[key] = p[pname]
        local: dict[str, str] = dict(zip(input_ids, refs))
        _expanding.stack = stack + (doc["name"],)
        try:
            for n in inner.topo_order():
                if n.op == "input":
                    continue
                ins = []
                for r in n.inputs:
                    src, k = split_ref(r)
                    base = local[src]
                    ins.append(base if k == 0 else f"{base}:{k}")
                local[n.id] = sub.add(n.op, ins, n.id, **{**n.params, **overrides.get(n.id, {})})
        finally:
            _expanding.stack = stack
        return [local[split_ref(r)[0]] for r in inner.output_refs()]
    return expand


def check_block_document(doc: Any) -> Graph:
    """The inner graph of a block document, or GraphError saying which key is wrong (files are
    written by hand or by other tools, so every field is checked before anything uses it)."""
    if not isinstance(doc, dict):
        raise GraphError(f"a block file must hold a JSON object, got {type(doc).__name__}")
    if doc.get("format") != BLOCK_FORMAT:
        raise GraphError(f"not a TinyUOp block file (format '{doc.get('format')}', expected '{BLOCK_FORMAT}')")
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise GraphError(f"'name' must be a block name (lower-case letters, digits, underscores), got {json.dumps(name)}")
    if not isinstance(doc.get("description", ""), str):
        raise GraphError("'description' must be text")
    if not isinstance(doc.get("graph"), dict):
        raise GraphError("'graph' must be a graph object (format tinyuop.graph)")
    inner = Graph.from_dict(doc["graph"])
    if not inner.inputs():
        raise GraphError("the block's graph has no Graph Input")
    if any(n.op == op_name(name) for n in inner.nodes):
        raise GraphError(f"block '{name}' contains itself", fix="remove the block from its own definition")
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise GraphError("'params' must be an object: {name: {\"default\": value, \"targets\": [\"node.param\"]}}")
    for pname, spec in params.items():
        if not isinstance(spec, dict) or "default" not in spec or not isinstance(spec.get("targets"), list):
            raise GraphError(f"exposed parameter '{pname}' must be an object with 'default' and 'targets', "
                             f"got {json.dumps(spec)[:60]}", param=pname)
        d = spec["default"]
        if not (isinstance(d, (bool, int, float, str)) or (isinstance(d, list) and all(
                isinstance(x, int) and not isinstance(x, bool) for x in d))):
            raise GraphError(f"default {json.dumps(d)[:60]} must be a number, text, true/false or a list of "
                             "whole numbers", param=pname)
        for t in spec["targets"]:
            nid, _, key = t.rpartition(".") if isinstance(t, str) else ("", "", "")
            if not nid or not key or nid not in inner:
                raise GraphError(f"target {json.dumps(t)} must be 'node.parameter' with a node of the block",
                                 param=pname, fix=f"nodes: {', '.join(inner.ids())}")
    return inner


def register_block(doc: dict, replace: bool = False) -> OpDef:
    inner = check_block_document(doc)
    params = tuple(_param_for(k, v["default"], f"sets {', '.join(v['targets'])}") for k, v in doc.get("params", {}).items())
    inputs = tuple(n.params.get("name", n.id) for n in inner.inputs())
    existing = OPS.get(op_name(doc["name"]))
    if existing is not None and existing.meta.get("plugin"):
        raise GraphError(f"block '{doc['name']}' clashes with the approved plugin of the same name",
                         param="name", fix="rename the block")
    summary = (doc.get("description") or doc["name"]).strip().splitlines() or [doc["name"]]
    op = OpDef(op_name(doc["name"]), doc["name"].replace("_", " ").title(), "user", summary[0].rstrip(".") + ".",
               params, inputs, infer=lambda ts, p: [], expand=_expand_user(doc), onnx="expand", user=True,
               meta={"document": doc})
    return register(op, replace=replace)


def read_block_file(path: str | Path) -> dict:
    """The checked document of one block file; GraphError naming the file and the problem."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        check_block_document(doc)
    except OSError as e:
        raise GraphError(f"block file {path} cannot be read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GraphError(f"block file {path} is not valid JSON: {e}",
                         fix="fix or remove the file from the block library") from None
    except GraphError as e:  # the inner error's place and reason, then one 'help:' holding both fixes
        where = str(GraphError(e.reason, node=e.node, param=e.param, op=e.op))
        remedy = "fix or remove the file from the block library"
        raise GraphError(f"block file {path} cannot be loaded: {where}",
                         fix=f"{e.fix}; {remedy}" if e.fix else remedy) from None
    return doc


def load_block(name: str, folder: str | Path | None = None) -> OpDef:
    """Register block `name` from its file in the library; a clear error when it is missing or broken."""
    path = Path(folder or DEFAULT_LIBRARY) / f"{name}.block.json"
    if not path.is_file():
        have = sorted(p.name[:-len(".block.json")] for p in path.parent.glob("*.block.json")) if path.parent.is_dir() else []
        raise GraphError(f"no block '{name}' in the library {path.parent}", param="block_name",
                         fix=f"blocks there: {', '.join(have) or 'none'}")
    from . import ops as _builtin  # noqa: F401  (built-ins first: user blocks may use them)
    return register_block(read_block_file(path), replace=True)


def load_library(folder: str | Path | None = None, problems: dict[str, str] | None = None) -> list[OpDef]:
    """Register every `*.block.json` in the folder. A file that cannot be loaded is skipped with a
    warning naming it and the problem (also put in `problems`, path -> message): one broken
    file must not hide the other blocks, nor every node of the KNIME extension."""
    folder = Path(folder or DEFAULT_LIBRARY)
    ops = []
    if not folder.is_dir():
        return ops
    from . import ops as _builtin  # noqa: F401  (built-ins first: user blocks may use them)
    for path in sorted(folder.glob("*.block.json")):
        try:
            ops.append(register_block(read_block_file(path), replace=True))
        except Exception as e:  # noqa: BLE001  anything in a hand-edited file; reported, never fatal
            msg = str(e) if isinstance(e, GraphError) else f"block file {path} cannot be loaded: {type(e).__name__}: {e}"
            _log.warning("TinyUOp block skipped: %s", msg)
            if problems is not None:
                problems[str(path)] = msg
    return ops


def remove_block(name: str) -> None:
    OPS.pop(op_name(name), None)
