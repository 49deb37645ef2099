"""Normalisation layers with non-trivial weights and statistics against PyTorch: the per-op table
checks them at their initial weights (gamma 1, beta 0, running mean 0, var 1), where a wrong use
of a weight would go unnoticed."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tinygrad import Tensor

from uop_engine import GraphBuilder, compile_graph

R = np.random.default_rng(3)


def model(op, shape, **params):
    g = GraphBuilder(op)
    g.add(op, g.input(shape[1:], name="x"), **params)
    m = compile_graph(g.build(), seed=0)
    (nid,) = m.params
    weights = {f"params.{nid}.{k}": (R.random(v.shape) + 0.5 if "var" in k else R.standard_normal(v.shape)).astype(np.float32)
               for k, v in m.params[nid].items()}
    m.load_weights(weights)
    return m, {k.rsplit(".", 1)[1]: torch.from_numpy(v) for k, v in weights.items()}


def x_of(shape):
    return (R.standard_normal(shape) * 2 + 0.7).astype(np.float32)


def test_batch_norm_inference_uses_running_stats_and_affine_weights():
    m, w = model("batch_norm", (4, 3, 5, 5), eps=1e-3)
    x = x_of((4, 3, 5, 5))
    ref = F.batch_norm(torch.from_numpy(x), w["running_mean"], w["running_var"], w["weight"], w["bias"], False,
                       eps=1e-3)
    np.testing.assert_allclose(m(x).numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(6, 3, 4, 4), (5, 4, 7), (8, 3)])
def test_batch_norm_training_normalises_by_the_batch_and_updates_running_stats_like_torch(shape):
    m, w = model("batch_norm", shape, momentum=0.3)
    x = x_of(shape)
    rm, rv = w["running_mean"].clone(), w["running_var"].clone()
    ref = F.batch_norm(torch.from_numpy(x), rm, rv, w["weight"], w["bias"], True, momentum=0.3, eps=1e-5)
    Tensor.training = True
    try:
        out = m(x, training=True)
        Tensor.realize(out, *m.last_updated)
    finally:
        Tensor.training = False
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)
    (nid,) = m.params
    np.testing.assert_allclose(m.params[nid]["running_mean"].numpy(), rm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.params[nid]["running_var"].numpy(), rv.numpy(), rtol=1e-5, atol=1e-6)


def test_layer_norm_with_affine_weights():
    m, w = model("layer_norm", (2, 3, 6))
    x = x_of((2, 3, 6))
    ref = F.layer_norm(torch.from_numpy(x), (6,), w["weight"], w["bias"])
    np.testing.assert_allclose(m(x).numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_group_norm_with_affine_weights():
    m, w = model("group_norm", (2, 6, 3, 3), num_groups=3)
    x = x_of((2, 6, 3, 3))
    ref = F.group_norm(torch.from_numpy(x), 3, w["weight"], w["bias"])
    np.testing.assert_allclose(m(x).numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_rms_norm_with_a_scale():
    m, w = model("rms_norm", (2, 3, 6))
    x = x_of((2, 3, 6))
    ref = F.rms_norm(torch.from_numpy(x), (6,), w["weight"], eps=1e-6)
    np.testing.assert_allclose(m(x).numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)
