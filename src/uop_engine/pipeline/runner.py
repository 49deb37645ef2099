"""Run a validated pipeline: steps in dependency order, each in the pipeline context, every
step recorded in the experiment store (one parent run for the pipeline, a child run per step).

    result = run_pipeline("examples/digits.toml", out="out/digits")
    result.outputs["evaluate"]["metrics"]["accuracy"]
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..pipeline_context import PipelineContext, pipeline_context
from .config import REF, PipelineConfig, load_pipeline
from .process import PipelineConfigError, get_process


class PipelineRunError(RuntimeError):
    """A step failed while running; `step` names it and `__cause__` is the original error.

    A reference that cannot be resolved once its step has run (an output the step did not
    give this time, a key inside a value that has none) is one too: earlier steps ran, so it
    is a run failure (CLI exit 1), not a file that failed validation (exit 2)."""

    def __init__(self, step: str, error: BaseException):
        self.step = step
        if isinstance(error, PipelineConfigError):
            msg = f"step '{step}' failed: its parameters could not be resolved after the earlier steps ran: {error}"
        else:
            msg = f"step '{step}' failed: {type(error).__name__}: {error}"
        super().__init__(msg)


@dataclass
class PipelineResult:
    name: str
    out_dir: Path
    run_id: Any
    order: list[str]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    summary_path: Path | None = None

    def __getitem__(self, step: str) -> dict[str, Any]:
        return self.outputs[step]


def _lookup(outputs: dict[str, dict], step: str, key: str | None, where: tuple[str, str]) -> Any:
    val: Any = outputs[step]
    if key is None:
        return val["result"] if set(val) == {"result"} else val
    for part in key.split("."):
        if isinstance(val, dict) and part in val:
            val = val[part]
        elif not isinstance(val, dict) and hasattr(val, part):
            val = getattr(val, part)
        elif isinstance(val, dict) and set(val) == {"result"} and hasattr(val["result"], part):
            val = getattr(val["result"], part)
        else:
            have = ", ".join(map(str, val)) if isinstance(val, dict) else type(val).__name__
            raise PipelineConfigError([(where[0], where[1], f"step '{step}' has no output '{key}' (it gave: {have})")])
    return val


def resolve(value: Any, outputs: dict[str, dict], out_dir: Path, step: str, key: str = "params") -> Any:
    """Replace ${step.key} / ${out} references inside a params value with their values."""
    if isinstance(value, dict):
        return {k: resolve(v, outputs, out_dir, step, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs, out_dir, step, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def one(m) -> Any:
        s, k = m.group(1), m.group(2)
        if s == "out":
            return str(out_dir)
        if s == "pipeline":
            return outputs["pipeline"].get(k) if k else outputs["pipeline"]
        return _lookup(outputs, s, k, (step, key))
    whole = REF.fullmatch(value)
    if whole:
        return one(whole)
    return REF.sub(lambda m: str(one(m)), value)


def _jsonable(v: Any, depth: int = 0) -> Any:
    """Outputs for the summary file: numbers, strings, small lists/dicts; big arrays summarised."""
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return v.item()
    if isinstance(v, dict) and depth < 4:
        return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)) and depth < 4 and len(v) <= 1000:
        return [_jsonable(x, depth + 1) for x in v]
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return {"array": list(v.shape), "dtype": str(v.dtype)}
    summary = getattr(v, "summary", None)
    if callable(summary):
        try:
            return _jsonable(summary(), depth + 1)
        except Exception:
            pass
    return f"<{type(v).__name__}>"


def _record(run: Any, outs: dict[str, Any], out_dir: Path, seconds: float) -> None:
    """Numbers at the top level and in a 'metrics' dict become metrics, except those the step
    already logged itself (a training history's last value would be stored twice); the step's
    time is `step_seconds` (`seconds` may be a per-epoch history). Files under out_dir become
    artifacts."""
    nums = {k: v for k, v in outs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if isinstance(outs.get("metrics"), dict):
        nums.update(outs["metrics"])
    nums = {k: v for k, v in nums.items() if k not in run.logged_keys}
    run.log_metrics({**nums, "step_seconds": seconds})
    root = out_dir.resolve()
    for k, v in outs.items():
        if isinstance(v, (str, Path)) and len(str(v)) < 4096:
            p = Path(v)
            try:
                if p.is_file() and root in p.resolve().parents:
                    run.log_artifact(p, name=f"{k}:{p.name}")
            except OSError:
                continue


def run_pipeline(pipeline: PipelineConfig | str | Path, *, out: str | Path | None = None, store: Any = None,
                 device: str | None = None, progress: str | None = None) -> PipelineResult:
    """Validate (if given a path), then run every step; raises PipelineConfigError for a bad
    file (nothing has run then) and PipelineRunError naming the step that failed (also when a
    reference cannot be resolved once its step has run)."""
    from ..device import device_manager
    from ..logger import RunHandle, external_sinks, open_store
    from ..progress import ProgressDisplay
    cfg = pipeline if isinstance(pipeline, PipelineConfig) else load_pipeline(pipeline)
    out_dir = Path(out or cfg.out or Path("out") / cfg.name)
    dev = device_manager.get_device(device or cfg.device)
    st = open_store(store or cfg.store)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"pipeline": cfg.raw, "source": cfg.source, "out": str(out_dir), "device": dev}
    parent = RunHandle.start(st, cfg.name, cfg.name, meta, tags={"kind": "pipeline"},
                             sinks=external_sinks(cfg.name, cfg.name, meta), device=dev)
    result = PipelineResult(cfg.name, out_dir, parent.id, list(cfg.order))
    outputs: dict[str, dict] = {"pipeline": {"name": cfg.name, "seed": cfg.seed, "device": dev, "out": str(out_dir)}}
    display = ProgressDisplay(progress).start()
    status, running = "failed", None
    try:
        for i, name in enumerate(cfg.order):
            step = cfg.step(name)
            proc = get_process(step.type)
            display.print(f"[{cfg.name}] step {i + 1}/{len(cfg.order)}: {name} ({step.type})")
            running = child = parent.child(name, step.params, tags={"kind": "step", "type": step.type})
            t0 = time.perf_counter()
            try:  # everything here happens after earlier steps ran: a failure is a run failure (exit 1)
                params = resolve(step.params, outputs, out_dir, name)
                ctx = PipelineContext(cfg.name, name, display, child, parent, dev, out_dir, cfg.base_dir, cfg.seed,
                                      params)
                with pipeline_context(ctx):
                    value = proc.call(params, ctx, name)
                outs = value if isinstance(value, dict) else ({} if value is None else {"result": value})
                outputs[name] = result.outputs[name] = outs
                result.seconds[name] = time.perf_counter() - t0
                _record(child, outs, out_dir, result.seconds[name])
            except Exception as e:
                raise PipelineRunError(name, e) from e
            child.end("finished")
            running = None
        status = "finished"
    finally:
        display.stop()
        if running is not None:
            running.end("failed")
        summary = {"pipeline": cfg.name, "source": cfg.source, "run_id": _jsonable(parent.id), "status": status,
                   "device": dev, "order": cfg.order, "seconds": result.seconds,
                   "steps": {k: _jsonable(v) for k, v in result.outputs.items()}}
        result.summary_path = out_dir / "pipeline_summary.json"
        from ..fileio import atomic_write
        atomic_write(str(result.summary_path), json.dumps(summary, indent=1, default=str).encode())
        parent.log_artifact(result.summary_path, name="pipeline_summary.json")
        parent.end(status, finish_sinks=True)
    return result
