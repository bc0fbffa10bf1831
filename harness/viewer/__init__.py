"""What people look at: the topology drawing (layout, SVG, legibility checks), the
scenario player as one self-contained HTML file (``report``, ``run --html``) and as a
live web app (``ui``), and its assets (``assets/``: plain CSS and JS, no build step).

May import: the rest of ``ecom_harness.harness``, ``ecom_harness.stubs`` and
``ecom_harness.specs``. Names load on first use: drawing the topology does not pay for
Starlette, uvicorn or the mesh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecom_harness._lazy import lazy_exports

if TYPE_CHECKING:
    from ._app import ui_app
    from ._journal_file import JournalFileError, read_journal
    from ._layout import HEIGHT, WIDTH, Drawing, EdgeRoute, Label, NodeBox, layout_topology
    from ._legibility import drawing_problems
    from ._model import ExpectationMark, RunRecord, compact_entry
    from ._page import asset, report_html, ui_html, write_report
    from ._runs import HtmlReporter, expectation_mark, journal_records, scenario_record
    from ._serve import listen, serve_ui
    from ._svg import drawing_svg

_EXPORTS = {
    "HEIGHT": "._layout",
    "WIDTH": "._layout",
    "Drawing": "._layout",
    "EdgeRoute": "._layout",
    "ExpectationMark": "._model",
    "HtmlReporter": "._runs",
    "JournalFileError": "._journal_file",
    "Label": "._layout",
    "NodeBox": "._layout",
    "RunRecord": "._model",
    "asset": "._page",
    "compact_entry": "._model",
    "drawing_problems": "._legibility",
    "drawing_svg": "._svg",
    "expectation_mark": "._runs",
    "journal_records": "._runs",
    "layout_topology": "._layout",
    "listen": "._serve",
    "read_journal": "._journal_file",
    "report_html": "._page",
    "scenario_record": "._runs",
    "serve_ui": "._serve",
    "ui_app": "._app",
    "ui_html": "._page",
    "write_report": "._page",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "HEIGHT",
    "WIDTH",
    "Drawing",
    "EdgeRoute",
    "ExpectationMark",
    "HtmlReporter",
    "JournalFileError",
    "Label",
    "NodeBox",
    "RunRecord",
    "asset",
    "compact_entry",
    "drawing_problems",
    "drawing_svg",
    "expectation_mark",
    "journal_records",
    "layout_topology",
    "listen",
    "read_journal",
    "report_html",
    "scenario_record",
    "serve_ui",
    "ui_app",
    "ui_html",
    "write_report",
]
