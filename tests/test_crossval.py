"""k-fold cross-validation: split properties, a 5-fold digits CNN with mean +- std, the node."""
import time

import numpy as np
import pytest

from uop_engine import GraphBuilder, TrainConfig
from uop_engine.crossval import cross_validate, cross_validate_table, fold_indices
from uop_engine.datasets import digits_table
from uop_engine.errors import DataError


@pytest.mark.parametrize("stratified", [True, False])
def test_every_row_is_in_exactly_one_test_fold_and_splits_are_seeded(stratified):
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    splits = fold_indices(y, 5, stratified, seed=3)
    tests = np.concatenate([te for _, te in splits])
    assert sorted(tests.tolist()) == list(range(100))
    for tr, te in splits:
        assert not set(tr) & set(te) and len(tr) + len(te) == 100
        if stratified:  # each class keeps its share in every test fold
            assert np.bincount(y[te], minlength=4).tolist() == [2, 4, 6, 8]
    again = fold_indices(y, 5, stratified, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(splits, again))
    assert not all((a[1] == b[1]).all() for a, b in zip(splits, fold_indices(y, 5, stratified, seed=4)))


def test_split_errors():
    with pytest.raises(DataError, match="class '1' has 2 row"):
        fold_indices([0, 0, 0, 1, 1, 0], 3, True)
    with pytest.raises(DataError, match="at least 2 folds"):
        fold_indices([0, 1], 1)


def digits_cnn():
    g = GraphBuilder("digits_cv")
    h = g.conv_block(g.input((1, 8, 8)), out_channels=8, pool="max")
    g.linear(g.flatten(h), out_features=10)
    return g.build()


def test_five_fold_digits_cnn_reports_mean_and_std():
    from sklearn.datasets import load_digits
    d = load_digits()
    X, y = (d.images / 16.0).astype(np.float32)[:, None], d.target
    t0 = time.perf_counter()
    seen = []
    res = cross_validate(digits_cnn(), X, y, TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0), k=5,
                         progress=lambda f, m: seen.append(f))
    took = time.perf_counter() - t0
    print(f"5-fold digits CNN: {res.text()} in {took:.1f} s")
    assert took < 90 and len(res.folds) == 5 and sum(f["test_rows"] for f in res.folds) == len(y)
    acc = np.array([f["accuracy"] for f in res.folds])
    assert res.summary["accuracy"]["mean"] == pytest.approx(acc.mean()) and acc.mean() > 0.85
    assert res.summary["accuracy"]["std"] == pytest.approx(acc.std(ddof=1))
    assert res.summary["macro_f1"]["mean"] > 0.85 and 0 < res.summary["kappa"]["mean"] <= 1
    assert seen and max(seen) <= 1.0 and res.frame().shape[0] == 5


def test_table_cross_validation_and_cancel():
    table = digits_table("vector").slice(0, 400)
    g = GraphBuilder("mlp")
    g.linear(g.input((64,)), out_features=10)
    res = cross_validate_table(g.build(), table, {"inputs": {"x": ["pixels"]}, "target": "label"},
                               TrainConfig(epochs=2, batch_size=64, seed=1), k=3)
    again = cross_validate_table(g.build(), table, {"inputs": {"x": ["pixels"]}, "target": "label"},
                                 TrainConfig(epochs=2, batch_size=64, seed=1), k=3)
    assert res.folds == again.folds  # seeded: identical numbers
    from uop_engine.train import TrainingCancelled
    with pytest.raises(TrainingCancelled):
        cross_validate_table(g.build(), table, {"inputs": {"x": ["pixels"]}, "target": "label"},
                             TrainConfig(epochs=2), k=3, should_stop=lambda: True)


def test_pipeline_cross_validate_step_uses_the_same_folds(tmp_path):
    from uop_engine.pipeline import loads_pipeline, run_pipeline
    text = """
name = "cv"
[[steps]]
name = "data"
type = "dataset"
params = { name = "digits", limit = 300, seed = 0 }
[[steps]]
name = "cv"
type = "cross_validate"
[steps.params]
data = "${data.data}"
graph = [ { op = "flatten" }, { op = "linear", out_features = 10 } ]
folds = 3
epochs = 2
"""
    res = run_pipeline(loads_pipeline(text, base_dir=tmp_path), out=tmp_path / "out", store=tmp_path / "s.sqlite",
                       progress="none")
    out = res.outputs["cv"]
    acc = np.array([f["accuracy"] for f in out["folds"]])
    assert len(acc) == 3 and out["metrics"]["accuracy_mean"] == pytest.approx(acc.mean())
    assert out["metrics"]["accuracy_std"] == pytest.approx(acc.std(ddof=1))


def test_cross_validation_node_through_the_harness(tmp_path):
    from knime_harness import configure_node, load_extension, run_node, table_from_pyarrow
    load_extension()
    import knime.extension as knext
    from nodes.crossval_node import CrossValidationNode
    from nodes.graph_nodes import GraphInputNode
    from nodes.op_nodes import OP_NODE_FACTORIES
    x = run_node(GraphInputNode, {"shape": "64"}).outputs[0]
    mlp = run_node(OP_NODE_FACTORIES["linear"], {"out_features": 10}, [x]).outputs[0]
    data = table_from_pyarrow(digits_table("vector", target="digit").slice(0, 450))
    p = {"folds": {"k": 3}, "data": {"feature_columns": ["pixels"], "target_column": "digit"},
         "sched": {"epochs": 2, "batch_size": 64}}
    wf = str(tmp_path / "wf")
    res = run_node(CrossValidationNode, p, [mlp, data], workflow_dir=wf)
    folds, summary = res.outputs[0].to_pandas(), res.outputs[1].to_pandas()
    assert len(folds) == 3 and folds["test_rows"].sum() == 450
    acc = summary[summary["metric"] == "accuracy"].iloc[0]
    assert acc["mean"] == pytest.approx(folds["accuracy"].mean()) and acc["std"] == pytest.approx(folds["accuracy"].std())
    # every score the engine computes per fold is a column (and matches the summary)
    assert list(folds.columns) == ["fold", "train_rows", "test_rows", "epochs", "loss", "accuracy", "macro_f1",
                                   "weighted_f1", "kappa"]
    assert res.outputs[0].schema == res.specs[0]
    for m in ("macro_f1", "weighted_f1", "kappa"):
        row = summary[summary["metric"] == m].iloc[0]
        assert folds[m].notna().all() and row["mean"] == pytest.approx(folds[m].mean())
    assert (folds["kappa"] < folds["accuracy"]).all()  # chance-corrected agreement is below raw accuracy
    from uop_engine.store import ExperimentStore
    st = ExperimentStore(next((tmp_path / "wf").rglob("experiments.sqlite")))
    (parent,) = st.list_runs(parent_id=None)
    run = st.get_run(parent["id"])
    assert run["status"] == "finished" and len(run["children"]) == 3
    assert run["params"]["k"] == 3 and run["params"]["epochs"] == 2 and "seed" not in run["params"]
    assert run["last_metrics"]["macro_f1_mean"] == pytest.approx(folds["macro_f1"].mean())
    for child, fold in zip(run["children"], folds.itertuples()):
        kid = st.get_run(child)
        assert kid["status"] == "finished" and kid["seed"] == fold.fold and kid["tags"]["fold"] == fold.fold
        assert [h["step"] for h in st.metric_history(child, "loss")] == [1, 2]  # per-epoch training history
        assert kid["last_metrics"]["test_kappa"] == pytest.approx(fold.kappa)
        assert kid["last_metrics"]["test_accuracy"] == pytest.approx(fold.accuracy)
    cols = {loss: [c.name for c in configure_node(CrossValidationNode, {**p, "optim": {"loss": loss}},
                                                  [mlp.spec, data.schema]).specs[0]][5:]
            for loss in ("BINARY_CROSS_ENTROPY", "MSE")}
    assert cols == {"BINARY_CROSS_ENTROPY": ["accuracy", "macro_f1", "weighted_f1", "kappa", "auc"],
                    "MSE": ["mse", "rmse", "mae", "r2"]}
    with pytest.raises(knext.InvalidParametersError, match="nope"):
        configure_node(CrossValidationNode, {**p, "data": {"feature_columns": ["pixels"], "target_column": "nope"}},
                       [mlp.spec, data.schema])


def test_fold_sizes_match_sklearn():
    from sklearn.model_selection import KFold, StratifiedKFold
    y = np.random.default_rng(0).integers(0, 3, 103)
    ours = fold_indices(y, 4, False, seed=0)
    ref = list(KFold(4, shuffle=True, random_state=0).split(y))
    assert sorted(len(te) for _, te in ours) == sorted(len(te) for _, te in ref) == [25, 26, 26, 26]
    strat = fold_indices(y, 4, True, seed=0)
    share = np.bincount(y, minlength=3) / len(y)
    for _, te in strat:  # every class within one row of its exact share
        assert np.all(np.abs(np.bincount(y[te], minlength=3) - share * len(te)) < 1.0 + 1e-9)
    assert sorted(np.concatenate([te for _, te in strat]).tolist()) == list(range(103))
    assert [sorted(te.tolist()) for _, te in strat] == \
        [sorted(te.tolist()) for _, te in StratifiedKFold(4, shuffle=True, random_state=0).split(y, y)]


def _mlp(n_in, n_out):
    g = GraphBuilder("mlp")
    g.linear(g.input((n_in,)), out_features=n_out)
    return g.build()


def test_fold_scores_equal_sklearn_on_the_fold_predictions_and_metric_fn():
    """Every fold's numbers come from metrics.py on predict()'s outputs: recompute them with sklearn."""
    from sklearn import metrics as sk
    from uop_engine.predict import predict
    rng = np.random.default_rng(0)
    X = rng.standard_normal((240, 6)).astype(np.float32)
    y = np.array(["a", "b", "c"], dtype=object)[(X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)]
    seen = []

    def top2(y_true, outputs):
        seen.append(outputs.shape)
        return {"n_test": len(y_true)}
    res = cross_validate(_mlp(6, 3), X, y, TrainConfig(epochs=3, batch_size=32, lr=1e-2), k=3, metric_fn=top2)
    assert res.classes == ["a", "b", "c"] and seen == [(80, 3)] * 3
    assert [f["n_test"] for f in res.folds] == [80, 80, 80]
    from uop_engine.train import Trainer
    for f, (tr, te) in zip(res.folds, fold_indices(y, 3, True, 0)):  # retrain fold f with its seed: same model
        t = Trainer(_mlp(6, 3), TrainConfig(epochs=3, batch_size=32, lr=1e-2, seed=f["fold"]), classes=res.classes)
        t.fit(X[tr], y[tr])
        pred = np.array(res.classes, dtype=object)[predict(t.model, X[te]).argmax(1)]
        assert f["accuracy"] == pytest.approx(sk.accuracy_score(y[te], pred))
        assert f["macro_f1"] == pytest.approx(sk.f1_score(y[te], pred, average="macro", zero_division=0))
        assert f["kappa"] == pytest.approx(sk.cohen_kappa_score(y[te], pred))
    with pytest.raises(DataError, match="metric_fn must return a dict"):
        cross_validate(_mlp(6, 3), X, y, TrainConfig(epochs=1), k=2, metric_fn=lambda t, o: 0.5)


def test_regression_and_a_fold_source():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.standard_normal(200)).astype(np.float32)[:, None]
    cfg = TrainConfig(loss="mse", epochs=30, batch_size=32, lr=3e-2)
    res = cross_validate(_mlp(4, 1), X, y, cfg, k=4)
    assert {"mse", "rmse", "mae", "r2", "loss"} <= set(res.summary) and res.summary["r2"]["mean"] > 0.9
    for f in res.folds:
        assert f["rmse"] == pytest.approx(np.sqrt(f["mse"])) and f["loss"] == pytest.approx(f["mse"], rel=1e-4)
    calls = []

    def source():  # yields the same folds lazily
        for tr, te in fold_indices(y[:, 0], 4, False, 0):
            calls.append(len(te))
            yield X[tr], y[tr], X[te], y[te]
    fractions = []
    lazy = cross_validate(_mlp(4, 1), source, None, cfg, k=4, progress=lambda f, m: fractions.append(f))
    assert calls == [50] * 4 and lazy.folds == res.folds and fractions[-1] == 1.0
    assert all(0 <= a <= b <= 1 for a, b in zip(fractions, fractions[1:]))
    with pytest.raises(DataError, match="leave y empty"):
        cross_validate(_mlp(4, 1), source, y, cfg)
    with pytest.raises(DataError, match="X has 200 rows but y has 199"):
        cross_validate(_mlp(4, 1), X, y[:-1], cfg)
    with pytest.raises(DataError, match="gave 1 fold"):
        cross_validate(_mlp(4, 1), lambda: [(X[:100], y[:100], X[100:], y[100:])], None, cfg)


def test_cancel_between_folds_and_binary_auc():
    from uop_engine.train import TrainingCancelled
    rng = np.random.default_rng(2)
    X = rng.standard_normal((120, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)[:, None]
    res = cross_validate(_mlp(3, 1), X, y[:, 0], TrainConfig(loss="binary_cross_entropy", epochs=5, lr=3e-2), k=3)
    assert all(0.5 < f["auc"] <= 1 for f in res.folds) and res.summary["accuracy"]["mean"] > 0.7
    calls = []

    def stop_after_first_fold():
        calls.append(1)
        return len(res.folds) and len(calls) > 10  # lets fold 1 start, then asks to stop
    with pytest.raises(TrainingCancelled, match="cancelled"):
        cross_validate(_mlp(3, 1), X, y[:, 0], TrainConfig(loss="binary_cross_entropy", epochs=2), k=3,
                       should_stop=stop_after_first_fold)


def test_folds_are_recorded_live_and_a_cancelled_fold_keeps_its_epochs(tmp_path):
    from uop_engine.store import ExperimentStore
    from uop_engine.train import TrainingCancelled
    from uop_engine.training_run import CrossValidationRun
    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    cfg = TrainConfig(epochs=3, batch_size=20, lr=0.05)
    st = ExperimentStore(tmp_path / "s.sqlite")
    run = CrossValidationRun(st, cfg, k=3, stratified=True, split_seed=0, project="cv", graph=_mlp(4, 2))
    seen = []

    class Spy(type(run)):  # the store listener, also noting the order of the hooks
        def epoch(self, fold, metrics):
            seen.append((fold, metrics["epoch"], st.get_run(self.folds[fold].id)["status"]))
            super().epoch(fold, metrics)
    run.__class__ = Spy
    res = cross_validate(_mlp(4, 2), X, y, cfg, k=3, listener=run)
    run.finish(res)
    assert seen == [(f, e, "running") for f in range(3) for e in (1, 2, 3)]  # logged while the fold trains
    parent = st.get_run(run.id)
    for child, fold in zip(parent["children"], res.folds):
        assert [h["value"] for h in st.metric_history(child, "loss")] == \
            pytest.approx([h["loss"] for h in res.records[fold["fold"]]["history"]])
        assert st.get_run(child)["last_metrics"]["test_macro_f1"] == pytest.approx(fold["macro_f1"])
    calls = []
    run = CrossValidationRun(st, cfg, k=3, stratified=True, split_seed=0, project="cv", graph=_mlp(4, 2))
    with pytest.raises(TrainingCancelled):  # 3 batches an epoch: stops in fold 2's second epoch
        cross_validate(_mlp(4, 2), X, y, cfg, k=3, listener=run, should_stop=lambda: calls.append(1) or len(calls) > 14)
    run.end("cancelled", "stopped by the test")
    kids = [st.get_run(c) for c in st.get_run(run.id)["children"]]
    assert [k["status"] for k in kids] == ["finished", "cancelled"] and st.get_run(run.id)["status"] == "cancelled"
    assert [h["step"] for h in st.metric_history(kids[1]["id"], "loss")] == [1]
    assert "cancelled at epoch 2" in kids[1]["tags"]["error"]
