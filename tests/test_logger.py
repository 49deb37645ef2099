"""The script logger (uop_engine.helpers.logger) against a real SQLite experiment store, read back
through a second connection: runs with their parameters, full metric history, artifacts and
final status; a script that never calls finish(); use inside a pipeline step (the step's child
run); and the MLflow mirror read back with MLflow's own client.

MLflow 3 refuses its local file store unless MLFLOW_ALLOW_FILE_STORE=true, so the MLflow tests
set it (a user logging to a local `file:` URI must set it too; a tracking server needs nothing)."""
import hashlib
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from uop_engine.helpers import Logger, logger
from uop_engine.pipeline import loads_pipeline, pipeline_process, run_pipeline
from uop_engine.store import ExperimentStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_outside_trackers(monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_MODE", "MLFLOW_TRACKING_URI", "TINYUOP_MLFLOW", "TINYUOP_WANDB",
                "TINYUOP_STORE"):
        monkeypatch.delenv(var, raising=False)


def _points(st, rid, key):
    return [(m["step"], m["value"]) for m in st.metric_history(rid, key)]


def test_init_log_finish_writes_the_run_and_its_history(tmp_path):
    path = tmp_path / "runs.sqlite"
    art = tmp_path / "weights.bin"
    art.write_bytes(b"\x00\x01weights")
    lg = Logger()
    config = {"lr": 0.003, "optim": {"name": "adam", "betas": [0.9, 0.999]}}
    run = lg.init(project="digits", config=config, name="cnn", store=str(path), tags={"who": "test"})
    losses = [2.3, 1.1, 0.52]
    for i, loss in enumerate(losses):
        logged = lg.log({"loss": loss, "val": {"acc": 0.5 + 0.1 * i}, "note": "text", "flag": True}, step=i)
    assert logged == {"loss": 0.52, "val.acc": pytest.approx(0.7)}  # nested flattened, non-numbers dropped
    lg.log({"test_accuracy": np.float32(0.875), "diverged": float("nan")})
    lg.log_artifact(art, kind="weights")
    assert lg.run_id == run.id
    lg.finish()
    assert lg.run is None and lg.last_run_id == run.id

    st = ExperimentStore(path)  # a second connection, as another process would read it
    r = st.get_run(run.id)
    assert (r["project"], r["name"], r["status"], r["parent_id"]) == ("digits", "cnn", "finished", None)
    assert r["params"] == config and r["tags"] == {"who": "test"}
    assert r["end_time"] is not None and r["end_time"] >= r["start_time"]
    assert st.metric_keys(run.id) == ["diverged", "loss", "test_accuracy", "val.acc"]
    assert _points(st, run.id, "loss") == list(enumerate(losses))
    assert [s for s, _ in _points(st, run.id, "val.acc")] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in _points(st, run.id, "val.acc")], [0.5, 0.6, 0.7])
    assert _points(st, run.id, "test_accuracy") == [(None, 0.875)]
    assert math.isnan(st.last_metrics(run.id)["diverged"])  # a NaN is kept, not dropped
    (a,) = r["artifacts"]
    assert a["name"] == "weights.bin" and a["kind"] == "weights" and a["size"] == art.stat().st_size
    assert a["sha256"] == hashlib.sha256(art.read_bytes()).hexdigest()


def test_finish_status_and_a_new_init_ends_the_previous_run(tmp_path):
    path = str(tmp_path / "runs.sqlite")
    lg = Logger()
    first = lg.init(project="p", store=path)
    lg.log({"loss": 1.0}, step=0)
    second = lg.init(project="p", store=path, name="second")  # starting another run ends the first
    lg.log({"loss": 0.5}, step=0)
    lg.finish("failed")
    third = lg.init(project="p", store=path)
    lg.finish("cancelled")
    st = ExperimentStore(path)
    assert [st.get_run(r.id)["status"] for r in (first, second, third)] == ["finished", "failed", "cancelled"]
    assert _points(st, first.id, "loss") == [(0, 1.0)] and _points(st, second.id, "loss") == [(0, 0.5)]
    assert [r["id"] for r in st.list_runs(project="p")] == [third.id, second.id, first.id]


def test_log_without_init_uses_the_store_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYUOP_STORE", str(tmp_path / "env.sqlite"))
    lg = Logger()
    lg.log({"loss": 0.25}, step=3)
    rid = lg.run_id
    lg.finish()
    st = ExperimentStore(tmp_path / "env.sqlite")
    assert st.get_run(rid)["project"] == "default" and _points(st, rid, "loss") == [(3, 0.25)]


def test_a_script_that_never_calls_finish_still_ends_its_run(tmp_path):
    path = tmp_path / "runs.sqlite"
    code = ("from uop_engine.helpers import logger\n"
            "logger.init(project='script', config={'epochs': 2})\n"
            "for e in range(2):\n    logger.log({'loss': 1.0 / (e + 1)}, step=e)\n"
            "print(logger.run_id)\n")  # no finish(): the exit hook ends the run
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "TINYUOP_STORE": str(path),
                            "TINYUOP_MLFLOW": "0", "TINYUOP_WANDB": "0"})
    assert r.returncode == 0, r.stderr
    st = ExperimentStore(path)
    run = st.get_run(int(r.stdout.strip()))
    assert run["status"] == "finished" and run["params"] == {"epochs": 2}
    assert _points(st, run["id"], "loss") == [(0, 1.0), (1, 0.5)]


@pipeline_process(name="t_logged_fit", outputs=("final_loss", "run_id"))
def logged_fit(epochs: int = 3, lr: float = 0.1) -> dict:
    """A user's training function that logs with the script logger."""
    run = logger.init(project="ignored in a pipeline", config={"lr_used": lr, "inner": True})
    for e in range(epochs):
        logger.log({"loss": 1.0 / (e + 1)}, step=e)
    logger.finish()  # a no-op in a pipeline: the runner ends the step's run
    return {"final_loss": 1.0 / epochs, "run_id": run.id}


def test_logger_inside_a_pipeline_step_writes_to_the_steps_child_run(tmp_path):
    before = logger.run
    cfg = loads_pipeline("name = 'logged'\n[[steps]]\nname = 'fit'\ntype = 't_logged_fit'\nparams = { epochs = 3 }\n",
                         base_dir=tmp_path)
    res = run_pipeline(cfg, out=tmp_path / "out", store=str(tmp_path / "runs.sqlite"), progress="none")
    assert logger.run is before  # no standalone run was started
    st = ExperimentStore(tmp_path / "runs.sqlite")
    parent = st.get_run(res.run_id)
    assert parent["status"] == "finished" and parent["tags"] == {"kind": "pipeline"}
    (child_id,) = parent["children"]
    assert res["fit"]["run_id"] == child_id  # init() returned the step's run
    child = st.get_run(child_id)
    assert (child["name"], child["project"], child["status"]) == ("fit", "logged", "finished")
    assert child["params"] == {"epochs": 3, "lr_used": 0.1, "inner": True}  # step params + the logger's config
    assert _points(st, child_id, "loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert _points(st, child_id, "final_loss") == [(None, pytest.approx(1 / 3))]
    assert st.metric_keys(res.run_id) == []  # nothing leaked into the pipeline's own run


# ---- MLflow ---------------------------------------------------------------------------------------
def test_mlflow_sink_mirrors_the_run_read_back_with_mlflows_client(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow-skinny comes with the test extras")
    from mlflow.tracking import MlflowClient
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    art = tmp_path / "notes.txt"
    art.write_text("hello")
    lg = Logger()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lg.init(project="mirrored", name="cnn", config={"lr": 0.01, "optim": {"name": "sgd"}},
                store=str(tmp_path / "runs.sqlite"))
        for e, loss in enumerate([2.0, 1.5, 1.25]):
            lg.log({"loss": loss}, step=e)
        lg.log({"test_accuracy": 0.9})
        lg.log_artifact(art)
        lg.finish()
        lg.init(project="mirrored", name="broken", store=str(tmp_path / "runs.sqlite"))
        lg.finish("failed")
    assert not [w for w in caught if "MLflow" in str(w.message)], [str(w.message) for w in caught]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("mirrored")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"cnn", "broken"}
    cnn = runs["cnn"]
    assert cnn.info.status == "FINISHED" and runs["broken"].info.status == "FAILED"
    assert cnn.data.params == {"lr": "0.01", "optim.name": "sgd"}
    hist = client.get_metric_history(cnn.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in hist) == [(0, 2.0), (1, 1.5), (2, 1.25)]
    assert cnn.data.metrics["test_accuracy"] == 0.9
    assert [f.path for f in client.list_artifacts(cnn.info.run_id)] == ["notes.txt"]


def test_a_failing_mlflow_warns_once_and_the_store_still_records(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow-skinny comes with the test extras")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # MLflow 3 then refuses the file store
    lg = Logger()
    with pytest.warns(RuntimeWarning, match=r"MLflow: start_run failed .*MLFLOW_ALLOW_FILE_STORE") as caught:
        run = lg.init(project="p", store=str(tmp_path / "runs.sqlite"))
        lg.log({"loss": 1.0}, step=0)
        lg.log({"loss": 0.5}, step=1)
        lg.finish()
    assert len([w for w in caught if "MLflow" in str(w.message)]) == 1
    st = ExperimentStore(tmp_path / "runs.sqlite")
    assert st.get_run(run.id)["status"] == "finished" and _points(st, run.id, "loss") == [(0, 1.0), (1, 0.5)]
