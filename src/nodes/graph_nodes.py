"""Hand-written graph nodes: Graph Input, Save as Block, User Block, Graph Writer/Reader."""
from __future__ import annotations

import json
import math

import knime.extension as knext

from uop_engine.errors import GraphError
from uop_engine.graph import Graph, Node
from uop_engine.optable import DTYPES
from uop_engine.params import Param, INTS

from ._base import graph_category, op_categories
from .ports import GraphBuildingNode, GraphPortObject, graph_port_type, instance_key_parameter, stamp

_SHAPE = Param("shape", INTS, (1,), "per-sample shape")
_NUMERIC = (knext.double(), knext.int32(), knext.int64())
_DEFAULT_SHAPE = "1,28,28"  # Graph Input shape: an MNIST-sized example
_AUTO = "auto"  # Graph Input dtype: from the selected columns, else float32


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
class GraphInputNode(GraphBuildingNode):
    """Starts a TinyUOp graph with one named input.

    Type the per-sample shape (without the batch axis, e.g. `1,28,28`), or connect a table
    and pick its numeric feature columns: their count is the input size, optionally
    reshaped by the shape setting (e.g. 64 columns as `1,8,8`).
    """

    input_name = knext.StringParameter("Input name", "Name of the input (used by training, inference and ONNX).", "x")
    shape = knext.StringParameter("Shape", "Per-sample shape without the batch axis, comma-separated. With "
                                  "'Size from table columns' a typed shape must hold as many values as columns are "
                                  "selected (64 columns as 1,8,8); empty, or the default 1,28,28 when the columns "
                                  "do not fill it, gives one axis of that size.", _DEFAULT_SHAPE)
    dtype = knext.StringParameter("Data type", "Element type of the input. auto: from the selected columns (int32 "
                                  "or int64 when all are integer columns of that type, else float32), float32 "
                                  "without a table.", _AUTO, enum=[_AUTO, *DTYPES])
    from_table = knext.BoolParameter("Size from table columns",
                                     "Use the selected columns of the connected table to define the size.", False)
    columns = knext.MultiColumnParameter("Feature columns", "Numeric columns that form one sample.", port_index=0,
                                         column_filter=_numeric)
    instance_key = instance_key_parameter()

    def _shape_and_dtype(self, schema) -> tuple[tuple, str]:
        try:
            shape = _SHAPE.coerce(self.shape)
        except GraphError as e:
            raise GraphError(e.reason, param="shape", fix="type sizes like 1,28,28") from None
        if not self.from_table:
            if not shape:
                raise GraphError("it is empty", param="shape", fix="type the per-sample shape without the batch "
                                 "axis, like 1,28,28 (or turn on 'Size from table columns' and select the feature "
                                 "columns)")
            return shape, "float32" if self.dtype == _AUTO else self.dtype
        if schema is None:
            raise GraphError("'Size from table columns' is on but no table is connected", param="from_table",
                             fix="connect the example table or turn the option off")
        cols = list(self.columns or [])
        missing = [c for c in cols if c not in schema.column_names]
        if missing:
            raise GraphError(f"columns {missing} are not in the table", param="columns",
                             fix=f"select from {schema.column_names}")
        if not cols:
            raise GraphError("select at least one numeric feature column", param="columns")
        n = len(cols)
        # the untouched default (an MNIST-sized example) gives way to the columns unless they fill it;
        # only a shape the user typed has to fit them
        untouched = shape == _SHAPE.coerce(_DEFAULT_SHAPE) and math.prod(shape) != n
        if not shape or untouched:
            shape = (n,)
        elif math.prod(shape) != n:
            raise GraphError(f"{','.join(map(str, shape))} holds {math.prod(shape)} values but {n} feature columns "
                             "are selected", param="shape", fix=f"type a shape with {n} values (e.g. {n}) or leave "
                             "it empty")
        if self.dtype != _AUTO:
            return shape, self.dtype
        # integer columns keep their type (ids for an embedding); doubles or a mix become float32
        for ktype, name in ((knext.int32(), "int32"), (knext.int64(), "int64")):
            if all(schema[c].ktype == ktype for c in cols):
                return shape, name
        return shape, "float32"

    def _build(self, table=None):
        # configure passes the table's schema, execute the table itself
        schema = table if table is None or isinstance(table, knext.Schema) else table.schema
        shape, dtype = self._shape_and_dtype(schema)
        g = Graph(name="graph")
        g.add(Node("input_1", "input", {"name": self.input_name, "shape": list(shape), "dtype": dtype}, []))
        return stamp(g, ["input_1"], self.instance_key), "input_1"


@knext.node(name="Save as Block", node_type=knext.NodeType.SINK, icon_path="icons/user.png",
            category=graph_category, keywords=["block", "component", "reuse", "library"], id="tinyuop_save_block")
@knext.input_port("Graph", "The subgraph: from its Graph Input(s) to its head.", graph_port_type)
@knext.output_port("Graph", "The same graph, passed through.", graph_port_type)
class SaveBlockNode(GraphBuildingNode):
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

    def _build(self, port):
        """The graph passes through; configure checks the block document, execute also saves it."""
        from uop_engine.blocklib import block_document, save_block
        g = port.graph.without_instances()  # keys of one KNIME run are noise in a saved block
        g.name = self.block_name
        if not any(n.op == "output" for n in g.nodes):
            g.add(Node(g.unique_id("output"), "output", {"name": "y"}, [port.head]))
        block_document(g, self.block_name, self.description)
        if isinstance(port, GraphPortObject):
            save_block(g, self.block_name, self.description, self.library or None, overwrite=self.overwrite)
        return port.graph, port.head


@knext.node(name="User Block", node_type=knext.NodeType.MANIPULATOR, icon_path="icons/user.png",
            category=op_categories["user"], keywords=["block", "library", "reuse"], id="tinyuop_user_block")
@knext.input_port("Graph", "Graph whose head feeds the block's (first) input.", graph_port_type)
@knext.output_port("Graph", "The graph with the block appended.", graph_port_type)
class UserBlockNode(GraphBuildingNode):
    """Appends a block from the block library by name (blocks saved with **Save as Block**)."""

    block_name = knext.StringParameter("Block name", "Name of a saved block.", "my_block")
    library = knext.StringParameter("Library folder", "Folder of block files (empty = the default library).", "")
    node_id = knext.StringParameter("Node id", "Id in the graph (empty = automatic).", "", is_advanced=True)
    instance_key = instance_key_parameter()

    def _build(self, port):
        from uop_engine.blocklib import load_block, load_library, op_name
        load_library(self.library or None)  # the blocks this one may use; broken files are skipped, logged
        name = load_block(self.block_name, self.library or None).name  # this one: any problem is an error
        g = port.graph.copy()
        nid = self.node_id.strip() or g.unique_id(name)
        if nid in g:
            raise GraphError("this id is already used in the incoming graph", node=nid, param="node_id",
                             fix="choose another id or leave it empty")
        g.add(Node(nid, op_name(self.block_name), {}, [port.head]))
        return stamp(g, [nid], self.instance_key), nid


@knext.node(name="Select Output", node_type=knext.NodeType.MANIPULATOR, icon_path="icons/graph.png",
            category=graph_category, keywords=["split", "output", "branch", "index", "multi-output"],
            id="tinyuop_select_output")
@knext.input_port("Graph", "Graph whose head node has several outputs (Split, a block with several outputs).",
                  graph_port_type)
@knext.output_port("Graph", "The same graph with output k of that node as the head.", graph_port_type)
class SelectOutputNode(GraphBuildingNode):
    """Takes output k of a node with several outputs as the head.

    A node's output port always carries its output 0. After **Split** (or a block with several
    outputs) connect one Select Output per output you need: index 1 gives the second part, and
    so on. The graph is unchanged; branches that meet again share the split node.
    """

    output_index = knext.IntParameter("Output index", "Which output of the head node (0 = first).", 1, min_value=0)

    def _build(self, port):
        from uop_engine.graph import split_ref
        from uop_engine.infer import analyze
        g = port.graph
        src, _ = split_ref(port.head)
        node = g.node(src)
        n = len(analyze(g).types[src])
        k = self.output_index
        if k >= n:
            raise GraphError(f"node '{src}' ({node.op}) has {n} output{'s' if n != 1 else ''}, so output {k} does "
                             "not exist", param="output_index", fix=f"use an index from 0 to {n - 1}")
        return g, src if k == 0 else f"{src}:{k}"


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
        text = obj.graph.without_instances().to_json()  # instance keys of one KNIME run are noise in JSON
        df = pd.DataFrame({"hash": [spec["hash"]], "head": [obj.head], "graph_json": [text],
                           "n_params": [int(spec["n_params"])]})
        return knext.Table.from_pandas(df)


@knext.node(name="JSON to Graph", node_type=knext.NodeType.SOURCE, icon_path="icons/graph.png",
            category=graph_category, keywords=["json", "import", "graph"], id="tinyuop_json_to_graph")
@knext.output_port("Graph", "The graph read from the JSON text.", graph_port_type)
class JsonToGraphNode(GraphBuildingNode):
    """Reads a graph from TinyUOp graph JSON typed or pasted into the dialog."""

    graph_json = knext.MultilineStringParameter("Graph JSON", "TinyUOp graph JSON (format tinyuop.graph).",
                                                _EXAMPLE_JSON)
    head = knext.StringParameter("Head", "Node whose output is the head (empty = the last output).", "")
    instance_key = instance_key_parameter()

    def _build(self):
        try:
            g = Graph.from_json(self.graph_json).without_instances()
        except GraphError as e:
            raise GraphError(e.reason, node=e.node, param="graph_json", fix=e.fix, op=e.op) from None
        outs = g.output_refs()
        if not outs and not g.nodes:
            raise GraphError("the graph has no nodes", param="graph_json", fix="paste a graph with at least a Graph Input")
        head = self.head.strip() or (outs[-1] if outs else g.nodes[-1].id)
        g.node(head.partition(":")[0])
        return stamp(g, g.ids(), self.instance_key), head
