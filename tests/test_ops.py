"""Every op in the table against a numpy / PyTorch reference, one line per op, through one helper."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from uop_engine import GraphBuilder, compile_graph, list_ops

R = np.random.default_rng(0)


def t(a):
    return torch.from_numpy(np.asarray(a))


def run_op(op, shapes, params, dtypes=None, data=None):
    """Build input(s) -> op graph, compile, run; returns (inputs, outputs as numpy, model)."""
    g = GraphBuilder(op)
    dtypes = dtypes or ["float32"] * len(shapes)
    refs = [g.input(s[1:], name=f"x{i}", dtype=d) for i, (s, d) in enumerate(zip(shapes, dtypes))]
    g.add(op, *refs, **params)
    m = compile_graph(g.build(), seed=0)
    xs = data or [R.standard_normal(s).astype(np.float32) if d == "float32" else R.integers(0, 5, s).astype(d)
                  for s, d in zip(shapes, dtypes)]
    out = m(*xs)
    outs = [o.numpy() for o in out] if isinstance(out, tuple) else out.numpy()
    return xs, outs, m


def W(m, name):
    """A weight of the single op in the model, as torch tensor."""
    (nid,) = m.params
    return t(m.params[nid][name].numpy())


# (op, params, input shapes, reference(xs, model) -> array or list, optional dtypes/data)
POS = lambda s: np.abs(R.standard_normal(s)).astype(np.float32) + 0.1  # noqa: E731
UNI = lambda s, r: R.uniform(-r, r, s).astype(np.float32)  # noqa: E731
INTS = lambda s, dt=np.int32: R.integers(-100, 100, s).astype(dt)  # noqa: E731
NONZERO = lambda s: (R.integers(1, 7, s) * R.choice([-1, 1], s)).astype(np.float32)  # noqa: E731
SPECIAL = np.float32([[np.nan, np.inf, -np.inf], [0.0, 1.5, -2.0]])
CASES = [
    ("exp2", {}, [(2, 3)], lambda x, m: np.exp2(x[0])),
    ("log2", {}, [(2, 3)], lambda x, m: np.log2(x[0]), None, [POS((2, 3))]),
    ("sin", {}, [(2, 3)], lambda x, m: np.sin(x[0])),
    ("sqrt", {}, [(2, 3)], lambda x, m: np.sqrt(x[0]), None, [POS((2, 3))]),
    ("reciprocal", {}, [(2, 3)], lambda x, m: 1 / x[0], None, [POS((2, 3))]),
    ("neg", {}, [(2, 3)], lambda x, m: -x[0]),
    ("trunc", {}, [(2, 3)], lambda x, m: np.trunc(x[0]), None, [(R.standard_normal((2, 3)) * 3).astype(np.float32)]),
    ("exp", {}, [(2, 3)], lambda x, m: np.exp(x[0])),
    ("log", {}, [(2, 3)], lambda x, m: np.log(x[0]), None, [POS((2, 3))]),
    ("cos", {}, [(2, 3)], lambda x, m: np.cos(x[0])),
    ("rsqrt", {}, [(2, 3)], lambda x, m: 1 / np.sqrt(x[0]), None, [POS((2, 3))]),
    ("square", {}, [(2, 3)], lambda x, m: x[0] ** 2),
    ("floor", {}, [(2, 3)], lambda x, m: np.floor(x[0])),
    ("ceil", {}, [(2, 3)], lambda x, m: np.ceil(x[0])),
    ("sign", {}, [(2, 3)], lambda x, m: np.sign(x[0])),
    ("abs", {}, [(2, 3)], lambda x, m: np.abs(x[0])),
    ("clip", {"min": -0.5, "max": 0.5}, [(2, 3)], lambda x, m: np.clip(x[0], -0.5, 0.5)),
    ("relu", {}, [(2, 3)], lambda x, m: np.maximum(x[0], 0)),
    ("gelu", {}, [(2, 3)], lambda x, m: F.gelu(t(x[0]), approximate="tanh")),
    ("silu", {}, [(2, 3)], lambda x, m: F.silu(t(x[0]))),
    ("sigmoid", {}, [(2, 3)], lambda x, m: 1 / (1 + np.exp(-x[0]))),
    ("tanh", {}, [(2, 3)], lambda x, m: np.tanh(x[0])),
    ("softplus", {}, [(2, 3)], lambda x, m: F.softplus(t(x[0]))),
    ("mish", {}, [(2, 3)], lambda x, m: F.mish(t(x[0]))),
    ("hardswish", {}, [(2, 3)], lambda x, m: F.hardswish(t(x[0]))),
    ("relu6", {}, [(2, 3)], lambda x, m: F.relu6(t(x[0])), None, [(R.standard_normal((2, 3)) * 4).astype(np.float32)]),
    ("leaky_relu", {"negative_slope": 0.2}, [(2, 3)], lambda x, m: F.leaky_relu(t(x[0]), 0.2)),
    ("elu", {"alpha": 0.7}, [(2, 3)], lambda x, m: F.elu(t(x[0]), 0.7)),
    ("softmax", {"axis": 1}, [(2, 5)], lambda x, m: F.softmax(t(x[0]), 1)),
    ("log_softmax", {"axis": -1}, [(2, 5)], lambda x, m: F.log_softmax(t(x[0]), -1)),
    ("add", {}, [(2, 3), (2, 1)], lambda x, m: x[0] + x[1]),
    ("sub", {}, [(2, 3), (2, 3)], lambda x, m: x[0] - x[1]),
    ("mul", {}, [(2, 3), (2, 3)], lambda x, m: x[0] * x[1]),
    ("div", {}, [(2, 3), (2, 3)], lambda x, m: x[0] / x[1], None, [R.standard_normal((2, 3)).astype(np.float32), POS((2, 3))]),
    ("pow", {}, [(2, 3), (2, 3)], lambda x, m: x[0] ** x[1], None, [POS((2, 3)), R.standard_normal((2, 3)).astype(np.float32)]),
    ("maximum", {}, [(2, 3), (2, 3)], lambda x, m: np.maximum(x[0], x[1])),
    ("minimum", {}, [(2, 3), (2, 3)], lambda x, m: np.minimum(x[0], x[1])),
    ("less", {}, [(2, 3), (2, 3)], lambda x, m: x[0] < x[1]),
    ("less_equal", {}, [(2, 3), (2, 3)], lambda x, m: x[0] <= x[1]),
    ("greater", {}, [(2, 3), (2, 3)], lambda x, m: x[0] > x[1]),
    ("greater_equal", {}, [(2, 3), (2, 3)], lambda x, m: x[0] >= x[1]),
    ("equal", {}, [(2, 3), (2, 3)], lambda x, m: x[0] == x[1], ["int32", "int32"]),
    ("not_equal", {}, [(2, 3), (2, 3)], lambda x, m: x[0] != x[1], ["int32", "int32"]),
    ("where", {}, [(2, 3), (2, 3), (2, 3)], lambda x, m: np.where(x[0] != 0, x[1], x[2]), None,
     [(R.standard_normal((2, 3)) > 0).astype(np.float32), R.standard_normal((2, 3)).astype(np.float32), R.standard_normal((2, 3)).astype(np.float32)]),
    ("cast", {"dtype": "int32"}, [(2, 3)], lambda x, m: x[0].astype(np.int32)),
    ("tan", {}, [(2, 3)], lambda x, m: np.tan(x[0]), None, [UNI((2, 3), 1.2)]),
    ("asin", {}, [(2, 3)], lambda x, m: np.arcsin(x[0]), None, [UNI((2, 3), 0.95)]),
    ("acos", {}, [(2, 3)], lambda x, m: np.arccos(x[0]), None, [UNI((2, 3), 0.95)]),
    ("atan", {}, [(2, 3)], lambda x, m: np.arctan(x[0]), None, [UNI((2, 3), 5)]),
    ("sinh", {}, [(2, 3)], lambda x, m: np.sinh(x[0]), None, [UNI((2, 3), 3)]),
    ("cosh", {}, [(2, 3)], lambda x, m: np.cosh(x[0]), None, [UNI((2, 3), 3)]),
    ("asinh", {}, [(2, 3)], lambda x, m: np.arcsinh(x[0]), None, [UNI((2, 3), 3)]),
    ("acosh", {}, [(2, 3)], lambda x, m: np.arccosh(x[0]), None, [POS((2, 3)) + 1]),
    ("atanh", {}, [(2, 3)], lambda x, m: np.arctanh(x[0]), None, [UNI((2, 3), 0.9)]),
    ("erf", {}, [(2, 3)], lambda x, m: torch.erf(t(x[0])), None, [UNI((2, 3), 3)]),
    ("round", {}, [(2, 6)], lambda x, m: np.round(x[0]), None, [np.float32([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], [0.4, -0.6, 3.49, 2.51, -7.5, 8.5]])]),
    ("log10", {}, [(2, 3)], lambda x, m: np.log10(x[0]), None, [POS((2, 3))]),
    ("isnan", {}, [(2, 3)], lambda x, m: np.isnan(x[0]), None, [SPECIAL]),
    ("isinf", {"detect_negative": False}, [(2, 3)], lambda x, m: np.isposinf(x[0]), None, [SPECIAL]),
    ("isfinite", {}, [(2, 3)], lambda x, m: np.isfinite(x[0]), None, [SPECIAL]),
    ("logical_not", {}, [(2, 3)], lambda x, m: np.logical_not(x[0]), None, [np.float32([[0, 1.5, -2], [0, -0.0, 3]])]),
    ("bitwise_not", {}, [(2, 3)], lambda x, m: np.invert(x[0]), ["int32"], [INTS((2, 3))]),
    ("softsign", {}, [(2, 3)], lambda x, m: F.softsign(t(x[0]))),
    ("selu", {}, [(2, 3)], lambda x, m: F.selu(t(x[0]))),
    ("celu", {"alpha": 0.5}, [(2, 3)], lambda x, m: F.celu(t(x[0]), 0.5)),
    ("hardsigmoid", {}, [(2, 4)], lambda x, m: F.hardsigmoid(t(x[0])), None, [UNI((2, 4), 5)]),
    ("hardtanh", {"min_val": -0.5, "max_val": 0.8}, [(2, 3)], lambda x, m: F.hardtanh(t(x[0]), -0.5, 0.8)),
    ("quick_gelu", {}, [(2, 3)], lambda x, m: x[0] / (1 + np.exp(-1.702 * x[0]))),
    ("logsigmoid", {}, [(2, 3)], lambda x, m: F.logsigmoid(t(x[0])), None, [UNI((2, 3), 6)]),
    ("softmin", {"axis": 1}, [(2, 5)], lambda x, m: F.softmin(t(x[0]), 1)),
    ("mod", {}, [(2, 4), (2, 4)], lambda x, m: np.mod(x[0], x[1]), ["int32", "int32"], [INTS((2, 4)), NONZERO((2, 4)).astype(np.int32)]),
    ("fmod", {}, [(2, 4), (2, 4)], lambda x, m: np.fmod(x[0], x[1]), None, [UNI((2, 4), 9), NONZERO((2, 4))]),
    ("floor_divide", {}, [(2, 4), (2, 4)], lambda x, m: np.floor_divide(x[0], x[1]), ["int32", "int32"],
     [INTS((2, 4)), NONZERO((2, 4)).astype(np.int32)]),
    ("bitwise_and", {}, [(2, 3), (2, 3)], lambda x, m: x[0] & x[1], ["int32", "int32"], [INTS((2, 3)), INTS((2, 3))]),
    ("bitwise_or", {}, [(2, 3), (2, 1)], lambda x, m: x[0] | x[1], ["int16", "int16"], [INTS((2, 3), np.int16), INTS((2, 1), np.int16)]),
    ("bitwise_xor", {}, [(2, 3), (2, 3)], lambda x, m: x[0] ^ x[1], ["bool", "bool"], [R.random((2, 3)) > 0.5, R.random((2, 3)) > 0.5]),
    ("lshift", {}, [(2, 3), (2, 3)], lambda x, m: x[0] << x[1], ["int32", "int32"], [INTS((2, 3)), R.integers(0, 8, (2, 3)).astype(np.int32)]),
    ("rshift", {}, [(2, 3), (2, 3)], lambda x, m: x[0] >> x[1], ["int32", "int32"], [INTS((2, 3)), R.integers(0, 8, (2, 3)).astype(np.int32)]),
    ("copysign", {}, [(2, 3), (2, 3)], lambda x, m: np.copysign(x[0], x[1]), None,
     [R.standard_normal((2, 3)).astype(np.float32), np.float32([[1, -2, -0.0], [0.0, 3, -0.5]])]),
    ("logaddexp", {}, [(2, 3), (2, 3)], lambda x, m: np.logaddexp(x[0], x[1]), None, [UNI((2, 3), 30), UNI((2, 3), 30)]),
    ("isclose", {"rtol": 1e-3, "atol": 1e-4, "equal_nan": True}, [(2, 4), (2, 4)],
     lambda x, m: np.isclose(x[0], x[1], 1e-3, 1e-4, equal_nan=True), None,
     [np.float32([[1, 1, 0, np.inf], [np.nan, np.nan, -np.inf, 5]]), np.float32([[1.0005, 1.01, 5e-5, np.inf], [np.nan, 1, np.inf, 5.004]])]),
    ("lerp", {}, [(2, 3), (2, 3), (2, 1)], lambda x, m: x[0] + x[2] * (x[1] - x[0])),
    ("masked_fill", {"value": -5.0}, [(2, 3), (2, 1)], lambda x, m: np.where(x[1] != 0, -5.0, x[0]), None,
     [R.standard_normal((2, 3)).astype(np.float32), np.float32([[1], [0]])]),
    ("sum", {"axis": (1,)}, [(2, 3, 4)], lambda x, m: x[0].sum(1)),
    ("mean", {"axis": (1, 2), "keepdim": True}, [(2, 3, 4)], lambda x, m: x[0].mean((1, 2), keepdims=True)),
    ("max", {"axis": (2,)}, [(2, 3, 4)], lambda x, m: x[0].max(2)),
    ("min", {}, [(2, 3, 4)], lambda x, m: x[0].min()),
    ("prod", {"axis": (1,)}, [(2, 3, 4)], lambda x, m: x[0].prod(1)),
    ("var", {"axis": (1,)}, [(2, 5, 4)], lambda x, m: x[0].var(1, ddof=1)),
    ("std", {"axis": (2,), "correction": 0}, [(2, 5, 4)], lambda x, m: x[0].std(2)),
    ("argmax", {"axis": 1}, [(2, 5)], lambda x, m: x[0].argmax(1)),
    ("argmin", {"axis": -1}, [(2, 5)], lambda x, m: x[0].argmin(-1)),
    ("reshape", {"shape": (-1, 4, 3)}, [(2, 12)], lambda x, m: x[0].reshape(-1, 4, 3)),
    ("permute", {"order": (0, 2, 1)}, [(2, 3, 4)], lambda x, m: x[0].transpose(0, 2, 1)),
    ("transpose", {"dim0": 1, "dim1": 2}, [(2, 3, 4)], lambda x, m: x[0].swapaxes(1, 2)),
    ("expand", {"shape": (-1, 3, 4)}, [(2, 1, 4)], lambda x, m: np.broadcast_to(x[0], (2, 3, 4))),
    ("pad", {"pads": (1, 2, 0, 1), "value": 0.5}, [(2, 3, 4)], lambda x, m: F.pad(t(x[0]), (1, 2, 0, 1), value=0.5)),
    ("slice", {"axis": 2, "start": 1, "end": -1}, [(2, 3, 5)], lambda x, m: x[0][:, :, 1:-1]),
    ("flip", {"axis": (1, 2)}, [(2, 3, 4)], lambda x, m: x[0][:, ::-1, ::-1]),
    ("flatten", {}, [(2, 3, 4)], lambda x, m: x[0].reshape(2, -1)),
    ("squeeze", {"axis": 1}, [(2, 1, 4)], lambda x, m: x[0][:, 0]),
    ("unsqueeze", {"axis": 1}, [(2, 4)], lambda x, m: x[0][:, None]),
    ("concat", {"axis": 1}, [(2, 3), (2, 2), (2, 1)], lambda x, m: np.concatenate(x, 1)),
    ("split", {"sizes": (1, 3), "axis": 1}, [(2, 4)], lambda x, m: [x[0][:, :1], x[0][:, 1:]]),
    ("matmul", {}, [(2, 3, 4), (2, 4, 5)], lambda x, m: x[0] @ x[1]),
    ("linear", {"out_features": 4}, [(3, 5)], lambda x, m: F.linear(t(x[0]), W(m, "weight"), W(m, "bias"))),
    ("conv1d", {"out_channels": 4, "kernel_size": (3,), "padding": (1,), "stride": (2,)}, [(2, 3, 9)],
     lambda x, m: F.conv1d(t(x[0]), W(m, "weight"), W(m, "bias"), stride=2, padding=1)),
    ("conv2d", {"out_channels": 4, "kernel_size": (3, 2), "padding": (1,), "groups": 2, "dilation": (1, 2)}, [(2, 4, 6, 7)],
     lambda x, m: F.conv2d(t(x[0]), W(m, "weight"), W(m, "bias"), padding=1, groups=2, dilation=(1, 2))),
    ("conv_transpose2d", {"out_channels": 3, "kernel_size": (3,), "stride": (2,), "padding": (1,), "output_padding": (1,)},
     [(2, 4, 5, 5)], lambda x, m: F.conv_transpose2d(t(x[0]), W(m, "weight"), W(m, "bias"), stride=2, padding=1, output_padding=1)),
    ("batch_norm", {}, [(4, 3, 5, 5)], lambda x, m: x[0] / np.sqrt(1 + 1e-5)),
    ("layer_norm", {}, [(2, 3, 6)], lambda x, m: F.layer_norm(t(x[0]), (6,))),
    ("group_norm", {"num_groups": 2}, [(2, 4, 3, 3)], lambda x, m: F.group_norm(t(x[0]), 2)),
    ("rms_norm", {}, [(2, 3, 6)], lambda x, m: x[0] / np.sqrt((x[0] ** 2).mean(-1, keepdims=True) + 1e-6)),
    ("embedding", {"num_embeddings": 5, "embedding_dim": 3}, [(2, 4)], lambda x, m: W(m, "weight").numpy()[x[0]], ["int32"]),
    ("max_pool2d", {"kernel_size": (3,), "stride": (2,), "padding": (1,)}, [(2, 3, 7, 7)], lambda x, m: F.max_pool2d(t(x[0]), 3, 2, 1)),
    ("avg_pool2d", {"kernel_size": (2,)}, [(2, 3, 6, 6)], lambda x, m: F.avg_pool2d(t(x[0]), 2)),
    ("adaptive_avg_pool2d", {"output_size": (3, 2)}, [(2, 3, 7, 5)], lambda x, m: F.adaptive_avg_pool2d(t(x[0]), (3, 2))),
    ("global_avg_pool", {}, [(2, 3, 4, 4)], lambda x, m: x[0].mean((2, 3))),
    ("global_max_pool", {"keepdim": True}, [(2, 3, 4, 4)], lambda x, m: x[0].max((2, 3), keepdims=True)),
    ("dropout", {"p": 0.3}, [(2, 3)], lambda x, m: x[0]),  # inference: identity
    ("scaled_dot_product_attention", {"causal": True}, [(2, 4, 8), (2, 4, 8), (2, 4, 6)],
     lambda x, m: F.scaled_dot_product_attention(t(x[0]), t(x[1]), t(x[2]), is_causal=True)),
    ("multi_head_attention", {"num_heads": 2}, [(2, 5, 8)], lambda x, m: _torch_mha(x[0], m)),
    ("input", None, None, None),
    ("output", {"name": "out"}, [(2, 3)], lambda x, m: x[0]),
    ("conv_block", {"out_channels": 4, "pool": "max"}, [(2, 1, 8, 8)], lambda x, m: _conv_block_ref(x[0], m)),
    ("residual_block", {"out_channels": 4, "stride": 2}, [(2, 2, 6, 6)], lambda x, m: _residual_ref(x[0], m)),
    ("mlp", {"hidden": (6, 5), "out_features": 3}, [(2, 4)], lambda x, m: _mlp_ref(x[0], m)),
    ("se_block", {"reduction": 2}, [(2, 4, 3, 3)], lambda x, m: _se_ref(x[0], m)),
    ("transformer_encoder", {"num_heads": 2, "ff_dim": 16}, [(2, 5, 8)], lambda x, m: _encoder_ref(x[0], m)),
]


def P(m, nid, name):
    return t(m.params[nid][name].numpy())


def _torch_mha(x, m):
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(W(m, "in_proj_weight")); mha.in_proj_bias.copy_(W(m, "in_proj_bias"))
        mha.out_proj.weight.copy_(W(m, "out_proj_weight")); mha.out_proj.bias.copy_(W(m, "out_proj_bias"))
        return mha(t(x), t(x), t(x), need_weights=False)[0]


def _conv_block_ref(x, m):
    y = F.conv2d(t(x), P(m, "conv_block_1/conv", "weight"), padding=1)
    return F.max_pool2d(F.relu(y / np.sqrt(1 + 1e-5)), 2)


def _residual_ref(x, m):
    bn = 1 / np.sqrt(1 + 1e-5)
    h = F.relu(F.conv2d(t(x), P(m, "residual_block_1/conv1", "weight"), stride=2, padding=1) * bn)
    h = F.conv2d(h, P(m, "residual_block_1/conv2", "weight"), padding=1) * bn
    s = F.conv2d(t(x), P(m, "residual_block_1/proj", "weight"), stride=2) * bn
    return F.relu(h + s)


def _mlp_ref(x, m):
    h = F.relu(F.linear(t(x), P(m, "mlp_1/fc0", "weight"), P(m, "mlp_1/fc0", "bias")))
    h = F.relu(F.linear(h, P(m, "mlp_1/fc1", "weight"), P(m, "mlp_1/fc1", "bias")))
    return F.linear(h, P(m, "mlp_1/out", "weight"), P(m, "mlp_1/out", "bias"))


def _se_ref(x, m):
    s = t(x).mean((2, 3))
    s = torch.sigmoid(F.linear(F.relu(F.linear(s, P(m, "se_block_1/fc1", "weight"), P(m, "se_block_1/fc1", "bias"))),
                               P(m, "se_block_1/fc2", "weight"), P(m, "se_block_1/fc2", "bias")))
    return t(x) * s[:, :, None, None]


def _encoder_ref(x, m):
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=lambda v: F.gelu(v, approximate="tanh"),
                                             batch_first=True, norm_first=True)
    b = "transformer_encoder_1/"
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(P(m, b + "attn", "in_proj_weight")); layer.self_attn.in_proj_bias.copy_(P(m, b + "attn", "in_proj_bias"))
        layer.self_attn.out_proj.weight.copy_(P(m, b + "attn", "out_proj_weight")); layer.self_attn.out_proj.bias.copy_(P(m, b + "attn", "out_proj_bias"))
        for ours, theirs in (("ff1", layer.linear1), ("ff2", layer.linear2)):
            theirs.weight.copy_(P(m, b + ours, "weight")); theirs.bias.copy_(P(m, b + ours, "bias"))
        layer.eval()
        return layer(t(x))


def check(out, ref, atol=1e-4, rtol=1e-4):
    refs = ref if isinstance(ref, list) else [ref]
    outs = out if isinstance(out, list) else [out]
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs):
        r = r.detach().numpy() if isinstance(r, torch.Tensor) else np.asarray(r)
        assert o.shape == r.shape, f"shape {o.shape} != reference {r.shape}"
        np.testing.assert_allclose(o.astype(np.float64), r.astype(np.float64), atol=atol, rtol=rtol)


@pytest.mark.parametrize("case", [c for c in CASES if c[2] is not None], ids=lambda c: c[0])
def test_op_matches_reference(case):
    op, params, shapes, ref = case[:4]
    dtypes = case[4] if len(case) > 4 else None
    data = case[5] if len(case) > 5 else None
    xs, out, m = run_op(op, shapes, params, dtypes, data)
    check(out, ref(xs, m))


def test_every_op_has_a_reference_case():
    covered = {c[0] for c in CASES}
    missing = [o.name for o in list_ops() if o.name not in covered and not o.user]
    assert not missing, f"ops without a reference test: {missing}"


def test_input_op_casts_and_checks_shape():
    g = GraphBuilder()
    g.relu(g.input((3,), name="a"))
    m = compile_graph(g.build())
    np.testing.assert_allclose(m(np.array([[-1.0, 0.5, 2.0]], np.float64)).numpy(), [[0, 0.5, 2.0]])
    with pytest.raises(ValueError, match=r"node 'input_1'.*expected \(batch, 3\)"):
        m(np.zeros((1, 4), np.float32))


@pytest.mark.parametrize("op,dtypes,params,message", [
    ("bitwise_and", ["float32", "int32"], {}, r"node 'bitwise_and_1' \(bitwise_and\): input 'a' is float32, but bitwise_and needs integer or bool tensors.*help: cast"),
    ("lshift", ["int8", "bool"], {}, r"node 'lshift_1' \(lshift\): input 'b' is bool, but lshift needs integer tensors"),
    ("bitwise_not", ["float16"], {}, r"input 'x' is float16, but bitwise_not needs integer or bool"),
    ("masked_fill", ["int8", "bool"], {"value": 0.5}, r"parameter 'value': fill value 0.5 does not fit the int8 input"),
    ("hardtanh", ["float32"], {"min_val": 2.0}, r"parameter 'min_val': min_val 2 is above max_val 1"),
    ("celu", ["float32"], {"alpha": 0.0}, r"parameter 'alpha': must be positive, got 0.0"),
])
def test_new_elementwise_ops_refuse_bad_inputs_naming_node_and_what_to_fix(op, dtypes, params, message):
    from uop_engine import GraphError, analyze
    g = GraphBuilder(op)
    g.add(op, *[g.input((3,), name=f"x{i}", dtype=d) for i, d in enumerate(dtypes)], **params)
    with pytest.raises(GraphError, match=message):
        analyze(g.build(check=False))
