"""Double of knime.api.views: NodeView and the view_* helpers a node returns as its view.

HTML documents are built like KNIME's (image views embed the image; the KNIME UI JavaScript
is not available here, as in KNIME outside the Analytics Platform). matplotlib/plotly are
imported only when their helper is called.
"""
from __future__ import annotations

import base64
import io
from typing import Callable, Optional, Union

_SVG_HTML = ('<!DOCTYPE html>\n<html><head><script type="text/javascript">{js}</script></head>'
             '<body><div id="view-container">{svg}</div></body></html>')
_IMG_HTML = ('<!DOCTYPE html>\n<html><head><script type="text/javascript">{js}</script></head><body>'
             '<img id="view-container" src="data:image/{kind};base64,{b64}" style="width: 100%; height: 100%;" />'
             '</body></html>')
KNIME_UI_EXT_SERVICE_JS = ""  # the KNIME UI extension service is only available inside KNIME AP


class NodeView:
    """A view: a self-contained HTML document plus, for reports, an SVG/PNG rendering."""

    def __init__(self, html: str, svg_or_png: Optional[Union[str, bytes]] = None,
                 render_fn: Optional[Callable[[], Union[str, bytes]]] = None,
                 can_be_used_in_report: bool = False) -> None:
        self.html = html
        self._svg_or_png = svg_or_png
        self._render_fn = render_fn
        self.can_be_used_in_report = can_be_used_in_report

    def render(self) -> Union[str, bytes]:
        if self._svg_or_png is not None:
            return self._svg_or_png
        if self._render_fn is not None:
            self._svg_or_png = self._render_fn()
            return self._svg_or_png
        raise NotImplementedError("cannot generate an SVG or PNG image from the view")


def view(obj) -> NodeView:
    """Best-effort view of an HTML/SVG string, PNG/JPEG bytes, matplotlib/plotly figure or
    any object with IPython `_repr_*_` methods (ValueError otherwise)."""
    if type(obj) is str:
        if obj.lstrip()[:15].lower() == "<!doctype html>":
            return view_html(obj)
        if "<svg" in obj[:256] and 'xmlns="http://www.w3.org/2000/svg"' in obj[:256]:
            return view_svg(obj)
    if type(obj) is bytes:
        if obj.startswith(b"\211PNG\r\n\032\n"):
            return view_png(obj)
        if obj.startswith(b"\xff\xd8\xff") and obj.endswith(b"\xff\xd9"):
            return view_jpeg(obj)
    for helper in (view_matplotlib, view_plotly):
        try:
            return helper(obj)
        except (ImportError, TypeError):
            pass
    try:
        return view_ipy_repr(obj)
    except ValueError:
        raise ValueError(f"no view could be created for {obj}") from None


def view_ipy_repr(obj) -> NodeView:
    def plain(data):
        return data[0] if isinstance(data, tuple) and len(data) == 2 else data

    renderers = [(f"_repr_{k}_", fn) for k, fn in (("svg", view_svg), ("png", view_png), ("jpeg", view_jpeg))]
    render = next(((getattr(obj, name), fn) for name, fn in renderers if hasattr(obj, name)), (None, None))
    if hasattr(obj, "_repr_html_"):
        return view_html(plain(obj._repr_html_()), render_fn=render[0])
    if render[0] is not None:
        return render[1](plain(render[0]()))
    raise ValueError("no _repr_*_ function is implemented by obj")


def view_html(html: str, svg_or_png: Optional[Union[str, bytes]] = None,
              render_fn: Optional[Callable[[], Union[str, bytes]]] = None,
              can_be_used_in_report: bool = False) -> NodeView:
    return NodeView(html, svg_or_png=svg_or_png, render_fn=render_fn, can_be_used_in_report=can_be_used_in_report)


def view_svg(svg: str) -> NodeView:
    return NodeView(_SVG_HTML.format(svg=svg, js=KNIME_UI_EXT_SERVICE_JS), svg_or_png=svg, can_be_used_in_report=True)


def view_png(png: bytes) -> NodeView:
    b64 = base64.b64encode(png).decode("ascii")
    return NodeView(_IMG_HTML.format(kind="png", b64=b64, js=KNIME_UI_EXT_SERVICE_JS), svg_or_png=png,
                    can_be_used_in_report=True)


def view_jpeg(jpeg: bytes) -> NodeView:
    b64 = base64.b64encode(jpeg).decode("ascii")
    return NodeView(_IMG_HTML.format(kind="jpeg", b64=b64, js=KNIME_UI_EXT_SERVICE_JS), svg_or_png=jpeg,
                    can_be_used_in_report=True)


def view_matplotlib(fig=None, format: str = "png") -> NodeView:
    """PNG or SVG view of a matplotlib figure (the current one if None); closes the figure."""
    import matplotlib.figure
    import matplotlib.pyplot as plt
    if format not in ("png", "svg"):
        raise ValueError(f'unsupported format for matplotlib view: {format}. Use "png" or "svg".')
    if fig is None:
        fig = plt.gcf()
    elif not isinstance(fig, matplotlib.figure.Figure):
        raise TypeError("the given object is not a matplotlib figure")
    buf = io.BytesIO() if format == "png" else io.StringIO()
    fig.savefig(buf, format=format)
    plt.close(fig)  # matplotlib keeps every figure alive until closed
    return view_png(buf.getvalue()) if format == "png" else view_svg(buf.getvalue())


def view_seaborn() -> NodeView:
    return view_matplotlib()


def view_plotly(fig) -> NodeView:
    import plotly.graph_objects
    if not isinstance(fig, plotly.graph_objects.Figure):
        raise TypeError("the given figure is not a plotly figure")
    return view_html(fig.to_html(), render_fn=lambda: fig.to_image("png"))
