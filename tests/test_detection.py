"""Detection metrics equal pycocotools run directly on hand-built COCO data; edge cases; the node."""
import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import knime.extension as knext
from knime_harness import configure_node, load_extension, run_node, table_from_pandas
from uop_engine.detection import SUMMARY_KEYS, detection_metrics
from uop_engine.errors import DataError

load_extension()
from nodes.detection_node import DetectionMetricsNode  # noqa: E402


def random_data(seed, n_img=12, k=3, crowd=False):
    rng = np.random.default_rng(seed)
    gt, dt = [], []
    for im in range(n_img):
        for _ in range(rng.integers(0, 5)):
            x, y, w, h = rng.uniform(0, 200), rng.uniform(0, 200), rng.uniform(5, 120), rng.uniform(5, 120)
            c = int(rng.integers(0, k))
            gt.append({"image_id": f"img{im}", "class": c, "x": x, "y": y, "w": w, "h": h,
                       "iscrowd": int(crowd and rng.random() < 0.15)})
            for _ in range(rng.integers(0, 3)):  # noisy detections of this box, sometimes the wrong class
                j = rng.normal(0, 8, 4)
                dt.append({"image_id": f"img{im}", "class": c if rng.random() < 0.8 else int(rng.integers(0, k)),
                           "x": x + j[0], "y": y + j[1], "w": max(1, w + j[2]), "h": max(1, h + j[3]),
                           "score": float(rng.random())})
        for _ in range(rng.integers(0, 2)):  # false positives
            dt.append({"image_id": f"img{im}", "class": int(rng.integers(0, k)), "x": rng.uniform(0, 200),
                       "y": rng.uniform(0, 200), "w": 30.0, "h": 30.0, "score": float(rng.random())})
    return pd.DataFrame(dt, columns=["image_id", "class", "x", "y", "w", "h", "score"]), pd.DataFrame(gt)


def reference(dt, gt):
    """pycocotools directly, on COCO dicts built by hand (ids as pycocotools expects them); an
    `area` column of the ground truth is passed on as COCO's area."""
    imgs = sorted(set(gt["image_id"]) | set(dt["image_id"]))
    iid = {v: i + 1 for i, v in enumerate(imgs)}
    cats = sorted(set(gt["class"]) | set(dt["class"]))
    cid = {c: i + 1 for i, c in enumerate(cats)}
    anns = [{"id": i + 1, "image_id": iid[r.image_id], "category_id": cid[r._2], "bbox": [r.x, r.y, r.w, r.h],
             "area": getattr(r, "area", r.w * r.h), "iscrowd": int(getattr(r, "iscrowd", 0))} for i, r in enumerate(gt.itertuples())]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": [{"id": i} for i in iid.values()], "annotations": anns,
                        "categories": [{"id": i} for i in cid.values()]}
        coco.createIndex()
        res = coco.loadRes([{"image_id": iid[r.image_id], "category_id": cid[r._2], "bbox": [r.x, r.y, r.w, r.h],
                             "score": r.score} for r in dt.itertuples()])
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("crowd", [False, True])
def test_equals_pycocotools(seed, crowd):
    dt, gt = random_data(seed, crowd=crowd)
    got = detection_metrics(dt, gt)
    ref = reference(dt, gt)
    np.testing.assert_allclose([got[k] for k in SUMMARY_KEYS], ref.stats, rtol=1e-12, atol=1e-12)
    for k, pc in enumerate(got["per_class"]):
        p = ref.eval["precision"][:, :, k, 0, -1]
        assert pc["ap"] == pytest.approx(p[p > -1].mean()) if (p > -1).any() else np.isnan(pc["ap"])


def test_xyxy_boxes_and_string_classes_give_the_same_numbers():
    dt, gt = random_data(5)
    base = detection_metrics(dt, gt)
    names = {0: "cat", 1: "dog", 2: "eel"}
    conv = lambda d: d.assign(x2=d.x + d.w, y2=d.y + d.h, **{"class": d["class"].map(names)}).rename(  # noqa: E731
        columns={"x": "x1", "y": "y1"}).drop(columns=["w", "h"])
    other = detection_metrics(conv(dt), conv(gt), box_format="xyxy")
    np.testing.assert_allclose([other[k] for k in SUMMARY_KEYS], [base[k] for k in SUMMARY_KEYS], atol=1e-12)
    assert [p["class"] for p in other["per_class"]] == ["cat", "dog", "eel"]


def test_empty_detections_and_images_without_ground_truth():
    _, gt = random_data(3)
    empty = pd.DataFrame(columns=["image_id", "class", "x", "y", "w", "h", "score"])
    got = detection_metrics(empty, gt)
    assert got["map"] == 0 and got["ar100"] == 0 and all(p["detections"] == 0 for p in got["per_class"])
    dt, gt = random_data(4)
    extra = pd.DataFrame([{"image_id": "no_gt", "class": 0, "x": 1.0, "y": 1.0, "w": 9.0, "h": 9.0, "score": 0.99}])
    got = detection_metrics(pd.concat([dt, extra]), gt)
    ref = reference(pd.concat([dt, extra]), gt)
    np.testing.assert_allclose([got[k] for k in SUMMARY_KEYS], ref.stats, atol=1e-12)


def test_errors_name_the_problem():
    dt, gt = random_data(0)
    with pytest.raises(DataError, match=r"lacks column\(s\) \['score'\]"):
        detection_metrics(dt.drop(columns=["score"]), gt)
    with pytest.raises(DataError, match="box column"):
        detection_metrics(dt, gt, box_format="xyxy")
    with pytest.raises(DataError, match="no boxes"):
        detection_metrics(dt, gt.iloc[:0])


def test_detection_node_summary_and_per_class(tmp_path):
    from uop_engine.store import ExperimentStore
    dt, gt = random_data(1)
    db = tmp_path / "exp.sqlite"
    res = run_node(DetectionMetricsNode, {"tracking": {"store": str(db)}}, [table_from_pandas(dt), table_from_pandas(gt)])
    summary, per = res.outputs[0].to_pandas(), res.outputs[1].to_pandas()
    ref = reference(dt, gt)
    got = dict(zip(summary["metric"], summary["value"]))
    np.testing.assert_allclose([got[k] for k in SUMMARY_KEYS], ref.stats, atol=1e-12)
    assert len(per) == 3 and set(per.columns) >= {"class", "ap", "ap50", "recall", "gt_boxes", "detections"}
    (run,) = ExperimentStore(db).list_runs()  # recorded with a fingerprint of both tables' scored columns
    assert run["name"] == "Detection Metrics" and run["status"] == "finished" and run["data_fingerprint"]
    assert ExperimentStore(db).last_metrics(run["id"])["map"] == pytest.approx(got["map"])
    with pytest.raises(knext.InvalidParametersError, match="score column 'conf' is not in the predictions table"):
        configure_node(DetectionMetricsNode, {"predictions": {"score_column": "conf"}},
                       [table_from_pandas(dt).schema, table_from_pandas(gt).schema])


def test_area_column_decides_small_medium_large():
    dt, gt = random_data(6, n_img=15)
    gt = gt.assign(area=np.random.default_rng(0).uniform(100, 20000, len(gt)))  # e.g. mask areas
    got, ref = detection_metrics(dt, gt), reference(dt, gt)
    np.testing.assert_allclose([got[k] for k in SUMMARY_KEYS], ref.stats, atol=1e-12)
    plain = detection_metrics(dt, gt.drop(columns=["area"]))
    assert [got[k] for k in ("ap_small", "ap_medium", "ap_large")] != \
        [plain[k] for k in ("ap_small", "ap_medium", "ap_large")]


def test_ignore_column_is_scored_as_crowd_and_box_lists_work():
    dt, gt = random_data(2, crowd=True)
    as_ignore = gt.rename(columns={"iscrowd": "ignore"})
    a, b = detection_metrics(dt, gt), detection_metrics(dt, as_ignore)
    assert [a[k] for k in SUMMARY_KEYS] == [b[k] for k in SUMMARY_KEYS]
    assert gt["iscrowd"].sum() > 0 and a["map"] != detection_metrics(dt, gt.drop(columns=["iscrowd"]))["map"]
    lists = lambda d: d.assign(box=d[["x", "y", "w", "h"]].values.tolist()).drop(columns=["x", "y", "w", "h"])  # noqa: E731
    c = detection_metrics(lists(dt), lists(gt))
    assert [a[k] for k in SUMMARY_KEYS] == [c[k] for k in SUMMARY_KEYS]


def test_only_crowd_ground_truth_and_a_class_without_ground_truth():
    gt = pd.DataFrame([{"image_id": 1, "class": "a", "x": 0.0, "y": 0.0, "w": 50.0, "h": 50.0, "iscrowd": 1},
                       {"image_id": 2, "class": "b", "x": 5.0, "y": 5.0, "w": 40.0, "h": 40.0, "iscrowd": 0}])
    dt = pd.DataFrame([{"image_id": 1, "class": "a", "x": 1.0, "y": 1.0, "w": 48.0, "h": 48.0, "score": 0.9},
                       {"image_id": 2, "class": "b", "x": 5.0, "y": 5.0, "w": 40.0, "h": 40.0, "score": 0.8},
                       {"image_id": 2, "class": "c", "x": 60.0, "y": 5.0, "w": 40.0, "h": 40.0, "score": 0.7}])
    got, ref = detection_metrics(dt, gt), reference(dt, gt)
    np.testing.assert_allclose([got[k] for k in SUMMARY_KEYS], ref.stats, atol=1e-12)
    per = {p["class"]: p for p in got["per_class"]}
    assert np.isnan(per["a"]["ap"]) and per["a"]["gt_boxes"] == 0  # only a crowd box: nothing to find
    assert per["b"]["ap"] == pytest.approx(1.0) and np.isnan(per["c"]["ap"]) and per["c"]["detections"] == 1


def test_missing_ids_bad_flags_and_bad_format():
    dt, gt = random_data(0)
    with pytest.raises(DataError, match="1 row\\(s\\) without a value in column 'image_id'"):
        detection_metrics(dt, gt.assign(image_id=[None] + gt["image_id"].tolist()[1:]))
    with pytest.raises(DataError, match="'iscrowd' of the ground truth table must hold 0/1"):
        detection_metrics(dt, gt.assign(iscrowd=2))
    with pytest.raises(DataError, match="box format 'cxcywh' is not xywh or xyxy"):
        detection_metrics(dt, gt, box_format="cxcywh")
    with pytest.raises(DataError, match="negative width"):
        detection_metrics(dt, gt.assign(w=-gt["w"]))


def test_detection_node_xyxy_renamed_columns_crowd_and_type_checks():
    dt, gt = random_data(2, crowd=True)
    conv = lambda d: d.assign(x2=d.x + d.w, y2=d.y + d.h).rename(  # noqa: E731
        columns={"x": "left", "y": "top", "x2": "right", "y2": "bottom", "image_id": "img", "class": "label",
                 "iscrowd": "flag"}).drop(columns=["w", "h"])
    cols = {"image_column": "img", "class_column": "label", "box_1": "left", "box_2": "top", "box_3": "right",
            "box_4": "bottom"}
    p = {"box_format": "xyxy", "predictions": cols, "truth": {**cols, "crowd_column": "flag"}}
    res = run_node(DetectionMetricsNode, p, [table_from_pandas(conv(dt)), table_from_pandas(conv(gt))])
    got = dict(zip(*res.outputs[0].to_pandas()[["metric", "value"]].T.values))
    np.testing.assert_allclose([got[k] for k in SUMMARY_KEYS], reference(dt, gt).stats, atol=1e-12)
    schemas = [table_from_pandas(dt).schema, table_from_pandas(gt).schema]
    with pytest.raises(knext.InvalidParametersError, match="score column 'class' of the predictions table is not numeric"):
        configure_node(DetectionMetricsNode, {"predictions": {"score_column": "class"}},
                       [table_from_pandas(dt.assign(**{"class": dt["class"].astype(str)})).schema, schemas[1]])
    with pytest.raises(knext.InvalidParametersError, match="box columns of the predictions table must differ"):
        configure_node(DetectionMetricsNode, {"predictions": {"box_3": "x"}}, schemas)
    with pytest.raises(knext.InvalidParametersError, match="box height / bottom y column 'h2' is not in the "
                       "ground-truth table"):
        configure_node(DetectionMetricsNode, {"truth": {"box_4": "h2"}}, schemas)


def test_detection_node_with_no_detections():
    import pyarrow as pa
    from knime_harness import table_from_pyarrow
    dt, gt = random_data(3)
    empty = pa.Table.from_pandas(dt, preserve_index=False).slice(0, 0)  # typed columns, no rows
    res = run_node(DetectionMetricsNode, {}, [table_from_pyarrow(empty), table_from_pandas(gt)])
    got = dict(zip(*res.outputs[0].to_pandas()[["metric", "value"]].T.values))
    assert got["map"] == 0 and got["images"] == gt["image_id"].nunique()
    assert (res.outputs[1].to_pandas()["detections"] == 0).all()
