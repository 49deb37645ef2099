"""Batched inference: arrays in, arrays out; table rows in, result columns out.

`Predictor` keeps one TinyJit per input shape (a jit replays kernels captured for fixed buffer
sizes, so the last, smaller batch gets its own). `iter_predict` / `iter_predict_table` take
an iterator of batches and yield result batches, so memory stays flat however many rows flow
through. Classifier outputs become a predicted-label column plus one probability column per
class (softmax of the logits); regression outputs become value columns; anything else a list
column.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .bn_fold import fold_batchnorm  # noqa: F401 (re-exported)
from .errors import DataError


def as_model(model_or_bundle: Any, device: str | None = None):
    """CompiledModel from a CompiledModel, ModelBundle, or a path to a saved bundle."""
    from .compile import CompiledModel
    if isinstance(model_or_bundle, CompiledModel):
        return model_or_bundle
    from .model_bundle import ModelBundle
    if isinstance(model_or_bundle, (str, bytes)) or hasattr(model_or_bundle, "__fspath__"):
        model_or_bundle = ModelBundle.load(model_or_bundle)
    if isinstance(model_or_bundle, ModelBundle):
        return model_or_bundle.compile(device=device)
    raise TypeError(f"expected a CompiledModel, ModelBundle or bundle path, got {type(model_or_bundle).__name__}")


def input_arrays(model, X: Any, what: str = "X") -> list[np.ndarray]:
    """The model's inputs as arrays in graph-input order, checked and cast to each input's dtype.
    X: one array (one-input graphs), a dict {input name: array}, or a list/tuple in order.
    `model` may also be a Graph (only its Graph Input nodes are read)."""
    specs = _input_specs(model)
    names = [p["name"] for p in specs]
    if isinstance(X, dict):
        missing = [n for n in names if n not in X]
        extra = [k for k in X if k not in names]
        if missing or extra:
            raise DataError(f"{what}: the graph inputs are {names}; missing {missing}, unexpected {extra}")
        arrs = [X[n] for n in names]
    elif isinstance(X, (list, tuple)):
        arrs = list(X)
    else:
        arrs = [X]
    if len(arrs) != len(names):
        raise DataError(f"{what}: the graph has {len(names)} inputs ({', '.join(names)}) but {len(arrs)} arrays "
                        "were given; pass a dict {input name: array}")
    out, n = [], None
    for name, p, a in zip(names, specs, arrs):
        a = np.asarray(a)
        want = tuple(p["shape"])
        if a.ndim == 2 and len(want) > 1 and a.shape[1] == int(np.prod(want)):
            a = a.reshape((a.shape[0],) + want)  # flat feature rows (e.g. from a table) fill the input shape
        if tuple(a.shape[1:]) != want:
            raise DataError(f"{what}: input '{name}' needs arrays of shape (rows, {', '.join(map(str, want))}), "
                            f"got {a.shape}; reshape the data or change the Graph Input shape")
        if n is not None and a.shape[0] != n:
            raise DataError(f"{what}: input '{name}' has {a.shape[0]} rows, the first input has {n}")
        n = a.shape[0]
        if a.dtype.kind not in "biuf":
            raise DataError(f"{what}: input '{name}' has dtype {a.dtype}; it must be numeric")
        a = np.ascontiguousarray(a, dtype=np.dtype(p["dtype"]) if p["dtype"] != "bfloat16" else np.float32)
        if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
            bad = int((~np.isfinite(a.reshape(a.shape[0], -1))).any(axis=1).sum())
            raise DataError(f"{what}: input '{name}' has NaN or infinite values in {bad} rows; "
                            "fill or drop missing values first")
        out.append(a)
    return out


def _input_specs(model) -> list[dict]:
    from .graph import Graph
    if isinstance(model, Graph):
        from .infer import analyze
        an = analyze(model)
        return [an.params[n.id] for n in model.inputs()]
    return [p for _, p in model.input_nodes]


class Predictor:
    """Runs a model in inference mode on numpy batches, one TinyJit per batch shape."""

    def __init__(self, model_or_bundle: Any, device: str | None = None, jit: bool = True, beam: int = 0,
                 fold_bn: bool = False):
        self.model = as_model(model_or_bundle, device)
        if fold_bn:  # fewer kernels per batch; outputs equal up to float rounding
            self.model = fold_batchnorm(self.model)
        self.jit, self.beam = jit, beam
        self._fns: dict[tuple, Any] = {}

    def _fn(self, key: tuple):
        if key not in self._fns:
            from tinygrad import TinyJit
            model = self.model

            def run(*xs):
                out = model.forward(*xs, training=False)
                outs = out if isinstance(out, tuple) else (out,)
                return tuple(o.contiguous().realize() for o in outs) if len(outs) > 1 else outs[0].contiguous().realize()
            self._fns[key] = TinyJit(run) if self.jit else run
        return self._fns[key]

    def run_batch(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Outputs for one batch (arrays already prepared by `input_arrays`)."""
        from tinygrad import Context, Tensor
        from .train import beam_ctx
        dev = self.model.device
        key = tuple((a.shape, a.dtype.str) for a in xs)
        with Context(**beam_ctx(self.beam)):
            out = self._fn(key)(*[Tensor(a, device=dev) for a in xs])
        outs = out if isinstance(out, tuple) else (out,)
        return [o.numpy().copy() for o in outs]  # copy: a jit reuses its output buffer next call

    def iter_batches(self, X: Any, batch_size: int = 256) -> Iterator[list[np.ndarray]]:
        xs = input_arrays(self.model, X)
        n = xs[0].shape[0]
        for i in range(0, n, batch_size):
            yield self.run_batch([a[i:i + batch_size] for a in xs])


def predict(model_or_bundle: Any, X: Any, batch_size: int = 256, *, device: str | None = None, jit: bool = True,
            beam: int = 0, fold_bn: bool = False) -> np.ndarray | list[np.ndarray]:
    """Model outputs for all rows of X (any row count), computed in batches. A graph with one
    output gives one array; with several, a list of arrays in output order."""
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    pred = model_or_bundle if isinstance(model_or_bundle, Predictor) else Predictor(model_or_bundle, device, jit, beam, fold_bn)
    parts = list(pred.iter_batches(X, batch_size))
    if not parts:
        raise DataError("X has no rows to predict")
    outs = [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
    return outs[0] if len(outs) == 1 else outs


def iter_predict(model_or_bundle: Any, batches: Iterable[Any], batch_size: int = 256, *,
                 device: str | None = None, jit: bool = True) -> Iterator[np.ndarray | list[np.ndarray]]:
    """For each incoming batch of X (array or dict), yield its outputs; big incoming batches are
    split into `batch_size` chunks, so at most one chunk is on the device at a time."""
    pred = model_or_bundle if isinstance(model_or_bundle, Predictor) else Predictor(model_or_bundle, device, jit)
    for X in batches:
        parts = list(pred.iter_batches(X, batch_size))
        if not parts:
            continue
        outs = [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
        yield outs[0] if len(outs) == 1 else outs


# ---- outputs -> table columns -----------------------------------------------------------------
def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z.astype(np.float64) - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * z.astype(np.float64)))).astype(np.float32)  # stable for large |z|


def outputs_to_columns(outputs: np.ndarray | list[np.ndarray], task: str = "other", classes: Sequence | None = None,
                       output_names: Sequence[str] | None = None, target: str = "y",
                       probabilities: bool = True) -> dict[str, Any]:
    """Model outputs as named columns (KNIME's naming: 'Prediction (y)', 'P (y=cat)').

    classification: logits (N, C) -> predicted label + one softmax probability column per class
    binary:         logits (N,) or (N, 1) -> predicted label + P for both classes
    regression:     (N,) or (N, k) -> value column(s)
    other / extra outputs: one list column per output (or a number column for one value per row)
    """
    outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    names = list(output_names) if output_names is not None else [f"output_{i}" for i in range(len(outs))]
    cols: dict[str, Any] = {}
    first, rest = outs[0], list(zip(names[1:], outs[1:]))
    if task == "classification" and first.ndim == 2:
        labels = list(classes) if classes is not None else list(range(first.shape[1]))
        if len(labels) != first.shape[1]:
            raise DataError(f"the model outputs {first.shape[1]} scores but there are {len(labels)} classes")
        p = softmax(first)
        cols[f"Prediction ({target})"] = _take(labels, p.argmax(axis=1))
        if probabilities:
            for k, c in enumerate(labels):
                cols[f"P ({target}={c})"] = p[:, k]
    elif task == "binary" and first.reshape(first.shape[0], -1).shape[1] == 1:
        labels = list(classes) if classes is not None else [0, 1]
        p1 = sigmoid(first.reshape(-1))
        cols[f"Prediction ({target})"] = _take(labels, (p1 > 0.5).astype(np.int64))
        if probabilities:
            cols[f"P ({target}={labels[0]})"] = 1 - p1
            cols[f"P ({target}={labels[1]})"] = p1
    elif task == "regression" and first.ndim <= 2:
        v = first.reshape(first.shape[0], -1)
        if v.shape[1] == 1:
            cols[f"Prediction ({target})"] = v[:, 0]
        else:
            for k in range(v.shape[1]):
                cols[f"Prediction ({target}_{k})"] = v[:, k]
    else:
        rest = [(names[0], first)] + rest
    for name, o in rest:
        flat = o.reshape(o.shape[0], -1)
        cols[name] = flat[:, 0] if flat.shape[1] == 1 and o.ndim <= 2 else [row.tolist() for row in flat]
    return cols


def _take(labels: list, idx: np.ndarray) -> list | np.ndarray:
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in labels):
        return np.asarray(labels, dtype=np.int64)[idx]
    return [labels[i] for i in idx]


# ---- tables ---------------------------------------------------------------------------------------
def _table_spec(model, batch: Any, feature_spec: Any):
    """The data layer's FeatureSpec for a model's inputs (a copy: resolving it must not change
    the caller's); without one, every numeric column (or a single list / image column) feeds
    the single graph input."""
    from .data import FeatureSpec, infer_feature_spec
    names = [p["name"] for p in _input_specs(model)]
    if not feature_spec or not (feature_spec.inputs if isinstance(feature_spec, FeatureSpec)
                                else feature_spec.get("inputs")):
        if len(names) != 1:
            raise DataError(f"the graph has {len(names)} inputs ({', '.join(names)}); give a feature spec "
                            "that names the columns of each input")
        return infer_feature_spec(batch.schema, None, input_name=names[0])
    spec = FeatureSpec.from_dict(feature_spec.to_dict() if isinstance(feature_spec, FeatureSpec) else feature_spec)
    for name in names:
        if not spec.inputs.get(name):
            raise DataError(f"the feature spec names no columns for graph input '{name}'")
    return spec


def _masked_inputs(model, batch: Any, spec) -> tuple[list[np.ndarray], np.ndarray]:
    """(graph inputs for the rows without missing values, missing-row mask) from one batch."""
    from .data import convert
    xs, _, missing = convert(batch, spec, with_target=False)
    shapes = {p["name"]: tuple(p["shape"]) for p in _input_specs(model)}
    for name, a in xs.items():
        want = shapes.get(name)
        if want is not None and a.shape[1:] != want and int(np.prod(a.shape[1:])) == int(np.prod(want)):
            xs[name] = a.reshape((a.shape[0],) + want)  # e.g. an 8x8 image for a flat (64,) input
        if missing.any():
            xs[name] = xs[name][~missing]
    return input_arrays(model, {k: v for k, v in xs.items() if k in shapes}, "table"), missing


def table_inputs(model, batch: Any, feature_spec: Any = None) -> list[np.ndarray]:
    """Graph inputs (for a CompiledModel or Graph) from a pyarrow RecordBatch/Table, through the
    data layer (uop_engine.data). `feature_spec`: a FeatureSpec or its dict ({"inputs": {"x":
    ["c1", "c2", ...]}, ...}); without one, every numeric column feeds the single graph input in
    table order (a single list or image column holds whole samples). Under the skip_rows
    policy, rows with missing values are left out."""
    return _masked_inputs(model, batch, _table_spec(model, batch, feature_spec))[0]


class PredictionCancelled(RuntimeError):
    """`should_stop()` said stop; `rows` rows had been predicted (whole model batches)."""

    def __init__(self, rows: int):
        self.rows = rows
        super().__init__(f"prediction cancelled after {rows} rows")


def iter_predict_table(model_or_bundle: Any, batches: Iterable[Any], *, feature_spec: dict | None = None,
                       batch_size: int = 256, keep_columns: bool | Sequence[str] = True, probabilities: bool = True,
                       task: str | None = None, classes: Sequence | None = None, target: str | None = None,
                       device: str | None = None, fold_bn: bool = False,
                       should_stop: Callable[[], bool] | None = None,
                       on_rows: Callable[[int], None] | None = None) -> Iterator[Any]:
    """For each incoming pyarrow RecordBatch, yield a RecordBatch of the kept input columns plus
    the prediction columns. Memory stays at about one incoming batch. Rows skipped for missing
    values (skip_rows policy) get missing predictions.

    should_stop() is asked before every model batch (so a large incoming batch can be stopped
    part-way; PredictionCancelled); on_rows(n) is told the rows of the incoming batches
    predicted so far after every model batch (for progress)."""
    import pyarrow as pa
    from .model_bundle import ModelBundle
    b = model_or_bundle
    if isinstance(b, (str, bytes)) or hasattr(b, "__fspath__"):
        b = ModelBundle.load(b)
    if isinstance(b, ModelBundle):
        task = task or b.task
        classes = classes if classes is not None else b.classes
        feature_spec = feature_spec if feature_spec is not None else b.feature_spec
        target = target or (b.feature_spec or {}).get("target")
    pred = Predictor(b, device, fold_bn=fold_bn)
    from .infer import analyze
    names = analyze(pred.model.graph).output_names
    spec, done = None, 0
    for batch in _record_batches(batches):
        spec = spec or _table_spec(pred.model, batch, feature_spec)
        xs, missing = _inputs_or_counted_error(pred.model, batch, spec, batches)
        n_ok = xs[0].shape[0]
        parts = []
        for i in range(0, n_ok, batch_size):
            if should_stop is not None and should_stop():
                raise PredictionCancelled(done + i)
            parts.append(pred.run_batch([a[i:i + batch_size] for a in xs]))
            if on_rows is not None:
                on_rows(done + min(n_ok, i + batch_size))
        done += batch.num_rows
        if not parts:  # every row of this batch has missing values: outputs from a one-row dummy, all masked
            parts = [pred.run_batch([np.zeros((1,) + a.shape[1:], a.dtype) for a in xs])]
        outs = [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
        cols = outputs_to_columns(outs, task or "other", classes, names, target or "y", probabilities)
        keep = batch.schema.names if keep_columns is True else list(keep_columns or [])
        new = [_with_missing(v, missing, n_ok) for v in cols.values()]
        fields = [batch.schema.field(c) for c in keep] + [pa.field(k, a.type) for k, a in zip(cols, new)]
        # the kept columns' fields keep their metadata (e.g. KNIME's PNG image columns)
        yield pa.RecordBatch.from_arrays([batch.column(c) for c in keep] + new, schema=pa.schema(fields))


def _inputs_or_counted_error(model, batch: Any, spec, batches: Iterable[Any]) -> tuple[list[np.ndarray], np.ndarray]:
    """_masked_inputs, whose missing-value error counts over every batch when `batches` can be read
    again (a table or a list; a one-pass iterator keeps this batch's count) and advises the
    prediction's own setting."""
    from .bad_values import PREDICTION_FIX, MissingValues, count_missing_in_batches
    try:
        return _masked_inputs(model, batch, spec)
    except MissingValues as e:
        if iter(batches) is not batches:
            raise count_missing_in_batches(_record_batches(batches), e.column, PREDICTION_FIX) from None
        raise e.with_fix(PREDICTION_FIX) from None


def _with_missing(values: Any, missing: np.ndarray, n_ok: int) -> Any:
    """A column for every row of the batch: predictions where features were complete, null elsewhere."""
    import pyarrow as pa
    arr = pa.array(values) if not isinstance(values, np.ndarray) or values.ndim == 1 else pa.array(list(values))
    if not missing.any():
        return arr
    idx = np.full(missing.shape[0], -1, np.int64)
    idx[~missing] = np.arange(n_ok)
    return arr.take(pa.array(idx, mask=missing))


def _record_batches(batches: Iterable[Any]) -> Iterator[Any]:
    """RecordBatches from an iterable of RecordBatches and/or Tables (KNIME hands over either)."""
    import pyarrow as pa
    for b in batches:
        for rb in (b.to_batches() if isinstance(b, pa.Table) else [b]):
            if rb.num_rows:
                yield rb


def predict_table(model_or_bundle: Any, table: Any, **kw) -> Any:
    """Whole-table version of `iter_predict_table` (same keyword arguments); returns a pyarrow Table."""
    import pyarrow as pa
    out = list(iter_predict_table(model_or_bundle, [table], **kw))
    if not out:
        raise DataError("the table has no rows to predict")
    return pa.Table.from_batches(out)
