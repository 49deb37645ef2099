"""UOp Inspect for a whole TinyUOp graph (the engine side of the UOp Inspect node)."""
from __future__ import annotations

from .graph import Graph
from .infer import analyze


def inspect_graph(graph: Graph, batch: int = 1, *, seed: int = 0, device: str | None = None, jit: bool = False,
                  beam: int = 0, noopt: bool = False, runs: int = 2, should_stop=None):
    """Compile `graph` and report its UOps, kernels (with sources and times) and compile time
    for one forward pass on a random batch of `batch` samples. Returns an InspectReport.
    `should_stop()` is asked between phases and kernels (InspectCancelled when it says yes)."""
    from .compile import compile_graph
    from .inspect_uops import InspectCancelled, inspect_function
    from .errors import GraphError
    if batch < 1:
        raise GraphError(f"batch size {batch} must be at least 1", param="batch")
    an = analyze(graph, batch)
    inputs = graph.inputs()
    dtypes = {an.params[n.id]["dtype"] for n in inputs}
    model = compile_graph(graph, seed=seed, device=device)
    if should_stop is not None and should_stop():
        raise InspectCancelled("building the model")
    shapes = [an.types[n.id][0].shape for n in inputs]
    dtype = dtypes.pop() if len(dtypes) == 1 else "float32"
    return inspect_function(lambda *xs: model(*xs), shapes, device=device, jit=jit, beam=beam, noopt=noopt,
                            dtype=dtype, seed=seed, runs=runs, should_stop=should_stop)
