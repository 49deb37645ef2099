"""KNIME's side of one node run (the Java process, in real KNIME): credentials, flow variables,
workflow folders, cancellation, and what the node reported (progress, warnings)."""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

_session_root: Optional[tempfile.TemporaryDirectory] = None


def _scratch(prefix: str) -> str:
    """A fresh folder under one per-process temporary root (removed when the process ends)."""
    global _session_root
    if _session_root is None:
        _session_root = tempfile.TemporaryDirectory(prefix="knime_double_")
    return tempfile.mkdtemp(prefix=prefix, dir=_session_root.name)


class HostContext:
    """cancel_after=n: the user cancels once the node has asked `is_canceled()` n times (0: at once).
    credentials: name -> (username, password). Folders default to fresh temporary ones."""

    def __init__(self, credentials: Optional[Dict[str, Tuple[str, str]]] = None,
                 flow_variables: Optional[Dict[str, Any]] = None, workflow_dir: Optional[str] = None,
                 temp_dir: Optional[str] = None, cancel_after: Optional[int] = None) -> None:
        self.credentials = dict(credentials or {})
        self.flow_variables: Dict[str, Any] = dict(flow_variables or {})
        self._workflow_dir, self._temp_dir = workflow_dir, temp_dir
        if cancel_after is not None and (not isinstance(cancel_after, int) or cancel_after < 0):
            raise ValueError(f"cancel_after must be a count >= 0, not {cancel_after!r}")
        self.cancel_after, self.polls = cancel_after, 0
        self.progress: List[Tuple[float, Optional[str]]] = []
        self.warnings: List[str] = []
        self.input_connected: List[int] = []
        self.output_connected: List[int] = []
        self.input_specs: List[Any] = []

    @property
    def workflow_dir(self) -> str:
        if self._workflow_dir is None:
            self._workflow_dir = _scratch("workflow_")
        return self._workflow_dir

    def data_area_dir(self) -> str:
        path = os.path.join(self.workflow_dir, "data")
        os.makedirs(path, exist_ok=True)
        return path

    def temp_dir(self) -> str:
        if self._temp_dir is None:
            self._temp_dir = _scratch("temp_")
        os.makedirs(self._temp_dir, exist_ok=True)
        return self._temp_dir

    def poll_canceled(self) -> bool:
        answer = self.canceled
        self.polls += 1
        return answer

    @property
    def cancel_checks(self) -> int:
        """How often the node asked is_canceled()."""
        return self.polls

    @property
    def canceled(self) -> bool:
        return self.cancel_after is not None and self.polls >= self.cancel_after

    def sibling(self) -> "HostContext":
        """A context of the same workflow and user for another call (configure before execute)."""
        return HostContext(self.credentials, self.flow_variables, self.workflow_dir, self._temp_dir)
