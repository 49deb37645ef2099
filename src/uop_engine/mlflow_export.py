"""Export runs to MLflow's format, so `mlflow ui --backend-store-uri DIR` shows them.

    runs = from_store(ExperimentStore("runs.sqlite"), 12)     # run 12 and its child runs
    export_runs(runs, "mlruns")                               # or: tinyuop runs export-mlflow 12 --out mlruns

MLflow's file-store layout is written directly, so no mlflow install is needed to export;
MLflow reads it (`MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri DIR`, tested with
mlflow's own client) and `mlflow migrate-filestore` moves it into an MLflow database. Each
store run becomes an MLflow run in the experiment named after its project; child runs
(pipeline steps) point at their parent (tag mlflow.parentRunId), so MLflow nests them. A run
asked for twice (a parent and one of its children) is written once. A child exported without
its parent gets no mlflow.parentRunId (it would name a run MLflow does not have, and MLflow
would hide the child under a missing parent); its tinyuop.parent_run_id tag keeps the relation.

    DIR/<experiment id>/meta.yaml
    DIR/<experiment id>/<run id>/meta.yaml
    DIR/<experiment id>/<run id>/metrics/<key>     lines "<timestamp ms> <value> <step>"
    DIR/<experiment id>/<run id>/params/<key>      the value
    DIR/<experiment id>/<run id>/tags/<key>        the value
    DIR/<experiment id>/<run id>/artifacts/...     copies of the run's files
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fileio import atomic_write

# mlflow.entities.RunStatus values
STATUS = {"running": 1, "scheduled": 2, "finished": 3, "failed": 4, "killed": 5, "cancelled": 5, "incomplete": 4}
_UNSAFE = set('/\\:*?"<>|')


@dataclass
class RunExport:
    """What an export needs of a run (the experiment store fills it; see `from_store`)."""
    id: str
    name: str = ""
    status: str = "finished"
    start_time: float | None = None          # seconds since the epoch
    end_time: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # key -> (step, value, time); a value logged without a step (a final score) has step None, exported as 0
    metrics: dict[str, list[tuple[int | None, float, float | None]]] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    experiment: str | None = None            # MLflow experiment (None = the one given to export_runs)
    parent_id: str | None = None             # our id of the parent run, exported in the same experiment
    texts: dict[str, str] = field(default_factory=dict)  # extra artifact files: name -> text (e.g. graph.json)


def from_store(store: Any, run_id: Any, children: bool = True) -> list[RunExport]:
    """The store's run `run_id` (and, with `children`, its child runs, depth first) as RunExports:
    params, tags, the full metric history, artifacts and the graph JSON; experiment = project."""
    run = store.get_run(run_id)  # StoreError naming the run when it does not exist
    hist: dict[str, list[tuple[int | None, float, float | None]]] = {}
    for m in store.metric_history(run["id"]):
        hist.setdefault(m["key"], []).append((m["step"], m["value"], m["time"]))
    env = run.get("env") or {}
    extra = {"project": run["project"], "graph_hash": run.get("graph_hash"), "seed": run.get("seed"),
             "data_fingerprint": run.get("data_fingerprint"), "device": env.get("device"),
             "git_commit": env.get("git_commit"), "python": env.get("python")}
    tags = {str(k): str(v) for k, v in (run.get("tags") or {}).items() if v is not None}
    tags.update({f"tinyuop.{k}": str(v) for k, v in extra.items() if v is not None})
    out = [RunExport(str(run["id"]), run.get("name") or "", run["status"], run["start_time"], run.get("end_time"),
                     dict(run.get("params") or {}), tags, hist, [a["path"] for a in run.get("artifacts", [])],
                     run["project"], None if run.get("parent_id") is None else str(run["parent_id"]),
                     {"graph.json": run["graph_json"]} if run.get("graph_json") else {})]
    if children:
        for child in run.get("children", []):
            out += from_store(store, child, children=True)
    return out


def _flat(d: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + "."))
        else:  # MLflow refuses parameter values over 6000 characters
            out[key] = (v if isinstance(v, str) else json.dumps(v, default=str))[:6000]
    return out


def _safe(key: str) -> str:
    return "".join("_" if c in _UNSAFE else c for c in key)[:250] or "_"


def _yaml(d: dict[str, Any]) -> str:
    lines = []
    for k, v in d.items():
        if isinstance(v, str):
            lines.append(f"{k}: {json.dumps(v)}" if (v == "" or v[:1] in "'\"{[!&*#?|>-%@`" or ": " in v) else f"{k}: {v}")
        elif v is None:
            lines.append(f"{k}: null")
        elif isinstance(v, list):
            lines.append(f"{k}: []" if not v else f"{k}: {json.dumps(v)}")
        else:
            lines.append(f"{k}: {v}")
    return "\n".join(lines) + "\n"


def _ms(t: float | None) -> int | None:
    return None if t is None else int(round(t * 1000))


def mlflow_run_id(run: RunExport, experiment: str) -> str:
    """A stable 32-hex MLflow run id for our run (re-exporting overwrites, never duplicates)."""
    return hashlib.sha256(f"{experiment}/{run.id}".encode()).hexdigest()[:32]


def experiment_id(name: str) -> str:
    return str(int(hashlib.sha256(name.encode()).hexdigest()[:12], 16))


def unique_runs(runs: list[RunExport]) -> list[RunExport]:
    """The runs in order, each once (the first time it appears)."""
    seen: set[str] = set()
    return [r for r in runs if not (r.id in seen or seen.add(r.id))]


def export_runs(runs: list[RunExport], out_dir: str | os.PathLike, experiment: str = "tinyuop") -> list[str]:
    """Write the runs under `out_dir` (MLflow file store); returns the MLflow run ids of
    `unique_runs(runs)`. `experiment` is used for runs that do not name their own. A parent is
    linked (mlflow.parentRunId) only when it is exported too (see the module docs)."""
    runs = unique_runs(runs)
    exported = {r.id: mlflow_run_id(r, r.experiment or experiment) for r in runs}  # the parent's own experiment
    return [_write_run(r, Path(out_dir), r.experiment or experiment, exported.get(r.parent_id)) for r in runs]


def _write_run(run: RunExport, root: Path, experiment: str, parent: str | None) -> str:
    exp_id = experiment_id(experiment)
    exp_dir = root / exp_id
    now = _ms(time.time())
    if not (exp_dir / "meta.yaml").exists():
        atomic_write(exp_dir / "meta.yaml", _yaml({
            "artifact_location": exp_dir.resolve().as_uri(), "creation_time": now, "experiment_id": exp_id,
            "last_update_time": now, "lifecycle_stage": "active", "name": experiment}))
    rid = mlflow_run_id(run, experiment)
    run_dir = exp_dir / rid
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a re-export replaces the earlier copy of this run
    for sub in ("artifacts", "metrics", "params", "tags"):  # MLflow does not find a run missing any of them
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    for key, pts in run.metrics.items():
        lines = [f"{_ms(t) if t is not None else _ms(run.start_time) or 0} {float(v)!r} {0 if s is None else int(s)}"
                 for s, v, t in pts]
        atomic_write(run_dir / "metrics" / _safe(key), "\n".join(lines) + "\n")
    for key, value in _flat(run.params).items():
        atomic_write(run_dir / "params" / _safe(key), value)
    tags = {"mlflow.runName": run.name or run.id, "tinyuop.run_id": str(run.id), **run.tags}
    if run.parent_id is not None:
        tags["tinyuop.parent_run_id"] = str(run.parent_id)
    if parent is not None:  # MLflow nests a run under the run this tag names
        tags["mlflow.parentRunId"] = parent
    for key, value in tags.items():
        atomic_write(run_dir / "tags" / _safe(key), str(value))
    for path in run.artifacts:
        if os.path.isfile(path):
            shutil.copy2(path, run_dir / "artifacts" / os.path.basename(path))
    for name, text in run.texts.items():
        atomic_write(run_dir / "artifacts" / _safe(name), text)
    atomic_write(run_dir / "meta.yaml", _yaml({
        "artifact_uri": (run_dir / "artifacts").resolve().as_uri(), "end_time": _ms(run.end_time),
        "entry_point_name": "", "experiment_id": exp_id, "lifecycle_stage": "active", "run_id": rid,
        "run_name": run.name or run.id, "run_uuid": rid, "source_name": "", "source_type": 4, "source_version": "",
        "start_time": _ms(run.start_time), "status": STATUS.get(run.status, 4), "tags": [], "user_id": "tinyuop"}))
    return rid
