"""Scenario files: finding them, reading them, checking them against the format's JSON
Schema (``scenario.schema.json``, shipped beside this module) into :class:`Scenario`.

The shipped scenarios live in ``scenarios/`` beside this module (package data); a user
adds directories with ``--scenarios DIR``. A file that cannot be used is one
:class:`ScenarioError` naming the file and the JSON pointer of the first problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from ecom_harness.specs import FormatSchema, YamlError, display_path, load_yaml

__all__ = [
    "SCENARIO_SCHEMA",
    "SHIPPED_SCENARIOS",
    "Scenario",
    "ScenarioError",
    "Step",
    "find_scenario_files",
    "load_scenario",
    "load_scenarios",
    "schema_problems",
]

SHIPPED_SCENARIOS = Path(__file__).parent / "scenarios"
SCENARIO_SCHEMA = Path(__file__).parent / "scenario.schema.json"
SUFFIXES = (".yaml", ".yml")


class ScenarioError(ValueError):
    """A scenario file that cannot be used: ``FILE#POINTER: message``."""

    def __init__(self, file: str, pointer: str, message: str):
        self.file, self.pointer, self.message = file, pointer, message
        super().__init__(f"{file}#{pointer}: {message}" if pointer else f"{file}: {message}")


@dataclass(frozen=True, slots=True)
class Step:
    """One step: ``kind`` is ``request``, ``wait`` or ``fault``; ``data`` the step's mapping
    as written (placeholders unfilled); ``pointer`` where it is in its file."""

    id: str
    kind: str
    say: str
    data: dict[str, Any]
    pointer: str


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    description: str
    steps: list[Step]
    given: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def settings(self) -> dict[str, dict[str, Any]]:
        return dict(self.given.get("settings", {}))


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = orjson.loads(SCENARIO_SCHEMA.read_bytes())
    return schema


@cache
def _format() -> FormatSchema:
    return FormatSchema(_schema())


def _pointer(path: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def schema_problems(data: Any) -> list[tuple[str, str]]:
    """``(pointer, message)`` for each way ``data`` breaks the scenario format, the most
    telling first (``jsonschema``'s ``best_match``: a misspelt key before "not valid
    under any of the given schemas"). jsonschema-rs decides whether there is any, several
    times faster; only a broken file pays for the Python validator's messages."""
    weak = ("oneOf", "anyOf")
    problems = _format().problems(
        data, order=lambda e: (e.validator in weak, list(map(str, e.absolute_path)))
    )
    return [(_pointer(best.absolute_path), best.message) for best in problems]


def _read(path: Path) -> Any:
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(shown, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(shown, "", f"not UTF-8 text (byte {exc.start})") from None
    try:
        return load_yaml(text)
    except YamlError as exc:
        where = f"line {exc.line}, column {exc.column}: " if exc.line else ""
        raise ScenarioError(shown, "", f"{where}{exc}") from None


def load_scenario(path: Path) -> Scenario:
    """Read and check one file; :class:`ScenarioError` for the first problem."""
    data = _read(path)
    problems = schema_problems(data)
    if problems:
        pointer, message = problems[0]
        raise ScenarioError(display_path(path), pointer, message)
    steps = []
    for index, raw in enumerate(data["steps"]):
        kind = next(k for k in ("request", "wait", "fault") if k in raw)
        step_id = raw.get("id") or f"step{index + 1}"
        steps.append(Step(step_id, kind, raw.get("say", ""), raw, f"/steps/{index}"))
    seen: set[str] = set()
    for step in steps:
        if step.id in seen:
            raise ScenarioError(
                display_path(path), f"{step.pointer}/id", f"step id '{step.id}' repeats"
            )
        seen.add(step.id)
    return Scenario(
        name=data["name"],
        title=data["title"],
        description=data["description"].strip(),
        steps=steps,
        given=data.get("given") or {},
        expect=data.get("expect") or {},
        source=path,
    )


def find_scenario_files(directories: Iterable[Path]) -> Iterator[Path]:
    for directory in directories:
        if not directory.is_dir():
            raise ScenarioError(display_path(directory), "", "not a directory of scenario files")
        yield from sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())


def load_scenarios(extra: Iterable[Path] = ()) -> dict[str, Scenario]:
    """Every scenario by name: the shipped ones, then those in ``extra`` directories (a
    later file of the same name is an error naming both)."""
    found: dict[str, Scenario] = {}
    for path in find_scenario_files([SHIPPED_SCENARIOS, *extra]):
        scenario = load_scenario(path)
        if scenario.name in found:
            first = found[scenario.name].source
            raise ScenarioError(
                display_path(path),
                "/name",
                f"scenario '{scenario.name}' is already defined in "
                f"{display_path(first) if first else '?'}",
            )
        found[scenario.name] = scenario
    return found
