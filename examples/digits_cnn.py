"""Train a small CNN on scikit-learn's bundled 8x8 digits and save it as a model bundle.

    python examples/digits_cnn.py [--out out/digits_model.tuop] [--epochs 15] [--seed 0] [--beam 0]
                                  [--layout vector|image|columns]

The data comes as a pyarrow table, as KNIME hands it over: a 'pixels' list column (or a PNG
'image' column, or 64 pixel columns) plus a 'digit' label column. The data layer
(uop_engine.data) turns it into (rows, 1, 8, 8) float32 tensors and class ids;
uop_engine.table_train.train_table trains; predict_table scores the held-out test split; the
result is saved with ModelBundle. Results go to stdout and are identical for the same seed;
timings go to stderr. The last line reads `test_accuracy=0.9xx`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))


def digits_tables(layout: str = "vector"):
    """(train table, test table): features in the given layout and a 'digit' column, a fixed
    stratified 75/25 split of scikit-learn's bundled digits."""
    from uop_engine.datasets import digits_table, split_table
    return split_table(digits_table(layout, target="digit"), test_size=0.25, seed=0, stratify="digit")


def build_graph():
    from uop_engine import GraphBuilder
    g = GraphBuilder("digits_cnn")
    x = g.input((1, 8, 8))
    h = g.conv_block(x, out_channels=16)                  # conv 3x3 + BatchNorm + ReLU, 8x8
    h = g.conv_block(h, out_channels=32, pool="max")      # conv 3x3 + BatchNorm + ReLU + maxpool -> 4x4
    g.linear(g.flatten(h), out_features=10)
    return g.build()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/digits_model.tuop", help="where to save the model bundle")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beam", type=int, default=0, help="tinygrad BEAM width (0 = off; slow first run)")
    ap.add_argument("--layout", default="vector", choices=("vector", "image", "columns"),
                    help="how the table holds the pixels")
    args = ap.parse_args()
    t_start = time.perf_counter()

    import numpy as np
    from uop_engine.predict import predict_table
    from uop_engine.table_train import spec_for_graph, train_table
    from uop_engine.train import TrainConfig
    train_table_, test_table = digits_tables(args.layout)
    graph = build_graph()
    features = {"vector": ["pixels"], "image": ["image"], "columns": [f"pixel_{i}" for i in range(64)]}[args.layout]
    spec = spec_for_graph(train_table_.schema, graph, features, "digit", loss="cross_entropy")
    print(f"digits: {train_table_.num_rows} training rows, {test_table.num_rows} test rows, "
          f"features from the {spec.kinds['x']} column(s) {features[0]}{'...' if len(features) > 1 else ''}")
    cfg = TrainConfig(loss="cross_entropy", optimizer="adam", lr=3e-3, schedule="cosine", epochs=args.epochs,
                      batch_size=64, validation_split=0.1, seed=args.seed, beam=args.beam)
    t0 = time.perf_counter()
    result = train_table(graph, train_table_, spec, cfg)  # table -> tensors -> training
    print(f"classes: {result.classes}")
    train_s = time.perf_counter() - t0
    for m in result.history:
        print(f"epoch {m['epoch']:2d}  loss {m['loss']:.4f}  acc {m['accuracy']:.4f}  "
              f"val_loss {m['val_loss']:.4f}  val_acc {m['val_accuracy']:.4f}  lr {m['lr']:.6f}")
    t0 = time.perf_counter()
    bundle = result.bundle(feature_spec=result.feature_spec)
    scored = predict_table(bundle, test_table, batch_size=256, keep_columns=["digit"])
    acc = float(np.mean(scored.column("Prediction (digit)").to_numpy() == scored.column("digit").to_numpy()))
    predict_s = time.perf_counter() - t0
    path = bundle.save(args.out)
    print(f"saved model bundle to {path} (graph {result.model.graph.hash()})")
    print(f"timing: training {train_s:.1f} s (first epoch {result.history[0]['seconds']:.1f} s, compile included), "
          f"test prediction {predict_s:.1f} s, total {time.perf_counter() - t_start:.1f} s", file=sys.stderr)
    print(f"test_accuracy={acc:.4f}")


if __name__ == "__main__":
    main()
