"""Dtype inference tells the truth: for every atomic op and every input dtype the graph accepts,
the dtype shape inference promises (what configure shows, what ONNX export declares) is the
dtype tinygrad's lowering really returns. Inputs inference refuses must be refused clearly."""
import numpy as np
import pytest

from uop_engine import GraphBuilder, compile_graph
from uop_engine.compile import dtype_name
from uop_engine.errors import GraphError
from uop_engine.infer import analyze
from uop_engine.optable import DTYPES, get_op
from test_ops import CASES

ATOMIC = [c for c in CASES if c[2] is not None and not get_op(c[0]).is_block]


def _inputs(op, shapes, dtype):
    if op == "where":
        return ["bool", dtype, dtype]
    if op == "embedding":  # indices: the graph refuses floats for them (tested below)
        return [dtype]
    return [dtype] * len(shapes)


def infer(op, params, shapes, dtypes):
    """-> (graph, the output dtypes inference promises); GraphError if the graph refuses the inputs."""
    g = GraphBuilder(op)
    refs = [g.input(s[1:], name=f"x{i}", dtype=d) for i, (s, d) in enumerate(zip(shapes, dtypes))]
    g.add(op, *refs, **params)
    graph = g.build()
    an = analyze(graph, shapes[0][0])
    return graph, [an.type_of(r).dtype for r in an.outputs]


def run(graph, shapes, dtypes):
    xs = [np.ones(s, dtype=np.float32).astype(np.float32 if d == "bfloat16" else d) for s, d in zip(shapes, dtypes)]
    out = compile_graph(graph)(*xs)
    return [dtype_name(o.dtype) for o in (out if isinstance(out, tuple) else (out,))]


def infer_and_run(op, params, shapes, dtypes):
    graph, promised = infer(op, params, shapes, dtypes)
    return promised, run(graph, shapes, dtypes)


@pytest.mark.parametrize("case", ATOMIC, ids=lambda c: c[0])
def test_inferred_dtype_is_what_tinygrad_returns(case):
    op, params, shapes = case[:3]
    wrong, accepted = [], 0
    for d in DTYPES:
        dtypes = _inputs(op, shapes, d)
        try:
            graph, promised = infer(op, params, shapes, dtypes)
        except GraphError as e:  # refused before anything runs: must say which node and why
            assert op in str(e), str(e)
            continue
        accepted += 1
        got = run(graph, shapes, dtypes)
        if promised != got:
            wrong.append(f"{d}: inferred {promised}, tinygrad gives {got}")
    assert accepted, f"{op} refuses every dtype"
    assert not wrong, f"{op}: " + "; ".join(wrong)


@pytest.mark.parametrize("op,a,b,want", [
    ("add", "int8", "uint8", "int16"), ("mul", "float16", "bfloat16", "float32"), ("sub", "bool", "int8", "int8"),
    ("maximum", "uint8", "int16", "int16"), ("div", "int32", "float16", "float16"), ("div", "int8", "int8", "float32"),
    ("pow", "int32", "float16", "float16"), ("matmul", "int8", "uint8", "int16"), ("concat", "int32", "float16", "float16"),
])
def test_mixed_dtypes_promote_like_tinygrad(op, a, b, want):
    shapes = [(2, 3, 3), (2, 3, 3)]
    promised, got = infer_and_run(op, {}, shapes, [a, b])
    assert promised == got == [want]


def test_pad_value_must_fit_an_integer_or_bool_input():
    with pytest.raises(GraphError, match=r"parameter 'value'.*0.5 does not fit the int8 input"):
        infer("pad", {"pads": (1, 1), "value": 0.5}, [(2, 3)], ["int8"])
    with pytest.raises(GraphError, match="does not fit the bool input"):
        infer("pad", {"pads": (1, 1), "value": 2.0}, [(2, 3)], ["bool"])
    graph, promised = infer("pad", {"pads": (1, 1), "value": -3.0}, [(2, 3)], ["int8"])
    assert promised == ["int8"] and compile_graph(graph)(np.ones((2, 3), np.int8)).numpy()[:, 0].tolist() == [-3, -3]


def test_integer_sums_accumulate_in_int32_and_export_the_same():
    import onnxruntime as ort

    from uop_engine import export_onnx
    g = GraphBuilder("s")
    g.add("sum", g.input((300,), name="x", dtype="int8"), axis=(1,))
    graph = g.build()
    x = np.full((2, 300), 100, np.int8)   # 30000 does not fit in int8
    ours = compile_graph(graph)(x).numpy()
    assert ours.dtype == np.int32 and ours.tolist() == [30000, 30000]
    sess = ort.InferenceSession(export_onnx(graph, {}).SerializeToString())
    (theirs,) = sess.run(None, {"x": x})
    assert theirs.dtype == np.int32 and theirs.tolist() == [30000, 30000]
