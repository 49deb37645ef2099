"""Training checkpoints: one safetensors file of arrays plus one JSON file of metadata per save.

    <dir>/epoch_0003.safetensors   model weights ("model/<key>"), optimizer state ("optim/<key>"),
                                   best weights so far ("best/<key>"), RNG counter ("rng/<device>")
    <dir>/epoch_0003.json          graph, training config, data fingerprint, versions, metrics
                                   history, epoch, global step, early-stopping state

Both are written atomically; the JSON is written last, so a checkpoint is listed only once its
arrays are complete. Both files open without this package (safetensors + json).
"""
from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fileio import atomic_write

CHECKPOINT_FORMAT = "tinyuop.checkpoint"
CHECKPOINT_VERSION = 1
_NAME = re.compile(r"^epoch_(\d+)\.json$")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit the graph being trained."""


def versions() -> dict[str, str]:
    """Versions of the pieces that decide numerical results, for training records."""
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("tinygrad", "numpy", "tinyuop-builder"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out




@dataclass
class Checkpoint:
    path: str                                  # the JSON file
    meta: dict[str, Any]
    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    best_weights: dict[str, np.ndarray] | None = None
    rng: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    def graph(self):
        from .graph import Graph
        return Graph.from_dict(self.meta["graph"])


def save_checkpoint(directory: str, *, epoch: int, step: int, graph, config: dict, weights: dict[str, np.ndarray],
                    optimizer_state: dict[str, np.ndarray] | None = None, history: list[dict] | None = None,
                    data_fingerprint: str | None = None, best_weights: dict[str, np.ndarray] | None = None,
                    rng: dict[str, np.ndarray] | None = None, extra: dict | None = None, keep: int = 0) -> str:
    """Save one checkpoint for `epoch` (1-based, completed) and return the JSON path.
    `keep` > 0 deletes all but the newest `keep` checkpoints in the folder."""
    from safetensors.numpy import save
    arrays: dict[str, np.ndarray] = {}
    for prefix, group in (("model/", weights), ("optim/", optimizer_state or {}), ("best/", best_weights or {}),
                          ("rng/", rng or {})):
        for k, v in group.items():
            arrays[prefix + k] = np.ascontiguousarray(v)
    stem = os.path.join(directory, f"epoch_{epoch:04d}")
    atomic_write(stem + ".safetensors", save(arrays, metadata={"format": CHECKPOINT_FORMAT}))
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": int(epoch), "step": int(step),
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "graph_hash": graph.hash(), "graph": graph.to_dict(),
            "config": config, "data_fingerprint": data_fingerprint, "versions": versions(),
            "history": history or [], "has_optimizer_state": bool(optimizer_state),
            "has_best_weights": best_weights is not None, **(extra or {})}
    atomic_write(stem + ".json", json.dumps(meta, indent=1, default=_json_default).encode())
    if keep > 0:
        for old in list_checkpoints(directory)[:-keep]:
            for p in (old["path"], old["path"][:-5] + ".safetensors"):
                if os.path.exists(p):
                    os.remove(p)
    return stem + ".json"


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _json_path(path: str) -> str:
    p = os.fspath(path)
    if os.path.isdir(p):
        latest = latest_checkpoint(p)
        if latest is None:
            raise CheckpointError(f"the folder '{p}' holds no checkpoints (epoch_NNNN.json)")
        return latest
    if p.endswith(".safetensors"):
        p = p[: -len(".safetensors")] + ".json"
    elif not p.endswith(".json"):
        p += ".json"
    if not os.path.exists(p):
        raise CheckpointError(f"checkpoint '{p}' does not exist; check the path or use list_checkpoints(folder)")
    return p


def _read_meta(jpath: str) -> dict:
    try:
        with open(jpath, "rb") as f:
            meta = json.loads(f.read())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint '{jpath}' is unreadable or corrupt: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"'{jpath}' is not a TinyUOp checkpoint (format {meta.get('format') if isinstance(meta, dict) else '?'})")
    if int(meta.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint '{jpath}' has version {meta['version']}, newer than this TinyUOp "
                              f"({CHECKPOINT_VERSION}); update TinyUOp Builder")
    return meta


def load_checkpoint(path: str) -> Checkpoint:
    """Load a checkpoint given its .json, its .safetensors, its stem, or a folder (the latest)."""
    from safetensors.numpy import load_file
    jpath = _json_path(path)
    meta = _read_meta(jpath)
    spath = jpath[:-5] + ".safetensors"
    try:
        arrays = load_file(spath)
    except Exception as e:  # safetensors raises several types for truncated or missing files
        raise CheckpointError(f"checkpoint arrays '{spath}' are missing or corrupt: {e}") from None
    groups: dict[str, dict[str, np.ndarray]] = {"model/": {}, "optim/": {}, "best/": {}, "rng/": {}}
    for k, v in arrays.items():
        for prefix, g in groups.items():
            if k.startswith(prefix):
                g[k[len(prefix):]] = v
    return Checkpoint(jpath, meta, groups["model/"], groups["optim/"],
                      groups["best/"] if meta.get("has_best_weights") else None, groups["rng/"])


def list_checkpoints(directory: str) -> list[dict[str, Any]]:
    """Checkpoints in a folder, oldest first: path, epoch, step, saved time, last metrics."""
    if not os.path.isdir(directory):
        return []
    out = []
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if not m or not os.path.exists(os.path.join(directory, name[:-5] + ".safetensors")):
            continue
        path = os.path.join(directory, name)
        try:
            meta = _read_meta(path)
        except CheckpointError:
            continue  # a foreign or damaged file is skipped when listing, reported when loaded
        hist = meta.get("history") or [{}]
        out.append({"path": path, "epoch": int(meta["epoch"]), "step": int(meta["step"]),
                    "saved": meta.get("saved"), "graph_hash": meta.get("graph_hash"), "metrics": hist[-1]})
    return sorted(out, key=lambda d: (d["epoch"], d["step"]))


def latest_checkpoint(directory: str) -> str | None:
    cps = list_checkpoints(directory)
    return cps[-1]["path"] if cps else None


def inspect_checkpoint(path: str) -> dict[str, Any]:
    """Metadata and array names/shapes/dtypes, without loading the arrays."""
    from safetensors import safe_open
    jpath = _json_path(path)
    meta = _read_meta(jpath)
    spath = jpath[:-5] + ".safetensors"
    tensors = {}
    try:
        with safe_open(spath, framework="numpy") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                tensors[k] = {"shape": list(sl.get_shape()), "dtype": sl.get_dtype()}
    except Exception as e:
        raise CheckpointError(f"checkpoint arrays '{spath}' are missing or corrupt: {e}") from None
    info = {k: v for k, v in meta.items() if k != "graph"}
    info["path"] = jpath
    info["n_graph_nodes"] = len(meta.get("graph", {}).get("nodes", []))
    info["tensors"] = tensors
    return info
