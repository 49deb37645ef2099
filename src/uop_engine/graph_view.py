"""A picture of a graph for HTML views: an inline SVG (no scripts, no external files) with one box
per node (id, op, output shape, parameter count) in layers from the inputs down, and an arrow per
connection (labelled ':k' when it takes output k of a multi-output node).

Blocks stay one box, as the user built them; hovering a box shows its parameters.
"""
from __future__ import annotations

import html
import math

from .graph import Graph, split_ref

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 210, 54, 26, 46, 12
_FILL = {"input": "#e3f0ff", "output": "#e6f6e6"}


def _shape_text(a2, a3, ref: str) -> tuple[str, str]:
    """'N x 1 x 8 x 8' (N = batch-dependent axis) and dtype of a user-graph ref."""
    t2, t3 = a2.type_of(ref), a3.type_of(ref)
    dims = ["N" if x != y else str(x) for x, y in zip(t2.shape, t3.shape)]
    return " x ".join(dims) or "scalar", t2.dtype


def _layers(graph: Graph) -> list[list[str]]:
    """Nodes by depth (longest path from a source), each layer ordered by the mean position of its
    inputs in the layers above, which keeps most arrows short and uncrossed."""
    depth: dict[str, int] = {}
    order = graph.topo_order()
    for n in order:
        depth[n.id] = max((depth[split_ref(r)[0]] + 1 for r in n.inputs), default=0)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in order:
        layers[depth[n.id]].append(n.id)
    pos: dict[str, float] = {}
    for layer in layers:
        def centre(nid: str) -> float:
            srcs = [pos[split_ref(r)[0]] for r in graph.node(nid).inputs]
            return sum(srcs) / len(srcs) if srcs else len(pos)
        layer.sort(key=centre)
        for i, nid in enumerate(layer):
            pos[nid] = i - (len(layer) - 1) / 2
    return layers


def graph_svg(graph: Graph, *, title: str | None = None) -> str:
    """The graph as an inline <svg> element (shapes inferred; raises GraphError like analyze)."""
    from .infer import analyze
    a2, a3 = analyze(graph, 2), analyze(graph, 3)
    e = html.escape
    layers = _layers(graph)
    widest = max((len(layer) for layer in layers), default=1)
    width = PAD * 2 + widest * BOX_W + (widest - 1) * GAP_X
    height = PAD * 2 + len(layers) * BOX_H + max(len(layers) - 1, 0) * GAP_Y
    xy: dict[str, tuple[float, float]] = {}
    row_of: dict[str, int] = {}
    for row, layer in enumerate(layers):
        left = (width - (len(layer) * BOX_W + (len(layer) - 1) * GAP_X)) / 2
        for col, nid in enumerate(layer):
            xy[nid] = (left + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
            row_of[nid] = row
    right_edge = [max(xy[nid][0] for nid in layer) + BOX_W for layer in layers]
    n_params = {}
    for aid, ws in a2.weights.items():
        top = a2.origin.get(aid, aid)
        n_params[top] = n_params.get(top, 0) + sum(math.prod(w.shape) for w in ws.values() if w.trainable)
    edges, boxes, lanes = [], [], 0
    for n in graph.nodes:
        x1, y1 = xy[n.id]
        for i, r in enumerate(n.inputs):
            src, k = split_ref(r)
            x0, y0 = xy[src]
            # spread several arrows into one box over its top edge, in port order
            tx = x1 + BOX_W * (i + 1) / (len(n.inputs) + 1)
            sx, sy, ty = x0 + BOX_W / 2, y0 + BOX_H, y1
            skipped = range(row_of[src] + 1, row_of[n.id])
            if skipped:  # a skip connection runs down a lane right of the layers it passes, not through them
                lanes += 1
                lx = max(right_edge[r_] for r_ in skipped) + GAP_X / 2 + 10 * (lanes - 1)
                width = max(width, lx + PAD)
                a, b = sy + GAP_Y / 2, ty - GAP_Y / 2
                d = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{a:.1f} {lx:.1f},{sy:.1f} {lx:.1f},{a:.1f} L{lx:.1f},{b:.1f} " \
                    f"C{lx:.1f},{ty:.1f} {tx:.1f},{b:.1f} {tx:.1f},{ty - 2:.1f}"
            else:
                mid = (sy + ty) / 2
                d = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{mid:.1f} {tx:.1f},{mid:.1f} {tx:.1f},{ty - 2:.1f}"
            edges.append(f'<path class="edge" d="{d}" marker-end="url(#arrow)"><title>{e(r)} -> {e(n.id)} '
                         f'(input {i})</title></path>')
            if k:  # next to the arrow head: several outputs leave one point of the source box
                edges.append(f'<text class="port" x="{tx + 4:.1f}" y="{ty - 6:.1f}">output {k}</text>')
        shape, dtype = _shape_text(a2, a3, n.id)
        extra = f", {n_params[n.id]:,} params" if n_params.get(n.id) else ""
        tip = e(f"{n.id} ({n.op})\n" + "\n".join(f"{k} = {v}" for k, v in n.params.items()))
        fill = _FILL.get(n.op, "#fff7e0" if n.op.startswith("user_") else "#ffffff")
        # the op sits beside the id when both fit the box (about 27 characters), else on the last line
        # an id made from the op ('linear_2') already names it; a long id leaves no room beside it
        op_in_id = n.id.startswith(n.op) and len(n.id) <= 27
        op_beside = not op_in_id and len(n.id) + len(n.op) <= 25
        meta = ("" if op_in_id or op_beside else f"{n.op}, ") + dtype + extra
        boxes.append(f'<g class="node"><title>{tip}</title>'
                     f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}"/>'
                     f'<text class="id" x="{x1 + 8:.1f}" y="{y1 + 17:.1f}">{e(_clip(n.id, 27))}</text>'
                     + (f'<text class="op" x="{x1 + BOX_W - 8:.1f}" y="{y1 + 17:.1f}" text-anchor="end">{e(n.op)}</text>'
                        if op_beside else "")
                     + f'<text class="shape" x="{x1 + 8:.1f}" y="{y1 + 35:.1f}">{e(_clip(shape, 30))}</text>'
                     f'<text class="meta" x="{x1 + 8:.1f}" y="{y1 + 49:.1f}">{e(_clip(meta, 36))}</text></g>')
    label = e(title or graph.name)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="network" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{label}">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#556"/></marker></defs>'
            f"<style>{_SVG_CSS}</style><title>{label}</title>{''.join(edges)}{''.join(boxes)}</svg>")


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n - 1] + "\u2026"


_SVG_CSS = (".edge{fill:none;stroke:#556;stroke-width:1.3}.node rect{stroke:#667;stroke-width:1}"
            "text{font-family:sans-serif;font-size:12px;fill:#222}.id{font-weight:bold}.op{fill:#236}"
            ".shape{font-family:monospace}.meta{font-size:11px;fill:#555}.port{font-size:10px;fill:#a40}")
