"""k-fold cross-validation reusing the trainer: a fresh model per fold, per-fold metrics, mean +- std.

    res = cross_validate(graph, X, y, TrainConfig(epochs=5), k=5, stratified=True, seed=0)
    res.folds        # [{"fold": 0, "train_rows": ..., "test_rows": ..., "loss": ..., "accuracy": ...}, ...]
    res.summary      # {"accuracy": {"mean": ..., "std": ...}, ...}   (sample std, ddof=1)
    res.text()       # "loss 0.21 +- 0.03, accuracy 0.94 +- 0.01, ..."

Splits are seeded and deterministic; every row is in exactly one test fold; stratified
folds keep each class's share (scikit-learn's KFold / StratifiedKFold with shuffling).
Fold k trains with seed `config.seed + k`, so folds differ but a rerun is identical.

Each fold is trained with the trainer and its held-out rows are predicted with `predict()`
and scored by `metrics`: classification gives loss, accuracy, macro_f1, weighted_f1 and
kappa (binary adds auc); regression gives loss, mse, rmse, mae and r2. `metric_fn(y_true,
outputs)` adds (or replaces) numbers: `outputs` are the raw model outputs of the test rows
(logits, in `CVResult.classes` order for classifiers).

A `listener` (a FoldListener) hears each fold start, each epoch's metrics and each fold's
end or failure while cross-validation runs, e.g. to record folds in the experiment store live
(uop_engine.training_run.CrossValidationRun).

Instead of arrays, `X` may be a fold source: a callable returning an iterable of
`(X_train, y_train, X_test, y_test)` tuples (then `y` is None and k, stratified and seed
are not used for splitting), e.g. to load each fold's data lazily.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import itertools
from typing import Any, Callable, Iterable, Iterator

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
    classes: list | None = None                         # label order of classifier outputs

    def frame(self):
        import pandas as pd
        return pd.DataFrame(self.folds)

    def text(self) -> str:
        return ", ".join(f"{m} {s['mean']:.4f} +- {s['std']:.4f}" for m, s in self.summary.items())


class FoldListener:
    """Hooks cross_validate calls as it runs; every method is a no-op here (override what you need)."""

    def fold_started(self, fold: int, config: Any, train_rows: int, test_rows: int) -> None:
        """Fold `fold` (0-based) starts training with `config` (its seed is config.seed)."""

    def epoch(self, fold: int, metrics: dict[str, Any]) -> None:
        """One training epoch of the fold ended (the trainer's per-epoch metrics)."""

    def fold_finished(self, fold: int, row: dict[str, Any], result: Any) -> None:
        """The fold's held-out scores (`row`, as in CVResult.folds) and its TrainResult."""

    def fold_failed(self, fold: int, error: BaseException) -> None:
        """Training or scoring the fold raised `error` (re-raised after this returns)."""


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
    """mean, sample std (ddof=1), min and max of every metric over the folds that report it."""
    keys = list(dict.fromkeys(k for f in folds for k in f if k not in ("fold", "train_rows", "test_rows", "epochs")))
    out = {}
    for key in keys:
        vals = np.array([f[key] for f in folds if key in f], dtype=np.float64)
        out[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                    "min": float(vals.min()), "max": float(vals.max())}
    return out


FoldSource = Callable[[], Iterable[tuple[Any, Any, Any, Any]]]


def _index_folds(X: Any, y: Any, splits: list[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[Any, Any, Any, Any]]:
    for tr, te in splits:
        yield _take(X, tr), y[tr], _take(X, te), y[te]


def score_fold(task: str, y_true: np.ndarray, outputs: Any, classes: list | None) -> dict[str, float]:
    """metrics.py's numbers for one held-out fold (nothing for tasks without labels or values)."""
    from .metrics import classification_report, regression_report, roc_auc
    from .predict import outputs_to_columns
    out = outputs[0] if isinstance(outputs, list) else outputs
    if task in ("classification", "binary"):
        try:
            cols = outputs_to_columns(out, task, classes, target="y")
        except DataError:
            return {}
        if "Prediction (y)" not in cols:  # e.g. per-pixel outputs: the trainer's accuracy stays
            return {}
        rep = classification_report(y_true, np.asarray(cols["Prediction (y)"]),
                                    labels=classes if classes is not None else None)
        m = {"accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"], "weighted_f1": rep["weighted"]["f1"],
             "kappa": rep["kappa"]}
        if task == "binary" and classes is not None and len(set(np.asarray(y_true).tolist())) == 2:
            m["auc"] = roc_auc(np.asarray([v == classes[1] for v in np.asarray(y_true).tolist()]),
                               cols[f"P (y={classes[1]})"])
        return m
    if task == "regression":
        t = np.asarray(y_true, dtype=np.float64)
        p = np.asarray(out, dtype=np.float64).reshape(t.shape[0], -1)
        if p.shape[1] != int(np.prod(t.shape[1:], dtype=np.int64)):
            return {}
        rep = regression_report(t.reshape(-1), p.reshape(-1))
        return {k: rep[k] for k in ("mse", "rmse", "mae", "r2")}
    return {}


def _user_metrics(metric_fn: Callable, y_true: np.ndarray, outputs: Any, fold: int) -> dict[str, float]:
    got = metric_fn(y_true, outputs)
    if not isinstance(got, dict):
        raise DataError(f"metric_fn must return a dict of name -> number; fold {fold + 1} gave {type(got).__name__}")
    try:
        return {str(k): float(v) for k, v in got.items()}
    except (TypeError, ValueError):
        raise DataError(f"metric_fn must return numbers; fold {fold + 1} gave {got!r}") from None


def cross_validate(graph: Any, X: Any, y: Any = None, config: Any = None, k: int = 5, stratified: bool = True,
                   seed: int = 0, *, metric_fn: Callable[[np.ndarray, Any], dict[str, float]] | None = None,
                   classes: list | None = None, progress: Callable[[float, str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, listener: FoldListener | None = None) -> CVResult:
    """Train a fresh model of `graph` on k-1 folds and score it on the held-out fold, k times.

    X, y: arrays (X may be a dict {input name: array}), or X a fold source (see the module
    docs) and y None. config: TrainConfig or dict. progress(fraction 0..1, message) is called
    during training; should_stop() is checked before every fold and batch (TrainingCancelled)."""
    from .predict import predict
    from .train import TrainConfig, TrainingCancelled, Trainer
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    classify = cfg.task in ("classification", "binary")
    strat = stratified and classify
    if callable(X):
        if y is not None:
            raise DataError("with a fold source as X, leave y empty: the source yields each fold's targets")
        source = X()
        try:
            k = len(source)
        except TypeError:  # a generator: trust k for the progress fractions
            pass
        folds_iter, strat = iter(source), False
    else:
        if y is None:
            raise DataError("cross-validation needs targets y (or a fold source as X)")
        y = np.asarray(y)
        n_x = len(next(iter(X.values()))) if isinstance(X, dict) else len(X)
        if n_x != len(y):
            raise DataError(f"X has {n_x} rows but y has {len(y)}; they must be row-aligned")
        if classes is None and classify:
            classes = np.unique(y).tolist()  # every fold encodes labels the same way
        folds_iter = _index_folds(X, y, fold_indices(y, k, strat, seed))
    folds, records = [], []
    for i in itertools.count():
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"cross-validation cancelled before fold {i + 1} of {k}", None)
        part = next(folds_iter, None)
        if part is None:
            break
        if len(part) != 4:
            raise DataError(f"fold source item {i + 1} must be (X_train, y_train, X_test, y_test)")
        X_tr, y_tr, X_te, y_te = part
        y_tr, y_te = np.asarray(y_tr), np.asarray(y_te)
        if classes is None and classify:  # first fold's train + test rows hold every label of a partition
            classes = np.unique(np.concatenate([y_tr, y_te])).tolist()

        def fold_progress(frac: float, msg: str, i: int = i) -> None:
            if progress is not None:
                progress(min(1.0, (i + frac) / k), f"fold {i + 1}/{k}: {msg}")
        fold_cfg = TrainConfig.from_dict({**cfg.to_dict(), "seed": cfg.seed + i})
        lst = listener or FoldListener()
        lst.fold_started(i, fold_cfg, int(len(y_tr)), int(len(y_te)))
        try:
            trainer = Trainer(graph, fold_cfg, classes=classes)
            result = trainer.fit(X_tr, y_tr, progress=fold_progress, should_stop=should_stop,
                                 on_epoch=lambda m, i=i: lst.epoch(i, m))
            scores = trainer.evaluate(X_te, y_te)  # the loss (and the trainer's own accuracy / MAE)
            outputs = predict(result.model, X_te, batch_size=fold_cfg.batch_size, device=trainer.device)
            scores.update(score_fold(cfg.task, y_te, outputs, result.classes))
            if metric_fn is not None:
                scores.update(_user_metrics(metric_fn, y_te, outputs, i))
        except BaseException as e:
            lst.fold_failed(i, e)
            raise
        row = {"fold": i, "train_rows": int(len(y_tr)), "test_rows": int(len(y_te)), "epochs": len(result.history),
               **scores}
        folds.append(row)
        records.append(result.record)
        lst.fold_finished(i, row, result)
    if len(folds) < 2:
        raise DataError(f"the fold source gave {len(folds)} fold(s); cross-validation needs at least 2")
    if progress is not None:
        progress(1.0, f"{len(folds)} folds done")
    return CVResult(folds, summarize(folds), cfg.task, len(folds), strat, records, classes)


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
