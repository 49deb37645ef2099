"""`@pipeline_process`: a plain function becomes a pipeline step type, and stays a function.

    @pipeline_process
    def train_model(epochs: int = 10, lr: float = 1e-3, data: Any = None) -> dict:
        ...
    train_model(epochs=2)                  # still an ordinary call
    # pipeline TOML:  type = "train_model",  params = { epochs = 5 }

The signature is the step's configuration schema: each parameter's type hint and default
give its type and whether it is required; a config is checked against it when a pipeline
file is loaded (unknown key, missing required, wrong type -> PipelineConfigError naming the
step and key). A parameter annotated `PipelineContext` (or named `ctx`) receives the running
pipeline's context instead of configuration.
"""
from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..pipeline_context import PipelineContext

_MISSING = inspect.Parameter.empty


class PipelineConfigError(ValueError):
    """A pipeline file or step configuration is invalid; `problems` lists (step, key, message)."""

    def __init__(self, problems: list[tuple[str | None, str | None, str]] | str, source: str | None = None):
        if isinstance(problems, str):
            problems = [(None, None, problems)]
        self.problems, self.source = problems, source
        lines = [_where(s, k) + m for s, k, m in problems]
        head = f"{source}: " if source else ""
        text = head + lines[0] if len(lines) == 1 else head + f"{len(lines)} problems:\n" + "\n".join(
            "  - " + x for x in lines)
        super().__init__(text)


def _where(step: str | None, key: str | None) -> str:
    parts = ([f"step '{step}'"] if step else []) + ([f"key '{key}'"] if key else [])
    return ", ".join(parts) + (": " if parts else "")


# ---- types ---------------------------------------------------------------------------------------
def type_name(hint: Any) -> str:
    if hint is Any or hint is _MISSING:
        return "any"
    if isinstance(hint, type):
        return hint.__name__
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_name(a) for a in args)
    if origin is not None and args:
        return f"{type_name(origin)}[{', '.join('...' if a is Ellipsis else type_name(a) for a in args)}]"
    return str(hint).replace("typing.", "")


def toml_representable(hint: Any) -> bool:
    """Can a TOML literal have this type (else only a ${step.output} reference can)?"""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is _MISSING or hint in (int, float, bool, str, Path, list, dict, tuple):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(toml_representable(a) for a in args if a is not type(None))
    return origin in (list, tuple, dict, typing.Literal)


def check_value(value: Any, hint: Any) -> Any:
    """`value` converted to `hint` (int -> float, str -> Path, list -> tuple), or TypeError
    saying what was expected."""
    if hint is Any or hint is _MISSING:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return check_value(value, a)
            except TypeError:
                continue
        raise TypeError(f"expected {type_name(hint)}, got {type(value).__name__} {value!r:.60}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise TypeError(f"expected one of {list(args)}, got {value!r:.60}")
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is Path and isinstance(value, (str, Path)):
        return Path(value)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected {type_name(hint)}, got {type(value).__name__} {value!r:.60}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise TypeError(f"expected {len(args)} values ({type_name(hint)}), got {len(value)}")
            items = [check_value(v, a) for v, a in zip(value, args)]
        else:
            items = [check_value(v, args[0]) for v in value] if args else list(value)
        return tuple(items) if (origin or hint) is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected a table ({type_name(hint)}), got {type(value).__name__} {value!r:.60}")
        if not args:
            return dict(value)
        return {check_value(k, args[0]): check_value(v, args[1]) for k, v in value.items()}
    if isinstance(hint, type):
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        raise TypeError(f"expected {type_name(hint)}, got {type(value).__name__} {value!r:.60}")
    return value  # hints we cannot check (protocols, type vars) accept anything


def _is_context(hint: Any) -> bool:
    """PipelineContext or Optional[PipelineContext]."""
    return hint is PipelineContext or PipelineContext in typing.get_args(hint)


# ---- processes -----------------------------------------------------------------------------------
@dataclass
class Field:
    name: str
    hint: Any = Any
    default: Any = _MISSING
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def describe(self) -> str:
        d = "required" if self.required else f"default {self.default!r}"
        return f"{self.name}: {type_name(self.hint)} ({d}){' - ' + self.doc if self.doc else ''}"


@dataclass
class Process:
    """A step type: the function to call, its configuration schema and declared outputs."""
    name: str
    fn: Callable[..., Any]
    fields: dict[str, Field]
    context_param: str | None = None
    extra: bool = False                       # **kwargs: unknown keys are passed through
    outputs: tuple[str, ...] | None = None    # declared output keys (None = not declared)
    doc: str = ""
    builtin: bool = False
    source: str = field(default="", compare=False)
    # extra load-time checks of literal values (e.g. a graph's layer list): (params, step, base_dir) -> problems
    check: Callable[[dict, str, Path | None], list[tuple[str, str, str]]] | None = field(default=None, compare=False)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], name: str | None = None, outputs: tuple[str, ...] | None = None,
                      builtin: bool = False) -> "Process":
        name = name or fn.__name__
        sig = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable forward references: fall back to the raw annotations
            hints = {k: (v if not isinstance(v, str) else Any) for k, v in getattr(fn, "__annotations__", {}).items()}
        fields, ctx_param, extra = {}, None, False
        for p in sig.parameters.values():
            hint = hints.get(p.name, Any)
            if p.kind is p.VAR_POSITIONAL:
                raise TypeError(f"@pipeline_process '{name}': *{p.name} cannot come from a config; use named parameters")
            if p.kind is p.VAR_KEYWORD:
                extra = True
                continue
            if p.kind is p.POSITIONAL_ONLY:
                raise TypeError(f"@pipeline_process '{name}': parameter '{p.name}' is positional-only; "
                                "config values are passed by name")
            if _is_context(hint) or (p.name in ("ctx", "context") and hint is Any):
                ctx_param = p.name
                continue
            default = p.default
            if default is not _MISSING and default is not None:
                try:  # defaults must pass their own type check (caught at decoration, not at run time)
                    check_value(default, hint)
                except TypeError as e:
                    raise TypeError(f"@pipeline_process '{name}': default of '{p.name}' does not match its "
                                    f"type hint: {e}") from None
            fields[p.name] = Field(p.name, hint, default)
        doc = inspect.getdoc(fn) or ""
        try:  # the defining file, so one file imported under two module names is one source
            where = inspect.getfile(fn)
        except TypeError:
            where = getattr(fn, "__module__", "?")
        return cls(name, fn, fields, ctx_param, extra, tuple(outputs) if outputs else None, doc, builtin,
                   f"{where}:{getattr(fn, '__qualname__', name)}")

    def validate(self, params: dict[str, Any], step: str, is_ref: Callable[[Any], bool] = lambda v: False,
                 base_dir: Path | None = None) -> list[tuple[str, str, str]]:
        """Problems of a config (step, key, message); references are type-checked at run time."""
        problems = []
        for k in params:
            if k not in self.fields and not self.extra:
                from ..specs.base import suggest
                problems.append((step, k, f"unknown parameter for step type '{self.name}' "
                                          f"({suggest(k, list(self.fields))})"))
        for f in self.fields.values():
            if f.name not in params:
                if f.required:
                    problems.append((step, f.name, f"missing required parameter ({type_name(f.hint)}) "
                                                   f"of step type '{self.name}'"))
                continue
            v = params[f.name]
            if is_ref(v):
                continue
            if not toml_representable(f.hint) and not isinstance(v, str):
                problems.append((step, f.name, f"expects {type_name(f.hint)}, which only a reference like "
                                               "'${step.output}' can give"))
                continue
            try:
                check_value(v, f.hint)
            except TypeError as e:
                problems.append((step, f.name, f"wrong type: {e}"))
        if self.check is not None and not problems:
            problems += self.check({k: v for k, v in params.items() if not is_ref(v)}, step, base_dir)
        return problems

    def call(self, params: dict[str, Any], ctx: PipelineContext | None, step: str) -> Any:
        """Run with a resolved config (types checked again now that references have values)."""
        kw = {}
        for k, v in params.items():
            f = self.fields.get(k)
            if f is None:
                kw[k] = v
                continue
            try:
                kw[k] = check_value(v, f.hint)
            except TypeError as e:
                if not toml_representable(f.hint) and isinstance(v, str):
                    kw[k] = v  # a path standing for the object (e.g. a model file); the step opens it
                    continue
                raise PipelineConfigError([(step, k, f"wrong type: {e}")]) from None
        if self.context_param:
            kw[self.context_param] = ctx
        return self.fn(**kw)

    def describe(self) -> str:
        summary = " ".join(self.doc.split("\n\n")[0].split())
        lines = [f"{self.name}{' (built-in)' if self.builtin else ''}: {summary}"]
        lines += ["  " + f.describe() for f in self.fields.values()]
        if self.outputs:
            lines.append(f"  outputs: {', '.join(self.outputs)}")
        return "\n".join(lines)


# ---- registry ------------------------------------------------------------------------------------
REGISTRY: dict[str, Process] = {}


def register(fn_or_process: Callable[..., Any] | Process, name: str | None = None, *, replace: bool = False,
             outputs: tuple[str, ...] | None = None) -> Process:
    """Register a step type by name. Registering the same function again (a re-imported
    module) replaces it; another function under a taken name needs replace=True."""
    from . import steps  # noqa: F401  (built-in step types first, so their names are taken)
    proc = fn_or_process if isinstance(fn_or_process, Process) else Process.from_function(fn_or_process, name, outputs)
    if name is not None:
        proc.name = name
    if not proc.name.isidentifier():
        raise ValueError(f"step type name '{proc.name}' must be an identifier (letters, digits, _)")
    old = REGISTRY.get(proc.name)
    if old is not None and not replace and old.source != proc.source:
        hint = " (a built-in step type)" if old.builtin else f" (by {old.source})"
        raise ValueError(f"step type '{proc.name}' is already registered{hint}; choose another name with "
                         f"@pipeline_process(name=...) or pass replace=True")
    REGISTRY[proc.name] = proc
    return proc


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def list_registered(include_builtin: bool = True) -> list[str]:
    from . import steps  # noqa: F401  (registers the built-in step types)
    return sorted(n for n, p in REGISTRY.items() if include_builtin or not p.builtin)


def get_process(name: str) -> Process:
    from . import steps  # noqa: F401
    if name not in REGISTRY:
        from ..specs.base import suggest
        raise KeyError(f"unknown step type '{name}' ({suggest(name, sorted(REGISTRY))})")
    return REGISTRY[name]


def pipeline_process(fn: Callable[..., Any] | None = None, *, name: str | None = None,
                     outputs: tuple[str, ...] | list[str] | None = None, replace: bool = False) -> Any:
    """Decorator (with or without arguments): register `fn` as a step type; returns `fn`
    itself (now carrying `.pipeline_process`), so it stays a plain callable."""
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        proc = register(f, name, replace=replace, outputs=tuple(outputs) if outputs else None)
        f.pipeline_process = proc  # type: ignore[attr-defined]
        return f
    return wrap(fn) if fn is not None else wrap
