"""Post-training int8 quantisation of exported ONNX models through onnxruntime.quantization.

`quantize_dynamic_model` stores weights as int8 and quantises activations on the fly (no data
needed); `quantize_static_model` also fixes activation ranges from calibration data (an array,
a table, a dict of arrays or an iterable of batches) and writes a QDQ model. Both write the
result atomically and return a report: file sizes, size ratio, and, given validation data,
accuracy of both models (classification) or their error (regression) and the change. Parameters
(batch_size, max_batches) and data (calibration, X_val, y_val) are checked before onnxruntime runs,
and the output file (and its folder) only appear once everything worked.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Iterable, Iterator

import numpy as np

from .errors import DataError, GraphError
from .fileio import atomic_write
from .onnx_export import META_PREFIX, load_model

_NP_OF_ONNX = {1: np.float32, 10: np.float16, 11: np.float64, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
               2: np.uint8, 9: np.bool_}


def _inputs(model) -> list[tuple[str, tuple, Any]]:
    """(name, per-sample shape, numpy dtype) of each real graph input."""
    inits = {t.name for t in model.graph.initializer}
    out = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
        out.append((vi.name, dims[1:], _NP_OF_ONNX.get(t.elem_type, np.float32)))
    return out


def _as_feeds(data: Any, specs: list[tuple[str, tuple, Any]], what: str) -> dict[str, np.ndarray]:
    """Array / table / dict of arrays -> {input name: array shaped (n, *per-sample shape)}."""
    if hasattr(data, "to_pandas"):  # pyarrow Table
        data = data.to_pandas()
    if hasattr(data, "to_numpy") and hasattr(data, "columns"):  # pandas DataFrame: one row per sample
        if len(specs) != 1:
            raise DataError(f"{what}: a table can feed one model input, the model has {len(specs)}")
        data = data.to_numpy()
    if not isinstance(data, dict):
        if len(specs) != 1:
            raise DataError(f"{what}: the model has inputs {[s[0] for s in specs]}; pass a dict of arrays by name")
        data = {specs[0][0]: data}
    feeds = {}
    for name, shape, dtype in specs:
        if name not in data:
            raise DataError(f"{what}: no data for model input '{name}'")
        arr = np.asarray(data[name])
        try:
            arr = arr.astype(dtype, copy=False).reshape((-1,) + tuple(shape))
        except ValueError:
            raise DataError(f"{what}: data of shape {np.shape(data[name])} does not fit input '{name}' "
                            f"(batch, {', '.join(map(str, shape))})") from None
        feeds[name] = np.ascontiguousarray(arr)
    sizes = {len(a) for a in feeds.values()}
    if sizes == {0}:
        raise DataError(f"{what} is empty (0 rows); give it rows, or leave it out")
    if len(sizes) != 1 or 0 in sizes:
        raise DataError(f"{what}: inputs must have the same, non-zero number of rows, got {sorted(sizes)}")
    return feeds


def _check_batching(batch_size: Any, max_batches: Any) -> None:
    # checked by name up front: 0 would fail inside onnxruntime as a bare 'range() arg 3 must not be zero'
    def whole(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 1
    if not whole(batch_size):
        raise GraphError(f"must be a whole number of 1 or more, got {batch_size!r}", param="batch_size",
                         fix="give the number of calibration rows per batch, e.g. 32")
    if max_batches is not None and not whole(max_batches):
        raise GraphError(f"must be a whole number of 1 or more, or None for all batches, got {max_batches!r}",
                         param="max_batches", fix="give how many calibration batches to use, or leave it out")


def _check_targets(outputs: np.ndarray, y_val: Any) -> np.ndarray:
    """y_val as compare() uses it: integer class indices, one per row, for a model that outputs
    class scores; else one number per output value. Checked before anything is written."""
    y, n = np.asarray(y_val), len(outputs)
    if y.dtype.kind not in "biuf":
        raise DataError(f"validation targets (y_val) must be numbers (integer class indices or target values), got "
                        f"{y.dtype} values")
    if len(np.atleast_1d(y)) != n:
        raise DataError(f"validation targets (y_val) have {len(np.atleast_1d(y))} rows but the validation data "
                        f"(X_val) has {n}; they must be row-aligned")
    classify = outputs.ndim == 2 and outputs.shape[1] > 1
    if classify and y.dtype.kind in "iu":
        if y.size != n:
            raise DataError(f"validation targets (y_val) of shape {y.shape} hold integers, read as class indices: "
                            f"give one per row, shape ({n},)")
        y = y.reshape(n)
        k = outputs.shape[1]
        if y.min() < 0 or y.max() >= k:
            raise DataError(f"validation targets (y_val) are class indices from {y.min()} to {y.max()}, but the "
                            f"model scores {k} classes (0 to {k - 1})")
        return y
    if y.size != outputs.size:
        raise DataError(f"validation targets (y_val) have shape {y.shape} but the model's output for the {n} "
                        f"validation rows has shape {outputs.shape}; give one target per output value"
                        + (f", or integer class indices of shape ({n},)" if classify else ""))
    return y.reshape(outputs.shape)


def _check_validation(model, X_val: Any, y_val: Any) -> np.ndarray | None:
    """Validation data must be usable before anything is quantised or written: a report that
    fails after the file is written would leave a file behind for a failed step. Returns the
    original model's outputs on X_val (run once, here, so y_val can be checked against them)."""
    if X_val is None:
        if y_val is not None:
            raise DataError("validation targets (y_val) were given without validation inputs (X_val)")
        return None
    _as_feeds(X_val, _inputs(model), "validation data")
    outputs = run_model(model, X_val)
    if y_val is not None:
        _check_targets(outputs, y_val)
    return outputs


def calibration_reader(model_or_path: Any, data: Any, batch_size: int = 32, max_batches: int | None = None):
    """An onnxruntime CalibrationDataReader over an array, a table (one row per sample), a dict of
    arrays by input name, or an iterable of such batches; `rewind()` starts it over."""
    from onnxruntime.quantization import CalibrationDataReader  # heavy: imported only when quantising
    _check_batching(batch_size, max_batches)
    specs = _inputs(load_model(model_or_path))

    def batches() -> Iterator[dict[str, np.ndarray]]:
        if isinstance(data, (np.ndarray, dict)) or hasattr(data, "columns") or hasattr(data, "to_pandas"):
            feeds = _as_feeds(data, specs, "calibration data")
            n = len(next(iter(feeds.values())))
            for i in range(0, n, batch_size):
                yield {k: v[i:i + batch_size] for k, v in feeds.items()}
        else:
            for b in data:
                yield _as_feeds(b, specs, "calibration batch")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rewind()

        def get_next(self) -> dict[str, np.ndarray] | None:
            if max_batches is not None and self.count >= max_batches:
                return None
            self.count += 1
            if self.pending is not None:
                b, self.pending = self.pending, None
                return b
            return next(self.it, None)

        def rewind(self) -> None:
            self.it, self.count, self.pending = batches(), 0, None

        def empty(self) -> bool:
            """Whether no batch comes at all; the first batch is kept for get_next (a generator
            cannot be rewound)."""
            if self.count == 0 and self.pending is None:
                self.pending = next(self.it, None)
            return self.pending is None and self.count == 0
    return Reader()


def run_model(model_or_path: Any, X: Any, batch_size: int = 256, output: int = 0) -> np.ndarray:
    """Run an ONNX model in onnxruntime over X (array, table or dict of arrays), in batches."""
    import onnxruntime as ort
    model = load_model(model_or_path)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = _as_feeds(X, _inputs(model), "validation data")
    n = len(next(iter(feeds.values())))
    outs = [sess.run(None, {k: v[i:i + batch_size] for k, v in feeds.items()})[output] for i in range(0, n, batch_size)]
    return np.concatenate(outs)


def compare(original: Any, quantized: Any, X: Any, y: Any = None, output: int = 0,
            original_outputs: np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy of both models (integer labels and a class-score output) or their error against y
    (regression), plus how far the quantised outputs moved. `original_outputs`: the original
    model's outputs on X when already computed."""
    a = run_model(original, X, output=output) if original_outputs is None else original_outputs
    b = run_model(quantized, X, output=output)
    rep: dict[str, Any] = {"max_abs_diff": float(np.max(np.abs(a - b))), "mean_abs_diff": float(np.mean(np.abs(a - b)))}
    classify = a.ndim == 2 and a.shape[1] > 1
    if classify:
        rep["prediction_agreement"] = float(np.mean(a.argmax(1) == b.argmax(1)))
    if y is None:
        return rep
    y = _check_targets(a, y)
    if classify and np.issubdtype(y.dtype, np.integer):
        acc_a, acc_b = float(np.mean(a.argmax(1) == y)), float(np.mean(b.argmax(1) == y))
        rep.update(task="classification", original_accuracy=acc_a, quantized_accuracy=acc_b, accuracy_delta=acc_b - acc_a)
    else:
        y = y.astype(np.float64)
        mae_a, mae_b = float(np.mean(np.abs(a - y))), float(np.mean(np.abs(b - y)))
        rep.update(task="regression", original_mae=mae_a, quantized_mae=mae_b, mae_delta=mae_b - mae_a)
    return rep


def _quantize(mode: str, model_or_path: Any, out_path: str | os.PathLike, run, settings: dict,
              preprocess: bool, X_val: Any, y_val: Any) -> dict[str, Any]:
    import onnx
    model = load_model(model_or_path)
    original_outputs = _check_validation(model, X_val, y_val)
    out_path = os.fspath(out_path)
    # onnxruntime works on files: its inputs and outputs go to a private temp folder, and the output
    # path (and its folder) only comes into being when the result is written
    with tempfile.TemporaryDirectory(prefix="tinyuop_quant_") as work:
        tmp_in, tmp_pre, tmp_out = (os.path.join(work, f) for f in ("in.onnx", "pre.onnx", "q.onnx"))
        with open(tmp_in, "wb") as f:
            f.write(model.SerializeToString())
        src = tmp_in
        if preprocess:  # shape inference + graph optimisation, as onnxruntime recommends before quantising
            try:
                from onnxruntime.quantization import quant_pre_process
                quant_pre_process(tmp_in, tmp_pre, skip_symbolic_shape=True)
                src = tmp_pre
            except Exception:  # pre-processing only helps; quantise the model as it is
                src = tmp_in
        try:
            run(src, tmp_out)
        except DataError:
            raise
        except Exception as e:
            if "No data is collected" in str(e):  # every calibration batch was skipped by onnxruntime
                raise DataError("calibration data gave onnxruntime no usable batches; give at least one batch of "
                                "the model's inputs (a sample of the training data)") from None
            raise GraphError(f"onnxruntime could not quantise the model ({mode}): {e}",
                             fix="try the other mode or export at another opset") from None
        q = onnx.load(tmp_out)
        onnx.checker.check_model(q, full_check=True)  # everything we write must pass the checker
    del q.metadata_props[:]  # carry the original metadata (graph hash, labels) over, plus how it was made
    for prop in model.metadata_props:
        q.metadata_props.add(key=prop.key, value=prop.value)
    q.metadata_props.add(key=f"{META_PREFIX}quantization", value=json.dumps(dict(settings, mode=mode)))
    data = q.SerializeToString()
    orig_bytes, q_bytes = len(model.SerializeToString()), len(data)
    report: dict[str, Any] = {"mode": mode, "path": out_path, "original_bytes": orig_bytes, "quantized_bytes": q_bytes,
                              "size_ratio": q_bytes / orig_bytes, **settings}
    if X_val is not None:  # compared before writing: the file only appears for a step that succeeded
        report.update(compare(model, q, X_val, y_val, original_outputs=original_outputs))
    atomic_write(out_path, data)
    return report


def _qtype(name: str):
    from onnxruntime.quantization import QuantType
    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    if name not in types:
        raise GraphError(f"'{name}' is not a quantisation type", fix="use int8 or uint8")
    return types[name]


def quantize_dynamic_model(model_or_path: Any, out_path: str | os.PathLike, *, per_channel: bool = False,
                           weight_type: str = "int8", op_types: Iterable[str] | None = None, preprocess: bool = True,
                           X_val: Any = None, y_val: Any = None) -> dict[str, Any]:
    """int8 weights, activations quantised at run time; returns the report (see module docs)."""
    from onnxruntime.quantization import quantize_dynamic
    settings = {"per_channel": per_channel, "weight_type": weight_type, "op_types": list(op_types) if op_types else None}
    wt = _qtype(weight_type)
    return _quantize("dynamic", model_or_path, out_path,
                     lambda src, dst: quantize_dynamic(src, dst, op_types_to_quantize=settings["op_types"],
                                                       per_channel=per_channel, weight_type=wt),
                     settings, preprocess, X_val, y_val)


def quantize_static_model(model_or_path: Any, out_path: str | os.PathLike, calibration: Any, *, batch_size: int = 32,
                          max_batches: int | None = None, per_channel: bool = True, quant_format: str = "qdq",
                          activation_type: str = "int8", weight_type: str = "int8", calibrate_method: str = "minmax",
                          op_types: Iterable[str] | None = None, preprocess: bool = True, X_val: Any = None,
                          y_val: Any = None) -> dict[str, Any]:
    """int8 weights and activations with ranges calibrated on `calibration` (array, table, dict of
    arrays, or an iterable of batches); returns the report (see module docs)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    formats = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
    if calibrate_method not in methods:
        raise GraphError(f"unknown calibration method '{calibrate_method}'", fix=f"use one of {', '.join(methods)}")
    if quant_format not in formats:
        raise GraphError(f"unknown quantisation format '{quant_format}'", fix="use qdq or qoperator")
    _check_batching(batch_size, max_batches)
    if calibration is None:
        raise DataError("static quantisation needs calibration data (a sample of the training inputs)")
    model = load_model(model_or_path)
    if isinstance(calibration, (np.ndarray, dict, list, tuple)) or hasattr(calibration, "columns") \
            or hasattr(calibration, "to_pandas"):
        if isinstance(calibration, (list, tuple)) and len(calibration) == 0:
            raise DataError("calibration data is an empty list of batches; give at least one batch of the model's "
                            "inputs (a sample of the training data)")
        if not isinstance(calibration, (list, tuple)):  # checked (shape, rows) before anything is written
            _as_feeds(calibration, _inputs(model), "calibration data")
    settings = {"per_channel": per_channel, "quant_format": quant_format, "activation_type": activation_type,
                "weight_type": weight_type, "calibrate_method": calibrate_method,
                "op_types": list(op_types) if op_types else None}
    at, wt = _qtype(activation_type), _qtype(weight_type)

    def run(src, dst):
        reader = calibration_reader(model, calibration, batch_size=batch_size, max_batches=max_batches)
        if reader.empty():  # onnxruntime would only say 'No data is collected'
            raise DataError("calibration data gave no batches (an empty iterable); give at least one batch of the "
                            "model's inputs (a sample of the training data)")
        quantize_static(src, dst, reader, quant_format=formats[quant_format], op_types_to_quantize=settings["op_types"],
                        per_channel=per_channel, activation_type=at, weight_type=wt,
                        calibrate_method=methods[calibrate_method])
    return _quantize("static", model, out_path, run, settings, preprocess, X_val, y_val)
