"""Runs exported to MLflow's file-store layout, parsed back and read with MLflow's own client
(MLflow 3 needs MLFLOW_ALLOW_FILE_STORE=true for a local file store); runs taken from the
experiment store with their child runs; `tinyuop runs export-mlflow`."""
import json
import math

import pytest

from uop_engine.mlflow_export import RunExport, experiment_id, export_runs, from_store, mlflow_run_id


def parse_yaml(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(": ")
        out[k] = v
    return out


def test_file_store_layout_round_trips(tmp_path):
    art = tmp_path / "model.tuop"
    art.write_bytes(b"weights")
    run = RunExport("7", "digits cnn", "finished", 1700000000.0, 1700000060.5,
                    {"lr": 0.003, "optim": {"name": "adam", "betas": [0.9, 0.999]}, "tag/with:odd": "x"},
                    {"project": "digits"},
                    {"loss": [(0, 2.5, 1700000001.0), (1, 1.25, 1700000002.0)], "val_accuracy": [(1, 0.9, None)]},
                    [str(art)])
    (rid,) = export_runs([run], tmp_path / "mlruns", experiment="tinyuop")
    assert rid == mlflow_run_id(run, "tinyuop") and len(rid) == 32
    exp = tmp_path / "mlruns" / experiment_id("tinyuop")
    meta = parse_yaml((exp / "meta.yaml").read_text())
    assert meta["name"] == "tinyuop" and meta["lifecycle_stage"] == "active"
    rd = exp / rid
    rmeta = parse_yaml((rd / "meta.yaml").read_text())
    assert rmeta["status"] == "3" and rmeta["start_time"] == "1700000000000" and rmeta["end_time"] == "1700000060500"
    assert rmeta["run_id"] == rid and rmeta["run_name"] == "digits cnn"
    loss = [line.split() for line in (rd / "metrics" / "loss").read_text().splitlines()]
    assert loss == [["1700000001000", "2.5", "0"], ["1700000002000", "1.25", "1"]]
    (ts, val, step), = [line.split() for line in (rd / "metrics" / "val_accuracy").read_text().splitlines()]
    assert ts == "1700000000000" and math.isclose(float(val), 0.9) and step == "1"
    assert (rd / "params" / "lr").read_text() == "0.003"
    assert (rd / "params" / "optim.name").read_text() == "adam"
    assert (rd / "params" / "optim.betas").read_text() == "[0.9, 0.999]"
    assert (rd / "params" / "tag_with_odd").read_text() == "x"
    assert (rd / "tags" / "mlflow.runName").read_text() == "digits cnn"
    assert (rd / "tags" / "project").read_text() == "digits"
    assert (rd / "artifacts" / "model.tuop").read_bytes() == b"weights"
    # exporting again replaces the run instead of adding a second copy
    run.metrics["loss"].append((2, 1.0, None))
    export_runs([run], tmp_path / "mlruns")
    assert len([p for p in exp.iterdir() if p.is_dir()]) == 1
    assert len((rd / "metrics" / "loss").read_text().splitlines()) == 3


def test_failed_runs_keep_their_status(tmp_path):
    (rid,) = export_runs([RunExport("1", status="incomplete")], tmp_path)
    assert parse_yaml((tmp_path / experiment_id("tinyuop") / rid / "meta.yaml").read_text())["status"] == "4"


def test_mlflow_reads_the_layout_we_write(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow-skinny comes with the test extras")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient
    run = RunExport("3", "cnn", "finished", 1700000000.0, 1700000010.0, {"lr": 0.01, "optim": {"name": "sgd"}},
                    {"project": "p"}, {"loss": [(0, 2.0, 1700000001.0), (1, 1.5, 1700000002.0)]})
    (rid,) = export_runs([run], tmp_path, experiment="tinyuop")
    client = MlflowClient(tracking_uri=tmp_path.as_uri())
    got = client.get_run(rid)
    assert got.info.status == "FINISHED" and got.info.run_name == "cnn"
    assert got.data.params == {"lr": "0.01", "optim.name": "sgd"} and got.data.tags["project"] == "p"
    hist = client.get_metric_history(rid, "loss")
    assert [(m.step, m.value) for m in hist] == [(0, 2.0), (1, 1.5)]
    assert client.get_experiment_by_name("tinyuop").experiment_id == experiment_id("tinyuop")


# ---- from the experiment store --------------------------------------------------------------------
def _pipeline_like_store(tmp_path):
    """A parent run with two step runs, as a pipeline records them (graph, artifact, evaluation)."""
    from uop_engine import specs
    from uop_engine.store import ExperimentStore, record_evaluation
    st = ExperimentStore(tmp_path / "runs.sqlite")
    graph = specs.Sequential([specs.Flatten(), specs.Linear(out_features=3)]).to_graph(input_shape=(4,), name="g")
    parent = st.start_run("digits", name="pipe", params={"pipeline": {"name": "pipe", "seed": 0}},
                          tags={"kind": "pipeline"}, device="CPU")
    train = st.start_run("digits", name="train", params={"epochs": 2, "lr": 0.1}, parent_id=parent,
                         tags={"kind": "step", "type": "train"}, graph=graph, seed=3, device="CPU")
    for epoch, (loss, acc) in enumerate([(1.5, 0.4), (0.75, 0.8)], start=1):
        st.log_metrics(train, {"loss": loss, "accuracy": acc}, step=epoch)
    model = tmp_path / "train.tuop"
    model.write_bytes(b"model bytes")
    st.log_artifact(train, str(model), kind="model")
    st.end_run(train, "finished")
    # record_evaluation logs without steps (the case that crashed the export with int(None))
    ev = record_evaluation(st, {"accuracy": 0.75, "macro": {"f1": 0.5}}, project="digits", name="evaluate",
                           parent_id=parent)
    st.end_run(parent, "failed")
    return st, parent, train, ev, graph


def test_from_store_reads_a_run_and_its_children(tmp_path):
    st, parent, train, ev, graph = _pipeline_like_store(tmp_path)
    runs = from_store(st, parent)
    assert [(r.id, r.name, r.status, r.parent_id) for r in runs] == [
        (str(parent), "pipe", "failed", None), (str(train), "train", "finished", str(parent)),
        (str(ev), "evaluate", "finished", str(parent))]
    assert all(r.experiment == "digits" for r in runs)
    t = runs[1]
    assert [(s, v) for s, v, _ in t.metrics["loss"]] == [(1, 1.5), (2, 0.75)]
    assert t.params == {"epochs": 2, "lr": 0.1} and t.tags["type"] == "train" and t.tags["tinyuop.seed"] == "3"
    assert t.tags["tinyuop.graph_hash"] == graph.hash() and t.tags["tinyuop.device"] == "CPU"
    assert t.artifacts == [str(tmp_path / "train.tuop")] and json.loads(t.texts["graph.json"])["name"] == "g"
    assert [(s, v) for s, v, _ in runs[2].metrics["macro/f1"]] == [(None, 0.5)]
    assert [r.id for r in from_store(st, parent, children=False)] == [str(parent)]
    from uop_engine.store import StoreError
    with pytest.raises(StoreError, match="no run 999"):
        from_store(st, 999)


def _cli(*args, cwd):
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-m", "uop_engine.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env={**os.environ, "PYTHONPATH": str(root / "src")})


def test_cli_export_mlflow_read_back_with_mlflows_client(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow-skinny comes with the test extras")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient
    st, parent, train, ev, graph = _pipeline_like_store(tmp_path)
    out = tmp_path / "mlruns"
    r = _cli("runs", "export-mlflow", parent, "--out", out, "--store", tmp_path / "runs.sqlite", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"exported 3 run(s) to {out}" in r.stdout and "MLFLOW_ALLOW_FILE_STORE=true mlflow ui" in r.stdout
    client = MlflowClient(tracking_uri=out.as_uri())
    exp = client.get_experiment_by_name("digits")
    runs = {x.info.run_name: x for x in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"pipe", "train", "evaluate"}
    pid = runs["pipe"].info.run_id
    assert runs["pipe"].info.status == "FAILED" and runs["train"].info.status == "FINISHED"
    assert runs["train"].data.tags["mlflow.parentRunId"] == pid == runs["evaluate"].data.tags["mlflow.parentRunId"]
    assert "mlflow.parentRunId" not in runs["pipe"].data.tags
    assert runs["train"].data.params == {"epochs": "2", "lr": "0.1"}
    assert runs["pipe"].data.params == {"pipeline.name": "pipe", "pipeline.seed": "0"}
    assert runs["train"].data.tags["tinyuop.run_id"] == str(train)
    hist = client.get_metric_history(runs["train"].info.run_id, "accuracy")
    assert sorted((m.step, m.value) for m in hist) == [(1, 0.4), (2, 0.8)]
    assert runs["evaluate"].data.metrics == {"accuracy": 0.75, "macro_f1": 0.5}
    assert [(m.step, m.value) for m in client.get_metric_history(runs["evaluate"].info.run_id, "accuracy")] == \
        [(0, 0.75)]
    arts = sorted(f.path for f in client.list_artifacts(runs["train"].info.run_id))
    assert arts == ["graph.json", "train.tuop"]
    local = client.download_artifacts(runs["train"].info.run_id, "graph.json", str(tmp_path / "dl"))
    from uop_engine import Graph
    with open(local) as f:
        assert Graph.from_json(f.read()).hash() == graph.hash()
    # only the parent, on request; errors name the fix (exit 2)
    r = _cli("runs", "export-mlflow", parent, "--no-children", "--out", tmp_path / "m2", "--store",
             tmp_path / "runs.sqlite", cwd=tmp_path)
    assert r.returncode == 0 and "exported 1 run(s)" in r.stdout
    r = _cli("runs", "export-mlflow", "--store", tmp_path / "runs.sqlite", cwd=tmp_path)
    assert r.returncode == 2 and "needs the id of at least one run" in r.stderr
    r = _cli("runs", "export-mlflow", 999, "--out", tmp_path / "m3", "--store", tmp_path / "runs.sqlite", cwd=tmp_path)
    assert r.returncode == 2 and "no run 999" in r.stderr and not (tmp_path / "m3").exists()
    r = _cli("runs", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "export-mlflow" in r.stdout and "--no-children" in r.stdout


def test_a_run_named_twice_is_exported_once_and_a_lone_child_has_no_dangling_parent(tmp_path, monkeypatch):
    st, parent, train, ev, graph = _pipeline_like_store(tmp_path)
    out = tmp_path / "mlruns"
    r = _cli("runs", "export-mlflow", parent, train, "--out", out, "--store", tmp_path / "runs.sqlite", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "exported 3 run(s)" in r.stdout and r.stdout.count(f"run {train} (train") == 1
    exp = out / experiment_id("digits")
    assert len([p for p in exp.iterdir() if p.is_dir()]) == 3
    pid = mlflow_run_id(RunExport(str(parent)), "digits")
    child = exp / mlflow_run_id(RunExport(str(train)), "digits")
    assert (child / "tags" / "mlflow.parentRunId").read_text() == pid and (exp / pid).is_dir()
    # only the child: no MLflow parent tag naming a run that is not there, our parent id kept
    lone = tmp_path / "lone"
    r = _cli("runs", "export-mlflow", train, "--out", lone, "--store", tmp_path / "runs.sqlite", cwd=tmp_path)
    assert r.returncode == 0 and "exported 1 run(s)" in r.stdout
    tags = lone / experiment_id("digits") / mlflow_run_id(RunExport(str(train)), "digits") / "tags"
    assert not (tags / "mlflow.parentRunId").exists() and (tags / "tinyuop.parent_run_id").read_text() == str(parent)
    # a parent exported to another experiment than its child: the link names the parent's real id
    ids = export_runs([RunExport("1", experiment="a"), RunExport("2", experiment="b", parent_id="1")], tmp_path / "x")
    assert (tmp_path / "x" / experiment_id("b") / ids[1] / "tags" / "mlflow.parentRunId").read_text() == ids[0]
    pytest.importorskip("mlflow", reason="mlflow-skinny comes with the test extras")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=out.as_uri())
    names = sorted(x.info.run_name for x in client.search_runs([experiment_id("digits")]))
    assert names == ["evaluate", "pipe", "train"]
