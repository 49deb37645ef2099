"""Errors for values a float32 tensor cannot take, counted over a whole table.

The conversion (uop_engine.columns) only marks rows cheaply; when the "error" policy has to
fail, these functions count exactly what is wrong, per column, for a message that names the
column and says how many values and rows are affected: nulls and NaN are missing values;
infinities and float64 values beyond float32's range (about +-3.4e38, which a cast would turn
into infinities) are values the network cannot use. Both kinds are skipped under 'skip_rows'.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DataError

FLOAT32_MAX = float(np.finfo(np.float32).max)
_FIX = "or set the missing-value policy to 'skip_rows'"


class MissingValues(DataError):
    """Rows of `column` that cannot become tensors: `values` bad values in `rows` of `total` rows."""

    def __init__(self, column: str, values: int, rows: int, total: int, message: str | None = None):
        self.column, self.values, self.rows, self.total = column, values, rows, total
        super().__init__(message or f"column '{column}' has {values} missing value(s) (null or NaN) in {rows} of "
                                    f"{total} rows; fill or filter them first (e.g. the Missing Value node), {_FIX}")


class NonFiniteValues(MissingValues):
    """Infinite values, or float64 values too large for float32, in `column`."""

    def __init__(self, column: str, infinite: int, too_large: int, rows: int, total: int):
        self.infinite, self.too_large = infinite, too_large
        what = ([f"{infinite} infinite value(s)"] if infinite else []) + \
            ([f"{too_large} value(s) too large for float32 (|x| > {FLOAT32_MAX:.2g})"] if too_large else [])
        super().__init__(column, infinite + too_large, rows, total,
                         f"column '{column}' has {' and '.join(what)} in {rows} of {total} rows, which a float32 "
                         f"tensor cannot hold; replace or filter them first (e.g. the Math Formula or Row Filter "
                         f"node), {_FIX}")


def _is_list(t) -> bool:
    import pyarrow as pa
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_number(t) -> bool:
    import pyarrow as pa
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _value_rows(col: Any, t) -> tuple[Any, np.ndarray | None]:
    """(the column's values, flattened for list columns; for list columns the row of each value)."""
    import pyarrow.compute as pc
    if _is_list(t):
        return pc.list_flatten(col), np.asarray(pc.list_parent_indices(col).to_numpy(zero_copy_only=False))
    return col, None


def _count_missing(col: Any, t) -> tuple[int, int]:
    import pyarrow.compute as pc
    mask = pc.is_null(col, nan_is_null=True) if _is_number(t) else pc.is_null(col)
    if _is_list(t) and _is_number(t.value_type):
        flat, parents = _value_rows(col, t)
        bad_vals = pc.is_null(flat, nan_is_null=True).to_numpy(zero_copy_only=False)
        null_rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        values = int(bad_vals.sum()) + len(null_rows)
        return values, len(np.union1d(parents[bad_vals], null_rows))
    values = int(pc.sum(mask).as_py() or 0)
    return values, values


def _count_nonfinite(col: Any, t) -> tuple[int, int, int]:
    """(infinite values, finite values that overflow float32, rows holding either)."""
    import pyarrow as pa
    vt = t.value_type if _is_list(t) else t
    if not pa.types.is_floating(vt):
        return 0, 0, 0  # integers and booleans always fit (int64's largest is far below float32's)
    flat, parents = _value_rows(col, t)
    v = np.asarray(flat.to_numpy(zero_copy_only=False))  # nulls read as NaN: counted as missing, not here
    inf = np.isinf(v)
    with np.errstate(over="ignore"):
        big = np.isinf(v.astype(np.float32)) & ~inf if v.dtype.itemsize > 4 else np.zeros_like(inf)
    bad = inf | big
    rows = len(np.unique(parents[bad])) if parents is not None else int(bad.sum())
    return int(inf.sum()), int(big.sum()), rows


def count_missing(data: Any, cols: list[str], n: int) -> MissingValues:
    """The error for the first of `cols` with missing (null / NaN) or non-finite values
    (infinities, float32 overflow), counted over all of `data`."""
    for c in cols:
        col = data.column(c)
        values, rows = _count_missing(col, col.type)
        if rows:
            return MissingValues(c, values, rows, n)
        if _is_number(col.type) or (_is_list(col.type) and _is_number(col.type.value_type)):
            infinite, too_large, rows = _count_nonfinite(col, col.type)
            if rows:
                return NonFiniteValues(c, infinite, too_large, rows, n)
    return MissingValues(cols[0], 0, 0, n)
