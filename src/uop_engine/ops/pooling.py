"""Pooling (max, average, adaptive, global) and dropout: layers without weights.

They keep the "layers" palette category of the weighted layers in layers.py.
"""
from __future__ import annotations

from ..errors import GraphError
from ..optable import OpDef, TT, register
from ..params import Param, INTS, FLOAT, BOOL
from ._util import conv_out, need_rank, tup, as_float, float_tensor
from . import _onnx as ox


def _pool_infer(ts, p):
    x = ts[0]
    need_rank(x, 4, "batch, channels, H, W")
    k = tup(p["kernel_size"], 2, "kernel_size")
    s = tup(p["stride"] or p["kernel_size"], 2, "stride")
    pad = tup(p["padding"], 2, "padding")
    if any(pp * 2 > kk for pp, kk in zip(pad, k)):
        raise GraphError(f"padding {pad} is more than half the kernel {k}", param="padding")
    out = tuple(conv_out(x.shape[2 + i], k[i], s[i], pad[i], pad[i]) for i in range(2))
    if any(o <= 0 for o in out):
        raise GraphError(f"input {x.shape} is smaller than the pooling window {k}", param="kernel_size",
                         fix="use a smaller window")
    return [TT(x.shape[:2] + out, as_float(x.dtype))]


_POOL = (Param("kernel_size", INTS, (2,), "window size", min=1),
         Param("stride", INTS, (), "step (empty = kernel size)", min=1),
         Param("padding", INTS, (0,), "padding on each side", min=0))


def _pool_lower(method):
    def lower(ctx, xs, p, w):
        k = tup(p["kernel_size"], 2, "kernel_size")
        s = tup(p["stride"] or p["kernel_size"], 2, "stride")
        pad = tup(p["padding"], 2, "padding")
        kw = {"count_include_pad": False} if method == "avg_pool2d" else {}
        return getattr(float_tensor(xs[0]), method)(kernel_size=k, stride=s, padding=tuple(v for v in pad for _ in range(2)), **kw)
    return lower


def _pool_onnx(op_type):
    def entry(c, xs, p, ts):
        k, pad = tup(p["kernel_size"], 2, "kernel_size"), tup(p["padding"], 2, "padding")
        kw = {"count_include_pad": 0} if op_type == "AveragePool" else {}
        return c.node(op_type, [ox.to_float(c, xs[0], ts[0])], kernel_shape=list(k),
                      strides=list(tup(p["stride"] or p["kernel_size"], 2, "stride")), pads=list(pad) * 2, **kw)
    return entry


register(OpDef("max_pool2d", "MaxPool2D", "layers", "Maximum over sliding 2-D windows.", _POOL, ("x",), _pool_infer,
               lower=_pool_lower("max_pool2d"), keywords=("pooling",), onnx=_pool_onnx("MaxPool")))
register(OpDef("avg_pool2d", "AvgPool2D", "layers", "Mean over sliding 2-D windows (padding not counted).", _POOL,
               ("x",), _pool_infer, lower=_pool_lower("avg_pool2d"), keywords=("pooling", "average"),
               onnx=_pool_onnx("AveragePool")))


def _adaptive_infer(ts, p):
    need_rank(ts[0], 4, "batch, channels, H, W")
    o = tup(p["output_size"], 2, "output_size")
    return [TT(ts[0].shape[:2] + o, as_float(ts[0].dtype))]


def _adaptive_lower(ctx, xs, p, w):
    x = xs[0]
    (H, W), (oh, ow) = x.shape[2:], tup(p["output_size"], 2, "output_size")
    if H % oh == 0 and W % ow == 0:  # the common case is one strided pooling
        return x.avg_pool2d(kernel_size=(H // oh, W // ow), stride=(H // oh, W // ow))
    rows = []  # PyTorch's bins: [floor(i*H/oh), ceil((i+1)*H/oh))
    for i in range(oh):
        h0, h1 = (i * H) // oh, -(-((i + 1) * H) // oh)
        cols = [x[:, :, h0:h1, (j * W) // ow:-(-((j + 1) * W) // ow)].mean(axis=(2, 3)) for j in range(ow)]
        rows.append(cols[0].stack(*cols[1:], dim=-1) if len(cols) > 1 else cols[0].unsqueeze(-1))
    return rows[0].stack(*rows[1:], dim=-2) if len(rows) > 1 else rows[0].unsqueeze(-2)


def _adaptive_onnx(c, xs, p, ts):
    import numpy as np
    (H, W), (oh, ow) = ts[0].shape[2:], tup(p["output_size"], 2, "output_size")
    c.need_static(0, (2, 3), "adaptive pooling over batch-dependent axes")
    x, dt = ox.to_float(c, xs[0], ts[0]), as_float(ts[0].dtype)
    if H % oh == 0 and W % ow == 0:
        return c.node("AveragePool", [x], kernel_shape=[H // oh, W // ow], strides=[H // oh, W // ow])

    def bins(n, o):  # averaging matrix (o, n) over PyTorch's bins [floor(i*n/o), ceil((i+1)*n/o))
        m = np.zeros((o, n))
        for i in range(o):
            lo, hi = (i * n) // o, -(-((i + 1) * n) // o)
            m[i, lo:hi] = 1.0 / (hi - lo)
        return m
    y = c.node("MatMul", [x, c.const(bins(W, ow).T, dt)])       # (N, C, H, ow)
    return c.node("MatMul", [c.const(bins(H, oh), dt), y])      # (N, C, oh, ow)


register(OpDef("adaptive_avg_pool2d", "AdaptiveAvgPool2D", "layers", "Averages into a fixed output grid.",
               (Param("output_size", INTS, (1,), "output H,W", min=1),), ("x",), _adaptive_infer, lower=_adaptive_lower,
               onnx=_adaptive_onnx))


def _global_infer(ts, p):
    need_rank(ts[0], (3, 4, 5), "batch, channels, ...")
    s = ts[0].shape
    return [TT(s[:2] + ((1,) * (len(s) - 2) if p["keepdim"] else ()), as_float(ts[0].dtype))]


_KEEP = (Param("keepdim", BOOL, False, "keep the spatial axes with size 1"),)
def _global_onnx(op_type):
    def entry(c, xs, p, ts):
        y = c.node(op_type, [ox.to_float(c, xs[0], ts[0])])
        return y if p["keepdim"] else c.node("Squeeze", [y, c.ints(range(2, len(ts[0].shape)))])
    return entry


register(OpDef("global_avg_pool", "GlobalAvgPool", "layers", "Mean over all spatial axes: (N, C, ...) -> (N, C).",
               _KEEP, ("x",), _global_infer,
               lower=lambda ctx, xs, p, w: float_tensor(xs[0]).mean(axis=tuple(range(2, xs[0].ndim)), keepdim=p["keepdim"]),
               onnx=_global_onnx("GlobalAveragePool")))
register(OpDef("global_max_pool", "GlobalMaxPool", "layers", "Maximum over all spatial axes: (N, C, ...) -> (N, C).",
               _KEEP, ("x",), _global_infer,
               lower=lambda ctx, xs, p, w: float_tensor(xs[0]).max(axis=tuple(range(2, xs[0].ndim)), keepdim=p["keepdim"]),
               onnx=_global_onnx("GlobalMaxPool")))


def _dropout_lower(ctx, xs, p, w):
    if not ctx.training or p["p"] == 0:
        return xs[0]
    return xs[0].dropout(p["p"])


register(OpDef("dropout", "Dropout", "layers", "Zeroes random elements while training (scaled by 1/(1-p)).",
               (Param("p", FLOAT, 0.5, "drop probability", min=0.0, max=0.99),), ("x",),
               lambda ts, p: [ts[0]], lower=_dropout_lower,
               # ONNX Dropout is the identity at inference (no training_mode input)
               onnx=lambda c, xs, p, ts: c.node("Dropout", [xs[0], c.const(p["p"], as_float(ts[0].dtype))])))
