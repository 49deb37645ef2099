"""ONNX import: export -> import round trips (same graph hash, same outputs), plain-ONNX mapping
without export hints, and one clear error listing every unsupported op."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from uop_engine import GraphBuilder, GraphError, analyze, compile_graph
from uop_engine.onnx_export import HINT, export_onnx
from uop_engine.onnx_import import import_onnx
from test_onnx_export import CASES, EXTRA, F32, case_data, case_graph, make_data, small_cnn

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


# ops whose export needs constants between ONNX nodes (our graphs hold constants only as weights) or,
# for shifts of signed integers, unsigned dtypes the graph has no name for: they come back through the
# export hints; plain ONNX without hints is refused with a clear message
NEEDS_HINTS = {"exp2", "log2", "trunc", "gelu", "var", "std", "group_norm", "rms_norm", "adaptive_avg_pool2d",
               "scaled_dot_product_attention", "multi_head_attention", "transformer_encoder", "conv_block",
               "log10", "quick_gelu", "copysign", "isclose", "masked_fill", "lshift", "rshift", "mod", "floor_divide"}


@pytest.mark.parametrize("op", sorted(CASES))
def test_round_trip_every_op(op):
    params, shapes, dtypes, kind = (CASES[op] + (None, "n"))[:4]
    dtypes = dtypes or [F32] * len(shapes)
    graph = case_graph(op, params, shapes, dtypes)
    xs = case_data(shapes, dtypes, kind, R)
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
    check_round_trip(case_graph(op, params, shapes, dtypes), case_data(shapes, dtypes, kind, R))


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


def test_plain_onnx_math_ops_with_onnx_defaults_match_onnxruntime():
    """Hand-written ONNX with the new direct handlers: attributes left out take ONNX's defaults
    (HardSigmoid alpha 0.2, not ours), Mod picks mod/fmod by its flag, BitShift maps to our shifts."""
    import onnxruntime as ort
    T = TensorProto
    nodes = [helper.make_node("HardSigmoid", ["x"], ["hs"]), helper.make_node("Selu", ["x"], ["se"]),
             helper.make_node("IsInf", ["x"], ["pinf"], detect_negative=0), helper.make_node("Not", ["pinf"], ["npinf"]),
             helper.make_node("Mod", ["i", "d"], ["m0"]), helper.make_node("Mod", ["i", "d"], ["m1"], fmod=1),
             helper.make_node("BitShift", ["u", "s"], ["shl"], direction="LEFT"),
             helper.make_node("BitShift", ["u", "s"], ["shr"], direction="RIGHT"),
             helper.make_node("BitwiseXor", ["i", "d"], ["xor"]), helper.make_node("Erf", ["x"], ["erf"])]
    ins = [helper.make_tensor_value_info(n, t, ["N", 4]) for n, t in
           (("x", T.FLOAT), ("i", T.INT32), ("d", T.INT32), ("u", T.UINT8), ("s", T.UINT8))]
    outs = [helper.make_empty_tensor_value_info(n) for n in ("hs", "se", "npinf", "m0", "m1", "shl", "shr", "xor", "erf")]
    model = _model(nodes, inputs=ins, outputs=outs)
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    graph, weights = import_onnx(model)
    assert {n.op for n in graph.nodes} >= {"hardsigmoid", "selu", "isinf", "logical_not", "mod", "fmod", "lshift",
                                           "rshift", "bitwise_xor", "erf"}
    xs = [np.float32([[-4, 0.5, np.inf, -np.inf], [2, -0.3, 9, 1]]), np.int32([[-7, 7, -7, 7], [5, -5, 0, 9]]),
          np.int32([[3, 3, -3, -3], [2, 2, 4, -4]]), np.uint8([[1, 128, 255, 7], [0, 3, 64, 200]]),
          np.uint8([[0, 1, 3, 7], [2, 5, 1, 0]])]
    ours = outputs(graph, weights, xs)
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, dict(zip("xidus", xs)))
    for name, a, b in zip(("hs", "se", "npinf", "m0", "m1", "shl", "shr", "xor", "erf"), ours, theirs):
        assert a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)


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


# ---- files edited after export while keeping our metadata and hints -------------------------------
def _tamper_graph():
    g = GraphBuilder("tamper")
    x = g.input((6,), name="x")
    h = g.leaky_relu(g.linear(x, out_features=8), negative_slope=0.1)
    h = g.clip(g.relu(g.linear(h, out_features=8)), min=-0.5, max=0.5)
    g.output(g.linear(h, out_features=3), "y")
    return g.build()


def _edited(model, edit):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    edit(m)
    return m


def _ort(model, x):
    import onnxruntime as ort
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _set_const(m, op_type, index, value):
    name = next(n for n in m.graph.node if n.op_type == op_type).input[index]
    t = next(t for t in m.graph.initializer if t.name == name)
    t.CopyFrom(onnx.numpy_helper.from_array(np.asarray(value, np.float32), name))


EDITS = {  # each keeps graph_json, graph_hash, the structure digest and every hint as exported
    "relu_to_sigmoid": lambda m: setattr(next(n for n in m.graph.node if n.op_type == "Relu"), "op_type", "Sigmoid"),
    "attribute": lambda m: next(n for n in m.graph.node if n.op_type == "LeakyRelu").attribute[0].CopyFrom(
        helper.make_attribute("alpha", 0.7)),
    "constant": lambda m: _set_const(m, "Clip", 2, 0.05),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_file_imports_as_what_it_now_computes(edit):
    graph = _tamper_graph()
    weights = compile_graph(graph, seed=2).numpy_weights()
    model = _edited(export_onnx(graph, weights), EDITS[edit])
    x = make_data((5, 6), F32, rng=R)
    assert np.abs(_ort(model, x) - outputs(graph, weights, [x])[0]).max() > 1e-3  # the edit changes the outputs
    with pytest.warns(UserWarning, match="changed after export"):
        back, w = import_onnx(model)
    assert back.hash() != graph.hash() and "changed after export" in back.meta["import_note"]
    np.testing.assert_allclose(outputs(back, w, [x])[0], _ort(model, x), rtol=1e-5, atol=1e-6)
    if edit == "relu_to_sigmoid":
        assert "sigmoid" in {n.op for n in back.nodes} and "relu" not in {n.op for n in back.nodes}


def test_untouched_and_retrained_files_import_as_the_exact_graph(recwarn):
    graph = _tamper_graph()
    weights = compile_graph(graph, seed=2).numpy_weights()
    model = export_onnx(graph, weights)
    back, _ = import_onnx(model)
    assert back.hash() == graph.hash() and "import_note" not in back.meta and not recwarn.list
    # new weight values in the same structure (e.g. fine-tuned elsewhere): still the exact graph, new weights
    fc = next(t for t in model.graph.initializer if t.name.endswith(".weight") or t.name.endswith(".weight.T"))
    new = _edited(model, lambda m: next(t for t in m.graph.initializer if t.name == fc.name).CopyFrom(
        onnx.numpy_helper.from_array(np.full(list(fc.dims), 0.3, np.float32), fc.name)))
    back, w = import_onnx(new)
    assert back.hash() == graph.hash() and not recwarn.list
    x = make_data((4, 6), F32, rng=R)
    np.testing.assert_allclose(outputs(back, w, [x])[0], _ort(new, x), rtol=1e-5, atol=1e-6)


def test_swapped_graph_json_or_missing_digest_falls_back_to_the_ops():
    graph, other = _tamper_graph(), small_cnn()
    model = export_onnx(graph, compile_graph(graph, seed=2).numpy_weights())

    def swap(m):  # graph JSON and hash of another graph, consistent with each other
        for p in m.metadata_props:
            if p.key == "tinyuop.graph_json":
                p.value = other.to_json(indent=None)
            elif p.key == "tinyuop.graph_hash":
                p.value = other.hash()
    with pytest.warns(UserWarning, match="structure digest no longer matches"):
        back, _ = import_onnx(_edited(model, swap))
    assert back.hash() == analyze(graph).atomic.hash()  # the ops, hints verified

    def drop(m):
        keep = [(p.key, p.value) for p in m.metadata_props if p.key != "tinyuop.structure_digest"]
        del m.metadata_props[:]
        for k, v in keep:
            m.metadata_props.add(key=k, value=v)
    with pytest.warns(UserWarning, match="no structure digest"):
        back, _ = import_onnx(_edited(model, drop))
    assert back.hash() == analyze(graph).atomic.hash()


def test_bad_files_say_what_is_wrong(tmp_path):
    from uop_engine.onnx_export import onnx_metadata
    from uop_engine.quantize import run_model
    good = export_onnx(_tamper_graph()).SerializeToString()
    files = {"empty.onnx": (b"", "is empty \\(0 bytes\\), not an ONNX model"),
             "notes.onnx": (b"this is not a protobuf\n", "is not an ONNX model \\(it is text; protobuf cannot parse"),
             "image.onnx": (b"\x89PNG\r\n\x1a\n" + bytes(40), "is not an ONNX model \\(protobuf cannot parse"),
             "cut.onnx": (good[: len(good) // 2], f"is truncated: it starts like an ONNX model but ends inside a field "
                                                  f"after {len(good) // 2} bytes"),
             "cut_end.onnx": (good[:-3], "is truncated")}
    for name, (data, message) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        for read in (import_onnx, onnx_metadata, lambda p: run_model(p, np.zeros((1, 6), np.float32))):
            with pytest.raises(GraphError, match=f"{path}.* {message}"):
                read(str(path))
        with pytest.raises(GraphError, match=f"the ONNX data {message}"):
            import_onnx(data)
    with pytest.raises(GraphError, match="is a folder"):
        import_onnx(str(tmp_path))


def test_external_data_is_read_and_a_missing_or_short_data_file_is_named(tmp_path):
    from uop_engine.onnx_export import onnx_metadata
    graph = _tamper_graph()
    model = export_onnx(graph, compile_graph(graph, seed=2).numpy_weights())
    path, data = tmp_path / "m.onnx", tmp_path / "m.weights"
    onnx.save(_edited(model, lambda m: None), str(path), save_as_external_data=True, location="m.weights",
              size_threshold=0)  # (onnx.save moves the weights out of the model it is given)
    back, w = import_onnx(str(path))  # data next to the model: the exact graph and weights
    assert back.hash() == graph.hash()
    x = make_data((4, 6), F32, rng=R)
    np.testing.assert_allclose(outputs(back, w, [x])[0], _ort(model, x), rtol=1e-5, atol=1e-6)
    full = data.read_bytes()
    data.write_bytes(full[:50])
    with pytest.raises(GraphError, match=f"cannot read the external data of ONNX file {path} \\(m.weights\\).*"
                                         "exceeds available data"):
        import_onnx(str(path))
    data.unlink()
    for read in (import_onnx, onnx_metadata):
        with pytest.raises(GraphError, match=f"ONNX file {path} keeps its weights in external data file\\(s\\) that "
                                             f"are missing: {tmp_path / 'm.weights'} \\(tensors linear_1.weight"):
            read(str(path))
    with pytest.raises(GraphError, match="the ONNX data keeps its weights in external data file\\(s\\) m.weights"):
        import_onnx(path.read_bytes())


def test_an_imported_graph_that_does_not_infer_says_where_with_one_help():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    g = helper.make_graph([helper.make_node("Add", ["x", "z"], ["y"])], "bad_add", [x, z], [y])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(GraphError) as info:
        import_onnx(model.SerializeToString())
    msg = str(info.value)
    assert msg.startswith("the imported graph is not valid: node '") and "broadcast" in msg
    assert msg.count("help:") == 1 and msg.endswith("check the ONNX model's shapes"), msg
