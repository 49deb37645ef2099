"""Extension/parameter versions as comparable (major, minor, patch) tuples, like KNIME's."""
from __future__ import annotations

from collections import namedtuple
from typing import Optional


class Version(namedtuple("Version", ["major", "minor", "patch"])):
    """A parsed "x.y.z" version; compares like a tuple and prints as "x.y.z"."""

    def __repr__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    __str__ = __repr__

    @classmethod
    def parse_version(cls, version_string: Optional[str]) -> "Version":
        """None means 0.0.0 (parameters without since_version exist since the first release)."""
        if version_string is None:
            return cls(0, 0, 0)
        if isinstance(version_string, Version):
            return version_string
        try:
            parts = [int(p) for p in str(version_string).split(".")]
            if len(parts) != 3 or min(parts) < 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"Incorrect version format: '{version_string}'. Must be of the form "
                             "'major.minor.patch', with non-negative integers for major, minor and patch.") from None
        return cls(*parts)
