"""The api-gateway and notify-svc simulators, through HTTP and the event bus.

The gateway's peers are tiny Starlette apps (one per internal service) that record what
they were sent and answer what a test wants; notify-svc's providers likewise. The last
tests run against the real peer simulators where those exist.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conftest import asgi_client
from ecom_harness.stubs import InMemoryBus, OutboxRelay, StubHost, make_event, utc_now

USER = "usr_7Kx2mQ9pLw4R"
OTHER_USER = "usr_Other0User1"
TOKEN = jwt.encode({"sub": USER}, "user-svc-signing-key-0123456789abcdef", algorithm="HS256")
OTHER_TOKEN = jwt.encode(
    {"sub": OTHER_USER}, "user-svc-signing-key-0123456789abcdef", algorithm="HS256"
)
FORGED = jwt.encode(
    {"sub": USER, "forged": True}, "not-the-signing-key-0123456789abcdefgh", algorithm="HS256"
)
ADDRESS = {
    "name": "Anna Schmidt",
    "line1": "Torstrasse 112",
    "city": "Berlin",
    "postal_code": "10119",
    "country": "DE",
}
ORDER_ID = "ord_9fK3xPq2Lm7W"


# --- fake peers ------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request a fake peer received."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any


# An answer: (status, JSON body or None) or (status, body, headers).
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class FakePeer:
    """A tiny Starlette app standing in for one component: ``answer`` decides, every
    request is kept in ``seen``."""

    name: str
    answer: Callable[[Seen], Answer]
    seen: list[Seen] = field(default_factory=list)

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            if not raw:
                body: Any = None
            elif "json" in request.headers.get("content-type", ""):
                body = json.loads(raw)
            else:
                body = dict(parse_qsl(raw.decode()))
            seen = Seen(
                request.method,
                request.url.path,
                dict(request.headers),
                dict(request.query_params),
                body,
            )
            self.seen.append(seen)
            status, payload, *more = self.answer(seen)
            headers = more[0] if more else {}
            if payload is None:
                return Response(status_code=status, headers=headers)
            media = "application/problem+json" if "type" in payload else "application/json"
            return JSONResponse(payload, status, headers, media_type=media)

        return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app())
        return httpx.AsyncClient(
            transport=transport,
            base_url=f"http://{self.name}",
            headers={"X-Service-Token": "caller-token"},
        )

    def to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]


def unreachable(name: str) -> httpx.AsyncClient:
    """A peer whose connection is refused."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url=f"http://{name}")


def problem(status: int, slug: str, **members: Any) -> dict[str, Any]:
    return {
        "type": f"https://errors.example.com/ecom/{slug}",
        "title": slug.replace("-", " ").capitalize(),
        "status": status,
        "detail": f"{slug} happened",
        "instance": "/somewhere/internal",
        **members,
    }


# --- the gateway's world -------------------------------------------------------------------


def product(sku: str, amount: int, currency: str = "eur") -> dict[str, Any]:
    return {
        "sku": sku,
        "name": f"Product {sku}",
        "description": "A product.",
        "price": {"amount": amount, "currency": currency},
        "category": "kitchen",
        "images": [f"https://cdn.example.com/products/{sku}/main.jpg"],
        "availability": "IN_STOCK",
        "updated_at": "2025-03-11T08:00:00Z",
    }


def internal_order(user_id: str = USER, **changes: Any) -> dict[str, Any]:
    """An order as order-svc has it (with its internal ``reservation_id``)."""
    return {
        "order_id": ORDER_ID,
        "user_id": user_id,
        "status": "CONFIRMED",
        "items": [{"sku": "SKU-1001", "quantity": 2, "unit_amount": 2599}],
        "total_amount": 5198,
        "currency": "eur",
        "shipping_address": ADDRESS,
        "reservation_id": "res_9Vb3Tn6wQe",
        "payment_id": "pay_2Lm8Rx5cJd",
        "shipment_id": "shp_5Rt8Yw2Nq4",
        "failure_reason": None,
        "created_at": "2025-03-14T10:22:31Z",
        "updated_at": "2025-03-14T10:22:33Z",
        **changes,
    }


def payment(payment_id: str, status: str = "succeeded") -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "order_id": ORDER_ID,
        "amount": 5198,
        "currency": "eur",
        "status": status,
        "provider": "stripe",
        "provider_payment_id": "pi_3PfK2aLkd8Rv1Qx20nT7bYcM",
        "refunded_amount": 0,
        "decline_code": None,
        "created_at": "2025-03-14T10:22:32Z",
        "updated_at": "2025-03-14T10:22:32Z",
    }


SHIPMENT = {
    "shipment_id": "shp_5Rt8Yw2Nq4",
    "order_id": ORDER_ID,
    "status": "SCHEDULED",
    "carrier": "dhl",
    "tracking_number": "00340434161234567890",
    "estimated_delivery": "2025-03-18",
    "address": ADDRESS,
    "items": [{"sku": "SKU-1001", "quantity": 2}],
    "created_at": "2025-03-14T10:22:33Z",
    "updated_at": "2025-03-14T10:22:33Z",
}


class World:
    """Fake user-svc, catalog-svc, order-svc, payment-svc and shipping-svc."""

    def __init__(self) -> None:
        self.products = {
            "SKU-1001": product("SKU-1001", 2599),
            "SKU-2042": product("SKU-2042", 1499),
        }
        self.orders = {ORDER_ID: internal_order()}
        self.payments = [payment("pay_0ld0ld0ld0", "failed"), payment("pay_2Lm8Rx5cJd")]
        self.shipments = [SHIPMENT]
        self.users = FakePeer("user-svc", self._user_svc)
        self.catalog = FakePeer("catalog-svc", self._catalog)
        self.orders_svc = FakePeer("order-svc", self._order_svc)
        self.payment_svc = FakePeer("payment-svc", self._listed(lambda: self.payments))
        self.shipping_svc = FakePeer("shipping-svc", self._listed(lambda: self.shipments))

    def peers(self) -> list[FakePeer]:
        return [self.users, self.catalog, self.orders_svc, self.payment_svc, self.shipping_svc]

    def _user_svc(self, seen: Seen) -> Answer:
        if seen.path == "/tokens/introspect":
            subject = {TOKEN: USER, OTHER_TOKEN: OTHER_USER}.get(seen.body["token"])
            if subject is None:
                return 200, {"active": False}
            return 200, {
                "active": True,
                "sub": subject,
                "email": "anna.schmidt@example.com",
                "scope": "profile orders:read orders:write",
                "iss": "https://user-svc.ecom.internal",
                "aud": "api-gateway",
                "exp": int(utc_now().timestamp()) + 900,
                "iat": int(utc_now().timestamp()),
                "session_id": "ses_V3nT8qZr2Hc6",
            }
        user = {
            "user_id": seen.path.rsplit("/", 1)[-1],
            "email": "anna.schmidt@example.com",
            "name": "Anna Schmidt",
            "phone": None,
            "created_at": "2025-03-10T18:04:27Z",
        }
        if seen.path == "/sessions":
            token = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 900}
            return 201, {**token, "session_id": "ses_V3nT8qZr2Hc6"}
        if seen.path == "/users":
            return 201, {**user, "user_id": USER, "email": seen.body["email"]}
        return 200, user

    def _catalog(self, seen: Seen) -> Answer:
        if seen.path == "/products":
            return 200, {"items": list(self.products.values()), "next_cursor": None}
        found = self.products.get(seen.path.rsplit("/", 1)[-1])
        return (200, found) if found else (404, problem(404, "not-found"))

    def _order_svc(self, seen: Seen) -> Answer:
        if seen.method == "POST" and seen.path == "/orders":
            items = seen.body["items"]
            total = sum(item["quantity"] * item["unit_amount"] for item in items)
            return 201, internal_order(seen.body["user_id"], items=items, total_amount=total)
        if seen.path == "/orders":
            return 200, {"items": list(self.orders.values()), "next_cursor": None}
        order = self.orders.get(seen.path.split("/")[2])
        if order is None or order["user_id"] != seen.headers.get("x-user-id"):
            return 404, problem(404, "not-found")
        if seen.path.endswith("/cancel"):
            return 200, {**order, "status": "CANCELLED", "failure_reason": "cancelled_by_user"}
        return 200, order

    @staticmethod
    def _listed(items: Callable[[], list[dict[str, Any]]]) -> Callable[[Seen], Answer]:
        return lambda seen: (200, {"items": items(), "next_cursor": None})


@dataclass
class Gateway:
    host: StubHost
    world: World

    def client(self, token: str | None = TOKEN, **headers: str) -> httpx.AsyncClient:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return asgi_client(self.host, "api-gateway", **headers)

    def replace(self, name: str, client: httpx.AsyncClient) -> None:
        simulator = self.host.stubs["api-gateway"].simulator
        assert simulator is not None
        simulator.ctx.peers.add({name: client})


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway(host_factory: Callable[..., Awaitable[StubHost]]) -> AsyncIterator[StartGateway]:
    """Starts an api-gateway (with the given settings) whose peers are a fresh World."""
    clients: list[httpx.AsyncClient] = []

    async def start(**settings: Any) -> Gateway:
        host = await host_factory(["api-gateway"], settings={"api-gateway": settings})
        found = Gateway(host, World())
        for peer in found.world.peers():
            clients.append(peer.client())
            found.replace(peer.name, clients[-1])
        return found

    yield start
    for client in clients:
        await client.aclose()


PLACE_ORDER = {
    "items": [{"sku": "SKU-1001", "quantity": 2}, {"sku": "SKU-2042", "quantity": 1}],
    "payment_method": "pm_card_visa",
    "shipping_address": ADDRESS,
}


# --- authentication ---------------------------------------------------------------------------


async def test_missing_forged_and_malformed_tokens_are_401(gateway: StartGateway) -> None:
    gw = await gateway()
    answers = {}
    for token in (None, FORGED, "not-a-jwt"):
        async with gw.client(token) as client:
            answers[token] = await client.get("/v1/users/me")
    for response in answers.values():
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] == "https://errors.example.com/ecom/unauthorized"
    assert answers[None].json()["detail"] == "The request has no bearer token."
    forged = answers[FORGED]
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]
    assert forged.json()["detail"] == "The access token is invalid, expired or revoked."
    # Only the well-formed token was worth asking user-svc about.
    assert [seen.body["token"] for seen in gw.world.users.to("/tokens/introspect")] == [FORGED]
    assert gw.world.users.to(f"/users/{USER}") == []


async def test_introspection_is_cached_per_token(gateway: StartGateway) -> None:
    gw = await gateway()
    async with gw.client() as client:
        first = await client.get("/v1/users/me")
        second = await client.get("/v1/users/me")
    async with gw.client(FORGED) as client:
        for _ in range(2):
            assert (await client.get("/v1/users/me")).status_code == 401
    assert first.status_code == second.status_code == 200
    assert first.json()["user_id"] == USER
    asked = [seen.body["token"] for seen in gw.world.users.to("/tokens/introspect")]
    assert asked == [TOKEN, FORGED]  # inactive verdicts are cached too
    assert len(gw.world.users.to(f"/users/{USER}")) == 2


async def test_introspection_cache_can_be_turned_off(gateway: StartGateway) -> None:
    gw = await gateway(introspection_ttl=0)
    async with gw.client() as client:
        for _ in range(2):
            assert (await client.get("/v1/users/me")).status_code == 200
    assert len(gw.world.users.to("/tokens/introspect")) == 2


async def test_introspection_is_not_cached_past_the_tokens_expiry(gateway: StartGateway) -> None:
    gw = await gateway()
    simulator = gw.host.stubs["api-gateway"].simulator
    assert simulator is not None
    simulator.ctx.clock = lambda: utc_now() + timedelta(seconds=900)  # at the token's exp
    async with gw.client() as client:
        for _ in range(2):
            assert (await client.get("/v1/users/me")).status_code == 200
    assert len(gw.world.users.to("/tokens/introspect")) == 2


# --- rate limiting ----------------------------------------------------------------------------


async def test_per_user_limit_answers_429_with_retry_after(gateway: StartGateway) -> None:
    gw = await gateway(rate_limit="2/minute")
    async with gw.client() as client:
        answers = [await client.get("/v1/users/me") for _ in range(3)]
    async with gw.client(OTHER_TOKEN) as client:
        other = await client.get("/v1/users/me")
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["1", "0", "0"]
    limited = answers[2]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-limit"] == "2"
    body = limited.json()
    assert body["type"] == "https://errors.example.com/ecom/rate-limited"
    assert body["status"] == 429 and body["instance"] == "/v1/users/me"
    assert other.status_code == 200  # the limit is per user


async def test_per_ip_limit_believes_forwarded_addresses_from_trusted_proxies_only(
    gateway: StartGateway,
) -> None:
    # the in-process client comes from 127.0.0.1; 10.0.0.1 is a proxy of ours too
    gw = await gateway(ip_rate_limit="2/minute", trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    async with gw.client(None, **{"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}) as client:
        answers = [(await client.get("/v1/products")).status_code for _ in range(3)]
    async with gw.client(None, **{"X-Forwarded-For": "203.0.113.8, 10.0.0.1"}) as client:
        other = await client.get("/v1/products")
    # what an untrusted hop claims to have forwarded is not believed: 198.51.100.1 is
    # the client, whatever it wrote to the left of its own address
    spoofed = {"X-Forwarded-For": "1.2.3.4, 198.51.100.1, 10.0.0.1"}
    async with gw.client(None, **spoofed) as client:
        first = await client.get("/v1/products")
    assert answers == [200, 200, 429]
    assert other.status_code == 200
    assert first.status_code == 200


async def test_without_trusted_proxies_forwarded_addresses_are_ignored(
    gateway: StartGateway,
) -> None:
    gw = await gateway(ip_rate_limit="2/minute")
    answers = []
    for n in range(5):  # a new made-up address on every request
        async with gw.client(None, **{"X-Forwarded-For": f"203.0.113.{n}"}) as client:
            answers.append((await client.get("/v1/products")).status_code)
    assert answers == [200, 200, 429, 429, 429]


async def test_reset_forgets_counters_and_caches(gateway: StartGateway) -> None:
    gw = await gateway(rate_limit="1/minute")
    async with gw.client() as client:
        assert (await client.get("/v1/products/SKU-1001")).headers["x-cache"] == "MISS"
        assert (await client.get("/v1/users/me")).status_code == 200
        assert (await client.get("/v1/users/me")).status_code == 429
        await gw.host.reset()
        assert (await client.get("/v1/users/me")).status_code == 200
        assert (await client.get("/v1/products/SKU-1001")).headers["x-cache"] == "MISS"
    assert len(gw.world.users.to("/tokens/introspect")) == 2


# --- products and the catalog cache -----------------------------------------------------------


async def test_product_is_cached_after_one_catalog_read(gateway: StartGateway) -> None:
    gw = await gateway()
    async with gw.client(None) as client:
        first = await client.get("/v1/products/SKU-1001")
        second = await client.get("/v1/products/SKU-1001")
        missing = await client.get("/v1/products/SKU-9999")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.json() == second.json() == gw.world.products["SKU-1001"]
    assert len(gw.world.catalog.to("/products/SKU-1001")) == 1
    assert missing.status_code == 404
    assert missing.json()["instance"] == "/v1/products/SKU-9999"


async def test_list_products_forwards_the_query(gateway: StartGateway) -> None:
    gw = await gateway()
    async with gw.client(None) as client:
        page = await client.get("/v1/products", params={"category": "kitchen", "limit": 5})
    assert page.status_code == 200
    assert [item["sku"] for item in page.json()["items"]] == ["SKU-1001", "SKU-2042"]
    assert gw.world.catalog.to("/products")[0].query == {"category": "kitchen", "limit": "5"}


async def test_gateway_validation_errors_are_422(gateway: StartGateway) -> None:
    """422, the one status for a rejected request (specs/CONVENTIONS.md); 400 only for a
    body that is not JSON."""
    gw = await gateway()
    async with gw.client(None) as client:
        response = await client.post("/v1/auth/register", json={"email": "x@example.com"})
        garbled = await client.post(
            "/v1/auth/register", content=b"{", headers={"Content-Type": "application/json"}
        )
    assert garbled.status_code == 400
    assert garbled.json()["type"].endswith("/bad-request")
    assert response.status_code == 422
    assert response.json()["type"].endswith("/validation-error")
    assert gw.world.users.seen == []


# --- users ------------------------------------------------------------------------------------


async def test_register_and_login_map_user_svc_answers(gateway: StartGateway) -> None:
    gw = await gateway()
    credentials = {"email": "anna.schmidt@example.com", "password": "correct-horse-battery"}
    async with gw.client(None) as client:
        created = await client.post("/v1/auth/register", json={**credentials, "name": "Anna"})
        login = await client.post("/v1/auth/login", json=credentials)
    assert created.status_code == 201 and created.json()["user_id"] == USER
    assert login.status_code == 200  # user-svc's 201 session, without its session_id
    assert login.json() == {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 900}


# --- orders -----------------------------------------------------------------------------------


async def test_place_order_prices_from_catalog_and_user_from_token(gateway: StartGateway) -> None:
    gw = await gateway()
    async with gw.client(**{"Idempotency-Key": "key-1"}) as client:
        await client.get("/v1/products/SKU-1001")  # SKU-1001 now cached, SKU-2042 not
        response = await client.post("/v1/orders", json=PLACE_ORDER)
    assert response.status_code == 201, response.text
    (sent,) = gw.world.orders_svc.to("/orders")
    assert sent.headers["idempotency-key"] == "key-1"
    assert sent.headers["x-user-id"] == USER
    assert sent.body == {
        "user_id": USER,
        "items": [
            {"sku": "SKU-1001", "quantity": 2, "unit_amount": 2599},
            {"sku": "SKU-2042", "quantity": 1, "unit_amount": 1499},
        ],
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "shipping_address": ADDRESS,
        "contact": {"email": "anna.schmidt@example.com"},  # from user-svc (no phone)
    }
    assert len(gw.world.catalog.to("/products/SKU-1001")) == 1  # priced from the cache
    order = response.json()
    assert "reservation_id" not in order and order["total_amount"] == 2 * 2599 + 1499
    assert response.headers["location"] == f"/v1/orders/{order['order_id']}"
    assert response.headers["x-ratelimit-limit"] == "100"


async def test_place_order_with_unknown_sku_is_422(gateway: StartGateway) -> None:
    gw = await gateway()
    body = {**PLACE_ORDER, "items": [{"sku": "SKU-9999", "quantity": 1}]}
    async with gw.client(**{"Idempotency-Key": "key-2"}) as client:
        response = await client.post("/v1/orders", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/body/items/0/sku"
    assert gw.world.orders_svc.seen == []


DOWNSTREAM_PROBLEMS = [
    (402, problem(402, "card-declined", order_id=ORDER_ID, order_status="REJECTED",
                  decline_code="insufficient_funds"), {}),
    (409, problem(409, "out-of-stock", skus=["SKU-2042"], order_id=ORDER_ID,
                  order_status="REJECTED"), {}),
    (422, problem(422, "idempotency-key-reused"), {}),
    (503, problem(503, "inventory-unavailable", circuit="open"), {"Retry-After": "30"}),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "headers"), DOWNSTREAM_PROBLEMS)
async def test_place_order_passes_order_problems_on(
    gateway: StartGateway, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    gw = await gateway()
    gw.world.orders_svc.answer = lambda seen: (status, body, headers)
    async with gw.client(**{"Idempotency-Key": "key-3"}) as client:
        response = await client.post("/v1/orders", json=PLACE_ORDER)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {**body, "instance": "/v1/orders"}
    if status == 503:
        assert response.headers["retry-after"] == "30"


async def test_unreachable_order_svc_is_503(gateway: StartGateway) -> None:
    gw = await gateway(retry_after=7)
    gw.replace("order-svc", unreachable("order-svc"))
    async with gw.client(**{"Idempotency-Key": "key-4"}) as client:
        response = await client.post("/v1/orders", json=PLACE_ORDER)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert "order-svc" in response.json()["detail"]


async def test_order_reads_pass_the_user_and_hide_others_orders(gateway: StartGateway) -> None:
    gw = await gateway()
    async with gw.client() as client:
        listed = await client.get("/v1/orders", params={"status": "CONFIRMED"})
        mine = await client.get(f"/v1/orders/{ORDER_ID}")
    async with gw.client(OTHER_TOKEN) as client:
        theirs = await client.get(f"/v1/orders/{ORDER_ID}")
    assert listed.status_code == mine.status_code == 200
    assert listed.json()["items"][0] == mine.json()
    assert "reservation_id" not in mine.json()
    first = gw.world.orders_svc.seen[0]
    assert (first.query, first.headers["x-user-id"]) == ({"status": "CONFIRMED"}, USER)
    assert theirs.status_code == 404
    assert theirs.json()["instance"] == f"/v1/orders/{ORDER_ID}"


async def test_order_summary_aggregates_three_services(gateway: StartGateway) -> None:
    gw = await gateway()
    async with gw.client() as client:
        response = await client.get(f"/v1/orders/{ORDER_ID}/summary")
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["order"]["order_id"] == ORDER_ID
    assert summary["payment"] == {
        "payment_id": "pay_2Lm8Rx5cJd",  # the order's own, not the older failed one
        "status": "succeeded",
        "amount": 5198,
        "currency": "eur",
        "refunded_amount": 0,
    }
    assert summary["shipment"] == {
        "shipment_id": "shp_5Rt8Yw2Nq4",
        "status": "SCHEDULED",
        "carrier": "DHL",
        "tracking_number": "00340434161234567890",
        "estimated_delivery": "2025-03-18",
    }
    for peer, path in ((gw.world.payment_svc, "/payments"), (gw.world.shipping_svc, "/shipments")):
        (seen,) = peer.to(path)
        assert seen.query == {"order_id": ORDER_ID}


async def test_order_summary_without_shipment_and_of_unknown_order(gateway: StartGateway) -> None:
    gw = await gateway()
    gw.world.shipments = []
    async with gw.client() as client:
        summary = await client.get(f"/v1/orders/{ORDER_ID}/summary")
        unknown = await client.get("/v1/orders/ord_Zz9Yy8Xx7Ww6/summary")
    assert summary.json()["shipment"] is None
    assert unknown.status_code == 404
    assert len(gw.world.payment_svc.seen) == 1  # nothing read for the unknown order


async def test_cancel_conflict_carries_the_order_status(gateway: StartGateway) -> None:
    gw = await gateway()
    cancelled = internal_order(status="CANCELLED")
    gw.world.orders[ORDER_ID] = cancelled
    answer = gw.world.orders_svc.answer
    gw.world.orders_svc.answer = lambda seen: (
        (409, problem(409, "conflict")) if seen.path.endswith("/cancel") else answer(seen)
    )
    async with gw.client() as client:
        response = await client.post(f"/v1/orders/{ORDER_ID}/cancel", json={"comment": "size"})
    assert response.status_code == 409
    assert response.json()["order_status"] == "CANCELLED"
    assert gw.world.orders_svc.to(f"/orders/{ORDER_ID}/cancel")[0].body == {"comment": "size"}


# --- notify-svc ---------------------------------------------------------------------------------

EMAIL = "maria.schneider@example.com"
PHONE = "+4915112345678"
TWILIO_SID = "AC0ec0ffee0ec0ffee0ec0ffee0ec0ffee"


def sendgrid_accepts(seen: Seen) -> Answer:
    return 202, None, {"X-Message-Id": f"msg{len(seen.body['personalizations'])}"}


def twilio_queues(seen: Seen) -> Answer:
    return 201, {"sid": "SM" + "5d" * 16, "status": "queued", "to": seen.body["To"]}


@dataclass
class Notify:
    host: StubHost
    bus: InMemoryBus
    sendgrid: FakePeer
    twilio: FakePeer

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        await self.bus.publish(topic, event["order_id"], event)
        await self.bus.drain()

    def client(self) -> httpx.AsyncClient:
        return asgi_client(self.host, "notify-svc", **{"X-Service-Token": "operator"})


@pytest.fixture
async def notify(host_factory: Callable[..., Awaitable[StubHost]]) -> AsyncIterator[Notify]:
    bus = InMemoryBus()
    host = await host_factory(["notify-svc"], bus=bus)
    sendgrid, twilio = FakePeer("sendgrid", sendgrid_accepts), FakePeer("twilio", twilio_queues)
    clients = {peer.name: peer.client() for peer in (sendgrid, twilio)}
    simulator = host.stubs["notify-svc"].simulator
    assert simulator is not None
    simulator.ctx.peers.add(clients)
    yield Notify(host, bus, sendgrid, twilio)
    for client in clients.values():
        await client.aclose()


def order_confirmed(order_id: str = "ord_7Hq2Kd9xLm", phone: str | None = PHONE) -> dict[str, Any]:
    data = {
        "user_id": "usr_4fT9aQ2pLx",
        "payment_id": "pay_3Vb8Nc1Rk5",
        "shipment_id": "shp_5Rt8Yw2Nq4",
        "total_amount": 6697,
        "currency": "eur",
        "email": EMAIL,
        "phone": phone,
    }
    return make_event("order.confirmed", "order-svc", order_id, data, utc_now())


def shipment_scheduled(order_id: str = "ord_7Hq2Kd9xLm") -> dict[str, Any]:
    data = {
        "shipment_id": "shp_5Rt8Yw2Nq4",
        "carrier": "dhl",
        "tracking_number": "00340434161234567890",
        "estimated_delivery": "2025-03-14",
    }
    return make_event("shipment.scheduled", "shipping-svc", order_id, data, utc_now())


async def list_notifications(notify: Notify, **query: Any) -> dict[str, Any]:
    async with notify.client() as client:
        response = await client.get("/notifications", params=query)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_order_confirmed_sends_email_and_sms(notify: Notify) -> None:
    event = order_confirmed()
    await notify.publish("orders", event)
    (mail,) = notify.sendgrid.to("/v3/mail/send")
    assert mail.headers["authorization"] == "Bearer SG.ecomharness"
    assert "x-service-token" not in mail.headers  # no platform credential to a provider
    assert mail.body["personalizations"] == [
        {"to": [{"email": EMAIL}], "subject": "Your order ord_7Hq2Kd9xLm is confirmed"}
    ]
    assert mail.body["from"] == {"email": "orders@shop.example.com", "name": "Example Shop"}
    assert "66.97 EUR" in mail.body["content"][0]["value"]
    assert mail.body["custom_args"]["event_id"] == event["id"]
    (sms,) = notify.twilio.to(f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    assert sms.body["To"] == PHONE and sms.body["From"] == "+15005550006"
    assert "ord_7Hq2Kd9xLm is confirmed" in sms.body["Body"]
    expected_auth = base64.b64encode(f"{TWILIO_SID}:ecomharness".encode()).decode()
    assert sms.headers["authorization"] == f"Basic {expected_auth}"
    items = (await list_notifications(notify))["items"]
    assert {(n["channel"], n["provider"], n["status"], n["template"]) for n in items} == {
        ("email", "sendgrid", "sent", "order_confirmed"),
        ("sms", "twilio", "sent", "order_confirmed"),
    }
    by_channel = {n["channel"]: n for n in items}
    assert by_channel["email"]["provider_message_id"] == "msg1"
    assert by_channel["sms"]["provider_message_id"] == "SM" + "5d" * 16
    assert by_channel["sms"]["recipient"] == PHONE and by_channel["email"]["error"] is None


async def test_a_redelivered_event_is_sent_once(notify: Notify) -> None:
    event = order_confirmed()
    await notify.publish("orders", event)
    await notify.publish("orders", event)
    assert len(notify.sendgrid.seen) == len(notify.twilio.seen) == 1
    assert len((await list_notifications(notify))["items"]) == 2


async def test_provider_refusals_are_recorded_as_failed(notify: Notify) -> None:
    refusal = {
        "code": 21211,
        "message": "The 'To' number +4915112345678 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    notify.twilio.answer = lambda seen: (400, refusal)
    await notify.publish("orders", order_confirmed())
    (sms,) = (await list_notifications(notify, channel="sms"))["items"]
    assert sms["status"] == "failed" and sms["provider_message_id"] is None
    assert sms["error"] == f"Twilio error 21211: {refusal['message']}"
    (email,) = (await list_notifications(notify, channel="email"))["items"]
    assert email["status"] == "sent"


async def test_unreachable_provider_is_recorded_as_failed(notify: Notify) -> None:
    simulator = notify.host.stubs["notify-svc"].simulator
    assert simulator is not None
    simulator.ctx.peers.add({"sendgrid": unreachable("sendgrid")})
    await notify.publish("orders", order_confirmed(phone=None))
    (email,) = (await list_notifications(notify))["items"]
    assert email["status"] == "failed" and "sendgrid could not be reached" in email["error"]
    assert notify.twilio.seen == []  # no phone, no SMS


async def test_events_wait_for_the_orders_contact(notify: Notify) -> None:
    await notify.publish("shipments", shipment_scheduled())
    assert notify.sendgrid.seen == [] and notify.twilio.seen == []
    await notify.publish("orders", order_confirmed())
    subjects = [seen.body["personalizations"][0]["subject"] for seen in notify.sendgrid.seen]
    assert sorted(subjects) == [
        "Your order ord_7Hq2Kd9xLm is confirmed",
        "Your order ord_7Hq2Kd9xLm is on its way",
    ]
    assert any("DHL" in seen.body["Body"] for seen in notify.twilio.seen)
    await notify.publish("shipments", shipment_scheduled())  # known contact: at once
    assert len(notify.sendgrid.seen) == 3


async def test_an_event_whose_contact_is_known_is_sent_without_the_inbox(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbox holds events only while their order's contact is unknown: once it is
    known, an event's only writes are its claims and their outcomes (kept and read back,
    each mail cost three more round trips to the database)."""
    simulator = notify.host.stubs["notify-svc"].simulator
    assert simulator is not None
    await notify.publish("orders", order_confirmed())
    writes: list[str] = []
    plain = simulator.ctx.db.execute

    async def recorded(statement: Any, parameters: Any = None) -> Any:
        writes.append(f"{statement.__visit_name__} {statement.table.name}")
        return await plain(statement, parameters)

    monkeypatch.setattr(simulator.ctx.db, "execute", recorded)
    await notify.publish("shipments", shipment_scheduled())
    assert len(notify.sendgrid.seen) == 2 and len(notify.twilio.seen) == 2
    assert writes == ["insert notifications", "update notifications"] * 2  # email, sms


async def test_an_event_that_brings_a_contact_reads_no_empty_inbox(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """notify-svc knows which orders have events waiting: an event that brings the
    contact of an order with none reads nothing (it looked in the inbox every time: a
    round trip of two events per order, issue 15)."""
    simulator = notify.host.stubs["notify-svc"].simulator
    assert simulator is not None
    reads = 0
    plain = simulator.ctx.db.connect

    def counted() -> Any:
        nonlocal reads
        reads += 1
        return plain()

    monkeypatch.setattr(simulator.ctx.db, "connect", counted)
    await notify.publish("orders", order_confirmed("ord_AAAAAAAA1"))
    assert reads == 0 and len(notify.sendgrid.seen) == 1
    await notify.publish("shipments", shipment_scheduled("ord_BBBBBBBB2"))  # kept
    confirmed = order_confirmed("ord_BBBBBBBB2")
    await notify.publish("orders", confirmed)
    assert reads == 2  # the shipment's contact looked up, then its order's inbox read
    assert len(notify.sendgrid.seen) == 3
    await notify.publish("orders", confirmed)  # redelivered
    assert reads == 2 and len(notify.sendgrid.seen) == 3  # delivered, nothing waits now


async def test_an_orders_contact_is_stored_and_read_once(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """notify-svc keeps the newest orders' contacts in memory as well: the contact a
    confirmation repeats is not stored again, and an event that carries none finds it
    without a read (two round trips per order, issue 15). A contact that changes is
    stored, and used; a reset forgets the contacts with the database."""
    simulator = notify.host.stubs["notify-svc"].simulator
    assert simulator is not None
    reads, writes = 0, 0
    connect, execute = simulator.ctx.db.connect, simulator.ctx.db.execute

    def read() -> Any:
        nonlocal reads
        reads += 1
        return connect()

    async def write(statement: Any, parameters: Any = None) -> Any:
        nonlocal writes
        writes += statement is simulator._upsert_contact
        return await execute(statement, parameters)

    monkeypatch.setattr(simulator.ctx.db, "connect", read)
    monkeypatch.setattr(simulator.ctx.db, "execute", write)

    def recipients() -> list[str]:
        return [seen.body["personalizations"][0]["to"][0]["email"] for seen in notify.sendgrid.seen]

    confirmed = order_confirmed("ord_AAAAAAAA1")
    await notify.publish("orders", confirmed)
    await notify.publish("orders", confirmed)  # redelivered: claimed, nothing sent twice
    await notify.publish("shipments", shipment_scheduled("ord_AAAAAAAA1"))
    assert (reads, writes) == (0, 1)
    assert recipients() == [EMAIL, EMAIL]
    moved = order_confirmed("ord_AAAAAAAA1")
    moved["data"]["email"] = "moved@example.org"
    await notify.publish("orders", moved)
    await notify.publish("shipments", shipment_scheduled("ord_AAAAAAAA1"))
    assert (reads, writes) == (0, 2)
    assert recipients() == [EMAIL, EMAIL, "moved@example.org", "moved@example.org"]
    await simulator.reset()
    await notify.publish("shipments", shipment_scheduled("ord_AAAAAAAA1"))
    assert reads == 1 and len(recipients()) == 4  # no contact now: kept in the inbox


async def test_events_kept_by_a_stopped_run_are_sent_after_a_restart_on_postgresql() -> None:
    """Which orders have events waiting is read from the inbox at start: the contact
    that comes after a restart still sends what the stopped run kept (PostgreSQL keeps
    the state across restarts; the embedded databases go with their process)."""
    import os
    import uuid

    from conftest import POSTGRES_URL, drop_databases
    from ecom_harness.stubs import Backends

    prefix = f"ecomtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    backends = Backends(database_url=POSTGRES_URL, database_prefix=prefix)
    subjects: list[str] = []
    try:
        for event in (shipment_scheduled(), order_confirmed()):
            bus = InMemoryBus()
            settings = {"notify-svc": {"seed_orders": False}}
            host = StubHost.shipped(["notify-svc"], backends=backends, bus=bus, settings=settings)
            await host.start()
            sendgrid, twilio = (
                FakePeer("sendgrid", sendgrid_accepts),
                FakePeer("twilio", twilio_queues),
            )
            clients = {peer.name: peer.client() for peer in (sendgrid, twilio)}
            try:
                simulator = host.stubs["notify-svc"].simulator
                assert simulator is not None
                simulator.ctx.peers.add(clients)
                await Notify(host, bus, sendgrid, twilio).publish(
                    "shipments" if event["type"] == "shipment.scheduled" else "orders", event
                )
                subjects += [seen.body["personalizations"][0]["subject"] for seen in sendgrid.seen]
            finally:
                for client in clients.values():
                    await client.aclose()
                await host.stop()
    finally:
        await drop_databases(POSTGRES_URL, prefix)
    assert sorted(subjects) == [
        "Your order ord_7Hq2Kd9xLm is confirmed",
        "Your order ord_7Hq2Kd9xLm is on its way",
    ]


async def test_an_unknown_customer_is_not_notified(notify: Notify) -> None:
    data = {"payment_id": "pay_6Hn2Jd8Ks4", "amount": 2599, "currency": "eur",
            "decline_code": "insufficient_funds"}  # fmt: skip
    await notify.publish("payments", make_event("payment.failed", "payment-svc",
                                                "ord_9Pz4Wc6Vb1", data, utc_now()))  # fmt: skip
    assert notify.sendgrid.seen == []
    assert (await list_notifications(notify))["items"] == []


async def test_notifications_filter_page_and_read(notify: Notify) -> None:
    await notify.publish("orders", order_confirmed("ord_AAAAAAAA1"))
    await notify.publish("orders", order_confirmed("ord_BBBBBBBB2", phone=None))
    mine = await list_notifications(notify, order_id="ord_BBBBBBBB2")
    assert [(n["order_id"], n["channel"]) for n in mine["items"]] == [("ord_BBBBBBBB2", "email")]
    first = await list_notifications(notify, limit=2)
    rest = await list_notifications(notify, limit=2, cursor=first["next_cursor"])
    assert len(first["items"]) == 2 and rest["next_cursor"] is None
    seen = [n["notification_id"] for n in first["items"] + rest["items"]]
    assert len(set(seen)) == 3
    assert first["items"][0]["order_id"] == "ord_BBBBBBBB2"  # newest first
    async with notify.client() as client:
        one = await client.get(f"/notifications/{seen[0]}")
        unknown = await client.get("/notifications/ntf_0000000000")
        forged = await client.get("/notifications", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert one.json() == first["items"][0]
    assert unknown.status_code == 404
    assert forged.status_code == 422


# --- end to end, with the real peer simulators --------------------------------------------------

E2E_PEERS = ["user-svc", "catalog-svc", "order-svc", "inventory-svc", "payment-svc",
             "shipping-svc", "stripe", "notify-svc", "sendgrid", "twilio"]  # fmt: skip


@dataclass
class Platform:
    host: StubHost
    bus: InMemoryBus
    client: httpx.AsyncClient  # the gateway's, signed in
    user_id: str


@pytest.fixture
async def platform(host_factory: Callable[..., Awaitable[StubHost]]) -> AsyncIterator[Platform]:
    """Every simulator on one bus, and a customer signed in through the gateway."""
    bus = InMemoryBus()
    host = await host_factory(["api-gateway", *E2E_PEERS], bus=bus)
    assert all(host.stubs[name].simulator is not None for name in E2E_PEERS), (
        "a peer is not simulated"
    )
    async with asgi_client(host, "api-gateway") as client:
        credentials = {"email": "e2e@example.com", "password": "correct-horse-battery"}
        created = await client.post("/v1/auth/register", json={**credentials, "name": "E2E"})
        assert created.status_code == 201, created.text
        login = await client.post("/v1/auth/login", json=credentials)
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield Platform(host, bus, client, created.json()["user_id"])


async def settle(platform: Platform) -> None:
    """Every outbox relayed now (not at its next tick), then every record handled."""
    for stub in platform.host.stubs.values():
        relay = getattr(stub.simulator, "relay", None)
        if isinstance(relay, OutboxRelay):
            await relay.relay_once()
    await platform.bus.drain()


async def place_first_product(platform: Platform, key: str) -> tuple[dict[str, Any], int]:
    """(the order placed for one unit of the catalog's first product, its price)."""
    listed = (await platform.client.get("/v1/products")).json()["items"]
    assert listed, "catalog-svc has no products"
    body = {**PLACE_ORDER, "items": [{"sku": listed[0]["sku"], "quantity": 1}]}
    placed = await platform.client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    return order, listed[0]["price"]["amount"]


async def test_end_to_end_order_through_the_real_peers(platform: Platform) -> None:
    client = platform.client
    me = await client.get("/v1/users/me")
    assert me.status_code == 200 and me.json()["user_id"] == platform.user_id
    order, price = await place_first_product(platform, "e2e-1")
    sku = order["items"][0]["sku"]
    assert (await client.get(f"/v1/products/{sku}")).headers["x-cache"] == "HIT"
    assert order["user_id"] == platform.user_id and order["status"] == "CONFIRMED"
    assert order["items"][0]["unit_amount"] == price
    summary = await client.get(f"/v1/orders/{order['order_id']}/summary")
    assert summary.status_code == 200, summary.text
    assert summary.json()["payment"]["status"] == "succeeded"
    assert summary.json()["shipment"]["status"] == "SCHEDULED"
    listed = await client.get("/v1/orders")
    assert [o["order_id"] for o in listed.json()["items"]] == [order["order_id"]]


async def test_end_to_end_notifications_of_an_order_and_its_cancellation(
    platform: Platform,
) -> None:
    order, _ = await place_first_product(platform, "e2e-2")
    cancelled = await platform.client.post(f"/v1/orders/{order['order_id']}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text
    summary = (await platform.client.get(f"/v1/orders/{order['order_id']}/summary")).json()
    assert (summary["payment"]["status"], summary["shipment"]["status"]) == (
        "refunded",
        "CANCELLED",
    )
    await settle(platform)
    async with asgi_client(platform.host, "notify-svc", **{"X-Service-Token": "ops"}) as ops:
        found = (await ops.get("/notifications", params={"order_id": order["order_id"]})).json()
    sent = {(n["template"], n["channel"], n["status"]) for n in found["items"]}
    assert sent == {
        (template, "email", "sent")
        for template in (
            "order_confirmed",
            "shipment_scheduled",
            "order_cancelled",
            "payment_refunded",
        )
    }
