"""Small shape helpers shared by the op definitions (pure Python, no tinygrad)."""
from __future__ import annotations

from ..errors import GraphError
from ..optable import TT, FLOAT_DTYPES


def norm_axis(axis: int, ndim: int, param: str = "axis") -> int:
    if not -ndim <= axis < ndim:
        raise GraphError(f"axis {axis} is out of range for a tensor with {ndim} dimensions",
                         param=param, fix=f"use an axis in [{-ndim}, {ndim - 1}]")
    return axis % ndim


def norm_axes(axes, ndim: int, param: str = "axis") -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    out = tuple(norm_axis(a, ndim, param) for a in axes)
    if len(set(out)) != len(out):
        raise GraphError(f"axes {tuple(axes)} repeat an axis", param=param)
    return out


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    nd = max(len(s) for s in shapes)
    padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        big = {d for d in dims if d != 1}
        if len(big) > 1:
            raise GraphError(f"shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be broadcast",
                             fix="reshape or expand one input so each dimension matches or is 1")
        out.append(big.pop() if big else 1)
    return tuple(out)


# tinygrad's type-promotion lattice (the JAX one) restricted to our dtypes: each dtype and the
# dtypes it promotes to directly; weak Python scalars are never graph tensors, so they are left out
_LATTICE = {"bool": ("int8", "uint8"), "uint8": ("int16",), "int8": ("int16",), "int16": ("int32",),
            "int32": ("int64",), "int64": ("float16", "bfloat16"), "float16": ("float32",),
            "bfloat16": ("float32",), "float32": ("float64",), "float64": ()}
_RANK = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64")


def _upper(dtype: str) -> set[str]:
    out, todo = set(), [dtype]
    while todo:
        d = todo.pop()
        if d not in out:
            out.add(d)
            todo.extend(_LATTICE[d])
    return out


def promote(*dtypes: str) -> str:
    """Result dtype of ops that combine tensors (add, where, concat, ...): the least dtype every
    input promotes to, as tinygrad computes it (int8 + uint8 -> int16, float16 + bfloat16 -> float32)."""
    common = set.intersection(*(_upper(d) for d in dtypes))
    return min(common, key=_RANK.index)


def sum_dtype(dtype: str) -> str:
    """What a sum accumulates and returns: ints and bool widen to int32 (int64 stays), floats stay."""
    return dtype if dtype in FLOAT_DTYPES or dtype == "int64" else "int32"


def as_float(dtype: str) -> str:
    return dtype if dtype in FLOAT_DTYPES else "float32"


def float_tensor(x):
    """The lowering side of `as_float`: integer and bool tensors become float32, floats stay."""
    from tinygrad import dtypes
    return x if dtypes.is_float(x.dtype) else x.cast(dtypes.float32)


def tup(v, n: int, param: str) -> tuple[int, ...]:
    """Expand a one-value-or-n-values setting (kernel size, stride, ...) to n values."""
    v = tuple(v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise GraphError(f"needs 1 or {n} values, got {len(v)}", param=param,
                         fix=f"give one number or {n} comma-separated numbers")
    return v


def conv_out(size: int, k: int, s: int, p_lo: int, p_hi: int, d: int = 1) -> int:
    return (size + p_lo + p_hi - d * (k - 1) - 1) // s + 1


def need_rank(t: TT, rank: int | tuple[int, ...], what: str) -> None:
    ranks = (rank,) if isinstance(rank, int) else rank
    if len(t.shape) not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise GraphError(f"expects a {want}-D input ({what}), got shape {t.shape}",
                         fix="reshape/flatten the input first")


def auto_or_check(value: int, actual: int, param: str, what: str) -> int:
    """`value` 0 means 'infer from the input'; otherwise it must equal the input's size."""
    if value == 0:
        return actual
    if value != actual:
        raise GraphError(f"is {value} but the input has {actual} {what}", param=param,
                         fix=f"set {param} to {actual} (or 0 to infer it from the input)")
    return value


def same(ts: list[TT], p: dict) -> list[TT]:
    return [ts[0]]
