"""Train Model and Model Writer with experiment tracking, through the knime.extension double on
a real SQLite store: runs across seeds form one configuration in Compare Runs; each epoch lands
in the store while training runs (a process killed by SIGKILL mid-training leaves an incomplete
run with its epochs so far); failed runs keep their epochs; Model Writer attaches the written
file to the training run; the git commit comes from the workflow's folder."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from knime_harness import load_extension, make_exec_context, run_node, table_from_pyarrow
from uop_engine.store import ExperimentStore

load_extension()
from nodes.experiment_nodes import CompareRunsNode, ExperimentRunsNode  # noqa: E402
from nodes.graph_nodes import GraphInputNode  # noqa: E402
from nodes.model_io_nodes import ModelWriterNode  # noqa: E402
from nodes.op_nodes import OP_NODE_FACTORIES  # noqa: E402
from nodes.train_nodes import TrainModelNode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.8)
    return pa.table({**{f"f{i}": X[:, i] for i in range(4)}, "label": y})


@pytest.fixture(scope="module")
def mlp():
    x = run_node(GraphInputNode, {"shape": "4"}).outputs[0]
    h = run_node(OP_NODE_FACTORIES["linear"], {"out_features": 8}, [x]).outputs[0]
    h = run_node(OP_NODE_FACTORIES["relu"], {}, [h]).outputs[0]
    return run_node(OP_NODE_FACTORIES["linear"], {"out_features": 3}, [h]).outputs[0]


def params(store, seed=0, epochs=3, **extra):
    return {"data": {"feature_columns": ["f0", "f1", "f2", "f3"], "target_column": "label", "validation_split": 0.2},
            "optim": {"lr": 0.01}, "sched": {"epochs": epochs, "batch_size": 32, "seed": seed},
            "tracking": {"store": str(store), "project": "blobs", **extra}}


def test_three_seeds_of_train_model_are_one_configuration_in_compare_runs(mlp, tmp_path):
    db, table = tmp_path / "s.sqlite", table_from_pyarrow(blobs())
    histories = {}
    for seed in (0, 1, 2):
        r = run_node(TrainModelNode, params(db, seed), [mlp, table], check_specs=False)
        rid = r.outputs[0].bundle.record["experiment_run"]["run_id"]
        histories[rid] = r.outputs[1].to_pandas()
    st = ExperimentStore(db)
    for rid, hist in histories.items():
        run = st.get_run(rid)
        assert run["status"] == "finished" and "seed" not in run["params"] and run["params"]["lr"] == 0.01
        assert run["params"]["target"] == "label" and run["tags"]["epochs_run"] == 3
        assert [m["value"] for m in st.metric_history(rid, "val_loss")] == pytest.approx(hist["val_loss"].tolist())
    assert len({str(st.get_run(r)["params"]) for r in histories}) == 1  # identical params across seeds
    runs = run_node(ExperimentRunsNode, {"store": str(db)}).outputs[0]
    groups = run_node(CompareRunsNode, {"store": str(db), "metrics": "val_accuracy,val_loss"}, [runs]).outputs[1]
    df = groups.to_pandas()
    assert sorted(df["metric"]) == ["val_accuracy", "val_loss"] and set(df["n"]) == {3}
    for metric, pick in [("val_accuracy", np.max), ("val_loss", np.min)]:
        row = df[df["metric"] == metric].iloc[0]
        best = np.array([pick(histories[r][metric].to_numpy()) for r in sorted(histories)])
        assert row["mean"] == pytest.approx(best.mean()) and row["std"] == pytest.approx(best.std(ddof=1))


def test_failed_and_cancelled_runs_say_why_and_keep_their_epochs(mlp, tmp_path):
    db = tmp_path / "s.sqlite"
    p = params(db, epochs=3)
    p["optim"] = {"optimizer": "SGD", "lr": 1e38, "momentum": 0.0}
    with pytest.raises(ValueError, match="the loss became"):
        run_node(TrainModelNode, p, [mlp, table_from_pyarrow(blobs())], check_specs=False)
    (run,) = ExperimentStore(db).list_runs()
    assert run["status"] == "failed" and "the loss became" in run["tags"]["error"]
    ctx = make_exec_context(TrainModelNode, cancel_after=20)
    with pytest.raises(RuntimeError, match="canceled"):
        run_node(TrainModelNode, params(db, epochs=50), [mlp, table_from_pyarrow(blobs())], context=ctx,
                 check_specs=False)
    st = ExperimentStore(db)
    cancelled = st.list_runs()[0]
    assert cancelled["status"] == "cancelled" and "cancelled at epoch 3" in cancelled["tags"]["error"]
    assert [m["step"] for m in st.metric_history(cancelled["id"], "loss")] == [1, 2]  # 8 batches an epoch


KILLED = textwrap.dedent("""
    import os, sys
    sys.path[:0] = [{src!r}, {tests!r}, {double!r}]
    import numpy as np, pyarrow as pa
    from knime_harness import load_extension, run_node, table_from_pyarrow
    load_extension()
    from nodes.graph_nodes import GraphInputNode
    from nodes.op_nodes import OP_NODE_FACTORIES
    from nodes.train_nodes import TrainModelNode
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    table = table_from_pyarrow(pa.table({{**{{f"f{{i}}": X[:, i] for i in range(4)}}, "label": (X[:, 0] > 0) * 1}}))
    x = run_node(GraphInputNode, {{"shape": "4"}}).outputs[0]
    mlp = run_node(OP_NODE_FACTORIES["linear"], {{"out_features": 2}}, [x]).outputs[0]
    p = {{"data": {{"feature_columns": ["f0", "f1", "f2", "f3"], "target_column": "label"}},
         "sched": {{"epochs": 2, "batch_size": 50}}, "tracking": {{"store": {db!r}, "run_name": "earlier"}}}}
    run_node(TrainModelNode, p, [mlp, table], check_specs=False)
    p["sched"]["epochs"], p["tracking"]["run_name"] = 100000, "killed"
    run_node(TrainModelNode, p, [mlp, table], check_specs=False)
""")


def test_a_training_process_killed_mid_run_leaves_an_incomplete_run_with_its_epochs(tmp_path):
    db = str(tmp_path / "s.sqlite")
    script = KILLED.format(src=str(ROOT / "src"), tests=str(ROOT / "tests"),
                           double=str(ROOT / "tests" / "knime_double"), db=db)
    env = {**os.environ, "TINYUOP_BLOCK_LIBRARY": str(tmp_path / "blocks"), "TINYUOP_STORE": str(tmp_path / "x.sqlite")}
    p = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    try:
        killed, deadline = None, time.time() + 120
        while time.time() < deadline and p.poll() is None:  # wait for the long run's first logged epochs
            if os.path.exists(db):
                st = ExperimentStore(db)
                running = st.list_runs(status="running", name_contains="killed")
                if running and len(st.metric_history(running[0]["id"], "loss")) >= 2:
                    killed = running[0]["id"]
                    break
                st.close()
            time.sleep(0.2)
        assert killed is not None, p.stderr.read() if p.poll() is not None else "no epoch logged within 120 s"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    st = ExperimentStore(db)  # opening the store marks runs of dead writers incomplete
    run = st.get_run(killed)
    assert run["status"] == "incomplete" and run["end_time"] is not None and run["params"]["epochs"] == 100000
    steps = [m["step"] for m in st.metric_history(killed, "loss")]
    assert len(steps) >= 2 and steps == list(range(1, len(steps) + 1))  # every epoch up to the kill, in order
    (earlier,) = st.list_runs(name_contains="earlier")
    assert earlier["status"] == "finished" and [m["step"] for m in st.metric_history(earlier["id"], "loss")] == [1, 2]


def test_model_writer_attaches_the_file_to_the_training_run(mlp, tmp_path):
    db = tmp_path / "s.sqlite"
    model = run_node(TrainModelNode, params(db, epochs=1), [mlp, table_from_pyarrow(blobs())],
                     check_specs=False).outputs[0]
    rid = model.bundle.record["experiment_run"]["run_id"]
    assert model.bundle.record["experiment_run"]["store"] == str(db)
    path = tmp_path / "m.tuop"
    run_node(ModelWriterNode, {"path": str(path)}, [model])
    (art,) = ExperimentStore(db).get_run(rid)["artifacts"]
    import hashlib
    assert art["path"] == str(path) and art["kind"] == "model" and art["size"] == path.stat().st_size
    assert art["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    run_node(ModelWriterNode, {"path": str(tmp_path / "off.tuop"), "record": False}, [model])
    assert len(ExperimentStore(db).get_run(rid)["artifacts"]) == 1  # recording switched off: nothing added
    untracked = run_node(TrainModelNode, {**params(db, epochs=1), "tracking": {"record": False}},
                         [mlp, table_from_pyarrow(blobs())], check_specs=False).outputs[0]
    res = run_node(ModelWriterNode, {"path": str(tmp_path / "u.tuop")}, [untracked])
    assert (tmp_path / "u.tuop").is_file() and res.warnings == []
    os.remove(db)
    res = run_node(ModelWriterNode, {"path": str(tmp_path / "gone.tuop")}, [model])
    assert any("no longer exists" in w for w in res.warnings)


def test_runs_record_the_git_commit_of_the_workflow_folder(mlp, tmp_path, monkeypatch):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    repo = tmp_path / "workflows"
    repo.mkdir()
    for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "wf"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    wf = repo / "project" / "Training"
    ctx = make_exec_context(TrainModelNode, workflow_dir=str(wf))
    p = params("", epochs=1)
    run_node(TrainModelNode, p, [mlp, table_from_pyarrow(blobs())], context=ctx, check_specs=False)
    (run,) = ExperimentStore(wf / "data" / "experiments.sqlite").list_runs()  # the store in the data area
    assert run["env"]["git_commit"] == head and run["env"]["git_dir"] == str(wf)
    # a workflow outside any repository: no commit, although this process's current folder is in one
    monkeypatch.chdir(repo)
    outside = tmp_path / "elsewhere" / "wf"
    ctx = make_exec_context(TrainModelNode, workflow_dir=str(outside))
    run_node(TrainModelNode, p, [mlp, table_from_pyarrow(blobs())], context=ctx, check_specs=False)
    (run,) = ExperimentStore(outside / "data" / "experiments.sqlite").list_runs()
    assert run["env"]["git_commit"] is None and run["env"]["git_dir"] is None


def _refuse_metrics(db):
    """A store whose metric writes fail, as SQLite fails them (a trigger aborting every insert)."""
    import sqlite3
    ExperimentStore(db).close()
    with sqlite3.connect(db) as c:
        c.execute("CREATE TRIGGER refuse BEFORE INSERT ON metrics BEGIN SELECT RAISE(ABORT, 'disk is full'); END")


def test_a_failing_store_write_warns_once_and_training_goes_on(mlp, tmp_path):
    from uop_engine.train import TrainConfig, train
    from uop_engine.training_run import CrossValidationRun, TrainingRun
    from uop_engine.crossval import cross_validate
    db = tmp_path / "s.sqlite"
    _refuse_metrics(db)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)  # the graph scores 3 classes
    cfg = TrainConfig(epochs=3, batch_size=20, lr=0.05)
    graph = mlp.graph
    warned = []
    st = ExperimentStore(db)
    run = TrainingRun(st, cfg, project="p", graph=graph, warn=warned.append)
    res = train(graph, X, y, cfg, on_epoch=run.epoch)
    run.finish(res)
    assert len(res.history) == 3 and len(warned) == 1  # every epoch failed to land; one warning
    assert warned[0].startswith(f"the experiment store {db} could not record epoch 1's metrics of run {run.id} "
                                "(IntegrityError: disk is full); training went on")
    rec = st.get_run(run.id)
    assert rec["status"] == "finished" and rec["tags"]["epochs_run"] == 3 and st.metric_history(run.id) == []
    # cross-validation: folds trained and scored, one warning for all of them
    warned.clear()
    cv = CrossValidationRun(st, cfg, k=3, stratified=True, split_seed=0, project="p", graph=graph, warn=warned.append)
    cv.finish(cross_validate(graph, X, y, cfg, k=3, listener=cv))
    assert len(warned) == 1 and "could not record epoch 1's metrics" in warned[0]
    assert [st.get_run(c)["status"] for c in st.get_run(cv.id)["children"]] == ["finished"] * 3
    # Train Model: the model and metrics come out, the warning says the record is incomplete
    r = run_node(TrainModelNode, params(db, epochs=2), [mlp, table_from_pyarrow(blobs())], check_specs=False)
    assert r.outputs[1].num_rows == 2 and len(r.warnings) == 1
    assert "could not record epoch 1's metrics" in r.warnings[0] and "training went on" in r.warnings[0]
    rid = r.outputs[0].bundle.record["experiment_run_id"]
    assert ExperimentStore(db).get_run(rid)["status"] == "finished"
