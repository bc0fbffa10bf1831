"""Reporters: handlers of the runner's event stream (:mod:`.run_events`).

* :class:`ConsoleReporter`: progress as it happens, then per scenario a table of every
  expectation (pass or fail; for a failure, expected against observed and the journal
  entries involved). Rich on a terminal; plain lines when not a TTY or with ``NO_COLOR``.
* :class:`JsonReporter` (``--json FILE``): the whole result as one JSON document.
* :class:`JUnitReporter` (``--junit FILE``): one test suite per scenario, one test case
  per expectation, in the JUnit XML that CI systems read (Jenkins' ``junit-10.xsd``).
* :class:`JournalReporter` (``--journal FILE``): every scenario's journal, JSON Lines.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from .run_events import (
    ExpectationChecked,
    ExpectationResult,
    RunEvent,
    RunFinished,
    RunResult,
    RunStarted,
    ScenarioFinished,
    ScenarioResult,
    ScenarioStarted,
    StepNote,
    StepSent,
)

__all__ = [
    "ConsoleReporter",
    "JUnitReporter",
    "JournalReporter",
    "JsonReporter",
    "result_document",
    "use_rich",
]


def use_rich(stream: TextIO, environ: dict[str, str]) -> bool:
    """Rich output only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return stream.isatty() and not environ.get("NO_COLOR")


def _entries(result: ExpectationResult) -> str:
    return ", ".join(f"#{seq}" for seq in result.entries[:8]) + (
        " ..." if len(result.entries) > 8 else ""
    )


def _journal_lines(scenario: ScenarioResult, seqs: tuple[int, ...]) -> list[str]:
    """The journal entries a failure involves, one line each."""
    wanted = set(seqs[:6])
    lines = []
    for entry in scenario.journal:
        if entry.get("seq") not in wanted:
            continue
        if entry.get("kind") == "http":
            status = entry.get("status") if entry.get("status") is not None else "no answer"
            fault = f" fault={entry['fault']}" if entry.get("fault") else ""
            lines.append(
                f"#{entry['seq']} {entry['caller']}->{entry['callee']} {entry.get('operation_id')} "
                f"{entry['method']} {entry['path']} -> {status}{fault}"
            )
        else:
            lines.append(
                f"#{entry['seq']} {entry.get('publisher')} {entry.get('topic')} "
                f"{entry.get('message_type')} key {entry.get('key')}"
            )
    return lines


class ConsoleReporter:
    """Progress and result tables; ``rich`` picks rich or plain output."""

    def __init__(self, stream: TextIO | None = None, *, rich: bool = False, verbose: bool = False):
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.console: Any = None
        if rich:
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False)

    def _line(self, text: str, style: str = "") -> None:
        if self.console is not None:
            self.console.print(text, style=style or None, markup=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            mesh = event.mesh
            self._line(
                f"ecom-harness run: {len(event.scenarios)} scenario(s); kafka {mesh['kafka']}, "
                f"redis {mesh['redis']}, database {mesh['postgres']}"
                + (f", real: {', '.join(mesh['real'])}" if mesh.get("real") else ""),
                "bold",
            )
        elif isinstance(event, ScenarioStarted):
            self._line(
                f"[{event.index}/{event.total}] {event.scenario}: {event.title}", "bold cyan"
            )
        elif isinstance(event, StepSent):
            answer = event.status if event.status is not None else f"no answer ({event.error})"
            self._line(
                f"  {event.scenario} > {event.step}: {event.method} {event.path} -> {answer} "
                f"({event.duration_ms:.0f} ms)",
                "dim",
            )
        elif isinstance(event, StepNote):
            self._line(f"  {event.scenario} > {event.step}: {event.say}", "dim")
        elif isinstance(event, ExpectationChecked) and (self.verbose or not event.result.passed):
            mark = "ok  " if event.result.passed else "FAIL"
            self._line(
                f"  {event.scenario} {mark} {event.result.what}",
                "" if event.result.passed else "red",
            )
        elif isinstance(event, ScenarioFinished):  # the whole table at once: never interleaved
            self._table(event.result)
        elif isinstance(event, RunFinished):
            self._summary(event.result)

    def _table(self, scenario: ScenarioResult) -> None:
        if self.console is not None:
            self._rich_table(scenario)
        else:
            for result in scenario.expectations:
                mark = "PASS" if result.passed else "FAIL"
                self._line(f"  {mark} {result.what}")
                if not result.passed:
                    self._failure_detail(scenario, result)
        if scenario.error:
            self._line(f"  ERROR {scenario.name} did not run to the end: {scenario.error}", "red")
        verdict = "passed" if scenario.passed else "FAILED"
        count = len(scenario.failures)
        self._line(
            f"{scenario.name} {verdict}: {len(scenario.expectations) - count} of "
            f"{len(scenario.expectations)} expectations met ({scenario.duration_ms / 1000:.2f} s)",
            "green" if scenario.passed else "bold red",
        )

    def _failure_detail(self, scenario: ScenarioResult, result: ExpectationResult) -> None:
        self._line(f"       expected: {result.expected}")
        self._line(f"       observed: {result.observed}")
        for line in _journal_lines(scenario, result.entries):
            self._line(f"       journal {line}")

    def _rich_table(self, scenario: ScenarioResult) -> None:
        from rich.table import Table

        table = Table(title=f"{scenario.name}: {scenario.title}", title_justify="left")
        table.add_column("", width=4)
        table.add_column("expectation", overflow="fold")
        table.add_column("expected / observed", overflow="fold")
        table.add_column("journal", overflow="fold")
        for result in scenario.expectations:
            if result.passed:
                table.add_row("[green]pass[/]", result.what, "", "")
            else:
                detail = f"expected: {result.expected}\nobserved: {result.observed}"
                journal = "\n".join(_journal_lines(scenario, result.entries)) or _entries(result)
                table.add_row("[bold red]FAIL[/]", result.what, detail, journal)
        self.console.print(table)

    def _summary(self, result: RunResult) -> None:
        if result.setup_error:  # said on stderr by the command, in one line
            return
        passed = sum(1 for s in result.scenarios if s.passed)
        failed = [s.name for s in result.scenarios if not s.passed]
        self._line(
            f"{passed} of {len(result.scenarios)} scenario(s) passed in "
            f"{result.duration_ms / 1000:.2f} s"
            + (f"; failed: {', '.join(failed)}" if failed else ""),
            "bold green" if not failed else "bold red",
        )


def result_document(result: RunResult) -> dict[str, Any]:
    """The run as plain JSON data (the ``--json`` file)."""
    return {
        "passed": result.exit_code == 0,
        "exit_code": result.exit_code,
        "duration_ms": round(result.duration_ms, 1),
        "setup_error": result.setup_error,
        "scenarios": [
            {
                "name": s.name,
                "title": s.title,
                "passed": s.passed,
                "error": s.error,
                "duration_ms": round(s.duration_ms, 1),
                "expectations": [asdict(e) for e in s.expectations],
            }
            for s in result.scenarios
        ],
    }


class _AtEnd:
    """A reporter that writes one file when the run finishes."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, RunFinished):
            self.write(event.result)

    def write(self, result: RunResult) -> None:
        raise NotImplementedError


class JsonReporter(_AtEnd):
    def write(self, result: RunResult) -> None:
        self.path.write_bytes(orjson.dumps(result_document(result), option=orjson.OPT_INDENT_2))


class JournalReporter(_AtEnd):
    """Every entry of every scenario's journal, JSON Lines, with its ``scenario``."""

    def write(self, result: RunResult) -> None:
        with self.path.open("wb") as out:
            for scenario in result.scenarios:
                for entry in scenario.journal:
                    out.write(orjson.dumps({"scenario": scenario.name, **entry}) + b"\n")


class JUnitReporter(_AtEnd):
    """JUnit XML: ``<testsuites>`` of one ``<testsuite>`` per scenario, one
    ``<testcase>`` per expectation (``classname`` the scenario, ``name`` the expectation);
    a failed expectation has a ``<failure>``, a scenario that did not run to the end an
    ``<error>`` case."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        super().__init__(path)
        self.clock = clock

    def write(self, result: RunResult) -> None:
        import xml.etree.ElementTree as ET  # only when a JUnit file is asked for

        root = ET.Element(
            "testsuites",
            name="ecom-harness run",
            tests=str(sum(len(s.expectations) + bool(s.error) for s in result.scenarios)),
            failures=str(sum(len(s.failures) for s in result.scenarios)),
            errors=str(sum(1 for s in result.scenarios if s.error) + bool(result.setup_error)),
            time=f"{result.duration_ms / 1000:.3f}",
        )
        stamp = self.clock().replace(microsecond=0, tzinfo=None).isoformat()
        for index, scenario in enumerate(result.scenarios):
            root.append(self._suite(index, scenario, stamp))
        if result.setup_error:
            suite = ET.SubElement(
                root,
                "testsuite",
                name="set-up",
                tests="1",
                failures="0",
                errors="1",
                time="0",
                timestamp=stamp,
                hostname="localhost",
                id=str(len(result.scenarios)),
                package="ecom-harness",
                skipped="0",
            )
            ET.SubElement(suite, "properties")
            case = ET.SubElement(
                suite, "testcase", name="set-up", classname="ecom-harness", time="0"
            )
            ET.SubElement(
                case, "error", message=result.setup_error, type="SetupError"
            ).text = result.setup_error
            ET.SubElement(suite, "system-out")
            ET.SubElement(suite, "system-err")
        ET.ElementTree(root).write(self.path, encoding="utf-8", xml_declaration=True)

    def _suite(self, index: int, scenario: ScenarioResult, stamp: str) -> Any:
        import xml.etree.ElementTree as ET

        suite = ET.Element(
            "testsuite",
            name=scenario.name,
            tests=str(len(scenario.expectations) + bool(scenario.error)),
            failures=str(len(scenario.failures)),
            errors=str(int(bool(scenario.error))),
            skipped="0",
            time=f"{scenario.duration_ms / 1000:.3f}",
            timestamp=stamp,
            hostname="localhost",
            id=str(index),
            package="ecom-harness",
        )
        ET.SubElement(suite, "properties")
        for result in scenario.expectations:
            case = ET.SubElement(
                suite,
                "testcase",
                name=f"{result.id}: {result.what}",
                classname=scenario.name,
                time=f"{result.duration_ms / 1000:.3f}",
            )
            if not result.passed:
                text = f"expected: {result.expected}\nobserved: {result.observed}"
                journal = _journal_lines(scenario, result.entries)
                if journal:
                    text += "\njournal:\n" + "\n".join(journal)
                failure = ET.SubElement(
                    case, "failure", message=result.what, type="ExpectationFailed"
                )
                failure.text = text
        if scenario.error:
            case = ET.SubElement(
                suite, "testcase", name="scenario ran to the end", classname=scenario.name, time="0"
            )
            ET.SubElement(
                case, "error", message=scenario.error, type="ScenarioError"
            ).text = scenario.error
        ET.SubElement(suite, "system-out").text = scenario.title
        ET.SubElement(suite, "system-err")
        return suite
