"""Structured output: the model answers with a TinyUOp graph as JSON, checked by uop_engine;
when it does not parse or its shapes do not infer, the problem goes back to the model for a
bounded number of repair rounds.

    graph, rounds, replies = complete_graph(svc, "A small CNN for 1x28x28 digits, 10 classes")

Accepted answers: the graph format (`{"format": "tinyuop.graph", "nodes": [...]}`, see
uop_engine.graph), or a list of layers as in pipeline files (`[{"op": "input", "shape": [4]},
{"op": "linear", "out_features": 3}]`, see uop_engine.pipeline.graphs), also wrapped as
`{"layers": [...]}` or `{"graph": ...}`. The JSON is taken from a ```json fence, else from the
first balanced JSON value in the prose (a graph-like one preferred).
"""
from __future__ import annotations

import json
import re
from typing import Any

from .config import LLMError

FORMAT_HELP = """Answer with ONE JSON object in a ```json fence and nothing else that looks like JSON.
Graph format (shapes are per sample, without the batch axis; `inputs` name earlier node ids;
"node:k" is output k of a node with several outputs):
{"format": "tinyuop.graph", "version": 1, "name": "small_cnn", "nodes": [
  {"id": "x", "op": "input", "params": {"name": "x", "shape": [1, 28, 28]}, "inputs": []},
  {"id": "c1", "op": "conv2d", "params": {"out_channels": 8, "kernel_size": [3], "padding": [1]}, "inputs": ["x"]},
  {"id": "r1", "op": "relu", "params": {}, "inputs": ["c1"]},
  {"id": "f", "op": "flatten", "params": {}, "inputs": ["r1"]},
  {"id": "fc", "op": "linear", "params": {"out_features": 10}, "inputs": ["f"]},
  {"id": "y", "op": "output", "params": {"name": "logits"}, "inputs": ["fc"]}]}
Parameters left out take their defaults; in_features / in_channels / num_features = 0 mean "infer".
Available ops as name(inputs; parameter=default, ...):
"""


def op_catalog() -> str:
    """One line per built-in op and block, so the model uses real names and parameters."""
    from uop_engine.optable import list_ops
    return "\n".join(f"{o.name}({', '.join(o.inputs)}; {', '.join(f'{p.name}={p.default!r}' for p in o.params)})"
                     for o in list_ops() if not o.user)


def graph_system_prompt(system: str | None = None) -> str:
    head = (system.strip() + "\n\n") if system and system.strip() else \
        "You design neural networks as TinyUOp graphs (a DAG of tinygrad ops and blocks).\n\n"
    return head + FORMAT_HELP + op_catalog()


# ---- extraction --------------------------------------------------------------------------------
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.S)


def _balanced_values(text: str) -> list[Any]:
    """Every JSON object/array that parses, scanning left to right (nested ones skipped)."""
    found, i = [], 0
    while i < len(text):
        if text[i] not in "{[":
            i += 1
            continue
        end = _match(text, i)
        if end is not None:
            try:
                found.append(json.loads(text[i:end + 1]))
                i = end + 1
                continue
            except json.JSONDecodeError:
                pass
        i += 1
    return found


def _match(text: str, start: int) -> int | None:
    """Index of the bracket closing text[start], skipping brackets inside JSON strings."""
    stack, in_str, esc = [], False, False
    for j in range(start, len(text)):
        c = text[j]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
        elif c in "}]":
            if not stack or stack.pop() != c:
                return None
            if not stack:
                return j
    return None


def _graph_like(v: Any) -> bool:
    if isinstance(v, dict):
        return any(k in v for k in ("nodes", "layers", "graph", "spec"))
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def extract_json(text: str) -> Any:
    """The graph JSON in a reply (see module docs); ValueError saying what was found instead."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the reply is empty")
    fenced, fence_errors = [], []
    for m in _FENCE.finditer(text):
        if m.group(1).lower() not in ("", "json", "jsonc", "json5"):
            continue
        try:
            fenced.append(json.loads(m.group(2)))
        except json.JSONDecodeError as e:
            fence_errors.append(f"the ```json block is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    values = fenced or _balanced_values(text)
    for v in values:
        if _graph_like(v):
            return v
    if values:
        return values[0]
    if fence_errors:
        raise ValueError(fence_errors[0])
    raise ValueError("the reply holds no JSON object: answer with the graph as one JSON object in a ```json fence")


# ---- validation --------------------------------------------------------------------------------
def graph_from_value(value: Any):
    """A Graph from parsed JSON (either accepted form), shape-checked by uop_engine.infer.analyze."""
    from uop_engine.errors import GraphError
    from uop_engine.graph import Graph
    from uop_engine.infer import analyze
    from uop_engine.pipeline.graphs import graph_from_config
    v = value
    if isinstance(v, dict) and "nodes" not in v and isinstance(v.get("graph"), (dict, list)):
        v = v["graph"]
    if isinstance(v, dict) and "nodes" in v:
        g = Graph.from_dict(v)
    elif isinstance(v, dict) and isinstance(v.get("layers"), list) and "spec" not in v:
        g = graph_from_config(v["layers"], name=str(v.get("name", "graph")))
    elif isinstance(v, (list, dict)):
        g = graph_from_config(v)
    else:
        raise GraphError(f"expected a graph object or a list of layers, got {type(v).__name__}")
    analyze(g)  # structure, parameters and every shape; errors name the node and parameter
    return g


class GraphRepairError(LLMError):
    """The model answered, but no answer gave a valid graph within the repair rounds."""


def repair_message(problem: str) -> str:
    return (f"That answer could not be used. Problem: {problem}\n"
            "Fix it and reply with the whole corrected graph as one JSON object in a ```json fence.")


def complete_graph(svc: Any, prompt: str, system: str | None = None, max_rounds: int = 3) -> tuple[Any, int, list]:
    """Ask `svc` (an LLMService, or anything with complete(messages, system=)) for a graph.

    Returns (graph, rounds used, the replies in order). Each failed round sends the reply back
    as the assistant's turn plus the problem as a user message; after `max_rounds` failures
    raises LLMError naming the last problem."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty: describe the network (input shape, task, size)")
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    sys_prompt = graph_system_prompt(system)
    messages: list[dict] = [{"role": "user", "content": prompt.strip()}]
    replies: list[Any] = []
    problems: list[str] = []
    for rnd in range(1, max_rounds + 1):
        reply = svc.complete(messages, system=sys_prompt)
        replies.append(reply)
        text = reply if isinstance(reply, str) else getattr(reply, "text", "")
        try:
            return graph_from_value(extract_json(text)), rnd, replies
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:  # GraphError is a ValueError
            problems.append(str(e) or type(e).__name__)
        if rnd < max_rounds:
            messages += [{"role": "assistant", "content": text or "(empty reply)"},
                         {"role": "user", "content": repair_message(problems[-1])}]
    summary = "; ".join(f"round {i}: {p[:200]}" for i, p in enumerate(problems, 1))
    raise GraphRepairError(f"the model gave no valid TinyUOp graph in {max_rounds} round(s); last problem: {problems[-1]} "
                   f"({summary}). Describe the network more precisely or allow more rounds",
                   provider=str(getattr(getattr(svc, "config", None), "provider", "") or ""))
