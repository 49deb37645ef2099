"""Batched prediction: any row count, per-shape jits equal an eager forward, output columns,
pyarrow streaming, and BatchNorm folding."""
import numpy as np
import pyarrow as pa
import pytest

from uop_engine import GraphBuilder
from uop_engine.compile import compile_graph
from uop_engine.errors import DataError
from uop_engine.model_bundle import ModelBundle
from uop_engine.predict import (Predictor, fold_batchnorm, iter_predict, iter_predict_table, outputs_to_columns,
                                predict, predict_table)


@pytest.fixture(scope="module")
def model():
    g = GraphBuilder("p")
    h = g.relu(g.batch_norm(g.linear(g.input((4,)), out_features=6)))
    g.linear(h, out_features=3)
    m = compile_graph(g.build(), seed=2)
    w = m.numpy_weights()  # non-trivial BatchNorm statistics, so folding has something to fold
    rng = np.random.default_rng(0)
    w["params.batch_norm_1.running_mean"] = rng.standard_normal(6).astype(np.float32)
    w["params.batch_norm_1.running_var"] = rng.uniform(0.5, 2, 6).astype(np.float32)
    w["params.batch_norm_1.weight"] = rng.uniform(0.5, 2, 6).astype(np.float32)
    m.load_weights(w)
    return m


def X(n, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


def test_any_row_count_matches_eager_forward(model):
    x = X(23)
    ref = model.forward(x).numpy()
    p = Predictor(model)
    for bs in (1, 5, 8, 23, 64):
        out = predict(p, x, batch_size=bs)
        assert out.shape == (23, 3) and np.allclose(out, ref, atol=1e-6), bs
    assert {k[0][0][0] for k in p._fns} == {1, 5, 3, 8, 7, 23}  # one jit per distinct batch shape
    assert np.allclose(predict(model, x[:1]), ref[:1], atol=1e-6)
    with pytest.raises(DataError, match=r"input 'x' needs arrays of shape \(rows, 4\)"):
        predict(model, np.zeros((3, 5), np.float32))
    with pytest.raises(DataError, match="no rows"):
        predict(model, np.zeros((0, 4), np.float32))


def test_iter_predict_streams_batches(model):
    chunks = [X(n, seed=n) for n in (10, 3, 17)]
    outs = list(iter_predict(model, iter(chunks), batch_size=8))
    assert [o.shape[0] for o in outs] == [10, 3, 17]
    assert np.allclose(np.concatenate(outs), predict(model, np.concatenate(chunks)), atol=1e-6)


def test_classifier_columns():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]], np.float32)
    cols = outputs_to_columns(logits, "classification", ["a", "b", "c"], target="digit")
    assert cols["Prediction (digit)"] == ["a", "b"]
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    for k, c in enumerate("abc"):
        assert np.allclose(cols[f"P (digit={c})"], p[:, k], atol=1e-6)
    ints = outputs_to_columns(logits, "classification", None)
    assert ints["Prediction (y)"].tolist() == [0, 1] and "P (y=2)" in ints
    b = outputs_to_columns(np.array([[-2.0], [3.0]], np.float32), "binary", ["no", "yes"])
    assert b["Prediction (y)"] == ["no", "yes"] and np.allclose(b["P (y=yes)"], 1 / (1 + np.exp([2.0, -3.0])))
    r = outputs_to_columns(np.array([[1.5, 2.5]], np.float32), "regression", target="t")
    assert list(r) == ["Prediction (t_0)", "Prediction (t_1)"]
    o = outputs_to_columns([np.ones((2, 2, 2), np.float32)], "other", output_names=["emb"])
    assert o["emb"] == [[1.0] * 4, [1.0] * 4]


def test_predict_table_and_streaming(model, tmp_path):
    bundle = ModelBundle.from_model(model, classes=["x", "y", "z"], task="classification",
                                    feature_spec={"inputs": {"x": ["f0", "f1", "f2", "f3"]}, "target": "label"})
    path = bundle.save(tmp_path / "m.tuop")
    x = X(30)
    table = pa.table({"id": np.arange(30), **{f"f{i}": x[:, i] for i in range(4)}})
    out = predict_table(path, table, batch_size=7)
    assert out.column_names == ["id", "f0", "f1", "f2", "f3", "Prediction (label)", "P (label=x)", "P (label=y)",
                                "P (label=z)"]
    ref = predict(model, x)
    assert out.column("Prediction (label)").to_pylist() == [["x", "y", "z"][i] for i in ref.argmax(1)]
    probs = np.stack([out.column(f"P (label={c})").to_numpy() for c in "xyz"], 1)
    assert np.allclose(probs.sum(1), 1, atol=1e-6)
    batches = list(iter_predict_table(bundle, table.to_batches(max_chunksize=8), keep_columns=["id"]))
    assert [b.num_rows for b in batches] == [8, 8, 8, 6] and batches[0].schema.names[0] == "id"
    with pytest.raises(DataError, match=r"column\(s\) \['f3'\]"):
        predict_table(bundle, table.drop(["f3"]))
    nulls = pa.table({"f0": [1.0, None], "f1": [1.0, 1.0], "f2": [1.0, 1.0], "f3": [1.0, 1.0]})
    with pytest.raises(DataError, match="'f0' has 1 missing"):
        predict_table(bundle, nulls)


def test_fold_batchnorm_matches_and_removes_bn(model):
    folded = fold_batchnorm(model)
    assert not any(n.op == "batch_norm" for n in folded.graph.nodes)
    x = X(40)
    assert np.allclose(predict(folded, x), predict(model, x), atol=1e-5)
    assert np.allclose(predict(Predictor(model, fold_bn=True), x), predict(model, x), atol=1e-5)


def test_fold_batchnorm_of_convolutions_matches_unfolded_within_1e5_relative():
    g = GraphBuilder("conv_bn")
    h = g.input((1, 12, 12))
    for c in (8, 16):
        h = g.max_pool2d(g.relu(g.batch_norm(g.conv2d(h, out_channels=c, kernel_size=(3,), bias=False))),
                         kernel_size=(2,))
    g.linear(g.flatten(h), out_features=5)
    m = compile_graph(g.build(), seed=3)
    w, rng = m.numpy_weights(), np.random.default_rng(4)
    for k in [k for k in w if k.endswith(".running_var")]:  # statistics as after training, far from 0 / 1
        b, c = k[:-len(".running_var")], w[k].shape[0]
        w[k], w[b + ".running_mean"] = rng.uniform(0.3, 3, c).astype(np.float32), rng.normal(0, 1, c).astype(np.float32)
        w[b + ".weight"], w[b + ".bias"] = rng.uniform(0.5, 2, c).astype(np.float32), rng.normal(0, 1, c).astype(np.float32)
    m.load_weights(w)
    folded = fold_batchnorm(m)
    assert [n.op for n in folded.graph.nodes].count("batch_norm") == 0
    x = np.random.default_rng(5).standard_normal((64, 1, 12, 12)).astype(np.float32)
    ref, out = predict(m, x, 32), predict(m, x, 32, fold_bn=True)
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    np.testing.assert_allclose(predict(folded, x), out, rtol=0, atol=0)  # the option is the same folded model
