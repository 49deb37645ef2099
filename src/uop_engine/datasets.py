"""Small built-in data sets as pyarrow tables (for examples, tests and the pipeline's `dataset` step).

`digits_table()` is scikit-learn's bundled 8x8 digits (1797 rows) in one of three layouts,
the three ways the data layer reads features: 64 numeric columns, one list column, or one
column of PNG images. `split_table` makes a seeded, stratified train/test split.
"""
from __future__ import annotations

from typing import Any

import numpy as np

LAYOUTS = ("columns", "vector", "image")


def digits_table(layout: str = "columns", target: str = "label") -> Any:
    """The digits as a table with an int64 `target` column and features as
    - "columns": pixel_0 .. pixel_63, float32 in [0, 1] (value / 16)
    - "vector":  one list<float32> column 'pixels' of 64 values in [0, 1]
    - "image":   one binary column 'image' of 8x8 greyscale PNGs (value * 255 / 16, rounded)."""
    import pyarrow as pa
    from sklearn.datasets import load_digits
    if layout not in LAYOUTS:
        raise ValueError(f"layout '{layout}' is not one of {', '.join(LAYOUTS)}")
    d = load_digits()
    y = pa.array(d.target.astype(np.int64))
    if layout == "columns":
        cols = {f"pixel_{i}": (d.data[:, i] / 16.0).astype(np.float32) for i in range(64)}
        return pa.table({**cols, target: y})
    if layout == "vector":
        flat = (d.data / 16.0).astype(np.float32)
        return pa.table({"pixels": pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), 64).cast(
            pa.list_(pa.float32())), target: y})
    from .images import png_bytes
    grey = np.round(d.images * (255 / 16)).astype(np.uint8)
    return pa.table({"image": pa.array([png_bytes(g) for g in grey], pa.binary()), target: y})


def split_table(table: Any, test_size: float = 0.25, seed: int = 0, stratify: str | None = None) -> tuple[Any, Any]:
    """(train, test) tables: a seeded split, stratified by the `stratify` column when given."""
    from sklearn.model_selection import train_test_split
    idx = np.arange(table.num_rows)
    strat = table.column(stratify).to_numpy(zero_copy_only=False) if stratify else None
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=strat)
    return table.take(tr), table.take(te)
