"""Quick start: build a small CNN graph, infer its shapes, compile it with tinygrad, run a
forward pass on a real batch of handwritten digits (scikit-learn's bundled 8x8 digits) and
print the UOp/kernel diagnostics."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from uop_engine import GraphBuilder, compile_graph, fmt_shape, summarize  # noqa: E402
from uop_engine.diagnostics import inspect_graph  # noqa: E402


def main() -> None:
    g = GraphBuilder("digits_cnn")
    x = g.input((1, 8, 8), name="image")
    h = g.conv_block(x, out_channels=16)
    h = g.conv_block(h, out_channels=32, pool="max")
    g.output(g.linear(g.flatten(h), out_features=10), name="logits")
    graph = g.build()

    s = summarize(graph)
    print(f"graph '{graph.name}' hash={s.hash} nodes={s.n_nodes} parameters={s.n_params}")
    for name, shape in s.inputs.items():
        print(f"  input  {name}: {fmt_shape(shape)} {s.input_dtypes[name]}")
    for name, shape in s.outputs.items():
        print(f"  output {name}: {fmt_shape(shape)} {s.output_dtypes[name]}")

    digits = load_digits()
    batch = (digits.images[:32] / 16.0).astype(np.float32)[:, None]
    model = compile_graph(graph, seed=0)
    logits = model(batch).numpy()
    print(f"forward pass on {batch.shape[0]} real digits -> logits {logits.shape}, "
          f"finite={bool(np.isfinite(logits).all())}, untrained predictions {logits.argmax(1)[:10].tolist()}")

    rep = inspect_graph(graph, batch=32)
    print(f"tinygrad: {rep.uop_count} UOps -> {rep.kernel_count} kernels on {rep.options['device']}, "
          f"compile {rep.compile_time_s * 1000:.0f} ms, run {min(rep.run_times_s) * 1000:.2f} ms")
    for k in rep.kernels:
        print(f"  kernel {k.index}: {k.name} uops={k.program_uops} time={(k.time_s or 0) * 1e6:.0f} us")
    first = next((k for k in rep.kernels if k.source), None)
    if first is not None:
        print(f"source of kernel {first.index} ({first.name}), first lines:")
        print("\n".join("    " + line for line in first.source.splitlines()[:8]))


if __name__ == "__main__":
    main()
