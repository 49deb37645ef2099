"""Tests of the knime.extension test double and the node harness, with sample nodes declared here."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import knime.extension as knext
import knime_harness as kh

CATEGORY = knext.category("/community", "double_test", "Double test", "Nodes of the double's tests.", "icons/x.png")


class SummarySpec(knext.PortObjectSpec):
    def __init__(self, column: str) -> None:
        self.column = column

    def serialize(self) -> dict:
        return {"column": self.column}

    @classmethod
    def deserialize(cls, data: dict) -> "SummarySpec":
        return cls(data["column"])


class SummaryObject(knext.PortObject):
    def __init__(self, spec: SummarySpec, total: float, user: str) -> None:
        super().__init__(spec)
        self.total, self.user = total, user

    def serialize(self) -> bytes:
        return json.dumps({"total": self.total, "user": self.user}).encode()

    @classmethod
    def deserialize(cls, spec: SummarySpec, storage: bytes) -> "SummaryObject":
        d = json.loads(storage.decode())
        return cls(spec, d["total"], d["user"])


summary_port = knext.port_type("Summary", SummaryObject, SummarySpec)


class Mode(knext.EnumParameterOptions):
    FAST = ("Fast", "One pass.")
    SLOW = ("Slow", "Careful pass.")


@knext.parameter_group(label="Clipping")
class Clipping:
    """Clip the scaled values."""
    low = knext.IntParameter("Low", "Lower bound.", 0)
    high = knext.IntParameter("High", "Upper bound.", 1000)
    added = knext.BoolParameter("Added later", "A parameter of version 0.2.0.", True, since_version="0.2.0")

    def validate(self, values):
        if values["low"] > values["high"]:
            raise ValueError("Clipping: 'Low' must not exceed 'High'")


@knext.node("Scale Column", knext.NodeType.MANIPULATOR, "icons/x.png", CATEGORY, id="double_test_scale")
@knext.input_table("Input", "Table with a numeric column.")
@knext.output_table("Output", "The input with the scaled column appended.")
@knext.output_port("Summary", "Sum of the scaled column.", summary_port)
class ScaleNode:
    """Scales a numeric column.

    Multiplies the selected column by a factor, batch by batch.
    """
    column = knext.ColumnParameter("Column", "Numeric column to scale.", port_index=0)
    factor = knext.DoubleParameter("Factor", "Multiplier.", 2.0, min_value=0.0, max_value=100.0)
    repeats = knext.IntParameter("Repeats", "Times to apply the factor.", 1, min_value=1, max_value=5)
    out_name = knext.StringParameter("Output column", "Name of the new column.", "scaled")
    mode = knext.EnumParameter("Mode", "How to scale.", Mode.FAST.name, Mode)
    credential = knext.StringParameter("Credential", "Who ran it.", "", choices=lambda ctx: ctx.get_credential_names())
    clipping = Clipping()

    @out_name.validator
    def _out_name_not_empty(value):
        if not value.strip():
            raise ValueError("'Output column' must not be empty")

    def configure(self, ctx, schema):
        if self.column not in schema.column_names:
            raise knext.InvalidParametersError(f"column '{self.column}' is not in the input; "
                                               f"available: {schema.column_names}")
        ctx.flow_variables["scaled_column"] = self.out_name
        return schema.append(knext.Column(knext.double(), self.out_name)), SummarySpec(self.column)

    def execute(self, ctx, table):
        out, total, n = knext.BatchOutputTable.create(), 0.0, table.num_batches
        for i, batch in enumerate(table.batches()):
            if ctx.is_canceled():
                raise RuntimeError("Execution canceled")
            df = batch.to_pandas()
            df[self.out_name] = np.clip(df[self.column].astype(float) * self.factor ** self.repeats,
                                        self.clipping.low, self.clipping.high)
            total += float(df[self.out_name].sum())
            out.append(df)
            ctx.set_progress((i + 1) / n, f"batch {i + 1} of {n}")
        user = ctx.get_credentials(self.credential).username if self.credential else ""
        ctx.flow_variables["scaled_column"] = self.out_name
        return out, SummaryObject(SummarySpec(self.column), total, user)


@knext.node("Read Summary", knext.NodeType.SINK, "icons/x.png", CATEGORY, id="double_test_read")
@knext.input_port("Summary", "A summary.", summary_port)
@knext.input_table("Extra", "Optional table.", optional=True)
@knext.input_table_group("More", "Any number of tables.")
@knext.output_binary("Report", "The summary as JSON bytes.", id="double_test.report")
@knext.output_image("Plot", "A PNG.")
@knext.output_view("View", "The summary as HTML.")
class ReadSummaryNode:
    """Reads a summary."""

    def configure(self, ctx, spec, extra, more):
        assert isinstance(spec, SummarySpec) and isinstance(more, list)
        if extra is None:
            ctx.set_warning("no extra table")
        self.connected = ctx.get_connected_input_port_numbers()
        return knext.BinaryPortObjectSpec("double_test.report"), knext.ImagePortObjectSpec(knext.ImageFormat.PNG)

    def execute(self, ctx, summary, extra, more):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig = plt.figure()
        plt.plot([0, 1], [0, summary.total])
        png = knext.view_matplotlib(fig).render()
        report = json.dumps({"total": summary.total, "column": summary.spec.column, "more": len(more),
                             "connected": ctx.get_connected_input_port_numbers()}).encode()
        return report, png, knext.view_html(f"<!DOCTYPE html><p>{summary.total}</p>")


def _df():
    return pd.DataFrame({"x": [1, 2, 3, 4, 5], "label": list("abcde")})


def test_node_decorator_returns_factory_and_registers():
    info = kh.node_info("double_test_scale")
    assert not isinstance(ScaleNode, type) and callable(ScaleNode)
    node = ScaleNode()
    assert [p.name for p in node.input_ports] == ["Input"]
    assert [p.name for p in node.output_ports] == ["Output", "Summary"]
    assert info.name == "Scale Column" and info.node_type == "Manipulator" and info.category == "/community/double_test"
    assert node.__doc__.strip().startswith("Scales a numeric column.")
    # default port type id: "<group_id>.<name> from knime.yml>.<module>.<qualname>"
    assert kh.node_ports(ScaleNode)[1][1].type.id == f"{kh.db.EXTENSION_ID}.{SummaryObject.__module__}.SummaryObject"
    assert kh.db.EXTENSION_ID == "org.tinyuop.builder"
    assert info.to_dict()["output_port_specifier"][1]["type_string"] == summary_port.id
    assert set(kh.node_parameters(ScaleNode)) >= {"column", "factor", "clipping"}
    desc = kh.node_description(ScaleNode)
    assert desc["short_description"] == "Scales a numeric column." and "batch by batch" in desc["full_description"]
    assert [t["name"] for t in desc["tabs"]] == ["Options", "Clipping"]


def test_parameters_are_per_instance_and_validated_on_assignment():
    a, b = ScaleNode(), ScaleNode()
    a.factor = 3.5
    assert (a.factor, b.factor) == (3.5, 2.0)
    with pytest.raises(ValueError, match="max value 100"):
        a.factor = 101.0
    with pytest.raises(ValueError, match="smaller than the minimal value 1"):
        a.repeats = 0
    with pytest.raises(TypeError, match="should be of type int"):
        a.repeats = "2"
    with pytest.raises(ValueError, match="'Output column' must not be empty"):
        a.out_name = "  "
    with pytest.raises(ValueError, match="not one of the available options: 'FAST', 'SLOW'"):
        a.mode = "MEDIUM"
    a.clipping.high = 7
    assert a.clipping.high == 7 and b.clipping.high == 1000
    assert kh.extract_settings(a)["model"]["clipping"]["high"] == 7


def test_settings_json_round_trip_and_invalid_settings_messages():
    s = kh.settings_with(ScaleNode, {"column": "x", "clipping": {"low": 5}})
    assert s["model"]["clipping"] == {"low": 5, "high": 1000, "added": True} and s["model"]["mode"] == "FAST"
    with pytest.raises(kh.InvalidSettingsError, match="500.0 is > the max value 100.0"):
        kh.run_node(ScaleNode, {"column": "x", "factor": 500.0}, [_df()])
    with pytest.raises(kh.InvalidSettingsError, match="'Low' must not exceed 'High'"):
        kh.run_node(ScaleNode, {"column": "x", "clipping": {"low": 9, "high": 1}}, [_df()])
    with pytest.raises(KeyError, match="no parameter 'facter'"):
        kh.settings_with(ScaleNode, {"facter": 1.0})
    with pytest.raises(knext.InvalidParametersError, match="column 'nope' is not in the input; available"):
        kh.configure_node(ScaleNode, {"column": "nope"}, [_df()])


def test_since_version_settings_from_older_release_get_defaults():
    old = kh.default_settings(ScaleNode)
    del old["model"]["clipping"]["added"]
    node = ScaleNode()
    kh.inject_settings(node, old, version="0.1.0")
    assert node.clipping.added is True
    with pytest.raises(kh.InvalidSettingsError, match='Parameter missing for key "added"'):
        kh.inject_settings(ScaleNode(), old, version="0.2.0")


def test_configure_and_execute_table_in_and_out():
    r = kh.run_node(ScaleNode, {"column": "x", "factor": 3.0}, [kh.table_from_pandas(_df(), batch_size=2)])
    out = r.outputs[0].to_pandas()
    np.testing.assert_allclose(out["scaled"].to_numpy(), [3, 6, 9, 12, 15])
    assert list(out.index) == [f"Row{i}" for i in range(5)] and out.index.name == "<RowID>"
    assert isinstance(out["label"].dtype, pd.StringDtype)
    assert r.specs[0] == r.outputs[0].schema and r.specs[0].column_names == ["x", "label", "scaled"]
    assert r.outputs[0].num_batches == 3 and r.flow_variables == {"scaled_column": "scaled"}
    assert [p for p, _ in r.progress] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert r.progress[-1][1] == "batch 3 of 3"


def test_custom_port_round_trips_through_bytes():
    r = kh.run_node(ScaleNode, {"column": "x"}, [_df()])
    summary = r.outputs[1]
    assert isinstance(summary, SummaryObject) and summary.total == pytest.approx(30.0)
    assert isinstance(r.specs[1], SummarySpec) and r.specs[1].column == "x"
    r2 = kh.run_node(ReadSummaryNode, {}, [summary, None, [_df(), _df()]])
    report = json.loads(r2.outputs[0])
    assert report == {"total": 30.0, "column": "x", "more": 2, "connected": [1, 1, 2]}
    assert r2.outputs[1].startswith(b"\x89PNG") and "<p>30.0</p>" in r2.view.html
    assert r2.warnings == ["no extra table"]


class BadSpec(SummarySpec):
    def serialize(self) -> dict:
        return {"column": self.column if self.column == "ok" else {self.column}}  # a set is not JSON


class BadObject(SummaryObject):
    def serialize(self) -> str:
        return "not bytes"


bad_port = knext.port_type("Bad", BadObject, BadSpec)


class UnrelatedSpec(knext.PortObjectSpec):
    def serialize(self) -> dict:
        return {}

    @classmethod
    def deserialize(cls, data):
        return cls()


class UnrelatedObject(knext.PortObject):
    def serialize(self) -> bytes:
        return b""

    @classmethod
    def deserialize(cls, spec, storage):
        return cls(spec)


class SubSummarySpec(SummarySpec):
    pass


class SubSummary(SummaryObject):
    pass


unrelated_port = knext.port_type("Unrelated", UnrelatedObject, UnrelatedSpec)
sub_summary_port = knext.port_type("Sub summary", SubSummary, SubSummarySpec)


@knext.node("Bad Port", knext.NodeType.SOURCE, "icons/x.png", CATEGORY, id="double_test_bad")
@knext.output_port("Bad", "Unserialisable.", bad_port)
class BadPortNode:
    """Emits a spec or an object KNIME cannot store."""
    spec_ok = knext.BoolParameter("Spec ok", "Use a serialisable spec.", False)

    def configure(self, ctx):
        return BadSpec("ok" if self.spec_ok else "c")

    def execute(self, ctx):
        return BadObject(BadSpec("ok"), 1.0, "")


@knext.node("Bad Type", knext.NodeType.SOURCE, "icons/x.png", CATEGORY, id="double_test_bad_type")
@knext.output_port("Summary", "Wrong spec class.", summary_port)
class BadTypeNode:
    """Returns a spec of the wrong class."""

    def configure(self, ctx):
        return knext.BinaryPortObjectSpec("x")

    def execute(self, ctx):  # required: KNIME wraps configure and execute of every node
        return None


def test_unserialisable_ports_fail_as_in_knime():
    with pytest.raises(TypeError, match="not JSON serializable"):
        kh.configure_node(BadPortNode)
    with pytest.raises(TypeError, match="serialize\\(\\) must return bytes"):
        kh.run_node(BadPortNode, {"spec_ok": True})
    with pytest.raises(AssertionError, match="Expected output spec of type"):
        kh.configure_node(BadTypeNode)
    with pytest.raises(knext.InvalidParametersError, match="The provided Unrelated is incompatible"):
        kh.run_node(ReadSummaryNode, {}, [UnrelatedObject(UnrelatedSpec()), None, []])
    sub = kh.run_node(ReadSummaryNode, {}, [SubSummary(SubSummarySpec("y"), 2.0, ""), None, []])
    assert json.loads(sub.outputs[0])["column"] == "y"  # a port subtype connects, as in KNIME


def test_progress_recording_and_range_check():
    ctx = kh.make_exec_context(ScaleNode)
    ctx.set_progress(0.5, "half")
    ctx.set_progress(1)
    assert kh.progress(ctx) == [(0.5, "half"), (1.0, None)]
    with pytest.raises(ValueError, match="between 0.0 and 1.0"):
        ctx.set_progress(1.5)
    with pytest.raises(TypeError):
        ctx.set_progress("0.5")
    r = kh.run_node(ScaleNode, {"column": "x"}, [_df()], context=ctx)
    assert kh.progress(ctx)[-1] == (1.0, "batch 1 of 1") and r.progress == kh.progress(ctx)
    assert ctx.get_workflow_data_area_dir() == os.path.join(ctx._java_ctx.workflow_dir, "data")
    assert os.path.isdir(ctx.get_workflow_temp_dir())


def test_cancellation():
    table = kh.table_from_pandas(_df(), batch_size=1)
    with pytest.raises(RuntimeError, match="Execution canceled"):
        kh.run_node(ScaleNode, {"column": "x"}, [table], cancel_after=2)
    with pytest.raises(kh.NodeCanceledError):  # the node ignored it: KNIME discards the outputs
        kh.run_node(ScaleNode, {"column": "x"}, [kh.table_from_pandas(_df())], cancel_after=1)


def test_credentials_and_dialog_choices():
    creds = {"db": ("alice", "s3cret")}
    r = kh.run_node(ScaleNode, {"column": "x", "credential": "db"}, [_df()], credentials=creds)
    assert r.outputs[1].user == "alice"
    ctx = kh.make_config_context(credentials=creds)
    c = ctx.get_credentials("db")
    assert (c.username, c.password, c.credential_name) == ("alice", "s3cret", "db")
    with pytest.raises(KeyError, match="Error retrieving credentials for identifier: other"):
        ctx.get_credentials("other")
    d = kh.dialog(ScaleNode, {}, [_df()], credentials={"db": ("a", "b"), "web": ("c", "d")})
    model = d["schema"]["properties"]["model"]["properties"]
    assert [o["const"] for o in model["credential"]["oneOf"]] == ["db", "web"]
    assert [v["id"] for v in d["ui_schema"]["elements"][0]["options"]["possibleValues"]] == ["x", "label"]


def test_batch_output_table_pandas_and_arrow_batches():
    out = knext.BatchOutputTable.create()
    out.append(pd.DataFrame({"a": [1, 2]}, index=["r1", "r2"]))
    out.append(pa.table({"<RowID>": ["r3"], "a": pa.array([3], pa.int64())}))
    assert out.num_batches == 2
    received = kh.as_received(out)
    assert received.num_batches == 2 and received.to_pandas()["a"].tolist() == [1, 2, 3]
    assert list(received.to_pandas().index) == ["r1", "r2", "r3"]
    gen = knext.BatchOutputTable.create(row_ids="generate")
    gen.append(pd.DataFrame({"a": [1.0]}))
    gen.append(pd.DataFrame({"a": [2.0]}))
    assert list(kh.as_received(gen).to_pandas().index) == ["Row0", "Row1"]
    dup = knext.BatchOutputTable.create()
    dup.append(pd.DataFrame({"a": [1]}, index=["x"]))
    dup.append(pd.DataFrame({"a": [2]}, index=["x"]))
    with pytest.raises(ValueError, match="Duplicate RowID 'x'"):
        kh.as_received(dup)
    uneven = knext.BatchOutputTable.create(row_ids="generate")
    for n in (1, 2):
        uneven.append(pd.DataFrame({"a": [0.0] * n}))
    with pytest.raises(ValueError, match="must not have more"):
        kh.as_received(uneven)


def test_table_types_knime_refuses():
    with pytest.raises(ValueError, match="Data type 'large_string' in column 'x' is not supported"):
        knext.Table.from_pyarrow(pa.table({"x": pa.array(["a"], pa.large_string())}))
    with pytest.raises(ValueError, match="large_string"):  # pandas' pyarrow strings are large_string
        knext.Table.from_pandas(pd.DataFrame({"s": pd.Series(["a"], dtype="string[pyarrow]")}))
    with pytest.raises(ValueError, match="'uint8' in column 'u'"):
        knext.Table.from_pandas(pd.DataFrame({"u": np.array([1], np.uint8)}))
    with pytest.raises(TypeError, match="first column must contain unique row identifiers of type 'string'"):
        knext.Table.from_pyarrow(pa.table({"id": [1, 2]}), row_ids="keep")
    t = knext.Table.from_pandas(pd.DataFrame({"f": np.array([1.5], np.float32), "l": [[1, 2]]}))
    assert t.schema == knext.Schema.from_columns([knext.Column(knext.double(), "f"),
                                                  knext.Column(knext.list_(knext.int64()), "l")])
    with pytest.raises(RuntimeError, match="Retrieving batches is only allowed"):
        next(t.batches())


def test_pandas_3_is_refused(monkeypatch):
    monkeypatch.setattr(pd, "__version__", "3.0.0")
    with pytest.raises(RuntimeError, match="pandas 3.0.0 is not supported by KNIME 5.x"):
        knext.Table.from_pandas(_df())


def test_schema_json_round_trip_and_views():
    s = knext.Schema.from_columns([knext.Column(knext.int32(), "i"), knext.Column(knext.string(), "s"),
                                   knext.Column(knext.list_(knext.double()), "l"),
                                   knext.Column(knext.logical(__import__("datetime").date), "d")])
    back = knext.Schema.deserialize(json.loads(json.dumps(s.serialize())))
    assert back == s and back["s"].ktype == knext.string() and s[["i", "l"]].column_names == ["i", "l"]
    with pytest.raises(RuntimeError, match="Duplicate column names"):
        knext.Schema.from_columns([knext.Column(knext.int32(), "a")] * 2).serialize()
    assert knext.view_svg('<svg xmlns="http://www.w3.org/2000/svg"></svg>').render().startswith("<svg")


def test_parameters_in_init_and_enum_without_default_fail_as_in_knime():
    @knext.node("Init Params", knext.NodeType.OTHER, "icons/x.png", CATEGORY, id="double_test_init")
    class InitParams:
        """Defines a parameter on the instance."""
        def __init__(self):
            self.p = knext.IntParameter("P", "p", 1)

    with pytest.raises(AttributeError, match="Only parameter group composition is allowed"):
        InitParams()
    with pytest.raises(AttributeError, match="needs an explicit default_value"):
        knext.EnumParameter("Mode", "m", enum=Mode)
    loose = knext.StringParameter("S", "s", "a", enum=["a", "b"])  # KNIME does not check membership
    loose._validator("c")


def test_rules_port_order_and_flow_variable_guard():
    @knext.node("Ruled", knext.NodeType.OTHER, "icons/x.png", CATEGORY, id="double_test_ruled")
    @knext.input_table("First", "1")
    @knext.input_binary("Second", "2", id="bin")
    @knext.output_table("Out", "o")
    class Ruled:
        """Rules and flow variables."""
        flag = knext.BoolParameter("Flag", "f", False)
        size = knext.IntParameter("Size", "s", 1, is_advanced=True).rule(knext.OneOf(flag, [True]),
                                                                         knext.Effect.SHOW)

        def configure(self, ctx, schema, spec):
            ctx.flow_variables["knime_x"] = 1
            return schema

        def execute(self, ctx, table, data):
            return table

    assert [p.name for p in Ruled().input_ports] == ["First", "Second"]
    ui = kh.dialog(Ruled, {}, [_df(), knext.BinaryPortObjectSpec("bin")])["ui_schema"]
    assert ui["elements"][1]["rule"] == {"effect": "SHOW", "condition": {
        "scope": "#/properties/model/properties/flag", "schema": {"oneOf": [{"const": True}]}}}
    assert ui["elements"][1]["options"] == {"format": "integer", "isAdvanced": True}
    with pytest.raises(ValueError, match="starts with 'knime' is not allowed"):
        kh.run_node(Ruled, {}, [_df(), b"raw"])


class Session:
    """A live object that cannot be pickled or serialised (e.g. a database connection)."""

    def __init__(self, name):
        self.name, self.lock = name, __import__("threading").Lock()


class SessionSpec(SummarySpec):
    pass


class SessionObject(knext.ConnectionPortObject):
    def __init__(self, spec, session):
        super().__init__(spec)
        self.session = session

    def to_connection_data(self):
        return self.session

    @classmethod
    def from_connection_data(cls, spec, data):
        return cls(spec, data)


session_port = knext.port_type("Session", SessionObject, SessionSpec)


class Colour(knext.EnumParameterOptions):
    RED = ("Red", "r")
    BLUE = ("Blue", "b")


@knext.parameter_group(label="Layer")
class Layer:
    units = knext.IntParameter("Units", "u", 8, min_value=1)
    act = knext.StringParameter("Activation", "a", "relu")


@knext.node("Params", knext.NodeType.SOURCE, "icons/x.png", CATEGORY, id="double_test_params")
@knext.input_table("Data", "d", optional=True)
@knext.output_port("Session", "s", session_port)
@knext.output_table_group("Tables", "t")
class ParamsNode:
    """Many parameter kinds, a connection port and an output group."""
    colours = knext.EnumSetParameter("Colours", "c", [Colour.RED.name], Colour)
    cols = knext.MultiColumnParameter("Columns", "c", port_index=0)
    filt = knext.ColumnFilterParameter("Filter", "f", port_index=0)
    day = knext.DateTimeParameter("Day", "d", "2024-01-31", min_value="2024-01-01")
    path = knext.LocalPathParameter("Path", "p")
    layers = knext.ParameterArray(Layer(), "Layers", "l")

    def configure(self, ctx, schema):
        return None  # not configurable yet: downstream waits

    def execute(self, ctx, table):
        picked = self.filt.apply(table).column_names if table is not None else []
        info = pd.DataFrame({"value": [",".join(self.colours), ",".join(picked), self.day.isoformat(),
                                       ";".join(f"{g.units}:{g.act}" for g in self.layers)]})
        return (SessionObject(SessionSpec("s"), Session("live")),
                [knext.Table.from_pandas(info)] * ctx.get_connected_output_port_numbers()[1])


def test_more_parameter_kinds_connection_port_and_output_group(tmp_path):
    with pytest.raises(ValueError, match="not a subset of the available options"):
        ParamsNode().colours = ["GREEN"]
    with pytest.raises(ValueError, match="smaller than the minimal value"):
        ParamsNode().day = "2023-12-31"
    with pytest.raises(ValueError, match="is not a valid file path"):
        ParamsNode().path = str(tmp_path / "missing.txt")
    defaults = kh.default_settings(ParamsNode)["model"]
    assert defaults["day"] == "2024-01-31" and defaults["cols"] == [] and defaults["filt"]["mode"] == "MANUAL"
    df = pd.DataFrame({"a": [1], "b": [2.0], "c": ["x"]})
    params = {"colours": ["BLUE", "RED"], "filt": {**defaults["filt"], "manualFilter": {
        "manuallySelected": ["a", "c"], "manuallyDeselected": ["b"], "includeUnknownColumns": False}},
        "layers": [{"units": 4, "act": "tanh"}, {"units": 2, "act": "relu"}], "path": str(tmp_path)}
    assert kh.configure_node(ParamsNode, params, [df]).specs == [None, [None]]
    r = kh.run_node(ParamsNode, params, [df], output_group_sizes={"Tables": 2})
    session, tables = r.outputs
    assert isinstance(session, SessionObject) and session.session.name == "live" and len(tables) == 2
    assert tables[1].to_pandas()["value"].tolist() == ["BLUE,RED", "a,c", "2024-01-31", "4:tanh;2:relu"]
    # as in KNIME, array items are only validated when the node reads them (not with the settings)
    with pytest.raises(ValueError, match="0 is smaller than the minimal value 1"):
        kh.run_node(ParamsNode, {"layers": [{"units": 0, "act": "x"}]}, [df])


def test_table_views_sentinels_and_logical_columns():
    import datetime
    from PIL import Image
    df = pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"), "s": ["a", "b", "c"],
                       "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
                       "img": [Image.new("RGB", (2, 2), c) for c in ("red", "green", "blue")]})
    t = knext.Table.from_pandas(df)
    assert t.schema["t"].ktype == knext.datetime(True, True) and t.schema["img"].ktype == knext.logical(Image.Image)
    sliced = t[["s", "i"], 1:3]
    assert sliced.num_rows == 2 and sliced.column_names == ["s", "i"]
    assert sliced.to_pyarrow().column_names == ["<RowID>", "s", "i"]
    assert t.to_pandas(sentinel="min")["i"].tolist() == [1, -(2 ** 63), 3]
    back = kh.table_from_pandas(df).to_pandas()
    assert back["img"].iloc[2].getpixel((0, 0)) == (0, 0, 255) and back["t"].iloc[0] == pd.Timestamp("2024-01-01")
    assert knext.Table.from_pyarrow(pa.table({"x": [5, -1]}), sentinel=-1).to_pandas()["x"].isna().tolist() \
        == [False, True]
    with pytest.raises(TypeError, match="Could not find registered KNIME extension type"):
        knext.logical(datetime.tzinfo)
