"""ONNX Writer, ONNX Quantizer and ONNX Reader: trained models to and from ONNX files.

Thin glue over uop_engine.onnx_export / quantize / onnx_import: every file is written
atomically and passes onnx.checker; the Reader turns a file back into an editable model.
"""
from __future__ import annotations

import os

import knime.extension as knext

from uop_engine.errors import DataError, GraphError
from uop_engine.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET

from ._base import onnx_category
from .model_port import model_object, model_port_type, model_spec


def _opset_ok(value: int) -> None:
    """The opset range is the exporter's own (one constant, uop_engine.onnx_export), so a setting
    the dialog accepts never fails later in execute; replaces the plain min/max message."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"Opset must be a whole number, got {value!r}")
    if not MIN_OPSET <= value <= MAX_OPSET:
        raise ValueError(f"Opset {value} is not supported: the ONNX exporter writes opsets {MIN_OPSET} to {MAX_OPSET} "
                         f"(LayerNormalization needs {MIN_OPSET}); set Opset to one of those")


def _path(value: str, what: str = "ONNX file", example: str = "/data/models/model.onnx") -> str:
    path = os.path.expanduser((value or "").strip())
    if not path:
        raise knext.InvalidParametersError(f"set the {what} path (e.g. {example})")
    if os.path.isdir(path):
        raise knext.InvalidParametersError(f"'{path}' is a folder; give a file name such as model.onnx")
    return path


def _check_target(path: str, if_exists: str) -> None:
    if os.path.exists(path) and if_exists == "fail":
        raise knext.InvalidParametersError(f"'{path}' exists; choose another file or set 'If the file exists' to "
                                           "overwrite")


def _report_table(rows: list[dict]):
    import pandas as pd
    return knext.Table.from_pandas(pd.DataFrame(rows))


def _fail(e: Exception) -> Exception:
    if isinstance(e, GraphError) and e.param is not None:
        return knext.InvalidParametersError(str(e))
    return ValueError(str(e))


@knext.parameter_group("Experiment tracking", is_advanced=True)
class ArtifactSettings:
    """Log the written file on the training run of the model (see Experiment Runs)."""

    record = knext.BoolParameter("Log the file on the model's run", "When the model was trained with tracking on "
                                 "(it carries an experiment run id), add the written file to that run's artifacts.",
                                 True)
    store = knext.StringParameter("Store file", "SQLite experiment store (empty = the workflow data area).", "")


def _log_artifact(ctx, settings: ArtifactSettings, run_id, path: str) -> None:
    """The file as an artifact of the model's experiment run; a missing run only warns: the file is
    written either way."""
    from uop_engine.store import StoreError

    from .experiment_nodes import tracking_store
    if run_id is None:
        return
    store = tracking_store(ctx, settings)
    if store is None:
        return
    try:
        store.get_run(run_id)
        store.log_artifact(run_id, path, kind="onnx")
    except StoreError as e:
        ctx.set_warning(f"the file was not logged on the model's experiment run: {e} (set the store file the "
                        "model was trained with)")
    finally:
        store.close()


@knext.node(name="ONNX Writer", node_type=knext.NodeType.SINK, icon_path="icons/onnx.png", category=onnx_category,
            keywords=["onnx", "export", "deploy", "write"], id="tinyuop_onnx_writer")
@knext.input_port("Model", "The model to export (Train Model, Model Reader or ONNX Reader).", model_port_type)
@knext.output_table("File", "One row: path, size, opset, graph hash, inputs and outputs of the written file.")
class OnnxWriterNode:
    """Exports a trained model to an ONNX file that production runtimes load.

    The batch axis stays dynamic unless a fixed batch size is set. The file carries metadata:
    the graph hash, the graph JSON and a digest of the ONNX graph's structure (so the ONNX Reader
    restores the exact graph, unless the file was edited since), the training record id, the
    experiment run id of the training (when Train Model recorded it) and the class labels. It is
    checked with `onnx.checker` and written atomically; an existing file is only replaced when
    overwriting is on. With tracking on, the written file is logged as an artifact of the model's
    training run in the experiment store.
    """

    path = knext.StringParameter("ONNX file", "Where to write the model (.onnx).", "")
    if_exists = knext.StringParameter("If the file exists", "fail: stop with an error; overwrite: replace it.",
                                      "fail", enum=["fail", "overwrite"])
    opset = knext.IntParameter("Opset", f"ONNX opset version, {MIN_OPSET} to {MAX_OPSET} (LayerNormalization needs "
                               f"{MIN_OPSET}; onnxruntime runs up to {MAX_OPSET}).", DEFAULT_OPSET,
                               validator=_opset_ok, min_value=MIN_OPSET, max_value=MAX_OPSET)
    static_batch = knext.IntParameter("Fixed batch size", "0 = dynamic batch axis; N = a model for batches of N.",
                                      0, min_value=0, is_advanced=True)
    tracking = ArtifactSettings()

    def _columns(self):
        return knext.Schema.from_columns([
            knext.Column(knext.string(), "path"), knext.Column(knext.int64(), "bytes"),
            knext.Column(knext.int64(), "opset"), knext.Column(knext.string(), "graph_hash"),
            knext.Column(knext.string(), "inputs"), knext.Column(knext.string(), "outputs")])

    def configure(self, config_context, spec):
        _check_target(_path(self.path), self.if_exists)
        return self._columns()

    def execute(self, exec_context, obj):
        import json

        from uop_engine.onnx_export import export_onnx
        path = _path(self.path)
        _check_target(path, self.if_exists)
        b = obj.bundle
        meta = b.onnx_metadata()
        run_id = meta.get("experiment_run_id")  # set by Train Model when it recorded the run
        try:
            model = export_onnx(b.graph, b.weights, path, opset=self.opset, dynamic_batch=self.static_batch == 0,
                                batch_size=self.static_batch or 1, metadata=meta, class_labels=b.classes)
        except GraphError as e:
            raise _fail(e) from None
        _log_artifact(exec_context, self.tracking, run_id, path)
        ins = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        outs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
        return _report_table([{"path": path, "bytes": os.path.getsize(path), "opset": self.opset,
                               "graph_hash": b.graph.hash(), "inputs": json.dumps(ins), "outputs": json.dumps(outs)}])


def _QUANT_SCHEMA():
    num = ["size_ratio", "original_accuracy", "quantized_accuracy", "accuracy_delta", "prediction_agreement",
           "original_mae", "quantized_mae", "mae_delta", "max_abs_diff", "mean_abs_diff"]
    return knext.Schema.from_columns(
        [knext.Column(knext.string(), "mode"), knext.Column(knext.string(), "path"),
         knext.Column(knext.int64(), "original_bytes"), knext.Column(knext.int64(), "quantized_bytes"),
         knext.Column(knext.int64(), "rows")] + [knext.Column(knext.double(), n) for n in num])


@knext.node(name="ONNX Quantizer", node_type=knext.NodeType.MANIPULATOR, icon_path="icons/onnx.png",
            category=onnx_category, keywords=["onnx", "int8", "quantize", "quantise", "compress"],
            id="tinyuop_onnx_quantizer")
@knext.input_port("Model", "The float32 model to quantise.", model_port_type)
@knext.input_table("Calibration / validation data", "Rows with the model's feature (and target) columns: "
                   "static mode calibrates on them; with a target, accuracy before/after is reported.", optional=True)
@knext.output_table("Report", "One row: mode, file sizes, size ratio and, with data, accuracy/agreement before "
                    "and after.")
class OnnxQuantizerNode:
    """Post-training int8 quantisation with onnxruntime's quantisation tools.

    *Dynamic*: int8 weights, activations quantised at run time (no data needed).
    *Static*: int8 weights and activations, ranges calibrated on the connected table.
    The quantised file passes `onnx.checker`, keeps the original metadata and is written
    atomically. With a table that holds the target column the report gives accuracy (or the
    mean absolute change of the outputs) of the float32 and the int8 model on it.
    """

    path = knext.StringParameter("Quantised ONNX file", "Where to write the int8 model (.onnx).", "")
    if_exists = knext.StringParameter("If the file exists", "fail: stop with an error; overwrite: replace it.",
                                      "fail", enum=["fail", "overwrite"])
    mode = knext.StringParameter("Mode", "dynamic: int8 weights; static: int8 weights and activations (needs data).",
                                 "dynamic", enum=["dynamic", "static"])
    per_channel = knext.BoolParameter("Per-channel weights", "One scale per output channel (usually more accurate).",
                                      True)
    calibration_rows = knext.IntParameter("Calibration rows", "At most this many rows calibrate static mode.", 512,
                                          min_value=1, is_advanced=True)
    opset = knext.IntParameter("Opset", f"ONNX opset of the float32 model that is quantised ({MIN_OPSET} to "
                               f"{MAX_OPSET}).", DEFAULT_OPSET, validator=_opset_ok,
                               min_value=MIN_OPSET, max_value=MAX_OPSET, is_advanced=True)

    def configure(self, config_context, spec, table_schema=None):
        _check_target(_path(self.path, "quantised ONNX file"), self.if_exists)
        if self.mode == "static" and table_schema is None:
            raise knext.InvalidParametersError("static quantisation needs calibration data: connect a table with the "
                                               "model's feature columns, or use dynamic mode")
        fspec = spec.feature_spec
        if table_schema is not None:
            if not fspec:
                raise knext.InvalidParametersError("the model has no table column mapping (it was not trained from a "
                                                   "table); disconnect the table and use dynamic mode")
            missing = [c for cols in fspec["inputs"].values() for c in cols if c not in table_schema.column_names]
            if missing:
                raise knext.InvalidParametersError(f"feature column(s) {missing} are not in the data table; available: "
                                                   f"{list(table_schema.column_names)}")
        return _QUANT_SCHEMA()

    def execute(self, exec_context, obj, table=None):
        from uop_engine.data import FeatureSpec, table_to_arrays
        from uop_engine.onnx_export import export_onnx
        from uop_engine.quantize import quantize_dynamic_model, quantize_static_model
        path = _path(self.path, "quantised ONNX file")
        _check_target(path, self.if_exists)
        b = obj.bundle
        model = export_onnx(b.graph, b.weights, opset=self.opset, class_labels=b.classes)
        X = y = None
        if table is not None:
            if table.num_rows == 0:  # checked before anything is quantised or written
                raise ValueError("the calibration / validation table has no rows; connect rows with the model's "
                                 "feature columns, or disconnect the table (dynamic mode)")
            fspec = FeatureSpec.from_dict(b.feature_spec)
            has_target = fspec.target is not None and fspec.target in table.schema.column_names
            if not has_target:
                fspec.target, fspec.task = None, "none"
            try:
                X, y = table_to_arrays(table.to_pyarrow(), fspec)
            except DataError as e:
                raise ValueError(str(e)) from None
        exec_context.set_progress(0.2, f"quantising ({self.mode})")
        try:
            if self.mode == "static":
                report = quantize_static_model(model, path, X[: self.calibration_rows], per_channel=self.per_channel,
                                               X_val=X, y_val=y)
            else:
                report = quantize_dynamic_model(model, path, per_channel=self.per_channel, X_val=X, y_val=y)
        except (GraphError, DataError) as e:
            raise _fail(e) from None
        import pandas as pd
        schema = _QUANT_SCHEMA()
        row = {c.name: report.get(c.name) for c in schema}
        row["rows"] = 0 if X is None else int(len(X))
        df = pd.DataFrame([row])
        for c in schema:  # missing numbers stay missing values of the declared type
            if c.ktype == knext.double():
                df[c.name] = df[c.name].astype("float64")
            elif c.ktype == knext.int64():
                df[c.name] = df[c.name].astype("int64")
        return knext.Table.from_pandas(df)


@knext.node(name="ONNX Reader", node_type=knext.NodeType.SOURCE, icon_path="icons/onnx.png", category=onnx_category,
            keywords=["onnx", "import", "read", "load"], id="tinyuop_onnx_reader")
@knext.output_port("Model", "The ONNX model as an editable TinyUOp model (graph + weights).", model_port_type)
class OnnxReaderNode:
    """Reads an ONNX file into a TinyUOp model: the graph is editable like any other and the
    weights come along, so it runs, fine-tunes and exports again.

    Files written by the ONNX Writer come back as the exact graph (same hash); other ONNX
    files are mapped op by op, and a file with unsupported ops fails with a message listing them.
    """

    path = knext.StringParameter("ONNX file", "The .onnx file to read.", "")

    def _bundle(self, ctx=None):
        import warnings

        from uop_engine.model_bundle import ModelBundle
        from uop_engine.onnx_export import load_model, onnx_metadata
        from uop_engine.onnx_import import import_onnx
        path = _path(self.path)
        if not os.path.isfile(path):
            raise knext.InvalidParametersError(f"no file at '{path}'")
        try:
            model = load_model(path)
        except GraphError as e:  # empty, truncated or not ONNX: the message names the file
            raise ValueError(str(e)) from None
        try:
            with warnings.catch_warnings():  # the import note is shown as the node's warning instead
                warnings.simplefilter("ignore")
                graph, weights = import_onnx(model)
            meta = onnx_metadata(model)
        except GraphError as e:
            raise ValueError(f"cannot read '{path}': {e}") from None
        except Exception as e:  # onnx errors inside a parsed file
            raise ValueError(f"'{path}' is not a readable ONNX model ({type(e).__name__}: {e})") from None
        if ctx is not None and graph.meta.get("import_note"):
            ctx.set_warning(f"{os.path.basename(path)}: {graph.meta['import_note']}")
        classes = meta.get("class_labels")
        record = {"source": "onnx", "path": os.path.abspath(path),
                  "onnx_metadata": {k: v for k, v in meta.items() if k != "graph_json"}}
        return ModelBundle(graph, weights, record, classes, "classification" if classes else "other")

    def configure(self, config_context):
        return model_spec(self._bundle(config_context))

    def execute(self, exec_context):
        return model_object(self._bundle(exec_context))
