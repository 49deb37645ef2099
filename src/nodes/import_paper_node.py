"""Import Paper: a research paper's PDF -> a draft TinyUOp graph, the passage each node came
from, and what the graph does not express. The work is llm.paper's; this is the KNIME glue."""
from __future__ import annotations

import re

import knime.extension as knext

from ._base import automation_category, check_canceled
from ._llm import LLMSettings, check_llm_settings, llm_service, schema, table
from .ports import graph_port_type, make_object, make_spec

_PROVENANCE = [("node", knext.string()), ("op", knext.string()), ("params", knext.string()), ("page", knext.int32()),
               ("section", knext.string()), ("passage", knext.string()), ("source", knext.string()),
               ("note", knext.string())]
_UNMAPPED = [("page", knext.int32()), ("section", knext.string()), ("passage", knext.string()),
             ("item", knext.string()), ("reason", knext.string()), ("source", knext.string())]
_CALLS = [("call", knext.int32()), ("cached", knext.bool_()), ("ok", knext.bool_()), ("input_tokens", knext.int32()),
          ("output_tokens", knext.int32()), ("attempts", knext.int32()), ("latency_s", knext.double())]
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


@knext.node(name="Import Paper", node_type=knext.NodeType.SOURCE, icon_path="icons/llm.png",
            category=automation_category, keywords=["paper", "pdf", "llm", "architecture", "import", "draft"],
            id="tinyuop_import_paper")
@knext.output_port("Graph", "The draft network as a TinyUOp graph (shapes inferred; edit it with the op nodes).",
                   graph_port_type)
@knext.output_table("Provenance", "One row per graph node: op, parameters, page, section and the paper passage it "
                    "came from; 'source' says whether the paper, a template, a default or the LLM gave it (an LLM "
                    "quote not found in the paper is flagged).")
@knext.output_table("Not mapped", "What the paper describes that the graph does not express (e.g. LSTM, local "
                    "response normalisation), with the passage and the reason.")
@knext.output_table("LLM calls", "One row per LLM call: whether the response cache answered it, the tokens it used "
                    "(input, output), HTTP attempts and seconds; empty without an LLM.")
class ImportPaperNode:
    """Drafts a TinyUOp graph from the architecture described in a research paper (PDF).

    The PDF's text is read with pypdf (clear errors for encrypted, scanned or damaged files)
    and the sentences describing the network are picked out. **Without an LLM** the node
    recognises architectures our templates know (LeNet-5, VGG, ResNet, Transformer encoder,
    CNN, MLP) and the layer numbers stated in the text ("two convolutional layers with 16 and
    32 filters of size 3x3"); numbers in the paper override the template's. This runs in
    configure, so the output graph's shapes are known before executing. **With an LLM** the
    passages go to the model, which answers with graph JSON and a verbatim quote per node;
    invalid graphs go back for repair (up to *Repair rounds*), each quote is looked up in the
    paper, and a made-up quote is flagged. If the model gives no valid graph, the rule-based
    draft is used with a warning. The draft is a start: check every row of the Provenance
    table against the paper.
    """

    pdf = knext.StringParameter("PDF file or URL", "Path of the paper's PDF file, or an http(s) URL of the PDF.", "")
    password_credential = knext.StringParameter("PDF password credential", "For an encrypted PDF: a KNIME credential "
                                                "whose password opens it (empty = not encrypted).", "",
                                                choices=lambda ctx: ctx.get_credential_names())
    graph_name = knext.StringParameter("Graph name", "Name of the drafted graph (empty = from the paper's title).",
                                       "")
    use_llm = knext.BoolParameter("Draft with an LLM", "Ask an LLM to draft the graph (otherwise templates and the "
                                  "numbers in the text are used, with no network access).", False)
    max_rounds = knext.IntParameter("Repair rounds", "Attempts the model gets to give a valid graph; each problem "
                                    "found goes back to it.", 3, min_value=1, max_value=10)
    llm = LLMSettings()
    download_timeout_s = knext.IntParameter("Download time-out (s)", "For a URL: time-out of the download.", 30,
                                            min_value=1, max_value=600, is_advanced=True)

    def _check(self, ctx) -> None:
        if not self.pdf.strip():
            raise knext.InvalidParametersError("parameter 'PDF file or URL' is empty: choose the paper's PDF file")
        if self.graph_name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,80}", self.graph_name):
            raise knext.InvalidParametersError(f"parameter 'Graph name': {self.graph_name!r} is not valid; use "
                                               "letters, digits, '_', '-' and '.', starting with a letter")
        names = ctx.get_credential_names()
        if self.password_credential and self.password_credential not in names:
            raise knext.InvalidParametersError(f"parameter 'PDF password credential': no credential named "
                                               f"'{self.password_credential}' in this workflow (available: {names})")
        if self.use_llm:
            check_llm_settings(self.llm, ctx)

    def _password(self, ctx) -> str | None:
        return ctx.get_credentials(self.password_credential).password if self.password_credential else None

    def _import(self, ctx, llm):
        from llm.paper import PaperError, import_paper
        try:
            return import_paper(self.pdf.strip(), llm, password=self._password(ctx), max_rounds=self.max_rounds,
                                name=self.graph_name.strip() or None, timeout_s=float(self.download_timeout_s))
        except PaperError as e:
            raise ValueError(str(e)) from None

    def _tables(self, res):
        return table(res.provenance, _PROVENANCE), table(res.unmapped, _UNMAPPED), table(res.calls, _CALLS)

    def configure(self, config_context):
        self._check(config_context)
        tables = schema(_PROVENANCE), schema(_UNMAPPED), schema(_CALLS)
        if _URL.match(self.pdf.strip()):
            return (None,) + tables  # no downloads in configure: the graph is known after execution
        llm = None
        if self.use_llm:
            if not self.llm.cache_folder.strip():
                return (None,) + tables  # the model is asked in execute
            from llm import LLMError
            llm, _ = llm_service(self.llm, config_context, offline=True)  # a cached answer gives the spec now
            try:
                res = self._import(config_context, llm)
            except (LLMError, ValueError):
                return (None,) + tables
        else:
            try:
                res = self._import(config_context, None)
            except ValueError as e:
                raise knext.InvalidParametersError(str(e)) from None
        for w in res.warnings:
            config_context.set_warning(w)
        return (make_spec(res.graph, res.head),) + tables

    def execute(self, exec_context):
        self._check(exec_context)
        llm = None
        if self.use_llm:
            llm, _ = llm_service(self.llm, exec_context)
            exec_context.set_progress(0.1, f"reading the paper; the {self.llm.provider} model drafts the graph")
        else:
            exec_context.set_progress(0.1, "reading the paper")
        check_canceled(exec_context)
        from llm import LLMError
        try:
            res = self._import(exec_context, llm)
        except LLMError as e:
            raise ValueError(f"Import Paper: the LLM call failed: {e}") from None
        if res.warnings:
            exec_context.set_warning("; ".join(res.warnings))
        what = f"drafted by the LLM in {res.rounds} round(s)" if res.source == "llm" else \
            f"drafted from template '{res.template}'"
        used = f"; {res.usage['input_tokens']} input + {res.usage['output_tokens']} output tokens" if res.calls else ""
        exec_context.set_progress(1.0, f"{len(res.graph.nodes)} nodes {what}; {len(res.unmapped)} passage(s) not "
                                       f"mapped{used}")
        return (make_object(res.graph, res.head),) + self._tables(res)
