"""One LLM service for every provider: Anthropic through the official `anthropic` SDK, OpenAI and
OpenAI-compatible servers (Ollama, vLLM, llama.cpp, LM Studio) through the official `openai` SDK.

    svc = LLMService(LLMConfig(provider="anthropic", model="claude-sonnet-4-5"), api_key=key)
    reply = svc.complete([{"role": "user", "content": "..."}], system="...")
    reply.text, reply.usage, reply.cached      # usage: {"input_tokens": n, "output_tokens": m}
    svc.calls                                  # one record per call: usage, latency, attempts, no secrets

The key: the `api_key` argument (a KNIME credential) wins, then the environment variable
named by the config (ANTHROPIC_API_KEY / OPENAI_API_KEY / `api_key_env`); a keyless
openai_compatible server gets a placeholder. The SDKs' own retries are off so one policy
applies: exponential back-off with jitter on 429, 5xx, connection errors and unreadable
replies, a server's retry-after honoured up to a cap. The key never appears in reprs,
records, the cache or error messages (they are scrubbed with llm.redact as a second line).
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .cache import ResponseCache, request_key
from .config import LLMConfig, LLMError
from .redact import redact

log = logging.getLogger(__name__)
PLACEHOLDER_KEY = "no-key-needed"  # the openai SDK insists on some key; keyless local servers ignore it
_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI", "openai_compatible": "the OpenAI-compatible server"}
_ROLES = ("user", "assistant", "system")


@dataclass(frozen=True)
class LLMReply:
    text: str
    usage: dict[str, int] = field(default_factory=dict)  # input_tokens, output_tokens
    cached: bool = False
    model: str = ""
    provider: str = ""


class _Transient(Exception):
    """A failure worth retrying (rate limit, server error, connection, unreadable reply)."""

    def __init__(self, what: str, status: int | None = None, retry_after: float | None = None,
                 unreachable: bool = False, hint: str = ""):
        super().__init__(what)
        self.what, self.status, self.retry_after, self.unreachable = what, status, retry_after, unreachable
        self.hint = hint


class _Secret:
    """Holds the key so that repr(), vars() dumps and pickles of the service do not show it."""
    __slots__ = ("_v",)

    def __init__(self, value: str):
        self._v = value

    def get(self) -> str:
        return self._v

    def __repr__(self) -> str:
        return "<hidden>"

    def __reduce__(self):  # a pickled service carries no key
        return (_Secret, ("",))


class LLMService:
    """See module docs. `complete()` is thread-safe enough for one node's calls; `calls` grows per call."""

    def __init__(self, config: LLMConfig, api_key: str | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if not isinstance(config, LLMConfig):
            raise TypeError(f"LLMService needs an LLMConfig, got {type(config).__name__}")
        self.config = config
        given = (api_key or "").strip()
        env_name = config.key_env()
        if given:
            key, self.key_source = given, "the given credential (its password)"
        elif config.env_key():
            key, self.key_source = config.env_key(), f"the environment variable {env_name}"
        else:
            key = ""
            self.key_source = (f"nowhere: no credential given and {env_name} is not set" if env_name
                               else "nowhere (a keyless server; a placeholder key is sent)")
        self._secret = _Secret(key)
        self.calls: list[dict[str, Any]] = []
        self._client: Any = None
        self._lock = threading.Lock()
        self._sleep = sleep
        self._cache = ResponseCache(config.cache_dir) if config.cache_dir else None

    def __repr__(self) -> str:
        c = self.config
        return (f"LLMService(provider={c.provider!r}, model={c.model!r}, base_url={c.endpoint()!r}, "
                f"key={'set' if self._secret.get() else 'none'}, cache={c.cache_dir!r}, offline={c.offline})")

    # ---- public -------------------------------------------------------------------------
    def complete(self, messages: list[dict[str, str]], system: str | None = None) -> LLMReply:
        """The assistant's reply to `messages` (roles user / assistant / system, text content)."""
        cfg = self.config
        msgs, system = _normalize(messages, system)
        key = request_key(cfg.provider, cfg.model, cfg.endpoint(), system, msgs, cfg.temperature, cfg.max_tokens)
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                usage = {k: int(v) for k, v in (hit.get("usage") or {}).items() if isinstance(v, (int, float))}
                self._record(cached=True, attempts=0, latency=0.0, usage=usage, ok=True)
                return LLMReply(hit["text"], usage, True, str(hit.get("model") or cfg.model), cfg.provider)
            if cfg.offline:
                self._record(cached=False, attempts=0, latency=0.0, usage={}, ok=False, error="not cached (offline)")
                raise LLMError(f"offline mode: this {cfg.provider} call (model '{cfg.model}') is not cached in "
                               f"{self._cache.folder}; run it once online with the same settings (provider, model, "
                               "base URL, system prompt, messages, temperature, max_tokens) to fill the cache, or "
                               "turn offline off", provider=cfg.provider)
        t0 = time.perf_counter()
        try:
            text, usage, model, finish, attempts = self._with_retries(msgs, system)
        except LLMError as e:
            self._record(cached=False, attempts=e.attempts, latency=time.perf_counter() - t0, usage={}, ok=False,
                         error=str(e), status=e.status)
            raise
        self._record(cached=False, attempts=attempts, latency=time.perf_counter() - t0, usage=usage, ok=True,
                     finish=finish)
        if self._cache is not None:
            try:
                self._cache.put(key, text, usage, model, cfg.provider)
            except OSError as e:  # a full or read-only disk must not lose the answer already paid for
                log.warning("LLM response not cached in %s: %s", self._cache.folder, e)
        return LLMReply(text, usage, False, model, cfg.provider)

    def total_usage(self, include_cached: bool = False) -> dict[str, int]:
        """Tokens summed over `calls` (cache hits cost nothing, so they are left out by default)."""
        tot = {"input_tokens": 0, "output_tokens": 0}
        for c in self.calls:
            if c["ok"] and (include_cached or not c["cached"]):
                for k in tot:
                    tot[k] += int(c["usage"].get(k, 0))
        return tot

    # ---- internals ----------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        return redact(str(text), (self._secret.get(),))

    def _record(self, *, cached: bool, attempts: int, latency: float, usage: dict, ok: bool, error: str = "",
                status: int | None = None, finish: str = "") -> None:
        rec = {"provider": self.config.provider, "model": self.config.model, "cached": cached, "ok": ok,
               "attempts": attempts, "latency_s": round(latency, 4), "usage": dict(usage), "finish": finish,
               "status": status, "error": self._scrub(error)}
        with self._lock:
            self.calls.append(rec)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        cfg = self.config
        if retry_after is not None:  # the server knows best, but a huge value must not hang a workflow
            return max(0.0, min(retry_after, cfg.retry_after_cap_s))
        # full-jitter exponential back-off: spreads out clients that failed together
        return random.uniform(0.5, 1.0) * min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1))

    def _with_retries(self, msgs: list[dict], system: str) -> tuple[str, dict, str, str, int]:
        cfg = self.config
        total = cfg.max_retries + 1
        last: _Transient | None = None
        for attempt in range(1, total + 1):
            try:
                text, usage, model, finish = self._request(msgs, system)
                return text, usage, model, finish, attempt
            except _Transient as e:
                last = e
                if attempt < total:
                    wait = self._delay(attempt, e.retry_after)
                    log.info("%s: %s; retry %d/%d in %.2fs", cfg.provider, self._scrub(e.what), attempt,
                             cfg.max_retries, wait)
                    self._sleep(wait)
            except LLMError as e:
                e.attempts = attempt
                raise
        assert last is not None
        where = cfg.endpoint() or f"the {_NAMES[cfg.provider]} API"
        if last.unreachable:
            msg = (f"cannot reach {_NAMES[cfg.provider]} at {where} after {total} attempt(s): {last.what}. Check that "
                   "the server is running and the base URL (host, port) is right")
        else:
            msg = (f"{_NAMES[cfg.provider]} call failed after {total} attempt(s) (max_retries={cfg.max_retries}); "
                   f"last problem: {last.what}. " + (last.hint or "The service is rate-limiting or failing: try again "
                                                                       "later, or raise max_retries"))
        raise LLMError(self._scrub(msg), provider=cfg.provider, status=last.status, attempts=total)

    def _request(self, msgs: list[dict], system: str) -> tuple[str, dict, str, str]:
        if self.config.provider == "anthropic":
            return self._anthropic(msgs, system)
        return self._openai(msgs, system)

    def _timeout(self) -> _Transient:
        return _Transient(f"no answer within timeout_s={self.config.timeout_s:g}", hint="raise timeout_s (long replies "
                          "take a while, local models on CPU even longer) or lower max_tokens")

    def _no_key(self) -> LLMError:
        cfg = self.config
        return LLMError(f"no API key for {_NAMES[cfg.provider]}: choose a KNIME credential whose password is the key, "
                        f"or set the environment variable {cfg.key_env()}", provider=cfg.provider)

    def _anthropic(self, msgs: list[dict], system: str) -> tuple[str, dict, str, str]:
        import anthropic
        cfg = self.config
        with self._lock:
            if self._client is None:
                if not self._secret.get():
                    raise self._no_key()
                self._client = anthropic.Anthropic(api_key=self._secret.get(), base_url=cfg.endpoint(),
                                                   timeout=cfg.timeout_s, max_retries=0)
        kw: dict[str, Any] = {"model": cfg.model, "max_tokens": int(cfg.max_tokens), "messages": msgs}
        if system:
            kw["system"] = system
        try:  # no temperature: the current Anthropic API and SDK have no sampling parameters
            resp = self._client.messages.create(**kw)
        except anthropic.APIStatusError as e:
            raise self._status_error(e) from None
        except anthropic.APITimeoutError:
            raise self._timeout() from None
        except anthropic.APIConnectionError as e:
            raise _Transient(f"connection failed ({_cause(e)})", unreachable=True) from None
        except (anthropic.APIResponseValidationError, ValueError) as e:  # JSONDecodeError is a ValueError
            raise _Transient(f"unreadable reply ({type(e).__name__}: {str(e)[:120]})") from None
        blocks = getattr(resp, "content", None)
        if not isinstance(blocks, list):
            raise _Transient("unreadable reply (no content blocks)")
        text = "".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", "") == "text")
        u = getattr(resp, "usage", None)
        usage = {"input_tokens": int(getattr(u, "input_tokens", 0) or 0),
                 "output_tokens": int(getattr(u, "output_tokens", 0) or 0)}
        return text, usage, str(getattr(resp, "model", "") or cfg.model), str(getattr(resp, "stop_reason", "") or "")

    def _openai(self, msgs: list[dict], system: str) -> tuple[str, dict, str, str]:
        import openai
        cfg = self.config
        with self._lock:
            if self._client is None:
                if not self._secret.get() and cfg.provider == "openai":
                    raise self._no_key()
                self._client = openai.OpenAI(api_key=self._secret.get() or PLACEHOLDER_KEY, base_url=cfg.endpoint(),
                                             timeout=cfg.timeout_s, max_retries=0)
        kw: dict[str, Any] = {"model": cfg.model, "messages": ([{"role": "system", "content": system}] if system
                                                               else []) + msgs}
        # OpenAI's own API wants max_completion_tokens (reasoning models reject max_tokens);
        # local servers know max_tokens
        kw["max_completion_tokens" if cfg.provider == "openai" else "max_tokens"] = int(cfg.max_tokens)
        if cfg.temperature is not None:
            kw["temperature"] = float(cfg.temperature)
        try:
            resp = self._client.chat.completions.create(**kw)
        except openai.APIStatusError as e:
            raise self._status_error(e) from None
        except openai.APITimeoutError:
            raise self._timeout() from None
        except openai.APIConnectionError as e:
            raise _Transient(f"connection failed ({_cause(e)})", unreachable=True) from None
        except (openai.APIResponseValidationError, ValueError) as e:
            raise _Transient(f"unreadable reply ({type(e).__name__}: {str(e)[:120]})") from None
        choices = getattr(resp, "choices", None)
        if not isinstance(choices, list) or not choices or getattr(choices[0], "message", None) is None:
            raise _Transient("unreadable reply (no choices[0].message)")
        text = choices[0].message.content or ""
        u = getattr(resp, "usage", None)  # some local servers send none
        usage = {"input_tokens": int(getattr(u, "prompt_tokens", 0) or 0),
                 "output_tokens": int(getattr(u, "completion_tokens", 0) or 0)}
        return text, usage, str(getattr(resp, "model", "") or cfg.model), str(choices[0].finish_reason or "")

    def _status_error(self, e: Any) -> Exception:
        """An SDK status error as _Transient (retry) or LLMError (tell the user what to fix)."""
        cfg, status = self.config, int(getattr(e, "status_code", 0) or 0)
        said = self._scrub(_server_message(e))[:300]
        name, where = _NAMES[cfg.provider], cfg.endpoint() or f"the {_NAMES[cfg.provider]} API"
        if status in (408, 409, 429) or status >= 500:
            return _Transient(f"HTTP {status}: {said}", status=status, retry_after=_retry_after(e))
        if status == 401:
            if not self._secret.get():
                msg = (f"{name} at {where} requires an API key (HTTP 401) and none was given: choose a KNIME "
                       f"credential whose password is the key" + (f", or set {cfg.key_env()}" if cfg.key_env() else
                                                                  ", or name its environment variable in api_key_env"))
            else:
                msg = (f"{name} rejected the API key (HTTP 401). The key came from {self.key_source}: check that it "
                       f"is a valid, active {name} key. Server said: {said}")
        elif status == 403:
            msg = (f"{name} refused access (HTTP 403) with the key from {self.key_source}: the key may lack access "
                   f"to model '{cfg.model}'. Server said: {said}")
        elif status == 404:
            msg = (f"{name} at {where} answered 404 (not found) for model '{cfg.model}': check the model name and the "
                   f"base URL. Server said: {said}")
        else:
            msg = f"{name} rejected the request (HTTP {status}) for model '{cfg.model}': {said}"
        return LLMError(self._scrub(msg), provider=cfg.provider, status=status)


def _normalize(messages: Any, system: str | None) -> tuple[list[dict], str]:
    """Checked {"role", "content"} dicts; "system" messages are folded into the system prompt."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': 'user' | 'assistant', 'content': str}")
    out, sys_parts = [], [system] if system else []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"message #{i} must be {{'role': 'user' | 'assistant' | 'system', 'content': str}}, "
                             f"got {str(m)[:80]}")
        if m["role"] == "system":
            sys_parts.append(m["content"])
        else:
            out.append({"role": m["role"], "content": m["content"]})
    if not out:
        raise ValueError("messages hold no user message")
    return out, "\n\n".join(sys_parts)


def _server_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        return json.dumps(body)[:300]
    return str(getattr(e, "message", "") or e)


def _retry_after(e: Any) -> float | None:
    """Seconds from retry-after-ms / retry-after (seconds or an HTTP date); None when absent."""
    headers = getattr(getattr(e, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000.0
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime
            return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None


def _cause(e: Any) -> str:
    c = e.__cause__ or e.__context__
    return f"{type(c).__name__}: {c}" if c is not None else str(e)
