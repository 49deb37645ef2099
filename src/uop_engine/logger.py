"""Experiment logging for scripts and pipelines: the SQLite experiment store, plus Weights &
Biases and MLflow when they are installed and configured.

    from uop_engine.helpers import logger
    logger.init(project="digits", config={"lr": 1e-3})
    for epoch in range(3):
        logger.log({"loss": 0.5 / (epoch + 1)}, step=epoch)
    logger.finish()

The store is the file given to `init(store=...)`, else $TINYUOP_STORE, else the store
module's default. W&B is used when `wandb` imports and $WANDB_API_KEY or $WANDB_MODE is set;
MLflow when `mlflow` imports and $MLFLOW_TRACKING_URI is set ($TINYUOP_WANDB=0 /
$TINYUOP_MLFLOW=0 turn them off); MLflow 3 refuses a local file store (a `file:` URI) unless
MLFLOW_ALLOW_FILE_STORE=true is set too. Neither is required; a failing external service
gives one warning (with the service's reason) and is then skipped. Inside a running pipeline, `init` attaches to the current step's
run and `log` writes there; the pipeline ends the runs.
"""
from __future__ import annotations

import atexit
import os
import warnings
from pathlib import Path
from typing import Any

from .pipeline_context import current_context

STORE_ENV = "TINYUOP_STORE"


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: nested config for trackers with flat parameters."""
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def numeric(metrics: dict) -> dict[str, float]:
    """The numeric entries of a metrics dict as floats (nested dicts flattened, others dropped)."""
    out = {}
    for k, v in flatten(metrics).items():
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            try:
                v = v.item()
            except (TypeError, ValueError):
                continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def open_store(store: Any = None):
    """An ExperimentStore from an instance, a path, $TINYUOP_STORE or the store's default path;
    None (nothing recorded, one warning) when the store module is not available."""
    try:
        from .store import ExperimentStore
    except ImportError as e:
        warnings.warn(f"experiment store not available ({e}); runs are not recorded", RuntimeWarning, stacklevel=2)
        return None
    if isinstance(store, ExperimentStore):
        return store
    path = store or os.environ.get(STORE_ENV) or None
    return ExperimentStore(path) if path is not None else ExperimentStore()


# ---- external trackers ----------------------------------------------------------------------------
class _Sink:
    name = "sink"

    def __init__(self) -> None:
        self.broken = False

    def guard(self, what: str, fn, *a, **kw) -> None:
        if self.broken:
            return
        try:
            fn(*a, **kw)
        except Exception as e:  # an external service must never stop training
            self.broken = True
            warnings.warn(f"{self.name}: {what} failed ({type(e).__name__}: {e}); not logging to {self.name} "
                          "for the rest of this run", RuntimeWarning, stacklevel=3)


class WandbSink(_Sink):
    name = "Weights & Biases"

    def __init__(self, project: str, name: str | None, config: dict) -> None:
        super().__init__()
        import wandb
        self.wandb, self.run = wandb, None

        def start() -> None:
            self.run = wandb.init(project=project, name=name, config=config, reinit=True)
        self.guard("init", start)

    def log(self, metrics: dict[str, float], step: int | None) -> None:
        if self.run is not None:
            self.guard("log", self.run.log, metrics, step=step)

    def artifact(self, path: str) -> None:
        if self.run is not None:
            self.guard("save", self.run.save, path, base_path=str(Path(path).parent), policy="now")

    def finish(self, status: str) -> None:
        if self.run is not None:
            self.guard("finish", self.run.finish, exit_code=0 if status == "finished" else 1)
            self.run = None


class MlflowSink(_Sink):
    name = "MLflow"

    def __init__(self, project: str, name: str | None, config: dict) -> None:
        super().__init__()
        import mlflow
        self.mlflow, self.active = mlflow, False

        def start() -> None:
            mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
            mlflow.set_experiment(project)
            mlflow.start_run(run_name=name, nested=mlflow.active_run() is not None)
            self.active = True
            params = {k: str(v)[:500] for k, v in flatten(config).items()}  # MLflow caps value length
            if params:
                mlflow.log_params(params)
        self.guard("start_run", start)

    def log(self, metrics: dict[str, float], step: int | None) -> None:
        if self.active:
            self.guard("log_metrics", self.mlflow.log_metrics, metrics, step=step if step is not None else 0)

    def artifact(self, path: str) -> None:
        if self.active:
            self.guard("log_artifact", self.mlflow.log_artifact, path)

    def finish(self, status: str) -> None:
        if self.active:
            self.guard("end_run", self.mlflow.end_run, status="FINISHED" if status == "finished" else "FAILED")
            self.active = False


def _wanted(env_off: str, *configured: str) -> bool:
    return os.environ.get(env_off, "1").strip().lower() not in ("0", "false", "no", "off") and \
        any(os.environ.get(v) for v in configured)


def external_sinks(project: str, name: str | None, config: dict) -> list[_Sink]:
    """W&B / MLflow sinks for those installed and configured (see module docs); else none."""
    sinks: list[_Sink] = []
    for cls, module, off, conf in ((WandbSink, "wandb", "TINYUOP_WANDB", ("WANDB_API_KEY", "WANDB_MODE")),
                                   (MlflowSink, "mlflow", "TINYUOP_MLFLOW", ("MLFLOW_TRACKING_URI",))):
        if not _wanted(off, *conf):
            continue
        try:
            __import__(module)
        except ImportError:
            continue  # not installed: skip silently
        sinks.append(cls(project, name, config))
    return sinks


# ---- runs -------------------------------------------------------------------------------------------
class RunHandle:
    """One run in the store (and its external mirrors): metrics, parameters, artifacts, end."""

    def __init__(self, store: Any, run_id: Any, project: str, name: str | None, sinks: list[_Sink] | None = None,
                 prefix: str = "", device: str | None = None):
        self.store, self.id, self.project, self.name = store, run_id, project, name
        self.sinks, self.prefix, self.ended, self.device = list(sinks or []), prefix, False, device
        self.logged_keys: set[str] = set()  # metric keys written through this handle

    @classmethod
    def start(cls, store: Any, project: str, name: str | None = None, config: dict | None = None,
              parent: "RunHandle | None" = None, tags: dict | None = None, sinks: list[_Sink] | None = None,
              prefix: str = "", device: str | None = None) -> "RunHandle":
        run_id = None if store is None else store.start_run(
            project, name=name, params=config or {}, parent_id=None if parent is None else parent.id, tags=tags or {},
            device=device)
        return cls(store, run_id, project, name, sinks if sinks is not None else [], prefix, device)

    def child(self, name: str, config: dict | None = None, tags: dict | None = None) -> "RunHandle":
        """A child run (a pipeline step) on the same device; external trackers get its metrics as '<name>/<key>'."""
        return RunHandle.start(self.store, self.project, name, config, self, tags, self.sinks, f"{name}/", self.device)

    def log_metrics(self, metrics: dict, step: int | None = None) -> dict[str, float]:
        vals = numeric(metrics)
        if vals and self.store is not None:  # NaN/inf are stored too: a diverged run should show it
            self.store.log_metrics(self.id, vals, step=step)
        self.logged_keys.update(vals)
        for s in self.sinks:
            s.log({self.prefix + k: v for k, v in vals.items()}, step)
        return vals

    def log_params(self, params: dict) -> None:
        if params and self.store is not None:
            self.store.log_params(self.id, params)

    def set_graph(self, graph: Any) -> None:
        """The graph this run trains or evaluates (JSON and hash in the store)."""
        if self.store is not None:
            self.store.set_graph(self.id, graph)

    def log_artifact(self, path: str | Path, name: str | None = None, kind: str | None = None) -> None:
        if self.store is not None:
            self.store.log_artifact(self.id, str(path), name=name or Path(path).name, kind=kind)
        for s in self.sinks:
            s.artifact(str(path))

    def end(self, status: str = "finished", finish_sinks: bool = False) -> None:
        if not self.ended and self.store is not None:
            self.store.end_run(self.id, status=status)
            self.ended = True
        if finish_sinks:
            for s in self.sinks:
                s.finish(status)


class Logger:
    """Script-level logging (see module docs). One instance, `logger`, is shared."""

    def __init__(self) -> None:
        self.run: RunHandle | None = None
        self.config: dict[str, Any] = {}
        self.last_run_id: Any = None      # the id of the latest run, kept after finish()
        self._atexit = False

    def init(self, project: str = "default", config: dict | None = None, *, name: str | None = None,
             store: Any = None, tags: dict | None = None, external: bool = True) -> RunHandle:
        """Start a run (ending the previous one); in a pipeline, return the step's run instead."""
        ctx = current_context()
        if ctx is not None and ctx.run is not None:
            if config:
                ctx.run.log_params(config)
            self.last_run_id = ctx.run.id
            return ctx.run
        if self.run is not None:
            self.finish()
        self.config = dict(config or {})
        st = open_store(store)
        sinks = external_sinks(project, name, self.config) if external else []
        self.run = RunHandle.start(st, project, name, self.config, tags=tags, sinks=sinks)
        self.last_run_id = self.run.id
        if not self._atexit:  # a script that never calls finish() still closes its run
            atexit.register(self._finish_at_exit)
            self._atexit = True
        return self.run

    def _current(self) -> RunHandle:
        ctx = current_context()
        if ctx is not None and ctx.run is not None:
            return ctx.run
        if self.run is None:
            self.init()
        return self.run  # type: ignore[return-value]

    def log(self, metrics: dict[str, Any], step: int | None = None) -> dict[str, float]:
        """Record numeric metrics (nested dicts flattened with '.'); returns what was logged."""
        return self._current().log_metrics(metrics, step)

    def log_params(self, params: dict[str, Any]) -> None:
        self._current().log_params(params)

    def log_artifact(self, path: str | Path, name: str | None = None, kind: str | None = None) -> None:
        self._current().log_artifact(path, name, kind)

    @property
    def run_id(self) -> Any:
        ctx = current_context()
        return ctx.run.id if ctx is not None and ctx.run is not None else (self.run.id if self.run else None)

    def finish(self, status: str = "finished") -> None:
        """End the script's run (a no-op inside a pipeline, which ends its own runs)."""
        ctx = current_context()
        if ctx is not None and ctx.run is not None:
            return
        if self.run is not None:
            self.run.end(status, finish_sinks=True)
            self.run = None

    def _finish_at_exit(self) -> None:
        try:
            self.finish()
        except Exception:  # the interpreter is going down; never mask the script's own error
            pass


logger = Logger()
