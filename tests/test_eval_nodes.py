"""Classification Scorer, ROC / Precision-Recall and Regression Scorer through the knime.extension
double; numbers against scikit-learn, views decoded, bad columns refused in configure."""
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn import metrics as sk

import knime.extension as knext
from knime_harness import configure_node, load_extension, run_node, table_from_pandas

load_extension()
from nodes.eval_nodes import ClassificationScorerNode, RegressionScorerNode, RocNode  # noqa: E402

R = np.random.default_rng(0)


def png_ok(view):
    img = Image.open(io.BytesIO(view.render()))
    return img.format == "PNG" and np.asarray(img.convert("L")).std() > 5


@pytest.fixture
def preds():
    t = R.integers(0, 3, 200)
    logits = R.standard_normal((200, 3)) + 1.2 * np.eye(3)[t]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array(["a", "b", "c"])
    df = pd.DataFrame({"y": labels[t], "Prediction (y)": labels[prob.argmax(1)],
                       **{f"P (y={c})": prob[:, j] for j, c in enumerate(labels)}, "other": R.random(200)})
    return df, t, prob


def test_scorer_matches_sklearn_and_shows_the_confusion_matrix(preds, tmp_path):
    df, t, prob = preds
    res = run_node(ClassificationScorerNode, {"true_column": "y", "predicted_column": "Prediction (y)"},
                   [table_from_pandas(df)], workflow_dir=str(tmp_path / "wf"))
    scores, cm = res.outputs[0].to_pandas(), res.outputs[1].to_pandas()
    P, Rc, F, S = sk.precision_recall_fscore_support(df["y"], df["Prediction (y)"], zero_division=0)
    per = scores.iloc[:3]
    assert list(per["class"]) == ["a", "b", "c"]
    np.testing.assert_allclose(per["precision"], P)
    np.testing.assert_allclose(per["recall"], Rc)
    np.testing.assert_allclose(per["f1"], F)
    assert per["support"].tolist() == S.tolist()
    overall = scores[scores["class"] == "(overall)"].iloc[0]
    assert overall["accuracy"] == pytest.approx(sk.accuracy_score(df["y"], df["Prediction (y)"]))
    assert overall["kappa"] == pytest.approx(sk.cohen_kappa_score(df["y"], df["Prediction (y)"]))
    macro = scores[scores["class"] == "(macro average)"].iloc[0]
    assert macro["f1"] == pytest.approx(sk.f1_score(df["y"], df["Prediction (y)"], average="macro"))
    assert cm[["a", "b", "c"]].to_numpy().tolist() == sk.confusion_matrix(df["y"], df["Prediction (y)"]).tolist()
    assert png_ok(res.view)
    from uop_engine.store import ExperimentStore
    st = ExperimentStore(next((tmp_path / "wf").rglob("experiments.sqlite")))
    (run,) = st.list_runs()
    assert run["name"] == "Classification Scorer" and st.last_metrics(run["id"])["accuracy"] == overall["accuracy"]


def test_roc_node_one_vs_rest_and_binary(preds):
    df, t, prob = preds
    res = run_node(RocNode, {"true_column": "y"}, [table_from_pandas(df)])
    areas, curves = res.outputs[0].to_pandas(), res.outputs[1].to_pandas()
    for j, c in enumerate("abc"):
        row = areas[areas["class"] == c].iloc[0]
        assert row["auc"] == pytest.approx(sk.roc_auc_score(t == j, prob[:, j]))
        assert row["average_precision"] == pytest.approx(sk.average_precision_score(t == j, prob[:, j]))
    assert areas.iloc[-1]["auc"] == pytest.approx(sk.roc_auc_score(t, prob, multi_class="ovr"))
    assert set(curves["curve"]) == {"roc", "precision-recall"} and png_ok(res.view)
    binary = pd.DataFrame({"label": (t == 1).astype(int), "score": prob[:, 1]})
    res = run_node(RocNode, {"true_column": "label", "score_columns": ["score"], "positive_class": "1"},
                   [table_from_pandas(binary)])
    assert res.outputs[0].to_pandas().iloc[0]["auc"] == pytest.approx(sk.roc_auc_score(t == 1, prob[:, 1]))


def test_regression_scorer_matches_sklearn():
    t = R.standard_normal(100)
    p = t + 0.2 * R.standard_normal(100)
    res = run_node(RegressionScorerNode, {"true_column": "t", "predicted_column": "p"},
                   [table_from_pandas(pd.DataFrame({"t": t, "p": p}))])
    got = dict(zip(*res.outputs[0].to_pandas()[["metric", "value"]].T.values))
    assert got["mse"] == pytest.approx(sk.mean_squared_error(t, p)) and got["r2"] == pytest.approx(sk.r2_score(t, p))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(t, p)) and got["n"] == 100


def test_bad_columns_fail_in_configure(preds):
    schema = table_from_pandas(preds[0]).schema
    with pytest.raises(knext.InvalidParametersError, match="true class column 'nope' is not in the table"):
        configure_node(ClassificationScorerNode, {"true_column": "nope", "predicted_column": "y"}, [schema])
    with pytest.raises(knext.InvalidParametersError, match="'y' is not numeric"):
        configure_node(RegressionScorerNode, {"true_column": "y", "predicted_column": "other"}, [schema])
    with pytest.raises(knext.InvalidParametersError, match="name the positive class"):
        configure_node(RocNode, {"true_column": "y", "score_columns": ["other"]}, [schema])


def test_scorer_refuses_columns_of_different_types_in_configure():
    df = pd.DataFrame({"y": [0, 1, 2, 1, 0], "pred": ["0", "1", "2", "1", "0"]})
    with pytest.raises(knext.InvalidParametersError, match="true class column 'y' holds numbers but predicted class "
                                                           "column 'pred' holds text.*convert one column"):
        configure_node(ClassificationScorerNode, {"true_column": "y", "predicted_column": "pred"},
                       [table_from_pandas(df).schema])
    with pytest.raises(knext.InvalidParametersError, match="'y' holds numbers but .* 'pred' holds text"):
        run_node(ClassificationScorerNode, {"true_column": "y", "predicted_column": "pred"}, [table_from_pandas(df)])
    # int truth against double predictions: both numbers, scored as equal labels
    df = pd.DataFrame({"y": [0, 1, 2, 1, 0], "pred": [0.0, 1.0, 2.0, 2.0, 0.0]})
    res = run_node(ClassificationScorerNode, {"true_column": "y", "predicted_column": "pred", "tracking": {"record": False}},
                   [table_from_pandas(df)])
    scores = res.outputs[0].to_pandas()
    assert scores[scores["class"] == "(overall)"].iloc[0]["accuracy"] == pytest.approx(0.8)
    assert len(res.outputs[1].to_pandas()) == 3  # three classes, not six


def test_roc_refuses_probability_columns_of_the_wrong_type(preds):
    df = preds[0].copy()
    df["P (y=b)"] = df["P (y=b)"].map(lambda v: f"{v:.3f}")  # probabilities that arrived as text
    schema = table_from_pandas(df).schema
    with pytest.raises(knext.InvalidParametersError, match=r"score column 'P \(y=b\)' is not numeric \(it holds "
                                                           r"text\).*String to Number"):
        configure_node(RocNode, {"true_column": "y"}, [schema])
    with pytest.raises(knext.InvalidParametersError, match="not numeric"):
        configure_node(RocNode, {"true_column": "y", "score_columns": ["P (y=b)"], "positive_class": "b"}, [schema])


def test_evaluation_runs_record_data_fingerprint_device_and_model(preds, tmp_path):
    from nodes.model_port import model_object
    from uop_engine import GraphBuilder, compile_graph
    from uop_engine.model_bundle import ModelBundle
    from uop_engine.store import ExperimentStore
    from uop_engine.train import array_fingerprint
    df = preds[0]
    db = tmp_path / "exp.sqlite"
    track = {"store": str(db)}
    g = GraphBuilder("scored")
    g.output(g.softmax(g.linear(g.input((1,), name="other"), out_features=3), axis=-1), "p")
    graph = g.build()
    model = model_object(ModelBundle(graph, compile_graph(graph, seed=0).numpy_weights(), {"experiment_run_id": 3},
                                     ["a", "b", "c"], "classification"))
    cols = {"true_column": "y", "predicted_column": "Prediction (y)", "tracking": track}
    run_node(ClassificationScorerNode, cols, [table_from_pandas(df), model])
    run_node(ClassificationScorerNode, cols, [table_from_pandas(df)])
    changed = df.copy()
    changed.loc[0, "Prediction (y)"] = "c" if df.loc[0, "Prediction (y)"] != "c" else "a"
    run_node(ClassificationScorerNode, cols, [table_from_pandas(changed)])
    st = ExperimentStore(db)
    changed_run, plain, with_model = st.list_runs()  # newest first
    want = array_fingerprint({"y": df["y"].to_numpy(object), "Prediction (y)": df["Prediction (y)"].to_numpy(object)})
    assert with_model["data_fingerprint"] == plain["data_fingerprint"] == want
    assert changed_run["data_fingerprint"] not in (None, want)  # one changed prediction: other data
    assert with_model["graph_hash"] == graph.hash() and plain["graph_hash"] is None
    assert with_model["tags"]["model_experiment_run_id"] == 3 and with_model["tags"]["model_graph_hash"] == graph.hash()
    assert with_model["tags"]["columns"] == {"true": "y", "predicted": "Prediction (y)"}
    assert with_model["tags"]["rows"] == len(df) and with_model["env"]["device"] == "CPU (numpy)"
    assert st.last_metrics(with_model["id"])["macro/f1"] == pytest.approx(
        sk.f1_score(df["y"], df["Prediction (y)"], average="macro"))
    # ROC and Regression Scorer record their scored columns too
    run_node(RocNode, {"true_column": "y", "tracking": track}, [table_from_pandas(df), model])
    reg = pd.DataFrame({"t": R.standard_normal(20), "p": R.standard_normal(20)})
    run_node(RegressionScorerNode, {"true_column": "t", "predicted_column": "p", "tracking": track},
             [table_from_pandas(reg)])
    reg_run, roc_run = st.list_runs()[:2]
    probs = [f"P (y={c})" for c in "abc"]
    assert roc_run["data_fingerprint"] == array_fingerprint(
        {"y": df["y"].to_numpy(object), **{c: df[c].to_numpy(np.float64) for c in probs}})
    assert roc_run["graph_hash"] == graph.hash()
    assert reg_run["data_fingerprint"] == array_fingerprint({"t": reg["t"].to_numpy(), "p": reg["p"].to_numpy()})
    assert reg_run["env"]["device"] == "CPU (numpy)" and reg_run["status"] == "finished"
