"""Model bundles: bytes/file round trips give identical predictions, the archive opens
without our code, and broken files fail with clear errors."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from uop_engine import GraphBuilder
from uop_engine.model_bundle import BundleError, ModelBundle
from uop_engine.predict import predict
from uop_engine.train import TrainConfig, train


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 1, 4, 4)).astype(np.float32)
    y = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 40)]
    g = GraphBuilder("tiny")
    h = g.conv_block(g.input((1, 4, 4)), out_channels=4)  # conv + BatchNorm + relu
    g.linear(g.flatten(h), out_features=3)
    res = train(g.build(), X, y, TrainConfig(epochs=2, batch_size=16))
    return res, X


def test_bundle_round_trip_gives_identical_predictions(trained, tmp_path):
    res, X = trained
    bundle = res.bundle(feature_spec={"inputs": {"x": ["pixel"]}})
    path = bundle.save(tmp_path / "m.tuop")
    back = ModelBundle.load(path)
    assert back.classes == ["cat", "dog", "eel"] and back.task == "classification"
    assert back.feature_spec == {"inputs": {"x": ["pixel"]}}
    assert back.record["graph_hash"] == bundle.graph.hash() == back.graph.hash()
    for k, v in bundle.weights.items():
        assert np.array_equal(back.weights[k], v)
    a = predict(res.model, X, batch_size=16)
    b = predict(back, X, batch_size=7)
    assert np.array_equal(a, b)
    assert bundle.to_bytes() == back.to_bytes()  # deterministic bytes
    s = back.summary()
    assert s["inputs"] == {"x": [None, 1, 4, 4]} and s["n_params"] > 0 and s["epochs_run"] == 2


def test_archive_is_readable_without_tinyuop(trained):
    from safetensors.numpy import load
    res, _ = trained
    data = res.bundle().to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert {"graph.json", "weights.safetensors", "record.json", "bundle.json"} <= set(z.namelist())
        graph = json.loads(z.read("graph.json"))
        weights = load(z.read("weights.safetensors"))
        record = json.loads(z.read("record.json"))
    assert graph["format"] == "tinyuop.graph" and any(n["op"] == "conv_block" for n in graph["nodes"])
    assert weights["params.linear_1.weight"].shape == (3, 64)
    assert record["config"]["epochs"] == 2 and record["classes"] == ["cat", "dog", "eel"]


def test_save_is_atomic_and_errors_are_clear(trained, tmp_path):
    res, _ = trained
    bundle = res.bundle()
    path = tmp_path / "m.tuop"
    bundle.save(path)
    assert os.listdir(tmp_path) == ["m.tuop"]  # no temp file left behind
    with pytest.raises(BundleError, match="does not exist"):
        ModelBundle.load(tmp_path / "missing.tuop")
    (tmp_path / "junk.tuop").write_bytes(b"not a zip file at all")
    with pytest.raises(BundleError, match="corrupt or not a TinyUOp model"):
        ModelBundle.load(tmp_path / "junk.tuop")
    data = path.read_bytes()
    (tmp_path / "cut.tuop").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="cut.tuop"):
        ModelBundle.load(tmp_path / "cut.tuop")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("graph.json", "{}")
    with pytest.raises(BundleError, match="lacks bundle.json, weights.safetensors"):
        ModelBundle.from_bytes(buf.getvalue())
    with pytest.raises(BundleError, match="newer"):
        m = bundle.manifest() | {"version": 99}
        buf = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as z:
            for name in src.namelist():
                z.writestr(name, json.dumps(m) if name == "bundle.json" else src.read(name))
        ModelBundle.from_bytes(buf.getvalue())


def test_weights_that_do_not_fit_the_graph_fail_on_compile(trained):
    res, _ = trained
    b = res.bundle()
    b.weights = {k: v for k, v in b.weights.items() if "linear" not in k}
    with pytest.raises(ValueError, match="missing"):
        b.compile()
