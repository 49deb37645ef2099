"""The knime.extension test double's tables, Arrow type rules, schemas, binary/image ports and
views keep the contract of shared/KNIME_API.md."""
from __future__ import annotations

import datetime
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

pytest.importorskip("knime.extension._transport", reason="needs the knime.extension test double")
import knime.extension as knext  # noqa: E402
import knime_harness as kh  # noqa: E402

CAT = knext.category("/community", "double_new_tables", "Double test", "Nodes of the double's tests.", "icons/x.png")


def _df():
    return pd.DataFrame({"x": [1, 2, 3, 4, 5], "label": list("abcde")})


def _png(size=(3, 3)) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("L", size).save(buf, format="PNG")
    return buf.getvalue()


@knext.node("Plot", knext.NodeType.VISUALIZER, "icons/x.png", CAT, id="double_new_plot")
@knext.input_binary("Size", "JSON with the image size.", id="double.size")
@knext.output_image("Image", "A PNG.")
class PlotNode:
    """Draws an empty image of the size it is given."""
    kind = knext.StringParameter("Kind", "png or text.", "png")

    def configure(self, ctx, spec):
        assert spec == knext.BinaryPortObjectSpec("double.size")
        return knext.ImagePortObjectSpec(knext.ImageFormat.PNG)

    def execute(self, ctx, data):
        size = tuple(json.loads(data))
        return _png(size) if self.kind == "png" else b"not an image"


def test_binary_in_image_out():
    r = kh.run_node(PlotNode, {}, [b"[4, 2]"])
    from PIL import Image
    assert Image.open(io.BytesIO(r.outputs[0])).size == (4, 2) and r.specs[0].format == knext.ImageFormat.PNG
    with pytest.raises(ValueError, match="image ports carry PNG"):
        kh.run_node(PlotNode, {"kind": "text"}, [b"[1, 1]"])
    with pytest.raises(TypeError, match="input port 'Size' \\(Binary\\) needs bytes, got str"):
        kh.run_node(PlotNode, {}, ["[1, 1]"])


def test_arrow_types_knime_refuses_and_row_ids():
    with pytest.raises(ValueError, match="'large_string' of column 's' is not supported by KNIME; cast it to pa.string"):
        knext.Table.from_pyarrow(pa.table({"s": pa.array(["a"], pa.large_string())}))
    with pytest.raises(ValueError, match="large_string"):  # pandas' pyarrow-backed strings
        knext.Table.from_pandas(pd.DataFrame({"s": pd.Series(["a"], dtype="string[pyarrow]")}))
    with pytest.raises(ValueError, match="'uint8' of column 'u' .*signed type"):
        knext.Table.from_pandas(pd.DataFrame({"u": np.array([1], np.uint8)}))
    with pytest.raises(TypeError, match="first column must contain unique row identifiers of type 'string'"):
        knext.Table.from_pyarrow(pa.table({"id": [1, 2]}), row_ids="keep")
    with pytest.raises(TypeError, match="found 'id' of type 'large_string'"):
        knext.Table.from_pyarrow(pa.table({"id": pa.array(["a"], pa.large_string())}), row_ids="keep")
    t = knext.Table.from_pyarrow(pa.table({"<RowID>": [7, 9], "f": pa.array([1.5, 2], pa.float32()),
                                           "h": pa.array([1, 2], pa.int16()), "l": [[1], [2, 3]]}))
    assert t.schema == knext.Schema.from_columns([knext.Column(knext.double(), "f"), knext.Column(knext.int32(), "h"),
                                                  knext.Column(knext.list_(knext.int64()), "l")])
    assert t.to_pyarrow().column("<RowID>").to_pylist() == ["Row7", "Row9"]
    assert list(knext.Table.from_pandas(_df().set_index("label")).to_pandas().index) == list("abcde")
    with pytest.raises(ValueError, match="Duplicate RowID 'a'"):
        kh.as_received(knext.Table.from_pandas(pd.DataFrame({"x": [1, 2]}, index=["a", "a"])))
    assert knext.Table.from_pyarrow(pa.table({"x": [5, -1]}), sentinel=-1).to_pandas()["x"].isna().tolist() == \
        [False, True]


def test_batch_output_table_rules_and_input_batches():
    out = knext.BatchOutputTable.create(row_ids="generate")
    for n in (2, 2, 1):
        out.append(pd.DataFrame({"a": [1.0] * n}))
    got = kh.as_received(out)
    assert [b.num_rows for b in got.batches()] == [2, 2, 1] and list(got.to_pandas().index)[-1] == "Row4"
    with pytest.raises(ValueError, match="must not have more rows than the first batch"):
        out.append(pd.DataFrame({"a": [1.0] * 3}))
    with pytest.raises(ValueError, match="only the last batch may be smaller"):
        out.append(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(ValueError, match="every batch needs the same columns and types"):
        knext.BatchOutputTable.from_batches([pd.DataFrame({"a": [1]}), pd.DataFrame({"a": ["x"]})])
    with pytest.raises(ValueError, match="has no batches"):
        kh.as_received(knext.BatchOutputTable.create())
    with pytest.raises(RuntimeError, match="only available on tables KNIME passes to execute"):
        next(knext.Table.from_pandas(_df()).batches())
    sliced = kh.table_from_pandas(_df())[["label", "x"], 1:3]
    assert sliced.column_names == ["label", "x"] and sliced.to_pyarrow().column_names == ["<RowID>", "label", "x"]


def test_pandas_3_is_refused(monkeypatch):
    monkeypatch.setattr(pd, "__version__", "3.0.0")
    with pytest.raises(RuntimeError, match="pandas 3.0.0 is not supported by KNIME 5.x"):
        knext.Table.from_pandas(_df())


def test_schema_json_types_logical_images_and_views():
    from PIL import Image
    s = knext.Schema.from_columns([knext.Column(knext.int32(), "i"), knext.Column(knext.list_(knext.double()), "l"),
                                   knext.Column(knext.struct(knext.bool_(), knext.string()), "s"),
                                   knext.Column(knext.logical(datetime.date), "d")])
    back = knext.Schema.deserialize(json.loads(json.dumps(s.serialize())))
    assert back == s and back[["i", "l"]].column_names == ["i", "l"] and str(back["l"].ktype) == "list<double>"
    with pytest.raises(RuntimeError, match=r"unique column names; duplicated: \['a'\]"):
        knext.Schema.from_columns([knext.Column(knext.int32(), "a")] * 2).serialize()
    with pytest.raises(TypeError, match="no KNIME logical type is registered"):
        knext.logical(datetime.tzinfo)
    df = pd.DataFrame({"img": [Image.new("RGB", (2, 2), c) for c in ("red", "blue")],
                       "t": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    t = kh.table_from_pandas(df)
    assert t.schema["img"].ktype == knext.logical(Image.Image) and t.schema["t"].ktype == knext.datetime()
    assert t.to_pandas()["img"].iloc[1].getpixel((0, 0)) == (0, 0, 255)
    png = _png()
    v = knext.view_png(png)
    assert v.render() == png and "data:image/png;base64," in v.html
    with pytest.raises(ValueError, match="PNG signature"):
        knext.view_png(b"GIF89a")
    assert knext.view_svg('<svg xmlns="http://www.w3.org/2000/svg"/>').render().startswith("<svg")
    from matplotlib.figure import Figure
    assert knext.view_matplotlib(Figure()).render().startswith(b"\x89PNG")


class Colour(knext.EnumParameterOptions):
    RED = ("Red", "r")
    BLUE = ("Blue", "b")


@knext.parameter_group("Layer")
class Layer:
    units = knext.IntParameter("Units", "u", 8, min_value=1)
    act = knext.StringParameter("Activation", "a", "relu")


@knext.node("Kinds", knext.NodeType.SOURCE, "icons/x.png", CAT, id="double_new_kinds")
@knext.input_table("Data", "d", optional=True)
@knext.output_table("Out", "o")
class KindsNode:
    """Enum sets, column filters, dates, paths and parameter arrays."""
    colours = knext.EnumSetParameter("Colours", "c", [Colour.RED.name], Colour)
    filt = knext.ColumnFilterParameter("Filter", "f", port_index=0)
    day = knext.DateTimeParameter("Day", "d", "2024-01-31", min_value="2024-01-01")
    path = knext.LocalPathParameter("Path", "p", placeholder_text="/data/x.csv")
    layers = knext.ParameterArray(Layer(), "Layers", "l")

    def configure(self, ctx, schema):
        return None  # not known before execute

    def execute(self, ctx, table):
        picked = self.filt.apply(table).column_names if table is not None else []
        return knext.Table.from_pandas(pd.DataFrame({"value": [
            ",".join(self.colours), ",".join(picked), self.day.isoformat(),
            ";".join(f"{g.units}:{g.act}" for g in self.layers), self.path]}))


def test_more_parameter_kinds():
    defaults = kh.default_settings(KindsNode)["model"]
    assert defaults == {"colours": ["RED"], "filt": {"mode": "MANUAL", "selected": [], "pattern": "",
                                                      "case_sensitive": True}, "day": "2024-01-31", "path": "",
                        "layers": []}
    node = KindsNode()
    with pytest.raises(ValueError, match=r"\['GREEN'\] are not options of Colour"):
        node.colours = ["GREEN"]
    with pytest.raises(ValueError, match="2023-12-31 is before the minimum 2024-01-01"):
        node.day = "2023-12-31"
    with pytest.raises(kh.InvalidSettingsError, match=r"layers\[0\]\.units.*0 is smaller than the minimal value 1"):
        kh.run_node(KindsNode, {"layers": [{"units": 0, "act": "x"}]})
    params = {"colours": ["BLUE", "RED"], "filt": {"mode": "WILDCARD", "pattern": "l*"}, "path": "/tmp/in.csv",
              "layers": [{"units": 4, "act": "tanh"}, {"units": 2}]}
    r = kh.run_node(KindsNode, params, [_df()])
    assert r.specs == [None] and r.outputs[0].to_pandas()["value"].tolist() == \
        ["BLUE,RED", "label", "2024-01-31", "4:tanh;2:relu", "/tmp/in.csv"]
    ui = kh.dialog(KindsNode, {}, [_df()])["ui_schema"]["elements"]
    assert ui[1]["options"]["possibleValues"] == [{"id": "x", "text": "x"}, {"id": "label", "text": "label"}]
    assert ui[3]["options"] == {"format": "localFileChooser", "placeholder": "/data/x.csv"}
