"""Lint of scenario files (``ecom-harness specs lint`` runs it on the shipped scenarios and
any ``--scenarios DIR``): the format's JSON Schema first, then every name a scenario
uses resolved against the topology and the specs -- components, HTTP edges, the
operationIds of requests and calls (in the callee's OpenAPI document), topics and
event types (in the AsyncAPI document), the step ids scopes refer to, and the
placeholders' expressions.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ecom_harness.specs import (
    Diagnostic,
    Document,
    MessageValidator,
    Topology,
    display_path,
    iter_operations,
    load_topology,
    read_document,
    receiver_groups,
)

from .scenario_files import SHIPPED_SCENARIOS, ScenarioError, find_scenario_files, load_scenario
from .templating import check_expression, expressions_in

__all__ = ["lint_scenario_files"]

RULE_SCHEMA, RULE_NAMES = "scenario-schema", "scenario-names"


class _SpecReader:
    """Spec documents by path: those the lint run of the specs already parsed, else read
    here once (a scenario names operations of up to every component)."""

    def __init__(self, known: Mapping[Path, Document]):
        self._known: dict[Path, Document | None] = dict(known)

    def __call__(self, path: Path) -> Document | None:
        key = path.resolve()
        if key not in self._known:
            found = read_document(path)
            self._known[key] = found if isinstance(found, Document) else None
        return self._known[key]


class _Names:
    """What a scenario may name, from the topology and its specs."""

    def __init__(self, topology: Topology, read: _SpecReader):
        self.topology, self._read = topology, read
        self._operations: dict[str, frozenset[str]] = {}
        self.http_edges = {f"{e.source}->{e.target}": e for e in topology.edges if e.is_http}
        self.served = {
            name
            for name, c in topology.components.items()
            if c.kind in ("gateway", "service", "external")
        }
        self.entry = next(
            e.target for e in topology.edges if topology.components[e.source].kind == "client"
        )
        broker = next((c for c in topology.components.values() if c.kind == "broker"), None)
        path = topology.spec_path(broker) if broker is not None else None
        found = read(path) if path is not None else None
        self.events = MessageValidator(found.data) if found is not None else None
        self.receivers = receiver_groups(found.data, topology.components) if found else {}

    def operations(self, component: str) -> frozenset[str]:
        """The operationIds of ``component``'s OpenAPI document (none when it has none)."""
        if component not in self._operations:
            spec = self.topology.components.get(component)
            path = self.topology.spec_path(spec) if spec is not None else None
            found = self._read(path) if path is not None else None
            self._operations[component] = frozenset(
                op["operationId"]
                for _p, _m, _path, op in iter_operations(found.data if found else {})
                if isinstance(op.get("operationId"), str)
            )
        return self._operations[component]


def lint_scenario_files(
    directories: Iterable[Path] = (),
    topology: Topology | None = None,
    documents: Mapping[Path, Document] | None = None,
) -> tuple[list[Diagnostic], int]:
    """Diagnostics for every scenario file in the shipped directory and ``directories``,
    and how many files were read. ``documents`` (resolved path -> document) are specs
    already parsed, such as :attr:`LintReport.documents`; others are read here."""
    names = _Names(topology or load_topology(), _SpecReader(documents or {}))
    found: list[Diagnostic] = []
    count = 0
    try:
        files = list(find_scenario_files([SHIPPED_SCENARIOS, *directories]))
    except ScenarioError as exc:
        return [Diagnostic(exc.file, exc.pointer, exc.message, RULE_SCHEMA)], 0
    seen: dict[str, str] = {}
    for path in files:
        count += 1
        shown = display_path(path)
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            found.append(Diagnostic(exc.file, exc.pointer, exc.message, RULE_SCHEMA))
            continue
        if scenario.name in seen:
            found.append(
                Diagnostic(
                    shown,
                    "/name",
                    f"scenario '{scenario.name}' is already defined in {seen[scenario.name]}",
                    RULE_NAMES,
                )
            )
        seen[scenario.name] = shown
        raw = {
            "given": scenario.given,
            "steps": [s.data for s in scenario.steps],
            "expect": scenario.expect,
        }
        found += [
            Diagnostic(shown, pointer, message, RULE_NAMES)
            for pointer, message in _problems(raw, names)
        ]
    return found, count


def _problems(data: Mapping[str, Any], names: _Names) -> Iterator[tuple[str, str]]:  # noqa: PLR0912
    given = data.get("given") or {}
    for key in ("seed", "settings"):
        for component in given.get(key) or {}:
            if component not in names.served:
                served = ", ".join(sorted(names.served))
                yield (
                    f"/given/{key}/{component}",
                    f"'{component}' is not a component with an HTTP API ({served})",
                )
    for index, item in enumerate(given.get("faults") or []):
        yield from _edge(names, item["edge"], f"/given/faults/{index}/edge")
    step_ids = {s.get("id") or f"step{i + 1}" for i, s in enumerate(data["steps"])}
    for index, step in enumerate(data["steps"]):
        where = f"/steps/{index}"
        if "request" in step:
            yield from _operation(names, names.entry, step["request"], f"{where}/request")
        if "fault" in step:
            yield from _edge(names, step["fault"]["edge"], f"{where}/fault/edge")
    expect = data.get("expect") or {}
    for index, spec in enumerate(expect.get("interactions") or []):
        where = f"/expect/interactions/{index}"
        if (yield from _edge(names, spec["edge"], f"{where}/edge")):
            callee = spec["edge"].split("->")[1]
            for c, call in enumerate(spec["calls"]):
                yield from _operation(names, callee, call, f"{where}/calls/{c}")
            if isinstance(spec.get("only"), list):
                for o, operation in enumerate(spec["only"]):
                    named = {"operation": operation}
                    for at, unknown in _operation(names, callee, named, f"{where}/only"):
                        yield at.removesuffix("/operation") + f"/{o}", unknown
        yield from _scope(spec, step_ids, where)
    for index, spec in enumerate(expect.get("events") or []):
        yield from _event(names, spec, f"/expect/events/{index}")
    for index, spec in enumerate(expect.get("absent") or []):
        where = f"/expect/absent/{index}"
        if "edge" in spec:
            if (yield from _edge(names, spec["edge"], f"{where}/edge")) and "operation" in spec:
                yield from _operation(names, spec["edge"].split("->")[1], spec, where)
        else:
            yield from _event(names, spec, where)
        yield from _scope(spec, step_ids, where)
    for index, spec in enumerate(expect.get("state") or []):
        where = f"/expect/state/{index}"
        if spec["component"] not in names.served:
            yield f"{where}/component", f"'{spec['component']}' is not a component with an HTTP API"
        else:
            yield from _operation(names, spec["component"], spec["request"], f"{where}/request")
    for index, spec in enumerate(expect.get("eventually") or []):
        where = f"/expect/eventually/{index}"
        if "edge" in spec and (yield from _edge(names, spec["edge"], f"{where}/edge")):
            yield from _operation(names, spec["edge"].split("->")[1], spec["call"], f"{where}/call")
        if "event" in spec:
            yield from _event(names, spec["event"], f"{where}/event")
    for expression in expressions_in(data):
        problem = check_expression(expression)
        if problem:
            yield "", problem


def _edge(names: _Names, edge: str, pointer: str) -> Generator[tuple[str, str], None, bool]:
    """Yields a problem when ``edge`` is not an HTTP edge; returns whether it is one."""
    if edge not in names.http_edges:
        yield pointer, f"'{edge}' is not an HTTP edge of the topology"
        return False
    return True


def _operation(
    names: _Names, callee: str, spec: Mapping[str, Any], pointer: str
) -> Iterator[tuple[str, str]]:
    operation = spec.get("operation")
    if operation is None:
        return
    known = names.operations(callee)
    if operation not in known:
        yield f"{pointer}/operation", f"'{callee}' has no operation '{operation}'"
        return
    edge = next(
        (e for e in names.http_edges.values() if e.target == callee and operation in e.operations),
        None,
    )
    if edge is None and callee != names.entry and not pointer.startswith("/expect/state"):
        yield f"{pointer}/operation", f"no edge of the topology carries '{operation}' to '{callee}'"


def _event(names: _Names, spec: Mapping[str, Any], pointer: str) -> Iterator[tuple[str, str]]:
    if names.events is None:
        return
    topic = spec["topic"]
    if topic not in names.events.partitions:
        topics = ", ".join(sorted(names.events.partitions))
        yield f"{pointer}/topic", f"'{topic}' is not a topic of the AsyncAPI document ({topics})"
        return
    for index, group in enumerate(spec.get("consumed_by") or []):
        if topic not in names.receivers.get(group, set()):
            known = ", ".join(sorted(g for g, topics in names.receivers.items() if topic in topics))
            yield (
                f"{pointer}/consumed_by/{index}",
                f"no consumer group '{group}' receives topic '{topic}' ({known or 'none'})",
            )
    kind = spec.get("type")
    if kind is not None and kind not in names.events.message_types(topic):
        yield (
            f"{pointer}/type",
            f"topic '{topic}' carries no '{kind}' ({', '.join(names.events.message_types(topic))})",
        )


def _scope(spec: Mapping[str, Any], step_ids: set[str], pointer: str) -> Iterator[tuple[str, str]]:
    for key in ("during", "after"):
        if key in spec and spec[key] not in step_ids:
            yield f"{pointer}/{key}", f"no step has id '{spec[key]}'"
