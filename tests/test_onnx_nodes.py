"""ONNX Writer, Quantizer and Reader nodes through the knime.extension double, checked with onnxruntime."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import knime.extension as knext
from knime_harness import configure_node, load_extension, run_node, table_from_pyarrow
from uop_engine import GraphBuilder, predict
from uop_engine.datasets import digits_table, split_table
from uop_engine.table_train import train_table
from uop_engine.train import TrainConfig

load_extension()
from nodes.model_port import model_object  # noqa: E402
from nodes.onnx_nodes import OnnxQuantizerNode, OnnxReaderNode, OnnxWriterNode  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    table = digits_table("vector")
    train, test = split_table(table, test_size=0.25, seed=0)
    g = GraphBuilder("digits_onnx")
    x = g.input((1, 8, 8))
    h = g.conv_block(x, out_channels=8, pool="max")
    g.linear(g.flatten(h), out_features=10)
    spec = {"inputs": {"x": ["pixels"]}, "target": "label"}
    res = train_table(g.build(), train, spec, TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0))
    bundle = res.bundle(res.feature_spec)
    X = np.asarray(test.column("pixels").to_pylist(), np.float32).reshape(-1, 1, 8, 8)
    return model_object(bundle), bundle, test, X, np.asarray(test.column("label"))


def ort_run(path, X):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})[0]


def test_writer_exports_a_checked_file_with_metadata_and_same_predictions(trained, tmp_path):
    port, bundle, _, X, y = trained
    path = tmp_path / "digits.onnx"
    out = run_node(OnnxWriterNode, {"path": str(path)}, [port]).outputs[0].to_pandas()
    assert out.iloc[0]["bytes"] == path.stat().st_size and out.iloc[0]["graph_hash"] == bundle.graph.hash()
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    got = ort_run(path, X)
    np.testing.assert_allclose(got, predict(bundle, X), rtol=1e-5, atol=1e-5)
    assert (got.argmax(1) == predict(bundle, X).argmax(1)).all()
    assert (got.argmax(1) == y).mean() > 0.8
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert any(k.endswith("graph_hash") and v == bundle.graph.hash() for k, v in props.items())
    # an existing file is not replaced unless asked
    with pytest.raises(knext.InvalidParametersError, match="exists"):
        configure_node(OnnxWriterNode, {"path": str(path)}, [port.spec])
    run_node(OnnxWriterNode, {"path": str(path), "if_exists": "overwrite", "static_batch": 4}, [port])
    assert ort.InferenceSession(str(path)).get_inputs()[0].shape[0] == 4


def test_reader_restores_the_graph_and_weights(trained, tmp_path):
    port, bundle, _, X, _ = trained
    path = tmp_path / "m.onnx"
    run_node(OnnxWriterNode, {"path": str(path)}, [port])
    spec = configure_node(OnnxReaderNode, {"path": str(path)}).specs[0]
    assert spec.data["graph_hash"] == bundle.graph.hash() and spec.data["classes"] == bundle.classes
    back = run_node(OnnxReaderNode, {"path": str(path)}).outputs[0].bundle
    assert back.graph.hash() == bundle.graph.hash()
    np.testing.assert_allclose(predict(back, X), predict(bundle, X), rtol=1e-6, atol=1e-6)


def test_reader_errors_name_the_problem(tmp_path):
    with pytest.raises(knext.InvalidParametersError, match="no file"):
        configure_node(OnnxReaderNode, {"path": str(tmp_path / "missing.onnx")})
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf")
    with pytest.raises(ValueError, match="junk.onnx"):
        configure_node(OnnxReaderNode, {"path": str(junk)})
    from onnx import TensorProto, helper
    node = helper.make_node("Hardmax", ["x"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    odd = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), str(odd))
    with pytest.raises(ValueError, match="Hardmax"):
        configure_node(OnnxReaderNode, {"path": str(odd)})


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_quantizer_reports_size_and_accuracy_change(trained, tmp_path, mode):
    port, _, test, X, y = trained
    path = tmp_path / f"q_{mode}.onnx"
    res = run_node(OnnxQuantizerNode, {"path": str(path), "mode": mode}, [port, table_from_pyarrow(test)])
    r = res.outputs[0].to_pandas().iloc[0]
    assert r["mode"] == mode and r["rows"] == len(y) and r["quantized_bytes"] == path.stat().st_size
    assert r["original_bytes"] > 0 and r["size_ratio"] == pytest.approx(r["quantized_bytes"] / r["original_bytes"])
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    from uop_engine.quantize import run_model  # same batches as the report: dynamic ranges are per batch
    acc_q = float((run_model(str(path), X).argmax(1) == y).mean())
    assert r["quantized_accuracy"] == pytest.approx(acc_q)
    assert abs(r["accuracy_delta"]) < 0.1


def test_static_quantizer_without_data_fails_in_configure(trained, tmp_path):
    port = trained[0]
    with pytest.raises(knext.InvalidParametersError, match="calibration data"):
        configure_node(OnnxQuantizerNode, {"path": str(tmp_path / "q.onnx"), "mode": "static"}, [port.spec, None])


def test_reader_names_empty_truncated_and_edited_files(trained, tmp_path):
    port = trained[0]
    path = tmp_path / "m.onnx"
    run_node(OnnxWriterNode, {"path": str(path)}, [port])
    data = path.read_bytes()
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "cut.onnx").write_bytes(data[:1000])
    with pytest.raises(ValueError, match="empty.onnx is empty"):
        configure_node(OnnxReaderNode, {"path": str(tmp_path / "empty.onnx")})
    with pytest.raises(ValueError, match="cut.onnx is truncated"):
        configure_node(OnnxReaderNode, {"path": str(tmp_path / "cut.onnx")})
    model = onnx.load(str(path))  # Relu -> Sigmoid with our metadata kept: read as the sigmoid it now is
    next(n for n in model.graph.node if n.op_type == "Relu").op_type = "Sigmoid"
    onnx.save(model, str(tmp_path / "edited.onnx"))
    res = run_node(OnnxReaderNode, {"path": str(tmp_path / "edited.onnx")})
    assert any("changed after export" in w for w in res.warnings)
    back, X = res.outputs[0].bundle, trained[3][:16]
    np.testing.assert_allclose(predict(back, X), ort_run(tmp_path / "edited.onnx", X), rtol=1e-5, atol=1e-5)


def test_reader_reads_external_data_and_names_a_missing_data_file(trained, tmp_path):
    port = trained[0]
    path = tmp_path / "m.onnx"
    run_node(OnnxWriterNode, {"path": str(path)}, [port])
    onnx.save(onnx.load(str(path)), str(path), save_as_external_data=True, location="m.weights", size_threshold=0)
    back, X = run_node(OnnxReaderNode, {"path": str(path)}).outputs[0].bundle, trained[3][:16]
    np.testing.assert_allclose(predict(back, X), ort_run(path, X), rtol=1e-5, atol=1e-5)
    (tmp_path / "m.weights").unlink()  # the model copied without its data file
    with pytest.raises(ValueError, match=f"ONNX file {path} keeps its weights in external data file\\(s\\) that are "
                                         f"missing: {tmp_path / 'm.weights'}"):
        configure_node(OnnxReaderNode, {"path": str(path)})


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_quantizer_with_an_empty_table_fails_and_leaves_no_file(trained, tmp_path, mode):
    port, _, test = trained[:3]
    path = tmp_path / "q.onnx"
    with pytest.raises(ValueError, match="calibration / validation table has no rows"):
        run_node(OnnxQuantizerNode, {"path": str(path), "mode": mode}, [port, table_from_pyarrow(test.slice(0, 0))])
    assert not list(tmp_path.iterdir())


def test_opset_range_is_the_exporters(trained, tmp_path):
    from uop_engine.onnx_export import MAX_OPSET, MIN_OPSET
    from knime_harness import node_parameters
    port = trained[0]
    for node in (OnnxWriterNode, OnnxQuantizerNode):
        p = node_parameters(node)["opset"]
        assert (p.min_value, p.max_value) == (MIN_OPSET, MAX_OPSET) == (17, 21)
        for bad in (13, 16, 22):
            with pytest.raises(knext.InvalidParametersError, match=f"Opset {bad} is not supported: the ONNX exporter "
                                                                   "writes opsets 17 to 21"):
                configure_node(node, {"path": str(tmp_path / "o.onnx"), "opset": bad}, [port.spec, None][:1 + (
                    node is OnnxQuantizerNode)])
    path = tmp_path / "o17.onnx"  # the lowest allowed opset exports and runs
    run_node(OnnxWriterNode, {"path": str(path), "opset": 17}, [port])
    assert onnx.load(str(path)).opset_import[0].version == 17


def test_writer_records_the_experiment_run_and_logs_the_file(trained, tmp_path):
    import hashlib

    from nodes.model_port import model_object
    from uop_engine.model_bundle import ModelBundle
    from uop_engine.onnx_export import onnx_metadata
    from uop_engine.store import ExperimentStore
    bundle = trained[1]
    db = tmp_path / "exp.sqlite"
    st = ExperimentStore(db)
    rid = st.start_run("knime", name="Train Model")  # what Train Model records, its id in the model's record
    st.end_run(rid)
    port = model_object(ModelBundle(bundle.graph, bundle.weights, {**bundle.record, "experiment_run_id": rid},
                                    bundle.classes, bundle.task, bundle.feature_spec))
    path = tmp_path / "tracked.onnx"
    res = run_node(OnnxWriterNode, {"path": str(path), "tracking": {"store": str(db)}}, [port])
    meta = onnx_metadata(str(path))
    assert meta["experiment_run_id"] == rid and st.get_run(meta["experiment_run_id"])["name"] == "Train Model"
    assert meta["training_record_id"] == port.spec.data["record_id"]  # the record digest is kept too
    (art,) = st.get_run(rid)["artifacts"]
    assert art["path"] == str(path.resolve()) and art["kind"] == "onnx" and art["size"] == path.stat().st_size
    assert art["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and not res.warnings
    # tracking off: the metadata still names the run, nothing is logged
    run_node(OnnxWriterNode, {"path": str(tmp_path / "off.onnx"), "tracking": {"record": False, "store": str(db)}},
             [port])
    assert onnx_metadata(str(tmp_path / "off.onnx"))["experiment_run_id"] == rid
    assert len(st.get_run(rid)["artifacts"]) == 1
    # a store without that run: the file is written, the node warns
    res = run_node(OnnxWriterNode, {"path": str(tmp_path / "other.onnx"),
                                    "tracking": {"store": str(tmp_path / "other.sqlite")}}, [port])
    assert (tmp_path / "other.onnx").exists() and any(f"no run {rid}" in w for w in res.warnings)
    # a model trained without tracking: no run id in the file, nothing logged
    run_node(OnnxWriterNode, {"path": str(tmp_path / "plain.onnx"), "tracking": {"store": str(db)}}, [trained[0]])
    assert "experiment_run_id" not in onnx_metadata(str(tmp_path / "plain.onnx"))
    assert len(st.get_run(rid)["artifacts"]) == 1
