"""A training run recorded in the experiment store while it trains.

    run = TrainingRun(store, cfg, project="digits", name="cnn", graph=graph)
    result = train(graph, X, y, cfg, on_epoch=run.epoch)   # each epoch's metrics land as they come
    run.finish(result)                                       # or run.end("failed", message)

The run starts before the first batch and is 'running' until it ends finished, failed or
cancelled; a process killed mid-training leaves it 'running' with the epochs logged so far, and
the store's dead-writer check marks it 'incomplete'.

The run's params are the hyperparameters only (the training config without the seed and
without per-run paths), so runs that differ only in seed share one configuration in Compare
Runs. What differs every run goes elsewhere: the seed and data fingerprint into their columns,
per-epoch metrics into the metric history, times into start/end time, and the rest (stop
reason, best epoch, row counts, classes, errors) into tags.
"""
from __future__ import annotations

from typing import Any

from .crossval import FoldListener

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


class TrainingRun:
    """One training run, started in the store at construction; see the module docs."""

    def __init__(self, store: Any, config: Any, *, project: str = "default", name: str | None = None,
                 graph: Any = None, parent_id: Any = None, tags: dict | None = None, extra_params: dict | None = None,
                 seed: int | None = None, data_fingerprint: str | None = None, device: str | None = None):
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
        self.store, self.ended, self.epochs = store, False, 0
        self.id = store.start_run(project, name=name, params=training_params(cfg, extra_params), parent_id=parent_id,
                                  tags={"kind": "train", **(tags or {})}, graph=graph,
                                  seed=cfg.get("seed") if seed is None else seed, data_fingerprint=data_fingerprint,
                                  device=device or cfg.get("device"))

    def epoch(self, metrics: dict[str, Any]) -> None:
        """Log one epoch's metrics (a trainer's on_epoch callback); the step is the epoch number."""
        self.epochs += 1
        step = int(metrics.get("epoch", self.epochs))
        self.store.log_metrics(self.id, numeric_metrics(metrics), step=step)

    def finish(self, result: Any, status: str | None = None) -> int:
        """End with a TrainResult: its run facts as tags, data fingerprint, device; 'finished' unless
        the result says it was cancelled (or `status` says otherwise). Returns the run id."""
        rec = dict(getattr(result, "record", None) or {})
        self.store.update_run(self.id, tags=run_facts(rec), data_fingerprint=rec.get("data_fingerprint"),
                              device=rec.get("device"))
        self.end(status or ("cancelled" if getattr(result, "stopped", "") == "cancelled" else "finished"))
        return self.id

    def end(self, status: str = "finished", message: str | None = None) -> None:
        """End the run (once); a message (why it failed or was cancelled) is kept as the 'error' tag."""
        if self.ended:
            return
        if message:
            self.store.update_run(self.id, tags={"error": message})
        self.store.end_run(self.id, status)
        self.ended = True

    def __enter__(self) -> "TrainingRun":
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            self.end("finished")
            return
        from .train import TrainingCancelled
        cancelled = isinstance(exc, (TrainingCancelled, KeyboardInterrupt))
        self.end("cancelled" if cancelled else "failed", str(exc) or type(exc).__name__)


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
        run.end("failed", str(e))
        raise
    return run.finish(result, status)


# keys of a cross-validation fold row that describe the fold, not a score
_FOLD_FACTS = ("fold", "train_rows", "test_rows", "epochs")


class CrossValidationRun(FoldListener):
    """A cross-validation recorded live: a parent run (the configuration, k, stratification and split
    seed as params; mean and std of every fold score as metrics) with one child run per fold holding
    that fold's per-epoch training history and its held-out scores as 'test_<metric>'.
    Pass it as cross_validate(..., listener=run), then call finish(result) or end(status, message)."""

    def __init__(self, store: Any, config: Any, *, k: int, stratified: bool, split_seed: int,
                 project: str = "default", name: str | None = None, graph: Any = None,
                 extra_params: dict | None = None):
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
        self.store, self.project, self.name, self.graph = store, project, name or "Cross-Validation", graph
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
                                             "test_rows": test_rows})

    def epoch(self, fold: int, metrics: dict[str, Any]) -> None:
        self.folds[fold].epoch(metrics)

    def fold_finished(self, fold: int, row: dict[str, Any], result: Any) -> None:
        run = self.folds[fold]
        scores = {f"test_{k}": v for k, v in numeric_metrics(row).items() if k not in _FOLD_FACTS}
        self.store.log_metrics(run.id, scores, step=max(run.epochs, 1))
        run.finish(result)

    def fold_failed(self, fold: int, error: BaseException) -> None:
        from .train import TrainingCancelled
        cancelled = isinstance(error, (TrainingCancelled, KeyboardInterrupt))
        self.folds[fold].end("cancelled" if cancelled else "failed", str(error) or type(error).__name__)

    # ---- the parent run ----
    def finish(self, result: Any) -> int:
        """End with a CVResult: mean and std of each fold score as '<metric>_mean' / '<metric>_std'."""
        self.store.log_metrics(self.id, {f"{k}_{s}": v[s] for k, v in result.summary.items() for s in ("mean", "std")})
        self.store.update_run(self.id, tags={"task": result.task, "folds": result.k})
        self.end("finished")
        return self.id

    def end(self, status: str = "finished", message: str | None = None) -> None:
        if self.ended:
            return
        for run in self.folds.values():  # a fold left open by an error outside the fold hooks
            run.end(status, message)
        if message:
            self.store.update_run(self.id, tags={"error": message})
        self.store.end_run(self.id, status)
        self.ended = True
