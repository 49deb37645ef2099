"""Compare runs: best/min/max/last per metric, mean +- std across seeds, overlaid curves.

Works on plain `RunCurves` (id, name, params, per-metric histories), so it serves the
experiment store, the CLI, the Compare Runs node and notebooks alike:

    runs = load_runs(store, ["3", "4", "5"])
    summary_rows(runs)              # one row per run and metric: best, min, max, last, steps
    grouped_rows(runs)              # one row per configuration (params minus seed and run facts) and metric
    png = curves_png(runs)          # overlaid curves, one panel per metric (PNG bytes)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

# parameters that vary between repeats of one configuration (they do not define a group)
SEED_KEYS = ("seed", "shuffle_seed", "fold", "run_seed", "split_seed")
# facts of one run that older stores kept among the params (times, history, final metrics, the whole
# training record, errors, per-run paths): never part of a configuration
RUN_KEYS = ("record", "started", "ended", "seconds", "history", "final_metrics", "error", "checkpoint_dir",
            "experiment_run", "experiment_run_id", "data_fingerprint")
CONFIG_IGNORE = SEED_KEYS + RUN_KEYS
_MINIMISE = ("loss", "error", "mse", "mae", "rmse", "time", "seconds", "perplexity")


@dataclass
class RunCurves:
    id: str
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # metric -> [(step, value)]

    @property
    def label(self) -> str:
        return f"{self.name or 'run'} ({self.id})"


def minimise(metric: str) -> bool:
    """Loss-like metrics improve downwards; everything else (accuracy, f1, auc, r2, ...) upwards."""
    m = metric.lower()
    return any(k in m for k in _MINIMISE) and "r2" not in m


def _finite(vals: Iterable[float]) -> list[float]:
    return [float(v) for v in vals if v is not None and math.isfinite(float(v))]


def summarize_metric(points: Sequence[tuple[float, float]], metric: str) -> dict[str, Any]:
    vals = _finite(v for _, v in points)
    if not vals:
        return {"best": None, "min": None, "max": None, "last": None, "best_step": None, "steps": len(points)}
    pick = min if minimise(metric) else max
    best = pick(vals)
    best_step = next(s for s, v in points if v is not None and math.isfinite(float(v)) and float(v) == best)
    last = float(points[-1][1]) if points[-1][1] is not None else None
    return {"best": best, "min": min(vals), "max": max(vals), "last": last, "best_step": best_step,
            "steps": len(points)}


def summary_rows(runs: Sequence[RunCurves], metrics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per run and metric: best (direction by metric name), min, max, last, steps."""
    rows = []
    for r in runs:
        for key in metrics or sorted(r.history):
            if key in r.history:
                rows.append({"run_id": r.id, "name": r.name, "metric": key,
                             "direction": "min" if minimise(key) else "max",
                             **summarize_metric(r.history[key], key)})
    return rows


def config_key(params: dict[str, Any], ignore: Sequence[str] = CONFIG_IGNORE) -> str:
    """The configuration a run belongs to: its parameters without the seed-like and run-specific
    ones (at any depth), as JSON."""
    def strip(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: strip(v) for k, v in sorted(d.items()) if k not in ignore}
        return d
    return json.dumps(strip(params), sort_keys=True, default=str)


def grouped_rows(runs: Sequence[RunCurves], metrics: Sequence[str] | None = None, value: str = "best",
                 ignore: Sequence[str] = CONFIG_IGNORE) -> list[dict[str, Any]]:
    """Mean +- std (sample std, ddof=1; 0 for a single run) of each run's `value` (best or last)
    per configuration, grouping runs whose parameters differ only in seed-like or run-specific keys."""
    groups: dict[str, list[RunCurves]] = {}
    for r in runs:
        groups.setdefault(config_key(r.params, ignore), []).append(r)
    rows = []
    for key, members in groups.items():
        names = sorted({m for r in members for m in r.history} if metrics is None else metrics)
        for metric in names:
            vals = _finite(summarize_metric(r.history[metric], metric)[value] for r in members if metric in r.history)
            if not vals:
                continue
            mean = sum(vals) / len(vals)
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
            rows.append({"config": key, "runs": ",".join(r.id for r in members), "n": len(vals), "metric": metric,
                         "value": value, "mean": mean, "std": std, "min": min(vals), "max": max(vals)})
    return rows


def curves_png(runs: Sequence[RunCurves], metrics: Sequence[str] | None = None, width: float = 9.0,
               dpi: int = 100) -> bytes:
    """Overlaid curves (one line per run) in one panel per metric, as PNG bytes."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = list(metrics) if metrics else sorted({k for r in runs for k in r.history})
    if not keys:
        raise ValueError("the runs have no metric history to plot")
    cols = min(2, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(width, 3.2 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for r in runs:
            pts = r.history.get(key)
            if pts:
                ax.plot([s for s, _ in pts], [v for _, v in pts], marker="o" if len(pts) < 30 else None,
                        markersize=3, label=r.label)
        ax.set_title(f"{key} ({'lower' if minimise(key) else 'higher'} is better)")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
