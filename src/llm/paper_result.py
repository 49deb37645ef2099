"""What Import Paper returns: the graph with its provenance and unmapped tables, plus the rows and
token totals of the LLM calls it made."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .paper_pdf import PaperText


@dataclass
class PaperImport:
    graph: Any
    head: str
    source: str                      # "llm" or "template"
    template: str                    # the template the rules matched ("" if none)
    provenance: list[dict]
    unmapped: list[dict]
    paper: PaperText
    rounds: int = 0                  # LLM rounds used (0 without an LLM)
    warnings: list[str] = field(default_factory=list)
    usage: dict = field(default_factory=dict)      # tokens of the calls that reached the model (no cache hits)
    calls: list[dict] = field(default_factory=list)  # one row per LLM call: call, cached, ok, tokens, latency

    PROVENANCE_COLUMNS = ("node", "op", "params", "page", "section", "passage", "source", "note")
    UNMAPPED_COLUMNS = ("page", "section", "passage", "item", "reason", "source")

    def provenance_frame(self):
        import pandas as pd
        return pd.DataFrame([{c: r.get(c) for c in self.PROVENANCE_COLUMNS} for r in self.provenance],
                            columns=list(self.PROVENANCE_COLUMNS))

    def unmapped_frame(self):
        import pandas as pd
        return pd.DataFrame([{c: r.get(c) for c in self.UNMAPPED_COLUMNS} for r in self.unmapped],
                            columns=list(self.UNMAPPED_COLUMNS))


def head_ref(graph: Any) -> str:
    """The node the graph's last output reads (the last node when it has no output)."""
    outs = graph.output_refs()
    return outs[-1] if outs else graph.nodes[-1].id


def call_rows(calls: list[dict]) -> list[dict]:
    """LLMService.calls records as table rows: tokens, cache hit, attempts, latency of each call."""
    return [{"call": i + 1, "cached": bool(c.get("cached")), "ok": bool(c.get("ok")),
             "input_tokens": int((c.get("usage") or {}).get("input_tokens", 0)),
             "output_tokens": int((c.get("usage") or {}).get("output_tokens", 0)),
             "attempts": int(c.get("attempts") or 0), "latency_s": float(c.get("latency_s") or 0.0)}
            for i, c in enumerate(calls)]


def usage_totals(calls: list[dict]) -> dict:
    """Tokens of the calls that reached the model (cache hits cost nothing now)."""
    tot = {"input_tokens": 0, "output_tokens": 0}
    for c in calls:
        if c["ok"] and not c["cached"]:
            for k in tot:
                tot[k] += c[k]
    return tot


def params_text(params: dict) -> str:
    """A node's parameters as the provenance table's "params" cell."""
    return ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("name",))
