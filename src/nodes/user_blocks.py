"""Saved user blocks appear as their own palette nodes (read from the library at start-up)."""
from __future__ import annotations

import logging

from uop_engine.blocklib import load_library
from uop_engine.errors import GraphError

from .op_nodes import generate

try:
    generate(load_library())
except GraphError as e:  # a broken library file must not hide the whole extension
    logging.getLogger(__name__).warning("TinyUOp block library not loaded: %s", e)
