"""The gateway keeps users apart on every order endpoint, whatever order-svc answers.

Behind the gateway here is a misbehaving order-svc (and payment-svc, shipping-svc) that
ignores ``X-User-Id`` and hands out every order it has: the gateway alone must make sure
that no other user's order, payment or shipment reaches the client, and that it never
asks order-svc to cancel another user's order.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conftest import asgi_client
from ecom_harness.stubs import StubHost

SIGNING_KEY = "user-svc-signing-key-0123456789abcdef"
ME, OTHER = "usr_Mine0000001", "usr_Other000001"
MY_ORDER, THEIR_ORDER = "ord_Mine0000001", "ord_Their000001"
ADDRESS = {
    "name": "Anna Schmidt",
    "line1": "Torstrasse 112",
    "city": "Berlin",
    "postal_code": "10119",
    "country": "DE",
}


def token(user: str) -> str:
    return jwt.encode({"sub": user}, SIGNING_KEY, algorithm="HS256")


def order(order_id: str, user: str, status: str = "CONFIRMED") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "user_id": user,
        "status": status,
        "items": [{"sku": "SKU-1001", "quantity": 1, "unit_amount": 2599}],
        "total_amount": 2599,
        "currency": "eur",
        "shipping_address": ADDRESS,
        "reservation_id": f"res_{order_id[4:]}",
        "payment_id": f"pay_{order_id[4:]}",
        "shipment_id": f"shp_{order_id[4:]}",
        "failure_reason": None,
        "created_at": "2025-03-14T10:22:31Z",
        "updated_at": "2025-03-14T10:22:33Z",
    }


def payment(order_id: str) -> dict[str, Any]:
    return {
        "payment_id": f"pay_{order_id[4:]}",
        "order_id": order_id,
        "amount": 2599,
        "currency": "eur",
        "status": "succeeded",
        "provider": "stripe",
        "provider_payment_id": "pi_3PfK2aLkd8Rv1Qx20nT7bYcM",
        "refunded_amount": 0,
        "decline_code": None,
        "created_at": "2025-03-14T10:22:32Z",
        "updated_at": "2025-03-14T10:22:32Z",
    }


def shipment(order_id: str) -> dict[str, Any]:
    return {
        "shipment_id": f"shp_{order_id[4:]}",
        "order_id": order_id,
        "status": "SCHEDULED",
        "carrier": "dhl",
        "tracking_number": "00340434161234567890",
        "estimated_delivery": "2025-03-18",
        "address": ADDRESS,
        "items": [{"sku": "SKU-1001", "quantity": 1}],
        "created_at": "2025-03-14T10:22:33Z",
        "updated_at": "2025-03-14T10:22:33Z",
    }


@dataclass
class Careless:
    """order-svc, payment-svc and shipping-svc that ignore who is asking."""

    orders: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            THEIR_ORDER: order(THEIR_ORDER, OTHER),
            MY_ORDER: order(MY_ORDER, ME),
        }
    )
    cancelled: list[str] = field(default_factory=list)

    def answer(self, peer: str, method: str, path: str) -> tuple[int, Any]:
        everything = list(self.orders)
        if peer == "user-svc":  # introspection: any token of ours is active
            return 200, {}
        if peer == "payment-svc":  # every payment, whatever order_id was asked for
            return 200, {"items": [payment(o) for o in everything], "next_cursor": None}
        if peer == "shipping-svc":
            return 200, {"items": [shipment(o) for o in everything], "next_cursor": None}
        if path == "/orders":
            return 200, {"items": list(self.orders.values()), "next_cursor": None}
        order_id = path.split("/")[2]
        if method == "POST":
            self.cancelled.append(order_id)
            return 200, {**self.orders[order_id], "status": "CANCELLED"}
        return 200, self.orders[order_id]

    def client(self, peer: str) -> httpx.AsyncClient:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            if peer == "user-svc":
                subject = jwt.decode(json.loads(raw)["token"], SIGNING_KEY, algorithms=["HS256"])
                now = int(datetime.now(UTC).timestamp())
                claims = {"active": True, "sub": subject["sub"], "exp": now + 900, "iat": now}
                return JSONResponse(claims)
            status, body = self.answer(peer, request.method, request.url.path)
            return JSONResponse(body, status)

        app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{peer}")


@pytest.fixture
async def gateway(
    host_factory: Callable[..., Awaitable[StubHost]],
) -> AsyncIterator[tuple[StubHost, Careless]]:
    host = await host_factory(["api-gateway"])
    careless = Careless()
    simulator = host.stubs["api-gateway"].simulator
    assert simulator is not None
    clients = {
        peer: careless.client(peer)
        for peer in ("user-svc", "order-svc", "payment-svc", "shipping-svc")
    }
    simulator.ctx.peers.add(clients)
    yield host, careless
    for client in clients.values():
        await client.aclose()


def as_me(host: StubHost) -> httpx.AsyncClient:
    return asgi_client(host, "api-gateway", Authorization=f"Bearer {token(ME)}")


async def test_the_order_list_holds_only_the_callers_orders(
    gateway: tuple[StubHost, Careless],
) -> None:
    host, _ = gateway
    async with as_me(host) as client:
        listed = await client.get("/v1/orders")
    assert listed.status_code == 200, listed.text
    assert [o["order_id"] for o in listed.json()["items"]] == [MY_ORDER]
    assert OTHER not in listed.text


async def test_another_users_order_summary_is_404_and_shows_nothing_of_theirs(
    gateway: tuple[StubHost, Careless],
) -> None:
    host, careless = gateway
    # My order does not name its payment and shipment (as a REJECTED one may not): the
    # gateway must pick mine by order id from what the careless services list.
    careless.orders[MY_ORDER] |= {"payment_id": None, "shipment_id": None}
    async with as_me(host) as client:
        theirs = await client.get(f"/v1/orders/{THEIR_ORDER}/summary")
        mine = await client.get(f"/v1/orders/{MY_ORDER}/summary")
    assert theirs.status_code == 404
    assert OTHER not in theirs.text
    assert f"pay_{THEIR_ORDER[4:]}" not in theirs.text
    assert mine.status_code == 200, mine.text
    summary = mine.json()
    assert summary["payment"]["payment_id"] == f"pay_{MY_ORDER[4:]}"
    assert summary["shipment"]["shipment_id"] == f"shp_{MY_ORDER[4:]}"
    assert THEIR_ORDER[4:] not in mine.text
    assert OTHER not in mine.text


async def test_another_users_order_is_never_cancelled(
    gateway: tuple[StubHost, Careless],
) -> None:
    host, careless = gateway
    async with as_me(host) as client:
        theirs = await client.post(f"/v1/orders/{THEIR_ORDER}/cancel", json={})
        mine = await client.post(f"/v1/orders/{MY_ORDER}/cancel", json={})
    assert theirs.status_code == 404
    assert OTHER not in theirs.text
    assert mine.status_code == 200, mine.text
    assert careless.cancelled == [MY_ORDER]  # order-svc was never asked to cancel theirs


async def test_a_cancel_answered_with_another_users_order_shows_nothing_of_it(
    gateway: tuple[StubHost, Careless],
) -> None:
    host, careless = gateway
    answer = careless.answer

    def swapped(peer: str, method: str, path: str) -> tuple[int, Any]:
        if method == "POST":  # cancels mine, answers with theirs
            careless.cancelled.append(path.split("/")[2])
            return 200, {**careless.orders[THEIR_ORDER], "status": "CANCELLED"}
        return answer(peer, method, path)

    careless.answer = swapped  # type: ignore[method-assign]
    async with as_me(host) as client:
        response = await client.post(f"/v1/orders/{MY_ORDER}/cancel", json={})
    assert response.status_code == 404
    assert OTHER not in response.text and THEIR_ORDER not in response.text
