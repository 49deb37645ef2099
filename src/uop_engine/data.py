"""Tables to tensors: the data layer between pyarrow tables (what KNIME hands over) and the graph.

A `FeatureSpec` (a JSON round trip through `to_dict` / `from_dict`) says, per graph input,
which columns hold a sample and how: several numeric columns ("columns"), one list /
fixed-size list column ("vector") or one column of PNG bytes ("image", decoded to
C x H x W in [0, 1]); an optional reshape to the graph input's shape; the target column,
the task, the sorted class list and the missing-value policy ("error" or "skip_rows").

`infer_feature_spec` checks a spec against a schema (KNIME's configure step), `iter_arrays`
streams (X, y) batches from a table or any iterator of RecordBatches (flat memory), and
`table_to_arrays` converts a whole table. Features always come out as float32: float64 is
cast explicitly, in row blocks that stay in cache (no np.stack of per-row objects).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .errors import DataError
from .bad_values import MissingValues, count_missing
from .columns import chunks, column_kind, columns_into, target_into, vector_into
from .images import MODES, decode_into, probe

SPEC_FORMAT = "tinyuop.feature_spec"
MISSING_POLICIES = ("error", "skip_rows")
TASKS = ("auto", "classification", "binary", "regression", "none")
KINDS = ("columns", "vector", "image", "auto")


@dataclass
class FeatureSpec:
    inputs: dict[str, list[str]]                                 # graph input -> its feature columns
    kinds: dict[str, str] = field(default_factory=dict)          # input -> columns | vector | image | auto
    shapes: dict[str, list[int] | None] = field(default_factory=dict)  # per-sample shape after reshape
    target: str | None = None
    task: str = "none"                                           # classification | binary | regression | none
    classes: list | None = None                                  # sorted labels (classification / binary)
    missing: str = "error"                                       # error | skip_rows
    images: dict[str, dict] = field(default_factory=dict)        # image input -> {"mode": "L", "size": [h, w]}

    @property
    def features(self) -> list[str]:
        """Feature columns of the (first) input."""
        return next(iter(self.inputs.values()))

    def to_dict(self) -> dict[str, Any]:
        # "inputs" and "target" keep the older {"inputs": {...}, "target": ...} readers working
        return {"format": SPEC_FORMAT, "version": 1, "inputs": {k: list(v) for k, v in self.inputs.items()},
                "kinds": dict(self.kinds), "shapes": {k: (list(v) if v else None) for k, v in self.shapes.items()},
                "target": self.target, "task": self.task, "classes": _plain(self.classes), "missing": self.missing,
                "images": copy.deepcopy(self.images)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | "FeatureSpec") -> "FeatureSpec":
        if isinstance(d, FeatureSpec):
            return d
        if not isinstance(d, dict) or not isinstance(d.get("inputs"), dict):
            raise DataError("a feature spec needs 'inputs': {graph input name: [column, ...]}")
        inputs = {str(k): [v] if isinstance(v, str) else list(v) for k, v in d["inputs"].items()}
        spec = cls(inputs, {k: d.get("kinds", {}).get(k, "auto") for k in inputs},
                   {k: (list(s) if s else None) for k, s in (d.get("shapes") or {}).items()}, d.get("target"),
                   d.get("task") or ("none" if d.get("target") is None else "auto"), d.get("classes"),
                   d.get("missing", "error"), dict(d.get("images") or {}))
        if spec.missing not in MISSING_POLICIES:
            raise DataError(f"missing-value policy '{spec.missing}' is not one of {', '.join(MISSING_POLICIES)}")
        return spec


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _schema(obj: Any):
    import pyarrow as pa
    if isinstance(obj, pa.Schema):
        return obj
    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return obj.schema
    if isinstance(obj, dict):
        return pa.schema(list(obj.items()))
    raise TypeError(f"expected a pyarrow Schema, Table or RecordBatch, got {type(obj).__name__}")


def _resolve_kind(schema, name: str, cols: list[str]) -> str:
    kinds = [column_kind(schema.field(c).type) for c in cols]
    bad = [(c, schema.field(c).type) for c, k in zip(cols, kinds) if k not in ("number", "vector", "image")]
    if bad:
        c, t = bad[0]
        raise DataError(f"feature column '{c}' has type {t}; feature columns must be numeric, a numeric list "
                        "(vector) or PNG images")
    if all(k == "number" for k in kinds):
        return "columns"
    if len(cols) > 1:
        c = next(c for c, k in zip(cols, kinds) if k != "number")
        raise DataError(f"feature column '{c}' is a {kinds[cols.index(c)]} column; a list (vector) or image "
                        f"column must be the only feature column of graph input '{name}'")
    return kinds[0]


# ---- spec from a schema (configure time) -----------------------------------------------------------
def infer_feature_spec(schema_or_table: Any, features: list[str] | str | dict | None, target: str | None = None,
                       task: str = "auto", input_shape: Any = None, *, input_name: str = "x",
                       missing: str = "error", classes: list | None = None) -> FeatureSpec:
    """Check the chosen columns against a schema and describe how they become tensors.

    features: column names for one input (several numeric columns, or one list / image column),
    a dict {graph input: [columns]}, or None (all numeric columns but the target; else the
    single list or image column). input_shape: per-sample shape to reshape to (one input) or a
    dict per input. Errors name the column and list what the table has."""
    schema = _schema(schema_or_table)
    names = list(schema.names)
    avail = ", ".join(n for n in names if n != "<RowID>")
    if task not in TASKS:
        raise DataError(f"task '{task}' is not one of {', '.join(TASKS)}")
    if missing not in MISSING_POLICIES:
        raise DataError(f"missing-value policy '{missing}' is not one of {', '.join(MISSING_POLICIES)}")
    if target is not None and target not in names:
        raise DataError(f"target column '{target}' is not in the table; available columns: {avail}")
    if features is None or (isinstance(features, (list, tuple)) and not features):
        usable = [n for n in names if n != target and column_kind(schema.field(n).type) == "number"]
        if not usable:
            usable = [n for n in names if n != target and column_kind(schema.field(n).type) in ("vector", "image")][:1]
        if not usable:
            raise DataError(f"the table has no numeric, list or image feature columns besides the target; "
                            f"available columns: {avail}")
        features = usable
    inputs = dict(features) if isinstance(features, dict) else {input_name: [features] if isinstance(features, str)
                                                                else list(features)}
    shapes = dict(input_shape) if isinstance(input_shape, dict) else {input_name: input_shape}
    spec = FeatureSpec({k: list(v) for k, v in inputs.items()}, missing=missing, target=target)
    for name, cols in spec.inputs.items():
        if not cols:
            raise DataError(f"no feature columns are chosen for graph input '{name}'")
        for c in cols:
            if c not in names:
                raise DataError(f"feature column '{c}' is not in the table; available columns: {avail}")
        if target is not None and target in cols:
            raise DataError(f"column '{target}' is both the target and a feature column; remove it from the features")
        spec.kinds[name] = kind = _resolve_kind(schema, name, cols)
        shape = shapes.get(name)
        spec.shapes[name] = [int(s) for s in shape] if shape is not None and len(shape) else None
        if kind == "columns" and spec.shapes[name] is not None and int(np.prod(spec.shapes[name])) != len(cols):
            raise DataError(f"graph input '{name}' has shape {tuple(spec.shapes[name])} = "
                            f"{int(np.prod(spec.shapes[name]))} values per sample but {len(cols)} feature columns "
                            "are chosen; choose that many columns or change the input shape")
        if kind == "image" and spec.shapes[name] is not None and len(spec.shapes[name]) == 3 \
                and spec.shapes[name][0] in MODES:
            c, h, w = spec.shapes[name]
            spec.images[name] = {"mode": MODES[c], "size": [h, w]}
    spec.task = _task(schema, target, task)
    spec.classes = None if classes is None else _plain(list(classes))
    return spec


def _task(schema, target: str | None, task: str) -> str:
    if target is None:
        return "none"
    t = schema.field(target).type
    kind = column_kind(t)
    if task == "auto":
        import pyarrow as pa
        if kind == "label" or pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_dictionary(t):
            return "classification"
        if kind in ("number", "vector"):
            return "regression"
    elif task == "regression" and kind in ("number", "vector"):
        return task
    elif task in ("classification", "binary") and kind in ("number", "label"):
        return task
    elif task == "none":
        return task
    raise DataError(f"target column '{target}' has type {t}, which cannot be a {task} target; use labels "
                    "(string or integer) for classification and numbers for regression")


# ---- resolving what only the data can say (classes, image size) -------------------------------------
def fit_classes(table: Any, spec: FeatureSpec) -> list:
    """The sorted distinct labels of the target column (nulls left out)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    col = table.column(spec.target)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return class_list(pc.unique(col).to_pylist())


def class_list(labels: Any) -> list:
    """Sorted distinct labels, leaving out what is no label: null, NaN and infinities (a missing or
    unusable value of a float class column, skipped or reported like a regression target's)."""
    import math
    values = sorted({v for v in labels if v is not None and not (isinstance(v, float) and not math.isfinite(v))})
    if values and all(isinstance(v, float) and v.is_integer() for v in values):
        values = [int(v) for v in values]  # 0.0 / 1.0 labels read as classes 0 / 1
    return values


def resolve(spec: FeatureSpec, data: Any, targets: bool = True) -> FeatureSpec:
    """Fill what the spec leaves open from the data (in place): the class list from a whole table,
    image mode and size from the first image. Returns the spec."""
    import pyarrow as pa
    for name, cols in spec.inputs.items():
        absent = [c for c in cols if c not in data.schema.names]
        if absent:
            raise DataError(f"feature column(s) {absent[:5]} for graph input '{name}' are not in the table; "
                            f"available columns: {', '.join(data.schema.names[:30])}")
        if spec.kinds.get(name, "auto") == "auto":
            spec.kinds[name] = _resolve_kind(data.schema, name, cols)
        if spec.kinds[name] == "image" and name not in spec.images:
            col = data.column(cols[0])
            for chunk in (col.chunks if isinstance(col, pa.ChunkedArray) else [col]):
                found = probe(chunk, cols[0])
                if found:
                    spec.images[name] = {"mode": found[0], "size": list(found[1])}
                    break
    if not targets or spec.target is None or spec.target not in data.schema.names:
        return spec
    if spec.task == "auto":
        spec.task = _task(data.schema, spec.target, "auto")
    if spec.task in ("classification", "binary") and spec.classes is None:
        spec.classes = fit_classes(data, spec)
    if spec.task == "binary" and spec.classes is not None and len(spec.classes) != 2:
        raise DataError(f"target column '{spec.target}' has {len(spec.classes)} classes {spec.classes[:10]}; a "
                        "binary task needs exactly 2")
    return spec


def sample_shape(spec: FeatureSpec, name: str, data: Any = None) -> tuple[int, ...]:
    """Per-sample shape an input's columns convert to, before the optional reshape."""
    kind, cols = spec.kinds[name], spec.inputs[name]
    if kind == "columns":
        return (len(cols),)
    if kind == "image":
        if name not in spec.images:
            raise DataError(f"image column '{cols[0]}' has no images to learn their size from")
        h, w = spec.images[name]["size"]
        return (len(spec.images[name]["mode"]) if spec.images[name]["mode"] != "L" else 1, h, w)
    t = data.schema.field(cols[0]).type if data is not None else None
    if t is not None and hasattr(t, "list_size"):
        return (t.list_size,)
    return (-1,)  # a variable-size list: the length comes from the data


# ---- conversion ------------------------------------------------------------------------------------
def convert(data: Any, spec: FeatureSpec, *, with_target: bool | None = None, row0: int = 0
            ) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray]:
    """One Table / RecordBatch -> ({input: float32 array}, targets or None, missing-row mask).

    Missing values are not dropped here; `missing` marks rows with a null / NaN feature or
    target. Under the "error" policy the first column with missing values raises."""
    with_target = spec.target is not None if with_target is None else with_target
    resolve(spec, data, with_target)
    n = data.num_rows
    if with_target and spec.target not in data.schema.names:
        raise DataError(f"target column '{spec.target}' is not in the table; available columns: "
                        f"{', '.join(data.schema.names)}")
    xs, missing = {}, np.zeros(n, bool)
    for name, cols in spec.inputs.items():
        kind = spec.kinds[name]
        shape = sample_shape(spec, name, data)
        if kind == "vector" and shape == (-1,):
            first = chunks(data, cols[0])
            import pyarrow.compute as pc
            lens = [pc.max(pc.list_value_length(c)).as_py() for c in first if len(c)]
            shape = (int(max([x for x in lens if x is not None] or [0])),)
        out = np.empty((n,) + shape, np.float32)
        m = np.zeros(n, bool)
        if kind == "columns":
            columns_into(data, cols, out, m)
        elif kind == "vector":
            vector_into(data, cols[0], out, m)
        else:
            row = 0
            for ch in chunks(data, cols[0]):
                decode_into(ch, out[row:row + len(ch)], m[row:row + len(ch)], spec.images[name]["mode"], cols[0],
                            row0 + row)
                row += len(ch)
        if m.any() and spec.missing == "error":
            raise count_missing(data, cols, n)
        missing |= m
        want = spec.shapes.get(name)
        if want:
            if int(np.prod(want)) != int(np.prod(shape)):
                raise DataError(f"graph input '{name}' needs {tuple(want)} = {int(np.prod(want))} values per sample "
                                f"but its {kind} column(s) give {tuple(shape)} = {int(np.prod(shape))}; change the "
                                "input shape or the feature columns")
            out = out.reshape((n,) + tuple(want))
        xs[name] = out
    y = None
    if with_target:
        m = np.zeros(n, bool)
        y = target_into(data, spec, m, row0)
        if m.any() and spec.missing == "error":
            raise count_missing(data, [spec.target], n)
        missing |= m
    return xs, y, missing


def _single(xs: dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
    return next(iter(xs.values())) if len(xs) == 1 else xs


def table_to_arrays(table: Any, spec: FeatureSpec | dict, *, stats: dict | None = None
                    ) -> tuple[np.ndarray | dict[str, np.ndarray], np.ndarray | None]:
    """(X, y) for a whole table: X one float32 array (a dict for several graph inputs), y class ids
    into spec.classes (classification), float32 values (regression) or None. Fills the spec's
    class list and image settings from the table when unset (in place)."""
    spec = FeatureSpec.from_dict(spec)
    xs, y, missing = convert(table, spec)
    if stats is not None:
        stats.update(rows=int(table.num_rows), skipped=int(missing.sum()))
    if missing.any():
        keep = ~missing
        xs = {k: v[keep] for k, v in xs.items()}
        y = y[keep] if y is not None else None
    return _single(xs), y


def _record_batches(source: Any) -> Iterator[Any]:
    import pyarrow as pa
    if isinstance(source, (pa.Table, pa.RecordBatch)):
        source = [source]
    for b in source:
        if hasattr(b, "to_pyarrow") and not isinstance(b, (pa.Table, pa.RecordBatch)):
            b = b.to_pyarrow()  # a KNIME table batch
        for rb in (b.to_batches() if isinstance(b, pa.Table) else [b]):
            if rb.num_rows:
                yield rb


def iter_arrays(table_or_batches: Any, spec: FeatureSpec | dict, batch_size: int | None = 256, *,
                with_target: bool | None = None, stats: dict | None = None
                ) -> Iterator[tuple[np.ndarray | dict[str, np.ndarray], np.ndarray | None]]:
    """Stream (X, y) batches of `batch_size` rows (fewer at the end, or where skip_rows drops rows)
    from a Table or any iterable of RecordBatches/Tables; only about one batch is in memory.
    batch_size=None yields one result per incoming RecordBatch. For an iterator the spec must
    already know the class list (classification); for a Table it is taken from the table."""
    import pyarrow as pa
    spec = FeatureSpec.from_dict(spec)
    whole = table_or_batches if isinstance(table_or_batches, pa.Table) else None
    with_target = spec.target is not None if with_target is None else with_target
    if whole is not None and with_target:
        resolve(spec, whole)
    if batch_size is not None and batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    counts = {"rows": 0, "skipped": 0}

    def emit(pieces: list) -> tuple:
        data = pieces[0] if len(pieces) == 1 else pa.Table.from_batches(pieces)
        try:
            xs, y, missing = convert(data, spec, with_target=with_target, row0=counts["rows"])
        except MissingValues as e:
            if whole is not None:  # count over the whole table, not just this batch
                raise count_missing(whole, [e.column], whole.num_rows, e.fix) from None
            raise
        counts["rows"] += data.num_rows
        if missing.any():
            counts["skipped"] += int(missing.sum())
            xs = {k: v[~missing] for k, v in xs.items()}
            y = y[~missing] if y is not None else None
        return _single(xs), y

    pending, have = [], 0
    for rb in _record_batches(table_or_batches):
        if with_target and whole is None and spec.classes is None and spec.target in rb.schema.names:
            if spec.task == "auto":
                spec.task = _task(rb.schema, spec.target, "auto")
            if spec.task in ("classification", "binary"):  # one batch cannot tell all the classes
                raise DataError(f"the class list of target column '{spec.target}' is unknown; set the spec's "
                                "classes (e.g. fit_classes on the whole table) before streaming batches")
        if batch_size is None:
            yield emit([rb])
            continue
        start = 0
        while start < rb.num_rows:  # zero-copy slices, cut exactly at batch_size boundaries
            take = min(batch_size - have, rb.num_rows - start)
            pending.append(rb.slice(start, take))
            have += take
            start += take
            if have == batch_size:
                yield emit(pending)
                pending, have = [], 0
    if pending:
        yield emit(pending)
    if stats is not None:
        stats.update(counts)
