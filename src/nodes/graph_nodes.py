"""Hand-written graph nodes: Graph Input, Save as Block, User Block, Graph Writer/Reader."""
from __future__ import annotations

import json
import math

import knime.extension as knext

from uop_engine.errors import GraphError
from uop_engine.graph import Graph, Node
from uop_engine.optable import DTYPES
from uop_engine.params import Param, INTS

from ._base import graph_category, op_categories, user_error
from .ports import graph_port_type, make_object, make_spec

_SHAPE = Param("shape", INTS, (1,), "per-sample shape")
_NUMERIC = (knext.double(), knext.int32(), knext.int64())


# the JSON to Graph default: a valid example (digits-sized input -> flatten -> 10 logits)
_EXAMPLE_JSON = json.dumps({"format": "tinyuop.graph", "version": 1, "name": "example", "nodes": [
    {"id": "input_1", "op": "input", "params": {"name": "x", "shape": [1, 8, 8]}, "inputs": []},
    {"id": "flatten_1", "op": "flatten", "params": {}, "inputs": ["input_1"]},
    {"id": "linear_1", "op": "linear", "params": {"in_features": 64, "out_features": 10}, "inputs": ["flatten_1"]}]},
    indent=1)


def _numeric(col) -> bool:
    return col.ktype in _NUMERIC


@knext.node(name="Graph Input", node_type=knext.NodeType.SOURCE, icon_path="icons/io.png",
            category=op_categories["io"], keywords=["input", "placeholder", "tinygrad"], id="tinyuop_input")
@knext.input_table("Example table", "Optional: a table whose numeric feature columns define the input size.",
                   optional=True)
@knext.output_port("Graph", "A graph holding just this input.", graph_port_type)
class GraphInputNode:
    """Starts a TinyUOp graph with one named input.

    Type the per-sample shape (without the batch axis, e.g. `1,28,28`), or connect a table
    and pick its numeric feature columns: their count is the input size, optionally
    reshaped by the shape setting (e.g. 64 columns as `1,8,8`).
    """

    input_name = knext.StringParameter("Input name", "Name of the input (used by training, inference and ONNX).", "x")
    shape = knext.StringParameter("Shape", "Per-sample shape without the batch axis, comma-separated.", "1,28,28")
    dtype = knext.StringParameter("Data type", "Element type of the input.", "float32", enum=list(DTYPES))
    from_table = knext.BoolParameter("Size from table columns",
                                     "Use the selected columns of the connected table to define the size.", False)
    columns = knext.MultiColumnParameter("Feature columns", "Numeric columns that form one sample.", port_index=0,
                                         column_filter=_numeric)

    def _graph(self, schema) -> tuple[Graph, str]:
        try:
            shape = _SHAPE.coerce(self.shape)
        except GraphError as e:
            raise knext.InvalidParametersError(f"parameter 'shape': {e.reason}. help: type sizes like 1,28,28") from None
        if self.from_table:
            if schema is None:
                raise knext.InvalidParametersError("'Size from table columns' is on but no table is connected")
            cols = list(self.columns or [])
            missing = [c for c in cols if c not in schema.column_names]
            if missing:
                raise knext.InvalidParametersError(f"columns {missing} are not in the table; available: {schema.column_names}")
            if not cols:
                raise knext.InvalidParametersError("select at least one numeric feature column")
            n = len(cols)
            if math.prod(shape) != n:
                shape = (n,)
        g = Graph(name="graph")
        g.add(Node("input_1", "input", {"name": self.input_name, "shape": list(shape), "dtype": self.dtype}, []))
        return g, "input_1"

    def configure(self, config_context, table_schema=None):
        try:
            return make_spec(*self._graph(table_schema))
        except GraphError as e:
            raise user_error(e) from None

    def execute(self, exec_context, table=None):
        try:
            return make_object(*self._graph(table.schema if table is not None else None))
        except GraphError as e:
            raise user_error(e) from None


@knext.node(name="Save as Block", node_type=knext.NodeType.SINK, icon_path="icons/user.png",
            category=graph_category, keywords=["block", "component", "reuse", "library"], id="tinyuop_save_block")
@knext.input_port("Graph", "The subgraph: from its Graph Input(s) to its head.", graph_port_type)
@knext.output_port("Graph", "The same graph, passed through.", graph_port_type)
class SaveBlockNode:
    """Saves the incoming subgraph as a named reusable block in the block library folder.

    The block's Graph Inputs become its inputs and the head its output. It is usable at once
    through the **User Block** node and, after a restart, as its own node in the palette.
    Files are written atomically; an existing block is only replaced when overwriting is on.
    """

    block_name = knext.StringParameter("Block name", "Lower-case letters, digits and underscores.", "my_block")
    description = knext.MultilineStringParameter("Description", "What the block does (its node description).", "")
    library = knext.StringParameter("Library folder", "Folder of block files (empty = ~/.tinyuop/blocks or "
                                    "$TINYUOP_BLOCK_LIBRARY).", "")
    overwrite = knext.BoolParameter("Overwrite", "Replace an existing block of the same name.", False)

    def _doc(self, graph: Graph, head: str):
        from uop_engine.blocklib import block_document
        g = graph.copy()
        g.name = self.block_name
        if not any(n.op == "output" for n in g.nodes):
            g.add(Node(g.unique_id("output"), "output", {"name": "y"}, [head]))
        return g, block_document(g, self.block_name, self.description)

    def configure(self, config_context, spec):
        try:
            self._doc(spec.graph, spec.head)
        except GraphError as e:
            raise user_error(e) from None
        return spec

    def execute(self, exec_context, obj):
        from uop_engine.blocklib import save_block
        try:
            g, _ = self._doc(obj.graph, obj.head)
            save_block(g, self.block_name, self.description, self.library or None, overwrite=self.overwrite)
        except GraphError as e:
            raise user_error(e) from None
        return obj


@knext.node(name="User Block", node_type=knext.NodeType.MANIPULATOR, icon_path="icons/user.png",
            category=op_categories["user"], keywords=["block", "library", "reuse"], id="tinyuop_user_block")
@knext.input_port("Graph", "Graph whose head feeds the block's (first) input.", graph_port_type)
@knext.output_port("Graph", "The graph with the block appended.", graph_port_type)
class UserBlockNode:
    """Appends a block from the block library by name (blocks saved with **Save as Block**)."""

    block_name = knext.StringParameter("Block name", "Name of a saved block.", "my_block")
    library = knext.StringParameter("Library folder", "Folder of block files (empty = the default library).", "")
    node_id = knext.StringParameter("Node id", "Id in the graph (empty = automatic).", "", is_advanced=True)

    def _build(self, port):
        from uop_engine.blocklib import load_library, op_name
        ops = {o.name for o in load_library(self.library or None)}
        name = op_name(self.block_name)
        if name not in ops:
            raise knext.InvalidParametersError(
                f"parameter 'block_name': no block '{self.block_name}' in the library; available: "
                f"{sorted(o[5:] for o in ops) or 'none'}")
        g = port.graph.copy()
        nid = self.node_id.strip() or g.unique_id(name)
        g.add(Node(nid, name, {}, [port.head]))
        return g, nid

    def configure(self, config_context, spec):
        try:
            return make_spec(*self._build(spec))
        except GraphError as e:
            raise user_error(e) from None

    def execute(self, exec_context, obj):
        try:
            return make_object(*self._build(obj))
        except GraphError as e:
            raise user_error(e) from None


@knext.node(name="Graph to JSON", node_type=knext.NodeType.OTHER, icon_path="icons/graph.png",
            category=graph_category, keywords=["json", "export", "graph"], id="tinyuop_graph_to_json")
@knext.input_port("Graph", "A graph.", graph_port_type)
@knext.output_table("Graph JSON", "One row: graph hash, head, parameter count and the graph JSON.")
class GraphToJsonNode:
    """Writes the graph as JSON into a table (for Python scripts, files or version control)."""

    def configure(self, config_context, spec):
        return knext.Schema.from_columns([knext.Column(knext.string(), n) for n in ("hash", "head", "graph_json")]
                                         + [knext.Column(knext.int64(), "n_params")])

    def execute(self, exec_context, obj):
        import pandas as pd
        spec = obj.spec.data
        df = pd.DataFrame({"hash": [spec["hash"]], "head": [obj.head], "graph_json": [obj.graph.to_json()],
                           "n_params": [int(spec["n_params"])]})
        return knext.Table.from_pandas(df)


@knext.node(name="JSON to Graph", node_type=knext.NodeType.SOURCE, icon_path="icons/graph.png",
            category=graph_category, keywords=["json", "import", "graph"], id="tinyuop_json_to_graph")
@knext.output_port("Graph", "The graph read from the JSON text.", graph_port_type)
class JsonToGraphNode:
    """Reads a graph from TinyUOp graph JSON typed or pasted into the dialog."""

    graph_json = knext.MultilineStringParameter("Graph JSON", "TinyUOp graph JSON (format tinyuop.graph).",
                                                _EXAMPLE_JSON)
    head = knext.StringParameter("Head", "Node whose output is the head (empty = the last output).", "")

    def _build(self):
        g = Graph.from_json(self.graph_json)
        outs = g.output_refs()
        if not outs and not g.nodes:
            raise GraphError("the graph has no nodes", param="graph_json", fix="paste a graph with at least a Graph Input")
        head = self.head.strip() or (outs[-1] if outs else g.nodes[-1].id)
        g.node(head.partition(":")[0])
        return g, head

    def configure(self, config_context):
        try:
            return make_spec(*self._build())
        except GraphError as e:
            raise user_error(e) from None

    def execute(self, exec_context):
        try:
            return make_object(*self._build())
        except GraphError as e:
            raise user_error(e) from None
