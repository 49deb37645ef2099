"""The approval gate: a generated block is saved and loaded only when a person names its hash.

The hash is the sha256 of the exact module bytes that will be written; the same hash goes
into `<name>.approval.json`, and `uop_engine.plugins.load_plugins` refuses the module if its
bytes change afterwards. Approving by hash (not by a yes/no flag) means a setting or a
script cannot approve code it has not seen: the hash changes with every regeneration.
"""
from __future__ import annotations

import datetime as _dt
import getpass
import re
from pathlib import Path

from uop_engine.optable import OpDef
from uop_engine.plugins import code_hash, load_plugin_file, save_plugin

from .generate_block import Candidate, Round

PENDING = ".pending"  # sub-folder of the library; load_plugins only reads top-level *.py files


class ApprovalError(ValueError):
    """The candidate was not approved (no hash, wrong hash, or tests that did not pass)."""


def check_approval(candidate: Candidate, approval_hash: str) -> str:
    """The normalised hash when it approves `candidate`, else ApprovalError naming the current hash."""
    given = (approval_hash or "").strip().lower()
    if code_hash(candidate.code) != candidate.hash:
        raise ApprovalError(f"candidate '{candidate.name}' was modified after generation (its code no longer has "
                            f"hash {candidate.hash})")
    if not candidate.passed:
        raise ApprovalError(f"candidate '{candidate.name}' did not pass its tests; only passing candidates can be "
                            "approved")
    if not given:
        raise ApprovalError(f"no approval hash given; to approve '{candidate.name}', review its code and enter its "
                            f"hash {candidate.hash}")
    if not re.fullmatch(r"[0-9a-f]{64}", given):
        raise ApprovalError(f"approval hash {approval_hash!r} is not a sha256 (64 hex digits); the current "
                            f"candidate's hash is {candidate.hash}")
    if given != candidate.hash:
        raise ApprovalError(f"approval hash {given} does not match the current candidate's hash {candidate.hash} "
                            "(the code changed since you reviewed it); review the code again and enter the new hash")
    return given


def provenance(candidate: Candidate, approved_by: str | None = None) -> dict:
    return {"description": candidate.description, "reference_sha256": candidate.reference_sha256,
            "provider": candidate.provider, "model": candidate.model, "rounds": len(candidate.rounds),
            "round_reasons": [r.reason for r in candidate.rounds], "tests": candidate.tests,
            "test_output": candidate.test_output[-4000:], "usage": usage_total(candidate),
            "approved_by": approved_by or _user(),
            "approved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "generator": "TinyUOp Generate Block"}


def usage_total(candidate: Candidate) -> dict[str, int]:
    """Tokens of all rounds' LLM calls: what generating this block cost."""
    return {"input_tokens": sum(int(r.input_tokens) for r in candidate.rounds),
            "output_tokens": sum(int(r.output_tokens) for r in candidate.rounds), "llm_calls": len(candidate.rounds)}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): still record something
        return "unknown"


def approve(candidate: Candidate, approval_hash: str, library: str | Path | None = None,
            approved_by: str | None = None, overwrite: bool = False) -> OpDef:
    """Save `candidate` into the block library and load it as op `user_<name>`, only if
    `approval_hash` equals its hash. Returns the op (its meta holds path and approval)."""
    check_approval(candidate, approval_hash)
    path = save_plugin(_library(library), candidate.name, candidate.code, provenance(candidate, approved_by),
                       overwrite=overwrite)
    op = load_plugin_file(path)
    candidate.state = "approved"
    return op


# ---- pending candidates: what was shown, kept so that it (not a regeneration) gets approved ----
def _library(library: str | Path | None) -> Path:
    if library is None:
        from uop_engine.blocklib import DEFAULT_LIBRARY
        library = DEFAULT_LIBRARY
    return Path(library).expanduser()


def save_pending(candidate: Candidate, library: str | Path | None = None) -> Path:
    """Keep a generated candidate (as JSON, never as a loadable .py) until someone approves its hash."""
    import json
    from uop_engine.fileio import atomic_write
    path = _library(library) / PENDING / f"{candidate.hash}.json"
    atomic_write(path, json.dumps(candidate.to_dict(), indent=1))
    return path


def load_pending(approval_hash: str, library: str | Path | None = None) -> Candidate | None:
    """The pending candidate with this hash, or None; a file whose code does not hash to its
    name is ignored (the gate re-checks the hash anyway)."""
    import json
    h = (approval_hash or "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", h):
        return None
    path = _library(library) / PENDING / f"{h}.json"
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        d["rounds"] = [Round(**r) for r in d.get("rounds", [])]
        cand = Candidate(**d)
    except (OSError, ValueError, TypeError):
        return None
    return cand if code_hash(cand.code) == h == cand.hash else None


def latest_pending(description: str, reference_code: str = "", name: str = "",
                   library: str | Path | None = None) -> Candidate | None:
    """The newest pending candidate generated from the same description, reference and name."""
    import hashlib
    ref = hashlib.sha256(reference_code.encode()).hexdigest() if reference_code.strip() else ""
    folder = _library(library) / PENDING
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
    for f in files:
        cand = load_pending(f.stem, library)
        if cand and cand.description == description and cand.reference_sha256 == ref and (not name or cand.name == name):
            return cand
    return None


def discard_pending(candidate: Candidate, library: str | Path | None = None) -> None:
    (_library(library) / PENDING / f"{candidate.hash}.json").unlink(missing_ok=True)
