"""The mesh on embedded defaults: every component on loopback, every HTTP edge behind a
recording proxy, events on the in-process bus, all of it in one journal.

Most tests share one mesh per module (``mesh.reset()`` between them: simulators forget
their state, journal and faults clear); those that need other settings start their own.
The order flow and its waits are in ``mesh_flow.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ecom_harness.harness.faults import Fault
from ecom_harness.harness.journal import Journal
from ecom_harness.harness.mesh import Mesh, MeshConfigError, MeshOptions
from ecom_harness.stubs import Deadlines
from ecom_harness.stubs.behaviours.order_svc import OrderSimulator
from mesh_flow import (
    CREDENTIALS,
    ORDER_EVENTS,
    PASSWORD,
    calls,
    delivered_events,
    place_order,
    published,
    settle,
    signed_in,
    summary,
    wait_for_journal,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

REDACTED = "[redacted]"
# What one placeOrder sets off, as the proxies record it: an inner call completes (and
# is journaled) before the call that made it.
ORDER_CHAIN = [
    ("api-gateway", "user-svc", "introspectToken", 200),
    ("api-gateway", "catalog-svc", "getProduct", 200),
    ("api-gateway", "user-svc", "getUser", 200),  # the customer's contact, for the events
    ("order-svc", "inventory-svc", "reserveStock", 201),
    ("payment-svc", "stripe", "createPaymentIntent", 200),
    ("order-svc", "payment-svc", "createPayment", 201),
    ("order-svc", "shipping-svc", "scheduleShipment", 201),
    ("order-svc", "inventory-svc", "commitReservation", 200),
    ("api-gateway", "order-svc", "createOrder", 201),
    ("client", "api-gateway", "placeOrder", 201),
]
CATALOG, INVENTORY = "api-gateway->catalog-svc", "order-svc->inventory-svc"


# --- fixtures ------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_mesh() -> AsyncIterator[Mesh]:
    async with Mesh() as mesh:
        yield mesh


@pytest_asyncio.fixture(loop_scope="module")
async def mesh(shared_mesh: Mesh) -> AsyncIterator[Mesh]:
    await shared_mesh.reset()
    yield shared_mesh
    await settle(shared_mesh)


@pytest_asyncio.fixture(loop_scope="module")
async def customer(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(mesh) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def impatient_mesh() -> AsyncIterator[Mesh]:
    """A mesh of its own whose order-svc waits only 0.2 s for inventory-svc."""
    options = MeshOptions(deadlines=Deadlines(inventory=0.2))
    async with Mesh(options) as mesh:
        yield mesh


# --- one request, its chain of interactions and events -------------------------------------


async def test_one_order_journals_its_chain_of_calls_and_events(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    before = mesh.journal.next_seq()  # everything after the sign-in
    placed = await place_order(customer, "chain-1")
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    events = await delivered_events(mesh, order_id)

    mine = [e for e in mesh.journal.interactions() if e.seq > before]
    # notify-svc's mails are sent by its consumer, at their own pace (see the bus test)
    assert calls([e for e in mine if e.caller != "notify-svc"]) == ORDER_CHAIN, summary(mesh)
    assert [(e.edge, e.violations) for e in mine if e.violations] == []
    assert published(events) == ORDER_EVENTS
    assert events["order.placed"].seq < events["order.confirmed"].seq
    assert events["order.placed"].key == order_id and events["order.placed"].topic == "orders"
    assert all(not e.dead_lettered for e in events.values())


async def test_events_reach_their_consumers_on_the_in_process_bus(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    placed = await place_order(customer, "bus-1")
    assert placed.status_code == 201, placed.text
    order = placed.json()
    events = await delivered_events(mesh, order["order_id"])
    mails = mesh.journal.interactions("notify-svc->sendgrid")
    assert {(m.operation_id, m.status) for m in mails} == {("sendMail", 202)}
    subjects = {m.request_body["personalizations"][0]["subject"] for m in mails}
    assert subjects == {
        f"Your order {order['order_id']} is confirmed",
        f"Your order {order['order_id']} is on its way",
    }
    recipients = {m.request_body["personalizations"][0]["to"][0]["email"] for m in mails}
    assert recipients == {CREDENTIALS["email"]}  # the user's own, from user-svc
    # the contact comes with order.placed: nothing can be sent before it
    assert min(m.seq for m in mails) > events["order.placed"].seq


# --- redaction -----------------------------------------------------------------------------


def _entry(entries: list[dict[str, Any]], edge: str, operation_id: str) -> dict[str, Any]:
    found = [
        e
        for e in entries
        if f"{e.get('caller')}->{e.get('callee')}" == edge and e.get("operation_id") == operation_id
    ]
    assert found, f"no {edge} {operation_id} in the journal"
    return found[0]


def _assert_redacted(entries: list[dict[str, Any]]) -> None:
    register = _entry(entries, "client->api-gateway", "registerUser")
    assert register["request_body"]["password"] == REDACTED
    assert register["request_body"]["email"] == CREDENTIALS["email"]  # the rest is kept
    login = _entry(entries, "client->api-gateway", "login")
    assert login["request_body"]["password"] == REDACTED
    assert login["response_body"]["access_token"] == REDACTED
    session = _entry(entries, "api-gateway->user-svc", "createSession")
    assert session["request_body"]["password"] == REDACTED
    assert session["response_body"]["access_token"] == REDACTED
    assert session["request_headers"]["x-service-token"] == REDACTED
    introspect = _entry(entries, "api-gateway->user-svc", "introspectToken")
    assert introspect["request_body"]["token"] == REDACTED
    order = _entry(entries, "client->api-gateway", "placeOrder")
    assert order["request_headers"]["authorization"] == REDACTED
    mail = _entry(entries, "notify-svc->sendgrid", "sendMail")
    assert mail["request_headers"]["authorization"] == REDACTED


async def test_secrets_are_redacted_in_the_journal_and_its_saved_file(
    mesh: Mesh, customer: httpx.AsyncClient, tmp_path: Path
) -> None:
    placed = await place_order(customer, "redact-1")
    assert placed.status_code == 201, placed.text
    await delivered_events(mesh, placed.json()["order_id"])  # notify-svc's mails too
    token = customer.headers["authorization"].removeprefix("Bearer ")
    _assert_redacted([asdict(e) for e in mesh.journal.entries()])

    saved = tmp_path / "j.jsonl"
    assert mesh.journal.save(saved) == len(mesh.journal.entries())
    _assert_redacted(Journal.load(saved))
    text = saved.read_text()
    for secret in (PASSWORD, token, "api-gateway-token", "SG.ecomharness"):
        assert secret not in text


# --- faults --------------------------------------------------------------------------------


def fault(**fields: Any) -> Fault:
    return Fault.from_dict(fields)


async def test_a_delay_slows_the_edge_and_the_request_still_succeeds(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    mesh.faults.set(CATALOG, fault(kind="delay", delay_ms=150))
    placed = await place_order(customer, "delay-1")
    assert placed.status_code == 201, placed.text
    (read,) = mesh.journal.interactions(CATALOG)
    assert (read.status, read.fault) == (200, "delay 150 ms")
    assert read.duration_ms >= 150
    order = mesh.journal.interactions("client->api-gateway")[-1]
    assert (order.operation_id, order.duration_ms >= 150) == ("placeOrder", True)


async def test_an_error_is_what_the_caller_sees(mesh: Mesh, customer: httpx.AsyncClient) -> None:
    injected = {"error": "catalog on fire"}
    mesh.faults.set(CATALOG, fault(kind="error", status=500, body=injected))
    placed = await place_order(customer, "error-1")
    # the gateway documents a failing downstream on placeOrder as 503 + Retry-After
    assert placed.status_code == 503, placed.text
    assert placed.json()["type"].endswith("/service-unavailable")
    assert "catalog-svc answered 500" in placed.json()["detail"]
    assert "retry-after" in placed.headers
    (read,) = mesh.journal.interactions(CATALOG)
    assert (read.status, read.response_body, read.fault) == (500, injected, "error 500")
    # the injected answer is the fault's, not catalog-svc's: getProduct documents no 500,
    # yet nothing is held against the callee (nor the caller, whose request was fine)
    assert read.violations == () and read.blame() == []
    assert mesh.journal.interactions("api-gateway->order-svc") == []  # never got that far


async def test_a_reset_drops_the_connection_and_the_caller_reports_unavailability(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    mesh.faults.set("api-gateway->order-svc", fault(kind="reset"))
    placed = await place_order(customer, "reset-1")
    assert placed.status_code == 503, placed.text
    assert placed.json()["type"].endswith("/service-unavailable")
    assert "order-svc could not be reached" in placed.json()["detail"]
    (create,) = mesh.journal.interactions("api-gateway->order-svc")
    assert (create.status, create.fault) == (None, "reset")
    assert create.error is not None and "reset" in create.error
    assert mesh.journal.interactions(INVENTORY) == []  # order-svc never saw the request


async def test_fail_twice_then_recover(mesh: Mesh, customer: httpx.AsyncClient) -> None:
    mesh.faults.set(CATALOG, fault(kind="error", status=503, times=2))
    statuses = [(await place_order(customer, f"flaky-{i}")).status_code for i in range(3)]
    assert statuses == [503, 503, 201]
    assert [e.fault for e in mesh.journal.interactions(CATALOG)] == ["error 503", "error 503", None]
    assert mesh.faults.active() == {}


async def test_clearing_faults_restores_normal_behaviour(
    mesh: Mesh, customer: httpx.AsyncClient
) -> None:
    mesh.faults.set(CATALOG, fault(kind="error", status=500))
    mesh.faults.set(INVENTORY, fault(kind="reset"))
    assert (await place_order(customer, "cleared-1")).status_code == 503
    mesh.faults.clear()
    assert mesh.faults.active() == {}
    placed = await place_order(customer, "cleared-2")
    assert placed.status_code == 201, placed.text
    assert [e.fault for e in mesh.journal.interactions(CATALOG)] == ["error 500", None]
    assert [e.fault for e in mesh.journal.interactions(INVENTORY)] == [None, None]  # both ok


async def test_a_timeout_leaves_the_exchange_unanswered(impatient_mesh: Mesh) -> None:
    mesh = impatient_mesh
    mesh.faults.set(INVENTORY, fault(kind="timeout"))
    async with signed_in(mesh) as client:
        placed = await place_order(client, "timeout-1")
    assert placed.status_code == 503, placed.text
    assert placed.json()["type"].endswith("/inventory-unavailable")
    assert "did not answer within 0.2 s" in placed.json()["detail"]
    # recorded once order-svc gave up and hung up, which may be after its answer
    await wait_for_journal(mesh, lambda: bool(mesh.journal.interactions(INVENTORY)), INVENTORY, 5)
    (reserve,) = mesh.journal.interactions(INVENTORY)
    assert (reserve.operation_id, reserve.fault) == ("reserveStock", "timeout")
    assert reserve.status is None and reserve.response_body is None
    assert mesh.journal.interactions("order-svc->payment-svc") == []


async def test_three_inventory_timeouts_open_the_breaker(impatient_mesh: Mesh) -> None:
    mesh = impatient_mesh
    mesh.faults.set(INVENTORY, fault(kind="timeout"))
    async with signed_in(mesh) as client:
        for i in range(3):
            assert (await place_order(client, f"breaker-{i}")).status_code == 503
        await wait_for_journal(
            mesh, lambda: len(mesh.journal.interactions(INVENTORY)) >= 3, "3 timeouts", 5
        )
        assert mesh.host is not None
        order_svc = mesh.host.stubs["order-svc"].simulator
        assert isinstance(order_svc, OrderSimulator)
        assert order_svc.breaker.state == "open"
        fourth = await place_order(client, "breaker-3")
    assert fourth.status_code == 503, fourth.text
    assert fourth.json()["circuit"] == "open"
    # Each timed-out order's reservation may also be settled in the background (the same
    # request again, while the circuit was still closed): calls are counted per order.
    orders = {e.request_body["order_id"] for e in mesh.journal.interactions(INVENTORY)}
    assert len(orders) == 3
    assert fourth.json()["order_id"] not in orders  # rejected without a call


# --- configuration -------------------------------------------------------------------------


async def test_an_unknown_real_component_is_refused_by_name() -> None:
    with pytest.raises(MeshConfigError, match=r"unknown component.*order-service") as refused:
        Mesh(MeshOptions(real={"order-service": "http://127.0.0.1:9000"}))
    assert "order-svc" in str(refused.value)  # the names it knows are listed
