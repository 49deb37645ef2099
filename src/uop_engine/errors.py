"""Errors that tell the user what is wrong and how to fix it."""
from __future__ import annotations


class GraphError(ValueError):
    """A graph, node or parameter is invalid.

    `node` and `param` name where the problem is; `fix` says what to do. The message reads
    like: ``node 'linear_1' (linear), parameter 'in_features': expected 64 ... help: set ...``.
    """

    def __init__(self, message: str, node: str | None = None, param: str | None = None,
                 fix: str | None = None, op: str | None = None):
        self.node, self.param, self.fix, self.op, self.reason = node, param, fix, op, message
        where = []
        if node is not None:
            where.append(f"node '{node}'" + (f" ({op})" if op else ""))
        if param is not None:
            where.append(f"parameter '{param}'")
        text = (", ".join(where) + ": " if where else "") + message
        if fix:
            text += f" help: {fix}"
        super().__init__(text)

    def at(self, node: str, op: str | None = None) -> "GraphError":
        """The same error, located at `node` (used when a check runs without knowing the node)."""
        return GraphError(self.reason, node=node, param=self.param, fix=self.fix, op=op)


class DataError(ValueError):
    """Input data (a table, a column, an array) cannot be used as asked."""
