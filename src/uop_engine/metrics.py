"""Scoring predictions: classification, ROC / precision-recall, regression (pure numpy).

Conventions follow scikit-learn so numbers can be compared 1:1 (tests do): precision of a
class never predicted is 0, AUC is the trapezoid area under the ROC curve with ties
handled as one threshold, average precision is the step-wise sum over recall changes, R^2
of a constant target is 1 for a perfect fit and 0 otherwise (NaN with fewer than two rows).
One deliberate difference: Cohen's kappa of a single class predicted perfectly is 1 (scikit-
learn gives NaN, 0/0), so a scores table never carries a NaN for a perfect result.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import DataError


def _is_missing(x: Any) -> bool:
    """None, NaN, pandas' NA / NaT: anything that is not equal to itself or cannot say so."""
    if x is None:
        return True
    try:
        return bool(x != x)
    except (TypeError, ValueError):  # pd.NA refuses to be a bool
        return True


def _labels_array(v: Any, what: str) -> np.ndarray:
    a = np.asarray(v)
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.size == 0:
        raise DataError(f"{what} is empty: there is nothing to score")
    missing = int(np.isnan(a).sum()) if a.dtype.kind == "f" else \
        sum(_is_missing(x) for x in a.tolist()) if a.dtype.kind == "O" else 0
    if missing:
        raise DataError(f"{what} has {missing} missing value(s); drop or fill those rows first")
    return a


_KIND_OF_DTYPE = {"b": "booleans", "i": "numbers", "u": "numbers", "f": "numbers", "U": "text", "S": "text"}


def _value_kind(x: Any) -> str:
    import numbers
    if isinstance(x, (bool, np.bool_)):
        return "booleans"
    if isinstance(x, numbers.Number):
        return "numbers"
    if isinstance(x, (str, bytes)):
        return "text"
    return type(x).__name__


def _kinds(a: np.ndarray) -> set[str]:
    """What a label column holds: numbers, text, booleans (object arrays: per value)."""
    if a.dtype.kind in _KIND_OF_DTYPE:
        return {_KIND_OF_DTYPE[a.dtype.kind]}
    return {_value_kind(x) for x in a.tolist()}


def _same_kind(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    """Refuse labels of different kinds: 1 and '1' never compare equal, so every row would count
    as wrong and each class would appear twice (scores silently meaningless)."""
    ka, kb = _kinds(a), _kinds(b)
    for k, name in ((ka, names[0]), (kb, names[1])):
        if len(k) > 1:
            raise DataError(f"{name} mixes {' and '.join(sorted(k))}; convert it so every value is of one kind")
    if ka != kb:
        ex_a, ex_b = a.tolist()[0], b.tolist()[0]
        raise DataError(f"{names[0]} holds {ka.pop()} but {names[1]} holds {kb.pop()} (e.g. {ex_a!r} vs {ex_b!r}), "
                        "so no label can ever match; convert one column to the other's type (e.g. String to Number "
                        "or Number to String) before scoring")


def _same_length(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if len(a) != len(b):
        raise DataError(f"{names[0]} has {len(a)} rows but {names[1]} has {len(b)}; they must be row-aligned")


def _sorted_union(*arrays: np.ndarray) -> list:
    vals = set()
    for a in arrays:
        vals.update(a.tolist())
    try:
        return sorted(vals)
    except TypeError:  # mixed types: sort by text
        return sorted(vals, key=str)


# ---- classification ---------------------------------------------------------------------------------
_NAMES = ("the true column", "the predicted column")


def confusion_matrix(y_true: Any, y_pred: Any, labels: Sequence | None = None,
                     names: tuple[str, str] = _NAMES) -> tuple[np.ndarray, list]:
    """(matrix, labels): rows are true classes, columns predicted, in `labels` order (default:
    sorted union of both columns). `names` name the two columns in error messages."""
    t, p = _labels_array(y_true, names[0]), _labels_array(y_pred, names[1])
    _same_length(t, p, names)
    _same_kind(t, p, names)
    if labels is None:
        labels = _sorted_union(t, p)
    else:  # an explicit order must name every value: silently dropping rows would skew accuracy
        labels = list(labels)
        if len(set(labels)) != len(labels):
            raise DataError(f"the label list {labels} names a class twice")
        for a, what in zip((t, p), names):
            unknown = sorted(set(a.tolist()) - set(labels), key=str)
            if unknown:
                raise DataError(f"{what} has value(s) {unknown[:5]} that are not in the label list {labels}; "
                                "add them to the list")
    index = {v: i for i, v in enumerate(labels)}
    k = len(labels)
    ti = np.array([index[a] for a in t.tolist()], dtype=np.int64)
    pi = np.array([index[b] for b in p.tolist()], dtype=np.int64)
    cm = np.bincount(ti * k + pi, minlength=k * k).reshape(k, k)
    return cm, labels


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b != 0)


def classification_report(y_true: Any, y_pred: Any, labels: Sequence | None = None,
                          names: tuple[str, str] = _NAMES) -> dict[str, Any]:
    """Accuracy, Cohen's kappa, per-class precision/recall/F1/support, macro and weighted
    averages and the confusion matrix."""
    cm, labels = confusion_matrix(y_true, y_pred, labels, names)
    cm = cm.astype(np.float64)
    n = cm.sum()
    tp = np.diag(cm)
    support, predicted = cm.sum(1), cm.sum(0)
    precision, recall = _safe_div(tp, predicted), _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    accuracy = float(tp.sum() / n) if n else 0.0
    expected = float((support * predicted).sum() / n ** 2) if n else 0.0
    kappa = 1.0 if expected == 1.0 else (accuracy - expected) / (1 - expected)
    per_class = [{"label": lab, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for lab, p, r, f, s in zip(labels, precision, recall, f1, support)]
    w = support / support.sum() if support.sum() else np.zeros_like(support)
    return {"accuracy": accuracy, "kappa": float(kappa), "n": int(n), "labels": labels, "per_class": per_class,
            "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
            "weighted": {"precision": float((precision * w).sum()), "recall": float((recall * w).sum()),
                         "f1": float((f1 * w).sum())},
            "confusion_matrix": cm.astype(np.int64).tolist()}


def confusion_png(cm: Any, labels: Sequence, title: str = "Confusion matrix") -> bytes:
    """The confusion matrix as an annotated heat map (PNG bytes)."""
    from matplotlib.figure import Figure
    cm = np.asarray(cm)
    k = len(labels)
    size = min(12.0, 2.5 + 0.5 * k)
    fig = Figure(figsize=(size, size * 0.85), dpi=100)
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(k), [str(x) for x in labels], rotation=45 if k > 6 else 0)
    ax.set_yticks(range(k), [str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 30:
        hi = cm.max() / 2 if cm.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > hi else "black")
    fig.tight_layout()
    return _png(fig)


def _png(fig) -> bytes:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ---- ROC and precision-recall -------------------------------------------------------------------------
def _binary_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fps, tps, thresholds) at each distinct score, highest first."""
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    idx = np.r_[distinct, len(y) - 1]
    tps = np.cumsum(y)[idx]
    fps = 1 + idx - tps
    return fps.astype(np.float64), tps.astype(np.float64), s[idx]


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Area under y(x) (np.trapezoid is numpy >= 2; KNIME ships numpy 1.26)."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _score_array(v: Any, what: str) -> np.ndarray:
    """Scores as float64; text is refused, not parsed: '0.9' in a score column means the wrong
    column (or type) was chosen, and numpy would silently turn it into a number."""
    a = np.asarray(v)
    if a.dtype.kind == "O":
        kinds = {_value_kind(x) for x in a.ravel().tolist() if x is not None} - {"numbers", "booleans"}
    else:
        kinds = set() if a.dtype.kind in "biuf" else {_KIND_OF_DTYPE.get(a.dtype.kind, str(a.dtype))}
    if kinds:
        verb = "hold" if what.endswith("s") else "holds"
        raise DataError(f"{what} {verb} {' and '.join(sorted(kinds))}, not probabilities; choose numeric score "
                        "columns or convert them to numbers (e.g. String to Number)")
    return np.asarray(np.where(a == None, np.nan, a) if a.dtype.kind == "O" else a,  # noqa: E711
                      dtype=np.float64)


def _class_kinds(t: np.ndarray, classes: Sequence, what: str) -> None:
    """Classes must be values of the true column's kind: class 1 never matches a true value '1'."""
    have = _kinds(t)
    bad = [c for c in classes if _value_kind(c) not in have]
    if bad:
        raise DataError(f"{what} {bad[:5]} {'is' if len(bad) == 1 else 'are'} {_value_kind(bad[0])} but the true "
                        f"column holds {' and '.join(sorted(have))}; no row can match: give the classes as values "
                        "of the true column, or convert the column")


def _binary_inputs(y: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _labels_array(y, "the true column")
    s = _score_array(score, "the score column").reshape(-1)
    _same_length(y, s, ("the true column", "the score column"))
    if np.isnan(s).any():
        raise DataError(f"the score column has {int(np.isnan(s).sum())} missing value(s)")
    bad = sorted(set(y.tolist()) - {0, 1}, key=str)
    if bad:
        raise DataError(f"binary ROC needs true values 0/1 (or False/True); found {bad[:5]}. "
                        "Use roc_report for other labels")
    y = y.astype(np.float64)
    if y.sum() in (0, len(y)):
        raise DataError(f"the true column has {'no' if y.sum() == 0 else 'only'} positive rows; ROC and "
                        "precision-recall need both positives and negatives")
    return y, s


def roc_curve(y: Any, score: Any) -> dict[str, np.ndarray]:
    """Binary ROC: y in {0,1} (or bool), higher score = more positive. Every distinct score is
    a threshold (scikit-learn's roc_curve with drop_intermediate=False)."""
    y, s = _binary_inputs(y, score)
    fps, tps, thr = _binary_curve(y, s)
    fpr = np.r_[0.0, fps / fps[-1] if fps[-1] else np.zeros_like(fps)]
    tpr = np.r_[0.0, tps / tps[-1] if tps[-1] else np.zeros_like(tps)]
    return {"fpr": fpr, "tpr": tpr, "threshold": np.r_[np.inf, thr]}


def roc_auc(y: Any, score: Any) -> float:
    c = roc_curve(y, score)
    return float(_trapezoid(c["tpr"], c["fpr"]))


def precision_recall_curve(y: Any, score: Any) -> dict[str, np.ndarray]:
    """Binary precision-recall points (from the highest threshold down; recall rising): scikit-
    learn's precision_recall_curve reversed, without its closing (recall 0, precision 1) point."""
    y, s = _binary_inputs(y, score)
    fps, tps, thr = _binary_curve(y, s)
    precision = tps / (tps + fps)
    recall = tps / tps[-1] if tps[-1] else np.zeros_like(tps)
    return {"precision": precision, "recall": recall, "threshold": thr}


def average_precision(y: Any, score: Any) -> float:
    c = precision_recall_curve(y, score)
    r = np.r_[0.0, c["recall"]]
    return float(np.sum(np.diff(r) * c["precision"]))


def roc_report(y_true: Any, scores: Any, classes: Sequence | None = None, positive: Any = None) -> dict[str, Any]:
    """ROC AUC and average precision per class (one-vs-rest) plus macro averages, and the curves
    as tidy rows. `scores`: (n, k) with one column per class in `classes` order, or (n,) scores
    of `positive` (binary)."""
    t = _labels_array(y_true, "the true column")
    s = _score_array(scores, "the score columns")
    if s.ndim == 1:
        s = s[:, None]
    _same_length(t, s, ("the true column", "the score columns"))
    if np.isnan(s).any():
        raise DataError(f"the score columns have {int(np.isnan(s).any(1).sum())} row(s) with missing values")
    if s.shape[1] == 1:
        if positive is None:
            labs = _sorted_union(t)
            if len(labs) != 2:
                raise DataError(f"one score column needs exactly two classes in the true column (found {len(labs)}); "
                                "or name the positive class")
            positive = labs[1]
        _class_kinds(t, [positive], "the positive class")
        classes = [positive]
    else:
        classes = list(classes) if classes is not None else _sorted_union(t)
        if len(classes) != s.shape[1]:
            raise DataError(f"{s.shape[1]} score columns but {len(classes)} classes; give one column per class")
        _class_kinds(t, classes, "the class(es)")
    per_class, roc_rows, pr_rows = [], [], []
    for j, c in enumerate(classes):
        y = (t == c).astype(np.float64) if t.dtype.kind != "O" else np.array([v == c for v in t.tolist()], np.float64)
        pos = int(y.sum())
        if pos == 0 or pos == len(y):
            raise DataError(f"class '{c}' has {'no' if pos == 0 else 'only'} positive rows in the true column; "
                            "ROC needs both positives and negatives for every class")
        roc, pr = roc_curve(y, s[:, j]), precision_recall_curve(y, s[:, j])
        per_class.append({"class": c, "auc": float(_trapezoid(roc["tpr"], roc["fpr"])),
                          "average_precision": average_precision(y, s[:, j]), "positives": pos})
        roc_rows += [{"class": c, "threshold": float(th), "fpr": float(a), "tpr": float(b)}
                     for th, a, b in zip(roc["threshold"], roc["fpr"], roc["tpr"])]
        pr_rows += [{"class": c, "threshold": float(th), "precision": float(a), "recall": float(b)}
                    for th, a, b in zip(pr["threshold"], pr["precision"], pr["recall"])]
    return {"per_class": per_class, "macro_auc": float(np.mean([p["auc"] for p in per_class])),
            "macro_average_precision": float(np.mean([p["average_precision"] for p in per_class])),
            "roc": roc_rows, "pr": pr_rows}


def roc_png(report: dict[str, Any]) -> bytes:
    """ROC and precision-recall curves side by side (PNG bytes)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4.2), dpi=100)
    a, b = fig.subplots(1, 2)
    for pc in report["per_class"]:
        c = pc["class"]
        roc = [r for r in report["roc"] if r["class"] == c]
        pr = [r for r in report["pr"] if r["class"] == c]
        a.plot([r["fpr"] for r in roc], [r["tpr"] for r in roc], label=f"{c} (AUC {pc['auc']:.3f})")
        b.plot([r["recall"] for r in pr], [r["precision"] for r in pr], label=f"{c} (AP {pc['average_precision']:.3f})")
    a.plot([0, 1], [0, 1], "k--", lw=0.8)
    a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    b.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


# ---- regression ---------------------------------------------------------------------------------------
def regression_report(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MSE, RMSE, MAE and R^2 (1 - SS_res / SS_tot; a constant target gives 1 when fitted
    exactly, else 0; one row gives NaN: all as scikit-learn)."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.size == 0:
        raise DataError("the true column is empty: there is nothing to score")
    _same_length(t, p, ("the true column", "the predicted column"))
    for a, what in ((t, "the true column"), (p, "the predicted column")):
        if np.isnan(a).any():
            raise DataError(f"{what} has {int(np.isnan(a).sum())} missing value(s); drop or fill those rows first")
    err = t - p
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise DataError("the true or predicted column holds an infinite value; scores would be meaningless")
    mse = float(np.mean(err ** 2))
    ss_res, ss_tot = float(np.sum(err ** 2)), float(np.sum((t - t.mean()) ** 2))
    if t.size < 2:  # undefined, as scikit-learn (which also warns)
        r2 = float("nan")
    else:
        r2 = (1.0 if ss_res == 0 else 0.0) if ss_tot == 0 else 1 - ss_res / ss_tot
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(err))), "r2": float(r2),
            "n": int(t.size)}
