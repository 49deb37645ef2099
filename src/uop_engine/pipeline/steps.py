"""Built-in step types: dataset, train, evaluate, cross_validate, infer, export_onnx.

Each is a plain function registered like a user's `@pipeline_process` function, so its
signature is its schema (`tinyuop steps` lists them). The training steps also accept every
`TrainConfig` field (epochs, lr, optimizer, ...), type-checked from the dataclass.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import numpy as np

from ..model_bundle import ModelBundle
from ..pipeline_context import PipelineContext
from .dataset import Dataset
from .graphs import check_graph_config, graph_from_config
from .process import Field, Process, register


def _out(ctx: PipelineContext | None, path: str, default: str) -> Path:
    """An artifact path: as given (relative to the out folder) or out/<default>."""
    base = ctx.out_dir if ctx is not None and ctx.out_dir is not None else Path(".")
    p = Path(path) if path else Path(default)
    p = p if p.is_absolute() else base / p
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _step(ctx: PipelineContext | None, fallback: str) -> str:
    return ctx.step if ctx is not None and ctx.step else fallback


def _bundle(model: ModelBundle | str, ctx: PipelineContext | None) -> ModelBundle:
    if isinstance(model, ModelBundle):
        return model
    p = Path(model)
    if not p.is_absolute() and ctx is not None and ctx.base_dir is not None and not p.exists():
        p = ctx.base_dir / p
    return ModelBundle.load(p)


def _describe_run(ctx: PipelineContext | None, graph: Any, seed: int, fingerprint: str | None = None) -> None:
    """Give the step's run the graph, seed and data fingerprint a standalone training run records."""
    if ctx is None or ctx.run is None:
        return
    ctx.run.set_graph(graph)
    ctx.run.log_params({"seed": seed, **({"data_fingerprint": fingerprint} if fingerprint else {})})


def _train_config(config: dict, ctx: PipelineContext | None):
    from ..train import TrainConfig
    cfg = dict(config)
    if ctx is not None:  # the pipeline's device and seed, unless the step sets its own
        cfg.setdefault("device", ctx.device or "auto")
        cfg.setdefault("seed", ctx.seed)
    return TrainConfig.from_dict(cfg)


# ---- dataset ----------------------------------------------------------------------------------------
def dataset(name: str = "digits", path: str = "", target: str = "label", test_size: float = 0.2, limit: int = 0,
            seed: int = 0, shape: list[int] | None = None, features: list[str] | None = None,
            ctx: PipelineContext | None = None) -> dict:
    """Load a table (the built-in `digits`, or a Parquet/CSV/Arrow file at `path`), turn its
    feature columns into arrays (reshaped to `shape`, e.g. [1, 8, 8]) and split it into
    train/test (stratified, seeded); `limit` keeps a seeded random subset of N rows."""
    from .data_source import load_dataset
    ds = load_dataset(name, path, target, test_size, limit, seed, None if ctx is None else ctx.base_dir, shape,
                      features)
    return {"data": ds, "n_train": len(ds.y_train), "n_test": len(ds.y_test)}


# ---- training ---------------------------------------------------------------------------------------
def train(data: Dataset, graph: Any, save: bool = True, validate_on_test: bool = False,
          ctx: PipelineContext | None = None, **config: Any) -> dict:
    """Train a graph (layer list, spec table or graph JSON path) on the dataset's train split;
    saves the model bundle as out/<step>.tuop when `save`."""
    from ..logger import logger
    from ..progress import progress_task
    from ..train import train as fit
    cfg = _train_config(config, ctx)
    step = _step(ctx, "train")
    g = graph_from_config(graph, None if ctx is None else ctx.base_dir, data.input_shape, name=step)
    val = (data.X_test, data.y_test) if validate_on_test else (None, None)

    def log_epoch(m: dict) -> None:  # as each epoch ends: a pipeline killed mid-training keeps its epochs
        logger.log({k: v for k, v in m.items() if k != "epoch"}, step=int(m["epoch"]))
    with progress_task(f"{step}: training") as task:
        res = fit(g, data.X_train, data.y_train, cfg, *val, progress=task, classes=data.classes,
                  on_epoch=None if ctx is None else log_epoch)
    if ctx is not None:
        _describe_run(ctx, g, cfg.seed, (res.record or {}).get("data_fingerprint"))
        if ctx.run is not None:  # the model remembers the run that trained it (ONNX metadata, artifacts)
            res.record["experiment_run_id"] = ctx.run.id
    bundle = res.bundle(feature_spec=data.feature_spec)
    final = {k: v for k, v in (res.history[-1] if res.history else {}).items() if k not in ("epoch", "seconds", "lr")}
    out = {"model": bundle, "history": res.history, "metrics": final, "graph_hash": g.hash(),
           "epochs_run": len(res.history), "stopped": res.stopped}
    if save:
        out["bundle_path"] = str(bundle.save(_out(ctx, "", f"{step}.tuop")))
    return out


def cross_validate(data: Dataset, graph: Any, folds: int = 5, split: str = "train",
                   ctx: PipelineContext | None = None, **config: Any) -> dict:
    """k-fold cross-validation (stratified for class labels) on a split; per-fold loss and
    accuracy plus their mean and standard deviation."""
    from ..crossval import cross_validate as run_cv
    from ..progress import progress_bar
    cfg = _train_config(config, ctx)
    X, y = data.split(split)
    g = graph_from_config(graph, None if ctx is None else ctx.base_dir, data.input_shape, name=_step(ctx, "cv"))
    bar = iter(progress_bar(range(folds), total=folds, desc=f"{_step(ctx, 'cv')}: folds"))
    next(bar, None)
    done = [0]

    def fold_done(frac: float, msg: str) -> None:  # advance the bar once per finished fold
        while done[0] < min(folds - 1, int(frac * folds + 1e-9)):
            done[0] += 1
            next(bar, None)
    _describe_run(ctx, g, cfg.seed)
    res = run_cv(g, X, y, cfg, k=folds, stratified=True, seed=cfg.seed, classes=data.classes, progress=fold_done)
    for _ in bar:  # finish (and close) the bar
        pass
    summary = {f"{k}_{stat}": v[stat] for k, v in res.summary.items() for stat in ("mean", "std")}
    return {"folds": res.folds, "metrics": summary}


# ---- using a model ------------------------------------------------------------------------------------
def evaluate(model: ModelBundle | str, data: Dataset, split: str = "test", batch_size: int = 256,
             ctx: PipelineContext | None = None) -> dict:
    """Predict a split and score it (accuracy, precision/recall/F1, confusion matrix for
    classifiers; MAE/RMSE/R2 for regression); in a pipeline also writes out/<step>_metrics.json."""
    from .data_source import score
    from ..predict import predict
    b = _bundle(model, ctx)
    X, y = data.split(split)
    out = predict(b, X, batch_size, device=ctx.device if ctx is not None else None)
    metrics = score(b, out, y)
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    res = {"metrics": scalars, "details": metrics, "n": int(len(y))}
    if ctx is not None and ctx.out_dir is not None:  # in a pipeline: also a metrics file among the artifacts
        import json
        from ..fileio import atomic_write
        path = _out(ctx, "", f"{_step(ctx, 'evaluate')}_metrics.json")
        atomic_write(str(path), json.dumps({"split": split, "n": int(len(y)), **metrics}, indent=1).encode())
        res["metrics_path"] = str(path)
    return res


def infer(model: ModelBundle | str, data: Dataset, split: str = "test", path: str = "", batch_size: int = 256,
          ctx: PipelineContext | None = None) -> dict:
    """Predict a split and write the prediction columns (labels + class probabilities) to a
    CSV or Parquet file (by extension; default out/<step>_predictions.csv)."""
    import pyarrow as pa
    from ..predict import outputs_to_columns, predict
    b = _bundle(model, ctx)
    X, _ = data.split(split)
    out = predict(b, X, batch_size, device=ctx.device if ctx is not None else None)
    cols = outputs_to_columns(out, b.task, b.classes, target=(b.feature_spec or {}).get("target", "y"))
    table = pa.table({k: pa.array(np.asarray(v) if not isinstance(v, list) else v) for k, v in cols.items()})
    p = _out(ctx, path, f"{_step(ctx, 'infer')}_predictions.csv")
    tmp = p.with_name(f".{p.name}.tmp")
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq
        pq.write_table(table, tmp)
    else:
        import pyarrow.csv as pcsv
        pcsv.write_csv(table, tmp)
    tmp.replace(p)  # atomic: readers never see half a file
    return {"predictions": out, "path": str(p), "n": int(X.shape[0])}


def export_onnx(model: ModelBundle | str, path: str = "", opset: int = 18, dynamic_batch: bool = True,
                data: Dataset | None = None, tolerance: float = 1e-4, ctx: PipelineContext | None = None) -> dict:
    """Export the model to ONNX (default out/<step>.onnx). With `data`, onnxruntime runs the
    file on up to 32 test rows and the largest difference to tinygrad must stay within `tolerance`."""
    from ..onnx_export import export_onnx as export
    b = _bundle(model, ctx)
    p = _out(ctx, path, f"{_step(ctx, 'export_onnx')}.onnx")
    export(b.graph, b.weights, p, opset=opset, dynamic_batch=dynamic_batch, class_labels=b.classes,
           metadata=b.onnx_metadata())
    out: dict[str, Any] = {"path": str(p), "opset": opset}
    if data is not None:
        import onnxruntime as ort
        from ..predict import predict
        X = data.X_test[:32]
        ref = predict(b, X)
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: X.astype(np.float32)})[0]
        diff = float(np.max(np.abs(got - ref)))
        if not diff <= tolerance:
            raise RuntimeError(f"onnxruntime differs from tinygrad by {diff:.3g} (> tolerance {tolerance}) on the "
                               "exported model")
        out["max_abs_diff"] = diff
    return out


# ---- registration -------------------------------------------------------------------------------------
def _train_fields() -> dict[str, Field]:
    from ..train import TrainConfig
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: Field(f.name, hints[f.name], f.default, "training setting") for f in dataclasses.fields(TrainConfig)}


def _check_training(params: dict, step: str, base_dir: Path | None) -> list[tuple[str, str, str]]:
    from ..train import ConfigError, TrainConfig
    problems = []
    if "graph" in params and (msg := check_graph_config(params["graph"], base_dir)):
        problems.append((step, "graph", msg))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        TrainConfig.from_dict({k: v for k, v in params.items() if k in names})
    except ConfigError as e:
        m = re.search(r"setting '(\w+)'", str(e))
        problems.append((step, m.group(1) if m else "params", str(e)))
    return problems


def _register() -> None:
    outputs = {"dataset": ("data", "n_train", "n_test"),
               "train": ("model", "history", "metrics", "graph_hash", "epochs_run", "stopped", "bundle_path"),
               "cross_validate": ("folds", "metrics"), "evaluate": ("metrics", "details", "n", "metrics_path"),
               "infer": ("predictions", "path", "n"), "export_onnx": ("path", "opset", "max_abs_diff")}
    for fn in (dataset, train, cross_validate, evaluate, infer, export_onnx):
        proc = Process.from_function(fn, fn.__name__, outputs[fn.__name__], builtin=True)
        if fn in (train, cross_validate):
            proc.fields |= _train_fields()
            proc.extra = False
            proc.check = _check_training
        elif any(f.name == "graph" for f in proc.fields.values()):
            proc.check = _check_training
        register(proc, replace=True)


_register()
