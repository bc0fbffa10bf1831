"""A scenario's run-wide expectations, judged on the journal of the run.

Each function takes the expectation as written (placeholders already filled), the
journal entries in scope and returns an :class:`ExpectationResult` naming the journal
entries involved. Nothing here looks inside a component: only what crossed the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .journal import Entry, EventEntry, Interaction
from .matchers import field_mismatches, show
from .run_events import ExpectationResult

__all__ = [
    "call_matches",
    "check_absent",
    "check_event_sequence",
    "check_interactions",
    "check_no_violations",
    "describe_call",
    "describe_event",
    "event_matches",
    "only_words",
]


def describe_call(edge: str, call: Mapping[str, Any]) -> str:
    parts = [edge, str(call.get("operation", "any operation"))]
    if "status" in call:
        parts.append(f"-> {call['status'] if call['status'] is not None else 'no answer'}")
    if call.get("request"):
        parts.append(f"request {show(call['request'])}")
    if call.get("response"):
        parts.append(f"response {show(call['response'])}")
    return " ".join(parts)


def _one_call(entry: Interaction) -> str:
    status = entry.status if entry.status is not None else f"no answer ({entry.error})"
    fault = f" [fault: {entry.fault}]" if entry.fault else ""
    return f"#{entry.seq} {entry.edge} {entry.operation_id} -> {status}{fault}"


def call_matches(call: Mapping[str, Any], entry: Interaction) -> list[str]:
    """Why ``entry`` is not the call described (empty: it is)."""
    why = []
    if "operation" in call and entry.operation_id != call["operation"]:
        why.append(f"operation {entry.operation_id}, not {call['operation']}")
    if "status" in call and entry.status != call["status"]:
        why.append(f"status {entry.status}, not {call['status']}")
    if "fault" in call and bool(entry.fault) != call["fault"]:
        why.append("a fault answered" if entry.fault else "no fault answered")
    why += [f"request {m}" for m in field_mismatches(call.get("request", {}), entry.request_body)]
    why += [
        f"response {m}" for m in field_mismatches(call.get("response", {}), entry.response_body)
    ]
    return why


def check_interactions(
    id_: str, spec: Mapping[str, Any], entries: Sequence[Entry]
) -> ExpectationResult:
    """The edge saw ``calls`` in this order (other calls may come between, unless
    ``only``: then exactly these; ``only`` a list of operations: exactly these among the
    calls of those operations, while calls of others may come between)."""
    edge = spec["edge"]
    only = spec.get("only")
    seen = [
        e
        for e in entries
        if isinstance(e, Interaction)
        and e.edge == edge
        and (not isinstance(only, list) or e.operation_id in only)
    ]
    calls = spec["calls"]
    what = (
        f"{edge}: "
        + ", ".join(
            f"{c.get('operation', '*')}{' ' + str(c['status']) if 'status' in c else ''}"
            for c in calls
        )
        + (only_words(only) if only else ", in this order")
    )
    observed = "; ".join(_one_call(e) for e in seen) or "no calls"
    seqs = tuple(e.seq for e in seen)
    if spec.get("only"):
        if len(seen) != len(calls):
            return ExpectationResult(
                id_, what, False, f"{len(calls)} calls", f"{len(seen)}: {observed}", seqs
            )
        for call, entry in zip(calls, seen, strict=True):
            why = call_matches(call, entry)
            if why:
                return ExpectationResult(
                    id_,
                    what,
                    False,
                    describe_call(edge, call),
                    f"{_one_call(entry)}: {why[0]}",
                    seqs,
                )
        return ExpectationResult(id_, what, True, observed=observed, entries=seqs)
    position = 0
    for call in calls:
        closest: list[str] = []
        for index in range(position, len(seen)):
            why = call_matches(call, seen[index])
            if not why:
                position = index + 1
                break
            closest = closest or why
        else:
            detail = f" (nearest: {closest[0]})" if closest else ""
            return ExpectationResult(
                id_, what, False, describe_call(edge, call), observed + detail, seqs
            )
    return ExpectationResult(id_, what, True, observed=observed, entries=seqs)


def only_words(only: bool | list[str]) -> str:
    """How an interactions expectation's ``only`` reads in a sentence."""
    if isinstance(only, list):
        return f" and no other {' or '.join(only)} call"
    return " and nothing else"


def describe_event(spec: Mapping[str, Any]) -> str:
    key = f" key {spec['key']}" if "key" in spec else ""
    handled = f", handled by {', '.join(spec['consumed_by'])}" if spec.get("consumed_by") else ""
    return f"{spec['type']} on {spec['topic']}{key}{handled}"


def _one_event(entry: EventEntry) -> str:
    bad = " INVALID" if getattr(entry, "violations", ()) else ""
    return (
        f"#{entry.seq} {entry.topic} {entry.message_type} key {entry.key} by {entry.publisher}{bad}"
    )


def event_matches(spec: Mapping[str, Any], entry: EventEntry) -> list[str]:
    why = []
    if entry.topic != spec["topic"]:
        why.append(f"topic {entry.topic}")
    if entry.message_type != spec["type"]:
        why.append(f"type {entry.message_type}")
    if "key" in spec and entry.key != str(spec["key"]):
        why.append(f"key {entry.key}")
    why += [f"value {m}" for m in field_mismatches(spec.get("data", {}), entry.value)]
    return why


def check_event_sequence(
    id_prefix: str, specs: Sequence[Mapping[str, Any]], entries: Sequence[Entry]
) -> list[ExpectationResult]:
    """Each event was published (valid against AsyncAPI unless ``valid: false``), and the
    events of one topic in the order listed: a topic's records of one key share a
    partition, Kafka's only ordering guarantee (across topics outboxes may interleave)."""
    events = [e for e in entries if isinstance(e, EventEntry)]
    after: dict[str, int] = {}  # topic -> index in events past the last matched one
    results = []
    for index, spec in enumerate(specs):
        id_ = f"{id_prefix}:{index}"
        what = f"event {describe_event(spec)}" + (f" x{spec['count']}" if "count" in spec else "")
        matching = [i for i, e in enumerate(events) if not event_matches(spec, e)]
        on_topic = "; ".join(_one_event(e) for e in events if e.topic == spec["topic"]) or (
            f"nothing on {spec['topic']}"
        )
        if not matching:
            results.append(ExpectationResult(id_, what, False, describe_event(spec), on_topic))
            continue
        if "count" in spec and len(matching) != spec["count"]:
            seqs = tuple(events[i].seq for i in matching)
            results.append(
                ExpectationResult(
                    id_,
                    what,
                    False,
                    f"{spec['count']} such events",
                    f"{len(matching)}: {on_topic}",
                    seqs,
                )
            )
            continue
        later = [i for i in matching if i >= after.get(spec["topic"], 0)]
        if not later:
            results.append(
                ExpectationResult(
                    id_,
                    what,
                    False,
                    f"{describe_event(spec)} after the previous {spec['topic']} event listed",
                    f"out of order: {on_topic}",
                    tuple(events[i].seq for i in matching),
                )
            )
            continue
        chosen = events[later[0]]
        after[spec["topic"]] = later[0] + 1
        violations = tuple(getattr(chosen, "violations", ()))
        unhandled = [g for g in spec.get("consumed_by", ()) if g not in chosen.groups]
        if unhandled:
            results.append(
                ExpectationResult(
                    id_,
                    what,
                    False,
                    f"handled by {', '.join(spec['consumed_by'])}",
                    f"{_one_event(chosen)}; handled by: {', '.join(chosen.groups) or 'none'}",
                    (chosen.seq,),
                )
            )
            continue
        if spec.get("valid", True) and violations:
            results.append(
                ExpectationResult(
                    id_, what, False, "valid against AsyncAPI", "; ".join(violations), (chosen.seq,)
                )
            )
            continue
        results.append(
            ExpectationResult(id_, what, True, observed=_one_event(chosen), entries=(chosen.seq,))
        )
    return results


def check_absent(id_: str, spec: Mapping[str, Any], entries: Sequence[Entry]) -> ExpectationResult:
    """Nothing like ``spec`` happened (in its scope)."""
    if "edge" in spec:
        what = spec.get("say") or f"no {spec.get('operation', 'call')} on {spec['edge']}"
        found: list[Entry] = [
            e
            for e in entries
            if isinstance(e, Interaction)
            and e.edge == spec["edge"]
            and ("operation" not in spec or e.operation_id == spec["operation"])
        ]
        shown = "; ".join(_one_call(e) for e in found if isinstance(e, Interaction))
    else:
        what = spec.get("say") or f"no {spec.get('type', 'event')} on {spec['topic']}"
        found = [
            e
            for e in entries
            if isinstance(e, EventEntry)
            and e.topic == spec["topic"]
            and ("type" not in spec or e.message_type == spec["type"])
            and ("key" not in spec or e.key == str(spec["key"]))
        ]
        shown = "; ".join(_one_event(e) for e in found if isinstance(e, EventEntry))
    if spec.get("during"):
        what += f" during {spec['during']}"
    elif spec.get("after"):
        what += f" after {spec['after']}"
    return ExpectationResult(
        id_, what, not found, "none", shown or "none", tuple(e.seq for e in found)
    )


def check_no_violations(id_: str, entries: Sequence[Entry]) -> ExpectationResult:
    """No spec violation anywhere in the journal, each named with whose it is."""
    lines, seqs = [], []
    for entry in entries:
        for party, message in violations_of(entry):
            lines.append(f"#{entry.seq} {party}: {message}")
            seqs.append(entry.seq)
    observed = "; ".join(lines[:5]) + (f" (+{len(lines) - 5} more)" if len(lines) > 5 else "")
    return ExpectationResult(
        id_,
        "no spec violation anywhere in the journal",
        not lines,
        "none",
        observed or "none",
        tuple(seqs),
    )


def violations_of(entry: Entry) -> list[tuple[str, str]]:
    """``(whose, message)`` per violation, whose named with its role (the journal
    attributes: a request's to its caller, an answer's to its callee, an event's to
    its publisher; an answer a fault injected is never judged)."""
    if isinstance(entry, Interaction):
        return [
            (f"{whose} ({'caller' if whose == entry.caller else 'callee'} on {entry.edge})", v)
            for whose, v in entry.blame()
        ]
    return [(f"{whose} (publisher on {entry.topic})", v) for whose, v in entry.blame()]
