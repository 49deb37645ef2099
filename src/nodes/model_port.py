"""The TinyUOp Model port type (a trained model travelling between nodes).

Spec: small JSON (graph hash and name, task, loss, classes, input/output shapes, the feature
spec that maps table columns to graph inputs, parameter count, training record id). The
Train Model node's configure step cannot know what only training learns (the class list,
the record id): those are null there and filled in the executed model's spec.
Object: ModelBundle bytes (graph JSON + safetensors weights + training record), decoded lazily.
"""
from __future__ import annotations

from typing import Any

import knime.extension as knext

from uop_engine.model_bundle import ModelBundle


class ModelPortSpec(knext.PortObjectSpec):
    def __init__(self, data: dict):
        self._data = data

    @property
    def data(self) -> dict:
        return self._data

    @property
    def task(self) -> str:
        return self._data.get("task", "other")

    @property
    def classes(self) -> list | None:
        return self._data.get("classes")

    @property
    def feature_spec(self) -> dict | None:
        return self._data.get("feature_spec")

    def serialize(self) -> dict:
        return self._data

    @classmethod
    def deserialize(cls, data: dict) -> "ModelPortSpec":
        return cls(data)


class ModelPortObject(knext.PortObject):
    def __init__(self, spec: ModelPortSpec, bundle: ModelBundle | None = None, data: bytes | None = None):
        super().__init__(spec)
        if bundle is None and data is None:
            raise ValueError("a model port object needs a ModelBundle or its bytes")
        self._bundle, self._bytes = bundle, data

    @property
    def bundle(self) -> ModelBundle:
        if self._bundle is None:
            self._bundle = ModelBundle.from_bytes(self._bytes, source="the model port")
        return self._bundle

    def serialize(self) -> bytes:
        if self._bytes is None:
            self._bytes = self._bundle.to_bytes()
        return self._bytes

    @classmethod
    def deserialize(cls, spec: ModelPortSpec, storage: bytes) -> "ModelPortObject":
        return cls(spec, data=storage)


model_port_type = knext.port_type("TinyUOp Model", ModelPortObject, ModelPortSpec,
                                  id="org.tinyuop.builder.ports.ModelPortObject")


def spec_data(graph, task: str, classes: list | None, feature_spec: dict | None, loss: str | None,
              rec_id: str | None) -> dict:
    from uop_engine.infer import summarize
    s = summarize(graph)
    return {"graph_hash": graph.hash(), "graph_name": graph.name, "task": task, "loss": loss,
            "classes": classes, "inputs": {k: list(v) for k, v in s.inputs.items()},
            "outputs": {k: list(v) for k, v in s.outputs.items()}, "n_params": int(s.n_params),
            "feature_spec": feature_spec, "record_id": rec_id}


def model_spec(bundle: ModelBundle) -> ModelPortSpec:
    loss = (bundle.record.get("config") or {}).get("loss")
    return ModelPortSpec(spec_data(bundle.graph, bundle.task, bundle.classes, bundle.feature_spec, loss,
                                   bundle.record_id))


def model_object(bundle: ModelBundle) -> ModelPortObject:
    return ModelPortObject(model_spec(bundle), bundle)


# ---- KNIME table schemas as Arrow schemas (for the data layer's configure-time checks) ----------------
def arrow_type(ktype: Any):
    """The Arrow type KNIME hands a column of this KNIME type over as (pa.null() when unusable)."""
    import pyarrow as pa
    simple = [(knext.double(), pa.float64()), (knext.int64(), pa.int64()), (knext.int32(), pa.int32()),
              (knext.bool_(), pa.bool_()), (knext.string(), pa.string())]
    for kt, at in simple:
        if ktype == kt:
            return at
    if isinstance(ktype, knext.ListType):
        return pa.list_(arrow_type(ktype.inner_type))
    if isinstance(ktype, knext.LogicalType):
        lt = str(ktype.logical_type)
        return pa.large_binary() if "Image" in lt or "PNG" in lt else pa.null()
    try:
        if ktype == knext.blob():
            return pa.large_binary()
    except Exception:  # blob() may not exist in every KNIME version
        pass
    return pa.null()


def arrow_schema(schema: Any):
    """A pyarrow schema with the columns of a KNIME table schema (RowID left out)."""
    import pyarrow as pa
    return pa.schema([pa.field(c.name, arrow_type(c.ktype)) for c in schema])
