"""TinyUOp engine: graph IR, op table, shape inference and compilation over tinygrad.

Pure Python; tinygrad is imported only when a graph is compiled or run.
"""
from .errors import GraphError, DataError
from .graph import Graph, Node, merge, split_ref
from .optable import OPS, OpDef, TT, CATEGORIES, get_op, list_ops, register
from .params import Param
from .infer import analyze, summarize, fmt_shape
from .builder import GraphBuilder
from .compile import compile_graph, CompiledModel

__all__ = ["GraphError", "DataError", "Graph", "Node", "merge", "split_ref", "OPS", "OpDef", "TT", "CATEGORIES",
           "get_op", "list_ops", "register", "Param", "analyze", "summarize", "fmt_shape", "GraphBuilder",
           "compile_graph", "CompiledModel"]
