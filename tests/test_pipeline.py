"""@pipeline_process schemas, pipeline file validation (everything fails before any step runs,
naming step and key), dependency order, references, and runs recorded in the experiment store."""
import json
import textwrap
from pathlib import Path
from typing import Literal

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
