"""Deadlines nest, and an unknown outcome is never a decline: every edge of the saga with
a timeout fault and with a late answer, through the whole mesh.

The mesh runs with deadlines several times shorter than the defaults (set in one place,
``Deadlines``), so each case takes a fraction of a second. A ``timeout`` fault holds the
first request on the edge unanswered; a ``delay`` fault longer than the caller's timeout
lets the callee act after its caller gave up (a late answer). Both hit the first request
only (``times: 1``), as a slow moment would. Whatever happened, at the end:

* the client's answer matches the order's final state (201 for CONFIRMED; otherwise a
  problem naming the order, with ``Location``, and the order REJECTED);
* no charge is kept for a rejected order (and exactly one for a confirmed one);
* no reservation is left HELD and no shipment SCHEDULED for a rejected order, and the
  stock is back.

A reservation or a shipment whose request outlived order-svc's wait is undone by order id
(``releaseOrderReservation``, ``cancelOrderShipment``), which wins whichever lands first:
a late request then holds or ships nothing. order-svc's breaker cool-down is short here,
since the release waits for inventory-svc to be rested (a cool-down after its failure).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from conftest import asgi_client
from ecom_harness.harness import Fault, Mesh, MeshOptions
from ecom_harness.stubs import Deadlines
from mesh_flow import SKU, place_order, signed_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Short, but with room for a loaded CI machine: a spurious timeout on another edge would
# reject the order for another reason than the one a case provokes.
DEADLINES = Deadlines(
    stripe=0.3,
    stripe_settle_attempts=1,
    inventory=0.4,
    shipping=0.4,
    internal=1.0,
    margin=0.05,
)
INVENTORY, PAYMENT = "order-svc->inventory-svc", "order-svc->payment-svc"
SHIPPING, STRIPE = "order-svc->shipping-svc", "payment-svc->stripe"
TOKEN = {"X-Service-Token": "test-token"}


def late(edge: str) -> float:
    """A delay (ms) past the edge's timeout: the callee acts after its caller gave up."""
    caller, callee = edge.split("->")
    return DEADLINES.edge(caller, callee) * 1000 + 200


# --- the mesh ---------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_mesh() -> AsyncIterator[Mesh]:
    settings = {"order-svc": {"breaker_cooldown": 0.3}}
    async with Mesh(MeshOptions(deadlines=DEADLINES, settings=settings)) as mesh:
        yield mesh


@pytest_asyncio.fixture(loop_scope="module")
async def mesh(shared_mesh: Mesh) -> AsyncIterator[Mesh]:
    await shared_mesh.reset()
    yield shared_mesh


@pytest_asyncio.fixture(loop_scope="module")
async def customer(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(mesh) as client:
        yield client


# --- what is left behind ------------------------------------------------------------------


async def stock(mesh: Mesh) -> dict[str, Any]:
    assert mesh.host is not None
    async with asgi_client(mesh.host, "inventory-svc", **TOKEN) as client:
        found: dict[str, Any] = (await client.get(f"/stock/{SKU}")).json()
    return found


async def charged(mesh: Mesh, order_id: str) -> int:
    """What Stripe kept of every PaymentIntent made for the order (received - refunded)."""
    assert mesh.host is not None
    stripe = mesh.host.stubs["stripe"].simulator
    assert stripe is not None
    table = stripe.intents  # type: ignore[attr-defined]
    async with stripe.ctx.db.connect() as conn:
        rows = (await conn.execute(select(table))).all()
    return sum(
        r.amount_received - r.amount_refunded
        for r in rows
        if r.data.get("metadata", {}).get("order_id") == order_id
    )


async def shipments(mesh: Mesh, order_id: str) -> list[str]:
    assert mesh.host is not None
    async with asgi_client(mesh.host, "shipping-svc", **TOKEN) as client:
        found = await client.get("/shipments", params={"order_id": order_id})
    return [s["status"] for s in found.json()["items"]]


async def reservations_held(mesh: Mesh, order_id: str) -> list[str]:
    assert mesh.host is not None
    inventory = mesh.host.stubs["inventory-svc"].simulator
    assert inventory is not None
    from ecom_harness.stubs.behaviours.inventory_svc import RESERVATIONS

    async with inventory.ctx.db.connect() as conn:
        rows = await conn.execute(
            select(RESERVATIONS.c.status).where(RESERVATIONS.c.order_id == order_id)
        )
        return [r.status for r in rows if r.status == "HELD"]


async def settled(mesh: Mesh) -> None:
    """Every undo step order-svc queued is done (they retry in the background)."""
    assert mesh.host is not None
    order_svc = mesh.host.stubs["order-svc"].simulator
    assert order_svc is not None
    await order_svc.undo.settled(timeout=5)  # type: ignore[attr-defined]


async def check_outcome(
    mesh: Mesh, customer: httpx.AsyncClient, answer: httpx.Response, before: dict[str, Any]
) -> dict[str, Any]:
    """The invariants of the module docstring; returns the order as the client reads it."""
    if answer.status_code == 201:
        order_id = answer.json()["order_id"]
    else:
        problem = answer.json()
        order_id = problem.get("order_id")
        assert order_id, f"the answer names no order: {answer.status_code} {answer.text}"
        assert answer.headers["location"] == f"/v1/orders/{order_id}"
    await settled(mesh)
    order = (await customer.get(f"/v1/orders/{order_id}")).json()
    after = await stock(mesh)
    if answer.status_code == 201:
        assert order["status"] == "CONFIRMED"
        assert await charged(mesh, order_id) == order["total_amount"]
        assert after["on_hand"] == before["on_hand"] - 1
        assert after["reserved"] == before["reserved"]
    else:
        assert order["status"] == "REJECTED", order
        assert answer.json()["order_status"] == "REJECTED"
        assert await charged(mesh, order_id) == 0
        assert "SCHEDULED" not in await shipments(mesh, order_id)
        assert await reservations_held(mesh, order_id) == []
        assert (after["on_hand"], after["reserved"]) == (before["on_hand"], before["reserved"])
    return order


# --- every edge, with a timeout fault and with a late answer ------------------------------

CASES = [
    # edge, fault, the order's end: CONFIRMED or the failure_reason of the REJECTED order
    (INVENTORY, "timeout", "inventory_unavailable"),
    (INVENTORY, "late", "inventory_unavailable"),
    (PAYMENT, "timeout", "payment_unavailable"),
    (PAYMENT, "late", "payment_unavailable"),
    (SHIPPING, "timeout", "shipping_unavailable"),
    (SHIPPING, "late", "shipping_unavailable"),
    # payment-svc settles a timed-out Stripe call with the same Idempotency-Key
    (STRIPE, "timeout", "CONFIRMED"),
    (STRIPE, "late", "CONFIRMED"),
]


@pytest.mark.parametrize(("edge", "kind", "end"), CASES)
async def test_a_slow_edge_never_leaves_a_charge_a_hold_or_a_shipment_behind(
    mesh: Mesh, customer: httpx.AsyncClient, edge: str, kind: str, end: str
) -> None:
    before = await stock(mesh)
    if kind == "timeout":
        mesh.faults.set(edge, Fault("timeout", times=1))
    else:
        mesh.faults.set(edge, Fault("delay", delay_ms=late(edge), times=1))
    answer = await place_order(customer, f"{edge}-{kind}")
    # the slow call is over (the proxy journals it when it ends): nothing of this case
    # lands in the next one
    async with asyncio.timeout(10):
        while not [e for e in mesh.journal.interactions(edge) if e.fault]:
            await asyncio.sleep(0.05)
    order = await check_outcome(mesh, customer, answer, before)
    if end == "CONFIRMED":
        assert answer.status_code == 201, answer.text
    else:
        assert answer.status_code == 503, answer.text
        assert order["failure_reason"] == end
    if edge == SHIPPING:  # not even for a moment: no shipment.scheduled for the customer
        assert await shipments(mesh, order["order_id"]) == []


async def test_a_commit_that_times_out_is_undone_completely(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    """The last forward step: the commit (the second call on the inventory edge) times
    out after the charge and the shipment, so all three are undone."""
    before = await stock(mesh)
    book, seen = mesh.faults, {"inventory": 0}
    take = book.take

    def second_inventory_call_times_out(edge: str) -> Fault | None:
        if edge == INVENTORY:
            seen["inventory"] += 1
            if seen["inventory"] == 2:
                return Fault("timeout")
        return take(edge)

    book.take = second_inventory_call_times_out  # type: ignore[method-assign]
    try:
        answer = await place_order(customer, "commit-timeout")
    finally:
        del book.take
    assert answer.status_code == 503, answer.text
    order = await check_outcome(mesh, customer, answer, before)
    assert order["failure_reason"] == "inventory_unavailable"


async def test_a_charge_that_lands_after_the_saga_gave_up_is_refunded(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    """Stripe slower than payment-svc's whole settling budget: the order is rejected as
    payment_unavailable, and when Stripe's charge lands after all it is refunded."""
    before = await stock(mesh)
    mesh.faults.set(STRIPE, Fault("delay", delay_ms=late(PAYMENT) + 200))
    answer = await place_order(customer, "stripe-very-late")
    mesh.faults.clear(STRIPE)
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"].endswith("/payment-unavailable")
    order = await check_outcome(mesh, customer, answer, before)
    assert order["failure_reason"] == "payment_unavailable"
    late_calls = [e for e in mesh.journal.interactions(STRIPE) if e.caller_gave_up]
    assert late_calls, "the journal marks no Stripe exchange whose caller had given up"
    assert all(e.status == 200 for e in late_calls)  # Stripe answered: the charge happened


async def test_the_journal_marks_an_answer_its_caller_no_longer_waited_for(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    mesh.faults.set(PAYMENT, Fault("delay", delay_ms=late(PAYMENT), times=1))
    answer = await place_order(customer, "payment-late-journal")
    assert answer.status_code == 503
    await settled(mesh)
    async with asyncio.timeout(5):  # the late one lands after the settling one
        while len(mesh.journal.interactions(PAYMENT)) < 3:
            await asyncio.sleep(0.02)
    charges = [e for e in mesh.journal.interactions(PAYMENT) if e.operation_id == "createPayment"]
    late_ones = [e for e in charges if e.caller_gave_up]
    assert [(e.status, e.fault) for e in late_ones] == [(201, f"delay {late(PAYMENT):g} ms")]
    assert [e.caller_gave_up for e in charges if e is not late_ones[0]] == [False]
    # delivered to nobody, and the same answer the settling call got (one charge)
    assert (
        late_ones[0].response_body == next(e for e in charges if not e.caller_gave_up).response_body
    )


async def test_a_retry_with_the_same_key_gets_the_order_the_gateway_gave_up_on(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    """The gateway's own wait outlived: 503 'retry later', and the retry with the same
    Idempotency-Key gets the order that was placed meanwhile (never a second one)."""
    edge = "api-gateway->order-svc"
    mesh.faults.set(edge, Fault("delay", delay_ms=late(edge), times=1))
    first = await place_order(customer, "gateway-late")
    assert first.status_code == 503, first.text
    assert first.headers["retry-after"]
    await settled(mesh)
    again = await place_order(customer, "gateway-late")
    assert again.status_code == 201, again.text
    listed = (await customer.get("/v1/orders")).json()["items"]
    assert [o["order_id"] for o in listed] == [again.json()["order_id"]]
    async with asyncio.timeout(10):  # the late request is over: nothing lands in the next case
        while not [e for e in mesh.journal.interactions(edge) if e.fault]:
            await asyncio.sleep(0.05)


async def test_a_reservation_landing_after_its_release_by_order_id_holds_nothing(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    """The reserve outlives order-svc's wait by more than the breaker's cool-down, so the
    release by order id reaches inventory-svc first: the reservation lands RELEASED."""
    before = await stock(mesh)
    mesh.faults.set(INVENTORY, Fault("delay", delay_ms=late(INVENTORY) + 1000, times=1))
    answer = await place_order(customer, "inventory-very-late")
    assert answer.status_code == 503, answer.text
    order = await check_outcome(mesh, customer, answer, before)
    assert order["failure_reason"] == "inventory_unavailable"
    async with asyncio.timeout(10):  # the late reserve lands
        while not [e for e in mesh.journal.interactions(INVENTORY) if e.fault]:
            await asyncio.sleep(0.05)
    seen = [
        (e.operation_id, e.status, (e.response_body or {}).get("status"), e.caller_gave_up)
        for e in mesh.journal.interactions(INVENTORY)
        if order["order_id"] in e.path + json.dumps(e.request_body)
    ]
    assert sorted(seen) == [
        ("releaseOrderReservation", 204, None, False),  # nothing held yet: none will be
        ("reserveStock", 201, "RELEASED", True),
    ]
    after = await stock(mesh)
    assert (after["on_hand"], after["reserved"]) == (before["on_hand"], before["reserved"])
    assert await reservations_held(mesh, order["order_id"]) == []
