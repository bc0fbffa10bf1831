"""What people look at: the topology drawing, the HTML report and the live scenario
player. Depends on the rest of :mod:`ecom_harness.harness`; never on the CLI."""

from ._journal_file import JournalFileError, read_journal
from ._layout import HEIGHT, WIDTH, Drawing, EdgeRoute, Label, NodeBox, layout_topology
from ._legibility import drawing_problems
from ._model import ExpectationMark, RunRecord, compact_entry
from ._page import report_html, ui_html, write_report
from ._svg import drawing_svg

__all__ = [
    "HEIGHT",
    "WIDTH",
    "Drawing",
    "EdgeRoute",
    "ExpectationMark",
    "JournalFileError",
    "Label",
    "NodeBox",
    "RunRecord",
    "compact_entry",
    "drawing_problems",
    "drawing_svg",
    "layout_topology",
    "read_journal",
    "report_html",
    "ui_html",
    "write_report",
]
