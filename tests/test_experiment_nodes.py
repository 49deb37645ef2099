"""Experiment Runs and Compare Runs through the knime.extension double, on a real store."""
import io
import json

import numpy as np
import pytest
from PIL import Image

import knime.extension as knext
from knime_harness import configure_node, load_extension, make_exec_context, run_node
from uop_engine.store import ExperimentStore

load_extension()
from nodes.experiment_nodes import CompareRunsNode, ExperimentRunsNode  # noqa: E402


@pytest.fixture
def store(tmp_path):
    st = ExperimentStore(tmp_path / "runs.sqlite")
    ids = []
    for lr, seed in [(0.1, 0), (0.1, 1), (0.01, 0)]:
        rid = st.start_run("digits", name=f"lr{lr}-s{seed}", params={"lr": lr, "seed": seed}, seed=seed)
        for step in range(4):
            st.log_metrics(rid, {"loss": (1 + seed * 0.1) / (step + 1) + lr, "accuracy": 0.6 + 0.1 * step - lr},
                           step=step)
        st.end_run(rid)
        ids.append(rid)
    other = st.start_run("other", name="x")
    st.end_run(other, "failed")
    return st, ids, other


def test_experiment_runs_lists_and_filters(store):
    st, ids, other = store
    res = run_node(ExperimentRunsNode, {"store": str(st.path)})
    df = res.outputs[0].to_pandas()
    assert list(df["id"]) == [other] + ids[::-1] and res.outputs[0].schema == res.specs[0]
    row = df[df["id"] == ids[0]].iloc[0]
    assert row["status"] == "finished" and row["seed"] == 0 and json.loads(row["params"]) == {"lr": 0.1, "seed": 0}
    assert json.loads(row["last_metrics"])["loss"] == pytest.approx(1 / 4 + 0.1)
    df = run_node(ExperimentRunsNode, {"store": str(st.path), "project": "digits", "name_contains": "S1"}).outputs[0]
    assert list(df.to_pandas()["id"]) == [ids[1]]
    df = run_node(ExperimentRunsNode, {"store": str(st.path), "status": "failed"}).outputs[0].to_pandas()
    assert list(df["id"]) == [other]


def test_default_store_is_in_the_workflow_data_area(tmp_path):
    ctx = make_exec_context(ExperimentRunsNode, workflow_dir=str(tmp_path / "wf"))
    area = ctx.get_workflow_data_area_dir()
    ExperimentStore(f"{area}/experiments.sqlite").start_run("p", name="in-area")
    df = run_node(ExperimentRunsNode, {}, context=ctx).outputs[0].to_pandas()
    assert list(df["name"]) == ["in-area"]


def test_compare_runs_summaries_groups_and_a_real_curves_png(store):
    st, ids, _ = store
    runs = run_node(ExperimentRunsNode, {"store": str(st.path), "project": "digits"}).outputs[0]
    res = run_node(CompareRunsNode, {"store": str(st.path)}, [runs])
    summary, groups = res.outputs[0].to_pandas(), res.outputs[1].to_pandas()
    loss = summary[(summary["metric"] == "loss") & (summary["run_id"] == str(ids[0]))].iloc[0]
    assert loss["best"] == pytest.approx(0.25 + 0.1) and loss["direction"] == "min" and loss["steps"] == 4
    acc = summary[(summary["metric"] == "accuracy") & (summary["run_id"] == str(ids[2]))].iloc[0]
    assert acc["best"] == pytest.approx(0.9 - 0.01) and acc["direction"] == "max"
    g = groups[(groups["metric"] == "loss") & (groups["n"] == 2)].iloc[0]  # lr 0.1 over seeds 0 and 1
    best = np.array([0.25 + 0.1, 1.1 / 4 + 0.1])
    assert g["mean"] == pytest.approx(best.mean()) and g["std"] == pytest.approx(best.std(ddof=1))
    png = res.view.render()  # what KNIME puts in reports: the PNG itself
    assert "base64" in res.view.html
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    px = np.asarray(img.convert("L"))
    assert img.size[0] > 400 and px.std() > 5


def test_compare_runs_errors(store):
    st, ids, _ = store
    with pytest.raises(knext.InvalidParametersError, match="connect a table of runs or type run ids"):
        configure_node(CompareRunsNode, {"store": str(st.path)}, [None])
    with pytest.raises(knext.InvalidParametersError, match="'x' is not one"):
        configure_node(CompareRunsNode, {"store": str(st.path), "run_ids": "1,x"}, [None])
    with pytest.raises(ValueError, match="no run 999"):
        run_node(CompareRunsNode, {"store": str(st.path), "run_ids": f"{ids[0]},999"}, [None])
    res = run_node(CompareRunsNode, {"store": str(st.path), "run_ids": f"{ids[0]},{ids[2]}", "metrics": "loss"}, [None])
    assert set(res.outputs[0].to_pandas()["metric"]) == {"loss"}


def test_train_model_records_its_runs_in_the_workflow_store(tmp_path):
    from knime_harness import table_from_pyarrow
    from nodes.graph_nodes import GraphInputNode
    from nodes.op_nodes import OP_NODE_FACTORIES
    from nodes.train_nodes import TrainModelNode
    from uop_engine.datasets import digits_table
    x = run_node(GraphInputNode, {"shape": "64"}).outputs[0]
    mlp = run_node(OP_NODE_FACTORIES["linear"], {"out_features": 10}, [x]).outputs[0]
    data = table_from_pyarrow(digits_table("vector", target="digit").slice(0, 300))
    wf = str(tmp_path / "wf")
    p = {"data": {"feature_columns": ["pixels"], "target_column": "digit"}, "sched": {"epochs": 2, "seed": 3},
         "tracking": {"project": "digits", "run_name": "mlp"}}
    res = run_node(TrainModelNode, p, [mlp, data], check_specs=False, workflow_dir=wf)
    rid = res.outputs[0].bundle.record["experiment_run_id"]
    runs = run_node(ExperimentRunsNode, {}, workflow_dir=wf).outputs[0].to_pandas()
    row = runs[runs["id"] == rid].iloc[0]
    assert row["project"] == "digits" and row["name"] == "mlp" and row["status"] == "finished" and row["seed"] == 3
    assert row["graph_hash"] == res.outputs[0].spec.data["graph_hash"] and row["data_fingerprint"]
    hist = res.outputs[1].to_pandas()
    st = ExperimentStore(next((tmp_path / "wf").rglob("experiments.sqlite")))  # in the workflow's data area
    assert [m["value"] for m in st.metric_history(rid, "loss")] == pytest.approx(hist["loss"].tolist())
    # a diverging run is recorded as failed, not finished
    bad = {**p, "optim": {"optimizer": "SGD", "lr": 1e38, "momentum": 0.0}}
    with pytest.raises(ValueError, match="NaN|nan|inf"):
        run_node(TrainModelNode, bad, [mlp, data], check_specs=False, workflow_dir=wf)
    assert st.list_runs(project="digits")[0]["status"] == "failed"
    # recording can be switched off
    n = len(st.list_runs())
    run_node(TrainModelNode, {**p, "tracking": {"record": False}}, [mlp, data], check_specs=False, workflow_dir=wf)
    assert len(st.list_runs()) == n
