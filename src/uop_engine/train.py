"""Training: `train()` and the `Trainer` (settings: uop_engine.train_config.TrainConfig; results and
errors: uop_engine.train_result; both re-exported here).

The training step (forward, loss, backward, gradient clipping, optimizer update, BatchNorm
running statistics, learning-rate write) is one function jitted with TinyJit, one jit per
distinct batch shape: TinyJit replays kernels captured for fixed buffer sizes, so the last,
smaller batch of an epoch gets its own jit instead of reusing the full-batch one.

Live logging: `on_epoch(metrics)` is called after every epoch with that epoch's metrics dict
(epoch, loss, accuracy or mae, val_* metrics, lr, seconds), e.g. to write it to the experiment
store while training runs (uop_engine.training_run.TrainingRun.epoch).

Cancellation: `should_stop()` is checked before every batch; when it returns True, training
stops and `TrainingCancelled` is raised, carrying the partial `TrainResult` as `.partial`.
A NaN/inf loss raises `TrainingError` naming the epoch and batch (when `stop_on_nan`).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from .errors import DataError
from .train_config import (MONITORS, ConfigError, TrainConfig, beam_ctx, check_device_name,  # noqa: F401 (re-exported)
                           device_names, resolve_device)
from .train_result import (TrainingCancelled, TrainingError, TrainResult,  # noqa: F401 (re-exported)
                           array_fingerprint)
from .train_rows import data_fingerprint as rows_fingerprint


def train(graph_or_model: Any, X: Any, y: Any, config: TrainConfig | dict | None = None, X_val: Any = None,
          y_val: Any = None, *, progress: Callable[[float, str], None] | None = None,
          should_stop: Callable[[], bool] | None = None, initial_weights: Any = None, classes: list | None = None,
          data_fingerprint: str | None = None, resume_from: str | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train a graph (or CompiledModel / ModelBundle, for fine-tuning) on arrays.

    X is an array for a one-input graph or a dict {input name: array}; y holds targets (class
    ids or labels for cross_entropy). X (and X_val) may instead be a streamed table
    (uop_engine.stream_train.TableStream, y None) that is read again every epoch. Returns a
    TrainResult; see the module docs for cancellation and NaN handling. `resume_from` continues
    from a checkpoint file or folder."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    trainer = Trainer(graph_or_model, cfg, initial_weights=initial_weights, classes=classes)
    return trainer.fit(X, y, X_val, y_val, progress=progress, should_stop=should_stop,
                       data_fingerprint=data_fingerprint, resume_from=resume_from, on_epoch=on_epoch)


def _check_rows(seen: int, expected: int, what: str) -> None:
    if seen != expected:  # only a streamed table can do this: it was changed between two reads
        raise DataError(f"{what} read {seen} rows but the table had {expected} when training started; the table "
                        "changed while training (rerun with an unchanging table)")


class Trainer:
    """Holds the model, optimizer and jitted steps; `fit()` runs the epochs (see `train`)."""

    def __init__(self, graph_or_model: Any, config: TrainConfig | None = None, *, initial_weights: Any = None,
                 classes: list | None = None):
        from .compile import CompiledModel, compile_graph
        from .graph import Graph
        from .model_bundle import ModelBundle
        self.config = cfg = (config or TrainConfig()).validate()
        self.device = resolve_device(cfg.device)
        self.classes = list(classes) if classes is not None else None
        self.init_source: str | None = None
        src = graph_or_model
        if isinstance(src, os.PathLike) or (isinstance(src, str) and not src.lstrip().startswith("{")):
            src = ModelBundle.load(src)  # a path to a saved model, for fine-tuning
        elif isinstance(src, (str, dict)):
            src = Graph.from_json(src) if isinstance(src, str) else Graph.from_dict(src)
        if isinstance(src, ModelBundle):
            self.classes = self.classes if self.classes is not None else src.classes
            initial_weights = src.weights if initial_weights is None else initial_weights
            self.init_source = f"bundle graph {src.graph.hash()}"
            src = src.graph
        if isinstance(initial_weights, (str, os.PathLike)):  # a saved bundle, or a checkpoint (.json / folder)
            path = os.fspath(initial_weights)
            if path.endswith((".json", ".safetensors")) or os.path.isdir(path):
                from .checkpoint import load_checkpoint
                initial_weights, self.init_source = load_checkpoint(path).weights, f"checkpoint {path}"
            else:
                initial_weights = ModelBundle.load(path)
        if isinstance(initial_weights, ModelBundle):
            self.init_source = f"bundle graph {initial_weights.graph.hash()}"
            initial_weights = initial_weights.weights
        if isinstance(src, CompiledModel):  # trained in place, on the model's own device
            self.model = src
            if src.device is not None:
                from tinygrad import Device
                self.device = Device.canonicalize(src.device)
            if initial_weights is not None:
                self.model.load_weights(initial_weights)
        elif isinstance(src, Graph):
            self.model = compile_graph(src, seed=cfg.seed, device=self.device, weights=initial_weights)
        else:
            raise TypeError(f"train() needs a Graph, graph JSON, CompiledModel or ModelBundle, got {type(src).__name__}")
        if initial_weights is not None and self.init_source is None:
            self.init_source = "weights given"
        from .infer import analyze
        an = analyze(self.model.graph)
        if len(an.outputs) != 1:
            raise DataError(f"training needs a graph with one output; this one has {len(an.outputs)} "
                            f"({', '.join(an.output_names)}); add a Graph Output node for the one to train")
        self.out_shape = an.type_of(an.outputs[0]).shape
        from .losses import loss_function
        from .optim import make_optimizer
        params = self.model.parameters()
        if not any(t.is_param for t in params):
            raise DataError("the graph has no trainable weights; add a layer with weights (e.g. Linear)")
        self.opt = make_optimizer(cfg.optimizer, params, cfg.lr, weight_decay=cfg.weight_decay,
                                  momentum=cfg.momentum, nesterov=cfg.nesterov, beta1=cfg.beta1, beta2=cfg.beta2,
                                  eps=cfg.eps)
        self.loss_fn = loss_function(cfg.loss, huber_delta=cfg.huber_delta, label_smoothing=cfg.label_smoothing)
        self._train_fns: dict[tuple, Any] = {}
        self._lr_input = True
        self._eval_fns: dict[tuple, Any] = {}

    # ---- jitted steps ---------------------------------------------------------------------
    def _stats(self, out, y, loss):
        from tinygrad import Tensor
        from .losses import abs_error_sum, correct_count
        correct = correct_count(self.config.loss, out, y)
        zero = loss * 0
        parts = [loss.reshape(1), (correct.float() if correct is not None else zero).reshape(1),
                 (abs_error_sum(out, y) if self.config.task == "regression" else zero).reshape(1)]
        return Tensor.cat(*parts)

    def _train_fn(self, key: tuple):
        if key not in self._train_fns:
            from tinygrad import Tensor, TinyJit
            model, opt, cfg = self.model, self.opt, self.config

            def step(*args):
                if self._lr_input:
                    *xs, y, lr = args
                    opt.lr.assign(lr)  # the schedule's value for this step, an input so the jit replays it
                else:
                    *xs, y = args
                opt.zero_grad()
                out = model.forward(*xs, training=True)
                loss = self.loss_fn(out, y)
                loss.backward()
                for p in opt.params:  # a weight the loss does not reach gets a zero gradient
                    if p.grad is None:
                        p.grad = p.zeros_like()
                if cfg.grad_clip_norm > 0:  # PyTorch's clip_grad_norm_: scale = min(1, max / (norm + 1e-6))
                    norm = Tensor.stack(*[p.grad.float().square().sum() for p in opt.params]).sum().sqrt()
                    scale = (cfg.grad_clip_norm / (norm + 1e-6)).minimum(1.0)
                    for p in opt.params:
                        p.grad = p.grad * scale.cast(p.grad.dtype)
                stats = self._stats(out.detach(), y, loss.detach())
                Tensor.realize(stats, *([opt.lr] if self._lr_input else []), *opt.schedule_step())  # + BN stats
                return stats
            self._train_fns[key] = TinyJit(step) if cfg.jit else step
        return self._train_fns[key]

    def _eval_fn(self, key: tuple):
        if key not in self._eval_fns:
            from tinygrad import TinyJit
            model = self.model

            def step(*args):
                *xs, y = args
                out = model.forward(*xs, training=False)
                return self._stats(out, y, self.loss_fn(out, y)).realize()
            self._eval_fns[key] = TinyJit(step) if self.config.jit else step
        return self._eval_fns[key]

    @staticmethod
    def _key(arrs: list[np.ndarray]) -> tuple:
        return tuple((a.shape, a.dtype.str) for a in arrs)

    def evaluate(self, X: Any, y: Any = None, *, _rows: Any = None) -> dict[str, float]:
        """Loss and accuracy (classification) or MAE (regression) over a dataset, in inference mode."""
        from tinygrad import Context, Tensor
        rows = _rows if _rows is not None else self._rows(X, y, "X")
        tot, seen = np.zeros(3, np.float64), 0
        with Context(**beam_ctx(self.config.beam)):
            for arrs in rows.batches(self.config.batch_size, None):
                s = self._eval_fn(self._key(arrs))(*[Tensor(a, device=self.device) for a in arrs]).numpy()
                tot += [s[0] * arrs[-1].shape[0], s[1], s[2]]
                seen += arrs[-1].shape[0]
        _check_rows(seen, rows.n, "evaluation")
        return self._metrics(tot, rows.n, rows.per_row)

    def _metrics(self, tot: np.ndarray, n: int, per_row: int) -> dict[str, float]:
        m = {"loss": float(tot[0] / n)}
        if self.config.task in ("classification", "binary"):
            m["accuracy"] = float(tot[1] / (n * per_row))
        elif self.config.task == "regression":
            m["mae"] = float(tot[2] / (n * per_row))
        return m

    def _rows(self, X: Any, y: Any, what: str) -> Any:
        """The rows to train or score on: prepared arrays in memory, or a streamed source (anything
        with `bind_trainer`, e.g. stream_train.TableStream) whose batches are prepared as they come."""
        if hasattr(X, "bind_trainer"):
            if y is not None:
                raise DataError(f"{what} is a streamed table that holds its own targets; leave the targets empty")
            return X.bind_trainer(lambda Xb, yb: self._prepare(Xb, yb, what), self.model)
        from .train_rows import InMemoryRows
        return InMemoryRows(*self._prepare(X, y, what))

    def _prepare(self, X: Any, y: Any, what: str) -> tuple[list[np.ndarray], np.ndarray]:
        from .losses import prepare_targets
        from .predict import input_arrays
        xs = input_arrays(self.model, X, what)
        if y is None:
            raise DataError(f"targets for {what} are missing")
        t, classes = prepare_targets(self.config.loss, y, self.out_shape, self.classes, "y" if what == "X" else "y_val")
        if classes is not None:
            self.classes = classes
        if t.shape[0] != xs[0].shape[0]:
            raise DataError(f"{what} has {xs[0].shape[0]} rows but its targets have {t.shape[0]}")
        if t.shape[0] == 0:  # e.g. every row of a table had a missing value and was skipped
            raise DataError("the validation data (X_val; the validation table) has no rows with complete features "
                            "and target; fill or filter its missing values, or train without it (validation_split "
                            "holds out training rows instead)" if what == "X_val" else
                            "the training data (X; the training table) has no rows with complete features and "
                            "target; fill or filter its missing values")
        return xs, t

    # ---- the training loop ----------------------------------------------------------------
    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None, *,
            progress: Callable[[float, str], None] | None = None, should_stop: Callable[[], bool] | None = None,
            data_fingerprint: str | None = None, resume_from: str | None = None,
            on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
        from tinygrad import Context, Tensor
        from .optim import make_schedule
        cfg, dev = self.config, self.device
        started = time.time()
        data = self._rows(X, y, "X")
        val = self._rows(X_val, y_val, "X_val") if X_val is not None else None
        split = (cfg.validation_split, cfg.seed) if val is None and cfg.validation_split > 0 else None
        # the rows before the split (in memory or streamed: the same digest), the validation rows or the split
        fp = data_fingerprint or rows_fingerprint(data, val, split)
        if split is not None:
            data, val = data.split(*split)
        self._check_monitor(val is not None)
        n, bs = data.n, cfg.batch_size
        spe = -(-n // bs)
        lr_at = make_schedule(cfg.schedule, cfg.lr, steps_per_epoch=spe, epochs=cfg.epochs, step_size=cfg.step_size,
                              gamma=cfg.gamma, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps or cfg.warmup_epochs * spe,
                              pct_start=cfg.pct_start, div_factor=cfg.div_factor, final_div_factor=cfg.final_div_factor)
        # a constant learning rate stays in the optimizer; otherwise each step gets it as an input
        self._lr_input = not (cfg.schedule == "constant" and cfg.warmup_steps == 0 and cfg.warmup_epochs == 0)
        if not self._lr_input:
            from .optim import set_lr
            set_lr(self.opt, cfg.lr)
        if not self._train_fns:  # jits captured by an earlier fit() keep the random state they were built with
            Tensor.manual_seed(cfg.seed)  # dropout masks; shuffling uses numpy generators seeded per epoch
        st = {"epoch": 0, "step": 0, "history": [], "best": None, "best_epoch": None, "wait": 0, "best_weights": None}
        if resume_from is not None:
            self._resume(resume_from, st)
        better = (lambda a, b: a < b - cfg.min_delta) if cfg.monitor_mode() == "min" else (lambda a, b: a > b + cfg.min_delta)
        stopped, checkpoints, total = "completed", [], spe * cfg.epochs

        def result(reason: str) -> TrainResult:
            if cfg.early_stopping and cfg.restore_best and st["best_weights"] is not None:
                self.model.load_weights(st["best_weights"])
            rec = self._record(started, st, n, 0 if val is None else val.n, fp, reason, resume_from)
            return TrainResult(self.model, st["history"], rec, self.classes, cfg.task, st["best_epoch"], reason, checkpoints)

        with Context(TRAINING=1, **beam_ctx(cfg.beam)):
            for epoch in range(st["epoch"], cfg.epochs):
                t0 = time.perf_counter()
                tot, seen = np.zeros(3, np.float64), 0
                batches = data.batches(bs, (cfg.seed, epoch) if cfg.shuffle else None)
                for b in range(spe):
                    if should_stop is not None and should_stop():
                        raise TrainingCancelled(f"training cancelled at epoch {epoch + 1}, batch {b + 1}",
                                                result("cancelled"))
                    arrs = next(batches, None)
                    if arrs is None:
                        break
                    seen += arrs[-1].shape[0]
                    lr = lr_at(st["step"])
                    ts = [Tensor(a, device=dev) for a in arrs]
                    if self._lr_input:
                        ts.append(Tensor(np.array([lr], np.float32), device=dev))
                    s = self._train_fn(self._key(arrs))(*ts).numpy()
                    if cfg.stop_on_nan and not np.isfinite(s[0]):
                        raise TrainingError(f"the loss became {s[0]} at epoch {epoch + 1}, batch {b + 1} of {spe}; "
                                            f"lower the learning rate (now {lr:g}), set grad_clip_norm, or check the "
                                            "data for extreme values")
                    tot += [float(s[0]) * arrs[-1].shape[0], s[1], s[2]]
                    st["step"] += 1
                    if progress is not None:
                        progress(st["step"] / total, f"epoch {epoch + 1}/{cfg.epochs}, batch {b + 1}/{spe}, "
                                                     f"loss {float(s[0]):.4f}")
                _check_rows(seen + sum(a[-1].shape[0] for a in batches), n, f"epoch {epoch + 1}")
                m: dict[str, Any] = {"epoch": epoch + 1, **self._metrics(tot, n, data.per_row)}
                if val is not None:
                    m.update({"val_" + k: v for k, v in self.evaluate(None, _rows=val).items()})
                m["lr"] = lr_at(st["step"] - 1)
                m["seconds"] = time.perf_counter() - t0
                st["history"].append(m)
                st["epoch"] = epoch + 1
                if on_epoch is not None:
                    on_epoch(dict(m))
                stop = False
                if cfg.early_stopping:
                    v = m[cfg.monitor]
                    if st["best"] is None or better(v, st["best"]):
                        st.update(best=v, best_epoch=epoch + 1, wait=0)
                        if cfg.restore_best:
                            st["best_weights"] = self.model.numpy_weights()
                    else:
                        st["wait"] += 1
                        stop = st["wait"] >= cfg.patience
                if cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0:
                    checkpoints.append(self._save_checkpoint(st, fp, n))
                if stop:
                    stopped = "early_stopping"
                    break
        return result(stopped)

    def _check_monitor(self, has_val: bool) -> None:
        cfg = self.config
        if not cfg.early_stopping:
            return
        base = ["loss"] + (["accuracy"] if cfg.task in ("classification", "binary") else ["mae"])
        avail = base + (["val_" + k for k in base] if has_val else [])
        if cfg.monitor not in avail:
            hint = " (pass X_val/y_val or set validation_split)" if cfg.monitor.startswith("val_") and not has_val else ""
            raise ConfigError(f"training setting 'monitor' = {cfg.monitor!r} is not a metric of this run{hint}; "
                              f"available: {', '.join(avail)}")

    # ---- checkpoints and records ------------------------------------------------------------
    def _rng_state(self) -> dict[str, np.ndarray]:
        from tinygrad import Tensor
        c = Tensor._device_rng_counters.get(self.device)
        return {"counter": c.numpy()} if c is not None else {}

    def _save_checkpoint(self, st: dict, fp: str, n: int) -> str:
        from .checkpoint import save_checkpoint
        from .optim import optimizer_state
        cfg = self.config
        es = {k: st[k] for k in ("best", "best_epoch", "wait")}
        return save_checkpoint(cfg.checkpoint_dir, epoch=st["epoch"], step=st["step"], graph=self.model.graph,
                               config=cfg.to_dict(), weights=self.model.numpy_weights(),
                               optimizer_state=optimizer_state(self.opt), history=st["history"], data_fingerprint=fp,
                               best_weights=st["best_weights"], rng=self._rng_state(), keep=cfg.keep_checkpoints,
                               extra={"early_stopping": es, "classes": self.classes, "task": cfg.task, "n_train": n})

    def _resume(self, path: str, st: dict) -> None:
        from tinygrad import Tensor, dtypes
        from .checkpoint import CheckpointError, load_checkpoint
        from .optim import load_optimizer_state
        ck = load_checkpoint(path)
        if ck.meta.get("graph_hash") != self.model.graph.hash():
            raise CheckpointError(f"checkpoint '{ck.path}' was saved for graph {ck.meta.get('graph_hash')}, "
                                  f"this graph is {self.model.graph.hash()}; resume with the same graph")
        saved_opt = ck.meta.get("config", {}).get("optimizer")
        if saved_opt != self.config.optimizer:
            raise CheckpointError(f"checkpoint '{ck.path}' was trained with optimizer '{saved_opt}', the setting is "
                                  f"'{self.config.optimizer}'; resume with the same optimizer")
        self.model.load_weights(ck.weights)
        if ck.optimizer:
            load_optimizer_state(self.opt, ck.optimizer)
        if "counter" in ck.rng:  # continue the dropout random stream where it stopped
            Tensor._next_counter(self.device, 0)
            Tensor._device_rng_counters[self.device].assign(Tensor(ck.rng["counter"], dtype=dtypes.uint32,
                                                                   device=self.device)).realize()
        es = ck.meta.get("early_stopping") or {}
        st.update(epoch=ck.epoch, step=ck.step, history=list(ck.meta.get("history", [])), best=es.get("best"),
                  best_epoch=es.get("best_epoch"), wait=int(es.get("wait") or 0), best_weights=ck.best_weights)
        if self.classes is None and ck.meta.get("classes") is not None:
            self.classes = ck.meta["classes"]

    def _record(self, started: float, st: dict, n_train: int, n_val: int, fp: str, stopped: str,
                resumed_from: str | None) -> dict[str, Any]:
        from .checkpoint import versions
        cfg, g = self.config, self.model.graph

        def iso(ts: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))
        ended = time.time()
        return {"format": "tinyuop.training_record", "version": 1, "config": cfg.to_dict(),
                "graph_hash": g.hash(), "graph": g.without_instances().to_dict(), "data_fingerprint": fp, "seed": cfg.seed,
                "versions": versions(), "device": self.device, "started": iso(started), "ended": iso(ended),
                "seconds": round(ended - started, 3), "epochs_run": len(st["history"]), "best_epoch": st["best_epoch"],
                "stopped": stopped, "task": cfg.task, "classes": self.classes, "n_train": n_train, "n_val": n_val,
                "final_metrics": st["history"][-1] if st["history"] else {}, "history": st["history"],
                "initial_weights": self.init_source, "resumed_from": None if resumed_from is None else str(resumed_from)}
