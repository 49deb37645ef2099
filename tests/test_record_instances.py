"""KNIME instance keys (graph meta 'instances') are noise outside one KNIME run: the training
record's and the model bundle's copies of the graph leave them out, with the same content hash."""
import numpy as np

from uop_engine import Graph, GraphBuilder
from uop_engine.graph import INSTANCES
from uop_engine.train import TrainConfig, train


def test_training_record_graph_has_no_instance_keys():
    g = GraphBuilder("mlp")
    g.linear(g.relu(g.linear(g.input((4,)), out_features=5)), out_features=2)
    graph = g.build()
    graph.stamp(graph.ids(), "a-knime-node")  # what graphs from KNIME op nodes carry
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 2, 16)
    res = train(graph, X, y, TrainConfig(epochs=1, batch_size=8))
    rec, bundle = res.record, res.bundle()
    assert INSTANCES not in rec["graph"]["meta"] and INSTANCES not in bundle.graph.meta
    assert bundle.graph_hash == graph.hash()
    assert INSTANCES in graph.meta  # the caller's graph is left as it was
    back = Graph.from_dict(rec["graph"])
    assert back.hash() == rec["graph_hash"] == graph.hash() and back.ids() == graph.ids()
