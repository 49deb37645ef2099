"""On-disk response cache: the same request is answered from disk, so a workflow re-runs
identically (and offline) without paying for the tokens again.

One JSON file per entry, named by the sha256 of what determines the answer: provider, model,
effective base URL, system prompt, messages, temperature and max tokens. The API key is not
part of the key and never written; entries are written atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from uop_engine.fileio import atomic_write

FORMAT = "tinyuop.llm_cache"


def request_key(provider: str, model: str, base_url: str | None, system: str | None, messages: list[dict],
                temperature: float | None, max_tokens: int) -> str:
    """sha256 hex of the request's content (sorted-key JSON, so dict order does not matter)."""
    doc = {"provider": provider, "model": model, "base_url": base_url, "system": system or "",
           "messages": messages, "temperature": temperature, "max_tokens": int(max_tokens)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ResponseCache:
    """`get(key)` -> entry dict or None; `put(key, entry)` writes it atomically."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).expanduser()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict | None:
        p = self.path(key)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None  # a damaged entry counts as a miss; the next online answer replaces it
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("text"), str):
            return None
        return doc

    def put(self, key: str, text: str, usage: dict[str, int], model: str, provider: str) -> Path:
        doc: dict[str, Any] = {"format": FORMAT, "key": key, "provider": provider, "model": model, "text": text,
                               "usage": dict(usage), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        return Path(atomic_write(self.path(key), json.dumps(doc, indent=1, ensure_ascii=False)))

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0
