"""order-svc simulator: the saga, its compensations, the circuit breaker on inventory,
idempotency, cancellation and the outbox -- through HTTP, on both backends.

The peers (inventory-svc, payment-svc, shipping-svc) are small scripted ASGI apps put
into the simulator's ``ctx.peers`` after start: each test decides their answers (or
makes them hang or fail to connect) and reads the exact order of the calls made.
The last test runs the saga against the real peer simulators instead.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import asgi_client
from ecom_harness.stubs import Deadlines, InMemoryBus, Record, StubHost
from ecom_harness.stubs.behaviours.order_svc import OrderSimulator

TOKEN = {"X-Service-Token": "gateway-token"}
USER = "usr_4fT9aQ2pLx"
ADDRESS = {
    "name": "Lena Fischer",
    "line1": "Torstraße 112",
    "city": "Berlin",
    "postal_code": "10119",
    "country": "DE",
}
ORDER = {
    "user_id": USER,
    "items": [{"sku": "SKU-1001", "quantity": 2, "unit_amount": 2599}],
    "currency": "eur",
    "payment_method": "pm_card_visa",
    "shipping_address": ADDRESS,
    "contact": {"email": "lena.fischer@example.com", "phone": "+4915112345678"},
}
PEERS = ("inventory-svc", "payment-svc", "shipping-svc")
FORWARD = ["reserveStock", "createPayment", "scheduleShipment", "commitReservation"]
RES, PAY, SHP = "res_Fake0000001", "pay_Fake0000001", "shp_Fake0000001"

# --- scripted fake peers ---------------------------------------------------------------------

ROUTES = [  # (peer, method, path pattern, operationId); the first match wins
    ("inventory-svc", "POST", r"/orders/[^/]+/reservation/release", "releaseOrderReservation"),
    ("shipping-svc", "POST", r"/orders/[^/]+/shipment/cancel", "cancelOrderShipment"),
    ("inventory-svc", "POST", r"/reservations/[^/]+/release", "releaseReservation"),
    ("inventory-svc", "POST", r"/reservations/[^/]+/commit", "commitReservation"),
    ("inventory-svc", "POST", r"/reservations", "reserveStock"),
    ("payment-svc", "POST", r"/payments/[^/]+/refund", "refundPayment"),
    ("payment-svc", "POST", r"/payments", "createPayment"),
    ("shipping-svc", "POST", r"/shipments/[^/]+/cancel", "cancelShipment"),
    ("shipping-svc", "POST", r"/shipments", "scheduleShipment"),
]
SUCCESS: dict[str, tuple[int, dict[str, Any]]] = {
    "reserveStock": (201, {"reservation_id": RES, "status": "HELD"}),
    "commitReservation": (200, {"reservation_id": RES, "status": "COMMITTED"}),
    "releaseReservation": (200, {"reservation_id": RES, "status": "RELEASED"}),
    "createPayment": (201, {"payment_id": PAY, "status": "succeeded"}),
    "refundPayment": (200, {"payment_id": PAY, "status": "refunded"}),
    "scheduleShipment": (201, {"shipment_id": SHP, "status": "SCHEDULED"}),
    "cancelShipment": (200, {"shipment_id": SHP, "status": "CANCELLED"}),
    "releaseOrderReservation": (204, {}),  # nothing was held, and nothing will be
    "cancelOrderShipment": (204, {}),
}
HANG = "hang"  # never answer: the caller's timeout fires
REFUSE = "refuse"  # raise a connection error, as a closed port would


@dataclass
class Gate:
    """Answer ``then`` once the test opens the gate; ``entered`` is set on arrival."""

    then: tuple[int, dict[str, Any]]
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)


Answer = tuple[int, dict[str, Any]] | str | Gate


@dataclass
class Seen:
    operation: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakePeers:
    """The three peers as ASGI apps sharing one call log; ``script[op]`` holds the next
    answers of an operation (consumed in order), after which it succeeds."""

    seen: list[Seen] = field(default_factory=list)
    script: dict[str, list[Answer]] = field(default_factory=dict)

    @property
    def calls(self) -> list[str]:
        return [s.operation for s in self.seen]

    def app(self, peer: str) -> Callable[..., Awaitable[None]]:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            raw, more = b"", True
            while more:
                message = await receive()
                raw, more = raw + message.get("body", b""), message.get("more_body", False)
            operation = next(
                op
                for name, method, pattern, op in ROUTES
                if name == peer
                and method == scope["method"]
                and re.fullmatch(pattern, scope["path"])
            )
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.seen.append(
                Seen(operation, scope["path"], headers, json.loads(raw) if raw else None)
            )
            status, body = await self._answer(operation)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})

        return app

    async def _answer(self, operation: str) -> tuple[int, dict[str, Any]]:
        queued = self.script.get(operation)
        answer = queued.pop(0) if queued else SUCCESS[operation]
        if answer == HANG:
            await asyncio.Event().wait()
        if answer == REFUSE:
            raise httpx.ConnectError("connection refused")
        if isinstance(answer, Gate):
            answer.entered.set()
            await answer.opened.wait()
            return answer.then
        assert isinstance(answer, tuple)
        return answer


def problem(slug: str, status: int, **extra: Any) -> tuple[int, dict[str, Any]]:
    body = {"type": f"https://errors.example.com/ecom/{slug}", "title": slug, "status": status}
    return status, body | {"detail": slug, "instance": "/"} | extra


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Env:
    host: StubHost
    sim: OrderSimulator
    fakes: FakePeers
    clock: Clock
    client: httpx.AsyncClient

    async def order(self, key: str = "key-1", body: Any = None, **headers: str) -> httpx.Response:
        return await self.client.post(
            "/orders", json=body or ORDER, headers={"Idempotency-Key": key, **headers}
        )


@pytest.fixture
async def order_env(
    host_factory: Callable[..., Awaitable[StubHost]],
) -> AsyncIterator[Callable[..., Awaitable[Env]]]:
    """Start order-svc alone, its peers replaced by :class:`FakePeers`, time by a Clock."""
    clients: list[httpx.AsyncClient] = []

    async def start(bus: Any = None, deadlines: Deadlines | None = None, **settings: Any) -> Env:
        host = await host_factory(
            ["order-svc"],
            settings={"order-svc": settings},
            bus=bus,
            deadlines=deadlines or Deadlines(),
        )
        sim = host.stubs["order-svc"].simulator
        assert isinstance(sim, OrderSimulator)
        fakes, clock = FakePeers(), Clock()
        peers = {
            name: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=fakes.app(name)),
                base_url=f"http://{name}",
                headers={"X-Service-Token": "order-svc-token"},
            )
            for name in PEERS
        }
        sim.ctx.peers.add(peers)
        sim.ctx.clock = clock
        client = asgi_client(host, "order-svc", **TOKEN)
        clients.extend([*peers.values(), client])
        return Env(host, sim, fakes, clock, client)

    yield start
    for client in clients:
        await client.aclose()


# --- the saga ----------------------------------------------------------------------------------


async def test_happy_path_reserves_charges_ships_commits_and_confirms(order_env: Any) -> None:
    env = await order_env()
    response = await env.order()
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "CONFIRMED" and order["failure_reason"] is None
    assert (order["reservation_id"], order["payment_id"], order["shipment_id"]) == (RES, PAY, SHP)
    assert order["total_amount"] == 5198
    assert env.fakes.calls == FORWARD
    reserve, charge, ship, commit = env.fakes.seen
    assert reserve.body == {
        "order_id": order["order_id"],
        "items": [{"sku": "SKU-1001", "quantity": 2}],
    }
    assert charge.headers["idempotency-key"] == f"{order['order_id']}-charge"
    assert (charge.body["amount"], charge.body["payment_method"]) == (5198, "pm_card_visa")
    assert ship.body["address"] == ADDRESS
    assert commit.path == f"/reservations/{RES}/commit"
    assert await env.sim.saga_steps(order["order_id"]) == [(op, "succeeded") for op in FORWARD]
    fetched = await env.client.get(f"/orders/{order['order_id']}")
    assert fetched.status_code == 200 and fetched.json() == order


async def test_out_of_stock_rejects_without_charging(order_env: Any) -> None:
    env = await order_env()
    env.fakes.script["reserveStock"] = [problem("out-of-stock", 409, skus=["SKU-1001"])]
    response = await env.order()
    assert response.status_code == 409
    body = response.json()
    assert body["type"].endswith("/out-of-stock") and body["skus"] == ["SKU-1001"]
    assert body["order_status"] == "REJECTED"
    assert env.fakes.calls == ["reserveStock"]
    order = (await env.client.get(f"/orders/{body['order_id']}")).json()
    assert (order["status"], order["failure_reason"]) == ("REJECTED", "out_of_stock")
    assert order["reservation_id"] is None


async def test_card_declined_releases_the_reservation(order_env: Any) -> None:
    env = await order_env()
    declined = problem(
        "card-declined", 402, payment_id="pay_Declined001", decline_code="insufficient_funds"
    )
    env.fakes.script["createPayment"] = [declined]
    response = await env.order()
    assert response.status_code == 402
    body = response.json()
    assert (body["decline_code"], body["order_status"]) == ("insufficient_funds", "REJECTED")
    assert env.fakes.calls == ["reserveStock", "createPayment", "releaseReservation"]
    assert env.fakes.seen[-1].path == f"/reservations/{RES}/release"
    assert await env.sim.saga_steps(body["order_id"]) == [
        ("reserveStock", "succeeded"),
        ("createPayment", "failed"),
        ("releaseReservation", "succeeded"),
    ]
    order = (await env.client.get(f"/orders/{body['order_id']}")).json()
    assert (order["status"], order["failure_reason"]) == ("REJECTED", "card_declined")
    assert order["payment_id"] == "pay_Declined001" and order["shipment_id"] is None


async def test_shipping_failure_refunds_then_releases(order_env: Any) -> None:
    env = await order_env(retry_after=7)
    env.fakes.script["scheduleShipment"] = [problem("internal", 500)]
    response = await env.order()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    body = response.json()
    assert body["type"].endswith("/shipping-unavailable") and body["order_status"] == "REJECTED"
    assert env.fakes.calls == [
        "reserveStock",
        "createPayment",
        "scheduleShipment",
        # shipping-svc's 500 leaves the outcome unknown: the order's shipment, made or
        # still to come, is cancelled by order id (never scheduled again to find out)
        "cancelOrderShipment",
        "refundPayment",
        "releaseReservation",
    ]
    assert env.fakes.seen[3].path == f"/orders/{body['order_id']}/shipment/cancel"
    refund = env.fakes.seen[4]
    assert refund.path == f"/payments/{PAY}/refund"
    assert refund.body == {"reason": "order_compensation"}
    order = (await env.client.get(f"/orders/{body['order_id']}")).json()
    assert order["failure_reason"] == "shipping_unavailable"


async def test_failed_commit_undoes_all_three_steps_in_reverse(order_env: Any) -> None:
    env = await order_env()
    env.fakes.script["commitReservation"] = [problem("conflict", 409)]
    response = await env.order()
    assert response.status_code == 503
    assert response.json()["circuit"] == "closed"  # a 409 is an answer, not a breaker failure
    assert env.fakes.calls == [
        *FORWARD,
        "cancelShipment",
        "refundPayment",
        "releaseReservation",
    ]
    assert response.json()["type"].endswith("/inventory-unavailable")
    assert response.headers["retry-after"] == "5"
    assert env.fakes.seen[-1].body == {"reason": "inventory_unavailable"}  # why, for the event


async def test_payment_svc_down_is_never_a_decline(order_env: Any) -> None:
    """payment-svc's 502 leaves the charge's outcome unknown: payment_unavailable (503 with
    Retry-After, not a decline), the charge settled with the same Idempotency-Key (here it
    went through after all) and refunded, the reservation released saying why; the answer
    names the order, and the 503 is not stored -- a retry with the same key runs the saga
    again."""
    env = await order_env()
    env.fakes.script["createPayment"] = [problem("payment-provider-error", 502)]
    response = await env.order("key-payment-down")
    assert response.status_code == 503
    body = response.json()
    assert body["type"].endswith("/payment-unavailable") and body["order_status"] == "REJECTED"
    assert response.headers["location"] == f"/orders/{body['order_id']}"
    assert response.headers["retry-after"] == "5"
    assert env.fakes.calls == [
        "reserveStock",
        "createPayment",
        "createPayment",
        "refundPayment",
        "releaseReservation",
    ]
    charges = [s for s in env.fakes.seen if s.operation == "createPayment"]
    assert charges[0].headers["idempotency-key"] == charges[1].headers["idempotency-key"]
    release = [s for s in env.fakes.seen if s.operation == "releaseReservation"]
    assert release[-1].body == {"reason": "payment_unavailable"}
    order = (await env.client.get(f"/orders/{body['order_id']}")).json()
    assert (order["status"], order["failure_reason"]) == ("REJECTED", "payment_unavailable")
    again = await env.order("key-payment-down")
    assert again.status_code == 201
    assert again.json()["order_id"] != body["order_id"]


# --- idempotency ---------------------------------------------------------------------------------


async def test_same_key_and_body_replays_without_running_the_saga_again(order_env: Any) -> None:
    env = await order_env()
    first = await env.order("key-replay")
    again = await env.order("key-replay", body=dict(reversed(list(ORDER.items()))))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert env.fakes.calls == FORWARD  # the saga ran once
    listed = (await env.client.get("/orders")).json()
    assert len(listed["items"]) == 1


async def test_replay_keeps_a_decline_but_never_a_503(order_env: Any) -> None:
    """A 402 is the order's outcome and replays; a 503 is not stored, so a client that
    honours Retry-After with the same key is not stuck with it."""
    env = await order_env()
    env.fakes.script["createPayment"] = [problem("card-declined", 402)]
    declined = await env.order("key-declined")
    assert (await env.order("key-declined")).json() == declined.json()
    assert env.fakes.calls.count("createPayment") == 1
    env.fakes.script["scheduleShipment"] = [problem("internal", 503)]
    first = await env.order("key-rejected")
    again = await env.order("key-rejected")
    assert (first.status_code, again.status_code) == (503, 201)
    assert first.headers["retry-after"] == "5"
    # the saga's call and the retry's own saga; the unknown outcome cancelled by order id
    assert env.fakes.calls.count("scheduleShipment") == 2
    assert env.fakes.calls.count("cancelOrderShipment") == 1


async def test_a_key_is_scoped_per_user(order_env: Any) -> None:
    env = await order_env()
    mine = await env.order("key-shared")
    other = {**ORDER, "user_id": "usr_Other00001"}
    theirs = await env.order("key-shared", body=other)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs.json()["user_id"] == "usr_Other00001"
    assert env.fakes.calls.count("reserveStock") == 2


async def test_concurrent_retries_with_one_key_run_one_saga(order_env: Any) -> None:
    env = await order_env()
    gate = Gate(SUCCESS["reserveStock"])
    env.fakes.script["reserveStock"] = [gate]
    first = asyncio.create_task(env.order("key-race"))
    await gate.entered.wait()
    second = asyncio.create_task(env.order("key-race"))
    gate.opened.set()
    a, b = await first, await second
    assert a.json() == b.json() and a.status_code == 201
    assert env.fakes.calls == FORWARD


async def test_same_key_with_another_body_is_422(order_env: Any) -> None:
    env = await order_env()
    assert (await env.order("key-reused")).status_code == 201
    other = ORDER | {"currency": "usd"}
    response = await env.order("key-reused", body=other)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/idempotency-key-reused")
    assert env.fakes.calls == FORWARD


async def test_an_idempotency_key_is_forgotten_after_its_retention(order_env: Any) -> None:
    """Stored answers are kept for a retention (24 hours by default, as Stripe's keys),
    not for ever: an older key is unused again, and expired rows are pruned, so the table
    does not grow with every order of a long run (issue 15)."""
    from sqlalchemy import func, select

    from ecom_harness.stubs.behaviours.order_svc import idempotency_keys

    async def stored() -> int:
        async with env.sim.ctx.db.connect() as conn:
            count = select(func.count()).select_from(idempotency_keys)
            return int(await conn.scalar(count) or 0)

    env = await order_env(idempotency_ttl_seconds=3600)
    first = await env.order("key-old")
    env.clock.advance(3599)
    assert (await env.order("key-old")).json() == first.json()  # replayed
    assert env.fakes.calls == FORWARD
    env.clock.advance(2)
    again = await env.order("key-old")
    assert again.status_code == 201
    assert again.json()["order_id"] != first.json()["order_id"]  # the saga ran again
    assert env.fakes.calls == FORWARD * 2
    assert await stored() == 1  # the expired row was replaced
    env.clock.advance(3601)
    await env.order("key-new")
    assert await stored() == 1  # "key-old" pruned when "key-new" was stored


# --- the circuit breaker on inventory -----------------------------------------------------------


async def test_breaker_opens_after_timeouts_rejects_then_closes_after_a_trial(
    order_env: Any,
) -> None:
    # the release (by order id) of each timed-out reservation waits in the undo queue
    # until inventory-svc answers again (relay_interval is long: no timed retries)
    env = await order_env(deadlines=Deadlines(inventory=0.02), relay_interval=60)
    env.fakes.script["reserveStock"] = [HANG, HANG, HANG]
    circuits = []
    for n in range(3):
        response = await env.order(f"key-timeout-{n}")
        assert response.status_code == 503
        assert response.json()["type"].endswith("/inventory-unavailable")
        circuits.append(response.json()["circuit"])
    assert circuits == ["closed", "closed", "open"]  # the state after each failure
    assert env.sim.breaker.state == "open"
    waiting = await env.sim.undo.pending()
    assert [kind for kind, _, _ in waiting] == ["releaseOrderReservation"] * 3

    rejected = await env.order("key-open")
    assert rejected.status_code == 503
    body = rejected.json()
    assert (body["circuit"], body["order_status"]) == ("open", "REJECTED")
    assert rejected.headers["retry-after"] == "30"
    assert env.fakes.calls == ["reserveStock"] * 3  # the 4th never reached inventory-svc
    assert await env.sim.saga_steps(body["order_id"]) == [("reserveStock", "short_circuited")]
    order = (await env.client.get(f"/orders/{body['order_id']}")).json()
    assert order["failure_reason"] == "inventory_unavailable"

    env.clock.advance(29.5)
    assert env.sim.breaker.state == "open"
    assert (await env.order("key-still-open")).headers["retry-after"] == "1"
    env.clock.advance(0.5)
    assert env.sim.breaker.state == "half_open"
    trial = await env.order("key-trial")
    assert trial.status_code == 201
    assert env.sim.breaker.state == "closed"
    assert env.fakes.calls.count("reserveStock") == 4
    # inventory-svc answers again: the three releases follow the trial, by order id
    await env.sim.undo.settled(timeout=5)
    released = [s for s in env.fakes.seen if s.operation == "releaseOrderReservation"]
    assert sorted(s.path for s in released) == sorted(
        f"/orders/{order_id}/reservation/release" for _, order_id, _ in waiting
    )
    assert {json.dumps(s.body) for s in released} == {'{"reason": "inventory_unavailable"}'}
    # none while the circuit was open; right after the trial's reserve, before its charge
    assert env.fakes.calls[:8] == ["reserveStock"] * 4 + ["releaseOrderReservation"] * 3 + [
        "createPayment"
    ]


async def test_a_timed_out_reservation_is_released_by_order_id_once_inventory_is_rested(
    order_env: Any,
) -> None:
    """One reserve without an answer: the hold may still land, so it is released by order
    id -- not at once (inventory-svc just failed), but a breaker cool-down later, when no
    order came to find inventory-svc answering again before that."""
    env = await order_env(deadlines=Deadlines(inventory=0.02), relay_interval=0.05)
    env.fakes.script["reserveStock"] = [HANG]
    response = await env.order("key-timeout")
    assert response.status_code == 503
    order_id = response.json()["order_id"]
    await asyncio.sleep(0.3)  # several rounds of the undo queue
    assert env.fakes.calls == ["reserveStock"]
    assert [kind for kind, _, _ in await env.sim.undo.pending()] == ["releaseOrderReservation"]
    env.clock.advance(30)  # the breaker's cool-down since the failure
    await env.sim.undo.settled(timeout=5)
    assert env.fakes.calls == ["reserveStock", "releaseOrderReservation"]
    assert env.fakes.seen[1].path == f"/orders/{order_id}/reservation/release"
    assert env.fakes.seen[1].body == {"reason": "inventory_unavailable"}


async def test_half_open_lets_one_trial_through_and_its_failure_reopens(
    order_env: Any,
) -> None:
    env = await order_env(breaker_threshold=2, breaker_cooldown=10, relay_interval=60)
    env.fakes.script["reserveStock"] = [REFUSE, problem("internal", 500)]
    for n in range(2):
        assert (await env.order(f"key-fail-{n}")).status_code == 503
    assert env.sim.breaker.state == "open"
    env.clock.advance(10)
    gate = Gate(problem("internal", 500))
    env.fakes.script["reserveStock"] = [gate]
    trial = asyncio.create_task(env.order("key-trial"))
    await gate.entered.wait()
    during = await env.order("key-during-trial")  # refused while the one trial runs
    assert during.status_code == 503 and during.json()["circuit"] == "half_open"
    assert env.fakes.calls.count("reserveStock") == 3
    gate.opened.set()
    failed = await trial
    assert failed.status_code == 503 and failed.json()["circuit"] == "open"
    assert failed.headers["retry-after"] == "10"
    assert env.sim.breaker.state == "open"


async def test_client_errors_from_inventory_do_not_trip_the_breaker(order_env: Any) -> None:
    env = await order_env(breaker_threshold=1)
    env.fakes.script["reserveStock"] = [problem("out-of-stock", 409, skus=["SKU-1001"])]
    assert (await env.order("key-a")).status_code == 409
    assert env.sim.breaker.state == "closed"


# --- lookups, lists, cancellation ---------------------------------------------------------------


async def test_orders_are_scoped_to_the_acting_user(order_env: Any) -> None:
    env = await order_env()
    other = "usr_Other000001"
    mismatch = await env.order("key-mismatch", **{"X-User-Id": other})
    assert mismatch.status_code == 422 and env.fakes.calls == []
    order_id = (await env.order("key-mine", **{"X-User-Id": USER})).json()["order_id"]
    hidden = await env.client.get(f"/orders/{order_id}", headers={"X-User-Id": other})
    assert hidden.status_code == 404
    cancel = await env.client.post(f"/orders/{order_id}/cancel", headers={"X-User-Id": other})
    assert cancel.status_code == 404
    assert (await env.client.get("/orders/ord_Missing0001")).status_code == 404


async def test_list_filters_and_pages_newest_first(order_env: Any) -> None:
    env = await order_env()
    env.fakes.script["reserveStock"] = [
        SUCCESS["reserveStock"],
        problem("out-of-stock", 409, skus=["SKU-1001"]),
    ]
    ids = [(await env.order(f"key-{n}")).json()["order_id"] for n in range(3)]
    first = (await env.client.get("/orders", params={"limit": 2})).json()
    assert [o["order_id"] for o in first["items"]] == [ids[2], ids[1]]
    second = (
        await env.client.get("/orders", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [o["order_id"] for o in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None
    rejected = (await env.client.get("/orders", params={"status": "REJECTED"})).json()
    assert [o["order_id"] for o in rejected["items"]] == [ids[1]]
    mine = await env.client.get("/orders", params={"user_id": USER}, headers={"X-User-Id": USER})
    assert len(mine.json()["items"]) == 3
    theirs = await env.client.get(
        "/orders", params={"user_id": USER}, headers={"X-User-Id": "usr_Other000001"}
    )
    assert theirs.json() == {"items": [], "next_cursor": None}
    bad = await env.client.get("/orders", params={"cursor": "not-ours"})
    assert bad.status_code == 422


async def test_cancel_undoes_shipment_payment_and_reservation(order_env: Any) -> None:
    env = await order_env()
    order_id = (await env.order()).json()["order_id"]
    response = await env.client.post(f"/orders/{order_id}/cancel", json={"comment": "Wrong size"})
    assert response.status_code == 200, response.text
    order = response.json()
    assert (order["status"], order["failure_reason"]) == ("CANCELLED", "cancelled_by_user")
    assert env.fakes.calls[4:] == ["cancelShipment", "refundPayment", "releaseReservation"]
    assert env.fakes.seen[5].body == {"reason": "requested_by_customer"}
    again = await env.client.post(f"/orders/{order_id}/cancel")
    assert again.status_code == 409 and "already CANCELLED" in again.json()["detail"]
    assert len(env.fakes.calls) == 7


async def test_only_confirmed_orders_can_be_cancelled(order_env: Any) -> None:
    env = await order_env()
    env.fakes.script["reserveStock"] = [problem("out-of-stock", 409, skus=["SKU-1001"])]
    order_id = (await env.order()).json()["order_id"]
    response = await env.client.post(f"/orders/{order_id}/cancel")
    assert response.status_code == 409 and "REJECTED" in response.json()["detail"]
    assert env.fakes.calls == ["reserveStock"]


async def test_a_transition_queues_its_event_only_when_it_moves_the_order(
    order_env: Any,
) -> None:
    """A move and its event are one transaction -- on PostgreSQL one statement, the
    event's row selected from the order the update moved (no ``BEGIN``: one round trip
    where there were four, issue 15). An order no longer in the status a move expects is
    left as it is, and no event is queued for it."""
    from ecom_harness.stubs.behaviours.order_svc import outbox
    from ecom_harness.stubs.state._postgres import PostgresDatabase

    env = await order_env()
    await env.sim.relay.stop()  # the events stay in the outbox, to be read here
    order_id = (await env.order()).json()["order_id"]
    db = env.sim.ctx.db

    events_of = select(outbox.c.event).where(outbox.c.key == order_id)  # a read: no BEGIN

    async def queued() -> list[str]:
        async with db.connect() as conn:
            return [row.event["type"] for row in await conn.execute(events_of)]

    assert await queued() == ["order.placed", "order.confirmed"]
    order = await env.sim._load(order_id)
    assert order is not None
    sent: list[str] = []
    if isinstance(db, PostgresDatabase):
        async with db.connect() as conn:  # the next block gets this connection back
            conn.raw.add_query_logger(lambda record: sent.append(record.query.upper()))
    assert await env.sim._transition(order, "REJECTED", "payment_failed") is None
    assert await queued() == ["order.placed", "order.confirmed"]
    cancelled = await env.sim._transition(
        order, "CANCELLED", "cancelled_by_user", only_from="CONFIRMED"
    )
    assert cancelled is not None and cancelled["status"] == "CANCELLED"
    assert await queued() == ["order.placed", "order.confirmed", "order.cancelled"]
    assert (await env.sim._load(order_id) or {})["status"] == "CANCELLED"
    assert not any(query.startswith("BEGIN") for query in sent), sent


async def test_a_steps_record_is_written_with_the_ids_it_brought(
    order_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forward step's record and the ids it brought are one write: a step is never
    shown without the ids it learnt, and on PostgreSQL the two are one statement (three
    round trips fewer per order, issue 15). A declined charge's record goes with the
    payment id it names; the compensation after it is recorded on its own."""
    from ecom_harness.stubs.state._postgres import PostgresDatabase, _HeldConnection

    env = await order_env()
    statements: list[str] = []  # what order-svc's database is sent, prepared, in order
    run = _HeldConnection._run

    async def logged(self: _HeldConnection, prepared: Any, values: list[Any]) -> Any:
        statements.append(prepared.sql.upper())
        return await run(self, prepared, values)

    monkeypatch.setattr(_HeldConnection, "_run", logged)
    decline = problem("card-declined", 402, payment_id="pay_Declined001")
    for round_ in ("warm-1", "warm-2", "counted"):  # a statement seen twice is prepared
        statements.clear()
        confirmed = (await env.order(f"{round_}-confirmed")).json()["order_id"]
        env.fakes.script["createPayment"] = [decline]
        declined = (await env.order(f"{round_}-declined")).json()["order_id"]

    assert await env.sim.saga_steps(confirmed) == [
        ("reserveStock", "succeeded"),
        ("createPayment", "succeeded"),
        ("scheduleShipment", "succeeded"),
        ("commitReservation", "succeeded"),
    ]
    assert await env.sim.saga_steps(declined) == [
        ("reserveStock", "succeeded"),
        ("createPayment", "failed"),
        ("releaseReservation", "succeeded"),
    ]
    placed = await env.sim._load(confirmed) or {}
    assert all(placed[key] for key in ("reservation_id", "payment_id", "shipment_id"))
    assert (await env.sim._load(declined) or {})["payment_id"] == "pay_Declined001"
    if isinstance(env.sim.ctx.db, PostgresDatabase):
        records = [sql for sql in statements if "INSERT INTO SAGA_STEPS" in sql]
        alone = [sql for sql in records if "UPDATE ORDERS" not in sql]
        assert (len(records), len(alone)) == (7, 2), statements  # commit, release: no ids
        assert not any(sql.startswith("UPDATE ORDERS") for sql in statements), statements


async def test_health(order_env: Any) -> None:
    env = await order_env()
    response = await env.client.get("/health")
    assert response.json() == {"status": "ok", "component": "order-svc"}


# --- events and the outbox ----------------------------------------------------------------------


async def test_events_have_the_right_types_and_data(order_env: Any) -> None:
    bus = InMemoryBus()
    phone, email = ORDER["contact"]["phone"], ORDER["contact"]["email"]
    env = await order_env(bus=bus)
    await env.sim.relay.stop()  # relay by hand below, so nothing races this test
    received: list[Record] = []

    async def collect(record: Record) -> None:
        received.append(record)

    await bus.subscribe("orders", "test", collect)
    confirmed = (await env.order("key-ok")).json()["order_id"]
    env.fakes.script["createPayment"] = [
        problem("card-declined", 402, payment_id="pay_Declined001", decline_code="expired_card")
    ]
    declined = (await env.order("key-declined")).json()["order_id"]
    await env.client.post(f"/orders/{confirmed}/cancel")
    assert await env.sim.relay.relay_once() == 5  # every event passed AsyncAPI validation
    await bus.drain(timeout=5)

    def of(order_id: str) -> list[Record]:
        return [r for r in received if r.key == order_id]

    assert [r.message_type for r in of(confirmed)] == [
        "order.placed",
        "order.confirmed",
        "order.cancelled",
    ]
    placed, done, cancelled = (r.value["data"] for r in of(confirmed))
    assert placed["total_amount"] == 5198 and placed["items"] == ORDER["items"]
    assert (placed["email"], placed["phone"]) == (email, phone)  # the request's contact
    assert (done["email"], done["phone"], done["shipment_id"]) == (email, phone, SHP)
    assert cancelled == {
        "user_id": USER,
        "reason": "cancelled_by_user",
        "previous_status": "CONFIRMED",
    }
    assert [r.message_type for r in of(declined)] == ["order.placed", "order.rejected"]
    assert of(declined)[1].value["data"] == {
        "user_id": USER,
        "reason": "card_declined",
        "email": email,
        "phone": phone,
    }


class FlakyBus:
    """A bus whose first ``failures`` passes fail, as while the broker is down."""

    def __init__(self, failures: int):
        self.failures = failures
        self.published: list[dict[str, Any]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish_in_order(self, records: list[Any], **_: Any) -> list[Any]:
        """Each record in turn, as a bus does: after a failure, the rest are not written."""
        outcomes: list[Any] = []
        for record in records:
            if outcomes and isinstance(outcomes[-1], Exception):
                outcomes.append(outcomes[-1])
            elif self.failures > 0:
                self.failures -= 1
                outcomes.append(ConnectionError("broker down"))
            else:
                self.published.append(record.value)
                outcomes.append(record)
        return outcomes


async def test_outbox_keeps_events_while_the_bus_is_down(order_env: Any) -> None:
    bus = FlakyBus(failures=2)
    env = await order_env(bus=bus)
    await env.sim.relay.stop()
    order_id = (await env.order()).json()["order_id"]
    env.fakes.script["reserveStock"] = [problem("out-of-stock", 409, skus=["SKU-1001"])]
    rejected = (await env.order("key-2")).json()["order_id"]
    assert await env.sim.relay.pending() == 4
    assert await env.sim.relay.relay_once() == 0
    assert await env.sim.relay.relay_once() == 0
    assert await env.sim.relay.pending() == 4  # nothing lost
    assert await env.sim.relay.relay_once() == 4
    assert [(e["order_id"], e["type"]) for e in bus.published] == [
        (order_id, "order.placed"),
        (order_id, "order.confirmed"),
        (rejected, "order.placed"),
        (rejected, "order.rejected"),
    ]
    assert await env.sim.relay.pending() == 0


async def test_published_events_leave_the_outbox(order_env: Any) -> None:
    """The outbox holds what is still to be sent, not every event of the run: a row is
    deleted once published (kept, they grew each service's database with every order,
    issue 15). Counted in the table itself: ``pending()`` alone would not tell."""
    from sqlalchemy import func, select

    bus = FlakyBus(failures=1)
    env = await order_env(bus=bus)
    await env.sim.relay.stop()
    await env.order()
    await env.order("key-2")
    table = env.sim.relay.table

    async def rows() -> int:
        async with env.sim.ctx.db.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)

    assert await rows() == 4
    assert await env.sim.relay.relay_once() == 0  # the bus is down: every row kept
    assert await rows() == 4
    assert await env.sim.relay.relay_once() == 4
    assert len(bus.published) == 4
    assert await rows() == 0


class BusThatSeesAnOrderPlaced(FlakyBus):
    """A bus during whose first write an order is placed (as by a client while the
    relay publishes): its events are committed after the pass's read."""

    def __init__(self) -> None:
        super().__init__(failures=0)
        self.meanwhile: Callable[[], Awaitable[Any]] | None = None

    async def publish_in_order(self, records: list[Any], **_: Any) -> list[Any]:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return await super().publish_in_order(records)


@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_events_committed_while_a_pass_publishes_go_out_in_that_pass(
    order_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load events keep coming while a pass publishes: on PostgreSQL the pass goes
    on with them, in order, instead of leaving them to the next wake, and a batch's
    deletion and the read of what came meanwhile are one statement: three reads and
    deletions of the outbox for two batches, not five (a round trip of every pass,
    issue 15)."""
    from ecom_harness.stubs.state import _postgres

    bus = BusThatSeesAnOrderPlaced()
    env = await order_env(bus=bus)
    relay = env.sim.relay
    await relay.stop()
    await env.order("key-0")
    assert await relay.relay_once() == 2  # its statements seen once: prepared from now on
    bus.published.clear()
    first = (await env.order("key-1")).json()["order_id"]
    second: list[str] = []

    async def place_another() -> None:
        second.append((await env.order("key-2")).json()["order_id"])

    bus.meanwhile = place_another
    seen: list[str] = []
    run = _postgres._HeldConnection._run

    async def counted(held: Any, prepared: Any, values: list[Any]) -> Any:
        if "outbox" in prepared.sql:
            seen.append(prepared.sql)
        return await run(held, prepared, values)

    monkeypatch.setattr(_postgres._HeldConnection, "_run", counted)
    assert await relay.relay_once() == 4
    assert await relay.pending() == 0
    assert [(e["order_id"], e["type"]) for e in bus.published] == [
        (first, "order.placed"),
        (first, "order.confirmed"),
        (second[0], "order.placed"),
        (second[0], "order.confirmed"),
    ]
    assert len([sql for sql in seen if "INSERT" not in sql]) == 3, seen  # not the order's


@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_the_outbox_keeps_its_size_as_rows_come_and_go(order_env: Any) -> None:
    """On PostgreSQL a deleted row's space stays until it is vacuumed, and each read of
    the outbox scanned every page the table ever had: where autovacuum is off or behind
    (this machine's server), the relay's read per pass came to a millisecond of the
    server's CPU, and grew with the run (issue 15). The relay reclaims the space every
    ``reclaim_after`` deleted rows: the table stays a page or two, however many
    events went through it."""
    from sqlalchemy import text

    env = await order_env(bus=InMemoryBus())
    relay = env.sim.relay
    await relay.stop()
    relay.reclaim_after = 16

    async def size() -> int:
        async with env.sim.ctx.db.connect() as conn:
            return int(await conn.scalar(text("SELECT pg_relation_size('outbox')")) or 0)

    async def orders(first: int) -> None:
        """Rounds of orders side by side (each connection writes a page of its own)."""
        for round_ in range(first, first + 20):
            await asyncio.gather(*(env.order(f"key-{round_}-{n}") for n in range(8)))
            assert await relay.relay_once() == 16

    await orders(0)  # 320 events, each a row of about half a kilobyte
    assert await size() <= 2 * 8192
    relay.reclaim_after = 10**9  # as before: nothing reclaimed
    await orders(20)
    assert await size() > 6 * 8192  # what every read would scan without it


async def test_an_outbox_whose_space_cannot_be_reclaimed_still_relays(
    order_env: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A database user that does not own the outbox may not vacuum it: said once in the
    log, and every event still goes out."""
    from sqlalchemy.exc import ProgrammingError

    bus = InMemoryBus()
    env = await order_env(bus=bus)
    relay = env.sim.relay
    await relay.stop()
    relay.reclaim_after = 1

    async def refused(table: Any) -> None:
        raise ProgrammingError("VACUUM outbox", [], PermissionError("must be owner of table"))

    monkeypatch.setattr(env.sim.ctx.db, "reclaim", refused)
    for key in ("key-1", "key-2"):
        await env.order(key)
        assert await relay.relay_once() == 2
    assert await relay.pending() == 0
    refusals = [r for r in caplog.records if "cannot be reclaimed" in r.getMessage()]
    assert len(refusals) == 1 and "must be owner" in refusals[0].getMessage()


# --- end to end, with the real peer simulators ------------------------------------------------

E2E = ["order-svc", "inventory-svc", "payment-svc", "shipping-svc", "stripe"]


async def test_end_to_end_with_the_real_peer_simulators(
    host_factory: Callable[..., Awaitable[StubHost]],
) -> None:
    """END TO END: order-svc drives the real inventory, payment, shipping and Stripe
    simulators; a confirmed order, a declined card, then a cancellation."""
    host = await host_factory(E2E)
    assert all(host.stubs[name].simulator is not None for name in E2E), "a peer is not simulated"
    async with (
        asgi_client(host, "order-svc", **TOKEN) as orders,
        asgi_client(host, "inventory-svc", **TOKEN) as inventory,
    ):
        stocked = await inventory.put("/stock/SKU-1001", json={"on_hand": 10})
        assert stocked.status_code == 200, stocked.text
        placed = await orders.post("/orders", json=ORDER, headers={"Idempotency-Key": "e2e-1"})
        assert placed.status_code == 201, placed.text
        order = placed.json()
        stock = (await inventory.get("/stock/SKU-1001")).json()
        assert (stock["on_hand"], stock["reserved"]) == (8, 0)  # committed

        declined_body = ORDER | {"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
        declined = await orders.post(
            "/orders", json=declined_body, headers={"Idempotency-Key": "e2e-2"}
        )
        assert declined.status_code == 402, declined.text
        stock = (await inventory.get("/stock/SKU-1001")).json()
        assert (stock["on_hand"], stock["reserved"]) == (8, 0)  # released

        cancelled = await orders.post(f"/orders/{order['order_id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        stock = (await inventory.get("/stock/SKU-1001")).json()
        assert stock["on_hand"] == 10  # put back
    sim = host.stubs["order-svc"].simulator
    assert isinstance(sim, OrderSimulator)
    steps = await sim.saga_steps(order["order_id"])
    assert all(outcome == "succeeded" for _, outcome in steps), steps
