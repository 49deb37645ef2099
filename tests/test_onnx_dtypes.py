"""ONNX export across dtypes: the ops whose ONNX or onnxruntime kernels lack a dtype (float64
trigonometry, int16/bool max and min, small-integer products, bool arithmetic) run in
onnxruntime and give the engine's numbers; float remainders and floor division are exact in
both and equal PyTorch's (and numpy's) for small and huge quotients and negative operands."""
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from uop_engine import GraphBuilder, GraphError, compile_graph
from uop_engine.onnx_export import export_onnx
from test_onnx_export import assert_same, case_graph, run_both

R = np.random.default_rng(7)
INTS = ("int8", "uint8", "int16", "int32", "int64")
TRIG = {"tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
        "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "erf": np.vectorize(math.erf)}


def ints(shape, dtype):
    if dtype == "bool":
        return R.random(shape) > 0.5
    return R.integers(0 if dtype == "uint8" else -4, 5, shape).astype(dtype)


def trig_data(op, dtype, edges=()):
    """Random values inside each op's domain, then `edges`."""
    lo, hi = {"asin": (-1, 1), "acos": (-1, 1), "atanh": (-0.95, 0.95), "acosh": (1, 40)}.get(op, (-4, 4))
    x = R.uniform(lo, hi, (2, 40))
    x[0, :len(edges)] = edges
    with np.errstate(over="ignore"):  # 1e4 is inf in float16, which these ops take too
        return x.astype(dtype)


# where a careless formula loses precision: near 0 and +-1, huge and tiny arguments
EDGES = {"asin": [1, -1, 0, 0.5, -0.5, 1 - 1e-9, -1 + 1e-9, 0.4999], "acos": [1, -1, 0, 0.5, -0.5, 1 - 1e-9, -0.9999],
         "atan": [1e4, -1e4, 1e-4, 1.0, -1.0, 7e3], "erf": [1e-5, -6.0, 6.0, 0.0, 1e-4],
         "asinh": [-30.0, 1e-9, -1e-5, 0.0], "sinh": [1e-9, -1e-5, 0.3, -0.99, 1.01, 0.0],
         "atanh": [1e-9, -1e-5, 0.999, -0.5, 0.0], "acosh": [1.0, 1.5, 1 + 1e-5]}
HUGE = {"asinh": [3e20, -1e200, 1e-300], "acosh": [1 + 1e-12, 1e20, 1e200], "atan": [1e300, -np.inf, 1e-300],
        "erf": [1e-300, -1e-200], "atanh": [1 - 1e-12, -1e-300], "sinh": [-1e-300, 700.0], "cosh": [-700.0, 1e-8],
        "tan": [1e-300, 1.5], "asin": [1e-300], "acos": [1e-300]}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("op", sorted(TRIG))
def test_trig_ops_run_in_onnxruntime_for_every_float_dtype(op, dtype):
    """onnxruntime has no double kernel for Tan..Erf: float64 goes through compositions of ops it has."""
    x = trig_data(op, dtype, EDGES.get(op, ()))
    if dtype == "float16" and op in ("sinh", "cosh"):
        x = x.clip(-3, 3)  # sinh(4) is 27.3 and float16's rounding there is 0.016: keep the tolerance meaningful
    g = case_graph(op, {}, [x.shape], [dtype])
    (ref,), (got,) = run_both(g, [x])
    assert got.dtype == ref.dtype == np.dtype(dtype)
    tol = {"float16": 4e-3, "float32": 1e-5, "float64": 1e-5}[dtype]
    np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol)


@pytest.mark.parametrize("op", sorted(TRIG))
def test_float64_trig_export_keeps_double_precision(op):
    """Against numpy in double precision, huge and tiny arguments included (erf: float32 inside)."""
    x = trig_data(op, "float64", EDGES.get(op, []) + HUGE.get(op, []))
    model = export_onnx(case_graph(op, {}, [x.shape], ["float64"]))
    (got,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x0": x})
    with np.errstate(over="ignore"):
        want = TRIG[op](x)
    np.testing.assert_allclose(got, want, rtol=2e-7 if op == "erf" else 1e-12, atol=1e-300)


def test_engine_atan_of_large_and_asinh_of_negative_values():
    """Tensor.atan gave 0 once x*x overflowed, Tensor.asinh lost digits for negative x (-30: 1e-4)."""
    for dtype, big in (("float32", 1e20), ("float64", 1e300)):
        x = np.array([[big, -big, np.inf, -np.inf, 3.0, -0.5, 1e-20]], dtype)
        out = compile_graph(case_graph("atan", {}, [x.shape], [dtype]))(x).numpy()
        np.testing.assert_allclose(out, np.arctan(x), rtol=1e-6, atol=2e-7)  # tinygrad's asin: |error| < 2e-7
    x = np.array([[-30.0, -1e3, -1e5, 2.5, -0.25, 0.0]], np.float32)
    out = compile_graph(case_graph("asinh", {}, [x.shape], ["float32"]))(x).numpy()
    np.testing.assert_allclose(out, np.arcsinh(x), rtol=1e-6)


# ---- float remainders and floor division against PyTorch ---------------------------------------
def wide(n, lo, hi, dtype):
    """Random magnitudes 2**lo .. 2**hi, both signs."""
    v = R.uniform(1, 2, n) * 2.0 ** R.uniform(lo, hi, n) * R.choice([-1, 1], n)
    return v.astype(dtype)


SPECIAL_A = [1e10, -1e10, 7.5, -7.5, 7.5, -7.5, -0.0, 6.0, -6.0, 5.0, -5.0, 0.0, 3.0, np.inf, np.nan, 5.0, 1e-30]
SPECIAL_B = [3.0, 3.0, 2.0, 2.0, -2.0, -2.0, 2.0, 3.0, 3.0, np.inf, np.inf, 3.0, -np.inf, 3.0, 2.0, 0.0, 3e-31]
TORCH = {"mod": torch.remainder, "fmod": torch.fmod, "floor_divide": torch.floor_divide}


def mod_pair(dtype, lo, hi, n=400):
    a, b = wide(n, lo, hi, dtype), wide(n, lo, hi, dtype)
    k = len(SPECIAL_A)
    with np.errstate(over="ignore"):  # 1e10 is inf in float16
        a[:k], b[:k] = np.array(SPECIAL_A, dtype), np.array(SPECIAL_B, dtype)
    return a[None], b[None]


def same_bits(got, want):
    """Equal values, NaN where NaN, and the same sign of zero."""
    assert got.dtype == want.dtype
    bad = ~((got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want)))
    assert not bad.any(), f"{bad.sum()} differ, e.g. {list(zip(got[bad][:4], want[bad][:4]))}"


@pytest.mark.parametrize("op", ["mod", "fmod", "floor_divide"])
@pytest.mark.parametrize("dtype,lo,hi", [("float32", -60, 60), ("float16", -14, 15)])
def test_float_mod_fmod_floor_divide_equal_torch_in_engine_and_onnx(op, dtype, lo, hi):
    # 2**-60 .. 2**60 keeps every quotient inside float32 (PyTorch's vectorised kernel gives NaN
    # where a / b overflows; the exact answer there is checked against numpy below)
    a, b = mod_pair(dtype, lo, hi)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if dtype == "float16" and op == "floor_divide":
        # float32, rounded once: PyTorch's own float16 kernels disagree (19.66 // 0.0087, which is
        # 2259, gives 2260 for one element and 2258 in a vectorised batch)
        want = TORCH[op](ta.float(), tb.float()).half().numpy()
    else:
        want = TORCH[op](ta, tb).numpy()
    ref, got = run_both(case_graph(op, {}, [a.shape, b.shape], [dtype, dtype]), [a, b])
    same_bits(ref[0], want)
    if op == "floor_divide":  # ONNX's -0.0 for a zero quotient of negative sign is +0.0 here
        got[0][got[0] == 0] = want[got[0] == 0]
    same_bits(got[0], want)


def test_float32_remainders_are_exact_across_the_whole_range():
    """|a / b| up to 2**277: both sides equal C's fmod (numpy) bit for bit; 1e10 mod 3 is 1."""
    a, b = mod_pair("float32", -149, 127, n=3000)
    for op, f in (("mod", np.mod), ("fmod", np.fmod)):
        ref, got = run_both(case_graph(op, {}, [a.shape, b.shape], ["float32"] * 2), [a, b])
        with np.errstate(invalid="ignore", divide="ignore"):
            want = f(a, b)
        if op == "mod":  # numpy's zero remainder takes b's sign; PyTorch's (and ours) keeps fmod's, a's
            want[want == 0] = np.copysign(0.0, a)[want == 0]
        same_bits(ref[0], want)
        same_bits(got[0], want)
        assert ref[0][0, 0] == 1.0 and ref[0][0, 1] == (2.0 if op == "mod" else -1.0)


def test_float64_remainders_small_quotients():
    """float64 takes one reduction step in the engine: |a / b| up to 2**12 (ONNX is exact for all)."""
    a, b = wide(300, -6, 6, np.float64)[None], wide(300, -6, 6, np.float64)[None]
    for op in ("mod", "fmod", "floor_divide"):
        want = TORCH[op](torch.from_numpy(a), torch.from_numpy(b)).numpy()
        ref, got = run_both(case_graph(op, {}, [a.shape, b.shape], ["float64"] * 2), [a, b])
        np.testing.assert_allclose(ref[0], want, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-300)


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
