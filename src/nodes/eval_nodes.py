"""Classification Scorer, ROC / Precision-Recall and Regression Scorer nodes (uop_engine.metrics)."""
from __future__ import annotations

import knime.extension as knext

from ._base import evaluation_category
from .experiment_nodes import TrackingSettings, tracking_store
from .model_port import model_port_type

_NUM = (knext.double(), knext.int32(), knext.int64())


def _numeric(col) -> bool:
    return col.ktype in _NUM


def _kind(col) -> str:
    """What a column's values are, for comparing labels: int and double columns both hold numbers."""
    if _numeric(col):
        return "numbers"
    if col.ktype == knext.string():
        return "text"
    if col.ktype == knext.bool_():
        return "booleans"
    return str(col.ktype)


def _need(schema, name: str, what: str, numeric: bool = False) -> None:
    if not name:
        raise knext.InvalidParametersError(f"choose the {what}")
    if name not in schema.column_names:
        raise knext.InvalidParametersError(f"{what} '{name}' is not in the table; available: {list(schema.column_names)}")
    if numeric and not _numeric(schema[name]):
        raise knext.InvalidParametersError(f"{what} '{name}' is not numeric (it holds {_kind(schema[name])}); "
                                           "choose a number column or convert it (e.g. String to Number)")


def _same_kind(schema, true_col: str, pred_col: str) -> None:
    """1 and '1' never compare equal: scoring an int column against a string column would count
    every row wrong and list every class twice, so refuse before anything runs."""
    a, b = _kind(schema[true_col]), _kind(schema[pred_col])
    if a != b:
        raise knext.InvalidParametersError(
            f"true class column '{true_col}' holds {a} but predicted class column '{pred_col}' holds {b}, so no "
            f"label can ever match; convert one column to the other's type (e.g. String to Number or Number to "
            f"String) before scoring")


def _table(rows: list[dict], cols: list[tuple[str, object]]):
    import pyarrow as pa
    arrow = {str(knext.int64()): pa.int64(), str(knext.double()): pa.float64(), str(knext.string()): pa.string()}
    return knext.Table.from_pyarrow(pa.table({n: pa.array([r.get(n) for r in rows], type=arrow[str(t)])
                                              for n, t in cols}))


def _schema(cols):
    return knext.Schema.from_columns([knext.Column(t, n) for n, t in cols])


def _column(table, name: str):
    """A column as numpy: numbers as numbers (missing -> NaN), anything else as Python objects."""
    import numpy as np
    import pyarrow.types as pt
    col = table.to_pyarrow().column(name)
    if pt.is_integer(col.type) or pt.is_floating(col.type):
        return col.to_numpy(zero_copy_only=False)
    return np.asarray(col.to_pylist(), dtype=object)


_MODEL_DOC = ("Optional: the model that made the predictions. Its graph (hash) and training run are recorded with "
              "the scores.")
SCORING_DEVICE = "CPU (numpy)"  # the scores are computed with numpy on the host, whatever ran the model


def _record(ctx, tracking, metrics: dict, name: str, scored: dict, model=None) -> None:
    """One finished evaluation run (store.record_evaluation): the metrics, a fingerprint of the
    scored columns (so two runs on the same rows can be told apart from runs on other rows), the
    scoring device and, with a model connected, its graph and training run."""
    store = tracking_store(ctx, tracking)
    if store is None:
        return
    from uop_engine.store import record_evaluation
    from uop_engine.train import array_fingerprint
    cols = {role: col for role, (col, _) in scored.items()}
    tags = {"columns": cols, "rows": int(len(next(iter(scored.values()))[1]))}
    graph = None
    if model is not None:
        graph = model.bundle.graph
        tags.update(model_graph_hash=graph.hash(), model_record_id=model.spec.data.get("record_id"),
                    model_experiment_run_id=model.bundle.record.get("experiment_run_id"))
    record_evaluation(store, metrics, tracking.project or "knime", tracking.run_name or name, tags=tags, graph=graph,
                      data_fingerprint=array_fingerprint({col: a for col, a in scored.values()}),
                      device=SCORING_DEVICE)


_SCORES = [("class", knext.string()), ("precision", knext.double()), ("recall", knext.double()),
           ("f1", knext.double()), ("support", knext.int64()), ("accuracy", knext.double()), ("kappa", knext.double())]


@knext.node(name="Classification Scorer", node_type=knext.NodeType.OTHER, icon_path="icons/evaluation.png",
            category=evaluation_category, keywords=["score", "accuracy", "f1", "precision", "recall", "kappa",
                                                    "confusion matrix"], id="tinyuop_classification_scorer")
@knext.input_table("Predictions", "A table with a true-class column and a predicted-class column.")
@knext.input_port("Model", _MODEL_DOC, model_port_type, optional=True)
@knext.output_table("Scores", "Per class precision, recall, F1 and support; then macro, weighted and overall rows "
                    "with accuracy and Cohen's kappa.")
@knext.output_table("Confusion matrix", "Rows: true classes; one column per predicted class.")
@knext.output_view("Confusion matrix view", "The confusion matrix as a heat map.")
class ClassificationScorerNode:
    """Scores class predictions: accuracy, per-class precision/recall/F1, macro and weighted
    averages, Cohen's kappa and the confusion matrix (results equal scikit-learn's). A class
    that is never predicted has precision 0. The run is recorded in the experiment store with a
    fingerprint of the scored columns and, with the model connected, the model's graph."""

    true_column = knext.ColumnParameter("True class column", "The actual classes.", port_index=0)
    predicted_column = knext.ColumnParameter("Predicted class column", "The predicted classes (e.g. "
                                             "'Prediction (target)' from Run Inference).", port_index=0)
    tracking = TrackingSettings()

    def configure(self, config_context, schema, model_spec=None):
        _need(schema, self.true_column, "true class column")
        _need(schema, self.predicted_column, "predicted class column")
        _same_kind(schema, self.true_column, self.predicted_column)
        return _schema(_SCORES), None  # the confusion matrix has a column per class: known in execute

    def execute(self, exec_context, table, model=None):
        from uop_engine.errors import DataError
        from uop_engine.metrics import classification_report, confusion_png
        truth, pred = _column(table, self.true_column), _column(table, self.predicted_column)
        try:
            rep = classification_report(truth, pred,
                                        names=(f"the true class column '{self.true_column}'",
                                               f"the predicted class column '{self.predicted_column}'"))
        except DataError as e:
            raise ValueError(str(e)) from None
        rows = [{**{k: c[k] for k in ("precision", "recall", "f1", "support")}, "class": str(c["label"])}
                for c in rep["per_class"]]
        for avg in ("macro", "weighted"):
            rows.append({"class": f"({avg} average)", **rep[avg], "support": rep["n"]})
        rows.append({"class": "(overall)", "accuracy": rep["accuracy"], "kappa": rep["kappa"], "support": rep["n"]})
        labels = [str(x) for x in rep["labels"]]
        cm_cols = [("true class", knext.string())] + [(lab, knext.int64()) for lab in labels]
        cm_rows = [{"true class": lab, **dict(zip(labels, row))} for lab, row in zip(labels, rep["confusion_matrix"])]
        _record(exec_context, self.tracking, {k: rep[k] for k in ("accuracy", "kappa", "macro", "weighted")},
                "Classification Scorer",
                {"true": (self.true_column, truth), "predicted": (self.predicted_column, pred)}, model)
        return (_table(rows, _SCORES), _table(cm_rows, cm_cols),
                knext.view_png(confusion_png(rep["confusion_matrix"], labels)))


_AUC = [("class", knext.string()), ("auc", knext.double()), ("average_precision", knext.double()),
        ("positives", knext.int64())]
_CURVES = [("curve", knext.string()), ("class", knext.string()), ("threshold", knext.double()),
           ("x", knext.double()), ("y", knext.double())]


@knext.node(name="ROC / Precision-Recall", node_type=knext.NodeType.VISUALIZER, icon_path="icons/evaluation.png",
            category=evaluation_category, keywords=["roc", "auc", "precision recall", "average precision", "curve"],
            id="tinyuop_roc")
@knext.input_table("Predictions", "The true class column and one probability (score) column per class.")
@knext.input_port("Model", _MODEL_DOC, model_port_type, optional=True)
@knext.output_table("Areas", "Per class AUC and average precision; a last row with the macro averages.")
@knext.output_table("Curves", "ROC points (x = false positive rate, y = true positive rate) and precision-recall "
                    "points (x = recall, y = precision) per class and threshold.")
@knext.output_view("Curves view", "ROC and precision-recall curves.")
class RocNode:
    """ROC and precision-recall curves, binary or one-vs-rest for several classes.

    Choose the true class column and the score columns: one column per class (default: the
    'P (target=class)' columns Run Inference writes; the class is read from the name), or a
    single score column with the positive class named. AUC and average precision equal
    scikit-learn's (ties included)."""

    true_column = knext.ColumnParameter("True class column", "The actual classes.", port_index=0)
    score_columns = knext.MultiColumnParameter("Score columns", "One probability column per class (empty = the "
                                               "'P (...=class)' columns).", port_index=0, column_filter=_numeric)
    positive_class = knext.StringParameter("Positive class", "With a single score column: the class it scores.", "")
    tracking = TrackingSettings()

    def _scores(self, schema) -> list[str]:
        cols = list(self.score_columns or []) or [c for c in schema.column_names
                                                  if c.startswith("P (") and c.endswith(")") and "=" in c]
        if not cols:
            raise knext.InvalidParametersError("choose the score columns (no 'P (target=class)' columns found)")
        for c in cols:
            _need(schema, c, "score column", numeric=True)
        return cols

    def configure(self, config_context, schema, model_spec=None):
        _need(schema, self.true_column, "true class column")
        cols = self._scores(schema)
        if len(cols) == 1 and not self.positive_class:
            raise knext.InvalidParametersError("one score column: name the positive class it scores")
        return _schema(_AUC), _schema(_CURVES)

    def execute(self, exec_context, table, model=None):
        import numpy as np

        from uop_engine.errors import DataError
        from uop_engine.metrics import roc_png, roc_report
        cols = self._scores(table.schema)
        truth = _column(table, self.true_column)
        scores = np.stack([_column(table, c).astype(np.float64) for c in cols], axis=1)
        if len(cols) == 1:
            pos = self.positive_class
            kind = type(truth[0]) if len(truth) else str
            try:
                pos = kind(pos) if kind in (int, float) or np.issubdtype(np.asarray(truth).dtype, np.number) else pos
            except ValueError:
                pass
            labels = np.array([str(v) for v in truth.tolist()], dtype=object) if isinstance(pos, str) else truth
            classes = None
        else:  # the class of each column: 'P (target=class)' names, else the column name
            classes = [c[c.index("=") + 1:-1] if c.startswith("P (") and "=" in c else c for c in cols]
            labels, pos = np.array([str(v) for v in truth.tolist()], dtype=object), None
        try:
            rep = roc_report(labels, scores if len(cols) > 1 else scores[:, 0], classes=classes, positive=pos)
        except DataError as e:
            raise ValueError(str(e)) from None
        areas = [{"class": str(p["class"]), "auc": p["auc"], "average_precision": p["average_precision"],
                  "positives": p["positives"]} for p in rep["per_class"]]
        areas.append({"class": "(macro average)", "auc": rep["macro_auc"],
                      "average_precision": rep["macro_average_precision"]})
        curves = [{"curve": "roc", "class": str(r["class"]), "threshold": r["threshold"], "x": r["fpr"], "y": r["tpr"]}
                  for r in rep["roc"]]
        curves += [{"curve": "precision-recall", "class": str(r["class"]), "threshold": r["threshold"],
                    "x": r["recall"], "y": r["precision"]} for r in rep["pr"]]
        _record(exec_context, self.tracking, {"macro_auc": rep["macro_auc"],
                                              "macro_average_precision": rep["macro_average_precision"],
                                              "auc": {str(p["class"]): p["auc"] for p in rep["per_class"]}},
                "ROC / Precision-Recall",
                {"true": (self.true_column, truth), **{f"score {i}": (c, scores[:, i]) for i, c in enumerate(cols)}},
                model)
        return _table(areas, _AUC), _table(curves, _CURVES), knext.view_png(roc_png(rep))


_REG = [("metric", knext.string()), ("value", knext.double())]


@knext.node(name="Regression Scorer", node_type=knext.NodeType.OTHER, icon_path="icons/evaluation.png",
            category=evaluation_category, keywords=["mse", "rmse", "mae", "r2", "regression", "score"],
            id="tinyuop_regression_scorer")
@knext.input_table("Predictions", "A numeric true-value column and a numeric predicted-value column.")
@knext.input_port("Model", _MODEL_DOC, model_port_type, optional=True)
@knext.output_table("Scores", "MSE, RMSE, MAE, R^2 and the row count.")
class RegressionScorerNode:
    """Scores numeric predictions: mean squared error, its root, mean absolute error and R^2
    (as scikit-learn). The run is recorded in the experiment store with a fingerprint of the
    scored columns and, with the model connected, the model's graph."""

    true_column = knext.ColumnParameter("True value column", "The actual values.", port_index=0,
                                        column_filter=_numeric)
    predicted_column = knext.ColumnParameter("Predicted value column", "The predicted values.", port_index=0,
                                             column_filter=_numeric)
    tracking = TrackingSettings()

    def configure(self, config_context, schema, model_spec=None):
        _need(schema, self.true_column, "true value column", numeric=True)
        _need(schema, self.predicted_column, "predicted value column", numeric=True)
        return _schema(_REG)

    def execute(self, exec_context, table, model=None):
        from uop_engine.errors import DataError
        from uop_engine.metrics import regression_report
        truth = _column(table, self.true_column).astype(float)
        pred = _column(table, self.predicted_column).astype(float)
        try:
            rep = regression_report(truth, pred)
        except DataError as e:
            raise ValueError(str(e)) from None
        _record(exec_context, self.tracking, rep, "Regression Scorer",
                {"true": (self.true_column, truth), "predicted": (self.predicted_column, pred)}, model)
        return _table([{"metric": k, "value": float(v)} for k, v in rep.items()], _REG)
