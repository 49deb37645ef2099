"""Node views: HTML that KNIME shows, plus an optional SVG/PNG rendering for reports."""
from __future__ import annotations

import base64
import io
from typing import Any, Callable, Optional, Union

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class NodeView:
    """What a node's output view shows (`html`); `render()` gives the picture for reports."""

    def __init__(self, html: str, svg_or_png: Optional[Union[str, bytes]] = None,
                 render_fn: Optional[Callable[[], Union[str, bytes]]] = None) -> None:
        if not isinstance(html, str):
            raise TypeError(f"a view's html must be a str, not {type(html).__name__}")
        self.html = html
        self._svg_or_png = svg_or_png
        self._render_fn = render_fn

    def render(self) -> Union[str, bytes, None]:
        return self._render_fn() if self._render_fn is not None else self._svg_or_png

    def __repr__(self) -> str:
        return f"NodeView({len(self.html)} characters of HTML)"


def _page(body: str) -> str:
    return f"<!DOCTYPE html>\n<html><body style=\"margin:0\">{body}</body></html>"


def view_html(html: str, svg_or_png: Optional[Union[str, bytes]] = None,
              render_fn: Optional[Callable[[], Union[str, bytes]]] = None) -> NodeView:
    return NodeView(html, svg_or_png, render_fn)


def view_png(data: bytes) -> NodeView:
    if not isinstance(data, (bytes, bytearray)) or not bytes(data).startswith(_PNG_MAGIC):
        raise ValueError("view_png needs the bytes of a PNG image (they start with the PNG signature)")
    b64 = base64.b64encode(bytes(data)).decode("ascii")
    return NodeView(_page(f'<img style="max-width:100%" src="data:image/png;base64,{b64}"/>'), bytes(data))


def view_jpeg(data: bytes) -> NodeView:
    if not isinstance(data, (bytes, bytearray)) or not bytes(data).startswith(b"\xff\xd8"):
        raise ValueError("view_jpeg needs the bytes of a JPEG image")
    b64 = base64.b64encode(bytes(data)).decode("ascii")
    return NodeView(_page(f'<img style="max-width:100%" src="data:image/jpeg;base64,{b64}"/>'))


def view_svg(svg: str) -> NodeView:
    if not isinstance(svg, str) or "<svg" not in svg:
        raise ValueError("view_svg needs SVG markup as a str (containing an <svg> element)")
    return NodeView(_page(svg), svg)


def view_matplotlib(fig: Any = None, format: str = "png") -> NodeView:
    """A matplotlib figure (default: pyplot's current figure) as PNG or SVG."""
    if format not in ("png", "svg"):
        raise ValueError(f"view_matplotlib format is 'png' or 'svg', not {format!r}")
    if fig is None:
        import matplotlib.pyplot as plt
        fig = plt.gcf()
    if not hasattr(fig, "savefig"):
        raise TypeError(f"view_matplotlib needs a matplotlib Figure, not {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format=format)
    data = buf.getvalue()
    return view_png(data) if format == "png" else view_svg(data.decode("utf-8"))


def view_seaborn(fig: Any = None, format: str = "png") -> NodeView:
    return view_matplotlib(fig, format)


def view_plotly(fig: Any) -> NodeView:
    """A plotly figure as interactive HTML (plotly.js inlined)."""
    if not hasattr(fig, "to_html"):
        raise TypeError(f"view_plotly needs a plotly Figure, not {type(fig).__name__}")
    return NodeView(fig.to_html(include_plotlyjs=True, full_html=True))


def view(obj: Any) -> NodeView:
    """Pick the view for an object: a NodeView, matplotlib or plotly figure, PNG bytes or HTML/SVG text."""
    if isinstance(obj, NodeView):
        return obj
    if hasattr(obj, "savefig"):
        return view_matplotlib(obj)
    if hasattr(obj, "to_html") and hasattr(obj, "to_dict"):
        return view_plotly(obj)
    if isinstance(obj, (bytes, bytearray)):
        return view_png(obj)
    if isinstance(obj, str):
        return view_svg(obj) if obj.lstrip().startswith("<svg") else view_html(obj)
    raise TypeError(f"no view for a {type(obj).__name__}")
