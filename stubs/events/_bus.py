"""The event bus of the stubs layer: Kafka semantics, checked against AsyncAPI on publish.

Stubs and simulators publish and consume through :class:`EventBus`; whether the records
live in this process (:class:`InMemoryBus`) or in a real broker (``KafkaBus``) is a
choice of the run, not of the code. Both share :class:`BusCore`, so validation, the
observer, retries and ``drain`` behave identically and the same tests run against both.

Kafka semantics kept in-process: a topic has N partitions; a record's partition is
Kafka's default one for its key (murmur2), so one key keeps one partition and its order;
each consumer group has its own committed offsets and sees every record once; within a
group each partition belongs to one member at a time; delivery is at least once: a
handler that raises does not commit, and the record comes again (up to a bound, then it
is reported as a dead letter rather than blocking its partition forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeAlias

import orjson

from ecom_harness.specs import MessageRejected, MessageValidator, UnknownChannel, default_validator

from ._partition import partition_for

__all__ = [
    "DEFAULT_RETENTION",
    "BusCore",
    "BusError",
    "BusEvent",
    "DeadLettered",
    "Delivered",
    "DeliveryFailed",
    "EventBus",
    "Handler",
    "InMemoryBus",
    "Observer",
    "Outgoing",
    "Published",
    "PublishedRecord",
    "Record",
    "RetryPolicy",
    "Subscription",
    "make_record",
]

logger = logging.getLogger(__name__)

# Seconds the in-memory bus keeps a record that every consumer group of its topic has
# committed past (Kafka's retention.ms, short: nothing reads a handled record again).
DEFAULT_RETENTION = 10.0


class BusError(RuntimeError):
    """The bus was used wrongly (not started, unknown topic) or a delivery task crashed."""


# --- records and what the observer is told -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One record as a consumer sees it; ``timestamp`` is milliseconds since the epoch."""

    topic: str
    key: str
    value: dict[str, Any]
    headers: dict[str, str]
    partition: int
    offset: int
    timestamp: int

    @property
    def message_type(self) -> str:
        """The envelope's ``type`` (``order.placed``...), the AsyncAPI message it is."""
        kind = self.value.get("type")
        return kind if isinstance(kind, str) else ""


@dataclass(frozen=True, slots=True)
class PublishedRecord:
    """Where a published record landed."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to publish (see :meth:`EventBus.publish_in_order`)."""

    topic: str
    key: str
    value: dict[str, Any]
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """A record was accepted and written; ``publisher`` defaults to the envelope's source."""

    publisher: str
    record: Record


@dataclass(frozen=True, slots=True)
class Delivered:
    """A member of ``group`` handled the record; ``attempt`` counts from 1."""

    group: str
    record: Record
    attempt: int


@dataclass(frozen=True, slots=True)
class DeliveryFailed:
    """The handler raised; the offset stays uncommitted and the record comes again."""

    group: str
    record: Record
    attempt: int
    error: str


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """The handler failed on every allowed attempt; the group moved past the record."""

    group: str
    record: Record
    attempt: int
    error: str


BusEvent: TypeAlias = Published | Delivered | DeliveryFailed | DeadLettered
Observer: TypeAlias = Callable[[BusEvent], None]
Handler: TypeAlias = Callable[[Record], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a record is offered again after its handler raised.

    Bounded so that one poison record cannot stall its partition (and ``drain``) forever;
    the wait grows with the attempt number as ``backoff * attempt`` seconds.
    """

    max_attempts: int = 5
    backoff: float = 0.01


def make_record(
    topic: str,
    key: str,
    payload: bytes,
    headers: Mapping[str, str],
    *,
    position: tuple[int, int],
    timestamp: int,
) -> Record:
    """A record decoded from its wire form, so every reader gets its own copy of the value.

    A value that is not a JSON object (a foreign producer on a real cluster) is kept as
    text under ``undecodable``: handlers fail on it and it ends as a dead letter, visibly.
    """
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        value = {"undecodable": payload.decode("utf-8", "replace")}
    partition, offset = position
    return Record(topic, key, value, dict(headers), partition, offset, timestamp)


# --- the interface ----------------------------------------------------------------------------


class EventBus(Protocol):
    """What the mesh and the simulators use; :class:`InMemoryBus` and ``KafkaBus`` both are."""

    async def start(self) -> None:
        """Connect and begin delivering to the subscriptions made so far."""

    async def stop(self) -> None:
        """Stop delivering and disconnect; committed offsets are kept."""

    async def publish(
        self,
        topic: str,
        key: str,
        value: dict[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        publisher: str | None = None,
    ) -> PublishedRecord:
        """Validate against AsyncAPI, then write; raises :class:`MessageRejected`."""
        ...

    async def publish_in_order(
        self, records: Sequence[Outgoing], *, publisher: str | None = None
    ) -> list[PublishedRecord | Exception]:
        """Publish ``records`` in their order, waiting for the broker once for all of
        them; per record, where it landed or why not (see ``BusCore``)."""
        ...

    async def subscribe(
        self, topic: str, group: str, handler: Handler, *, concurrent: bool = False
    ) -> None:
        """Add ``handler`` as one member of consumer ``group`` on ``topic``;
        ``concurrent``: it may handle records of different partitions side by side
        (see :class:`Subscription`)."""

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every group has handled every record published so far."""

    async def caught_up(self, group: str, timeout: float = 10.0) -> None:
        """Wait until ``group`` has handled every record the bus holds now, whoever
        published it (a real service writes to Kafka itself)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


# --- what both implementations share ----------------------------------------------------------


@dataclass(slots=True)
class Subscription:
    """A member of ``group`` on ``topic``. It handles one record at a time, as a Kafka
    consumer works through its batch, so a handler needs no lock of its own -- unless
    it is ``concurrent``: then records of different partitions are handled side by
    side (each partition still in order), and on Kafka so are the records of different
    keys in a fetched batch (each key still in order), for a handler that orders by key
    itself (notify-svc: one lock per order; a member working through six partitions one
    record at a time let the emails lag the orders by seconds, issue 15)."""

    topic: str
    group: str
    handler: Handler
    concurrent: bool = False
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    _partition_locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    def lock(self, partition: int) -> asyncio.Lock:
        """What a delivery of a record of ``partition`` holds while the handler runs."""
        if not self.concurrent:
            return self.busy
        held = self._partition_locks.get(partition)
        if held is None:
            held = self._partition_locks[partition] = asyncio.Lock()
        return held

    def locks(self) -> list[asyncio.Lock]:
        """Every lock a delivery may hold (held all at once: no handler is running)."""
        return [self.busy, *self._partition_locks.values()]


class _Progress:
    """End offsets this bus wrote and the offsets each group committed: what drain compares."""

    def __init__(self) -> None:
        self._ends: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, str, int], int] = {}
        self._changed = asyncio.Event()

    def published(self, record: Record) -> None:
        where = (record.topic, record.partition)
        self._ends[where] = max(self._ends.get(where, 0), record.offset + 1)

    def commit(self, group: str, record: Record) -> None:
        where = (group, record.topic, record.partition)
        self._committed[where] = max(self._committed.get(where, 0), record.offset + 1)
        self.wake()

    def position(self, group: str, topic: str, partition: int) -> int:
        return self._committed.get((group, topic, partition), 0)

    def wake(self) -> None:
        """Release everyone waiting in :meth:`changed` (a fresh event for the next wait)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        await self._changed.wait()

    def lagging(self, groups: Mapping[str, set[str]]) -> list[str]:
        return [
            f"group '{group}' on {topic}[{partition}] at offset {done} of {end}"
            for (topic, partition), end in sorted(self._ends.items())
            for group in sorted(groups.get(topic, ()))
            if (done := self.position(group, topic, partition)) < end
        ]


class BusCore(ABC):
    """Everything the two buses share: validation, observer, retries, drain and tasks.

    A subclass says how a record is written (:meth:`_write`), how members are added
    (:meth:`_join`) and how it opens and closes; deliveries go through :meth:`_deliver`
    and commits through :meth:`_commit` so both report and retry identically.

    The observer is meant to be a journal and must not raise: an observer failure in
    ``publish`` reaches the publisher (after the write), one during delivery stops that
    partition's delivery and ``drain`` raises it, so a harness bug is never silent.
    """

    def __init__(
        self,
        *,
        validator: MessageValidator | None = None,
        observer: Observer | None = None,
        retry: RetryPolicy | None = None,
    ):
        self.validator = validator or default_validator()
        self._observer = observer
        self._retry = retry or RetryPolicy()
        self._progress = _Progress()
        self._members: list[Subscription] = []
        self._attempts: dict[tuple[str, str, int, int], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._crash: BaseException | None = None
        self._running = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the bus; on failure everything opened so far is closed again."""
        if self._running:
            return
        self._running, self._crash = True, None
        try:
            await self._open()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Cancel the delivery tasks, then close; safe to call twice."""
        if not self._running:
            return
        self._running = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close()

    async def publish(
        self,
        topic: str,
        key: str,
        value: dict[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        publisher: str | None = None,
    ) -> PublishedRecord:
        """Validate against AsyncAPI, write, and tell the observer."""
        [outcome] = await self.publish_in_order(
            [Outgoing(topic, key, value, headers)], publisher=publisher
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def publish_in_order(
        self, records: Sequence[Outgoing], *, publisher: str | None = None
    ) -> list[PublishedRecord | Exception]:
        """Publish ``records`` in their order: each is handed to the broker before the
        next (a partition keeps that order), then their acknowledgements are awaited
        together. One after the other, every record waited for its own round trip, and
        under load an outbox fell further behind the orders the longer the run (issue
        15).

        Per record: where it landed, the :class:`MessageRejected` that kept it out (the
        others still go), or the error that stopped the writing -- the records after
        the first one that could not be handed over are not written, and carry the same
        error. Each value is serialised once; what is written, reported and delivered is
        that wire form, decoded again, so nobody shares the publisher's dict.
        """
        if not self._running:
            raise BusError("start the bus before publishing")
        outcomes: list[PublishedRecord | Exception | None] = [None] * len(records)
        handed: list[tuple[int, Awaitable[tuple[int, int]], bytes, dict[str, str], int]] = []
        for index, outgoing in enumerate(records):
            headers = dict(outgoing.headers or {})
            try:
                self.validator.check(outgoing.topic, outgoing.key, outgoing.value, headers)
            except MessageRejected as rejected:
                outcomes[index] = rejected
                continue
            payload = orjson.dumps(outgoing.value)
            timestamp = time.time_ns() // 1_000_000
            try:
                ack = await self._write(outgoing.topic, outgoing.key, payload, headers, timestamp)
            except Exception as stopped:  # noqa: BLE001 - reported per record
                outcomes[index:] = [stopped] * (len(records) - index)
                break
            handed.append((index, ack, payload, headers, timestamp))
        for index, ack, payload, headers, timestamp in handed:
            try:
                position = await ack
            except Exception as failed:  # noqa: BLE001 - reported per record
                outcomes[index] = failed
                continue
            topic, key = records[index].topic, records[index].key
            record = make_record(
                topic, key, payload, headers, position=position, timestamp=timestamp
            )
            outcomes[index] = self._published(record, publisher)
        return [outcome for outcome in outcomes if outcome is not None]  # every one is set

    def _published(self, record: Record, publisher: str | None) -> PublishedRecord:
        """Note a record the broker acknowledged, and tell the observer."""
        self._progress.published(record)
        source = record.value.get("source")
        self._emit(Published(publisher or (source if isinstance(source, str) else ""), record))
        return PublishedRecord(record.topic, record.partition, record.offset)

    async def subscribe(
        self, topic: str, group: str, handler: Handler, *, concurrent: bool = False
    ) -> None:
        """Add a group member; on a running bus it starts receiving at once."""
        try:
            self.validator.message_types(topic)
        except UnknownChannel as exc:
            raise BusError(str(exc)) from None
        member = Subscription(topic, group, handler, concurrent)
        self._members.append(member)
        if self._running:
            await self._join([member])

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every subscribed group committed past every record published here.

        Dead-lettered records count as done. Raises TimeoutError naming the groups and
        partitions still behind, or BusError if a delivery task crashed.
        """
        try:
            async with asyncio.timeout(timeout):
                while self._lagging():
                    await self._progress.changed()
        except TimeoutError:
            behind = "; ".join(self._lagging())
            raise TimeoutError(f"bus not drained after {timeout}s: {behind}") from None

    async def caught_up(self, group: str, timeout: float = 10.0) -> None:
        """Every record went through this bus here: :meth:`drain` covers ``group``."""
        await self.drain(timeout)

    def _lagging(self) -> list[str]:
        if self._crash is not None:
            raise BusError(f"a delivery task crashed: {self._crash!r}") from self._crash
        groups: dict[str, set[str]] = {}
        for member in self._members:
            groups.setdefault(member.topic, set()).add(member.group)
        lagging = self._progress.lagging(groups)
        if lagging and not self._running:
            raise BusError("the bus is stopped; nothing will be delivered")
        return lagging

    async def _deliver(self, member: Subscription, record: Record, *, locked: bool = False) -> bool:
        """Offer ``record`` to ``member``; True when its offset may be committed.

        False means "give it to the group again" (the handler raised, attempts are left).
        ``locked``: the caller holds the member's lock for the record's partition.
        """
        where = (member.group, record.topic, record.partition, record.offset)
        attempt = self._attempts.get(where, 0) + 1
        try:
            if locked:
                await member.handler(record)
            else:
                async with member.lock(record.partition):
                    await member.handler(record)
        except Exception as exc:  # noqa: BLE001 - whatever a handler raises means "not handled"
            return await self._failed(where, member.group, record, attempt, exc)
        self._attempts.pop(where, None)
        self._emit(Delivered(member.group, record, attempt))
        return True

    async def _failed(
        self,
        where: tuple[str, str, int, int],
        group: str,
        record: Record,
        attempt: int,
        exc: Exception,
    ) -> bool:
        error = f"{type(exc).__name__}: {exc}"
        if attempt >= self._retry.max_attempts:
            self._attempts.pop(where, None)
            logger.error("dead letter: group %s gave up on %s: %s", group, where[1:], error)
            self._emit(DeadLettered(group, record, attempt, error))
            return True
        self._attempts[where] = attempt
        logger.warning("group %s failed on %s (attempt %d): %s", group, where[1:], attempt, error)
        self._emit(DeliveryFailed(group, record, attempt, error))
        await asyncio.sleep(self._retry.backoff * attempt)
        return False

    def _commit(self, group: str, record: Record) -> None:
        """Note that ``group`` committed past ``record`` (drain waits for this)."""
        self._progress.commit(group, record)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run a delivery loop as a task whose crash drain reports instead of hiding."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        logger.error("bus task %s crashed", task.get_name(), exc_info=task.exception())
        self._crash = self._crash or task.exception()
        self._progress.wake()

    def _emit(self, event: BusEvent) -> None:
        if self._observer is not None:
            self._observer(event)

    @abstractmethod
    async def _open(self) -> None:
        """Connect and start delivering to every member in ``self._members``."""

    @abstractmethod
    async def _close(self) -> None:
        """Disconnect (the delivery tasks are already cancelled)."""

    @abstractmethod
    async def _join(self, members: list[Subscription]) -> None:
        """Start delivering to ``members`` on a running bus."""

    @abstractmethod
    async def _write(
        self, topic: str, key: str, payload: bytes, headers: dict[str, str], timestamp: int
    ) -> Awaitable[tuple[int, int]]:
        """Hand one validated record to the log (or the broker's client), after the ones
        handed before; what it returns gives the record's (partition, offset) once it is
        acknowledged."""


# --- in memory -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """A record as the in-memory log keeps it: in wire form, decoded per delivery."""

    key: str
    payload: bytes
    headers: dict[str, str]
    timestamp: int


class _PartitionLog:
    """One partition: an append-only log that readers can wait on, trimmed at its head.

    ``start`` is the offset of the oldest record still held (Kafka's log start offset);
    offsets never change when the head is trimmed. A reader asking for an offset before
    it gets the oldest record held, as a Kafka consumer whose offset fell out of range
    starts again at the earliest (``auto.offset.reset=earliest``).
    """

    def __init__(self, topic: str, partition: int):
        self.topic = topic
        self.partition = partition
        self.start = 0
        self._entries: deque[_Entry] = deque()
        self._grown = asyncio.Event()

    @property
    def end(self) -> int:
        """The offset the next record gets."""
        return self.start + len(self._entries)

    def append(self, entry: _Entry) -> int:
        self._entries.append(entry)
        self._grown.set()
        self._grown = asyncio.Event()
        return self.end - 1

    def trim(self, before: int, older_than: int) -> None:
        """Drop records at offsets below ``before`` written before ``older_than`` (ms)."""
        entries = self._entries
        while entries and self.start < before and entries[0].timestamp < older_than:
            entries.popleft()
            self.start += 1

    async def read(self, offset: int) -> Record:
        """The record at ``offset`` (or the oldest held, if that one is gone), waiting
        until it has been written."""
        while offset >= self.end:
            await self._grown.wait()
        offset = max(offset, self.start)
        entry = self._entries[offset - self.start]
        return make_record(
            self.topic,
            entry.key,
            entry.payload,
            entry.headers,
            position=(self.partition, offset),
            timestamp=entry.timestamp,
        )


class InMemoryBus(BusCore):
    """Kafka semantics in this process, with no broker: the embedded default.

    One task per (group, topic, partition) reads from the group's committed offset; the
    partition's owner is member ``partition % members`` of the group (a rebalance is
    instant here). Topics and partition counts come from the AsyncAPI document.

    Retention, as a broker's: a record goes once every group that ever subscribed to its
    topic has committed past it and it is older than ``retention`` seconds (on a topic
    no group reads, once it is older), checked as records are written. Kept whole, the
    log grew with every event of a run (issue 15, flat memory); ``drain`` and
    ``caught_up`` compare offsets only, which trimming leaves as they were. A group
    that joins later starts at the oldest record still held; ``retention=None`` keeps
    everything (a test that subscribes long after publishing).
    """

    def __init__(
        self,
        *,
        validator: MessageValidator | None = None,
        observer: Observer | None = None,
        retry: RetryPolicy | None = None,
        retention: float | None = DEFAULT_RETENTION,
    ):
        super().__init__(validator=validator, observer=observer, retry=retry)
        self.retention = retention
        self._groups: dict[str, set[str]] = {}  # topic -> every group that subscribed
        self._logs = {
            topic: [_PartitionLog(topic, p) for p in range(count)]
            for topic, count in self.validator.partitions.items()
        }

    def held(self, topic: str) -> int:
        """How many records the bus holds on ``topic`` now, every partition together."""
        return sum(log.end - log.start for log in self._logs[topic])

    async def _open(self) -> None:
        await self._join(self._members)

    async def _close(self) -> None:
        """Nothing to disconnect: the logs and committed offsets stay for a restart."""

    async def _join(self, members: list[Subscription]) -> None:
        """Start the partition readers of groups new to a topic; a member joining a
        group that already reads the topic is picked up by the running readers."""
        running = {task.get_name() for task in self._tasks}
        for member in members:
            self._groups.setdefault(member.topic, set()).add(member.group)
            for log in self._logs[member.topic]:
                name = f"bus:{member.group}:{log.topic}[{log.partition}]"
                if name not in running:
                    running.add(name)
                    self._spawn(self._consume(member.group, log), name)

    async def _write(
        self, topic: str, key: str, payload: bytes, headers: dict[str, str], timestamp: int
    ) -> Awaitable[tuple[int, int]]:
        logs = self._logs[topic]
        partition = partition_for(key, len(logs))
        log = logs[partition]
        offset = log.append(_Entry(key, payload, headers, timestamp))
        self._retain(log, timestamp)
        written = asyncio.get_running_loop().create_future()
        written.set_result((partition, offset))  # written and acknowledged at once
        return written

    def _retain(self, log: _PartitionLog, now: int) -> None:
        """Trim ``log`` to the retention: keep what a group still has to handle (its
        committed offset onwards) and whatever is younger than ``retention``."""
        if self.retention is None:
            return
        groups = self._groups.get(log.topic, ())
        handled = min(
            (self._progress.position(group, log.topic, log.partition) for group in groups),
            default=log.end,
        )
        log.trim(handled, now - int(self.retention * 1000))

    async def _consume(self, group: str, log: _PartitionLog) -> None:
        """Deliver one partition to one group, in order, committing after each success."""
        while True:
            offset = self._progress.position(group, log.topic, log.partition)
            record = await log.read(offset)
            if await self._deliver(self._owner(group, log), record):
                self._commit(group, record)

    def _owner(self, group: str, log: _PartitionLog) -> Subscription:
        members = [m for m in self._members if m.group == group and m.topic == log.topic]
        return members[log.partition % len(members)]
