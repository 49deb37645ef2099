"""The LLM draft of a paper's network: the architecture passages (and what the rule-based reading
found) go to the model, invalid graphs go back for repair (`llm.structured.complete_graph`), and every
quote the model gives for a node is looked up in the paper, so a made-up quote is flagged, not trusted."""
from __future__ import annotations

from typing import Any

from .paper_pdf import PaperText, Sentence, architecture_passages
from .paper_result import params_text
from .paper_templates import Draft

LLM_SYSTEM = ("You turn the architecture described in a research paper into a TinyUOp graph. Reproduce the paper's "
              "network (input shape per sample, layers in order, sizes, activations, number of outputs) using only "
              "the listed ops and blocks. Reply with ONE JSON object in a ```json fence, of the form\n"
              '{"graph": <graph in the format below>, "provenance": {"<node id>": "<verbatim quote (at most 200 '
              'characters) from the passages that this node comes from>"}, "unmapped": [{"passage": "<verbatim '
              'quote>", "reason": "<why no listed op expresses it>"}]}\n'
              "Quote the paper exactly: quotes are checked against its text. Put anything the ops cannot express in "
              "\"unmapped\" instead of inventing ops or parameters.")


def llm_prompt(paper: PaperText, passages: list[Sentence], draft: Draft | None) -> str:
    lines = [f"Paper: {paper.title or paper.source}", "", "Passages that describe the network ([page, section]):"]
    lines += [f"[p.{s.page}{', ' + s.heading if s.heading else ''}] {s.text}" for s in passages]
    if draft is not None:
        facts = {k: v.value for k, v in draft.facts.items() if k != "conv_sentences"}
        lines += ["", f"A rule-based reading matched the template '{draft.template}' and found: {facts}. Use it only "
                      "where the passages agree."]
    lines += ["", "Build the network as a TinyUOp graph."]
    return "\n".join(lines)


def llm_draft(paper: PaperText, llm: Any, draft: Draft | None, max_rounds: int) -> tuple[Any, list, list, int]:
    """(graph, provenance rows, unmapped rows, rounds used); raises GraphRepairError when the model
    gives no valid graph within `max_rounds`."""
    from .structured import complete_graph, extract_json
    passages = architecture_passages(paper)
    if not passages:
        passages = paper.sentences[:80]
    graph, rounds, replies = complete_graph(llm, llm_prompt(paper, passages, draft), system=LLM_SYSTEM,
                                            max_rounds=max_rounds)
    last = replies[-1] if isinstance(replies[-1], str) else getattr(replies[-1], "text", "")
    try:
        value = extract_json(last)
    except ValueError:
        value = {}
    prov = value.get("provenance") if isinstance(value, dict) else None
    prov = prov if isinstance(prov, dict) else {}
    rows = []
    for node in graph.nodes:
        quote = prov.get(node.id)
        quote = quote if isinstance(quote, str) else ""
        s = paper.locate(quote) if quote else None
        if s is not None:
            row = {"page": s.page, "section": s.heading, "passage": s.text, "source": "llm (quote found in the paper)"}
        elif quote:
            row = {"page": None, "section": "", "passage": quote, "source": "llm (quote NOT found in the paper: check)"}
        else:
            row = {"page": None, "section": "", "passage": "", "source": "llm (no passage given)"}
        rows.append({"node": node.id, "op": node.op, "params": params_text(node.params), **row, "note": ""})
    unm = value.get("unmapped") if isinstance(value, dict) else None
    unmapped = []
    for item in unm if isinstance(unm, list) else []:
        if isinstance(item, dict) and isinstance(item.get("passage"), str):
            s = paper.locate(item["passage"])
            unmapped.append({"page": s.page if s else None, "section": s.heading if s else "",
                             "passage": s.text if s else item["passage"], "item": str(item.get("item", ""))[:80],
                             "reason": str(item.get("reason") or "the model found no op for it")[:500],
                             "source": "llm"})
    return graph, rows, unmapped, rounds
