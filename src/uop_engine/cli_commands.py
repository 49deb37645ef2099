"""What each `tinyuop` command does (argument parsing and exit codes live in cli.py)."""
from __future__ import annotations

import argparse
import json
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """A command-line argument is wrong (exit 2)."""


def version() -> str:
    try:
        from importlib.metadata import version as v
        return v("tinyuop-builder")
    except Exception:
        return "unknown"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# ---- pipelines -------------------------------------------------------------------------------------
def run(a: argparse.Namespace) -> int:
    from .pipeline import load_pipeline, run_pipeline
    cfg = load_pipeline(a.pipeline, _settings(a.set))
    if a.check:
        _say(f"pipeline '{cfg.name}' is valid; run order: {' -> '.join(cfg.order)}")
        return 0
    res = run_pipeline(cfg, out=a.out, store=a.store, device=a.device, progress=a.progress)
    _report(res)
    return 0


def _report(res: Any) -> None:
    _say(f"pipeline '{res.name}' finished (run {res.run_id}); artifacts in {res.out_dir}")
    for step in res.order:
        outs = res.outputs.get(step, {})
        metrics = outs.get("metrics") if isinstance(outs.get("metrics"), dict) else {}
        files = [str(v) for k, v in outs.items() if isinstance(v, str) and (k == "path" or k.endswith("_path"))]
        line = ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items() if isinstance(v, (int, float)))
        _say(f"  {step} ({res.seconds.get(step, 0):.1f}s){': ' + line if line else ''}"
             f"{' -> ' + ', '.join(files) if files else ''}")


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]  # numbers, booleans, lists as in a pipeline file
    except tomllib.TOMLDecodeError:
        return text


def _settings(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, eq, val = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--set {item!r} must look like key=value, e.g. --set epochs=3")
        out[key.strip()] = _parse_value(val.strip())
    return out


def _data_params(a: argparse.Namespace) -> dict:
    is_file = a.data != "digits" and (Path(a.data).suffix or Path(a.data).exists())
    return {"name": "file" if is_file else a.data, "path": str(Path(a.data).resolve()) if is_file else "",
            "target": a.target, "test_size": a.test_size, "limit": a.limit, "seed": a.seed}


def _run_steps(name: str, steps: list[dict], a: argparse.Namespace, out_default: str):
    from .pipeline import run_pipeline
    from .pipeline.config import parse_pipeline
    cfg = parse_pipeline({"name": name, "seed": a.seed, "steps": steps}, base_dir=Path.cwd(), source=f"tinyuop {name}")
    return run_pipeline(cfg, out=a.out or out_default, store=a.store, device=a.device, progress=a.progress)


def train(a: argparse.Namespace) -> int:
    settings: dict[str, Any] = {}
    for flag in ("epochs", "lr", "batch_size", "optimizer"):
        if getattr(a, flag) is not None:
            settings[flag] = getattr(a, flag)
    settings.update(_settings(a.set))
    graph = str(Path(a.graph).resolve())
    steps = [{"name": "data", "type": "dataset", "params": _data_params(a)},
             {"name": "train", "type": "train", "params": {"data": "${data.data}", "graph": graph, **settings}},
             {"name": "evaluate", "type": "evaluate", "params": {"model": "${train.model}", "data": "${data.data}"}}]
    _report(_run_steps("train", steps, a, "out/train"))
    return 0


def evaluate(a: argparse.Namespace) -> int:
    model = Path(a.model)
    if not model.is_file():
        raise UsageError(f"model file '{model}' does not exist")
    steps = [{"name": "data", "type": "dataset", "params": _data_params(a)},
             {"name": "evaluate", "type": "evaluate",
              "params": {"model": str(model.resolve()), "data": "${data.data}", "split": a.split}}]
    res = _run_steps("eval", steps, a, "out/eval")
    if a.json:
        from .pipeline.runner import _jsonable
        _say(json.dumps(_jsonable(res.outputs["evaluate"]["details"]), indent=1))
    else:
        _report(res)
    return 0


def export(a: argparse.Namespace) -> int:
    from .onnx_export import export_onnx
    src = Path(a.model)
    graph, weights, classes = _load_model_or_graph(src)
    if weights is None:
        from .compile import compile_graph
        weights = compile_graph(graph, seed=0).numpy_weights()
    out = Path(a.out) if a.out else src.with_suffix(".onnx")
    dyn = a.static_batch is None
    export_onnx(graph, weights, out, opset=a.opset, dynamic_batch=dyn, batch_size=a.static_batch or 1,
                class_labels=classes)
    _say(f"wrote {out} (opset {a.opset}, {'dynamic' if dyn else a.static_batch} batch, graph {graph.hash()})")
    return 0


def _load_model_or_graph(src: Path):
    """(graph, weights or None, classes) from a model bundle (.tuop, a zip) or a graph/spec JSON."""
    if not src.is_file():
        raise UsageError(f"'{src}' does not exist" if not src.exists() else f"'{src}' is not a file")
    if zipfile.is_zipfile(src):
        from .model_bundle import ModelBundle
        b = ModelBundle.load(src)
        return b.graph, b.weights, b.classes
    from .pipeline.graphs import graph_from_config
    return graph_from_config(str(src.resolve()), None, None, src.stem), None, None


# ---- inspection ------------------------------------------------------------------------------------
def inspect(a: argparse.Namespace) -> int:
    from .infer import analyze, fmt_shape, summarize
    from .graph import split_ref
    graph, _, classes = _load_model_or_graph(Path(a.graph))
    s = summarize(graph)
    an2, an3 = analyze(graph, 2), analyze(graph, 3)
    params_of: dict[str, int] = {}
    import math
    for nid, ws in an2.weights.items():
        top = an2.origin.get(nid, nid)
        params_of[top] = params_of.get(top, 0) + sum(math.prod(w.shape) for w in ws.values() if w.trainable)
    rows = []
    for n in graph.nodes:
        shapes = [tuple(x if x == y else None for x, y in zip(t2.shape, t3.shape))
                  for t2, t3 in zip(an2.types[n.id], an3.types[n.id])]
        rows.append({"id": n.id, "op": n.op, "inputs": [split_ref(r)[0] if r.endswith(":0") else r for r in n.inputs],
                     "shapes": [list(sh) for sh in shapes], "dtype": an2.types[n.id][0].dtype,
                     "params": params_of.get(n.id, 0)})
    info: dict[str, Any] = {"name": graph.name, **s.to_dict(), "nodes": rows}
    if classes is not None:
        info["classes"] = classes
    rep = None
    if a.kernels:
        from .diagnostics import inspect_graph
        from .device import device_manager
        rep = inspect_graph(graph, batch=a.batch, device=device_manager.get_device(a.device))
        info["kernels"] = {"summary": {r["metric"]: r["value"] if r["value"] is not None else r["text"]
                                       for r in rep.summary_table()}, "kernels": rep.kernel_table()}
    if a.json:
        _say(json.dumps(info, indent=1, default=str))
        return 0
    _say(f"graph '{graph.name}'  hash {s.hash}  nodes {s.n_nodes}  parameters {s.n_params:,}")
    for k, v in s.inputs.items():
        _say(f"  input  {k}: {fmt_shape(v)} {s.input_dtypes[k]}")
    for k, v in s.outputs.items():
        _say(f"  output {k}: {fmt_shape(v)} {s.output_dtypes[k]}")
    w = max(len(r["id"]) for r in rows)
    _say(f"\n  {'node'.ljust(w)}  {'op':<20} {'output shape':<22} {'params':>9}  inputs")
    for r in rows:
        shp = ", ".join(fmt_shape(tuple(x)) for x in r["shapes"])
        _say(f"  {r['id'].ljust(w)}  {r['op']:<20} {shp:<22} {r['params']:>9,}  {', '.join(r['inputs'])}")
    if rep is not None:
        sm = info["kernels"]["summary"]
        _say(f"\ntinygrad on {sm['device']}: {rep.uop_count} UOps -> {rep.kernel_count} kernels, "
             f"compile {rep.compile_time_s * 1000:.0f} ms, best run {min(rep.run_times_s) * 1000:.2f} ms")
        for k in rep.kernels:
            _say(f"  kernel {k.index}: {k.name} ({k.kind}) uops={k.program_uops} time={(k.time_s or 0) * 1e6:.0f} us")
        if a.source is not None:
            k = next((k for k in rep.kernels if k.index == a.source), None)
            if k is None:
                raise UsageError(f"--source {a.source}: no kernel with that index (0..{len(rep.kernels) - 1})")
            _say(f"\nsource of kernel {k.index} ({k.name}):\n{k.source}")
    return 0


def steps(a: argparse.Namespace) -> int:
    from .pipeline import get_process, list_registered
    from .pipeline.config import import_modules
    problems = import_modules(a.imports, Path.cwd())
    if problems:
        raise UsageError("; ".join(f"{k}: {m}" for _, k, m in problems))
    names = [a.name] if a.name else list_registered()
    for n in names:
        try:
            _say(get_process(n).describe() + "\n")
        except KeyError as e:
            raise UsageError(str(e).strip("'\"")) from None
    return 0


# ---- the experiment store ------------------------------------------------------------------------------
def runs(a: argparse.Namespace) -> int:
    if a.action == "list" and a.ids:
        raise UsageError("'runs list' takes no run ids; use 'runs show ID' or 'runs compare ID ID'")
    if a.action == "show" and len(a.ids) != 1:
        raise UsageError("'runs show' takes exactly one run id")
    if a.action == "compare" and len(a.ids) < 2:
        raise UsageError("'runs compare' needs at least two run ids")
    if a.action == "export-mlflow":
        return export_mlflow(a)
    from . import runs_view
    return {"list": runs_view.list_runs, "show": runs_view.show_run, "compare": runs_view.compare_runs}[a.action](a)


def export_mlflow(a: argparse.Namespace) -> int:
    from .mlflow_export import export_runs, from_store, unique_runs
    from .store import ExperimentStore
    if not a.ids:
        raise UsageError("'runs export-mlflow' needs the id of at least one run, e.g. tinyuop runs export-mlflow 3 "
                         "--out mlruns")
    st = ExperimentStore(a.store) if a.store else ExperimentStore()
    # all read before writing; a run named twice (a parent and its child) is exported once
    runs = unique_runs([r for i in a.ids for r in from_store(st, i, children=not a.no_children)])
    out = Path(a.out)
    ids = export_runs(runs, out)
    for r, mid in zip(runs, ids):
        _say(f"run {r.id} ({r.name or '-'}, {r.status}) -> experiment '{r.experiment}', MLflow run {mid}")
    _say(f"exported {len(runs)} run(s) to {out}; view them with: MLFLOW_ALLOW_FILE_STORE=true mlflow ui "
         f"--backend-store-uri {out}")
    return 0


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
