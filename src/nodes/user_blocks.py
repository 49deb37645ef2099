"""Saved user blocks and approved block plugins appear as their own palette nodes (read from
the library at start-up; a new block gets its node after KNIME restarts)."""
from __future__ import annotations

import logging

from uop_engine.blocklib import load_library
from uop_engine.errors import GraphError
from uop_engine.plugins import load_plugins

from .op_nodes import generate

_log = logging.getLogger(__name__)

# A broken block file is skipped inside load_library (logged, naming the file); a block whose node
# cannot be made is skipped here. Neither may stop `import extension`: every node would be lost.
for _op in load_library():
    try:
        generate([_op])
    except Exception as e:  # noqa: BLE001  one bad block, not the whole palette
        _log.warning("TinyUOp block '%s' has no palette node: %s: %s", _op.name, type(e).__name__, e)

try:  # unapproved or tampered plugin files are refused one by one (logged, naming the file)
    generate(list(load_plugins()))
except GraphError as e:
    _log.warning("TinyUOp block plugins not loaded: %s", e)
