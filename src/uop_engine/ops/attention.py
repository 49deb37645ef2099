"""Attention: scaled dot-product (three inputs) and multi-head self-attention (batch first)."""
from __future__ import annotations

from ..errors import GraphError
from ..optable import OpDef, TT, WeightSpec, register
from ..params import Param, INT, BOOL
from ._util import auto_or_check, as_float


def _sdpa_infer(ts, p):
    q, k, v = (t.shape for t in ts)
    if min(len(q), len(k), len(v)) < 2:
        raise GraphError("query, key and value need at least 2 dimensions (..., length, features)")
    if q[-1] != k[-1]:
        raise GraphError(f"query features {q[-1]} differ from key features {k[-1]}", fix="project q and k to one size")
    if k[-2] != v[-2]:
        raise GraphError(f"key length {k[-2]} differs from value length {v[-2]}")
    return [TT(q[:-1] + (v[-1],), as_float(ts[0].dtype))]


register(OpDef("scaled_dot_product_attention", "Scaled Dot-Product Attention", "attention",
               "softmax(q @ k.T / sqrt(d)) @ v, optionally causal.",
               (Param("causal", BOOL, False, "mask future positions"),), ("query", "key", "value"), _sdpa_infer,
               lower=lambda ctx, xs, p, w: xs[0].scaled_dot_product_attention(xs[1], xs[2], is_causal=p["causal"]),
               keywords=("sdpa", "attention")))


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


register(OpDef("multi_head_attention", "Multi-Head Attention", "attention",
               "Self-attention with num_heads heads over (batch, length, embed_dim).",
               (Param("num_heads", INT, 4, "attention heads", min=1),
                Param("embed_dim", INT, 0, "features (0 = infer)", min=0),
                Param("causal", BOOL, False, "mask future positions"), Param("bias", BOOL, True, "learn projection biases")),
               ("x",), _mha_infer, weights=_mha_weights, lower=_mha_lower, keywords=("mha", "self-attention")))
