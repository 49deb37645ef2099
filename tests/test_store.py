"""The SQLite experiment store: round trips, filters, transactions, a writer killed mid-run,
training records, git commits and the `tinyuop runs` views."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from uop_engine import GraphBuilder, TrainConfig, train
from uop_engine.store import ExperimentStore, StoreError, record_evaluation, record_training

ROOT = Path(__file__).resolve().parent.parent


def small_graph():
    g = GraphBuilder("tiny")
    g.linear(g.relu(g.linear(g.input((4,)), out_features=8)), out_features=3)
    return g.build()


def test_round_trip_of_a_run(tmp_path):
    st = ExperimentStore(tmp_path / "s.sqlite")
    art = tmp_path / "m.bin"
    art.write_bytes(b"12345")
    rid = st.start_run("proj", name="r1", params={"lr": 0.1, "nested": {"a": [1, 2]}}, tags={"kind": "train"},
                       graph=small_graph(), seed=7, data_fingerprint="abc", device="CPU")
    for step, v in enumerate([1.0, 0.5, float("nan")]):
        st.log_metric(rid, "loss", v, step=step)
    st.log_metrics(rid, {"accuracy": 0.9, "val_loss": 0.7}, step=3)
    st.log_params(rid, {"epochs": 3})
    st.log_artifact(rid, str(art), kind="model")
    child = st.start_run("proj", name="step", parent_id=rid)
    st.end_run(child, "finished")
    st.end_run(rid, "finished")
    st.close()
    run = ExperimentStore(tmp_path / "s.sqlite").get_run(rid)  # a fresh connection reads it all back
    assert run["status"] == "finished" and run["name"] == "r1" and run["project"] == "proj"
    assert run["params"] == {"lr": 0.1, "nested": {"a": [1, 2]}, "epochs": 3} and run["tags"] == {"kind": "train"}
    assert run["graph_hash"] == small_graph().hash() and json.loads(run["graph_json"])["name"] == "tiny"
    assert run["seed"] == 7 and run["data_fingerprint"] == "abc" and run["children"] == [child]
    assert run["env"]["device"] == "CPU" and run["env"]["python"] and "numpy" in run["env"]["packages"]
    assert run["metric_keys"] == ["accuracy", "loss", "val_loss"]
    assert run["artifacts"][0]["size"] == 5 and len(run["artifacts"][0]["sha256"]) == 64
    hist = ExperimentStore(tmp_path / "s.sqlite").metric_history(rid, "loss")
    assert [h["step"] for h in hist] == [0, 1, 2] and hist[0]["value"] == 1.0 and np.isnan(hist[2]["value"])
    assert run["end_time"] >= run["start_time"]


def test_list_filters_and_frame(tmp_path):
    st = ExperimentStore(tmp_path / "s.sqlite")
    ids = [st.start_run(p, name=n) for p, n in [("a", "Alpha"), ("a", "beta"), ("b", "alpha two")]]
    st.end_run(ids[0], "finished")
    st.end_run(ids[1], "failed")
    child = st.start_run("a", name="kid", parent_id=ids[0])
    assert [r["id"] for r in st.list_runs(project="a")] == [child, ids[1], ids[0]]  # newest first
    assert [r["id"] for r in st.list_runs(status="failed")] == [ids[1]]
    assert {r["id"] for r in st.list_runs(name_contains="ALPHA")} == {ids[0], ids[2]}
    assert [r["id"] for r in st.list_runs(parent_id=None, project="a")] == [ids[1], ids[0]]
    assert [r["id"] for r in st.list_runs(parent_id=ids[0])] == [child]
    assert len(st.list_runs(limit=2)) == 2
    df = st.runs_frame(project="a")
    assert list(df["id"]) == [child, ids[1], ids[0]] and "graph_json" not in df.columns


def test_errors_name_what_to_fix(tmp_path):
    st = ExperimentStore(tmp_path / "s.sqlite")
    with pytest.raises(StoreError, match="no run 99"):
        st.get_run(99)
    with pytest.raises(StoreError, match="not a run id"):
        st.get_run("abc")
    rid = st.start_run("p")
    with pytest.raises(StoreError, match="not a final run status"):
        st.end_run(rid, "done")
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the experiment store"):
        ExperimentStore(bad)


def test_a_failing_write_leaves_nothing_half_written(tmp_path):
    st = ExperimentStore(tmp_path / "s.sqlite")
    rid = st.start_run("p")
    with pytest.raises(TypeError):  # the second value cannot be stored: the whole batch is rolled back
        st.log_metrics(rid, {"a": 1.0, "b": object()}, step=0)
    assert st.metric_history(rid) == []


WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {src!r})
    from uop_engine.store import ExperimentStore
    st = ExperimentStore({db!r})
    done = st.start_run("p", name="earlier")
    for i in range(5):
        st.log_metric(done, "loss", 1.0 / (i + 1), step=i)
    st.end_run(done, "finished")
    rid = st.start_run("p", name="killed")
    i = 0
    while True:
        st.log_metric(rid, "loss", float(i), step=i)
        if i == 3:
            print(done, rid, flush=True)
        i += 1
        time.sleep(0.01)
""")


def test_a_writer_killed_mid_run_leaves_an_incomplete_run_and_earlier_runs_intact(tmp_path):
    db = str(tmp_path / "s.sqlite")
    p = subprocess.Popen([sys.executable, "-c", WRITER.format(src=str(ROOT / "src"), db=db)], stdout=subprocess.PIPE,
                         text=True)
    done, rid = map(int, p.stdout.readline().split())
    time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    st = ExperimentStore(db)
    killed = st.get_run(rid)
    assert killed["status"] == "incomplete" and killed["end_time"] is not None
    assert len(st.metric_history(rid, "loss")) >= 4  # what was written before the kill is kept
    earlier = st.get_run(done)
    assert earlier["status"] == "finished"
    assert [m["value"] for m in st.metric_history(done, "loss")] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert {r["status"] for r in st.list_runs(project="p")} == {"finished", "incomplete"}


def test_record_training_and_evaluation(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    res = train(small_graph(), X, y, TrainConfig(epochs=3, batch_size=16, seed=5))
    st = ExperimentStore(tmp_path / "s.sqlite")
    bundle = tmp_path / "m.tuop"
    res.bundle().save(bundle)
    rid = record_training(st, res, project="digits", name="mlp", artifacts=(bundle,))
    run = st.get_run(rid)
    assert run["status"] == "finished" and run["seed"] == 5 and run["graph_hash"] == small_graph().hash()
    assert run["data_fingerprint"] == res.record["data_fingerprint"]
    assert run["artifacts"][0]["kind"] == "model"
    # params are the hyperparameters only: no seed, no times/history/final metrics (those differ every run)
    assert run["params"] == {k: v for k, v in res.record["config"].items() if k not in ("seed", "checkpoint_dir")}
    assert run["params"]["epochs"] == 3 and not {"seed", "record", "config", "history"} & set(run["params"])
    assert run["tags"]["stopped"] == "completed" and run["tags"]["epochs_run"] == 3 and run["tags"]["n_train"] == 64
    assert run["tags"]["task"] == "classification" and run["env"]["device"] == res.record["device"]
    hist = st.metric_history(rid, "loss")
    assert [h["step"] for h in hist] == [1, 2, 3]
    assert [h["value"] for h in hist] == pytest.approx([e["loss"] for e in res.history])
    eid = record_evaluation(st, {"accuracy": 0.5, "per_class": {"0": {"f1": 0.4}}, "note": "x"}, project="digits",
                            parent_id=rid)
    assert st.get_run(eid)["last_metrics"] == {"accuracy": 0.5, "per_class/0/f1": 0.4}
    assert st.get_run(rid)["children"] == [eid]
    # with tags, the model's graph, the scored data's fingerprint and the scoring device
    fid = record_evaluation(st, {"mae": 0.25}, project="digits", name="scorer", tags={"columns": {"true": "y"}},
                            graph=small_graph(), data_fingerprint="f00d", device="CPU (numpy)")
    ev = st.get_run(fid)
    assert ev["tags"] == {"kind": "evaluation", "columns": {"true": "y"}} and ev["graph_hash"] == small_graph().hash()
    assert ev["data_fingerprint"] == "f00d" and ev["env"]["device"] == "CPU (numpy)" and ev["status"] == "finished"
    assert ev["last_metrics"] == {"mae": 0.25}


def test_git_commit_is_captured_inside_a_repository(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    st = ExperimentStore(tmp_path / "s.sqlite")
    assert st.get_run(st.start_run("p"))["env"]["git_commit"] == head
    monkeypatch.chdir(tmp_path)
    assert st.get_run(st.start_run("p"))["env"]["git_commit"] is None


def test_git_commit_of_the_workdir_when_it_is_in_a_repository_else_none(tmp_path, monkeypatch):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    heads = {}
    for name in ("workflows", "cwd"):
        repo = tmp_path / name
        repo.mkdir()
        for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", name]):
            subprocess.run(cmd, cwd=repo, check=True, env=env)
        heads[name] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                                     text=True).stdout.strip()
    assert heads["workflows"] != heads["cwd"]
    wf = tmp_path / "workflows" / "group" / "my workflow"
    wf.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    st = ExperimentStore(tmp_path / "s.sqlite", workdir=wf)  # a workflow folder inside the repository
    env_in = st.get_run(st.start_run("p"))["env"]
    assert env_in["git_commit"] == heads["workflows"] and env_in["git_dir"] == str(wf)
    # not in a repository: no commit, although the process's current folder is in an (unrelated) one
    st = ExperimentStore(tmp_path / "s.sqlite", workdir=outside)
    env_out = st.get_run(st.start_run("p"))["env"]
    assert env_out["git_commit"] is None and env_out["git_dir"] is None
    st = ExperimentStore(tmp_path / "s.sqlite", workdir=tmp_path / "gone")  # a folder that does not exist
    assert st.get_run(st.start_run("p"))["env"]["git_commit"] is None
    st = ExperimentStore(tmp_path / "s.sqlite")  # no workdir (a script): the current folder's commit
    assert st.get_run(st.start_run("p"))["env"]["git_commit"] == heads["cwd"]


def test_runs_commands_list_show_and_compare(tmp_path):
    db = tmp_path / "s.sqlite"
    st = ExperimentStore(db)
    ids = []
    for seed, offset in [(0, 0.0), (1, 0.1)]:
        rid = st.start_run("cmp", name=f"seed{seed}", params={"lr": 0.1, "seed": seed})
        for step in range(3):
            st.log_metrics(rid, {"loss": 1.0 / (step + 1) + offset, "accuracy": 0.5 + step / 10}, step=step)
        st.end_run(rid)
        ids.append(rid)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "uop_engine.cli", "runs", *map(str, a), "--store", str(db)],  # noqa: E731
                                    capture_output=True, text=True, env=env, timeout=120)
    r = run("list")
    assert r.returncode == 0 and "seed0" in r.stdout and "seed1" in r.stdout
    r = run("list", "--json")
    assert {x["id"] for x in json.loads(r.stdout)} == set(ids)
    r = run("show", ids[0])
    assert r.returncode == 0 and "loss: last 0.3333, best 0.3333 at step 2" in r.stdout
    r = run("compare", *ids, "--json")
    out = json.loads(r.stdout)
    best = {(x["run_id"], x["metric"]): x["best"] for x in out["summary"]}
    assert best[(str(ids[1]), "loss")] == pytest.approx(1 / 3 + 0.1)
    (group,) = [g for g in out["groups"] if g["metric"] == "loss"]
    assert group["n"] == 2 and group["mean"] == pytest.approx(1 / 3 + 0.05)
    r = run("show", 999)
    assert r.returncode == 2 and "no run 999" in r.stderr
