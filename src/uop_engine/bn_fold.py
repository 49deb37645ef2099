"""BatchNorm folding for inference: `fold_batchnorm(model)` (re-exported by uop_engine.predict)."""
from __future__ import annotations

import numpy as np

_FOLDABLE = ("conv1d", "conv2d", "linear")


def fold_batchnorm(model):
    """An inference-only copy of `model` with each BatchNorm that directly follows a Conv1D,
    Conv2D or Linear (and is that layer's only consumer) folded into the layer's weights:
    W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(running_var + eps).
    Works on the block-expanded graph, so BatchNorms inside Conv/Residual blocks fold too."""
    from .compile import compile_graph
    from .graph import split_ref
    from .infer import analyze
    an = analyze(model.graph)
    g = an.atomic.copy()
    w = dict(model.numpy_weights())
    by_id = {n.id: n for n in g.nodes}
    users: dict[str, int] = {}
    for n in g.nodes:
        for r in n.inputs:
            users[split_ref(r)[0]] = users.get(split_ref(r)[0], 0) + 1
    rename: dict[str, str] = {}
    for n in list(g.nodes):
        if n.op != "batch_norm" or len(n.inputs) != 1:
            continue
        src = by_id[split_ref(n.inputs[0])[0]]
        if src.op not in _FOLDABLE or users.get(src.id) != 1 or src.id in rename.values():
            continue
        eps = an.params[n.id]["eps"]
        scale = w[f"params.{n.id}.weight"] / np.sqrt(w[f"params.{n.id}.running_var"] + eps)
        wk = f"params.{src.id}.weight"
        # conv weights are (out, in, k...), linear (out, in): the output channel is axis 0 for both
        w[wk] = (w[wk] * scale.reshape((-1,) + (1,) * (w[wk].ndim - 1))).astype(np.float32)
        bias = w.get(f"params.{src.id}.bias", np.zeros_like(scale))
        w[f"params.{src.id}.bias"] = ((bias - w[f"params.{n.id}.running_mean"]) * scale
                                      + w[f"params.{n.id}.bias"]).astype(np.float32)
        src.params = dict(src.params, bias=True)
        for k in ("weight", "bias", "running_mean", "running_var"):
            w.pop(f"params.{n.id}.{k}", None)
        g.nodes.remove(n)
        rename[n.id] = src.id
    if not rename:
        return model
    for n in g.nodes:
        n.inputs = [rename.get(split_ref(r)[0], split_ref(r)[0]) + (f":{split_ref(r)[1]}" if ":" in r else "")
                    for r in n.inputs]
    outs = [rename.get(split_ref(r)[0], split_ref(r)[0]) for r in an.outputs]
    if [split_ref(r)[0] for r in g.output_refs()] != outs:  # keep the graph's outputs and their order
        for i, r in enumerate(outs):
            g.nodes.append(type(g.nodes[0])(f"__out{i}", "output", {"name": an.output_names[i]}, [r]))
    g.name = model.graph.name + " (BN folded)"
    return compile_graph(g, device=model.device, weights=w)
