"""Detection Metrics node: COCO mAP of box predictions against ground truth (pycocotools)."""
from __future__ import annotations

import knime.extension as knext

from ._base import evaluation_category
from .eval_nodes import _numeric, _record, _schema, _table
from .experiment_nodes import TrackingSettings

_SUMMARY = [("metric", knext.string()), ("value", knext.double())]
_PER_CLASS = [("class", knext.string()), ("ap", knext.double()), ("ap50", knext.double()), ("recall", knext.double()),
              ("gt_boxes", knext.int64()), ("detections", knext.int64())]


@knext.node(name="Detection Metrics", node_type=knext.NodeType.OTHER, icon_path="icons/evaluation.png",
            category=evaluation_category, keywords=["map", "coco", "detection", "ap50", "boxes", "object detection"],
            id="tinyuop_detection_metrics")
@knext.input_table("Predictions", "One row per predicted box: image id, class, score and the box.")
@knext.input_table("Ground truth", "One row per true box: image id, class, the box and optionally iscrowd / area.")
@knext.output_table("Summary", "mAP@[.5:.95], AP50, AP75, AP small/medium/large, AR@1/10/100, AR small/medium/large.")
@knext.output_table("Per class", "AP, AP50 and recall per class, with box counts.")
class DetectionMetricsNode:
    """COCO-style detection metrics computed by pycocotools, the reference implementation.

    Boxes are four numeric columns: x, y, width, height (xywh) or x1, y1, x2, y2 (xyxy). Images
    without ground truth and crowd boxes (iscrowd = 1, matched but never counted as missed)
    are handled as in COCO; no detections at all give mAP 0."""

    image_column = knext.StringParameter("Image id column", "Column naming the image of each box (both tables).",
                                         "image_id")
    class_column = knext.StringParameter("Class column", "Column with the class of each box (both tables).", "class")
    score_column = knext.StringParameter("Score column", "Confidence of each predicted box.", "score")
    box_format = knext.StringParameter("Box format", "xywh: x, y, width, height; xyxy: corners.", "xywh",
                                       enum=["xywh", "xyxy"])
    box_columns = knext.StringParameter("Box columns", "The four box columns in order, comma-separated (both tables).",
                                        "x,y,w,h")
    crowd_column = knext.StringParameter("Crowd / ignore column", "Optional ground-truth column of 0/1 flags: 1 marks a "
                                         "crowd or ignore region (detections on it are neither right nor wrong). "
                                         "Used when the table has it.", "iscrowd")
    tracking = TrackingSettings()

    def _boxes(self) -> list[str]:
        cols = [c.strip() for c in self.box_columns.split(",") if c.strip()]
        if len(cols) != 4:
            raise knext.InvalidParametersError(f"give four box columns, got {len(cols)}: '{self.box_columns}'")
        return cols

    def _check(self, schema, what: str, extra: list[tuple[str, str]]) -> None:
        roles = [("image id column", self.image_column, False), ("class column", self.class_column, False)]
        roles += [("box column", c, True) for c in self._boxes()] + [(label, c, True) for label, c in extra]
        for label, c, numeric in roles:  # boxes, score and crowd flags are numbers; ids and classes text or numbers
            if c not in schema.column_names:
                raise knext.InvalidParametersError(f"{label} '{c}' is not in the {what} table; available: "
                                                   f"{list(schema.column_names)}")
            if numeric and not _numeric(schema[c]):
                raise knext.InvalidParametersError(f"{label} '{c}' of the {what} table is not numeric ({schema[c].ktype})")
            if not numeric and not (_numeric(schema[c]) or schema[c].ktype == knext.string()):
                raise knext.InvalidParametersError(f"{label} '{c}' of the {what} table must be text or a number "
                                                   f"({schema[c].ktype})")

    def configure(self, config_context, pred_schema, gt_schema):
        self._check(pred_schema, "predictions", [("score column", self.score_column)])
        crowd = [("crowd column", self.crowd_column)] if self.crowd_column in gt_schema.column_names else []
        self._check(gt_schema, "ground-truth", crowd)
        return _schema(_SUMMARY), _schema(_PER_CLASS)

    def _frame(self, table, with_score: bool):
        df = table.to_pandas()
        names = ["x", "y", "w", "h"] if self.box_format == "xywh" else ["x1", "y1", "x2", "y2"]
        cols = {self.image_column: "image_id", self.class_column: "class", **dict(zip(self._boxes(), names))}
        if with_score:
            cols[self.score_column] = "score"
        elif self.crowd_column in df.columns:
            cols[self.crowd_column] = "iscrowd"
        return df[list(cols)].rename(columns=cols)

    def execute(self, exec_context, predictions, ground_truth):
        from uop_engine.detection import SUMMARY_KEYS, detection_metrics
        from uop_engine.errors import DataError
        try:
            m = detection_metrics(self._frame(predictions, True), self._frame(ground_truth, False), self.box_format)
        except DataError as e:
            raise ValueError(str(e)) from None
        summary = [{"metric": k, "value": m[k]} for k in SUMMARY_KEYS] + [{"metric": "images", "value": m["images"]}]
        per = [{**p, "class": str(p["class"])} for p in m["per_class"]]
        _record(exec_context, self.tracking, {k: m[k] for k in SUMMARY_KEYS}, "Detection Metrics")
        return _table(summary, _SUMMARY), _table(per, _PER_CLASS)
