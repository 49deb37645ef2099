"""The plain-ONNX half of `onnx_import`: one handler per ONNX op type, mapping it onto our ops.

A handler gets the importer, the ONNX node and its attributes, adds our node(s) through
`im.add(op, inputs, weights, **params)` and returns the refs of the node's outputs. It raises
`Unsupported` when an op is used in a way TinyUOp cannot express; the importer collects those.
"""
from __future__ import annotations

import numpy as np

_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Sin": "sin", "Cos": "cos",
          "Sqrt": "sqrt", "Reciprocal": "reciprocal", "Neg": "neg", "Abs": "abs", "Floor": "floor", "Ceil": "ceil",
          "Sign": "sign", "Softplus": "softplus", "Mish": "mish", "HardSwish": "hardswish", "Tan": "tan", "Asin": "asin",
          "Acos": "acos", "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh",
          "Atanh": "atanh", "Erf": "erf", "Round": "round", "Softsign": "softsign", "IsNaN": "isnan",
          "Not": "logical_not", "BitwiseNot": "bitwise_not"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "maximum", "Min": "minimum",
           "Less": "less", "LessOrEqual": "less_equal", "Greater": "greater", "GreaterOrEqual": "greater_equal",
           "Equal": "equal", "Where": "where", "BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or",
           "BitwiseXor": "bitwise_xor", "And": "bitwise_and", "Or": "bitwise_or", "Xor": "bitwise_xor"}
_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min", "ReduceProd": "prod"}
DTYPES = {1: "float32", 10: "float16", 16: "bfloat16", 11: "float64", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
          2: "uint8", 9: "bool"}


class Unsupported(Exception):
    """A supported op type used in a way TinyUOp cannot express (the message says how)."""


def _f(v: float) -> float:
    """ONNX float attributes are float32: 0.2 comes back as 0.2000000029...; keep 7 digits."""
    return float(f"{float(v):.7g}")


def _one_or_all(v) -> tuple[int, ...]:
    v = tuple(int(x) for x in v)
    return v[:1] if v and all(x == v[0] for x in v) else v


def _unary(op):
    return lambda im, n, a: [im.add(op, [im.x(n, 0)])]


def _binary(op):
    def h(im, n, a):
        ins = [im.x(n, i) for i in range(len(n.input))]
        if op == "equal" and (nu := im.sole_user(n.output[0], "Not")) is not None:
            im.done.add(id(nu))  # Not(Equal) is our not_equal
            ref = im.add("not_equal", ins)
            im.val[nu.output[0]] = ref
            return [ref]
        return [im.add(op, ins)]
    return h


def _clip(im, n, a):
    lo, hi = (float(im.c(n, i, v)) for i, v in ((1, -np.inf), (2, np.inf)))
    if (lo, hi) == (0.0, 6.0):
        return [im.add("relu6", [im.x(n, 0)])]
    return [im.add("clip", [im.x(n, 0)], min=_f(lo), max=_f(hi))]


def _gelu(im, n, a):
    if a.get("approximate", b"none") not in ("tanh", b"tanh"):
        raise Unsupported("approximate='none' (TinyUOp's GELU is the tanh approximation)")
    return [im.add("gelu", [im.x(n, 0)])]


def _mod(im, n, a):  # fmod=0 (integers only): the sign of the divisor, as our mod; fmod=1: C's fmod
    return [im.add("fmod" if a.get("fmod", 0) else "mod", [im.x(n, 0), im.x(n, 1)])]


def _bitshift(im, n, a):  # ONNX shifts unsigned integers only, where our shifts agree with it
    left = a["direction"] in (b"LEFT", "LEFT")
    return [im.add("lshift" if left else "rshift", [im.x(n, 0), im.x(n, 1)])]


def _axes(im, n, a, i=1):
    v = a.get("axes", im.c(n, i) if i < len(n.input) and n.input[i] else None)
    return None if v is None else [int(x) for x in np.atleast_1d(v)]


def _reduce(op):
    def h(im, n, a):
        axes = _axes(im, n, a)
        return [im.add(op, [im.x(n, 0)], axis=tuple(axes) if axes else None, keepdim=bool(a.get("keepdims", 1)))]
    return h


def _arg(op):
    def h(im, n, a):
        if a.get("select_last_index", 0):
            raise Unsupported("select_last_index=1 (TinyUOp returns the first index)")
        ref = im.add(op, [im.x(n, 0)], axis=int(a.get("axis", 0)), keepdim=bool(a.get("keepdims", 1)))
        cast = im.sole_user(n.output[0], "Cast")
        if cast is not None and DTYPES.get(im.attrs(cast)["to"]) == "int32":
            im.done.add(id(cast))  # our argmax is already int32
            im.val[cast.output[0]] = ref
        return [ref]
    return h


def _matmul(im, n, a):
    if n.input[1] not in im.consts or im.consts[n.input[1]].ndim != 2:
        return [im.add("matmul", [im.x(n, 0), im.x(n, 1)])]
    w = im.consts[n.input[1]].T  # x @ W  ==  linear with weight W.T
    ws, out = {"weight": w}, n.output[0]
    add = im.sole_user(out, "Add")
    other = [v for v in add.input if v != out][0] if add is not None and list(add.input).count(out) == 1 else None
    if other in im.consts and im.consts[other].size == w.shape[0] and im.consts[other].ndim <= 1:
        ws["bias"], out = im.consts[other].reshape(-1), add.output[0]
        im.done.add(id(add))
    ref = im.add("linear", [im.x(n, 0)], ws, out_features=int(w.shape[0]), bias="bias" in ws)
    im.val[out] = ref
    return [ref]


def _gemm(im, n, a):
    if a.get("transA", 0):
        raise Unsupported("transA=1")
    b = im.c(n, 1)
    w = (b if a.get("transB", 0) else b.T) * a.get("alpha", 1.0)
    ws = {"weight": w}
    if len(n.input) > 2 and n.input[2]:
        ws["bias"] = np.broadcast_to(im.c(n, 2) * a.get("beta", 1.0), (w.shape[0],))
    return [im.add("linear", [im.x(n, 0)], ws, out_features=int(w.shape[0]), bias="bias" in ws)]


def _conv(im, n, a):
    w = im.c(n, 1)
    nd = w.ndim - 2
    transpose = n.op_type == "ConvTranspose"
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or (transpose and "output_shape" in a):
        raise Unsupported("auto_pad / output_shape are not supported; give explicit pads")
    if nd not in ((2,) if transpose else (1, 2)):
        raise Unsupported(f"{nd}-D convolution (TinyUOp has conv1d, conv2d and conv_transpose2d)")
    pads = list(a.get("pads", [0] * 2 * nd))
    if pads[:nd] != pads[nd:]:
        raise Unsupported(f"asymmetric pads {pads}")
    g = int(a.get("group", 1))
    p = dict(out_channels=int(w.shape[1] * g if transpose else w.shape[0]), kernel_size=_one_or_all(w.shape[2:]),
             stride=_one_or_all(a.get("strides", [1] * nd)), padding=_one_or_all(pads[:nd]),
             dilation=_one_or_all(a.get("dilations", [1] * nd)), groups=g, bias=len(n.input) > 2 and bool(n.input[2]))
    if transpose:
        p["output_padding"] = _one_or_all(a.get("output_padding", [0] * nd))
    ws = {"weight": w} | ({"bias": im.c(n, 2)} if p["bias"] else {})
    return [im.add("conv_transpose2d" if transpose else f"conv{nd}d", [im.x(n, 0)], ws, **p)]


def _bn(im, n, a):
    ws = dict(zip(("weight", "bias", "running_mean", "running_var"), (im.c(n, i) for i in range(1, 5))))
    return [im.add("batch_norm", [im.x(n, 0)], ws, eps=_f(a.get("epsilon", 1e-5)), momentum=_f(1 - a.get("momentum", 0.9)))]


def _ln(im, n, a):
    scale, bias = im.c(n, 1), im.c(n, 2)
    rank = len(im.shapes.get(n.input[0], [])) or None
    axis = int(a.get("axis", -1))
    if (axis if axis < 0 else (axis - rank if rank else None)) != -scale.ndim:
        raise Unsupported(f"axis {axis} does not match a scale of shape {scale.shape}")
    affine = not (bias is None and np.all(scale == 1))
    ws = {"weight": scale, "bias": np.zeros_like(scale) if bias is None else bias} if affine else {}
    return [im.add("layer_norm", [im.x(n, 0)], ws, normalized_shape=() if scale.ndim == 1 else tuple(scale.shape),
                   eps=_f(a.get("epsilon", 1e-5)), elementwise_affine=affine)]


def _instance_norm(im, n, a):  # per-channel normalisation = group norm with one channel per group
    s = im.c(n, 1)
    return [im.add("group_norm", [im.x(n, 0)], {"weight": s, "bias": im.c(n, 2)}, num_groups=int(s.size),
                   eps=_f(a.get("epsilon", 1e-5)))]


def _pool(op):
    def h(im, n, a):
        k = list(a["kernel_shape"])
        pads = list(a.get("pads", [0] * 2 * len(k)))
        if len(k) != 2 or pads[:2] != pads[2:] or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise Unsupported(f"only 2-D pooling with symmetric pads, ceil_mode=0 and no dilation (kernel {k}, pads {pads})")
        if op == "avg_pool2d" and a.get("count_include_pad", 0) and any(pads):
            raise Unsupported("count_include_pad=1 with padding")
        if len(n.output) > 1 and n.output[1]:
            raise Unsupported("the indices output")
        stride = _one_or_all(a.get("strides", [1, 1]))
        return [im.add(op, [im.x(n, 0)], kernel_size=_one_or_all(k), stride=() if stride == _one_or_all(k) else stride,
                       padding=_one_or_all(pads[:2]))]
    return h


def _global(op):
    def h(im, n, a):
        sq = im.sole_user(n.output[0], "Squeeze")
        rank = len(im.shapes.get(n.input[0], [])) or None
        if sq is not None and rank and sorted(a % rank for a in (_axes(im, sq, im.attrs(sq)) or [])) == list(range(2, rank)):
            im.done.add(id(sq))  # Global*Pool + Squeeze of the spatial axes = keepdim=False
            ref = im.add(op, [im.x(n, 0)], keepdim=False)
            im.val[sq.output[0]] = ref
            return [ref]
        return [im.add(op, [im.x(n, 0)], keepdim=True)]
    return h


def _reshape(im, n, a):
    if a.get("allowzero", 0):
        raise Unsupported("allowzero=1")
    return [im.add("reshape", [im.x(n, 0)], shape=tuple(int(v) for v in im.c(n, 1)))]


def _flatten(im, n, a):
    ax = int(a.get("axis", 1))
    if ax == 1:
        return [im.add("flatten", [im.x(n, 0)])]
    if ax == 0:
        return [im.add("reshape", [im.x(n, 0)], shape=(1, -1))]
    return [im.add("flatten", [im.add("flatten", [im.x(n, 0)], start_dim=0, end_dim=ax - 1)], start_dim=1)]


def _slice(im, n, a):
    starts, ends = (np.atleast_1d(im.c(n, i)).tolist() for i in (1, 2))
    axes = np.atleast_1d(im.c(n, 3, np.arange(len(starts)))).tolist()
    steps = np.atleast_1d(im.c(n, 4, np.ones(len(starts), np.int64))).tolist()
    ref, flips = im.x(n, 0), []
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st == -1 and s == -1 and e <= -(2 ** 31):
            flips.append(int(ax))
        elif st == 1:
            ref = im.add("slice", [ref], axis=int(ax), start=int(s), end=None if e >= 2 ** 31 - 1 else int(e))
        else:
            raise Unsupported(f"step {st} (TinyUOp slices with step 1 and flips whole axes)")
    return [im.add("flip", [ref], axis=tuple(flips)) if flips else ref]


def _squeeze(im, n, a):
    axes = _axes(im, n, a)
    if axes is None:
        return [im.add("squeeze", [im.x(n, 0)], axis=None)]
    ref = im.x(n, 0)
    for ax in sorted(axes, reverse=True):  # highest first, so the other indices stay valid
        ref = im.add("squeeze", [ref], axis=ax)
    return [ref]


def _unsqueeze(im, n, a):
    ref = im.x(n, 0)
    for ax in sorted(_axes(im, n, a)):
        ref = im.add("unsqueeze", [ref], axis=ax)
    return [ref]


def _split(im, n, a):
    axis, sizes = int(a.get("axis", 0)), a.get("split", im.c(n, 1) if len(n.input) > 1 and n.input[1] else None)
    if sizes is None:
        shape = im.shapes.get(n.input[0])
        dim = shape[axis] if shape and -len(shape) <= axis < len(shape) else None
        if dim is None:
            raise Unsupported("equal split of an axis whose size is unknown")
        sizes = [-(-dim // len(n.output))]
    ref = im.add("split", [im.x(n, 0)], sizes=tuple(int(s) for s in np.atleast_1d(sizes)), axis=axis)
    return [ref] + [f"{ref}:{k}" for k in range(1, len(n.output))]


def _pad(im, n, a):
    if a.get("mode", b"constant") not in (b"constant", "constant") or (len(n.input) > 3 and n.input[3]):
        raise Unsupported("only constant padding over all axes")
    pads = [int(v) for v in im.c(n, 1)]
    r = len(pads) // 2
    torch_order = [v for ax in reversed(range(r)) for v in (pads[ax], pads[ax + r])]
    while len(torch_order) > 2 and torch_order[-2:] == [0, 0]:
        torch_order = torch_order[:-2]
    value = im.c(n, 2, np.zeros(()))
    return [im.add("pad", [im.x(n, 0)], pads=tuple(torch_order), value=_f(np.asarray(value).reshape(-1)[0] if np.size(value) else 0))]


def _gather(im, n, a):
    table = im.c(n, 0)
    if int(a.get("axis", 0)) != 0 or table.ndim != 2:
        raise Unsupported("only row lookup (axis 0) in a constant 2-D table (an embedding)")
    return [im.add("embedding", [im.x(n, 1)], {"weight": table}, num_embeddings=int(table.shape[0]),
                   embedding_dim=int(table.shape[1]))]


def _dropout(im, n, a):
    if len(n.output) > 1 and n.output[1] and im.users.get(n.output[1]):
        raise Unsupported("the mask output")
    return [im.add("dropout", [im.x(n, 0)], p=_f(im.c(n, 1, 0.5)))]


def _concat(im, n, a):
    ins = [im.x(n, i) for i in range(len(n.input))]
    return [im.add("concat", ins, axis=int(a["axis"])) if len(ins) > 1 else ins[0]]


def _cast(im, n, a):
    dt = DTYPES.get(a["to"])
    if dt is None:
        raise Unsupported(f"ONNX dtype {a['to']} has no TinyUOp equivalent")
    return [im.add("cast", [im.x(n, 0)], dtype=dt)]


HANDLERS = {k: _unary(v) for k, v in _UNARY.items()} | {k: _binary(v) for k, v in _BINARY.items()} | {
    k: _reduce(v) for k, v in _REDUCE.items()} | {
    "LeakyRelu": lambda im, n, a: [im.add("leaky_relu", [im.x(n, 0)], negative_slope=_f(a.get("alpha", 0.01)))],
    "Elu": lambda im, n, a: [im.add("elu", [im.x(n, 0)], alpha=_f(a.get("alpha", 1.0)))],
    "Softmax": lambda im, n, a: [im.add("softmax", [im.x(n, 0)], axis=int(a.get("axis", -1)))],
    "LogSoftmax": lambda im, n, a: [im.add("log_softmax", [im.x(n, 0)], axis=int(a.get("axis", -1)))],
    "Transpose": lambda im, n, a: [im.add("permute", [im.x(n, 0)], order=tuple(a["perm"]))],
    "Expand": lambda im, n, a: [im.add("expand", [im.x(n, 0)], shape=tuple(-1 if int(d) == 1 else int(d) for d in im.c(n, 1)))],
    "Identity": lambda im, n, a: [im.x(n, 0)],
    "IsInf": lambda im, n, a: [im.add("isinf", [im.x(n, 0)], detect_positive=bool(a.get("detect_positive", 1)),
                                      detect_negative=bool(a.get("detect_negative", 1)))],
    # ONNX's attribute defaults differ from ours (HardSigmoid alpha 0.2): read them with ONNX's defaults
    "Selu": lambda im, n, a: [im.add("selu", [im.x(n, 0)], alpha=_f(a.get("alpha", 1.67326319217681884765625)),
                                     gamma=_f(a.get("gamma", 1.05070102214813232421875)))],
    "Celu": lambda im, n, a: [im.add("celu", [im.x(n, 0)], alpha=_f(a.get("alpha", 1.0)))],
    "HardSigmoid": lambda im, n, a: [im.add("hardsigmoid", [im.x(n, 0)], alpha=_f(a.get("alpha", 0.2)),
                                            beta=_f(a.get("beta", 0.5)))],
    "Mod": _mod, "BitShift": _bitshift,
    "Clip": _clip, "Gelu": _gelu, "ArgMax": _arg("argmax"), "ArgMin": _arg("argmin"), "MatMul": _matmul, "Gemm": _gemm,
    "Conv": _conv, "ConvTranspose": _conv, "BatchNormalization": _bn, "LayerNormalization": _ln,
    "InstanceNormalization": _instance_norm, "MaxPool": _pool("max_pool2d"), "AveragePool": _pool("avg_pool2d"),
    "GlobalAveragePool": _global("global_avg_pool"), "GlobalMaxPool": _global("global_max_pool"), "Reshape": _reshape,
    "Flatten": _flatten, "Slice": _slice, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Split": _split, "Pad": _pad,
    "Gather": _gather, "Dropout": _dropout, "Concat": _concat, "Cast": _cast,
}
SUPPORTED = set(HANDLERS) | {"Constant", "Not (after Equal)"}


