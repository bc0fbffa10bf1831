"""The topology drawing as SVG: the same markup for ``topology --format svg``, the HTML
report and the live player, which find nodes and edges by ``data-node`` / ``data-edge``.

Self-contained (its own ``<style>``), so the file opens alone in any browser; the
player's stylesheet adds the animation states (``.active``, ``.failed``) on top.
"""

from __future__ import annotations

from html import escape

from ._geometry import Rect
from ._layout import LEGEND, Drawing, EdgeRoute, NodeBox

__all__ = ["drawing_svg"]

_STYLE = """
.tp-bg{fill:#f8fafc}
.tp-frame{fill:#faf5ff;stroke:#a855f7;stroke-width:1;stroke-dasharray:5 4}
.tp-frame-title,.tp-legend{font:11px system-ui,-apple-system,'Segoe UI',sans-serif;fill:#64748b}
.tp-node rect,.tp-node path{stroke-width:1.4}
.tp-node text{font:600 12px system-ui,-apple-system,'Segoe UI',sans-serif;fill:#0f172a;
  text-anchor:middle;pointer-events:none}
.tp-kind-database text{font-size:11px;font-weight:500;fill:#334155}
.tp-kind-client rect{fill:#ecfeff;stroke:#0891b2}
.tp-kind-gateway rect{fill:#eef2ff;stroke:#4f46e5}
.tp-kind-service rect{fill:#eff6ff;stroke:#2563eb}
.tp-kind-database path{fill:#f1f5f9;stroke:#64748b}
.tp-kind-cache path{fill:#fef2f2;stroke:#dc2626}
.tp-kind-broker rect{fill:#fffbeb;stroke:#d97706}
.tp-kind-external rect{fill:#faf5ff;stroke:#9333ea}
.tp-edge{fill:none;stroke:#94a3b8;stroke-width:1.4}
.tp-proto-kafka{stroke:#d97706;stroke-dasharray:6 4}
.tp-proto-redis,.tp-proto-postgresql{stroke:#94a3b8;stroke-dasharray:2 3;stroke-width:1.2}
.tp-external{stroke:#a855f7}
"""


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _cylinder(r: Rect) -> str:
    """A database/cache drum: a box with an elliptic top and bottom."""
    ry = min(5.0, r.h / 4)
    x, y, w, h = r.x, r.y, r.w, r.h
    return (
        f'<path d="M{_f(x)},{_f(y + ry)} a{_f(w / 2)},{_f(ry)} 0 0,1 {_f(w)},0 '
        f"v{_f(h - 2 * ry)} a{_f(w / 2)},{_f(ry)} 0 0,1 {_f(-w)},0 z "
        f'M{_f(x)},{_f(y + ry)} a{_f(w / 2)},{_f(ry)} 0 0,0 {_f(w)},0"/>'
    )


def _marker(marker_id: str, size: float, fill: str) -> str:
    """An arrowhead of a fixed size whatever the line's width (``userSpaceOnUse``)."""
    return (
        f'<marker id="{marker_id}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="{_f(size)}" markerHeight="{_f(size)}" markerUnits="userSpaceOnUse" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{fill}"/></marker>'
    )


def _node(node: NodeBox) -> str:
    r = node.rect
    if node.kind in ("database", "cache"):
        shape = _cylinder(r)
    else:
        radius = {"client": r.h / 2, "broker": 4.0}.get(node.kind, 7.0)
        shape = (
            f'<rect x="{_f(r.x)}" y="{_f(r.y)}" width="{_f(r.w)}" height="{_f(r.h)}" '
            f'rx="{_f(radius)}"/>'
        )
    label = node.label
    title = escape(
        f"{node.name} ({node.kind})" + (f": {node.description}" if node.description else "")
    )
    return (
        f'<g class="tp-node tp-kind-{node.kind}" data-node="{escape(node.name)}">'
        f"<title>{title}</title>{shape}"
        f'<text x="{_f(label.x)}" y="{_f(label.y)}">{escape(label.text)}</text></g>'
    )


def _edge(edge: EdgeRoute) -> str:
    d = "M" + " L".join(f"{_f(x)},{_f(y)}" for x, y in edge.points)
    classes = f"tp-edge tp-proto-{edge.protocol}" + (" tp-external" if edge.external else "")
    marker = "tp-arrow-store" if edge.protocol in ("redis", "postgresql") else "tp-arrow"
    what = f"{edge.source} → {edge.target} ({edge.protocol}" + (
        ", external)" if edge.external else ")"
    )
    if edge.carries:
        what += ": " + ", ".join(edge.carries)
    return (
        f'<path class="{classes}" data-edge="{escape(edge.key)}" '
        f'data-protocol="{edge.protocol}" d="{d}" marker-end="url(#{marker})">'
        f"<title>{escape(what)}</title></path>"
    )


def _legend(drawing: Drawing) -> list[str]:
    out = []
    swatch = {
        "http": "tp-edge",
        "kafka": "tp-edge tp-proto-kafka",
        "store": "tp-edge tp-proto-redis",
    }
    legend_labels = [lb for lb in drawing.labels if lb.text in {t for _, t in LEGEND}]
    for (style, _text), label in zip(LEGEND, legend_labels, strict=True):
        rect = label.rect
        y = rect.cy
        out.append(
            f'<path class="{swatch[style]}" d="M{_f(rect.x - 30)},{_f(y)} h24" '
            f'marker-end="url(#tp-arrow)"/>'
        )
        out.append(
            f'<text class="tp-legend" x="{_f(rect.x)}" y="{_f(label.y)}">'
            f"{escape(label.text)}</text>"
        )
    return out


def drawing_svg(drawing: Drawing, *, element_id: str = "topology") -> str:
    """The whole drawing as one ``<svg>`` element (valid as a standalone file too)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{element_id}" class="tp" '
        f'viewBox="0 0 {_f(drawing.width)} {_f(drawing.height)}" '
        f'width="{_f(drawing.width)}" height="{_f(drawing.height)}" '
        f'role="img" aria-label="Topology of the platform">',
        f"<style>{_STYLE}</style>",
        f"<defs>{_marker('tp-arrow', 9, 'context-stroke')}"
        f"{_marker('tp-arrow-store', 7, '#94a3b8')}</defs>",
        f'<rect class="tp-bg" width="{_f(drawing.width)}" height="{_f(drawing.height)}"/>',
    ]
    for frame, title in drawing.frames:
        parts.append(
            f'<rect class="tp-frame" x="{_f(frame.x)}" y="{_f(frame.y)}" '
            f'width="{_f(frame.w)}" height="{_f(frame.h)}" rx="10"/>'
            f'<text class="tp-frame-title" x="{_f(title.x)}" y="{_f(title.y)}" '
            f'text-anchor="middle">{escape(title.text)}</text>'
        )
    parts.append('<g class="tp-edges">')
    parts += [_edge(e) for e in drawing.edges]
    parts.append('</g><g class="tp-nodes">')
    parts += [_node(n) for n in drawing.nodes.values()]
    parts.append('</g><g class="tp-legend-items">')
    parts += _legend(drawing)
    parts.append('</g><g class="tp-overlay"></g></svg>')
    return "".join(parts)
