"""Arrow column chunks to float32 numpy blocks, for the data layer (uop_engine.data).

Numeric columns are written in row blocks of about BLOCK_BYTES of output, so each block stays
in a core's cache while it is filled (several threads for large tables). Up to NARROW_COLS
columns are written straight into their strided slots of the row-major output; wider tables
first cast each column's slice into a contiguous column-major scratch block (fast, contiguous
casts) and then transpose the whole block with one copy, which beats 64 strided writes of
4 bytes each (bench/table_convert.py). List columns are reshaped from their flat values buffer
(zero-copy read, one cast). Rows holding a null, NaN, infinity or a float64 value beyond
float32's range are marked in a row mask, not dropped here; the check is a min/max over each
block while it is still in cache, and only a block that fails it is looked at row by row.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

import numpy as np

from .bad_values import _is_list, _is_number
from .errors import DataError
from .images import is_image_type

BLOCK_BYTES = 1 << 20  # output rows per block: about 1 MB, which measured fastest for both write strategies
NARROW_COLS = 8  # up to this many columns, strided writes into the output beat a transpose through scratch
SCRATCH_PAD = 16  # float32 values (64 bytes) added to each scratch row
PARALLEL_BYTES = 8 << 20  # outputs larger than this are filled by several threads (numpy copies release the GIL)
_pool = None
_local = threading.local()


def _executor():
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _pool = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="tinyuop-convert")
    return _pool


def _scratch(size: int) -> np.ndarray:
    """A float32 buffer of `size` values owned by this thread and reused across blocks (a fresh
    1 MB allocation per block would be a fresh mmap with page faults each time)."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.size < size:
        buf = _local.buf = np.empty(max(size, BLOCK_BYTES // 4), np.float32)
    return buf[:size]


def fill_blocks(out: np.ndarray, bad: np.ndarray, fill: Callable[[int, int], None]) -> None:
    """Call fill(r0, r1) for row blocks of `out` (threads for large outputs), then mark rows whose
    block holds a non-finite value (NaN, +-inf, or a float64 that overflowed float32) in `bad`.
    The test is a min and a max over the block while it is in cache (both propagate NaN, and
    an infinity is the min or the max); only a failing block costs a per-row look."""
    n = out.shape[0]
    rows = max(256, BLOCK_BYTES // max(1, out[:1].nbytes))

    def work(r0: int) -> None:
        r1 = min(n, r0 + rows)
        with np.errstate(over="ignore", invalid="ignore"):  # per thread: overflow to inf is reported below
            fill(r0, r1)
            blk = out[r0:r1]
            if blk.size and not (np.isfinite(blk.min()) and np.isfinite(blk.max())):
                bad[r0:r1] |= ~np.isfinite(blk.reshape(r1 - r0, -1)).all(axis=1)
    starts = range(0, n, rows)
    if out.nbytes > PARALLEL_BYTES and len(starts) > 1 and (os.cpu_count() or 1) > 1:
        list(_executor().map(work, starts))  # disjoint row ranges: no two threads write the same rows
    else:
        for r0 in starts:
            work(r0)


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


def _narrow_fill(o: np.ndarray, arrs: list[np.ndarray]) -> Callable[[int, int], None]:
    def fill(r0: int, r1: int) -> None:  # strided float32 writes into a cached block; short rows, few columns
        blk = o[r0:r1]
        for j, v in enumerate(arrs):
            blk[:, j] = v[r0:r1]
    return fill


def _wide_fill(o: np.ndarray, arrs: list[np.ndarray]) -> Callable[[int, int], None]:
    k = len(arrs)

    def fill(r0: int, r1: int) -> None:
        m = r1 - r0
        # scratch rows padded by one cache line: at a power-of-two stride the k rows the transpose
        # reads side by side would share a few cache sets and evict each other (measured ~15% slower)
        tmp = _scratch(k * (m + SCRATCH_PAD)).reshape(k, m + SCRATCH_PAD)[:, :m]
        for j, v in enumerate(arrs):
            tmp[j] = v[r0:r1]  # contiguous cast of one column's slice (no float64 copy of the block)
        o[r0:r1] = tmp.T  # one transposing copy of a cached block, row-major rows out
    return fill


def columns_into(data, cols: list[str], out: np.ndarray, missing: np.ndarray) -> None:
    row = 0
    per_col = [chunks(data, c) for c in cols]
    for parts in zip(*per_col) if _aligned(per_col) else [_realigned(data, cols)]:
        n = len(parts[0])
        arrs = []
        for ch in parts:
            v, nulls = numbers(ch)
            if nulls is not None:
                missing[row:row + n] |= nulls
            arrs.append(v)
        o = out[row:row + n]
        fill_blocks(o, missing[row:row + n], (_narrow_fill if len(arrs) <= NARROW_COLS else _wide_fill)(o, arrs))
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
        valid = ch.is_valid().to_numpy(zero_copy_only=False) if ch.null_count else None
        if pa.types.is_fixed_size_list(ch.type):
            # a fixed-size list keeps a slot of k values under every row, null rows included: read them
            # all, then keep the valid rows' (the values under a null row are whatever was left there)
            vals = ch.values.slice(ch.offset * ch.type.list_size, n * ch.type.list_size)
        else:
            lengths = pc.list_value_length(ch).fill_null(k)
            lo, hi = pc.min_max(lengths).values() if n else (pa.scalar(k), pa.scalar(k))
            if lo.as_py() != k or hi.as_py() != k:
                raise DataError(f"list column '{col}' has lists of {lo.as_py()} to {hi.as_py()} values; every row "
                                f"needs the same number of values ({k})")
            vals = pc.list_flatten(ch) if valid is not None else ch.values.slice(ch.offsets[0].as_py(), n * k)
        v, nulls = numbers(vals)
        if valid is not None and pa.types.is_fixed_size_list(ch.type):
            v = v.reshape(n, k)[valid]
            nulls = None if nulls is None else nulls.reshape(n, k)[valid]
        o, m = out[row:row + n], missing[row:row + n]
        if valid is not None:  # null lists: zero rows, marked missing
            m |= ~valid
            o[~valid] = 0
            with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf, marked just below
                o[valid] = v.reshape(-1, k)
            m |= ~np.isfinite(o).all(axis=1)
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
            absent = pc.is_null(ch, nan_is_null=True)  # NaN in a float label column is a missing label, as a null
            if pa.types.is_floating(ch.type):  # and an infinity is no label either: skipped or reported as such
                absent = pc.or_(absent, pc.fill_null(pc.is_inf(ch), False))
            unseen = pc.and_(pc.is_null(idx), pc.invert(absent))
            if pc.any(unseen).as_py():
                bad = pc.unique(pc.filter(ch, unseen)).to_pylist()
                first = row0 + row + pc.index(unseen, True).as_py()
                raise DataError(f"target column '{name}' has label(s) {bad[:5]} (first at row {first}) "
                                f"that are not among the training classes {spec.classes[:20]}; remove those rows or "
                                "retrain with them")
            ids[row:row + len(ch)] = idx.fill_null(0).to_numpy(zero_copy_only=False)
            missing[row:row + len(ch)] |= absent.to_numpy(zero_copy_only=False)
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
            seg = y[row:row + len(ch)]
            with np.errstate(over="ignore"):  # overflow to inf is marked below, then reported or skipped
                seg[:] = v
            bad = ~np.isfinite(seg)  # NaN, inf and float32 overflow, whether or not the chunk also has nulls
            missing[row:row + len(ch)] |= bad if nulls is None else bad | nulls
            row += len(ch)
        return y
    raise DataError(f"task '{spec.task}' has no target to convert")
