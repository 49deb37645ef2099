"""`knext.Version` (an extension release, major.minor.patch) and the fields of the extension's knime.yml,
which give the extension id (for port type ids) and the current version (for callable defaults)."""
from __future__ import annotations

import functools
import os
from typing import Dict, Optional, Tuple


@functools.total_ordering
class Version:
    """A release `major.minor.patch`; versions compare by their numbers. Callable parameter
    defaults receive one (the release that saved the settings, or the current one for a new node)."""

    def __init__(self, major: int, minor: int, patch: int) -> None:
        for part, value in (("major", major), ("minor", minor), ("patch", patch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise TypeError(f"Version {part} must be an int >= 0, not {value!r}")
        self.major, self.minor, self.patch = major, minor, patch

    @classmethod
    def parse_version(cls, version: Optional[str]) -> "Version":
        """'1.2.3' -> Version(1, 2, 3); None (settings saved before versions were recorded) -> 0.0.0."""
        if version is None:
            return cls(0, 0, 0)
        if isinstance(version, Version):
            return version
        parts = str(version).strip().split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"versions look like 1.2.3 (major.minor.patch), not {version!r}")
        return cls(*(int(p) for p in parts))

    def _key(self) -> Tuple[int, int, int]:
        return self.major, self.minor, self.patch

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented  # comparing with a str is a TypeError, as in KNIME: parse it first
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def __repr__(self) -> str:
        return f"Version({self.major}, {self.minor}, {self.patch})"


@functools.lru_cache(maxsize=1)
def manifest() -> Dict[str, str]:
    """Top-level scalar fields of the knime.yml above this double or the working folder ({} if none)."""
    for start in (os.path.dirname(os.path.abspath(__file__)), os.getcwd()):
        folder = start
        while True:
            path = os.path.join(folder, "knime.yml")
            if os.path.isfile(path):
                fields = {}
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        key, sep, value = line.partition(":")
                        if sep and not line[:1].isspace():
                            fields[key.strip()] = value.strip().strip("'\"")
                if fields.get("group_id") and fields.get("name"):
                    return fields
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return {}


def extension_id() -> str:
    """`<group_id>.<name>` of knime.yml."""
    fields = manifest()
    return f"{fields['group_id']}.{fields['name']}" if fields else "unknown.extension"


def current_version() -> Version:
    """The extension's release (knime.yml `version`), 0.0.0 when unknown."""
    try:
        return Version.parse_version(manifest().get("version"))
    except ValueError:
        return Version(0, 0, 0)

