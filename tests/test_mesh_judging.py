"""The journal sees everything a scenario judges, and names whose each violation is:
documented response headers, the callee's security requirements on proxied requests,
events from any publisher on a real broker (validated against AsyncAPI, attributed to
the channel's sender, linked to the consumers that handled them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ecom_harness.harness.exchange_checks import header_violations
from ecom_harness.harness.journal import JOURNAL_GROUP, EventEntry
from ecom_harness.harness.journal_checks import check_no_violations
from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.specs import load_api, shipped_spec

ORDERS_EDGE = "api-gateway->order-svc"
ORDER_PLACED = {
    "id": "evt_Op7Gx3Mw9Ra",
    "type": "order.placed",
    "source": "order-svc",
    "time": "2025-03-11T09:15:02Z",
    "schema_version": 1,
    "order_id": "ord_7Hq2Kd9xLm",
    "data": {
        "user_id": "usr_4fT9aQ2pLx",
        "items": [{"sku": "SKU-1001", "quantity": 2, "unit_amount": 2599}],
        "total_amount": 5198,
        "currency": "eur",
    },
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    async with Mesh() as started:
        yield started


# --- documented response headers ------------------------------------------------------------


def test_a_required_header_missing_from_an_answer_is_the_callee_s_violation() -> None:
    gateway = load_api(shipped_spec("api-gateway")).operations
    order = load_api(shipped_spec("order-svc")).operations["createOrder"]
    missing = header_violations(gateway["placeOrder"], 201, {"content-type": "application/json"})
    assert missing == ["response /header/location: Location is required on a 201 of placeOrder"]
    assert header_violations(gateway["placeOrder"], 201, {"Location": "/v1/orders/ord_1"}) == []
    assert header_violations(order, 503, {}) == [
        "response /header/retry-after: Retry-After is required on a 503 of createOrder"
    ]
    (wrong,) = header_violations(order, 503, {"Retry-After": "soon"})
    assert wrong == "response /header/retry-after: 'soon' is not an integer"
    (too_small,) = header_violations(order, 503, {"Retry-After": "0"})
    assert too_small.startswith("response /header/retry-after: '0': 0 is less than the minimum")


# --- the callee's security requirements -------------------------------------------------------


@pytest.mark.asyncio(loop_scope="module")
async def test_a_request_without_the_service_token_is_the_caller_s_violation(
    mesh: Mesh,
) -> None:
    """A gateway that forgets X-Service-Token: order-svc rightly answers 401, and the
    journal holds the violation against the caller, not the callee."""
    await mesh.reset()
    async with httpx.AsyncClient(base_url=mesh.url(ORDERS_EDGE)) as forgetful:
        refused = await forgetful.get("/orders", headers={"X-User-Id": "usr_4fT9aQ2pLx"})
        served = await forgetful.get(
            "/orders", headers={"X-User-Id": "usr_4fT9aQ2pLx", "X-Service-Token": "gw"}
        )
    assert (refused.status_code, served.status_code) == (401, 200)
    first, second = mesh.journal.interactions(ORDERS_EDGE)
    assert first.blame() == [("api-gateway", "request: listOrders needs credentials: serviceToken")]
    assert second.violations == ()
    judged = check_no_violations("run:no-violations", [first, second])
    assert not judged.passed and judged.entries == (first.seq,)
    assert "api-gateway (caller on api-gateway->order-svc)" in judged.observed


# --- every publisher's events, on a real broker -----------------------------------------------


async def _until(mesh: Mesh, done: object, timeout: float = 20.0) -> None:
    assert callable(done)
    async with asyncio.timeout(timeout):
        while not done():
            await asyncio.sleep(0.05)


@pytest.mark.timeout(90)
@pytest.mark.asyncio(loop_scope="module")
async def test_a_foreign_publisher_s_events_are_journaled_validated_and_linked() -> None:
    """Records written straight to the broker (as a real order-svc would): the journal's
    own group sees them, attributes them to the channel's sender, records how they break
    the AsyncAPI document, and links the stub consumers that handled them."""
    async with Mesh(MeshOptions(kafka="local")) as mesh:
        producer = AIOKafkaProducer(bootstrap_servers=mesh.bootstrap_servers)
        await producer.start()
        try:
            valid = orjson.dumps(ORDER_PLACED)
            broken = orjson.dumps({**ORDER_PLACED, "id": "evt_Bad0000001", "data": {"total": 1}})
            await producer.send_and_wait("orders", valid, key=b"ord_7Hq2Kd9xLm")
            await producer.send_and_wait("orders", broken, key=b"ord_7Hq2Kd9xLm")
        finally:
            await producer.stop()

        def journaled() -> list[EventEntry]:
            return [e for e in mesh.journal.events("orders") if e.event_id.startswith("evt_")]

        await _until(mesh, lambda: len(journaled()) == 2)
        good, bad = journaled()
        # the stub consumer's delivery, linked (drain() counts only records published
        # through the mesh's own bus, so this waits for it)
        await _until(mesh, lambda: good.groups == ["notify-svc"])
    assert (good.publisher, good.violations) == ("order-svc", ())
    assert JOURNAL_GROUP not in good.groups + bad.groups
    assert bad.publisher == "order-svc" and bad.violations
    assert all(party == "order-svc" for party, _v in bad.blame())
    assert any(v.startswith("event /value/data") for v in bad.violations), bad.violations


@pytest.mark.timeout(90)
@pytest.mark.asyncio(loop_scope="module")
async def test_a_real_consumer_s_deliveries_are_linked_from_its_committed_offsets() -> None:
    """notify-svc for real: its group (the AsyncAPI binding's groupId) commits on the
    broker, and the journal links the events below its committed offset to it."""
    real = {"notify-svc": "http://127.0.0.1:9"}  # its HTTP API plays no part here
    async with Mesh(MeshOptions(kafka="local", real=real)) as mesh:
        producer = AIOKafkaProducer(bootstrap_servers=mesh.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                "orders", orjson.dumps(ORDER_PLACED), key=b"ord_7Hq2Kd9xLm"
            )
        finally:
            await producer.stop()
        await _until(mesh, lambda: len(mesh.journal.events("orders")) == 1)
        (entry,) = mesh.journal.events("orders")
        assert entry.groups == []  # nobody has handled it yet
        consumer = AIOKafkaConsumer(
            "orders",
            bootstrap_servers=mesh.bootstrap_servers,
            group_id="notify-svc",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=10_000, max_records=1)
            await consumer.commit()
            await _until(mesh, lambda: entry.groups == ["notify-svc"])
        finally:
            await consumer.stop()
