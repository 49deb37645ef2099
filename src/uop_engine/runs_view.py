"""`tinyuop runs list|show|compare`: the experiment store as text tables or JSON."""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

from .compare import RunCurves, grouped_rows, summary_rows
from .store import ExperimentStore


def _store(a: argparse.Namespace) -> ExperimentStore:
    return ExperimentStore(a.store) if getattr(a, "store", None) else ExperimentStore()


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=1, default=str))


def list_runs(a: argparse.Namespace) -> int:
    st = _store(a)
    runs = st.list_runs(project=a.project, limit=a.limit)
    if a.json:
        _print_json([{k: r[k] for k in ("id", "project", "name", "parent_id", "status", "graph_hash", "seed",
                                         "start_time", "end_time")} | {"metrics": st.last_metrics(r["id"])}
                     for r in runs])
        return 0
    if not runs:
        print(f"no runs in {st.path}" + (f" for project '{a.project}'" if a.project else ""))
        return 0
    rows = []
    for r in runs:
        last = st.last_metrics(r["id"])
        shown = ", ".join(f"{k}={_num(v)}" for k, v in list(last.items())[:4])
        rows.append([str(r["id"]), r["project"], r["name"] or "", r["status"], _when(r["start_time"]),
                     _num(r["duration"]), str(r["parent_id"] or ""), shown])
    print(_table(rows, ["id", "project", "name", "status", "started", "seconds", "parent", "last metrics"]))
    return 0


def show_run(a: argparse.Namespace) -> int:
    st = _store(a)
    run = st.get_run(a.ids[0])
    run["history"] = {k: [(m["step"], m["value"]) for m in st.metric_history(run["id"], k)] for k in run["metric_keys"]}
    if a.json:
        _print_json({k: v for k, v in run.items() if k != "graph_json"})
        return 0
    print(f"run {run['id']}: {run['name'] or ''} (project {run['project']}, {run['status']})")
    print(f"  started {_when(run['start_time'])}, ended {_when(run['end_time'])}, parent {run['parent_id'] or '-'}, "
          f"children {run['children'] or '-'}")
    print(f"  graph {run['graph_hash'] or '-'}, seed {_num(run['seed'])}, data {run['data_fingerprint'] or '-'}")
    env = run["env"]
    print(f"  python {env.get('python')}, {env.get('platform')}, device {env.get('device') or '-'}, "
          f"git {env.get('git_commit') or '-'}, packages {env.get('packages')}")
    if run["params"]:
        print("  params " + json.dumps(run["params"], default=str)[:1000])
    for row in summary_rows([_curves(st, run)]):
        print(f"  {row['metric']}: last {_num(row['last'])}, best {_num(row['best'])} at step {row['best_step']}, "
              f"min {_num(row['min'])}, max {_num(row['max'])} ({row['steps']} values)")
    for art in run["artifacts"]:
        print(f"  artifact {art['name']}: {art['path']} ({art['size'] or '?'} bytes)")
    return 0


def _curves(st: ExperimentStore, run: dict) -> RunCurves:
    hist: dict[str, list] = {}
    for m in st.metric_history(run["id"]):
        hist.setdefault(m["key"], []).append((m["step"] if m["step"] is not None else len(hist.get(m["key"], [])),
                                              m["value"]))
    return RunCurves(str(run["id"]), run["name"] or "", run["params"], hist)


def load_curves(st: ExperimentStore, ids: list[Any]) -> list[RunCurves]:
    """Runs from the store as compare.RunCurves (unknown ids raise StoreError naming them)."""
    return [_curves(st, st.get_run(i)) for i in ids]


def compare_runs(a: argparse.Namespace) -> int:
    st = _store(a)
    runs = load_curves(st, a.ids)
    summary, groups = summary_rows(runs), grouped_rows(runs)
    if a.json:
        _print_json({"summary": summary, "groups": groups})
        return 0
    print(_table([[r["run_id"], r["name"], r["metric"], r["direction"], _num(r["best"]), _num(r["min"]),
                   _num(r["max"]), _num(r["last"])] for r in summary],
                 ["run", "name", "metric", "best is", "best", "min", "max", "last"]))
    multi = [g for g in groups if g["n"] > 1]
    if multi:
        print("\nacross seeds (best value per run):")
        print(_table([[g["runs"], g["metric"], str(g["n"]), _num(g["mean"]), _num(g["std"])] for g in multi],
                     ["runs", "metric", "n", "mean", "std"]))
    return 0
