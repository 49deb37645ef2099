"""Elementwise ops: unary math, activations, binary arithmetic/comparison, where, cast."""
from __future__ import annotations

import math
import operator

from ..optable import OpDef, TT, DTYPES, register
from ..params import Param, FLOAT, STR, INT
from ._util import broadcast, promote, as_float, float_tensor as _float
from . import _onnx as ox


def _unary(name, label, fn, doc, category="elementwise", params=(), float_out=True, keywords=(), onnx=None):
    def infer(ts, p):
        return [TT(ts[0].shape, as_float(ts[0].dtype) if float_out else ts[0].dtype)]

    def lower(ctx, xs, p, w):
        return fn(xs[0], p)
    register(OpDef(name, label, category, doc, tuple(params), ("x",), infer, lower=lower, keywords=keywords, onnx=onnx))


def _float_pair(a, b):
    """True division and pow compute in floating point: if neither side is a float, a becomes
    float32; otherwise tinygrad's promotion gives the dtype inference says (int32 / float16 -> float16)."""
    from tinygrad import dtypes
    return (a, b) if dtypes.is_float(a.dtype) or dtypes.is_float(b.dtype) else (_float(a), b)


def _u(name, label, method, doc, **kw):
    _unary(name, label, lambda x, p: getattr(_float(x), method)(), doc, **kw)


# tinygrad's primitive unary ops
# ONNX has no Trunc: round toward zero = ceil for negatives, floor otherwise
_trunc_onnx = ox.composite(lambda c, x, dt: c.node("Where", [c.node("Less", [x, c.const(0.0, dt)]),
                                                             c.node("Ceil", [x]), c.node("Floor", [x])]))
_u("exp2", "Exp2", "exp2", "2 raised to each element.", onnx=ox.composite(lambda c, x, dt: c.node("Pow", [c.const(2.0, dt), x])))
_u("log2", "Log2", "log2", "Base-2 logarithm of each element.",
   onnx=ox.composite(lambda c, x, dt: c.node("Div", [c.node("Log", [x]), c.const(math.log(2.0), dt)])))
_u("sin", "Sin", "sin", "Sine of each element (radians).", onnx=ox.unary("Sin"))
_u("sqrt", "Sqrt", "sqrt", "Square root of each element.", onnx=ox.unary("Sqrt"))
_u("reciprocal", "Reciprocal", "reciprocal", "1 / x for each element.", onnx=ox.unary("Reciprocal"))


def _neg_onnx(c, xs, p, ts):
    """ONNX Neg takes no uint8 or bool: tinygrad wraps uint8 around (-5 is 251) and negates bool as not."""
    dt = ts[0].dtype
    if dt == "bool":
        return c.node("Not", [xs[0]])
    return c.node("Sub", [c.const(0, dt), xs[0]]) if dt == "uint8" else c.node("Neg", [xs[0]])


_unary("neg", "Neg", lambda x, p: -x, "Negates each element.", float_out=False, onnx=_neg_onnx)
_u("trunc", "Trunc", "trunc", "Rounds each element toward zero.", onnx=_trunc_onnx)
# derived unary ops
_u("exp", "Exp", "exp", "e raised to each element.", onnx=ox.unary("Exp"))
_u("log", "Log", "log", "Natural logarithm of each element.", onnx=ox.unary("Log"))
_u("cos", "Cos", "cos", "Cosine of each element (radians).", onnx=ox.unary("Cos"))
_u("rsqrt", "Rsqrt", "rsqrt", "1 / sqrt(x) for each element.",
   onnx=ox.composite(lambda c, x, dt: c.node("Reciprocal", [c.node("Sqrt", [x])])))
_u("square", "Square", "square", "x * x for each element.", onnx=ox.composite(lambda c, x, dt: c.node("Mul", [x, x])))
_u("floor", "Floor", "floor", "Rounds each element down.", onnx=ox.unary("Floor"))
_u("ceil", "Ceil", "ceil", "Rounds each element up.", onnx=ox.unary("Ceil"))
_u("sign", "Sign", "sign", "-1, 0 or 1 by the sign of each element.", onnx=ox.unary("Sign"))
_unary("abs", "Abs", lambda x, p: x.abs(), "Absolute value of each element.", float_out=False,
       onnx=lambda c, xs, p, ts: c.node("Identity" if ts[0].dtype == "bool" else "Abs", [xs[0]]))  # no bool Abs
_unary("clip", "Clip", lambda x, p: _float(x).clip(p["min"], p["max"]), "Limits each element to [min, max].",
       params=(Param("min", FLOAT, -1.0, "lower bound"), Param("max", FLOAT, 1.0, "upper bound")),
       onnx=lambda c, xs, p, ts: c.node("Clip", [ox.to_float(c, xs[0], ts[0]), c.const(p["min"], as_float(ts[0].dtype)),
                                                 c.const(p["max"], as_float(ts[0].dtype))]))


def _gelu_onnx(c, x, dt):
    """tanh approximation, as tinygrad computes it; opset 20 has it as one op."""
    if c.opset >= 20:
        return c.node("Gelu", [x], approximate="tanh")
    cube = c.node("Mul", [c.node("Mul", [x, x]), x])
    inner = c.node("Mul", [c.const(math.sqrt(2 / math.pi), dt), c.node("Add", [x, c.node("Mul", [c.const(0.044715, dt), cube])])])
    return c.node("Mul", [c.node("Mul", [c.const(0.5, dt), x]), c.node("Add", [c.const(1.0, dt), c.node("Tanh", [inner])])])


def _mish_onnx(c, x, dt):
    return c.node("Mish", [x]) if c.opset >= 18 else c.node("Mul", [x, c.node("Tanh", [c.node("Softplus", [x])])])


# activations
_A = dict(category="activation")
_u("relu", "ReLU", "relu", "max(x, 0).", keywords=("rectifier",), onnx=ox.unary("Relu"), **_A)
_u("gelu", "GELU", "gelu", "Gaussian error linear unit (tanh approximation).", onnx=ox.composite(_gelu_onnx), **_A)
_u("silu", "SiLU", "silu", "x * sigmoid(x) (swish).", keywords=("swish",),
   onnx=ox.composite(lambda c, x, dt: c.node("Mul", [x, c.node("Sigmoid", [x])])), **_A)
_u("sigmoid", "Sigmoid", "sigmoid", "1 / (1 + exp(-x)).", keywords=("logistic",), onnx=ox.unary("Sigmoid"), **_A)
_u("tanh", "Tanh", "tanh", "Hyperbolic tangent.", onnx=ox.unary("Tanh"), **_A)
_u("softplus", "Softplus", "softplus", "log(1 + exp(x)).", onnx=ox.unary("Softplus"), **_A)
_u("mish", "Mish", "mish", "x * tanh(softplus(x)).", onnx=ox.composite(_mish_onnx), **_A)
_u("hardswish", "HardSwish", "hardswish", "x * relu6(x + 3) / 6.", onnx=ox.unary("HardSwish"), **_A)
_u("relu6", "ReLU6", "relu6", "min(max(x, 0), 6).",
   onnx=ox.composite(lambda c, x, dt: c.node("Clip", [x, c.const(0.0, dt), c.const(6.0, dt)])), **_A)
_unary("leaky_relu", "Leaky ReLU", lambda x, p: _float(x).leaky_relu(p["negative_slope"]),
       "x if x > 0 else negative_slope * x.",
       params=(Param("negative_slope", FLOAT, 0.01, "slope for negative inputs", min=0.0),),
       onnx=ox.unary_param("LeakyRelu", alpha="negative_slope"), **_A)
_unary("elu", "ELU", lambda x, p: _float(x).elu(p["alpha"]), "x if x > 0 else alpha * (exp(x) - 1).",
       params=(Param("alpha", FLOAT, 1.0, "scale of the negative part", min=0.0),),
       onnx=ox.unary_param("Elu", alpha="alpha"), **_A)
_AX = (Param("axis", INT, -1, "axis to normalise over"),)


def _softmax_infer(ts, p):
    from ._util import norm_axis
    norm_axis(p["axis"], len(ts[0].shape))
    return [TT(ts[0].shape, as_float(ts[0].dtype))]


def _softmax_onnx(op_type):
    return lambda c, xs, p, ts: c.node(op_type, [ox.to_float(c, xs[0], ts[0])], axis=p["axis"])


register(OpDef("softmax", "Softmax", "activation", "exp(x) / sum(exp(x)) along an axis.", _AX, ("x",),
               _softmax_infer, lower=lambda ctx, xs, p, w: _float(xs[0]).softmax(p["axis"]), onnx=_softmax_onnx("Softmax")))
register(OpDef("log_softmax", "Log-Softmax", "activation", "log(softmax(x)) along an axis, computed stably.",
               _AX, ("x",), _softmax_infer, lower=lambda ctx, xs, p, w: _float(xs[0]).log_softmax(p["axis"]),
               onnx=_softmax_onnx("LogSoftmax")))


# binary ops: numpy broadcasting; two graph inputs
def _binary(name, label, fn, doc, out_dtype=None, keywords=(), onnx=None):
    def infer(ts, p):
        dt = promote(ts[0].dtype, ts[1].dtype)
        return [TT(broadcast(ts[0].shape, ts[1].shape), out_dtype(dt) if callable(out_dtype) else out_dtype or dt)]
    register(OpDef(name, label, "elementwise", doc, (), ("a", "b"), infer,
                   lower=lambda ctx, xs, p, w: fn(xs[0], xs[1]), keywords=keywords, onnx=onnx))


_binary("add", "Add", lambda a, b: a + b, "a + b, broadcasting.", keywords=("plus", "sum"), onnx=ox.binary("Add"))
_binary("sub", "Subtract", lambda a, b: a - b, "a - b, broadcasting.", keywords=("minus",), onnx=ox.binary("Sub"))
_binary("mul", "Multiply", lambda a, b: a * b, "a * b, broadcasting.", keywords=("times", "product"), onnx=ox.binary("Mul"))
_binary("div", "Divide", lambda a, b: operator.truediv(*_float_pair(a, b)), "a / b (true division), broadcasting.",
        out_dtype=as_float, onnx=ox.binary("Div"))
_binary("pow", "Power", lambda a, b: operator.pow(*_float_pair(a, b)), "a raised to the power b, broadcasting.",
        out_dtype=as_float, onnx=ox.binary("Pow"))
_binary("maximum", "Maximum", lambda a, b: a.maximum(b), "Elementwise maximum of a and b.", onnx=ox.binary("Max"))
_binary("minimum", "Minimum", lambda a, b: a.minimum(b), "Elementwise minimum of a and b.", onnx=ox.binary("Min"))
_binary("less", "Less", lambda a, b: a < b, "a < b (bool).", out_dtype="bool", onnx=ox.binary("Less", compare=True))
_binary("less_equal", "Less or Equal", lambda a, b: a <= b, "a <= b (bool).", out_dtype="bool",
        onnx=ox.binary("LessOrEqual", compare=True))
_binary("greater", "Greater", lambda a, b: a > b, "a > b (bool).", out_dtype="bool", onnx=ox.binary("Greater", compare=True))
_binary("greater_equal", "Greater or Equal", lambda a, b: a >= b, "a >= b (bool).", out_dtype="bool",
        onnx=ox.binary("GreaterOrEqual", compare=True))
_binary("equal", "Equal", lambda a, b: a.eq(b), "a == b (bool).", out_dtype="bool", onnx=ox.binary("Equal", compare=True))
_binary("not_equal", "Not Equal", lambda a, b: a.ne(b), "a != b (bool).", out_dtype="bool",
        onnx=ox.binary("Equal", compare=True, negate=True))


def _where_infer(ts, p):
    return [TT(broadcast(ts[0].shape, ts[1].shape, ts[2].shape), promote(ts[1].dtype, ts[2].dtype))]


register(OpDef("where", "Where", "elementwise", "Picks a where cond is true, else b (broadcasting).", (),
               ("cond", "a", "b"), _where_infer,
               lower=lambda ctx, xs, p, w: xs[0].cast("bool").where(xs[1], xs[2]),
               onnx=lambda c, xs, p, ts: ox.where(c, c.cast(xs[0], "bool", ts[0].dtype), *[
                   c.cast(x, c.out_types[0].dtype, t.dtype) for x, t in zip(xs[1:], ts[1:])], c.out_types[0].dtype)))


def _cast_lower(ctx, xs, p, w):
    from ..compile import tg_dtype
    return xs[0].cast(tg_dtype(p["dtype"]))


register(OpDef("cast", "Cast", "elementwise", "Converts the tensor to another dtype.",
               (Param("dtype", STR, "float32", "target dtype", choices=DTYPES),), ("x",),
               lambda ts, p: [TT(ts[0].shape, p["dtype"])], lower=_cast_lower, keywords=("convert", "astype"),
               onnx=lambda c, xs, p, ts: c.node("Cast", [xs[0]], to=c.onnx_dtype(p["dtype"]))))
