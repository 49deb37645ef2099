"""Training on tables larger than memory: a re-iterable stream of row batches.

    stream = TableStream(lambda: knime_table.batches(), spec, buffer_rows=50_000)
    result = train_table_streamed(graph, stream, config)

Every epoch reads the table's batches again through the data layer's streaming iterator
(uop_engine.data.iter_arrays), so about `buffer_rows` rows (plus one chunk) are in memory at
once. Rows are shuffled within that bounded buffer by a generator seeded with (seed, epoch), so
a run is reproducible; rows enter the buffer in table order and, once it is full, each arriving
row takes the place of a randomly chosen one, which moves on to training. When the buffer holds
the whole table the order is exactly the in-memory trainer's (numpy's permutation of the rows),
and the streamed run equals the in-memory one.

Before the first epoch the table is read twice: once for the class list (classification, when
not given; only the target column), once to count the rows (the learning-rate schedule needs the
steps per epoch) and rows skipped for missing values and to fingerprint the prepared rows, which
gives the digest the in-memory trainer gives the same rows (train_rows.RowsHash). A validation
split holds out the same rows as in memory (the seeded split over row numbers); validation rows
are streamed in order after every epoch. Rows are converted a few thousand at a time (at most
the buffer), whatever the batch size.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .data import FeatureSpec, iter_arrays
from .errors import DataError
from .train_rows import validation_rows

CHUNK_ROWS = 4096  # rows converted per data-layer call, unless the buffer is smaller
Source = Any  # a pyarrow Table, or a callable returning a fresh iterable of RecordBatches / Tables / KNIME batches


def _stream_classes(batches: Iterable[Any], target: str) -> list:
    """The sorted distinct labels of the target column, one batch at a time (as data.fit_classes)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from .data import _record_batches, class_list
    seen: set = set()
    for rb in _record_batches(batches):
        if target not in rb.schema.names:
            raise DataError(f"target column '{target}' is not in the table; available columns: "
                            f"{', '.join(rb.schema.names)}")
        col = rb.column(target)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        seen.update(pc.unique(col).to_pylist())
    return class_list(seen)


class _Rebatch:
    """Collects rows from pieces of any size and hands them out in batches of exactly `size` rows."""

    def __init__(self, size: int):
        self.size, self.parts, self.have = size, [], 0

    def push(self, arrs: list[np.ndarray]) -> Iterator[list[np.ndarray]]:
        if arrs[-1].shape[0]:
            self.parts.append(arrs)
            self.have += arrs[-1].shape[0]
        while self.have >= self.size:
            yield self._cut(self.size)

    def flush(self) -> Iterator[list[np.ndarray]]:
        if self.have:
            yield self._cut(self.have)

    def _cut(self, k: int) -> list[np.ndarray]:
        joined = [np.concatenate(col) if len(col) > 1 else col[0] for col in zip(*self.parts)]
        out, rest = [a[:k] for a in joined], [a[k:] for a in joined]
        self.have -= k
        self.parts = [rest] if self.have else []
        return out


class TableStream:
    """Rows of a table read again for every epoch (see the module docs). `source` is a pyarrow Table
    or a callable that returns a fresh iterable of batches each time it is called."""

    def __init__(self, source: Source, spec: FeatureSpec | dict, *, buffer_rows: int = 65536,
                 role: str = "training"):
        if not callable(source) and not hasattr(source, "to_batches"):
            raise DataError("a table stream needs a pyarrow Table or a function returning the table's batches")
        if buffer_rows < 1:
            raise DataError(f"buffer_rows must be >= 1, got {buffer_rows}")
        self.source, self.buffer_rows, self.role = source, int(buffer_rows), role  # role: training | validation
        self.spec = FeatureSpec.from_dict(spec.to_dict() if isinstance(spec, FeatureSpec) else spec)
        self.n: int | None = None
        self.stats: dict[str, int] = {}
        self.shapes: dict[str, tuple] | None = None  # graph input shapes the features are reshaped to
        self._fp: str | None = None
        self._keep: np.ndarray | None = None  # a split: the row numbers this view reads (sorted)
        self._prepare: Callable | None = None
        self.per_row = 1  # target values per row, known once bound to a trainer

    def _open(self) -> Iterable[Any]:
        return self.source() if callable(self.source) else self.source

    def _raw(self, chunk: int) -> Iterator[tuple[Any, Any]]:
        """(features, target ids) chunks of the whole table in row order, through the data layer."""
        from .bad_values import MissingValues, count_missing_in_batches
        from .data import _record_batches
        from .table_train import fit_to_inputs
        stats: dict = {}
        try:
            for X, y in iter_arrays(self._open(), self.spec, chunk, stats=stats):
                yield (X if self.shapes is None else fit_to_inputs(X, self.shapes)), y
        except MissingValues as e:  # found in one chunk: read the table again to count over all of it
            raise count_missing_in_batches(_record_batches(self._open()), e.column, e.fix) from None
        # updated in place: the dict is shared with the views the trainer reads (copies of this stream)
        self.stats.update(rows=stats.get("rows", 0), skipped=stats.get("skipped", 0))

    def scan(self) -> "TableStream":
        """Learn what the spec leaves to the data before training: the class list (classification,
        when not given), from one read of the target column."""
        if self.spec.task in ("classification", "binary") and self.spec.classes is None:
            self.spec.classes = _stream_classes(self._open(), self.spec.target)
            if self.spec.task == "binary" and len(self.spec.classes) != 2:
                raise DataError(f"target column '{self.spec.target}' has {len(self.spec.classes)} classes "
                                f"{self.spec.classes[:10]}; a binary task needs exactly 2")
        return self

    def _chunk(self, batch_size: int) -> int:
        """Rows converted at once: a few thousand (small chunks cost a data-layer call each), at least
        a batch, at most the buffer (memory stays about the buffer plus one chunk)."""
        return min(max(self.buffer_rows, batch_size), max(batch_size, CHUNK_ROWS))

    # ---- the trainer's rows protocol (uop_engine.train_rows) ----
    def bind_trainer(self, prepare: Callable[[Any, Any], tuple], model: Any = None) -> "TableStream":
        """A view whose batches are prepared by the trainer (`prepare(X, labels) -> (inputs, targets)`).
        Reads the table once: rows, skipped rows, target values per row and the fingerprint of the
        prepared rows (train_rows.RowsHash: the in-memory trainer's fingerprint of the same rows)."""
        from .table_train import graph_input_shapes
        from .train_rows import RowsHash
        self.scan()
        view = copy.copy(self)
        view._prepare = prepare
        if model is not None and view.shapes is None:
            view.shapes = graph_input_shapes(model)
        h = RowsHash()
        for arrs in view._prepared(view._chunk(1)):
            h.update(arrs)
        if h.rows == 0:
            skipped = self.stats.get("skipped", 0)
            why = f" (all {skipped} rows have missing values and were skipped)" if skipped else ""
            fix = ("; fill or filter its missing values, or train without it (a validation split holds out "
                   "training rows instead)" if self.role == "validation" else "; fill or filter its missing values")
            raise DataError(f"the {self.role} table has no rows with complete features and target{why}{fix}")
        view.n, view._fp = h.rows, h.hexdigest()
        view.per_row = int(np.prod(h.parts[-1][1], dtype=np.int64)) or 1
        self.n, self._fp, self.per_row = view.n, view._fp, view.per_row
        return view

    def fingerprint(self) -> str:
        """The prepared rows' fingerprint (all rows of the table, whatever view this is)."""
        if self._fp is None:
            raise DataError("the table stream is not bound to a trainer; train it with train_table_streamed")
        return self._fp

    def split(self, share: float, seed: int) -> tuple["TableStream", "TableStream"]:
        """Training and validation views holding out the rows an in-memory split holds out."""
        full = self.n if self._keep is None else None
        if full is None:
            raise DataError("a split of a split is not supported; split the table once")
        tr, va = validation_rows(full, share, seed)
        views = []
        for keep in (tr, va):
            v = copy.copy(self)
            v._keep, v.n = keep, len(keep)
            views.append(v)
        return views[0], views[1]

    def _prepared(self, chunk: int) -> Iterator[list[np.ndarray]]:
        from .table_train import _labels
        if self._prepare is None:
            raise DataError("the table stream is not bound to a trainer; train it with train_table_streamed")
        row = 0
        for X, y in self._raw(chunk):
            k = len(y)
            if self._keep is not None:  # the rows of this view among row numbers row .. row + k
                lo, hi = np.searchsorted(self._keep, [row, row + k])
                sel = self._keep[lo:hi] - row
                X = {n: a[sel] for n, a in X.items()} if isinstance(X, dict) else X[sel]
                y = y[sel]
            row += k
            if len(y):
                xs, t = self._prepare(X, _labels(y, self.spec))
                yield [*xs, t]

    def _batches_in_order(self, batch_size: int) -> Iterator[list[np.ndarray]]:
        out = _Rebatch(batch_size)
        for arrs in self._prepared(self._chunk(batch_size)):
            yield from out.push(arrs)
        yield from out.flush()

    def batches(self, batch_size: int, order: tuple[int, int] | None = None) -> Iterator[list[np.ndarray]]:
        if order is None:
            yield from self._batches_in_order(batch_size)
            return
        rng, cap = np.random.default_rng(list(order)), max(self.buffer_rows, batch_size)
        out, buf, fill = _Rebatch(batch_size), None, 0
        for arrs in self._prepared(self._chunk(batch_size)):  # never more rows than the buffer holds
            if buf is None:
                buf = [np.empty((cap,) + a.shape[1:], a.dtype) for a in arrs]
            c = arrs[-1].shape[0]
            take = min(cap - fill, c)
            for b, a in zip(buf, arrs):
                b[fill:fill + take] = a[:take]
            fill += take
            if take < c:  # full: the arriving rows replace random buffered rows, which go to training
                idx = rng.choice(cap, size=c - take, replace=False)
                leaving = [b[idx] for b in buf]
                for b, a in zip(buf, arrs):
                    b[idx] = a[take:]
                yield from out.push(leaving)
        if buf is not None:  # drain in a seeded random order: when the buffer held every row, rng is still
            perm = rng.permutation(fill)  # fresh and this is the in-memory epoch order (train_rows.epoch_order)
            for i in range(0, fill, batch_size):
                yield from out.push([b[perm[i:i + batch_size]] for b in buf])
        yield from out.flush()


def train_table_streamed(graph_or_model: Any, stream: TableStream, config: Any = None,
                         val_stream: TableStream | None = None, *, progress: Callable[[float, str], None] | None = None,
                         should_stop: Callable[[], bool] | None = None, initial_weights: Any = None,
                         on_epoch: Callable[[dict], None] | None = None):
    """train_table for a TableStream (and an optional streamed validation table): the same result,
    with the record saying the rows were streamed and the buffer size."""
    from .table_train import resolve_training_spec
    from .train import TrainConfig, train
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    stream.spec = resolve_training_spec(graph_or_model, stream.spec, cfg)
    stream.scan()
    if val_stream is not None:
        val_stream.spec = FeatureSpec.from_dict(stream.spec.to_dict())  # the training table's classes
        val_stream.role = "validation"
    result = train(graph_or_model, stream, None, cfg, val_stream, progress=progress, should_stop=should_stop,
                   initial_weights=initial_weights, classes=stream.spec.classes, on_epoch=on_epoch)
    result.feature_spec = stream.spec.to_dict()
    result.record.update(feature_spec=stream.spec.to_dict(), rows_skipped=stream.stats.get("skipped", 0),
                         val_rows_skipped=val_stream.stats.get("skipped", 0) if val_stream is not None else 0,
                         streamed={"buffer_rows": stream.buffer_rows})
    return result
