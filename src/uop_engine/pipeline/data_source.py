"""Tables for the `dataset` step and scores for the `evaluate` step.

A table comes from the built-in digits set or a Parquet / CSV / Arrow file; its feature
columns become an array (reshaped to `shape`, e.g. 1,8,8 for images), split stratified and
seeded into train/test.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .dataset import Dataset

BUILTIN = {"digits": {"shape": (1, 8, 8), "target": "label"}}


def digits_table():
    """The bundled 8x8 digits as a table: 64 pixel columns (0..1) and an int 'label' column."""
    from ..datasets import digits_table as columns_table
    return columns_table("columns")


def read_table(path: Path):
    """A pyarrow table from .parquet, .csv or .arrow/.feather (by extension)."""
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist")
    ext = path.suffix.lower()
    if ext == ".parquet":
        import pyarrow.parquet as pq
        return pq.read_table(path)
    if ext == ".csv":
        import pyarrow.csv as pcsv
        return pcsv.read_csv(path)
    if ext in (".arrow", ".feather", ".ipc"):
        import pyarrow.feather as pf
        return pf.read_table(path)
    raise DataError(f"data file '{path}' has extension '{ext}'; use .parquet, .csv or .arrow")


def table_arrays(table: Any, target: str, features: list[str] | None, shape: tuple[int, ...] | None
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(X reshaped to (rows, *shape), y, feature column names) from a table, through the data
    layer (numeric, list or PNG image columns; missing values are an error naming the column)."""
    from ..data import infer_feature_spec, table_to_arrays
    spec = infer_feature_spec(table, features, target=target, task="none", input_shape=shape)
    spec.target = None  # labels stay as they are (the train step encodes them)
    X, _ = table_to_arrays(table, spec)
    if shape and X.shape[1:] != tuple(shape):
        if int(np.prod(shape)) != int(np.prod(X.shape[1:])):
            raise DataError(f"shape {list(shape)} holds {int(np.prod(shape))} values but a sample has "
                            f"{int(np.prod(X.shape[1:]))}")
        X = X.reshape((X.shape[0],) + tuple(shape))
    y = table.column(target).to_numpy(zero_copy_only=False)
    return X, y, spec.features


def load_dataset(name: str = "digits", path: str = "", target: str = "label", test_size: float = 0.2, limit: int = 0,
                 seed: int = 0, base_dir: Path | None = None, shape: list[int] | None = None,
                 features: list[str] | None = None) -> Dataset:
    """A Dataset (see the `dataset` step): `load_dataset("digits", limit=600)`."""
    if name in BUILTIN and not path:
        table = digits_table()
        shape = shape or list(BUILTIN[name]["shape"])
        target = target if target in table.column_names else BUILTIN[name]["target"]
    elif path:
        p = Path(path).expanduser()
        table = read_table(p if p.is_absolute() or base_dir is None else base_dir / p)
    else:
        raise DataError(f"unknown dataset '{name}'; use one of {', '.join(BUILTIN)} or give a file with path = \"...\"")
    if not 0 < test_size < 1:
        raise DataError(f"test_size {test_size} must be between 0 and 1")
    X, y, cols = table_arrays(table, target, features, tuple(shape) if shape else None)
    rng = np.random.default_rng(seed)
    if limit and limit < len(y):  # a seeded random subset, so a small run still sees every class
        keep = np.sort(rng.permutation(len(y))[:limit])
        X, y = X[keep], y[keep]
    from sklearn.model_selection import train_test_split
    classes = sorted(np.unique(y).tolist()) if y.dtype.kind in "iuUSOb" else None
    strat = y if classes is not None and np.unique(y, return_counts=True)[1].min() >= 2 else None
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed, stratify=strat)
    spec = {"inputs": {"x": cols}, "target": target}
    return Dataset(name if not path else Path(path).stem, X[idx_tr], y[idx_tr], X[idx_te], y[idx_te], classes, spec,
                   {"rows": int(len(y)), "features": len(cols)})


def score(bundle: Any, outputs: Any, y: np.ndarray) -> dict[str, Any]:
    """Metrics of model outputs against targets: classification (accuracy, macro precision,
    recall, F1, confusion matrix) or regression (MAE, RMSE, R2)."""
    out = outputs[0] if isinstance(outputs, list) else outputs
    if bundle.task in ("classification", "binary"):
        from ..predict import outputs_to_columns
        cols = outputs_to_columns(out, bundle.task, bundle.classes, target="y", probabilities=False)
        pred = np.asarray(cols["Prediction (y)"])
        from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
        labels = bundle.classes if bundle.classes is not None else sorted(np.unique(np.concatenate([y, pred])).tolist())
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels, average="macro", zero_division=0)
        return {"accuracy": float(accuracy_score(y, pred)), "precision_macro": float(p), "recall_macro": float(r),
                "f1_macro": float(f), "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
                "labels": list(labels)}
    pred = out.reshape(len(y), -1).astype(np.float64)
    t = np.asarray(y, np.float64).reshape(len(y), -1)
    err = pred - t
    ss_tot = float(((t - t.mean(0)) ** 2).sum())
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "r2": 1.0 - float((err ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")}
