"""UOp Inspect on the real tinygrad CPU device: kernels, sources, timings, options, JIT, errors, HTML/JSON."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from uop_engine.errors import GraphError
from uop_engine.inspect_uops import InspectReport, inspect_function

SHAPES = [(16, 32), (32, 8)]


def matmul_relu(a, b):
    return (a @ b).relu()


def inputs_like_engine(shapes, seed=0):
    # the engine's documented input recipe: numpy default_rng(seed), standard normal float32, in order
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


@pytest.fixture(scope="module")
def base() -> InspectReport:
    return inspect_function(matmul_relu, SHAPES, device="CPU", runs=2)


@pytest.fixture(scope="module")
def noopt() -> InspectReport:
    return inspect_function(matmul_relu, SHAPES, device="CPU", noopt=True)


def test_matmul_relu_kernels_sources_and_timings(base):
    assert base.kernel_count >= 1 and len(base.kernels) >= base.kernel_count
    assert base.uop_count > 0 and base.uop_count == sum(base.uop_op_counts.values())
    assert "REDUCE" in base.uop_op_counts and "SINK" not in base.uop_op_counts
    kernels = [k for k in base.kernels if k.kind == "kernel"]
    for k in kernels:
        assert k.name and k.ast_uops > 0 and k.program_uops > 0
        assert "void " + k.name in k.source and "for (" in k.source  # C from the clang renderer
        assert "\x1b[" not in k.name  # ANSI colours stripped
        assert len(k.run_times_s) == 2 and k.time_s is not None and k.time_s > 0
        assert len(k.global_size) == 3
    assert base.compile_time_s > 0 and all(t > 0 for t in base.run_times_s) and len(base.run_times_s) == 2
    assert base.schedule_time_s > 0
    assert base.counters["global_ops"] >= 2 * 16 * 32 * 8  # multiply-adds of the matmul
    assert base.counters["global_ops"] == sum(k.est_ops for k in kernels)
    assert base.options["device"] == "CPU" and base.options["renderer"] == "ClangRenderer"
    assert base.options["tinygrad_version"] == "0.14.0"


def test_outputs_match_numpy(base):
    a, b = inputs_like_engine(SHAPES)
    assert base.output_shapes == [[16, 8]] and base.output_dtypes == ["float"]
    np.testing.assert_allclose(base.outputs[0], np.maximum(a @ b, 0), rtol=1e-4, atol=1e-4)


def test_noopt_changes_source_and_is_recorded(base, noopt):
    assert noopt.options["noopt"] is True and base.options["noopt"] is False
    assert {k.source for k in noopt.kernels} != {k.source for k in base.kernels}
    np.testing.assert_allclose(noopt.outputs[0], base.outputs[0], rtol=1e-4, atol=1e-4)


def test_beam_runs_and_is_recorded():
    rep = inspect_function(matmul_relu, [(4, 4), (4, 4)], device="CPU", beam=1, noopt=True, runs=1)
    assert rep.options["beam"] == 1 and rep.kernel_count >= 1
    codes = {d.code for d in rep.diagnostics}
    assert {"beam_uncached", "noopt_ignored"} <= codes
    a, b = inputs_like_engine([(4, 4), (4, 4)])
    np.testing.assert_allclose(rep.outputs[0], np.maximum(a @ b, 0), rtol=1e-4, atol=1e-4)


def test_jit_runs_and_reports(base):
    rep = inspect_function(matmul_relu, SHAPES, device="CPU", jit=True, runs=2)
    assert rep.jit is not None and rep.jit.error is None
    assert [c["phase"] for c in rep.jit.calls] == ["plain", "capture", "replay"]
    assert rep.jit.captured_kernels >= 1 and set(rep.jit.kernel_names) <= {k.name for k in base.kernels}
    assert rep.jit.replay_time_s is not None and rep.jit.replay_time_s > 0
    assert "jit_runs" in {d.code for d in rep.diagnostics}
    assert rep.options["jit"] is True


def test_unknown_device_lists_available_devices():
    with pytest.raises(GraphError) as ei:
        inspect_function(matmul_relu, SHAPES, device="NOPE_DEVICE")
    msg = str(ei.value)
    assert ei.value.param == "device" and "NOPE_DEVICE" in msg and "available devices" in msg and "CPU" in msg


def test_unknown_renderer_lists_renderers():
    with pytest.raises(GraphError) as ei:
        inspect_function(matmul_relu, SHAPES, device="CPU:NOPE")
    assert ei.value.param == "device" and "CLANG" in str(ei.value)


def test_context_unchanged_after_call():
    from tinygrad.codegen import to_program_cache
    from tinygrad.helpers import BEAM, CACHELEVEL, DEV, JIT, NOOPT, PARALLEL, ContextVar
    before = {k: repr(v.value) for k, v in ContextVar._cache.items()}
    progs = set(to_program_cache)
    rep = inspect_function(matmul_relu, [(4, 4), (4, 4)], device="CPU", jit=True, beam=1, noopt=True, runs=3)
    assert rep.jit is not None and rep.jit.error is None
    after = {k: repr(v.value) for k, v in ContextVar._cache.items()}
    # ContextVars first created by a lazily imported tinygrad module may appear; none may change
    assert {k: after[k] for k in before} == before
    assert (BEAM.value, NOOPT.value) == (int(before["BEAM"]), int(before["NOOPT"]))
    assert repr(CACHELEVEL.value) == before["CACHELEVEL"] and repr(PARALLEL.value) == before["PARALLEL"]
    assert repr(JIT.value) == before["JIT"] and repr(DEV.value) == before["DEV"]
    assert progs <= set(to_program_cache)  # the set-aside program cache was put back


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.tags, self.urls = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data):
        self.text.append(data)


def test_html_parses_and_holds_every_kernel(base):
    page = base.to_html()
    p = _Collect()
    p.feed(page)
    p.close()
    text = "".join(p.text)
    assert p.tags.count("details") == len(base.kernels) and "table" in p.tags
    assert "script" not in p.tags and "link" not in p.tags and not p.urls  # self-contained
    for k in base.kernels:
        assert k.name in text
        assert k.source in text  # escaped in the page, the parser gives the C code back
    assert "Lidx1 < " in text and "Lidx1 < " not in page  # '<' in C loops is escaped


def test_to_dict_is_json_and_tables(base):
    d = base.to_dict()
    back = json.loads(json.dumps(d, allow_nan=False))
    assert "outputs" not in back and back["kernel_count"] == base.kernel_count
    assert back["kernels"][0]["source"] == base.kernels[0].source
    rows = base.summary_table()
    assert all(set(r) == {"metric", "value", "text"} for r in rows)
    assert {r["metric"]: r["value"] for r in rows}["kernel_count"] == float(base.kernel_count)
    assert len(base.kernel_table()) == len(base.kernels) and "source" not in base.kernel_table()[0]


def test_several_outputs_and_kernels():
    rep = inspect_function(lambda a, b: ((a @ b).softmax(-1), (a * 2).sum()), [(8, 16), (16, 8)], device="CPU", runs=1)
    a, b = inputs_like_engine([(8, 16), (16, 8)])
    assert rep.kernel_count >= 2 and rep.output_shapes == [[8, 8], []]
    np.testing.assert_allclose(rep.outputs[1], (a * 2).sum(), rtol=1e-4, atol=1e-3)
    e = np.exp(a @ b - (a @ b).max(-1, keepdims=True))
    np.testing.assert_allclose(rep.outputs[0], e / e.sum(-1, keepdims=True), rtol=1e-4, atol=1e-5)


def test_nothing_to_schedule_and_jit_failure_are_diagnosed():
    rep = inspect_function(lambda a: a, [(4,)], device="CPU", jit=True)
    codes = {d.code for d in rep.diagnostics}
    assert rep.kernel_count == 0 and "no_kernels" in codes and "jit_failed" in codes
    assert rep.jit is not None and "JIT" in (rep.jit.error or "")
    json.dumps(rep.to_dict(), allow_nan=False)


@pytest.mark.parametrize("kwargs, param", [
    (dict(fn=matmul_relu, input_shapes=[(4, 0)]), "input_shapes"),
    (dict(fn=matmul_relu, input_shapes="16x32"), "input_shapes"),
    (dict(fn=matmul_relu, input_shapes=SHAPES, beam=-1), "beam"),
    (dict(fn=matmul_relu, input_shapes=SHAPES, runs=0), "runs"),
    (dict(fn=matmul_relu, input_shapes=SHAPES, dtype="floaty"), "dtype"),
    (dict(fn=lambda a, b: 3, input_shapes=SHAPES), "fn"),
    (dict(fn=matmul_relu, input_shapes=[(4, 3), (4, 3)]), "fn"),
])
def test_bad_arguments_name_the_parameter(kwargs, param):
    fn = kwargs.pop("fn")
    with pytest.raises(GraphError) as ei:
        inspect_function(fn, device="CPU", **kwargs)
    assert ei.value.param == param and ei.value.fix


def test_int_inputs():
    rep = inspect_function(lambda a: a + 1, [(5,)], device="CPU", dtype="int32")
    assert rep.outputs[0].dtype == np.int32 and (rep.outputs[0] >= 1).all()


def test_tinygrad_internals_still_where_expected():
    # canary for a tinygrad upgrade: the internals the _tg_* adapters use (tinygrad 0.14.0)
    import tinygrad.codegen as codegen
    import tinygrad.engine.realize as realize
    from tinygrad import Tensor, TinyJit
    from uop_engine import inspect_uops as iu
    assert isinstance(codegen.to_program_cache, dict)
    for name in ("compile_linear", "run_linear", "estimate_uop", "get_call_name", "get_call_arg_uops"):
        assert callable(getattr(realize, name)), name
    assert hasattr(Tensor, "linear_with_vars")
    jitted = TinyJit(lambda x: x * 2)
    assert hasattr(jitted, "cnt") and hasattr(jitted, "captured")
    assert "CPU" in iu._tg_known_devices() and "CLANG" in iu._tg_renderer_names("CPU")


def test_kernels_run_inside_fn_are_diagnosed():
    def eager(a):
        a.sum().item()  # runs a kernel while fn builds its graph
        return a * 2
    rep = inspect_function(eager, [(4,)], device="CPU", runs=1)
    assert "eager_kernels" in {d.code for d in rep.diagnostics} and rep.kernel_count == 1


def _stop_at(n: int):
    """should_stop that says no n times, then yes; counts its calls."""
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > n
    return should_stop, calls


def test_cancel_is_checked_before_and_after_the_beam_search():
    from tinygrad.helpers import BEAM, NOOPT
    from uop_engine.inspect_uops import InspectCancelled
    shapes = [(4, 4), (4, 4)]
    stop, calls = _stop_at(10 ** 6)
    rep = inspect_function(matmul_relu, shapes, device="CPU", beam=1, runs=1, should_stop=stop)
    n_checks, n_kernels = len(calls), len(rep.kernels)
    # inputs, UOp graph, before BEAM, one per kernel while compiling, after BEAM (no JIT here)
    assert n_checks == 4 + n_kernels
    phases = []
    for n in range(n_checks):
        stop, _ = _stop_at(n)
        with pytest.raises(InspectCancelled) as ei:
            inspect_function(matmul_relu, shapes, device="CPU", beam=1, runs=1, should_stop=stop)
        phases.append(ei.value.phase)
        assert (BEAM.value, NOOPT.value) == (0, 0)  # tinygrad's settings are restored after a cancel
    assert phases[:3] == ["making the inputs", "building the UOp graph", "compiling (BEAM=1 search)"]
    assert phases[3].startswith("compiling kernel 1 of") and phases[-1] == "running the kernels (BEAM search done)"
    assert str(ei.value) == "UOp Inspect cancelled before running the kernels (BEAM search done)"


def test_network_picture_goes_first_in_the_html(base):
    from uop_engine import GraphBuilder
    from uop_engine.graph_view import graph_svg
    g = GraphBuilder("net")
    g.relu(g.linear(g.input((4,)), out_features=2))
    page = base.to_html(network_svg=graph_svg(g.build()))
    p = _Collect()
    p.feed(page)
    p.close()
    assert "svg" in p.tags and "script" not in p.tags and not p.urls
    assert page.index("<h2>Network</h2>") < page.index("<svg") < page.index("<h2>Diagnostics</h2>")
    assert "linear_1" in "".join(p.text) and "<h2>Network</h2>" not in base.to_html()
