"""More binary and ternary elementwise ops from tinygrad's Tensor: modulo and floor division,
bitwise and shift ops on integers, copysign, logaddexp, isclose, lerp and masked_fill."""
from __future__ import annotations

from ..optable import OpDef, TT, register
from ..params import Param, FLOAT, BOOL
from ._util import broadcast, promote, as_float
from . import _onnx as ox
from .math_ops import need_integer


def _op(name, label, doc, inputs, infer_dtype, lower, onnx, params=(), keywords=()):
    """An elementwise op over broadcast inputs; infer_dtype(types, params) gives the output dtype
    (and refuses input dtypes the op cannot take, naming the input)."""
    def infer(ts, p):
        return [TT(broadcast(*(t.shape for t in ts)), infer_dtype(ts, p))]
    register(OpDef(name, label, "elementwise", doc, tuple(params), inputs, infer,
                   lower=lambda ctx, xs, p, w: lower(*xs, p), keywords=keywords, onnx=onnx))


def _cast_in(c, xs, ts, dt):
    return [c.cast(x, dt, t.dtype) for x, t in zip(xs, ts)]


def _common(ts, p):
    return promote(*(t.dtype for t in ts))


def _common_float(ts, p):
    return as_float(_common(ts, p))


# ---- modulo and floor division: integers stay integers (tinygrad's FLOORMOD/CMOD/FLOORDIV);
# bool pairs, which tinygrad computes in floating point, give float32
def _numeric(ts, p):
    dt = _common(ts, p)
    return "float32" if dt == "bool" else dt


def _is_int(dt):
    return dt not in ("bool", "float32", "float16", "bfloat16", "float64")


# Float remainders are exact, as C's fmod, numpy and PyTorch give them: a - trunc(a / b) * b loses
# the answer once a / b has more digits than the dtype (1e10 mod 3 in float32 came out 256).
# float16/bfloat16/float32 values are reduced in float64 by b * 2**k for falling k, each step's
# quotient q small enough that q * b * 2**k is exact. Per dtype: (log2 of the largest |a / b|,
# significand bits).
_REDUCE_STEPS = {"float16": (40, 11), "bfloat16": (261, 8), "float32": (277, 24)}


def _fmod_float(a, b):
    """fmod of two tensors of one float dtype: exact for float16/bfloat16/float32 where the device
    has float64. float64 (and float32 on devices without float64) take one step, exact while
    |a / b| < 2**52 where the compiler fuses the multiply-subtract (x86-64, arm64), else to about
    an ulp of a; beyond 2**52 a float64 remainder is not exact."""
    from tinygrad import Device, dtypes
    from ..compile import dtype_name
    out, ks, work = a.dtype, [0], a.dtype
    info = _REDUCE_STEPS.get(dtype_name(out))
    if info is not None and dtypes.float64 in Device[a.device].renderer.supported_dtypes():
        gap, bits = info
        step, work = 52 - bits, dtypes.float64  # q < 2**step: q * b needs at most 52 + 1 bits
        ks = list(range(gap - step, 0, -step)) + [0]
    x, y = a.abs().cast(work), b.abs().cast(work)
    finite = y.isinf().logical_not()
    y = finite.where(y, 1.0)  # fmod(a, inf) is a (set below); 1 keeps 0 * inf out of the steps
    for k in ks:
        ys = y * float(2.0 ** k)
        x = x - (x / ys).trunc() * ys
        # the rounded quotient can be one off: bring x back into [0, ys)
        x = (x < 0).where(x + ys, x)
        x = (x >= ys).where(x - ys, x)
    r = x.cast(out).copysign(a)  # the sign of a, -0.0 included
    return (finite | a.isinf() | a.isnan()).where(r, a)


def _float_pair(a, b):
    """-> (a, b) in the output dtype (a bool pair computes in float32), or None for integers."""
    from tinygrad import dtypes
    from ..compile import dtype_name, tg_dtype
    dt = tg_dtype(_numeric([TT((), dtype_name(x.dtype)) for x in (a, b)], {}))
    return (a.cast(dt), b.cast(dt)) if dtypes.is_float(dt) else None


def _flips(r, b):
    """Where Python's % differs from fmod: a nonzero remainder whose sign is not b's."""
    return r.ne(0) & (r < 0).ne(b < 0)


def _mod_lower(a, b, p, floor):
    ab = _float_pair(a, b)
    if ab is None:
        return a.mod(b) if floor else a.fmod(b)
    r = _fmod_float(*ab)
    return _flips(r, ab[1]).where(r + ab[1], r) if floor else r


def _floor_divide_lower(a, b, p):
    """PyTorch's floor division of floats: (a - fmod(a, b)) / b is (nearly) a whole number, and
    rounding it to the nearest one undoes the division's rounding; floor(a / b) alone is one off
    where a / b rounds up to a whole number (and ONNX, dividing once, rounds differently)."""
    from tinygrad import dtypes
    ab = _float_pair(a, b)
    if ab is None:
        return a // b
    out = ab[0].dtype
    if out in (dtypes.float16, dtypes.bfloat16):  # in float32 then rounded once, as PyTorch does
        return _floor_divide_lower(ab[0].cast(dtypes.float32), ab[1].cast(dtypes.float32), p).cast(out)
    a, b = ab
    m = _fmod_float(a, b)
    div = (a - m) / b
    div = _flips(m, b).where(div - 1, div)
    fl = div.floor()
    fl = (div - fl > 0.5).where(fl + 1, fl)
    q = a / b
    return b.ne(0).where(div.ne(0).where(fl, (q * 0).copysign(q)), q)  # a / 0 is +-inf or NaN


def _mod_onnx(c, xs, p, ts):
    dt = c.out_types[0].dtype
    a, b = _cast_in(c, xs, ts, dt)
    if _is_int(dt):
        return c.node("Mod", [a, b], fmod=0)  # sign of the divisor, as Python's %
    r = c.node("Mod", [a, b], fmod=1)  # C's fmod: exact
    return ox.where(c, _flips_onnx(c, r, b, dt), c.node("Add", [r, b]), r, dt)


def _flips_onnx(c, r, b, dt):
    zero = c.const(0, dt)
    return c.node("And", [c.node("Not", [c.node("Equal", [r, zero])]),
                          c.node("Xor", [c.node("Less", [r, zero]), c.node("Less", [b, zero])])])


def _fmod_onnx(c, xs, p, ts):
    return c.node("Mod", _cast_in(c, xs, ts, c.out_types[0].dtype), fmod=1)


def _floor_divide_onnx(c, xs, p, ts):
    dt = c.out_types[0].dtype
    a, b = _cast_in(c, xs, ts, dt)
    if _is_int(dt):  # ONNX Div truncates; a - (a mod b) divides exactly
        return c.node("Div", [c.node("Sub", [a, c.node("Mod", [a, b], fmod=0)]), b])
    if dt in ("float16", "bfloat16"):  # in float32, as the lowering
        return c.cast(_floor_div_float(c, c.cast(a, "float32", dt), c.cast(b, "float32", dt), "float32"), dt, "float32")
    return _floor_div_float(c, a, b, dt)


def _floor_div_float(c, a, b, dt):
    m = c.node("Mod", [a, b], fmod=1)
    one, zero = c.const(1, dt), c.const(0, dt)
    div = c.node("Div", [c.node("Sub", [a, m]), b])
    div = ox.where(c, _flips_onnx(c, m, b, dt), c.node("Sub", [div, one]), div, dt)
    fl = c.node("Floor", [div])
    fl = ox.where(c, c.node("Greater", [c.node("Sub", [div, fl]), c.const(0.5, dt)]), c.node("Add", [fl, one]), fl, dt)
    q = c.node("Div", [a, b])
    signed_zero = c.node("Mul", [c.node("Sign", [q]), zero])  # -0.0 where a / b is negative
    fl = ox.where(c, c.node("Equal", [div, zero]), signed_zero, fl, dt)
    return ox.where(c, c.node("Equal", [b, zero]), q, fl, dt)


_op("mod", "Modulo", "a mod b with the sign of b (Python's %), broadcasting.", ("a", "b"), _numeric,
    lambda a, b, p: _mod_lower(a, b, p, True), _mod_onnx, keywords=("remainder", "%", "modulus"))
_op("fmod", "Fmod", "a mod b with the sign of a (C's fmod), broadcasting.", ("a", "b"), _numeric,
    lambda a, b, p: _mod_lower(a, b, p, False), _fmod_onnx, keywords=("remainder", "truncated modulo"))
_op("floor_divide", "Floor Divide", "floor(a / b) (Python's //), broadcasting.", ("a", "b"), _numeric,
    _floor_divide_lower, _floor_divide_onnx, keywords=("//", "floordiv", "integer division"))


# ---- bitwise ops: integers and bool only
def _bits(op):
    def infer(ts, p):
        need_integer(ts, ("a", "b"), op)
        return _common(ts, p)
    return infer


def _bitwise_onnx(onnx_int, onnx_bool):
    def entry(c, xs, p, ts):
        dt = c.out_types[0].dtype
        if dt == "bool":
            return c.node(onnx_bool, xs)
        if c.opset < 18:
            c.fail(f"ONNX has {onnx_int} from opset 18 on", fix="export with opset 18 or later")
        return c.node(onnx_int, _cast_in(c, xs, ts, dt))
    return entry


for _name, _label, _int, _bool, _kw in (("bitwise_and", "Bitwise And", "BitwiseAnd", "And", ("&", "logical and")),
                                        ("bitwise_or", "Bitwise Or", "BitwiseOr", "Or", ("|", "logical or")),
                                        ("bitwise_xor", "Bitwise Xor", "BitwiseXor", "Xor", ("^", "logical xor"))):
    _op(_name, _label, f"{_label.split()[1]} of the bits of integers a and b (logical for bool), broadcasting.",
        ("a", "b"), _bits(_name), (lambda m: lambda a, b, p: getattr(a, m)(b))(_name), _bitwise_onnx(_int, _bool),
        keywords=_kw)


def _shift_infer(op):
    def infer(ts, p):
        need_integer(ts, ("a", "b"), op, bool_ok=False)
        return _common(ts, p)
    return infer


_UNSIGNED = {"int8": "uint8", "int16": "uint16", "int32": "uint32", "int64": "uint64", "uint8": "uint8"}


def _shift_onnx(direction):
    """ONNX BitShift takes unsigned integers: shift the same bits as unsigned (a left shift is
    the same for both); a right shift of a negative number shifts ones in (~(~a >> b))."""
    def entry(c, xs, p, ts):
        from onnx import TensorProto
        dt = c.out_types[0].dtype
        u = _UNSIGNED[dt]
        a, b = _cast_in(c, xs, ts, dt)

        def shift(x):
            ux, ub = (c.node("Cast", [v], to=getattr(TensorProto, u.upper())) for v in (x, b))
            return c.node("Cast", [c.node("BitShift", [ux, ub], direction=direction)], to=c.onnx_dtype(dt))
        if direction == "LEFT" or u == dt:
            return shift(a)
        flip = c.const(-1, dt)  # ~v == -1 - v
        neg = c.node("Sub", [flip, shift(c.node("Sub", [flip, a]))])
        return ox.where(c, c.node("Less", [a, c.const(0, dt)]), neg, shift(a), dt)
    return entry


_op("lshift", "Left Shift", "a << b: the bits of integer a shifted left by b (0 <= b < bits), broadcasting.",
    ("a", "b"), _shift_infer("lshift"), lambda a, b, p: a.lshift(b), _shift_onnx("LEFT"), keywords=("<<", "shift"))
_op("rshift", "Right Shift", "a >> b: integer a shifted right by b bits, keeping the sign (0 <= b < bits).",
    ("a", "b"), _shift_infer("rshift"), lambda a, b, p: a.rshift(b), _shift_onnx("RIGHT"), keywords=(">>", "shift"))


# ---- sign, log-sum-exp, closeness
def _copysign_onnx(c, xs, p, ts):
    dt = c.out_types[0].dtype
    a, b = _cast_in(c, xs, ts, dt)
    if dt in ("bool", "uint8"):  # b is never negative: |a| is a
        return c.node("Identity", [a])
    neg = c.node("Less", [b, c.const(0, dt)])
    if not _is_int(dt):  # -0.0 counts as negative: 1 / -0.0 is -inf
        neg = c.node("Or", [neg, c.node("Less", [c.node("Reciprocal", [b]), c.const(0, dt)])])
    mag = c.node("Abs", [a])
    return ox.where(c, neg, c.node("Neg", [mag]), mag, dt)


def _logaddexp_onnx(c, xs, p, ts):
    a, b = _cast_in(c, xs, ts, c.out_types[0].dtype)
    m = c.node("Max", [a, b])
    s = c.node("Add", [c.node("Exp", [c.node("Sub", [a, m])]), c.node("Exp", [c.node("Sub", [b, m])])])
    return c.node("Add", [c.node("Log", [s]), m])


_op("copysign", "Copy Sign", "|a| with the sign of b (-0.0 counts as negative), broadcasting.", ("a", "b"), _common,
    lambda a, b, p: a.copysign(b), _copysign_onnx, keywords=("sign",))
_op("logaddexp", "LogAddExp", "log(exp(a) + exp(b)), computed stably, broadcasting.", ("a", "b"), _common_float,
    lambda a, b, p: _logaddexp(a, b), _logaddexp_onnx,
    keywords=("softmax", "log-sum-exp"))


def _to_float(*xs):
    """The lowering side of `_common_float`: every input cast to the output dtype first."""
    from ..compile import dtype_name, tg_dtype
    dt = tg_dtype(as_float(promote(*(dtype_name(x.dtype) for x in xs))))
    return [x.cast(dt) for x in xs]


def _logaddexp(a, b):
    a, b = _to_float(a, b)
    return a.logaddexp(b)


def _isclose_lower(a, b, p):
    a, b = _to_float(a, b)  # in floating point: an integer difference could wrap around (int8 100 - -100)
    return a.isclose(b, rtol=p["rtol"], atol=p["atol"], equal_nan=p["equal_nan"])


def _isclose_onnx(c, xs, p, ts):
    dt = as_float(promote(ts[0].dtype, ts[1].dtype))
    a, b = _cast_in(c, xs, ts, dt)
    nan = [c.node("IsNaN", [v]) for v in (a, b)]
    inf = [c.node("IsInf", [v if dt in ("float32", "float64") else c.cast(v, "float32", dt)]) for v in (a, b)]
    finite = [c.node("Not", [c.node("Or", [i, n])]) for i, n in zip(inf, nan)]
    tol = c.node("Add", [c.const(p["atol"], dt), c.node("Mul", [c.const(p["rtol"], dt), c.node("Abs", [b])])])
    near = c.node("LessOrEqual", [c.node("Abs", [c.node("Sub", [a, b])]), tol])
    out = c.node("Or", [c.node("And", [c.node("And", finite), near]),
                        c.node("And", [c.node("Or", inf), c.node("Equal", [a, b])])])
    return c.node("Or", [out, c.node("And", nan)]) if p["equal_nan"] else out


_op("isclose", "Is Close", "|a - b| <= atol + rtol * |b| (bool); equal infinities are close.", ("a", "b"),
    lambda ts, p: "bool", _isclose_lower, _isclose_onnx,
    params=(Param("rtol", FLOAT, 1e-5, "relative tolerance", min=0.0),
            Param("atol", FLOAT, 1e-8, "absolute tolerance", min=0.0),
            Param("equal_nan", BOOL, False, "count NaN == NaN as close")), keywords=("allclose", "approximately equal"))


# ---- ternary ops
def _lerp(a, b, w, p):
    a, b, w = _to_float(a, b, w)  # in floating point: tinygrad's uint8 fixed-point path is not a graph op
    return a.lerp(b, w)


def _lerp_onnx(c, xs, p, ts):
    a, b, w = _cast_in(c, xs, ts, c.out_types[0].dtype)
    return c.node("Add", [a, c.node("Mul", [c.node("Sub", [b, a]), w])])


_op("lerp", "Lerp", "start + weight * (end - start), broadcasting.", ("start", "end", "weight"), _common_float,
    _lerp, _lerp_onnx, keywords=("linear interpolation", "mix", "blend"))


def _pad_value(value, dtype):
    from .movement import _pad_value as fit  # the fill value check pad uses (int8 cannot hold 0.5)
    return fit(value, dtype)


def _masked_fill_infer(ts, p):
    _pad_value(p["value"], ts[0].dtype)
    return ts[0].dtype


def _masked_fill_lower(x, mask, p):
    from tinygrad import dtypes
    from ..compile import dtype_name
    value = _pad_value(p["value"], dtype_name(x.dtype))
    return mask.cast(dtypes.bool).where(value, x)


def _masked_fill_onnx(c, xs, p, ts):
    dt = ts[0].dtype
    return ox.where(c, c.cast(xs[1], "bool", ts[1].dtype), c.const(_pad_value(p["value"], dt), dt), xs[0], dt)


_op("masked_fill", "Masked Fill", "value where mask is true (nonzero), else x, broadcasting.", ("x", "mask"),
    _masked_fill_infer, _masked_fill_lower, _masked_fill_onnx, params=(Param("value", FLOAT, 0.0, "fill value"),),
    keywords=("mask", "fill", "where"))
