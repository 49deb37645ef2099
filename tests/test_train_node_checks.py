"""Train Model settings that used to fail only at execute are caught at configure, through the
knime.extension double: early stopping on validation metrics without validation data, a monitor
the loss does not report, device names (a choice list plus a typed name checked against
tinygrad's backends without opening them), cross-entropy on a floating-point target."""
import numpy as np
import pyarrow as pa
import pytest

import knime.extension as knext
from knime_harness import configure_node, load_extension, run_node, table_from_pyarrow

load_extension()
from nodes.graph_nodes import GraphInputNode  # noqa: E402
from nodes.op_nodes import OP_NODE_FACTORIES  # noqa: E402
from nodes.train_nodes import TrainModelNode  # noqa: E402
from nodes.crossval_node import CrossValidationNode  # noqa: E402


@pytest.fixture(scope="module")
def graph():
    x = run_node(GraphInputNode, {"shape": "2"}).outputs[0]
    return run_node(OP_NODE_FACTORIES["linear"], {"out_features": 3}, [x]).outputs[0]


def table(target_values):
    n = len(target_values)
    rng = np.random.default_rng(0)
    return table_from_pyarrow(pa.table({"a": rng.standard_normal(n), "b": rng.standard_normal(n), "y": target_values}))


INT_TARGET = table(np.arange(60) % 3)
DATA = {"feature_columns": ["a", "b"], "target_column": "y"}


def conf(graph, params, *extra_specs, node=TrainModelNode):
    return configure_node(node, {"data": DATA, **params}, [graph.spec, INT_TARGET.schema, *extra_specs])


def test_early_stopping_on_validation_metrics_needs_validation_data(graph):
    early = {"early": {"enabled": True, "monitor": "val_loss"}}
    with pytest.raises(knext.InvalidParametersError, match="early stopping monitors 'val_loss' but this run has no "
                       "validation data; connect a validation table, set 'Validation split' > 0 \\(Data tab\\), "
                       "or monitor 'loss'"):
        conf(graph, early)
    assert conf(graph, {**early, "data": {**DATA, "validation_split": 0.2}}).specs  # a split gives validation rows
    assert conf(graph, early, INT_TARGET.schema).specs  # so does a validation table
    assert conf(graph, {"early": {"enabled": False, "monitor": "val_loss"}}).specs  # off: not checked
    with pytest.raises(knext.InvalidParametersError, match="early stopping monitors 'val_accuracy' but this run"):
        conf(graph, {"early": {"enabled": True, "monitor": "val_accuracy"}}, node=CrossValidationNode)


def test_monitor_must_be_a_metric_of_the_loss(graph):
    with pytest.raises(knext.InvalidParametersError, match="early stopping monitors 'mae', which the Cross-entropy "
                       "loss does not report \\(classification runs report loss and accuracy\\); choose Monitor "
                       "'accuracy'"):
        conf(graph, {"early": {"enabled": True, "monitor": "mae"}})
    with pytest.raises(knext.InvalidParametersError, match="monitors 'val_accuracy', which the Mean squared error "
                       "loss does not report \\(regression runs report loss and mae\\); choose Monitor 'val_mae'"):
        conf(graph, {"optim": {"loss": "MSE"}, "data": {**DATA, "validation_split": 0.2},
                     "early": {"enabled": True, "monitor": "val_accuracy"}})
    assert conf(graph, {"optim": {"loss": "MSE"}, "early": {"enabled": True, "monitor": "mae"}}).specs


def test_device_is_a_choice_list_with_a_checked_typed_name(graph):
    for dev in ("auto", "CPU", "CUDA", "METAL", "AMD", "NV"):  # configure opens no device: works without it
        assert conf(graph, {"runtime": {"device": dev}}).specs
    # a name the list lacks (a flow variable, older settings) is checked the same way
    with pytest.raises(knext.InvalidParametersError, match="Device: training setting 'device' = 'TPU' is not a "
                       "tinygrad device"):
        conf(graph, {"runtime": {"device": "TPU"}})
    assert conf(graph, {"runtime": {"device": "CUDA:1"}}).specs
    with pytest.raises(knext.InvalidParametersError, match="Other device: training setting 'device' = 'TPU:0' is "
                       "not a tinygrad device; use auto or one of .*CPU, CUDA.*optionally with an index"):
        conf(graph, {"runtime": {"device": "other", "device_other": "TPU:0"}})
    with pytest.raises(knext.InvalidParametersError, match="type a tinygrad device name in 'Other device'"):
        conf(graph, {"runtime": {"device": "other"}})
    from knime_harness import inject_settings, node_factory, settings_with
    node = node_factory(TrainModelNode)()  # the typed name as the trainer gets it
    inject_settings(node, settings_with(TrainModelNode, {"data": DATA, "runtime": {"device": "other",
                                                                                   "device_other": " cuda:1 "}}))
    assert node._config().device == "CUDA:1"


def test_cross_entropy_on_a_floating_point_target_warns(graph):
    measured = table(np.random.default_rng(1).random(60) * 10)
    res = configure_node(TrainModelNode, {"data": DATA}, [graph.spec, measured.schema])
    (warning,) = res.warnings
    assert "target column 'y' holds floating-point numbers and the loss is Cross-entropy" in warning
    assert "choose a regression loss (Mean squared error" in warning
    assert configure_node(TrainModelNode, {"data": DATA, "optim": {"loss": "MSE"}},
                          [graph.spec, measured.schema]).warnings == []
    assert configure_node(TrainModelNode, {"data": DATA}, [graph.spec, INT_TARGET.schema]).warnings == []
    # executed: the number of distinct values trained as classes is named
    g60 = run_node(OP_NODE_FACTORIES["linear"], {"out_features": 60},
                   [run_node(GraphInputNode, {"shape": "2"}).outputs[0]]).outputs[0]
    res = run_node(TrainModelNode, {"data": DATA, "sched": {"epochs": 1}, "tracking": {"record": False}},
                   [g60, measured], check_specs=False)
    assert any("target column 'y' has 60 distinct values" in w and "trained as 60 classes" in w
               for w in res.warnings), res.warnings
