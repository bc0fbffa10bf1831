"""Events: the in-process bus with Kafka semantics, the Kafka bus (aiokafka), Kafka's
partitioner, and the Tansu broker the tests and ``--kafka local`` start.

May import: ``ecom_harness.specs``.
Names load on first use (PEP 562): serving a plain spec needs none of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecom_harness._lazy import lazy_exports

if TYPE_CHECKING:
    from ._bus import (
        BusCore,
        BusError,
        BusEvent,
        DeadLettered,
        Delivered,
        DeliveryFailed,
        EventBus,
        Handler,
        InMemoryBus,
        Observer,
        Outgoing,
        Published,
        PublishedRecord,
        Record,
        RetryPolicy,
        Subscription,
        make_record,
    )
    from ._kafka import LOCAL_GROUP_TIMINGS, GroupTimings, KafkaBus, create_topics
    from ._partition import partition_for
    from ._tansu import TansuBroker, TansuStartError, tansu_broker

_EXPORTS = {
    "BusCore": "._bus",
    "BusError": "._bus",
    "BusEvent": "._bus",
    "DeadLettered": "._bus",
    "Delivered": "._bus",
    "DeliveryFailed": "._bus",
    "EventBus": "._bus",
    "GroupTimings": "._kafka",
    "Handler": "._bus",
    "InMemoryBus": "._bus",
    "KafkaBus": "._kafka",
    "LOCAL_GROUP_TIMINGS": "._kafka",
    "Observer": "._bus",
    "Outgoing": "._bus",
    "Published": "._bus",
    "PublishedRecord": "._bus",
    "Record": "._bus",
    "RetryPolicy": "._bus",
    "Subscription": "._bus",
    "TansuBroker": "._tansu",
    "TansuStartError": "._tansu",
    "create_topics": "._kafka",
    "make_record": "._bus",
    "partition_for": "._partition",
    "tansu_broker": "._tansu",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "LOCAL_GROUP_TIMINGS",
    "BusCore",
    "BusError",
    "BusEvent",
    "DeadLettered",
    "Delivered",
    "DeliveryFailed",
    "EventBus",
    "GroupTimings",
    "Handler",
    "InMemoryBus",
    "KafkaBus",
    "Observer",
    "Outgoing",
    "Published",
    "PublishedRecord",
    "Record",
    "RetryPolicy",
    "Subscription",
    "TansuBroker",
    "TansuStartError",
    "create_topics",
    "make_record",
    "partition_for",
    "tansu_broker",
]
