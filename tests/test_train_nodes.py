"""Train Model, Run Inference, Model Writer and Model Reader through the knime.extension double:
a digits CNN built from graph nodes trains on a PNG image column and predicts; cancellation
stops within one batch; partial batches; writer -> reader gives identical predictions;
configure names a wrong column."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import knime.extension as knext
from knime_harness import (configure_node, load_extension, make_exec_context, progress, run_node,
                           table_from_pandas, table_from_pyarrow)
from uop_engine.datasets import digits_table, split_table

load_extension()
from nodes.graph_nodes import GraphInputNode  # noqa: E402
from nodes.inference_node import RunInferenceNode  # noqa: E402
from nodes.model_io_nodes import ModelReaderNode, ModelWriterNode  # noqa: E402
from nodes.op_nodes import OP_NODE_FACTORIES  # noqa: E402
from nodes.train_nodes import TrainModelNode  # noqa: E402

TRAIN = {"data": {"feature_columns": ["image"], "target_column": "digit"},
         "optim": {"lr": 0.003}, "sched": {"epochs": 4, "batch_size": 64, "schedule": "COSINE", "seed": 0}}


def out(node, params, *inputs):
    return run_node(node, params, list(inputs)).outputs[0]


@pytest.fixture(scope="module")
def cnn():
    x = out(GraphInputNode, {"shape": "1,8,8"})
    h = out(OP_NODE_FACTORIES["conv_block"], {"out_channels": 16}, x)
    h = out(OP_NODE_FACTORIES["conv_block"], {"out_channels": 32, "pool": "max"}, h)
    h = out(OP_NODE_FACTORIES["flatten"], {}, h)
    return out(OP_NODE_FACTORIES["linear"], {"in_features": 512, "out_features": 10}, h)


@pytest.fixture(scope="module")
def mlp():
    x = out(GraphInputNode, {"shape": "64"})
    return out(OP_NODE_FACTORIES["linear"], {"in_features": 64, "out_features": 10}, x)


def image_frame(table):
    """A DataFrame of PIL images (KNIME's PNG image cells) and the digit label."""
    import io
    imgs = [Image.open(io.BytesIO(b)) for b in table.column("image").to_pylist()]
    return pd.DataFrame({"image": imgs, "digit": table.column("digit").to_numpy()})


@pytest.fixture(scope="module")
def digits():
    tr, te = split_table(digits_table("image", target="digit"), test_size=0.3, seed=0, stratify="digit")
    vtr, vte = split_table(digits_table("vector", target="digit"), test_size=0.3, seed=0, stratify="digit")
    return {"train": table_from_pandas(image_frame(tr), batch_size=200),
            "test": table_from_pandas(image_frame(te), batch_size=100), "test_labels": te.column("digit").to_numpy(),
            "vtrain": table_from_pyarrow(vtr, batch_size=250), "vtest": table_from_pyarrow(vte, batch_size=128)}


@pytest.fixture(scope="module")
def trained(cnn, digits):
    conf = configure_node(TrainModelNode, TRAIN, [cnn.spec, digits["train"].schema])
    r = run_node(TrainModelNode, TRAIN, [cnn, digits["train"]], check_specs=False)  # classes are learnt in execute
    return conf, r


def test_train_cnn_from_image_column_then_predict(trained, digits):
    conf, r = trained
    model, metrics, view = r.outputs[0], r.outputs[1], r.view
    assert conf.specs[0].data["classes"] is None and model.spec.data["classes"] == list(range(10))
    assert model.spec.data["graph_hash"] == conf.specs[0].data["graph_hash"]
    assert model.spec.data["feature_spec"]["kinds"] == {"x": "image"}
    assert model.spec.data["record_id"] and model.spec.data["n_params"] == conf.specs[0].data["n_params"]
    assert metrics.schema == conf.specs[1]  # the metrics table is as configured
    hist = metrics.to_pandas()
    assert hist["epoch"].tolist() == [1, 2, 3, 4] and hist["loss"].iloc[-1] < hist["loss"].iloc[0]
    msgs = [m for _, m in r.progress if m]
    assert len(msgs) == 4 * 20 and "loss" in msgs[-1] and "epoch 4/4, batch 20/20" in msgs[-1]  # 1257 rows / 64
    assert view is not None
    pconf = configure_node(RunInferenceNode, {}, [model.spec, digits["test"].schema])
    pred = run_node(RunInferenceNode, {"batch_size": 64}, [model, digits["test"]])
    df = pred.outputs[0].to_pandas()
    assert pred.outputs[0].schema == pconf.specs[0]
    assert list(df.columns[-11:]) == ["Prediction (digit)"] + [f"P (digit={c})" for c in range(10)]
    acc = float(np.mean(df["Prediction (digit)"].to_numpy() == digits["test_labels"]))
    print(f"digits CNN test accuracy after 4 epochs: {acc:.4f}")
    assert acc >= 0.9, acc
    probs = df[[f"P (digit={c})" for c in range(10)]].to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and len(df) == 540


def test_writer_reader_round_trip_gives_identical_predictions(trained, digits, tmp_path):
    model = trained[1].outputs[0]
    path = str(tmp_path / "digits.tuop")
    run_node(ModelWriterNode, {"path": path}, [model])
    with pytest.raises(ValueError, match="already exists"):
        run_node(ModelWriterNode, {"path": path}, [model])
    run_node(ModelWriterNode, {"path": path, "if_exists": "overwrite"}, [model])
    read = run_node(ModelReaderNode, {"path": path})
    assert read.outputs[0].spec.data == model.spec.data
    a = run_node(RunInferenceNode, {}, [model, digits["test"]]).outputs[0].to_pandas()
    b = run_node(RunInferenceNode, {}, [read.outputs[0], digits["test"]]).outputs[0].to_pandas()
    pd.testing.assert_frame_equal(a.drop(columns=["image"]), b.drop(columns=["image"]))
    with pytest.raises(knext.InvalidParametersError, match="does not exist"):
        configure_node(ModelReaderNode, {"path": str(tmp_path / "nope.tuop")})
    (tmp_path / "bad.tuop").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt or not a TinyUOp model"):
        run_node(ModelReaderNode, {"path": str(tmp_path / "bad.tuop")})


def test_wrong_columns_fail_in_configure_naming_them(cnn, mlp, digits):
    bad = {**TRAIN, "data": {"feature_columns": ["image"], "target_column": "label"}}
    with pytest.raises(knext.InvalidParametersError, match="target column 'label' is not in the table"):
        configure_node(TrainModelNode, bad, [cnn.spec, digits["train"].schema])
    bad = {**TRAIN, "data": {"feature_columns": ["pixels"], "target_column": "digit"}}
    with pytest.raises(knext.InvalidParametersError, match="feature column 'pixels' is not in the table; "
                                                           "available columns: image, digit"):
        configure_node(TrainModelNode, bad, [cnn.spec, digits["train"].schema])
    # a vector column of 64 values cannot feed a (1, 8, 8) input with 65 values... but fits a 64 MLP
    ok = {**TRAIN, "data": {"feature_columns": ["pixels"], "target_column": "digit"}}
    assert configure_node(TrainModelNode, ok, [mlp.spec, digits["vtrain"].schema]).specs[0].data["inputs"] == \
        {"x": [None, 64]}


def test_cancel_stops_within_one_batch(mlp, digits):
    params = {**TRAIN, "data": {"feature_columns": ["pixels"], "target_column": "digit"}}
    ctx = make_exec_context(TrainModelNode, cancel_after=3)
    with pytest.raises(Exception, match="[Cc]ancel"):
        run_node(TrainModelNode, params, [mlp, digits["vtrain"]], context=ctx, check_specs=False)
    steps = [m for _, m in progress(ctx) if m and "batch" in m]
    assert len(steps) == 3, steps  # three batches ran, the fourth was never started


def test_partial_batches_and_vector_column(mlp, digits):
    params = {**TRAIN, "data": {"feature_columns": ["pixels"], "target_column": "digit", "validation_split": 0.2},
              "sched": {"epochs": 3, "batch_size": 100}}
    r = run_node(TrainModelNode, params, [mlp, digits["vtrain"]], check_specs=False)
    hist = r.outputs[1].to_pandas()
    assert list(hist.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
    model = r.outputs[0]
    preds = {}
    for bs in (7, 64, 1000):  # 540 rows in input batches of 128: every output batch is partial somewhere
        res = run_node(RunInferenceNode, {"batch_size": bs, "keep_columns": False}, [model, digits["vtest"]])
        t = res.outputs[0]
        assert t.column_names[0] == "Prediction (digit)" and t.num_rows == 540
        assert [b.num_rows for b in t.batches()] == [128, 128, 128, 128, 28]
        preds[bs] = t.to_pandas()
    pd.testing.assert_frame_equal(preds[7], preds[1000], check_exact=False, atol=1e-6)
    pd.testing.assert_frame_equal(preds[64], preds[1000], check_exact=False, atol=1e-6)


def test_fine_tune_from_a_model_and_nan_loss_names_epoch_and_batch(mlp, cnn, digits):
    params = {**TRAIN, "data": {"feature_columns": ["pixels"], "target_column": "digit"},
              "sched": {"epochs": 1, "batch_size": 128}}
    first = run_node(TrainModelNode, params, [mlp, digits["vtrain"]], check_specs=False)
    more = run_node(TrainModelNode, params, [mlp, digits["vtrain"], None, first.outputs[0]], check_specs=False)
    l1, l2 = first.outputs[1].to_pandas()["loss"].iloc[0], more.outputs[1].to_pandas()["loss"].iloc[0]
    assert l2 < l1  # continued from the trained weights, not from a fresh init
    assert more.outputs[0].bundle.record["initial_weights"].startswith("bundle graph")
    with pytest.raises(knext.InvalidParametersError, match="initial model was trained on graph"):
        configure_node(TrainModelNode, params, [cnn.spec, digits["vtrain"].schema, None, first.outputs[0].spec])
    boom = {**params, "optim": {"optimizer": "SGD", "lr": 1e38, "momentum": 0.0}}
    with pytest.raises(ValueError, match=r"the loss became (nan|inf) at epoch 1, batch \d+ of 10; lower the learning rate"):
        run_node(TrainModelNode, boom, [mlp, digits["vtrain"]], check_specs=False)


def test_inference_on_an_empty_table_gives_the_configured_columns(mlp, digits):
    p = {"data": {"feature_columns": ["pixels"], "target_column": "digit"}, "sched": {"epochs": 1, "batch_size": 128}}
    model = run_node(TrainModelNode, p, [mlp, digits["vtrain"]], check_specs=False).outputs[0]
    empty = table_from_pyarrow(digits["vtest"].to_pyarrow().slice(0, 0))
    conf = configure_node(RunInferenceNode, {}, [model.spec, empty.schema]).specs[0]
    res = run_node(RunInferenceNode, {}, [model, empty]).outputs[0]
    assert res.schema == conf and len(res.to_pandas()) == 0
