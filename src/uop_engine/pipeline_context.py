"""The running pipeline's shared state, as seen by the helpers (progress, logger, device).

A pipeline runner sets a `PipelineContext` in a contextvar around each step; helpers that
find one attach to the pipeline's progress display, current run and device, and behave as
standalone script helpers otherwise. A contextvar (not a global) keeps threads and nested
runs apart.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


@dataclass
class PipelineContext:
    pipeline: str                         # pipeline name
    step: str | None = None               # the step now running
    progress: Any = None                  # a progress.ProgressDisplay shared by all steps
    run: Any = None                       # logger.RunHandle of the current step's (child) run
    parent_run: Any = None                # logger.RunHandle of the pipeline's run
    device: str | None = None             # the device every step uses
    out_dir: Path | None = None           # where steps write artifacts
    base_dir: Path | None = None          # relative input paths (graph files, data) resolve here
    seed: int = 0                         # the pipeline's seed (steps may override)
    params: dict[str, Any] = field(default_factory=dict)  # the current step's configuration


_CURRENT: contextvars.ContextVar[PipelineContext | None] = contextvars.ContextVar("tinyuop_pipeline", default=None)


def current_context() -> PipelineContext | None:
    """The running pipeline's context, or None in a plain script."""
    return _CURRENT.get()


@contextlib.contextmanager
def pipeline_context(ctx: PipelineContext) -> Iterator[PipelineContext]:
    """Make `ctx` current for the duration of the block (restored afterwards, even on errors)."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)
