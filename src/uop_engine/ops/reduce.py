"""Reductions over axes: sum, mean, max, min, prod, variance, argmax/argmin."""
from __future__ import annotations

from ..optable import OpDef, TT, register
from ..params import Param, BOOL, OPT_INTS, OPT_INT, INT
from ._util import norm_axes, norm_axis, as_float, sum_dtype
from . import _onnx as ox


def _reduced(shape, axes, keepdim):
    return tuple((1 if i in axes else d) for i, d in enumerate(shape) if keepdim or i not in axes)


_P = (Param("axis", OPT_INTS, None, "axes to reduce (empty = all axes)"),
      Param("keepdim", BOOL, False, "keep reduced axes with size 1"))


def _reduce(name, label, method, doc, out_dtype=None, extra=(), onnx=None):
    """out_dtype(input dtype) -> result dtype; the input is cast to it first (mean of ints in float32,
    sum of int8 accumulated in int32), so the lowering returns what inference says."""
    def infer(ts, p):
        axes = norm_axes(p["axis"], len(ts[0].shape))
        dt = out_dtype(ts[0].dtype) if out_dtype else ts[0].dtype
        return [TT(_reduced(ts[0].shape, axes, p["keepdim"]), dt)]

    def lower(ctx, xs, p, w):
        from ..compile import dtype_name, tg_dtype
        x = xs[0] if out_dtype is None else xs[0].cast(tg_dtype(out_dtype(dtype_name(xs[0].dtype))))
        kw = {k: p[k] for k in ("correction",) if k in p}
        return getattr(x, method)(axis=p["axis"], keepdim=p["keepdim"], **kw)
    register(OpDef(name, label, "reduce", doc, _P + tuple(extra), ("x",), infer, lower=lower, onnx=onnx))


def _var_onnx(std):
    """sum((x - mean)^2) / max(n - correction, 0), as tinygrad computes it (n may be the batch)."""
    def entry(c, xs, p, ts):
        x, dt = ox.to_float(c, xs[0], ts[0]), as_float(ts[0].dtype)
        axes = norm_axes(p["axis"], len(ts[0].shape))
        d = c.node("Sub", [x, c.reduce("ReduceMean", x, axes, True)])
        num = c.reduce("ReduceSum", c.node("Mul", [d, d]), axes, p["keepdim"])
        n = c.node("Max", [c.node("Sub", [ox.count(c, xs[0], 0, axes, dt), c.const(float(p["correction"]), dt)]),
                           c.const(0.0, dt)])
        v = c.node("Div", [num, n])
        return c.node("Sqrt", [v]) if std else v
    return entry


_reduce("sum", "Sum", "sum", "Sum over axes (integers and bool summed in int32, int64 stays).", out_dtype=sum_dtype,
        onnx=ox.reduce("ReduceSum", out_dtype=sum_dtype))
_reduce("mean", "Mean", "mean", "Mean over axes.", out_dtype=as_float, onnx=ox.reduce("ReduceMean", out_dtype=as_float))
_reduce("max", "Max", "max", "Maximum over axes.", onnx=ox.reduce("ReduceMax"))
_reduce("min", "Min", "min", "Minimum over axes.", onnx=ox.reduce("ReduceMin"))
_reduce("prod", "Product", "prod", "Product over axes.", onnx=ox.reduce("ReduceProd"))
_reduce("var", "Variance", "var", "Variance over axes (correction 1 = sample variance).", out_dtype=as_float,
        extra=(Param("correction", INT, 1, "degrees of freedom subtracted from the count", min=0),), onnx=_var_onnx(False))
_reduce("std", "Standard Deviation", "std", "Standard deviation over axes.", out_dtype=as_float,
        extra=(Param("correction", INT, 1, "degrees of freedom subtracted from the count", min=0),), onnx=_var_onnx(True))

_AP = (Param("axis", OPT_INT, -1, "axis to search (empty = flattened tensor)"),
       Param("keepdim", BOOL, False, "keep the reduced axis with size 1"))


def _arg(name, label, method, doc):
    def infer(ts, p):
        shape = ts[0].shape
        if p["axis"] is None:
            return [TT((1,) * len(shape) if p["keepdim"] else (), "int32")]
        ax = norm_axis(p["axis"], len(shape))
        return [TT(_reduced(shape, (ax,), p["keepdim"]), "int32")]
    register(OpDef(name, label, "reduce", doc, _AP, ("x",), infer,
                   lower=lambda ctx, xs, p, w: getattr(xs[0], method)(axis=p["axis"], keepdim=p["keepdim"]),
                   onnx=_arg_onnx({"argmax": "ArgMax", "argmin": "ArgMin"}[method])))


def _arg_onnx(op_type):
    """ONNX gives int64 indices; ours are int32. No axis = index into the flattened tensor."""
    def entry(c, xs, p, ts):
        nd = len(ts[0].shape)
        if p["axis"] is None:
            i = c.node(op_type, [c.node("Reshape", [xs[0], c.ints([-1])])], axis=0, keepdims=0)
            i = c.node("Reshape", [i, c.ints([1] * nd)]) if p["keepdim"] else i
        else:
            i = c.node(op_type, [xs[0]], axis=p["axis"], keepdims=int(p["keepdim"]))
        return c.cast(i, "int32", "int64")
    return entry


_arg("argmax", "ArgMax", "argmax", "Index of the maximum along an axis (int32).")
_arg("argmin", "ArgMin", "argmin", "Index of the minimum along an axis (int32).")
