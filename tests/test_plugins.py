"""Block plugins: approved modules load as user ops (compile vs numpy, ONNX via onnxruntime);
unapproved, tampered or misnamed ones are refused naming the file."""
import json
import warnings

import numpy as np
import pytest

from uop_engine import GraphBuilder, compile_graph
from uop_engine.errors import GraphError
from uop_engine.optable import OPS, get_op
from uop_engine.plugins import (PluginRefused, PluginWarning, code_hash, define_block, load_plugin_file,
                                load_plugins, save_plugin)

SCALE_SHIFT = '''
from uop_engine.plugins import define_block, Param, TT, WeightSpec, GraphError, FLOAT


def infer(ts, p):
    if len(ts[0].shape) < 2:
        raise GraphError("needs (batch, features)", fix="flatten first")
    return [TT(ts[0].shape, ts[0].dtype)]


def weights(p, ts):
    return {"gain": WeightSpec((ts[0].shape[-1],), "ones")}


def lower(ctx, xs, p, w):
    return xs[0] * w["gain"] + p["shift"]


BLOCK = define_block("scale_shift_pl", "Per-feature gain plus a constant shift.",
                     params=(Param("shift", FLOAT, 0.5, "added constant"),), infer=infer, lower=lower, weights=weights)
'''

DENSE_RELU = '''
from uop_engine.plugins import define_block, Param, INT


def expand(sub, refs, p, types):
    h = sub.add("linear", refs, "fc", out_features=p["width"])
    return [sub.add("relu", [h], "act")]


BLOCK = define_block("dense_relu_pl", "Linear then ReLU.", params=(Param("width", INT, 4, "output width", min=1),),
                     expand=expand)
'''


@pytest.fixture(autouse=True)
def _forget_plugins():
    yield
    for name in [n for n, op in OPS.items() if "plugin" in op.meta]:
        OPS.pop(name, None)


def _approve(folder, name, code):
    return save_plugin(folder, name, code, {"description": "test", "approved_by": "pytest"})


def _graph(op, shape, **params):
    g = GraphBuilder("t")
    g.output(g.add(op, g.input(shape), **params))
    return g.build()


def test_approved_plugin_loads_and_matches_numpy(tmp_path):
    _approve(tmp_path, "scale_shift_pl", SCALE_SHIFT)
    doc = json.loads((tmp_path / "scale_shift_pl.approval.json").read_text())
    assert doc["sha256"] == code_hash((tmp_path / "scale_shift_pl.py").read_bytes()) and doc["approved_by"] == "pytest"
    loaded = load_plugins(tmp_path)
    assert [op.name for op in loaded] == ["user_scale_shift_pl"] and loaded.refused == []
    op = get_op("user_scale_shift_pl")
    assert op.category == "user" and op.user and op.meta["path"].endswith("scale_shift_pl.py")
    m = compile_graph(_graph(op.name, (3,), shift=-1.0))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(m(x).numpy(), x * 1.0 - 1.0)
    assert m.numpy_weights()["params.user_scale_shift_pl_1.gain"].shape == (3,)


def test_expand_plugin_compiles_and_exports_to_onnx(tmp_path):
    import onnxruntime as ort
    from uop_engine.onnx_export import export_onnx
    _approve(tmp_path, "dense_relu_pl", DENSE_RELU)
    load_plugins(tmp_path, strict=True)
    graph = _graph("user_dense_relu_pl", (5,), width=3)
    m = compile_graph(graph, seed=1)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    w = m.numpy_weights()
    ref = np.maximum(x @ w["params.user_dense_relu_pl_1/fc.weight"].T + w["params.user_dense_relu_pl_1/fc.bias"], 0)
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-5, atol=1e-6)
    sess = ort.InferenceSession(export_onnx(graph, w).SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref, rtol=1e-5, atol=1e-5)


def test_plugin_without_approval_is_refused_naming_the_file(tmp_path):
    (tmp_path / "scale_shift_pl.py").write_text(SCALE_SHIFT)
    with pytest.warns(PluginWarning, match=r"scale_shift_pl\.py has no approval file"):
        loaded = load_plugins(tmp_path)
    assert list(loaded) == [] and loaded.refused[0][0].name == "scale_shift_pl.py"
    assert "user_scale_shift_pl" not in OPS
    with pytest.raises(PluginRefused, match="not approved"):
        load_plugins(tmp_path, strict=True)


def test_tampered_plugin_is_refused_and_not_run(tmp_path):
    py = _approve(tmp_path, "scale_shift_pl", SCALE_SHIFT)
    marker = tmp_path / "ran.txt"
    py.write_text(SCALE_SHIFT + f"\nopen({str(marker)!r}, 'w').write('tampered code ran')\n")
    with pytest.raises(PluginRefused, match=r"scale_shift_pl\.py was changed after approval"):
        load_plugin_file(py)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list(load_plugins(tmp_path)) == []
    assert any("changed after approval" in str(w.message) for w in caught)
    assert not marker.exists() and "user_scale_shift_pl" not in OPS


def test_one_bad_plugin_does_not_block_the_others(tmp_path):
    _approve(tmp_path, "dense_relu_pl", DENSE_RELU)
    (tmp_path / "stray.py").write_text("X = 1\n")
    with pytest.warns(PluginWarning, match="stray.py"):
        loaded = load_plugins(tmp_path)
    assert [op.name for op in loaded] == ["user_dense_relu_pl"]


def test_misnamed_or_broken_plugins_are_refused(tmp_path):
    _approve(tmp_path, "other_name", DENSE_RELU)  # defines dense_relu_pl, file says other_name
    with pytest.raises(PluginRefused, match=r"does not define BLOCK = define_block\('other_name'"):
        load_plugin_file(tmp_path / "other_name.py")
    _approve(tmp_path, "broken_pl", "import numpy as np\nraise RuntimeError('boom')\n")
    with pytest.raises(PluginRefused, match="broken_pl.py failed to load: RuntimeError: boom"):
        load_plugin_file(tmp_path / "broken_pl.py")
    approval = tmp_path / "broken_pl.approval.json"
    approval.write_text(json.dumps({**json.loads(approval.read_text()), "name": "someone_else"}))
    with pytest.raises(PluginRefused, match="approves 'someone_else'"):
        load_plugin_file(tmp_path / "broken_pl.py")


def test_save_does_not_overwrite_silently_and_missing_folder_is_empty(tmp_path):
    _approve(tmp_path, "dense_relu_pl", DENSE_RELU)
    with pytest.raises(GraphError, match="already exists"):
        _approve(tmp_path, "dense_relu_pl", DENSE_RELU)
    assert list(load_plugins(tmp_path / "nope")) == []


def test_define_block_checks_its_arguments():
    with pytest.raises(GraphError, match="exactly one of lower= or expand="):
        define_block("x_pl", "doc", infer=lambda ts, p: ts)
    with pytest.raises(GraphError, match="has lower= but no infer="):
        define_block("x_pl", "doc", lower=lambda c, xs, p, w: xs[0])
    with pytest.raises(GraphError, match="not valid"):
        define_block("Bad-Name", "doc", lower=lambda c, xs, p, w: xs[0], infer=lambda ts, p: ts)
    with pytest.raises(GraphError, match="Param"):
        define_block("x_pl", "doc", params=("beta",), lower=lambda c, xs, p, w: xs[0], infer=lambda ts, p: ts)
