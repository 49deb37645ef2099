"""A trained model as one file: graph + weights + training record (the model port's engine side).

The bundle is a zip archive readable without TinyUOp:

    bundle.json           format, version, task, classes, feature_spec, graph hash
    graph.json            the graph IR (uop_engine.graph)
    weights.safetensors   weights keyed like CompiledModel.state_dict() ("params.<node>.<weight>")
    record.json           the training record (hyperparameters, data fingerprint, versions, ...)
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .graph import Graph

BUNDLE_FORMAT = "tinyuop.model"
BUNDLE_VERSION = 1
TASKS = ("classification", "binary", "regression", "other")


class BundleError(ValueError):
    """A model bundle file is missing, corrupt or from a newer version."""


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


@dataclass
class ModelBundle:
    graph: Graph
    weights: dict[str, np.ndarray]
    record: dict[str, Any] = field(default_factory=dict)
    classes: list | None = None
    task: str = "other"
    feature_spec: dict | None = None      # how table columns map to graph inputs (data layer's spec)

    def __post_init__(self):
        if self.task not in TASKS:
            raise BundleError(f"task '{self.task}' is not one of {', '.join(TASKS)}")
        self.classes = _plain(list(self.classes)) if self.classes is not None else None

    # ---- identity and summary ---------------------------------------------------------------
    @property
    def graph_hash(self) -> str:
        return self.graph.hash()

    @property
    def record_id(self) -> str | None:
        """A stable id of the training record (sha256 of its JSON); None for an untrained model."""
        if not self.record:
            return None
        import hashlib
        return hashlib.sha256(json.dumps(self.record, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def onnx_metadata(self) -> dict[str, Any]:
        """What an ONNX export of this model records about where it came from: the training record's
        id and, when training was recorded in the experiment store, that run's id."""
        meta: dict[str, Any] = {}
        if self.record_id is not None:
            meta["training_record_id"] = self.record_id
        if self.record.get("experiment_run_id") is not None:
            meta["experiment_run_id"] = self.record["experiment_run_id"]
        return meta

    def manifest(self) -> dict[str, Any]:
        return {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "task": self.task, "classes": self.classes,
                "feature_spec": _plain(self.feature_spec), "graph_hash": self.graph_hash, "graph_name": self.graph.name}

    def summary(self) -> dict[str, Any]:
        """Small description for a port spec / table view: shapes, classes, metrics, sizes."""
        from .infer import summarize
        s = summarize(self.graph)
        return {**self.manifest(), "inputs": {k: list(v) for k, v in s.inputs.items()},
                "outputs": {k: list(v) for k, v in s.outputs.items()}, "n_params": s.n_params,
                "final_metrics": self.record.get("final_metrics", {}), "epochs_run": self.record.get("epochs_run")}

    # ---- bytes ------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        from safetensors.numpy import save
        weights = save({k: np.ascontiguousarray(v) for k, v in sorted(self.weights.items())},
                       metadata={"format": BUNDLE_FORMAT})  # one key: safetensors orders several at random
        buf = io.BytesIO()
        # fixed timestamps so the same model always gives the same bytes
        with zipfile.ZipFile(buf, "w") as z:
            def put(name: str, data: bytes, compress: int) -> None:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = compress
                z.writestr(info, data)
            put("bundle.json", json.dumps(self.manifest(), indent=1).encode(), zipfile.ZIP_DEFLATED)
            put("graph.json", self.graph.to_json().encode(), zipfile.ZIP_DEFLATED)
            put("weights.safetensors", weights, zipfile.ZIP_STORED)  # float weights barely compress
            put("record.json", json.dumps(_plain(self.record), indent=1, default=str).encode(), zipfile.ZIP_DEFLATED)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "the model data") -> "ModelBundle":
        from safetensors.numpy import load
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = set(z.namelist())
                missing = {"bundle.json", "graph.json", "weights.safetensors"} - names
                if missing:
                    raise BundleError(f"{source} is not a TinyUOp model: it lacks {', '.join(sorted(missing))}")
                manifest = json.loads(z.read("bundle.json"))
                graph_text = z.read("graph.json")
                weights = load(z.read("weights.safetensors"))
                record = json.loads(z.read("record.json")) if "record.json" in names else {}
        except BundleError:
            raise
        except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as e:
            raise BundleError(f"{source} is corrupt or not a TinyUOp model file ({type(e).__name__}: {e}); "
                              "save the model again") from None
        except Exception as e:  # safetensors raises its own error type for damaged data
            raise BundleError(f"{source} has damaged weights ({type(e).__name__}: {e}); save the model again") from None
        if manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{source} has format '{manifest.get('format')}', expected '{BUNDLE_FORMAT}'")
        if int(manifest.get("version", 0)) > BUNDLE_VERSION:
            raise BundleError(f"{source} was written by a newer TinyUOp (bundle version {manifest['version']}); "
                              "update TinyUOp Builder to read it")
        graph = Graph.from_json(graph_text)
        return cls(graph, dict(weights), record, manifest.get("classes"), manifest.get("task", "other"),
                   manifest.get("feature_spec"))

    # ---- files ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> str:
        """Write atomically (temp file in the same folder, then os.replace); returns the path."""
        from .fileio import atomic_write
        path = os.fspath(path)
        atomic_write(path, self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModelBundle":
        path = os.fspath(path)
        if not os.path.exists(path):
            raise BundleError(f"model file '{path}' does not exist; check the path")
        if os.path.isdir(path):
            raise BundleError(f"'{path}' is a folder; give the model file (.tuop)")
        with open(path, "rb") as f:
            return cls.from_bytes(f.read(), source=f"model file '{path}'")

    # ---- running ----------------------------------------------------------------------------
    def compile(self, device: str | None = None):
        """A CompiledModel with these weights (checked against the graph)."""
        from .compile import compile_graph
        return compile_graph(self.graph, seed=0, device=device, weights=self.weights)

    @classmethod
    def from_model(cls, model, record: dict | None = None, classes: list | None = None, task: str = "other",
                   feature_spec: dict | None = None) -> "ModelBundle":
        return cls(model.graph, model.numpy_weights(), record or {}, classes, task, feature_spec)
