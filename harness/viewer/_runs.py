"""From the runner's event stream to what the player shows.

:class:`HtmlReporter` is a runner handler like the console and JUnit reporters: it keeps
each finished scenario and writes one self-contained HTML player at the end of the run
(``run --html FILE``). :func:`expectation_mark` and :func:`scenario_record` turn the
runner's results into the player's terms; the live UI uses them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecom_harness.harness.run_events import (
    ExpectationResult,
    RunEvent,
    RunFinished,
    ScenarioFinished,
    ScenarioResult,
)
from ecom_harness.harness.scenario_files import Scenario
from ecom_harness.specs import Topology

from ._model import ExpectationMark, RunRecord, Status
from ._page import write_report

__all__ = [
    "HtmlReporter",
    "expectation_mark",
    "journal_records",
    "scenario_record",
    "scenario_status",
]


def expectation_mark(result: ExpectationResult) -> ExpectationMark:
    detail = ""
    if not result.passed:
        detail = f"expected {result.expected}; observed {result.observed}".strip()
    return ExpectationMark(result.what, result.passed, detail, tuple(result.entries))


def scenario_status(result: ScenarioResult) -> Status:
    if result.error is not None:
        return "error"
    return "passed" if result.passed else "failed"


def scenario_record(result: ScenarioResult, scenario: Scenario | None) -> RunRecord:
    marks = [expectation_mark(x) for x in result.expectations]
    if result.error is not None:
        marks.append(ExpectationMark("the scenario ran to the end", False, result.error))
    return RunRecord(
        name=result.name,
        title=result.title,
        entries=result.journal,
        description=scenario.description if scenario else "",
        status=scenario_status(result),
        expectations=marks,
    )


def journal_records(entries: list[dict[str, Any]], name: str) -> list[RunRecord]:
    """A saved journal as runs to show: one per scenario when its entries say which
    (``run --journal`` writes a ``scenario`` field), else one named ``name``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(str(entry.get("scenario") or name), []).append(entry)
    return [
        RunRecord(key, key, group, f"{len(group)} journal entries") for key, group in groups.items()
    ] or [RunRecord(name, name, [], "an empty journal")]


class HtmlReporter:
    """Writes every scenario of the run into one HTML player when the run finishes."""

    def __init__(self, path: Path, topology: Topology, scenarios: dict[str, Scenario]):
        self.path, self.topology, self.scenarios = path, topology, scenarios
        self.records: list[RunRecord] = []

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, ScenarioFinished):
            scenario = self.scenarios.get(event.scenario)
            self.records.append(scenario_record(event.result, scenario))
        elif isinstance(event, RunFinished):
            if event.result.setup_error is not None:
                failure = ExpectationMark("the run could start", False, event.result.setup_error)
                self.records.append(
                    RunRecord("set-up", "The run could not start", [], "", "error", [failure])
                )
            passed = sum(r.status == "passed" for r in self.records)
            ran = sum(r.name != "set-up" for r in self.records)
            title = f"ecom-harness run: {passed} of {ran} scenarios passed"
            write_report(self.path, title, self.topology, self.records)
