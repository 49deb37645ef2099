"""Graph IR: JSON round trip, content hash, fork, validation messages, merge, blocks."""
import json

import numpy as np
import pytest

from uop_engine import Graph, GraphBuilder, GraphError, analyze, compile_graph, merge, summarize


def small_cnn(name="cnn"):
    g = GraphBuilder(name)
    x = g.input((1, 8, 8))
    h = g.conv_block(x, out_channels=8)
    h = g.conv_block(h, out_channels=16, pool="max")
    g.linear(g.flatten(h), out_features=10)
    return g.build()


def test_json_round_trip_is_exact():
    g = small_cnn()
    text = g.to_json()
    g2 = Graph.from_json(text)
    assert g2.to_json() == text
    assert g2.hash() == g.hash()
    assert json.loads(text)["format"] == "tinyuop.graph" and json.loads(text)["version"] == 1


def test_hash_ignores_ids_order_and_explicit_defaults():
    g = small_cnn()
    renamed = Graph.from_dict(json.loads(g.to_json().replace("conv_block_1", "stem")))
    assert renamed.hash() == g.hash()
    shuffled = g.copy()
    shuffled.nodes.reverse()
    assert shuffled.hash() == g.hash()
    explicit = g.fork(conv_block_1={"kernel_size": 3, "norm": "batch"})
    assert explicit.hash() == g.hash()
    assert g.fork(conv_block_1={"out_channels": 4}).hash() != g.hash()


def test_fork_makes_a_variant_and_checks_names():
    g = small_cnn()
    v = g.fork({"linear_1.out_features": 3}, name="three")
    assert summarize(v).outputs == {"linear_1": (None, 3)} and v.name == "three"
    assert summarize(g).outputs == {"linear_1": (None, 10)}  # original untouched
    with pytest.raises(GraphError, match="no node with id 'nope'"):
        g.fork(nope={"x": 1})
    with pytest.raises(GraphError, match="node 'linear_1'.*unknown parameter 'out'"):
        g.fork(linear_1={"out": 1})


def test_summary_shapes_params_and_batch_axis():
    s = summarize(small_cnn())
    assert s.inputs == {"x": (None, 1, 8, 8)}
    # conv 1->8 (72) + bn(16) + conv 8->16 (1152) + bn(32) + linear 256->10 (2570)
    assert s.n_params == 72 + 16 + 1152 + 32 + 2570


def test_wrong_linear_in_features_names_node_and_param():
    g = small_cnn().fork(linear_1={"in_features": 100})
    with pytest.raises(GraphError) as e:
        analyze(g)
    msg = str(e.value)
    assert "node 'linear_1'" in msg and "parameter 'in_features'" in msg and "256" in msg
    assert e.value.node == "linear_1" and e.value.param == "in_features"


def test_error_inside_block_names_block_and_inner_node():
    g = GraphBuilder()
    g.conv_block(g.input((3, 2, 2)), out_channels=4, kernel_size=5, padding=0)
    with pytest.raises(GraphError, match=r"node 'conv_block_1/conv'.*kernel_size.*too small"):
        analyze(g.build())


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    ('{"nodes": 3}', "needs a 'nodes' list"),
    ('{"nodes": [{"id": 1}]}', "node #0 needs string 'id' and 'op'"),
    ('{"version": 99, "nodes": []}', "newer than this TinyUOp"),
    ('[1, 2]', "must be an object"),
    ('{"version": "1", "nodes": []}', r"'version' must be a whole number such as 1, got \"1\""),
    ('{"version": true, "nodes": []}', "'version' must be a whole number"),
    ('{"nodes": [], "meta": [1]}', "'meta' must be an object, got list"),
    ('{"nodes": [], "edges": []}', "the graph has unknown key 'edges'.*help: use only the keys format, version"),
    ('{"nodes": [{"id": "a", "op": "relu", "input": ["x"]}]}', "node 'a' has unknown key 'input'.*inputs"),
])
def test_bad_graph_json_is_explained(bad, message):
    with pytest.raises(GraphError, match=message):
        Graph.from_json(bad)


def test_structural_errors():
    g = Graph.from_dict({"nodes": [
        {"id": "x", "op": "input", "params": {"shape": [3]}},
        {"id": "a", "op": "add", "inputs": ["x"]}]})
    with pytest.raises(GraphError, match=r"node 'a' \(add\): has 1 inputs but Add takes 2"):
        g.check_structure()
    cyc = Graph.from_dict({"nodes": [{"id": "a", "op": "relu", "inputs": ["b"]}, {"id": "b", "op": "relu", "inputs": ["a"]}]})
    with pytest.raises(GraphError, match="cycle"):
        cyc.check_structure()
    dangling = Graph.from_dict({"nodes": [{"id": "a", "op": "relu", "inputs": ["zz"]}]})
    with pytest.raises(GraphError, match="input 'zz' refers to no node"):
        dangling.check_structure()
    unknown = Graph.from_dict({"nodes": [{"id": "a", "op": "convolution2d"}]})
    with pytest.raises(GraphError, match="node 'a'.*unknown op"):
        unknown.check_structure()


def test_broadcast_error_is_located():
    g = GraphBuilder()
    a, b = g.input((3,), name="a"), g.input((4,), name="b")
    g.add("add", a, b)
    with pytest.raises(GraphError, match=r"node 'add_1' \(add\): shapes .* cannot be broadcast"):
        analyze(g.build())


def test_merge_keeps_shared_prefix_and_renames_clashes():
    g = GraphBuilder()
    x = g.input((4,))
    base = g.build()
    a = base.copy(); a.nodes.append(__import__("uop_engine").Node("relu_1", "relu", {}, [x]))
    b = base.copy(); b.nodes.append(__import__("uop_engine").Node("relu_1", "sigmoid", {}, [x]))
    m, rename = merge(a, b)
    assert [n.op for n in m.nodes].count("input") == 1
    assert rename == {"relu_1": "relu_2"} and m.node("relu_2").op == "sigmoid"


def test_compile_is_seeded_and_reproducible():
    g = small_cnn()
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    a = compile_graph(g, seed=7)(x).numpy()
    b = compile_graph(g, seed=7)(x).numpy()
    c = compile_graph(g, seed=8)(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_tinygrad_finds_the_parameters():
    from tinygrad.nn.state import get_parameters, get_state_dict
    m = compile_graph(small_cnn())
    sd = get_state_dict(m)
    assert "params.linear_1.weight" in sd and "params.conv_block_1/norm.running_mean" in sd
    assert len(get_parameters(m)) == len(sd)
    assert sum(t.numel() for t in get_parameters(m) if t.is_param) == summarize(small_cnn()).n_params


def test_multi_input_graph_by_name():
    g = GraphBuilder()
    a, b = g.input((3,), name="a"), g.input((3,), name="b")
    g.output(g.mul(a, b), name="prod")
    m = compile_graph(g.build())
    x, y = np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)
    np.testing.assert_array_equal(m(b=y, a=x).numpy(), x * y)
    with pytest.raises(GraphError, match="missing graph input"):
        m(x)


def test_dtype_inference_matches_what_tinygrad_computes():
    import numpy as np
    from uop_engine.infer import summarize
    g = GraphBuilder()
    a, b = g.input((3,), name="a", dtype="int32"), g.input((3,), name="b", dtype="int32")
    g.div(a, b)
    gr = g.build()
    out = compile_graph(gr)(np.array([[1, 2, 3]], np.int32), np.array([[2, 2, 2]], np.int32)).numpy()
    assert summarize(gr).output_dtypes == {"div_1": "float32"} and out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.5, 1, 1.5]])
    g = GraphBuilder()
    g.linear(g.input((4,), dtype="float16"), out_features=2)
    gr = g.build()
    out = compile_graph(gr)(np.ones((2, 4), np.float16)).numpy()
    assert summarize(gr).output_dtypes == {"linear_1": "float32"} and out.dtype == np.float32


def test_saved_block_containing_an_output_node_expands(tmp_path):
    import numpy as np
    from uop_engine.blocklib import remove_block, save_block
    b = GraphBuilder()
    b.output(b.relu(b.input((4,))), name="out")
    save_block(b.build(), "relu_out", "ReLU with a named output", folder=tmp_path)
    try:
        g = GraphBuilder()
        g.add("user_relu_out", g.input((4,)))
        x = np.array([[-1, 2, -3, 4]], np.float32)
        np.testing.assert_allclose(compile_graph(g.build())(x).numpy(), np.maximum(x, 0))
    finally:
        remove_block("relu_out")


def test_merge_keeps_nodes_of_different_instances_apart_and_shares_one_instance():
    from uop_engine import Node
    g = GraphBuilder()
    x = g.input((4,))
    base = g.build()
    base.stamp([x], "in")
    a, b, c = base.copy(), base.copy(), base.copy()
    for graph, token in ((a, "k1"), (b, "k2"), (c, "k1")):
        graph.nodes.append(Node("linear_1", "linear", {"out_features": 3}, [x]))
        graph.stamp(["linear_1"], token)
    m, rename = merge(a, b)  # same id and content, different KNIME nodes: two layers
    assert rename == {"linear_1": "linear_2"} and m.instance_of("linear_2") == "k2"
    assert [n.op for n in m.nodes].count("input") == 1  # the shared input (one token) stays one node
    m, rename = merge(a, c)  # one KNIME node reached along two branches: one node
    assert rename == {} and len(m.nodes) == 2
    plain = base.without_instances()
    assert "instances" not in plain.meta and "instances" in base.meta and plain.hash() == base.hash()
    assert a.hash() == b.hash()  # tokens are not content


def test_unnamed_builder_inputs_get_unique_names():
    g = GraphBuilder()
    a, b, c = g.input((3,)), g.input((3,)), g.input((3,))
    g.add("add", g.add("add", a, b), c)
    gr = g.build()
    assert [n.params["name"] for n in gr.inputs()] == ["x", "x_2", "x_3"]
    assert summarize(gr).inputs == {"x": (None, 3), "x_2": (None, 3), "x_3": (None, 3)}
    ones = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(compile_graph(gr)(ones, 2 * ones, 3 * ones).numpy(), 6 * ones)


def test_two_inputs_with_one_name_are_refused():
    g = GraphBuilder()
    a, b = g.input((3,), name="x"), g.input((3,), name="x")
    g.add("add", a, b)
    with pytest.raises(GraphError) as e:
        analyze(g.build())
    assert e.value.param == "name" and e.value.node == "input_2"
    assert "Graph Inputs 'input_1' and 'input_2' are both named 'x'" in str(e.value)


def test_merge_finds_a_tokened_node_renamed_by_an_earlier_merge_one_to_one():
    from uop_engine import Node
    g = GraphBuilder()
    x = g.input((4,))
    base = g.build()
    base.stamp([x], "in")
    a, b = base.copy(), base.copy()
    for graph, token in ((a, "k1"), (b, "k2")):
        graph.nodes.append(Node("linear_1", "linear", {"out_features": 3}, [x]))
        graph.stamp(["linear_1"], token)
    ab, _ = merge(a, b)  # b's linear_1 is linear_2 here
    m, rename = merge(ab, b)
    assert rename == {"linear_1": "linear_2"} and len(m.nodes) == 3
    # one token on two equal nodes (what JSON to Graph stamps): each keeps its own partner
    j = base.copy()
    j.nodes += [Node("p", "linear", {"out_features": 3}, [x]), Node("q", "linear", {"out_features": 3}, [x])]
    j.stamp(["p", "q"], "json")
    m, rename = merge(j, j)
    assert rename == {} and m.ids() == j.ids()
    moved = j.copy()
    moved.nodes[1].id, moved.nodes[2].id = "p2", "q2"
    moved.meta["instances"] = {"input_1": "in", "p2": "json", "q2": "json"}
    m, rename = merge(j, moved)
    assert sorted(rename.values()) == ["p", "q"] and len(m.nodes) == 3
