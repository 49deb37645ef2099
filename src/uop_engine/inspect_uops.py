"""UOp Inspect: what tinygrad makes of a computation - UOp graph size, scheduled kernels with their
generated source, cold compile time and run times - under chosen options (device, JIT, BEAM, NOOPT).

Every option is set through `tinygrad.helpers.Context`, so tinygrad's global settings are the same
after the call. The tinygrad internals this needs (written against tinygrad 0.14.0) live in the
`_tg_*` functions; tests/test_inspect_uops.py exercises each of them so a tinygrad upgrade that
moves them fails loudly there.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any, Callable, Sequence

from .errors import GraphError
from .inspect_report import Diagnostic, InspectReport, JitReport, KernelReport  # noqa: F401  (public here too)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # tinygrad colours kernel names with ANSI codes


def _plain(s: Any) -> str: return _ANSI.sub("", str(s))


# ---------------------------------------------------------------- tinygrad 0.14 internals, isolated

def _tg_known_devices() -> list[str]:
    from tinygrad import Device
    return sorted(Device._devices)  # 0.14: backend names from runtime/ops_*.py


def _tg_available_devices() -> list[str]:
    from tinygrad import Device
    return list(Device.get_available_devices())  # 0.14: tries to open each device in ALL_DEVICES (~1 s)


def _tg_renderer_names(dev: str) -> list[str]:
    from tinygrad import Device
    d = Device[dev]
    return [d._renderer_name(r) for r in d.renderers]  # 0.14: names usable as DEV=<dev>:<name>


def _tg_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("tinygrad")
    except PackageNotFoundError:  # a source checkout
        return "unknown"


def _tg_graph_stats(outs: list) -> tuple[int, dict]:
    from tinygrad.uop.ops import UOp
    ops = Counter(u.op.name for u in UOp.sink(*[t.uop for t in outs]).toposort())
    ops["SINK"] -= 1  # the sink made here to join the outputs is not part of the graph
    ops = Counter({k: v for k, v in ops.items() if v > 0})
    return sum(ops.values()), dict(ops.most_common())


def _tg_schedule(outs: list) -> tuple[list, dict]:
    """The scheduled calls (one per kernel/copy) and bound variable values; the same steps as Tensor.realize."""
    from tinygrad import Tensor
    todo = [t for t in outs if not t.uop.is_virtual and not t.uop.has_buffer_identity()]
    if not todo:
        return [], {}
    linear, var_vals = Tensor.linear_with_vars(*todo)
    return list(linear.src), var_vals


def _tg_compile_cold(calls: list, stop: Callable[[str], None] = lambda phase: None) -> list[tuple[tuple, float]]:
    """Compile each call with every cache bypassed: tinygrad's in-memory program cache (set aside and
    restored), the disk caches for compiled binaries and BEAM results (CACHELEVEL=0), and worker
    processes (PARALLEL=0) that would not see CACHELEVEL. Returns (compiled calls, seconds) per call."""
    from tinygrad import Context, UOp
    from tinygrad.codegen import to_program_cache
    from tinygrad.engine.realize import compile_linear
    from tinygrad.uop.ops import Ops
    saved = dict(to_program_cache)
    to_program_cache.clear()
    out = []
    try:
        with Context(CACHELEVEL=0, PARALLEL=0):
            for i, c in enumerate(calls):
                stop(f"compiling kernel {i + 1} of {len(calls)}")  # BEAM searches kernel by kernel
                t0 = time.perf_counter()
                lin = compile_linear(UOp(Ops.LINEAR, src=(c,)))
                out.append((tuple(lin.src), time.perf_counter() - t0))
    finally:
        to_program_cache.update(saved)
    return out


def _tg_kernel(index: int, sched: Any, compiled: tuple, var_vals: dict, compile_s: float, ren: Any) -> KernelReport:
    from tinygrad.engine.realize import estimate_uop, get_call_arg_uops, get_call_name
    from tinygrad.uop.ops import Ops, sym_infer
    k = KernelReport(index, "", sched.src[0].op.name.lower(), ast_uops=len(sched.src[0].toposort()), compile_time_s=compile_s)
    prg_call = next((c for c in compiled if c.op is Ops.CALL and c.src[0].op is Ops.PROGRAM), None)
    if prg_call is None:
        try:
            k.name = _plain(get_call_name(sched, get_call_arg_uops(sched))).strip()
        except Exception:  # a call type get_call_name does not know: keep the op name
            k.name = k.kind
        return k
    prg = prg_call.src[0]  # 0.14: PROGRAM(SINK, LINEAR, SOURCE, BINARY) with a ProgramInfo arg
    k.kind, k.name = "kernel", _plain(prg.arg.name)
    k.source = next((s.arg for s in prg.src if s.op is Ops.SOURCE), "")
    lin = next((s.src for s in prg.src if s.op is Ops.LINEAR), ())
    k.program_uops = len(lin)
    if hasattr(ren, "asm_str"):  # 0.14 ISA renderers (CPU:X86) keep machine-code hex in SOURCE; show assembly
        try:
            k.source = ren.asm_str(list(lin), prg.arg.function_name)
        except Exception:  # asm_str is a debug aid in tinygrad; keep the SOURCE text
            pass
    k.global_size = [sym_infer(x, var_vals) for x in prg.arg.global_size]
    k.local_size = None if prg.arg.local_size is None else [sym_infer(x, var_vals) for x in prg.arg.local_size]
    est = estimate_uop(prg_call)
    k.est_ops, k.est_mem_bytes = int(sym_infer(est.ops, var_vals)), int(sym_infer(est.mem, var_vals))
    return k


def _tg_run_call(calls: tuple, var_vals: dict) -> float:
    """Run one scheduled call, waiting for it; tinygrad's own measured time (added to
    GlobalCounters.time_sum_s when run with wait=True), else the wall time."""
    from tinygrad import GlobalCounters, UOp
    from tinygrad.engine.realize import run_linear
    from tinygrad.uop.ops import Ops
    before, t0 = GlobalCounters.time_sum_s, time.perf_counter()
    run_linear(UOp(Ops.LINEAR, src=calls), var_vals, wait=True)
    wall, et = time.perf_counter() - t0, GlobalCounters.time_sum_s - before
    return et if et > 0 else wall


def _tg_jit_phase(jitted: Any) -> str:
    cnt = getattr(jitted, "cnt", 0)  # 0.14 TinyJit: call 0 runs plainly, call 1 captures, later calls replay
    return "plain" if cnt == 0 else "capture" if cnt == 1 else "replay"


def _tg_jit_captured(jitted: Any) -> tuple[list[str], int]:
    from tinygrad.uop.ops import Ops
    cap = getattr(jitted, "captured", None)
    if cap is None:
        return [], 0
    names, batches = [], 0
    for c in cap._linear.src:  # 0.14: CapturedJit._linear is the compiled, graph-split LINEAR
        is_graph = (ast := c.src[0]).op is Ops.CUSTOM_FUNCTION and ast.arg == "graph"
        inner = ast.src[0].src if is_graph else (c,)
        batches += is_graph
        names += [_plain(k.src[0].arg.name) for k in inner if k.src[0].op is Ops.PROGRAM]
    return names, batches


# ---------------------------------------------------------------- the engine

def _resolve_device(device: str | None) -> tuple[str, dict]:
    """(device for the tensors, Context settings); a clear GraphError when it cannot be used."""
    from tinygrad import Context, Device
    if device is None:
        return Device.DEFAULT, {}
    if not isinstance(device, str) or not device.strip():
        raise GraphError(f"device must be a device name such as 'CPU', got {device!r}", param="device",
                         fix="leave it empty for tinygrad's default device or name one, e.g. 'CPU' or 'CPU:X86'")
    base, _, rest = device.strip().partition(":")
    base = base.upper()
    # 'CPU:1' names a device index; 'CPU:LLVM' names a renderer, which tinygrad 0.14 picks through DEV
    dev, ctx = (f"{base}:{rest}" if rest.isdigit() else base), {"DEV": base if rest.isdigit() else device.strip()}
    if base not in _tg_known_devices():
        raise GraphError(f"device '{device}' is not a tinygrad device", param="device",
                         fix=f"use one of the available devices: {', '.join(_tg_available_devices()) or 'none'}")
    try:
        with Context(**ctx):
            _ = Device[dev].renderer
    except Exception as exc:
        avail = _tg_available_devices()
        fix = (f"use a renderer {base} has: {', '.join(_tg_renderer_names(base))} (as '{base}:<renderer>')"
               if rest and not rest.isdigit() and base in avail else f"use one of the available devices: {', '.join(avail) or 'none'}")
        raise GraphError(f"device '{device}' is not available here ({_plain(exc)})", param="device", fix=fix) from exc
    return dev, ctx


def _make_inputs(input_shapes: Sequence, dtype: Any, seed: int, dev: str) -> list:
    import numpy as np
    from tinygrad import Tensor, dtypes
    from tinygrad.dtype import to_dtype
    try:
        dt = to_dtype(dtype)
    except (AttributeError, TypeError) as exc:
        raise GraphError(f"unknown dtype {dtype!r}", param="dtype", fix="use a tinygrad dtype name such as "
                         "'float32', 'float16', 'int32' or 'bool'") from exc
    rng, out = np.random.default_rng(seed), []
    for shape in input_shapes:
        if dtypes.is_float(dt):
            a = rng.standard_normal(shape).astype(np.float32)
        elif dt == dtypes.bool:
            a = rng.random(shape) < 0.5
        else:  # small non-negative ints fit every integer dtype
            a = rng.integers(0, 8, size=shape).astype(np.int32)
        try:
            out.append(Tensor(a, device=dev, dtype=dt).realize())
        except Exception as exc:
            raise GraphError(f"cannot make {dtype} inputs on {dev}: {_plain(exc)[:400]}", param="dtype",
                             fix="use a dtype the device supports, e.g. 'float32'") from exc
    return out


def _call(fn: Callable, inputs: list) -> tuple:
    from tinygrad import Tensor
    try:
        ret = fn(*inputs)
    except Exception as exc:
        shapes = [tuple(t.shape) for t in inputs]
        raise GraphError(f"calling fn on inputs of shapes {shapes} failed: {type(exc).__name__}: {exc}", param="fn",
                         fix="check that fn takes one tensor per entry of input_shapes and that the shapes fit") from exc
    outs = (ret,) if isinstance(ret, Tensor) else tuple(ret) if isinstance(ret, (tuple, list)) else None
    if not outs or not all(isinstance(t, Tensor) for t in outs):
        raise GraphError(f"fn must return a Tensor or a tuple of Tensors, got {type(ret).__name__}", param="fn",
                         fix="return the output tensor(s) of the computation")
    return outs


def _check_args(input_shapes: Any, beam: Any, runs: Any) -> list[tuple]:
    def bad(v: Any, lo: int) -> bool: return not isinstance(v, int) or isinstance(v, bool) or v < lo
    ok = isinstance(input_shapes, (list, tuple)) and all(isinstance(s, (list, tuple)) and not any(bad(d, 1) for d in s)
                                                        for s in input_shapes)
    if not ok:
        raise GraphError(f"input_shapes must be a list of tuples of positive ints, got {input_shapes!r}",
                         param="input_shapes", fix="pass one shape per input of fn, e.g. [(16, 32), (32, 8)]")
    if bad(beam, 0):
        raise GraphError(f"beam must be an int >= 0, got {beam!r}", param="beam", fix="use 0 (off) or a small width like 2")
    if bad(runs, 1):
        raise GraphError(f"runs must be an int >= 1, got {runs!r}", param="runs", fix="use 2 or more")
    return [tuple(s) for s in input_shapes]


class InspectCancelled(RuntimeError):
    """`should_stop()` said stop; `phase` is the step that was about to run."""

    def __init__(self, phase: str):
        self.phase = phase
        super().__init__(f"UOp Inspect cancelled before {phase}")


def inspect_function(fn: Callable, input_shapes: list[tuple], *, device: str | None = None, jit: bool = False,
                     beam: int = 0, noopt: bool = False, dtype: Any = "float32", seed: int = 0, runs: int = 2,
                     should_stop: Callable[[], bool] | None = None) -> InspectReport:
    """Build `fn(*inputs)` on random inputs (numpy, `seed`) and report its UOp graph, kernels, sources and
    timings. Runs the schedule `runs` times; with `jit` also calls a TinyJit of fn (at least 3 times:
    plain, capture, replay). Raises GraphError naming the parameter when an argument cannot be used;
    `should_stop()` is asked between phases (and between kernels while compiling, where BEAM runs),
    raising InspectCancelled; tinygrad's settings are restored either way."""

    def stop(phase: str) -> None:
        if should_stop is not None and should_stop():
            raise InspectCancelled(phase)
    from tinygrad import Context, Device, GlobalCounters
    from tinygrad.helpers import DEBUG, JIT, getenv
    shapes = _check_args(input_shapes, beam, runs)
    dev, dev_ctx = _resolve_device(device)
    with Context(**dev_ctx):
        ren = Device[dev].renderer
        stop("making the inputs")
        inputs = _make_inputs(shapes, dtype, seed, dev)  # outside BEAM/NOOPT: input set-up is not inspected
        with Context(BEAM=beam, NOOPT=int(bool(noopt))):
            stop("building the UOp graph")
            mem0, k0 = GlobalCounters.mem_used, GlobalCounters.kernel_count
            outs = _call(fn, inputs)
            eager = GlobalCounters.kernel_count - k0  # kernels fn ran itself (.realize()/.numpy() inside fn)
            uop_count, op_counts = _tg_graph_stats(list(outs))
            t0 = time.perf_counter()
            sched, var_vals = _tg_schedule(list(outs))
            schedule_s = time.perf_counter() - t0
            stop("compiling" + (f" (BEAM={beam} search)" if beam else ""))
            try:
                compiled = _tg_compile_cold(sched, stop)
            except InspectCancelled:
                raise
            except Exception as exc:
                raise GraphError(f"tinygrad could not compile a kernel of fn on {dev} with {type(ren).__name__}: "
                                 f"{_plain(exc)[:400]}", param="device", fix="try another device or renderer, e.g. 'CPU' (clang)") from exc
            kernels = [_tg_kernel(i, s, c, var_vals, ct, ren) for i, (s, (c, ct)) in enumerate(zip(sched, compiled))]
            stop("running the kernels" + (" (BEAM search done)" if beam else ""))
            run_times, counters = _run_schedule(kernels, [c for c, _ in compiled], var_vals, runs, dev)
            counters["mem_allocated_bytes"] = GlobalCounters.mem_used - mem0
            outputs = [t.numpy() for t in outs]
            if jit:
                stop("the TinyJit runs")
            jit_report = _run_jit(fn, inputs, max(runs, 3), dev, JIT.value or 1) if jit else None
    n_prog, compile_s = sum(k.kind == "kernel" for k in kernels), sum(ct for _, ct in compiled)
    diags = _diagnose(n_prog, compile_s, run_times, kernels, jit_report, beam, noopt, jit, runs, DEBUG.value, getenv("HCQ2"),
                      eager)
    options = {"device": dev, "device_requested": device, "renderer": type(ren).__name__, "jit": bool(jit), "beam": beam,
               "noopt": bool(noopt), "dtype": str(dtype), "seed": seed, "runs": runs, "input_shapes": [list(s) for s in shapes],
               "tinygrad_version": _tg_version(),
               "compile_measurement": "cold: in-memory program cache set aside, CACHELEVEL=0, PARALLEL=0 (serial)"}
    return InspectReport(options, uop_count, op_counts, n_prog, kernels, schedule_s, compile_s, run_times, counters, jit_report,
                         diags, [list(t.shape) for t in outs], [str(t.dtype).removeprefix("dtypes.") for t in outs], outputs)


def _run_schedule(kernels: list, compiled: list, var_vals: dict, runs: int, dev: str) -> tuple[list, dict]:
    """Run the compiled calls `runs` times, one at a time (per-kernel times); GlobalCounters deltas of the last run."""
    from tinygrad import Device, GlobalCounters as G
    run_times, counters = [], {}
    for _ in range(runs):
        g0, t0 = (G.global_ops, G.global_mem, G.kernel_count), time.perf_counter()
        for k, c in zip(kernels, compiled):
            k.run_times_s.append(_tg_run_call(c, var_vals))
        Device[dev].synchronize()
        run_times.append(time.perf_counter() - t0)
        counters = {"global_ops": G.global_ops - g0[0], "global_mem": G.global_mem - g0[1], "kernel_count": G.kernel_count - g0[2]}
    for k in kernels:
        k.time_s = min(k.run_times_s) if k.run_times_s else None
    return run_times, counters


def _run_jit(fn: Callable, inputs: list, n_calls: int, dev: str, jit_level: int) -> JitReport:
    from tinygrad import Context, Device, TinyJit
    rep = JitReport()
    jitted = TinyJit(lambda *xs: _call(fn, list(xs)))
    try:
        with Context(JIT=jit_level):
            for i in range(n_calls):
                phase, t0 = _tg_jit_phase(jitted), time.perf_counter()
                jitted(*inputs)
                Device[dev].synchronize()
                rep.calls.append({"call": i, "phase": phase, "time_s": time.perf_counter() - t0})
    except Exception as exc:  # a function TinyJit cannot capture is a finding, not a crash
        rep.error = f"{type(exc).__name__}: {_plain(exc)}"
    rep.kernel_names, rep.graph_batches = _tg_jit_captured(jitted)
    rep.captured_kernels = len(rep.kernel_names)
    replays = [c["time_s"] for c in rep.calls if c["phase"] == "replay"]
    rep.replay_time_s = min(replays) if replays else None
    return rep


def _diagnose(n_prog: int, compile_s: float, run_times: list, kernels: list, jit_rep: JitReport | None,
              beam: int, noopt: bool, jit: bool, runs: int, debug: int, hcq2: int, eager: int) -> list[Diagnostic]:
    best = min(run_times) if run_times else 0.0
    checks = [
        (eager > 0, "warning", "eager_kernels", f"fn itself ran {eager} kernel(s)/copies (a .realize(), .numpy() or "
         ".item() inside fn); they are not in this report"),
        (n_prog == 0, "warning", "no_kernels", "nothing was scheduled: the outputs are already realized buffers or constants"),
        (beam and noopt, "warning", "noopt_ignored", "tinygrad runs BEAM search before NOOPT, so noopt has no effect when beam >= 1"),
        (beam, "info", "beam_uncached", "BEAM search ran with its disk cache off (cold measurement); results were not saved"),
        (n_prog and compile_s > 10 * best, "info", "compile_dominates", f"compiling took {compile_s:.3g}s, "
         f"{compile_s / max(best, 1e-9):.0f}x one run ({best:.3g}s); reuse compiled kernels (TinyJit, same shapes)"),
        *[(k.program_uops >= 3000, "warning", "big_kernel", f"kernel {k.name} has {k.program_uops} UOps (BEAM skips "
           "kernels over BEAM_UOPS_MAX=3000)") for k in kernels],
        (jit and runs < 3, "info", "jit_runs", f"runs={runs} raised to 3 for the JIT: TinyJit runs call 1 plainly, "
         "captures on call 2 and replays from call 3"),
        (jit_rep is not None and jit_rep.error, "error", "jit_failed", f"TinyJit could not run fn: {jit_rep and jit_rep.error}"),
        (jit_rep is not None and not jit_rep.error and jit_rep.captured_kernels > 1 and jit_rep.graph_batches == 0, "info",
         "jit_no_graph", "the device has no graph runner here: the JIT replays its kernels one by one"),
        (debug >= 2, "info", "debug_on", f"DEBUG={debug}: tinygrad also printed each kernel launch"),
        (hcq2, "warning", "hcq2", "HCQ2 is set: the per-kernel capture follows the default execution path and may be off"),
    ]
    return [Diagnostic(level, code, msg) for cond, level, code, msg in checks if cond]
