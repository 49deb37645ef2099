"""Table -> tensor conversion throughput of the data layer against a numpy memcpy of the same bytes.

    python bench/table_convert.py [--rows 200000] [--rounds 15] [--image-rows 0]

For each layout (8 and 64 float64 columns, 64 float32 columns, list<double> columns, and
optionally PNG images) the table's feature bytes are copied with numpy (`src.copy()`:
allocation + memcpy, the floor for any conversion that produces a new array) and the
feature columns are converted with `uop_engine.data.table_to_arrays` (no target column, so
both sides handle the same bytes). Both run in this process in interleaved rounds, and the
best of `--rounds` is kept for each, so a busy machine penalises them alike. The ratio is
memcpy time / conversion time (1.0 = as fast as a memcpy; higher is faster). Numeric columns
end up as one row-major (rows, columns) float32 array, so they need a transposing copy; list
columns are read zero-copy and cast once. Note that a copy of more than 32 MB gets fresh pages
from the OS (page faults) while smaller ones may reuse freed memory, which moves the baseline.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))


def cases(n: int, image_rows: int) -> list[tuple]:
    """(name, table, feature columns, the same bytes as one numpy array) per layout."""
    import numpy as np
    import pyarrow as pa
    rng = np.random.default_rng(0)
    out = []
    for k, dtype in ((8, np.float64), (64, np.float64), (64, np.float32)):
        t = pa.table({f"c{i}": rng.standard_normal(n).astype(dtype) for i in range(k)})
        src = np.concatenate([t.column(i).to_numpy() for i in range(k)])
        out.append((f"{k} {np.dtype(dtype).name} columns", t, [f"c{i}" for i in range(k)], src))
    for k in (64, 784):
        m = max(1, n * 64 // k)
        flat = rng.standard_normal(m * k)
        t = pa.table({"v": pa.ListArray.from_arrays(pa.array(np.arange(0, m * k + 1, k, dtype=np.int32)),
                                                    pa.array(flat))})
        out.append((f"list<double>[{k}] column", t, ["v"], flat))
    if image_rows:
        from uop_engine.images import png_bytes
        imgs = [png_bytes(g) for g in rng.integers(0, 256, (image_rows, 28, 28), dtype=np.uint8)]
        t = pa.table({"img": pa.array(imgs, pa.binary())})
        out.append(("28x28 PNG image column", t, ["img"], np.frombuffer(b"".join(imgs), np.uint8)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=15, help="interleaved timed rounds; the best of each is kept")
    ap.add_argument("--image-rows", type=int, default=0, help="also a PNG image column of this many rows")
    args = ap.parse_args()
    import numpy as np
    from uop_engine.data import infer_feature_spec, table_to_arrays

    todo = []
    for name, table, feats, src in cases(args.rows, args.image_rows):
        spec = infer_feature_spec(table.schema, feats)
        X, _ = table_to_arrays(table, spec)  # warm-up; also checks the result once
        assert X.dtype == np.float32 and X.shape[0] == table.num_rows and np.isfinite(X).all()
        todo.append((name, table, spec, src, (lambda s=src: s.copy()), (lambda t=table, s=spec: table_to_arrays(t, s))))
    best = {name: [float("inf"), float("inf")] for name, *_ in todo}
    for _ in range(args.rounds):
        for name, _t, _s, _src, copy, convert in todo:
            for i, fn in enumerate((copy, convert)):
                t0 = time.perf_counter()
                fn()
                best[name][i] = min(best[name][i], time.perf_counter() - t0)
    print(f"{'layout':28s} {'rows':>8s} {'MB in':>8s} {'memcpy ms':>10s} {'convert ms':>11s} {'GB/s':>6s} "
          f"{'ratio':>6s}")
    for name, table, _spec, src, *_ in todo:
        t_copy, t_conv = best[name]
        mb = src.nbytes / 1e6
        print(f"{name:28s} {table.num_rows:8d} {mb:8.1f} {t_copy * 1e3:10.2f} {t_conv * 1e3:11.2f} "
              f"{mb / 1e3 / t_conv:6.2f} {t_copy / t_conv:6.2f}x")
    print(f"(best of {args.rounds} interleaved rounds; ratio = memcpy time / conversion time; {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
