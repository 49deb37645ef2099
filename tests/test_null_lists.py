"""Null rows of list columns: a fixed-size list keeps a slot of values under a null row (whatever
was written there), which must never be read as that row's sample. Under 'skip_rows' the row is
left out (training) or gets a missing prediction (inference); under 'error' it is a missing value
named by column. A null value inside a (variable or fixed-size) list is a missing value too."""
import numpy as np
import pyarrow as pa
import pytest

from uop_engine import GraphBuilder
from uop_engine.data import infer_feature_spec, iter_arrays, table_to_arrays
from uop_engine.errors import DataError
from uop_engine.predict import predict_table
from uop_engine.table_train import spec_for_graph, train_table
from uop_engine.train import TrainConfig

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def fixed(values, k, nulls):
    """A fixed-size list column whose null rows still hold `values` underneath (as Arrow keeps them)."""
    return pa.FixedSizeListArray.from_arrays(pa.array(values), k, mask=pa.array(nulls))


def test_a_null_fixed_size_list_row_is_missing_not_the_values_beneath_it():
    # the values under the null row are finite, NaN and too large for float32: none may show through
    for beneath in ([3.0, 4.0], [np.nan, 4.0], [1e39, 4.0]):
        t = pa.table({"v": fixed([1.0, 2.0, *beneath, 5.0, 6.0], 2, [False, True, False]), "y": [1.0, 2.0, 3.0]})
        stats = {}
        X, y = table_to_arrays(t, infer_feature_spec(t.schema, ["v"], "y", missing="skip_rows"), stats=stats)
        assert X.tolist() == [[1.0, 2.0], [5.0, 6.0]] and y.tolist() == [1.0, 3.0]
        assert stats == {"rows": 3, "skipped": 1}
        with pytest.raises(DataError, match=r"column 'v' has 1 missing value\(s\) \(null or NaN\) in 1 of 3 rows"):
            table_to_arrays(t, infer_feature_spec(t.schema, ["v"], "y"))
    # a sliced column (non-zero offset), streamed in batches of 2: the same rows go
    t = pa.table({"v": fixed(np.arange(12.0), 2, [False, False, True, False, True, False]),
                  "y": np.arange(6.0)}).slice(1)
    parts = list(iter_arrays(t, infer_feature_spec(t.schema, ["v"], "y", missing="skip_rows"), batch_size=2))
    assert np.concatenate([p[0] for p in parts]).tolist() == [[2.0, 3.0], [6.0, 7.0], [10.0, 11.0]]
    assert np.concatenate([p[1] for p in parts]).tolist() == [1.0, 3.0, 5.0]


def test_nulls_inside_lists_and_null_target_lists_are_missing():
    t = pa.table({"v": pa.array([[1.0, None], [2.0, 3.0], None, [4.0, 5.0]]),
                  "w": fixed([1.0, None, 2.0, 3.0, 0.0, 0.0, 4.0, 5.0], 2, [False, False, False, False]),
                  "y": [1.0, 2.0, 3.0, 4.0]})
    X, y = table_to_arrays(t, infer_feature_spec(t.schema, ["v"], "y", missing="skip_rows"))
    assert X.tolist() == [[2.0, 3.0], [4.0, 5.0]] and y.tolist() == [2.0, 4.0]
    with pytest.raises(DataError, match=r"column 'v' has 2 missing value\(s\) .* in 2 of 4 rows"):
        table_to_arrays(t, infer_feature_spec(t.schema, ["v"], "y"))
    X, y = table_to_arrays(t, infer_feature_spec(t.schema, ["w"], "y", missing="skip_rows"))
    assert X.tolist() == [[2.0, 3.0], [0.0, 0.0], [4.0, 5.0]] and y.tolist() == [2.0, 3.0, 4.0]
    # a vector regression target stored as a fixed-size list with a null row
    r = pa.table({"a": [1.0, 2.0, 3.0], "t": fixed([1.0, 2.0, 9.0, 9.0, 5.0, 6.0], 2, [False, True, False])})
    X, y = table_to_arrays(r, infer_feature_spec(r.schema, ["a"], "t", missing="skip_rows"))
    assert X.ravel().tolist() == [1.0, 3.0] and y.tolist() == [[1.0, 2.0], [5.0, 6.0]]
    with pytest.raises(DataError, match=r"column 't' has 1 missing value"):
        table_to_arrays(r, infer_feature_spec(r.schema, ["a"], "t"))


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    return X, np.array(["a", "b"])[(X[:, 0] > 0).astype(int)]


def _mlp():
    g = GraphBuilder("fsl")
    g.linear(g.relu(g.linear(g.input((4,)), out_features=8)), out_features=2)
    return g.build()


def test_training_and_inference_leave_null_fixed_size_list_rows_out():
    X, labels = _blobs()
    nulls = np.zeros(len(X), bool)
    nulls[[3, 17, 40]] = True
    garbage = X.copy()
    garbage[nulls] = 1e6  # what sits beneath the null rows: training on it would change the weights
    t = pa.table({"v": fixed(garbage.ravel(), 4, nulls), "label": labels})
    clean = pa.table({"v": pa.FixedSizeListArray.from_arrays(pa.array(X[~nulls].ravel()), 4),
                      "label": labels[~nulls]})
    graph, cfg = _mlp(), TrainConfig(epochs=2, batch_size=8, lr=0.05, seed=1)
    spec = spec_for_graph(t.schema, graph, ["v"], "label", "cross_entropy", missing="skip_rows")
    got = train_table(graph, t, spec, cfg)
    ref = train_table(graph, clean, spec, cfg)
    assert got.record["rows_skipped"] == 3 and got.record["n_train"] == len(X) - 3
    for k, w in ref.weights().items():
        np.testing.assert_array_equal(got.weights()[k], w)
    with pytest.raises(DataError, match=r"column 'v' has 3 missing value\(s\) .* in 3 of 60 rows"):
        train_table(graph, t, spec_for_graph(t.schema, graph, ["v"], "label", "cross_entropy"), cfg)
    bundle = got.bundle(feature_spec=got.feature_spec)
    out = predict_table(bundle, t.select(["v"]), probabilities=False)
    pred = out.column("Prediction (label)").to_pylist()
    assert [i for i, p in enumerate(pred) if p is None] == [3, 17, 40]
    want = predict_table(bundle, clean.select(["v"]), probabilities=False).column("Prediction (label)").to_pylist()
    assert [p for p in pred if p is not None] == want
    with pytest.raises(DataError, match=r"column 'v' has 3 missing value\(s\) .* in 3 of 60 rows"):
        predict_table(bundle, t.select(["v"]), feature_spec={**got.feature_spec, "missing": "error"})
