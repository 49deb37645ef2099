"""The graph IR: a DAG of nodes `{id, op, params, inputs}` with a format version.

Inputs are refs: "node_id" for a node's first output, "node_id:k" for output k (split).
JSON round trips exactly; `hash()` is a content hash that ignores node ids (two graphs
built in different orders or with different ids, but the same ops, hash the same) and covers
what the user blocks and plugins used expand to.

`meta["instances"]` maps node ids to the token of the KNIME node that added them: KNIME shows
no node-instance id to Python, and two Linear nodes with the same settings on the same input
give the same id and content, so `merge` needs the token to keep them apart (see merge).
"""
from __future__ import annotations

import copy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import GraphError

FORMAT = "tinyuop.graph"
VERSION = 1
INSTANCES = "instances"  # meta key: node id -> instance token of the KNIME node that added it
_TOP_KEYS = ("format", "version", "name", "nodes", "meta")
_NODE_KEYS = ("id", "op", "params", "inputs")


def split_ref(ref: str) -> tuple[str, int]:
    node, _, k = ref.rpartition(":") if ":" in ref else (ref, "", "0")
    if not node:
        return ref, 0
    try:
        return node, int(k)
    except ValueError:
        return ref, 0


def jsonable(v: Any) -> Any:
    """Params as plain JSON values: tuples become lists."""
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return v


def _no_unknown_keys(d: dict, allowed: tuple[str, ...], where: str) -> None:
    # a misspelt key ('input' for 'inputs') would otherwise be dropped without a word
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise GraphError(f"{where} has unknown key '{unknown[0]}'", fix=f"use only the keys {', '.join(allowed)}")


_defining = threading.local()  # blocks whose definition is being hashed, outermost first


def definition_key(op: Any) -> str | None:
    """What a user block or plugin expands to (None for built-in ops): part of the content hash,
    so overwriting a block changes the hash of every graph that uses it."""
    if op.meta.get("sha256"):  # an approved plugin: the exact bytes of its code
        return str(op.meta["sha256"])
    doc = op.meta.get("document") if op.user else None
    if not isinstance(doc, dict):
        return None
    stack = getattr(_defining, "stack", ())
    if op.name in stack:
        raise GraphError(f"block '{doc.get('name')}' contains itself ({' -> '.join(stack + (op.name,))})",
                         fix="remove the block from its own definition")
    _defining.stack = stack + (op.name,)
    try:
        inner = Graph.from_dict(doc.get("graph")).hash()
    finally:
        _defining.stack = stack
    return json.dumps([inner, jsonable(doc.get("params") or {})], sort_keys=True)


@dataclass
class Node:
    id: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "op": self.op, "params": jsonable(self.params), "inputs": list(self.inputs)}


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    name: str = "graph"
    meta: dict[str, Any] = field(default_factory=dict)

    # ---- access -----------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise GraphError(f"no node with id '{node_id}'", fix=f"ids in this graph: {', '.join(self.ids()[:20])}")

    def ids(self) -> list[str]:
        return [n.id for n in self.nodes]

    def __contains__(self, node_id: str) -> bool:
        return any(n.id == node_id for n in self.nodes)

    def inputs(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "input"]

    def output_refs(self) -> list[str]:
        """Explicit Graph Output nodes, else every node nobody consumes (in node order)."""
        outs = [n.id for n in self.nodes if n.op == "output"]
        if outs:
            return outs
        used = {split_ref(r)[0] for n in self.nodes for r in n.inputs}
        outs = [n.id for n in self.nodes if n.id not in used and n.op != "input"]
        # a graph of inputs only (what Graph Input hands on) is the identity network
        return outs or [n.id for n in self.nodes if n.op == "input"]

    # ---- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name,
                "nodes": [n.to_dict() for n in self.nodes], "meta": jsonable(self.meta)}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, d: Any) -> "Graph":
        if not isinstance(d, dict):
            raise GraphError(f"graph JSON must be an object, got {type(d).__name__}")
        _no_unknown_keys(d, _TOP_KEYS, "the graph")
        if d.get("format", FORMAT) != FORMAT:
            raise GraphError(f"format is '{d.get('format')}', expected '{FORMAT}'")
        v = d.get("version", VERSION)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise GraphError(f"'version' must be a whole number such as {VERSION}, got {json.dumps(v)}",
                             fix=f"write \"version\": {VERSION}")
        if v > VERSION:
            raise GraphError(f"graph format version {v} is newer than this TinyUOp ({VERSION})",
                             fix="update TinyUOp Builder to read this graph")
        raw = d.get("nodes")
        if not isinstance(raw, list):
            raise GraphError("graph JSON needs a 'nodes' list")
        meta = d.get("meta", {})
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise GraphError(f"'meta' must be an object, got {type(meta).__name__}", fix="write \"meta\": {} or leave it out")
        nodes = []
        for i, n in enumerate(raw):
            if not isinstance(n, dict) or not isinstance(n.get("id"), str) or not isinstance(n.get("op"), str):
                raise GraphError(f"node #{i} needs string 'id' and 'op' fields, got {str(n)[:80]}")
            _no_unknown_keys(n, _NODE_KEYS, f"node '{n['id']}'")
            params, inputs = n.get("params", {}), n.get("inputs", [])
            if not isinstance(params, dict):
                raise GraphError("'params' must be an object", node=n["id"])
            if not isinstance(inputs, list) or not all(isinstance(r, str) for r in inputs):
                raise GraphError("'inputs' must be a list of node ids", node=n["id"])
            nodes.append(Node(n["id"], n["op"], dict(params), list(inputs)))
        return cls(nodes, str(d.get("name", "graph")), dict(meta))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Graph":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise GraphError(f"graph JSON is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        return cls.from_dict(d)

    def copy(self) -> "Graph":
        return copy.deepcopy(self)

    # ---- instance tokens (KNIME) ----------------------------------------------------------
    def instance_of(self, node_id: str) -> str | None:
        tokens = self.meta.get(INSTANCES)
        return tokens.get(node_id) if isinstance(tokens, dict) else None

    def stamp(self, node_ids: Iterable[str], token: str) -> None:
        """Mark nodes as added by the KNIME node instance `token` (see merge)."""
        tokens = self.meta.get(INSTANCES)
        if not isinstance(tokens, dict):
            tokens = self.meta[INSTANCES] = {}
        tokens.update({nid: token for nid in node_ids})

    def without_instances(self) -> "Graph":
        """A copy without instance tokens: what is saved as a block or shown as graph JSON,
        where the tokens of one KNIME run would only be noise."""
        g = self.copy()
        g.meta.pop(INSTANCES, None)
        return g

    # ---- structure ----------------------------------------------------------------------
    def check_structure(self) -> None:
        """Ids unique, ops known, inputs existing with the right arity, no cycles, params valid."""
        from .optable import get_op
        from .params import resolve_params
        seen: dict[str, Node] = {}
        for n in self.nodes:
            if n.id in seen:
                raise GraphError("the id is used by two nodes", node=n.id, fix="give every node a unique id")
            if not n.id or ":" in n.id:
                raise GraphError("node ids must be non-empty and contain no ':'", node=n.id)
            seen[n.id] = n
        for n in self.nodes:
            try:
                op = get_op(n.op)
            except GraphError as e:
                raise e.at(n.id, n.op) from None
            for r in n.inputs:
                src, _ = split_ref(r)
                if src not in seen:
                    raise GraphError(f"input '{r}' refers to no node", node=n.id, op=n.op,
                                     fix="connect the input to an existing node")
            if not op.n_inputs_ok(len(n.inputs)):
                want = f"at least {len(op.inputs)}" if op.variadic else str(len(op.inputs))
                raise GraphError(f"has {len(n.inputs)} inputs but {op.label} takes {want} ({', '.join(op.inputs) or 'none'})",
                                 node=n.id, op=n.op, fix="connect every input port")
            resolve_params(op.params, n.params, node=n.id, op=n.op)
        self.topo_order()

    def topo_order(self) -> list[Node]:
        by_id = {n.id: n for n in self.nodes}
        state: dict[str, int] = {}
        order: list[Node] = []
        for start in self.nodes:  # iterative DFS, so deep graphs do not hit the recursion limit
            if start.id in state:
                continue
            stack = [(start, iter(start.inputs))]
            state[start.id] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    state[node.id] = 2
                    order.append(node)
                    continue
                src = by_id.get(split_ref(nxt)[0])
                if src is None:
                    raise GraphError(f"input '{nxt}' refers to no node", node=node.id, op=node.op)
                if state.get(src.id) == 1:
                    raise GraphError(f"the graph has a cycle through '{src.id}'", node=node.id,
                                     fix="remove the connection that feeds a node's output back into it")
                if src.id not in state:
                    state[src.id] = 1
                    stack.append((src, iter(src.inputs)))
        return order

    # ---- identity -----------------------------------------------------------------------
    def canonical(self) -> list[dict]:
        """Id-free form: nodes in a deterministic topological order, inputs as positions."""
        from .optable import get_op
        from .params import resolve_params
        self.check_structure()
        by_id = {n.id: n for n in self.nodes}
        memo: dict[str, str] = {}

        def key(nid: str) -> str:  # structural key of a node = its op, params and inputs' keys
            if nid not in memo:
                n = by_id[nid]
                op = get_op(n.op)
                p = resolve_params(op.params, n.params)
                ins = [key(split_ref(r)[0]) + f":{split_ref(r)[1]}" for r in n.inputs]
                body = [n.op, jsonable(p), ins] + ([d] if (d := definition_key(op)) is not None else [])
                memo[nid] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            return memo[nid]

        depth: dict[str, int] = {}
        for n in self.topo_order():  # inputs come first, so key() and depth never recurse deeply
            key(n.id)
            depth[n.id] = max((1 + depth[split_ref(r)[0]] for r in n.inputs), default=0)
        order = sorted(self.nodes, key=lambda n: (depth[n.id], memo[n.id]))
        pos = {n.id: i for i, n in enumerate(order)}
        out = []
        for n in order:
            op = get_op(n.op)
            c = {"op": n.op, "params": jsonable(resolve_params(op.params, n.params)),
                 "inputs": [f"{pos[split_ref(r)[0]]}:{split_ref(r)[1]}" for r in n.inputs]}
            if (d := definition_key(op)) is not None:
                c["definition"] = d
            out.append(c)
        return out

    def hash(self) -> str:
        """Stable content hash (hex, 16 chars) independent of node ids and node order."""
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()[:16]

    # ---- variants -----------------------------------------------------------------------
    def fork(self, overrides: dict[str, Any] | None = None, *, name: str | None = None, **per_node: dict) -> "Graph":
        """A copy with parameters changed: `g.fork(conv_1={"out_channels": 32})` or
        `g.fork({"conv_1.out_channels": 32})`. Unknown nodes or parameters are errors."""
        g = self.copy()
        if name is not None:
            g.name = name
        changes: dict[str, dict] = {k: dict(v) for k, v in per_node.items()}
        for k, v in (overrides or {}).items():
            nid, _, param = k.rpartition(".")
            if not nid:
                raise GraphError(f"override '{k}' must look like 'node_id.param'")
            changes.setdefault(nid, {})[param] = v
        for nid, params in changes.items():
            node = g.node(nid)
            node.params.update(params)
        g.check_structure()
        return g

    def add(self, node: Node) -> Node:
        if node.id in self:
            raise GraphError("the id is already used", node=node.id)
        self.nodes.append(node)
        return node

    def unique_id(self, base: str) -> str:
        """'base_k' with the smallest k not yet used (readable ids like conv2d_1)."""
        taken = set(self.ids())
        k = 1
        while f"{base}_{k}" in taken:
            k += 1
        return f"{base}_{k}"


def merge(a: Graph, b: Graph, b_refs: Iterable[str] = ()) -> tuple[Graph, dict[str, str]]:
    """Union of two graphs that may share a common prefix; returns the merged graph and the
    renaming of b's ids (apply it to refs taken from b).

    A node of `b` is the same as a node of `a` when op, params, inputs (after renaming) and
    instance token agree. A tokened node is looked up by token and content whatever its id: an
    earlier merge may have renamed it (linear_1 -> linear_2), and the same KNIME node reached
    again along another branch must still be found. Untokened nodes (graphs built in Python)
    match the node with their id and equal content. Anything else is added, renamed on a clash:
    two KNIME nodes with the same settings on the same input are two layers (different tokens),
    while an upstream node reached along two branches (a diamond) carries one token and stays
    one node."""
    out = a.copy()
    rename: dict[str, str] = {}
    by_token: dict[str, list[Node]] = {}
    for n in out.nodes:
        if (t := out.instance_of(n.id)) is not None:
            by_token.setdefault(t, []).append(n)
    claimed: set[str] = set()  # nodes of `a` already matched: the matching is one-to-one

    def same(existing: Node, nn: Node, token: str | None) -> bool:
        return existing.id not in claimed and existing.op == nn.op and existing.inputs == nn.inputs \
            and out.instance_of(existing.id) == token and jsonable(existing.params) == jsonable(nn.params)

    for n in b.topo_order():
        nn = Node(n.id, n.op, copy.deepcopy(n.params),
                  [rename.get(split_ref(r)[0], split_ref(r)[0]) + (f":{split_ref(r)[1]}" if ":" in r else "") for r in n.inputs])
        token = b.instance_of(n.id)
        match = out.node(nn.id) if nn.id in out and same(out.node(nn.id), nn, token) else None
        if match is None and token is not None:  # renamed by an earlier merge: same token and content
            match = next((m for m in by_token.get(token, ()) if same(m, nn, token)), None)
        if match is not None:
            claimed.add(match.id)
            if match.id != n.id:
                rename[n.id] = match.id
            continue
        if nn.id in out:
            new_id = out.unique_id(n.id.rsplit("_", 1)[0] if "_" in n.id else n.id)
            rename[n.id] = new_id
            nn.id = new_id
        out.nodes.append(nn)
        claimed.add(nn.id)  # b's own nodes are distinct from each other
        if token is not None:
            out.stamp([nn.id], token)
            by_token.setdefault(token, []).append(nn)
    return out, rename
