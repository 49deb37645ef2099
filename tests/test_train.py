"""Training loop: jit per batch shape, determinism, NaN stop, cancellation, early stopping,
schedules, clipping against PyTorch, BatchNorm statistics, records and config validation."""
import numpy as np
import pytest

from uop_engine import GraphBuilder
from uop_engine.errors import DataError
from uop_engine.train import ConfigError, TrainConfig, TrainingCancelled, TrainingError, Trainer, train


def mlp(n_in=6, n_out=3, hidden=8, bn=False, dropout=0.0):
    g = GraphBuilder("mlp")
    x = g.input((n_in,))
    h = g.linear(x, out_features=hidden)
    if bn:
        h = g.batch_norm(h)
    h = g.relu(h)
    if dropout:
        h = g.dropout(h, p=dropout)
    g.linear(h, out_features=n_out)
    return g.build()


def blobs(n=50, n_in=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centers = rng.standard_normal((k, n_in)) * 3
    return (centers[y] + rng.standard_normal((n, n_in))).astype(np.float32), y


def same_weights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def no_time(history):
    return [{k: v for k, v in m.items() if k != "seconds"} for m in history]


def test_partial_last_batch_gets_its_own_jit_and_matches_eager():
    X, y = blobs(50)  # 50 = 3 * 16 + 2: the last batch of every epoch has 2 rows
    cfg = dict(epochs=4, batch_size=16, optimizer="sgd", lr=0.05, validation_split=0.2)
    g = mlp(bn=True)
    jitted = Trainer(g, TrainConfig(**cfg))
    r1 = jitted.fit(X, y)
    assert sorted(k[0][0][0] for k in jitted._train_fns) == [8, 16]  # 40 train rows = 2 * 16 + 8
    r2 = train(g, X, y, TrainConfig(**cfg, jit=False))
    assert same_weights(r1.weights(), r2.weights())
    assert no_time(r1.history) == no_time(r2.history)


def test_same_seed_is_bit_identical_and_other_seed_differs():
    X, y = blobs(60)
    cfg = TrainConfig(epochs=3, batch_size=16, validation_split=0.25, seed=7)
    g = mlp(dropout=0.3)
    a, b = train(g, X, y, cfg), train(g, X, y, cfg)
    assert same_weights(a.weights(), b.weights()) and no_time(a.history) == no_time(b.history)
    c = train(g, X, y, TrainConfig(epochs=3, batch_size=16, validation_split=0.25, seed=8))
    assert not same_weights(a.weights(), c.weights())
    assert a.record["data_fingerprint"] == b.record["data_fingerprint"]


def test_nan_loss_names_epoch_and_batch():
    X, y = blobs(64)
    X[40:48] = 1e30  # rows of batch 3 (no shuffling) overflow the squared error
    with pytest.raises(TrainingError, match=r"epoch 1, batch 3 of 4"):
        train(mlp(n_out=1), X, y.astype(np.float32), TrainConfig(loss="mse", epochs=2, batch_size=16, shuffle=False))


def test_cancellation_stops_within_one_batch():
    X, y = blobs(80)
    calls, progress = [], []
    with pytest.raises(TrainingCancelled, match="epoch 2, batch 3") as e:
        train(mlp(), X, y, TrainConfig(epochs=5, batch_size=16),
              progress=lambda f, msg: progress.append((f, msg)),
              should_stop=lambda: calls.append(1) or len(calls) > 7)
    assert len(progress) == 7  # 5 batches of epoch 1, 2 of epoch 2, none after the stop
    assert "loss" in progress[-1][1] and progress[-1][0] == pytest.approx(7 / 25)
    part = e.value.partial
    assert part.stopped == "cancelled" and len(part.history) == 1 and part.record["epochs_run"] == 1


def test_early_stopping_restores_best_weights():
    X, y = blobs(60)
    base = dict(batch_size=16, validation_split=0.25, seed=3)
    # an improvement of 1.0 in accuracy is impossible, so epoch 1 stays best and patience 2 stops after epoch 3
    r = train(mlp(), X, y, TrainConfig(epochs=10, early_stopping=True, monitor="val_accuracy", min_delta=1.0,
                                      patience=2, **base))
    assert r.stopped == "early_stopping" and len(r.history) == 3 and r.best_epoch == 1
    one = train(mlp(), X, y, TrainConfig(epochs=1, **base))
    assert same_weights(r.weights(), one.weights())
    with pytest.raises(ConfigError, match="validation_split"):
        train(mlp(), X, y, TrainConfig(epochs=1, early_stopping=True, monitor="val_loss"))


def test_schedule_drives_the_optimizer_lr():
    X, y = blobs(32)
    # step schedule with gamma 0: lr is 0 from epoch 2 on, so weights stop changing
    cfg = dict(batch_size=16, optimizer="adam", lr=0.01, schedule="step", step_size=1, gamma=0.0)
    r1 = train(mlp(), X, y, TrainConfig(epochs=1, **cfg))
    r3 = train(mlp(), X, y, TrainConfig(epochs=3, **cfg))
    assert same_weights(r1.weights(), r3.weights())
    assert [m["lr"] for m in r3.history] == [0.01, 0.0, 0.0]
    w = train(mlp(), X, y, TrainConfig(epochs=2, batch_size=16, lr=0.1, schedule="cosine", warmup_epochs=1))
    assert w.history[0]["lr"] == pytest.approx(0.1) and w.history[1]["lr"] == pytest.approx(0.1 * (1 + np.cos(np.pi / 2)) / 2)


def test_sgd_momentum_and_clipping_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((12, 4)).astype(np.float32), rng.standard_normal((12, 2)).astype(np.float32)
    g = GraphBuilder("lin")
    g.linear(g.input((4,)), out_features=2)
    graph = g.build()
    r = train(graph, X, Y, TrainConfig(loss="mse", optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                                       grad_clip_norm=0.5, epochs=3, batch_size=12, shuffle=False))
    w0 = Trainer(graph, TrainConfig()).model.numpy_weights()
    lin = torch.nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w0["params.linear_1.weight"]))
        lin.bias.copy_(torch.tensor(w0["params.linear_1.bias"]))
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(lin(torch.tensor(X)), torch.tensor(Y)).backward()
        torch.nn.utils.clip_grad_norm_(lin.parameters(), 0.5)
        opt.step()
    w = r.weights()
    assert np.allclose(w["params.linear_1.weight"], lin.weight.detach().numpy(), atol=1e-6)
    assert np.allclose(w["params.linear_1.bias"], lin.bias.detach().numpy(), atol=1e-6)


def test_batchnorm_running_stats_update_with_each_step():
    X, y = blobs(40)
    r = train(mlp(bn=True), X + 5, y, TrainConfig(epochs=2, batch_size=20, shuffle=False))
    rm = r.weights()["params.batch_norm_1.running_mean"]
    assert np.abs(rm).max() > 0.05  # moved away from its initial zeros


def test_regression_binary_and_records():
    X, y = blobs(48)
    reg = train(mlp(n_out=1), X, X[:, 0] * 2, TrainConfig(loss="huber", epochs=2, batch_size=16, validation_split=0.25))
    assert {"loss", "mae", "val_loss", "val_mae", "lr", "seconds"} <= set(reg.history[-1])
    assert reg.task == "regression" and reg.classes is None
    labels = np.where(y == 0, "no", "yes")
    b = train(mlp(n_out=1), X, labels, TrainConfig(loss="binary_cross_entropy", epochs=2, batch_size=16))
    assert b.classes == ["no", "yes"] and "accuracy" in b.history[-1]
    rec = b.record
    for key in ("config", "graph_hash", "graph", "data_fingerprint", "seed", "versions", "device", "started", "ended",
                "epochs_run", "best_epoch", "classes"):
        assert key in rec
    assert rec["config"]["loss"] == "binary_cross_entropy" and rec["epochs_run"] == 2
    assert {"tinygrad", "numpy", "python"} <= set(rec["versions"])
    assert len(b.history_frame()) == 2


def test_fine_tune_from_bundle_and_errors(tmp_path):
    X, y = blobs(40)
    first = train(mlp(), X, y, TrainConfig(epochs=2, batch_size=16))
    bundle = first.bundle()
    path = bundle.save(tmp_path / "m.tuop")
    zero_lr = TrainConfig(epochs=1, batch_size=16, optimizer="sgd", momentum=0.0, lr=1e-30)
    for src, init in ((path, None), (mlp(), path)):  # a saved model as the start, or as initial weights
        tuned = train(src, X, y, zero_lr, initial_weights=init)
        assert all(np.allclose(tuned.weights()[k], v) for k, v in bundle.weights.items())
    # lr 0 for one epoch: the fine-tuned weights are exactly the bundle's
    again = train(bundle, X, y, TrainConfig(epochs=1, batch_size=16, schedule="step", step_size=1, gamma=0.0,
                                            warmup_steps=0, lr=1e-9, optimizer="sgd", momentum=0.0))
    for k, v in bundle.weights.items():
        assert np.allclose(again.weights()[k], v, atol=1e-6)
    assert again.record["initial_weights"].startswith("bundle")
    with pytest.raises(DataError, match=r"input 'x' needs arrays of shape \(rows, 6\)"):
        train(mlp(), X[:, :5], y, TrainConfig(epochs=1))
    with pytest.raises(DataError, match="NaN"):
        bad = X.copy()
        bad[3, 1] = np.nan
        train(mlp(), bad, y, TrainConfig(epochs=1))


def test_config_validation_and_dict_round_trip():
    cfg = TrainConfig(optimizer="sgd", nesterov=True, schedule="cosine", warmup_steps=3)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict({"epochs": "5", "jit": "false"}).epochs == 5
    for bad, field in [({"optimizer": "rmsprop"}, "optimizer"), ({"lr": 0}, "lr"), ({"batch_size": -1}, "batch_size"),
                       ({"nesterov": True, "optimizer": "adam"}, "nesterov"), ({"validation_split": 1.0}, "validation_split"),
                       ({"warmup_steps": 2, "warmup_epochs": 1}, "warmup_steps"), ({"checkpoint_every": 1}, "checkpoint_dir"),
                       ({"schedule": "one_cycle", "warmup_epochs": 1}, "schedule"), ({"epochs": "many"}, "epochs"),
                       ({"monitor": "f1"}, "monitor")]:
        with pytest.raises(ConfigError, match=f"'{field}'"):
            TrainConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="unknown training setting"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ConfigError, match="device"):
        train(mlp(), *blobs(8), TrainConfig(device="NOSUCHDEVICE"))


def test_devices_offered_for_training_run_kernels():
    from uop_engine.train import check_device_name, device_names
    names = device_names()
    assert "CPU" in names and not {"NULL", "DISK", "NPY"} & set(names)  # NULL runs nothing: garbage results
    assert check_device_name("cpu") == "CPU" and check_device_name("CUDA:1") == "CUDA:1"
    with pytest.raises(ConfigError, match=r"training setting 'device' = 'NULL' is not a tinygrad device; use auto "
                                          r"or one of .*CPU"):
        check_device_name("NULL")


@pytest.mark.slow
def test_digits_example_reaches_97_percent(tmp_path):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "digits.tuop"
    p = subprocess.run([sys.executable, os.path.join(root, "examples", "digits_cnn.py"), "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    last = p.stdout.strip().splitlines()[-1]
    assert last.startswith("test_accuracy=") and float(last.split("=")[1]) >= 0.97
    from uop_engine.model_bundle import ModelBundle
    b = ModelBundle.load(out)
    assert b.classes == list(range(10)) and b.record["epochs_run"] == 15
