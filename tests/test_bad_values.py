"""Values a float32 tensor cannot take: NaN next to nulls in a regression target, NaN in a
float class target, infinities and float64 values beyond float32's range. Each is an error
naming the column and counting values and rows over the whole table, or a skipped row under
'skip_rows'; none converts silently (RuntimeWarnings are errors here)."""
import warnings

import numpy as np
import pyarrow as pa
import pytest

from uop_engine.data import FeatureSpec, infer_feature_spec, iter_arrays, table_to_arrays
from uop_engine.errors import DataError

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
BIG = 1e39  # a finite float64 that float32 cannot hold


def test_regression_target_with_both_null_and_nan_skips_and_counts_both():
    # one chunk holding a null and a NaN: the NaN used to slip through, and training then diverged
    t = pa.table({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "y": pa.array([1.0, None, np.nan, 4.0, 5.0])})
    assert t.column("y").num_chunks == 1 and t.column("y").null_count == 1
    stats = {}
    X, y = table_to_arrays(t, infer_feature_spec(t.schema, ["a"], "y", missing="skip_rows"), stats=stats)
    assert X.ravel().tolist() == [1.0, 4.0, 5.0] and y.tolist() == [1.0, 4.0, 5.0]
    assert stats == {"rows": 5, "skipped": 2}
    with pytest.raises(DataError, match=r"column 'y' has 2 missing value\(s\) \(null or NaN\) in 2 of 5 rows"):
        table_to_arrays(t, infer_feature_spec(t.schema, ["a"], "y"))
    # streamed in batches, the count still covers the whole table
    with pytest.raises(DataError, match=r"column 'y' has 2 missing value\(s\) .* in 2 of 5 rows"):
        list(iter_arrays(t, infer_feature_spec(t.schema, ["a"], "y"), batch_size=2))
    # several chunks, nulls in one and NaN in another
    t2 = pa.Table.from_batches([pa.record_batch({"a": [1.0, 2.0], "y": [None, 2.0]}),
                                pa.record_batch({"a": [3.0, 4.0], "y": [np.nan, 4.0]})])
    X2, y2 = table_to_arrays(t2, infer_feature_spec(t2.schema, ["a"], "y", missing="skip_rows"))
    assert X2.ravel().tolist() == [2.0, 4.0] and y2.tolist() == [2.0, 4.0]


def test_nan_in_a_float_class_target_is_a_missing_label():
    t = pa.table({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "y": pa.array([0.0, 1.0, np.nan, None, 1.0])})
    spec = infer_feature_spec(t.schema, ["a"], "y", task="classification", missing="skip_rows")
    stats = {}
    X, y = table_to_arrays(t, spec, stats=stats)
    assert spec.classes == [0, 1] and X.ravel().tolist() == [1.0, 2.0, 5.0] and y.tolist() == [0, 1, 1]
    assert stats == {"rows": 5, "skipped": 2}
    with pytest.raises(DataError, match=r"column 'y' has 2 missing value\(s\) \(null or NaN\) in 2 of 5 rows"):
        table_to_arrays(t, infer_feature_spec(t.schema, ["a"], "y", task="classification"))
    # a streamed validation table with the training classes: still missing, not an unseen label
    val = pa.table({"a": [1.0, 2.0], "y": [np.nan, 1.0]})
    vspec = FeatureSpec.from_dict(spec.to_dict() | {"missing": "error"})
    with pytest.raises(DataError, match=r"column 'y' has 1 missing value\(s\)"):
        list(iter_arrays(iter(val.to_batches()), vspec))
    # a real unseen label next to a NaN is still named as such
    odd = pa.table({"a": [1.0, 2.0, 3.0], "y": [np.nan, 7.0, 0.0]})
    with pytest.raises(DataError, match=r"label\(s\) \[7.0\] \(first at row 1\) that are not among the training "
                                        r"classes \[0, 1\]"):
        table_to_arrays(odd, vspec)


@pytest.mark.parametrize("k", [3, 40])  # both write strategies: strided columns and the transposed block
def test_infinite_and_too_large_features_name_the_column(k):
    n = 7
    cols = {f"c{i}": np.arange(n, dtype=np.float64) + i for i in range(k)}
    cols["c1"] = np.array([0.0, np.inf, 2.0, -BIG, 4.0, 5.0, -np.inf])
    cols["c2"] = np.arange(n, dtype=np.float32)
    t = pa.table(cols | {"y": np.arange(n) % 2})
    feats = list(cols)
    with pytest.raises(DataError, match=r"column 'c1' has 2 infinite value\(s\) and 1 value\(s\) too large for "
                                        r"float32 \(\|x\| > 3.4e\+38\) in 3 of 7 rows.*'skip_rows'"):
        table_to_arrays(t, infer_feature_spec(t.schema, feats, "y"))
    with pytest.raises(DataError, match=r"column 'c1' has 2 infinite .* in 3 of 7 rows"):
        list(iter_arrays(t, infer_feature_spec(t.schema, feats, "y"), batch_size=2))
    X, y = table_to_arrays(t, infer_feature_spec(t.schema, feats, "y", missing="skip_rows"))
    keep = [0, 2, 4, 5]
    ref = np.stack([cols[c] for c in feats], 1)[keep].astype(np.float32)
    np.testing.assert_array_equal(X, ref)
    assert y.tolist() == [0, 0, 0, 1]
    # the largest float32 itself converts: the limit is exact
    edge = pa.table({"a": [float(np.finfo(np.float32).max), -float(np.finfo(np.float32).max)]})
    X, _ = table_to_arrays(edge, infer_feature_spec(edge.schema, ["a"]))
    assert np.isfinite(X).all()


def test_infinite_values_in_list_columns_and_regression_targets():
    v = pa.table({"v": pa.array([[1.0, np.inf], [BIG, 2.0], [1.0, 2.0], [-np.inf, -np.inf]]), "y": [1.0, 2, 3, 4]})
    with pytest.raises(DataError, match=r"column 'v' has 3 infinite value\(s\) and 1 value\(s\) too large .* in "
                                        r"3 of 4 rows"):
        table_to_arrays(v, infer_feature_spec(v.schema, ["v"], "y"))
    X, y = table_to_arrays(v, infer_feature_spec(v.schema, ["v"], "y", missing="skip_rows"))
    assert X.tolist() == [[1.0, 2.0]] and y.tolist() == [3.0]
    # a list column with a null list as well: the null is reported first (a missing value)
    vn = pa.table({"v": pa.array([[1.0, np.inf], None, [1.0, 2.0]])})
    with pytest.raises(DataError, match=r"column 'v' has 1 missing value"):
        table_to_arrays(vn, infer_feature_spec(vn.schema, ["v"]))
    Xn, _ = table_to_arrays(vn, infer_feature_spec(vn.schema, ["v"], missing="skip_rows"))
    assert Xn.tolist() == [[1.0, 2.0]]
    r = pa.table({"a": [1.0, 2.0, 3.0, 4.0], "y": pa.array([1.0, np.inf, None, BIG])})
    with pytest.raises(DataError, match=r"column 'y' has 1 missing value"):  # nulls first, then infinities
        table_to_arrays(r, infer_feature_spec(r.schema, ["a"], "y"))
    r2 = r.filter(pa.array([True, True, False, True]))
    with pytest.raises(DataError, match=r"column 'y' has 1 infinite value\(s\) and 1 value\(s\) too large .* in "
                                        r"2 of 3 rows"):
        table_to_arrays(r2, infer_feature_spec(r2.schema, ["a"], "y"))
    X, y = table_to_arrays(r, infer_feature_spec(r.schema, ["a"], "y", missing="skip_rows"))
    assert X.ravel().tolist() == [1.0] and y.tolist() == [1.0]


def test_large_tables_mark_exactly_the_bad_rows_across_blocks_and_threads():
    # 64 float64 columns x 60k rows = 15 MB of float32 output: several row blocks filled by threads
    rng = np.random.default_rng(0)
    n, k = 60_000, 64
    data = rng.standard_normal((k, n))
    bad_rows = {5: np.nan, 4_095: np.inf, 4_096: -BIG, 33_333: -np.inf, n - 1: np.nan}
    for i, (r, val) in enumerate(bad_rows.items()):
        data[(7 * i) % k, r] = val
    t = pa.table({f"c{j}": data[j] for j in range(k)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, _ = table_to_arrays(t, infer_feature_spec(t.schema, None, missing="skip_rows"))
    keep = np.setdiff1d(np.arange(n), list(bad_rows))
    np.testing.assert_array_equal(X, data.T[keep].astype(np.float32))


def test_infinity_in_a_float_class_target_is_no_class():
    t = pa.table({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "y": pa.array([0.0, np.inf, 1.0, -np.inf, 1.0])})
    spec = infer_feature_spec(t.schema, ["a"], "y", task="classification", missing="skip_rows")
    stats = {}
    X, y = table_to_arrays(t, spec, stats=stats)
    assert spec.classes == [0, 1] and X.ravel().tolist() == [1.0, 3.0, 5.0] and y.tolist() == [0, 1, 1]
    assert stats == {"rows": 5, "skipped": 2}
    with pytest.raises(DataError, match=r"column 'y' has 2 infinite value\(s\) in 2 of 5 rows"):
        table_to_arrays(t, infer_feature_spec(t.schema, ["a"], "y", task="classification"))
    # the streamed trainer's class scan leaves infinities out the same way
    from uop_engine.stream_train import _stream_classes
    assert _stream_classes(iter(t.to_batches(max_chunksize=2)), "y") == [0, 1]


def test_errors_advise_the_setting_of_the_place_that_raised_them():
    from uop_engine import GraphBuilder
    from uop_engine.compile import compile_graph
    from uop_engine.model_bundle import ModelBundle
    from uop_engine.predict import iter_predict_table, predict_table
    t = pa.table({"a": [1.0, np.nan, 3.0, 4.0, np.nan, 6.0], "y": [0, 1, 0, 1, 0, 1]})
    with pytest.raises(DataError, match=r"set 'Rows with missing values' \(the feature spec's missing-value policy\) "
                                        r"to 'skip_rows'$"):
        table_to_arrays(t, infer_feature_spec(t.schema, ["a"], "y"))
    g = GraphBuilder("one")
    g.linear(g.input((1,)), out_features=2)
    bundle = ModelBundle.from_model(compile_graph(g.build(), seed=0), task="classification", classes=[0, 1],
                                    feature_spec={"inputs": {"x": ["a"]}, "target": "y", "missing": "error"})
    # a table of three chunks: the count covers all of them, and the advice is inference's
    chunked = pa.Table.from_batches(t.to_batches(max_chunksize=2))
    with pytest.raises(DataError, match=r"column 'a' has 2 missing value\(s\) \(null or NaN\) in 2 of 6 rows.*"
                                        r"set the feature spec's missing-value policy to 'skip_rows' \(such rows then "
                                        r"get missing predictions\)$"):
        predict_table(bundle, chunked)
    # a one-pass iterator cannot be read again: that batch's count, still inference's advice
    with pytest.raises(DataError, match=r"in 1 of 2 rows.*get missing predictions\)$"):
        list(iter_predict_table(bundle, iter(t.to_batches(max_chunksize=2))))
