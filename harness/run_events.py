"""The runner's event stream and result model: what reporters (console, JSON, JUnit, the
UI) and other tools (Pact generation) consume. Public and stable; plain dataclasses.

The runner calls each handler (``Callable[[RunEvent], None]``) with, in order::

    RunStarted(scenarios=[names...], mesh={...})
    for each scenario:
        ScenarioStarted(scenario, title, index, total)
        StepSent(scenario, step, say, method, path, status, duration_ms, error)   # per request
        StepNote(scenario, step, say)       # waits, faults; scenario "(set-up)": a real
                                            # service's missing settings (no REDIS_URL)
        JournalEntrySeen(scenario, entry)        # every journal entry of the scenario, as a dict
        ExpectationChecked(scenario, result)     # one per expectation, ExpectationResult
        ScenarioFinished(scenario, result)       # ScenarioResult: every expectation + journal
    RunFinished(result)                          # RunResult: every scenario, exit code

``ExpectationResult`` carries ``id`` (stable within the scenario: ``step:place_order:status``,
``run:events:2``, ``run:no-violations``), ``what`` (the expectation in words), ``passed``,
``expected`` and ``observed`` (strings) and ``entries`` (the journal seqs involved).
A ``ScenarioResult`` with ``error`` set did not run to the end (set-up failed, a step
could not be sent); its expectations so far are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_SETUP",
    "ExpectationChecked",
    "ExpectationResult",
    "Handler",
    "JournalEntrySeen",
    "RunEvent",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "ScenarioFinished",
    "ScenarioResult",
    "ScenarioStarted",
    "StepNote",
    "StepSent",
]

EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_INTERNAL = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    id: str
    what: str
    passed: bool
    expected: str = ""
    observed: str = ""
    entries: tuple[int, ...] = ()
    duration_ms: float = 0.0


@dataclass(slots=True)
class ScenarioResult:
    name: str
    title: str
    expectations: list[ExpectationResult] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(e.passed for e in self.expectations)

    @property
    def failures(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if not e.passed]


@dataclass(slots=True)
class RunResult:
    scenarios: list[ScenarioResult] = field(default_factory=list)
    duration_ms: float = 0.0
    setup_error: str | None = None

    @property
    def exit_code(self) -> int:
        """0 all passed, 1 an expectation failed, 2 set-up error (nothing judged)."""
        if self.setup_error is not None or any(s.error for s in self.scenarios):
            return EXIT_SETUP
        return EXIT_OK if all(s.passed for s in self.scenarios) else EXIT_FAILED


@dataclass(frozen=True, slots=True)
class RunStarted:
    scenarios: list[str]
    mesh: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScenarioStarted:
    scenario: str
    title: str
    index: int
    total: int


@dataclass(frozen=True, slots=True)
class StepSent:
    scenario: str
    step: str
    say: str
    method: str
    path: str
    status: int | None
    duration_ms: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StepNote:
    scenario: str
    step: str
    say: str


@dataclass(frozen=True, slots=True)
class JournalEntrySeen:
    scenario: str
    entry: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExpectationChecked:
    scenario: str
    result: ExpectationResult


@dataclass(frozen=True, slots=True)
class ScenarioFinished:
    scenario: str
    result: ScenarioResult


@dataclass(frozen=True, slots=True)
class RunFinished:
    result: RunResult


RunEvent: TypeAlias = (
    RunStarted
    | ScenarioStarted
    | StepSent
    | StepNote
    | JournalEntrySeen
    | ExpectationChecked
    | ScenarioFinished
    | RunFinished
)
Handler: TypeAlias = Callable[[RunEvent], None]
