"""The event bus over a real Kafka cluster (or a Kafka-compatible broker such as Tansu).

Same interface and same shared core as the in-memory bus (validation, observer, retries,
drain come from :class:`BusCore`); only writing and reading go through aiokafka. Keys are
UTF-8 bytes, values JSON via orjson, the producer waits for ``acks=all``. A group's
subscriptions to different topics share one ``AIOKafkaConsumer``, as a service's one
consumer subscribes to all its topics; two subscriptions of one group to the same topic
are two members the broker shares partitions between, exactly as two service replicas
would be. Offsets are committed by hand after the handler succeeded (or the
record was dead-lettered), by each member's committer: at most one commit in flight and
one every ``COMMIT_INTERVAL``, covering every partition handled since the last. A failing
handler makes the consumer seek back so the broker delivers the record again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
)

from ecom_harness.specs import MessageValidator

from ._bus import BusCore, BusError, Observer, Record, RetryPolicy, Subscription, make_record

__all__ = [
    "COMMIT_INTERVAL",
    "LOCAL_GROUP_TIMINGS",
    "REDELIVERED_TO",
    "GroupTimings",
    "KafkaBus",
    "create_topics",
]

logger = logging.getLogger(__name__)

#: Header of a record sent again after a broker loss: the groups that already had it.
REDELIVERED_TO = "x-ecom-harness-redelivered-to"
RESEND_ATTEMPTS = 40  # 10 s of tries per record sent again after a broker loss
#: Least time between two commits of one member. A commit per handled batch was a round
#: trip each, and under load the commits cost the mesh more than every other Kafka
#: request together (issue 15); aiokafka's own auto-commit waits 5 s.
COMMIT_INTERVAL = 0.1
#: How long stopping waits for the members' last commits.
FINAL_COMMIT_TIMEOUT = 2.0

_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True, slots=True)
class GroupTimings:
    """Consumer-group timings. The defaults are aiokafka's, which every Kafka accepts.

    A broker takes about as long as the session timeout to form a group, which is what
    makes joining slow; brokers refuse sessions shorter than their
    ``group.min.session.timeout.ms`` (6 s on Apache Kafka).
    """

    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000


#: For a private single-process broker (Tansu on loopback) where joins should be quick.
LOCAL_GROUP_TIMINGS = GroupTimings(session_timeout_ms=2_000, heartbeat_interval_ms=200)


async def create_topics(
    bootstrap_servers: str, partitions: Mapping[str, int], *, replication: int = 1
) -> None:
    """Create the topics that do not exist yet, with their AsyncAPI partition counts.

    Brokers may not auto-create topics, and an auto-created topic would get the broker's
    default partition count rather than the spec's.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(topic, count, replication)
            for topic, count in sorted(partitions.items())
            if topic not in existing
        ]
        if missing:
            response = await admin.create_topics(missing)
            _raise_topic_errors(response.topic_errors)
    finally:
        await admin.close()


def _raise_topic_errors(errors: list[tuple[Any, ...]]) -> None:
    failed = [
        f"{topic}: error {code} {message or ''}".strip()
        for topic, code, message, *_ in errors
        if code not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failed:
        raise BusError("could not create topics: " + "; ".join(failed))


@dataclass(slots=True)
class _Consumer:
    """One member of ``group``: an aiokafka consumer and, per topic it subscribes to,
    the subscription whose handler gets that topic's records."""

    group: str
    routes: dict[str, Subscription]
    client: Any  # AIOKafkaConsumer
    # per partition, the last record handled and not committed yet; set when it grows
    handled: dict[Any, Record] = field(default_factory=dict)
    due: asyncio.Event = field(default_factory=asyncio.Event)
    committer: asyncio.Task[None] | None = None  # see KafkaBus._committer
    # per partition, the task handling its latest batch (see KafkaBus._consume)
    turns: dict[Any, asyncio.Task[None]] = field(default_factory=dict)


class KafkaBus(BusCore):
    """The event bus on Kafka: any cluster by its bootstrap servers.

    ``start`` creates missing topics (unless ``create_topics=False``), starts the
    producer and every member at once (one group formation, not one per member), and
    returns when each group's partitions are shared out among this bus's members, so a
    test can publish right away. New groups read from the earliest offset, as the
    in-memory bus does, so nothing published before a member joined is missed.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        validator: MessageValidator | None = None,
        observer: Observer | None = None,
        retry: RetryPolicy | None = None,
        timings: GroupTimings | None = None,
        client_id: str = "ecom-harness",
        create_topics: bool = True,
        join_timeout: float = 30.0,
    ):
        super().__init__(validator=validator, observer=observer, retry=retry)
        self.bootstrap_servers = bootstrap_servers
        self._timings = timings or GroupTimings()
        self._client_id = client_id
        self._create_topics = create_topics
        self._join_timeout = join_timeout
        self._producer: Any = None
        self._consumers: list[_Consumer] = []
        # Records the broker accepted that not every group of this bus has handled yet,
        # by event id: what a broker that comes back empty has lost (see reconnect).
        self._unsettled: dict[str, _Held] = {}

    async def _open(self) -> None:
        try:
            if self._create_topics:
                await create_topics(self.bootstrap_servers, self.validator.partitions)
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers, client_id=self._client_id, acks="all"
            )
            await self._producer.start()
        except KafkaConnectionError as exc:  # aiokafka's words name no address a user gave
            raise BusError(
                f"Kafka at {self.bootstrap_servers}: no broker answers there "
                "(start one, or use --kafka local to have the mesh start its own)"
            ) from exc
        await self._join(self._members)

    async def _close(self) -> None:
        # What was handled since the last commits: every member's at once, all within one
        # timeout (one after the other, a broker that stopped answering held each up).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINAL_COMMIT_TIMEOUT):
                await asyncio.gather(
                    *(self._commit_handled(consumer) for consumer in self._consumers),
                    return_exceptions=True,
                )
        clients = [consumer.client for consumer in self._consumers]
        if self._producer is not None:
            clients.append(self._producer)
        self._consumers, self._producer = [], None
        outcomes = await asyncio.gather(*map(_stop_client, clients), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                logger.warning("closing a Kafka client failed: %r", outcome)

    async def _join(self, members: list[Subscription]) -> None:
        """Start the members together, then wait until their groups are balanced."""
        joining = [
            _Consumer(group, routes, self._new_consumer(group, list(routes)))
            for group, routes in _share_consumers(members)
        ]
        self._consumers += joining
        await asyncio.gather(*(consumer.client.start() for consumer in joining))
        for consumer in joining:
            name = f"{consumer.group}:{'+'.join(consumer.routes)}"
            self._spawn(self._consume(consumer), f"kafka:{name}")
            consumer.committer = self._spawn(self._committer(consumer), f"kafka-commit:{name}")
        await self._settle()

    def _new_consumer(self, group: str, topics: list[str]) -> Any:
        return AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap_servers,
            client_id=self._client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._timings.session_timeout_ms,
            heartbeat_interval_ms=self._timings.heartbeat_interval_ms,
        )

    async def _settle(self) -> None:
        """Wait until, per group and topic, this bus's members own disjoint, even shares.

        A member that has just joined may still hold the whole topic while the others
        rejoin; publishing then would hand records to a member about to lose them.
        aiokafka offers no event for "the group is stable", hence the short poll.
        """
        try:
            async with asyncio.timeout(self._join_timeout):
                while not self._balanced():
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise BusError(
                f"consumer groups not balanced after {self._join_timeout}s: "
                + "; ".join(self._assignments())
            ) from None

    def _shares(self) -> dict[tuple[str, str], list[frozenset[Any]]]:
        shares: dict[tuple[str, str], list[frozenset[Any]]] = {}
        for consumer in self._consumers:
            owned = consumer.client.assignment()
            for topic in consumer.routes:
                share = frozenset(tp for tp in owned if tp.topic == topic)
                shares.setdefault((consumer.group, topic), []).append(share)
        return shares

    def _balanced(self) -> bool:
        for held in self._shares().values():
            sizes = [len(share) for share in held]
            owned = frozenset[Any]().union(*held)
            if not owned or max(sizes) - min(sizes) > 1 or sum(sizes) != len(owned):
                return False
        return True

    def _assignments(self) -> list[str]:
        return [
            f"group '{group}' on {topic}: {[len(share) for share in held]} partitions"
            for (group, topic), held in sorted(self._shares().items())
        ]

    async def broker_lost(self) -> None:
        """The broker is gone with its log: end this bus's session with it now, before
        one starts again on its address (:meth:`_end_session` with ``lost``). A client
        of the old session that reached the new broker would carry the old log into
        it: an offset committed there makes a group skip that many of the new log's
        records, a batch sent again lands by the old partition count, and even a
        metadata request makes the broker create the topic with its own default count
        (Tansu: 4) before :meth:`reconnect` creates it with the AsyncAPI's (6), so some
        keys' records went to partitions no member reads (issue 15: in about one run in
        seven of the broker-loss test, some confirmed orders never had their email)."""
        await self._end_session(lost=True)

    async def _end_session(self, *, lost: bool) -> None:
        """Let every running handler finish (cancelling one midway is a crash to it:
        notify-svc would keep its claim and never send), stop the delivery loops and
        committers, and stop every client. With ``lost``, what was handled and not
        committed is forgotten (its offsets belong to the old log: it is delivered
        again, which the bus's at-least-once consumers expect), and what the producer
        had not had acknowledged fails at once (its publishers keep it -- an outbox
        retries -- rather than the producer sending it to the next broker). Nothing
        is left to do the second time."""
        async with contextlib.AsyncExitStack() as quiet:
            for member in self._members:
                for lock in member.locks():
                    await quiet.enter_async_context(lock)
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if lost:
            for consumer in self._consumers:
                consumer.handled.clear()
            if self._producer is not None:
                _fail_unacknowledged(self._producer, self.bootstrap_servers)
        await self._close()

    async def reconnect(self, *, lost: bool) -> int:
        """Start over with the broker at the same address (after it was restarted):
        new clients, topics created again; with ``lost`` (it came back empty) every
        record it had accepted but not yet delivered to each group of this bus is sent
        again, marked with the groups that already handled it (they skip it), so each
        group gets each record once. Returns how many records were sent again."""
        await self._end_session(lost=lost)  # done already when broker_lost came first
        # What the old broker held; records written to the new one are held anew.
        held, self._unsettled = list(self._unsettled.values()), {}
        if lost:
            self._progress.wake()
            self._progress = type(self._progress)()  # the old offsets mean nothing now
        await self._open()
        if not lost:
            return 0
        logger.warning(
            "kafka broker %s came back empty: %d record(s) it had not delivered sent again",
            self.bootstrap_servers,
            len(held),
        )
        for index, record in enumerate(held):
            headers = {**record.headers, REDELIVERED_TO: ",".join(sorted(record.groups))}
            value = orjson.loads(record.payload)
            for attempt in range(RESEND_ATTEMPTS):  # a new broker's partitions take a moment
                try:
                    await self.publish(
                        record.topic, record.key, value, headers, publisher=record.source
                    )
                    break
                except Exception:
                    if attempt == RESEND_ATTEMPTS - 1:  # kept for the next reconnect
                        for left in held[index:]:
                            self._unsettled.setdefault(_event_id(left.payload), left)
                        raise
                    await asyncio.sleep(0.25)
        return len(held)

    async def _write(
        self, topic: str, key: str, payload: bytes, headers: dict[str, str], timestamp: int
    ) -> Awaitable[tuple[int, int]]:
        if self._producer is None:
            raise BusError(f"reconnecting to the broker at {self.bootstrap_servers}")
        # Held before sending: a consumer may have the record before the ack is back.
        value = orjson.loads(payload)  # validated on publish: an envelope
        event_id, source = value.get("id"), value.get("source")
        held = isinstance(event_id, str) and event_id not in self._unsettled
        if held:
            had_it = set(headers.get(REDELIVERED_TO, "").split(",")) - {""}
            self._unsettled[str(event_id)] = _Held(
                topic,
                key,
                payload,
                {k: v for k, v in headers.items() if k != REDELIVERED_TO},
                source if isinstance(source, str) else None,
                had_it,
            )

        try:  # into the producer's batch for its partition, after the records before it
            sent = await self._producer.send(
                topic,
                value=payload,
                key=key.encode("utf-8"),
                headers=[(name, text.encode("utf-8")) for name, text in headers.items()],
                timestamp_ms=timestamp,
            )
        except BaseException:
            if held:  # not written: whoever published it keeps it (the outbox retries)
                self._unsettled.pop(str(event_id), None)
            raise
        position: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

        def acknowledged(done: asyncio.Future[Any]) -> None:
            failed = done.cancelled() or done.exception() is not None
            if failed and held:  # not written: the publisher keeps it, as above
                self._unsettled.pop(str(event_id), None)
            if position.done():
                return
            if done.cancelled():
                position.cancel()
            elif (error := done.exception()) is not None:
                position.set_exception(error)
            else:
                metadata = done.result()
                position.set_result((int(metadata.partition), int(metadata.offset)))

        sent.add_done_callback(acknowledged)
        return position

    def _settled(self, group: str, record: Record) -> None:
        """``group`` handled ``record``: forget it once every group of its topic has."""
        event_id = record.value.get("id")
        held = self._unsettled.get(event_id) if isinstance(event_id, str) else None
        if held is None:
            return
        held.groups.add(group)
        wanted = {m.group for m in self._members if m.topic == record.topic}
        if wanted <= held.groups:
            del self._unsettled[str(event_id)]

    async def caught_up(self, group: str, timeout: float = 10.0) -> None:
        """Wait until ``group``'s members here have committed past every record the
        broker holds now on their partitions: a real service publishes to the broker
        directly, so what this bus published is not the whole of it. Raises
        TimeoutError, or BusError when the broker does not answer."""
        members = [c for c in self._consumers if c.group == group]
        try:
            async with asyncio.timeout(timeout):
                targets: list[tuple[_Consumer, Any, int]] = []
                for consumer in members:
                    partitions = list(consumer.client.assignment())
                    if partitions:
                        ends = await consumer.client.end_offsets(partitions)
                        targets += [(consumer, tp, end) for tp, end in ends.items()]
                while targets:
                    targets = [
                        (consumer, tp, end)
                        for consumer, tp, end in targets
                        if (await consumer.client.committed(tp) or 0) < end
                    ]
                    if targets:
                        await asyncio.sleep(0.05)
        except KafkaError as exc:
            raise BusError(f"group {group}: the broker did not say how far it is: {exc}") from exc

    async def _consume(self, consumer: _Consumer) -> None:
        """Fetch batches for one member and hand each partition's records, in order, to
        a task of their own; the partition is paused (not fetched) until it is done.

        So partitions go side by side and none waits for another: a ``concurrent``
        member (notify-svc) handles them at once, as on the in-memory bus, and any other
        member one record at a time all the same (its delivery lock, see
        ``Subscription``). One partition after another, notify-svc's mails fell seconds
        behind the orders on Kafka (issue 15); a whole batch at a time, every partition
        of a member on three topics would wait for the slowest of them."""
        client = consumer.client
        while True:
            batches = await client.getmany(timeout_ms=500)
            for partition, messages in batches.items():
                client.pause(partition)
                # A partition taken by a rebalance and given back is fetched again (its
                # pause is gone): its records wait for the task still on it, if any.
                before = consumer.turns.get(partition)
                turn = self._spawn(
                    self._consume_in_turn(consumer, partition, messages, before),
                    f"kafka:{consumer.group}:{partition.topic}[{partition.partition}]",
                )
                consumer.turns[partition] = turn
                turn.add_done_callback(partial(_resume, consumer, partition))

    async def _consume_in_turn(
        self,
        consumer: _Consumer,
        partition: Any,
        messages: list[Any],
        before: asyncio.Task[None] | None,
    ) -> None:
        if before is not None:
            await asyncio.wait([before])  # how it ended is its own (see _spawn)
        await self._consume_partition(consumer, partition, messages)

    async def _consume_partition(
        self, consumer: _Consumer, partition: Any, messages: list[Any]
    ) -> None:
        """Handle the records in order, then leave the last one handled to the member's
        committer (:meth:`_committer`). A record handled but not committed is delivered
        again after a crash or a rebalance, which the bus's at-least-once consumers
        expect."""
        member = consumer.routes[partition.topic]
        if member.concurrent:
            await self._consume_by_key(consumer, partition, messages)
            return
        group, handled = consumer.group, None
        for message in messages:
            if partition not in consumer.client.assignment():
                break  # revoked by a rebalance: the new owner continues from the commit
            record = _record(message)
            had_it = group in record.headers.get(REDELIVERED_TO, "").split(",")
            if not had_it and not await self._deliver(member, record):
                consumer.client.seek(partition, message.offset)  # fetch it again
                break
            self._settled(group, record)  # handled: even if the commit is lost now
            handled = record
        if handled is not None:
            consumer.handled[partition] = handled
            consumer.due.set()

    async def _consume_by_key(
        self, consumer: _Consumer, partition: Any, messages: list[Any]
    ) -> None:
        """A ``concurrent`` member's batch: records of different keys side by side, each
        key's in order (a record waits until the one before it of its key was handled,
        and is not handled when that one was not). On PostgreSQL a mail took notify-svc
        a few dozen round trips, and one partition's records one after the other fell
        seconds behind the orders under load (issue 15). The commit stays below the
        first record not handled, and the partition is fetched again from there (the
        records of other keys after it come again: the bus is at least once). The batch
        holds the partition's delivery lock throughout, so a reconnect waits for it."""
        member, client = consumer.routes[partition.topic], consumer.client
        latest: dict[bytes | None, asyncio.Task[Record | None]] = {}
        async with member.lock(partition.partition), asyncio.TaskGroup() as batch:
            deliveries = []
            for message in messages:
                after = latest.get(message.key)
                delivery = batch.create_task(
                    self._deliver_after(consumer, partition, message, after)
                )
                latest[message.key] = delivery
                deliveries.append(delivery)
        handled = None
        for message, delivery in zip(messages, deliveries, strict=True):
            record = delivery.result()
            if record is None:
                if partition in client.assignment():
                    client.seek(partition, message.offset)  # fetch it again
                break
            handled = record
        if handled is not None:
            consumer.handled[partition] = handled
            consumer.due.set()

    async def _deliver_after(
        self,
        consumer: _Consumer,
        partition: Any,
        message: Any,
        after: asyncio.Task[Record | None] | None,
    ) -> Record | None:
        """``message`` once ``after`` (the previous record of its key) was handled; the
        record when it was handled too, else None."""
        if after is not None and await after is None:
            return None
        if partition not in consumer.client.assignment():
            return None  # revoked by a rebalance: the new owner continues from the commit
        record, group = _record(message), consumer.group
        had_it = group in record.headers.get(REDELIVERED_TO, "").split(",")
        member = consumer.routes[partition.topic]
        if not had_it and not await self._deliver(member, record, locked=True):
            return None
        self._settled(group, record)
        return record

    async def _committer(self, consumer: _Consumer) -> None:
        """Commit what ``consumer`` handled, one commit in flight and at most one per
        ``COMMIT_INTERVAL``: records handled meanwhile are covered by the next commit,
        so under load a commit covers many batches, and when quiet it follows at once."""
        loop = asyncio.get_running_loop()
        while True:
            await consumer.due.wait()
            started = loop.time()
            await self._commit_handled(consumer)
            await asyncio.sleep(COMMIT_INTERVAL - (loop.time() - started))

    async def _commit_handled(self, consumer: _Consumer) -> None:
        """One commit past every record ``consumer`` handled since the last, for the
        partitions it still owns (a revoked one's new owner continues from its commit)."""
        consumer.due.clear()
        handled, consumer.handled = consumer.handled, {}
        owned = consumer.client.assignment()
        offsets = {tp: record.offset + 1 for tp, record in handled.items() if tp in owned}
        if not offsets:
            return
        try:
            await consumer.client.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            logger.warning(
                "group %s lost %s before committing; they may be delivered again: %r",
                consumer.group,
                ", ".join(f"{tp.topic}[{tp.partition}] at {at}" for tp, at in offsets.items()),
                exc,
            )
            return
        for tp in offsets:
            self._commit(consumer.group, handled[tp])


def _resume(consumer: _Consumer, partition: Any, turn: asyncio.Task[None]) -> None:
    """``turn`` is done with ``partition``: fetch it again, if it is still this
    member's and no later batch of it is being handled."""
    if consumer.turns.get(partition) is turn:
        del consumer.turns[partition]
        if partition in consumer.client.assignment():
            consumer.client.resume(partition)


def _share_consumers(members: list[Subscription]) -> list[tuple[str, dict[str, Subscription]]]:
    """The consumers ``members`` make, each a group and its subscriptions by topic: a
    subscription joins the first consumer of its group not yet on its topic, so a group
    on several topics is one member (one fetch, one heartbeat and one commit for them
    all: with a consumer per subscription, eight in the mesh, the load run sent 8.3
    Kafka requests per order, now 3.4; issue 15), and a second subscription to a topic
    is a second member, as a replica is."""
    consumers: list[tuple[str, dict[str, Subscription]]] = []
    for member in members:
        routes = next(
            (r for g, r in consumers if g == member.group and member.topic not in r), None
        )
        if routes is None:
            routes = {}
            consumers.append((member.group, routes))
        routes[member.topic] = member
    return consumers


async def _stop_client(client: Any) -> None:
    """Stop an aiokafka client. A consumer stopped while its broker is away fails with
    ``CancelledError`` from inside aiokafka (its fetcher awaits a fetch it has just
    cancelled) before stopping its other fetches and closing its connections: those
    are done here then, or the fetches would go on knocking at the address -- and
    reach the next broker to answer there."""
    try:
        await client.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # this task was cancelled, not one of the client's own
        fetches = list(getattr(getattr(client, "_fetcher", None), "_pending_tasks", ()))
        for fetch in fetches:
            fetch.cancel()
        await asyncio.gather(*fetches, return_exceptions=True)
        connections = getattr(client, "_client", None)
        if connections is not None:
            await connections.close()


def _fail_unacknowledged(producer: Any, address: str) -> None:
    """Fail every record ``producer`` holds unacknowledged, so that stopping it does not
    wait (up to its request timeout) to send them to whatever answers next on the
    address. aiokafka has no public call for this (its accumulator is the same from
    0.11 to 0.14); without one, stopping waits as before."""
    accumulator = getattr(producer, "_message_accumulator", None)
    if accumulator is None:
        return
    batches = [b for queue in accumulator._batches.values() for b in queue]
    batches += accumulator._pending_batches
    accumulator.fail_all(KafkaConnectionError(f"the broker at {address} was lost"))
    for batch in batches:  # the batch's own waiters: each record's publisher hears of it
        for future in (batch.future, getattr(batch, "_drain_waiter", None)):
            if future is not None and future.done() and not future.cancelled():
                future.exception()


def _event_id(payload: bytes) -> str:
    return str(orjson.loads(payload).get("id"))


@dataclass(slots=True)
class _Held:
    """A record kept until every group of this bus handled it."""

    topic: str
    key: str
    payload: bytes
    headers: dict[str, str]
    source: str | None
    groups: set[str]


def _record(message: Any) -> Record:
    """A bus record from an aiokafka ``ConsumerRecord``."""
    key = message.key.decode("utf-8", "replace") if message.key is not None else ""
    headers = {name: raw.decode("utf-8", "replace") for name, raw in message.headers or ()}
    return make_record(
        message.topic,
        key,
        message.value or b"",
        headers,
        position=(message.partition, message.offset),
        timestamp=message.timestamp,
    )
