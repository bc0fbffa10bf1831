"""``contracts diff``: the changes between two versions of the specs, breaking or not,
in the terms of ``contracts check`` (the same rule names).

A change is breaking when a consumer written against the old spec can fail against the
new one: an operation, status, media type, channel or message gone; a field an answer
had no longer there (or no longer required), its type changed, an enum value dropped;
a request needing a parameter or field it did not need. Adding operations, optional
request fields or answer fields is not. Which consumers a change breaks comes from the
committed pacts: each change lists the consumers whose interactions use that operation
or channel, and :func:`broken_pacts` names the pact findings the new version adds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ecom_harness.specs import Api, PointerError, join_pointer, resolve_pointer

from .check import check_pacts
from .findings import Finding
from .pacts import PactFile
from .schema_walk import follow_refs, subschemas
from .spec_index import Channel, SpecIndex, payload_pointer

__all__ = ["Change", "broken_pacts", "diff_specs"]

Direction = Literal["request", "response"]


@dataclass(frozen=True, slots=True, order=True)
class Change:
    breaking: bool
    spec: str
    pointer: str
    message: str
    rule: str
    consumers: tuple[str, ...] = ()

    def __str__(self) -> str:
        kind = "BREAKING" if self.breaking else "ok"
        who = f" (consumers: {', '.join(self.consumers)})" if self.consumers else ""
        return f"{kind:8} {self.spec}#{self.pointer}: {self.message} [{self.rule}]{who}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff_specs(old: SpecIndex, new: SpecIndex, pacts: list[PactFile]) -> list[Change]:
    """Every change from ``old`` to ``new``, breaking ones first."""
    changes: list[Change] = []
    for component in sorted(set(old.apis) | set(new.apis)):
        before, after = old.apis.get(component), new.apis.get(component)
        users = _http_users(pacts, component)
        if before is None:
            assert after is not None
            changes.append(
                Change(False, after.document.display, "", f"new spec of {component}", "spec-added")
            )
        elif after is None:
            changes.append(
                Change(
                    True,
                    before.document.display,
                    "",
                    f"the spec of {component} is gone",
                    "provider-spec-missing",
                    _consumers(users, before, None),
                )
            )
        else:
            changes.extend(_diff_api(before, after, users))
    changes.extend(_diff_channels(old, new, pacts))
    # A schema shared by several operations changes once; its consumers are all of theirs.
    merged: dict[tuple[bool, str, str, str, str], set[str]] = {}
    for change in changes:
        key = (change.breaking, change.spec, change.pointer, change.message, change.rule)
        merged.setdefault(key, set()).update(change.consumers)
    return sorted(
        (Change(*key, tuple(sorted(who))) for key, who in merged.items()),
        key=lambda c: (not c.breaking, c.spec, c.pointer, c.message),
    )


def broken_pacts(old: SpecIndex, new: SpecIndex, pacts: list[PactFile]) -> list[Finding]:
    """The pact findings the new specs have and the old ones did not."""

    def key(f: Finding) -> tuple[str, str, str, str]:
        return (f.pact, f.interaction, f.rule, f.pact_pointer)

    before = {key(f) for f in check_pacts(pacts, old)}
    return [f for f in check_pacts(pacts, new) if key(f) not in before]


# --- OpenAPI ---------------------------------------------------------------------------


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _http_users(pacts: list[PactFile], provider: str) -> list[tuple[str, str, str]]:
    """``(consumer, METHOD, path)`` of every HTTP interaction with ``provider``."""
    return [
        (p.consumer, str(i.request.get("method", "GET")).upper(), str(i.request.get("path", "")))
        for p in pacts
        if p.provider == provider
        for i in p.interactions
        if i.kind == "http"
    ]


def _consumers(
    users: list[tuple[str, str, str]], api: Api, operation_id: str | None
) -> tuple[str, ...]:
    """The consumers whose pacts call ``operation_id`` of ``api`` (any operation if None)."""
    found = set()
    for consumer, method, path in users:
        for op in api.routes:
            if op.method == method and op.path_regex.match(path):
                if operation_id is None or op.operation_id == operation_id:
                    found.add(consumer)
                break
    return tuple(sorted(found))


def _diff_api(before: Api, after: Api, users: list[tuple[str, str, str]]) -> Iterator[Change]:
    spec = after.document.display
    old_ops = {(op.method, _template(op.path)): op for op in before.operations.values()}
    new_ops = {(op.method, _template(op.path)): op for op in after.operations.values()}
    new_paths = {_template(op.path) for op in after.operations.values()}
    for key in sorted(set(old_ops) | set(new_ops)):
        old_op, new_op = old_ops.get(key), new_ops.get(key)
        if new_op is None:
            assert old_op is not None
            rule = "method-missing" if key[1] in new_paths else "path-missing"
            yield Change(
                True,
                spec,
                old_op.pointer,
                f"{old_op.method} {old_op.path} ({old_op.operation_id}) is gone",
                rule,
                _consumers(users, before, old_op.operation_id),
            )
        elif old_op is None:
            yield Change(
                False,
                spec,
                new_op.pointer,
                f"new operation {new_op.method} {new_op.path}",
                "operation-added",
            )
        else:
            who = _consumers(users, before, old_op.operation_id)
            for change in _diff_operation(before, after, old_op, new_op):
                yield Change(
                    change.breaking, spec, change.pointer, change.message, change.rule, who
                )


def _diff_operation(  # noqa: PLR0912 - one branch per part of an operation
    before: Api, after: Api, old: Any, new: Any
) -> Iterator[Change]:
    spec = after.document.display
    old_params = {(p.location, p.name): p for p in old.parameters}
    for param in new.parameters:
        previous = old_params.get((param.location, param.name))
        where = param.schema_pointer.rsplit("/", 1)[0] if param.schema_pointer else new.pointer
        if param.required and (previous is None or not previous.required):
            yield Change(
                True,
                spec,
                where,
                f"{param.location} parameter '{param.name}' is now required",
                "required-parameter-added",
            )
        elif previous is None:
            yield Change(
                False,
                spec,
                where,
                f"new optional {param.location} parameter '{param.name}'",
                "parameter-added",
            )
    new_params = {(p.location, p.name) for p in new.parameters}
    for location, name in old_params:
        if (location, name) not in new_params and location != "header":
            yield Change(
                True,
                spec,
                join_pointer(new.pointer, "parameters"),
                f"{location} parameter '{name}' is no longer declared",
                "parameter-undeclared",
            )
    if new.body_required and not old.body_required:
        yield Change(
            True,
            spec,
            join_pointer(new.pointer, "requestBody"),
            "a request body is now required",
            "request-body-required",
        )
    for media_type, media in old.body.items():
        now = new.body.get(media_type)
        if now is None:
            yield Change(
                True,
                spec,
                join_pointer(new.pointer, "requestBody", "content"),
                f"request media type {media_type} is no longer accepted",
                "request-media-type",
            )
        elif media.schema_pointer and now.schema_pointer:
            yield from _diff_schema(
                before, after, media.schema_pointer, now.schema_pointer, "request", spec
            )
    for status, response in old.responses.items():
        now_response = new.responses.get(status)
        if now_response is None:
            yield Change(
                True,
                spec,
                join_pointer(new.pointer, "responses"),
                f"status {status} of {new.operation_id} is no longer declared",
                "status-undeclared",
            )
            continue
        for media_type, media in response.content.items():
            now = now_response.content.get(media_type)
            if now is None:
                yield Change(
                    True,
                    spec,
                    join_pointer(new.pointer, "responses", status, "content"),
                    f"status {status} no longer answers {media_type}",
                    "media-type-undeclared",
                )
            elif media.schema_pointer and now.schema_pointer:
                yield from _diff_schema(
                    before, after, media.schema_pointer, now.schema_pointer, "response", spec
                )
    for status in sorted(set(new.responses) - set(old.responses)):
        yield Change(
            False,
            spec,
            join_pointer(new.pointer, "responses", status),
            f"new status {status} of {new.operation_id}",
            "status-added",
        )


# --- schemas ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a schema (with its allOf/oneOf/anyOf parts) says, merged."""

    pointer: str
    types: frozenset[str]
    enum: tuple[Any, ...] | None
    properties: dict[str, str]  # name -> pointer of its schema
    required: frozenset[str]
    closed: bool
    items: str | None


def _shape(holder: Api | dict[str, Any], pointer: str) -> _Shape:
    data = holder.document.data if isinstance(holder, Api) else holder
    types: set[str] = set()
    enum: list[Any] | None = None
    properties: dict[str, str] = {}
    required: set[str] = set()
    closed = False
    items: str | None = None
    for current in subschemas(data, pointer):
        try:
            node = resolve_pointer(data, current)
        except PointerError:
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        types.update(
            [kind] if isinstance(kind, str) else [k for k in kind or [] if isinstance(k, str)]
        )
        if node.get("nullable") is True:
            types.add("null")
        if isinstance(node.get("enum"), list):
            enum = [*(enum or []), *node["enum"]]
        if "const" in node:
            enum = [*(enum or []), node["const"]]
        for name in node.get("properties") or {}:
            properties.setdefault(str(name), join_pointer(current, "properties", name))
        required.update(str(r) for r in node.get("required") or [])
        closed = closed or node.get("additionalProperties") is False
        if isinstance(node.get("items"), dict) and items is None:
            items = join_pointer(current, "items")
    return _Shape(
        follow_refs(data, pointer),
        frozenset(types),
        tuple(enum) if enum is not None else None,
        properties,
        frozenset(required),
        closed,
        items,
    )


def _diff_schema(  # noqa: PLR0912, PLR0917 - one branch per kind of change
    before: Api | dict[str, Any],
    after: Api | dict[str, Any],
    old_pointer: str,
    new_pointer: str,
    direction: Direction,
    spec: str,
    depth: int = 0,
    seen: frozenset[tuple[str, str]] = frozenset(),
) -> Iterator[Change]:
    if depth > 24 or (old_pointer, new_pointer) in seen:
        return
    seen = seen | {(old_pointer, new_pointer)}
    old, new = _shape(before, old_pointer), _shape(after, new_pointer)
    reading = direction == "response"
    if old.types and new.types and old.types != new.types:
        widened = new.types - old.types
        narrowed = old.types - new.types
        # An answer may now hold a type the consumer does not expect; a request may now
        # refuse a type the consumer sends.
        breaking = bool(widened) if reading else bool(narrowed)
        yield Change(
            breaking,
            spec,
            join_pointer(new.pointer, "type"),
            f"type {'/'.join(sorted(old.types))} -> {'/'.join(sorted(new.types))}",
            "type-changed",
        )
    if old.enum is not None:
        dropped = [v for v in old.enum if new.enum is not None and v not in new.enum]
        if dropped:
            yield Change(
                True,
                spec,
                join_pointer(new.pointer, "enum"),
                f"enum value(s) {', '.join(map(str, dropped))} dropped",
                "enum-value-dropped",
            )
        added = [v for v in new.enum or () if v not in old.enum]
        if added:
            yield Change(
                False,
                spec,
                join_pointer(new.pointer, "enum"),
                f"enum value(s) {', '.join(map(str, added))} added",
                "enum-value-added",
            )
    for name, old_child in old.properties.items():
        new_child = new.properties.get(name)
        if new_child is None:
            if reading or new.closed:
                yield Change(
                    True,
                    spec,
                    join_pointer(new.pointer, "properties"),
                    f"field '{name}' removed (or renamed)",
                    "field-removed",
                )
            continue
        if reading and name in old.required and name not in new.required:
            yield Change(
                True,
                spec,
                join_pointer(new.pointer, "required"),
                f"field '{name}' is no longer required",
                "field-optional",
            )
        yield from _diff_schema(
            before, after, old_child, new_child, direction, spec, depth + 1, seen
        )
    for name in new.properties:
        if name in old.properties:
            continue
        if not reading and name in new.required:
            yield Change(
                True,
                spec,
                join_pointer(new.pointer, "required"),
                f"new required request field '{name}'",
                "required-field-added",
            )
        else:
            yield Change(
                False,
                spec,
                join_pointer(new.pointer, "properties", name),
                f"new field '{name}'",
                "field-added",
            )
    if not reading:
        for name in sorted((new.required - old.required) & set(old.properties)):
            yield Change(
                True,
                spec,
                join_pointer(new.pointer, "required"),
                f"request field '{name}' is now required",
                "required-field-added",
            )
    if old.items and new.items:
        yield from _diff_schema(
            before, after, old.items, new.items, direction, spec, depth + 1, seen
        )


# --- AsyncAPI --------------------------------------------------------------------------


def _message_users(pacts: list[PactFile], address: str, name: str | None) -> tuple[str, ...]:
    found = set()
    for pact in pacts:
        for interaction in pact.interactions:
            if interaction.kind != "message" or interaction.metadata.get("topic") != address:
                continue
            content = (interaction.raw.get("contents") or {}).get("content")
            if name is None or (isinstance(content, dict) and content.get("type") == name):
                found.add(pact.consumer)
    return tuple(sorted(found))


def _diff_channels(old: SpecIndex, new: SpecIndex, pacts: list[PactFile]) -> Iterator[Change]:
    for address in sorted(set(old.channels) | set(new.channels)):
        before, after = old.channels.get(address), new.channels.get(address)
        if after is None:
            assert before is not None
            yield Change(
                True,
                before.document.display,
                before.pointer,
                f"channel '{address}' is gone (removed or renamed)",
                "channel-missing",
                _message_users(pacts, address, None),
            )
        elif before is None:
            yield Change(
                False,
                after.document.display,
                after.pointer,
                f"new channel '{address}'",
                "channel-added",
            )
        else:
            yield from _diff_channel(before, after, pacts)


def _diff_channel(before: Channel, after: Channel, pacts: list[PactFile]) -> Iterator[Change]:
    spec = after.document.display
    for sender in sorted(before.senders - after.senders):
        yield Change(
            True,
            spec,
            "/operations",
            f"'{sender}' no longer sends on '{after.address}'",
            "not-a-sender",
            _message_users(pacts, after.address, None),
        )
    for receiver in sorted(before.receivers - after.receivers):
        yield Change(
            True,
            spec,
            "/operations",
            f"'{receiver}' no longer receives from '{after.address}'",
            "not-a-receiver",
        )
    for name, pointer in before.messages.items():
        now = after.messages.get(name)
        users = _message_users(pacts, after.address, name)
        if now is None:
            yield Change(
                True,
                spec,
                join_pointer(after.pointer, "messages"),
                f"message '{name}' is gone from '{after.address}'",
                "message-missing",
                users,
            )
            continue
        old_payload = payload_pointer(before.document.data, pointer)
        new_payload = payload_pointer(after.document.data, now)
        if old_payload and new_payload:
            for change in _diff_schema(
                before.document.data,
                after.document.data,
                old_payload,
                new_payload,
                "response",
                spec,
            ):
                yield Change(
                    change.breaking,
                    spec,
                    change.pointer,
                    f"{name}: {change.message}",
                    change.rule,
                    users,
                )
    for name in sorted(set(after.messages) - set(before.messages)):
        yield Change(
            False,
            spec,
            join_pointer(after.pointer, "messages"),
            f"new message '{name}' on '{after.address}'",
            "message-added",
        )
