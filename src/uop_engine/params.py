"""Typed op parameters: defaults, ranges, choices and coercion from JSON/KNIME settings.

A `Param` is declared once in the op table; everything else (KNIME dialogs, the Python
specs, validation, docs) reads it from there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import GraphError

# kinds of parameter values
INT, FLOAT, BOOL, STR, INTS, OPT_INTS, OPT_INT = "int", "float", "bool", "str", "ints", "opt_ints", "opt_int"
KINDS = (INT, FLOAT, BOOL, STR, INTS, OPT_INTS, OPT_INT)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)
    advanced: bool = False

    def __post_init__(self):
        assert self.kind in KINDS, f"{self.name}: unknown kind {self.kind}"
        # defaults are written once, here, and must pass their own validation (checked at import)
        self.coerce(self.default)

    def coerce(self, value: Any) -> Any:
        """Return `value` converted to this parameter's kind, or raise GraphError naming it."""
        try:
            v = _COERCE[self.kind](value)
        except (TypeError, ValueError):
            raise GraphError(f"{value!r} is not a valid {self.kind} value", param=self.name,
                             fix=f"{self.doc} (default {self.default!r})") from None
        if self.choices is not None and v not in self.choices:
            raise GraphError(f"{v!r} is not one of {list(self.choices)}", param=self.name,
                             fix=f"choose one of {', '.join(self.choices)}")
        for x in (v if isinstance(v, tuple) else [v]):
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                if self.min is not None and x < self.min:
                    raise GraphError(f"{v!r} is below the minimum {self.min}", param=self.name,
                                     fix=f"use a value >= {self.min}")
                if self.max is not None and x > self.max:
                    raise GraphError(f"{v!r} is above the maximum {self.max}", param=self.name,
                                     fix=f"use a value <= {self.max}")
        if self.check is not None and v is not None:
            msg = self.check(v)
            if msg:
                raise GraphError(msg, param=self.name)
        return v


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError
        return int(v)
    return int(str(v).strip()) if isinstance(v, str) else int(v)


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise TypeError
    f = float(v)
    if f != f:  # NaN is never a meaningful setting
        raise ValueError
    return f


def _to_ints(v: Any) -> tuple[int, ...]:
    if isinstance(v, str):
        s = v.strip().strip("()[]")
        return tuple(_to_int(x) for x in s.replace("x", ",").split(",") if x.strip())
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (_to_int(v),)
    return tuple(_to_int(x) for x in v)


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return v.strip().lower() in ("true", "1", "yes")
    if isinstance(v, int):
        return bool(v)
    raise ValueError


def _none_or(f):
    def g(v):
        if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none", "all")):
            return None
        return f(v)
    return g


_COERCE: dict[str, Callable[[Any], Any]] = {
    INT: _to_int, FLOAT: lambda v: _to_float(v),
    BOOL: _to_bool, STR: lambda v: str(v), INTS: _to_ints,
    OPT_INTS: _none_or(_to_ints), OPT_INT: _none_or(_to_int),
}


def resolve_params(defs: tuple[Param, ...], given: dict[str, Any], node: str | None = None,
                   op: str | None = None) -> dict[str, Any]:
    """Full, coerced parameter dict for an op: defaults filled in, unknown names refused."""
    known = {p.name: p for p in defs}
    for k in given:
        if k not in known:
            raise GraphError(f"unknown parameter '{k}'", node=node, op=op, param=k,
                             fix=f"valid parameters are: {', '.join(known) or '(none)'}")
    out = {}
    for p in defs:
        try:
            out[p.name] = p.coerce(given[p.name]) if p.name in given else p.default
        except GraphError as e:
            raise GraphError(e.reason, node=node, op=op, param=p.name, fix=e.fix) from None
    return out
