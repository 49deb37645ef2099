"""Train Model node: a graph and a table in, a trained model, per-epoch metrics and curves out."""
from __future__ import annotations

from typing import NoReturn

import knime.extension as knext

from uop_engine.graph import Graph, Node

from ._base import train_category
from .experiment_nodes import TrackingSettings, tracking_store
from .model_port import ModelPortSpec, arrow_schema, model_object, model_port_type, spec_data
from .ports import graph_port_type


class LossOptions(knext.EnumParameterOptions):
    CROSS_ENTROPY = ("Cross-entropy", "Classification: logits (rows, classes), one label per row.")
    BINARY_CROSS_ENTROPY = ("Binary cross-entropy", "Two classes (or 0/1 targets) from one logit per row.")
    MSE = ("Mean squared error", "Regression.")
    L1 = ("Mean absolute error (L1)", "Regression, robust to outliers.")
    HUBER = ("Huber", "Regression: squared error near 0, absolute error beyond delta.")


class OptimizerOptions(knext.EnumParameterOptions):
    SGD = ("SGD", "Stochastic gradient descent with momentum (optionally Nesterov).")
    ADAM = ("Adam", "Adaptive moments; weight decay as L2 on the gradient.")
    ADAMW = ("AdamW", "Adam with decoupled weight decay.")
    LAMB = ("LAMB", "Layer-wise adaptive large-batch optimizer.")


class ScheduleOptions(knext.EnumParameterOptions):
    CONSTANT = ("Constant", "The learning rate stays the same.")
    STEP = ("Step", "Multiply by gamma every step-size epochs.")
    COSINE = ("Cosine", "Cosine decay to the minimum learning rate.")
    ONE_CYCLE = ("One-cycle", "Rise to the learning rate, then anneal (has its own warm-up).")


@knext.parameter_group("Data")
class DataSettings:
    """Which columns feed the graph input and which is the target."""

    feature_columns = knext.MultiColumnParameter(
        "Feature columns", "Several numeric columns, or one list (vector) column, or one PNG image column. Empty = "
        "every numeric column but the target.", port_index=1)
    target_column = knext.ColumnParameter("Target column", "Class labels (string or integer) for classification, "
                                          "numbers for regression.", port_index=1)
    missing = knext.StringParameter("Rows with missing values", "error: fail naming the column; skip_rows: leave "
                                    "those rows out.", "error", enum=["error", "skip_rows"])
    validation_split = knext.DoubleParameter("Validation split", "Share of the training rows held out when no "
                                             "validation table is connected (0 = none).", 0.0, min_value=0.0,
                                             max_value=0.9)


@knext.parameter_group("Objective and optimizer")
class OptimSettings:
    """Loss, optimizer and regularisation."""

    loss = knext.EnumParameter("Loss", "Training objective (decides the task).", LossOptions.CROSS_ENTROPY.name,
                               LossOptions)
    huber_delta = knext.DoubleParameter("Huber delta", "Huber: where the loss turns linear.", 1.0, min_value=1e-9)
    label_smoothing = knext.DoubleParameter("Label smoothing", "Cross-entropy only.", 0.0, min_value=0.0,
                                            max_value=1.0)
    optimizer = knext.EnumParameter("Optimizer", "Update rule.", OptimizerOptions.ADAM.name, OptimizerOptions)
    lr = knext.DoubleParameter("Learning rate", "Base (peak for one-cycle) learning rate.", 1e-3, min_value=1e-12)
    momentum = knext.DoubleParameter("Momentum", "SGD only.", 0.9, min_value=0.0, max_value=1.0)
    nesterov = knext.BoolParameter("Nesterov", "SGD only; needs momentum > 0.", False)
    weight_decay = knext.DoubleParameter("Weight decay", "L2 (SGD/Adam) or decoupled (AdamW/LAMB).", 0.0,
                                         min_value=0.0)
    grad_clip_norm = knext.DoubleParameter("Gradient clipping (norm)", "Clip the global gradient norm (0 = off).",
                                           0.0, min_value=0.0)


@knext.parameter_group("Schedule and epochs")
class ScheduleSettings:
    """Learning-rate schedule, epochs, batches and seed."""

    schedule = knext.EnumParameter("Learning-rate schedule", "How the rate changes per step.",
                                   ScheduleOptions.CONSTANT.name, ScheduleOptions)
    warmup_epochs = knext.IntParameter("Warm-up epochs", "Linear warm-up before the schedule (not for one-cycle).",
                                       0, min_value=0)
    step_size = knext.IntParameter("Step size (epochs)", "Step schedule: epochs between decays.", 10, min_value=1)
    gamma = knext.DoubleParameter("Gamma", "Step schedule: decay factor.", 0.1, min_value=0.0, max_value=1.0)
    min_lr = knext.DoubleParameter("Minimum learning rate", "Cosine schedule: final rate.", 0.0, min_value=0.0)
    epochs = knext.IntParameter("Epochs", "Passes over the training rows.", 10, min_value=1)
    batch_size = knext.IntParameter("Batch size", "Rows per step (the last batch may be smaller).", 32, min_value=1)
    shuffle = knext.BoolParameter("Shuffle", "Reshuffle the rows every epoch (order from seed and epoch).", True)
    seed = knext.IntParameter("Seed", "Weight init, shuffling, validation split and dropout.", 0, min_value=0)


@knext.parameter_group("Early stopping")
class EarlyStopSettings:
    """Stop when a metric stops improving."""

    enabled = knext.BoolParameter("Early stopping", "Stop after 'patience' epochs without improvement.", False)
    monitor = knext.StringParameter("Monitor", "Metric to watch.", "val_loss",
                                    enum=["loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae"])
    patience = knext.IntParameter("Patience", "Epochs without improvement before stopping.", 5, min_value=0)
    min_delta = knext.DoubleParameter("Minimum change", "Smallest change that counts as improvement.", 0.0,
                                      min_value=0.0)
    restore_best = knext.BoolParameter("Restore best weights", "Keep the best epoch's weights.", True)


@knext.parameter_group("Memory", is_advanced=True)
class MemorySettings:
    """How much of the training table is held in memory."""

    limit_mb = knext.DoubleParameter(
        "In-memory limit (MB)", "A training table whose features (as float32) take more than this is streamed: "
        "every epoch reads the table's batches again and shuffles the rows within a buffer of this size "
        "(reproducible with the seed). 0 = always load the whole table.", 2048.0, min_value=0.0)


# tinygrad 0.14's accelerator backends by the names it uses (Device["CUDA"], ...); 'other' takes a typed name
DEVICE_CHOICES = ["auto", "CPU", "CUDA", "NV", "AMD", "METAL", "CL", "QCOM", "WEBGPU", "other"]


@knext.parameter_group("Runtime", is_advanced=True)
class RuntimeSettings:
    """Where and how tinygrad runs."""

    device = knext.StringParameter("Device", "auto: tinygrad's default device; CPU, CUDA, NV, AMD, METAL, CL, QCOM, "
                                   "WEBGPU: that tinygrad backend; other: the name typed below.", "auto",
                                   enum=DEVICE_CHOICES)
    device_other = knext.StringParameter("Other device", "Device 'other': a tinygrad device name, optionally with an "
                                         "index (e.g. CUDA:1, AMD:0, DSP).", "")
    jit = knext.BoolParameter("JIT", "Capture the training step with TinyJit (one per batch shape).", True)
    beam = knext.IntParameter("BEAM level", "tinygrad kernel search width (0 = off; slow first run).", 0,
                              min_value=0, max_value=100)


_METRIC_COLS = {"classification": ["accuracy"], "binary": ["accuracy"], "regression": ["mae"]}


def raise_for_knime(error: BaseException) -> NoReturn:
    """Re-raise a training error as KNIME shows it: a cancel as KNIME's cancel message, a data,
    setting or training error as a plain message (no traceback), anything else unchanged."""
    from uop_engine.errors import DataError
    from uop_engine.train import ConfigError, TrainingCancelled, TrainingError
    if isinstance(error, TrainingCancelled):
        raise RuntimeError(f"Execution canceled ({error}).") from None
    if isinstance(error, (TrainingError, DataError, ConfigError)):
        raise ValueError(str(error)) from None
    raise error


class TrainingSetup:
    """Settings -> TrainConfig, the graph trained and the feature spec: shared by Train Model and
    Cross-Validation (nodes that declare the data/optim/sched/early/runtime groups)."""

    def _config(self):
        from uop_engine.train import ConfigError, TrainConfig
        o, s, e, r = self.optim, self.sched, self.early, self.runtime
        d = dict(loss=o.loss.lower(), huber_delta=o.huber_delta, label_smoothing=o.label_smoothing,
                 optimizer=o.optimizer.lower(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                 weight_decay=o.weight_decay, grad_clip_norm=o.grad_clip_norm, schedule=s.schedule.lower(),
                 warmup_epochs=s.warmup_epochs, step_size=s.step_size, gamma=s.gamma, min_lr=s.min_lr,
                 epochs=s.epochs, batch_size=s.batch_size, shuffle=s.shuffle, seed=s.seed,
                 validation_split=self.data.validation_split, early_stopping=e.enabled, monitor=e.monitor,
                 patience=e.patience, min_delta=e.min_delta, restore_best=e.restore_best, device=self._device(),
                 jit=r.jit, beam=r.beam)
        try:
            return TrainConfig.from_dict(d)
        except ConfigError as err:
            raise knext.InvalidParametersError(str(err)) from None

    def _device(self) -> str:
        """The device setting as tinygrad names it. A typed name ('other', or a value the list lacks,
        from a flow variable or older settings) is checked against tinygrad's backends without
        opening any device, so configure stays fast and works without the hardware."""
        r = self.runtime
        if r.device in DEVICE_CHOICES and r.device != "other":
            return r.device
        typed, where = (r.device_other, "Other device") if r.device == "other" else (r.device, "Device")
        from uop_engine.train import ConfigError, check_device_name
        if not (typed or "").strip():
            raise knext.InvalidParametersError("Device is 'other': type a tinygrad device name in 'Other device' "
                                               "(e.g. CUDA:1) or pick a device from the list")
        try:
            return check_device_name(typed)
        except ConfigError as err:
            raise knext.InvalidParametersError(f"{where}: {err}") from None

    def _check_settings(self, ctx, cfg, schema, has_val: bool) -> None:
        """Settings that only fail once training starts, caught in configure: early stopping on a
        metric this run will not have, and cross-entropy on a floating-point target (a warning)."""
        e = self.early
        if e.enabled:
            base = e.monitor[4:] if e.monitor.startswith("val_") else e.monitor
            have = ["loss", "accuracy"] if cfg.task in ("classification", "binary") else ["loss", "mae"]
            loss_name = LossOptions[self.optim.loss].label
            if base not in have:
                raise knext.InvalidParametersError(
                    f"early stopping monitors '{e.monitor}', which the {loss_name} loss does not report "
                    f"({cfg.task} runs report {' and '.join(have)}); choose Monitor "
                    f"'{'val_' if e.monitor.startswith('val_') else ''}{have[1]}' or a loss that fits "
                    f"(Early stopping / Objective tabs)")
            if e.monitor.startswith("val_") and not has_val:
                raise knext.InvalidParametersError(
                    f"early stopping monitors '{e.monitor}' but this run has no validation data; connect a "
                    f"validation table, set 'Validation split' > 0 (Data tab), or monitor '{base}'")
        if cfg.loss == "cross_entropy" and schema is not None:
            import pyarrow as pa
            target = self.data.target_column
            names = schema.names
            if target in names and pa.types.is_floating(schema.field(target).type):
                ctx.set_warning(f"target column '{target}' holds floating-point numbers and the loss is "
                                "Cross-entropy, which makes every distinct value a class; if it holds measured "
                                "values rather than class codes, choose a regression loss (Mean squared error, "
                                "Mean absolute error or Huber)")

    def _graph(self, graph: Graph, head: str) -> Graph:
        """The graph trained: the head becomes the (only) output when the graph declares none."""
        if any(n.op == "output" for n in graph.nodes):
            return graph
        g = graph.copy()
        g.add(Node(g.unique_id("output"), "output", {"name": self.data.target_column or "y"}, [head]))
        return g

    def _spec(self, schema, graph: Graph, cfg, val_schema=None):
        from uop_engine.errors import DataError, GraphError
        from uop_engine.table_train import spec_for_graph
        target = self.data.target_column
        if not target:
            raise knext.InvalidParametersError("choose the target column (Data tab)")
        try:
            spec = spec_for_graph(arrow_schema(schema), graph, list(self.data.feature_columns or []) or None,
                                  target, cfg.loss, self.data.missing)
            if val_schema is not None:
                names = val_schema.column_names
                gone = [c for c in [*spec.features, target] if c not in names]
                if gone:
                    raise DataError(f"the validation table lacks column(s) {gone}; it needs the training "
                                    f"table's feature and target columns")
        except (DataError, GraphError) as err:
            raise knext.InvalidParametersError(str(err)) from None
        return spec


@knext.node(name="Train Model", node_type=knext.NodeType.LEARNER, icon_path="icons/train.png",
            category=train_category, keywords=["train", "fit", "learn", "tinygrad", "neural network"],
            id="tinyuop_train_model")
@knext.input_port("Graph", "The network to train (its head is the output the loss is computed on).", graph_port_type)
@knext.input_table("Training data", "Feature columns and a target column.")
@knext.input_table("Validation data", "Optional: rows scored after every epoch (same columns).", optional=True)
@knext.input_port("Initial model", "Optional: a trained model of the same graph to continue training from.",
                  model_port_type, optional=True)
@knext.output_port("Model", "The trained model: graph, weights, classes, feature mapping and training record.",
                   model_port_type)
@knext.output_table("Metrics", "One row per epoch: loss, accuracy or MAE, validation metrics, learning rate, seconds.")
@knext.output_view("Training curves", "Loss and metric per epoch (training and validation).")
class TrainModelNode(TrainingSetup):
    """Trains a TinyUOp graph on a table with tinygrad.

    Pick the feature columns (numeric columns, one list column, or one PNG image column; they
    are reshaped to the Graph Input's shape) and the target column; choose the loss (it sets
    the task), optimizer, schedule and epochs. Progress shows the current loss per batch;
    cancelling stops within one batch; a NaN/inf loss stops with the epoch and batch named.
    Connect a trained model of the same graph to continue training (fine-tuning).
    """

    data = DataSettings()
    optim = OptimSettings()
    sched = ScheduleSettings()
    early = EarlyStopSettings()
    runtime = RuntimeSettings()
    memory = MemorySettings()
    tracking = TrackingSettings()

    def _metrics_schema(self, cfg, has_val: bool):
        names = ["loss"] + _METRIC_COLS.get(cfg.task, [])
        cols = [knext.Column(knext.int64(), "epoch")] + [knext.Column(knext.double(), n) for n in names]
        if has_val:
            cols += [knext.Column(knext.double(), "val_" + n) for n in names]
        cols += [knext.Column(knext.double(), "lr"), knext.Column(knext.double(), "seconds")]
        return knext.Schema.from_columns(cols)

    def configure(self, config_context, graph_spec, table_schema, val_schema=None, model_spec=None):
        cfg = self._config()
        graph = self._graph(graph_spec.graph, graph_spec.head)
        spec = self._spec(table_schema, graph, cfg, val_schema)
        if model_spec is not None and model_spec.data.get("graph_hash") != graph.hash():
            raise knext.InvalidParametersError(
                f"the initial model was trained on graph {model_spec.data.get('graph_hash')} but the Graph port "
                f"carries graph {graph.hash()}; connect the same graph to continue training")
        has_val = val_schema is not None or cfg.validation_split > 0
        self._check_settings(config_context, cfg, arrow_schema(table_schema), has_val)
        port = ModelPortSpec(spec_data(graph, cfg.task, None, spec.to_dict(), cfg.loss, None))
        return port, self._metrics_schema(cfg, has_val)

    def execute(self, exec_context, graph_obj, table, val_table=None, model_obj=None):
        from uop_engine.table_train import train_table
        cfg = self._config()
        graph = self._graph(graph_obj.graph, graph_obj.head)
        spec = self._spec(table.schema, graph, cfg, None if val_table is None else val_table.schema)
        base = graph
        if model_obj is not None:
            if model_obj.bundle.graph.hash() != graph.hash():
                raise ValueError(f"the initial model was trained on graph {model_obj.bundle.graph.hash()} but the "
                                 f"Graph port carries graph {graph.hash()}; connect the same graph")
            base = model_obj.bundle

        def progress(frac: float, msg: str) -> None:
            exec_context.set_progress(min(1.0, max(0.0, float(frac))), msg)
        # the run starts before the first batch and logs every epoch as it ends: a KNIME process
        # killed mid-training leaves a run with its epochs so far, which the store marks incomplete
        store = tracking_store(exec_context, self.tracking)
        run = None
        if store is not None:  # a failing store write is a warning (below); training goes on
            from uop_engine.training_run import TrainingRun
            run = TrainingRun(store, cfg, project=self.tracking.project or "knime",
                              name=self.tracking.run_name or "Train Model", graph=graph,
                              tags={"task": cfg.task, "node": "Train Model"},
                              extra_params={"features": list(spec.features), "target": spec.target})
        try:
            kw = dict(progress=progress, should_stop=exec_context.is_canceled,
                      on_epoch=None if run is None else run.epoch)
            buffer_rows = self._stream_buffer(table, val_table, spec, cfg)
            if buffer_rows:  # larger than the memory limit: read the table's batches again every epoch
                from uop_engine.stream_train import TableStream, train_table_streamed
                val = None if val_table is None else TableStream(val_table.batches, spec, buffer_rows=buffer_rows)
                result = train_table_streamed(base, TableStream(table.batches, spec, buffer_rows=buffer_rows), cfg,
                                              val, **kw)
            else:
                result = train_table(base, table.to_pyarrow(), spec, cfg,
                                     None if val_table is None else val_table.to_pyarrow(), **kw)
        except BaseException as e:
            if run is not None:
                run.fail(e)
            raise_for_knime(e)
        warnings = []
        if run is not None:  # writers (Model Writer) attach their files to this run
            result.record["experiment_run"] = {"store": str(store.path), "run_id": run.id,
                                               "project": self.tracking.project or "knime"}
            result.record["experiment_run_id"] = run.id
            run.finish(result)
            warnings += [run.write_error] if run.write_error else []
        skipped = result.record.get("rows_skipped", 0)
        if skipped:
            warnings.append(f"{skipped} training row(s) with missing values were skipped")
        if result.stopped == "early_stopping":
            warnings.append(f"early stopping after epoch {len(result.history)} (best epoch {result.best_epoch})")
        warnings += self._many_classes(cfg, result)
        if warnings:  # KNIME shows one warning per node: all of them in one message
            exec_context.set_warning("; ".join(warnings))
        bundle = result.bundle(feature_spec=result.feature_spec)
        has_val = val_table is not None or cfg.validation_split > 0
        return model_object(bundle), self._metrics_table(result.history, cfg, has_val), self._view(result.history)

    def _stream_buffer(self, table, val_table, spec, cfg) -> int:
        """Rows of the shuffle buffer when the float32 features of the training and validation tables
        (both held in memory otherwise) exceed the memory limit, else 0."""
        import numpy as np
        limit = self.memory.limit_mb * 2**20
        row_bytes = 4 * sum(int(np.prod(s)) for s in spec.shapes.values()) + 8  # features + target
        rows = table.num_rows + (val_table.num_rows if val_table is not None else 0)
        if limit <= 0 or rows * row_bytes <= limit:
            return 0
        return max(cfg.batch_size, int(limit // row_bytes))

    def _many_classes(self, cfg, result) -> list[str]:
        """Cross-entropy over a target of many fractional values is almost surely a regression."""
        classes = result.classes or []
        fractional = [c for c in classes if isinstance(c, float) and not float(c).is_integer()]
        if cfg.loss == "cross_entropy" and fractional and len(classes) > 10:
            return [f"target column '{self.data.target_column}' has {len(classes)} distinct values (e.g. "
                    f"{', '.join(f'{c:g}' for c in fractional[:3])}) trained as {len(classes)} classes; for measured "
                    "values choose a regression loss (Mean squared error, Mean absolute error or Huber)"]
        return []

    def _metrics_table(self, history: list, cfg, has_val: bool):
        import pyarrow as pa
        schema = self._metrics_schema(cfg, has_val)
        cols = {}
        for name in schema.column_names:
            vals = [h.get(name) for h in history]
            cols[name] = pa.array(vals, pa.int64() if name == "epoch" else pa.float64())
        return knext.Table.from_pyarrow(pa.table(cols))

    def _view(self, history: list):
        from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
        fig = Figure(figsize=(8, 3.5), dpi=100)
        epochs = [h["epoch"] for h in history]
        metric = next((m for m in ("accuracy", "mae") if history and m in history[0]), None)
        axes = fig.subplots(1, 2 if metric else 1, squeeze=False)[0]
        for ax, key in zip(axes, ["loss"] + ([metric] if metric else [])):
            ax.plot(epochs, [h[key] for h in history], marker="o", label=f"training {key}")
            if history and "val_" + key in history[0]:
                ax.plot(epochs, [h["val_" + key] for h in history], marker="o", label=f"validation {key}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        return knext.view_matplotlib(fig)
