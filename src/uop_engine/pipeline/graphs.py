"""Graphs given in a pipeline file: a layer list, a spec or graph table, or a graph JSON path.

    graph = [ { op = "conv_block", out_channels = 8 }, { op = "flatten" }, { op = "linear", out_features = 10 } ]
    graph = [ { spec = "ConvBlock", out_channels = 8 }, { spec = "Residual", body = [ { op = "relu" } ] } ]
    graph = "cnn.json"                       # relative to the pipeline file

A layer list gets a Graph Input with the data's per-sample shape. Layer tables are the flat,
TOML-friendly form of the specs' `to_dict()` (fields next to `op`/`spec`); nested
Sequential / Residual / Parallel tables take layer lists for their children.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import GraphError
from ..graph import Graph


def _normalize(v: Any, where: str) -> dict:
    """Flat TOML layer table (or list) -> the canonical spec dict of uop_engine.specs."""
    from ..specs.compose import COMPOSITES
    if isinstance(v, list):
        return {"spec": "Sequential", "layers": [_normalize(x, f"{where}[{i}]") for i, x in enumerate(v)]}
    if not isinstance(v, dict):
        raise GraphError(f"{where}: a layer must be a table like {{ op = \"relu\" }}, got {type(v).__name__}")
    d = dict(v)
    kind = d.get("spec")
    if kind in COMPOSITES or kind == "Model":
        for key in ("layers", "branches"):
            if isinstance(d.get(key), list):
                d[key] = [_normalize(x, f"{where}.{key}[{i}]") for i, x in enumerate(d[key])]
        for key in ("body", "shortcut"):
            if d.get(key) is not None:
                d[key] = _normalize(d[key], f"{where}.{key}")
        return d
    if "params" in d:
        return d
    if "op" not in d and not isinstance(kind, str):
        raise GraphError(f"{where}: a layer table needs 'op' (e.g. op = \"conv2d\") or 'spec' (e.g. spec = \"Conv2d\")")
    head = {k: d.pop(k) for k in ("spec", "op") if k in d}
    return {**head, "params": d}


def spec_from_config(v: Any, where: str = "graph"):
    """A spec from a layer list or a (flat) spec table; errors name the layer and field."""
    from ..specs import from_dict
    from ..specs.base import SpecError
    d = _normalize(v, where)
    try:
        return from_dict(d)
    except SpecError as e:
        raise GraphError(f"{where}: {e}") from None


def graph_from_config(v: Any, base_dir: Path | None = None, input_shape: tuple | None = None,
                      name: str = "graph") -> Graph:
    """The Graph a pipeline's `graph` value stands for (see module docs)."""
    from ..specs import Model, Spec
    from ..specs.compose import first_input
    if isinstance(v, Graph):
        return v
    if isinstance(v, (str, Path)):
        p, d = read_graph_file(v, base_dir)
        try:  # graph JSON, or a spec / layer list saved as JSON
            return graph_from_config(d, base_dir, input_shape, name)
        except GraphError as e:
            raise GraphError(f"graph file '{p}': {e}") from None
    if isinstance(v, dict) and v.get("format") == "tinyuop.graph":
        g = Graph.from_dict(v)
        g.check_structure()
        return g
    spec = v if isinstance(v, Spec) else spec_from_config(v)
    if isinstance(spec, Model):
        return spec.to_graph()
    if first_input(spec) is not None:
        return spec.to_graph(name=name)
    if input_shape is None:
        raise GraphError("the layer list has no Input layer and no data gives its shape",
                         fix="start the list with { op = \"input\", shape = [1, 8, 8] } or pass data")
    return spec.to_graph(input_shape=tuple(input_shape), name=name)


def read_graph_file(v: str | Path, base_dir: Path | None) -> tuple[Path, Any]:
    """(path, parsed JSON) of a graph/spec file, relative paths resolved against base_dir."""
    p = Path(v).expanduser()
    p = p if p.is_absolute() or base_dir is None else base_dir / p
    if not p.is_file():
        raise GraphError(f"graph file '{p}' does not exist", fix="give a graph JSON path relative to the pipeline file")
    try:
        return p, json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise GraphError(f"graph file '{p}' is not valid JSON: {e.msg} at line {e.lineno}") from None


def check_graph_config(v: Any, base_dir: Path | None) -> str | None:
    """Load-time check of a literal graph value (structure and fields; shapes need the data)."""
    if isinstance(v, str) and "${" in v:
        return None
    try:
        where = "graph"
        if isinstance(v, (str, Path)):
            p, v = read_graph_file(v, base_dir)
            where = f"graph file '{p}'"
        if isinstance(v, dict) and v.get("format") == "tinyuop.graph":
            Graph.from_dict(v).check_structure()
        else:
            spec_from_config(v, where)
    except GraphError as e:
        return str(e)
    return None
