"""UOp Inspect for a whole TinyUOp graph (the engine side of the UOp Inspect node)."""
from __future__ import annotations

from .graph import Graph
from .infer import analyze


def inspect_graph(graph: Graph, batch: int = 1, *, seed: int = 0, device: str | None = None, jit: bool = False,
                  beam: int = 0, noopt: bool = False, runs: int = 2):
    """Compile `graph` and report its UOps, kernels (with sources and times) and compile time
    for one forward pass on a random batch of `batch` samples. Returns an InspectReport."""
    from .compile import compile_graph
    from .inspect_uops import inspect_function
    from .errors import GraphError
    if batch < 1:
        raise GraphError(f"batch size {batch} must be at least 1", param="batch")
    an = analyze(graph, batch)
    inputs = graph.inputs()
    dtypes = {an.params[n.id]["dtype"] for n in inputs}
    model = compile_graph(graph, seed=seed, device=device)
    shapes = [an.types[n.id][0].shape for n in inputs]
    dtype = dtypes.pop() if len(dtypes) == 1 else "float32"
    return inspect_function(lambda *xs: model(*xs), shapes, device=device, jit=jit, beam=beam, noopt=noopt,
                            dtype=dtype, seed=seed, runs=runs)
