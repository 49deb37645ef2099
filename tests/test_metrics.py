"""Every metric against scikit-learn on random data and edge cases."""
import io

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as sk

from uop_engine.errors import DataError
from uop_engine.metrics import (average_precision, classification_report, confusion_matrix, confusion_png,
                                regression_report, roc_auc, roc_png, roc_report)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [2, 3, 7])
def test_classification_matches_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, k, 300)
    p = np.where(rng.random(300) < 0.6, t, rng.integers(0, k, 300))
    rep = classification_report(t, p)
    assert rep["accuracy"] == pytest.approx(sk.accuracy_score(t, p))
    assert rep["kappa"] == pytest.approx(sk.cohen_kappa_score(t, p))
    P, R, F, S = sk.precision_recall_fscore_support(t, p, zero_division=0)
    np.testing.assert_allclose([c["precision"] for c in rep["per_class"]], P)
    np.testing.assert_allclose([c["recall"] for c in rep["per_class"]], R)
    np.testing.assert_allclose([c["f1"] for c in rep["per_class"]], F)
    assert [c["support"] for c in rep["per_class"]] == S.tolist()
    for avg in ("macro", "weighted"):
        p_, r_, f_, _ = sk.precision_recall_fscore_support(t, p, average=avg, zero_division=0)
        assert (rep[avg]["precision"], rep[avg]["recall"], rep[avg]["f1"]) == pytest.approx((p_, r_, f_))
    assert rep["confusion_matrix"] == sk.confusion_matrix(t, p).tolist()


def test_a_class_never_predicted_and_string_labels():
    t = np.array(["cat", "dog", "bird", "dog", "cat", "bird"], dtype=object)
    p = np.array(["cat", "dog", "dog", "dog", "cat", "dog"], dtype=object)  # 'bird' never predicted
    rep = classification_report(t, p)
    assert rep["labels"] == ["bird", "cat", "dog"]
    bird = rep["per_class"][0]
    assert bird["precision"] == 0 and bird["recall"] == 0 and bird["f1"] == 0
    P, R, F, _ = sk.precision_recall_fscore_support(t, p, labels=["bird", "cat", "dog"], zero_division=0)
    np.testing.assert_allclose([c["f1"] for c in rep["per_class"]], F)
    assert rep["kappa"] == pytest.approx(sk.cohen_kappa_score(t, p))
    cm, labels = confusion_matrix(t, p, labels=["dog", "cat", "bird"])
    assert cm.tolist() == sk.confusion_matrix(t, p, labels=["dog", "cat", "bird"]).tolist()


def test_a_single_class():
    rep = classification_report([1, 1, 1], [1, 1, 1])
    assert rep["accuracy"] == 1 and rep["kappa"] == 1 and rep["per_class"][0]["f1"] == 1


def test_classification_errors_name_the_problem():
    with pytest.raises(DataError, match="has 3 rows but the predicted column has 2"):
        classification_report([1, 2, 3], [1, 2])
    with pytest.raises(DataError, match="empty"):
        classification_report([], [])
    with pytest.raises(DataError, match="1 missing value"):
        classification_report([1.0, np.nan], [1.0, 2.0])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_binary_roc_and_average_precision_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200) + 0.3 * y, 1)  # rounded: many ties
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s))
    assert average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s))
    rep = roc_report(y, s)
    assert rep["per_class"][0]["class"] == 1 and rep["macro_auc"] == pytest.approx(sk.roc_auc_score(y, s))
    fpr, tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose([r["fpr"] for r in rep["roc"]], fpr)
    np.testing.assert_allclose([r["tpr"] for r in rep["roc"]], tpr)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_vs_rest_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = 4
    t = rng.integers(0, k, 400)
    logits = rng.standard_normal((400, k)) + 1.5 * np.eye(k)[t]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    rep = roc_report(t, prob, classes=list(range(k)))
    assert rep["macro_auc"] == pytest.approx(sk.roc_auc_score(t, prob, multi_class="ovr", average="macro"))
    for j, pc in enumerate(rep["per_class"]):
        assert pc["auc"] == pytest.approx(sk.roc_auc_score(t == j, prob[:, j]))
        assert pc["average_precision"] == pytest.approx(sk.average_precision_score(t == j, prob[:, j]))


def test_roc_errors():
    with pytest.raises(DataError, match="class '2' has no positive rows"):
        roc_report([0, 1, 0, 1], np.random.rand(4, 3), classes=[0, 1, 2])
    with pytest.raises(DataError, match="exactly two classes"):
        roc_report([0, 1, 2], [0.1, 0.5, 0.9])
    with pytest.raises(DataError, match="3 score columns but 2 classes"):
        roc_report([0, 1], np.random.rand(2, 3), classes=[0, 1])


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    t = rng.standard_normal(100)
    p = t + 0.3 * rng.standard_normal(100)
    r = regression_report(t, p)
    assert r["mse"] == pytest.approx(sk.mean_squared_error(t, p))
    assert r["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(t, p)))
    assert r["mae"] == pytest.approx(sk.mean_absolute_error(t, p))
    assert r["r2"] == pytest.approx(sk.r2_score(t, p))


def test_regression_edge_cases():
    assert regression_report([2, 2, 2], [2, 2, 2])["r2"] == sk.r2_score([2, 2, 2], [2, 2, 2]) == 1.0
    assert regression_report([2, 2, 2], [1, 2, 3])["r2"] == sk.r2_score([2, 2, 2], [1, 2, 3]) == 0.0
    with pytest.raises(DataError, match="predicted column has 1 missing"):
        regression_report([1, 2], [1, np.nan])


def test_pictures_are_real_pngs():
    rep = classification_report([0, 1, 2, 2], [0, 2, 2, 1])
    for png in (confusion_png(rep["confusion_matrix"], rep["labels"]), roc_png(roc_report([0, 1, 0, 1], [.1, .8, .3, .6]))):
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and np.asarray(img.convert("L")).std() > 5


def test_precision_recall_curve_points_match_sklearn():
    from uop_engine.metrics import precision_recall_curve, roc_curve
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 150).astype(bool)
    s = np.round(rng.random(150) + 0.4 * y, 2)
    ours = precision_recall_curve(y, s)
    P, R, T = sk.precision_recall_curve(y, s)
    np.testing.assert_allclose(ours["precision"], P[:-1][::-1])
    np.testing.assert_allclose(ours["recall"], R[:-1][::-1])
    np.testing.assert_allclose(ours["threshold"], T[::-1])
    fpr, tpr, thr = sk.roc_curve(y, s, drop_intermediate=False)
    roc = roc_curve(y, s)
    np.testing.assert_allclose(roc["threshold"], thr)
    np.testing.assert_allclose(roc["fpr"], fpr)


def test_string_labels_one_vs_rest_and_named_positive_class():
    rng = np.random.default_rng(3)
    names = np.array(["ant", "bee", "cow"], dtype=object)
    t = rng.integers(0, 3, 120)
    prob = rng.dirichlet(np.ones(3), 120) + 0.5 * np.eye(3)[t]
    rep = roc_report(names[t], prob, classes=["ant", "bee", "cow"])
    assert [p["class"] for p in rep["per_class"]] == ["ant", "bee", "cow"]
    for j, pc in enumerate(rep["per_class"]):
        assert pc["auc"] == pytest.approx(sk.roc_auc_score(t == j, prob[:, j]))
    binary = roc_report(names[t], prob[:, 2], positive="cow")  # one column scoring 'cow' vs the rest
    assert binary["per_class"][0]["auc"] == pytest.approx(sk.roc_auc_score(t == 2, prob[:, 2]))
    assert {r["class"] for r in binary["roc"]} == {"cow"}


def test_explicit_label_order_and_unknown_labels():
    t, p = [2, 0, 1, 1, 0], [2, 1, 1, 0, 0]
    rep = classification_report(t, p, labels=[2, 1, 0])
    assert rep["labels"] == [2, 1, 0] and [c["label"] for c in rep["per_class"]] == [2, 1, 0]
    assert rep["confusion_matrix"] == sk.confusion_matrix(t, p, labels=[2, 1, 0]).tolist()
    P, _, _, _ = sk.precision_recall_fscore_support(t, p, labels=[2, 1, 0], zero_division=0)
    np.testing.assert_allclose([c["precision"] for c in rep["per_class"]], P)
    with pytest.raises(DataError, match=r"the predicted column has value\(s\) \[7\] that are not in the label list"):
        classification_report([1, 2], [1, 7], labels=[1, 2])
    with pytest.raises(DataError, match="names a class twice"):
        classification_report([1, 2], [1, 2], labels=[1, 2, 1])


def test_missing_values_in_text_columns_and_single_class_roc_errors():
    with pytest.raises(DataError, match="true column has 2 missing"):
        classification_report(np.array(["a", None, float("nan")], dtype=object), ["a", "b", "a"])
    with pytest.raises(DataError, match="no positive rows"):
        roc_auc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="only positive rows"):
        average_precision([1, 1], [0.1, 0.2])
    with pytest.raises(DataError, match="true values 0/1"):
        roc_auc([0, 2, 2], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="3 rows but the score column has 2"):
        roc_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(DataError, match="score column has 1 missing"):
        roc_auc([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(DataError, match="empty"):
        roc_report([], np.zeros((0, 2)), classes=[0, 1])


def test_regression_single_row_and_empty():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk.r2_score([1.0], [2.0])
    assert np.isnan(regression_report([1.0], [2.0])["r2"]) and np.isnan(ref)
    with pytest.raises(DataError, match="empty"):
        regression_report([], [])
    with pytest.raises(DataError, match="has 2 rows but the predicted column has 3"):
        regression_report([1, 2], [1, 2, 3])


def test_labels_of_different_kinds_are_refused_naming_both_columns():
    # int truth against string predictions used to give accuracy 0 with every class listed twice
    with pytest.raises(DataError, match=r"the true column holds numbers but the predicted column holds text "
                                        r"\(e.g. 0 vs '0'\).*convert one column"):
        classification_report([0, 1, 2, 1, 0], ["0", "1", "2", "1", "0"])
    with pytest.raises(DataError, match="'y' holds text but 'p' holds numbers"):
        confusion_matrix(np.array(["a", "b"], dtype=object), np.array([1, 2]), names=("'y'", "'p'"))
    with pytest.raises(DataError, match="holds booleans but the predicted column holds numbers"):
        classification_report([True, False], [1, 0])
    with pytest.raises(DataError, match="the predicted column mixes numbers and text"):
        classification_report([0, 1, 1], np.array([0, "1", 1], dtype=object))
    rep = classification_report([0, 1, 2, 1], [0.0, 1.0, 2.0, 2.0])  # int and float labels are both numbers
    assert rep["accuracy"] == pytest.approx(sk.accuracy_score([0, 1, 2, 1], [0, 1, 2, 2])) and len(rep["labels"]) == 3


def test_roc_refuses_text_scores_and_classes_of_another_kind():
    with pytest.raises(DataError, match="the score column holds text, not probabilities.*String to Number"):
        roc_auc([0, 1, 1], np.array(["0.1", "0.9", "0.8"], dtype=object))
    with pytest.raises(DataError, match="the score columns hold text"):
        roc_report([0, 1, 0], np.array([["0.2", "0.8"]] * 3))
    with pytest.raises(DataError, match=r"the class\(es\) \['0', '1', '2'\] are text but the true column holds "
                                        "numbers"):
        roc_report([0, 1, 2, 1], np.random.default_rng(0).random((4, 3)), classes=["0", "1", "2"])
    with pytest.raises(DataError, match=r"the positive class \['1'\] is text"):
        roc_report([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.7], positive="1")
    ok = roc_report([0, 1, 0, 1], np.array([0.1, 0.9, 0.2, 0.7], dtype=object), positive=1)  # numbers as objects
    assert ok["macro_auc"] == pytest.approx(sk.roc_auc_score([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.7]))
