"""Movement ops: reshape, permute, transpose, expand, pad, slice, flip, flatten, squeeze,
unsqueeze, concat, split, plus matmul (it moves data through a contraction)."""
from __future__ import annotations

import math

from ..errors import GraphError
from ..optable import FLOAT_DTYPES, OpDef, TT, register
from ..params import Param, INT, INTS, FLOAT, OPT_INT
from ._util import norm_axis, norm_axes, promote

_I64_MAX, _I64_MIN = 2 ** 63 - 1, -(2 ** 63)  # "to the end" for ONNX Slice


def _reshape_infer(ts, p):
    src = ts[0].shape
    want = list(p["shape"])
    for i, d in enumerate(want):
        if d == 0:  # ONNX-style: 0 copies the input dimension at that position
            if i >= len(src):
                raise GraphError(f"0 at position {i} has no input dimension to copy", param="shape")
            want[i] = src[i]
    if want.count(-1) > 1:
        raise GraphError("only one dimension can be -1", param="shape", fix="give all but one size")
    n = math.prod(src)
    known = math.prod(d for d in want if d != -1)
    if -1 in want:
        if known == 0 or n % known:
            raise GraphError(f"cannot reshape {src} ({n} elements) to {tuple(p['shape'])}", param="shape",
                             fix="make the sizes multiply to the element count")
        want[want.index(-1)] = n // known
    if math.prod(want) != n:
        raise GraphError(f"cannot reshape {src} ({n} elements) to {tuple(want)} ({math.prod(want)} elements)",
                         param="shape", fix="use -1 for the batch dimension and sizes that multiply to the count")
    return [TT(tuple(want), ts[0].dtype)]


register(OpDef("reshape", "Reshape", "movement", "Gives the tensor a new shape (-1 infers one size, 0 copies).",
               (Param("shape", INTS, (-1,), "new shape, batch included, e.g. -1,64"),), ("x",), _reshape_infer,
               lower=lambda ctx, xs, p, w: xs[0].reshape(_reshape_infer([TT(xs[0].shape)], p)[0].shape),
               # ONNX Reshape has our 0 (copy) / -1 (infer) semantics, so a dynamic batch stays dynamic
               onnx=lambda c, xs, p, ts: c.node("Reshape", [xs[0], c.ints(p["shape"])])))


def _permute_infer(ts, p):
    nd = len(ts[0].shape)
    order = norm_axes(p["order"], nd, "order")
    if len(order) != nd:
        raise GraphError(f"needs {nd} axes, got {len(order)}", param="order", fix="list every axis once")
    return [TT(tuple(ts[0].shape[i] for i in order), ts[0].dtype)]


register(OpDef("permute", "Permute", "movement", "Reorders the axes.",
               (Param("order", INTS, (0,), "new order of all axes, e.g. 0,2,3,1"),), ("x",), _permute_infer,
               lower=lambda ctx, xs, p, w: xs[0].permute(norm_axes(p["order"], xs[0].ndim)),
               onnx=lambda c, xs, p, ts: c.node("Transpose", [xs[0]], perm=list(norm_axes(p["order"], len(ts[0].shape))))))


def _transpose_infer(ts, p):
    nd = len(ts[0].shape)
    a, b = norm_axis(p["dim0"], nd, "dim0"), norm_axis(p["dim1"], nd, "dim1")
    s = list(ts[0].shape)
    s[a], s[b] = s[b], s[a]
    return [TT(tuple(s), ts[0].dtype)]


def _transpose_onnx(c, xs, p, ts):
    perm = list(range(len(ts[0].shape)))
    a, b = norm_axis(p["dim0"], len(perm)), norm_axis(p["dim1"], len(perm))
    perm[a], perm[b] = b, a
    return c.node("Transpose", [xs[0]], perm=perm)


register(OpDef("transpose", "Transpose", "movement", "Swaps two axes.",
               (Param("dim0", INT, -2, "first axis"), Param("dim1", INT, -1, "second axis")), ("x",),
               _transpose_infer, lower=lambda ctx, xs, p, w: xs[0].transpose(p["dim0"], p["dim1"]), onnx=_transpose_onnx))


def _expand_infer(ts, p):
    src, want = ts[0].shape, p["shape"]
    if len(want) < len(src):
        raise GraphError(f"target {want} has fewer dims than the input {src}", param="shape")
    src = (1,) * (len(want) - len(src)) + tuple(src)
    out = []
    for i, (s, w) in enumerate(zip(src, want)):
        w = s if w in (-1, 0) else w
        if s != 1 and s != w:
            raise GraphError(f"cannot expand dimension {i} of size {s} to {w}", param="shape",
                             fix="only size-1 dimensions can be expanded; use -1 to keep a size")
        out.append(w)
    return [TT(tuple(out), ts[0].dtype)]


register(OpDef("expand", "Expand", "movement", "Broadcasts size-1 dimensions to a larger size (-1 keeps).",
               (Param("shape", INTS, (-1,), "target shape, -1 keeps a dimension"),), ("x",), _expand_infer,
               lower=lambda ctx, xs, p, w: xs[0].reshape((1,) * (len(p["shape"]) - xs[0].ndim) + xs[0].shape)
               .expand(_expand_infer([TT(xs[0].shape)], p)[0].shape),
               # ONNX Expand broadcasts both ways, so "keep this size" (-1 / 0) is a 1
               onnx=lambda c, xs, p, ts: c.node("Expand", [xs[0], c.ints([1 if d in (-1, 0) else d for d in p["shape"]])])))


def _pad_pairs(shape, pads):
    """PyTorch F.pad order: (last_lo, last_hi, second_last_lo, ...) -> per-axis pairs."""
    if len(pads) % 2 or len(pads) // 2 > len(shape):
        raise GraphError(f"needs an even number of values, at most {2 * len(shape)}", param="pads",
                         fix="give before,after pairs starting from the last axis, e.g. 1,1,1,1")
    pairs = [(0, 0)] * len(shape)
    for i in range(len(pads) // 2):
        pairs[len(shape) - 1 - i] = (pads[2 * i], pads[2 * i + 1])
    return pairs


def _pad_infer(ts, p):
    pairs = _pad_pairs(ts[0].shape, p["pads"])
    out = tuple(d + lo + hi for d, (lo, hi) in zip(ts[0].shape, pairs))
    if any(d <= 0 for d in out):
        raise GraphError(f"negative padding leaves an empty tensor {out}", param="pads")
    _pad_value(p["value"], ts[0].dtype)
    return [TT(out, ts[0].dtype)]


def _pad_value(value: float, dtype: str):
    """The fill value as the input's kind of number: the output keeps the input's dtype, so a value
    that dtype cannot hold (0.5 for int8, 2 for bool) is refused rather than silently changed."""
    import numpy as np
    if dtype in FLOAT_DTYPES:
        return float(value)
    lo, hi = (0, 1) if dtype == "bool" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
    # range first: int() of an infinity (a -inf mask value on an int input) raises OverflowError
    if not lo <= value <= hi or value != int(value):
        raise GraphError(f"fill value {value:g} does not fit the {dtype} input (whole numbers {lo}..{hi})",
                         param="value", fix="change the value, or cast the input to a float dtype first")
    return bool(value) if dtype == "bool" else int(value)


def _pad_lower(ctx, xs, p, w):
    from ..compile import dtype_name
    return xs[0].pad(tuple(_pad_pairs(xs[0].shape, p["pads"])), value=_pad_value(p["value"], dtype_name(xs[0].dtype)))


def _pad_onnx(c, xs, p, ts):
    pairs = _pad_pairs(ts[0].shape, p["pads"])  # ONNX order: all begins, then all ends
    return c.node("Pad", [xs[0], c.ints([lo for lo, _ in pairs] + [hi for _, hi in pairs]), c.const(p["value"], ts[0].dtype)])


register(OpDef("pad", "Pad", "movement", "Pads with a constant (PyTorch F.pad order: last axis first).",
               (Param("pads", INTS, (1, 1), "before,after pairs from the last axis backwards"),
                Param("value", FLOAT, 0.0, "fill value")), ("x",), _pad_infer,
               lower=_pad_lower,
               onnx=_pad_onnx))


def _slice_bounds(n, start, end, param="start"):
    s = start + n if start < 0 else start
    e = n if end is None else (end + n if end < 0 else end)
    s, e = max(0, min(s, n)), max(0, min(e, n))
    if e <= s:
        raise GraphError(f"slice [{start}:{end}] of a dimension of size {n} is empty", param=param,
                         fix="choose start < end within the dimension")
    return s, e


def _slice_infer(ts, p):
    shape = list(ts[0].shape)
    ax = norm_axis(p["axis"], len(shape))
    s, e = _slice_bounds(shape[ax], p["start"], p["end"])
    shape[ax] = e - s
    return [TT(tuple(shape), ts[0].dtype)]


def _slice_lower(ctx, xs, p, w):
    x = xs[0]
    ax = p["axis"] % x.ndim
    s, e = _slice_bounds(x.shape[ax], p["start"], p["end"])
    return x.shrink(tuple((s, e) if i == ax else None for i in range(x.ndim)))


register(OpDef("slice", "Slice", "movement", "Keeps start:end along one axis (tinygrad shrink).",
               (Param("axis", INT, -1, "axis to slice"), Param("start", INT, 0, "first index (negative counts from the end)"),
                Param("end", OPT_INT, None, "end index, exclusive (empty = to the end)")), ("x",),
               _slice_infer, lower=_slice_lower, keywords=("shrink", "crop"),
               # the raw start/end (ONNX clamps like Python), so slicing the batch axis stays dynamic
               onnx=lambda c, xs, p, ts: c.node("Slice", [xs[0], c.ints([p["start"]]), c.ints([_I64_MAX if p["end"] is None else p["end"]]),
                                                          c.ints([p["axis"]])])))


def _flip_onnx(c, xs, p, ts):
    norm_axes(p["axis"], len(ts[0].shape))  # checks them; ONNX takes negative axes as they are
    k = len(p["axis"])
    return c.node("Slice", [xs[0], c.ints([-1] * k), c.ints([_I64_MIN] * k), c.ints(p["axis"]), c.ints([-1] * k)])


register(OpDef("flip", "Flip", "movement", "Reverses the order along axes.",
               (Param("axis", INTS, (-1,), "axes to reverse"),), ("x",),
               lambda ts, p: (norm_axes(p["axis"], len(ts[0].shape)), [ts[0]])[1],
               lower=lambda ctx, xs, p, w: xs[0].flip(norm_axes(p["axis"], xs[0].ndim)), onnx=_flip_onnx))


def _flatten_infer(ts, p):
    s = ts[0].shape
    a, b = norm_axis(p["start_dim"], len(s), "start_dim"), norm_axis(p["end_dim"], len(s), "end_dim")
    if b < a:
        raise GraphError("end_dim comes before start_dim", param="end_dim")
    return [TT(s[:a] + (math.prod(s[a:b + 1]),) + s[b + 1:], ts[0].dtype)]


def _flatten_onnx(c, xs, p, ts):
    s = ts[0].shape
    a, b = norm_axis(p["start_dim"], len(s), "start_dim"), norm_axis(p["end_dim"], len(s), "end_dim")
    if a == 1 and b == len(s) - 1:  # the usual (N, ...) -> (N, features): ONNX Flatten
        return c.node("Flatten", [xs[0]], axis=1)
    c.need_static(0, range(b + 1, len(s)), "a flatten that keeps batch-dependent trailing axes")
    return c.node("Reshape", [xs[0], c.ints([0] * a + [-1] + list(s[b + 1:]))])


register(OpDef("flatten", "Flatten", "movement", "Merges axes start_dim..end_dim into one (batch kept by default).",
               (Param("start_dim", INT, 1, "first axis to merge"), Param("end_dim", INT, -1, "last axis to merge")),
               ("x",), _flatten_infer, lower=lambda ctx, xs, p, w: xs[0].flatten(p["start_dim"], p["end_dim"]),
               onnx=_flatten_onnx))


def _squeeze_infer(ts, p):
    s = ts[0].shape
    if p["axis"] is None:
        return [TT(tuple(d for d in s if d != 1), ts[0].dtype)]
    ax = norm_axis(p["axis"], len(s))
    if s[ax] != 1:
        raise GraphError(f"axis {p['axis']} has size {s[ax]}, not 1", param="axis",
                         fix="choose an axis of size 1 or leave it empty to drop all size-1 axes")
    return [TT(s[:ax] + s[ax + 1:], ts[0].dtype)]


def _squeeze_onnx(c, xs, p, ts):
    s = ts[0].shape
    if p["axis"] is None:  # explicit axes: a batch of 1 must not lose its batch axis at run time
        axes = [i for i, d in enumerate(s) if d == 1 and not c.in_dyn[0][i]]
    else:
        axes = [p["axis"]]
    return c.node("Squeeze", [xs[0], c.ints(axes)]) if axes else c.node("Identity", [xs[0]])


register(OpDef("squeeze", "Squeeze", "movement", "Removes a size-1 axis (or all of them).",
               (Param("axis", OPT_INT, None, "axis to remove (empty = every size-1 axis)"),), ("x",), _squeeze_infer,
               lower=lambda ctx, xs, p, w: xs[0].reshape(_squeeze_infer([TT(xs[0].shape)], p)[0].shape),
               onnx=_squeeze_onnx))


def _unsqueeze_infer(ts, p):
    s = ts[0].shape
    ax = norm_axis(p["axis"], len(s) + 1)
    return [TT(s[:ax] + (1,) + s[ax:], ts[0].dtype)]


register(OpDef("unsqueeze", "Unsqueeze", "movement", "Inserts a size-1 axis.",
               (Param("axis", INT, 1, "position of the new axis"),), ("x",), _unsqueeze_infer,
               lower=lambda ctx, xs, p, w: xs[0].unsqueeze(p["axis"]),
               onnx=lambda c, xs, p, ts: c.node("Unsqueeze", [xs[0], c.ints([p["axis"]])])))


def _concat_infer(ts, p):
    nd = len(ts[0].shape)
    ax = norm_axis(p["axis"], nd)
    for i, t in enumerate(ts[1:], 1):
        if len(t.shape) != nd or any(a != b for j, (a, b) in enumerate(zip(t.shape, ts[0].shape)) if j != ax):
            raise GraphError(f"input {i} has shape {t.shape}, incompatible with {ts[0].shape} outside axis {p['axis']}",
                             param="axis", fix="all inputs must match except along the concat axis")
    s = list(ts[0].shape)
    s[ax] = sum(t.shape[ax] for t in ts)
    return [TT(tuple(s), promote(*(t.dtype for t in ts)))]


register(OpDef("concat", "Concatenate", "movement", "Joins two or more tensors along an axis.",
               (Param("axis", INT, 1, "axis to join along"),), ("a", "b"), _concat_infer,
               lower=lambda ctx, xs, p, w: xs[0].cat(*xs[1:], dim=p["axis"]), variadic=True, keywords=("cat", "stack"),
               onnx=lambda c, xs, p, ts: c.node("Concat", [c.cast(x, c.out_types[0].dtype, t.dtype) for x, t in zip(xs, ts)],
                                                axis=p["axis"])))


def _split_infer(ts, p):
    s = ts[0].shape
    ax = norm_axis(p["axis"], len(s))
    sizes = p["sizes"]
    if len(sizes) == 1:  # one number = chunk size (last chunk may be smaller), as tinygrad/PyTorch
        c = sizes[0]
        sizes = tuple(min(c, s[ax] - i) for i in range(0, s[ax], c))
    if sum(sizes) != s[ax]:
        raise GraphError(f"sizes {tuple(p['sizes'])} add up to {sum(sizes)}, but axis {p['axis']} has {s[ax]}",
                         param="sizes", fix=f"make the sizes add up to {s[ax]}")
    return [TT(s[:ax] + (n,) + s[ax + 1:], ts[0].dtype) for n in sizes]


def _split_onnx(c, xs, p, ts):
    ax = norm_axis(p["axis"], len(ts[0].shape))
    c.need_static(0, [ax], "a split along the batch axis")
    sizes = [t.shape[ax] for t in c.out_types]
    outs = c.node("Split", [xs[0], c.ints(sizes)], n_out=len(sizes), axis=p["axis"])
    return [outs] if len(sizes) == 1 else outs


register(OpDef("split", "Split", "movement", "Splits into several outputs along an axis (one size = chunk size).",
               (Param("sizes", INTS, (1,), "output sizes, or one chunk size", min=1), Param("axis", INT, 1, "axis to split")),
               ("x",), _split_infer,
               lower=lambda ctx, xs, p, w: tuple(xs[0].split([t.shape[p["axis"] % xs[0].ndim] for t in
                                                             _split_infer([TT(xs[0].shape)], p)], dim=p["axis"])),
               onnx=_split_onnx))


def _matmul_infer(ts, p):
    a, b = ts[0].shape, ts[1].shape
    if len(a) < 1 or len(b) < 1:
        raise GraphError("matmul needs tensors of at least 1 dimension")
    ka = a[-1]
    kb = b[-2] if len(b) >= 2 else b[0]
    if ka != kb:
        raise GraphError(f"inner sizes differ: a {a} has {ka}, b {b} has {kb}",
                         fix="transpose or reshape one input so a's last axis matches b's second-to-last")
    from ._util import broadcast
    batch = broadcast(a[:-2], b[:-2]) if len(a) >= 2 and len(b) >= 2 else ()
    out = batch + ((a[-2],) if len(a) >= 2 else ()) + ((b[-1],) if len(b) >= 2 else ())
    return [TT(out, promote(ts[0].dtype, ts[1].dtype))]


register(OpDef("matmul", "MatMul", "movement", "Matrix product a @ b with broadcast batch dimensions.", (),
               ("a", "b"), _matmul_infer, lower=lambda ctx, xs, p, w: xs[0].matmul(xs[1]), keywords=("dot", "gemm"),
               onnx=lambda c, xs, p, ts: c.node("MatMul", [c.cast(x, c.out_types[0].dtype, t.dtype) for x, t in zip(xs, ts)])))
