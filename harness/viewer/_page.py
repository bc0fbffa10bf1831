"""The player's page, in its two forms: one self-contained HTML file (report: CSS, JS,
SVG and the runs inline; opens from ``file://`` with no network) and the live UI's page
(the same markup, assets served by the app).

Assets ship as package data (``assets/``): plain CSS and JS, no build step.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path

import orjson

from ecom_harness.specs import Topology

from ._layout import Drawing, layout_topology
from ._model import PageData, RunRecord, page_data
from ._svg import drawing_svg

__all__ = ["asset", "report_html", "ui_html", "write_report"]

_ASSETS = files("ecom_harness.harness.viewer") / "assets"


def asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """JSON that is safe inside a <script> element: no ``</`` can close it early."""
    raw = orjson.dumps(value).decode("utf-8")
    return raw.replace("</", "<\\/").replace("<!--", "<\\!--")


def _fill(template: str, **parts: str) -> str:
    for key, value in parts.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def _order(drawing: Drawing) -> list[str]:
    """Lifelines left to right as in the drawing (top to bottom within a column)."""
    return [n.name for n in sorted(drawing.nodes.values(), key=lambda n: (n.rect.cx, n.rect.y))]


def report_html(title: str, topology: Topology, runs: list[RunRecord]) -> str:
    """One HTML document holding everything: opens from a file, plays offline."""
    drawing = layout_topology(topology)
    data: PageData = page_data(title, topology, _order(drawing), runs)
    script = asset("player.js").replace("</script", "<\\/script")
    return _fill(
        asset("page.html"),
        title=escape(title),
        styles=f"<style>{asset('player.css')}</style>",
        topology=drawing_svg(drawing),
        data=(
            '<script type="application/json" id="ecom-data">'
            f"{_script_json(data.to_json())}</script>"
        ),
        scripts=f"<script>{script}</script>",
    )


def write_report(path: Path, title: str, topology: Topology, runs: list[RunRecord]) -> int:
    """Write the report to ``path``; returns its size in bytes."""
    html = report_html(title, topology, runs).encode("utf-8")
    path.write_bytes(html)
    return len(html)


def ui_html(title: str, topology: Topology, config: dict[str, object]) -> str:
    """The live UI's page: assets by URL (``/assets/...``), ``config`` for ui.js."""
    drawing = layout_topology(topology)
    meta = page_data(title, topology, _order(drawing), []).meta
    return _fill(
        asset("page.html"),
        title=escape(title),
        styles='<link rel="stylesheet" href="/assets/player.css">',
        topology=drawing_svg(drawing),
        data=(
            '<script type="application/json" id="ecom-ui">'
            f"{_script_json({**config, 'meta': meta, 'title': title})}</script>"
        ),
        scripts='<script src="/assets/player.js"></script><script src="/assets/ui.js"></script>',
    )
