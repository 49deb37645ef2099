"""The knime.extension test double keeps the contract of shared/KNIME_API.md: parameters (types,
ranges, enums by name, validators, groups, since_version), settings JSON, ports and their
transport, contexts (progress, cancellation, credentials), Arrow type rules and table batches."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("knime.extension._transport", reason="needs the knime.extension test double")
import knime.extension as knext  # noqa: E402
import knime_harness as kh  # noqa: E402

CAT = knext.category("/community", "double_new_test", "Double test", "Nodes of the double's tests.", "icons/x.png")


class SumSpec(knext.PortObjectSpec):
    def __init__(self, column: str) -> None:
        self.column = column

    def serialize(self) -> dict:
        return {"column": self.column if self.column != "bad" else {"a set"}}

    @classmethod
    def deserialize(cls, data: dict) -> "SumSpec":
        return cls(data["column"])


class SumObject(knext.PortObject):
    def __init__(self, spec: SumSpec, total: float) -> None:
        super().__init__(spec)
        self.total = total

    def serialize(self) -> bytes:
        return json.dumps(self.total).encode() if self.total >= 0 else "negative"

    @classmethod
    def deserialize(cls, spec: SumSpec, storage: bytes) -> "SumObject":
        return cls(spec, json.loads(storage))


class SubSum(SumObject):
    pass


class OtherSpec(SumSpec):
    pass


class OtherObject(knext.PortObject):
    def serialize(self) -> bytes:
        return b""

    @classmethod
    def deserialize(cls, spec, storage):
        return cls(spec)


sum_port = knext.port_type("Sum", SumObject, SumSpec)
sub_port = knext.port_type("Sub sum", SubSum, SumSpec)
other_port = knext.port_type("Other", OtherObject, OtherSpec, id="double.test.other")


class Mode(knext.EnumParameterOptions):
    FAST = ("Fast", "One pass.")
    SLOW = ("Slow", "Careful pass.")


@knext.parameter_group("Clipping")
class Clipping:
    """Clip the scaled values."""
    low = knext.IntParameter("Low", "Lower bound.", 0)
    high = knext.IntParameter("High", "Upper bound.", 1000)
    added = knext.BoolParameter("Added later", "Since 0.2.0.", True, since_version="0.2.0")

    def validate(self, values):
        if values["low"] > values["high"]:
            raise ValueError("'Low' must not exceed 'High'")


@knext.node("Scale", knext.NodeType.MANIPULATOR, "icons/x.png", CAT, id="double_new_scale")
@knext.input_table("Input", "Numbers.")
@knext.output_table("Output", "Scaled.")
@knext.output_port("Sum", "Sum of the scaled column.", sum_port)
class ScaleNode:
    """Scales a numeric column.

    Batch by batch.
    """
    column = knext.ColumnParameter("Column", "Numeric column.", port_index=0,
                                   column_filter=lambda c: c.ktype in (knext.int64(), knext.double()))
    factor = knext.DoubleParameter("Factor", "Multiplier.", 2.0, min_value=0.0, max_value=100.0)
    repeats = knext.IntParameter("Repeats", "Times.", 1, min_value=1, max_value=5)
    out_name = knext.StringParameter("Output column", "New column.", "scaled")
    mode = knext.EnumParameter("Mode", "How.", Mode.FAST.name, Mode)
    user = knext.StringParameter("Credential", "Who.", "", choices=lambda ctx: ctx.get_credential_names())
    clip = Clipping()

    @out_name.validator
    def _not_blank(value):
        if not value.strip():
            raise ValueError("'Output column' must not be empty")

    def configure(self, ctx, schema):
        if self.column not in schema.column_names:
            raise knext.InvalidParametersError(f"column '{self.column}' is not in the input")
        ctx.flow_variables["scaled"] = self.out_name
        return schema.append(knext.Column(knext.double(), self.out_name)), SumSpec(self.column)

    def execute(self, ctx, table):
        out, total, n = knext.BatchOutputTable.create(), 0.0, table.num_batches
        for i, batch in enumerate(table.batches()):
            if ctx.is_canceled():
                raise RuntimeError("Execution canceled")
            df = batch.to_pandas()
            df[self.out_name] = np.clip(df[self.column] * self.factor ** self.repeats, self.clip.low, self.clip.high)
            total += float(df[self.out_name].sum())
            out.append(df)
            ctx.set_progress((i + 1) / n, f"batch {i + 1} of {n}")
        ctx.flow_variables["scaled"] = self.out_name
        return out, SumObject(SumSpec(self.column), total)


@knext.node("Read", knext.NodeType.SINK, "icons/x.png", CAT, id="double_new_read")
@knext.input_port("Sum", "A sum.", sum_port)
@knext.input_table("Extra", "Optional.", optional=True)
@knext.input_table_group("More", "Any number of tables.")
@knext.output_binary("Report", "JSON.", id="double.report")
@knext.output_view("View", "HTML.")
class ReadNode:
    """Reads a sum."""
    mode = knext.StringParameter("Mode", "What to return.", "ok")

    def configure(self, ctx, spec, extra, more):
        if extra is None:
            ctx.set_warning("no extra table")
        return knext.BinaryPortObjectSpec("double.report")

    def execute(self, ctx, s, extra, more):
        report = json.dumps({"total": s.total, "cls": type(s).__name__, "more": len(more),
                             "connected": ctx.get_connected_input_port_numbers()}).encode()
        return (report, "not a view") if self.mode == "bad view" else (report, knext.view_html(f"<p>{s.total}</p>"))


def _df():
    return pd.DataFrame({"x": [1, 2, 3, 4, 5], "label": list("abcde")})


def test_node_decorator_registers_a_factory_with_ports_in_order():
    info = kh.node_info("double_new_scale")
    assert not isinstance(ScaleNode, type) and kh.node_info(ScaleNode) is info
    assert [p.name for p in ScaleNode().output_ports] == ["Output", "Sum"]
    assert (info.name, info.node_type, info.category) == ("Scale", knext.NodeType.MANIPULATOR,
                                                          "/community/double_new_test")
    assert sum_port.id == f"org.tinyuop.builder.{SumObject.__module__}.SumObject" and other_port.id == "double.test.other"
    desc = kh.node_description(ScaleNode)
    assert desc["short_description"] == "Scales a numeric column." and desc["full_description"] == "Batch by batch."
    assert [t["name"] for t in desc["tabs"]] == ["Options", "Clipping"]
    assert [p.name for p in kh.node_ports(ReadNode)[0]] == ["Sum", "Extra", "More"]


def test_parameters_are_per_instance_typed_ranged_and_validated():
    a, b = ScaleNode(), ScaleNode()
    a.factor, a.clip.high = 3, 7
    assert (a.factor, b.factor, a.clip.high, b.clip.high) == (3.0, 2.0, 7, 1000)
    with pytest.raises(ValueError, match="'Factor': 101 is > the max value 100.0"):
        a.factor = 101
    with pytest.raises(ValueError, match="'Repeats': 0 is smaller than the minimal value 1"):
        a.repeats = 0
    for bad in ("2", True, 2.0):
        with pytest.raises(TypeError, match="'Repeats' takes an int"):
            a.repeats = bad
    with pytest.raises(ValueError, match="'Output column' must not be empty"):
        a.out_name = "  "
    with pytest.raises(ValueError, match="'MEDIUM' is not one of the options 'FAST', 'SLOW'"):
        a.mode = "MEDIUM"
    a.mode = Mode.SLOW
    assert a.mode == "SLOW" and kh.extract_settings(a)["model"]["mode"] == "SLOW"
    seen = []
    loose = knext.StringParameter("Loose", "A validator that also takes ints.", "1", validator=seen.append)
    assert loose.check(5) == 5 and seen == [5]  # a custom validator replaces the built-in checks ...

    def opset_ok(value):
        if not 17 <= value <= 21:
            raise ValueError(f"Opset {value} is not supported")
    opset = knext.IntParameter("Opset", "o", 18, validator=opset_ok, min_value=17, max_value=21)
    with pytest.raises(ValueError, match="^Opset 13 is not supported$"):  # ... ranges included
        opset.check(13)


def test_settings_json_round_trip_and_invalid_settings():
    s = kh.settings_with(ScaleNode, {"column": "x", "clip": {"low": 5}})
    assert s["model"]["clip"] == {"low": 5, "high": 1000, "added": True} and s["model"]["mode"] == "FAST"
    node = ScaleNode()
    kh.inject_settings(node, s)
    again = ScaleNode()
    kh.inject_settings(again, kh.extract_settings(node))
    assert kh.extract_settings(again) == s and again.clip.low == 5
    with pytest.raises(kh.InvalidSettingsError, match=r"parameter 'Factor' \(factor\): 'Factor': 500.0 is > the max"):
        kh.configure_node(ScaleNode, {"column": "x", "factor": 500.0}, [_df()])
    with pytest.raises(kh.InvalidSettingsError, match="Clipping: 'Low' must not exceed 'High'"):
        kh.run_node(ScaleNode, {"column": "x", "clip": {"low": 9, "high": 1}}, [_df()])
    with pytest.raises(KeyError, match="no parameter 'clip.hgh'"):
        kh.settings_with(ScaleNode, {"clip": {"hgh": 1}})
    with pytest.raises(TypeError, match="not JSON serializable"):
        kh.configure_node(ScaleNode, {"column": {"x"}}, [_df()])
    del s["model"]["factor"]
    with pytest.raises(kh.InvalidSettingsError, match='Parameter missing for key "factor".'):
        kh.inject_settings(ScaleNode(), s)
    with pytest.raises(knext.InvalidParametersError, match="column 'nope' is not in the input"):
        kh.configure_node(ScaleNode, {"column": "nope"}, [_df()])


def test_since_version_and_version_dependent_defaults():
    old = kh.default_settings(ScaleNode)
    del old["model"]["clip"]["added"]
    node = ScaleNode()
    kh.inject_settings(node, old, version="0.1.0")
    assert node.clip.added is True
    with pytest.raises(kh.InvalidSettingsError, match='Parameter missing for key "added".'):
        kh.inject_settings(ScaleNode(), old, version="0.2.0")
    p = knext.IntParameter("P", "Default by release.", lambda v: 1 if v < knext.Version(0, 3, 0) else 2)
    assert (p.default_value, p.default_for(knext.Version(0, 2, 0))) == (1, 1)  # knime.yml: version 0.1.0
    assert p.default_for(knext.Version(0, 3, 0)) == 2


def test_configure_execute_tables_batches_flow_variables_and_progress():
    r = kh.run_node(ScaleNode, {"column": "x", "factor": 3.0}, [kh.table_from_pandas(_df(), batch_size=2)])
    out = r.outputs[0]
    assert out.num_batches == 3 and out.to_pandas()["scaled"].tolist() == [3.0, 6.0, 9.0, 12.0, 15.0]
    assert list(out.to_pandas().index) == [f"Row{i}" for i in range(5)]
    assert r.specs[0] == out.schema and out.schema.column_names == ["x", "label", "scaled"]
    assert r.flow_variables == {"scaled": "scaled"} and r.progress[-1] == (1.0, "batch 3 of 3")
    assert [p for p, _ in r.progress] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert isinstance(r.outputs[1], SumObject) and r.outputs[1].total == 45.0 and r.specs[1].column == "x"


def test_port_objects_travel_as_bytes_and_ports_check_their_types():
    summary = kh.run_node(ScaleNode, {"column": "x"}, [_df()]).outputs[1]
    r = kh.run_node(ReadNode, {}, [summary, None, [_df(), _df()]])
    assert json.loads(r.outputs[0]) == {"total": 30.0, "cls": "SumObject", "more": 2, "connected": [1, 0, 2]}
    assert r.warnings == ["no extra table"] and "<p>30.0</p>" in r.view.html
    sub = kh.run_node(ReadNode, {}, [SubSum(SumSpec("y"), 2.0), None, []])
    assert json.loads(sub.outputs[0])["cls"] == "SubSum"  # a subclass port connects
    with pytest.raises(TypeError, match="input port 'Sum' .*needs a SumObject, got OtherObject"):
        kh.run_node(ReadNode, {}, [OtherObject(OtherSpec("z")), None, []])
    with pytest.raises(TypeError, match=r"serialize\(\) must return bytes, got str"):
        kh.run_node(ReadNode, {}, [SumObject(SumSpec("y"), -1.0), None, []])
    with pytest.raises(TypeError, match="not JSON serializable"):
        kh.run_node(ReadNode, {}, [SumObject(SumSpec("bad"), 1.0), None, []])
    with pytest.raises(TypeError, match="must return a knext view"):
        kh.run_node(ReadNode, {"mode": "bad view"}, [summary, None, []])


class Live:
    def __init__(self):
        self.lock = __import__("threading").Lock()  # cannot be pickled or serialised


class LiveObject(knext.ConnectionPortObject):
    def __init__(self, spec, live):
        super().__init__(spec)
        self.live = live

    def to_connection_data(self):
        return self.live

    @classmethod
    def from_connection_data(cls, spec, data):
        return cls(spec, data)


live_port = knext.port_type("Live", LiveObject, SumSpec)


@knext.node("Connect", knext.NodeType.SOURCE, "icons/x.png", CAT, id="double_new_connect")
@knext.output_port("Session", "A live object.", live_port)
@knext.output_table_group("Tables", "One per connected port.")
class ConnectNode:
    """Makes a live session and some tables."""
    mismatch = knext.BoolParameter("Mismatch", "Execute a column configure did not promise.", False)

    def configure(self, ctx):
        return SumSpec("s"), [knext.Schema.from_columns([knext.Column(knext.int64(), "n")])] * 2

    def execute(self, ctx):
        n = ctx.get_connected_output_port_numbers()[1]
        df = pd.DataFrame({"m" if self.mismatch else "n": [1]})
        return LiveObject(SumSpec("s"), Live()), [knext.Table.from_pandas(df) for _ in range(n)]


def test_connection_objects_pass_by_reference_and_specs_are_checked():
    r = kh.run_node(ConnectNode, {}, output_group_sizes={"Tables": 2})
    assert isinstance(r.outputs[0], LiveObject) and isinstance(r.outputs[0].live, Live)
    assert len(r.outputs[1]) == 2 and r.outputs[1][1].to_pandas()["n"].tolist() == [1]
    with pytest.raises(AssertionError, match="differs from the spec configure gave"):
        kh.run_node(ConnectNode, {"mismatch": True}, output_group_sizes={"Tables": 2})


def test_progress_is_range_checked_and_folders_exist(tmp_path):
    ctx = kh.make_exec_context(ScaleNode, workflow_dir=str(tmp_path / "wf"))
    ctx.set_progress(0.5, "half")
    ctx.set_progress(1)
    assert kh.progress(ctx) == [(0.5, "half"), (1.0, None)]
    with pytest.raises(ValueError, match="between 0.0 and 1.0, got 1.5"):
        ctx.set_progress(1.5)
    with pytest.raises(ValueError, match="got -0.1"):
        ctx.set_progress(-0.1)
    with pytest.raises(TypeError, match="not str"):
        ctx.set_progress("0.5")
    assert ctx.get_workflow_data_area_dir() == str(tmp_path / "wf" / "data") and (tmp_path / "wf" / "data").is_dir()
    r = kh.run_node(ScaleNode, {"column": "x"}, [_df()], context=ctx)
    assert r.progress == kh.progress(ctx) and kh.progress(ctx)[-1] == (1.0, "batch 1 of 1")


def test_cancellation_stops_the_node_or_discards_its_outputs():
    ctx = kh.make_exec_context(ScaleNode, cancel_after=2)
    with pytest.raises(RuntimeError, match="Execution canceled"):  # stops at its 3rd is_canceled()
        kh.run_node(ScaleNode, {"column": "x"}, [kh.table_from_pandas(_df(), batch_size=1)], context=ctx)
    assert kh.cancel_checks(ctx) == 3 and len(kh.progress(ctx)) == 2
    with pytest.raises(kh.NodeCanceledError, match="returned normally"):  # asked once, then ignored the cancel
        kh.run_node(ScaleNode, {"column": "x"}, [_df()], cancel_after=1)
    assert kh.run_node(ScaleNode, {"column": "x"}, [_df()], cancel_after=2).outputs[1].total == 30.0


def test_credentials_dialog_choices_columns_and_rules():
    r = kh.configure_node(ScaleNode, {"column": "x"}, [_df()], credentials={"db": ("alice", "s3cret")})
    assert r.flow_variables == {"scaled": "scaled"}
    ctx = kh.make_config_context(credentials={"db": ("alice", "s3cret")})
    c = ctx.get_credentials("db")
    assert (c.username, c.password, c.credential_name) == ("alice", "s3cret", "db") and "s3cret" not in repr(c)
    with pytest.raises(KeyError, match=r"no credentials named 'other'.*\['db'\]"):
        ctx.get_credentials("other")
    d = kh.dialog(ScaleNode, {}, [_df()], credentials={"db": ("a", "b"), "web": ("c", "d")})
    props = d["schema"]["properties"]["model"]["properties"]
    assert [o["const"] for o in props["user"]["oneOf"]] == ["db", "web"] and props["clip"]["properties"]["low"]
    column = d["ui_schema"]["elements"][0]
    assert [v["id"] for v in column["options"]["possibleValues"]] == ["x"]  # the filter drops 'label'
    assert props["mode"]["oneOf"][1] == {"const": "SLOW", "title": "Slow", "description": "Careful pass."}

    @knext.node("Ruled", knext.NodeType.OTHER, "icons/x.png", CAT, id="double_new_ruled")
    @knext.output_table("Out", "o")
    class Ruled:
        """Rules."""
        flag = knext.BoolParameter("Flag", "f", False)
        size = knext.IntParameter("Size", "s", 1, is_advanced=True).rule(knext.OneOf(flag, [True]), knext.Effect.SHOW)
        wrong = knext.IntParameter("Wrong", "w", 1).rule(knext.OneOf(Clipping.low, [1]), knext.Effect.HIDE)

        def configure(self, ctx):
            ctx.flow_variables["knime.x"] = 1
            return None

        def execute(self, ctx):
            return knext.Table.from_pandas(_df())
    with pytest.raises(ValueError, match="rule of parameter 'wrong' refers to 'Low'.*same level"):
        kh.dialog(Ruled)
    Ruled().__class__.wrong._rule = None
    ui = kh.dialog(Ruled)["ui_schema"]["elements"][1]
    assert ui["rule"] == {"effect": "SHOW", "condition": {"scope": "#/properties/model/properties/flag",
                                                          "schema": {"oneOf": [{"const": True}]}}}
    assert ui["options"] == {"format": "integer", "isAdvanced": True}
    with pytest.raises(ValueError, match="names starting with 'knime' are reserved"):
        kh.configure_node(Ruled)


def test_declaration_mistakes_fail_when_the_extension_loads():
    with pytest.raises(AttributeError, match="parameter 'p' is set on the instance"):
        @knext.node("Init", knext.NodeType.OTHER, "icons/x.png", CAT, id="double_new_init")
        class InitParams:
            """Parameter in __init__."""
            def __init__(self):
                self.p = knext.IntParameter("P", "p", 1)

            def configure(self, ctx):
                return None

            def execute(self, ctx):
                return None
    with pytest.raises(ValueError, match="port_index=1, but input port 1 is 'Model'"):
        @knext.node("Index", knext.NodeType.OTHER, "icons/x.png", CAT, id="double_new_index")
        @knext.input_table("Data", "d")
        @knext.input_port("Model", "m", sum_port)
        class WrongIndex:
            """Column of a model port."""
            col = knext.ColumnParameter("Col", "c", port_index=1)

            def configure(self, ctx, schema, spec):
                return None

            def execute(self, ctx, table, obj):
                return None
    with pytest.raises(TypeError, match="must define execute"):
        knext.node("No exec", knext.NodeType.OTHER, "icons/x.png", CAT)(type("NoExec", (), {"configure": len}))
    with pytest.raises(TypeError, match="below @knext.node"):
        knext.output_table("Out", "o")(ScaleNode)
