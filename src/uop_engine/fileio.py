"""Atomic file writes: everything the project saves goes through here, so a crash or a full
disk never leaves a half-written model, block, checkpoint or report behind."""
from __future__ import annotations

import os
import tempfile


def atomic_write(path: str | os.PathLike, data: bytes | str) -> str:
    """Write to a temp file in the same folder, fsync, then os.replace; returns the path.
    Readers see the old file or the new one, never a mix; on failure the old file stays."""
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
