"""Elementwise ops: unary math, activations, binary arithmetic/comparison, where, cast."""
from __future__ import annotations

from ..optable import OpDef, TT, DTYPES, register
from ..params import Param, FLOAT, STR, INT
from ._util import broadcast, promote, as_float


def _unary(name, label, fn, doc, category="elementwise", params=(), float_out=True, keywords=()):
    def infer(ts, p):
        return [TT(ts[0].shape, as_float(ts[0].dtype) if float_out else ts[0].dtype)]

    def lower(ctx, xs, p, w):
        return fn(xs[0], p)
    register(OpDef(name, label, category, doc, tuple(params), ("x",), infer, lower=lower, keywords=keywords))


def _float(x):
    from tinygrad import dtypes
    return x if dtypes.is_float(x.dtype) else x.cast(dtypes.float32)


def _u(name, label, method, doc, **kw):
    _unary(name, label, lambda x, p: getattr(_float(x), method)(), doc, **kw)


# tinygrad's primitive unary ops
_u("exp2", "Exp2", "exp2", "2 raised to each element.")
_u("log2", "Log2", "log2", "Base-2 logarithm of each element.")
_u("sin", "Sin", "sin", "Sine of each element (radians).")
_u("sqrt", "Sqrt", "sqrt", "Square root of each element.")
_u("reciprocal", "Reciprocal", "reciprocal", "1 / x for each element.")
_unary("neg", "Neg", lambda x, p: -x, "Negates each element.", float_out=False)
_u("trunc", "Trunc", "trunc", "Rounds each element toward zero.")
# derived unary ops
_u("exp", "Exp", "exp", "e raised to each element.")
_u("log", "Log", "log", "Natural logarithm of each element.")
_u("cos", "Cos", "cos", "Cosine of each element (radians).")
_u("rsqrt", "Rsqrt", "rsqrt", "1 / sqrt(x) for each element.")
_u("square", "Square", "square", "x * x for each element.")
_u("floor", "Floor", "floor", "Rounds each element down.")
_u("ceil", "Ceil", "ceil", "Rounds each element up.")
_u("sign", "Sign", "sign", "-1, 0 or 1 by the sign of each element.")
_unary("abs", "Abs", lambda x, p: x.abs(), "Absolute value of each element.", float_out=False)
_unary("clip", "Clip", lambda x, p: _float(x).clip(p["min"], p["max"]), "Limits each element to [min, max].",
       params=(Param("min", FLOAT, -1.0, "lower bound"), Param("max", FLOAT, 1.0, "upper bound")))

# activations
_A = dict(category="activation")
_u("relu", "ReLU", "relu", "max(x, 0).", keywords=("rectifier",), **_A)
_u("gelu", "GELU", "gelu", "Gaussian error linear unit (tanh approximation).", **_A)
_u("silu", "SiLU", "silu", "x * sigmoid(x) (swish).", keywords=("swish",), **_A)
_u("sigmoid", "Sigmoid", "sigmoid", "1 / (1 + exp(-x)).", keywords=("logistic",), **_A)
_u("tanh", "Tanh", "tanh", "Hyperbolic tangent.", **_A)
_u("softplus", "Softplus", "softplus", "log(1 + exp(x)).", **_A)
_u("mish", "Mish", "mish", "x * tanh(softplus(x)).", **_A)
_u("hardswish", "HardSwish", "hardswish", "x * relu6(x + 3) / 6.", **_A)
_u("relu6", "ReLU6", "relu6", "min(max(x, 0), 6).", **_A)
_unary("leaky_relu", "Leaky ReLU", lambda x, p: _float(x).leaky_relu(p["negative_slope"]),
       "x if x > 0 else negative_slope * x.",
       params=(Param("negative_slope", FLOAT, 0.01, "slope for negative inputs", min=0.0),), **_A)
_unary("elu", "ELU", lambda x, p: _float(x).elu(p["alpha"]), "x if x > 0 else alpha * (exp(x) - 1).",
       params=(Param("alpha", FLOAT, 1.0, "scale of the negative part", min=0.0),), **_A)
_AX = (Param("axis", INT, -1, "axis to normalise over"),)


def _softmax_infer(ts, p):
    from ._util import norm_axis
    norm_axis(p["axis"], len(ts[0].shape))
    return [TT(ts[0].shape, as_float(ts[0].dtype))]


register(OpDef("softmax", "Softmax", "activation", "exp(x) / sum(exp(x)) along an axis.", _AX, ("x",),
               _softmax_infer, lower=lambda ctx, xs, p, w: _float(xs[0]).softmax(p["axis"])))
register(OpDef("log_softmax", "Log-Softmax", "activation", "log(softmax(x)) along an axis, computed stably.",
               _AX, ("x",), _softmax_infer, lower=lambda ctx, xs, p, w: _float(xs[0]).log_softmax(p["axis"])))


# binary ops: numpy broadcasting; two graph inputs
def _binary(name, label, fn, doc, out_dtype=None, keywords=()):
    def infer(ts, p):
        return [TT(broadcast(ts[0].shape, ts[1].shape), out_dtype or promote(ts[0].dtype, ts[1].dtype))]
    register(OpDef(name, label, "elementwise", doc, (), ("a", "b"), infer,
                   lower=lambda ctx, xs, p, w: fn(xs[0], xs[1]), keywords=keywords))


_binary("add", "Add", lambda a, b: a + b, "a + b, broadcasting.", keywords=("plus", "sum"))
_binary("sub", "Subtract", lambda a, b: a - b, "a - b, broadcasting.", keywords=("minus",))
_binary("mul", "Multiply", lambda a, b: a * b, "a * b, broadcasting.", keywords=("times", "product"))
_binary("div", "Divide", lambda a, b: _float(a) / _float(b), "a / b (true division), broadcasting.")
_binary("pow", "Power", lambda a, b: _float(a).pow(b), "a raised to the power b, broadcasting.")
_binary("maximum", "Maximum", lambda a, b: a.maximum(b), "Elementwise maximum of a and b.")
_binary("minimum", "Minimum", lambda a, b: a.minimum(b), "Elementwise minimum of a and b.")
_binary("less", "Less", lambda a, b: a < b, "a < b (bool).", out_dtype="bool")
_binary("less_equal", "Less or Equal", lambda a, b: a <= b, "a <= b (bool).", out_dtype="bool")
_binary("greater", "Greater", lambda a, b: a > b, "a > b (bool).", out_dtype="bool")
_binary("greater_equal", "Greater or Equal", lambda a, b: a >= b, "a >= b (bool).", out_dtype="bool")
_binary("equal", "Equal", lambda a, b: a.eq(b), "a == b (bool).", out_dtype="bool")
_binary("not_equal", "Not Equal", lambda a, b: a.ne(b), "a != b (bool).", out_dtype="bool")


def _where_infer(ts, p):
    return [TT(broadcast(ts[0].shape, ts[1].shape, ts[2].shape), promote(ts[1].dtype, ts[2].dtype))]


register(OpDef("where", "Where", "elementwise", "Picks a where cond is true, else b (broadcasting).", (),
               ("cond", "a", "b"), _where_infer,
               lower=lambda ctx, xs, p, w: xs[0].cast("bool").where(xs[1], xs[2])))


def _cast_lower(ctx, xs, p, w):
    from ..compile import tg_dtype
    return xs[0].cast(tg_dtype(p["dtype"]))


register(OpDef("cast", "Cast", "elementwise", "Converts the tensor to another dtype.",
               (Param("dtype", STR, "float32", "target dtype", choices=DTYPES),), ("x",),
               lambda ts, p: [TT(ts[0].shape, p["dtype"])], lower=_cast_lower, keywords=("convert", "astype")))
