"""int8 quantisation of the exported digits CNN through onnxruntime: smaller files, nearly the same
accuracy, calibration from arrays / tables / batches, metadata kept, clear errors."""
import numpy as np
import onnx
import pandas as pd
import pytest

from uop_engine import DataError, GraphBuilder, GraphError
from uop_engine.onnx_export import export_onnx, onnx_metadata
from uop_engine.quantize import calibration_reader, compare, quantize_dynamic_model, quantize_static_model, run_model
from test_onnx_export import train_digits


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    graph, weights, X, y = train_digits()
    path = tmp_path_factory.mktemp("q") / "digits.onnx"
    export_onnx(graph, weights, path, class_labels=list(range(10)))
    return path, X, y


def test_dynamic_quantization_report(digits, tmp_path):
    path, X, y = digits
    out = tmp_path / "digits.dyn.onnx"
    rep = quantize_dynamic_model(path, out, X_val=X, y_val=y)
    assert rep["mode"] == "dynamic" and rep["quantized_bytes"] == out.stat().st_size
    assert rep["quantized_bytes"] < rep["original_bytes"] and rep["size_ratio"] == pytest.approx(
        rep["quantized_bytes"] / rep["original_bytes"])
    assert rep["task"] == "classification" and rep["original_accuracy"] > 0.8
    assert abs(rep["accuracy_delta"]) <= 0.03 and rep["prediction_agreement"] > 0.95
    q = onnx.load(str(out))
    assert {n.op_type for n in q.graph.node} & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}
    meta = onnx_metadata(q)
    assert meta["class_labels"] == list(range(10)) and '"mode": "dynamic"' in meta["quantization"]
    np.testing.assert_allclose(rep["original_accuracy"], np.mean(run_model(path, X).argmax(1) == y))


def test_static_quantization_from_array_and_table(digits, tmp_path):
    path, X, y = digits
    rep = quantize_static_model(path, tmp_path / "s.onnx", X[:128], X_val=X, y_val=y)
    assert rep["mode"] == "static" and rep["size_ratio"] < 0.8  # a tiny model: headers and metadata weigh in
    assert abs(rep["accuracy_delta"]) <= 0.03
    q = onnx.load(str(tmp_path / "s.onnx"))
    assert "QuantizeLinear" in {n.op_type for n in q.graph.node}
    table = pd.DataFrame(X[:128].reshape(128, -1))  # one row per sample, as a KNIME table would hold it
    rep2 = quantize_static_model(path, tmp_path / "t.onnx", table, X_val=X, y_val=y)
    assert rep2["quantized_accuracy"] == rep["quantized_accuracy"]  # same calibration data, same model


def test_calibration_reader_batches_and_limits(digits):
    path, X, _ = digits
    r = calibration_reader(path, X[:100], batch_size=32)
    sizes = []
    while (b := r.get_next()) is not None:
        sizes.append(b["image"].shape)
    assert sizes == [(32, 1, 8, 8)] * 3 + [(4, 1, 8, 8)]
    r = calibration_reader(path, (X[i:i + 10] for i in range(0, 50, 10)), max_batches=2)
    assert r.get_next()["image"].shape == (10, 1, 8, 8) and r.get_next() is not None and r.get_next() is None


def test_regression_report(tmp_path):
    g = GraphBuilder("reg")
    g.output(g.linear(g.relu(g.linear(g.input((16,)), out_features=64)), out_features=1), "y")
    path = tmp_path / "reg.onnx"
    export_onnx(g.build(), path=path)
    X = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    y = run_model(path, X)[:, 0] + 0.01
    rep = quantize_dynamic_model(path, tmp_path / "reg.q.onnx", X_val=X, y_val=y)
    assert rep["task"] == "regression" and rep["original_mae"] == pytest.approx(0.01, abs=1e-5)
    assert 0 < rep["max_abs_diff"] < 0.05 and rep["mae_delta"] == pytest.approx(rep["quantized_mae"] - rep["original_mae"])
    assert "prediction_agreement" not in compare(path, tmp_path / "reg.q.onnx", X)


def test_errors(digits, tmp_path):
    path, X, _ = digits
    with pytest.raises(DataError, match="does not fit input 'image'"):
        quantize_static_model(path, tmp_path / "x.onnx", np.zeros((4, 7), np.float32))
    with pytest.raises(DataError, match="needs calibration data"):
        quantize_static_model(path, tmp_path / "x.onnx", None)
    with pytest.raises(ValueError, match="int8 or uint8"):
        quantize_dynamic_model(path, tmp_path / "x.onnx", weight_type="int4")
    assert not (tmp_path / "x.onnx").exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_bad_validation_or_calibration_data_writes_nothing(digits, tmp_path):
    path, X, y = digits
    out = tmp_path / "q.onnx"
    with pytest.raises(DataError, match=r"validation data is empty \(0 rows\)"):
        quantize_dynamic_model(path, out, X_val=X[:0], y_val=y[:0])
    with pytest.raises(DataError, match=r"validation targets \(y_val\) have 5 rows but the validation data \(X_val\) "
                                        "has 10"):
        quantize_dynamic_model(path, out, X_val=X[:10], y_val=y[:5])
    with pytest.raises(DataError, match="without validation inputs"):
        quantize_dynamic_model(path, out, y_val=y)
    with pytest.raises(DataError, match=r"calibration data is empty \(0 rows\)"):
        quantize_static_model(path, out, X[:0])
    with pytest.raises(DataError, match="calibration data is an empty list of batches"):
        quantize_static_model(path, out, [])
    with pytest.raises(DataError, match="calibration data gave no batches"):  # not onnxruntime's 'No data is collected'
        quantize_static_model(path, out, (b for b in []))
    with pytest.raises(DataError, match="validation data is empty"):
        quantize_static_model(path, out, X[:64], X_val=X[:0])
    assert not list(tmp_path.iterdir())  # no output and no temporary file left behind


def test_static_calibration_from_a_one_shot_generator(digits, tmp_path):
    path, X, y = digits  # the reader peeks at the first batch to refuse empty data: it must not be lost
    rep = quantize_static_model(path, tmp_path / "g.onnx", (X[i:i + 32] for i in range(0, 128, 32)), X_val=X, y_val=y)
    ref = quantize_static_model(path, tmp_path / "a.onnx", X[:128], X_val=X, y_val=y)
    assert rep["quantized_accuracy"] == ref["quantized_accuracy"]
    np.testing.assert_array_equal(run_model(tmp_path / "g.onnx", X), run_model(tmp_path / "a.onnx", X))


def test_batch_size_and_max_batches_are_checked_by_name_before_anything_is_written(digits, tmp_path):
    path, X, y = digits
    out = tmp_path / "new" / "q.onnx"  # a folder that does not exist yet: it must not be created either
    for bad in (0, -4, 2.5, True, None):
        with pytest.raises(GraphError, match=f"parameter 'batch_size': must be a whole number of 1 or more, got "
                                             f"{bad!r}"):
            quantize_static_model(path, out, X[:64], batch_size=bad, X_val=X, y_val=y)
    for bad in (0, -1, 1.5):
        with pytest.raises(GraphError, match=f"parameter 'max_batches': .* got {bad!r}"):
            quantize_static_model(path, out, X[:64], max_batches=bad)
    with pytest.raises(GraphError, match="parameter 'batch_size'"):
        calibration_reader(path, X[:64], batch_size=0)
    assert not list(tmp_path.iterdir())
    rep = quantize_static_model(path, out, X[:64], batch_size=np.int64(16), max_batches=2)  # numpy ints are fine
    assert out.is_file() and rep["quantized_bytes"] == out.stat().st_size
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["new", "q.onnx"]  # no temporary files beside it


def test_bad_validation_targets_are_named_before_quantising(digits, tmp_path):
    path, X, y = digits
    n = len(X)
    out = tmp_path / "new" / "q.onnx"
    bad = {  # y_val -> what the message says
        "strings": (np.array(["a"] * n), r"\(y_val\) must be numbers .* got <U1 values"),
        "one-hot ints": (np.eye(10, dtype=np.int64)[y], rf"\(y_val\) of shape \({n}, 10\) hold integers, read as "
                                                        rf"class indices: give one per row, shape \({n},\)"),
        "labels from 1": (y + 1, r"\(y_val\) are class indices from 1 to 10, but the model scores 10 classes "
                                 r"\(0 to 9\)"),
        "floats of another shape": (np.zeros((n, 3)), rf"\(y_val\) have shape \({n}, 3\) but the model's output "
                                                      rf"for the {n} validation rows has shape \({n}, 10\); give one "
                                                      rf"target per output value, or integer class indices"),
    }
    for why, (y_bad, message) in bad.items():
        for run in (lambda: quantize_dynamic_model(path, out, X_val=X, y_val=y_bad),
                    lambda: quantize_static_model(path, out, X[:64], X_val=X, y_val=y_bad)):
            with pytest.raises(DataError, match=message):
                run()
        assert not list(tmp_path.iterdir()), why  # neither the file nor its folder
    # labels as a column (n, 1) are class indices too, scored like (n,)
    rep = quantize_dynamic_model(path, out, X_val=X, y_val=y.reshape(-1, 1))
    assert rep["original_accuracy"] == pytest.approx(np.mean(run_model(path, X).argmax(1) == y))
    assert rep["original_accuracy"] == compare(path, out, X, y)["original_accuracy"]
