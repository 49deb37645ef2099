"""Int8 post-training quantisation of a digits CNN: file size and test accuracy before/after.

    .venv/bin/python bench/onnx_quantize.py [--epochs 4] [--out out/onnx_quantize]

Trains a small CNN on scikit-learn's digits with the project's trainer, exports it to ONNX,
quantises it dynamically (int8 weights) and statically (int8 weights and activations,
calibrated on 256 training images), and prints sizes, accuracy, agreement and CPU latency.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

import numpy as np  # noqa: E402

from uop_engine import GraphBuilder  # noqa: E402


def digits_cnn():
    g = GraphBuilder("digits_cnn_bench")
    x = g.input((1, 8, 8), name="image")
    h = g.conv_block(x, out_channels=32)
    h = g.conv_block(h, out_channels=64, pool="max")
    h = g.mlp(g.flatten(h), hidden=(128,), out_features=10)
    g.output(h, "logits")
    return g.build()


def latency_ms(path: str, X: np.ndarray, repeats: int = 20) -> float:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: X}
    sess.run(None, feed)
    t = time.perf_counter()
    for _ in range(repeats):
        sess.run(None, feed)
    return (time.perf_counter() - t) / repeats * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--out", default="out/onnx_quantize")
    args = ap.parse_args()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from uop_engine.onnx_export import export_onnx
    from uop_engine.quantize import quantize_dynamic_model, quantize_static_model
    from uop_engine.train import train

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=453, random_state=0, stratify=d.target)
    graph = digits_cnn()
    t = time.perf_counter()
    res = train(graph, Xtr, ytr, {"epochs": args.epochs, "batch_size": 64, "lr": 2e-3})
    print(f"trained {args.epochs} epochs in {time.perf_counter() - t:.1f} s")
    os.makedirs(args.out, exist_ok=True)
    fp32 = os.path.join(args.out, "digits_fp32.onnx")
    export_onnx(graph, res.weights(), fp32, class_labels=list(range(10)))
    reports = [quantize_dynamic_model(fp32, os.path.join(args.out, "digits_int8_dynamic.onnx"), X_val=Xte, y_val=yte),
               quantize_static_model(fp32, os.path.join(args.out, "digits_int8_static.onnx"), Xtr[:256],
                                     X_val=Xte, y_val=yte)]
    base = reports[0]
    print(f"\n{'model':<16}{'size KB':>10}{'ratio':>8}{'accuracy':>10}{'delta':>8}{'agree':>8}{'ms/453':>9}")
    print(f"{'fp32':<16}{base['original_bytes'] / 1024:>10.1f}{1.0:>8.2f}{base['original_accuracy']:>10.4f}"
          f"{0.0:>+8.4f}{1.0:>8.3f}{latency_ms(fp32, Xte):>9.2f}")
    for r in reports:
        print(f"{'int8 ' + r['mode']:<16}{r['quantized_bytes'] / 1024:>10.1f}{r['size_ratio']:>8.2f}"
              f"{r['quantized_accuracy']:>10.4f}{r['accuracy_delta']:>+8.4f}{r['prediction_agreement']:>8.3f}"
              f"{latency_ms(r['path'], Xte):>9.2f}")
    print(f"\nsize reduction: dynamic {1 - reports[0]['size_ratio']:.0%}, static {1 - reports[1]['size_ratio']:.0%}; "
          f"accuracy change: dynamic {reports[0]['accuracy_delta']:+.4f}, static {reports[1]['accuracy_delta']:+.4f}")


if __name__ == "__main__":
    main()
