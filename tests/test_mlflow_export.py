"""Runs exported to MLflow's file-store layout, parsed back."""
import math

import pytest

from uop_engine.mlflow_export import RunExport, experiment_id, export_runs, mlflow_run_id


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
