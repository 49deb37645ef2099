"""Model Writer and Model Reader: a trained model to and from a .tuop file (a ModelBundle zip)."""
from __future__ import annotations

import os

import knime.extension as knext

from ._base import train_category
from .model_port import model_object, model_port_type, model_spec


def _path(value: str) -> str:
    path = os.path.expanduser((value or "").strip())
    if not path:
        raise knext.InvalidParametersError("set the model file path (e.g. /data/models/digits.tuop)")
    return path


@knext.node(name="Model Writer", node_type=knext.NodeType.SINK, icon_path="icons/io.png", category=train_category,
            keywords=["save", "write", "export", "model", "tuop"], id="tinyuop_model_writer")
@knext.input_port("Model", "The model to save.", model_port_type)
class ModelWriterNode:
    """Saves a trained model (graph, weights, classes, feature mapping, training record) to a .tuop file.

    The file is written atomically (a temporary file in the same folder, then renamed), so a
    reader never sees half a model. An existing file is only replaced when overwriting is on.
    When Train Model recorded the model's training run in an experiment store, the written file
    is attached to that run as an artifact (path, size, sha256).
    """

    path = knext.StringParameter("Model file", "Where to save the model (.tuop).", "")
    if_exists = knext.StringParameter("If the file exists", "fail: stop with an error; overwrite: replace it.",
                                      "fail", enum=["fail", "overwrite"])
    record = knext.BoolParameter("Record in the experiment store", "Attach the written file to the model's "
                                 "training run in the experiment store Train Model recorded it in.", True)

    def _check(self) -> str:
        path = _path(self.path)
        if os.path.isdir(path):
            raise knext.InvalidParametersError(f"'{path}' is a folder; give a file name such as model.tuop")
        return path

    def configure(self, config_context, spec):
        path = self._check()
        if os.path.exists(path) and self.if_exists == "fail":
            config_context.set_warning(f"'{path}' exists; execution fails unless 'If the file exists' is overwrite")
        return None

    def execute(self, exec_context, model_obj):
        path = self._check()
        if os.path.exists(path) and self.if_exists == "fail":
            raise ValueError(f"model file '{path}' already exists; set 'If the file exists' to overwrite or choose "
                             "another path")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValueError(f"the folder '{folder}' of the model file does not exist; create it first")
        from uop_engine.fileio import atomic_write
        atomic_write(path, model_obj.serialize())  # the bundle bytes as they travel on the port
        if self.record:
            self._attach(exec_context, model_obj, path)
        return None

    @staticmethod
    def _attach(ctx, model_obj, path: str) -> None:
        """Log the file as an artifact of the training run named in the model's record (if any)."""
        run = (model_obj.bundle.record or {}).get("experiment_run")
        if not run:
            return  # trained without tracking (or not by Train Model): no run to attach the file to
        store_file = run.get("store")
        if not store_file or not os.path.isfile(store_file):
            ctx.set_warning(f"model file not recorded: the experiment store '{store_file}' of its training run "
                            "no longer exists")
            return
        from uop_engine.store import ExperimentStore, StoreError
        try:
            st = ExperimentStore(store_file)
            try:
                st.get_run(run["run_id"])
                st.log_artifact(run["run_id"], os.path.abspath(path), kind="model")
            finally:
                st.close()
        except StoreError as e:
            ctx.set_warning(f"model file not recorded in the experiment store: {e}")


@knext.node(name="Model Reader", node_type=knext.NodeType.SOURCE, icon_path="icons/io.png", category=train_category,
            keywords=["load", "read", "import", "model", "tuop"], id="tinyuop_model_reader")
@knext.output_port("Model", "The model read from the file.", model_port_type)
class ModelReaderNode:
    """Reads a model saved by Model Writer (or ModelBundle.save) from a .tuop file."""

    path = knext.StringParameter("Model file", "The .tuop file to read.", "")

    def _load(self):
        from uop_engine.model_bundle import BundleError, ModelBundle
        path = _path(self.path)
        try:
            return ModelBundle.load(path)
        except BundleError as e:
            raise ValueError(str(e)) from None

    def configure(self, config_context):
        path = _path(self.path)
        if not os.path.exists(path):
            raise knext.InvalidParametersError(f"model file '{path}' does not exist; check the path")
        return model_spec(self._load())

    def execute(self, exec_context):
        return model_object(self._load())
