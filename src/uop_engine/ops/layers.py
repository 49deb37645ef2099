"""Layers with weights: linear, convolutions, norms, embedding (pooling and dropout: pooling.py).

Sizes such as in_features default to 0, meaning "infer from the input"; a non-zero value is
checked against the input so a wrong wiring fails before anything runs.
"""
from __future__ import annotations

import math

from ..errors import GraphError
from ..optable import OpDef, TT, WeightSpec, register
from ..params import Param, INT, INTS, FLOAT, BOOL
from ._util import auto_or_check, conv_out, need_rank, tup, as_float
from . import _onnx as ox

_BIAS = Param("bias", BOOL, True, "learn an additive bias")


# ---- linear -------------------------------------------------------------------------------
def _linear_infer(ts, p):
    x = ts[0]
    if len(x.shape) < 2:
        raise GraphError(f"expects at least 2-D input (batch, features), got {x.shape}", fix="flatten first")
    auto_or_check(p["in_features"], x.shape[-1], "in_features", "features in its last dimension")
    return [TT(x.shape[:-1] + (p["out_features"],), as_float(x.dtype))]


def _linear_weights(p, ts):
    fin = ts[0].shape[-1]
    w = {"weight": WeightSpec((p["out_features"], fin), "fan_in_uniform", fan_in=fin)}
    if p["bias"]:
        w["bias"] = WeightSpec((p["out_features"],), "fan_in_uniform", fan_in=fin)
    return w


def _linear_onnx(c, xs, p, ts):
    x = ox.to_float(c, xs[0], ts[0])
    if len(ts[0].shape) == 2:  # Gemm: what ONNX tools (and the quantizer) know as a dense layer
        return c.node("Gemm", [x, c.weight("weight")] + ([c.weight("bias")] if p["bias"] else []), transB=1)
    y = c.node("MatMul", [x, c.weight("weight", perm=(1, 0))])  # pre-transposed, so it stays an initializer
    return c.node("Add", [y, c.weight("bias")]) if p["bias"] else y


register(OpDef("linear", "Linear", "layers", "Fully connected layer: x @ W.T + b over the last axis.",
               (Param("out_features", INT, 10, "output features", min=1),
                Param("in_features", INT, 0, "input features (0 = infer from the input)", min=0), _BIAS),
               ("x",), _linear_infer, weights=_linear_weights,
               lower=lambda ctx, xs, p, w: xs[0].linear(w["weight"].T, w.get("bias")),
               keywords=("dense", "fully connected", "fc"), onnx=_linear_onnx))


# ---- convolutions -------------------------------------------------------------------------
def _conv_params(nd: int, transpose=False):
    ps = [Param("out_channels", INT, 8, "output channels", min=1),
          Param("kernel_size", INTS, (3,), f"kernel size (1 or {nd} values)", min=1),
          Param("stride", INTS, (1,), "stride", min=1),
          Param("padding", INTS, (0,), "zero padding on each side (1 or per-axis values)", min=0),
          Param("dilation", INTS, (1,), "dilation", min=1),
          Param("groups", INT, 1, "channel groups", min=1),
          Param("in_channels", INT, 0, "input channels (0 = infer from the input)", min=0), _BIAS]
    if transpose:
        ps.insert(6, Param("output_padding", INTS, (0,), "extra size added to one side of the output", min=0))
    return tuple(ps)


def _conv_geom(p, nd):
    return (tup(p["kernel_size"], nd, "kernel_size"), tup(p["stride"], nd, "stride"),
            tup(p["padding"], nd, "padding"), tup(p["dilation"], nd, "dilation"))


def _check_groups(cin, p):
    g = p["groups"]
    if cin % g or p["out_channels"] % g:
        raise GraphError(f"{g} groups do not divide in_channels {cin} and out_channels {p['out_channels']}",
                         param="groups", fix="choose groups that divide both channel counts")


def _conv_infer_nd(nd):
    def infer(ts, p):
        x = ts[0]
        need_rank(x, nd + 2, "batch, channels, " + ", ".join("LHW"[-nd:] if nd < 3 else "DHW"))
        cin = auto_or_check(p["in_channels"], x.shape[1], "in_channels", "channels (axis 1)")
        _check_groups(cin, p)
        k, s, pad, d = _conv_geom(p, nd)
        out = tuple(conv_out(x.shape[2 + i], k[i], s[i], pad[i], pad[i], d[i]) for i in range(nd))
        if any(o <= 0 for o in out):
            raise GraphError(f"input {x.shape} is too small for kernel {k} (output would be {out})",
                             param="kernel_size", fix="use a smaller kernel, more padding or a larger input")
        return [TT((x.shape[0], p["out_channels"]) + out, as_float(x.dtype))]
    return infer


def _conv_weights_nd(nd):
    def weights(p, ts):
        cin = ts[0].shape[1]
        k = tup(p["kernel_size"], nd, "kernel_size")
        fan_in = cin // p["groups"] * math.prod(k)
        w = {"weight": WeightSpec((p["out_channels"], cin // p["groups"]) + k, "fan_in_uniform", fan_in=fan_in)}
        if p["bias"]:
            w["bias"] = WeightSpec((p["out_channels"],), "fan_in_uniform", fan_in=fan_in)
        return w
    return weights


def _conv_onnx(nd, transpose=False):
    def entry(c, xs, p, ts):
        k, s, pad, d = _conv_geom(p, nd)
        extra = {"output_padding": list(tup(p["output_padding"], nd, "output_padding"))} if transpose else {}
        return c.node("ConvTranspose" if transpose else "Conv",
                      [ox.to_float(c, xs[0], ts[0]), c.weight("weight")] + ([c.weight("bias")] if p["bias"] else []),
                      kernel_shape=list(k), strides=list(s), pads=list(pad) * 2, dilations=list(d), group=p["groups"], **extra)
    return entry


def _conv_lower_nd(nd):
    def lower(ctx, xs, p, w):
        k, s, pad, d = _conv_geom(p, nd)
        return xs[0].conv2d(w["weight"], w.get("bias"), groups=p["groups"], stride=s, dilation=d,
                            padding=tuple(x for x in pad for _ in range(2)))
    return lower


for _nd, _name, _label in ((1, "conv1d", "Conv1D"), (2, "conv2d", "Conv2D")):
    register(OpDef(_name, _label, "layers", f"{_nd}-D convolution over (batch, channels, {'L' if _nd == 1 else 'H, W'}).",
                   _conv_params(_nd), ("x",), _conv_infer_nd(_nd), weights=_conv_weights_nd(_nd),
                   lower=_conv_lower_nd(_nd), keywords=("convolution",), onnx=_conv_onnx(_nd)))


def _convt_infer(ts, p):
    x = ts[0]
    need_rank(x, 4, "batch, channels, H, W")
    cin = auto_or_check(p["in_channels"], x.shape[1], "in_channels", "channels (axis 1)")
    _check_groups(cin, p)
    k, s, pad, d = _conv_geom(p, 2)
    op = tup(p["output_padding"], 2, "output_padding")
    out = tuple((x.shape[2 + i] - 1) * s[i] - 2 * pad[i] + d[i] * (k[i] - 1) + op[i] + 1 for i in range(2))
    if any(o <= 0 for o in out):
        raise GraphError(f"output size {out} is not positive", param="padding", fix="reduce padding")
    return [TT((x.shape[0], p["out_channels"]) + out, as_float(x.dtype))]


def _convt_weights(p, ts):
    cin = ts[0].shape[1]
    k = tup(p["kernel_size"], 2, "kernel_size")
    fan_in = p["out_channels"] // p["groups"] * math.prod(k)  # PyTorch computes fan-in from dim 1
    w = {"weight": WeightSpec((cin, p["out_channels"] // p["groups"]) + k, "fan_in_uniform", fan_in=fan_in)}
    if p["bias"]:
        w["bias"] = WeightSpec((p["out_channels"],), "fan_in_uniform", fan_in=fan_in)
    return w


def _convt_lower(ctx, xs, p, w):
    k, s, pad, d = _conv_geom(p, 2)
    return xs[0].conv_transpose2d(w["weight"], w.get("bias"), groups=p["groups"], stride=s, dilation=d,
                                  padding=pad, output_padding=tup(p["output_padding"], 2, "output_padding"))


register(OpDef("conv_transpose2d", "ConvTranspose2D", "layers", "Transposed 2-D convolution (learned upsampling).",
               _conv_params(2, transpose=True), ("x",), _convt_infer, weights=_convt_weights, lower=_convt_lower,
               keywords=("deconvolution", "upsample"), onnx=_conv_onnx(2, transpose=True)))


# ---- normalisation ------------------------------------------------------------------------
_EPS = Param("eps", FLOAT, 1e-5, "added to the variance for stability", min=0.0)


def _bn_infer(ts, p):
    x = ts[0]
    need_rank(x, (2, 3, 4, 5), "batch, channels, ...")
    auto_or_check(p["num_features"], x.shape[1], "num_features", "channels (axis 1)")
    return [TT(x.shape, as_float(x.dtype))]


def _bn_weights(p, ts):
    c = ts[0].shape[1]
    return {"weight": WeightSpec((c,), "ones"), "bias": WeightSpec((c,), "zeros"),
            "running_mean": WeightSpec((c,), "zeros", trainable=False),
            "running_var": WeightSpec((c,), "ones", trainable=False)}


def _bn_lower(ctx, xs, p, w):
    x = xs[0]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if ctx.training:
        axes = tuple(i for i in range(x.ndim) if i != 1)
        mean = x.mean(axis=axes)
        var = ((x - mean.detach().reshape(shape)).square()).mean(axis=axes)
        n = x.numel() / x.shape[1]
        m = p["momentum"]
        ctx.assign(w["running_mean"], (1 - m) * w["running_mean"] + m * mean.detach())
        ctx.assign(w["running_var"], (1 - m) * w["running_var"] + m * var.detach() * (n / max(n - 1, 1)))
    else:
        mean, var = w["running_mean"], w["running_var"]
    return x.batchnorm(w["weight"], w["bias"], mean, (var + p["eps"]).rsqrt())


register(OpDef("batch_norm", "BatchNorm", "layers", "Batch normalisation over the channel axis (1-D, 2-D, 3-D).",
               (Param("num_features", INT, 0, "channels (0 = infer from the input)", min=0), _EPS,
                Param("momentum", FLOAT, 0.1, "running-statistics update rate", min=0.0, max=1.0)),
               ("x",), _bn_infer, weights=_bn_weights, lower=_bn_lower, keywords=("batchnorm", "bn"),
               # inference mode (running statistics); ONNX momentum weights the old value: 1 - ours
               onnx=lambda c, xs, p, ts: c.node("BatchNormalization", [ox.to_float(c, xs[0], ts[0])] + [
                   c.weight(n) for n in ("weight", "bias", "running_mean", "running_var")],
                   epsilon=float(p["eps"]), momentum=float(1 - p["momentum"]))))


def _ln_axes(p, ts):
    k = len(p["normalized_shape"]) if p["normalized_shape"] else 1
    shape = ts[0].shape
    if k >= len(shape):
        raise GraphError(f"normalizes {k} axes but the input {shape} has only {len(shape)}", param="normalized_shape")
    if p["normalized_shape"] and tuple(shape[-k:]) != tuple(p["normalized_shape"]):
        raise GraphError(f"is {p['normalized_shape']} but the input ends with {shape[-k:]}", param="normalized_shape",
                         fix=f"set normalized_shape to {','.join(map(str, shape[-k:]))} (or leave it empty)")
    return shape[-k:]


def _ln_weights(p, ts):
    ns = _ln_axes(p, ts)
    return {"weight": WeightSpec(ns, "ones"), "bias": WeightSpec(ns, "zeros")} if p["elementwise_affine"] else {}


def _ln_lower(ctx, xs, p, w):
    k = len(p["normalized_shape"]) or 1
    y = xs[0].layernorm(axis=tuple(range(-k, 0)), eps=p["eps"])
    return y * w["weight"] + w["bias"] if w else y


def _ln_onnx(c, xs, p, ts):
    import numpy as np
    ns = _ln_axes(p, ts)
    dt = as_float(ts[0].dtype)
    scale = c.weight("weight") if p["elementwise_affine"] else c.const(np.ones(ns), dt)
    bias = [c.weight("bias")] if p["elementwise_affine"] else []
    return c.node("LayerNormalization", [ox.to_float(c, xs[0], ts[0]), scale] + bias, axis=-len(ns), epsilon=float(p["eps"]))


register(OpDef("layer_norm", "LayerNorm", "layers", "Normalises the last axes of each sample.",
               (Param("normalized_shape", INTS, (), "trailing sizes to normalise (empty = last axis)"), _EPS,
                Param("elementwise_affine", BOOL, True, "learn a scale and shift")),
               ("x",), lambda ts, p: (_ln_axes(p, ts), [TT(ts[0].shape, as_float(ts[0].dtype))])[1],
               weights=_ln_weights, lower=_ln_lower, keywords=("layernorm",), onnx=_ln_onnx))


def _gn_infer(ts, p):
    x = ts[0]
    need_rank(x, (3, 4, 5), "batch, channels, ...")
    c = auto_or_check(p["num_channels"], x.shape[1], "num_channels", "channels (axis 1)")
    if c % p["num_groups"]:
        raise GraphError(f"{p['num_groups']} groups do not divide {c} channels", param="num_groups",
                         fix="choose a divisor of the channel count")
    return [TT(x.shape, as_float(x.dtype))]


def _gn_lower(ctx, xs, p, w):
    x = xs[0]
    g = p["num_groups"]
    y = x.reshape(x.shape[0], g, -1).layernorm(axis=-1, eps=p["eps"]).reshape(x.shape)
    if not w:
        return y
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return y * w["weight"].reshape(shape) + w["bias"].reshape(shape)


def _gn_onnx(c, xs, p, ts):
    """Groups as InstanceNormalization channels of (N, groups, -1), then the per-channel affine."""
    import numpy as np
    s, g, dt = ts[0].shape, p["num_groups"], as_float(ts[0].dtype)
    c.need_static(0, range(1, len(s)), "group norm over batch-dependent axes")
    x = c.node("Reshape", [ox.to_float(c, xs[0], ts[0]), c.ints([0, g, -1])])
    y = c.node("InstanceNormalization", [x, c.const(np.ones(g), dt), c.const(np.zeros(g), dt)], epsilon=float(p["eps"]))
    y = c.node("Reshape", [y, c.ints((0,) + s[1:])])
    if not p["affine"]:
        return y
    shape = (s[1],) + (1,) * (len(s) - 2)
    return c.node("Add", [c.node("Mul", [y, c.weight("weight", shape=shape)]), c.weight("bias", shape=shape)])


register(OpDef("group_norm", "GroupNorm", "layers", "Normalises groups of channels per sample.",
               (Param("num_groups", INT, 1, "number of channel groups", min=1),
                Param("num_channels", INT, 0, "channels (0 = infer)", min=0), _EPS,
                Param("affine", BOOL, True, "learn a per-channel scale and shift")),
               ("x",), _gn_infer, lower=_gn_lower, onnx=_gn_onnx,
               weights=lambda p, ts: {"weight": WeightSpec((ts[0].shape[1],), "ones"),
                                      "bias": WeightSpec((ts[0].shape[1],), "zeros")} if p["affine"] else {}))


def _rms_lower(ctx, xs, p, w):
    x = xs[0]
    return x * (x.square().mean(axis=-1, keepdim=True) + p["eps"]).rsqrt() * w["weight"]


def _rms_onnx(c, xs, p, ts):
    x, dt = ox.to_float(c, xs[0], ts[0]), as_float(ts[0].dtype)
    ms = c.reduce("ReduceMean", c.node("Mul", [x, x]), [len(ts[0].shape) - 1], True)
    inv = c.node("Reciprocal", [c.node("Sqrt", [c.node("Add", [ms, c.const(p["eps"], dt)])])])
    return c.node("Mul", [c.node("Mul", [x, inv]), c.weight("weight")])


register(OpDef("rms_norm", "RMSNorm", "layers", "Scales the last axis by its root-mean-square.",
               (Param("dim", INT, 0, "size of the last axis (0 = infer)", min=0), Param("eps", FLOAT, 1e-6, "stability term", min=0.0)),
               ("x",), lambda ts, p: (auto_or_check(p["dim"], ts[0].shape[-1], "dim", "features in the last axis"),
                                      [TT(ts[0].shape, as_float(ts[0].dtype))])[1],
               weights=lambda p, ts: {"weight": WeightSpec((ts[0].shape[-1],), "ones")}, lower=_rms_lower, onnx=_rms_onnx))


def _emb_infer(ts, p):
    if ts[0].dtype not in ("int8", "int16", "int32", "int64", "uint8"):
        raise GraphError(f"expects integer token ids, got {ts[0].dtype}", fix="cast the input to int32")
    return [TT(ts[0].shape + (p["embedding_dim"],), "float32")]


register(OpDef("embedding", "Embedding", "layers", "Looks up a learned vector for each integer id.",
               (Param("num_embeddings", INT, 100, "vocabulary size", min=1), Param("embedding_dim", INT, 16, "vector size", min=1)),
               ("ids",), _emb_infer,
               weights=lambda p, ts: {"weight": WeightSpec((p["num_embeddings"], p["embedding_dim"]), "normal")},
               lower=lambda ctx, xs, p, w: w["weight"][xs[0]], keywords=("lookup", "token"),
               # Gather takes int32/int64 indices only
               onnx=lambda c, xs, p, ts: c.node("Gather", [c.weight("weight"), xs[0] if ts[0].dtype in ("int32", "int64")
                                                           else c.cast(xs[0], "int64", ts[0].dtype)], axis=0)))
