"""ONNX import: export -> import round trips (same graph hash, same outputs), plain-ONNX mapping
without export hints, and one clear error listing every unsupported op."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from uop_engine import GraphBuilder, GraphError, analyze, compile_graph
from uop_engine.onnx_export import HINT, export_onnx
from uop_engine.onnx_import import import_onnx
from test_onnx_export import CASES, EXTRA, F32, case_graph, make_data, small_cnn

R = np.random.default_rng(1)


def outputs(graph, weights, xs):
    out = compile_graph(graph, weights=weights)(*xs)
    return [o.numpy() for o in out] if isinstance(out, tuple) else [out.numpy()]


def strip_hints(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for n in list(m.graph.node) + list(m.graph.input):
        n.doc_string = ""
    return m


def without_graph_json(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [(p.key, p.value) for p in m.metadata_props if not p.key.endswith("graph_json")]
    del m.metadata_props[:]
    for k, v in keep:
        m.metadata_props.add(key=k, value=v)
    return m


def check_round_trip(graph, xs, use_hints=True, same_hash=True):
    weights = compile_graph(graph, seed=5).numpy_weights()
    model = export_onnx(graph, weights)
    if use_hints:  # the file's own graph JSON restores the graph exactly (blocks unexpanded)
        exact, w_exact = import_onnx(model)
        assert exact.hash() == graph.hash() and w_exact.keys() == weights.keys()
    ops_only = without_graph_json(model)  # the op-by-op importer on its own
    back, w2 = import_onnx(ops_only if use_hints else strip_hints(ops_only), use_hints=use_hints)
    if same_hash:  # from the ops, blocks come back expanded: compare with the expanded (atomic) graph
        assert back.hash() == analyze(graph).atomic.hash()
    for a, b in zip(outputs(graph, weights, xs), outputs(back, w2, xs)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    return back, w2


# ops whose export needs constants between ONNX nodes (our graphs hold constants only as weights):
# they come back through the export hints; plain ONNX without hints is refused with a clear message
NEEDS_HINTS = {"exp2", "log2", "trunc", "gelu", "var", "std", "group_norm", "rms_norm", "adaptive_avg_pool2d",
               "scaled_dot_product_attention", "multi_head_attention", "transformer_encoder", "conv_block"}


@pytest.mark.parametrize("op", sorted(CASES))
def test_round_trip_every_op(op):
    params, shapes, dtypes, kind = (CASES[op] + (None, "n"))[:4]
    dtypes = dtypes or [F32] * len(shapes)
    graph = case_graph(op, params, shapes, dtypes)
    xs = [make_data(s, d, kind, R) for s, d in zip(shapes, dtypes)]
    check_round_trip(graph, xs)
    if op in NEEDS_HINTS:
        with pytest.raises(GraphError, match="cannot import the ONNX model:.*(unsupported use|unsupported op type)"):
            check_round_trip(graph, xs, use_hints=False)
    else:  # without hints the outputs are still identical (Graph Output nodes name the outputs)
        check_round_trip(graph, xs, use_hints=False, same_hash=False)


@pytest.mark.parametrize("case", EXTRA, ids=lambda c: c[0])
def test_round_trip_other_export_paths(case):
    op, params, shapes, dtypes, kind = (case + (None, "n"))[:5]
    dtypes = dtypes or [F32] * len(shapes)
    check_round_trip(case_graph(op, params, shapes, dtypes), [make_data(s, d, kind, R) for s, d in zip(shapes, dtypes)])


def test_round_trip_cnn_file_and_names(tmp_path):
    graph = small_cnn()
    export_onnx(graph, path=tmp_path / "cnn.onnx")
    assert import_onnx(str(tmp_path / "cnn.onnx"))[0].hash() == graph.hash()
    back, w = import_onnx(without_graph_json(onnx.load(str(tmp_path / "cnn.onnx"))))
    assert back.hash() == analyze(graph).atomic.hash()
    assert [n.params["name"] for n in back.nodes if n.op == "output"] == ["logits", "label"]
    assert {n.id for n in back.nodes} == {n.id for n in analyze(graph).atomic.nodes}  # ids come back too
    xs = [make_data((4, 1, 8, 8), F32, rng=R)]
    np.testing.assert_allclose(outputs(back, w, xs)[0], outputs(graph, compile_graph(graph).numpy_weights(), xs)[0],
                               rtol=1e-6, atol=1e-6)


def plain_graph():
    """Ops that map one-to-one to ONNX, with canonical params: even without hints the hash holds."""
    g = GraphBuilder("plain")
    x = g.input((3, 8, 8), name="image")
    h = g.relu(g.batch_norm(g.conv2d(x, out_channels=4, kernel_size=(3,), padding=(1,), bias=False)))
    h = g.max_pool2d(h, kernel_size=(2,))
    h = g.conv2d(h, out_channels=6, kernel_size=(3,), stride=(2,), groups=2)
    s = g.global_avg_pool(h)
    h = g.linear(g.flatten(h), out_features=5)
    h = g.concat(h, g.linear(s, out_features=3, bias=False), axis=1)
    h = g.layer_norm(g.leaky_relu(h, negative_slope=0.2))
    g.output(g.softmax(h, axis=-1), "probs")
    g.output(g.argmax(h, axis=-1), "label")
    return g.build()


def test_plain_onnx_mapping_without_hints():
    graph = plain_graph()
    back, _ = check_round_trip(graph, [make_data((3, 3, 8, 8), F32, rng=R)], use_hints=False)
    assert sorted(n.op for n in back.nodes) == sorted(n.op for n in graph.nodes)


@pytest.mark.parametrize("block", ["conv_block", "residual_block", "se_block", "mlp", "transformer_encoder"])
def test_blocks_without_hints_give_the_same_outputs(block):
    params, shapes = CASES[block][:2]
    params = dict(params, norm="batch") if block == "conv_block" else params  # group norm needs the hints
    graph = case_graph(block, params, shapes, [F32])
    if block == "transformer_encoder":  # attention and GELU decompose into primitives with constants
        with pytest.raises(GraphError, match="unsupported use"):
            check_round_trip(graph, [], use_hints=False)
        return
    check_round_trip(graph, [make_data(shapes[0], F32, rng=R)], use_hints=False, same_hash=False)


def _model(nodes, inits=(), inputs=None, outputs=None):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "m", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_unsupported_ops_are_all_listed():
    from onnx import numpy_helper
    boxes = numpy_helper.from_array(np.zeros((1, 4, 4), np.float32), "boxes")
    nodes = [helper.make_node("Einsum", ["x", "x"], ["e"], name="einsum_1", equation="bi,bi->bi"),
             helper.make_node("Relu", ["e"], ["r"], name="relu_after"),
             helper.make_node("NonMaxSuppression", ["boxes", "boxes"], ["s1"], name="nms_a"),
             helper.make_node("NonMaxSuppression", ["boxes", "boxes"], ["s2"], name="nms_b"),
             helper.make_node("Add", ["x", "boxes"], ["y"], name="add_const")]
    with pytest.raises(GraphError) as e:
        import_onnx(_model(nodes, [boxes]))
    msg = str(e.value)
    assert "3 node(s) of 2 unsupported op type(s)" in msg
    assert "Einsum x1 (einsum_1)" in msg and "NonMaxSuppression x2 (nms_a, nms_b)" in msg
    assert "Add 'add_const'" in msg and "constant" in msg and "relu_after" not in msg
    assert "supported ONNX ops:" in msg and "Conv" in msg


def test_plain_onnx_from_helper():
    """A hand-written ONNX graph (as another tool would write it) maps onto our ops."""
    from onnx import numpy_helper
    w = R.standard_normal((4, 3)).astype(np.float32)
    b = R.standard_normal(3).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "pads")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["lin"]),
             helper.make_node("Pad", ["lin", "pads"], ["p"]), helper.make_node("Tanh", ["p"], ["y"]),
             helper.make_node("Equal", ["y", "y"], ["eq"]), helper.make_node("Not", ["eq"], ["ne"])]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None), helper.make_tensor_value_info("ne", TensorProto.BOOL, None)]
    graph, weights = import_onnx(_model(nodes, inits, outputs=out))
    assert sorted(n.op for n in graph.nodes) == ["input", "linear", "not_equal", "output", "output", "pad", "tanh"]
    x = R.standard_normal((2, 4)).astype(np.float32)
    y, ne = outputs(graph, weights, [x])
    np.testing.assert_allclose(y, np.tanh(np.pad(x @ w + b, ((0, 0), (1, 1)))), rtol=1e-5, atol=1e-6)
    assert not ne.any()


def test_bad_input_shape_is_reported():
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "L"])])
    with pytest.raises(GraphError, match="graph input 'x'.*known dtype and shape"):
        import_onnx(m)


def test_hint_prefix_is_what_the_exporter_writes():
    model = export_onnx(small_cnn())
    assert all(n.doc_string.startswith(HINT) for n in model.graph.node)


def test_model_exported_by_pytorch():
    """A real third-party file: PyTorch's exporter (BatchNorm folded into Conv, Gemm, LayerNormalization)."""
    import io
    import warnings
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
            self.fc, self.ln = torch.nn.Linear(64, 10), torch.nn.LayerNorm(10)

        def forward(self, x):
            h = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
            return torch.softmax(self.ln(self.fc(torch.flatten(h, 1))), -1)
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(3, 1, 8, 8)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but needs no extra packages
        torch.onnx.export(net, (x,), f, input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
                          dynamo=False, opset_version=17)
    graph, weights = import_onnx(f.getvalue())
    assert [n.op for n in graph.topo_order()] == ["input", "conv2d", "relu", "max_pool2d", "flatten", "linear",
                                                  "layer_norm", "softmax", "output"]
    with torch.no_grad():
        np.testing.assert_allclose(outputs(graph, weights, [x.numpy()])[0], net(x).numpy(), rtol=1e-5, atol=1e-6)
