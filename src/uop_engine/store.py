"""The experiment store: every training, evaluation and pipeline run in one local SQLite file.

    st = ExperimentStore()                       # $TINYUOP_STORE, else ~/.tinyuop/experiments.sqlite
    rid = st.start_run("digits", name="cnn", params={...}, graph=graph, seed=0)
    st.log_metric(rid, "loss", 0.31, step=1)
    st.log_artifact(rid, "out/model.tuop", kind="model")
    st.end_run(rid, "finished")
    st.list_runs(project="digits"); st.get_run(rid); st.metric_history(rid, "loss")

A run holds its project, name, parent run, status, graph JSON and hash, parameters, data
fingerprint, seed, environment (package versions, platform, device, git commit), start/end
times, the full metric history and its artifacts. Every logical write is one transaction
(WAL journal), so a crash never leaves half a write. A run still 'running' whose writer
process is gone (same host, pid no longer alive) is marked 'incomplete' whenever the store
is opened or listed: a killed process can never leave a run that looks finished.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

SCHEMA_VERSION = 1
STORE_ENV = "TINYUOP_STORE"
STATUSES = ("running", "finished", "failed", "incomplete", "cancelled")
DEFAULT_PATH = Path.home() / ".tinyuop" / "experiments.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, name TEXT, parent_id INTEGER REFERENCES runs(id),
    status TEXT NOT NULL, graph_json TEXT, graph_hash TEXT, params TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}', data_fingerprint TEXT, seed INTEGER, env TEXT NOT NULL DEFAULT '{}',
    start_time REAL NOT NULL, end_time REAL, pid INTEGER, host TEXT, heartbeat REAL);
CREATE INDEX IF NOT EXISTS runs_project ON runs(project, id);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent_id);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id), key TEXT NOT NULL, step INTEGER, value REAL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, key, step);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id INTEGER NOT NULL REFERENCES runs(id), path TEXT NOT NULL, name TEXT, kind TEXT, sha256 TEXT, size INTEGER,
    time REAL NOT NULL);
"""


class StoreError(ValueError):
    """A store problem the user can fix (unknown run, wrong status, unreadable file)."""


def _json(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie (killed, not yet reaped) is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The HEAD commit when `cwd` is inside a git work tree (None otherwise or without git)."""
    import subprocess
    if cwd is not None and not os.path.isdir(cwd):
        return None
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or os.getcwd(), capture_output=True, text=True,
                           timeout=3)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def environment(device: str | None = None, workdir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Package versions, platform, host, device and git commit. With a `workdir` (e.g. a KNIME
    workflow's folder) the commit is that folder's, or none when it is not inside a git work tree:
    the process's current folder (KNIME's install or home folder) may belong to an unrelated
    repository. Without one it is the current folder's. `git_dir` says which folder it came from."""
    import platform
    from importlib.metadata import PackageNotFoundError, version
    pkgs = {}
    for p in ("tinygrad", "numpy", "pyarrow", "pandas", "onnx", "onnxruntime", "tinyuop-builder"):
        try:
            pkgs[p] = version(p)
        except PackageNotFoundError:
            pass
    where = os.fspath(workdir) if workdir is not None else os.getcwd()
    commit = git_commit(where)
    return {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
            "host": socket.gethostname(), "packages": pkgs, "device": device, "git_commit": commit,
            "git_dir": where if commit else None}


class ExperimentStore:
    """`workdir`: the folder whose git commit runs record (a KNIME workflow's folder: none when it is
    not in a repository); None = the cwd's."""

    def __init__(self, path: str | os.PathLike | None = None, workdir: str | os.PathLike | None = None):
        self.path = Path(path or os.environ.get(STORE_ENV) or DEFAULT_PATH).expanduser()
        self.workdir = workdir
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.host = socket.gethostname()
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self._tx() as c:
                for stmt in _SCHEMA.split(";"):  # executescript would commit our transaction early
                    if stmt.strip():
                        c.execute(stmt)
                row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise StoreError(f"experiment store {self.path} has schema version {row[0]}, newer than this "
                                     f"TinyUOp ({SCHEMA_VERSION}); update TinyUOp Builder")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open the experiment store {self.path}: {e} (is it a TinyUOp store file?)") from None
        self.reconcile()

    def __repr__(self) -> str:
        return f"ExperimentStore('{self.path}')"

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it lands, or (on any exception) none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---- writing ------------------------------------------------------------------------------------------
    def start_run(self, project: str = "default", name: str | None = None, params: dict | None = None,
                  parent_id: Any = None, tags: dict | None = None, *, graph: Any = None, seed: int | None = None,
                  data_fingerprint: str | None = None, device: str | None = None) -> int:
        graph_json = graph_hash = None
        if graph is not None:
            graph_json, graph_hash = graph.to_json(indent=None), graph.hash()
        if parent_id is not None:
            self._row(parent_id)
        now, env = time.time(), _json(environment(device, self.workdir))
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO runs (project, name, parent_id, status, graph_json, graph_hash, params, tags, "
                "data_fingerprint, seed, env, start_time, pid, host, heartbeat) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (project, name, None if parent_id is None else int(parent_id), "running", graph_json, graph_hash,
                 _json(params or {}), _json(tags or {}), data_fingerprint, seed, env, now,
                 os.getpid(), self.host, now))
            return int(cur.lastrowid)

    def log_metric(self, run_id: Any, key: str, value: float, step: int | None = None) -> None:
        self.log_metrics(run_id, {key: value}, step)

    def log_metrics(self, run_id: Any, metrics: dict[str, float], step: int | None = None) -> None:
        rid, now = int(run_id), time.time()
        with self._tx() as c:
            c.executemany("INSERT INTO metrics VALUES (?,?,?,?,?)",
                          [(rid, k, step, None if v is None else float(v), now) for k, v in metrics.items()])
            c.execute("UPDATE runs SET heartbeat=? WHERE id=?", (now, rid))

    def log_params(self, run_id: Any, params: dict) -> None:
        """Merge parameters into the run's; `graph`, `seed` and `data_fingerprint` keys also fill their columns."""
        with self._tx() as c:
            row = c.execute("SELECT params FROM runs WHERE id=?", (int(run_id),)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id} in {self.path}")
            merged = {**json.loads(row["params"]), **json.loads(_json(params))}
            c.execute("UPDATE runs SET params=? WHERE id=?", (_json(merged), int(run_id)))
            for col in ("seed", "data_fingerprint"):
                if params.get(col) is not None:
                    c.execute(f"UPDATE runs SET {col}=? WHERE id=?", (params[col], int(run_id)))

    def set_graph(self, run_id: Any, graph: Any) -> None:
        with self._tx() as c:
            c.execute("UPDATE runs SET graph_json=?, graph_hash=? WHERE id=?",
                      (graph.to_json(indent=None), graph.hash(), int(run_id)))

    def update_run(self, run_id: Any, *, tags: dict | None = None, data_fingerprint: str | None = None,
                   device: str | None = None) -> None:
        """Facts known only once a run is under way: tags merged in, the data fingerprint, the device."""
        with self._tx() as c:
            row = c.execute("SELECT tags, env FROM runs WHERE id=?", (int(run_id),)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id} in {self.path}")
            merged = {**json.loads(row["tags"]), **json.loads(_json(tags or {}))}
            env = json.loads(row["env"])
            if device is not None:
                env["device"] = device
            c.execute("UPDATE runs SET tags=?, env=?, data_fingerprint=COALESCE(?, data_fingerprint) WHERE id=?",
                      (_json(merged), _json(env), data_fingerprint, int(run_id)))

    def log_artifact(self, run_id: Any, path: str, name: str | None = None, kind: str | None = None) -> None:
        sha = size = None
        if os.path.isfile(path):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            sha, size = h.hexdigest(), os.path.getsize(path)
        with self._tx() as c:
            c.execute("INSERT INTO artifacts VALUES (?,?,?,?,?,?,?)",
                      (int(run_id), os.path.abspath(path), name or os.path.basename(path), kind, sha, size, time.time()))

    def end_run(self, run_id: Any, status: str = "finished") -> None:
        if status not in STATUSES or status == "running":
            raise StoreError(f"'{status}' is not a final run status; use one of {', '.join(STATUSES[1:])}")
        with self._tx() as c:
            c.execute("UPDATE runs SET status=?, end_time=? WHERE id=?", (status, time.time(), int(run_id)))

    def reconcile(self) -> int:
        """Mark runs whose writer process died (same host) as 'incomplete'; returns how many."""
        rows = self._db.execute("SELECT id, pid FROM runs WHERE status='running' AND host=?", (self.host,)).fetchall()
        dead = [r["id"] for r in rows if r["pid"] is not None and r["pid"] != os.getpid() and not _pid_alive(r["pid"])]
        if dead:
            with self._tx() as c:
                c.executemany("UPDATE runs SET status='incomplete', end_time=COALESCE(end_time, heartbeat) WHERE id=? "
                              "AND status='running'", [(i,) for i in dead])
        return len(dead)

    # ---- reading ------------------------------------------------------------------------------------------
    def _row(self, run_id: Any) -> sqlite3.Row:
        try:
            rid = int(run_id)
        except (TypeError, ValueError):
            raise StoreError(f"'{run_id}' is not a run id (run ids are numbers; see 'tinyuop runs')") from None
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (rid,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in {self.path}")
        return row

    @staticmethod
    def _plain(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        for k in ("params", "tags", "env"):
            d[k] = json.loads(d[k] or "{}")
        d["duration"] = None if d["end_time"] is None else d["end_time"] - d["start_time"]
        return d

    def list_runs(self, project: str | None = None, status: str | None = None, name_contains: str | None = None,
                  parent_id: Any = ..., limit: int | None = None) -> list[dict[str, Any]]:
        """Newest first. parent_id=None lists top-level runs only; leave it out for all runs."""
        self.reconcile()
        where, args = [], []
        if project is not None:
            where.append("project=?"), args.append(project)
        if status is not None:
            where.append("status=?"), args.append(status)
        if name_contains:
            where.append("LOWER(COALESCE(name,'')) LIKE ?"), args.append(f"%{name_contains.lower()}%")
        if parent_id is None:
            where.append("parent_id IS NULL")
        elif parent_id is not ...:
            where.append("parent_id=?"), args.append(int(parent_id))
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._plain(r) for r in self._db.execute(sql, args).fetchall()]

    def runs_frame(self, **filters: Any):
        """list_runs as a pandas DataFrame (params/tags as JSON text; no graph JSON)."""
        import pandas as pd
        rows = self.list_runs(**filters)
        cols = ["id", "project", "name", "parent_id", "status", "graph_hash", "seed", "data_fingerprint",
                "start_time", "end_time", "duration", "params", "tags"]
        return pd.DataFrame([{c: (_json(r[c]) if c in ("params", "tags") else r[c]) for c in cols} for r in rows],
                            columns=cols)

    def get_run(self, run_id: Any) -> dict[str, Any]:
        d = self._plain(self._row(run_id))
        rid = d["id"]
        d["artifacts"] = [dict(r) for r in self._db.execute(
            "SELECT path, name, kind, sha256, size FROM artifacts WHERE run_id=? ORDER BY rowid", (rid,))]
        d["children"] = [r[0] for r in self._db.execute("SELECT id FROM runs WHERE parent_id=? ORDER BY id", (rid,))]
        d["metric_keys"] = self.metric_keys(rid)
        d["last_metrics"] = self.last_metrics(rid)
        return d

    def metric_keys(self, run_id: Any) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT key FROM metrics WHERE run_id=? ORDER BY key",
                                               (int(run_id),))]

    def metric_history(self, run_id: Any, key: str | None = None) -> list[dict[str, Any]]:
        """Every logged value in order: dicts with key, step, value, time."""
        sql, args = "SELECT key, step, value, time FROM metrics WHERE run_id=?", [int(run_id)]
        if key is not None:
            sql += " AND key=?"
            args.append(key)
        # SQLite keeps NaN as NULL: a NaN loss (a diverged run) reads back as NaN
        return [{**dict(r), "value": _nan(r["value"])} for r in self._db.execute(sql + " ORDER BY rowid", args)]

    def last_metrics(self, run_id: Any) -> dict[str, float]:
        rows = self._db.execute("SELECT key, value FROM metrics WHERE rowid IN (SELECT MAX(rowid) FROM metrics "
                                "WHERE run_id=? GROUP BY key) ORDER BY key", (int(run_id),))
        return {r["key"]: _nan(r["value"]) for r in rows}


# ---- one-call recording for nodes, pipelines and scripts --------------------------------------------------
def record_training(store: ExperimentStore, result: Any, graph: Any = None, project: str = "default",
                    name: str | None = None, parent_id: Any = None, artifacts: tuple = (),
                    status: str | None = None) -> int:
    """Record a finished uop_engine.train TrainResult: hyperparameters (the config without the seed)
    as params, graph, seed, data fingerprint, environment, every epoch's metrics and the run's
    facts as tags; returns the run id. To record while training, use training_run.TrainingRun."""
    from .training_run import record_result
    return record_result(store, result, graph, project, name, parent_id, artifacts, status)


def record_evaluation(store: ExperimentStore, metrics: dict[str, Any], project: str = "default",
                      name: str | None = None, params: dict | None = None, parent_id: Any = None,
                      kind: str = "evaluation", *, tags: dict | None = None, graph: Any = None,
                      data_fingerprint: str | None = None, device: str | None = None) -> int:
    """Record numeric evaluation metrics (nested dicts flattened as 'a/b') as a finished run, with
    optional tags (e.g. the scored columns), the evaluated model's graph, a fingerprint of the
    scored data and the device that computed the scores. A failed metric write ends it 'failed'."""
    flat: dict[str, float] = {}

    def walk(d: dict, prefix: str = "") -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}/")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                flat[f"{prefix}{k}"] = float(v)
    walk(metrics)
    rid = store.start_run(project, name=name, params=params or {}, parent_id=parent_id,
                          tags={"kind": kind, **(tags or {})}, graph=graph, data_fingerprint=data_fingerprint,
                          device=device)
    try:
        store.log_metrics(rid, flat)
    except BaseException:
        store.end_run(rid, "failed")
        raise
    store.end_run(rid, "finished")
    return rid
