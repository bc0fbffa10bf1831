"""The journal's own view of the event bus: a consumer group of its own on every topic of
the AsyncAPI document, so events from any publisher reach the journal -- a real service
publishing on Kafka included, valid or not.

Each record the group receives is validated against its channel's messages (the same
check the bus makes on publish; a record a real service wrote without it is judged
here) and attributed to its sender: the component whose AsyncAPI ``send`` operation
uses the channel, else the envelope's ``source``.

Deliveries to stub consumers are reported by the bus; a real consumer's show as its
group's committed offsets, which :class:`GroupWatch` polls on a real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from ecom_harness.specs import MessageRejected, MessageValidator
from ecom_harness.stubs import EventBus, Record

from .journal import JOURNAL_GROUP, Journal

__all__ = ["JOURNAL_GROUP", "GroupWatch", "TopicWatch", "receiver_groups", "senders_by_topic"]


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


def receiver_groups(asyncapi: Mapping[str, Any], components: Iterable[str]) -> dict[str, set[str]]:
    """group id -> topics, for the ``receive`` operations of ``components``: the group is
    the operation's Kafka binding ``groupId`` (its one ``enum`` value or ``const``), else
    the component's name."""
    wanted = set(components)
    channels = asyncapi.get("channels") or {}
    found: dict[str, set[str]] = {}
    for operation in (asyncapi.get("operations") or {}).values():
        if not isinstance(operation, dict) or operation.get("action") != "receive":
            continue
        component = operation.get("x-component")
        if component not in wanted:
            continue
        ref = (operation.get("channel") or {}).get("$ref", "")
        channel = channels.get(ref.rsplit("/", 1)[-1]) if isinstance(ref, str) else None
        if not isinstance(channel, dict):
            continue
        binding = ((operation.get("bindings") or {}).get("kafka") or {}).get("groupId") or {}
        named = binding.get("const") or (binding.get("enum") or [None])[0] or component
        found.setdefault(str(named), set()).add(str(channel.get("address")))
    return found


class GroupWatch:
    """The committed offsets of real consumers' groups on a real broker, polled and
    linked to the journal's entries: a record below a group's committed offset was
    handled by that group (what a real consumer shows of its deliveries)."""

    def __init__(
        self,
        journal: Journal,
        bootstrap_servers: str,
        groups: Mapping[str, set[str]],
        interval: float = 0.2,
    ):
        self.journal, self.bootstrap_servers = journal, bootstrap_servers
        self.groups, self.interval = dict(groups), interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """One offset reader per group: a consumer with the group's id that subscribes
        to nothing, so it never joins (or disturbs) the group it reads."""
        from aiokafka import AIOKafkaConsumer

        readers = {}
        for group in self.groups:
            reader = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                group_id=group,
                enable_auto_commit=False,
            )
            await reader.start()
            readers[group] = reader
        self._task = asyncio.create_task(self._poll(readers), name="ecom-harness-group-watch")

    async def _poll(self, readers: Mapping[str, Any]) -> None:
        from aiokafka import TopicPartition
        from aiokafka.errors import KafkaError

        try:
            while True:
                for group, reader in readers.items():
                    for topic in sorted(self.groups[group]):
                        for partition in sorted(reader.partitions_for_topic(topic) or ()):
                            try:
                                offset = await reader.committed(TopicPartition(topic, partition))
                            except KafkaError:  # a coordinator moving: next round
                                continue
                            if offset is not None and offset >= 0:
                                self.journal.mark_committed(group, topic, partition, offset)
                await asyncio.sleep(self.interval)
        finally:
            for reader in readers.values():
                await reader.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
