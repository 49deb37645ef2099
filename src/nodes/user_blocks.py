"""Saved user blocks and approved block plugins appear as their own palette nodes (read from
the library at start-up; a new block gets its node after KNIME restarts)."""
from __future__ import annotations

import logging

from uop_engine.blocklib import load_library
from uop_engine.errors import GraphError
from uop_engine.plugins import load_plugins

from .op_nodes import generate

_log = logging.getLogger(__name__)

try:
    generate(load_library())
except GraphError as e:  # a broken library file must not hide the whole extension
    _log.warning("TinyUOp block library not loaded: %s", e)

try:  # unapproved or tampered plugin files are refused one by one (logged, naming the file)
    generate(list(load_plugins()))
except GraphError as e:
    _log.warning("TinyUOp block plugins not loaded: %s", e)
