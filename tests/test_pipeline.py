"""@pipeline_process schemas, pipeline file validation (everything fails before any step runs,
naming step and key), dependency order, references, and runs recorded in the experiment store
(read back: the pipeline's run, a child run per step with params, metrics and artifacts); the
built-in train, cross_validate and infer steps run for real on a small slice of digits."""
import json
import re
import textwrap
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from uop_engine.pipeline import (PipelineConfigError, PipelineRunError, get_process, list_registered, load_pipeline,
                                 loads_pipeline, pipeline_process, run_pipeline, unregister)
from uop_engine.pipeline.process import check_value
from uop_engine.pipeline_context import PipelineContext, current_context

CALLS: list[str] = []


@pipeline_process(outputs=("value", "items"))
def t_make(n: int, scale: float = 1.0, label: str = "x", tags: list[str] | None = None) -> dict:
    """Make n numbers."""
    CALLS.append("t_make")
    return {"value": n * scale, "items": [label] * n}


@pipeline_process(name="t_total")
def t_sum(value: float, extra: float = 0.0, mode: Literal["plain", "double"] = "plain",
          ctx: PipelineContext | None = None) -> dict:
    CALLS.append("t_total")
    assert ctx is None or ctx is current_context()
    total = value + extra
    return {"total": total * (2 if mode == "double" else 1), "step": ctx.step if ctx else None}


@pipeline_process
def t_fail(message: str = "boom"):
    CALLS.append("t_fail")
    raise RuntimeError(message)


def toml(text: str, tmp_path: Path, name: str = "p.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def problems(text: str, tmp_path: Path) -> str:
    with pytest.raises(PipelineConfigError) as e:
        load_pipeline(toml(text, tmp_path))
    return str(e.value)


def test_decorated_functions_stay_plain_callables_with_a_schema():
    assert t_make(2, scale=3.0) == {"value": 6.0, "items": ["x", "x"]}
    assert t_sum(1.0, extra=2.0) == {"total": 3.0, "step": None}
    proc = get_process("t_total")
    assert t_sum.pipeline_process is proc and "t_sum" not in list_registered()
    assert {"t_make", "t_total", "t_fail", "train", "evaluate", "export_onnx"} <= set(list_registered())
    assert [f.name for f in proc.fields.values()] == ["value", "extra", "mode"] and proc.context_param == "ctx"
    assert proc.fields["value"].required and not proc.fields["extra"].required
    assert proc.validate({"value": 1, "mode": "double"}, "s") == []
    assert proc.validate({"value": "1"}, "s") == [("s", "value", "wrong type: expected float, got str '1'")]
    assert proc.validate({"mode": "triple"}, "s")[0][1:] == ("value", "missing required parameter (float) of step "
                                                                     "type 't_total'")
    msg = proc.validate({"value": 1, "extar": 2}, "s")[0][2]
    assert "unknown parameter" in msg and "did you mean extra" in msg


def test_registering_another_function_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="'train' is already registered.*built-in"):
        @pipeline_process
        def train(epochs: int = 1):
            return epochs
    with pytest.raises(TypeError, match="default of 'n' does not match"):
        @pipeline_process(name="t_bad_default")
        def bad(n: int = "three"):
            return n
    with pytest.raises(TypeError, match=r"\*xs cannot come from a config"):
        @pipeline_process(name="t_varargs")
        def varargs(*xs):
            return xs


def test_check_value_coerces_and_rejects():
    assert check_value(3, float) == 3.0 and isinstance(check_value(3, float), float)
    assert check_value([1, 2], tuple[int, ...]) == (1, 2)
    assert check_value(None, int | None) is None
    assert check_value({"a": [1]}, dict[str, list[int]]) == {"a": [1]}
    for v, hint in ((True, int), (1.5, int), ("a", list[str]), ([1, "a"], list[int]), ("c", Literal["a", "b"])):
        with pytest.raises(TypeError):
            check_value(v, hint)


GOOD = """
    name = "toy"
    [[steps]]
    name = "total"
    type = "t_total"
    params = { value = "${make.value}", extra = 1, mode = "double" }
    [[steps]]
    name = "make"
    type = "t_make"
    params = { n = 3, scale = 2.0 }
"""


def test_valid_file_orders_steps_by_references(tmp_path):
    cfg = load_pipeline(toml(GOOD, tmp_path))
    assert cfg.order == ["make", "total"] and cfg.name == "toy"


@pytest.mark.parametrize("text, expected", [
    ("[[steps]]\nname = 'a'\ntype = 'no_such_type'\n", "step 'a', key 'type': unknown step type 'no_such_type'"),
    ("[[steps]]\nname = 'a'\ntype = 't_make'\nparams = { n = 'three' }\n",
     "step 'a', key 'params.n': wrong type: expected int, got str 'three'"),
    ("[[steps]]\nname = 'a'\ntype = 't_make'\nparams = { n = 1, colour = 'red' }\n",
     "step 'a', key 'params.colour': unknown parameter for step type 't_make'"),
    ("[[steps]]\nname = 'a'\ntype = 't_make'\nparams = {}\n", "step 'a', key 'params.n': missing required parameter"),
    ("[[steps]]\nname = 'a'\ntype = 't_total'\nparams = { value = '${nowhere.value}' }\n",
     "step 'a', key 'params.value': reference to unknown step 'nowhere'"),
    ("[[steps]]\nname = 'm'\ntype = 't_make'\nparams = { n = 1 }\n[[steps]]\nname = 'a'\ntype = 't_total'\n"
     "params = { value = '${m.valeu}' }\n", "step 'a', key 'params.value': step 'm' has no output 'valeu'"),
    ("[[steps]]\nname = 'a'\ntype = 't_total'\nparams = { value = '${b.total}' }\n[[steps]]\nname = 'b'\n"
     "type = 't_total'\nparams = { value = '${a.total}' }\n", "step 'a', key 'depends_on': the steps form a cycle: "
     "a -> b -> a"),
    ("[[steps]]\nname = 'a'\ntype = 't_make'\nparams = { n = 1 }\n[[steps]]\nname = 'a'\ntype = 't_make'\n"
     "params = { n = 2 }\n", "step 'a', key 'name': duplicate step name"),
    ("[[steps]]\nname = 'a'\ntype = 't_make'\ndepends_on = ['zz']\nparams = { n = 1 }\n",
     "step 'a', key 'depends_on': no step named 'zz'"),
    ("[[steps]]\nname = 'a'\ntype = 't_make'\nparms = { n = 1 }\n", "step 'a', key 'parms': unknown step key"),
    ("colour = 1\n[[steps]]\nname = 'a'\ntype = 't_make'\nparams = { n = 1 }\n", "key 'colour': unknown top-level key"),
    ("[[steps]]\nname = 'a'\ntype = 'train'\nparams = { data = 3, graph = [] }\n",
     "step 'a', key 'params.data': expects Dataset, which only a reference"),
    ("[[steps]]\nname = 'a'\ntype = 'train'\nparams = { data = '${out}', graph = [ { op = 'conv2d', out_channels = 0 } ] }\n",
     "step 'a', key 'params.graph': graph: Sequential layer 0 > Conv2d.out_channels: 0 is below the minimum 1"),
    ("[[steps]]\nname = 'a'\ntype = 'train'\nparams = { data = '${out}', graph = 'missing.json' }\n",
     "step 'a', key 'params.graph': graph file"),
    ("[[steps]]\nname = 'a'\ntype = 'train'\nparams = { data = '${out}', graph = [], optimizer = 'adamm' }\n",
     "step 'a', key 'params.optimizer': training setting 'optimizer' = 'adamm' is not one of"),
    ("[[steps]]\nname = 'a'\ntype = 'train'\nparams = { data = '${out}', graph = [], epochs = 'many' }\n",
     "step 'a', key 'params.epochs': wrong type: expected int"),
    ("imports = ['nothere.py']\n[[steps]]\nname = 'a'\ntype = 't_make'\nparams = { n = 1 }\n",
     "key 'imports[0]': file"),
    ("[[steps]]\nname = 'a'\ntype = 't_make'\nparams = { n = 1 \n", "not valid TOML"),
])
def test_malformed_pipeline_fails_before_running_and_names_step_and_key(text, expected, tmp_path):
    CALLS.clear()
    msg = problems(text, tmp_path)
    assert expected in msg, msg
    assert CALLS == []


def test_all_problems_are_reported_together(tmp_path):
    msg = problems("""
        [[steps]]
        name = "a"
        type = "t_make"
        params = { n = "x" }
        [[steps]]
        name = "b"
        type = "nope"
    """, tmp_path)
    assert msg.count("\n  - ") == 2 and "step 'a', key 'params.n'" in msg and "step 'b', key 'type'" in msg


def test_imports_register_step_types_from_a_file_next_to_the_pipeline(tmp_path):
    (tmp_path / "mysteps.py").write_text(textwrap.dedent("""
        from uop_engine.pipeline import pipeline_process

        @pipeline_process(name="t_imported")
        def imported(k: int = 2) -> dict:
            return {"k2": k * k}
    """))
    try:
        cfg = load_pipeline(toml("imports = ['mysteps.py']\n[[steps]]\nname = 'sq'\ntype = 't_imported'\n"
                                 "params = { k = 5 }\n", tmp_path))
        assert cfg.order == ["sq"]
        assert "t_imported" in list_registered(include_builtin=False)
    finally:
        unregister("t_imported")


def test_loads_pipeline_from_text_uses_base_dir(tmp_path):
    cfg = loads_pipeline("[[steps]]\nname = 'm'\ntype = 't_make'\nparams = { n = 1 }\n", base_dir=tmp_path)
    assert cfg.base_dir == tmp_path and cfg.resolve_path("g.json") == tmp_path / "g.json"


# ---- runs recorded in the experiment store ---------------------------------------------------------
@pipeline_process(outputs=("path", "lines"))
def t_write(lines: int = 2, ctx: PipelineContext | None = None) -> dict:
    """Write a small file into the artifacts folder."""
    CALLS.append("t_write")
    p = ctx.out_dir / "notes.txt"
    p.write_text("".join(f"line {i}\n" for i in range(lines)))
    return {"path": str(p), "lines": lines}


def _store(tmp_path):
    from uop_engine.store import ExperimentStore
    return ExperimentStore(tmp_path / "runs.sqlite")


def _run(text: str, tmp_path: Path):
    return run_pipeline(loads_pipeline(textwrap.dedent(text), base_dir=tmp_path), out=tmp_path / "out",
                        store=str(tmp_path / "runs.sqlite"), progress="none")


def test_a_run_records_the_pipeline_and_one_child_run_per_step(tmp_path):
    import hashlib
    res = _run(GOOD + "    [[steps]]\n    name = 'notes'\n    type = 't_write'\n    params = { lines = 3 }\n",
               tmp_path)
    st = _store(tmp_path)
    parent = st.get_run(res.run_id)
    assert (parent["project"], parent["name"], parent["status"]) == ("toy", "toy", "finished")
    assert parent["tags"] == {"kind": "pipeline"} and parent["params"]["pipeline"]["name"] == "toy"
    assert parent["env"]["device"] == parent["params"]["device"] and parent["env"]["device"]
    assert [a["name"] for a in parent["artifacts"]] == ["pipeline_summary.json"]
    children = [st.get_run(c) for c in parent["children"]]
    assert [c["name"] for c in children] == res.order == ["make", "total", "notes"]
    make, total, notes = children
    for c, typ in zip(children, ("t_make", "t_total", "t_write")):
        assert c["parent_id"] == res.run_id and c["status"] == "finished" and c["project"] == "toy"
        assert c["tags"] == {"kind": "step", "type": typ} and c["env"]["device"] == parent["env"]["device"]
        assert len(st.metric_history(c["id"], "step_seconds")) == 1
    assert total["params"] == {"value": "${make.value}", "extra": 1, "mode": "double"}  # as written in the file
    assert make["last_metrics"]["value"] == 6.0 and total["last_metrics"]["total"] == 14.0  # (6 + 1) * 2
    assert notes["last_metrics"]["lines"] == 3.0
    (art,) = notes["artifacts"]
    data = (tmp_path / "out" / "notes.txt").read_bytes()
    assert art["name"] == "path:notes.txt" and art["size"] == len(data)
    assert art["sha256"] == hashlib.sha256(data).hexdigest()
    summary = json.loads((tmp_path / "out" / "pipeline_summary.json").read_text())
    assert summary["status"] == "finished" and summary["run_id"] == res.run_id
    assert summary["steps"]["total"]["total"] == 14.0


def test_a_failing_step_fails_its_run_and_the_pipelines(tmp_path):
    CALLS.clear()
    with pytest.raises(PipelineRunError, match="step 'bad' failed: RuntimeError: kaput") as e:
        _run("""
            name = "failing"
            [[steps]]
            name = "make"
            type = "t_make"
            params = { n = 1 }
            [[steps]]
            name = "bad"
            type = "t_fail"
            params = { message = "kaput" }
        """, tmp_path)
    assert e.value.step == "bad" and CALLS == ["t_make", "t_fail"]
    st = _store(tmp_path)
    (parent,) = st.list_runs(parent_id=None)
    assert parent["status"] == "failed"
    assert [(st.get_run(c)["name"], st.get_run(c)["status"]) for c in st.get_run(parent["id"])["children"]] == \
        [("make", "finished"), ("bad", "failed")]
    assert json.loads((tmp_path / "out" / "pipeline_summary.json").read_text())["status"] == "failed"


def test_a_reference_that_fails_to_resolve_after_steps_ran_is_a_run_failure(tmp_path):
    """`items` is a declared output, so the file validates; that it is a list without a key
    `first` shows only once `make` has run: a PipelineRunError (exit 1), not a config error."""
    CALLS.clear()
    with pytest.raises(PipelineRunError) as e:
        _run("""
            name = "late"
            [[steps]]
            name = "make"
            type = "t_make"
            params = { n = 2 }
            [[steps]]
            name = "total"
            type = "t_total"
            params = { value = "${make.items.first}" }
        """, tmp_path)
    msg = str(e.value)
    assert not isinstance(e.value, PipelineConfigError) and e.value.step == "total" and CALLS == ["t_make"]
    assert "step 'total' failed: its parameters could not be resolved after the earlier steps ran" in msg
    assert "step 'total', key 'params.value': step 'make' has no output 'items.first'" in msg
    st = _store(tmp_path)
    (parent,) = st.list_runs(parent_id=None)
    assert parent["status"] == "failed"
    assert [st.get_run(c)["status"] for c in st.get_run(parent["id"])["children"]] == ["finished", "failed"]


# ---- the built-in training steps for real, on a small slice of digits ----------------------------------
LINEAR = "graph = [ { op = 'flatten' }, { op = 'linear', out_features = 10 } ]"


def test_train_step_records_each_metric_once_with_graph_seed_and_device(tmp_path, capsys):
    import argparse
    from uop_engine.runs_view import show_run
    res = _run(f"""
        name = "fit"
        seed = 3
        [[steps]]
        name = "data"
        type = "dataset"
        params = {{ limit = 200 }}
        [[steps]]
        name = "train"
        type = "train"
        params = {{ data = "${{data.data}}", epochs = 2, batch_size = 32, {LINEAR} }}
    """, tmp_path)
    st = _store(tmp_path)
    child = st.get_run(st.get_run(res.run_id)["children"][1])
    assert child["name"] == "train" and child["graph_hash"] == res["train"]["graph_hash"]
    assert child["graph_json"] and child["seed"] == 3 and child["data_fingerprint"]
    assert child["env"]["device"] == st.get_run(res.run_id)["params"]["device"] and child["env"]["device"]
    hist = {k: [(m["step"], m["value"]) for m in st.metric_history(child["id"], k)] for k in child["metric_keys"]}
    assert [s for s, _ in hist["accuracy"]] == [1, 2] and [s for s, _ in hist["seconds"]] == [1, 2]  # per epoch
    assert hist["accuracy"][-1][1] == pytest.approx(res["train"]["metrics"]["accuracy"])
    assert len(hist["step_seconds"]) == 1
    for key, points in hist.items():  # nothing logged twice: one value per step
        assert len({s for s, _ in points}) == len(points), key
    show_run(argparse.Namespace(store=str(tmp_path / "runs.sqlite"), ids=[str(child["id"])], json=False))
    out = capsys.readouterr().out
    assert re.search(r"accuracy: last [0-9.]+, .*\(2 values\)", out) and "(3 values)" not in out
    assert f"graph {child['graph_hash']}" in out and f"device {child['env']['device']}" in out


def test_train_step_logs_each_epoch_as_it_ends_so_a_failed_run_keeps_them(tmp_path):
    blocker = tmp_path / "not a folder"
    blocker.write_text("x")  # the checkpoint at epoch 2 cannot be written here: training stops after epoch 2
    with pytest.raises(PipelineRunError, match="step 'train' failed"):
        _run(f"""
            name = "fit"
            [[steps]]
            name = "data"
            type = "dataset"
            params = {{ limit = 120 }}
            [[steps]]
            name = "train"
            type = "train"
            params = {{ data = "${{data.data}}", epochs = 4, checkpoint_every = 2, checkpoint_dir = "{blocker}", {LINEAR} }}
        """, tmp_path)
    st = _store(tmp_path)
    (parent,) = st.list_runs(parent_id=None)
    child = st.get_run(st.get_run(parent["id"])["children"][1])
    assert child["name"] == "train" and child["status"] == "failed"
    assert [m["step"] for m in st.metric_history(child["id"], "loss")] == [1, 2]  # logged before the failure


def test_cross_validate_and_infer_steps_run_for_real(tmp_path):
    import pyarrow.parquet as pq
    from uop_engine.predict import predict
    res = _run(f"""
        name = "cv_infer"
        [[steps]]
        name = "data"
        type = "dataset"
        params = {{ limit = 240, test_size = 0.25 }}
        [[steps]]
        name = "cv"
        type = "cross_validate"
        params = {{ data = "${{data.data}}", folds = 3, epochs = 1, batch_size = 30, {LINEAR} }}
        [[steps]]
        name = "train"
        type = "train"
        params = {{ data = "${{data.data}}", epochs = 2, batch_size = 30, {LINEAR} }}
        [[steps]]
        name = "infer"
        type = "infer"
        params = {{ model = "${{train.model}}", data = "${{data.data}}", path = "preds.parquet" }}
    """, tmp_path)
    data = res["data"]["data"]
    folds = res["cv"]["folds"]
    assert [f["fold"] for f in folds] == [0, 1, 2]
    assert sum(f["test_rows"] for f in folds) == res["data"]["n_train"] == 180
    assert all(f["train_rows"] + f["test_rows"] == 180 and 0 <= f["accuracy"] <= 1 for f in folds)
    acc = np.array([f["accuracy"] for f in folds])
    cvm = res["cv"]["metrics"]
    assert cvm["accuracy_mean"] == pytest.approx(acc.mean()) and cvm["accuracy_std"] == pytest.approx(acc.std(ddof=1))
    # the predictions file, parsed back, holds the model's predictions of the test split
    table = pq.read_table(tmp_path / "out" / "preds.parquet").to_pandas()
    assert len(table) == res["infer"]["n"] == len(data.y_test) == 60
    logits = predict(res["train"]["model"], data.X_test)
    label = next(c for c in table.columns if c.startswith("Prediction"))
    np.testing.assert_array_equal(table[label].to_numpy(), logits.argmax(axis=1))
    probs = table[[c for c in table.columns if c.startswith("P (")]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    st = _store(tmp_path)
    runs = {r["name"]: r for r in (st.get_run(c) for c in st.get_run(res.run_id)["children"])}
    assert runs["cv"]["last_metrics"]["accuracy_mean"] == pytest.approx(cvm["accuracy_mean"])
    assert runs["cv"]["graph_hash"] and runs["infer"]["last_metrics"]["n"] == 60
    assert [a["name"] for a in runs["infer"]["artifacts"]] == ["path:preds.parquet"]


def test_exported_onnx_names_the_run_that_trained_the_model(tmp_path):
    from uop_engine import onnx_metadata
    res = _run(f"""
        name = "fit_export"
        [[steps]]
        name = "data"
        type = "dataset"
        params = {{ limit = 120 }}
        [[steps]]
        name = "train"
        type = "train"
        params = {{ data = "${{data.data}}", epochs = 1, batch_size = 32, {LINEAR} }}
        [[steps]]
        name = "export"
        type = "export_onnx"
        params = {{ model = "${{train.model}}" }}
    """, tmp_path)
    st = _store(tmp_path)
    train_run = st.get_run(res.run_id)["children"][1]
    bundle = res["train"]["model"]
    assert bundle.record["experiment_run_id"] == train_run and len(bundle.record_id) == 16
    meta = onnx_metadata(res["export"]["path"])
    assert meta["experiment_run_id"] == train_run and meta["training_record_id"] == bundle.record_id
