"""Training from a stream of table batches (uop_engine.stream_train) and Train Model's memory limit:
a buffer holding the whole table gives bit-identical weights and history to in-memory training
(shuffle, validation split and all); a small buffer is reproducible, bounded and learns as well;
every epoch reads the table again; the node streams when the table exceeds its limit."""
import numpy as np
import pyarrow as pa
import pytest

from uop_engine import GraphBuilder
from uop_engine.errors import DataError
from uop_engine.stream_train import TableStream, train_table_streamed
from uop_engine.table_train import spec_for_graph, train_table
from uop_engine.train import TrainConfig

N = 260


def blobs(n=N, seed=0, labels=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = np.array(labels)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    return pa.table({**{f"f{i}": X[:, i] for i in range(4)}, "label": y})


def mlp():
    g = GraphBuilder("t")
    g.linear(g.relu(g.linear(g.input((4,)), out_features=8)), out_features=3)
    return g.build()


TABLE, GRAPH = blobs(), mlp()
SPEC = spec_for_graph(TABLE.schema, GRAPH, [f"f{i}" for i in range(4)], "label", "cross_entropy")
CFG = TrainConfig(epochs=3, batch_size=32, lr=0.01, validation_split=0.2, seed=3)


def no_time(history):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history]


def same_weights(a, b):
    wa, wb = a.weights(), b.weights()
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


class CountingSource:
    """The table's record batches, counting how often the table is read and the most rows handed out at once."""

    def __init__(self, table, chunk=37):
        self.table, self.chunk, self.reads = table, chunk, 0

    def __call__(self):
        self.reads += 1
        return iter(self.table.to_batches(max_chunksize=self.chunk))


def test_a_buffer_holding_the_table_equals_in_memory_training_bit_for_bit():
    ref = train_table(GRAPH, TABLE, SPEC, CFG)
    src = CountingSource(TABLE)
    got = train_table_streamed(GRAPH, TableStream(src, SPEC, buffer_rows=N), CFG)
    assert same_weights(ref, got) and no_time(got.history) == no_time(ref.history)
    assert got.classes == ref.classes == ["a", "b", "c"] and got.record["streamed"] == {"buffer_rows": N}
    assert (got.record["n_train"], got.record["n_val"]) == (ref.record["n_train"], ref.record["n_val"]) == (208, 52)
    # the classes scan, the row count (and fingerprint), then training + validation rows every epoch
    assert src.reads == 2 + 2 * CFG.epochs
    assert got.record["data_fingerprint"] == ref.record["data_fingerprint"]
    no_shuffle = TrainConfig(**{**CFG.to_dict(), "shuffle": False})  # in order: any buffer gives the same batches
    ref = train_table(GRAPH, TABLE, SPEC, no_shuffle)
    got = train_table_streamed(GRAPH, TableStream(CountingSource(TABLE, 5), SPEC, buffer_rows=40), no_shuffle)
    assert same_weights(ref, got) and no_time(got.history) == no_time(ref.history)


def test_a_small_buffer_is_reproducible_and_learns_like_in_memory():
    big = blobs(1500, seed=1)
    cfg = TrainConfig(epochs=4, batch_size=32, lr=0.02, seed=0)
    runs = [train_table_streamed(GRAPH, TableStream(CountingSource(big), SPEC, buffer_rows=64), cfg) for _ in range(2)]
    assert same_weights(*runs) and no_time(runs[0].history) == no_time(runs[1].history)
    other = train_table_streamed(GRAPH, TableStream(CountingSource(big), SPEC, buffer_rows=64),
                                 TrainConfig(**{**cfg.to_dict(), "seed": 1}))
    assert not same_weights(runs[0], other)  # the seed drives the buffer's shuffle
    ref = train_table(GRAPH, big, SPEC, cfg)
    assert not same_weights(ref, runs[0])
    assert runs[0].history[-1]["accuracy"] == pytest.approx(ref.history[-1]["accuracy"], abs=0.05)
    assert runs[0].history[-1]["accuracy"] > 0.8


def test_every_row_is_trained_once_per_epoch_through_the_bounded_buffer():
    ids = pa.table({"f0": np.arange(N, dtype=np.float64), **{f"f{i}": np.zeros(N) for i in (1, 2, 3)},
                    "label": np.array(["a", "b", "c"])[np.arange(N) % 3]})
    stream = TableStream(CountingSource(ids, 16), SPEC, buffer_rows=50)
    stream.scan()
    view = stream.bind_trainer(lambda X, y: ([X], np.asarray(y)))
    orders = []
    for epoch in range(2):
        batches = list(view.batches(32, (0, epoch)))
        rows = np.concatenate([b[0][:, 0] for b in batches])
        assert [len(b[0]) for b in batches] == [32] * 8 + [4]  # only the last batch is partial
        assert sorted(rows.tolist()) == list(range(N))  # each row exactly once
        # bounded buffer: output position p can only hold a row among the first 50 + p + 50 read (one
        # chunk, which is the buffer's size when the buffer is below a few thousand rows)
        assert (rows - np.arange(N) < 50 + 50).all() and (rows - np.arange(N)).max() > 20
        orders.append(rows)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
    again = np.concatenate([b[0][:, 0] for b in view.batches(32, (0, 1))])
    np.testing.assert_array_equal(again, orders[1])


def test_streamed_and_in_memory_runs_share_the_data_fingerprint():
    # small buffers and batches (so streaming converts chunks unlike the in-memory table), skipped rows
    f0 = TABLE.column("f0").to_numpy().copy()
    f0[[3, 50]] = np.nan
    holes = TABLE.set_column(0, "f0", pa.array(f0))
    skip = spec_for_graph(TABLE.schema, GRAPH, [f"f{i}" for i in range(4)], "label", "cross_entropy",
                          missing="skip_rows")
    val = blobs(40, seed=9)

    def fingerprint(cfg, streamed, val_table=None, buffer_rows=7):
        if not streamed:
            return train_table(GRAPH, holes, skip, cfg, val_table).record["data_fingerprint"]
        vs = None if val_table is None else TableStream(CountingSource(val_table, 5), skip, buffer_rows=buffer_rows)
        return train_table_streamed(GRAPH, TableStream(CountingSource(holes, 11), skip, buffer_rows=buffer_rows),
                                    cfg, vs).record["data_fingerprint"]
    one = TrainConfig(epochs=1, batch_size=3, lr=0.01, seed=3)
    split = TrainConfig(**{**one.to_dict(), "validation_split": 0.2})
    other_seed = TrainConfig(**{**split.to_dict(), "seed": 4})
    prints = {}
    for name, cfg, v in [("plain", one, None), ("split", split, None), ("seed", other_seed, None),
                         ("val", one, val), ("other val", one, val.slice(1))]:
        prints[name] = {fingerprint(cfg, False, v), fingerprint(cfg, True, v), fingerprint(cfg, True, v, 1000)}
        assert len(prints[name]) == 1, name  # in memory and streamed with either buffer: one fingerprint
    assert len({p.pop() for p in prints.values()}) == 5  # the split, its seed and the validation rows count
    # a different shuffle seed without a split trains on the same data: same fingerprint
    assert fingerprint(TrainConfig(**{**one.to_dict(), "seed": 8}), True) == fingerprint(one, False)


def test_a_table_without_complete_rows_is_named_with_the_fix():
    skip = spec_for_graph(TABLE.schema, GRAPH, [f"f{i}" for i in range(4)], "label", "cross_entropy",
                          missing="skip_rows")
    empty = TABLE.slice(0, 5).set_column(0, "f0", pa.array([np.nan] * 5))
    val_msg = (r"the validation (data \(X_val; the validation table\)|table) has no rows with complete features and "
               r"target.*fill or filter its missing values, or train without it")
    with pytest.raises(DataError, match=val_msg):
        train_table(GRAPH, TABLE, skip, CFG, empty)
    with pytest.raises(DataError, match=r"the validation table has no rows with complete features and target \(all 5 "
                                        r"rows have missing values and were skipped\); fill or filter its missing "
                                        r"values, or train without it"):
        train_table_streamed(GRAPH, TableStream(CountingSource(TABLE), skip), CFG, TableStream(CountingSource(empty),
                                                                                              skip))
    with pytest.raises(DataError, match=r"the training table has no rows with complete features and target \(all 5 "
                                        r"rows have missing values and were skipped\); fill or filter"):
        train_table_streamed(GRAPH, TableStream(CountingSource(empty), skip), CFG)


def test_stream_errors_name_what_to_fix():
    with pytest.raises(DataError, match="a pyarrow Table or a function"):
        TableStream([1, 2], SPEC)
    holes = TABLE.set_column(0, "f0", pa.array([None] + TABLE.column("f0").to_pylist()[1:], pa.float64()))
    with pytest.raises(DataError, match="f0"):
        train_table_streamed(GRAPH, TableStream(CountingSource(holes), SPEC), CFG)
    skip = spec_for_graph(TABLE.schema, GRAPH, [f"f{i}" for i in range(4)], "label", "cross_entropy",
                          missing="skip_rows")
    res = train_table_streamed(GRAPH, TableStream(CountingSource(holes), skip), CFG)
    assert res.record["rows_skipped"] == 1 and res.record["n_train"] + res.record["n_val"] == N - 1


def test_a_streamed_error_counts_bad_values_over_the_whole_table():
    big = blobs(5000)
    f0 = big.column("f0").to_numpy().copy()
    f0[[3, 4500]] = np.nan  # in the first and in a late chunk of 4096 converted rows
    f0[77] = np.inf
    big = big.set_column(0, "f0", pa.array(f0))
    with pytest.raises(DataError, match=r"column 'f0' has 2 missing value\(s\) \(null or NaN\) in 2 of 5000 rows.*"
                                        r"'Rows with missing values' .* to 'skip_rows'$"):
        train_table_streamed(GRAPH, TableStream(CountingSource(big, 1000), SPEC, buffer_rows=100), CFG)
    f0[[3, 4500]] = 0.0
    f0[4999] = -np.inf
    only_inf = big.set_column(0, "f0", pa.array(f0))
    with pytest.raises(DataError, match=r"column 'f0' has 2 infinite value\(s\) in 2 of 5000 rows"):
        train_table_streamed(GRAPH, TableStream(CountingSource(only_inf, 1000), SPEC, buffer_rows=100), CFG)


def test_train_model_streams_a_table_over_its_memory_limit():
    from knime_harness import load_extension, run_node, table_from_pyarrow
    load_extension()
    from nodes.graph_nodes import GraphInputNode
    from nodes.op_nodes import OP_NODE_FACTORIES
    from nodes.train_nodes import TrainModelNode
    x = run_node(GraphInputNode, {"shape": "4"}).outputs[0]
    h = run_node(OP_NODE_FACTORIES["linear"], {"out_features": 8}, [x]).outputs[0]
    g = run_node(OP_NODE_FACTORIES["linear"], {"out_features": 3}, [run_node(OP_NODE_FACTORIES["relu"], {}, [h])
                                                                     .outputs[0]]).outputs[0]
    table = table_from_pyarrow(TABLE, batch_size=40)
    p = {"data": {"feature_columns": [f"f{i}" for i in range(4)], "target_column": "label", "validation_split": 0.2},
         "optim": {"lr": 0.01}, "sched": {"epochs": 3, "batch_size": 32, "shuffle": False},
         "tracking": {"record": False}}
    mem = run_node(TrainModelNode, p, [g, table], check_specs=False)
    # 260 rows x (4 float32 + 8) bytes = 6240 bytes > 0.004 MB (4194 bytes): streamed with a 174-row buffer
    streamed = run_node(TrainModelNode, {**p, "memory": {"limit_mb": 0.004}}, [g, table], check_specs=False)
    assert streamed.outputs[0].bundle.record["streamed"] == {"buffer_rows": 174}
    assert "streamed" not in mem.outputs[0].bundle.record
    a, b = mem.outputs[1].to_pandas().drop(columns="seconds"), streamed.outputs[1].to_pandas().drop(columns="seconds")
    assert a.equals(b)  # without shuffling the streamed batches are the in-memory ones
    for k, w in mem.outputs[0].bundle.weights.items():
        np.testing.assert_array_equal(w, streamed.outputs[0].bundle.weights[k])
    shuffled = {**p, "sched": {**p["sched"], "shuffle": True}, "memory": {"limit_mb": 0.004}}
    r1, r2 = (run_node(TrainModelNode, shuffled, [g, table], check_specs=False) for _ in range(2))
    assert r1.outputs[1].to_pandas().drop(columns="seconds").equals(r2.outputs[1].to_pandas().drop(columns="seconds"))
    # a connected validation table counts too: 260 rows (6240 bytes) fit 0.007 MB (7340 bytes), 260 + 100 do not
    no_split = {**p, "data": {**p["data"], "validation_split": 0.0}, "memory": {"limit_mb": 0.007}}
    alone = run_node(TrainModelNode, no_split, [g, table], check_specs=False)
    assert "streamed" not in alone.outputs[0].bundle.record
    val = table_from_pyarrow(blobs(100, seed=5), batch_size=30)
    both = run_node(TrainModelNode, no_split, [g, table, val], check_specs=False)
    assert both.outputs[0].bundle.record["streamed"] == {"buffer_rows": 305} and both.outputs[1].num_rows == 3
    assert both.outputs[0].bundle.record["n_val"] == 100
