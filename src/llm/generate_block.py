"""Generate Block: a description (and optional reference code) becomes a tested block plugin.

    cand = generate_block("RMS norm over the last axis with a learned scale", llm, max_rounds=3)
    cand.code, cand.tests, cand.hash, cand.rounds     # pending: nothing is saved or loaded yet
    op = approve(cand, cand.hash, library="~/.tinyuop/blocks")   # llm.approval: explicit, by hash

Each round the model writes the module and its tests; both run in the sandbox
(`llm.sandbox`); on failure the captured traceback goes back to the model, up to
`max_rounds`. `llm` is anything with `complete(messages, system=...)` returning an object
with `.text` (llm.LLMService) or a string.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from uop_engine.plugins import code_hash

from .block_prompt import SYSTEM, ReplyFormatError, feedback_message, first_message, parse_reply
from .redact import redact
from .sandbox import run_tests


@dataclass
class Round:
    index: int                 # 1-based
    passed: bool
    reason: str                # "passed", "tests failed", "timeout", "memory", "forbidden: ...", "format: ..."
    traceback: str             # excerpt (redacted) as sent back to the model
    duration_s: float = 0.0
    code_hash: str = ""
    input_tokens: int = 0      # what this round's LLM call reported (a cached answer reports what it cost then)
    output_tokens: int = 0


@dataclass
class Candidate:
    """A generated block waiting for approval; `hash` is the sha256 of `code` (the file to be)."""
    name: str
    code: str
    tests: str
    hash: str
    passed: bool
    rounds: list[Round]
    test_output: str
    description: str
    reference_sha256: str = ""
    model: str = ""
    provider: str = ""
    state: str = "pending"
    usage: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class GenerateBlockError(RuntimeError):
    """No round produced a block whose tests pass; `.rounds` and `.candidate` (the last try) say why."""

    def __init__(self, message: str, rounds: list[Round], candidate: Candidate | None):
        super().__init__(message)
        self.rounds, self.candidate = rounds, candidate


def _reply_text(reply: Any) -> str:
    text = reply if isinstance(reply, str) else getattr(reply, "text", None)
    if not isinstance(text, str):
        raise TypeError(f"the LLM returned {type(reply).__name__}; expected a string or an object with .text")
    return text


def generate_block(description: str, llm: Any, reference_code: str = "", name: str = "", max_rounds: int = 3,
                   timeout_s: float = 60.0, memory_mb: int = 2048, secrets: tuple[str, ...] = (),
                   on_round: Callable[[Round], None] | None = None,
                   is_canceled: Callable[[], bool] | None = None) -> Candidate:
    """Ask `llm` for a block plugin and its tests until they pass in the sandbox (see module docs).

    Returns the passing Candidate (state "pending"); raises GenerateBlockError after
    `max_rounds` failures. `secrets` (e.g. the API key) are cut from everything sent or returned."""
    if not description or not description.strip():
        raise ValueError("the block description is empty: say what the block computes (shapes, maths, parameters)")
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    if name:
        from uop_engine.plugins import check_name
        check_name(name)
    import hashlib
    ref_hash = hashlib.sha256(reference_code.encode()).hexdigest() if reference_code.strip() else ""
    messages: list[dict] = [{"role": "user", "content": first_message(description, reference_code, name)}]
    rounds: list[Round] = []
    last: Candidate | None = None
    usage: dict = {}
    for i in range(1, max_rounds + 1):
        if is_canceled is not None and is_canceled():
            raise RuntimeError("Execution canceled.")
        reply = llm.complete(messages, system=SYSTEM)
        text = _reply_text(reply)
        used = {k: int(v) for k, v in (getattr(reply, "usage", None) or {}).items() if isinstance(v, (int, float))}
        for k, v in used.items():
            usage[k] = usage.get(k, 0) + v
        tokens = {"input_tokens": used.get("input_tokens", 0), "output_tokens": used.get("output_tokens", 0)}
        messages.append({"role": "assistant", "content": text})
        model, provider = str(getattr(reply, "model", "") or ""), str(getattr(reply, "provider", "") or "")
        try:
            block, code, tests = parse_reply(text, name)
        except ReplyFormatError as e:
            r = Round(i, False, f"format: {e}", "", **tokens)
            details = str(e)
        else:
            res = run_tests({f"{block}.py": code, f"test_{block}.py": tests}, timeout_s=timeout_s,
                            memory_mb=memory_mb, secrets=secrets)
            details = redact(res.feedback(), secrets)
            r = Round(i, res.passed, res.reason, details if not res.passed else "", res.duration_s, code_hash(code),
                      **tokens)
            output = redact((res.stdout + "\n" + res.stderr).strip(), secrets)
            last = Candidate(block, code, tests, code_hash(code), res.passed, rounds + [r], output if res.passed
                             else details, description, ref_hash, model, provider, usage=dict(usage))
        rounds.append(r)
        if on_round is not None:
            on_round(r)
        if r.passed:
            last.rounds = list(rounds)
            return last
        if i < max_rounds:
            messages.append({"role": "user", "content": feedback_message(i, r.reason, details)})
    if last is not None:
        last.rounds = list(rounds)
    summary = "; ".join(f"round {r.index}: {r.reason}" for r in rounds)
    raise GenerateBlockError(f"no working block after {max_rounds} round(s) ({summary}). Last output:\n"
                             f"{(rounds[-1].traceback or '')[-1500:]}\nhelp: make the description more precise "
                             "(shapes, formula, parameters), add reference code, or allow more rounds", rounds, last)
