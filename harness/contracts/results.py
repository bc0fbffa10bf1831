"""Results of the contract commands, and the JSON and JUnit XML forms CI systems read.

``verify`` and ``fuzz`` report one result per interaction (or per operation and check):
a name, the group it belongs to (the pact, the provider), passed or not, and what went
wrong. The console table is drawn by the CLI; the files are written here, so a test or
another tool gets the same output without Click.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import orjson

__all__ = ["CaseResult", "Summary", "write_json", "write_junit"]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One checked thing: an interaction of a pact, an operation under fuzzing."""

    group: str  # the pact file, or the provider
    name: str  # the interaction's description, or the operation
    passed: bool
    message: str = ""
    details: tuple[str, ...] = ()
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Summary:
    results: list[CaseResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        total, failed = len(self.results), len(self.failed)
        return f"{total - failed} passed, {failed} failed"


def write_json(path: Path, command: str, results: Iterable[CaseResult]) -> None:
    rows = [r.as_dict() for r in results]
    payload = {"command": command, "passed": all(r["passed"] for r in rows), "results": rows}
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")


def write_junit(path: Path, command: str, results: Iterable[CaseResult]) -> None:
    """JUnit XML: one ``testsuite`` per group, one ``testcase`` per result."""
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        groups.setdefault(result.group, []).append(result)
    root = ET.Element("testsuites", name=f"ecom-harness {command}")
    total = failures = 0
    for group, members in groups.items():
        failed = sum(not r.passed for r in members)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=group,
            tests=str(len(members)),
            failures=str(failed),
            errors="0",
            skipped="0",
            time=f"{sum(r.duration_ms for r in members) / 1000:.3f}",
        )
        for result in members:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=group,
                name=result.name,
                time=f"{result.duration_ms / 1000:.3f}",
            )
            if not result.passed:
                failure = ET.SubElement(case, "failure", message=result.message)
                failure.text = "\n".join(result.details) or result.message
        total += len(members)
        failures += failed
    root.set("tests", str(total))
    root.set("failures", str(failures))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
