"""Block plugins: one Python module defines one block, registered as a user op.

A plugin module `<name>.py` calls `define_block(...)` once and keeps the result as `BLOCK`:

    from uop_engine.plugins import define_block, Param, TT, GraphError, FLOAT

    def infer(ts, p):                    # list[TT] in, list[TT] out (batch axis included)
        return [TT(ts[0].shape, ts[0].dtype)]

    def lower(ctx, xs, p, w):            # tinygrad Tensors in, Tensor (or tuple) out
        return xs[0] * (xs[0] * p["beta"]).sigmoid()

    BLOCK = define_block("swish", "x * sigmoid(beta * x).", inputs=("x",),
                         params=(Param("beta", FLOAT, 1.0, "slope of the gate"),), infer=infer, lower=lower)

Instead of `infer` + `lower` a block may give `expand(sub, refs, p, types)` adding existing
ops through `sub.add(op, inputs, name, **params)` (see uop_engine.ops.blocks); it may give
`weights(p, ts) -> {name: WeightSpec}` and an `onnx(ctx, xs, p, ts)` entry. The op is named
`user_<name>`, sits in the "user" palette category and works in shapes, compile and ONNX
export like a built-in.

Plugins are code, so only approved ones load: the library folder holds `<name>.py` next to
`<name>.approval.json` (provenance and the sha256 of the exact file bytes, written when a
person approved it). `load_plugins(folder)` refuses, naming the file, any plugin without an
approval or whose bytes no longer match the approved hash; the bytes that were checked are
the bytes that run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import types
import warnings
from pathlib import Path

from .errors import GraphError
from .optable import OPS, TT, OpDef, WeightSpec, register
from .params import BOOL, FLOAT, INT, INTS, OPT_INT, OPT_INTS, STR, Param

__all__ = ["define_block", "Param", "TT", "WeightSpec", "GraphError", "INT", "FLOAT", "BOOL", "STR", "INTS",
           "OPT_INT", "OPT_INTS", "code_hash", "load_plugins", "load_plugin_file", "save_plugin", "PluginRefused",
           "APPROVAL_FORMAT", "plugin_op_name"]

APPROVAL_FORMAT = "tinyuop.plugin-approval"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_log = logging.getLogger(__name__)


class PluginRefused(GraphError):
    """A plugin file was not loaded (no approval, changed code, or it failed to define its block)."""


class PluginWarning(UserWarning):
    """Issued by load_plugins for each refused plugin when strict=False."""


def plugin_op_name(name: str) -> str:
    return f"user_{name}"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise GraphError(f"block name {name!r} is not valid", param="name",
                         fix="use lower-case letters, digits and underscores, starting with a letter (max 41)")
    return name


def code_hash(code: str | bytes) -> str:
    """sha256 (hex) of the plugin file's bytes; strings are hashed as UTF-8."""
    return hashlib.sha256(code.encode("utf-8") if isinstance(code, str) else code).hexdigest()


def _infer_via_expand(ts, p):  # blocks infer through their expansion (see uop_engine.infer)
    raise NotImplementedError


def define_block(name: str, doc: str, inputs=("x",), params=(), infer=None, lower=None, expand=None,
                 weights=None, onnx=None, label: str | None = None, keywords=()) -> OpDef:
    """Register the block of a plugin module as op `user_<name>` and return its OpDef."""
    check_name(name)
    if (lower is None) == (expand is None):
        raise GraphError(f"block '{name}' needs exactly one of lower= or expand=",
                         fix="give infer= and lower= (a new computation) or expand= (a composition of ops)")
    if lower is not None and infer is None:
        raise GraphError(f"block '{name}' has lower= but no infer=", fix="add infer(ts, p) -> list of TT")
    params = tuple(params)
    if not all(isinstance(p, Param) for p in params):
        raise GraphError(f"block '{name}': params must be Param(...) objects")
    inputs = tuple(inputs)
    if not inputs or not all(isinstance(i, str) and i for i in inputs):
        raise GraphError(f"block '{name}': inputs must be a non-empty tuple of names, e.g. ('x',)")
    existing = OPS.get(plugin_op_name(name))
    if existing is not None and "plugin" not in existing.meta:
        raise GraphError(f"block name '{name}' is already used by a saved block ({existing.name})", param="name",
                         fix="choose another name for the plugin")
    first = (doc or name).strip().splitlines()[0].rstrip(".") + "."
    op = OpDef(plugin_op_name(name), label or name.replace("_", " ").title(), "user", first, params, inputs,
               infer=infer or _infer_via_expand, lower=lower, expand=expand, weights=weights,
               onnx=onnx if onnx is not None else ("expand" if expand is not None else None),
               keywords=tuple(keywords) + ("plugin", name), user=True, meta={"plugin": name, "doc": doc})
    return register(op, replace=True)


# ---- approved plugin files ------------------------------------------------------------------
def approval_path(py: Path) -> Path:
    return py.with_name(py.stem + ".approval.json")


def read_approval(py: Path) -> dict:
    """The approval document of plugin file `py`, or PluginRefused saying what is wrong."""
    ap = approval_path(py)
    if not ap.is_file():
        raise PluginRefused(f"plugin {py} has no approval file ({ap.name}); it was not approved",
                            fix="generate and approve it with Generate Block, or remove the file")
    try:
        doc = json.loads(ap.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PluginRefused(f"approval file {ap} cannot be read: {e}", fix="re-approve the plugin") from None
    if doc.get("format") != APPROVAL_FORMAT or not isinstance(doc.get("sha256"), str):
        raise PluginRefused(f"approval file {ap} is not a TinyUOp plugin approval", fix="re-approve the plugin")
    if doc.get("name") != py.stem:
        raise PluginRefused(f"approval file {ap} approves '{doc.get('name')}', not '{py.stem}'")
    return doc


def load_plugin_file(path: str | Path) -> OpDef:
    """Check `path` against its approval, then run it and return the registered op."""
    py = Path(path)
    check_name(py.stem)
    approval = read_approval(py)
    data = py.read_bytes()
    actual = code_hash(data)
    if actual != approval["sha256"].lower():
        raise PluginRefused(f"plugin {py} was changed after approval (sha256 {actual[:16]}... is not the approved "
                            f"{approval['sha256'][:16]}...)", fix="restore the approved file or approve the new code")
    modname = f"tinyuop_plugin_{py.stem}"
    module = types.ModuleType(modname)
    module.__file__ = str(py)
    sys.modules[modname] = module  # dataclasses and pickling look modules up here
    try:
        exec(compile(data, str(py), "exec"), module.__dict__)  # the checked bytes, not a re-read
    except Exception as e:
        sys.modules.pop(modname, None)
        raise PluginRefused(f"plugin {py} failed to load: {type(e).__name__}: {e}") from None
    op = getattr(module, "BLOCK", None)
    if not isinstance(op, OpDef) or op.name != plugin_op_name(py.stem):
        raise PluginRefused(f"plugin {py} does not define BLOCK = define_block('{py.stem}', ...)",
                            fix="the block name must equal the file name")
    op.meta.update({"path": str(py), "approval": approval, "sha256": actual})
    return op


def load_plugins(folder: str | Path | None = None, strict: bool = False) -> "LoadedPlugins":
    """Load every approved `*.py` plugin in the block library folder (default as blocklib).

    Refused files (no approval, changed code, broken module) raise PluginRefused when
    `strict`, else each gives a PluginWarning and a log warning naming the file and is listed
    in the result's `.refused`; the others still load."""
    if folder is None:
        from .blocklib import DEFAULT_LIBRARY
        folder = DEFAULT_LIBRARY
    out = LoadedPlugins()
    folder = Path(folder)
    if not folder.is_dir():
        return out
    from . import ops as _builtin  # noqa: F401  (built-ins first: plugins may expand to them)
    for py in sorted(folder.glob("*.py")):
        if py.name.startswith(("_", ".")):
            continue
        try:
            out.append(load_plugin_file(py))
        except GraphError as e:
            if strict:
                raise
            out.refused.append((py, str(e)))
            warnings.warn(str(e), PluginWarning, stacklevel=2)
            _log.warning("TinyUOp plugin refused: %s", e)
    return out


class LoadedPlugins(list):
    """The ops loaded by load_plugins, plus `.refused`: (file, reason) for each refused file."""

    def __init__(self):
        super().__init__()
        self.refused: list[tuple[Path, str]] = []


def save_plugin(folder: str | Path, name: str, code: str, provenance: dict, overwrite: bool = False) -> Path:
    """Write `<name>.py` and its approval (provenance + sha256 of the code) atomically.

    The caller is the approval step: it must already have checked that a person approved
    exactly this code (see llm.approval)."""
    from .fileio import atomic_write
    check_name(name)
    py = Path(folder) / f"{name}.py"
    if py.exists() and not overwrite:
        raise GraphError(f"plugin '{name}' already exists at {py}", param="name",
                         fix="choose another name or allow overwriting")
    data = code.encode("utf-8")
    doc = {**provenance, "format": APPROVAL_FORMAT, "version": 1, "name": name, "file": py.name,
           "sha256": code_hash(data)}
    # code first: a crash between the two writes leaves a file that the old approval refuses
    atomic_write(py, data)
    atomic_write(approval_path(py), json.dumps(doc, indent=1).encode())
    return py
