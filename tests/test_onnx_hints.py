"""Export hints that are not what export_onnx writes (hand-edited, or written by another tool) are
ignored, never trusted or crashed on: the nodes they sit on import as the plain ONNX ops they are."""
import numpy as np
import pytest

from uop_engine import GraphError, compile_graph
from uop_engine.onnx_digest import hint_weights, parse_hint
from uop_engine.onnx_export import HINT, export_onnx
from uop_engine.onnx_import import import_onnx
from test_onnx_export import F32, make_data
from test_onnx_import import _edited, _ort, _tamper_graph, outputs

HEAD = {"id": "linear_2", "op": "linear", "params": {"out_features": 8}, "inputs": ["a"], "outputs": ["linear_2"],
        "weights": {"weight": ["linear_2.weight", None, [8, 8]], "bias": ["linear_2.bias", None, [8]]}, "sig": "ab"}


def _head(**change):
    import json
    return HINT + json.dumps({k: v for k, v in dict(HEAD, **change).items() if v is not ...})


BAD = {  # doc_string -> why it is not a hint
    "list": HINT + "[]",
    "string": HINT + '"linear_2"',
    "null": HINT + "null",
    "not json": HINT + "{'id': 'linear_2'",
    "deep": HINT + "[" * 100000 + "]" * 100000,
    "id not a string": HINT + '{"id": 5}',
    "op not a string": _head(op=["linear"]),
    "params a list": _head(params=[]),
    "params missing": _head(params=...),
    "inputs not strings": _head(inputs=[1]),
    "outputs missing": _head(outputs=...),
    "weights a list": _head(weights=[]),
    "weight too short": _head(weights={"weight": ["linear_2.weight"]}),
    "weight shape of strings": _head(weights={"weight": ["linear_2.weight", None, ["8", "8"]]}),
    "permutation not ints": _head(weights={"weight": ["linear_2.weight", "T", [8, 8]]}),
    "sig a number": _head(sig=5),
}


def test_parse_hint_takes_only_what_the_exporter_writes():
    assert parse_hint(_head()) == HEAD
    assert parse_hint(HINT + '{"id": "relu_1"}') == {"id": "relu_1"}  # the later nodes of an op
    assert parse_hint(_head(sig=...)) == {k: v for k, v in HEAD.items() if k != "sig"}  # older files: no digest
    assert parse_hint("") is None and parse_hint("made by hand") is None
    for why, doc in BAD.items():
        assert parse_hint(doc) is None, why


def _set_doc(model, name, doc):
    next(n for n in list(model.graph.node) + list(model.graph.input) if n.name == name).doc_string = doc


@pytest.mark.parametrize("why", sorted(BAD))
def test_a_bad_hint_is_ignored_and_the_node_imports_as_its_onnx_op(why):
    graph = _tamper_graph()
    weights = compile_graph(graph, seed=3).numpy_weights()
    model = export_onnx(graph, weights)
    edited = _edited(model, lambda m: (_set_doc(m, "linear_2#1", BAD[why]), _set_doc(m, "x", BAD[why])))
    assert hint_weights(edited) == hint_weights(model) - {"linear_2.weight", "linear_2.bias"}
    with pytest.warns(UserWarning, match="changed after export"):  # the hints are covered by the file's digest
        back, w = import_onnx(edited)
    assert [n.op for n in back.nodes].count("linear") == 3  # the Gemm came back as a linear op all the same
    x = make_data((5, 6), F32, rng=np.random.default_rng(0))
    np.testing.assert_allclose(outputs(back, w, [x])[0], _ort(model, x), rtol=1e-5, atol=1e-6)


def test_a_hint_whose_weight_layout_does_not_fit_is_ignored():
    import json
    graph = _tamper_graph()
    weights = compile_graph(graph, seed=3).numpy_weights()
    model = export_onnx(graph, weights)
    node = next(n for n in model.graph.node if n.name == "linear_2#1")
    h = json.loads(node.doc_string[len(HINT):])
    for layout in ([None, [5, 5]], [[1, 0, 2], [8, 8]]):  # wrong size; a permutation of other rank
        h["weights"]["weight"][1:] = layout
        edited = _edited(model, lambda m: _set_doc(m, "linear_2#1", HINT + json.dumps(h)))
        with pytest.warns(UserWarning, match=r"ONNX nodes of 1 op\(s\) \(linear_2\) were changed"):
            back, w = import_onnx(edited)
        x = make_data((5, 6), F32, rng=np.random.default_rng(0))
        np.testing.assert_allclose(outputs(back, w, [x])[0], _ort(model, x), rtol=1e-5, atol=1e-6)


def test_an_op_that_needs_its_hint_fails_with_the_import_error_not_a_crash():
    from uop_engine import GraphBuilder
    g = GraphBuilder("g")
    g.output(g.rms_norm(g.input((4,), name="x")), "y")
    graph = g.build()
    model = export_onnx(graph, compile_graph(graph, seed=1).numpy_weights())
    head = next(n for n in model.graph.node if '"op"' in n.doc_string)
    edited = _edited(model, lambda m: setattr(next(n for n in m.graph.node if n.name == head.name), "doc_string",
                                              HINT + "[]"))
    with pytest.raises(GraphError, match="cannot import the ONNX model"):
        import_onnx(edited)
