"""Attention: scaled dot-product (three inputs) and multi-head self-attention (batch first)."""
from __future__ import annotations

from ..errors import GraphError
from ..optable import OpDef, TT, WeightSpec, register
from ..params import Param, INT, BOOL
from ._util import auto_or_check, as_float
from . import _onnx as ox


def _sdpa_infer(ts, p):
    q, k, v = (t.shape for t in ts)
    if min(len(q), len(k), len(v)) < 2:
        raise GraphError("query, key and value need at least 2 dimensions (..., length, features)")
    if q[-1] != k[-1]:
        raise GraphError(f"query features {q[-1]} differ from key features {k[-1]}", fix="project q and k to one size")
    if k[-2] != v[-2]:
        raise GraphError(f"key length {k[-2]} differs from value length {v[-2]}")
    return [TT(q[:-1] + (v[-1],), as_float(ts[0].dtype))]


def _sdpa_nodes(c, q, k, v, q_shape, k_shape, causal, dt):
    """softmax(q @ k^T / sqrt(d) [+ causal mask]) @ v from MatMul/Softmax, as tinygrad computes it."""
    import math
    import numpy as np
    r = len(k_shape)
    kt = c.node("Transpose", [k], perm=list(range(r - 2)) + [r - 1, r - 2])
    s = c.node("Div", [c.node("MatMul", [q, kt]), c.const(math.sqrt(q_shape[-1]), dt)])
    if causal:  # additive mask: 0 on and below the diagonal, -inf above (lengths are not the batch)
        lq, lk = q_shape[-2], k_shape[-2]
        s = c.node("Add", [s, c.const(np.where(np.tril(np.ones((lq, lk), bool)), 0.0, -np.inf), dt)])
    return c.node("MatMul", [c.node("Softmax", [s], axis=-1), v])


def _sdpa_onnx(c, xs, p, ts):
    dt = as_float(ts[0].dtype)
    if p["causal"]:
        c.need_static(0, [len(ts[0].shape) - 2], "a causal mask over a batch-dependent length")
        c.need_static(1, [len(ts[1].shape) - 2], "a causal mask over a batch-dependent length")
    q, k, v = (ox.to_float(c, x, t) for x, t in zip(xs, ts))
    return _sdpa_nodes(c, q, k, v, ts[0].shape, ts[1].shape, p["causal"], dt)


register(OpDef("scaled_dot_product_attention", "Scaled Dot-Product Attention", "attention",
               "softmax(q @ k.T / sqrt(d)) @ v, optionally causal.",
               (Param("causal", BOOL, False, "mask future positions"),), ("query", "key", "value"), _sdpa_infer,
               lower=lambda ctx, xs, p, w: xs[0].scaled_dot_product_attention(xs[1], xs[2], is_causal=p["causal"]),
               keywords=("sdpa", "attention"), onnx=_sdpa_onnx))


def _mha_infer(ts, p):
    x = ts[0]
    if len(x.shape) != 3:
        raise GraphError(f"expects (batch, length, embed_dim), got {x.shape}", fix="reshape to 3-D first")
    e = auto_or_check(p["embed_dim"], x.shape[-1], "embed_dim", "features in the last axis")
    if e % p["num_heads"]:
        raise GraphError(f"{p['num_heads']} heads do not divide embed_dim {e}", param="num_heads",
                         fix="choose a divisor of embed_dim")
    return [TT(x.shape, as_float(x.dtype))]


def _mha_weights(p, ts):
    e = ts[0].shape[-1]
    w = {"in_proj_weight": WeightSpec((3 * e, e), "fan_in_uniform", fan_in=e),
         "out_proj_weight": WeightSpec((e, e), "fan_in_uniform", fan_in=e)}
    if p["bias"]:
        w["in_proj_bias"] = WeightSpec((3 * e,), "zeros")
        w["out_proj_bias"] = WeightSpec((e,), "zeros")
    return w


def _mha_lower(ctx, xs, p, w):
    x = xs[0]
    n, l, e = x.shape
    h = p["num_heads"]
    qkv = x.linear(w["in_proj_weight"].T, w.get("in_proj_bias"))
    q, k, v = (t.reshape(n, l, h, e // h).transpose(1, 2) for t in qkv.split(e, dim=-1))
    y = q.scaled_dot_product_attention(k, v, is_causal=p["causal"]).transpose(1, 2).reshape(n, l, e)
    return y.linear(w["out_proj_weight"].T, w.get("out_proj_bias"))


def _mha_onnx(c, xs, p, ts):
    """Projections as MatMul with pre-transposed initializers, heads by Reshape/Transpose."""
    n, l, e = ts[0].shape
    h, dt = p["num_heads"], as_float(ts[0].dtype)
    c.need_static(0, [1, 2], "attention over a batch-dependent length")
    x = ox.to_float(c, xs[0], ts[0])

    def proj(y, w, b):
        y = c.node("MatMul", [y, c.weight(w, perm=(1, 0))])
        return c.node("Add", [y, c.weight(b)]) if p["bias"] else y
    q, k, v = c.node("Split", [proj(x, "in_proj_weight", "in_proj_bias"), c.ints([e, e, e])], n_out=3, axis=-1)
    heads = [c.node("Transpose", [c.node("Reshape", [t, c.ints([0, 0, h, e // h])])], perm=[0, 2, 1, 3]) for t in (q, k, v)]
    y = _sdpa_nodes(c, *heads, (n, h, l, e // h), (n, h, l, e // h), p["causal"], dt)
    y = c.node("Reshape", [c.node("Transpose", [y], perm=[0, 2, 1, 3]), c.ints([0, 0, e])])
    return proj(y, "out_proj_weight", "out_proj_bias")


register(OpDef("multi_head_attention", "Multi-Head Attention", "attention",
               "Self-attention with num_heads heads over (batch, length, embed_dim).",
               (Param("num_heads", INT, 4, "attention heads", min=1),
                Param("embed_dim", INT, 0, "features (0 = infer)", min=0),
                Param("causal", BOOL, False, "mask future positions"), Param("bias", BOOL, True, "learn projection biases")),
               ("x",), _mha_infer, weights=_mha_weights, lower=_mha_lower, keywords=("mha", "self-attention"),
               onnx=_mha_onnx))
