"""A whole customer session through the mesh, every fault kind included, leaves a journal
with zero spec violations: every answer any component gave -- the engine's own refusals
(400, 415, 422, 401) as much as its simulators' outcomes (402, 409, 503...) -- is
documented in its spec, and every request each caller sent keeps the callee's contract.

An answer the mesh itself injected (an error fault) is journaled as the fault, not as a
violation of the callee; what the caller then answered is judged on its own edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ecom_harness.harness.faults import Fault
from ecom_harness.harness.journal import EventEntry, Interaction
from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.stubs.state import OutboxRelay

pytestmark = pytest.mark.asyncio(loop_scope="module")

# A new customer registers; the seed data's customer (specs/seed.toml) logs in.
NEWCOMER = {"email": "anna.schmidt@example.com", "password": "correct-horse-battery"}
CREDENTIALS = {"email": "lena.fischer@example.com", "password": "correct-horse-battery-staple"}
ADDRESS = {
    "name": "Lena Fischer",
    "line1": "Torstraße 112",
    "city": "Berlin",
    "postal_code": "10119",
    "country": "DE",
}
INVENTORY = "order-svc->inventory-svc"
PAYMENT, SHIPPING = "order-svc->payment-svc", "order-svc->shipping-svc"
ORDERS, USERS = "api-gateway->order-svc", "api-gateway->user-svc"


def order(pm: str = "pm_card_visa", quantity: int = 1) -> dict[str, Any]:
    return {
        "items": [{"sku": "SKU-1001", "quantity": quantity}],
        "payment_method": pm,
        "shipping_address": ADDRESS,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    """A mesh whose order-svc gives up on its peers quickly, so timeouts are short."""
    settings = {"order-svc": {"inventory_timeout": 0.3, "peer_timeout": 0.5}}
    async with Mesh(MeshOptions(settings=settings)) as mesh:
        yield mesh


async def settle(mesh: Mesh) -> None:
    """Every outbox published and every event handled."""
    assert mesh.host is not None and mesh.bus is not None
    for stub in mesh.host.stubs.values():
        relay = getattr(stub.simulator, "relay", None)
        if isinstance(relay, OutboxRelay):
            await relay.relay_once()
    await mesh.bus.drain()


def faulted(mesh: Mesh, edge: str, kind: str, **fields: Any) -> None:
    mesh.faults.set(edge, Fault.from_dict({"kind": kind, **fields}))


async def place(client: httpx.AsyncClient, key: str, **options: Any) -> httpx.Response:
    return await client.post("/v1/orders", json=order(**options), headers={"Idempotency-Key": key})


async def sign_up_and_browse(client: httpx.AsyncClient, statuses: dict[str, int]) -> None:
    """Register and log in (the engine's own refusals on the way), then browse."""
    statuses["register"] = (
        await client.post("/v1/auth/register", json={**NEWCOMER, "name": "Anna Schmidt"})
    ).status_code
    statuses["register invalid"] = (
        await client.post("/v1/auth/register", json={"email": "x@example.com"})
    ).status_code
    statuses["register not json"] = (
        await client.post(
            "/v1/auth/register", content=b"{", headers={"Content-Type": "application/json"}
        )
    ).status_code
    statuses["login form"] = (await client.post("/v1/auth/login", data={"email": "x"})).status_code
    statuses["register taken"] = (
        await client.post("/v1/auth/register", json={**CREDENTIALS, "name": "Lena"})
    ).status_code
    statuses["me anonymous"] = (await client.get("/v1/users/me")).status_code
    login = await client.post("/v1/auth/login", json=CREDENTIALS)
    statuses["login"] = login.status_code
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    # browse
    statuses["me"] = (await client.get("/v1/users/me")).status_code
    statuses["products"] = (await client.get("/v1/products", params={"limit": 5})).status_code
    statuses["product"] = (await client.get("/v1/products/SKU-1001")).status_code
    statuses["product unknown"] = (await client.get("/v1/products/SKU-9999")).status_code
    statuses["product malformed"] = (await client.get("/v1/products/not-a-sku")).status_code
    statuses["products bad limit"] = (
        await client.get("/v1/products", params={"limit": 1000})
    ).status_code


async def order_read_and_cancel(client: httpx.AsyncClient, statuses: dict[str, int]) -> None:
    """Order, read it back, cancel it (twice); a decline, a replay, out of stock."""
    # order, read it back, cancel it (twice)
    placed = await place(client, "session-1")
    statuses["order"] = placed.status_code
    order_id = placed.json()["order_id"]
    statuses["orders"] = (await client.get("/v1/orders")).status_code
    statuses["get order"] = (await client.get(f"/v1/orders/{order_id}")).status_code
    statuses["summary"] = (await client.get(f"/v1/orders/{order_id}/summary")).status_code
    statuses["order malformed id"] = (await client.get("/v1/orders/not-an-id")).status_code
    statuses["order unknown"] = (await client.get("/v1/orders/ord_Unknown00001")).status_code
    statuses["cancel"] = (
        await client.post(f"/v1/orders/{order_id}/cancel", json={"comment": "wrong size"})
    ).status_code
    statuses["cancel again"] = (
        await client.post(f"/v1/orders/{order_id}/cancel", json={})
    ).status_code
    statuses["order form body"] = (
        await client.post(
            "/v1/orders", data={"x": "1"}, headers={"Idempotency-Key": "session-form"}
        )
    ).status_code
    statuses["order without key"] = (await client.post("/v1/orders", json=order())).status_code
    # decline, out of stock, a replayed key
    statuses["declined"] = (
        await place(client, "session-2", pm="pm_card_chargeDeclinedInsufficientFunds")
    ).status_code
    statuses["replayed decline"] = (
        await place(client, "session-2", pm="pm_card_chargeDeclinedInsufficientFunds")
    ).status_code
    statuses["key reused"] = (await place(client, "session-2")).status_code
    statuses["out of stock"] = (await place(client, "session-3", quantity=100)).status_code


async def under_faults(
    mesh: Mesh, client: httpx.AsyncClient, statuses: dict[str, int]
) -> httpx.Response:
    """Every fault kind, each on an edge of the order's path; the circuit opens."""
    # every fault kind, each on an edge of the order's path
    faulted(mesh, USERS, "delay", delay_ms=50, times=1)
    statuses["delay"] = (await place(client, "session-4")).status_code
    faulted(mesh, USERS, "error", status=500, body={"error": "on fire"}, times=1)
    statuses["user-svc error"] = (await place(client, "session-5")).status_code
    faulted(mesh, ORDERS, "reset", times=1)
    statuses["order-svc reset"] = (await place(client, "session-6")).status_code
    faulted(mesh, PAYMENT, "timeout", times=1)
    statuses["payment timeout"] = (await place(client, "session-7")).status_code
    faulted(mesh, SHIPPING, "error", status=503, times=1)
    statuses["shipping error"] = (await place(client, "session-8")).status_code
    faulted(mesh, INVENTORY, "timeout")
    statuses["inventory timeouts"] = max(
        [(await place(client, f"session-9-{i}")).status_code for i in range(3)]
    )
    opened = await place(client, "session-10")
    statuses["circuit open"] = opened.status_code
    mesh.faults.clear()
    return opened


async def test_a_whole_session_leaves_no_violation_in_the_journal(mesh: Mesh) -> None:
    statuses: dict[str, int] = {}
    await mesh.seed("inventory-svc", {"SKU-1001": 50})  # so 100 units are out of stock
    async with mesh.client() as client:
        await sign_up_and_browse(client, statuses)
        await order_read_and_cancel(client, statuses)
        opened = await under_faults(mesh, client, statuses)
    await asyncio.sleep(0.5)  # the hung-up exchanges of the timeouts are recorded on close
    await settle(mesh)

    assert statuses == {
        "register": 201,
        "register invalid": 422,
        "register taken": 409,
        "register not json": 400,
        "login form": 415,
        "me anonymous": 401,
        "login": 200,
        "me": 200,
        "products": 200,
        "product": 200,
        "product unknown": 404,
        "product malformed": 422,
        "products bad limit": 422,
        "order": 201,
        "orders": 200,
        "get order": 200,
        "summary": 200,
        "order malformed id": 422,
        "order unknown": 404,
        "cancel": 200,
        "cancel again": 409,
        "order form body": 415,
        "order without key": 422,
        "declined": 402,
        "replayed decline": 402,
        "key reused": 422,
        "out of stock": 409,
        "delay": 201,
        "user-svc error": 503,
        "order-svc reset": 503,
        "payment timeout": 503,
        "shipping error": 503,
        "inventory timeouts": 503,
        "circuit open": 503,
    }
    assert opened.json()["circuit"] == "open"
    assert opened.headers["retry-after"].isdigit()

    interactions = [e for e in mesh.journal.entries() if isinstance(e, Interaction)]
    # The requests this test broke on purpose are the client's violations, each refused
    # with a documented 400/401/415/422; nothing else anywhere breaks a spec, in either
    # direction -- least of all an answer.
    refused = (400, 401, 415, 422)
    broken = {name for name, status in statuses.items() if status in refused}
    assert len(broken) == 10
    deliberate = [
        e
        for e in interactions
        if e.edge == "client->api-gateway" and e.status in refused and e.violations
    ]
    assert len(deliberate) == len(broken) - 1  # "key reused" is a valid request, refused
    assert all(v.startswith("request") for e in deliberate for v in e.violations)
    violations = [
        f"{e.seq} {e.edge} {e.operation_id} {e.status}: {v}"
        for e in interactions
        if e not in deliberate
        for v in e.violations
    ]
    assert violations == []
    faults = {e.fault.split()[0] for e in interactions if e.fault}
    assert faults == {"delay", "error", "reset", "timeout"}
    events = [e for e in mesh.journal.entries() if isinstance(e, EventEntry)]
    kinds = {e.message_type for e in events}
    assert {"order.rejected", "order.cancelled", "payment.failed", "inventory.released"} <= kinds
    assert [e.message_type for e in events if e.dead_lettered] == []
