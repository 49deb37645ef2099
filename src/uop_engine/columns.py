"""Arrow column chunks to float32 numpy blocks, for the data layer (uop_engine.data).

Numeric columns are written in row blocks (about BLOCK_BYTES of output, so each block stays
in a core's cache while the columns are scattered into it; several threads for large tables);
list columns are reshaped from their flat values buffer (zero-copy read, one cast). Missing
values (null or NaN) are marked in a row mask rather than dropped here.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from .errors import DataError
from .images import is_image_type

BLOCK_BYTES = 2 << 20  # a block of the float32 output (about 2 MB) stays in a core's cache while it is filled
PARALLEL_BYTES = 8 << 20  # outputs larger than this are filled by several threads (numpy casts release the GIL)
_pool = None


def _executor():
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _pool = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="tinyuop-convert")
    return _pool


def fill_blocks(out: np.ndarray, missing: np.ndarray, fill: Callable[[int, int], None]) -> None:
    """Call fill(r0, r1) for row blocks of `out` (threads for large outputs), then mark rows whose
    block holds a NaN in `missing`. The NaN test is a max over the block while it is in cache;
    only a NaN result costs a second look."""
    n = out.shape[0]
    row_bytes = max(1, out[:1].nbytes)
    rows = max(256, BLOCK_BYTES // row_bytes)

    def work(r0: int) -> None:
        r1 = min(n, r0 + rows)
        fill(r0, r1)
        blk = out[r0:r1]
        if blk.size and np.isnan(blk.max()):  # max propagates NaN and is the cheapest full read
            missing[r0:r1] |= np.isnan(blk.reshape(r1 - r0, -1)).any(axis=1)
    starts = range(0, n, rows)
    if out.nbytes > PARALLEL_BYTES and len(starts) > 1 and (os.cpu_count() or 1) > 1:
        list(_executor().map(work, starts))  # disjoint row ranges: no two threads write the same rows
    else:
        for r0 in starts:
            work(r0)


def _is_list(t) -> bool:
    import pyarrow as pa
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_number(t) -> bool:
    import pyarrow as pa
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def column_kind(t) -> str:
    """number | vector | image | label (string-like) | other, for an Arrow type."""
    import pyarrow as pa
    if pa.types.is_dictionary(t):
        t = t.value_type
    if _is_number(t):
        return "number"
    if _is_list(t):
        return "vector" if _is_number(t.value_type) or pa.types.is_null(t.value_type) else "other"
    if is_image_type(t):
        return "image"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "label"
    return "other"


class MissingValues(DataError):
    def __init__(self, column: str, values: int, rows: int, total: int):
        self.column, self.values, self.rows, self.total = column, values, rows, total
        super().__init__(f"column '{column}' has {values} missing value(s) (null or NaN) in {rows} of {total} rows; "
                         "fill or filter them first (e.g. the Missing Value node), or set the missing-value "
                         "policy to 'skip_rows'")


def chunks(data: Any, name: str) -> list:
    import pyarrow as pa
    col = data.column(name)
    parts = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    return [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in parts]


def numbers(chunk: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Values of a numeric chunk (zero-copy when it has no nulls) and its null mask."""
    import pyarrow as pa
    if chunk.null_count:
        nulls = chunk.is_null().to_numpy(zero_copy_only=False)
        return chunk.fill_null(pa.scalar(0, chunk.type)).to_numpy(zero_copy_only=False), nulls
    return chunk.to_numpy(zero_copy_only=not pa.types.is_boolean(chunk.type)), None


def columns_into(data, cols: list[str], out: np.ndarray, missing: np.ndarray) -> None:
    row = 0
    per_col = [chunks(data, c) for c in cols]
    for parts in zip(*per_col) if _aligned(per_col) else [_realigned(data, cols)]:
        n = len(parts[0])
        arrs = []
        for j, ch in enumerate(parts):
            v, nulls = numbers(ch)
            if nulls is not None:
                missing[row:row + n] |= nulls
            arrs.append(v)
        o = out[row:row + n]

        def fill(r0: int, r1: int, o=o, arrs=arrs) -> None:  # strided float32 writes into a cached block
            blk = o[r0:r1]
            for j, v in enumerate(arrs):
                blk[:, j] = v[r0:r1]
        fill_blocks(o, missing[row:row + n], fill)
        row += n


def _aligned(per_col: list[list]) -> bool:
    return all(len(p) == len(per_col[0]) and all(len(a) == len(b) for a, b in zip(p, per_col[0])) for p in per_col)


def _realigned(data, cols: list[str]) -> list:
    return [data.column(c).combine_chunks() if hasattr(data.column(c), "combine_chunks") else data.column(c)
            for c in cols]


def vector_into(data, col: str, out: np.ndarray, missing: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    k, row = out.shape[1], 0
    for ch in chunks(data, col):
        n = len(ch)
        if pa.types.is_fixed_size_list(ch.type):
            vals = ch.values.slice(ch.offset * ch.type.list_size, n * ch.type.list_size)
            valid = None
        else:
            lengths = pc.list_value_length(ch).fill_null(k)
            lo, hi = pc.min_max(lengths).values() if n else (pa.scalar(k), pa.scalar(k))
            if lo.as_py() != k or hi.as_py() != k:
                raise DataError(f"list column '{col}' has lists of {lo.as_py()} to {hi.as_py()} values; every row "
                                f"needs the same number of values ({k})")
            valid = ch.is_valid().to_numpy(zero_copy_only=False) if ch.null_count else None
            vals = pc.list_flatten(ch) if valid is not None else ch.values.slice(ch.offsets[0].as_py(), n * k)
        v, nulls = numbers(vals)
        o, m = out[row:row + n], missing[row:row + n]
        if valid is not None:  # null lists: zero rows, marked missing
            m |= ~valid
            o[~valid] = 0
            o[valid] = v.reshape(-1, k)
            m |= np.isnan(o).any(axis=1)
            if nulls is not None:
                m[valid] |= nulls.reshape(-1, k).any(axis=1)
        else:
            v2 = v.reshape(n, k)

            def fill(r0: int, r1: int, o=o, v2=v2) -> None:  # one cast per block, values read zero-copy
                np.copyto(o[r0:r1], v2[r0:r1], casting="unsafe")
            fill_blocks(o, m, fill)
            if nulls is not None:
                m |= nulls.reshape(-1, k).any(axis=1)
        row += n


def target_into(data, spec: Any, missing: np.ndarray, row0: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc
    name, n = spec.target, data.num_rows
    parts = chunks(data, name)
    if spec.task in ("classification", "binary"):
        vs = pa.array(spec.classes, type=parts[0].type) if parts and parts[0].type != pa.null() else None
        ids, row = np.zeros(n, np.int64), 0
        for ch in parts:
            idx = pc.index_in(ch, value_set=vs) if vs is not None else pa.nulls(len(ch), pa.int32())
            unseen = pc.and_(pc.is_null(idx), pc.is_valid(ch))
            if pc.any(unseen).as_py():
                bad = pc.unique(pc.filter(ch, unseen)).to_pylist()
                first = row0 + row + pc.index(unseen, True).as_py()
                raise DataError(f"target column '{name}' has label(s) {bad[:5]} (first at row {first}) "
                                f"that are not among the training classes {spec.classes[:20]}; remove those rows or "
                                "retrain with them")
            ids[row:row + len(ch)] = idx.fill_null(0).to_numpy(zero_copy_only=False)
            missing[row:row + len(ch)] |= ch.is_null().to_numpy(zero_copy_only=False)
            row += len(ch)
        return ids
    if spec.task == "regression":
        if column_kind(parts[0].type if parts else data.schema.field(name).type) == "vector":
            probe_k = pc.list_value_length(parts[0]).fill_null(0) if parts else None
            k = int(pc.max(probe_k).as_py() or 0) if probe_k is not None and len(probe_k) else 0
            y = np.zeros((n, k), np.float32)
            vector_into(data, name, y, missing)
            return y
        y, row = np.empty(n, np.float32), 0
        for ch in parts:
            v, nulls = numbers(ch)
            y[row:row + len(ch)] = v
            missing[row:row + len(ch)] |= nulls if nulls is not None else np.isnan(y[row:row + len(ch)])
            row += len(ch)
        return y
    raise DataError(f"task '{spec.task}' has no target to convert")


def count_missing(data, cols: list[str], n: int) -> MissingValues:
    """The error for the first of `cols` with nulls or NaNs, with counts over all of `data`."""
    import pyarrow.compute as pc
    for c in cols:
        col = data.column(c)
        t = col.type
        mask = pc.is_null(col, nan_is_null=True) if _is_number(t) else pc.is_null(col)
        if _is_list(t) and _is_number(t.value_type):
            inner = pc.list_parent_indices(col)
            bad_vals = pc.is_null(pc.list_flatten(col), nan_is_null=True)
            values = int(pc.sum(bad_vals).as_py() or 0) + int(pc.sum(mask).as_py() or 0)
            rows = len(set(pc.filter(inner, bad_vals).to_pylist()) | set(np.flatnonzero(
                mask.to_numpy(zero_copy_only=False)).tolist()))
        else:
            values = rows = int(pc.sum(mask).as_py() or 0)
        if rows:
            return MissingValues(c, values, rows, n)
    return MissingValues(cols[0], 0, 0, n)


