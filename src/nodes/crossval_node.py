"""Cross-Validation node: k-fold training and scoring of a graph on a table (uop_engine.crossval)."""
from __future__ import annotations

import knime.extension as knext

from ._base import evaluation_category
from .eval_nodes import _schema, _table
from .experiment_nodes import TrackingSettings, tracking_store
from .ports import graph_port_type
from .train_nodes import (DataSettings, EarlyStopSettings, OptimSettings, RuntimeSettings, ScheduleSettings,
                          TrainingSetup, raise_for_knime)


@knext.parameter_group("Folds")
class FoldSettings:
    """How the rows are split."""

    k = knext.IntParameter("Folds (k)", "Number of folds: each row is scored once, by a model that never saw it.", 5,
                           min_value=2, max_value=50)
    stratified = knext.BoolParameter("Stratified", "Keep each class's share in every fold (classification).", True)
    seed = knext.IntParameter("Split seed", "Seed of the fold assignment (fold k trains with seed + k).", 0)


_FOLD_METRICS = {"classification": ["accuracy", "macro_f1", "weighted_f1", "kappa"],
                 "binary": ["accuracy", "macro_f1", "weighted_f1", "kappa", "auc"],
                 "regression": ["mse", "rmse", "mae", "r2"]}
_SUMMARY = [("metric", knext.string()), ("mean", knext.double()), ("std", knext.double()), ("min", knext.double()),
            ("max", knext.double())]


@knext.node(name="Cross-Validation", node_type=knext.NodeType.LEARNER, icon_path="icons/evaluation.png",
            category=evaluation_category, keywords=["cross validation", "k-fold", "stratified", "folds", "evaluate"],
            id="tinyuop_cross_validation")
@knext.input_port("Graph", "The network to evaluate (a fresh copy is trained per fold).", graph_port_type)
@knext.input_table("Data", "Feature columns and a target column.")
@knext.output_table("Folds", "One row per fold: rows used, epochs and the held-out fold's scores (classification: "
                    "loss, accuracy, macro/weighted F1, kappa, AUC for binary; regression: loss, MSE, RMSE, MAE, R^2).")
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
        """Every score uop_engine.crossval computes per fold for this task (missing where a fold cannot
        give one, e.g. F1 for per-pixel outputs)."""
        metrics = _FOLD_METRICS.get(cfg.task, [])
        return ([("fold", knext.int64()), ("train_rows", knext.int64()), ("test_rows", knext.int64()),
                 ("epochs", knext.int64()), ("loss", knext.double())] + [(m, knext.double()) for m in metrics])

    def configure(self, config_context, graph_spec, schema):
        from .model_port import arrow_schema
        cfg = self._config()
        graph = self._graph(graph_spec.graph, graph_spec.head)
        self._spec(schema, graph, cfg)
        self._check_settings(config_context, cfg, arrow_schema(schema), cfg.validation_split > 0)
        return _schema(self._fold_columns(cfg)), _schema(_SUMMARY)

    def execute(self, exec_context, graph_obj, table):
        from uop_engine.crossval import cross_validate_table
        cfg = self._config()
        graph = self._graph(graph_obj.graph, graph_obj.head)
        spec = self._spec(table.schema, graph, cfg)

        def progress(frac: float, msg: str) -> None:
            exec_context.set_progress(min(1.0, max(0.0, frac)), msg)
        run = self._start_run(exec_context, graph, cfg, spec)  # folds are recorded live, epoch by epoch
        try:
            res = cross_validate_table(graph, table.to_pyarrow(), spec, cfg, k=self.folds.k,
                                       stratified=self.folds.stratified, seed=self.folds.seed, progress=progress,
                                       should_stop=exec_context.is_canceled, listener=run)
        except BaseException as e:
            if run is not None:
                run.fail(e)
            raise_for_knime(e)
        if run is not None:
            run.finish(res)
            if run.write_error:  # the folds were trained and scored; only their record is short
                exec_context.set_warning(run.write_error)
        summary = [{"metric": k, **v} for k, v in res.summary.items() if k not in ("train_rows", "test_rows")]
        return _table(res.folds, self._fold_columns(cfg)), _table(summary, _SUMMARY)

    def _start_run(self, ctx, graph, cfg, spec):
        store = tracking_store(ctx, self.tracking)
        if store is None:
            return None
        from uop_engine.training_run import CrossValidationRun
        return CrossValidationRun(store, cfg, k=self.folds.k, stratified=self.folds.stratified,
                                  split_seed=self.folds.seed, project=self.tracking.project or "knime",
                                  name=self.tracking.run_name or "Cross-Validation", graph=graph,
                                  extra_params={"features": list(spec.features), "target": spec.target})
