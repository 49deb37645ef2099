"""Settings of one LLM connection: provider, model, endpoint, sampling, retries, cache.

    LLMConfig(provider="anthropic", model="claude-sonnet-4-5")
    LLMConfig(provider="openai", model="gpt-4.1")
    LLMConfig(provider="openai_compatible", model="llama3.1", base_url="http://localhost:11434")

Base URLs: for "openai" and "openai_compatible" a bare server address (no path, e.g. Ollama's
``http://localhost:11434`` or vLLM's ``http://host:8000``) gets ``/v1`` appended, because
that is where every OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) serves the
API; an address with a path (``http://host/proxy/v1``) is used as given. For "anthropic" the
SDK adds ``/v1/messages`` itself, so a trailing ``/v1`` is dropped.

The API key is never part of the config (it is given to LLMService, or read from an
environment variable whose *name* is here), so configs can be shown, saved and hashed freely.
``temperature`` is sent to OpenAI-style servers only: Anthropic's current API and SDK have
no sampling parameters (the value still takes part in the cache key).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

PROVIDERS = ("anthropic", "openai", "openai_compatible")
DEFAULT_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


@dataclass(frozen=True)
class LLMConfig:
    provider: str = "anthropic"
    model: str = ""
    base_url: str | None = None
    temperature: float | None = 0.0
    max_tokens: int = 4096
    timeout_s: float = 60.0
    max_retries: int = 4             # retries after the first attempt (429, 5xx, connection errors)
    cache_dir: str | None = None     # folder of the response cache; None = no cache
    offline: bool = False            # answer from the cache only; a miss is an error
    api_key_env: str | None = None   # name of the environment variable holding the key
    backoff_base_s: float = 1.0      # first retry waits about this long, doubling each time (small in tests)
    backoff_max_s: float = 30.0
    retry_after_cap_s: float = 60.0  # a server's retry-after is honoured up to this many seconds

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"LLMConfig: provider {self.provider!r} is not known; use one of {', '.join(PROVIDERS)}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("LLMConfig: 'model' is empty; name the model, e.g. claude-sonnet-4-5, gpt-4.1 or, for a "
                             "local server, the name it serves (ollama list)")
        if self.provider == "openai_compatible" and not (self.base_url or "").strip():
            raise ValueError("LLMConfig: 'base_url' is required for openai_compatible servers, e.g. "
                             "http://localhost:11434 (Ollama) or http://localhost:8000 (vLLM)")
        if self.base_url:
            parts = urlsplit(self.base_url.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"LLMConfig: base_url {self.base_url!r} is not an http(s) address like "
                                 "http://localhost:11434")
        if self.temperature is not None and not 0.0 <= float(self.temperature) <= 2.0:
            raise ValueError(f"LLMConfig: temperature must be in [0, 2], got {self.temperature}")
        if int(self.max_tokens) < 1:
            raise ValueError(f"LLMConfig: max_tokens must be >= 1, got {self.max_tokens}")
        if float(self.timeout_s) <= 0:
            raise ValueError(f"LLMConfig: timeout_s must be > 0, got {self.timeout_s}")
        if int(self.max_retries) < 0:
            raise ValueError(f"LLMConfig: max_retries must be >= 0, got {self.max_retries}")
        if min(self.backoff_base_s, self.backoff_max_s, self.retry_after_cap_s) < 0:
            raise ValueError("LLMConfig: backoff_base_s, backoff_max_s and retry_after_cap_s must be >= 0")
        if self.offline and not self.cache_dir:
            raise ValueError("LLMConfig: offline=True answers from the response cache only; set cache_dir to the "
                             "cache folder (or set offline=False)")

    # ---- derived ----------------------------------------------------------------------
    def endpoint(self) -> str | None:
        """The base URL handed to the SDK (see module docs); None = the provider's default."""
        if not self.base_url or not self.base_url.strip():
            return None
        url = self.base_url.strip().rstrip("/")
        if self.provider == "anthropic":
            return url[:-3] if url.endswith("/v1") else url
        return url + "/v1" if urlsplit(url).path in ("", "/") else url

    def key_env(self) -> str | None:
        """Name of the environment variable the key is read from (None for a keyless local server).

        openai_compatible servers read only an explicitly named variable: sending the
        OPENAI_API_KEY of the environment to some other server would leak it."""
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.provider)

    def env_key(self) -> str | None:
        name = self.key_env()
        value = os.environ.get(name, "").strip() if name else ""
        return value or None

    def to_dict(self) -> dict:
        return asdict(self)


class LLMError(RuntimeError):
    """An LLM call failed in a way the user must act on; the message says what to fix.

    `status` is the last HTTP status (None for connection problems or cache misses),
    `attempts` how many requests were made. Messages never hold the API key."""

    def __init__(self, message: str, provider: str = "", status: int | None = None, attempts: int = 0):
        super().__init__(message)
        self.provider, self.status, self.attempts = provider, status, attempts
