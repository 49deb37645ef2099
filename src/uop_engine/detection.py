"""COCO-style detection metrics through pycocotools (the reference implementation, not a rewrite).

    detection_metrics(predictions, ground_truth, box_format="xywh")

Both inputs are tables (pandas DataFrames, pyarrow tables or dicts of columns) with columns
image_id, class, box (x, y, w, h or x1, y1, x2, y2 as four columns `x`, `y`, `w`/`x2`,
`h`/`y2`, or one column of 4-lists `box`); predictions also have `score`; ground truth may
have `iscrowd`, `ignore` and `area`. An `ignore` = 1 box is scored as a COCO crowd region
(pycocotools itself overwrites a ground truth's ignore flag with iscrowd for boxes): a
detection on it is neither a true nor a false positive, and it is never counted as missed.
`area` (e.g. a mask's area) decides small/medium/large; without it the box area is used. Classes may be numbers or names. Returns mAP@[.5:.95], AP50, AP75,
AP for small/medium/large boxes, AR@1/10/100 and per-class AP and recall (NaN for a class
without ground truth, as pycocotools).
"""
from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from .errors import DataError

SUMMARY_KEYS = ("map", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100",
                "ar_small", "ar_medium", "ar_large")


def _frame(data: Any, what: str):
    import pandas as pd
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True)
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    if isinstance(data, dict):
        return pd.DataFrame(data)
    raise DataError(f"the {what} must be a table (DataFrame, pyarrow table or dict of columns)")


def _boxes(df, what: str, box_format: str) -> np.ndarray:
    if "box" in df.columns:
        b = np.asarray(df["box"].tolist(), dtype=np.float64).reshape(-1, 4) if len(df) else np.zeros((0, 4))
    else:
        cols = ["x", "y", "w", "h"] if box_format == "xywh" else ["x1", "y1", "x2", "y2"]
        alt = ["x1", "y1", "x2", "y2"] if box_format == "xyxy" else None
        if alt and not all(c in df.columns for c in alt) and all(c in df.columns for c in ("x", "y", "x2", "y2")):
            cols = ["x", "y", "x2", "y2"]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DataError(f"the {what} table lacks box column(s) {missing} for box format '{box_format}'; it has "
                            f"{list(df.columns)}")
        b = df[cols].to_numpy(dtype=np.float64)
    if np.isnan(b).any():
        raise DataError(f"the {what} table has {int(np.isnan(b).any(1).sum())} box(es) with missing coordinates")
    if box_format == "xyxy":
        b = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    if (b[:, 2:] < 0).any():
        raise DataError(f"the {what} table has boxes with negative width or height (is the box format right?)")
    return b


def _need(df, cols: list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"the {what} table lacks column(s) {missing}; it has {list(df.columns)}")


def _no_missing(df, cols: list[str], what: str) -> None:
    for c in cols:
        n = int(df[c].isna().sum())
        if n:
            raise DataError(f"the {what} table has {n} row(s) without a value in column '{c}'")


def _flag(df, col: str, what: str) -> np.ndarray:
    """A 0/1 column (missing = 0) as bools, refusing anything else."""
    v = df[col].fillna(0).to_numpy()
    try:
        v = v.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"column '{col}' of the {what} table must hold 0/1 flags") from None
    if not np.isin(v, (0, 1)).all():
        raise DataError(f"column '{col}' of the {what} table must hold 0/1 flags; found {sorted(set(v.tolist()))[:5]}")
    return v.astype(bool)


def _same_kind(gt_values: list, dt_values: list, col: str) -> None:
    """Names vs numbers across the two tables would silently never match (mAP 0): refuse."""
    def kind(vals: list) -> set[str]:
        return {"text" if isinstance(v, str) else "number" for v in vals}
    g, d = kind(gt_values), kind(dt_values)
    if g and d and g != d:
        raise DataError(f"the '{col}' column holds {'/'.join(sorted(g))} values in the ground-truth table but "
                        f"{'/'.join(sorted(d))} values in the predictions table; use the same kind of ids in both")


def to_coco(predictions: Any, ground_truth: Any, box_format: str = "xywh") -> tuple[dict, list, list]:
    """(COCO ground-truth dict, detection list, class list) in pycocotools' formats."""
    if box_format not in ("xywh", "xyxy"):
        raise DataError(f"box format '{box_format}' is not xywh or xyxy")
    gt, dt = _frame(ground_truth, "ground truth"), _frame(predictions, "predictions")
    _need(gt, ["image_id", "class"], "ground truth")
    _need(dt, ["image_id", "class", "score"], "predictions")
    _no_missing(gt, ["image_id", "class"], "ground truth")
    _no_missing(dt, ["image_id", "class"], "predictions")
    gb, db = _boxes(gt, "ground truth", box_format), _boxes(dt, "predictions", box_format)
    for col in ("image_id", "class"):
        _same_kind(gt[col].tolist(), dt[col].tolist(), col)
    classes = sorted(set(gt["class"].tolist()) | set(dt["class"].tolist()), key=lambda v: (str(type(v)), v))
    cid = {c: i + 1 for i, c in enumerate(classes)}
    images = sorted(set(gt["image_id"].tolist()) | set(dt["image_id"].tolist()), key=str)
    iid = {v: i + 1 for i, v in enumerate(images)}
    crowd = np.zeros(len(gt), bool)
    for col in ("iscrowd", "ignore"):
        if col in gt.columns:
            crowd |= _flag(gt, col, "ground truth")
    if "area" in gt.columns:
        area = gt["area"].astype(float).to_numpy()
        if np.isnan(area).any() or (area < 0).any():
            raise DataError("the ground-truth column 'area' has missing or negative values")
    else:
        area = gb[:, 2] * gb[:, 3]
    anns = [{"id": k + 1, "image_id": iid[im], "category_id": cid[c], "bbox": box.tolist(), "area": float(a),
             "iscrowd": int(cr)}
            for k, (im, c, box, a, cr) in enumerate(zip(gt["image_id"].tolist(), gt["class"].tolist(), gb, area, crowd))]
    coco_gt = {"images": [{"id": i} for i in iid.values()], "annotations": anns,
               "categories": [{"id": i, "name": str(c)} for c, i in cid.items()]}
    scores = dt["score"].astype(float).to_numpy()
    if np.isnan(scores).any():
        raise DataError(f"the predictions table has {int(np.isnan(scores).sum())} missing score(s)")
    dets = [{"image_id": iid[im], "category_id": cid[c], "bbox": box.tolist(), "score": float(s)}
            for im, c, box, s in zip(dt["image_id"].tolist(), dt["class"].tolist(), db, scores)]
    return coco_gt, dets, classes


def coco_evaluate(coco_gt: dict, detections: list) -> Any:
    """Run pycocotools' COCOeval (bbox) quietly; returns the evaluated COCOeval."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {k: list(v) for k, v in coco_gt.items()}
        gt.createIndex()
        dt = gt.loadRes(detections) if detections else COCO()
        if not detections:
            dt.dataset = {"images": list(coco_gt["images"]), "annotations": [], "categories": coco_gt["categories"]}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def detection_metrics(predictions: Any, ground_truth: Any, box_format: str = "xywh") -> dict[str, Any]:
    """Summary metrics (SUMMARY_KEYS, as COCOeval.stats), `per_class` rows and the image count."""
    coco_gt, dets, classes = to_coco(predictions, ground_truth, box_format)
    if not coco_gt["annotations"]:
        raise DataError("the ground-truth table has no boxes: there is nothing to score against")
    ev = coco_evaluate(coco_gt, dets)
    out: dict[str, Any] = {k: float(v) for k, v in zip(SUMMARY_KEYS, ev.stats)}
    prec, rec = ev.eval["precision"], ev.eval["recall"]  # (T, R, K, A, M), (T, K, A, M)
    per_class = []
    for k, c in enumerate(classes):
        p = prec[:, :, k, 0, -1]
        r = rec[:, k, 0, -1]
        ap = float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")
        ap50 = p[0][p[0] > -1]
        per_class.append({"class": c, "ap": ap, "ap50": float(ap50.mean()) if ap50.size else float("nan"),
                          "recall": float(np.mean(r[r > -1])) if (r > -1).any() else float("nan"),
                          "gt_boxes": int(sum(1 for a in coco_gt["annotations"]
                                              if a["category_id"] == k + 1 and not a["iscrowd"])),
                          "detections": int(sum(1 for d in dets if d["category_id"] == k + 1))})
    out["per_class"] = per_class
    out["images"] = len(coco_gt["images"])
    return out
