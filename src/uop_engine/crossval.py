"""k-fold cross-validation reusing the trainer: a fresh model per fold, per-fold metrics, mean +- std.

    res = cross_validate(graph, X, y, TrainConfig(epochs=5), k=5, stratified=True, seed=0)
    res.folds        # [{"fold": 0, "train_rows": ..., "test_rows": ..., "loss": ..., "accuracy": ...}, ...]
    res.summary      # {"accuracy": {"mean": ..., "std": ...}, ...}   (sample std, ddof=1)

Splits are seeded and deterministic; every row is in exactly one test fold; stratified
folds keep each class's share (scikit-learn's KFold / StratifiedKFold with shuffling).
Fold k trains with seed `config.seed + k`, so folds differ but a rerun is identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import DataError


@dataclass
class CVResult:
    folds: list[dict[str, Any]]
    summary: dict[str, dict[str, float]]
    task: str = "classification"
    k: int = 5
    stratified: bool = True
    records: list[dict] = field(default_factory=list)   # each fold's training record

    def frame(self):
        import pandas as pd
        return pd.DataFrame(self.folds)

    def text(self) -> str:
        return ", ".join(f"{m} {s['mean']:.4f} +- {s['std']:.4f}" for m, s in self.summary.items())


def fold_indices(y: Any, k: int = 5, stratified: bool = True, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) per fold. Stratified needs every class to have >= k rows."""
    from sklearn.model_selection import KFold, StratifiedKFold
    y = np.asarray(y)
    n = len(y)
    if k < 2:
        raise DataError(f"k = {k}: cross-validation needs at least 2 folds")
    if n < k:
        raise DataError(f"{n} rows cannot be split into {k} folds; use fewer folds")
    if stratified:
        labels, counts = np.unique(y.astype(str) if y.dtype.kind == "O" else y, return_counts=True)
        if counts.min() < k:
            small = labels[counts.argmin()]
            raise DataError(f"class '{small}' has {counts.min()} row(s), fewer than the {k} folds; use fewer folds or "
                            "switch stratification off")
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(tr, te) for tr, te in splitter.split(np.zeros(n), y)]
    return [(tr, te) for tr, te in KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n))]


def _take(X: Any, idx: np.ndarray) -> Any:
    return {k: v[idx] for k, v in X.items()} if isinstance(X, dict) else X[idx]


def summarize(folds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    keys = [k for k in folds[0] if k not in ("fold", "train_rows", "test_rows", "epochs")]
    out = {}
    for key in keys:
        vals = np.array([f[key] for f in folds], dtype=np.float64)
        out[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                    "min": float(vals.min()), "max": float(vals.max())}
    return out


def cross_validate(graph: Any, X: Any, y: Any, config: Any = None, k: int = 5, stratified: bool = True,
                   seed: int = 0, *, classes: list | None = None,
                   progress: Callable[[float, str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> CVResult:
    """Train a fresh model of `graph` on k-1 folds and score it on the held-out fold, k times."""
    from .train import TrainConfig, TrainingCancelled, Trainer
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    y = np.asarray(y)
    strat = stratified and cfg.task in ("classification", "binary")
    splits = fold_indices(y, k, strat, seed)
    if classes is None and cfg.task in ("classification", "binary"):
        classes = np.unique(y).tolist()  # every fold encodes labels the same way
    folds, records = [], []
    for i, (tr, te) in enumerate(splits):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"cross-validation cancelled before fold {i + 1} of {k}", None)

        def fold_progress(frac: float, msg: str, i: int = i) -> None:
            if progress is not None:
                progress((i + frac) / k, f"fold {i + 1}/{k}: {msg}")
        fold_cfg = TrainConfig.from_dict({**cfg.to_dict(), "seed": cfg.seed + i})
        trainer = Trainer(graph, fold_cfg, classes=classes)
        result = trainer.fit(_take(X, tr), y[tr], progress=fold_progress, should_stop=should_stop)
        scores = trainer.evaluate(_take(X, te), y[te])
        folds.append({"fold": i, "train_rows": int(len(tr)), "test_rows": int(len(te)),
                      "epochs": len(result.history), **scores})
        records.append(result.record)
    return CVResult(folds, summarize(folds), cfg.task, k, strat, records)


def cross_validate_table(graph: Any, table: Any, spec: Any, config: Any = None, k: int = 5, stratified: bool = True,
                         seed: int = 0, **kw: Any) -> CVResult:
    """cross_validate on a pyarrow table described by a data-layer feature spec."""
    from .data import FeatureSpec, table_to_arrays
    from .table_train import fit_to_inputs, graph_input_shapes
    from .train import TrainConfig
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    spec = FeatureSpec.from_dict(spec.to_dict() if isinstance(spec, FeatureSpec) else spec)
    if spec.target is None:
        raise DataError("cross-validation needs a target column; set the spec's target")
    if cfg.task in ("classification", "binary", "regression") and spec.task in ("auto", "none"):
        spec.task = cfg.task
    X, y = table_to_arrays(table, spec)
    X = fit_to_inputs(X, graph_input_shapes(graph))
    classes = list(range(len(spec.classes))) if spec.classes is not None else None  # y holds class ids
    return cross_validate(graph, X, y, cfg, k, stratified, seed, classes=classes, **kw)
