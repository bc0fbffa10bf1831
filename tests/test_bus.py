"""The event bus: Kafka semantics and AsyncAPI validation, in memory and on a real broker.

The behavioural tests take ``make_bus`` and run twice: against :class:`InMemoryBus` and
against :class:`KafkaBus` on a Tansu broker this module starts on loopback. The broker is
shared by the module, so its topics keep records of earlier tests; every test uses fresh
order ids (keys) and group names and looks only at its own keys.
"""

from __future__ import annotations

import asyncio
import copy
import random
import string
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from ecom_harness.specs import Document, MessageRejected, MessageValidator, read_document, spec_root
from ecom_harness.stubs import (
    LOCAL_GROUP_TIMINGS,
    BusError,
    BusEvent,
    DeadLettered,
    Delivered,
    DeliveryFailed,
    EventBus,
    InMemoryBus,
    KafkaBus,
    Observer,
    Outgoing,
    Published,
    PublishedRecord,
    Record,
    RetryPolicy,
    TansuBroker,
    partition_for,
    tansu_broker,
)
from ecom_harness.stubs.events._kafka import COMMIT_INTERVAL

DRAIN = 20.0  # generous for a broker; the in-memory bus drains in milliseconds
PARTITIONS = 6  # what commerce-events.yaml binds every topic to


def _asyncapi() -> dict[str, Any]:
    found = read_document(spec_root() / "asyncapi" / "commerce-events.yaml")
    assert isinstance(found, Document), found
    return found.data


def _examples() -> dict[str, dict[str, Any]]:
    """The first example payload of every message, by envelope type."""
    messages = _asyncapi()["components"]["messages"].values()
    payloads = [message["examples"][0]["payload"] for message in messages]
    return {payload["type"]: payload for payload in payloads}


EXAMPLES = _examples()


def _token(length: int = 12) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=length))


def order_key() -> str:
    return f"ord_{_token()}"


def group_name(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}"


def event(kind: str, order_id: str) -> dict[str, Any]:
    """A valid event of type ``kind`` for ``order_id`` with a fresh event id."""
    value = copy.deepcopy(EXAMPLES[kind])
    value.update(id=f"evt_{_token(16)}", order_id=order_id)
    return value


class Collector:
    """A handler remembering the records of the keys a test owns (the broker is shared)."""

    def __init__(self, keys: list[str]):
        self.keys = set(keys)
        self.records: list[Record] = []

    async def __call__(self, record: Record) -> None:
        if record.key in self.keys:
            self.records.append(record)

    def ids(self, key: str | None = None) -> list[str]:
        return [r.value["id"] for r in self.records if key is None or r.key == key]


class BusFactory(Protocol):
    def __call__(
        self, *, observer: Observer | None = None, retry: RetryPolicy | None = None
    ) -> EventBus: ...


@pytest.fixture(scope="module")
def tansu() -> Iterator[TansuBroker]:
    """One Tansu broker for the module, stopped through its process handle afterwards."""
    with tansu_broker() as broker:
        yield broker


@pytest.fixture(params=["memory", "kafka"])
def make_bus(request: pytest.FixtureRequest) -> BusFactory:
    """Builds an unstarted bus of either kind; tests subscribe, then ``async with`` it."""
    if request.param == "memory":
        return InMemoryBus
    broker: TansuBroker = request.getfixturevalue("tansu")

    def kafka(*, observer: Observer | None = None, retry: RetryPolicy | None = None) -> EventBus:
        return KafkaBus(
            broker.bootstrap_servers, observer=observer, retry=retry, timings=LOCAL_GROUP_TIMINGS
        )

    return kafka


def mine(events: list[BusEvent], keys: list[str]) -> list[BusEvent]:
    return [e for e in events if e.record.key in keys]


# --- behaviour, on both buses ----------------------------------------------------------------


async def test_a_key_keeps_its_partition_and_its_order(make_bus: BusFactory) -> None:
    keys = [order_key() for _ in range(3)]
    seen = Collector(keys)
    bus = make_bus()
    await bus.subscribe("orders", group_name("notify"), seen)
    published: list[tuple[str, str, int, int]] = []
    async with bus:
        for _ in range(4):
            for key in keys:
                value = event("order.placed", key)
                placed = await bus.publish("orders", key, value)
                published.append((key, value["id"], placed.partition, placed.offset))
        await bus.drain(DRAIN)
    for key in keys:
        ours = [p for p in published if p[0] == key]
        assert {partition for _, _, partition, _ in ours} == {partition_for(key, PARTITIONS)}
        offsets = [offset for *_, offset in ours]
        assert offsets == sorted(offsets) and len(set(offsets)) == 4
        assert seen.ids(key) == [event_id for _, event_id, *_ in ours]


async def test_every_group_gets_every_record_once(make_bus: BusFactory) -> None:
    keys = [order_key() for _ in range(4)]
    notify, catalog = Collector(keys), Collector(keys)
    bus = make_bus()
    await bus.subscribe("inventory", group_name("notify"), notify)
    await bus.subscribe("inventory", group_name("catalog"), catalog)
    async with bus:
        sent = []
        for key in keys:
            for kind in ("inventory.reserved", "inventory.released"):
                value = event(kind, key)
                await bus.publish("inventory", key, value)
                sent.append(value["id"])
        await bus.drain(DRAIN)
    assert Counter(notify.ids()) == Counter(sent) == Counter(catalog.ids())
    assert max(Counter(sent).values()) == 1


def keys_covering_every_partition() -> list[str]:
    """Order ids whose partitions include all six, so every group member owns some."""
    keys: dict[int, str] = {}
    while len(keys) < PARTITIONS:
        key = order_key()
        keys.setdefault(partition_for(key, PARTITIONS), key)
    return list(keys.values())


async def test_members_of_a_group_share_the_records(make_bus: BusFactory) -> None:
    keys = keys_covering_every_partition()
    first, second = Collector(keys), Collector(keys)
    group = group_name("notify")
    bus = make_bus()
    await bus.subscribe("payments", group, first)
    await bus.subscribe("payments", group, second)
    async with bus:
        sent = []
        for key in keys * 2:
            value = event("payment.succeeded", key)
            await bus.publish("payments", key, value)
            sent.append(value["id"])
        await bus.drain(DRAIN)
    assert first.ids() and second.ids(), "both members should own partitions"
    assert sorted(first.ids() + second.ids()) == sorted(sent)
    assert not {r.key for r in first.records} & {r.key for r in second.records}


async def test_a_group_on_two_topics_gets_both_and_a_second_member_shares_one(
    make_bus: BusFactory,
) -> None:
    """A group's subscriptions to different topics each get all of their topic, and a
    second subscription to a topic shares it, as a replica does. On Kafka the first two
    are one member of the group (a service's one consumer on both topics), the third
    another: the broker's group has two members, not three."""
    keys = keys_covering_every_partition()
    orders, payments, orders_again = Collector(keys), Collector(keys), Collector(keys)
    group = group_name("notify")
    bus = make_bus()
    await bus.subscribe("orders", group, orders)
    await bus.subscribe("payments", group, payments)
    await bus.subscribe("orders", group, orders_again)
    async with bus:
        sent: dict[str, list[str]] = {"orders": [], "payments": []}
        for key in keys:
            for topic, kind in (("orders", "order.placed"), ("payments", "payment.succeeded")):
                value = event(kind, key)
                await bus.publish(topic, key, value)
                sent[topic].append(value["id"])
        await bus.drain(DRAIN)
        if isinstance(bus, KafkaBus):
            assert await group_members(bus.bootstrap_servers, group) == 2
    assert sorted(payments.ids()) == sorted(sent["payments"])
    assert orders.ids() and orders_again.ids(), "both members on orders should own partitions"
    assert sorted(orders.ids() + orders_again.ids()) == sorted(sent["orders"])


async def group_members(bootstrap_servers: str, group: str) -> int:
    """How many members the broker has in ``group``."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    ((_, name, *_, members),) = described.groups
    assert name == group
    return len(members)


async def test_a_failed_record_comes_again_before_the_next(make_bus: BusFactory) -> None:
    key = order_key()
    events: list[BusEvent] = []
    calls: list[str] = []
    failing: set[str] = set()

    async def flaky(record: Record) -> None:
        if record.key != key:
            return
        calls.append(record.value["id"])
        if record.value["id"] in failing:
            failing.discard(record.value["id"])
            raise ConnectionError("sendgrid is down")

    group = group_name("notify")
    bus = make_bus(observer=events.append, retry=RetryPolicy(max_attempts=3, backoff=0.0))
    await bus.subscribe("orders", group, flaky)
    async with bus:
        placed, confirmed = event("order.placed", key), event("order.confirmed", key)
        failing.add(placed["id"])
        await bus.publish("orders", key, placed)
        await bus.publish("orders", key, confirmed)
        await bus.drain(DRAIN)
    assert calls == [placed["id"], placed["id"], confirmed["id"]]
    outcomes = [
        (type(e).__name__, e.record.value["id"], e.attempt)
        for e in mine(events, [key])
        if not isinstance(e, Published)
    ]
    assert outcomes == [
        ("DeliveryFailed", placed["id"], 1),
        ("Delivered", placed["id"], 2),
        ("Delivered", confirmed["id"], 1),
    ]
    failed = next(e for e in events if isinstance(e, DeliveryFailed))
    assert failed.group == group and "sendgrid is down" in failed.error


async def test_a_record_that_always_fails_is_dead_lettered(make_bus: BusFactory) -> None:
    key = order_key()
    events: list[BusEvent] = []
    poison = event("shipment.scheduled", key)
    good = event("shipment.scheduled", key)
    calls: Counter[str] = Counter()

    async def handler(record: Record) -> None:
        if record.key == key:
            calls[record.value["id"]] += 1
            if record.value["id"] == poison["id"]:
                raise ValueError("cannot render template")

    bus = make_bus(observer=events.append, retry=RetryPolicy(max_attempts=3, backoff=0.0))
    await bus.subscribe("shipments", group_name("notify"), handler)
    async with bus:
        await bus.publish("shipments", key, poison)
        await bus.publish("shipments", key, good)
        await bus.drain(DRAIN)
    assert calls == {poison["id"]: 3, good["id"]: 1}
    dead = [e for e in mine(events, [key]) if isinstance(e, DeadLettered)]
    assert [(e.record.value["id"], e.attempt) for e in dead] == [(poison["id"], 3)]
    assert "cannot render template" in dead[0].error


async def test_an_invalid_event_is_rejected_and_never_delivered(make_bus: BusFactory) -> None:
    key = order_key()
    seen = Collector([key, "order-42"])
    events: list[BusEvent] = []
    bus = make_bus(observer=events.append)
    await bus.subscribe("orders", group_name("notify"), seen)
    async with bus:
        broken = event("order.placed", key)
        del broken["order_id"]
        broken["data"]["currency"] = "EUR"
        with pytest.raises(MessageRejected) as rejected:
            await bus.publish("orders", "order-42", broken)
        found = {(v.pointer, "order_id" in v.message) for v in rejected.value.violations}
        assert found == {("/key", False), ("/value", True), ("/value/data/currency", False)}
        assert rejected.value.message_type == "order.placed"

        wrong_source = event("order.placed", key) | {"source": "payment-svc"}
        with pytest.raises(MessageRejected) as rejected:
            await bus.publish("orders", key, wrong_source)
        assert [v.pointer for v in rejected.value.violations] == ["/value/source"]

        other_topic = event("payment.succeeded", key)
        with pytest.raises(MessageRejected) as rejected:
            await bus.publish("orders", key, other_topic)
        assert [v.pointer for v in rejected.value.violations] == ["/value/type"]
        assert "order.placed" in str(rejected.value)

        valid = event("order.placed", key)
        await bus.publish("orders", key, valid)
        await bus.drain(DRAIN)
    assert seen.ids() == [valid["id"]]
    assert [e.record.value["id"] for e in mine(events, [key]) if isinstance(e, Published)] == [
        valid["id"]
    ]


async def test_an_unknown_topic_is_rejected(make_bus: BusFactory) -> None:
    key = order_key()
    bus = make_bus()
    async with bus:
        with pytest.raises(MessageRejected) as rejected:
            await bus.publish("refunds", key, event("payment.refunded", key))
        assert [v.pointer for v in rejected.value.violations] == ["/topic"]
        assert "payments" in rejected.value.violations[0].message
        with pytest.raises(BusError, match="refunds"):
            await bus.subscribe("refunds", group_name("notify"), Collector([key]))


async def test_the_observer_sees_publishing_and_delivery(make_bus: BusFactory) -> None:
    key = order_key()
    events: list[BusEvent] = []
    group = group_name("notify")
    bus = make_bus(observer=events.append)
    await bus.subscribe("payments", group, Collector([key]))
    async with bus:
        failed = event("payment.failed", key)
        first = await bus.publish("payments", key, failed, {"traceparent": "00-abc-01"})
        second = await bus.publish("payments", key, event("payment.refunded", key), publisher="me")
        await bus.drain(DRAIN)
    ours = mine(events, [key])
    published = [e for e in ours if isinstance(e, Published)]
    delivered = [e for e in ours if isinstance(e, Delivered)]
    seen = [
        (e.publisher, e.record.topic, e.record.key, e.record.message_type, e.record.partition)
        for e in published
    ]
    assert seen == [
        ("payment-svc", "payments", key, "payment.failed", first.partition),
        ("me", "payments", key, "payment.refunded", second.partition),
    ]
    assert [e.record.offset for e in published] == [first.offset, second.offset]
    assert published[0].record.headers == {"traceparent": "00-abc-01"}
    assert published[0].record.value == failed
    assert [(e.group, e.record.offset, e.record.message_type) for e in delivered] == [
        (group, first.offset, "payment.failed"),
        (group, second.offset, "payment.refunded"),
    ]
    assert delivered[0].record.headers == {"traceparent": "00-abc-01"}
    assert ours.index(delivered[0]) > ours.index(published[0])


# --- the pieces: partitioner, validator, in-memory details -----------------------------------


def test_partitions_match_kafkas_default_partitioner() -> None:
    kafka = DefaultPartitioner()
    for length in range(0, 40):
        key = _token(length) if length else ""
        for partitions in (1, 3, 6, 7):
            expected = kafka(key.encode(), list(range(partitions)), [])
            assert partition_for(key, partitions) == expected, (key, partitions)


def test_partition_counts_come_from_the_kafka_binding() -> None:
    document = _asyncapi()
    assert MessageValidator(document).partitions == dict.fromkeys(
        ("orders", "payments", "inventory", "shipments"), PARTITIONS
    )
    del document["channels"]["orders"]["bindings"]
    document["channels"]["payments"]["bindings"]["kafka"]["partitions"] = 2
    partitions = MessageValidator(document).partitions
    assert (partitions["orders"], partitions["payments"]) == (1, 2)


def test_message_types_are_read_from_the_payload_consts() -> None:
    document = _asyncapi()
    pinned = document["components"]["schemas"]["OrderPlacedEvent"]["allOf"][1]
    pinned["properties"]["type"]["const"] = "order.submitted"
    validator = MessageValidator(document)
    assert validator.message_types("orders") == [
        "order.cancelled",
        "order.confirmed",
        "order.rejected",
        "order.submitted",
    ]
    key = order_key()
    renamed = event("order.placed", key) | {"type": "order.submitted"}
    assert validator.check("orders", key, renamed, {}) == "order.submitted"
    with pytest.raises(MessageRejected):
        validator.check("orders", key, event("order.placed", key), {})


def test_a_message_without_a_type_const_is_a_spec_error() -> None:
    document = _asyncapi()
    del document["components"]["schemas"]["ShipmentScheduledEvent"]["allOf"][1]["properties"][
        "type"
    ]
    with pytest.raises(ValueError, match="shipmentScheduled/payload"):
        MessageValidator(document)


async def test_every_example_in_the_spec_is_accepted() -> None:
    validator = MessageValidator(_asyncapi())
    bus = InMemoryBus(validator=validator)
    checked = 0
    async with bus:
        for channel in _asyncapi()["channels"].values():
            for message in channel["messages"].values():
                name = message["$ref"].rsplit("/", 1)[-1]
                for example in _asyncapi()["components"]["messages"][name]["examples"]:
                    payload = example["payload"]
                    await bus.publish(channel["address"], payload["order_id"], payload)
                    checked += 1
    assert checked >= 9


async def test_publishing_needs_a_started_bus() -> None:
    key = order_key()
    with pytest.raises(BusError, match="start the bus"):
        await InMemoryBus().publish("orders", key, event("order.placed", key))


async def test_drain_names_the_group_still_behind() -> None:
    blocked = asyncio.Event()

    async def stuck(record: Record) -> None:
        await blocked.wait()

    key = order_key()
    async with InMemoryBus() as bus:
        await bus.subscribe("orders", "slow-group", stuck)
        placed = await bus.publish("orders", key, event("order.placed", key))
        with pytest.raises(TimeoutError, match=rf"'slow-group' on orders\[{placed.partition}\]"):
            await bus.drain(0.2)
        blocked.set()
        await bus.drain(1.0)


async def test_each_handler_gets_its_own_copy_of_the_value() -> None:
    key = order_key()
    values: list[dict[str, Any]] = []

    async def meddle(record: Record) -> None:
        record.value["data"]["total_amount"] = -1

    async def keep(record: Record) -> None:
        values.append(record.value)

    async with InMemoryBus() as bus:
        await bus.subscribe("orders", "meddler", meddle)
        await bus.subscribe("orders", "keeper", keep)
        value = event("order.placed", key)
        await bus.publish("orders", key, value)
        value["data"]["total_amount"] = -2
        await bus.drain(1.0)
    assert values[0]["data"]["total_amount"] == EXAMPLES["order.placed"]["data"]["total_amount"]


async def test_a_crashing_observer_surfaces_in_drain() -> None:
    def observer(event: BusEvent) -> None:
        if isinstance(event, Delivered):
            raise RuntimeError("journal full")

    key = order_key()
    async with InMemoryBus(observer=observer) as bus:
        await bus.subscribe("orders", "notify", Collector([key]))
        await bus.publish("orders", key, event("order.placed", key))
        with pytest.raises(BusError, match="journal full"):
            await bus.drain(1.0)


# --- retention (in memory) ----------------------------------------------------------------


async def _publish_handled(bus: InMemoryBus, key: str, count: int) -> None:
    for _ in range(count):
        await bus.publish("orders", key, event("order.placed", key))
    await bus.drain(1.0)
    await asyncio.sleep(0.01)  # older than a retention of 0 s (timestamps are in ms)


async def test_records_every_group_handled_leave_the_log_after_the_retention() -> None:
    """The in-memory log was the whole history of the run (issue 15, flat memory): a
    record every group committed past, older than the retention, goes; the offsets do
    not change, so a later record keeps counting on."""
    key = order_key()
    collector = Collector([key])
    async with InMemoryBus(retention=0) as bus:
        await bus.subscribe("orders", "notify", collector)
        await bus.subscribe("orders", "journal", Collector([key]))
        await _publish_handled(bus, key, 5)
        assert bus.held("orders") == 5  # trimmed as records are written
        last = await bus.publish("orders", key, event("order.placed", key))
        assert bus.held("orders") == 1
        assert last.offset == 5
        await bus.drain(1.0)
    assert len(collector.records) == 6


async def test_the_retention_keeps_what_a_group_has_not_handled() -> None:
    key = order_key()
    blocked = asyncio.Event()

    async def stuck(record: Record) -> None:
        await blocked.wait()

    async with InMemoryBus(retention=0) as bus:
        await bus.subscribe("orders", "fast", Collector([key]))
        await bus.subscribe("orders", "slow", stuck)
        for _ in range(3):
            await bus.publish("orders", key, event("order.placed", key))
        await asyncio.sleep(0.05)
        await bus.publish("orders", key, event("order.placed", key))
        assert bus.held("orders") == 4  # "slow" is still on the first record
        blocked.set()
        await bus.drain(1.0)


async def test_handled_records_younger_than_the_retention_stay() -> None:
    key = order_key()
    async with InMemoryBus(retention=60) as bus:
        await bus.subscribe("orders", "notify", Collector([key]))
        await _publish_handled(bus, key, 3)
        await bus.publish("orders", key, event("order.placed", key))
        assert bus.held("orders") == 4


async def test_a_group_joining_after_a_trim_starts_at_the_oldest_record_held() -> None:
    key = order_key()
    late = Collector([key])
    async with InMemoryBus(retention=0) as bus:
        await bus.subscribe("orders", "notify", Collector([key]))
        await _publish_handled(bus, key, 3)
        await bus.publish("orders", key, event("order.placed", key))
        await bus.subscribe("orders", "late", late)
        await bus.drain(1.0)  # its offset 0 is gone: it reads from the log's start
    assert [r.offset for r in late.records] == [3]


# --- a concurrent member (in memory) ---------------------------------------------------------


async def test_a_concurrent_member_handles_partitions_side_by_side_each_in_order() -> None:
    """notify-svc's subscription: a record held up in one partition does not hold up
    another partition's; within a partition the order stays (issue 15)."""
    slow, fast = keys_covering_every_partition()[:2]
    release = asyncio.Event()
    handled: list[tuple[str, str]] = []

    async def handler(record: Record) -> None:
        if record.key == slow and not release.is_set():
            await release.wait()  # the first of the slow key's records waits for the fast one
        handled.append((record.key, record.value["type"]))
        if record.key == fast:
            release.set()

    bus = InMemoryBus()
    await bus.subscribe("orders", group_name("notify"), handler, concurrent=True)
    async with bus:
        for key in (slow, slow, fast):
            for kind in ("order.placed", "order.confirmed"):
                await bus.publish("orders", key, event(kind, key))
        await bus.drain(DRAIN)
    assert handled[0] == (fast, "order.placed")
    slow_kinds = [kind for key, kind in handled if key == slow]
    assert slow_kinds == ["order.placed", "order.confirmed"] * 2


async def test_a_member_that_is_not_concurrent_handles_one_record_at_a_time() -> None:
    keys = keys_covering_every_partition()
    running, most = 0, 0

    async def handler(record: Record) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        running -= 1

    bus = InMemoryBus()
    await bus.subscribe("orders", group_name("notify"), handler)
    async with bus:
        for key in keys:
            await bus.publish("orders", key, event("order.placed", key))
        await bus.drain(DRAIN)
    assert most == 1


async def test_caught_up_waits_for_records_another_publisher_wrote(
    tansu: TansuBroker,
) -> None:
    """A real service writes to Kafka itself: the bus's own count of what it published
    (``drain``) knows nothing of those records; ``caught_up`` waits for the group to
    have handled everything the broker holds, so an exact count is judged on all."""
    from aiokafka import AIOKafkaProducer

    keys = [order_key() for _ in range(5)]
    seen = Collector(keys)
    bus = KafkaBus(tansu.bootstrap_servers, timings=LOCAL_GROUP_TIMINGS)
    group = group_name("journal")
    await bus.subscribe("orders", group, seen)
    async with bus:
        producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap_servers)
        await producer.start()
        try:
            sent = []
            for key in keys:
                value = event("order.placed", key)
                await producer.send_and_wait("orders", orjson.dumps(value), key=key.encode())
                sent.append(value["id"])
        finally:
            await producer.stop()
        await bus.drain(DRAIN)  # nothing of its own to wait for
        await bus.caught_up(group, DRAIN)
        assert Counter(seen.ids()) == Counter(sent)


async def test_kafka_commits_cover_many_batches_and_reach_the_end(
    tansu: TansuBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member's committer sends at most one commit per ``COMMIT_INTERVAL``, each past
    every record handled since the last (a commit per batch was a round trip each, the
    bus's largest cost under load), and the last commit reaches the end of the log."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    commits: list[dict[Any, int]] = []
    plain_commit = AIOKafkaConsumer.commit

    async def counted(self: Any, offsets: Any = None) -> None:
        commits.append(dict(offsets or {}))
        await plain_commit(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", counted)
    key = order_key()
    seen = Collector([key])
    bus = KafkaBus(tansu.bootstrap_servers, timings=LOCAL_GROUP_TIMINGS)
    await bus.subscribe("orders", group_name("notify"), seen)
    async with bus:
        commits.clear()  # only those of the records below
        started = asyncio.get_running_loop().time()
        for _ in range(40):  # one at a time: each is a batch of its own when fetched
            last = await bus.publish("orders", key, event("order.placed", key))
        await bus.drain(DRAIN)
        elapsed = asyncio.get_running_loop().time() - started
        consumer = bus._consumers[0].client
        partition = TopicPartition("orders", last.partition)
        assert await consumer.committed(partition) == last.offset + 1
    assert len(seen.ids()) == 40
    assert 1 <= len(commits) <= elapsed / COMMIT_INTERVAL + 2, (len(commits), elapsed)
    assert len(commits) < 40


async def test_publish_in_order_reports_each_record_and_keeps_the_order(
    make_bus: BusFactory,
) -> None:
    """The records go out in their order; one the contract rejects is reported as such
    and the others still go; each written one says where it landed."""
    key = order_key()
    seen = Collector([key])
    bus = make_bus()
    await bus.subscribe("orders", group_name("notify"), seen)
    broken = event("order.placed", key)
    del broken["order_id"]
    values = [event("order.placed", key) for _ in range(3)]
    values.insert(1, broken)
    async with bus:
        outcomes = await bus.publish_in_order(
            [Outgoing("orders", key, value) for value in values], publisher="order-svc"
        )
        await bus.drain(DRAIN)
    assert isinstance(outcomes[1], MessageRejected)
    written = [outcomes[0], *outcomes[2:]]
    assert all(isinstance(o, PublishedRecord) for o in written), outcomes
    offsets = [o.offset for o in written if isinstance(o, PublishedRecord)]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3
    assert seen.ids() == [values[0]["id"], values[2]["id"], values[3]["id"]]


async def test_records_after_one_that_could_not_be_written_are_not_written() -> None:
    """When the bus cannot take a record (the broker is gone), the records after it are
    not written either -- a later one of the same key must not overtake it -- and each
    carries that error, so an outbox keeps them all for its next pass."""

    class FailingOnSecond(InMemoryBus):
        writes = 0

        async def _write(self, *args: Any) -> Any:
            self.writes += 1
            if self.writes == 2:
                raise ConnectionError("broker gone")
            return await super()._write(*args)

    key = order_key()
    seen = Collector([key])
    bus = FailingOnSecond()
    await bus.subscribe("orders", group_name("notify"), seen)
    values = [event("order.placed", key) for _ in range(4)]
    async with bus:
        outcomes = await bus.publish_in_order([Outgoing("orders", key, v) for v in values])
        await bus.drain(DRAIN)
    assert isinstance(outcomes[0], PublishedRecord)
    assert [type(o) for o in outcomes[1:]] == [ConnectionError] * 3
    assert bus.writes == 2
    assert seen.ids() == [values[0]["id"]]


async def test_kafka_acknowledges_records_published_in_order_together(
    tansu: TansuBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records published in order are handed to the producer before any acknowledgement
    is awaited, so they travel in a few produce requests, not one round trip each."""
    from aiokafka.producer.sender import Sender

    requests: list[int] = []
    plain_send = Sender._send_produce_req

    async def counted(self: Any, node_id: int, batches: Any) -> Any:
        requests.append(len(batches))
        return await plain_send(self, node_id, batches)

    monkeypatch.setattr(Sender, "_send_produce_req", counted)
    key = order_key()
    seen = Collector([key])
    bus = KafkaBus(tansu.bootstrap_servers, timings=LOCAL_GROUP_TIMINGS)
    await bus.subscribe("orders", group_name("notify"), seen)
    values = [event("order.placed", key) for _ in range(40)]
    async with bus:
        requests.clear()
        outcomes = await bus.publish_in_order([Outgoing("orders", key, v) for v in values])
        await bus.drain(DRAIN)
    assert all(isinstance(o, PublishedRecord) for o in outcomes)
    assert seen.ids() == [v["id"] for v in values]
    assert 1 <= len(requests) <= 4, requests


def keys_of_one_partition(count: int) -> list[str]:
    """``count`` order ids that share a partition."""
    first = order_key()
    keys = [first]
    while len(keys) < count:
        key = order_key()
        if partition_for(key, PARTITIONS) == partition_for(first, PARTITIONS):
            keys.append(key)
    return keys


async def test_kafka_a_concurrent_member_handles_the_keys_of_a_partition_side_by_side(
    tansu: TansuBroker,
) -> None:
    """On Kafka a ``concurrent`` member (notify-svc) handles the records of different keys
    in one fetched batch side by side: a record held up does not hold up another key's.
    Each key stays in order: a record that failed holds back its key's later records
    until it has been handled."""
    slow, failing, fast = keys_of_one_partition(3)
    release = asyncio.Event()
    failed_once = False
    handled: list[tuple[str, str]] = []

    async def handler(record: Record) -> None:
        nonlocal failed_once
        kind = record.value["type"]
        if record.key == failing and kind == "order.placed" and not failed_once:
            failed_once = True
            raise RuntimeError("try again")
        if record.key == slow and kind == "order.placed":
            await release.wait()  # until the fast key's records are handled
        handled.append((record.key, kind))
        if record.key == fast and kind == "order.confirmed":
            release.set()

    bus = KafkaBus(
        tansu.bootstrap_servers,
        timings=LOCAL_GROUP_TIMINGS,
        retry=RetryPolicy(max_attempts=3, backoff=0.01),
    )
    await bus.subscribe("orders", group_name("notify"), handler, concurrent=True)
    async with bus:
        records = [
            Outgoing("orders", key, event(kind, key))
            for key in (slow, failing, fast)
            for kind in ("order.placed", "order.confirmed")
        ]
        outcomes = await bus.publish_in_order(records)  # one batch when fetched
        assert all(isinstance(o, PublishedRecord) for o in outcomes)
        await bus.drain(DRAIN)
    # the records after the failed one come again (at least once): first handlings count
    for key in (slow, failing, fast):
        firsts = list(dict.fromkeys(kind for k, kind in handled if k == key))
        assert firsts == ["order.placed", "order.confirmed"], (key, handled)
    assert handled.index((fast, "order.confirmed")) < handled.index((slow, "order.placed"))
