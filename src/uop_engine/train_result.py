"""What training returns and raises: `TrainResult`, `TrainingError`, `TrainingCancelled`, and
`array_fingerprint` (a digest of arrays, e.g. scored columns). Re-exported by uop_engine.train."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


class TrainingCancelled(Exception):
    """Raised when `should_stop()` returned True; `.partial` is the TrainResult so far."""

    def __init__(self, message: str, partial: "TrainResult"):
        super().__init__(message)
        self.partial = partial


@dataclass
class TrainResult:
    model: Any                                    # the trained CompiledModel
    history: list[dict[str, float]]               # one dict of metrics per epoch
    record: dict[str, Any]                        # hyperparameters, hashes, versions, times, ...
    classes: list | None = None
    task: str = "classification"
    best_epoch: int | None = None
    stopped: str = "completed"                    # completed | early_stopping | cancelled
    checkpoints: list[str] = field(default_factory=list)

    def history_frame(self):
        import pandas as pd
        return pd.DataFrame(self.history)

    def weights(self) -> dict[str, np.ndarray]:
        return self.model.numpy_weights()

    def bundle(self, feature_spec: dict | None = None):
        from .model_bundle import ModelBundle
        # instance keys of one KNIME run are noise in a saved model (and in ONNX metadata made from it)
        return ModelBundle(self.model.graph.without_instances(), self.weights(), self.record, self.classes, self.task,
                           feature_spec)


def array_fingerprint(*arrays: Any) -> str:
    """sha256 over dtype, shape and bytes of the arrays (dicts in key order); 16 hex chars."""
    h = hashlib.sha256()
    for a in arrays:
        items = sorted(a.items()) if isinstance(a, dict) else [("", a)]
        for k, v in items:
            if v is None:
                h.update(b"none")
                continue
            v = np.asarray(v)
            if v.dtype == object:
                v = np.asarray([str(x) for x in v.ravel()]).reshape(v.shape)
            h.update(f"{k}|{v.dtype.str}|{v.shape}|".encode())
            h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]
