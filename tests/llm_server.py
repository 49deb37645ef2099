"""A real local HTTP server speaking enough of the Anthropic Messages API and the OpenAI Chat
Completions API for the official SDK clients, answering with scripted replies.

    with ScriptedLLMServer(["an answer", {"status": 429}, "another"]) as srv:
        LLMConfig(provider="anthropic", model="m", base_url=srv.base_url)
        LLMConfig(provider="openai_compatible", model="m", base_url=srv.base_url)  # the service adds /v1
        srv.requests   # [{"path", "json", "headers"}, ...] in arrival order; srv.remaining

Each request consumes the next reply:
- a str: the assistant's text (200, the provider's response shape with usage);
- {"status": 429 | 500 | 401 | ...}: the provider's error JSON with `retry-after: 0`
  (optional "message", "retry_after"); a 401 echoes the key it received, as careless
  servers do, so tests can check that the client scrubs it;
- {"raw": "..."}: that body as-is with status 200 (a malformed answer);
- {"text": "...", "delay_s": 2.0}: the text, after a pause (for client time-outs).
POST /v1/messages answers in Anthropic's shape, POST /v1/chat/completions in OpenAI's. With no
scripted reply left the server answers 400 "no scripted reply left" (not retried).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ANTHROPIC_KIND = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}
_OPENAI_KIND = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                429: "rate_limit_exceeded"}


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)  # a deterministic stand-in for a tokenizer


class ScriptedLLMServer:
    """Context manager: serves on 127.0.0.1 (a free port) from a thread until the block ends."""

    def __init__(self, replies: list[Any]):
        self._replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._replies)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("ScriptedLLMServer is not running: use it as `with ScriptedLLMServer([...]) as srv`")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _next(self, record: dict) -> Any:
        with self._lock:
            self.requests.append(record)
            return self._replies.pop(0) if self._replies else None

    def __enter__(self) -> "ScriptedLLMServer":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="scripted-llm",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _error_body(anthropic: bool, status: int, message: str) -> dict:
    if anthropic:
        return {"type": "error", "error": {"type": _ANTHROPIC_KIND.get(status, "api_error"), "message": message},
                "request_id": "req_scripted"}
    return {"error": {"message": message, "type": _OPENAI_KIND.get(status, "server_error"), "param": None,
                      "code": "invalid_api_key" if status == 401 else None}}


def _success_body(anthropic: bool, body: Any, text: str) -> dict:
    model = body.get("model", "scripted") if isinstance(body, dict) else "scripted"
    n_in, n_out = _tokens(json.dumps(body.get("messages", []) if isinstance(body, dict) else body)), _tokens(text)
    if anthropic:
        return {"id": "msg_scripted_01", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": n_in, "output_tokens": n_out}}
    return {"id": "chatcmpl-scripted01", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}


def _handler(owner: ScriptedLLMServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode("utf-8", "replace")
            try:
                body: Any = json.loads(raw)
            except json.JSONDecodeError:
                body = raw
            path = self.path.split("?", 1)[0].rstrip("/")
            headers = {k.lower(): v for k, v in self.headers.items()}
            anthropic = path.endswith("/v1/messages")
            if not anthropic and not path.endswith("/v1/chat/completions"):
                owner.requests.append({"path": path, "json": body, "headers": headers})
                return self._send(404, _error_body(False, 404, f"no route {self.path}: POST /v1/messages or "
                                                               "/v1/chat/completions"))
            reply = owner._next({"path": path, "json": body, "headers": headers})
            if reply is None:
                return self._send(400, _error_body(anthropic, 400, "ScriptedLLMServer: no scripted reply left"))
            if isinstance(reply, dict) and "raw" in reply:
                return self._send(200, str(reply["raw"]))
            if isinstance(reply, dict) and "status" in reply:
                status = int(reply["status"])
                if status == 401:
                    got = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
                    default = f"Incorrect API key provided: {got}"
                else:
                    default = {429: "Rate limit reached, slow down", 529: "Overloaded"}.get(status, "Internal error")
                return self._send(status, _error_body(anthropic, status, reply.get("message", default)),
                                  {"retry-after": str(reply.get("retry_after", "0"))})
            if isinstance(reply, dict) and reply.get("delay_s"):
                time.sleep(float(reply["delay_s"]))
            text = reply if isinstance(reply, str) else str(reply.get("text", ""))
            return self._send(200, _success_body(anthropic, body, text))

        def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler
