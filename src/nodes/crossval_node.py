"""Cross-Validation node: k-fold training and scoring of a graph on a table (uop_engine.crossval)."""
from __future__ import annotations

import knime.extension as knext

from ._base import evaluation_category
from .eval_nodes import _schema, _table
from .experiment_nodes import TrackingSettings, tracking_store
from .ports import graph_port_type
from .train_nodes import (DataSettings, EarlyStopSettings, OptimSettings, RuntimeSettings, ScheduleSettings,
                          TrainingSetup)


@knext.parameter_group("Folds")
class FoldSettings:
    """How the rows are split."""

    k = knext.IntParameter("Folds (k)", "Number of folds: each row is scored once, by a model that never saw it.", 5,
                           min_value=2, max_value=50)
    stratified = knext.BoolParameter("Stratified", "Keep each class's share in every fold (classification).", True)
    seed = knext.IntParameter("Split seed", "Seed of the fold assignment (fold k trains with seed + k).", 0)


_SUMMARY = [("metric", knext.string()), ("mean", knext.double()), ("std", knext.double()), ("min", knext.double()),
            ("max", knext.double())]


@knext.node(name="Cross-Validation", node_type=knext.NodeType.LEARNER, icon_path="icons/evaluation.png",
            category=evaluation_category, keywords=["cross validation", "k-fold", "stratified", "folds", "evaluate"],
            id="tinyuop_cross_validation")
@knext.input_port("Graph", "The network to evaluate (a fresh copy is trained per fold).", graph_port_type)
@knext.input_table("Data", "Feature columns and a target column.")
@knext.output_table("Folds", "One row per fold: rows used, epochs, loss and accuracy (or MAE) on the held-out fold.")
@knext.output_table("Summary", "Mean +- standard deviation (and min/max) of each metric over the folds.")
class CrossValidationNode(TrainingSetup):
    """Estimates how well a graph generalises: k-fold (optionally stratified) cross-validation
    with the same training settings as Train Model. Folds are seeded, so a rerun gives the same
    numbers; each fold is recorded in the experiment store as a child of the cross-validation run."""

    folds = FoldSettings()
    data = DataSettings()
    optim = OptimSettings()
    sched = ScheduleSettings()
    early = EarlyStopSettings()
    runtime = RuntimeSettings()
    tracking = TrackingSettings()

    def _fold_columns(self, cfg):
        metric = {"classification": "accuracy", "binary": "accuracy", "regression": "mae"}.get(cfg.task)
        return ([("fold", knext.int64()), ("train_rows", knext.int64()), ("test_rows", knext.int64()),
                 ("epochs", knext.int64()), ("loss", knext.double())] + ([(metric, knext.double())] if metric else []))

    def configure(self, config_context, graph_spec, schema):
        cfg = self._config()
        graph = self._graph(graph_spec.graph, graph_spec.head)
        self._spec(schema, graph, cfg)
        return _schema(self._fold_columns(cfg)), _schema(_SUMMARY)

    def execute(self, exec_context, graph_obj, table):
        from uop_engine.crossval import cross_validate_table
        from uop_engine.errors import DataError
        from uop_engine.train import ConfigError, TrainingCancelled, TrainingError
        cfg = self._config()
        graph = self._graph(graph_obj.graph, graph_obj.head)
        spec = self._spec(table.schema, graph, cfg)

        def progress(frac: float, msg: str) -> None:
            exec_context.set_progress(min(1.0, max(0.0, frac)), msg)
        try:
            res = cross_validate_table(graph, table.to_pyarrow(), spec, cfg, k=self.folds.k,
                                       stratified=self.folds.stratified, seed=self.folds.seed, progress=progress,
                                       should_stop=exec_context.is_canceled)
        except TrainingCancelled as e:
            raise RuntimeError(f"Execution canceled ({e}).") from None
        except (TrainingError, DataError, ConfigError) as e:
            raise ValueError(str(e)) from None
        self._record(exec_context, graph, cfg, res)
        summary = [{"metric": k, **v} for k, v in res.summary.items() if k not in ("train_rows", "test_rows")]
        return _table(res.folds, self._fold_columns(cfg)), _table(summary, _SUMMARY)

    def _record(self, ctx, graph, cfg, res) -> None:
        store = tracking_store(ctx, self.tracking)
        if store is None:
            return
        project, name = self.tracking.project or "knime", self.tracking.run_name or "Cross-Validation"
        parent = store.start_run(project, name=name, graph=graph, seed=cfg.seed, tags={"kind": "cross_validation"},
                                 params={"config": cfg.to_dict(), "k": res.k, "stratified": res.stratified,
                                         "split_seed": self.folds.seed})
        for fold, rec in zip(res.folds, res.records):
            child = store.start_run(project, name=f"{name} fold {fold['fold'] + 1}", parent_id=parent, graph=graph,
                                    seed=cfg.seed + fold["fold"], data_fingerprint=rec.get("data_fingerprint"),
                                    tags={"kind": "fold"}, params={"fold": fold["fold"]})
            store.log_metrics(child, {k: v for k, v in fold.items() if k != "fold"})
            store.end_run(child)
        store.log_metrics(parent, {f"{k}_{s}": v[s] for k, v in res.summary.items() for s in ("mean", "std")})
        store.end_run(parent)
