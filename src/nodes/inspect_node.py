"""UOp Inspect: tinygrad's UOp graph, kernels, generated sources and timings for a graph."""
from __future__ import annotations

import knime.extension as knext

from uop_engine.errors import GraphError

from ._base import check_canceled, graph_category, user_error
from .ports import graph_port_type

_COLUMNS = [("index", knext.int64()), ("name", knext.string()), ("kind", knext.string()),
            ("ast_uops", knext.int64()), ("program_uops", knext.int64()), ("global_size", knext.string()),
            ("local_size", knext.string()), ("compile_time_s", knext.double()), ("time_s", knext.double()),
            ("est_ops", knext.int64()), ("est_mem_bytes", knext.int64()), ("source", knext.string())]


@knext.node(name="UOp Inspect", node_type=knext.NodeType.VISUALIZER, icon_path="icons/graph.png",
            category=graph_category, keywords=["jit", "kernel", "compile", "diagnostics", "beam", "uop"],
            id="tinyuop_uop_inspect")
@knext.input_port("Graph", "The graph to compile and inspect.", graph_port_type)
@knext.output_table("Kernels", "One row per scheduled kernel: UOp counts, sizes, compile and run time, source.")
@knext.output_table("Summary", "Metrics of the whole compile: UOp count, kernel count, times, options.")
@knext.output_view("UOp view", "A picture of the network (layers, shapes, connections), the summary, diagnostics "
                   "and every kernel's generated source.")
class UOpInspectNode:
    """Compiles the graph with tinygrad and shows what it became.

    Reports the size of the tinygrad UOp graph, the scheduled kernels with their generated
    source (C for the CPU device) and measured time, the cold compile time and whole-run
    times, plus diagnostics. Options: device, TinyJit on/off, BEAM search level, NOOPT.
    The view starts with a picture of the network: one box per node with its op, output shape
    (N = batch axis) and parameter count, arrows for the connections. Cancelling stops between
    phases and between kernels while compiling (where a BEAM search runs).
    """

    batch = knext.IntParameter("Batch size", "Samples in the random input batch.", 1, min_value=1)
    device = knext.StringParameter("Device", "tinygrad device (empty = default, e.g. CPU, CUDA, METAL).", "")
    jit = knext.BoolParameter("TinyJit", "Also run the forward pass through TinyJit and report its capture.", False)
    beam = knext.IntParameter("BEAM", "BEAM search width for kernel optimisation (0 = off).", 0, min_value=0, max_value=8)
    noopt = knext.BoolParameter("NOOPT", "Disable tinygrad's kernel optimisations.", False)
    seed = knext.IntParameter("Seed", "Seed for weights and the random input.", 0, is_advanced=True)

    def configure(self, config_context, spec):
        try:
            spec.graph.check_structure()
        except GraphError as e:
            raise user_error(e) from None
        return (knext.Schema.from_columns([knext.Column(t, n) for n, t in _COLUMNS]),
                knext.Schema.from_columns([knext.Column(knext.string(), "metric"), knext.Column(knext.double(), "value"),
                                           knext.Column(knext.string(), "text")]))

    def execute(self, exec_context, obj):
        import pandas as pd
        from uop_engine.graph_view import graph_svg
        from uop_engine.inspect_uops import InspectCancelled
        check_canceled(exec_context)
        exec_context.set_progress(0.05, "Drawing the network")
        try:
            svg = graph_svg(obj.graph)
            check_canceled(exec_context)
            exec_context.set_progress(0.1, "Compiling the graph with tinygrad" + (f" (BEAM={self.beam})" if self.beam else ""))
            rep = self._inspect(obj.graph, exec_context.is_canceled)
        except GraphError as e:
            raise user_error(e) from None
        except InspectCancelled:
            raise RuntimeError("Execution canceled.") from None
        check_canceled(exec_context)
        exec_context.set_progress(0.95, "Writing the report")
        rows = rep.kernel_table()
        for r, k in zip(rows, rep.kernels):
            r["source"] = k.source
        kernels = pd.DataFrame(rows, columns=[n for n, _ in _COLUMNS])
        for n, t in _COLUMNS:
            if t == knext.int64():
                kernels[n] = kernels[n].fillna(0).astype("int64")
            elif t == knext.double():
                kernels[n] = kernels[n].astype("float64")
        summary = pd.DataFrame(rep.summary_table(), columns=["metric", "value", "text"]).astype({"value": "float64"})
        return (knext.Table.from_pandas(kernels), knext.Table.from_pandas(summary),
                knext.view_html(rep.to_html(network_svg=svg)))

    def _inspect(self, graph, should_stop):
        from uop_engine.diagnostics import inspect_graph
        return inspect_graph(graph, self.batch, seed=self.seed, device=self.device or None, jit=self.jit,
                             beam=self.beam, noopt=self.noopt, should_stop=should_stop)
