"""Run Inference node: a trained model and a table in, the table with prediction columns out."""
from __future__ import annotations

import knime.extension as knext

from ._base import train_category
from .model_port import arrow_schema, model_port_type

ROW_ID = "<RowID>"
MISSING_FIX = "or set 'Rows with missing values' to 'missing' (such rows then get missing predictions)"


def _label_type(classes: list):
    if all(isinstance(c, bool) for c in classes):
        return knext.bool_()
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return knext.int64()
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        return knext.double()
    return knext.string()


def prediction_columns(data: dict, probabilities: bool = True) -> list | None:
    """The columns Run Inference appends, from a model port spec; None while the classes are
    unknown (a model whose training has not run yet)."""
    task, classes = data.get("task", "other"), data.get("classes")
    target = (data.get("feature_spec") or {}).get("target") or "y"
    outs = list((data.get("outputs") or {}).items())
    if not outs:
        return None
    cols, rest = [], outs[1:]
    first = outs[0][1][1:]  # per-row shape of the first output
    if task in ("classification", "binary"):
        if classes is None:
            return None
        labels = classes
        cols.append(knext.Column(_label_type(labels), f"Prediction ({target})"))
        if probabilities:
            cols += [knext.Column(knext.double(), f"P ({target}={c})") for c in labels]
    elif task == "regression" and len(first) <= 1:
        k = first[0] if first else 1
        names = [f"Prediction ({target})"] if k == 1 else [f"Prediction ({target}_{i})" for i in range(k)]
        cols += [knext.Column(knext.double(), n) for n in names]
    else:
        rest = outs
    for name, shape in rest:
        per_row = shape[1:]
        single = len(per_row) <= 1 and (not per_row or per_row[0] == 1)
        cols.append(knext.Column(knext.double() if single else knext.list_(knext.double()), name))
    return cols


@knext.node(name="Run Inference", node_type=knext.NodeType.PREDICTOR, icon_path="icons/inference.png",
            category=train_category, keywords=["predict", "inference", "score", "apply", "tinygrad"],
            id="tinyuop_run_inference")
@knext.input_port("Model", "A trained model (Train Model or Model Reader).", model_port_type)
@knext.input_table("Data", "Rows to predict: the feature columns the model was trained on.")
@knext.output_table("Predictions", "The input rows with prediction columns appended.")
class RunInferenceNode:
    """Runs a trained model over every row of a table, batch by batch.

    Classifiers add the predicted label and one probability column per class
    ('P (target=class)'); regression models add value columns; other outputs become list
    columns. The table is read and written batch by batch, so any number of rows fits.
    """

    batch_size = knext.IntParameter("Batch size", "Rows per model call (the last may be smaller).", 256,
                                    min_value=1)
    keep_columns = knext.BoolParameter("Keep input columns", "Append the predictions to the input columns (off: "
                                       "predictions only).", True)
    probabilities = knext.BoolParameter("Class probabilities", "Add one probability column per class.", True)
    missing = knext.StringParameter("Rows with missing values", "error: fail naming the column; missing: such rows "
                                    "get missing predictions; model: as the model was trained.", "model",
                                    enum=["model", "error", "missing"])
    device = knext.StringParameter("Device", "auto (tinygrad's default), CPU, CUDA, METAL, ...", "auto",
                                   is_advanced=True)

    def _feature_spec(self, data: dict) -> dict:
        fs = dict(data.get("feature_spec") or {})
        if self.missing != "model" and fs:
            fs["missing"] = "error" if self.missing == "error" else "skip_rows"
        return fs

    def _check_columns(self, schema, data: dict) -> None:
        from uop_engine.data import FeatureSpec, infer_feature_spec
        from uop_engine.errors import DataError
        fs = data.get("feature_spec")
        try:
            if fs:
                spec = FeatureSpec.from_dict(fs)
                infer_feature_spec(arrow_schema(schema), spec.inputs, None)
            else:
                infer_feature_spec(arrow_schema(schema), None)
        except DataError as e:
            raise knext.InvalidParametersError(f"the table does not fit the model: {e}") from None

    def configure(self, config_context, model_spec, schema):
        self._check_columns(schema, model_spec.data)
        cols = prediction_columns(model_spec.data, self.probabilities)
        if cols is None:
            return None  # the classes are known once the model is trained
        base = schema if self.keep_columns else knext.Schema.from_columns([])
        taken = set(base.column_names)
        clash = [c.name for c in cols if c.name in taken]
        if clash:
            raise knext.InvalidParametersError(f"the table already has column(s) {clash}; rename them or switch off "
                                               "'Keep input columns'")
        return knext.Schema.from_columns(list(base) + cols)

    def execute(self, exec_context, model_obj, table):
        from uop_engine.bad_values import MissingValues, count_missing_in_batches
        from uop_engine.errors import DataError
        from uop_engine.predict import PredictionCancelled, iter_predict_table
        data = model_obj.spec.data
        self._check_columns(table.schema, data)
        bundle = model_obj.bundle
        keep = True if self.keep_columns else [ROW_ID]
        total = max(1, table.num_rows)

        def batches():
            for b in table.batches():
                if exec_context.is_canceled():
                    raise RuntimeError("Execution canceled.")
                yield b.to_pyarrow()

        def progress(rows: int) -> None:  # after every model batch, so one huge input batch still moves
            exec_context.set_progress(min(1.0, rows / total), f"{rows} of {table.num_rows} rows")
        out = knext.BatchOutputTable.create()
        if table.num_rows == 0:  # no batches to stream: an empty table with the configured columns
            return self._empty(table, data)
        try:
            for rb in iter_predict_table(bundle, batches(), feature_spec=self._feature_spec(data),
                                         batch_size=self.batch_size, keep_columns=keep,
                                         probabilities=self.probabilities,
                                         device=None if self.device in ("", "auto") else self.device,
                                         should_stop=exec_context.is_canceled, on_rows=progress):
                out.append(rb)
        except MissingValues as e:  # counted over the whole table, advising this node's own setting
            raise ValueError(str(count_missing_in_batches((b.to_pyarrow() for b in table.batches()), e.column,
                                                          MISSING_FIX))) from None
        except DataError as e:
            raise ValueError(str(e)) from None
        except PredictionCancelled as e:  # checked between model batches, within an input batch too
            raise RuntimeError(f"Execution canceled ({e}).") from None
        return out

    def _empty(self, table, data: dict):
        import pyarrow as pa
        cols = prediction_columns(data, self.probabilities) or []
        types = {str(knext.double()): pa.float64(), str(knext.int64()): pa.int64(), str(knext.string()): pa.string(),
                 str(knext.bool_()): pa.bool_(), str(knext.list_(knext.double())): pa.list_(pa.float64())}
        base = table.to_pyarrow()
        if not self.keep_columns:
            base = base.select([c for c in base.column_names if c == ROW_ID])
        for c in cols:
            t = types[str(c.ktype)]
            base = base.append_column(pa.field(c.name, t), pa.array([], type=t))
        return knext.Table.from_pyarrow(base)

