"""Table -> tensor conversion throughput of the data layer against a numpy memcpy of the same bytes.

    python bench/table_convert.py [--rows 200000] [--repeat 5]

For each layout (numeric columns, a list column, PNG images) the table's feature bytes are
copied once with numpy (`src.copy()`: allocation + memcpy, the floor for any conversion that
produces a new array) and converted with `uop_engine.data.table_to_arrays`; both in this
process, best of `--repeat`. The ratio is memcpy time / conversion time (1.0 = as fast as a
memcpy; higher is faster). Numeric columns end up as one row-major (rows, columns) float32
array, so they need a transposing scatter; list columns are read zero-copy and cast once.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))


def best(fn, repeat: int) -> float:
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--image-rows", type=int, default=5_000)
    args = ap.parse_args()
    import numpy as np
    import pyarrow as pa
    from uop_engine.data import infer_feature_spec, table_to_arrays
    from uop_engine.images import png_bytes

    rng = np.random.default_rng(0)
    n = args.rows
    cases = []
    for k, dtype in ((64, np.float64), (8, np.float64), (64, np.float32)):
        t = pa.table({f"c{i}": rng.random(n).astype(dtype) for i in range(k)} | {"y": rng.integers(0, 10, n)})
        src = np.concatenate([t.column(i).to_numpy() for i in range(k)])
        cases.append((f"{k} {np.dtype(dtype).name} columns", t, [f"c{i}" for i in range(k)], src))
    for k in (64, 784):
        m = max(1, n * 64 // k)
        flat = rng.random(m * k)
        t = pa.table({"v": pa.ListArray.from_arrays(pa.array(np.arange(0, m * k + 1, k, dtype=np.int32)),
                                                    pa.array(flat)), "y": rng.integers(0, 10, m)})
        cases.append((f"list<double>[{k}] column", t, ["v"], flat))
    grey = rng.integers(0, 256, (args.image_rows, 28, 28), dtype=np.uint8)
    imgs = [png_bytes(g) for g in grey]
    t = pa.table({"img": pa.array(imgs, pa.binary()), "y": rng.integers(0, 10, args.image_rows)})
    cases.append(("28x28 PNG image column", t, ["img"], np.frombuffer(b"".join(imgs), np.uint8)))

    print(f"{'layout':28s} {'rows':>8s} {'MB in':>8s} {'memcpy ms':>10s} {'convert ms':>11s} {'GB/s':>6s} "
          f"{'ratio':>6s}")
    for name, table, feats, src in cases:
        spec = infer_feature_spec(table.schema, feats, "y")
        X, _ = table_to_arrays(table, spec)  # warm-up; also checks the result once
        assert X.dtype == np.float32 and X.shape[0] == table.num_rows
        t_copy = best(lambda: src.copy(), args.repeat)
        t_conv = best(lambda: table_to_arrays(table, spec), args.repeat)
        mb = src.nbytes / 1e6
        print(f"{name:28s} {table.num_rows:8d} {mb:8.1f} {t_copy * 1e3:10.2f} {t_conv * 1e3:11.2f} "
              f"{mb / 1e3 / t_conv:6.2f} {t_copy / t_conv:6.2f}x")


if __name__ == "__main__":
    main()
