"""Progress bars that work in a plain script and inside a pipeline.

    for epoch in progress_bar(range(10), desc="epochs"):
        ...
    with progress_task("training") as report:      # a callback for train(progress=...)
        train(graph, X, y, cfg, progress=report)

Standalone, the bar is drawn with rich if installed, else tqdm, else plain text lines on
stderr (choose with `backend=` or $TINYUOP_PROGRESS = rich | tqdm | plain | none). Inside a
running pipeline, bars become tasks of the pipeline's one shared display.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Iterable, Iterator, TypeVar

from .pipeline_context import current_context

T = TypeVar("T")
BACKENDS = ("rich", "tqdm", "plain", "none")
ENV = "TINYUOP_PROGRESS"


def pick_backend(backend: str | None = None) -> str:
    """The backend asked for (argument, then $TINYUOP_PROGRESS), else the best one installed."""
    want = (backend or os.environ.get(ENV) or "").strip().lower()
    if want and want not in BACKENDS + ("auto",):
        raise ValueError(f"progress backend '{want}' is not one of {', '.join(BACKENDS)} (from "
                         f"{'the backend argument' if backend else '$' + ENV})")
    for name in ([want] if want and want != "auto" else []) + ["rich", "tqdm"]:
        if name in ("plain", "none"):
            return name
        try:
            __import__(name)
            return name
        except ImportError:
            continue
    return "plain"


def _total_of(iterable: Iterable, total: int | None) -> int | None:
    if total is not None:
        return int(total)
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


class _Plain:
    """Text lines on a stream: about every 10% (or 2 s when the total is unknown) and at the end."""

    def __init__(self, desc: str, total: int | None, stream: Any = None, prefix: str = ""):
        self.desc, self.total, self.n, self.prefix = desc, total, 0, prefix
        self.stream = stream or sys.stderr
        self.t0 = self.last = time.perf_counter()
        self.every = max(1, -(-(total or 0) // 10))
        self.message = ""
        self.fractional = False  # driven by fractions: show a percentage only

    def line(self, done: bool = False) -> None:
        el = time.perf_counter() - self.t0
        pct = f"{100 * self.n / self.total:.0f}%" if self.total else ""
        pos = pct if self.fractional else f"{self.n}/{self.total} ({pct})" if self.total else f"{self.n}"
        msg = f" {self.message}" if self.message else ""
        print(f"{self.prefix}{self.desc or 'progress'}: {pos}{msg} [{el:.1f}s{', done' if done else ''}]",
              file=self.stream, flush=True)
        self.last = time.perf_counter()

    def advance(self, k: int = 1) -> None:
        self.n += k
        now = time.perf_counter()
        if (self.total and self.n % self.every == 0 and self.n < self.total) or (not self.total and now - self.last > 2):
            self.line()

    def set(self, completed: float, message: str = "") -> None:
        self.message = message
        before = self.n
        self.n = int(completed)
        if self.total and self.n // self.every != before // self.every and self.n < self.total:
            self.line()

    def close(self) -> None:
        self.line(done=True)


class ProgressDisplay:
    """One display shared by every bar of a pipeline (rich: one live view with a task per bar)."""

    def __init__(self, backend: str | None = None, stream: Any = None):
        self.backend = pick_backend(backend)
        self.stream = stream or sys.stderr
        self._rich = None
        self.prefix = ""

    def start(self) -> "ProgressDisplay":
        if self.backend == "rich" and self._rich is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
            self._rich = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), TaskProgressColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[message]}"),
                                  console=Console(file=self.stream))
            self._rich.start()
        return self

    def stop(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def __enter__(self) -> "ProgressDisplay":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def print(self, text: str) -> None:
        """A line above the bars (rich) or on the stream."""
        if self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False)
        elif self.backend != "none":
            print(text, file=self.stream, flush=True)

    # ---- tasks -------------------------------------------------------------------------------
    def open(self, desc: str, total: int | None) -> "Task":
        return Task(self, desc, total)

    def track(self, iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        task = self.open(desc, _total_of(iterable, total))
        try:
            for x in iterable:
                yield x
                task.advance()
        finally:
            task.close()


class Task:
    """One bar of a display: `advance(k)`, `set(completed, message)`, or call it as a
    train(progress=...) callback with (fraction 0..1, message)."""

    SCALE = 1000  # a fraction-driven task counts to 1000

    def __init__(self, display: ProgressDisplay, desc: str, total: int | None):
        self.display, self.desc, self.total = display, desc, total
        self._tqdm = self._plain = self._id = None
        b = display.backend
        if b == "rich":
            display.start()
            self._id = display._rich.add_task(desc, total=total, message="")
        elif b == "tqdm":
            from tqdm import tqdm
            self._tqdm = tqdm(total=total, desc=desc, file=display.stream, leave=True, dynamic_ncols=True)
        elif b == "plain":
            self._plain = _Plain(desc, total, display.stream, display.prefix)

    def advance(self, k: int = 1) -> None:
        if self._id is not None:
            self.display._rich.advance(self._id, k)
        elif self._tqdm is not None:
            self._tqdm.update(k)
        elif self._plain is not None:
            self._plain.advance(k)

    def set(self, completed: float, message: str = "") -> None:
        if self._id is not None:
            self.display._rich.update(self._id, completed=completed, message=message)
        elif self._tqdm is not None:
            self._tqdm.n = completed
            if message:
                self._tqdm.set_postfix_str(message, refresh=False)
            self._tqdm.refresh()
        elif self._plain is not None:
            self._plain.set(completed, message)

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.total is None:  # first call fixes the scale: fractions of SCALE steps
            self.total = self.SCALE
            if self._id is not None:
                self.display._rich.update(self._id, total=self.SCALE)
            elif self._tqdm is not None:
                self._tqdm.total = self.SCALE
            elif self._plain is not None:
                self._plain.total, self._plain.every, self._plain.fractional = self.SCALE, self.SCALE // 10, True
        self.set(round(max(0.0, min(1.0, fraction)) * self.total), message)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self._plain is not None:
            self._plain.close()
            self._plain = None
        elif self._id is not None and self.display._rich is not None:
            self.display._rich.refresh()
            self._id = None


def _display_for(backend: str | None) -> tuple[ProgressDisplay, bool]:
    """The pipeline's shared display when running in one, else a fresh one we own."""
    ctx = current_context()
    if ctx is not None and ctx.progress is not None and backend is None:
        return ctx.progress, False
    return ProgressDisplay(backend), True


def progress_bar(iterable: Iterable[T], total: int | None = None, desc: str = "", *,
                 backend: str | None = None) -> Iterator[T]:
    """Iterate `iterable` while showing a progress bar (see module docs for the backends)."""
    display, own = _display_for(backend)
    if own and display.backend == "none":
        yield from iterable
        return
    try:
        yield from display.track(iterable, total, desc)
    finally:
        if own:
            display.stop()


@contextlib.contextmanager
def progress_task(desc: str = "", total: int | None = None, *, backend: str | None = None) -> Iterator[Task]:
    """A bar driven by hand: `task.advance()`, `task.set(n, msg)`, or pass the task as a
    `progress(fraction, message)` callback (e.g. to `uop_engine.train.train`)."""
    display, own = _display_for(backend)
    task = display.open(desc, total)
    try:
        yield task
    finally:
        task.close()
        if own:
            display.stop()

