"""The double's table backend: pyarrow tables with a string "<RowID>" first column.

It enforces what KNIME's Arrow backend enforces when a node creates a table: only column
types KNIME can store (int32, int64, double, float32 -> double, bool, string, null, lists of
those, dictionary-encoded primitives, date/time/timestamp/duration, PNG images), a string
RowID column (so pyarrow `large_string` RowIDs or columns fail), equal batch sizes, and pandas
2.x (KNIME 5.x ships pandas 2; pandas 3 is refused). Written tables go through a sink, the
way KNIME receives them, and reach downstream nodes as `ArrowSourceTable`s with batches.
"""
from __future__ import annotations

from typing import List, Union

import pyarrow as pa

from . import schema as ks
from . import table as knt

ROW_ID = "<RowID>"
_PNG_META = {b"knime_double_logical": b"png"}
_PRIMS = (pa.int32(), pa.int64(), pa.string(), pa.bool_(), pa.float32(), pa.float64())
_TO_KNIME = {pa.int32(): ks.int32, pa.int64(): ks.int64, pa.string(): ks.string, pa.bool_(): ks.bool_,
             pa.float64(): ks.double, pa.null(): ks.null}


def check_pandas() -> None:
    """KNIME 5.x's Python side runs pandas 2.x; code relying on pandas 3 would break there."""
    import pandas as pd
    if int(pd.__version__.split(".")[0]) >= 3:
        raise RuntimeError(f"pandas {pd.__version__} is not supported by KNIME 5.x (it ships pandas 2.x); "
                           "install pandas<3 and keep node code pandas-2 compatible")


def _unsupported(t, name):
    return ValueError(f"Data type '{t}' in column '{name}' is not supported in KNIME Python. "
                      "Please use a different data type.")


def _is_datetime(t) -> bool:
    return pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t)


def _normalize(col, field: pa.Field, is_row_key: bool):
    """Check one column against KNIME's supported types; return (array, field) as KNIME stores it."""
    t, name = field.type, field.name
    if field.metadata == _PNG_META and t == pa.large_binary():
        return col, field
    if pa.types.is_dictionary(t) and t.value_type in _PRIMS:
        col, t = col.dictionary_decode() if isinstance(col, pa.Array) else pa.chunked_array(
            [c.dictionary_decode() for c in col.chunks], t.value_type), t.value_type
    if is_row_key:
        if t != pa.string():
            if t in _PRIMS:  # wraps fine but is not a valid RowID
                raise TypeError("The first column must contain unique row identifiers of type 'string'")
            raise _unsupported(t, name)
        return col, pa.field(name, t)
    if t == pa.float32():
        return col.cast(pa.float64()), pa.field(name, pa.float64())
    if t in _PRIMS or t == pa.null() or _is_datetime(t):
        return col, pa.field(name, t)
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and (t.value_type in _PRIMS or t.value_type == pa.null()):
        inner = pa.float64() if t.value_type == pa.float32() else t.value_type
        return col.cast(pa.list_(inner)), pa.field(name, pa.list_(inner))
    raise _unsupported(t, name)


def _normalize_table(data: Union[pa.Table, pa.RecordBatch]) -> pa.Table:
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    cols, fields = [], []
    for i, (col, field) in enumerate(zip(data.columns, data.schema)):
        c, f = _normalize(col, field, i == 0)
        cols.append(c)
        fields.append(f)
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def _with_row_ids(data: pa.Table, ids) -> pa.Table:
    return data.add_column(0, pa.field(ROW_ID, pa.string()), pa.array([f"Row{i}" for i in ids], pa.string()))


def _check_batch_sizes(data) -> None:
    if isinstance(data, pa.Table) and len(data) > 0:
        sizes = [len(b) for b in data.to_batches()]
        for idx, size in enumerate(sizes[:-1]):
            if size != sizes[0]:
                raise ValueError(f"all batches of the table must have the same size, but batch {idx} "
                                 f"has size {size} (expected: {sizes[0]})")
        if sizes[-1] > sizes[0]:
            raise ValueError(f"last batch has size {sizes[-1]}, but must not be bigger than the other "
                             f"batches of size {sizes[0]}")


def _sentinel_value(t, sentinel) -> int:
    if sentinel == "min":
        return -(2 ** 31) if t == pa.int32() else -(2 ** 63)
    if sentinel == "max":
        return 2 ** 31 - 1 if t == pa.int32() else 2 ** 63 - 1
    return int(sentinel)


def _map_int_columns(data: pa.Table, fn) -> pa.Table:
    for i, f in enumerate(data.schema):
        if f.type in (pa.int32(), pa.int64()) and f.name != ROW_ID:
            data = data.set_column(i, f, fn(data.column(i), f.type))
    return data


def create_table_from_pyarrow(data, sentinel=None, row_ids: str = "auto", first_row_id: int = 0) -> "ArrowTable":
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        raise TypeError(f"Table.from_pyarrow expects a pyarrow.Table, but got {type(data)}")
    _check_batch_sizes(data)
    first = data.schema[0] if data.num_columns else None
    if row_ids == "auto":
        if first is not None and first.name == ROW_ID and pa.types.is_string(first.type):
            pass
        elif first is not None and first.name == ROW_ID and pa.types.is_integer(first.type):
            data = _with_row_ids(data.remove_column(0), data.column(0).to_pylist())
        else:
            data = _with_row_ids(data, range(first_row_id, first_row_id + len(data)))
    elif row_ids == "generate":
        data = _with_row_ids(data, range(first_row_id, first_row_id + len(data)))
    elif row_ids != "keep":
        raise ValueError('row_ids must be one of ["auto", "generate", "keep"]')
    if sentinel is not None:
        import pyarrow.compute as pc
        data = _map_int_columns(data, lambda c, t: pc.if_else(pc.equal(c, _sentinel_value(t, sentinel)),
                                                              pa.scalar(None, t), c))
    return ArrowTable(_normalize_table(data))


def _pandas_to_arrow(df, row_ids: str) -> pa.Table:
    import pandas as pd
    df = df.copy(deep=False)
    images = []
    for name in df.columns:  # PIL images are stored as PNG bytes, like KNIME's PNG image cells
        col = df[name]
        if col.dtype == object and col.dropna().size and _is_pil(col.dropna().iloc[0]):
            df[name] = col.map(lambda im: None if im is None else _png_bytes(im))
            images.append(str(name))
    df.columns = [str(c) for c in df.columns]
    if row_ids in ("auto", "keep"):
        if len(df) == 0:
            ids = pd.Series([], dtype="string")
        elif row_ids == "auto" and df.index.dtype.kind in "iu":
            ids = df.index.to_series().apply(lambda i: f"Row{i}")
        else:
            ids = df.index.to_series().astype(str)
        ids.name = ROW_ID
        df = pd.concat([ids.reset_index(drop=True), df.reset_index(drop=True)], axis=1)
    else:
        df = df.reset_index(drop=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    for name in images:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, pa.field(name, pa.large_binary(), metadata=_PNG_META),
                                 table.column(i).cast(pa.large_binary()))
    return table


def _is_pil(v) -> bool:
    return type(v).__module__.startswith("PIL.") and hasattr(v, "save") and hasattr(v, "mode")


def _png_bytes(im) -> bytes:
    import io
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def create_table_from_pandas(data, sentinel=None, row_ids: str = "auto", first_row_id: int = 0) -> "ArrowTable":
    import pandas as pd
    check_pandas()
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"Table.from_pandas expects a pandas.DataFrame, but got {type(data)}")
    if row_ids not in ("auto", "keep", "generate"):
        raise ValueError('row_ids must be one of ["auto", "keep", "generate"]')
    if data.shape == (0, 0):
        return create_table_from_pyarrow(pa.table({}), sentinel, "generate", first_row_id)
    arrow = _pandas_to_arrow(data, "none" if row_ids == "generate" else row_ids)
    return create_table_from_pyarrow(arrow, sentinel, "generate" if row_ids == "generate" else "keep",
                                     first_row_id)


def _knime_type(field: pa.Field):
    t = field.type
    if field.metadata == _PNG_META:
        return ks.logical(__import__("PIL.Image", fromlist=["Image"]).Image)
    if t in _TO_KNIME:
        return _TO_KNIME[t]()
    if pa.types.is_list(t):
        return ks.list_(_knime_type(pa.field("x", t.value_type)))
    if pa.types.is_timestamp(t):
        return ks.datetime(True, True, t.tz is not None)
    if pa.types.is_date(t):
        return ks.datetime(True, False)
    if pa.types.is_time(t):
        return ks.datetime(False, True)
    if pa.types.is_duration(t):
        return ks.LogicalType(ks._vf("time", "DurationValueFactory"), ks._DT["DurationValueFactory"]())
    raise TypeError(f"Cannot convert PyArrow type {t} to KNIME type")


class ArrowTable(knt.Table):
    """A table created in Python (its first Arrow column is the "<RowID>")."""

    def __init__(self, table: pa.Table):
        self._table = table

    def _get_table(self) -> pa.Table:
        return self._table

    def _check_reserved(self) -> None:
        if ROW_ID in self.column_names:
            raise RuntimeError("The column name '<RowID>' is reserved for internal purposes. "
                               "Please rename the column to a different name.")

    def to_pyarrow(self, sentinel=None) -> pa.Table:
        """The data with the "<RowID>" string column first (as KNIME gives it)."""
        self._check_reserved()
        table = self._get_table()
        if sentinel is not None:
            import pyarrow.compute as pc
            table = _map_int_columns(table, lambda c, t: pc.fill_null(c, pa.scalar(_sentinel_value(t, sentinel), t)))
        return table

    def to_pandas(self, sentinel=None):
        """A DataFrame indexed by RowID; strings as pandas' StringDtype, images as PIL images."""
        import pandas as pd
        check_pandas()
        table = self.to_pyarrow(sentinel)
        df = table.to_pandas(types_mapper=lambda t: pd.StringDtype() if t == pa.string() else None)
        for f in table.schema:
            if f.metadata == _PNG_META:
                df[f.name] = df[f.name].map(_pil_from_png)
        return df.set_index(df.columns[0])

    def _select_rows(self, selection) -> "ArrowTable":
        if not isinstance(selection, slice):
            raise TypeError(f"Rows can only be selected by a slice, not {type(selection)}")
        start, stop, step = selection.indices(self.num_rows)
        if step != 1:
            raise IndexError("Row slicing only supports a step of 1")
        return ArrowTable(self._get_table().slice(start, max(0, stop - start)))

    def _select_columns(self, selection) -> "ArrowTable":
        names = self.column_names
        picked = self.schema._select_columns(selection)
        keep = [picked.name] if isinstance(picked, ks.Column) else picked.column_names
        idx = [0] + [names.index(n) + 1 for n in keep]
        return ArrowTable(self._get_table().select(idx))

    def _append(self, other):
        raise NotImplementedError("append/insert for Arrow tables is not yet implemented")

    @property
    def num_rows(self) -> int:
        return self._get_table().num_rows

    @property
    def num_columns(self) -> int:
        return self._get_table().num_columns - 1

    @property
    def column_names(self) -> List[str]:
        return self._get_table().schema.names[1:]

    @property
    def schema(self) -> ks.Schema:
        fields = list(self._get_table().schema)[1:]
        return ks.Schema([_knime_type(f) for f in fields], [f.name for f in fields], [None] * len(fields))

    def __str__(self) -> str:
        return f"ArrowTable[shape=({self.num_columns}, {self.num_rows})]"


def _pil_from_png(b):
    if b is None:
        return None
    import io
    from PIL import Image
    return Image.open(io.BytesIO(b))


class ArrowSourceTable(ArrowTable):
    """A table as a node receives it in execute(): read in batches (`batches()`)."""

    def __init__(self, batches: List[pa.Table]):
        self._batches = batches
        super().__init__(pa.concat_tables(batches) if batches else pa.table({ROW_ID: pa.array([], pa.string())}))

    @property
    def num_batches(self) -> int:
        return len(self._batches)

    def batches(self):
        for b in self._batches:
            yield ArrowTable(b)

    def __str__(self) -> str:
        return f"ArrowSourceTable[cols={self.num_columns}, rows={self.num_rows}, batches={self.num_batches}]"


class ArrowBatchOutputTable(knt.BatchOutputTable):
    def __init__(self, row_ids: str = "keep"):
        if row_ids not in ("keep", "generate"):
            raise ValueError('row_ids must be one of ["keep", "generate"]')
        self._row_ids = row_ids
        self._num_rows = 0
        self._batches: List[pa.Table] = []

    def append(self, batch) -> None:
        if isinstance(batch, (pa.Table, pa.RecordBatch)):
            batch = create_table_from_pyarrow(batch, None, self._row_ids, self._num_rows)
        elif isinstance(batch, ArrowTable):
            if self._row_ids == "generate":
                batch = create_table_from_pyarrow(batch._get_table().remove_column(0), None, "generate",
                                                  self._num_rows)
        else:
            import pandas as pd
            if not isinstance(batch, pd.DataFrame):
                raise TypeError("Can only append batches of type knime.api.Table, pyarrow.Table, "
                                f"pyarrow.RecordBatch, pandas.DataFrame but got {type(batch)}")
            batch = create_table_from_pandas(batch, None, self._row_ids, self._num_rows)
        self._num_rows += batch.num_rows
        self._batches.append(batch._get_table())

    @property
    def num_batches(self) -> int:
        return len(self._batches)


def write_to_sink(obj) -> ArrowSourceTable:
    """What KNIME does with a returned table: store its batches (checking the batch rules
    and unique RowIDs) and hand downstream nodes a source table."""
    if isinstance(obj, ArrowBatchOutputTable):
        batches = list(obj._batches)
    elif isinstance(obj, ArrowSourceTable):  # an input table passed on unchanged keeps its batches
        batches = list(obj._batches)
    elif isinstance(obj, ArrowTable):
        batches = [obj._get_table()]
    else:
        raise TypeError(f"Object should be of type Table or BatchOutputTable, but got {type(obj)}")
    for i, b in enumerate(batches[1:], 1):
        if b.schema.remove_metadata() != batches[0].schema.remove_metadata():
            raise ValueError(f"batch {i} has columns {b.schema} but the first batch has {batches[0].schema}; "
                             "all batches must have the same column names and types")
        if (i < len(batches) - 1 and len(b) != len(batches[0])) or len(b) > len(batches[0]):
            raise ValueError(f"batch {i} has {len(b)} rows; all batches except the last must have the same "
                             f"number of rows ({len(batches[0])}) and the last must not have more")
    ids = [rid for b in batches for rid in b.column(0).to_pylist()]
    if None in ids:
        raise ValueError("Missing RowID in the output table; every row needs a RowID")
    if len(set(ids)) != len(ids):
        seen = set()
        dup = next(r for r in ids if r in seen or seen.add(r))
        raise ValueError(f"Duplicate RowID '{dup}' in the output table; RowIDs must be unique")
    return ArrowSourceTable([b.combine_chunks() for b in batches])


class ArrowBackend(knt._Backend):
    def create_table_from_pyarrow(self, data, sentinel, row_ids="auto"):
        return create_table_from_pyarrow(data, sentinel, row_ids)

    def create_table_from_pandas(self, data, sentinel, row_ids="auto"):
        return create_table_from_pandas(data, sentinel, row_ids)

    def create_batch_output_table(self, row_ids="keep"):
        return ArrowBatchOutputTable(row_ids)

    def close(self) -> None:
        pass
