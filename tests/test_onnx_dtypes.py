"""ONNX export across dtypes: ops whose ONNX op or onnxruntime kernel lacks a dtype (int16/bool
max and min, small-integer products, bool arithmetic) run in onnxruntime and give the engine's numbers."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from uop_engine import GraphBuilder, GraphError
from uop_engine.onnx_export import export_onnx
from test_onnx_export import assert_same, case_graph, run_both

R = np.random.default_rng(7)
INTS = ("int8", "uint8", "int16", "int32", "int64")


def ints(shape, dtype):
    if dtype == "bool":
        return R.random(shape) > 0.5
    return R.integers(0 if dtype == "uint8" else -4, 5, shape).astype(dtype)


# ---- dtypes ONNX or onnxruntime lack: int16/bool max and min, small-integer products, bool arithmetic
@pytest.mark.parametrize("opset", [17, 18, 21])
@pytest.mark.parametrize("op", ["max", "min", "prod", "sum"])
def test_reductions_export_for_every_integer_and_bool_dtype(op, opset):
    for dtype in INTS + ("bool",):
        for params in ({"axis": (1,)}, {"axis": (0, 2), "keepdim": True}, {}):
            x = ints((2, 3, 4), dtype)
            g = case_graph(op, params, [x.shape], [dtype])
            assert_same(*run_both(g, [x], opset=opset))  # exact for integers, dtypes as the engine's


def test_small_integer_products_wrap_around_like_the_engine():
    x = np.array([[[100], [3], [-7]]], np.int8)  # -2100 wraps to -52 in int8
    for dtype, data in (("int8", x), ("int16", np.array([[[300], [300], [7]]], np.int16)),
                        ("uint8", np.array([[[200], [3]]], np.uint8)),
                        ("int32", np.array([[[70000], [70000]]], np.int32))):  # onnxruntime clamps int32 products
        g = case_graph("prod", {"axis": (1,)}, [data.shape], [dtype])
        ref, got = run_both(g, [data])
        assert ref[0].dtype == np.dtype(dtype)
        assert ref[0].ravel()[0] == np.prod(data.astype(np.int64)).astype(dtype)
        assert_same(ref, got)


@pytest.mark.parametrize("op", ["maximum", "minimum", "add", "sub", "mul"])
def test_binary_ops_export_for_int16_and_bool(op):
    for dtype in INTS + ("bool",):
        a, b = ints((2, 3, 4), dtype), ints((2, 1, 4), dtype)
        assert_same(*run_both(case_graph(op, {}, [a.shape, b.shape], [dtype, dtype]), [a, b]))


def test_neg_and_abs_export_for_uint8_and_bool():
    for op in ("neg", "abs"):
        for dtype in INTS + ("bool",):
            x = ints((2, 5), dtype)
            x.ravel()[:2] = (True, False) if dtype == "bool" else (0, 4)
            assert_same(*run_both(case_graph(op, {}, [x.shape], [dtype]), [x]))


def test_checker_failure_names_the_node_op_and_dtype():
    """Should an op's export emit a type ONNX refuses, the help names the op and dtype, not weights."""
    from onnx import TensorProto, helper

    from uop_engine.infer import analyze
    from uop_engine.onnx_export import _check
    g = GraphBuilder("p")
    g.add("prod", g.input((3,), name="x", dtype="int8"))
    an = analyze(g.build())
    nid = an.outputs[0]
    bad = helper.make_graph([helper.make_node("ReduceProd", ["x"], ["y"], name=f"{nid}#1", keepdims=0)], "g",
                            [helper.make_tensor_value_info("x", TensorProto.INT8, [2, 3])],
                            [helper.make_tensor_value_info("y", TensorProto.INT8, [])])
    model = helper.make_model(bad, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(GraphError, match=rf"node '{nid}' \(prod\): the exported ONNX model fails onnx.checker.*"
                                         r"help: ONNX ReduceProd, which prod exports to, does not take int8") as e:
        _check(model, an)
    assert "weights are float32" not in str(e.value)
    assert onnx.__version__  # the checker ran for real (no stub)
    sess = ort.InferenceSession(export_onnx(g.build()).SerializeToString())  # our own export of it runs
    assert sess.run(None, {"x": np.array([[2, 3, -4]], np.int8)})[0].ravel().tolist() == [-24]
