"""The order flow through a running mesh, as the mesh tests drive it: a signed-in
customer, an order placed through the gateway, and waits on the journal (never sleeps)
for what happens after the answer.

Shared by ``test_mesh.py`` and ``test_mesh_kafka.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from ecom_harness.harness import EventEntry, Interaction, Mesh
from ecom_harness.stubs import OutboxRelay

PASSWORD = "correct-horse-battery"
CREDENTIALS = {"email": "anna@example.com", "password": PASSWORD}
ADDRESS = {
    "name": "Anna Schmidt",
    "line1": "Torstrasse 112",
    "city": "Berlin",
    "postal_code": "10119",
    "country": "DE",
}
SKU = "SKU-1001"  # one line, so the gateway's catalog reads cannot interleave

# message type -> (publisher, consumer groups that received it)
ORDER_EVENTS = {
    "order.placed": ("order-svc", ["notify-svc"]),
    "inventory.reserved": ("inventory-svc", ["catalog-svc"]),
    "payment.succeeded": ("payment-svc", ["notify-svc"]),
    "shipment.scheduled": ("shipping-svc", ["notify-svc"]),
    "order.confirmed": ("order-svc", ["notify-svc"]),
}


@asynccontextmanager
async def signed_in(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    """The end user's client, registered and logged in through the gateway: it carries
    the real access token user-svc issued."""
    async with mesh.client() as client:
        created = await client.post("/v1/auth/register", json={**CREDENTIALS, "name": "Anna"})
        assert created.status_code == 201, created.text
        login = await client.post("/v1/auth/login", json=CREDENTIALS)
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield client


async def place_order(
    client: httpx.AsyncClient, key: str, card: str = "pm_card_visa"
) -> httpx.Response:
    body = {
        "items": [{"sku": SKU, "quantity": 1}],
        "payment_method": card,
        "shipping_address": ADDRESS,
    }
    return await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})


async def wait_for_journal(mesh: Mesh, done: Callable[[], bool], what: str, timeout: float) -> None:
    """Return once ``done()`` holds, re-checking on every new journal entry; fail the
    test naming ``what`` after ``timeout`` seconds. Entries written after the answer
    (outbox relays publish after their commit; a proxy records a timed-out exchange when
    the caller hangs up) are awaited this way rather than slept for."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def listener(_: object) -> None:
        loop.call_soon_threadsafe(changed.set)

    mesh.journal.listeners.append(listener)
    try:
        async with asyncio.timeout(timeout):
            while True:
                changed.clear()  # before checking, so no entry slips in between
                if done():
                    return
                await changed.wait()
    except TimeoutError:
        pytest.fail(f"no {what} in the journal within {timeout} s:\n{summary(mesh)}")
    finally:
        mesh.journal.listeners.remove(listener)


def events_of(mesh: Mesh, order_id: str) -> dict[str, EventEntry]:
    """The order's events by message type (the last of each type)."""
    return {e.message_type: e for e in mesh.journal.events() if e.value["order_id"] == order_id}


async def delivered_events(
    mesh: Mesh, order_id: str, timeout: float = 5.0
) -> dict[str, EventEntry]:
    """The order's events once all of ORDER_EVENTS were published and every consumer
    group handled them (so their handlers' own calls are journaled too)."""
    await wait_for_journal(
        mesh,
        lambda: set(ORDER_EVENTS) <= set(events_of(mesh, order_id)),
        f"events {sorted(ORDER_EVENTS)} of {order_id}",
        timeout,
    )
    assert mesh.bus is not None
    await mesh.bus.drain(timeout)
    return events_of(mesh, order_id)


def published(events: dict[str, EventEntry]) -> dict[str, tuple[str, list[str]]]:
    """ORDER_EVENTS as found: type -> (publisher, groups that received it)."""
    return {kind: (events[kind].publisher, events[kind].groups) for kind in ORDER_EVENTS}


def calls(entries: list[Interaction]) -> list[tuple[str, str, str | None, int | None]]:
    return [(e.caller, e.callee, e.operation_id, e.status) for e in entries]


def summary(mesh: Mesh) -> str:
    """The journal, one line per entry, for failure messages."""
    lines = []
    for e in mesh.journal.entries():
        if isinstance(e, Interaction):
            lines.append(f"{e.seq} {e.edge} {e.operation_id} {e.status} {e.fault or ''}")
        else:
            lines.append(f"{e.seq} {e.publisher} {e.topic} {e.message_type} {e.groups}")
    return "\n".join(lines)


async def settle(mesh: Mesh) -> None:
    """Every outbox published and every event handled now, so nothing a test set off
    lands in the journal of the next one."""
    assert mesh.host is not None and mesh.bus is not None
    for stub in mesh.host.stubs.values():
        relay = getattr(stub.simulator, "relay", None)
        if isinstance(relay, OutboxRelay):
            await relay.relay_once()
    await mesh.bus.drain()
