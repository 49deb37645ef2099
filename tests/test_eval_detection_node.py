"""Detection Metrics node column choices (guessed, chosen, None) and engine checks, vs pycocotools."""
import json

import numpy as np
import pandas as pd
import pytest

import knime.extension as knext
from knime_harness import configure_node, dialog, load_extension, run_node, table_from_pandas
from test_detection import random_data, reference
from uop_engine.detection import SUMMARY_KEYS, detection_metrics
from uop_engine.errors import DataError

load_extension()
from nodes.detection_node import DetectionMetricsNode  # noqa: E402


def summary(res) -> dict:
    df = res.outputs[0].to_pandas()
    return dict(zip(df["metric"], df["value"]))


def test_per_class_ap_and_recall_equal_pycocotools():
    for seed in (7, 8, 9):
        dt, gt = random_data(seed, n_img=20, k=4, crowd=True)
        got, ref = detection_metrics(dt, gt), reference(dt, gt)
        prec, rec = ref.eval["precision"], ref.eval["recall"]
        for k, pc in enumerate(got["per_class"]):
            p, r = prec[:, :, k, 0, -1], rec[:, k, 0, -1]
            if (p > -1).any():
                assert pc["ap"] == pytest.approx(p[p > -1].mean(), abs=1e-12)
                assert pc["recall"] == pytest.approx(r[r > -1].mean(), abs=1e-12)
            else:
                assert np.isnan(pc["ap"]) and np.isnan(pc["recall"])


def test_names_in_one_table_and_numbers_in_the_other_are_refused():
    dt, gt = random_data(0)
    with pytest.raises(DataError, match="'class' column holds number values in the ground-truth table but text"):
        detection_metrics(dt.assign(**{"class": dt["class"].astype(str)}), gt)


def test_guessed_xyxy_columns_equal_chosen_ones():
    dt, gt = random_data(4, crowd=True)
    conv = lambda d: d.assign(xmax=d.x + d.w, ymax=d.y + d.h).rename(  # noqa: E731
        columns={"x": "xmin", "y": "ymin", "class": "label", "image_id": "image"}).drop(columns=["w", "h"])
    res = run_node(DetectionMetricsNode, {"box_format": "xyxy"}, [table_from_pandas(conv(dt)),
                                                                  table_from_pandas(conv(gt))])
    np.testing.assert_allclose([summary(res)[k] for k in SUMMARY_KEYS], reference(dt, gt).stats, atol=1e-12)


def test_crowd_none_and_area_columns():
    dt, gt = random_data(5, n_img=15, crowd=True)
    gt = gt.assign(area=np.random.default_rng(1).uniform(100, 20000, len(gt)))
    tables = [table_from_pandas(dt), table_from_pandas(gt)]
    auto = summary(run_node(DetectionMetricsNode, {}, tables))  # iscrowd and area picked up by name
    np.testing.assert_allclose([auto[k] for k in SUMMARY_KEYS], reference(dt, gt).stats, atol=1e-12)
    none = summary(run_node(DetectionMetricsNode, {"truth": {"crowd_column": "<none>", "area_column": "<none>"}},
                            tables))
    plain = gt.drop(columns=["area"]).assign(iscrowd=0)
    np.testing.assert_allclose([none[k] for k in SUMMARY_KEYS], reference(dt, plain).stats, atol=1e-12)
    flags = gt.assign(crowd_flag=gt["iscrowd"].astype(bool)).drop(columns=["iscrowd"])  # a boolean flag column
    by_bool = summary(run_node(DetectionMetricsNode, {"truth": {"crowd_column": "crowd_flag"}},
                               [tables[0], table_from_pandas(flags)]))
    assert [by_bool[k] for k in SUMMARY_KEYS] == [auto[k] for k in SUMMARY_KEYS]


def test_configure_names_the_missing_or_wrong_column():
    dt, gt = random_data(1)
    schemas = [table_from_pandas(dt.drop(columns=["score"])).schema, table_from_pandas(gt).schema]
    with pytest.raises(knext.InvalidParametersError, match="choose the score column of the predictions table"):
        configure_node(DetectionMetricsNode, {}, schemas)
    schemas = [table_from_pandas(dt).schema, table_from_pandas(gt.assign(image_id=[[1]] * len(gt))).schema]
    with pytest.raises(knext.InvalidParametersError, match="image id column 'image_id' of the ground-truth table must "
                       "be text or a number"):
        configure_node(DetectionMetricsNode, {}, schemas)
    with pytest.raises(knext.InvalidParametersError, match="box x \\(left\\) column 'x1' is not in the predictions"):
        configure_node(DetectionMetricsNode, {"predictions": {"box_1": "x1"}},
                       [table_from_pandas(dt).schema, table_from_pandas(gt).schema])
    with pytest.raises(knext.InvalidParametersError, match="image id column 'image_id' of the predictions table "
                       "holds numbers but 'image_id' of the ground-truth table holds text"):
        run_node(DetectionMetricsNode, {}, [table_from_pandas(dt.assign(image_id=dt["image_id"].str[3:].astype(int))),
                                            table_from_pandas(gt)])


def test_dialog_offers_numeric_columns_for_boxes():
    dt, gt = random_data(1)
    d = dialog(DetectionMetricsNode, {}, [table_from_pandas(dt).schema, table_from_pandas(gt).schema])
    text = json.dumps(d["ui_schema"])
    assert "Box width (xywh) or right x (xyxy)" in text and "Crowd / ignore flag" in text
