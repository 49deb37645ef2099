"""float64 versions of the ONNX ops onnxruntime's CPU provider has no double kernel for (Tan,
Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Erf), built from ops it has (Sin, Cos, Exp,
Log, Sqrt, ...). Each takes (ctx, x) with x a float64 value name and returns the result's name.

tan, sinh, cosh and the inverse hyperbolics come from identities, written so they keep double
precision near 0 and 1 (log1p/expm1 by Kahan's tricks) and for huge arguments.
asin, acos and atan have no such identity: a float32 seed (the float32 op) is refined by one
Newton step in float64, which squares its ~1e-7 error to double precision. erf has neither: it
runs in float32 (relative error ~1e-7, below the 1.5e-7 of the engine's own erf approximation).
"""
from __future__ import annotations

import math

D = "float64"


def _k(c, v: float) -> str:
    return c.const(v, D)


def _f32(c, op_type: str, x: str) -> str:
    """op_type computed in float32 and widened back."""
    return c.cast(c.node(op_type, [c.cast(x, "float32", D)]), D, "float32")


def _log1p(c, u: str) -> str:
    """log(1 + u) to double precision for small u too (Kahan: the rounding of 1 + u cancels out)."""
    w = c.node("Add", [_k(c, 1.0), u])
    dw = c.node("Sub", [w, _k(c, 1.0)])
    return c.node("Where", [c.node("Equal", [dw, _k(c, 0.0)]), u,
                            c.node("Div", [c.node("Mul", [c.node("Log", [w]), u]), dw])])


def _expm1(c, x: str) -> str:
    """exp(x) - 1 without the cancellation near 0 (Kahan), for |x| <= 1."""
    u = c.node("Exp", [x])
    du = c.node("Sub", [u, _k(c, 1.0)])
    return c.node("Where", [c.node("Equal", [du, _k(c, 0.0)]), x,
                            c.node("Div", [c.node("Mul", [du, x]), c.node("Log", [u])])])


def _large(c, s: str) -> tuple[str, str]:
    """-> (s > 2**28, log(2s)): past 2**28, sqrt(s*s +- 1) is s to double precision, and s*s would
    overflow from 1e154 on."""
    return (c.node("Greater", [s, _k(c, 2.0 ** 28)]),
            c.node("Add", [c.node("Log", [s]), _k(c, math.log(2.0))]))


def tan(c, x: str) -> str:
    return c.node("Div", [c.node("Sin", [x]), c.node("Cos", [x])])


def sinh(c, x: str) -> str:
    half = _k(c, 0.5)
    wide = c.node("Mul", [c.node("Sub", [c.node("Exp", [x]), c.node("Exp", [c.node("Neg", [x])])]), half])
    m = _expm1(c, x)  # below |x| = 1: (m + m / (m + 1)) / 2, which does not cancel
    near = c.node("Mul", [c.node("Add", [m, c.node("Div", [m, c.node("Add", [m, _k(c, 1.0)])])]), half])
    return c.node("Where", [c.node("Less", [c.node("Abs", [x]), _k(c, 1.0)]), near, wide])


def cosh(c, x: str) -> str:
    return c.node("Mul", [c.node("Add", [c.node("Exp", [x]), c.node("Exp", [c.node("Neg", [x])])]), _k(c, 0.5)])


def asinh(c, x: str) -> str:
    # log1p(s + s*s / (1 + sqrt(s*s + 1))) on s = |x|, signed after
    s = c.node("Abs", [x])
    ss = c.node("Mul", [s, s])
    root = c.node("Add", [_k(c, 1.0), c.node("Sqrt", [c.node("Add", [ss, _k(c, 1.0)])])])
    r = _log1p(c, c.node("Add", [s, c.node("Div", [ss, root])]))
    big, log2s = _large(c, s)
    return c.node("Mul", [c.node("Sign", [x]), c.node("Where", [big, log2s, r])])


def acosh(c, x: str) -> str:
    # log1p(t + sqrt(t * (x + 1))) with t = x - 1, exact: no cancellation near x = 1
    t = c.node("Sub", [x, _k(c, 1.0)])
    r = _log1p(c, c.node("Add", [t, c.node("Sqrt", [c.node("Mul", [t, c.node("Add", [x, _k(c, 1.0)])])])]))
    big, log2x = _large(c, x)
    return c.node("Where", [big, log2x, r])


def atanh(c, x: str) -> str:
    # log1p(2s / (1 - s)) / 2 on s = |x|, signed after
    s = c.node("Abs", [x])
    r = _log1p(c, c.node("Div", [c.node("Add", [s, s]), c.node("Sub", [_k(c, 1.0), s])]))
    return c.node("Mul", [c.node("Sign", [x]), c.node("Mul", [r, _k(c, 0.5)])])


def erf(c, x: str) -> str:
    # below 1e-8, erf(x) = 2x/sqrt(pi) to double precision; float32 would flush x under 1e-38 to 0
    tiny = c.node("Less", [c.node("Abs", [x]), _k(c, 1e-8)])
    return c.node("Where", [tiny, c.node("Mul", [x, _k(c, 2 / math.sqrt(math.pi))]), _f32(c, "Erf", x)])


def _asin_small(c, z: str) -> str:
    """asin(z) for z in [0, 0.5], where cos(asin z) >= 0.86 keeps the Newton step well-conditioned."""
    y = _f32(c, "Asin", z)
    step = c.node("Div", [c.node("Sub", [c.node("Sin", [y]), z]), c.node("Cos", [y])])
    return c.node("Sub", [y, step])


def _asin_parts(c, x: str) -> tuple[str, str, str]:
    """-> (|x| > 0.5, y, |x|): y = asin(sqrt((1 - |x|) / 2)) where |x| > 0.5, else asin(|x|)
    (asin(w) = pi/2 - 2 asin(sqrt((1 - w) / 2)), and 1 - w is exact for w >= 0.5)."""
    w = c.node("Abs", [x])
    big = c.node("Greater", [w, _k(c, 0.5)])
    half = c.node("Sqrt", [c.node("Mul", [c.node("Sub", [_k(c, 1.0), w]), _k(c, 0.5)])])
    return big, _asin_small(c, c.node("Where", [big, half, w])), w


def asin(c, x: str) -> str:
    big, y, _ = _asin_parts(c, x)
    r = c.node("Where", [big, c.node("Sub", [_k(c, math.pi / 2), c.node("Add", [y, y])]), y])
    return c.node("Mul", [c.node("Sign", [x]), r])


def acos(c, x: str) -> str:
    # x > 0.5: 2y; x < -0.5: pi - 2y; otherwise pi/2 - asin(x) (no cancellation near +-1)
    big, y, _ = _asin_parts(c, x)
    twice = c.node("Add", [y, y])
    near = c.node("Where", [c.node("Less", [x, _k(c, 0.0)]), c.node("Sub", [_k(c, math.pi), twice]), twice])
    mid = c.node("Sub", [_k(c, math.pi / 2), c.node("Mul", [c.node("Sign", [x]), y])])
    return c.node("Where", [big, near, mid])


def atan(c, x: str) -> str:
    # on z = min(|x|, 1/|x|) in [0, 1]: atan(w) = pi/2 - atan(1/w), and 1/inf = 0 gives atan(inf) = pi/2
    w = c.node("Abs", [x])
    big = c.node("Greater", [w, _k(c, 1.0)])
    z = c.node("Where", [big, c.node("Reciprocal", [w]), w])
    y = _f32(c, "Atan", z)
    sin, cos = c.node("Sin", [y]), c.node("Cos", [y])
    # Newton on sin(y) - z cos(y) = 0, whose slope cos(y) + z sin(y) is >= 0.7 on [0, pi/4]
    f = c.node("Sub", [sin, c.node("Mul", [z, cos])])
    y = c.node("Sub", [y, c.node("Div", [f, c.node("Add", [cos, c.node("Mul", [z, sin])])])])
    r = c.node("Where", [big, c.node("Sub", [_k(c, math.pi / 2), y]), y])
    return c.node("Mul", [c.node("Sign", [x]), r])
