"""The journal's own view of the event bus: a consumer group of its own on every topic of
the AsyncAPI document, so events from any publisher reach the journal -- a real service
publishing on Kafka included, valid or not.

Each record the group receives is validated against its channel's messages (the same
check the bus makes on publish; a record a real service wrote without it is judged
here) and attributed to its sender: the component whose AsyncAPI ``send`` operation
uses the channel, else the envelope's ``source``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecom_harness.specs import MessageRejected, MessageValidator
from ecom_harness.stubs import EventBus, Record

from .journal import JOURNAL_GROUP, Journal

__all__ = ["JOURNAL_GROUP", "TopicWatch", "senders_by_topic"]


def senders_by_topic(asyncapi: Mapping[str, Any]) -> dict[str, str]:
    """topic -> the one component whose ``send`` operation uses its channel (topics
    with no sender, or several, are left out: the envelope's source decides there)."""
    channels = asyncapi.get("channels") or {}
    found: dict[str, set[str]] = {}
    for operation in (asyncapi.get("operations") or {}).values():
        if not isinstance(operation, dict) or operation.get("action") != "send":
            continue
        ref = (operation.get("channel") or {}).get("$ref", "")
        channel = channels.get(ref.rsplit("/", 1)[-1]) if isinstance(ref, str) else None
        component = operation.get("x-component")
        if isinstance(channel, dict) and isinstance(component, str):
            topic = str(channel.get("address") or ref.rsplit("/", 1)[-1])
            found.setdefault(topic, set()).add(component)
    return {topic: next(iter(names)) for topic, names in found.items() if len(names) == 1}


class TopicWatch:
    """Subscribes :data:`JOURNAL_GROUP` to every topic and journals what it receives."""

    def __init__(self, journal: Journal, validator: MessageValidator, senders: Mapping[str, str]):
        self.journal, self.validator, self.senders = journal, validator, dict(senders)

    async def attach(self, bus: EventBus) -> None:
        """Subscribe on ``bus`` (before it starts, so no record is missed)."""
        self.journal.watches_topics = True
        for topic in self.validator.partitions:
            await bus.subscribe(topic, JOURNAL_GROUP, self.seen)

    async def seen(self, record: Record) -> None:
        try:
            self.validator.check(record.topic, record.key, record.value, record.headers)
            violations: tuple[str, ...] = ()
        except MessageRejected as exc:
            violations = tuple(f"event {v.pointer or '/'}: {v.message}" for v in exc.violations)
        source = record.value.get("source")
        sender = self.senders.get(record.topic) or (source if isinstance(source, str) else "")
        self.journal.record_event(record, sender, violations)
