"""LLMService over real HTTP to a local scripted server with the real anthropic / openai SDK
clients: replies and usage, retries and back-off, clear errors, the response cache (offline),
structured graph output with repair rounds, and the key kept out of everything."""
import json
import pickle
import socket

import pytest

from llm import LLMConfig, LLMError, LLMReply, LLMService
from llm.structured import complete_graph, extract_json, graph_from_value
from llm_server import ScriptedLLMServer

KEY = "sk-test-0123456789abcdefghijKLMN"
PROVIDERS = ["anthropic", "openai", "openai_compatible"]
PATHS = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions", "openai_compatible": "/v1/chat/completions"}
USER = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_AUTH_TOKEN", "MY_LLM_KEY"):
        monkeypatch.delenv(name, raising=False)


def make(srv, provider, key=KEY, sleep=None, **kw) -> LLMService:
    kw.setdefault("backoff_base_s", 0.001)
    cfg = LLMConfig(provider=provider, model="test-model", base_url=srv.base_url, **kw)
    return LLMService(cfg, api_key=key) if sleep is None else LLMService(cfg, api_key=key, sleep=sleep)


def expected_usage(req, text):
    n_in = len(json.dumps(req["json"]["messages"])) // 4  # what the scripted server counts
    return {"input_tokens": max(1, n_in), "output_tokens": max(1, len(text) // 4)}


def no_key_anywhere(svc, *texts):
    blob = repr(svc) + repr(svc.config) + json.dumps(svc.calls) + repr(vars(svc)) + "".join(map(str, texts))
    assert KEY not in blob
    assert KEY.encode() not in pickle.dumps(svc._secret)


# ---- replies, usage, requests ------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_happy_path_records_usage(provider):
    with ScriptedLLMServer(["Hello there, friend."]) as srv:
        svc = make(srv, provider)
        reply = svc.complete(USER, system="Be brief.")
        req = srv.requests[0]
    assert isinstance(reply, LLMReply) and reply.text == "Hello there, friend." and not reply.cached
    assert reply.provider == provider and reply.model == "test-model"
    assert req["path"] == PATHS[provider] and req["json"]["model"] == "test-model"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"  # the SDK sent the key ...
    if provider == "anthropic":
        assert req["json"]["system"] == "Be brief." and req["json"]["messages"] == USER
        assert req["json"]["max_tokens"] == 4096 and "temperature" not in req["json"]
    else:
        assert req["json"]["messages"] == [{"role": "system", "content": "Be brief."}] + USER
        assert req["json"]["temperature"] == 0.0
        limit = "max_completion_tokens" if provider == "openai" else "max_tokens"
        assert req["json"][limit] == 4096
    usage = expected_usage(req, reply.text)
    assert reply.usage == usage and usage["input_tokens"] > 1
    (call,) = svc.calls
    assert call["usage"] == usage and call["attempts"] == 1 and call["ok"] and not call["cached"]
    assert call["latency_s"] > 0 and call["finish"] in ("end_turn", "stop")
    assert svc.total_usage() == usage
    no_key_anywhere(svc)  # ... and nothing of ours holds it


def test_system_messages_fold_into_the_system_prompt():
    msgs = [{"role": "system", "content": "Rule two."}, {"role": "user", "content": "Hi"}]
    with ScriptedLLMServer(["ok"]) as srv:
        make(srv, "anthropic").complete(msgs, system="Rule one.")
        assert srv.requests[0]["json"]["system"] == "Rule one.\n\nRule two."
    with pytest.raises(ValueError, match="message #0 must be"):
        LLMService(LLMConfig(model="m"), api_key=KEY).complete([{"role": "robot", "content": "x"}])


# ---- retries -----------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_retries_429_then_succeeds(provider):
    sleeps = []
    with ScriptedLLMServer([{"status": 429}, {"status": 500}, "finally"]) as srv:
        svc = make(srv, provider, sleep=sleeps.append)
        reply = svc.complete(USER)
        assert len(srv.requests) == 3 and srv.remaining == 0
    assert reply.text == "finally" and svc.calls[-1]["attempts"] == 3
    assert sleeps == [0.0, 0.0]  # the server's retry-after: 0 was honoured


def test_retry_after_is_capped_and_backoff_grows_with_jitter():
    sleeps = []
    with ScriptedLLMServer([{"status": 429, "retry_after": "120"}, "ok"]) as srv:
        make(srv, "openai", sleep=sleeps.append, retry_after_cap_s=0.25).complete(USER)
    assert sleeps == [0.25]
    # an unreachable server: no retry-after, so exponential back-off with jitter
    sleeps.clear()
    port = _free_port()
    cfg = LLMConfig(provider="openai_compatible", model="m", base_url=f"http://127.0.0.1:{port}", max_retries=3,
                    backoff_base_s=0.01, timeout_s=5)
    with pytest.raises(LLMError) as info:
        LLMService(cfg, sleep=sleeps.append).complete(USER)
    assert len(sleeps) == 3 and all(0.5 * 0.01 * 2 ** i <= s <= 0.01 * 2 ** i for i, s in enumerate(sleeps))
    msg = str(info.value)
    assert f"cannot reach the OpenAI-compatible server at http://127.0.0.1:{port}/v1 after 4 attempt(s)" in msg
    assert "server is running and the base URL" in msg and info.value.attempts == 4


@pytest.mark.parametrize("provider", PROVIDERS)
def test_500s_exhausted_give_a_clear_error(provider):
    with ScriptedLLMServer([{"status": 500}] * 3 + ["never asked"]) as srv:
        svc = make(srv, provider, max_retries=2)
        with pytest.raises(LLMError, match=r"call failed after 3 attempt\(s\) \(max_retries=2\); last problem: "
                                           r"HTTP 500: Internal error.*raise max_retries") as info:
            svc.complete(USER)
        assert len(srv.requests) == 3 and srv.remaining == 1
    assert info.value.status == 500 and info.value.attempts == 3 and info.value.provider == provider
    assert not svc.calls[-1]["ok"] and svc.calls[-1]["status"] == 500
    no_key_anywhere(svc, info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_reply_is_retried_then_reported(provider):
    with ScriptedLLMServer([{"raw": "<html>bad gateway"}, "fine"]) as srv:
        assert make(srv, provider).complete(USER).text == "fine"
    with ScriptedLLMServer([{"raw": "not json"}, {"raw": '{"unexpected": true}'}]) as srv:
        with pytest.raises(LLMError, match=r"after 2 attempt\(s\).*unreadable reply"):
            make(srv, provider, max_retries=1).complete(USER)


# ---- errors the user must act on ---------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_401_names_the_provider_and_key_source_without_the_key(provider):
    with ScriptedLLMServer([{"status": 401}, "never asked"]) as srv:
        svc = make(srv, provider)
        with pytest.raises(LLMError) as info:
            svc.complete(USER)
        assert len(srv.requests) == 1  # an auth failure is not retried
    msg = str(info.value)
    name = {"anthropic": "Anthropic", "openai": "OpenAI", "openai_compatible": "the OpenAI-compatible server"}[provider]
    assert msg.startswith(f"{name} rejected the API key (HTTP 401)") and "the given credential" in msg
    assert "Incorrect API key provided: [redacted]" in msg  # the server echoed the key; it was cut out
    assert info.value.status == 401
    no_key_anywhere(svc, info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_log_line_or_output_holds_the_key(provider, tmp_path, caplog, capfd):
    """Every logger at DEBUG (the SDKs and httpx log requests and responses there): a happy
    call, a 429 retried, a malformed reply, a 401 whose body echoes the key; then grep."""
    import logging
    caplog.set_level(logging.DEBUG)
    errors = []
    with ScriptedLLMServer(["hello", {"status": 429}, "again", {"raw": "{not json"}, {"raw": "{not json"},
                            {"status": 401}]) as srv:
        svc = make(srv, provider, max_retries=1, cache_dir=str(tmp_path / "cache"))
        svc.complete(USER)
        svc.complete([{"role": "user", "content": "second"}])
        for text in ("third", "fourth"):
            try:
                svc.complete([{"role": "user", "content": text}])
            except LLMError as e:
                errors.append(str(e))
        sent = [r["headers"].get("x-api-key") or r["headers"].get("authorization", "") for r in srv.requests]
    assert all(KEY in h for h in sent)  # the key did travel, in the request headers only
    assert len(errors) == 2 and "401" in errors[1]
    out, err = capfd.readouterr()
    cached = "".join(p.read_text(errors="replace") for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert "HTTP Request: POST" in caplog.text and cached  # there was something to grep
    for where, text in {"log": caplog.text, "stdout": out, "stderr": err, "errors": "".join(errors),
                        "cache": cached}.items():
        assert KEY not in text, where
        assert KEY[8:24] not in text, where  # not even a part of it
    no_key_anywhere(svc)


def test_key_from_environment_and_its_name_in_errors(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    with ScriptedLLMServer([{"status": 401}, {"status": 401}]) as srv:
        with pytest.raises(LLMError, match="the environment variable ANTHROPIC_API_KEY") as a:
            make(srv, "anthropic", key=None).complete(USER)
        with pytest.raises(LLMError, match="the environment variable MY_LLM_KEY") as b:
            make(srv, "openai_compatible", key=None, api_key_env="MY_LLM_KEY").complete(USER)
        assert all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in srv.requests)
    assert KEY not in str(a.value) + str(b.value)


def test_missing_key_and_keyless_servers(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # must NOT be sent to some other openai-compatible server
    with ScriptedLLMServer(["local answer", {"status": 401}]) as srv:
        with pytest.raises(LLMError, match="no API key for Anthropic: .*ANTHROPIC_API_KEY"):
            make(srv, "anthropic", key="").complete(USER)
        assert srv.requests == []  # nothing was sent without a key
        assert make(srv, "openai_compatible", key=None).complete(USER).text == "local answer"
        assert srv.requests[0]["headers"]["authorization"] == "Bearer no-key-needed"
        with pytest.raises(LLMError, match="requires an API key \\(HTTP 401\\) and none was given"):
            make(srv, "openai_compatible", key=None).complete(USER)


def test_config_is_checked_and_base_urls_normalized():
    with pytest.raises(ValueError, match="provider 'gemini' is not known"):
        LLMConfig(provider="gemini", model="m")
    with pytest.raises(ValueError, match="'model' is empty"):
        LLMConfig(provider="openai")
    with pytest.raises(ValueError, match="'base_url' is required for openai_compatible"):
        LLMConfig(provider="openai_compatible", model="m")
    with pytest.raises(ValueError, match="offline=True .* set cache_dir"):
        LLMConfig(model="m", offline=True)
    with pytest.raises(ValueError, match="not an http"):
        LLMConfig(model="m", base_url="localhost:11434")
    ep = lambda p, u: LLMConfig(provider=p, model="m", base_url=u).endpoint()  # noqa: E731
    assert ep("openai_compatible", "http://localhost:11434") == "http://localhost:11434/v1"
    assert ep("openai_compatible", "http://localhost:11434/v1/") == "http://localhost:11434/v1"
    assert ep("openai", "https://gw.example/openai/v1") == "https://gw.example/openai/v1"
    assert ep("anthropic", "http://127.0.0.1:9/v1") == "http://127.0.0.1:9"
    assert LLMConfig(model="m").endpoint() is None and "key" not in LLMConfig(model="m").to_dict()


def test_timeout_is_retried_then_named():
    with ScriptedLLMServer([{"text": "late", "delay_s": 1.0}, {"text": "late", "delay_s": 1.0}]) as srv:
        with pytest.raises(LLMError, match=r"after 2 attempt\(s\).*no answer within timeout_s=0.2\. raise timeout_s"):
            make(srv, "anthropic", timeout_s=0.2, max_retries=1).complete(USER)
        assert len(srv.requests) == 2


def test_not_found_model_is_clear():
    with ScriptedLLMServer([{"status": 404, "message": "model 'nope' not found"}]) as srv:
        with pytest.raises(LLMError, match=r"answered 404 \(not found\) for model 'test-model': check the model name"):
            make(srv, "openai_compatible").complete(USER)


# ---- cache -------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_cache_answers_offline_without_a_request(tmp_path, provider):
    cache = tmp_path / "cache"
    with ScriptedLLMServer(["cached answer"]) as srv:
        online = make(srv, provider, cache_dir=str(cache))
        first = online.complete(USER, system="s")
        base = srv.base_url
    files = list(cache.glob("*.json"))
    assert len(files) == 1 and not first.cached
    assert json.loads(files[0].read_text())["text"] == "cached answer"
    assert KEY not in files[0].read_text()
    with ScriptedLLMServer([]) as srv2:  # the same settings, another (empty) server: answered from disk
        cfg = LLMConfig(provider=provider, model="test-model", base_url=base, cache_dir=str(cache), offline=True)
        off = LLMService(cfg, api_key="sk-another-key-000000000000000")  # the key is not part of the cache key
        hit = off.complete(USER, system="s")
        assert srv2.requests == []
        assert hit.cached and hit.text == "cached answer" and hit.usage == first.usage
        assert off.calls[-1]["cached"] and off.calls[-1]["attempts"] == 0 and off.total_usage()["output_tokens"] == 0
        with pytest.raises(LLMError, match="offline mode: this .* call .* is not cached in"):
            off.complete(USER, system="another system prompt")
        other = LLMConfig(provider=provider, model="test-model", base_url=base, cache_dir=str(cache), offline=True,
                          temperature=0.7)
        with pytest.raises(LLMError, match="not cached"):
            LLMService(other, api_key=KEY).complete(USER, system="s")
        assert srv2.requests == []
    no_key_anywhere(online)


def test_damaged_cache_entry_is_a_miss(tmp_path):
    with ScriptedLLMServer(["one", "two"]) as srv:
        svc = make(srv, "openai", cache_dir=str(tmp_path))
        svc.complete(USER)
        (entry,) = tmp_path.glob("*.json")
        entry.write_text("{ half a file")
        assert svc.complete(USER).text == "two" and len(srv.requests) == 2
        assert json.loads(entry.read_text())["text"] == "two"


# ---- structured graph output -------------------------------------------------------------------
GOOD = """Here is the network:
```json
{"format": "tinyuop.graph", "version": 1, "name": "mlp", "nodes": [
 {"id": "x", "op": "input", "params": {"shape": [8]}, "inputs": []},
 {"id": "fc1", "op": "linear", "params": {"out_features": 16}, "inputs": ["x"]},
 {"id": "act", "op": "relu", "params": {}, "inputs": ["fc1"]},
 {"id": "fc2", "op": "linear", "params": {"out_features": 3}, "inputs": ["act"]}]}
```
It has two layers."""
BAD = GOOD.replace('"op": "linear", "params": {"out_features": 16}', '"op": "conv2d", "params": {"out_channels": 4}')


@pytest.mark.parametrize("provider", PROVIDERS)
def test_complete_graph_repairs_a_bad_graph_in_round_2(provider):
    with ScriptedLLMServer([BAD, GOOD]) as srv:
        graph, rounds, replies = complete_graph(make(srv, provider), "An MLP from 8 features to 3 classes")
        second = srv.requests[1]["json"]
    assert rounds == 2 and [r.text for r in replies] == [BAD, GOOD]
    assert graph.name == "mlp" and [n.op for n in graph.nodes] == ["input", "linear", "relu", "linear"]
    from uop_engine.infer import analyze
    assert analyze(graph).type_of("fc2").shape == (2, 3)
    msgs = second["messages"][1:] if provider != "anthropic" else second["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"] and msgs[1]["content"] == BAD
    assert "node 'fc1' (conv2d): expects a 4-D input" in msgs[2]["content"]  # the validation error went back
    system = second["system"] if provider == "anthropic" else second["messages"][0]["content"]
    assert "tinyuop.graph" in system and "conv_block(" in system  # format and op catalogue


def test_complete_graph_gives_up_with_the_last_problem():
    replies = ["I cannot draw graphs.", '{"nodes": [{"id": "x", "op": "warp_drive"}]}', "```json\n{broken\n```"]
    with ScriptedLLMServer(replies + ["never asked"]) as srv:
        with pytest.raises(LLMError, match=r"no valid TinyUOp graph in 3 round\(s\); last problem: the ```json "
                                           r"block is not valid JSON.*round 1: the reply holds no JSON.*round 2: "
                                           r".*warp_drive"):
            complete_graph(make(srv, "anthropic"), "anything", max_rounds=3)
        assert len(srv.requests) == 3


def test_complete_graph_accepts_a_layer_list():
    layers = 'Sure! [{"op": "input", "shape": [1, 8, 8]}, {"op": "conv_block", "out_channels": 4}, ' \
             '{"op": "flatten"}, {"op": "linear", "out_features": 2}] is my answer.'
    with ScriptedLLMServer([layers]) as srv:
        graph, rounds, _ = complete_graph(make(srv, "openai_compatible"), "a tiny CNN")
    assert rounds == 1 and [n.op for n in graph.nodes][:2] == ["input", "conv_block"]


def test_extract_json_finds_the_graph_in_prose():
    assert extract_json('Shape is [1, 2]. Graph: {"nodes": [], "note": "a } in a string"} done') == \
        {"nodes": [], "note": "a } in a string"}
    assert extract_json('first {"a": 1} then {"b": 2}') == {"a": 1}
    assert extract_json('```\n{"layers": [{"op": "relu"}]}\n```') == {"layers": [{"op": "relu"}]}
    with pytest.raises(ValueError, match="holds no JSON object"):
        extract_json("no json here {oops")
    with pytest.raises(Exception, match="no Input layer"):
        graph_from_value({"layers": [{"op": "relu"}]})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
