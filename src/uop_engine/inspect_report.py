"""The report UOp Inspect returns: kernels, JIT capture and diagnostics as dataclasses, with JSON,
table rows and a self-contained HTML page (optionally with a picture of the network)."""
from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Diagnostic:
    level: str  # "info", "warning" or "error"
    code: str
    message: str


@dataclass
class KernelReport:
    index: int
    name: str
    kind: str                      # "kernel" for a compiled program, else the call type ("copy", ...)
    source: str = ""               # what the renderer produced (C for CPU/clang)
    ast_uops: int = 0              # UOps in the scheduled kernel AST (before codegen)
    program_uops: int = 0          # UOps in the linearized program (after codegen)
    global_size: list | None = None
    local_size: list | None = None
    compile_time_s: float = 0.0    # cold: caches bypassed, 0 when an identical kernel came earlier
    run_times_s: list = field(default_factory=list)
    time_s: float | None = None    # best of run_times_s
    est_ops: int = 0               # tinygrad's FLOP estimate per run
    est_mem_bytes: int = 0


@dataclass
class JitReport:
    calls: list = field(default_factory=list)   # {"call", "phase": plain|capture|replay, "time_s"}
    captured_kernels: int = 0
    kernel_names: list = field(default_factory=list)
    graph_batches: int = 0                      # kernels batched into a device graph runner
    replay_time_s: float | None = None          # best replay
    error: str | None = None


@dataclass
class InspectReport:
    options: dict
    uop_count: int                 # UOps reachable from the outputs before scheduling
    uop_op_counts: dict
    kernel_count: int              # compiled programs in the schedule
    kernels: list
    schedule_time_s: float
    compile_time_s: float
    run_times_s: list              # wall time of each run of the whole schedule, tinygrad's dispatch included
    counters: dict                 # GlobalCounters deltas of the last run, memory allocated
    jit: JitReport | None
    diagnostics: list
    output_shapes: list
    output_dtypes: list
    outputs: list = field(default_factory=list, repr=False)  # numpy arrays, not serialised

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("outputs")
        return _jsonable(d)

    def summary_table(self) -> list[dict]:
        """Overview rows {metric, value (float or None), text} for a KNIME table."""
        best = min(self.run_times_s) if self.run_times_s else None
        o = self.options
        rows: list[tuple[str, Any]] = [
            ("device", o["device"]), ("renderer", o["renderer"]), ("jit", o["jit"]), ("beam", o["beam"]),
            ("noopt", o["noopt"]), ("uop_count", self.uop_count), ("kernel_count", self.kernel_count),
            ("schedule_time_s", self.schedule_time_s), ("compile_time_s", self.compile_time_s),
            ("run_time_s_best", best), ("kernel_time_s_sum", sum(k.time_s or 0.0 for k in self.kernels)),
            ("global_ops", self.counters.get("global_ops")), ("global_mem_bytes", self.counters.get("global_mem")),
        ]
        if self.jit is not None:
            rows += [("jit_captured_kernels", self.jit.captured_kernels), ("jit_replay_time_s", self.jit.replay_time_s)]
        rows.append(("diagnostics", len(self.diagnostics)))
        return [{"metric": m, "value": float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None,
                 "text": _fmt(v)} for m, v in rows]

    def kernel_table(self) -> list[dict]:
        """One row per scheduled call (kernel or copy), without the source."""
        return [{"index": k.index, "name": k.name, "kind": k.kind, "ast_uops": k.ast_uops, "program_uops": k.program_uops,
                 "global_size": _fmt(k.global_size), "local_size": _fmt(k.local_size), "compile_time_s": k.compile_time_s,
                 "time_s": k.time_s, "est_ops": k.est_ops, "est_mem_bytes": k.est_mem_bytes,
                 "source_lines": k.source.count("\n") + 1 if k.source else 0} for k in self.kernels]

    def to_html(self, network_svg: str = "") -> str:
        """Self-contained page (no external JS/CSS): the network picture when given (an inline <svg>,
        see graph_view.graph_svg), summary, diagnostics, kernels, one <details> per source."""
        e = html.escape
        summary = "".join(f"<tr><th>{e(r['metric'])}</th><td>{e(r['text'])}</td></tr>" for r in self.summary_table())
        diags = "".join(f'<li class="{e(d.level)}"><b>{e(d.level)}</b> [{e(d.code)}] {e(d.message)}</li>'
                        for d in self.diagnostics) or "<li>none</li>"
        cols = ["index", "name", "kind", "ast_uops", "program_uops", "global_size", "local_size", "compile_time_s", "time_s"]
        krows = "".join("<tr>" + "".join(f"<td>{e(_fmt(r[c]))}</td>" for c in cols) + "</tr>" for r in self.kernel_table())
        ktable = "<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + f"</tr>{krows}</table>"
        srcs = "".join(f"<details><summary>{k.index}: {e(k.name)} ({e(k.kind)}, {k.program_uops} uops)</summary>"
                       f"<pre><code>{e(k.source or '(no source)')}</code></pre></details>" for k in self.kernels)
        ops = "".join(f"<tr><td>{e(op)}</td><td>{n}</td></tr>" for op, n in self.uop_op_counts.items())
        jit = ""
        if self.jit is not None:
            calls = "".join(f"<tr><td>{c['call']}</td><td>{e(c['phase'])}</td><td>{e(_fmt(c['time_s']))}</td></tr>"
                            for c in self.jit.calls)
            jit = (f"<h2>TinyJit</h2><p>captured kernels: {self.jit.captured_kernels}, graph batches: "
                   f"{self.jit.graph_batches}{', error: ' + e(self.jit.error) if self.jit.error else ''}</p>"
                   f"<table><tr><th>call</th><th>phase</th><th>time_s</th></tr>{calls}</table>")
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>UOp Inspect</title>"
                f"<style>{_CSS}</style></head><body><h1>UOp Inspect</h1>"
                + (f'<h2>Network</h2><div class="network">{network_svg}</div>' if network_svg else "")
                + f"<table>{summary}</table>"
                f"<h2>Diagnostics</h2><ul>{diags}</ul><h2>Kernels</h2>{ktable}{srcs}{jit}"
                f"<h2>UOp graph ({self.uop_count} UOps)</h2><table><tr><th>op</th><th>count</th></tr>{ops}</table>"
                "</body></html>")


_CSS = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}pre{background:#f6f6f6;padding:.5em;overflow:auto}"
        "li.warning{color:#a60}li.error{color:#b00}summary{cursor:pointer;font-family:monospace}"
        "div.network{overflow:auto;max-height:70vh;border:1px solid #ddd}")


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(_fmt(x) for x in v)
    return "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None  # strict JSON has no inf/nan
    return x if x is None or isinstance(x, (bool, int, str)) else str(x)
