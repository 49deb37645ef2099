"""Import Paper: a research paper (PDF) becomes a draft TinyUOp graph with its provenance.

    res = import_paper("lenet.pdf")                       # no LLM: templates + numbers in the text
    res = import_paper("paper.pdf", llm=LLMService(cfg))   # the model drafts, uop_engine checks
    res.graph, res.head                                   # a valid graph (shapes inferred)
    res.provenance   # one row per graph node: page, section, the passage it came from, source
    res.unmapped     # what the paper describes that the graph does not express, and why

Without an LLM the paper must name an architecture our templates know (LeNet, VGG,
ResNet, Transformer, MLP, or a "convolutional network") or describe its layers in numbers
("two convolutional layers with 32 and 64 filters of size 3x3"); numbers stated in the text
override the template's, and every value that came from a template or a default rather than
the paper says so in `provenance`. With an LLM the architecture passages (plus what the
rule-based reading found) go to the model, which answers with graph JSON and a verbatim
quote per node; invalid graphs go back for repair (`llm.structured.complete_graph`), and
each quote is looked up in the paper, so a quote the model made up is flagged, not trusted.
"""
from __future__ import annotations

from typing import Any

from .paper_facts import DATASETS, LIST, NUM, UNSUPPORTED, Fact, unsupported
from .paper_llm import LLM_SYSTEM, llm_draft
from .paper_pdf import PaperError, PaperText, read_pdf
from .paper_result import PaperImport, call_rows, head_ref, usage_totals
from .paper_templates import PRIORITY, TEMPLATES, Draft, recognise

__all__ = ["PaperError", "PaperImport", "import_paper", "read_pdf", "recognise", "TEMPLATES",
           # the parts, for callers that draft step by step
           "DATASETS", "Draft", "Fact", "LIST", "LLM_SYSTEM", "NUM", "UNSUPPORTED", "unsupported"]


def import_paper(source: Any, llm: Any = None, *, password: str | None = None, max_rounds: int = 3,
                 name: str | None = None, timeout_s: float = 30.0, paper: PaperText | None = None) -> PaperImport:
    """See module docs. `source`: a PDF path, an http(s) URL or the PDF's bytes (or pass `paper`)."""
    from .structured import GraphRepairError
    paper = paper or read_pdf(source, password=password, timeout_s=timeout_s)
    try:
        draft, rules_error = recognise(paper, name), ""
    except PaperError as e:
        if llm is None:
            raise
        draft, rules_error = None, str(e)  # the paper's numbers do not fit a template: the model still may
    unmapped = unsupported(paper)
    warnings: list[str] = []
    calls: list[dict] = []
    if llm is not None:
        calls_before = len(getattr(llm, "calls", []))
        try:
            graph, rows, llm_unmapped, rounds = llm_draft(paper, llm, draft, max_rounds)
        except GraphRepairError as e:
            if draft is None:
                raise PaperError(f"{e}; " + (f"the rule-based draft failed too: {rules_error}" if rules_error else
                                             "the paper also names no architecture the templates know")) from None
            warnings.append(f"the LLM gave no valid graph ({e}); the rule-based draft from template "
                            f"'{draft.template}' is used instead")
            calls = call_rows(getattr(llm, "calls", [])[calls_before:])  # paid for even though unused
        else:
            known = {r["passage"] for r in llm_unmapped}
            unmapped = llm_unmapped + [u for u in unmapped if u["passage"] not in known]
            if name:
                graph.name = name
            calls = call_rows(getattr(llm, "calls", [])[calls_before:])
            # the rule-based draft's warnings describe a graph that is not returned: left out
            return PaperImport(graph, head_ref(graph), "llm", draft.template if draft else "", rows, unmapped, paper,
                               rounds, warnings, usage_totals(calls), calls)
    if draft is None:
        raise PaperError(f"{paper.source}: found no architecture to draft without an LLM: the paper names none of "
                         f"{', '.join(PRIORITY)} and states no layer sizes (e.g. '32 filters of size 3x3', '128 "
                         "hidden units'). Configure an LLM, or build the graph by hand")
    return PaperImport(draft.graph, head_ref(draft.graph), "template", draft.template, draft.provenance, unmapped, paper,
                       0, warnings + draft.warnings, usage_totals(calls), calls)
