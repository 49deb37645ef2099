"""Losses against PyTorch, optimizer steps against PyTorch (LAMB against numpy), schedules
against hand-computed values."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from uop_engine.errors import DataError  # noqa: E402
from uop_engine.losses import loss_function, prepare_targets  # noqa: E402
from uop_engine.optim import load_optimizer_state, make_optimizer, make_schedule, optimizer_state  # noqa: E402


def _tg_loss(name, pred, y, **kw):
    from tinygrad import Tensor
    return loss_function(name, **kw)(Tensor(pred), Tensor(y)).numpy()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_matches_torch(smoothing):
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((17, 5)).astype(np.float32) * 3, rng.integers(0, 5, 17).astype(np.int32)
    ref = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y, dtype=torch.long), label_smoothing=smoothing)
    assert np.allclose(_tg_loss("cross_entropy", z, y, label_smoothing=smoothing), ref.item(), rtol=1e-5, atol=1e-6)


def test_bce_with_logits_matches_torch():
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((19, 3)) * 4).astype(np.float32)
    y = rng.integers(0, 2, (19, 3)).astype(np.float32)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(y))
    assert np.allclose(_tg_loss("binary_cross_entropy", z, y), ref.item(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,delta", [("mse", 1.0), ("l1", 1.0), ("huber", 1.0), ("huber", 0.3)])
def test_regression_losses_match_torch(name, delta):
    rng = np.random.default_rng(3)
    p, y = rng.standard_normal((23, 4)).astype(np.float32), rng.standard_normal((23, 4)).astype(np.float32)
    tp, ty = torch.tensor(p), torch.tensor(y)
    ref = {"mse": lambda: torch.nn.functional.mse_loss(tp, ty), "l1": lambda: torch.nn.functional.l1_loss(tp, ty),
           "huber": lambda: torch.nn.functional.huber_loss(tp, ty, delta=delta)}[name]()
    assert np.allclose(_tg_loss(name, p, y, huber_delta=delta), ref.item(), rtol=1e-5, atol=1e-6)


def test_prepare_targets_labels_and_errors():
    ids, classes = prepare_targets("cross_entropy", np.array(["b", "a", "c", "a"]), (2, 3))
    assert classes == ["a", "b", "c"] and ids.tolist() == [1, 0, 2, 0]
    ids, classes = prepare_targets("cross_entropy", np.array([2, 0]), (2, 3), classes=["x", "y", "z"])
    assert ids.tolist() == [2, 0] and classes == ["x", "y", "z"]
    with pytest.raises(DataError, match="ids must lie in"):
        prepare_targets("cross_entropy", np.array([0, 3]), (2, 3))
    with pytest.raises(DataError, match="out_features to 2"):
        prepare_targets("cross_entropy", np.array(["a", "b"]), (2, 3))
    y, _ = prepare_targets("mse", np.array([1.0, 2.0]), (2, 1))
    assert y.shape == (2, 1) and y.dtype == np.float32
    with pytest.raises(DataError, match="one target value per output"):
        prepare_targets("mse", np.zeros((2, 3)), (2, 1))
    with pytest.raises(DataError, match="exactly 2 classes"):
        prepare_targets("binary_cross_entropy", np.array(["a", "b", "c"]), (3, 1))


# ---- optimizers -------------------------------------------------------------------------------
W0 = [np.random.default_rng(5).standard_normal(s).astype(np.float32) for s in ((4, 3), (3,))]
GRADS = [[np.random.default_rng(10 + k).standard_normal(w.shape).astype(np.float32) for w in W0] for k in range(3)]


def _tg_run(name, **kw):
    from tinygrad import Context, Tensor
    ps = [Tensor(w.copy()) for w in W0]
    opt = make_optimizer(name, ps, **kw)
    with Context(TRAINING=1):
        for gs in GRADS:
            opt.zero_grad()
            sum((p * Tensor(g)).sum() for p, g in zip(ps, gs)).backward()  # d/dp = g
            opt.step()
    return [p.numpy() for p in ps], opt


def _torch_run(cls, **kw):
    ps = [torch.tensor(w.copy(), requires_grad=True) for w in W0]
    opt = cls(ps, **kw)
    for gs in GRADS:
        for p, g in zip(ps, gs):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in ps]


@pytest.mark.parametrize("nesterov,wd", [(False, 0.0), (True, 0.0), (False, 0.01), (True, 0.05)])
def test_sgd_matches_torch(nesterov, wd):
    ours, _ = _tg_run("sgd", lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=wd)
    ref = _torch_run(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=wd)
    for a, b in zip(ours, ref):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,wd", [("adam", 0.0), ("adam", 0.1), ("adamw", 0.01), ("adamw", 0.3)])
def test_adam_adamw_match_torch(name, wd):
    ours, _ = _tg_run(name, lr=0.01, weight_decay=wd, beta1=0.8, beta2=0.99, eps=1e-7)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    ref = _torch_run(cls, lr=0.01, weight_decay=wd, betas=(0.8, 0.99), eps=1e-7)
    for a, b in zip(ours, ref):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lamb_matches_numpy():
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-6, 0.01
    ours, _ = _tg_run("lamb", lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd)
    ws = [w.astype(np.float64) for w in W0]
    m = [np.zeros_like(w) for w in ws]
    v = [np.zeros_like(w) for w in ws]
    for t, gs in enumerate(GRADS, start=1):
        for i, g in enumerate(gs):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            up = (m[i] / (1 - b1 ** t)) / (np.sqrt(v[i] / (1 - b2 ** t)) + eps) + wd * ws[i]
            r1, r2 = np.linalg.norm(ws[i]), np.linalg.norm(up)
            trust = r1 / r2 if r1 > 0 and r2 > 0 else 1.0
            ws[i] = ws[i] - lr * trust * up
    for a, b in zip(ours, ws):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_optimizer_state_round_trip():
    _, opt = _tg_run("adam", lr=0.01)
    state = optimizer_state(opt)
    assert {"lr", "m.0", "v.1", "b1_t", "b2_t"} <= set(state)
    from tinygrad import Tensor
    fresh = make_optimizer("adam", [Tensor(w.copy()) for w in W0], lr=0.5)
    load_optimizer_state(fresh, state)
    for k, v in optimizer_state(fresh).items():
        assert np.array_equal(v, state[k]), k
    with pytest.raises(ValueError, match="another optimizer"):
        load_optimizer_state(make_optimizer("sgd", [Tensor(w.copy()) for w in W0], lr=0.1), state)


# ---- schedules --------------------------------------------------------------------------------
def test_constant_and_step_schedule():
    f = make_schedule("constant", 0.1, steps_per_epoch=5, epochs=3)
    assert [f(t) for t in (0, 7, 14)] == [0.1, 0.1, 0.1]
    f = make_schedule("step", 0.1, steps_per_epoch=4, epochs=10, step_size=2, gamma=0.5)
    # epochs 0-1 -> 0.1, 2-3 -> 0.05, 4-5 -> 0.025
    assert [f(t) for t in (0, 7, 8, 15, 16)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_cosine_schedule_with_warmup():
    f = make_schedule("cosine", 1.0, steps_per_epoch=10, epochs=2, min_lr=0.1, warmup_steps=4)
    # warm-up: (t + 1) / 4 of the peak; then cosine over the remaining 16 steps
    assert [f(t) for t in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f(4) == pytest.approx(1.0)
    assert f(4 + 8) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(4 + 4) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert f(19) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 15 / 16)) / 2)


def test_one_cycle_matches_torch():
    total, lr = 40, 0.5
    f = make_schedule("one_cycle", lr, steps_per_epoch=8, epochs=5, pct_start=0.25, div_factor=10, final_div_factor=100)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.25, div_factor=10,
                                                final_div_factor=100, anneal_strategy="cos", cycle_momentum=False)
    ref = []
    for _ in range(total):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [f(t) for t in range(total)] == pytest.approx(ref, rel=1e-9, abs=1e-12)
    # hand-computed anchors: starts at lr/div, peaks at lr at step pct*total - 1, ends at lr/div/final_div
    assert f(0) == pytest.approx(0.05) and f(9) == pytest.approx(0.5) and f(39) == pytest.approx(0.5 / 10 / 100)
