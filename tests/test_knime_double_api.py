"""Contract tests for the points where the knime.extension double once differed from the real KNIME
Python API: what knext exports, knext.Version and callable defaults, DoubleParameter values,
StringParameter's enum/choices, missing settings keys, the contexts (no node id, no
flow_variables setter, connected port numbers) and the binary/image port groups.

Tests that only touch `knext` hold for the real API too; those that run nodes use the harness,
which exists only on the double (the `kh` fixture skips them elsewhere)."""
from __future__ import annotations

import io
import json
import os
import re

import pandas as pd
import pytest

import knime.extension as knext

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def kh():
    return pytest.importorskip("knime_harness", reason="runs nodes on the knime.extension test double")


def _category() -> str:
    return knext.category("/community", "double_api_test", "Double API test", "Nodes of the API tests.", "icons/x.png")


def _yml_version() -> knext.Version:
    with open(os.path.join(ROOT, "knime.yml"), encoding="utf-8") as f:
        return knext.Version.parse_version(re.search(r"^version:\s*(\S+)", f.read(), re.M).group(1))


# ---- 1. contexts carry no node id -------------------------------------------------------------------
def test_contexts_have_no_node_id_and_no_node_code_asks_for_one(kh):
    for cls in (knext.ConfigurationContext, knext.ExecutionContext):
        assert not hasattr(cls, "node_id")
    assert not hasattr(kh.make_exec_context(), "node_id") and not hasattr(kh.make_config_context(), "node_id")
    uses = []
    for folder, _, files in os.walk(os.path.join(ROOT, "src", "nodes")):  # the KNIME glue
        for name in (f for f in files if f.endswith(".py")):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                uses += [f"{name}: {m}" for m in re.findall(r"\b\w*(?:ctx|context)\.node_id\b", f.read())]
    assert uses == []


# ---- 2. connected input port numbers ---------------------------------------------------------------
def test_connected_input_port_numbers_count_ports_per_input(kh):
    @knext.node("Connected", knext.NodeType.OTHER, "icons/x.png", _category(), id="double_api_connected")
    @knext.input_table("Data", "Required.")
    @knext.input_table("Extra", "Optional.", optional=True)
    @knext.input_table_group("Tables", "Any number of tables.")
    @knext.input_binary_group("Blobs", "Any number of blobs.", id="double.api.blob")
    @knext.output_binary("Report", "JSON.", id="double.api.report")
    class Connected:
        """Reports what is connected."""

        def configure(self, ctx, data, extra, tables, blobs):
            ctx.flow_variables["configure_saw"] = ctx.get_connected_input_port_numbers()
            return knext.BinaryPortObjectSpec("double.api.report")

        def execute(self, ctx, data, extra, tables, blobs):
            return json.dumps({"connected": ctx.get_connected_input_port_numbers(),
                               "blobs": [b.decode() for b in blobs]}).encode()

    df = pd.DataFrame({"x": [1]})
    r = kh.run_node(Connected, {}, [df, df, [df, df, df], [b"a"]])
    assert json.loads(r.outputs[0]) == {"connected": [1, 1, 3, 1], "blobs": ["a"]}
    r = kh.run_node(Connected, {}, [df, None, [], [b"a", b"b"]])
    assert json.loads(r.outputs[0])["connected"] == [1, 0, 0, 2]
    blob = knext.BinaryPortObjectSpec("double.api.blob")
    assert kh.configure_node(Connected, {}, [df, df, [df] * 3, [blob]]).flow_variables["configure_saw"] == [1, 1, 3, 1]
    assert kh.configure_node(Connected, {}, [df]).flow_variables["configure_saw"] == [1, 0, 0, 0]


# ---- 3. flow_variables: a dict to change in place, no setter ----------------------------------------
def test_flow_variables_has_a_getter_only_and_changes_in_place(kh):
    for cls in (knext.ConfigurationContext, knext.ExecutionContext):
        prop = cls.flow_variables
        assert isinstance(prop, property) and prop.fset is None
    ctx = kh.make_exec_context(flow_variables={"given": 1})
    with pytest.raises(AttributeError):
        ctx.flow_variables = {"replaced": 2}
    ctx.flow_variables["added"] = "yes"
    assert ctx.flow_variables == {"given": 1, "added": "yes"}


# ---- 4. knext.Version and callable defaults ----------------------------------------------------------
def test_version_parses_orders_and_prints():
    v = knext.Version.parse_version("0.10.2")
    assert (v.major, v.minor, v.patch, str(v)) == (0, 10, 2, "0.10.2") and v == knext.Version(0, 10, 2)
    assert knext.Version(0, 9, 9) < v < knext.Version(1, 0, 0) and v >= knext.Version(0, 10, 2)
    assert knext.Version.parse_version(None) == knext.Version(0, 0, 0)
    for bad in ("1.2", "1.x.3", "v1.2.3"):
        with pytest.raises(ValueError, match="major.minor.patch"):
            knext.Version.parse_version(bad)
    with pytest.raises(TypeError):
        assert v < "0.11.0"  # parse the string first


def test_callable_default_gets_the_extension_version_or_the_saved_one(kh):
    seen = []

    def by_release(version):
        seen.append(version)
        return 1 if version < knext.Version(0, 2, 0) else 2

    @knext.parameter_group("Later", since_version="0.2.0")
    class Later:
        """Added in 0.2.0."""
        depth = knext.IntParameter("Depth", "d", by_release)

    @knext.node("Versioned", knext.NodeType.OTHER, "icons/x.png", _category(), id="double_api_versioned")
    @knext.output_table("Out", "o")
    class Versioned:
        """Defaults by release."""
        width = knext.IntParameter("Width", "w", by_release, since_version="0.2.0")
        later = Later()

        def configure(self, ctx):
            return None

        def execute(self, ctx):
            return knext.Table.from_pandas(pd.DataFrame({"w": [self.width], "d": [self.later.depth]}))

    seen.clear()
    assert kh.default_settings(Versioned)["model"] == {"width": 1, "later": {"depth": 1}}
    assert seen and all(isinstance(v, knext.Version) and v == _yml_version() for v in seen)  # knime.yml: 0.1.0
    seen.clear()
    node = Versioned()
    kh.inject_settings(node, {"model": {}}, version="0.1.5")  # saved by 0.1.5: both added later
    assert (node.width, node.later.depth) == (1, 1) and set(seen) == {knext.Version(0, 1, 5)}
    seen.clear()
    kh.inject_settings(node, {"model": {}})  # saved without a version: 0.0.0
    assert set(seen) == {knext.Version(0, 0, 0)}
    seen.clear()
    kh.inject_settings(node, {"model": {"width": 7, "later": {"depth": 9}}}, version="0.2.0")
    assert (node.width, node.later.depth, seen) == (7, 9, [])
    with pytest.raises(kh.InvalidSettingsError, match='Parameter missing for key "width".'):
        kh.inject_settings(node, {"model": {"later": {"depth": 9}}}, version="0.2.0")


# ---- 5. StringParameter: enum is a list, and not together with choices -----------------------------
def test_string_parameter_enum_must_be_a_list_and_excludes_choices():
    with pytest.raises(TypeError, match="enum must be a list of strings"):
        knext.StringParameter("Mode", "m", "a", enum=("a", "b"))
    with pytest.raises(ValueError, match="either enum .* or choices"):
        knext.StringParameter("Mode", "m", "a", enum=["a", "b"], choices=lambda ctx: ["a", "b"])
    assert knext.StringParameter("Mode", "m", "a", enum=["a", "b"]).enum == ["a", "b"]


# ---- 6. exported names ------------------------------------------------------------------------------
def test_knext_exports_the_real_names_only():
    for name in ("IntType", "DoubleType", "StringType", "BooleanType", "BlobType", "Credentials", "NodeView"):
        assert not hasattr(knext, name), name
    for name in ("Version", "Condition", "Contains", "LayoutDirection", "PythonNode", "input_binary_group",
                 "output_image_group", "output_binary_group"):
        assert hasattr(knext, name), name
    assert issubclass(knext.OneOf, knext.Condition) and issubclass(knext.Contains, knext.Condition)
    assert {d.name for d in knext.LayoutDirection} == {"VERTICAL", "HORIZONTAL"}


def test_python_node_base_needs_configure_and_execute(kh):
    with pytest.raises(TypeError, match="abstract"):
        @knext.node("Half", knext.NodeType.OTHER, "icons/x.png", _category(), id="double_api_half")
        class Half(knext.PythonNode):
            """No execute."""

            def configure(self, ctx):
                return None

    @knext.node("Whole", knext.NodeType.SOURCE, "icons/x.png", _category(), id="double_api_whole")
    @knext.output_table("Out", "o")
    class Whole(knext.PythonNode):
        """Both methods."""

        def configure(self, ctx):
            return knext.Schema.from_columns([knext.Column(knext.int64(), "n")])

        def execute(self, ctx):
            return knext.Table.from_pandas(pd.DataFrame({"n": [4]}))
    assert isinstance(Whole(), knext.PythonNode) and kh.run_node(Whole).outputs[0].to_pandas()["n"].tolist() == [4]


class Parts(knext.EnumParameterOptions):
    HEAD = ("Head", "The head.")
    TAIL = ("Tail", "The tail.")


def test_contains_rule_and_layout_direction_in_the_dialog(kh):
    @knext.parameter_group("Side by side", layout_direction=knext.LayoutDirection.HORIZONTAL)
    class SideBySide:
        """Two numbers in a row."""
        a = knext.IntParameter("A", "a", 1)
        b = knext.IntParameter("B", "b", 2)

    @knext.node("Rules", knext.NodeType.SOURCE, "icons/x.png", _category(), id="double_api_rules")
    @knext.output_table("Out", "o")
    class Rules:
        """Rules and layouts."""
        parts = knext.EnumSetParameter("Parts", "p", [Parts.HEAD.name], Parts)
        tail_size = knext.IntParameter("Tail size", "t", 3).rule(knext.Contains(parts, Parts.TAIL), knext.Effect.SHOW)
        row = SideBySide()

        def configure(self, ctx):
            return None

        def execute(self, ctx):
            return knext.Table.from_pandas(pd.DataFrame({"n": [self.tail_size]}))

    elements = kh.dialog(Rules)["ui_schema"]["elements"]
    assert elements[1]["rule"] == {"effect": "SHOW", "condition": {
        "scope": "#/properties/model/properties/parts", "schema": {"contains": {"const": "TAIL"}}}}
    assert elements[2]["type"] == "Section" and elements[2]["elements"][0]["type"] == "HorizontalLayout"
    assert [e["label"] for e in elements[2]["elements"][0]["elements"]] == ["A", "B"]
    with pytest.raises(TypeError, match="layout_direction is a knext.LayoutDirection"):
        knext.parameter_group("Bad", layout_direction="horizontal")


def _png() -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (255, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def test_binary_and_image_port_groups_carry_lists(kh):
    @knext.node("Fan out", knext.NodeType.OTHER, "icons/x.png", _category(), id="double_api_fanout")
    @knext.input_binary_group("Blobs", "Any number of blobs.", id="double.api.blob")
    @knext.output_binary_group("Copies", "One copy per connected port.", id="double.api.blob")
    @knext.output_image_group("Pictures", "One picture per connected port.")
    class FanOut:
        """Copies its blobs and draws pictures."""

        def configure(self, ctx, blob_specs):
            copies, pictures = ctx.get_connected_output_port_numbers()
            return ([knext.BinaryPortObjectSpec("double.api.blob")] * copies,
                    [knext.ImagePortObjectSpec(knext.ImageFormat.PNG)] * pictures)

        def execute(self, ctx, blobs):
            copies, pictures = ctx.get_connected_output_port_numbers()
            return [b"".join(blobs)] * copies, [_png()] * pictures

    r = kh.run_node(FanOut, {}, [[b"ab", b"cd"]], output_group_sizes={"Copies": 2, "Pictures": 3})
    assert r.outputs[0] == [b"abcd", b"abcd"] and len(r.outputs[1]) == 3
    assert all(p.startswith(b"\x89PNG") for p in r.outputs[1])
    assert r.specs[0] == [knext.BinaryPortObjectSpec("double.api.blob")] * 2
    ports_in, ports_out, _ = kh.node_ports(FanOut)
    assert [(p.name, p.id) for p in ports_in] == [("Blobs", "double.api.blob")]
    assert [p.name for p in ports_out] == ["Copies", "Pictures"]


# ---- 7. DoubleParameter keeps the value as given -----------------------------------------------------
def test_double_parameter_keeps_ints_as_ints():
    class Holder:
        rate = knext.DoubleParameter("Rate", "r", 1, min_value=0.0)
        scale = knext.DoubleParameter("Scale", "s", 0.5)

    h = Holder()
    assert type(h.rate) is int and type(h.scale) is float
    h.rate, h.scale = 3, 2
    assert (type(h.rate), h.rate, type(h.scale)) == (int, 3, int)
    h.rate = 2.5
    assert type(h.rate) is float
    for bad in ("2", True):
        with pytest.raises(TypeError, match="'Rate' takes a number"):
            h.rate = bad
    with pytest.raises(ValueError, match="'Rate': -1 is smaller than the minimal value 0.0"):
        h.rate = -1


def test_double_parameter_int_survives_the_settings_json(kh):
    @knext.node("Rate", knext.NodeType.SOURCE, "icons/x.png", _category(), id="double_api_rate")
    @knext.output_table("Out", "o")
    class RateNode:
        """Echoes its rate's type."""
        rate = knext.DoubleParameter("Rate", "r", 0.5)

        def configure(self, ctx):
            ctx.flow_variables["rate_type"] = type(self.rate).__name__
            return None

        def execute(self, ctx):
            return knext.Table.from_pandas(pd.DataFrame({"r": [float(self.rate)]}))

    assert kh.configure_node(RateNode, {"rate": 2}).flow_variables["rate_type"] == "int"
    assert kh.configure_node(RateNode, {"rate": 2.0}).flow_variables["rate_type"] == "float"


# ---- 8. a missing settings key ----------------------------------------------------------------------
def test_missing_settings_key_is_invalid_parameters_with_knimes_text(kh):
    import knime.extension.parameter as kp

    @knext.parameter_group("Inner")
    class Inner:
        """A group."""
        depth = knext.IntParameter("Depth", "d", 1)

    class Holder:
        width = knext.IntParameter("Width", "w", 1)
        inner = Inner()

    with pytest.raises(knext.InvalidParametersError, match=r'^Parameter missing for key "width"\.$'):
        kp.load_settings(Holder(), {"model": {"inner": {"depth": 2}}})
    with pytest.raises(knext.InvalidParametersError, match=r'^Parameter missing for key "depth"\.$'):
        kp.load_settings(Holder(), {"model": {"width": 2, "inner": {}}})
    assert kp.validate_settings(Holder(), {"model": {"width": 2, "inner": {}}}) == \
        'Invalid settings: Parameter missing for key "depth".'
