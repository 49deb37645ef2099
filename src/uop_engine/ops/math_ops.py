"""More unary elementwise ops from tinygrad's Tensor: (inverse) trigonometric and hyperbolic
functions, erf, round, log10, NaN/infinity tests, logical/bitwise not, and more activations."""
from __future__ import annotations

import math

from ..errors import GraphError
from ..optable import OpDef, TT, FLOAT_DTYPES, register
from ..params import Param, FLOAT, BOOL
from ._util import as_float, float_tensor as _float
from .elementwise import _u, _unary, _softmax_infer, _A, _AX
from . import _onnx as ox, _onnx_double as dbl


def _trig(op_type: str, double):
    """The ONNX op, or for float64 (no onnxruntime CPU kernel) its composition in _onnx_double."""
    def entry(c, xs, p, ts):
        x = ox.to_float(c, xs[0], ts[0])
        return double(c, x) if ts[0].dtype == "float64" else c.node(op_type, [x])
    return entry


def _atan(x):
    """Tensor.atan is asin(x / sqrt(1 + x*x)), which is 0 once x*x overflows (atan(1e20) in float32):
    beyond |x| = 1 use atan(x) = +-pi/2 - atan(1/x)."""
    big = x.abs() > 1
    inner = big.where(x.reciprocal(), x).atan()
    return big.where(x.sign() * (math.pi / 2) - inner, inner)


def _asinh(x):
    """On |x|, signed after: Tensor.asinh's log(x + sqrt(x*x + 1)) cancels for negative x (asinh(-30)
    was off by 1e-4 in float32)."""
    return x.sign() * x.abs().asinh()


# trigonometric and hyperbolic functions: integer inputs are computed in float32 (as sin/cos)
_u("tan", "Tan", "tan", "Tangent of each element (radians).", onnx=_trig("Tan", dbl.tan))
_u("asin", "Asin", "asin", "Inverse sine of each element, for x in [-1, 1].", keywords=("arcsin",),
   onnx=_trig("Asin", dbl.asin))
_u("acos", "Acos", "acos", "Inverse cosine of each element, for x in [-1, 1].", keywords=("arccos",),
   onnx=_trig("Acos", dbl.acos))
_unary("atan", "Atan", lambda x, p: _atan(_float(x)), "Inverse tangent of each element.", keywords=("arctan",),
       onnx=_trig("Atan", dbl.atan))
_u("sinh", "Sinh", "sinh", "Hyperbolic sine of each element.", onnx=_trig("Sinh", dbl.sinh))
_u("cosh", "Cosh", "cosh", "Hyperbolic cosine of each element.", onnx=_trig("Cosh", dbl.cosh))
_unary("asinh", "Asinh", lambda x, p: _asinh(_float(x)), "Inverse hyperbolic sine of each element.",
       keywords=("arcsinh",), onnx=_trig("Asinh", dbl.asinh))
_u("acosh", "Acosh", "acosh", "Inverse hyperbolic cosine of each element, for x >= 1.", keywords=("arccosh",),
   onnx=_trig("Acosh", dbl.acosh))
_u("atanh", "Atanh", "atanh", "Inverse hyperbolic tangent of each element, for x in (-1, 1).", keywords=("arctanh",),
   onnx=_trig("Atanh", dbl.atanh))
_u("erf", "Erf", "erf", "Gauss error function of each element.", keywords=("error function",),
   onnx=_trig("Erf", dbl.erf))
# tinygrad's round and ONNX Round both round halves to the nearest even number
_u("round", "Round", "round", "Rounds each element to the nearest integer (halves to even).", keywords=("rint",),
   onnx=ox.unary("Round"))
_u("log10", "Log10", "log10", "Base-10 logarithm of each element.",
   onnx=ox.composite(lambda c, x, dt: c.node("Mul", [c.node("Log", [x]), c.const(1 / math.log(10.0), dt)])))


# tests that give bool for every input dtype (an integer or bool is never NaN or infinite)
def _predicate(name, label, fn, doc, onnx, params=(), keywords=()):
    register(OpDef(name, label, "elementwise", doc, tuple(params), ("x",), lambda ts, p: [TT(ts[0].shape, "bool")],
                   lower=lambda ctx, xs, p, w: fn(xs[0], p), keywords=keywords, onnx=onnx))


def _f32(c, x, t):
    """IsNaN/IsInf in onnxruntime take float32/float64 only; the cast keeps NaN and infinities."""
    return x if t.dtype in ("float32", "float64") else c.cast(x, "float32", t.dtype)


def _isinf_onnx(c, x, t, p):
    return c.node("IsInf", [_f32(c, x, t)], detect_positive=int(p["detect_positive"]),
                  detect_negative=int(p["detect_negative"]))


_predicate("isnan", "Is NaN", lambda x, p: x.isnan(), "True where the element is NaN.", keywords=("nan", "missing"),
           onnx=lambda c, xs, p, ts: c.node("IsNaN", [_f32(c, xs[0], ts[0])]))
_predicate("isinf", "Is Infinite", lambda x, p: _isinf(x, p), "True where the element is +inf and/or -inf.",
           params=(Param("detect_positive", BOOL, True, "report +inf"), Param("detect_negative", BOOL, True, "report -inf")),
           keywords=("infinity",), onnx=lambda c, xs, p, ts: _isinf_onnx(c, xs[0], ts[0], p))
_predicate("isfinite", "Is Finite", lambda x, p: x.isfinite(), "True where the element is neither NaN nor infinite.",
           onnx=lambda c, xs, p, ts: c.node("Not", [c.node("Or", [_isinf_onnx(c, xs[0], ts[0], dict(
               detect_positive=True, detect_negative=True)), c.node("IsNaN", [_f32(c, xs[0], ts[0])])])]))
_predicate("logical_not", "Logical Not", lambda x, p: x.logical_not(), "True where the element is zero (or false).",
           keywords=("not", "negate"), onnx=lambda c, xs, p, ts: c.node("Not", [c.cast(xs[0], "bool", ts[0].dtype)]))


def _isinf(x, p):
    from tinygrad import dtypes
    # tinygrad adds the two tests as numbers; the cast makes the result bool for any flags
    return x.isinf(p["detect_positive"], p["detect_negative"]).cast(dtypes.bool)


def need_integer(ts: list[TT], names: tuple[str, ...], op: str, bool_ok: bool = True) -> None:
    """Bitwise ops work on the bits of integers: refuse float (and, for shifts, bool) inputs by name."""
    for n, t in zip(names, ts):
        if t.dtype in FLOAT_DTYPES or (t.dtype == "bool" and not bool_ok):
            kinds = "integer or bool" if bool_ok else "integer"
            raise GraphError(f"input '{n}' is {t.dtype}, but {op} needs {kinds} tensors",
                             fix="cast the input to an integer dtype first (Cast node, e.g. int32)")


def _bitwise_not_infer(ts, p):
    need_integer(ts, ("x",), "bitwise_not")
    return [ts[0]]


def _bitwise_not_onnx(c, xs, p, ts):
    dt = ts[0].dtype
    if dt == "bool":
        return c.node("Not", [xs[0]])
    if c.opset >= 18:
        return c.node("BitwiseNot", [xs[0]])
    # ~x is -1 - x for signed and max - x for unsigned integers
    return c.node("Sub", [c.const(255 if dt == "uint8" else -1, dt), xs[0]])


register(OpDef("bitwise_not", "Bitwise Not", "elementwise", "Flips every bit of an integer (logical not for bool).", (),
               ("x",), _bitwise_not_infer, lower=lambda ctx, xs, p, w: xs[0].bitwise_not(), keywords=("invert", "~"),
               onnx=_bitwise_not_onnx))


def _positive(v):
    return None if v > 0 else f"must be positive, got {v}"


def _celu_onnx(c, x, dt, p):
    if dt == "float32":  # onnxruntime implements Celu for float32 only
        return c.node("Celu", [x], alpha=float(p["alpha"]))
    a = c.const(p["alpha"], dt)
    neg = c.node("Mul", [a, c.node("Sub", [c.node("Exp", [c.node("Div", [x, a])]), c.const(1.0, dt)])])
    return c.node("Add", [c.node("Max", [x, c.const(0.0, dt)]), c.node("Min", [neg, c.const(0.0, dt)])])


# activations (the SELU defaults are the exact constants of the SELU paper, as PyTorch and ONNX use)
_u("softsign", "Softsign", "softsign", "x / (1 + |x|).", onnx=ox.unary("Softsign"), **_A)
_unary("selu", "SELU", lambda x, p: _float(x).selu(p["alpha"], p["gamma"]),
       "Scaled ELU: gamma * (x if x > 0 else alpha * (exp(x) - 1)).",
       params=(Param("alpha", FLOAT, 1.6732632423543772, "scale of the negative part", min=0.0),
               Param("gamma", FLOAT, 1.0507009873554805, "overall scale", min=0.0)),
       keywords=("self-normalizing",), onnx=ox.unary_param("Selu", alpha="alpha", gamma="gamma"), **_A)
_unary("celu", "CELU", lambda x, p: _float(x).celu(p["alpha"]), "max(0, x) + min(0, alpha * (exp(x / alpha) - 1)).",
       params=(Param("alpha", FLOAT, 1.0, "scale of the negative part (> 0)", check=_positive),),
       onnx=lambda c, xs, p, ts: _celu_onnx(c, ox.to_float(c, xs[0], ts[0]), as_float(ts[0].dtype), p), **_A)
# as a clip: Tensor.hardsigmoid's relu(y) - relu(y - 1) is NaN at +-inf (inf - inf), ONNX HardSigmoid is not
_unary("hardsigmoid", "HardSigmoid", lambda x, p: (_float(x) * p["alpha"] + p["beta"]).clip(0.0, 1.0),
       "max(0, min(1, alpha * x + beta)).",
       params=(Param("alpha", FLOAT, 1 / 6, "slope"), Param("beta", FLOAT, 0.5, "offset")),
       onnx=ox.unary_param("HardSigmoid", alpha="alpha", beta="beta"), **_A)


def _hardtanh_infer(ts, p):
    if p["min_val"] > p["max_val"]:
        raise GraphError(f"min_val {p['min_val']:g} is above max_val {p['max_val']:g}", param="min_val",
                         fix="set min_val <= max_val")
    return [TT(ts[0].shape, as_float(ts[0].dtype))]


register(OpDef("hardtanh", "HardTanh", "activation", "x limited to [min_val, max_val] (default [-1, 1]).",
               (Param("min_val", FLOAT, -1.0, "lower bound"), Param("max_val", FLOAT, 1.0, "upper bound")), ("x",),
               _hardtanh_infer, lower=lambda ctx, xs, p, w: _float(xs[0]).hardtanh(p["min_val"], p["max_val"]),
               onnx=lambda c, xs, p, ts: c.node("Clip", [ox.to_float(c, xs[0], ts[0]),
                                                         c.const(p["min_val"], as_float(ts[0].dtype)),
                                                         c.const(p["max_val"], as_float(ts[0].dtype))])))
_u("quick_gelu", "Quick GELU", "quick_gelu", "x * sigmoid(1.702 * x), a fast GELU approximation.",
   onnx=ox.composite(lambda c, x, dt: c.node("Mul", [x, c.node("Sigmoid", [c.node("Mul", [x, c.const(1.702, dt)])])])),
   **_A)
_u("logsigmoid", "Log-Sigmoid", "logsigmoid", "log(sigmoid(x)) = -softplus(-x).",
   onnx=ox.composite(lambda c, x, dt: c.node("Neg", [c.node("Softplus", [c.node("Neg", [x])])])), **_A)
register(OpDef("softmin", "Softmin", "activation", "softmax(-x) along an axis: small values get large weights.",
               _AX, ("x",), _softmax_infer,
               lower=lambda ctx, xs, p, w: _float(xs[0]).softmin(p["axis"]),
               onnx=lambda c, xs, p, ts: c.node("Softmax", [c.node("Neg", [ox.to_float(c, xs[0], ts[0])])], axis=p["axis"])))
