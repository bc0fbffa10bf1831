"""Playing one scenario on a started mesh: set up what is given, drive the client through
the gateway step by step, then judge the run-wide expectations on the journal.

Every request goes in through the client's edge proxy (so it is journaled like any other
exchange); a component's end state is read from its own API at its own address (not
journaled, not through the gateway). Waits come from the wire (``${retry_after}``
captured from a ``Retry-After`` header), never from a simulator's settings.

Only the scenario's own entries are judged: one that names an order of an earlier
scenario on the mesh (a real service's late event or call) is shown, marked ``late``,
and left out of every expectation (journal.late_entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from ecom_harness.stubs import BusError, shared_tls

from .contracts.judging import JudgedAhead, judge_in_thread
from .faults import Fault, FaultError
from .journal import JOURNAL_GROUP, Entry, EventEntry, Interaction, entry_json, late_entries
from .journal_checks import (
    call_matches,
    check_absent,
    check_event_sequence,
    check_interactions,
    check_no_violations,
    describe_call,
    describe_event,
    event_matches,
)
from .matchers import MISSING, lookup, mismatch, show
from .mesh import Mesh
from .quiet import Quiet
from .run_events import (
    ExpectationChecked,
    ExpectationResult,
    Handler,
    JournalEntrySeen,
    RunEvent,
    ScenarioResult,
    StepNote,
    StepSent,
)
from .scenario_files import Scenario, Step
from .templating import TemplateError, render

if TYPE_CHECKING:
    from .contracts import PactFile
    from .contracts.judging import PactJudging

__all__ = ["EVENT_DEADLINE_S", "SERVICE_TOKEN", "ScenarioSetupError", "play"]

SERVICE_TOKEN = "ecom-harness"  # X-Service-Token on the harness's own state reads
EVENT_DEADLINE_S = 5.0  # how long published events may take to reach the journal (outboxes)
REQUEST_TIMEOUT_S = 30.0


class ScenarioSetupError(RuntimeError):
    """What the scenario needs cannot be set up (unknown edge, seed refused)."""


@dataclass
class _Marks:
    """Journal sequence numbers bracketing each step, for ``during`` / ``after`` scopes."""

    spans: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class _Play:
    mesh: Mesh
    scenario: Scenario
    emit: Callable[[RunEvent], None]
    result: ScenarioResult
    names: dict[str, Any]
    marks: _Marks = field(default_factory=_Marks)
    quiet: Quiet = field(default_factory=Quiet)
    pacts: tuple[PactFile, ...] = ()
    verdicts: JudgedAhead | None = None  # the pacts' judging, when there are pacts
    waiting: Callable[[], None] = lambda: None  # a wait step begins

    def check(self, outcome: ExpectationResult) -> None:
        self.result.expectations.append(outcome)
        self.emit(ExpectationChecked(self.scenario.name, outcome))


async def play(
    mesh: Mesh,
    scenario: Scenario,
    handlers: list[Handler],
    *,
    seed: int | None = None,
    quiet: Quiet | None = None,
    judge: bool = True,
    pacts: Sequence[PactFile] = (),
    pact_judge: PactJudging | None = None,
    waiting: Callable[[], None] = lambda: None,
) -> ScenarioResult:
    """Run ``scenario`` on ``mesh`` (already reset) and return its result; events go to
    ``handlers`` as they happen. Scenarios played side by side share one ``quiet``, so
    a step with a timing bound runs alone. ``judge=False`` only drives the steps (no
    run-wide expectations, nothing waited for): what contract generation needs of a run.
    ``pacts``: every journaled interaction on an edge with a pact must match it, as
    ``pact_judge`` judges (default: in a thread of this process). ``waiting`` is called
    when a ``wait`` step begins (the run starts other work then)."""

    def emit(event: RunEvent) -> None:
        for handler in handlers:
            handler(event)

    began = time.perf_counter()
    result = ScenarioResult(scenario.name, scenario.title)
    rng = random.Random(f"{seed}:{scenario.name}" if seed is not None else None)
    run_id = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=10))
    state = _Play(mesh, scenario, emit, result, {"run": run_id, "scenario": scenario.name})
    state.quiet = quiet or Quiet()
    state.pacts = tuple(pacts)
    state.waiting = waiting
    if judge and pacts:
        state.verdicts = JudgedAhead(pact_judge or judge_in_thread, list(pacts))
    try:
        await _given(state)
        async with httpx.AsyncClient(
            base_url=mesh.entry_url, timeout=REQUEST_TIMEOUT_S, verify=shared_tls()
        ) as client:
            for step in scenario.steps:
                await _step(state, client, step)
        if judge:
            await _run_expectations(state)
    except (ScenarioSetupError, TemplateError) as exc:
        result.error = str(exc)
    finally:
        if state.verdicts is not None:
            state.verdicts.cancel()  # judged by now, unless the scenario broke off
        entries = mesh.journal.entries()
        late = _late(mesh, entries)
        result.journal = [orjson.loads(entry_json(e)) for e in entries]
        for entry in result.journal:
            if entry["seq"] in late:  # shown, never judged
                entry["late"] = True
                emit(StepNote(scenario.name, "journal", _late_note(entry)))
            emit(JournalEntrySeen(scenario.name, entry))
        result.duration_ms = (time.perf_counter() - began) * 1000
    return result


def _late(mesh: Mesh, entries: list[Entry]) -> set[int]:
    """Seqs of the entries an earlier scenario on this mesh set off (a real service's
    late event or call, naming an order of that scenario): see journal.late_entries."""
    edge = mesh.entry_edge
    return late_entries(entries, set(mesh.journal.earlier_keys), lambda e: e.edge == edge)


def _judged(mesh: Mesh) -> list[Entry]:
    """The journal as this scenario's expectations see it: its own entries only."""
    entries = mesh.journal.entries()
    late = _late(mesh, entries)
    return [e for e in entries if e.seq not in late] if late else entries


def _late_note(entry: Mapping[str, Any]) -> str:
    if entry.get("kind") == "event":
        what = f"{entry['message_type']} on {entry['topic']} (key {entry['key']})"
    else:
        what = f"{entry['caller']}->{entry['callee']} {entry['method']} {entry['path']}"
    return f"journal #{entry['seq']}: {what} belongs to an earlier scenario: not judged here"


# --- given -----------------------------------------------------------------------------------


async def _given(state: _Play) -> None:
    mesh, given = state.mesh, state.scenario.given
    for component, data in (given.get("seed") or {}).items():
        if component in mesh.options.real:
            state.emit(StepNote(state.scenario.name, "given", f"{component} is real: not seeded"))
            continue
        try:
            await mesh.seed(component, data)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ScenarioSetupError(f"given.seed.{component}: {exc}") from None
    for item in given.get("faults") or []:
        _set_fault(mesh, item["edge"], item["fault"], "given.faults")


def _set_fault(mesh: Mesh, edge: str, raw: Mapping[str, Any], where: str) -> None:
    if edge not in mesh.plan.edges:
        raise ScenarioSetupError(f"{where}: '{edge}' is not an HTTP edge of the topology")
    try:
        mesh.faults.set(edge, Fault.from_dict(dict(raw)))
    except FaultError as exc:
        raise ScenarioSetupError(f"{where}: {edge}: {exc}") from None


# --- steps -----------------------------------------------------------------------------------


async def _step(state: _Play, client: httpx.AsyncClient, step: Step) -> None:
    start = state.mesh.journal.next_seq()
    state.names |= {"step": step.id, "i": 0}
    if step.kind == "wait":
        seconds = float(render(step.data["wait"]["seconds"], state.names))
        cap = step.data["wait"].get("at_most")
        seconds = min(seconds, float(cap)) if cap is not None else seconds
        state.emit(StepNote(state.scenario.name, step.id, step.say or f"wait {seconds:g} s"))
        if state.verdicts is not None:  # judged while waiting, not after the last step
            _judge_ahead(state)
        state.waiting()
        await asyncio.sleep(seconds)
    elif step.kind == "fault":
        spec = step.data["fault"]
        if spec.get("clear"):
            state.mesh.faults.clear(spec["edge"])
            say = f"fault on {spec['edge']} cleared"
        else:
            _set_fault(state.mesh, spec["edge"], spec.get("set") or {}, f"steps.{step.id}")
            say = f"fault on {spec['edge']}: {spec.get('set')}"
        state.emit(StepNote(state.scenario.name, step.id, step.say or say))
    elif step.data.get("concurrent"):
        # all at once, each with its own ${i} (names are copied per request)
        await asyncio.gather(
            *(
                _request_step(state, client, step, f"#{i + 1}", {**state.names, "i": i})
                for i in range(int(step.data.get("repeat", 1)))
            )
        )
    else:
        for i in range(int(step.data.get("repeat", 1))):
            state.names["i"] = i
            suffix = f"#{i + 1}" if "repeat" in step.data else ""
            await _request_step(state, client, step, suffix, state.names)
    state.marks.spans[step.id] = (start, state.mesh.journal.next_seq())


def _judge_ahead(state: _Play) -> None:
    """Hand the exchanges journaled since the last time to the pacts' judging."""
    assert state.verdicts is not None
    fresh = [
        e
        for e in _judged(state.mesh)
        if isinstance(e, Interaction) and not state.verdicts.judged(e.seq)
    ]
    state.verdicts.ahead([orjson.loads(entry_json(e)) for e in fresh])


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int | None
    headers: dict[str, str]
    body: Any
    duration_ms: float
    error: str | None = None


async def _send(client: httpx.AsyncClient, request: Mapping[str, Any]) -> _Answer:
    began = time.perf_counter()
    try:
        response = await client.request(
            request["method"],
            request["path"],
            headers={k: str(v) for k, v in (request.get("headers") or {}).items()},
            params=request.get("query"),
            json=request.get("json"),
        )
    except httpx.HTTPError as exc:
        took = (time.perf_counter() - began) * 1000
        return _Answer(None, {}, MISSING, took, f"{type(exc).__name__}: {exc}".rstrip(": "))
    took = (time.perf_counter() - began) * 1000
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = response.text
    return _Answer(response.status_code, dict(response.headers), body, took)


async def _request_step(
    state: _Play, client: httpx.AsyncClient, step: Step, suffix: str, names: dict[str, Any]
) -> None:
    label = f"{step.id}{suffix}"
    request = _rendered(state, f"step:{label}", step.data["request"], names)
    if request is None:
        return
    timed = "under_ms" in (step.data.get("expect") or {})
    async with state.quiet.alone() if timed else state.quiet.shared():
        answer = await _send(client, request)
    state.emit(
        StepSent(
            state.scenario.name,
            label,
            step.say,
            request["method"],
            request["path"],
            answer.status,
            answer.duration_ms,
            answer.error,
        )
    )
    expect = _rendered(state, f"step:{label}:expect", step.data.get("expect") or {}, names)
    for outcome in _check_answer(f"step:{label}", step.say or label, expect or {}, answer):
        state.check(outcome)
    for name, source in (step.data.get("capture") or {}).items():
        value = _capture(answer, source)
        if value is MISSING:
            state.check(
                ExpectationResult(
                    f"step:{label}:capture:{name}",
                    f"{label}: the answer has {source} (captured as {name})",
                    False,
                    source,
                    f"status {answer.status}, body {show(answer.body)}",
                )
            )
        else:
            state.names[name] = value


def _capture(answer: _Answer, source: str) -> Any:
    if source == "status":
        return answer.status
    if source == "duration_ms":
        return round(answer.duration_ms, 1)
    if source == "body":
        return answer.body
    if source.startswith("header:"):
        return answer.headers.get(source[len("header:") :].lower(), MISSING)
    return lookup(answer.body, source) if answer.body is not MISSING else MISSING


def _check_answer(
    prefix: str, what: str, expect: Mapping[str, Any], answer: _Answer
) -> list[ExpectationResult]:
    """The answer against a step's ``expect`` (placeholders already filled)."""
    results = []
    got = f"status {answer.status}" if answer.status is not None else f"no answer ({answer.error})"
    if "status" in expect:
        wanted = expect["status"]
        ok = answer.status in wanted if isinstance(wanted, list) else answer.status == wanted
        results.append(
            ExpectationResult(
                f"{prefix}:status",
                f"{what}: status {wanted}",
                ok,
                str(wanted),
                f"{got}, body {show(answer.body)}",
            )
        )
    for name, wanted in (expect.get("headers") or {}).items():
        value = answer.headers.get(name.lower(), MISSING)
        why = mismatch(wanted, value)
        results.append(
            ExpectationResult(
                f"{prefix}:header:{name}",
                f"{what}: header {name}",
                why is None,
                show(wanted),
                why or show(value),
            )
        )
    for pointer, wanted in (expect.get("body") or {}).items():
        why = mismatch(
            wanted, lookup(answer.body, pointer) if answer.body is not MISSING else MISSING
        )
        results.append(
            ExpectationResult(
                f"{prefix}:body:{pointer or '/'}",
                f"{what}: body {pointer or '/'}",
                why is None,
                show(wanted),
                why or "as expected",
            )
        )
    if "under_ms" in expect:
        ok = answer.status is not None and answer.duration_ms < float(expect["under_ms"])
        results.append(
            ExpectationResult(
                f"{prefix}:time",
                f"{what}: answered in under {expect['under_ms']} ms",
                ok,
                f"< {expect['under_ms']} ms",
                f"{answer.duration_ms:.0f} ms ({got})",
                duration_ms=answer.duration_ms,
            )
        )
    return results


# --- the whole run ---------------------------------------------------------------------------


def _scoped(state: _Play, spec: Mapping[str, Any], entries: list[Entry]) -> list[Entry]:
    if spec.get("during"):
        low, high = state.marks.spans.get(spec["during"], (0, 0))
        return [e for e in entries if low < e.seq < high]
    if spec.get("after"):
        low, _ = state.marks.spans.get(spec["after"], (0, 0))
        return [e for e in entries if e.seq > low]
    return entries


async def _until(
    mesh: Mesh, deadline_s: float, judge: Callable[[list[Entry]], list[ExpectationResult]]
) -> list[ExpectationResult]:
    """Judge the journal now and again on every new entry until all pass or the
    deadline passes; the last judgement stands."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def listener() -> None:
        loop.call_soon_threadsafe(changed.set)

    mesh.journal.change_listeners.append(listener)
    try:
        end = loop.time() + deadline_s
        while True:
            changed.clear()
            results = judge(_judged(mesh))
            remaining = end - loop.time()
            if all(r.passed for r in results) or remaining <= 0:
                return results
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
    finally:
        mesh.journal.change_listeners.remove(listener)


def _rendered(state: _Play, id_: str, spec: Any, names: dict[str, Any] | None = None) -> Any:
    """``spec`` with placeholders filled (from ``names``, else the scenario's); None (and
    a failed expectation) when a value it names was never captured (an earlier step went
    wrong)."""
    try:
        return render(spec, state.names if names is None else names)
    except TemplateError as exc:
        state.check(
            ExpectationResult(id_, f"{id_} can be judged", False, "captured values", str(exc))
        )
        return None


async def _run_expectations(state: _Play) -> None:
    expect = state.scenario.expect
    for index, raw in enumerate(expect.get("eventually") or []):
        id_ = f"run:eventually:{index}"
        spec = _rendered(state, id_, raw)
        if spec is None:
            continue
        judged = await _until(state.mesh, float(spec["within_s"]), _judge_eventually(id_, spec))
        for outcome in judged:
            state.check(outcome)
    events = _rendered(state, "run:events", expect.get("events") or [])
    if events:
        judged = await _until(
            state.mesh,
            EVENT_DEADLINE_S,
            lambda entries: check_event_sequence("run:events", events, entries),
        )
        if all(r.passed for r in judged) and state.mesh.bus is not None:
            # an exact count holds only once the journal has every record on the bus: a
            # duplicate published late (by a real service, straight to Kafka) must count
            with contextlib.suppress(TimeoutError, BusError):
                await state.mesh.bus.caught_up(JOURNAL_GROUP, EVENT_DEADLINE_S)
            judged = check_event_sequence("run:events", events, _judged(state.mesh))
        for outcome in judged:
            state.check(outcome)
    entries = _judged(state.mesh)
    for index, raw in enumerate(expect.get("interactions") or []):
        id_ = f"run:interactions:{index}"
        spec = _rendered(state, id_, raw)
        if spec is not None:
            state.check(check_interactions(id_, spec, _scoped(state, spec, entries)))
    for index, raw in enumerate(expect.get("absent") or []):
        id_ = f"run:absent:{index}"
        spec = _rendered(state, id_, raw)
        if spec is not None:
            state.check(check_absent(id_, spec, _scoped(state, spec, entries)))
    for index, raw in enumerate(expect.get("state") or []):
        id_ = f"run:state:{index}"
        spec = _rendered(state, id_, raw)
        if spec is not None:
            state.check(await _end_state(state, id_, spec))
    await _check_pacts(state, state.pacts)
    state.check(check_no_violations("run:no-violations", _judged(state.mesh)))


async def _check_pacts(state: _Play, pacts: Sequence[PactFile]) -> None:
    """One expectation per pact whose edge the scenario used: its interactions match the
    pact, as Pact's own engine judges (the mock server for requests, the verifier for
    answers and events); a mismatch says what Pact says."""
    if state.verdicts is None:
        return
    journal = _journal_json(state.mesh)
    mismatches = await state.verdicts.finish(journal)
    used = {f"{e.get('caller')}->{e.get('callee')}" for e in journal if e.get("kind") == "http"} | {
        f"{group}->{e.get('publisher')}"
        for e in journal
        if e.get("kind") == "event"
        for group in e.get("groups") or []
    }
    for pact in pacts:
        if pact.edge not in used:
            continue
        found = [m for m in mismatches if m.pact == pact.path.name]
        state.check(
            ExpectationResult(
                f"run:pact:{pact.edge}",
                f"every interaction of {pact.consumer} with {pact.provider} matches "
                f"{pact.path.name}",
                not found,
                "what the pact describes",
                "; ".join(f"#{m.seq} ({m.side}) {m.message}" for m in found)[:2000],
                tuple(sorted({m.seq for m in found if m.seq})),
            )
        )


def _journal_json(mesh: Mesh) -> list[dict[str, Any]]:
    """The scenario's own journal entries as JSON data (what the pacts are judged on)."""
    return [orjson.loads(entry_json(e)) for e in _judged(mesh)]


def _judge_eventually(
    id_: str, spec: Mapping[str, Any]
) -> Callable[[list[Entry]], list[ExpectationResult]]:
    def judge(entries: list[Entry]) -> list[ExpectationResult]:
        return [_eventually(id_, spec, entries)]

    return judge


def _eventually(id_: str, spec: Mapping[str, Any], entries: list[Entry]) -> ExpectationResult:
    within = f"within {spec['within_s']} s"
    if "event" in spec:
        event = spec["event"]
        what = spec.get("say") or f"eventually ({within}): {describe_event(event)}"
        events = [
            e
            for e in entries
            if isinstance(e, EventEntry)
            and not event_matches(event, e)
            and all(g in e.groups for g in event.get("consumed_by", ()))
        ]
        return ExpectationResult(
            id_,
            what,
            bool(events),
            describe_event(event),
            "seen" if events else "not seen",
            tuple(e.seq for e in events),
        )
    edge, call = spec["edge"], spec["call"]
    what = spec.get("say") or f"eventually ({within}): {describe_call(edge, call)}"
    on_edge = [e for e in entries if isinstance(e, Interaction) and e.edge == edge]
    found = [e for e in on_edge if not call_matches(call, e)]
    observed = (
        "; ".join(f"#{e.seq} {e.operation_id} -> {e.status}" for e in on_edge)
        or f"no call on {edge}"
    )
    return ExpectationResult(
        id_, what, bool(found), describe_call(edge, call), observed, tuple(e.seq for e in found)
    )


async def _end_state(state: _Play, id_: str, spec: Mapping[str, Any]) -> ExpectationResult:
    component = spec["component"]
    request = dict(spec["request"])
    headers = {"X-Service-Token": SERVICE_TOKEN, **(request.get("headers") or {})}
    request["headers"] = headers
    what = spec.get("say") or f"{component} {request['method']} {request['path']}"
    try:
        url = state.mesh.url(component)
    except KeyError:
        raise ScenarioSetupError(
            f"expect.state: '{component}' has no HTTP API in this mesh"
        ) from None
    async with httpx.AsyncClient(
        base_url=url, timeout=REQUEST_TIMEOUT_S, verify=shared_tls()
    ) as client:
        answer = await _send(client, request)
    checks = _check_answer(id_, what, spec["expect"], answer)
    failed = [c for c in checks if not c.passed]
    if failed:
        return ExpectationResult(
            id_, f"end state: {what}", False, failed[0].expected, failed[0].observed
        )
    return ExpectationResult(
        id_,
        f"end state: {what}",
        True,
        observed=f"status {answer.status}, body {show(answer.body)}",
    )
