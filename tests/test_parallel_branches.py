"""Graphs with parallel branches built through the KNIME node classes: separate nodes stay separate
layers (instance keys), an upstream node reached along two branches stays one node, Graph Inputs
with one name are refused, and Select Output makes every output of Split usable."""
import json

import numpy as np
import pytest

import knime.extension as knext
from knime_harness import InvalidSettingsError, configure_node, load_extension, run_node
from uop_engine import GraphBuilder, compile_graph, summarize
from uop_engine.graph import INSTANCES

load_extension()
from nodes.graph_nodes import GraphInputNode, GraphToJsonNode, JsonToGraphNode, SelectOutputNode  # noqa: E402
from nodes.op_nodes import OP_NODE_FACTORIES as OPS  # noqa: E402


def chain(node, params, *inputs):
    """Configure then execute like KNIME (run_node also checks configure and execute specs agree)."""
    spec = configure_node(node, params, [i.spec for i in inputs]).specs[0]
    obj = run_node(node, params, list(inputs)).outputs[0]
    assert spec.data["hash"] == obj.spec.data["hash"] and spec.data["n_params"] == obj.spec.data["n_params"]
    return spec, obj


def test_qkv_linears_into_sdpa_are_three_layers_like_the_python_graph():
    _, x = chain(GraphInputNode, {"shape": "4,8"})
    _, q = chain(OPS["linear"], {"out_features": 8}, x)
    _, k = chain(OPS["linear"], {"out_features": 8}, x)
    _, v = chain(OPS["linear"], {"out_features": 8}, x)
    spec, att = chain(OPS["scaled_dot_product_attention"], {}, q, k, v)
    assert spec.data["n_params"] == 3 * (8 * 8 + 8) == 216
    g = GraphBuilder("graph")
    xi = g.input((4, 8))
    g.scaled_dot_product_attention(*(g.linear(xi, out_features=8) for _ in range(3)))
    py = g.build()
    assert summarize(py).n_params == 216
    assert att.graph.hash() == py.hash() == spec.data["hash"]
    assert att.graph.ids() == py.ids()
    assert att.graph.node("scaled_dot_product_attention_1").inputs == ["linear_1", "linear_2", "linear_3"]
    xs = np.random.default_rng(0).standard_normal((2, 4, 8)).astype(np.float32)
    np.testing.assert_allclose(compile_graph(att.graph, seed=3)(xs).numpy(), compile_graph(py, seed=3)(xs).numpy(),
                               rtol=1e-6)


def test_two_linear_branches_joined_by_add_are_two_layers():
    _, x = chain(GraphInputNode, {"shape": "6"})
    _, a = chain(OPS["linear"], {"out_features": 4}, x)
    _, b = chain(OPS["linear"], {"out_features": 4}, x)
    spec, s = chain(OPS["add"], {}, a, b)
    assert s.graph.node("add_1").inputs == ["linear_1", "linear_2"]
    assert spec.data["n_params"] == 2 * (6 * 4 + 4)
    g = GraphBuilder("graph")
    xi = g.input((6,))
    g.add("add", g.linear(xi, out_features=4), g.linear(xi, out_features=4))
    assert s.graph.hash() == g.build().hash() == spec.data["hash"]


def test_diamond_shares_its_upstream_node_and_keeps_parallel_layers_apart():
    _, x = chain(GraphInputNode, {"shape": "8"})
    _, trunk = chain(OPS["linear"], {"out_features": 8}, x)
    _, b1 = chain(OPS["linear"], {"out_features": 4}, trunk)
    _, b2 = chain(OPS["linear"], {"out_features": 4}, trunk)
    _, r = chain(OPS["relu"], {}, b1)
    _, sg = chain(OPS["sigmoid"], {}, b2)
    spec, out = chain(OPS["add"], {}, r, sg)
    assert [n.op for n in out.graph.nodes].count("input") == 1
    assert spec.data["n_params"] == 72 + 2 * 36
    g = GraphBuilder("graph")
    t = g.linear(g.input((8,)), out_features=8)
    g.add("add", g.relu(g.linear(t, out_features=4)), g.sigmoid(g.linear(t, out_features=4)))
    py = g.build()
    assert out.graph.hash() == py.hash() and out.graph.ids() == py.ids()


def test_a_graph_input_reached_again_after_a_merge_renamed_it_stays_one_input():
    # y is input_2 after add(x, y); mul(add, y) brings y again as input_1 with y's key
    _, x = chain(GraphInputNode, {"shape": "6"})
    _, y = chain(GraphInputNode, {"shape": "6", "input_name": "y"})
    _, s = chain(OPS["add"], {}, x, y)
    spec, m = chain(OPS["mul"], {}, s, y)
    assert m.graph.node("mul_1").inputs == ["add_1", "input_2"]
    assert spec.data["inputs"] == {"x": [None, 6], "y": [None, 6]}
    g = GraphBuilder("graph")
    xi, yi = g.input((6,), name="x"), g.input((6,), name="y")
    g.mul(g.add("add", xi, yi), yi)
    py = g.build()
    assert m.graph.hash() == py.hash() == spec.data["hash"] and m.graph.ids() == py.ids()
    xs, ys = (np.random.default_rng(i).standard_normal((2, 6)).astype(np.float32) for i in (0, 1))
    np.testing.assert_allclose(compile_graph(m.graph)(x=xs, y=ys).numpy(), (xs + ys) * ys, rtol=1e-6)


def test_a_layer_reached_again_after_a_merge_renamed_it_stays_one_layer():
    # B is linear_2 after add(A, B); mul(s, B) brings B again as linear_1 with B's key
    _, x = chain(GraphInputNode, {"shape": "6"})
    _, a = chain(OPS["linear"], {"out_features": 6}, x)
    _, b = chain(OPS["linear"], {"out_features": 6}, x)
    _, s = chain(OPS["add"], {}, a, b)
    spec, m = chain(OPS["mul"], {}, s, b)
    assert spec.data["n_params"] == 2 * (36 + 6) == 84
    assert m.graph.node("mul_1").inputs == ["add_1", "linear_2"]
    g = GraphBuilder("graph")
    xi = g.input((6,))
    la, lb = g.linear(xi, out_features=6), g.linear(xi, out_features=6)
    g.mul(g.add("add", la, lb), lb)
    py = g.build()
    assert summarize(py).n_params == 84
    assert m.graph.hash() == py.hash() == spec.data["hash"]


def test_one_node_feeding_both_ports_is_one_layer_with_a_warning():
    _, x = chain(GraphInputNode, {"shape": "6"})
    _, h = chain(OPS["linear"], {"out_features": 4}, x)
    res = configure_node(OPS["add"], {}, [h.spec, h.spec])
    assert res.specs[0].data["n_params"] == 28
    assert any("same node 'linear_1'" in w and "Instance key" in w for w in res.warnings), res.warnings
    plain = configure_node(OPS["mul"], {}, [x.spec, x.spec])  # x*x of an input: nothing to warn about
    assert plain.warnings == []


def test_a_copy_pasted_weighted_chain_feeding_both_ports_warns_naming_the_layer():
    # copy-pasting Linear -> ReLU keeps both keys, so the copies are one chain and Add gets relu_1 twice
    _, x = chain(GraphInputNode, {"shape": "6"})
    first = chain(OPS["relu"], {"instance_key": "r"}, chain(OPS["linear"], {"out_features": 6, "instance_key": "l"}, x)[1])[1]
    pasted = chain(OPS["relu"], {"instance_key": "r"}, chain(OPS["linear"], {"out_features": 6, "instance_key": "l"}, x)[1])[1]
    res = configure_node(OPS["add"], {}, [first.spec, pasted.spec])
    assert res.specs[0].data["n_params"] == 42
    assert len(res.warnings) == 1, res.warnings
    w = res.warnings[0]
    assert "ports 'a' and 'b' receive the same node 'relu_1', which depends on the layer 'linear_1'" in w, w
    assert "Instance key" in w
    # a weightless chain on both ports (relu(x) * relu(x)) is plain arithmetic: silent
    _, r = chain(OPS["relu"], {}, x)
    assert configure_node(OPS["mul"], {}, [r.spec, r.spec]).warnings == []


def test_equal_instance_keys_share_a_layer_and_different_keys_do_not():
    _, x = chain(GraphInputNode, {"shape": "6"})
    _, a = chain(OPS["linear"], {"out_features": 4, "instance_key": "copied"}, x)
    _, b = chain(OPS["linear"], {"out_features": 4, "instance_key": "copied"}, x)
    spec, _ = chain(OPS["add"], {}, a, b)
    assert spec.data["n_params"] == 28  # what a copy-pasted node gives: one shared layer
    _, b2 = chain(OPS["linear"], {"out_features": 4, "instance_key": "copy 2"}, x)
    spec, _ = chain(OPS["add"], {}, a, b2)
    assert spec.data["n_params"] == 56


def test_instance_keys_stay_out_of_graph_json_and_saved_blocks(tmp_path):
    from nodes.graph_nodes import SaveBlockNode
    from uop_engine.blocklib import remove_block
    _, x = chain(GraphInputNode, {"shape": "6"})
    _, h = chain(OPS["linear"], {"out_features": 4}, x)
    assert set(h.graph.meta[INSTANCES]) == {"input_1", "linear_1"}
    text = run_node(GraphToJsonNode, {}, [h]).outputs[0].to_pandas().iloc[0]["graph_json"]
    assert INSTANCES not in json.loads(text)["meta"]
    _, back = chain(JsonToGraphNode, {"graph_json": text})
    assert back.graph.hash() == h.graph.hash()
    try:
        run_node(SaveBlockNode, {"block_name": "keyless", "library": str(tmp_path)}, [h])
        doc = json.loads((tmp_path / "keyless.block.json").read_text())
        assert INSTANCES not in doc["graph"]["meta"]
    finally:
        remove_block("keyless")


def test_two_json_to_graph_nodes_with_the_same_json_are_two_networks():
    _, a = chain(JsonToGraphNode, {})
    _, b = chain(JsonToGraphNode, {})
    with pytest.raises(knext.InvalidParametersError, match=r"'input_1' and 'input_2' are both named 'x'"):
        configure_node(OPS["add"], {}, [a.spec, b.spec])


def test_two_graph_inputs_with_one_name_are_refused_naming_both_nodes():
    _, a = chain(GraphInputNode, {"shape": "6"})
    _, b = chain(GraphInputNode, {"shape": "6"})
    with pytest.raises(knext.InvalidParametersError) as e:
        configure_node(OPS["add"], {}, [a.spec, b.spec])
    msg = str(e.value)
    assert "'input_1' and 'input_2'" in msg and "parameter 'name'" in msg and "'x'" in msg, msg
    _, c = chain(GraphInputNode, {"shape": "6", "input_name": "y"})
    spec, _ = chain(OPS["add"], {}, a, c)
    assert spec.data["inputs"] == {"x": [None, 6], "y": [None, 6]}


def test_select_output_gives_every_part_of_a_split():
    _, x = chain(GraphInputNode, {"shape": "6"})
    spec, parts = chain(OPS["split"], {"sizes": "2", "axis": 1}, x)
    assert spec.data["head_shape"] == [None, 2]
    s1, second = chain(SelectOutputNode, {"output_index": 1}, parts)
    s2, third = chain(SelectOutputNode, {"output_index": 2}, parts)
    assert second.head == "split_1:1" and third.head == "split_1:2" and s1.data["head_shape"] == [None, 2]
    _, r = chain(OPS["relu"], {}, second)
    _, sg = chain(OPS["sigmoid"], {}, third)
    spec, out = chain(OPS["add"], {}, r, sg)
    assert [n.op for n in out.graph.nodes].count("split") == 1  # both branches share the split
    g = GraphBuilder("graph")
    sp = g.split(g.input((6,)), sizes=[2], axis=1)
    g.add("add", g.relu(f"{sp}:1"), g.sigmoid(f"{sp}:2"))
    assert out.graph.hash() == g.build().hash() == spec.data["hash"]
    xs = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    ref = np.maximum(xs[:, 2:4], 0) + 1 / (1 + np.exp(-xs[:, 4:6]))
    np.testing.assert_allclose(compile_graph(out.graph)(xs).numpy(), ref, rtol=1e-5, atol=1e-6)
    _, first = chain(SelectOutputNode, {"output_index": 0}, third)  # re-select from a selected head
    assert first.head == "split_1"


def test_select_output_out_of_range_names_the_parameter_and_the_count():
    _, x = chain(GraphInputNode, {"shape": "6"})
    _, parts = chain(OPS["split"], {"sizes": "3", "axis": 1}, x)
    with pytest.raises(knext.InvalidParametersError) as e:
        configure_node(SelectOutputNode, {"output_index": 2}, [parts.spec])
    assert "parameter 'output_index'" in str(e.value) and "has 2 outputs" in str(e.value) and "0 to 1" in str(e.value)
    with pytest.raises((knext.InvalidParametersError, InvalidSettingsError)):
        configure_node(SelectOutputNode, {"output_index": -1}, [parts.spec])


def test_split_node_description_points_to_select_output():
    from knime_harness import node_description
    text = node_description(OPS["split"])["full_description"] + node_description(OPS["split"])["short_description"]
    assert "Select Output" in text
    assert "Select Output" not in node_description(OPS["relu"])["full_description"]
