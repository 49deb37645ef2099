"""The in-pipeline dataset: train/test arrays plus what a model needs to know about them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list | None = None
    feature_spec: dict | None = None     # how table columns map to the graph input (data layer's spec)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample shape (no batch axis): what a layer list's Graph Input gets."""
        return tuple(int(d) for d in self.X_train.shape[1:])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name == "train":
            return self.X_train, self.y_train
        if name == "test":
            return self.X_test, self.y_test
        if name == "all":
            return np.concatenate([self.X_train, self.X_test]), np.concatenate([self.y_train, self.y_test])
        raise ValueError(f"split '{name}' is not one of train, test, all")

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "n_train": int(len(self.y_train)), "n_test": int(len(self.y_test)),
                "input_shape": list(self.input_shape), "classes": self.classes, **self.meta}
