"""Experiment Runs and Compare Runs: the experiment store (uop_engine.store) as KNIME tables."""
from __future__ import annotations

import os

import knime.extension as knext

from ._base import experiments_category

STORE_FILE = "experiments.sqlite"


def store_path(ctx, setting: str) -> str:
    """The store file: the setting, else experiments.sqlite in the workflow's data area."""
    if (setting or "").strip():
        return os.path.expanduser(setting.strip())
    area = ctx.get_workflow_data_area_dir() if hasattr(ctx, "get_workflow_data_area_dir") else None
    if not area:
        raise knext.InvalidParametersError("this workflow has no data area; set the experiment store file")
    return os.path.join(area, STORE_FILE)


def workflow_folder(ctx) -> str | None:
    """The workflow's folder (the data area's parent): runs record its git commit when it is in a
    git repository. None when the context has no data area."""
    try:
        area = ctx.get_workflow_data_area_dir() if hasattr(ctx, "get_workflow_data_area_dir") else None
    except Exception:  # noqa: BLE001 - a workflow without a data area (e.g. a remote job): fall back to the cwd
        return None
    return os.path.dirname(os.path.abspath(area)) if area else None


@knext.parameter_group("Experiment tracking", is_advanced=True)
class TrackingSettings:
    """Record this node's runs in the experiment store (see Experiment Runs / Compare Runs)."""

    record = knext.BoolParameter("Record runs", "Record each execution (settings, metrics, graph, data fingerprint, "
                                 "environment) in the experiment store.", True)
    store = knext.StringParameter("Store file", "SQLite experiment store (empty = the workflow data area).", "")
    project = knext.StringParameter("Project", "Project name of the recorded runs.", "knime")
    run_name = knext.StringParameter("Run name", "Name of the recorded runs (empty = the node's name).", "")


def tracking_store(ctx, settings: "TrackingSettings"):
    """The store to record in, or None (recording off, or no data area and no file: a warning)."""
    if not settings.record:
        return None
    try:
        return _open(store_path(ctx, settings.store), workflow_folder(ctx))
    except knext.InvalidParametersError as e:
        ctx.set_warning(f"run not recorded: {e}")
        return None


def _open(path: str, workdir: str | None = None):
    from uop_engine.store import ExperimentStore, StoreError
    try:
        return ExperimentStore(path, workdir=workdir)
    except StoreError as e:
        raise knext.InvalidParametersError(str(e)) from None


_RUN_COLUMNS = [("id", knext.int64()), ("project", knext.string()), ("name", knext.string()),
                ("parent_id", knext.int64()), ("status", knext.string()), ("graph_hash", knext.string()),
                ("seed", knext.int64()), ("data_fingerprint", knext.string()), ("started", knext.string()),
                ("seconds", knext.double()), ("params", knext.string()), ("last_metrics", knext.string())]


@knext.node(name="Experiment Runs", node_type=knext.NodeType.SOURCE, icon_path="icons/experiments.png",
            category=experiments_category, keywords=["experiment", "runs", "tracking", "history", "sqlite"],
            id="tinyuop_experiment_runs")
@knext.output_table("Runs", "One row per run, newest first: status, graph hash, seed, parameters and last metrics.")
class ExperimentRunsNode:
    """Lists the runs recorded in the experiment store (every Train Model, evaluation and pipeline run).

    The store is `experiments.sqlite` in the workflow's data area unless a file is set. Runs
    whose process died while running show as *incomplete*. Filter by project, status and name.
    """

    store = knext.StringParameter("Store file", "SQLite experiment store (empty = the workflow data area).", "")
    project = knext.StringParameter("Project", "Only runs of this project (empty = all).", "")
    status = knext.StringParameter("Status", "Only runs with this status.", "any",
                                   enum=["any", "running", "finished", "failed", "incomplete", "cancelled"])
    name_contains = knext.StringParameter("Name contains", "Only runs whose name contains this (any case).", "")
    top_level = knext.BoolParameter("Top-level runs only", "Hide child runs (pipeline steps, folds).", False)
    limit = knext.IntParameter("Limit", "Newest N runs (0 = all).", 0, min_value=0)

    def configure(self, config_context):
        return knext.Schema.from_columns([knext.Column(t, n) for n, t in _RUN_COLUMNS])

    def execute(self, exec_context):
        import json
        import time
        st = _open(store_path(exec_context, self.store))
        runs = st.list_runs(project=self.project or None, status=None if self.status == "any" else self.status,
                            name_contains=self.name_contains or None, limit=self.limit or None,
                            **({"parent_id": None} if self.top_level else {}))
        rows = [{"id": r["id"], "project": r["project"], "name": r["name"] or "", "parent_id": r["parent_id"],
                 "status": r["status"], "graph_hash": r["graph_hash"], "seed": r["seed"],
                 "data_fingerprint": r["data_fingerprint"],
                 "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["start_time"])),
                 "seconds": r["duration"], "params": json.dumps(r["params"], default=str),
                 "last_metrics": json.dumps(st.last_metrics(r["id"]))} for r in runs]
        return _frame(rows, _RUN_COLUMNS)


_SUMMARY = [("run_id", knext.string()), ("name", knext.string()), ("metric", knext.string()),
            ("direction", knext.string()), ("best", knext.double()), ("best_step", knext.double()),
            ("min", knext.double()), ("max", knext.double()), ("last", knext.double()), ("steps", knext.int64())]
_GROUPS = [("config", knext.string()), ("runs", knext.string()), ("n", knext.int64()), ("metric", knext.string()),
           ("value", knext.string()), ("mean", knext.double()), ("std", knext.double()), ("min", knext.double()),
           ("max", knext.double())]


def _schema(cols):
    return knext.Schema.from_columns([knext.Column(t, n) for n, t in cols])


def _frame(rows, cols):
    """A KNIME table with exactly the declared column types (empty or all-missing columns too)."""
    import pyarrow as pa
    arrow = {str(knext.int64()): pa.int64(), str(knext.double()): pa.float64(), str(knext.string()): pa.string()}
    return knext.Table.from_pyarrow(pa.table({n: pa.array([r.get(n) for r in rows], type=arrow[str(t)])
                                              for n, t in cols}))


@knext.node(name="Compare Runs", node_type=knext.NodeType.VISUALIZER, icon_path="icons/experiments.png",
            category=experiments_category, keywords=["compare", "runs", "curves", "seeds", "mean", "std"],
            id="tinyuop_compare_runs")
@knext.input_table("Runs", "Runs to compare, e.g. from Experiment Runs (a column of run ids).", optional=True)
@knext.output_table("Summary", "Per run and metric: best (lower for loss-like metrics), min, max, last.")
@knext.output_table("Across seeds", "Per configuration (parameters without the seed) and metric: mean +- std.")
@knext.output_view("Curves", "Every metric's curves of all runs overlaid.")
class CompareRunsNode:
    """Compares runs from the experiment store: overlaid metric curves, best/min/max/last per
    metric, and mean +- standard deviation over runs that share a configuration but not a seed.

    Take the runs from a connected table's run-id column (e.g. Experiment Runs filtered), or
    type run ids.
    """

    store = knext.StringParameter("Store file", "SQLite experiment store (empty = the workflow data area).", "")
    id_column = knext.StringParameter("Run id column", "Column of the connected table holding run ids.", "id")
    run_ids = knext.StringParameter("Run ids", "Comma-separated run ids (used when no table is connected).", "")
    metrics = knext.StringParameter("Metrics", "Comma-separated metric names (empty = all).", "")
    value = knext.StringParameter("Value per run", "Which value of each run the seed groups average.", "best",
                                  enum=["best", "last"])

    def _ids_setting(self) -> list[str]:
        ids = [s.strip() for s in self.run_ids.split(",") if s.strip()]
        bad = [s for s in ids if not s.isdigit()]
        if bad:
            raise knext.InvalidParametersError(f"run ids are numbers; '{bad[0]}' is not one")
        return ids

    def configure(self, config_context, schema=None):
        if schema is not None:
            if self.id_column not in schema.column_names:
                raise knext.InvalidParametersError(f"run id column '{self.id_column}' is not in the table; "
                                                   f"available: {list(schema.column_names)}")
        elif not self._ids_setting():
            raise knext.InvalidParametersError("connect a table of runs or type run ids")
        return _schema(_SUMMARY), _schema(_GROUPS)

    def execute(self, exec_context, table=None):
        from uop_engine.compare import curves_png, grouped_rows, summary_rows
        from uop_engine.runs_view import load_curves
        from uop_engine.store import StoreError
        if table is not None:
            col = table.to_pandas()[self.id_column]
            ids = [str(int(v)) for v in col.dropna()]
        else:
            ids = self._ids_setting()
        if not ids:
            raise ValueError("no runs to compare: the run id column is empty")
        st = _open(store_path(exec_context, self.store))
        try:
            runs = load_curves(st, ids)
        except StoreError as e:
            raise ValueError(str(e)) from None
        metrics = [m.strip() for m in self.metrics.split(",") if m.strip()] or None
        known = {k for r in runs for k in r.history}
        if metrics and not set(metrics) & known:
            raise knext.InvalidParametersError(f"none of the metrics {metrics} were logged by these runs; "
                                               f"they have: {sorted(known)}")
        if not known:
            raise ValueError("these runs have no metric history to compare")
        summary = summary_rows(runs, metrics)
        groups = grouped_rows(runs, metrics, value=self.value)
        png = curves_png(runs, [m for m in metrics if m in known] if metrics else None)
        return _frame(summary, _SUMMARY), _frame(groups, _GROUPS), knext.view_png(png)
