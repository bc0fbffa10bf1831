"""What people look at: the topology drawing, the HTML report and the live scenario
player. Depends on the rest of :mod:`ecom_harness.harness`; never on the CLI."""

from ._app import ui_app
from ._journal_file import JournalFileError, read_journal
from ._layout import HEIGHT, WIDTH, Drawing, EdgeRoute, Label, NodeBox, layout_topology
from ._legibility import drawing_problems
from ._model import ExpectationMark, RunRecord, compact_entry
from ._page import report_html, ui_html, write_report
from ._runs import HtmlReporter, expectation_mark, journal_records, scenario_record
from ._serve import listen, serve_ui
from ._svg import drawing_svg

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
