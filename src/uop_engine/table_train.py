"""Training from tables: `train_table(graph, table, spec, config, val_table=None)`.

The data layer (uop_engine.data) turns the table into float32 features and encoded targets;
`uop_engine.train` does the rest. The class list is learnt from the training table (or taken
from the model being fine-tuned, so class ids keep their meaning); a validation table is
encoded with the same list, and a label it has that training did not see is an error.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .data import FeatureSpec, infer_feature_spec, table_to_arrays
from .errors import DataError


def graph_input_shapes(graph_or_model: Any) -> dict[str, tuple[int, ...]]:
    """{graph input name: per-sample shape} of a Graph, CompiledModel or ModelBundle."""
    from .predict import _input_specs
    g = getattr(graph_or_model, "graph", graph_or_model)
    return {p["name"]: tuple(p["shape"]) for p in _input_specs(g)}


def fit_to_inputs(X: Any, shapes: dict[str, tuple[int, ...]]) -> Any:
    """Reshape converted features to the graph inputs' shapes where only the layout differs
    (64 columns or an 8x8 image for a (1, 8, 8) or (64,) input)."""
    xs = X if isinstance(X, dict) else {next(iter(shapes)): X}
    out = {}
    for name, a in xs.items():
        want = shapes.get(name)
        if want is not None and a.shape[1:] != want and int(np.prod(a.shape[1:])) == int(np.prod(want)):
            a = a.reshape((a.shape[0],) + tuple(want))
        out[name] = a
    return out if isinstance(X, dict) else out[next(iter(out))]


def spec_for_graph(schema_or_table: Any, graph_or_model: Any, features: Any, target: str | None,
                   loss: str | None = None, missing: str = "error") -> FeatureSpec:
    """A FeatureSpec for a one-input graph: the chosen columns reshaped to the graph input's shape
    when their count allows it (checked at configure time), the task taken from the loss."""
    from .losses import LOSS_TASKS
    shapes = graph_input_shapes(graph_or_model)
    if len(shapes) != 1 and not isinstance(features, dict):
        raise DataError(f"the graph has {len(shapes)} inputs ({', '.join(shapes)}); name the columns of each input")
    name = next(iter(shapes))
    task = {"classification": "classification", "binary": "binary", "regression": "regression"}.get(
        LOSS_TASKS.get(loss, ""), "auto") if loss else "auto"
    spec = infer_feature_spec(schema_or_table, features, target, task if target is not None else "auto",
                              input_shape=None, input_name=name, missing=missing)
    for n, cols in spec.inputs.items():  # reshape to the graph's input shape when the sizes say so
        want = shapes.get(n)
        if want is None:
            raise DataError(f"the feature spec names graph input '{n}' but the graph's inputs are {list(shapes)}")
        if spec.kinds[n] == "columns" and len(cols) != int(np.prod(want)):
            raise DataError(f"graph input '{n}' has shape {want} = {int(np.prod(want))} values per sample but "
                            f"{len(cols)} feature columns are chosen; choose that many columns or change the "
                            "Graph Input shape")
        if spec.kinds[n] == "image" and len(want) == 3 and want[0] in (1, 3, 4):
            from .images import MODES
            spec.images[n] = {"mode": MODES[want[0]], "size": [int(want[1]), int(want[2])]}
        elif spec.kinds[n] == "image" and len(want) == 2:  # (H, W): one grey channel
            spec.images[n] = {"mode": "L", "size": [int(want[0]), int(want[1])]}
        spec.shapes[n] = [int(s) for s in want]
    return spec


def resolve_training_spec(graph_or_model: Any, spec: FeatureSpec | dict, cfg: Any) -> FeatureSpec:
    """A copy of `spec` ready for training: target checked, the task from the loss, the class list
    of the model being fine-tuned (so class ids keep their meaning)."""
    from .model_bundle import ModelBundle
    spec = FeatureSpec.from_dict(spec.to_dict() if isinstance(spec, FeatureSpec) else spec)  # resolved on a copy
    if spec.target is None:
        raise DataError("training needs a target column; set the spec's target")
    if isinstance(graph_or_model, ModelBundle) and graph_or_model.classes is not None and spec.classes is None:
        spec.classes = list(graph_or_model.classes)
    if cfg.task in ("classification", "binary", "regression"):
        if spec.task in ("auto", "none"):
            spec.task = cfg.task
        elif spec.task != cfg.task:
            raise DataError(f"the loss '{cfg.loss}' is for {cfg.task} but the feature spec's task is '{spec.task}'; "
                            "choose a matching loss or task")
    return spec


def train_table(graph_or_model: Any, table: Any, spec: FeatureSpec | dict, config: Any = None,
                val_table: Any = None, *, progress: Callable[[float, str], None] | None = None,
                should_stop: Callable[[], bool] | None = None, initial_weights: Any = None,
                resume_from: str | None = None, on_epoch: Callable[[dict], None] | None = None):
    """Train on a pyarrow table (and an optional validation table) described by `spec`.

    Returns the TrainResult of `uop_engine.train.train`, with `.feature_spec` (the resolved spec
    as a dict: classes, image size) and the spec plus skipped-row counts in its record."""
    from .train import TrainConfig, train
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    spec = resolve_training_spec(graph_or_model, spec, cfg)
    base = graph_or_model
    stats: dict = {}
    X, y = table_to_arrays(table, spec, stats=stats)
    if y is None or len(y) == 0:
        raise DataError("the training table has no rows with complete features and target")
    shapes = graph_input_shapes(base)
    X = fit_to_inputs(X, shapes)
    Xv = yv = None
    val_stats: dict = {}
    if val_table is not None:
        Xv, yv = table_to_arrays(val_table, spec, stats=val_stats)
        Xv = fit_to_inputs(Xv, shapes)
    labels = _labels(y, spec)
    result = train(base, X, labels, cfg, Xv, None if yv is None else _labels(yv, spec), progress=progress,
                   should_stop=should_stop, initial_weights=initial_weights, classes=spec.classes,
                   resume_from=resume_from, on_epoch=on_epoch)
    result.feature_spec = spec.to_dict()
    result.record.update(feature_spec=spec.to_dict(), rows_skipped=stats.get("skipped", 0),
                         val_rows_skipped=val_stats.get("skipped", 0))
    return result


def _labels(ids: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Class ids back to labels: train() encodes labels against the same class list itself."""
    if spec.task not in ("classification", "binary"):
        return ids
    return np.asarray(spec.classes, dtype=object if any(isinstance(c, str) for c in spec.classes) else None)[ids]
