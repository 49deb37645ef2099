"""Run comparison: per-metric summaries and seed groups against numpy, curves rendered to PNG."""
import io

import numpy as np
import pytest
from PIL import Image

from uop_engine.compare import RunCurves, config_key, curves_png, grouped_rows, minimise, summary_rows

R = np.random.default_rng(0)


def make_runs():
    runs = []
    for i, (lr, seed) in enumerate([(0.1, 0), (0.1, 1), (0.1, 2), (0.01, 0), (0.01, 1)]):
        loss = np.sort(R.random(6))[::-1] + lr
        acc = np.sort(R.random(6))
        runs.append(RunCurves(str(i + 1), f"lr{lr}", {"lr": lr, "seed": seed, "optim": {"name": "adam", "seed": seed}},
                              {"loss": list(enumerate(loss.tolist())), "accuracy": list(enumerate(acc.tolist()))}))
    return runs


def test_direction_by_metric_name():
    assert minimise("val_loss") and minimise("rmse") and minimise("mae")
    assert not minimise("accuracy") and not minimise("f1_macro") and not minimise("r2") and not minimise("auc")


def test_summary_rows_match_numpy():
    runs = make_runs()
    rows = {(r["run_id"], r["metric"]): r for r in summary_rows(runs)}
    for run in runs:
        for key, pts in run.history.items():
            v = np.array([p[1] for p in pts])
            row = rows[(run.id, key)]
            assert row["min"] == v.min() and row["max"] == v.max() and row["last"] == v[-1] and row["steps"] == 6
            assert row["best"] == (v.min() if key == "loss" else v.max())
            assert row["best_step"] == int(v.argmin() if key == "loss" else v.argmax())


def test_non_finite_values_are_ignored_for_best_but_last_is_kept():
    r = RunCurves("1", history={"loss": [(0, 2.0), (1, float("nan")), (2, 1.0), (3, float("inf"))]})
    (row,) = summary_rows([r])
    assert row["best"] == 1.0 and row["max"] == 2.0 and row["best_step"] == 2 and np.isinf(row["last"])


def test_groups_ignore_seeds_and_give_mean_and_sample_std():
    runs = make_runs()
    assert config_key(runs[0].params) == config_key(runs[1].params) != config_key(runs[3].params)
    rows = grouped_rows(runs, metrics=["accuracy"])
    assert len(rows) == 2
    for row in rows:
        members = [r for r in runs if r.id in row["runs"].split(",")]
        best = np.array([max(v for _, v in r.history["accuracy"]) for r in members])
        assert row["n"] == len(members) and row["mean"] == pytest.approx(best.mean())
        assert row["std"] == pytest.approx(best.std(ddof=1))
    last = grouped_rows(runs, metrics=["loss"], value="last")
    assert {r["n"] for r in last} == {3, 2}


def test_curves_png_is_a_real_non_blank_image():
    png = curves_png(make_runs())
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size[0] >= 600 and img.size[1] >= 250
    px = np.asarray(img.convert("L"))
    assert px.std() > 5 and (px < 128).mean() > 0.005  # lines and text, not a blank canvas
    with pytest.raises(ValueError, match="no metric history"):
        curves_png([RunCurves("1")])


def test_real_training_runs_across_seeds_form_one_configuration(tmp_path):
    """Three real training runs differing only in seed (plus two at another learning rate),
    recorded with record_training: one configuration of n=3 whose mean +- std is numpy's."""
    from uop_engine import GraphBuilder, TrainConfig, train
    from uop_engine.runs_view import load_curves
    from uop_engine.store import ExperimentStore, record_training
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    g = GraphBuilder("tiny")
    g.linear(g.relu(g.linear(g.input((5,)), out_features=8)), out_features=3)
    graph = g.build()
    st = ExperimentStore(tmp_path / "s.sqlite")
    ids, hist = {}, {}
    for lr, seed in [(0.01, 0), (0.01, 1), (0.01, 2), (0.05, 0), (0.05, 1)]:
        res = train(graph, X, y, TrainConfig(epochs=3, batch_size=32, lr=lr, seed=seed, validation_split=0.2))
        rid = record_training(st, res, project="p", name=f"lr{lr}")
        ids[(lr, seed)], hist[rid] = rid, res.history
    runs = load_curves(st, list(ids.values()))
    rows = grouped_rows(runs, metrics=["val_accuracy", "loss"])
    assert sorted(r["n"] for r in rows if r["metric"] == "loss") == [2, 3]  # two configurations, not five
    for metric, pick in [("val_accuracy", max), ("loss", min)]:
        (row,) = [r for r in rows if r["metric"] == metric and r["n"] == 3]
        members = [ids[(0.01, s)] for s in range(3)]
        assert row["runs"].split(",") == [str(i) for i in members]
        best = np.array([pick(h[metric] for h in hist[i]) for i in members])
        assert row["mean"] == pytest.approx(best.mean()) and row["std"] == pytest.approx(best.std(ddof=1))
        assert row["std"] > 0  # the seeds really gave different runs


def test_run_specific_fields_of_older_records_do_not_split_configurations():
    a = {"config": {"lr": 0.1, "seed": 0}, "record": {"started": "x", "seconds": 1.5, "final_metrics": {"loss": 1}}}
    b = {"config": {"lr": 0.1, "seed": 1}, "record": {"started": "y", "seconds": 2.5, "final_metrics": {"loss": 2}}}
    c = {"config": {"lr": 0.2, "seed": 0}, "record": {"started": "x", "seconds": 1.5}}
    assert config_key(a) == config_key(b) != config_key(c)
    assert config_key({"lr": 0.1, "split_seed": 3, "fold": 1}) == config_key({"lr": 0.1, "split_seed": 4, "fold": 2})
