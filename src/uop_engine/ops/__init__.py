"""Importing this package registers every built-in op in `uop_engine.optable.OPS`."""
from . import elementwise, math_ops, arith_ops, reduce, movement, layers, pooling, attention, io, blocks  # noqa: F401
