"""Cut secrets out of text before it is shown, stored or sent to a model.

Generated code runs without keys in its environment, so its output should hold none; this
is the second line: known key values given by the caller, and the shapes API keys usually
have (sk-..., sk-ant-..., Bearer tokens, key=value pairs named like secrets).
"""
from __future__ import annotations

import re

_PATTERNS = (
    re.compile(r"sk-(?:ant-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{12,}"),
    re.compile(r"(?i)\b([A-Z0-9_]*(?:API_KEY|TOKEN|SECRET|PASSWORD)[A-Z0-9_]*)\s*[=:]\s*['\"]?[^\s'\"]{6,}"),
)


def redact(text: str, secrets=()) -> str:
    """`text` with every known secret and every key-shaped string replaced by [redacted]."""
    if not text:
        return text
    for s in secrets:
        if s and len(s) >= 6:
            text = text.replace(s, "[redacted]")
    for pat in _PATTERNS:
        text = pat.sub(lambda m: (m.group(1) + "=[redacted]") if m.groups() else "[redacted]", text)
    return text
