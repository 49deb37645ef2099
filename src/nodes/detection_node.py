"""Detection Metrics node: COCO mAP of box predictions against ground truth (pycocotools).

Every field is its own column choice (ColumnParameter); a choice left empty is guessed from the
usual names (image_id, class, score, x/y/w/h or x1/y1/x2/y2, iscrowd, area), so the node runs
with no settings on tables that use those names.
"""
from __future__ import annotations

import knime.extension as knext

from ._base import evaluation_category
from .eval_nodes import _numeric, _record, _schema, _table
from .experiment_nodes import TrackingSettings

_SUMMARY = [("metric", knext.string()), ("value", knext.double())]
_PER_CLASS = [("class", knext.string()), ("ap", knext.double()), ("ap50", knext.double()), ("recall", knext.double()),
              ("gt_boxes", knext.int64()), ("detections", knext.int64())]
NONE = "<none>"  # what KNIME stores when "None" is picked for a column with include_none_column

# guesses for an empty choice, by role (case-insensitive); box roles depend on the box format
_GUESS = {"image": ("image_id", "image", "img", "image_name", "file", "filename"),
          "class": ("class", "label", "category", "category_id", "class_name"),
          "score": ("score", "confidence", "conf", "probability"),
          "crowd": ("iscrowd", "is_crowd", "crowd", "ignore"), "area": ("area",)}
_BOX_GUESS = {"xywh": (("x", "x1", "xmin", "left"), ("y", "y1", "ymin", "top"), ("w", "width"), ("h", "height")),
              "xyxy": (("x1", "xmin", "x", "left"), ("y1", "ymin", "y", "top"), ("x2", "xmax", "right"),
                       ("y2", "ymax", "bottom"))}
_BOX_ROLES = ("box x (left)", "box y (top)", "box width / right x", "box height / bottom y")


def _id_like(col) -> bool:
    return _numeric(col) or col.ktype == knext.string()


def _flag_like(col) -> bool:
    return _numeric(col) or col.ktype == knext.bool_()


def _box(port: int, n: int, label: str):
    return knext.ColumnParameter(label, "Numeric box coordinate; empty = guessed from the column names (" +
                                 "/".join(dict.fromkeys(_BOX_GUESS["xywh"][n] + _BOX_GUESS["xyxy"][n])) + ").",
                                 port_index=port, column_filter=_numeric)


@knext.parameter_group("Prediction columns")
class PredictionColumns:
    """Columns of the predictions table (first input): one row per predicted box."""

    image_column = knext.ColumnParameter("Image id", "Names the image of each box (text or number).", port_index=0,
                                         column_filter=_id_like)
    class_column = knext.ColumnParameter("Class", "Predicted class (text or number).", port_index=0,
                                         column_filter=_id_like)
    score_column = knext.ColumnParameter("Score", "Confidence of the box (numeric).", port_index=0,
                                         column_filter=_numeric)
    box_1 = _box(0, 0, "Box x (left)")
    box_2 = _box(0, 1, "Box y (top)")
    box_3 = _box(0, 2, "Box width (xywh) or right x (xyxy)")
    box_4 = _box(0, 3, "Box height (xywh) or bottom y (xyxy)")


@knext.parameter_group("Ground-truth columns")
class TruthColumns:
    """Columns of the ground-truth table (second input): one row per true box."""

    image_column = knext.ColumnParameter("Image id", "Names the image of each box (same kind as the predictions').",
                                         port_index=1, column_filter=_id_like)
    class_column = knext.ColumnParameter("Class", "True class (same kind as the predictions').", port_index=1,
                                         column_filter=_id_like)
    box_1 = _box(1, 0, "Box x (left)")
    box_2 = _box(1, 1, "Box y (top)")
    box_3 = _box(1, 2, "Box width (xywh) or right x (xyxy)")
    box_4 = _box(1, 3, "Box height (xywh) or bottom y (xyxy)")
    crowd_column = knext.ColumnParameter("Crowd / ignore flag", "Optional 0/1 column: 1 marks a crowd or ignore "
                                         "region (detections on it are neither right nor wrong). Empty = a column "
                                         "named iscrowd / ignore when there is one; None = no crowd boxes.",
                                         port_index=1, column_filter=_flag_like, include_none_column=True)
    area_column = knext.ColumnParameter("Area", "Optional object area (e.g. of its mask) deciding small / medium / "
                                        "large; empty = a column named area when there is one, else the box area; "
                                        "None = the box area.", port_index=1, column_filter=_numeric,
                                        include_none_column=True)


@knext.node(name="Detection Metrics", node_type=knext.NodeType.OTHER, icon_path="icons/evaluation.png",
            category=evaluation_category, keywords=["map", "coco", "detection", "ap50", "boxes", "object detection"],
            id="tinyuop_detection_metrics")
@knext.input_table("Predictions", "One row per predicted box: image id, class, score and the box.")
@knext.input_table("Ground truth", "One row per true box: image id, class, the box and optionally iscrowd / area.")
@knext.output_table("Summary", "mAP@[.5:.95], AP50, AP75, AP small/medium/large, AR@1/10/100, AR small/medium/large.")
@knext.output_table("Per class", "AP, AP50 and recall per class, with box counts.")
class DetectionMetricsNode:
    """COCO-style detection metrics computed by pycocotools, the reference implementation.

    Boxes are four numeric columns: x, y, width, height (xywh) or x1, y1, x2, y2 (xyxy). Column
    choices left empty are guessed from the usual names. Images without ground truth and crowd
    boxes (iscrowd = 1, matched but never counted as missed) are handled as in COCO; no
    detections at all give mAP 0. Per-class AP and recall are NaN for a class that has no
    (non-crowd) ground-truth box."""

    box_format = knext.StringParameter("Box format", "xywh: x, y, width, height; xyxy: corners.", "xywh",
                                       enum=["xywh", "xyxy"])
    predictions = PredictionColumns()
    truth = TruthColumns()
    tracking = TrackingSettings()

    def _resolve(self, group, schema, what: str, with_score: bool) -> dict[str, str]:
        """{engine column: table column}, each chosen or guessed, checked against the schema."""
        names = list(schema.column_names)
        by_lower = {n.lower(): n for n in names}

        def pick(chosen, role: str, guesses, numeric, optional: bool = False):  # numeric: True/False/'flag'
            if chosen == NONE and optional:
                return None
            if chosen:
                if chosen not in names:
                    raise knext.InvalidParametersError(f"{role} column '{chosen}' is not in the {what} table; "
                                                       f"available: {names}")
            else:
                chosen = next((by_lower[g] for g in guesses if g in by_lower), None)
                if chosen is None:
                    if optional:
                        return None
                    raise knext.InvalidParametersError(
                        f"choose the {role} column of the {what} table (none of the usual names "
                        f"{'/'.join(guesses)} is there; available: {names})")
            col = schema[chosen]
            if numeric == "flag" and not _flag_like(col):
                raise knext.InvalidParametersError(f"{role} column '{chosen}' of the {what} table must hold 0/1 "
                                                   f"numbers or booleans ({col.ktype})")
            elif numeric is True and not _numeric(col):
                raise knext.InvalidParametersError(f"{role} column '{chosen}' of the {what} table is not numeric "
                                                   f"({col.ktype})")
            if not numeric and not _id_like(col):
                raise knext.InvalidParametersError(f"{role} column '{chosen}' of the {what} table must be text or a "
                                                   f"number ({col.ktype})")
            return chosen
        box_names = ["x", "y", "w", "h"] if self.box_format == "xywh" else ["x1", "y1", "x2", "y2"]
        out = {"image_id": pick(group.image_column, "image id", _GUESS["image"], False),
               "class": pick(group.class_column, "class", _GUESS["class"], False)}
        if with_score:
            out["score"] = pick(group.score_column, "score", _GUESS["score"], True)
        boxes = [pick(getattr(group, f"box_{i + 1}"), _BOX_ROLES[i], _BOX_GUESS[self.box_format][i], True)
                 for i in range(4)]
        if len(set(boxes)) < 4:
            raise knext.InvalidParametersError(f"the four box columns of the {what} table must differ; got {boxes}")
        out.update(zip(box_names, boxes))
        if not with_score:
            crowd = pick(group.crowd_column, "crowd / ignore flag", _GUESS["crowd"], "flag", optional=True)
            area = pick(group.area_column, "area", _GUESS["area"], True, optional=True)
            out.update({k: c for k, c in (("iscrowd", crowd), ("area", area)) if c is not None})
        return out

    def configure(self, config_context, pred_schema, gt_schema):
        pred = self._resolve(self.predictions, pred_schema, "predictions", True)
        truth = self._resolve(self.truth, gt_schema, "ground-truth", False)
        for key, role in (("image_id", "image id"), ("class", "class")):  # names never match numbers: mAP 0
            kinds = [("text" if s[c[key]].ktype == knext.string() else "numbers") for s, c in
                     ((pred_schema, pred), (gt_schema, truth))]
            if kinds[0] != kinds[1]:
                raise knext.InvalidParametersError(
                    f"the {role} column '{pred[key]}' of the predictions table holds {kinds[0]} but "
                    f"'{truth[key]}' of the ground-truth table holds {kinds[1]}; use the same kind in both")
        return _schema(_SUMMARY), _schema(_PER_CLASS)

    def _frame(self, table, group, what: str, with_score: bool):
        cols = self._resolve(group, table.schema, what, with_score)
        df = table.to_pandas()
        return df[list(cols.values())].set_axis(list(cols), axis=1).reset_index(drop=True)

    def execute(self, exec_context, predictions, ground_truth):
        from uop_engine.detection import SUMMARY_KEYS, detection_metrics
        from uop_engine.errors import DataError
        dt = self._frame(predictions, self.predictions, "predictions", True)
        gt = self._frame(ground_truth, self.truth, "ground-truth", False)
        try:
            m = detection_metrics(dt, gt, self.box_format)
        except DataError as e:
            raise ValueError(str(e)) from None
        summary = [{"metric": k, "value": m[k]} for k in SUMMARY_KEYS] + [{"metric": "images", "value": m["images"]}]
        per = [{**p, "class": str(p["class"])} for p in m["per_class"]]
        scored = {f"{side}.{role}": (f"{side}.{role}", frame[role].to_numpy())
                  for side, frame in (("predictions", dt), ("ground_truth", gt)) for role in frame.columns}
        _record(exec_context, self.tracking, {k: m[k] for k in SUMMARY_KEYS}, "Detection Metrics", scored)
        return _table(summary, _SUMMARY), _table(per, _PER_CLASS)
