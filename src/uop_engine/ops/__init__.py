"""Importing this package registers every built-in op in `uop_engine.optable.OPS`."""
from . import elementwise, reduce, movement, layers, attention, io, blocks  # noqa: F401
