"""Python specs generated from the op table: classes, validation, JSON round trips, fork,
composition, and equality with GraphBuilder graphs (same ids, JSON and hash, same outputs)."""
import inspect
import json

import numpy as np
import pytest

from uop_engine import Graph, GraphBuilder, compile_graph, list_ops, specs
from uop_engine.specs import Model, Parallel, Residual, Sequential, SpecError


def cnn_spec():
    return Sequential([specs.ConvBlock(out_channels=8), specs.ConvBlock(out_channels=16, pool="max"),
                       specs.Flatten(), specs.Linear(out_features=10)], name="cnn")


def cnn_builder():
    g = GraphBuilder("cnn")
    x = g.input((1, 8, 8))
    h = g.conv_block(x, out_channels=8)
    h = g.conv_block(h, out_channels=16, pool="max")
    g.linear(g.flatten(h), out_features=10)
    return g.build()


def test_every_op_has_a_generated_spec_class_with_its_fields():
    names = specs.class_names()
    methods = {n for n in dir(specs.OpSpec) if not n.startswith("__")}
    for op in list_ops():
        cls = specs.spec_class(op.name)
        assert names[cls.spec_name] == op.name and getattr(specs, cls.spec_name) is cls
        assert list(inspect.signature(cls).parameters) == [p.name for p in op.params]
        assert not methods & {p.name for p in op.params}, f"{op.name}: a field shadows a spec method"
        inst = cls()
        assert inst.params == {p.name: p.default for p in op.params} and inst.to_dict()["op"] == op.name
    assert specs.ReLU is specs.Relu and specs.Conv2D is specs.Conv2d  # label spellings are aliases
    assert "ConvBlock" in dir(specs)
    with pytest.raises(AttributeError, match="ConvBlock"):
        specs.ConvBlok


def test_fields_are_validated_by_the_op_table_params_and_errors_name_spec_and_field():
    with pytest.raises(SpecError, match=r"Conv2d\.out_channels: 0 is below the minimum 1"):
        specs.Conv2d(out_channels=0)
    with pytest.raises(SpecError, match=r"ConvBlock\.norm: 'layer' is not one of"):
        specs.ConvBlock(norm="layer")
    with pytest.raises(SpecError, match=r"Conv2d\.out_chanels: is not a field.*did you mean out_channels"):
        specs.Conv2d(out_chanels=3)
    with pytest.raises(SpecError, match=r"Linear\.out_features: 'ten' is not a valid int"):
        specs.Linear(out_features="ten")
    with pytest.raises(SpecError, match=r"ResidualBlock\.kernel_size: must be odd"):
        specs.ResidualBlock(kernel_size=2)
    with pytest.raises(SpecError, match=r"Sequential layer 1 > Sequential layer 0 > Add: takes 2 input"):
        Sequential([specs.Relu(), Sequential([specs.Add()])]).to_graph((4,))
    with pytest.raises(AttributeError, match="immutable"):
        specs.Linear().out_features = 3
    c = specs.Conv2d(16, 5)  # positional in the op table's parameter order
    assert c.out_channels == 16 and c.kernel_size == (5,) and c.given == {"out_channels": 16, "kernel_size": 5}


def test_sequential_graph_is_identical_to_graph_builder_json_ids_and_hash():
    g, ref = cnn_spec().to_graph(input_shape=(1, 8, 8)), cnn_builder()
    assert g.to_dict() == ref.to_dict()
    assert g.ids() == ["input_1", "conv_block_1", "conv_block_2", "flatten_1", "linear_1"]
    assert g.hash() == ref.hash()


def test_functional_model_matches_builder_with_multi_input_ops_explicit_ids_and_split():
    x = specs.Input(name="x", shape=(6,), dtype="float32")()  # what GraphBuilder.input writes
    a = specs.Linear(out_features=4)(x)
    b = specs.Linear(out_features=4, bias=False)(x, id="side")
    parts = specs.Split(sizes=(2, 2), axis=1)(specs.Add()(a, b))
    y = specs.Output(name="y")(specs.Mul()(parts, parts[1]))
    m = Model(y, name="fn")
    gb = GraphBuilder("fn")
    xi = gb.input((6,))
    ai = gb.linear(xi, out_features=4)
    bi = gb.linear(xi, out_features=4, bias=False, id="side")
    si = gb.split(gb.add("add", ai, bi), sizes=(2, 2), axis=1)  # GraphBuilder.add is its generic method
    gb.output(gb.mul(si, f"{si}:1"), name="y")
    ref = gb.build()
    assert m.to_graph().to_dict() == ref.to_dict() and m.hash() == ref.hash()
    assert m.ids() == ref.ids() and m["side"] == specs.Linear(out_features=4, bias=False)


def test_spec_saved_as_graph_json_loads_and_compiles_to_the_same_outputs(tmp_path):
    net = cnn_spec()
    path = tmp_path / "cnn.json"
    path.write_text(net.to_graph(input_shape=(1, 8, 8)).to_json())
    g = Graph.from_json(path.read_text())
    batch = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    out_spec = net.build(input_shape=(1, 8, 8), seed=3)(batch).numpy()
    out_graph = compile_graph(g, seed=3)(batch).numpy()
    np.testing.assert_array_equal(out_spec, out_graph)
    assert out_spec.shape == (3, 10)
    # back from the graph: a Model with the same ids and JSON
    m = specs.Model.from_graph(g)
    assert m.to_graph().to_json() == g.to_json()
    assert specs.from_dict(json.loads(path.read_text())).to_graph().to_json() == g.to_json()


@pytest.mark.parametrize("spec", [
    specs.Conv2d(out_channels=8, kernel_size=(3, 3), padding=1),
    cnn_spec(),
    Residual(Sequential([specs.Linear(out_features=6), specs.Relu()]), shortcut=specs.Linear(out_features=6),
             activation="relu"),
    Parallel([specs.Linear(out_features=3), Sequential([specs.Linear(out_features=2), specs.Gelu()])], axis=-1),
    Sequential([specs.Input(shape=(1, 8, 8), name="image"), cnn_spec()]).to_model(name="m"),
])
def test_to_dict_from_dict_and_json_round_trip(spec):
    d = spec.to_dict()
    assert json.loads(json.dumps(d)) == d
    back = specs.from_dict(json.loads(json.dumps(d)))
    assert type(back) is type(spec) and back == spec and back.to_dict() == d
    assert type(spec).from_json(spec.to_json()) == spec


def test_fork_changes_fields_by_name_and_path_and_validates():
    net = cnn_spec()
    f = net.fork({"1.out_channels": 32, "3.out_features": 3})
    assert f[1].out_channels == 32 and f[3].out_features == 3 and net[1].out_channels == 16
    assert f.fork(name="v2").name == "v2"
    g = f.to_graph((1, 8, 8))
    assert g.hash() == cnn_builder().fork(conv_block_2={"out_channels": 32}, linear_1={"out_features": 3}).hash()
    with pytest.raises(SpecError, match=r"ConvBlock\.out_channels: -1 is below"):
        net.fork({"0.out_channels": -1})
    with pytest.raises(SpecError, match="not a layer index"):
        net.fork({"9.out_channels": 3})
    r = Residual(Sequential([specs.Linear(out_features=4)]))
    assert r.fork({"body.0.out_features": 8}).body[0].out_features == 8
    m = Model.from_graph(cnn_builder())
    m2 = m.fork(conv_block_1={"out_channels": 4})
    assert m2["conv_block_1"].out_channels == 4 and m2.ids() == m.ids()
    with pytest.raises(SpecError, match=r"node 'conv_block_1' \(ConvBlock\.pool\)"):
        m.fork({"conv_block_1.pool": "median"})
    with pytest.raises(SpecError, match="no node 'conv_blok_1'"):
        m.fork(conv_blok_1={"out_channels": 4})


def test_residual_computes_relu_of_body_plus_skip_like_numpy():
    r = Residual(Sequential([specs.Linear(out_features=5), specs.Tanh(), specs.Linear(out_features=5)]),
                 activation="relu")
    model = r.build(input_shape=(5,), seed=1)
    w = {k.split(".", 1)[1]: v for k, v in model.numpy_weights().items()}
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    h = np.tanh(x @ w["linear_1.weight"].T + w["linear_1.bias"]) @ w["linear_2.weight"].T + w["linear_2.bias"]
    np.testing.assert_allclose(model(x).numpy(), np.maximum(h + x, 0), rtol=1e-5, atol=1e-5)
    assert [n.op for n in r.to_graph((5,)).nodes] == ["input", "linear", "tanh", "linear", "add", "relu"]
    with pytest.raises(SpecError, match="'conv2d' is not an activation"):
        Residual(specs.Linear(), activation="conv2d")


def test_parallel_concat_and_nested_blocks_build_with_tinygrad_parameters():
    from tinygrad.nn.state import get_parameters
    net = Sequential([specs.ConvBlock(out_channels=4),
                      Parallel([specs.Conv2d(out_channels=3, padding=1), Residual(specs.ResidualBlock())]),
                      specs.GlobalAvgPool(), specs.Linear(out_features=2)])
    s = net.summary(input_shape=(2, 6, 6))
    assert s.outputs == {"linear_1": (None, 2)}
    model = net.build(input_shape=(2, 6, 6))
    assert model(np.ones((2, 2, 6, 6), np.float32)).shape == (2, 2)
    assert len(get_parameters(model)) == len(model.state_dict())


def test_model_inlines_into_another_model_and_user_blocks_get_specs(tmp_path):
    from uop_engine.blocklib import remove_block, save_block
    inner = Sequential([specs.Linear(out_features=4), specs.Relu()]).to_model(input_shape=(3,))
    x = specs.Input(shape=(3,))()
    y = specs.Linear(out_features=2)(inner(x))
    outer = Model(y)
    assert [n.op for n in outer.to_graph().nodes] == ["input", "linear", "relu", "linear"]
    save_block(inner.to_graph(), "tiny_dense", "a dense layer", folder=tmp_path, exposed={"width": ["linear_1.out_features"]})
    try:
        cls = specs.UserTinyDense
        net = Sequential([cls(width=7), specs.Linear(out_features=1)])
        assert net.summary(input_shape=(3,)).n_params == 3 * 7 + 7 + 7 + 1
        with pytest.raises(SpecError, match=r"UserTinyDense\.width"):
            cls(width="wide")
    finally:
        remove_block("tiny_dense")


def test_to_model_needs_an_input_shape_or_an_input_layer():
    with pytest.raises(SpecError, match="needs input_shape"):
        cnn_spec().to_graph()
    with pytest.raises(SpecError, match="Graph Input may only come first"):
        Sequential([specs.Relu(), specs.Input(shape=(2,))])
    g = Sequential([specs.Input(shape=(4,), name="feat"), specs.Linear(out_features=2)]).to_graph(output_name="p")
    assert [n.op for n in g.nodes] == ["input", "linear", "output"] and g.inputs()[0].params["name"] == "feat"
