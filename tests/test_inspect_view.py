"""The network picture of the UOp Inspect view (inline SVG: boxes per node with op and shapes, an
arrow per connection, skip connections beside the layers they pass) and the UOp Inspect node:
picture in its view, cancellation between phases."""
import re
import xml.etree.ElementTree as ET

import pytest

from knime_harness import cancel_checks, load_extension, make_exec_context, progress, run_node
from uop_engine import GraphBuilder
from uop_engine.graph_view import BOX_H, BOX_W, graph_svg

load_extension()
from nodes.graph_nodes import GraphInputNode  # noqa: E402
from nodes.inspect_node import UOpInspectNode  # noqa: E402
from nodes.op_nodes import OP_NODE_FACTORIES as OPS  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def demo_graph():
    g = GraphBuilder("demo")
    x = g.input((4, 8))
    stem = g.linear(x, out_features=8, id="stem")
    q, k, v = (g.linear(stem, out_features=8) for _ in range(3))
    sp = g.split(g.scaled_dot_product_attention(q, k, v), sizes=[4], axis=2)
    h = g.add("add", g.relu(sp), g.sigmoid(f"{sp}:1"))
    g.output(g.add("add", h, g.reshape(g.linear(stem, out_features=4), shape=[-1, 4, 4])), name="y")
    return g.build()


def boxes_and_edges(svg: str):
    root = ET.fromstring(svg)  # well-formed XML, so browsers (and KNIME's view) draw it
    boxes = {}
    for node in root.iter(f"{SVG}g"):
        rect, texts = node.find(f"{SVG}rect"), ["".join(t.itertext()) for t in node.iter(f"{SVG}text")]
        nid = node.find(f"{SVG}title").text.split(" (")[0]  # the tooltip names the node in full
        boxes[nid] = (float(rect.get("x")), float(rect.get("y")), texts)
    edges = [(p.find(f"{SVG}title").text, p.get("d")) for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    return root, boxes, edges


def test_every_node_is_a_box_with_op_shape_and_parameters():
    g = demo_graph()
    root, boxes, edges = boxes_and_edges(graph_svg(g))
    assert set(boxes) == set(g.ids())
    assert boxes["stem"][2] == ["stem", "linear", "N x 4 x 8", "float32, 72 params"]
    assert boxes["split_1"][2] == ["split_1", "N x 4 x 4", "float32"]  # an id made from the op: op not repeated
    assert boxes["output_1"][2][1] == "N x 4 x 4"
    sdpa = boxes["scaled_dot_product_attention_1"][2]
    assert sdpa[0].endswith("\u2026") and sdpa[-1].startswith("scaled_dot_product_attention")  # long: op below
    assert len(edges) == sum(len(n.inputs) for n in g.nodes)
    text = ET.tostring(root, encoding="unicode")
    assert "script" not in text and "href" not in text and "output 1" in text  # split's second output labelled


def test_arrows_run_from_source_bottom_to_target_top_and_skips_pass_beside_boxes():
    g = demo_graph()
    _, boxes, edges = boxes_and_edges(graph_svg(g))
    for title, d in edges:
        src, dst = re.match(r"(\S+) -> (\S+) ", title).groups()
        src = src.partition(":")[0]
        nums = [float(v) for v in re.findall(r"-?\d+\.?\d*", d)]
        (sx, sy), (tx, ty) = nums[:2], nums[-2:]
        bx, by, _ = boxes[src]
        assert bx <= sx <= bx + BOX_W and sy == pytest.approx(by + BOX_H)
        cx, cy, _ = boxes[dst]
        assert cx < tx < cx + BOX_W and ty == pytest.approx(cy - 2) and cy > by
        if " L" in d:  # a skip connection: its vertical run is right of every box of the rows it passes
            lane = float(re.search(r" L(-?\d+\.?\d*),", d).group(1))
            passed = [x for x, y, _ in boxes.values() if by + BOX_H < y < cy]
            assert passed and all(lane > x + BOX_W for x in passed)
    assert any(" L" in d for _, d in edges)  # stem -> linear_4 skips the attention rows


def _inspect_input():
    x = run_node(GraphInputNode, {"shape": "1,8,8"}).outputs[0]
    h = run_node(OPS["conv2d"], {"out_channels": 4}, [x]).outputs[0]
    return run_node(OPS["relu"], {}, [h]).outputs[0]


def test_inspect_view_starts_with_the_network_picture():
    h = _inspect_input()
    res = run_node(UOpInspectNode, {"batch": 2}, [h])
    page = res.view.html
    assert "<h2>Network</h2>" in page and page.index("<svg") < page.index("<h2>Diagnostics</h2>")
    svg = page[page.index("<svg"):page.index("</svg>") + 6]
    _, boxes, edges = boxes_and_edges(svg)
    assert set(boxes) == {"input_1", "conv2d_1", "relu_1"} and len(edges) == 2
    assert boxes["conv2d_1"][2] == ["conv2d_1", "N x 4 x 6 x 6", "float32, 40 params"]  # 3x3, no padding


@pytest.mark.parametrize("checks_before_cancel, reached", [
    (0, None),                                        # cancelled before anything ran
    (2, "Compiling the graph with tinygrad (BEAM=1)"),  # after the picture and the model, before tinygrad runs
    (5, "Compiling the graph with tinygrad (BEAM=1)"),  # at the check right before the BEAM search
])
def test_inspect_node_stops_between_phases_when_cancelled(checks_before_cancel, reached):
    h = _inspect_input()
    ctx = make_exec_context(UOpInspectNode, cancel_after=checks_before_cancel)
    with pytest.raises(RuntimeError, match="canceled"):
        run_node(UOpInspectNode, {"beam": 1}, [h], context=ctx)
    messages = [m for _, m in progress(ctx)]
    assert cancel_checks(ctx) == checks_before_cancel + 1  # stopped at the first check that said yes
    assert (reached in messages) if reached else messages == []
    assert "Writing the report" not in messages
