"""A scenario in words (``ecom-harness scenarios show``): what is given, each step, and
what is expected, one line each, placeholders left as written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .journal_checks import describe_call, describe_event, only_words
from .matchers import show
from .scenario_files import Scenario, Step

__all__ = ["describe_scenario"]


def _fields(fields: Mapping[str, Any]) -> str:
    return ", ".join(f"{p or '/'} {show(v)}" for p, v in fields.items())


def _answer(expect: Mapping[str, Any]) -> list[str]:
    lines = []
    if "status" in expect:
        lines.append(f"status {expect['status']}")
    for name, value in (expect.get("headers") or {}).items():
        lines.append(f"header {name} {show(value)}")
    if expect.get("body"):
        lines.append(f"body {_fields(expect['body'])}")
    if "under_ms" in expect:
        lines.append(f"answered in under {expect['under_ms']} ms")
    return lines


def _step(step: Step) -> list[str]:
    data = step.data
    if step.kind == "wait":
        head = f"wait {data['wait']['seconds']} s"
    elif step.kind == "fault":
        fault = data["fault"]
        head = (
            f"clear the fault on {fault['edge']}"
            if fault.get("clear")
            else (f"fault on {fault['edge']}: {show(fault.get('set'))}")
        )
    else:
        request = data["request"]
        times = f" x{data['repeat']}" if "repeat" in data else ""
        times += " at once" if data.get("concurrent") else ""
        head = f"{request['method']} {request['path']}{times}"
    lines = [f"  {step.id}: {step.say or head}" + (f"  [{head}]" if step.say else "")]
    lines += [f"      expect {line}" for line in _answer(data.get("expect") or {})]
    for name, source in (data.get("capture") or {}).items():
        lines.append(f"      capture {name} from {source}")
    return lines


def _scope(spec: Mapping[str, Any]) -> str:
    if spec.get("during"):
        return f" (during {spec['during']})"
    return f" (after {spec['after']})" if spec.get("after") else ""


def describe_scenario(scenario: Scenario) -> str:
    lines = [f"{scenario.name}: {scenario.title}", "", scenario.description, ""]
    given = scenario.given
    if given:
        lines.append("Given:")
        for component, data in (given.get("seed") or {}).items():
            lines.append(f"  {component} seeded with {show(data)}")
        for component, values in (given.get("settings") or {}).items():
            lines.append(f"  {component} (stub) settings {show(values)}")
        for item in given.get("faults") or []:
            lines.append(f"  fault on {item['edge']}: {show(item['fault'])}")
        lines.append("")
    lines.append("Steps (as the client, through the gateway):")
    for step in scenario.steps:
        lines += _step(step)
    expect = scenario.expect
    lines += ["", "Expected of the whole run:"]
    for spec in expect.get("eventually") or []:
        what = (
            describe_event(spec["event"])
            if "event" in spec
            else describe_call(spec["edge"], spec["call"])
        )
        lines.append(f"  within {spec['within_s']} s: {spec.get('say') or what}")
    for spec in expect.get("events") or []:
        lines.append(
            f"  event {describe_event(spec)}" + (f" x{spec['count']}" if "count" in spec else "")
        )
    for spec in expect.get("interactions") or []:
        calls = "; ".join(describe_call(spec["edge"], c) for c in spec["calls"])
        only = only_words(spec["only"]) if spec.get("only") else ""
        lines.append(f"  calls{_scope(spec)}: {calls}{only}")
    for spec in expect.get("absent") or []:
        target = spec.get("edge") or f"{spec.get('type', 'any event')} on {spec.get('topic')}"
        lines.append(f"  never{_scope(spec)}: {spec.get('say') or target}")
    for spec in expect.get("state") or []:
        request = spec["request"]
        answer = ", ".join(_answer(spec["expect"]))
        lines.append(
            f"  end state: {spec.get('say') or spec['component']} "
            f"[{spec['component']} {request['method']} {request['path']}: {answer}]"
        )
    lines.append("  no spec violation anywhere in the journal")
    return "\n".join(lines)
