"""Data layer: tables to float32 tensors (numeric columns, list columns, PNG image columns),
missing values, class encoding, streaming equal to one-shot, and schema checks that name
the column."""
import io
import json

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from uop_engine.data import FeatureSpec, infer_feature_spec, iter_arrays, table_to_arrays
from uop_engine.errors import DataError
from uop_engine.images import png_bytes


def numeric_table(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    labels = np.array(["cat", "dog", "emu"])[rng.integers(0, 3, n)]
    return pa.table({"a": x[:, 0], "b": x[:, 1].astype(np.float32), "c": (x[:, 2] * 10).astype(np.int64),
                     "label": labels, "price": x.sum(1)}), x, labels


def test_numeric_columns_float64_to_float32_and_string_classes():
    t, x, labels = numeric_table()
    spec = infer_feature_spec(t.schema, ["a", "b", "c"], target="label")
    assert spec.kinds == {"x": "columns"} and spec.task == "classification"
    X, y = table_to_arrays(t, spec)
    assert X.dtype == np.float32 and X.shape == (50, 3) and X.flags.c_contiguous
    ref = np.stack([x[:, 0], x[:, 1].astype(np.float32), (x[:, 2] * 10).astype(np.int64)], 1).astype(np.float32)
    np.testing.assert_array_equal(X, ref)  # exact: each value is cast to float32 once
    assert spec.classes == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(np.array(spec.classes)[y], labels)
    # regression target: float32 values
    rspec = infer_feature_spec(t, ["a", "b"], target="price")
    assert rspec.task == "regression"
    _, yr = table_to_arrays(t, rspec)
    assert yr.dtype == np.float32 and np.allclose(yr, x.sum(1), atol=1e-6)


def test_spec_json_round_trip_and_reshape():
    t = pa.table({f"p{i}": np.arange(6, dtype=np.float64) + i for i in range(4)} | {"y": np.arange(6) % 2})
    spec = infer_feature_spec(t.schema, [f"p{i}" for i in range(4)], "y", input_shape=(1, 2, 2))
    X, y = table_to_arrays(t, spec)
    assert X.shape == (6, 1, 2, 2) and y.tolist() == [0, 1, 0, 1, 0, 1]
    back = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec and back.to_dict()["inputs"] == {"x": ["p0", "p1", "p2", "p3"]}
    X2, _ = table_to_arrays(t, back)
    np.testing.assert_array_equal(X, X2)
    with pytest.raises(DataError, match=r"shape \(1, 3, 3\) = 9 values per sample but 4 feature columns"):
        infer_feature_spec(t.schema, [f"p{i}" for i in range(4)], "y", input_shape=(1, 3, 3))


def test_vector_column_list_and_fixed_size_list():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((20, 6))
    lists = pa.array(list(v), pa.list_(pa.float64()))
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(v.ravel().astype(np.float32)), 6)
    t = pa.table({"vec": lists, "fixed": fixed, "y": rng.integers(0, 2, 20)})
    for col in ("vec", "fixed"):
        spec = infer_feature_spec(t.schema, [col], "y", input_shape=(2, 3))
        assert spec.kinds["x"] == "vector"
        X, y = table_to_arrays(t.slice(3, 12), spec)  # a slice: offsets must be respected
        assert X.shape == (12, 2, 3) and X.dtype == np.float32
        np.testing.assert_array_equal(X.reshape(12, 6), v[3:15].astype(np.float32))
    ragged = pa.table({"vec": pa.array([[1.0, 2.0], [1.0]]), "y": [0, 1]})
    with pytest.raises(DataError, match="list column 'vec' has lists of 1 to 2 values"):
        table_to_arrays(ragged, infer_feature_spec(ragged.schema, ["vec"], "y"))
    with pytest.raises(DataError, match="only feature column"):
        infer_feature_spec(t.schema, ["vec", "y"])


def test_image_png_column_to_chw_float():
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    rgb = rng.integers(0, 256, (5, 4, 6, 3), dtype=np.uint8)
    t = pa.table({"img": pa.array([png_bytes(g) for g in grey], pa.binary()),
                  "rgb": pa.array([png_bytes(c) for c in rgb], pa.large_binary()), "y": list("abcab")})
    spec = infer_feature_spec(t.schema, ["img"], "y", input_shape=(1, 8, 8))
    assert spec.kinds["x"] == "image" and spec.images["x"] == {"mode": "L", "size": [8, 8]}
    X, y = table_to_arrays(t, spec)
    assert X.shape == (5, 1, 8, 8) and X.dtype == np.float32
    np.testing.assert_allclose(X[:, 0], grey / 255.0, atol=1e-7)
    assert spec.classes == ["a", "b", "c"] and y.tolist() == [0, 1, 2, 0, 1]
    # size and mode learnt from the data when the spec gives no C x H x W shape
    spec2 = infer_feature_spec(t.schema, "rgb", "y")
    X2, _ = table_to_arrays(t, spec2)
    assert spec2.images["x"] == {"mode": "RGB", "size": [4, 6]} and X2.shape == (5, 3, 4, 6)
    np.testing.assert_allclose(X2, rgb.transpose(0, 3, 1, 2) / 255.0, atol=1e-7)
    # a grey image read as RGB is converted by Pillow; a wrong size and bad bytes name the row
    X3, _ = table_to_arrays(t, infer_feature_spec(t.schema, "img", "y", input_shape=(3, 8, 8)))
    np.testing.assert_allclose(X3[:, 1], grey / 255.0, atol=1e-7)
    with pytest.raises(DataError, match=r"image column 'img', row 0: the image is 8x8 pixels .* needs 4x4"):
        table_to_arrays(t, infer_feature_spec(t.schema, "img", "y", input_shape=(1, 4, 4)))
    bad = pa.table({"img": pa.array([png_bytes(grey[0]), b"not a png"], pa.binary())})
    with pytest.raises(DataError, match="image column 'img', row 1: the bytes are not a readable image"):
        table_to_arrays(bad, infer_feature_spec(bad.schema, "img", input_shape=(1, 8, 8)))


def test_missing_values_error_names_column_and_rows():
    t = pa.table({"a": [1.0, np.nan, 3.0, 4.0, None], "b": [1, 2, None, 4, 5], "y": [0, 1, 0, 1, 0]})
    spec = infer_feature_spec(t.schema, ["a", "b"], "y")
    with pytest.raises(DataError, match=r"column 'a' has 2 missing value\(s\) \(null or NaN\) in 2 of 5 rows"):
        table_to_arrays(t, spec)
    # streamed in batches of 2 rows, the error still counts the whole table
    with pytest.raises(DataError, match="column 'a' has 2 missing value.* in 2 of 5 rows"):
        list(iter_arrays(t, spec, batch_size=2))
    with pytest.raises(DataError, match="'b' has 1 missing"):
        table_to_arrays(t.select(["b", "y"]), infer_feature_spec(t.schema, ["b"], "y"))
    vec = pa.table({"v": pa.array([[1.0, 2.0], None, [np.nan, 1.0]]), "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="column 'v' has 2 missing value.* in 2 of 3 rows"):
        table_to_arrays(vec, infer_feature_spec(vec.schema, ["v"], "y"))
    tgt = pa.table({"a": [1.0, 2.0], "y": ["u", None]})
    with pytest.raises(DataError, match="column 'y' has 1 missing"):
        table_to_arrays(tgt, infer_feature_spec(tgt.schema, ["a"], "y"))


def test_skip_rows_policy_drops_incomplete_rows():
    t = pa.table({"a": [1.0, np.nan, 3.0, 4.0, None, 6.0], "b": [1, 2, None, 4, 5, 6],
                  "v": pa.array([[1.0], [2.0], [3.0], None, [5.0], [6.0]]), "y": ["p", "q", "p", "q", "p", None]})
    spec = infer_feature_spec(t.schema, ["a", "b"], "y", missing="skip_rows")
    stats = {}
    X, y = table_to_arrays(t, spec, stats=stats)
    assert X.tolist() == [[1.0, 1.0], [4.0, 4.0]] and y.tolist() == [0, 1]  # rows 1, 2, 4 (features), 5 (target)
    assert stats == {"rows": 6, "skipped": 4}
    Xv, yv = table_to_arrays(t, infer_feature_spec(t.schema, ["v"], "y", missing="skip_rows"))
    assert Xv.ravel().tolist() == [1.0, 2.0, 3.0, 5.0] and yv.tolist() == [0, 1, 0, 0]


def test_streaming_many_small_batches_equals_one_shot():
    rng = np.random.default_rng(3)
    n = 1000
    cols = {f"f{i}": rng.standard_normal(n) for i in range(5)}
    t = pa.table(cols | {"vec": pa.array(list(rng.standard_normal((n, 4))), pa.list_(pa.float64())),
                         "y": rng.integers(0, 7, n)})
    for feats in (list(cols), ["vec"]):
        spec = infer_feature_spec(t.schema, feats, "y")
        X, y = table_to_arrays(t, spec)
        small = t.to_batches(max_chunksize=7)  # 143 record batches, cut across the output batches
        assert len(small) > 100
        parts = list(iter_arrays(iter(small), FeatureSpec.from_dict(spec.to_dict()), batch_size=64))
        assert [len(p[0]) for p in parts] == [64] * 15 + [40]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), X)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)
        per_batch = list(iter_arrays(t.to_batches(max_chunksize=300), spec, batch_size=None))
        assert [len(p[0]) for p in per_batch] == [300, 300, 300, 100]
    # a stream cannot learn the classes from one batch: it needs them up front
    with pytest.raises(DataError, match="class list of target column 'y' is unknown"):
        list(iter_arrays(iter(t.to_batches(max_chunksize=10)), infer_feature_spec(t.schema, ["f0"], "y")))


def test_unseen_label_in_validation_data_is_an_error():
    train = pa.table({"a": [1.0, 2.0, 3.0], "y": ["cat", "dog", "cat"]})
    spec = infer_feature_spec(train.schema, ["a"], "y")
    table_to_arrays(train, spec)
    val = pa.table({"a": [1.0, 2.0], "y": ["dog", "bird"]})
    with pytest.raises(DataError, match=r"target column 'y' has label\(s\) \['bird'\] \(first at row 1\) that are "
                                        r"not among the training classes \['cat', 'dog'\]"):
        table_to_arrays(val, spec)


def test_wrong_columns_and_types_are_named():
    t, _, _ = numeric_table()
    with pytest.raises(DataError, match="feature column 'height' is not in the table; available columns: a, b, c, "
                                        "label, price"):
        infer_feature_spec(t.schema, ["a", "height"], "label")
    with pytest.raises(DataError, match="target column 'kind' is not in the table"):
        infer_feature_spec(t.schema, ["a"], "kind")
    with pytest.raises(DataError, match="feature column 'label' has type string"):
        infer_feature_spec(t.schema, ["a", "label"], "price")
    with pytest.raises(DataError, match="target column 'label' has type string, which cannot be a regression"):
        infer_feature_spec(t.schema, ["a"], "label", task="regression")
    with pytest.raises(DataError, match="both the target and a feature"):
        infer_feature_spec(t.schema, ["a", "price"], "price")
    # no features named: every numeric column but the target
    assert infer_feature_spec(t.schema, None, "price").features == ["a", "b", "c"]


def test_image_from_pil_through_knime_style_large_binary():
    im = Image.fromarray(np.full((3, 3), 255, np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    t = pa.table({"img": pa.array([buf.getvalue()], pa.large_binary())})
    X, y = table_to_arrays(t, infer_feature_spec(t.schema, "img"))
    assert y is None and X.shape == (1, 1, 3, 3) and np.all(X == 1.0)
