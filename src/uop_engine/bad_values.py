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
# the way out of the error names the setting of the place that raised it: training (Train Model's
# 'Rows with missing values' = the feature spec's policy) or inference (Run Inference's option,
# whose values differ, is substituted by that node)
TRAINING_FIX = "or set 'Rows with missing values' (the feature spec's missing-value policy) to 'skip_rows'"
PREDICTION_FIX = ("or set the feature spec's missing-value policy to 'skip_rows' (such rows then get missing "
                  "predictions)")


class MissingValues(DataError):
    """Rows of `column` that cannot become tensors: `values` bad values in `rows` of `total` rows."""

    def __init__(self, column: str, values: int, rows: int, total: int, message: str | None = None,
                 fix: str = TRAINING_FIX):
        self.column, self.values, self.rows, self.total, self.fix = column, values, rows, total, fix
        super().__init__(message or f"column '{column}' has {values} missing value(s) (null or NaN) in {rows} of "
                                    f"{total} rows; fill or filter them first (e.g. the Missing Value node), {fix}")

    def with_fix(self, fix: str) -> "MissingValues":
        """The same error advising `fix` (the setting of the place that reports it)."""
        return MissingValues(self.column, self.values, self.rows, self.total, fix=fix)


class NonFiniteValues(MissingValues):
    """Infinite values, or float64 values too large for float32, in `column`."""

    def __init__(self, column: str, infinite: int, too_large: int, rows: int, total: int, fix: str = TRAINING_FIX):
        self.infinite, self.too_large = infinite, too_large
        what = ([f"{infinite} infinite value(s)"] if infinite else []) + \
            ([f"{too_large} value(s) too large for float32 (|x| > {FLOAT32_MAX:.2g})"] if too_large else [])
        super().__init__(column, infinite + too_large, rows, total,
                         f"column '{column}' has {' and '.join(what)} in {rows} of {total} rows, which a float32 "
                         f"tensor cannot hold; replace or filter them first (e.g. the Math Formula or Row Filter "
                         f"node), {fix}", fix)

    def with_fix(self, fix: str) -> "NonFiniteValues":
        return NonFiniteValues(self.column, self.infinite, self.too_large, self.rows, self.total, fix)


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


def count_missing(data: Any, cols: list[str], n: int, fix: str = TRAINING_FIX) -> MissingValues:
    """The error for the first of `cols` with missing (null / NaN) or non-finite values
    (infinities, float32 overflow), counted over all of `data`."""
    for c in cols:
        col = data.column(c)
        values, rows = _count_missing(col, col.type)
        if rows:
            return MissingValues(c, values, rows, n, fix=fix)
        if _is_number(col.type) or (_is_list(col.type) and _is_number(col.type.value_type)):
            infinite, too_large, rows = _count_nonfinite(col, col.type)
            if rows:
                return NonFiniteValues(c, infinite, too_large, rows, n, fix)
    return MissingValues(cols[0], 0, 0, n, fix=fix)


def count_missing_in_batches(batches: Any, column: str, fix: str = TRAINING_FIX) -> MissingValues:
    """The error for `column` counted over every batch of a table read batch by batch (a stream
    that failed in one batch is read again, so the counts cover the whole table, not one chunk)."""
    missing, nonfinite, total = np.zeros(2, np.int64), np.zeros(3, np.int64), 0
    for b in batches:
        col = b.column(column)
        total += len(col)
        missing += _count_missing(col, col.type)
        if _is_number(col.type) or (_is_list(col.type) and _is_number(col.type.value_type)):
            nonfinite += _count_nonfinite(col, col.type)
    missing, nonfinite = [int(v) for v in missing], [int(v) for v in nonfinite]
    if missing[1]:
        return MissingValues(column, missing[0], missing[1], total, fix=fix)
    if nonfinite[2]:
        return NonFiniteValues(column, nonfinite[0], nonfinite[1], nonfinite[2], total, fix)
    return MissingValues(column, 0, 0, total, fix=fix)
