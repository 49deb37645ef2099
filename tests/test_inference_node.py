"""Run Inference through the knime.extension double: cancelling stops between model batches
inside one large input batch (with progress per model batch), and table values a float32
tensor cannot hold are named by column."""
import numpy as np
import pyarrow as pa
import pytest

from knime_harness import load_extension, make_exec_context, progress, run_node, table_from_pyarrow
from uop_engine import GraphBuilder
from uop_engine.compile import compile_graph
from uop_engine.model_bundle import ModelBundle

load_extension()
from nodes.inference_node import RunInferenceNode  # noqa: E402
from nodes.model_port import model_object  # noqa: E402

COLS = [f"f{i}" for i in range(4)]


@pytest.fixture(scope="module")
def model():
    g = GraphBuilder("mlp")
    g.linear(g.relu(g.linear(g.input((4,)), out_features=8)), out_features=3)
    bundle = ModelBundle.from_model(compile_graph(g.build(), seed=0), task="classification", classes=["a", "b", "c"],
                                    feature_spec={"inputs": {"x": COLS}, "target": "label"})
    return model_object(bundle)


def table(n: int, seed: int = 0) -> pa.Table:
    x = np.random.default_rng(seed).standard_normal((n, 4))
    return pa.table({c: x[:, i] for i, c in enumerate(COLS)})


def test_cancel_stops_between_model_batches_of_one_input_batch(model):
    rows = table(5000)
    one_batch = table_from_pyarrow(rows, batch_size=5000)  # KNIME hands all rows over at once
    assert len(list(one_batch.batches())) == 1
    ctx = make_exec_context(RunInferenceNode, cancel_after=4)  # the input batch + 3 model batches, then cancel
    with pytest.raises(RuntimeError, match=r"Execution canceled \(prediction cancelled after 300 rows\)"):
        run_node(RunInferenceNode, {"batch_size": 100}, [model, one_batch], context=ctx)
    assert progress(ctx) == [(r / 5000, f"{r} of 5000 rows") for r in (100, 200, 300)]
    # not cancelled: the same input runs to the end, with progress after every model batch
    done = make_exec_context(RunInferenceNode)
    out = run_node(RunInferenceNode, {"batch_size": 1000}, [model, one_batch], context=done).outputs[0]
    assert out.num_rows == 5000 and [m for _, m in progress(done)][-1] == "5000 of 5000 rows"
    assert len(progress(done)) == 5


def test_infinite_feature_values_are_named_by_column(model):
    t = table(6).set_column(2, "f2", pa.array([0.0, np.inf, 1e39, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"column 'f2' has 1 infinite value\(s\) and 1 value\(s\) too large for "
                                         r"float32 .* in 2 of 6 rows"):
        run_node(RunInferenceNode, {"missing": "error"}, [model, table_from_pyarrow(t)])
    out = run_node(RunInferenceNode, {"missing": "missing"}, [model, table_from_pyarrow(t)]).outputs[0].to_pandas()
    assert out["Prediction (label)"].isna().tolist() == [False, True, True, False, False, False]


def test_missing_values_are_counted_over_all_batches_with_this_nodes_advice(model):
    t = table(3000).set_column(1, "f1", pa.array([np.nan if i in (5, 2500) else 0.5 for i in range(3000)]))
    many = table_from_pyarrow(t, batch_size=1000)
    assert len(list(many.batches())) == 3
    with pytest.raises(ValueError, match=r"column 'f1' has 2 missing value\(s\) \(null or NaN\) in 2 of 3000 rows.*"
                                         r"set 'Rows with missing values' to 'missing' \(such rows then get missing "
                                         r"predictions\)$"):
        run_node(RunInferenceNode, {"missing": "error"}, [model, many])
    out = run_node(RunInferenceNode, {"missing": "missing"}, [model, many]).outputs[0].to_pandas()
    assert out["Prediction (label)"].isna().sum() == 2
