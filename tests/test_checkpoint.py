"""Checkpoints: saved every N epochs, listed/inspected without loading, and resuming gives the
same weights and metrics as an uninterrupted run."""
import json

import numpy as np
import pytest

from uop_engine import GraphBuilder
from uop_engine.checkpoint import (CheckpointError, inspect_checkpoint, latest_checkpoint, list_checkpoints,
                                   load_checkpoint)
from uop_engine.train import TrainConfig, train


def data():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 45)
    return (rng.standard_normal((45, 5)) + y[:, None]).astype(np.float32), y


def graph(dropout=0.2):
    g = GraphBuilder("ck")
    h = g.relu(g.batch_norm(g.linear(g.input((5,)), out_features=8)))
    g.linear(g.dropout(h, p=dropout), out_features=3)
    return g.build()


def no_time(history):
    return [{k: v for k, v in m.items() if k != "seconds"} for m in history]


def test_resume_matches_uninterrupted_run(tmp_path):
    X, y = data()
    common = dict(batch_size=16, optimizer="adamw", weight_decay=0.01, schedule="cosine", validation_split=0.2,
                  early_stopping=True, monitor="val_loss", patience=10, seed=5)
    full = train(graph(), X, y, TrainConfig(epochs=4, **common))
    ck_dir = tmp_path / "ck"
    part = train(graph(), X, y, TrainConfig(epochs=4, checkpoint_every=1, checkpoint_dir=str(ck_dir), **common))
    assert len(part.checkpoints) == 4
    listed = list_checkpoints(ck_dir)
    assert [c["epoch"] for c in listed] == [1, 2, 3, 4] and listed[1]["step"] == 2 * 3
    resumed = train(graph(), X, y, TrainConfig(epochs=4, **common), resume_from=listed[1]["path"])
    w1, w2 = full.weights(), resumed.weights()
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    assert no_time(full.history) == no_time(resumed.history)
    assert resumed.record["resumed_from"] == listed[1]["path"] and resumed.best_epoch == full.best_epoch


def test_checkpoint_contents_and_inspect(tmp_path):
    X, y = data()
    train(graph(0.0), X, y, TrainConfig(epochs=3, batch_size=16, checkpoint_every=2, checkpoint_dir=str(tmp_path),
                                        optimizer="sgd"))
    assert [c["epoch"] for c in list_checkpoints(tmp_path)] == [2]
    path = latest_checkpoint(tmp_path)
    assert path.endswith("epoch_0002.json")
    info = inspect_checkpoint(path)
    assert info["epoch"] == 2 and info["step"] == 6 and info["config"]["optimizer"] == "sgd"
    assert info["tensors"]["model/params.linear_1.weight"] == {"shape": [8, 5], "dtype": "F32"}
    assert "optim/b.0" in info["tensors"] and {"tinygrad", "numpy", "python"} <= set(info["versions"])
    ck = load_checkpoint(tmp_path)  # a folder means its latest checkpoint
    assert ck.epoch == 2 and ck.graph().hash() == graph(0.0).hash() and len(ck.meta["history"]) == 2
    assert json.loads(open(path).read())["data_fingerprint"]


def test_keep_and_errors(tmp_path):
    X, y = data()
    train(graph(), X, y, TrainConfig(epochs=3, batch_size=32, checkpoint_every=1, checkpoint_dir=str(tmp_path),
                                     keep_checkpoints=1))
    assert [c["epoch"] for c in list_checkpoints(tmp_path)] == [3]
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "epoch_0001.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoints"):
        load_checkpoint(tmp_path / "empty")
    (tmp_path / "epoch_0003.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="missing or corrupt"):
        load_checkpoint(tmp_path / "epoch_0003.json")
    other = GraphBuilder("other")
    other.linear(other.input((5,)), out_features=3)
    good = tmp_path / "good"
    train(graph(), X, y, TrainConfig(epochs=1, checkpoint_every=1, checkpoint_dir=str(good)))
    with pytest.raises(CheckpointError, match="saved for graph"):
        train(other.build(), X, y, TrainConfig(epochs=2), resume_from=str(good))
    with pytest.raises(CheckpointError, match="optimizer 'adam'"):
        train(graph(), X, y, TrainConfig(epochs=2, optimizer="sgd"), resume_from=str(good))
