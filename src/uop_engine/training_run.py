"""A training run recorded in the experiment store while it trains.

    run = TrainingRun(store, cfg, project="digits", name="cnn", graph=graph)
    result = train(graph, X, y, cfg, on_epoch=run.epoch)   # each epoch's metrics land as they come
    run.finish(result)                                       # or run.end("failed", message)

The run starts before the first batch and is 'running' until it ends finished, failed or
cancelled; a process killed mid-training leaves it 'running' with the epochs logged so far, and
the store's dead-writer check marks it 'incomplete'.

Recording never stops training: a store write that fails (a StoreError, a store locked past
its timeout, a full disk) is reported once through `warn` (default: this module's logger),
kept as `write_error`, and training goes on; the run's record then lacks what could not be
written. A run ended by an exception is 'cancelled' (TrainingCancelled, KeyboardInterrupt) or
'failed' with the reason as its 'error' tag: `fail(error)`, the one rule the nodes, the context
manager and the cross-validation folds share.

The run's params are the hyperparameters only (the training config without the seed and
without per-run paths), so runs that differ only in seed share one configuration in Compare
Runs. What differs every run goes elsewhere: the seed and data fingerprint into their columns,
per-epoch metrics into the metric history, times into start/end time, and the rest (stop
reason, best epoch, row counts, classes, errors) into tags.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from .crossval import FoldListener

_log = logging.getLogger(__name__)

# config fields that do not define the configuration (the seed has its own column)
NON_CONFIG_KEYS = ("seed", "checkpoint_dir")
# record fields kept as tags: small facts of one run
_FACT_KEYS = ("task", "stopped", "best_epoch", "epochs_run", "n_train", "n_val", "rows_skipped", "val_rows_skipped",
              "initial_weights", "resumed_from", "started", "ended", "seconds")


def training_params(config: Any, extra: dict | None = None) -> dict[str, Any]:
    """The hyperparameters of a TrainConfig (or its dict): everything but the seed and per-run paths,
    plus `extra` (e.g. the feature and target columns)."""
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    return {**{k: v for k, v in d.items() if k not in NON_CONFIG_KEYS}, **(extra or {})}


def numeric_metrics(m: dict[str, Any]) -> dict[str, float]:
    """The numbers of one epoch's metrics (NaN/inf kept: a diverged run should show it)."""
    return {k: float(v) for k, v in m.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def run_facts(record: dict[str, Any]) -> dict[str, Any]:
    """Tags from a training record: the facts of this one run (not its configuration)."""
    facts = {k: record[k] for k in _FACT_KEYS if record.get(k) is not None}
    classes = record.get("classes")
    if classes is not None:
        facts["n_classes"] = len(classes)
        facts["classes"] = list(classes)[:100]  # a class list of thousands would swamp the run's row
    return facts


def end_status(error: BaseException) -> tuple[str, str]:
    """(final status, message) of a run ended by `error`: 'cancelled' for a cancel, else 'failed';
    an error that explains itself (training, data, settings) keeps its text, others get their type."""
    from .errors import DataError
    from .train import ConfigError, TrainingCancelled, TrainingError
    if isinstance(error, (TrainingCancelled, KeyboardInterrupt)):
        return "cancelled", str(error) or type(error).__name__
    if isinstance(error, (TrainingError, DataError, ConfigError)):
        return "failed", str(error)
    return "failed", f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _write_errors() -> tuple[type, ...]:
    import sqlite3
    from .store import StoreError
    return sqlite3.Error, StoreError, OSError


class _Recorder:
    """Store writes that warn once instead of raising (see the module docs), and `fail(error)`."""

    store: Any
    id: int
    warn: Callable[[str], None] | None = None
    write_error: str | None = None

    def _write(self, what: str, fn: Callable, *args: Any, **kw: Any) -> None:
        try:
            fn(*args, **kw)
        except _write_errors() as e:
            if self.write_error is None:  # once: a store that stays locked would repeat it every epoch
                self.write_error = (f"the experiment store {getattr(self.store, 'path', '')} could not record "
                                    f"{what} of run {self.id} ({type(e).__name__}: {e}); training went on, but the "
                                    "run's record is incomplete")
                (self.warn or _log.warning)(self.write_error)

    def fail(self, error: BaseException) -> None:
        """End the run for an exception: cancelled or failed, with the reason (end_status)."""
        self.end(*end_status(error))


class TrainingRun(_Recorder):
    """One training run, started in the store at construction; see the module docs. `warn(message)`
    is told once when a store write fails (e.g. a node's set_warning)."""

    def __init__(self, store: Any, config: Any, *, project: str = "default", name: str | None = None,
                 graph: Any = None, parent_id: Any = None, tags: dict | None = None, extra_params: dict | None = None,
                 seed: int | None = None, data_fingerprint: str | None = None, device: str | None = None,
                 warn: Callable[[str], None] | None = None):
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
        self.store, self.ended, self.epochs, self.warn = store, False, 0, warn
        self.id = store.start_run(project, name=name, params=training_params(cfg, extra_params), parent_id=parent_id,
                                  tags={"kind": "train", **(tags or {})}, graph=graph,
                                  seed=cfg.get("seed") if seed is None else seed, data_fingerprint=data_fingerprint,
                                  device=device or cfg.get("device"))

    def epoch(self, metrics: dict[str, Any]) -> None:
        """Log one epoch's metrics (a trainer's on_epoch callback); the step is the epoch number."""
        self.epochs += 1
        step = int(metrics.get("epoch", self.epochs))
        self._write(f"epoch {step}'s metrics", self.store.log_metrics, self.id, numeric_metrics(metrics), step=step)

    def finish(self, result: Any, status: str | None = None) -> int:
        """End with a TrainResult: its run facts as tags, data fingerprint, device; 'finished' unless
        the result says it was cancelled (or `status` says otherwise). Returns the run id."""
        rec = dict(getattr(result, "record", None) or {})
        self._write("the run's facts", self.store.update_run, self.id, tags=run_facts(rec),
                    data_fingerprint=rec.get("data_fingerprint"), device=rec.get("device"))
        self.end(status or ("cancelled" if getattr(result, "stopped", "") == "cancelled" else "finished"))
        return self.id

    def end(self, status: str = "finished", message: str | None = None) -> None:
        """End the run (once); a message (why it failed or was cancelled) is kept as the 'error' tag."""
        if self.ended:
            return
        if message:
            self._write("the error", self.store.update_run, self.id, tags={"error": message})
        self._write(f"the end ({status})", self.store.end_run, self.id, status)
        self.ended = True

    def __enter__(self) -> "TrainingRun":
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            self.end("finished")
        else:
            self.fail(exc)


def record_result(store: Any, result: Any, graph: Any = None, project: str = "default", name: str | None = None,
                  parent_id: Any = None, artifacts: tuple = (), status: str | None = None,
                  extra_params: dict | None = None) -> int:
    """Record an already finished TrainResult in one call (its whole history at once)."""
    rec = dict(result.record or {})
    graph = graph if graph is not None else getattr(getattr(result, "model", None), "graph", None)
    cfg = rec.get("config") or {}
    run = TrainingRun(store, cfg, project=project, name=name, graph=graph, parent_id=parent_id,
                      tags={"task": getattr(result, "task", None)}, extra_params=extra_params,
                      seed=cfg.get("seed", rec.get("seed")), data_fingerprint=rec.get("data_fingerprint"),
                      device=rec.get("device"))
    try:
        for i, epoch in enumerate(result.history):
            run.epoch({"epoch": i + 1, **epoch})
        for a in artifacts:
            store.log_artifact(run.id, str(a), kind="model" if str(a).endswith(".tuop") else None)
    except BaseException as e:
        run.fail(e)
        raise
    return run.finish(result, status)


# keys of a cross-validation fold row that describe the fold, not a score
_FOLD_FACTS = ("fold", "train_rows", "test_rows", "epochs")


class CrossValidationRun(_Recorder, FoldListener):
    """A cross-validation recorded live: a parent run (the configuration, k, stratification and split
    seed as params; mean and std of every fold score as metrics) with one child run per fold holding
    that fold's per-epoch training history and its held-out scores as 'test_<metric>'.
    Pass it as cross_validate(..., listener=run), then call finish(result) or end(status, message)."""

    def __init__(self, store: Any, config: Any, *, k: int, stratified: bool, split_seed: int,
                 project: str = "default", name: str | None = None, graph: Any = None,
                 extra_params: dict | None = None, warn: Callable[[str], None] | None = None):
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
        self.store, self.project, self.name, self.graph = store, project, name or "Cross-Validation", graph
        self.warn = warn
        self.extra, self.ended, self.folds = dict(extra_params or {}), False, {}
        folds = {"k": int(k), "stratified": bool(stratified), "split_seed": int(split_seed)}
        self.id = store.start_run(project, name=self.name, graph=graph, seed=cfg.get("seed"),
                                  tags={"kind": "cross_validation"}, device=cfg.get("device"),
                                  params=training_params(cfg, {**self.extra, **folds}))

    # ---- FoldListener hooks ----
    def fold_started(self, fold: int, config: Any, train_rows: int, test_rows: int) -> None:
        self.folds[fold] = TrainingRun(self.store, config, project=self.project, name=f"{self.name} fold {fold + 1}",
                                       graph=self.graph, parent_id=self.id, extra_params=self.extra,
                                       tags={"kind": "fold", "fold": fold, "train_rows": train_rows,
                                             "test_rows": test_rows}, warn=self._fold_warning)

    def _fold_warning(self, message: str) -> None:
        if self.write_error is None:  # one warning for the whole cross-validation
            self.write_error = message
            (self.warn or _log.warning)(message)

    def epoch(self, fold: int, metrics: dict[str, Any]) -> None:
        self.folds[fold].epoch(metrics)

    def fold_finished(self, fold: int, row: dict[str, Any], result: Any) -> None:
        run = self.folds[fold]
        scores = {f"test_{k}": v for k, v in numeric_metrics(row).items() if k not in _FOLD_FACTS}
        run._write("the fold's scores", self.store.log_metrics, run.id, scores, step=max(run.epochs, 1))
        run.finish(result)

    def fold_failed(self, fold: int, error: BaseException) -> None:
        self.folds[fold].fail(error)

    # ---- the parent run ----
    def finish(self, result: Any) -> int:
        """End with a CVResult: mean and std of each fold score as '<metric>_mean' / '<metric>_std'."""
        self._write("the summary", self.store.log_metrics, self.id,
                    {f"{k}_{s}": v[s] for k, v in result.summary.items() for s in ("mean", "std")})
        self._write("the run's facts", self.store.update_run, self.id, tags={"task": result.task, "folds": result.k})
        self.end("finished")
        return self.id

    def end(self, status: str = "finished", message: str | None = None) -> None:
        if self.ended:
            return
        for run in self.folds.values():  # a fold left open by an error outside the fold hooks
            run.end(status, message)
        if message:
            self._write("the error", self.store.update_run, self.id, tags={"error": message})
        self._write(f"the end ({status})", self.store.end_run, self.id, status)
        self.ended = True
