"""Total disk use of a sandboxed run, measured by the parent while the child runs.

RLIMIT_FSIZE caps each file the child writes, not how many: six 60 MB files pass it. The
parent therefore polls the sandbox folder (`DiskWatch.over`) and kills the process group
when the folder, plus files the child still holds open after deleting them (or memfd
files, which live in memory and have no name), is over the limit. Between two polls the
child can write what the disk takes in one poll interval, so the limit can be overshot by
that much; the folder is deleted after the run in any case.

The walk never follows symbolic links and opens each folder relative to its parent's
descriptor, so links and very long paths made by the child cannot send it elsewhere; very
deep or very wide trees are themselves reported (they cost inodes and walk time).
"""
from __future__ import annotations

import os
import stat
import sys

POLL_S = 0.05  # how often the parent looks; also bounds the overshoot


class DiskWatch:
    """Polls `box` (and the child's open, deleted files) against `limit_mb`."""

    def __init__(self, box: str, limit_mb: float, max_entries: int = 20000, max_depth: int = 64):
        self.box, self.limit = box, int(limit_mb * 1024 * 1024)
        self.max_entries, self.max_depth = max_entries, max_depth
        self.used, self.entries = 0, 0

    def over(self, pid: int | None = None) -> str | None:
        """A sentence saying what is over the limit, or None. `pid`: the running child, whose
        descriptors are looked at too (None once it has ended)."""
        self.used, self.entries = 0, 0
        seen: set[tuple[int, int]] = set()
        try:
            top = os.open(self.box, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None  # the folder is gone: nothing left to measure
        try:
            problem = self._walk(top, 0, seen)
        finally:
            os.close(top)
        if problem is None and pid is not None:
            self.used += _held_deleted(pid, seen)
        if problem is None and self.used > self.limit:
            problem = f"{self.used / 2**20:.0f} MB"
        if problem is None:
            return None
        return (f"the sandbox's files grew past the disk limit of {self.limit / 2**20:g} MB ({problem}, "
                f"{self.entries} files and folders): the run was stopped")

    def _walk(self, dfd: int, depth: int, seen: set) -> str | None:
        with os.scandir(dfd) as it:
            for e in it:
                self.entries += 1
                if self.entries > self.max_entries:
                    return f"more than {self.max_entries} files and folders"
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:  # removed meanwhile
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    self.used += _size(st)
                if self.used > self.limit:
                    return f"over {self.used / 2**20:.0f} MB"
                if stat.S_ISDIR(st.st_mode):
                    if depth + 1 >= self.max_depth:
                        return f"folders nested more than {self.max_depth} deep"
                    try:
                        sub = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                    except OSError:
                        continue
                    try:
                        problem = self._walk(sub, depth + 1, seen)
                    finally:
                        os.close(sub)
                    if problem is not None:
                        return problem
        return None


def _size(st: os.stat_result) -> int:
    """Bytes the file takes on disk (sparse files count what is written), at least its length
    where the platform has no block count."""
    blocks = getattr(st, "st_blocks", None)
    return blocks * 512 if blocks is not None else st.st_size


def _held_deleted(pid: int, seen: set) -> int:
    """Bytes in regular files the process holds open that no folder names any more (deleted
    files, memfd). Linux only (/proc); elsewhere 0."""
    if not sys.platform.startswith("linux"):
        return 0
    base = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(base)
    except OSError:
        return 0
    total = 0
    for fd in fds:
        try:
            st = os.stat(f"{base}/{fd}")  # follows the descriptor to the open file itself
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 0 and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += _size(st)
    return total
