"""Generate Block: an LLM writes a block plugin and its tests; a sandbox runs them; a person
approves the exact code by its hash before it is saved to the block library."""
from __future__ import annotations

import knime.extension as knext

from ._base import automation_category, check_canceled
from ._llm import LLMSettings, check_llm_settings, llm_service
from ._llm import schema as _schema
from ._llm import table as _table

_ROUNDS = [("round", knext.int32()), ("passed", knext.bool_()), ("reason", knext.string()),
           ("traceback", knext.string()), ("duration_s", knext.double()), ("code_sha256", knext.string()),
           ("input_tokens", knext.int32()), ("output_tokens", knext.int32())]
_CANDIDATE = [("name", knext.string()), ("op", knext.string()), ("sha256", knext.string()), ("state", knext.string()),
              ("code", knext.string()), ("tests", knext.string()), ("test_output", knext.string()),
              ("provider", knext.string()), ("model", knext.string()), ("rounds", knext.int32())]
_SAVED = [("op", knext.string()), ("name", knext.string()), ("file", knext.string()), ("sha256", knext.string()),
          ("approved_by", knext.string()), ("approved_at", knext.string()), ("inputs", knext.string()),
          ("params", knext.string()), ("description", knext.string())]


@knext.parameter_group("Sandbox")
class SandboxSettings:
    """Limits for running the generated module and tests in the sandbox (per round)."""

    max_rounds = knext.IntParameter("Max rounds", "Attempts: each failure's traceback goes back to the model.", 3,
                                    min_value=1, max_value=10)
    timeout_s = knext.IntParameter("Time limit (s)", "Wall-clock limit of one sandbox run.", 60, min_value=5,
                                   max_value=1800)
    memory_mb = knext.IntParameter("Memory limit (MB)", "Address-space limit of the sandboxed process.", 2048,
                                   min_value=512, max_value=65536)


@knext.node(name="Generate Block", node_type=knext.NodeType.SOURCE, icon_path="icons/llm.png",
            category=automation_category, keywords=["llm", "code generation", "plugin", "block", "tinygrad"],
            id="tinyuop_generate_block")
@knext.output_table("Rounds", "One row per attempt: passed, reason (tests failed, timeout, memory, forbidden: ...), "
                    "traceback excerpt sent back to the model, and the tokens its LLM call used (input, output).")
@knext.output_table("Candidate", "The generated block: name, sha256 of its code, state (pending/approved), "
                    "code, tests and test output. Review the code, then approve it by its hash.")
@knext.output_table("Saved block", "After approval: the saved block (op name, file, hash, provenance); "
                    "empty while the candidate is pending.")
class GenerateBlockNode:
    """Writes a new TinyUOp block with an LLM, tests it in a sandbox, and saves it only when approved.

    Describe the block (maths, shapes, parameters) and optionally paste reference code. The
    model writes a block plugin module and pytest tests; both run in a sandbox (separate
    process, no network, no processes, no file access outside a temporary folder, time and
    memory limits). When the tests fail, the traceback goes back to the model, up to
    *Max rounds*. The result is a **pending** candidate: read its code in the Candidate
    table. To save it, copy its sha256 into *Approve candidate with hash* and execute again:
    the node approves the candidate you saw (kept in the library's `.pending` folder), not a
    new generation. A hash that matches no current candidate fails and names the current
    hash. Approved blocks are written to the block library (`<name>.py` plus
    `<name>.approval.json` with provenance) and load as op `user_<name>`; its palette node
    appears after KNIME restarts. Editing the saved file later makes the library refuse it.
    See docs/security.md for what the sandbox does and does not protect against.
    """

    description = knext.MultilineStringParameter("Block description", "What the block computes: formula, input and "
                                                 "output shapes, parameters.", "")
    reference_code = knext.MultilineStringParameter("Reference code", "Optional implementation to port (any "
                                                    "framework); treated as data, never run.", "")
    block_name = knext.StringParameter("Block name", "Name of the block (lower-case, digits, underscores); empty = "
                                       "the model chooses.", "")
    llm = LLMSettings()
    sandbox = SandboxSettings()
    library = knext.StringParameter("Library folder", "Block library folder (empty = $TINYUOP_BLOCK_LIBRARY or "
                                    "~/.tinyuop/blocks).", "")
    approve_hash = knext.StringParameter("Approve candidate with hash", "Empty: generate and show a candidate. The "
                                         "sha256 of a candidate you reviewed: save that candidate to the library.", "")
    overwrite = knext.BoolParameter("Overwrite an existing block", "Replace a saved block of the same name.", False,
                                    is_advanced=True)

    def _check(self) -> None:
        import re
        if not self.description.strip() and not self.approve_hash.strip():
            raise knext.InvalidParametersError("parameter 'Block description' is empty: say what the block computes")
        if self.block_name and not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", self.block_name):
            raise knext.InvalidParametersError(f"parameter 'Block name': {self.block_name!r} is not valid; use "
                                               "lower-case letters, digits and underscores, starting with a letter")
        h = self.approve_hash.strip().lower()
        if h and not re.fullmatch(r"[0-9a-f]{64}", h):
            raise knext.InvalidParametersError("parameter 'Approve candidate with hash': not a sha256 (64 hex "
                                               "digits); copy it from the Candidate table")
        check_llm_settings(self.llm)

    def configure(self, config_context):
        self._check()
        check_llm_settings(self.llm, config_context)
        return _schema(_ROUNDS), _schema(_CANDIDATE), _schema(_SAVED)

    def execute(self, exec_context):
        from llm.approval import (ApprovalError, approve, check_approval, discard_pending, latest_pending, load_pending,
                                  save_pending)
        from llm.generate_block import GenerateBlockError, generate_block
        from uop_engine.errors import GraphError
        self._check()
        library = self.library.strip() or None
        wanted = self.approve_hash.strip().lower()
        cand = load_pending(wanted, library) if wanted else None
        if wanted and cand is None:  # a stale or mistyped hash: name the current one without asking the model again
            current = latest_pending(self.description, self.reference_code, self.block_name, library)
            if current is not None:
                raise ValueError(f"Approval refused: hash {wanted} matches no pending candidate; the current "
                                 f"candidate's hash is {current.hash}. Review its code and enter that hash.")
        if cand is None:
            if not self.description.strip():
                raise ValueError(f"no pending candidate has hash {wanted}; enter the block description to generate one")
            service, key = llm_service(self.llm, exec_context)
            total = self.sandbox.max_rounds

            def on_round(r):
                exec_context.set_progress(min(r.index / total, 0.95), f"round {r.index}: {r.reason}")
                check_canceled(exec_context)

            exec_context.set_progress(0.02, "Asking the model for a block module and tests")
            try:
                cand = generate_block(self.description, service, self.reference_code, self.block_name,
                                      max_rounds=total, timeout_s=self.sandbox.timeout_s,
                                      memory_mb=self.sandbox.memory_mb, secrets=(key,) if key else (),
                                      on_round=on_round, is_canceled=exec_context.is_canceled)
            except GenerateBlockError as e:
                raise ValueError(str(e)) from None
            save_pending(cand, library)
        saved: list[dict] = []
        if wanted:
            try:
                check_approval(cand, wanted)
                op = approve(cand, wanted, library=library, overwrite=self.overwrite)
            except ApprovalError as e:
                raise ValueError(f"Approval refused: {e}") from None
            except GraphError as e:
                raise ValueError(str(e)) from None
            discard_pending(cand, library)
            ap = op.meta["approval"]
            saved.append({"op": op.name, "name": cand.name, "file": op.meta["path"], "sha256": ap["sha256"],
                          "approved_by": ap["approved_by"], "approved_at": ap["approved_at"],
                          "inputs": ", ".join(op.inputs), "params": ", ".join(f"{p.name}={p.default!r}" for p in op.params),
                          "description": cand.description})
            _add_palette_node(op)
        rounds = [{"round": r.index, "passed": r.passed, "reason": r.reason, "traceback": r.traceback,
                   "duration_s": float(r.duration_s), "code_sha256": r.code_hash, "input_tokens": int(r.input_tokens),
                   "output_tokens": int(r.output_tokens)} for r in cand.rounds]
        row = {"name": cand.name, "op": f"user_{cand.name}", "sha256": cand.hash, "state": cand.state,
               "code": cand.code, "tests": cand.tests, "test_output": cand.test_output, "provider": cand.provider,
               "model": cand.model, "rounds": len(cand.rounds)}
        exec_context.set_progress(1.0, "approved and saved" if saved else "candidate pending approval")
        return _table(rounds, _ROUNDS), _table([row], _CANDIDATE), _table(saved, _SAVED)


def _add_palette_node(op) -> None:
    """Make the node class for this session (KNIME lists new nodes after a restart)."""
    try:
        from .op_nodes import generate
        generate([op])
    except Exception as e:  # the block is saved either way; the node shows after restart
        import logging
        logging.getLogger(__name__).warning("node for %s not created now: %s", op.name, e)
