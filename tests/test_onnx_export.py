"""ONNX export: every op and block against the engine in onnxruntime, dynamic batch, metadata,
checker, atomic writes, and a trained digits CNN giving the same classes."""
import functools
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from uop_engine import GraphBuilder, GraphError, compile_graph, list_ops
from uop_engine.onnx_export import export_onnx, onnx_metadata, save_onnx

R = np.random.default_rng(0)
F32 = "float32"

# op -> (params, input shapes (batch first), dtypes or None = all float32, data kind: "n" normal, "p" positive)
CASES = {
    "exp2": ({}, [(2, 3)]), "log2": ({}, [(2, 3)], None, "p"), "sin": ({}, [(2, 3)]), "sqrt": ({}, [(2, 3)], None, "p"),
    "reciprocal": ({}, [(2, 3)], None, "p"), "neg": ({}, [(2, 3)]), "trunc": ({}, [(2, 3)], None, "w"),
    "exp": ({}, [(2, 3)]), "log": ({}, [(2, 3)], None, "p"), "cos": ({}, [(2, 3)]), "rsqrt": ({}, [(2, 3)], None, "p"),
    "square": ({}, [(2, 3)]), "floor": ({}, [(2, 3)], None, "w"), "ceil": ({}, [(2, 3)], None, "w"),
    "sign": ({}, [(2, 4)], None, "z"), "abs": ({}, [(2, 3)]), "clip": ({"min": -0.5, "max": 0.7}, [(2, 3)]),
    "relu": ({}, [(2, 3)]), "gelu": ({}, [(2, 3)], None, "w"), "silu": ({}, [(2, 3)], None, "w"), "sigmoid": ({}, [(2, 3)]),
    "tanh": ({}, [(2, 3)]), "softplus": ({}, [(2, 3)], None, "w"), "mish": ({}, [(2, 3)], None, "w"),
    "hardswish": ({}, [(2, 3)], None, "w"), "relu6": ({}, [(2, 5)], None, "w"),
    "leaky_relu": ({"negative_slope": 0.2}, [(2, 3)]), "elu": ({"alpha": 0.7}, [(2, 3)]),
    "softmax": ({"axis": 1}, [(2, 5)]), "log_softmax": ({"axis": -1}, [(2, 5)]),
    "add": ({}, [(2, 3), (2, 1)]), "sub": ({}, [(2, 3), (2, 3)]), "mul": ({}, [(2, 3), (2, 3)], [F32, "int32"]),
    "div": ({}, [(2, 3), (2, 3)], None, "p"), "pow": ({}, [(2, 3), (2, 3)], None, "p"),
    "maximum": ({}, [(2, 3), (2, 3)]), "minimum": ({}, [(2, 3), (2, 3)]), "less": ({}, [(2, 3), (2, 3)]),
    "less_equal": ({}, [(2, 3), (2, 3)], ["int32", "int32"]), "greater": ({}, [(2, 3), (2, 3)]),
    "greater_equal": ({}, [(2, 3), (2, 3)], ["int32", "int32"]), "equal": ({}, [(2, 3), (2, 3)], ["int32", "int32"]),
    "not_equal": ({}, [(2, 3), (2, 3)], ["int32", "int32"]), "where": ({}, [(2, 3), (2, 3), (1, 3)], ["bool", F32, F32]),
    "tan": ({}, [(2, 3)], None, "u"), "asin": ({}, [(2, 3)], None, "u"), "acos": ({}, [(2, 3)], None, "u"),
    "atan": ({}, [(2, 3)]), "sinh": ({}, [(2, 3)]), "cosh": ({}, [(2, 3)]), "asinh": ({}, [(2, 3)]),
    "acosh": ({}, [(2, 3)], None, "g"), "atanh": ({}, [(2, 3)], None, "u"), "erf": ({}, [(2, 3)]),
    "round": ({}, [(2, 6)], None, "r"), "log10": ({}, [(2, 3)], None, "p"), "isnan": ({}, [(2, 3)], None, "s"),
    "isinf": ({"detect_positive": False}, [(2, 3)], None, "s"), "isfinite": ({}, [(2, 3)], None, "s"),
    "logical_not": ({}, [(2, 4)], None, "z"), "bitwise_not": ({}, [(2, 3)], ["int32"], "i"),
    "softsign": ({}, [(2, 3)]), "selu": ({}, [(2, 3)], None, "w"), "celu": ({"alpha": 0.5}, [(2, 3)], None, "w"),
    "hardsigmoid": ({}, [(2, 4)], None, "w"), "hardtanh": ({"min_val": -0.5, "max_val": 2.0}, [(2, 4)], None, "w"),
    "quick_gelu": ({}, [(2, 3)], None, "w"), "logsigmoid": ({}, [(2, 3)], None, "w"), "softmin": ({"axis": 1}, [(2, 5)]),
    "mod": ({}, [(2, 4), (2, 4)], None, ("w", "d")), "fmod": ({}, [(2, 4), (2, 4)], ["int32", "int32"], ("i", "d")),
    "floor_divide": ({}, [(2, 4), (2, 4)], None, ("w", "d")), "bitwise_and": ({}, [(2, 3), (2, 3)], ["int32", "int32"], "i"),
    "bitwise_or": ({}, [(2, 3), (2, 3)], ["bool", "bool"]), "bitwise_xor": ({}, [(2, 3), (2, 1)], ["int16", "int16"], "i"),
    "lshift": ({}, [(2, 3), (2, 3)], ["int32", "int32"], ("i", "h")),
    "rshift": ({}, [(2, 3), (2, 3)], ["int32", "int32"], ("i", "h")), "copysign": ({}, [(2, 4), (2, 4)], None, ("n", "z")),
    "logaddexp": ({}, [(2, 3), (2, 3)]), "isclose": ({"rtol": 1e-3, "atol": 1e-4, "equal_nan": True}, [(2, 4), (2, 4)], None, "s"),
    "lerp": ({}, [(2, 3), (2, 3), (2, 1)]), "masked_fill": ({"value": -2.0}, [(2, 3), (2, 1)], [F32, "bool"]),
    "cast": ({"dtype": "int32"}, [(2, 3)], None, "w"), "sum": ({"axis": (1,)}, [(2, 3, 4)]),
    "mean": ({"axis": (1, 2), "keepdim": True}, [(2, 3, 4)]), "max": ({"axis": (2,)}, [(2, 3, 4)]),
    "min": ({}, [(2, 3, 4)]), "prod": ({"axis": (1,)}, [(2, 3, 4)]), "var": ({"axis": (1,)}, [(2, 5, 4)]),
    "std": ({"axis": (0, 2), "correction": 0}, [(2, 5, 4)]), "argmax": ({"axis": 1}, [(2, 5)]),
    "argmin": ({"axis": None}, [(2, 5)]), "reshape": ({"shape": (-1, 4, 3)}, [(2, 12)]),
    "permute": ({"order": (0, 2, 1)}, [(2, 3, 4)]), "transpose": ({"dim0": 1, "dim1": 2}, [(2, 3, 4)]),
    "expand": ({"shape": (-1, 3, 4)}, [(2, 1, 4)]), "pad": ({"pads": (1, 2, 0, 1), "value": 0.5}, [(2, 3, 4)]),
    "slice": ({"axis": 2, "start": 1, "end": -1}, [(2, 3, 5)]), "flip": ({"axis": (1, 2)}, [(2, 3, 4)]),
    "flatten": ({"start_dim": 2}, [(2, 3, 4, 2)]), "squeeze": ({"axis": 1}, [(2, 1, 4)]),
    "unsqueeze": ({"axis": -1}, [(2, 4)]), "concat": ({"axis": 1}, [(2, 3), (2, 2), (2, 1)]),
    "split": ({"sizes": (1, 3), "axis": 1}, [(2, 4)]), "matmul": ({}, [(2, 3, 4), (2, 4, 5)]),
    "linear": ({"out_features": 4}, [(3, 2, 5)]),
    "conv1d": ({"out_channels": 4, "kernel_size": (3,), "padding": (1,), "stride": (2,)}, [(2, 3, 9)]),
    "conv2d": ({"out_channels": 4, "kernel_size": (3, 2), "padding": (1,), "groups": 2, "dilation": (1, 2)}, [(2, 4, 6, 7)]),
    "conv_transpose2d": ({"out_channels": 3, "kernel_size": (3,), "stride": (2,), "padding": (1,), "output_padding": (1,)},
                         [(2, 4, 5, 5)]),
    "batch_norm": ({"eps": 1e-3}, [(4, 3, 5, 5)]), "layer_norm": ({"normalized_shape": (3, 6)}, [(2, 3, 6)]),
    "group_norm": ({"num_groups": 2}, [(2, 4, 3, 3)]), "rms_norm": ({}, [(2, 3, 6)]),
    "embedding": ({"num_embeddings": 5, "embedding_dim": 3}, [(2, 4)], ["int32"]),
    "max_pool2d": ({"kernel_size": (3,), "stride": (2,), "padding": (1,)}, [(2, 3, 7, 7)]),
    "avg_pool2d": ({"kernel_size": (3,), "stride": (2,), "padding": (1,)}, [(2, 3, 6, 6)]),
    "adaptive_avg_pool2d": ({"output_size": (3, 2)}, [(2, 3, 7, 5)]), "global_avg_pool": ({}, [(2, 3, 4, 4)]),
    "global_max_pool": ({"keepdim": True}, [(2, 3, 4, 4)]), "dropout": ({"p": 0.3}, [(2, 3)]),
    "scaled_dot_product_attention": ({"causal": True}, [(2, 4, 8), (2, 4, 8), (2, 4, 6)]),
    "multi_head_attention": ({"num_heads": 2, "causal": True}, [(2, 5, 8)]),
    "output": ({"name": "out"}, [(2, 3)]),
    "conv_block": ({"out_channels": 4, "pool": "max", "norm": "group", "groups": 2}, [(2, 1, 8, 8)]),
    "residual_block": ({"out_channels": 4, "stride": 2}, [(2, 2, 6, 6)]),
    "mlp": ({"hidden": (6, 5), "out_features": 3, "norm": "layer", "dropout": 0.2}, [(2, 4)]),
    "se_block": ({"reduction": 2}, [(2, 4, 3, 3)]),
    "transformer_encoder": ({"num_heads": 2, "ff_dim": 16}, [(2, 5, 8)]),
}
IMPLICIT = {"input"}  # every case graph starts with Graph Inputs
# other export paths of the same ops (Gemm vs MatMul, Flatten vs Reshape, divisible adaptive pooling, ...)
EXTRA = [
    ("linear", {"out_features": 3, "bias": False}, [(4, 5)]), ("flatten", {}, [(2, 3, 4)]),
    ("adaptive_avg_pool2d", {"output_size": (2,)}, [(2, 3, 4, 6)]), ("squeeze", {"axis": None}, [(2, 1, 3, 1)]),
    ("layer_norm", {"elementwise_affine": False}, [(2, 3, 6)]), ("group_norm", {"num_groups": 1, "affine": False}, [(2, 4, 5)]),
    ("argmax", {"axis": None}, [(2, 5)]), ("slice", {"axis": 0, "start": -3}, [(5, 4)]),
    ("mean", {}, [(2, 3)], ["int32"]), ("conv2d", {"out_channels": 2, "bias": False, "stride": (2, 1)}, [(2, 3, 5, 5)]),
    ("scaled_dot_product_attention", {}, [(2, 3, 4), (2, 5, 4), (2, 5, 2)]),
    ("multi_head_attention", {"num_heads": 1, "bias": False}, [(2, 3, 4)]),
    ("embedding", {"num_embeddings": 7, "embedding_dim": 2}, [(2, 3)], ["int64"]),
    ("where", {}, [(2, 3), (2, 3), (2, 3)], [F32, "int32", F32]), ("cast", {"dtype": "bool"}, [(2, 3)], None, "z"),
    ("concat", {"axis": -1}, [(2, 3), (2, 2)], [F32, "int32"]), ("unsqueeze", {"axis": 0}, [(2, 3)]),
    ("mod", {}, [(2, 4), (2, 4)], ["int32", "int32"], ("i", "d")), ("mod", {}, [(2, 3), (2, 3)], ["bool", "bool"]),
    ("fmod", {}, [(2, 4), (2, 4)], None, ("w", "d")), ("floor_divide", {}, [(2, 4), (2, 4)], ["int8", "int8"], ("i", "d")),
    ("bitwise_and", {}, [(2, 3), (2, 3)], ["int8", "uint8"], "i"), ("bitwise_not", {}, [(2, 3)], ["uint8"], "i"),
    ("bitwise_not", {}, [(2, 3)], ["bool"]), ("lshift", {}, [(2, 3), (2, 3)], ["int8", "int8"], ("i", "h")),
    ("rshift", {}, [(2, 3), (2, 3)], ["uint8", "uint8"], ("i", "h")), ("copysign", {}, [(2, 3), (2, 3)], ["int32", "int32"], "i"),
    ("logaddexp", {}, [(2, 3), (2, 3)], ["int32", "int32"]), ("isclose", {}, [(2, 3), (2, 3)], ["int32", "int32"], "z"),
    ("lerp", {}, [(2, 3), (2, 3), (2, 3)], [F32, F32, "int32"]), ("masked_fill", {"value": 3.0}, [(2, 3), (2, 3)], ["int32", F32], "z"),
    ("isinf", {}, [(2, 3)], None, "s"), ("isnan", {}, [(2, 3)], ["int32"]), ("logical_not", {}, [(2, 3)], ["bool"]),
    # dtypes onnxruntime's Where has no kernel for (int16, bool) go through a wider dtype
    ("where", {}, [(2, 3), (2, 3), (2, 3)], ["bool", "int16", "int16"], "i"), ("where", {}, [(2, 3)] * 3, ["bool"] * 3),
    ("rshift", {}, [(2, 3), (2, 3)], ["int16", "int16"], ("i", "h")), ("copysign", {}, [(2, 3), (2, 3)], ["int16", "int16"], "i"),
    ("masked_fill", {"value": 1.0}, [(2, 3), (2, 3)], ["bool", "bool"]),
]


def make_data(shape, dtype, kind="n", rng=R):
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype != F32:
        if kind == "i":  # negative numbers too (bitwise ops, shifts, modulo)
            return rng.integers(-50, 50, shape).astype(dtype)
        if kind == "d":  # divisors: never zero
            return (rng.integers(1, 8, shape) * rng.choice([-1, 1], shape)).astype(dtype)
        if kind == "h":  # shift amounts: 0 .. 7 bits
            return rng.integers(0, 8, shape).astype(dtype)
        return rng.integers(0, 5, shape).astype(dtype)
    if kind == "p":
        return (np.abs(rng.standard_normal(shape)) + 0.2).astype(np.float32)
    if kind == "w":  # wide range, away from integers (floor/trunc/cast) and over activation kinks
        return (rng.uniform(-7, 7, shape) + 0.25).astype(np.float32)
    if kind == "z":
        return rng.integers(-2, 3, shape).astype(np.float32)
    if kind == "u":  # inside (-1, 1): asin, acos, atanh
        return rng.uniform(-0.9, 0.9, shape).astype(np.float32)
    if kind == "g":  # above 1: acosh
        return (np.abs(rng.standard_normal(shape)) + 1.2).astype(np.float32)
    if kind == "r":  # halves: rounding ties
        return (rng.integers(-6, 6, shape) + 0.5).astype(np.float32)
    if kind == "d":  # divisors away from zero
        return (rng.uniform(0.5, 4, shape) * rng.choice([-1, 1], shape)).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    if kind == "s":  # NaN and infinities among normal numbers
        x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf][:x.size]
    return x


def case_data(shapes, dtypes, kind="n", rng=R):
    """One array per input; `kind` is one data kind for all inputs or a tuple of one per input."""
    kinds = kind if isinstance(kind, tuple) else (kind,) * len(shapes)
    return [make_data(s, d, k, rng) for s, d, k in zip(shapes, dtypes, kinds)]


def case_graph(op, params, shapes, dtypes):
    g = GraphBuilder(op)
    refs = [g.input(s[1:], name=f"x{i}", dtype=d) for i, (s, d) in enumerate(zip(shapes, dtypes))]
    g.add(op, *refs, **params)
    return g.build()


def run_both(graph, xs, model=None, weights=None, **kw):
    """Engine output(s) and onnxruntime output(s), as lists of numpy arrays."""
    cm = compile_graph(graph, seed=0, weights=weights)
    ref = cm(*xs)
    ref = [r.numpy() for r in ref] if isinstance(ref, tuple) else [ref.numpy()]
    model = model or export_onnx(graph, cm.numpy_weights(), **kw)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})
    return ref, got


def assert_same(ref, got):
    assert len(ref) == len(got)
    for r, o in zip(ref, got):
        assert o.shape == r.shape and o.dtype == r.dtype, f"{o.shape} {o.dtype} != engine {r.shape} {r.dtype}"
        if np.issubdtype(r.dtype, np.floating):
            np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(o, r)


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_parity_with_onnxruntime(op):
    params, shapes, dtypes, kind = (CASES[op] + (None, "n"))[:4]
    dtypes = dtypes or [F32] * len(shapes)
    g = case_graph(op, params, shapes, dtypes)
    xs = case_data(shapes, dtypes, kind)
    assert_same(*run_both(g, xs))


@pytest.mark.parametrize("case", EXTRA, ids=lambda c: c[0])
def test_other_export_paths(case):
    op, params, shapes, dtypes, kind = (case + (None, "n"))[:5]
    dtypes = dtypes or [F32] * len(shapes)
    g = case_graph(op, params, shapes, dtypes)
    assert_same(*run_both(g, case_data(shapes, dtypes, kind)))


def test_every_op_has_an_export_entry_and_a_parity_case():
    ops = [o for o in list_ops() if not o.user]
    assert not [o.name for o in ops if o.onnx is None]
    assert all(callable(o.onnx) or (o.onnx == "expand" and o.is_block) for o in ops)
    missing = [o.name for o in ops if o.name not in CASES and o.name not in IMPLICIT]
    assert not missing, f"ops without an ONNX parity case: {missing}"


@pytest.mark.parametrize("opset", [17, 20, 21])
def test_other_opsets(opset):
    g = GraphBuilder("opsets")
    x = g.input((5, 8))
    h = g.gelu(g.layer_norm(x))
    h = g.mish(g.mean(g.var(h, axis=(1,), keepdim=True), axis=(2,)))
    g.output(g.concat(g.reshape(h, shape=(0, -1)), g.reshape(g.max(x, axis=(1, 2)), shape=(-1, 1))), "y")
    graph = g.build()
    xs = [make_data((3, 5, 8), F32)]
    ref, got = run_both(graph, xs, opset=opset)
    assert_same(ref, got)
    ops = {n.op_type for n in export_onnx(graph, opset=opset).graph.node}
    assert ("Gelu" in ops) == (opset >= 20)


def test_integer_bitwise_ops_need_opset_18_and_bool_ones_do_not():
    ints = case_graph("bitwise_xor", {}, [(2, 3), (2, 3)], ["int32", "int32"])
    with pytest.raises(GraphError, match=r"node 'bitwise_xor_1' \(bitwise_xor\): ONNX has BitwiseXor from opset 18 on"):
        export_onnx(ints, opset=17)
    bools = case_graph("bitwise_xor", {}, [(2, 3), (2, 3)], ["bool", "bool"])
    assert_same(*run_both(bools, case_data([(2, 3), (2, 3)], ["bool", "bool"]), opset=17))
    # bitwise_not and the shifts need no opset-18 op
    for op, dts, kind in (("bitwise_not", ["int8"], "i"), ("rshift", ["int16", "int16"], ("i", "h"))):
        shapes = [(2, 3)] * len(dts)
        assert_same(*run_both(case_graph(op, {}, shapes, dts), case_data(shapes, dts, kind), opset=17))


def small_cnn():
    g = GraphBuilder("cnn")
    x = g.input((1, 8, 8), name="image")
    h = g.conv_block(x, out_channels=8)
    h = g.conv_block(h, out_channels=8, pool="max", dropout=0.1)
    h = g.residual_block(h, out_channels=8)
    y = g.linear(g.flatten(g.se_block(h, reduction=4)), out_features=10)
    g.output(y, "logits")
    g.output(g.argmax(y, axis=-1), "label")
    return g.build()


def test_dynamic_batch_and_checker():
    graph = small_cnn()
    cm = compile_graph(graph, seed=3)
    model = export_onnx(graph, cm.numpy_weights())
    onnx.checker.check_model(model, full_check=True)
    (inp,) = model.graph.input
    assert inp.name == "image" and [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 1, 8, 8]
    assert [o.name for o in model.graph.output] == ["logits", "label"]
    assert model.graph.output[1].type.tensor_type.elem_type == onnx.TensorProto.INT32
    for n in (1, 7):
        xs = [make_data((n, 1, 8, 8), F32)]
        assert_same(*run_both(graph, xs, model=model, weights=cm.numpy_weights()))


def test_fixed_batch_export():
    g = GraphBuilder()
    x = g.input((6,))
    g.output(g.reshape(x, shape=(3, 2, 2)), "y")  # only works at batch 2: a fixed batch
    graph = g.build()
    with pytest.raises(GraphError, match="another batch size.*dynamic_batch=False"):
        export_onnx(graph)
    model = export_onnx(graph, dynamic_batch=False, batch_size=2)
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == [3, 2, 2]
    assert_same(*run_both(graph, [make_data((2, 6), F32)], model=model))


def test_batch_dependent_sizes_stay_dynamic():
    # reshape over the batch, a variance over the batch axis, squeeze of all size-1 axes
    g = GraphBuilder()
    x = g.input((3, 1, 4))
    v = g.var(g.squeeze(x), axis=(0, 2))
    g.output(v, "v")
    g.output(g.reshape(x, shape=(-1,)), "flat")
    g.output(g.slice(x, axis=0, start=1), "rest")
    graph = g.build()
    model = export_onnx(graph)
    for n in (2, 5):
        assert_same(*run_both(graph, [make_data((n, 3, 1, 4), F32)], model=model))


def test_split_outputs_without_output_nodes_and_name_clash():
    g = GraphBuilder()
    x = g.input((5,), name="x")
    a = g.split(x, sizes=(2,), axis=1)  # chunks 2, 2, 1: a sink with three outputs
    g.add("relu", g.add("neg", x), id="x_relu")
    graph = g.build()
    model = export_onnx(graph)
    assert [o.name for o in model.graph.output] == [a, f"{a}:1", f"{a}:2", "x_relu"]
    assert_same(*run_both(graph, [make_data((3, 5), F32)], model=model))


def test_metadata_round_trip(tmp_path):
    graph = small_cnn()
    graph.meta["training_record_id"] = "run-42"
    path = tmp_path / "m.onnx"
    export_onnx(graph, path=path, class_labels=[str(i) for i in range(10)], metadata={"author": "me", "epochs": 3})
    meta = onnx_metadata(str(path))
    assert meta["graph_hash"] == graph.hash() and meta["graph_json"].hash() == graph.hash()
    assert meta["class_labels"] == [str(i) for i in range(10)]
    assert meta["training_record_id"] == "run-42" and meta["author"] == "me" and meta["epochs"] == "3"
    assert "experiment_run_id" not in meta and len(meta["structure_digest"]) == 32
    export_onnx(graph, path=path, metadata={"experiment_run_id": 7})  # the store's run id: a number to look up
    meta = onnx_metadata(str(path))
    assert meta["experiment_run_id"] == 7 and meta["training_record_id"] == "run-42"
    onnx.checker.check_model(str(path), full_check=True)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    model = export_onnx(small_cnn())

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_onnx(model, path)
    assert path.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["model.onnx"]  # no temp file left
    monkeypatch.undo()
    save_onnx(model, path)
    assert onnx.load(str(path)).graph.output[0].name == "logits"


def test_errors_name_the_problem():
    g = GraphBuilder()
    x = g.input((4,), name="y")
    g.output(g.relu(x), "y")
    with pytest.raises(GraphError, match="'y' is used by more than one"):
        export_onnx(g.build())
    g = GraphBuilder()
    g.linear(g.input((4,)), out_features=2, id="fc")
    with pytest.raises(GraphError, match="params.fc.weight"):
        export_onnx(g.build(), {})
    with pytest.raises(GraphError, match="opset 12"):
        export_onnx(g.build(), opset=12)
    g = GraphBuilder()
    g.output(g.split(g.input((2, 4)), sizes=(1,), axis=0), "y")
    with pytest.raises(GraphError, match="split along the batch.*dynamic_batch=False"):
        export_onnx(g.build())


def test_float16_input_into_float32_weights_is_promoted_like_tinygrad():
    import onnxruntime as ort
    from uop_engine import compile_graph
    from uop_engine.onnx_export import export_onnx_bytes
    g = GraphBuilder()
    g.layer_norm(g.linear(g.input((3,), dtype="float16"), out_features=4))
    m = compile_graph(g.build(), seed=0)
    x = np.random.default_rng(0).random((5, 3)).astype(np.float16)
    sess = ort.InferenceSession(export_onnx_bytes(g.build(), m.numpy_weights()), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, m(x).numpy(), rtol=1e-5, atol=1e-6)


def digits_cnn():
    g = GraphBuilder("digits_cnn")
    x = g.input((1, 8, 8), name="image")
    h = g.conv_block(x, out_channels=8)
    h = g.conv_block(h, out_channels=16, pool="max")
    g.output(g.linear(g.flatten(h), out_features=10), "logits")
    return g.build()


@functools.lru_cache(maxsize=None)  # shared with test_quantize within one session
def train_digits(epochs=3, seed=0):
    """The digits CNN trained briefly with the project's trainer; returns (graph, weights, X_test, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from uop_engine.train import train
    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    # 1344 training rows = 21 batches of 64: one batch shape, so one jitted step to compile
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=453, random_state=seed, stratify=d.target)
    graph = digits_cnn()
    res = train(graph, Xtr, ytr, {"epochs": epochs, "batch_size": 64, "lr": 3e-3, "seed": seed})
    return graph, res.weights(), Xte, yte


@pytest.fixture(scope="module")
def trained():
    return train_digits()


def test_trained_digits_cnn_same_classes(trained, tmp_path):
    graph, weights, X, y = trained
    model = export_onnx(graph, weights, tmp_path / "digits.onnx", class_labels=list(range(10)))
    ref, got = run_both(graph, [X], model=model, weights=weights)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5)  # float32: 1e-5 relative; atol for logits near 0
    assert (got[0].argmax(1) == ref[0].argmax(1)).all()
    assert (ref[0].argmax(1) == y).mean() > 0.8  # it did learn
