"""Arrow data as KNIME stores it: a "<RowID>" string column first, then data columns of the
types KNIME supports (see types.arrow_to_knime); pandas in and out (PIL images as PNG cells).
"""
from __future__ import annotations

import io
from typing import Any, List, Optional, Union

import pyarrow as pa

from .schema import Column, Schema
from .types import PNG_IMAGE, ROW_ID, LogicalArrowType, arrow_to_knime

ROW_ID_MODES = ("auto", "keep", "generate")


def check_pandas() -> None:
    """KNIME 5.x's Python side runs pandas 2: refuse pandas 3 here too, so node code stays on 2.x."""
    import pandas as pd
    if int(pd.__version__.split(".")[0]) >= 3:
        raise RuntimeError(f"pandas {pd.__version__} is not supported by KNIME 5.x's Python integration (it ships "
                           "pandas 2.x); install pandas<3")


def _check_mode(row_ids: str) -> None:
    if row_ids not in ROW_ID_MODES:
        raise ValueError(f"row_ids must be one of {ROW_ID_MODES}, not {row_ids!r}")


def _generated(n: int, start: int) -> pa.Array:
    return pa.array([f"Row{i}" for i in range(start, start + n)], pa.string())


def normalize(data: Union[pa.Table, pa.RecordBatch], row_ids: str = "auto", sentinel: Any = None,
              first_row: int = 0) -> pa.Table:
    """The table KNIME would store: RowIDs first (kept, derived or generated as `row_ids` says),
    data columns cast to their stored types; ValueError/TypeError naming what to fix."""
    _check_mode(row_ids)
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    if not isinstance(table, pa.Table):
        raise TypeError(f"expected a pyarrow Table or RecordBatch, got {type(data).__name__}")
    table = table.replace_schema_metadata(None)
    names = table.column_names
    first = table.schema.field(0) if names else None
    if row_ids == "keep":
        if first is None or not pa.types.is_string(first.type):
            found = "no columns" if first is None else f"'{first.name}' of type '{first.type}'"
            raise TypeError(f"row_ids='keep': the first column must contain unique row identifiers of type 'string' "
                            f"(pa.string(); large_string is not supported); found {found}")
        ids, rest = table.column(0), table.drop_columns([names[0]])
    elif row_ids == "auto" and first is not None and first.name == ROW_ID:
        if pa.types.is_string(first.type):
            ids = table.column(0)
        elif pa.types.is_integer(first.type):
            ids = pa.array([None if v is None else f"Row{v}" for v in table.column(0).to_pylist()], pa.string())
        else:
            raise TypeError(f"the '{ROW_ID}' column must hold strings (pa.string()) or integers, not '{first.type}'")
        rest = table.drop_columns([ROW_ID])
    else:
        ids = _generated(table.num_rows, first_row)
        rest = table.drop_columns([ROW_ID]) if ROW_ID in names else table
    columns, fields = [ids], [pa.field(ROW_ID, pa.string())]
    for name, col in zip(rest.column_names, rest.columns):
        if name == ROW_ID:
            raise ValueError(f"a data column may not be named '{ROW_ID}'")
        _, stored = arrow_to_knime(col.type, name)
        col = _apply_sentinel(col, sentinel)
        columns.append(col if col.type == stored else _cast(col, stored, name))
        fields.append(pa.field(name, stored))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _cast(col: pa.ChunkedArray, to: pa.DataType, name: str) -> pa.ChunkedArray:
    try:
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        return col.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ValueError(f"column '{name}': cannot store Arrow type '{col.type}' as '{to}': {e}") from None


def _apply_sentinel(col: pa.ChunkedArray, sentinel: Any) -> pa.ChunkedArray:
    """Integers equal to the sentinel are missing values (KNIME's way of reading them back)."""
    if sentinel is None or not pa.types.is_integer(col.type):
        return col
    import pyarrow.compute as pc
    value = _sentinel_value(sentinel, col.type)
    return pc.if_else(pc.equal(col, pa.scalar(value, col.type)), pa.scalar(None, col.type), col)


def _sentinel_value(sentinel: Any, t: pa.DataType) -> int:
    import numpy as np
    if sentinel in ("min", "max"):
        info = np.iinfo(t.to_pandas_dtype())
        return int(info.min if sentinel == "min" else info.max)
    if isinstance(sentinel, int) and not isinstance(sentinel, bool):
        return sentinel
    raise ValueError(f"sentinel must be None, 'min', 'max' or an int, not {sentinel!r}")


def schema_of(table: pa.Table) -> Schema:
    """The KNIME schema of a normalized table (RowID left out)."""
    return Schema([Column(arrow_to_knime(f.type, f.name)[0], f.name) for f in table.schema if f.name != ROW_ID])


def check_row_ids(tables: List[pa.Table]) -> None:
    """KNIME refuses missing and duplicate RowIDs over the whole table."""
    seen: set = set()
    for t in tables:
        for rid in t.column(0).to_pylist():
            if rid is None:
                raise ValueError("a RowID is missing; every row needs a unique string RowID")
            if rid in seen:
                raise ValueError(f"Duplicate RowID '{rid}': RowIDs must be unique in a KNIME table (use "
                                 "row_ids='generate' or give unique index values)")
            seen.add(rid)


# ---- pandas ---------------------------------------------------------------------------------------
def _is_pil(v: Any) -> bool:
    return type(v).__module__.startswith("PIL.") and hasattr(v, "save") and hasattr(v, "getpixel")


def _png_column(values: Any, name: str) -> pa.Array:
    cells: List[Optional[bytes]] = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            cells.append(None)
        elif _is_pil(v):
            buf = io.BytesIO()
            v.save(buf, format="PNG")
            cells.append(buf.getvalue())
        else:
            raise TypeError(f"column '{name}' mixes PIL images with {type(v).__name__} values")
    return pa.ExtensionArray.from_storage(LogicalArrowType(pa.large_binary(), PNG_IMAGE),
                                          pa.array(cells, pa.large_binary()))


def from_pandas(df: Any, row_ids: str = "auto", sentinel: Any = None, first_row: int = 0) -> pa.Table:
    """A DataFrame as KNIME stores it; the index gives the RowIDs ('auto': integers become
    'Row<n>', other values their text; 'keep': the text; 'generate': Row<first_row + i>)."""
    import pandas as pd
    check_pandas()
    _check_mode(row_ids)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_pandas expects a pandas DataFrame, got {type(df).__name__}")
    images = {}
    for name in df.columns:
        col = df[name]
        first = next((v for v in col if v is not None and not (isinstance(v, float) and v != v)), None)
        if col.dtype == object and _is_pil(first):
            images[name] = _png_column(col, str(name))
    plain = df.drop(columns=list(images)) if images else df
    data = pa.Table.from_pandas(plain, preserve_index=False)
    for name, arr in images.items():
        data = data.add_column(list(df.columns).index(name), str(name), arr)
    index = df.index
    if row_ids == "generate":
        ids = _generated(len(df), first_row)
    elif row_ids == "auto" and pd.api.types.is_integer_dtype(index.dtype):
        ids = pa.array([f"Row{v}" for v in index], pa.string())
    else:
        ids = pa.array([str(v) for v in index], pa.string())
    data = data.add_column(0, ROW_ID, ids) if data.num_columns else pa.table({ROW_ID: ids})
    return normalize(data, row_ids="keep", sentinel=sentinel)


def to_pandas(table: pa.Table, sentinel: Any = None) -> Any:
    """A stored table as a DataFrame indexed by RowID (PNG cells as PIL images)."""
    import pandas as pd
    check_pandas()
    series = {}
    for f, col in zip(table.schema, table.columns):
        if f.name == ROW_ID:
            continue
        if isinstance(f.type, LogicalArrowType) and f.type.logical_type == PNG_IMAGE:
            series[f.name] = pd.Series(_decode_png(col), dtype=object)
        elif sentinel is not None and pa.types.is_integer(f.type) and col.null_count:
            value = _sentinel_value(sentinel, f.type)
            series[f.name] = pd.Series(col.fill_null(value).to_numpy())
        else:
            if isinstance(f.type, pa.ExtensionType):
                col = pa.chunked_array([c.storage for c in col.chunks], f.type.storage_type)
            series[f.name] = col.to_pandas()
    df = pd.DataFrame({k: s.reset_index(drop=True) for k, s in series.items()}, columns=list(series))
    df.index = pd.Index(table.column(ROW_ID).to_pylist() if ROW_ID in table.column_names else
                        [f"Row{i}" for i in range(table.num_rows)], name=ROW_ID, dtype=object)
    return df


def _decode_png(col: pa.ChunkedArray) -> list:
    from PIL import Image
    out = []
    for chunk in col.chunks:
        for v in chunk.storage.to_pylist():
            if v is None:
                out.append(None)
            else:
                im = Image.open(io.BytesIO(v))
                im.load()
                out.append(im)
    return out
