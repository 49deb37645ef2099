"""Streaming prediction keeps memory flat: 200k rows of 64 float64 columns (about 100 MB of
input, generated batch by batch as KNIME hands them over) go through iter_predict_table in a
subprocess, and the peak RSS after 200k rows is compared with the peak after the first 20k."""
import json
import os
import subprocess
import sys

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

SCRIPT = r"""
import json, resource, sys
import numpy as np, pyarrow as pa
from uop_engine import GraphBuilder
from uop_engine.compile import compile_graph
from uop_engine.model_bundle import ModelBundle
from uop_engine.predict import iter_predict_table

rows, batch, cols = int(sys.argv[1]), int(sys.argv[2]), [f"pixel_{i}" for i in range(64)]
g = GraphBuilder("mlp")
g.linear(g.relu(g.linear(g.input((64,)), out_features=32)), out_features=10)
bundle = ModelBundle.from_model(compile_graph(g.build(), seed=0), task="classification", classes=list(range(10)))

def source():
    rng = np.random.default_rng(0)
    for start in range(0, rows, batch):
        block = rng.standard_normal((min(batch, rows - start), 64))
        yield pa.RecordBatch.from_arrays([pa.array(block[:, i]) for i in range(64)], names=cols)

peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
done, marks, checked = 0, {}, 0
for out in iter_predict_table(bundle, source(), feature_spec={"inputs": {"x": cols}}, batch_size=512,
                              keep_columns=["pixel_0"]):
    done += out.num_rows
    checked += int(out.column("Prediction (y)").null_count == 0)
    if done in (rows // 10, rows):
        marks[done] = peak()
print(json.dumps({"rows": done, "batches_ok": checked, "peak": marks}))
"""


def test_streaming_prediction_peak_memory_stays_flat():
    rows, batch = 200_000, 10_000
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(rows), str(batch)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["rows"] == rows and r["batches_ok"] == rows // batch
    first, last = r["peak"][str(rows // 10)], r["peak"][str(rows)]
    streamed = (rows - rows // 10) * 64 * 8  # float64 input bytes that flowed through after the first mark
    growth = last - first
    # one input batch is 5 MB; holding the stream (or its float32 copies) would add ~90 MB
    assert growth < 20 << 20, f"peak RSS grew {growth / 2**20:.1f} MB while {streamed / 2**20:.0f} MB streamed"
    assert growth < streamed / 5
