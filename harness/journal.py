"""The journal: every interaction the mesh sees, HTTP and events alike, in one order.

Each HTTP exchange on a topology edge is recorded by that edge's proxy with its caller,
callee, operationId, request, response, duration and the spec violations found on
either side; each event on the bus with its publisher, topic, key, type and the consumer
groups that received it. Secrets never reach the journal: credential headers and
secret-looking body fields are redacted when recorded.

Events come from the bus's own reports (``observe_bus``) or, when a :class:`TopicWatch`
is attached (the mesh attaches one), from the journal's own consumer group on every
topic (``record_event``): then every publisher's records are seen, a real service's
included, each with the AsyncAPI violations it has; the bus's reports only link the
consumer groups' deliveries to them.

Every violation names whose it is (:meth:`Interaction.blame`, :meth:`EventEntry.blame`):
a request's is its caller's, an answer's its callee's, an event's its publisher's.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from ecom_harness.stubs import BusEvent, DeadLettered, Delivered, Published, Record

__all__ = ["JOURNAL_GROUP", "EventEntry", "Interaction", "Journal", "redact_body", "redact_headers"]

REDACTED = "[redacted]"
JOURNAL_GROUP = "ecom-harness-journal"  # the journal's own consumer group (TopicWatch)
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-service-token", "cookie", "set-cookie", "x-api-key"}
)
_SECRET_FIELDS = frozenset(
    {
        "password",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "secret",
        "api_key",
        "private_key_pem",
    }
)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: REDACTED if k.lower() in _SECRET_HEADERS else v for k, v in headers.items()}


def redact_body(body: Any) -> Any:
    """The body with secret-looking fields replaced, at any depth."""
    if isinstance(body, dict):
        return {
            k: REDACTED if str(k).lower() in _SECRET_FIELDS else redact_body(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [redact_body(item) for item in body]
    return body


@dataclass(frozen=True, slots=True)
class Interaction:
    """One HTTP exchange on one edge. ``status`` is None when no answer came (a timeout
    or a reset); ``fault`` names the injected fault, ``error`` what went wrong;
    ``caller_gave_up`` marks an answer that came after its caller had stopped waiting."""

    seq: int
    time: float
    caller: str
    callee: str
    operation_id: str | None
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: Any
    status: int | None
    response_headers: dict[str, str]
    response_body: Any
    duration_ms: float
    violations: tuple[str, ...] = ()
    fault: str | None = None
    error: str | None = None
    # the caller had given up (its timeout fired) before this answer came: delivered to
    # nobody, and whatever the callee did happened after its caller stopped waiting
    caller_gave_up: bool = False
    kind: Literal["http"] = "http"

    @property
    def edge(self) -> str:
        return f"{self.caller}->{self.callee}"

    def blame(self) -> list[tuple[str, str]]:
        """``(whose, violation)``: ``request ...`` is the caller's, ``response ...`` the
        callee's (an answer a fault injected is never judged, so never the callee's)."""
        return [
            (self.caller if v.startswith("request") else self.callee, v) for v in self.violations
        ]


@dataclass(slots=True)
class EventEntry:
    """One event on the bus; ``groups`` grows as consumer groups handle it."""

    seq: int
    time: float
    publisher: str
    topic: str
    key: str
    message_type: str
    event_id: str
    partition: int
    offset: int
    value: Any
    groups: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)
    violations: tuple[str, ...] = ()  # how the record breaks the AsyncAPI document
    kind: Literal["event"] = "event"

    def blame(self) -> list[tuple[str, str]]:
        """``(whose, violation)``: every violation of an event is its publisher's."""
        return [(self.publisher, v) for v in self.violations]


Entry = Interaction | EventEntry


class Journal:
    """Append-only, thread-safe record of a mesh run; listeners see each new entry."""

    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._events: dict[tuple[str, int, int], EventEntry] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.listeners: list[Callable[[Entry], None]] = []  # each new entry
        # any change: a new entry, or a delivery linked to an event already journaled
        self.change_listeners: list[Callable[[], None]] = []
        # Set by a TopicWatch: events are journaled from its consumer group, not from the
        # bus's publish reports; deliveries seen before their record wait in _pending.
        self.watches_topics = False
        self._pending: dict[tuple[str, int, int], list[BusEvent]] = {}

    def next_seq(self) -> int:
        with self._lock:
            return next(self._seq)

    def add(self, entry: Entry) -> None:
        with self._lock:
            self._entries.append(entry)
            if isinstance(entry, EventEntry):
                self._events[(entry.topic, entry.partition, entry.offset)] = entry
        for listener in self.listeners:
            listener(entry)
        self._changed()

    def _changed(self) -> None:
        for listener in self.change_listeners:
            listener()

    def observe_bus(self, event: BusEvent) -> None:
        """An event-bus observer: publications become entries (unless a TopicWatch
        journals them), deliveries mark them."""
        record = event.record
        if isinstance(event, Published):
            if not self.watches_topics:
                self.record_event(record, event.publisher)
            return
        where = (record.topic, record.partition, record.offset)
        with self._lock:
            entry = self._events.get(where)
            if entry is None:
                if self.watches_topics:  # the watch has not seen the record yet
                    self._pending.setdefault(where, []).append(event)
                return
        self._mark(entry, event)
        self._changed()

    @staticmethod
    def _mark(entry: EventEntry, event: BusEvent) -> None:
        if getattr(event, "group", None) == JOURNAL_GROUP:
            return
        if isinstance(event, Delivered) and event.group not in entry.groups:
            entry.groups.append(event.group)
        elif isinstance(event, DeadLettered):
            entry.dead_lettered.append(event.group)

    def record_event(
        self, record: Record, publisher: str, violations: tuple[str, ...] = ()
    ) -> EventEntry:
        """Journal one record; deliveries reported before it are linked now."""
        value = record.value
        entry = EventEntry(
            seq=self.next_seq(),
            time=time.time(),
            publisher=publisher,
            topic=record.topic,
            key=record.key,
            message_type=record.message_type,
            event_id=str(value.get("id", "")),
            partition=record.partition,
            offset=record.offset,
            value=redact_body(value),
            violations=violations,
        )
        with self._lock:
            pending = self._pending.pop((record.topic, record.partition, record.offset), [])
        for event in pending:
            self._mark(entry, event)
        self.add(entry)
        return entry

    def mark_committed(self, group: str, topic: str, partition: int, offset: int) -> None:
        """``group`` committed ``offset`` on a partition: every record of it below that
        offset was handled by the group (a real consumer's deliveries, seen from Kafka)."""
        with self._lock:
            found = [
                entry
                for (t, p, o), entry in self._events.items()
                if t == topic and p == partition and o < offset and group not in entry.groups
            ]
            for entry in found:
                entry.groups.append(group)
        if found:
            self._changed()

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def interactions(self, edge: str | None = None) -> list[Interaction]:
        """HTTP entries, optionally of one edge (``"order-svc->inventory-svc"``)."""
        return [
            e
            for e in self.entries()
            if isinstance(e, Interaction) and (edge is None or e.edge == edge)
        ]

    def events(self, topic: str | None = None) -> list[EventEntry]:
        return [
            e
            for e in self.entries()
            if isinstance(e, EventEntry) and (topic is None or e.topic == topic)
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._events.clear()
            self._pending.clear()

    def save(self, path: Path) -> int:
        """Write the journal as JSON Lines (one entry per line); returns the count."""
        entries = self.entries()
        with path.open("wb") as out:
            for entry in entries:
                out.write(orjson.dumps(asdict(entry)) + b"\n")
        return len(entries)

    @staticmethod
    def load(path: Path) -> list[dict[str, Any]]:
        """Entries saved by :meth:`save`, as plain dicts (for reports)."""
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
