"""From the scenarios' journals to a plan of pact interactions, one pact per edge.

Every HTTP exchange between two components (the client's own requests excepted: the
client is the scenario, not a service with a team) and every event a consumer group
handled is an occurrence. Occurrences of one edge with the same operation and status
(or topic and message type) become one interaction; its representative is chosen by
content, not by timing, so the plan is the same on every run. Its provider state is
named from the scenario's ``given`` (the provider's seed, the faults on its own calls)
and carries, as parameters, the earlier requests of the scenario that brought the
provider to that state, so a verifier can set the state by replaying them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .canonical import is_dynamic, mask

__all__ = ["HttpPlan", "MessagePlan", "Occurrence", "ScenarioJournal", "plan_pacts"]

# Request headers a pact keeps: what the provider's spec may care about. Transport
# headers (host, user-agent, accept-encoding...) say nothing about the contract.
_TRANSPORT_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length"}
)


@dataclass(frozen=True, slots=True)
class ScenarioJournal:
    scenario: str
    given: Mapping[str, Any]
    entries: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Occurrence:
    scenario: str
    given: Mapping[str, Any]
    entry: dict[str, Any]
    earlier: list[dict[str, Any]]  # the scenario's journal before this entry
    journal: list[dict[str, Any]]  # the scenario's whole journal

    @property
    def faulty_given(self) -> bool:
        return bool(self.given.get("faults"))


@dataclass(slots=True)
class HttpPlan:
    consumer: str
    provider: str
    description: str
    state: str
    state_params: dict[str, Any]
    entry: dict[str, Any]
    loose: set[str] = field(default_factory=set)  # request body pointers matched by type
    scenario: str = ""  # where the representative comes from
    loose_answer: set[str] = field(default_factory=set)  # answer pointers that vary


@dataclass(slots=True)
class MessagePlan:
    consumer: str
    provider: str
    description: str
    state: str
    state_params: dict[str, Any]
    entry: dict[str, Any]


def _request_of(entry: dict[str, Any]) -> dict[str, Any]:
    headers = {
        k.lower(): v
        for k, v in (entry.get("request_headers") or {}).items()
        if k.lower() not in _TRANSPORT_HEADERS
    }
    return {
        "method": entry["method"],
        "path": entry["path"],
        "query": entry.get("query") or "",
        "headers": dict(sorted(headers.items())),
        "body": entry.get("request_body"),
    }


def _key(value: Any) -> bytes:
    return orjson.dumps(mask(value), option=orjson.OPT_SORT_KEYS)


def _state(
    occurrence: Occurrence, provider: str, setup: list[dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """The provider state: named from the scenario's ``given``, with what sets it up."""
    given = occurrence.given
    seed = (given.get("seed") or {}).get(provider)
    faults = [
        f for f in given.get("faults") or [] if str(f.get("edge", "")).startswith(f"{provider}->")
    ]
    settings = (given.get("settings") or {}).get(provider)
    parts = []
    if seed:
        parts.append(f"{provider} holds {json.dumps(seed, sort_keys=True, separators=(',', ':'))}")
    for fault in faults:
        parts.append(f"{fault['edge']} {fault.get('fault', {}).get('kind', 'fault')}")
    if setup:
        parts.append(f"after {len(setup)} earlier request{'s' * (len(setup) != 1)} of the scenario")
    name = f"{occurrence.scenario}: {'; '.join(parts) if parts else 'nothing set up'}"
    params: dict[str, Any] = {"scenario": occurrence.scenario, "provider": provider}
    if seed:
        params["seed"] = seed
    if faults:
        params["faults"] = faults
    if settings:
        params["settings"] = settings
    if setup:
        params["setup"] = setup
    return name, params


def _answered(entry: dict[str, Any], provider: str) -> bool:
    """An HTTP exchange the provider answered (not one a fault cut short)."""
    return (
        entry.get("kind") == "http"
        and entry.get("callee") == provider
        and not entry.get("fault")
        and entry.get("status") is not None
    )


def _mentions(entry: dict[str, Any], key: str) -> bool:
    blob = orjson.dumps([entry.get("path"), entry.get("request_body"), entry.get("response_body")])
    return key.encode() in blob


def _setup(occurrence: Occurrence, provider: str) -> list[dict[str, Any]]:
    """The requests the provider answered before, in the scenario (any caller), whole.

    For an event: every request of the scenario the provider answered about the event's
    key (the order), which together make it publish the event. Chosen by content, not by
    when they were journaled (a request is journaled when answered, maybe after its
    event), so the plan is free of timing."""
    if occurrence.entry.get("kind") == "event":
        key = str(occurrence.entry.get("key", ""))
        chosen = [e for e in occurrence.journal if _answered(e, provider) and _mentions(e, key)]
        if not key or not chosen:
            chosen = [e for e in occurrence.earlier if _answered(e, provider)]
    else:
        chosen = [e for e in occurrence.earlier if _answered(e, provider)]
    found = []
    for entry in _concurrent_in_order(chosen):
        step = _request_of(entry)
        step["response"] = entry.get("response_body")
        found.append(step)
    return found


def _concurrent_in_order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journal order, except that requests in flight at the same time (a scenario's
    concurrent step) are in content order: which of them was answered first is timing."""
    ordered: list[dict[str, Any]] = []
    group: list[dict[str, Any]] = []
    group_end = float("-inf")
    for entry in entries:
        end = float(entry.get("time", 0))
        start = end - float(entry.get("duration_ms", 0)) / 1000
        if group and start >= group_end:
            ordered += sorted(group, key=lambda e: _key(_request_of(e)))
            group = []
        group.append(entry)
        group_end = max(group_end, end) if len(group) > 1 else end
    return ordered + sorted(group, key=lambda e: _key(_request_of(e)))


def _loose_fields(occurrences: Iterable[Occurrence]) -> set[str]:
    """Request body fields whose value differs between occurrences of one interaction:
    the pact matches them by type; the others are what decides the answer."""
    values: dict[str, set[bytes]] = {}

    def walk(value: Any, pointer: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{pointer}/{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{pointer}/{i}")
        else:
            values.setdefault(pointer, set()).add(orjson.dumps(value))
            if is_dynamic(value):
                values[pointer].add(b"<dynamic>")

    for occurrence in occurrences:
        walk(occurrence.entry.get("request_body"), "")
        for name, value in _request_of(occurrence.entry)["headers"].items():
            walk(value, f"/header/{name}")
    return {p for p, seen in values.items() if len(seen) > 1}


def _varying(values: list[Any]) -> set[str]:
    """Pointers whose value differs between the answers of one interaction (an order's
    status read before and after the saga, a breaker's state in a race): the pact holds
    no literal there, so it does not depend on which answer the run happened to give."""
    seen: dict[str, set[bytes]] = {}

    def walk(value: Any, pointer: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{pointer}/{k}")
        elif isinstance(value, list):
            for v in value[:1]:
                walk(v, f"{pointer}/0")
        else:
            seen.setdefault(pointer, set()).add(orjson.dumps(mask(value)))

    for value in values:
        walk(value, "")
    varying = {p for p, found in seen.items() if len(found) > 1}
    # "?null": sometimes null, so the pact leaves the field out (it may be either)
    return varying | {f"{p}?null" for p in varying if b"null" in seen[p]}


def _shape(value: Any) -> Any:
    """The keys of a request body, without values (lists by their first item): requests
    of one operation with other fields are other interactions, as a pact matches a
    request's keys exactly."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def _pactable(entry: dict[str, Any], clients: set[str]) -> bool:
    """An HTTP exchange between two components that the provider answered."""
    return (
        entry.get("kind") == "http"
        and entry["caller"] not in clients
        and bool(entry.get("operation_id"))
        and not entry.get("fault")
        and entry.get("status") is not None
        and not entry.get("error")
    )


def _http_key(entry: dict[str, Any]) -> tuple[str, str, str, int, str]:
    """One interaction per edge, operation, status and request keys."""
    shape = orjson.dumps(_shape(entry.get("request_body"))).decode()
    return (entry["caller"], entry["callee"], entry["operation_id"], entry["status"], shape)


def plan_pacts(
    journals: list[ScenarioJournal],
    clients: set[str],
    variants: Sequence[ScenarioJournal] = (),
) -> tuple[list[HttpPlan], list[MessagePlan]]:
    """Every interaction of every pact, in a deterministic order.

    ``variants`` are journals of the same scenarios run with another seed: a field whose
    value changes with the seed (an e-mail address, an idempotency key made from the
    run) is matched by type, never literally; representatives come from ``journals``."""
    http: dict[tuple[str, str, str, int, str], list[Occurrence]] = {}
    messages: dict[tuple[str, str, str, str], list[Occurrence]] = {}
    extra: dict[tuple[str, str, str, int, str], list[Occurrence]] = {}
    for journal in variants:
        for index, entry in enumerate(journal.entries):
            if _pactable(entry, clients):
                occurrence = Occurrence(
                    journal.scenario, journal.given, entry, journal.entries[:index], journal.entries
                )
                extra.setdefault(_http_key(entry), []).append(occurrence)
    for journal in journals:
        for index, entry in enumerate(journal.entries):
            occurrence = Occurrence(
                journal.scenario, journal.given, entry, journal.entries[:index], journal.entries
            )
            if entry.get("kind") == "http":
                if _pactable(entry, clients):
                    http.setdefault(_http_key(entry), []).append(occurrence)
            elif entry.get("kind") == "event":
                for group in entry.get("groups") or []:
                    key4 = (group, entry["publisher"], entry["topic"], entry["message_type"])
                    messages.setdefault(key4, []).append(occurrence)
    http_plans = []
    described: dict[tuple[str, str, str], int] = {}
    for key, found in sorted(http.items()):
        consumer, provider, operation, status, _ = key
        everywhere = [*found, *extra.get(key, [])]
        chosen = min(
            found,
            key=lambda o: (
                o.faulty_given,
                _key(_request_of(o.entry)),
                _key(o.entry.get("response_body")),
                len(_setup(o, provider)),
            ),
        )
        state, params = _state(chosen, provider, _setup(chosen, provider))
        description = f"{operation} answered {status} ({chosen.scenario})"
        seen = described[(consumer, provider, description)] = (
            described.get((consumer, provider, description), 0) + 1
        )
        if seen > 1:  # the same answer to a request with other fields
            description = f"{description} #{seen}"
        http_plans.append(
            HttpPlan(
                consumer=consumer,
                provider=provider,
                description=description,
                state=state,
                state_params=params,
                entry=chosen.entry,
                loose=_loose_fields(everywhere),
                loose_answer=_varying([o.entry.get("response_body") for o in everywhere]),
                scenario=chosen.scenario,
            )
        )
    message_plans = []
    for (consumer, provider, topic, message_type), found in sorted(messages.items()):
        chosen = min(
            found,
            key=lambda o: (o.faulty_given, _key(o.entry.get("value")), len(_setup(o, provider))),
        )
        setup = _setup(chosen, provider)
        state, params = _state(chosen, provider, setup)
        params["message"] = {"topic": topic, "type": message_type}
        message_plans.append(
            MessagePlan(
                consumer=consumer,
                provider=provider,
                description=f"{message_type} on {topic} ({chosen.scenario})",
                state=state,
                state_params=params,
                entry=chosen.entry,
            )
        )
    return http_plans, message_plans
