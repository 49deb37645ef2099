"""Shared helpers for the `onnx=` entries of the op table.

Entries never import onnx: they emit nodes through the export context (`ctx.node(op_type,
inputs, **attrs)`, `ctx.const(value, dtype)`, `ctx.ints(values)`, `ctx.weight(name)`,
`ctx.cast(x, to, frm)`, `ctx.reduce(...)`; see uop_engine.onnx_export.OnnxCtx).
Entry signature: `entry(ctx, xs, p, types) -> output name(s)`.
"""
from __future__ import annotations

from ..optable import FLOAT_DTYPES
from ._util import as_float, norm_axes, promote


def to_float(ctx, x: str, t) -> str:
    """Ops that compute in floating point cast integer inputs to float32 first (as the lowering does)."""
    return x if t.dtype in FLOAT_DTYPES else ctx.cast(x, "float32", t.dtype)


def unary(op_type: str, float_in: bool = True, **attrs):
    """One ONNX op with fixed attributes."""
    def entry(ctx, xs, p, ts):
        return ctx.node(op_type, [to_float(ctx, xs[0], ts[0]) if float_in else xs[0]], **attrs)
    return entry


def unary_param(op_type: str, **attr_of_param: str):
    """One ONNX op whose float attributes come from params, e.g. LeakyRelu(alpha=negative_slope)."""
    def entry(ctx, xs, p, ts):
        return ctx.node(op_type, [to_float(ctx, xs[0], ts[0])], **{a: float(p[k]) for a, k in attr_of_param.items()})
    return entry


def composite(build):
    """An op built from several ONNX nodes: build(ctx, x, dtype) with x already floating point."""
    def entry(ctx, xs, p, ts):
        return build(ctx, to_float(ctx, xs[0], ts[0]), as_float(ts[0].dtype))
    return entry


# Dtypes an ONNX op does not take (onnx.checker refuses them at opsets 17-21) or onnxruntime's CPU
# provider has no kernel for, and a wider dtype giving the same result once cast back: max/min
# are exact in any wider type, and a product of bools is 0 or 1. tinygrad's integer products wrap
# around (int8 100 * 3 is 44) and their low bits are the same in int64, but onnxruntime clamps an
# int32/int64 product that overflows: in int64 the product is exact while it stays below 2**63.
WIDER = {
    "Max": {"int16": "int32"}, "Min": {"int16": "int32"},
    "ReduceMax": {"int16": "int32", "bool": "uint8"}, "ReduceMin": {"int16": "int32", "bool": "uint8"},
    "ReduceProd": {"int8": "int64", "uint8": "int64", "int16": "int64", "int32": "int64", "bool": "int64"},
}
# ONNX has no arithmetic on bool; tinygrad computes it as logic (True + True is True, a - b is a + not b)
_BOOL_BINARY = {"Add": ("Or", False), "Max": ("Or", False), "Mul": ("And", False), "Min": ("And", False),
                "Sub": ("Or", True)}


def widened(ctx, op_type: str, xs: list[str], dtype: str, **attrs) -> str:
    """op_type over inputs of `dtype`, through the wider dtype of WIDER where ONNX lacks `dtype`."""
    via = WIDER.get(op_type, {}).get(dtype)
    if via is None:
        return ctx.node(op_type, xs, **attrs)
    return ctx.cast(ctx.node(op_type, [ctx.cast(x, via, dtype) for x in xs], **attrs), dtype, via)


def binary(op_type: str, compare: bool = False, negate: bool = False):
    """Elementwise binary op: both inputs cast to the common dtype (ONNX wants equal types)."""
    def entry(ctx, xs, p, ts):
        dt = promote(ts[0].dtype, ts[1].dtype) if compare else ctx.out_types[0].dtype
        a, b = (ctx.cast(x, dt, t.dtype) for x, t in zip(xs, ts))
        if dt == "bool" and op_type in _BOOL_BINARY:
            logic, not_b = _BOOL_BINARY[op_type]
            y = ctx.node(logic, [a, ctx.node("Not", [b]) if not_b else b])
        else:
            y = widened(ctx, op_type, [a, b], dt)
        return ctx.node("Not", [y]) if negate else y
    return entry


def reduce(op_type: str, out_dtype=None):
    """Reduce* over the op's axes; out_dtype(input dtype) is what the input is cast to first."""
    def entry(ctx, xs, p, ts):
        dt = out_dtype(ts[0].dtype) if out_dtype else ts[0].dtype
        x = ctx.cast(xs[0], dt, ts[0].dtype)
        if p["axis"] is not None:
            norm_axes(p["axis"], len(ts[0].shape))  # checks them; ONNX takes negative axes as they are
        via = WIDER.get(op_type, {}).get(dt)
        if via is None:
            return ctx.reduce(op_type, x, p["axis"], p["keepdim"])
        return ctx.cast(ctx.reduce(op_type, ctx.cast(x, via, dt), p["axis"], p["keepdim"]), dt, via)
    return entry


def count(ctx, x: str, i: int, axes, dtype: str) -> str:
    """Number of elements over `axes` of input i as a scalar of `dtype`: a constant, or computed
    from Shape when one of the axes is the (dynamic) batch."""
    n = 1
    for a in axes:
        n *= ctx.in_types[i].shape[a]
    if not any(ctx.in_dyn[i][a] for a in axes):
        return ctx.const(float(n), dtype)
    dims = ctx.node("Gather", [ctx.node("Shape", [x]), ctx.ints(axes)], axis=0)
    return ctx.cast(ctx.reduce("ReduceProd", dims, None, False), dtype, "int64")


def bn_shape(ndim: int) -> tuple[int, ...]:
    """A per-channel vector reshaped to broadcast over (N, C, ...)."""
    return (-1,) + (1,) * (ndim - 2)


# onnxruntime's CPU Where has no kernel for these dtypes: select in a wider dtype, then cast back
_WHERE_VIA = {"int16": "int32", "bool": "uint8", "bfloat16": "float32"}


def where(ctx, cond: str, a: str, b: str, dtype: str) -> str:
    """Where(cond, a, b) for a and b of `dtype`, runnable in onnxruntime for every graph dtype."""
    via = _WHERE_VIA.get(dtype)
    if via is None:
        return ctx.node("Where", [cond, a, b])
    return ctx.cast(ctx.node("Where", [cond, ctx.cast(a, via, dtype), ctx.cast(b, via, dtype)]), dtype, via)
