"""Simulators of user-svc, catalog-svc and shipping-svc, through HTTP, on both backends."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import asgi_client
from ecom_harness.stubs import InMemoryBus, Record, StubHost, make_event
from ecom_harness.stubs.behaviours import rfc3339
from ecom_harness.stubs.behaviours._jwt import TokenSigner
from ecom_harness.stubs.state._postgres import PostgresDatabase

HostFactory = Callable[..., Awaitable[StubHost]]
SERVICE = {"X-Service-Token": "api-gateway-token"}
# Tuesday 11 March 2025, 09:15:05 UTC: the time of the specs' own examples.
T0 = datetime(2025, 3, 11, 9, 15, 5, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand (assigned to a simulator's ``ctx.clock``)."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def private_key_pem() -> str:
    """One RSA key for the module: generating one per host would dominate the run time."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@asynccontextmanager
async def started(
    host_factory: HostFactory,
    component: str,
    settings: dict[str, Any] | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> AsyncIterator[tuple[StubHost, httpx.AsyncClient]]:
    """One hosted component (optionally on a hand-moved clock) and a client for it."""
    host = await host_factory([component], settings={component: settings or {}}, **options)
    if clock is not None:
        simulator = host.stubs[component].simulator
        assert simulator is not None
        simulator.ctx.clock = clock
    async with asgi_client(host, component, **SERVICE) as client:
        yield host, client


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://errors.example.com/ecom/{slug}"
    return body


@pytest.mark.parametrize("component", ["user-svc", "catalog-svc", "shipping-svc"])
async def test_health(host_factory: HostFactory, component: str, private_key_pem: str) -> None:
    settings = {"private_key_pem": private_key_pem} if component == "user-svc" else {}
    async with started(host_factory, component, settings) as (_, client):
        response = await client.get("/health", headers={"X-Service-Token": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "component": component}


# --- user-svc ------------------------------------------------------------------------------

ANNA = {"email": "Anna.Schmidt@example.com", "password": "correct-horse-battery", "name": "Anna"}


@pytest.fixture
def user_settings(private_key_pem: str) -> dict[str, Any]:
    return {"private_key_pem": private_key_pem, "scrypt_n": 1 << 10}


async def register_and_login(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    user = await client.post("/users", json=ANNA)
    assert user.status_code == 201, user.text
    session = await client.post(
        "/sessions", json={"email": ANNA["email"].lower(), "password": ANNA["password"]}
    )
    assert session.status_code == 201, session.text
    return user.json(), session.json()


async def introspect(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.post("/tokens/introspect", json={"token": token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_and_get_user(
    host_factory: HostFactory, user_settings: dict[str, Any]
) -> None:
    async with started(host_factory, "user-svc", user_settings, Clock()) as (_, client):
        created = await client.post("/users", json=ANNA | {"phone": "+4915112345678"})
        assert created.status_code == 201, created.text
        user = created.json()
        assert user["user_id"].startswith("usr_")
        assert user["email"] == ANNA["email"]
        assert (user["phone"], user["created_at"]) == ("+4915112345678", "2025-03-11T09:15:05Z")
        assert "password" not in user
        fetched = await client.get(f"/users/{user['user_id']}")
        assert fetched.status_code == 200
        assert fetched.json() == user
        other = await client.post("/users", json=ANNA | {"email": "bob@example.com"})
        assert other.json()["phone"] is None
        missing = await client.get("/users/usr_Zz9Yy8Xx7Ww6")
        assert assert_problem(missing, 404, "not-found")["instance"] == "/users/usr_Zz9Yy8Xx7Ww6"


async def test_create_user_errors(host_factory: HostFactory, user_settings: dict[str, Any]) -> None:
    async with started(host_factory, "user-svc", user_settings) as (_, client):
        assert (await client.post("/users", json=ANNA)).status_code == 201
        taken = await client.post("/users", json=ANNA | {"email": ANNA["email"].upper()})
        assert "already exists" in assert_problem(taken, 409, "conflict")["detail"]
        short = await client.post("/users", json=ANNA | {"password": "short"})
        errors = assert_problem(short, 422, "validation-error")["errors"]
        assert [e["pointer"] for e in errors] == ["/body/password"]
        anonymous = await client.post("/users", json=ANNA, headers={"X-Service-Token": ""})
        assert_problem(anonymous, 401, "unauthorized")


async def test_login_token_verifies_with_the_jwks_alone(
    host_factory: HostFactory, user_settings: dict[str, Any]
) -> None:
    async with started(host_factory, "user-svc", user_settings, Clock()) as (_, client):
        user, session = await register_and_login(client)
        jwks_response = await client.get("/.well-known/jwks.json", headers={"X-Service-Token": ""})
    assert jwks_response.headers["cache-control"] == "public, max-age=300"
    (jwk,) = jwks_response.json()["keys"]
    token = session["access_token"]
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience="ecom-api",
        issuer="https://user-svc.ecom.local",
        options={"verify_exp": False},  # issued on the test clock, in 2025
    )
    assert claims["sub"] == user["user_id"]
    assert claims["sid"] == session["session_id"]
    assert claims["iat"] == int(T0.timestamp())
    assert claims["exp"] - claims["iat"] == session["expires_in"] == 900
    assert claims["jti"]
    assert session["token_type"] == "Bearer"


async def test_login_with_bad_credentials_is_401(
    host_factory: HostFactory, user_settings: dict[str, Any]
) -> None:
    async with started(host_factory, "user-svc", user_settings) as (_, client):
        await client.post("/users", json=ANNA)
        wrong = await client.post("/sessions", json={"email": ANNA["email"], "password": "nope"})
        assert assert_problem(wrong, 401, "unauthorized")["title"] == "Invalid credentials"
        unknown = await client.post(
            "/sessions", json={"email": "who@example.com", "password": ANNA["password"]}
        )
        assert assert_problem(unknown, 401, "unauthorized")["title"] == "Invalid credentials"


async def test_session_lives_in_redis_for_the_token_lifetime(
    host_factory: HostFactory, user_settings: dict[str, Any]
) -> None:
    settings = user_settings | {"token_lifetime": 120}
    async with started(host_factory, "user-svc", settings) as (host, client):
        _, session = await register_and_login(client)
        assert host.redis is not None
        key = f"user-svc:session:{session['session_id']}"
        assert await host.redis.exists(key) == 1
        assert 110 <= await host.redis.ttl(key) <= 120
    assert session["expires_in"] == 120


async def test_introspection_active_until_expiry_on_the_clock(
    host_factory: HostFactory, user_settings: dict[str, Any]
) -> None:
    clock = Clock()
    async with started(host_factory, "user-svc", user_settings, clock) as (_, client):
        user, session = await register_and_login(client)
        active = await introspect(client, session["access_token"])
        assert active == {
            "active": True,
            "sub": user["user_id"],
            "email": ANNA["email"],
            "scope": "profile orders:read orders:write",
            "iss": "https://user-svc.ecom.local",
            "aud": "ecom-api",
            "iat": int(T0.timestamp()),
            "exp": int(T0.timestamp()) + 900,
            "session_id": session["session_id"],
        }
        clock.advance(899)
        assert (await introspect(client, session["access_token"]))["active"] is True
        clock.advance(1)
        assert await introspect(client, session["access_token"]) == {"active": False}


async def test_introspection_inactive_after_revoke_session(
    host_factory: HostFactory, user_settings: dict[str, Any]
) -> None:
    async with started(host_factory, "user-svc", user_settings, Clock()) as (host, client):
        _, session = await register_and_login(client)
        simulator: Any = host.stubs["user-svc"].simulator
        assert await simulator.revoke_session(session["session_id"]) is True
        assert await introspect(client, session["access_token"]) == {"active": False}
        assert host.redis is not None
        assert await host.redis.exists(f"user-svc:session:{session['session_id']}") == 0
        assert await simulator.revoke_session(session["session_id"]) is False


async def test_introspection_refuses_foreign_and_malformed_tokens(
    host_factory: HostFactory, user_settings: dict[str, Any], private_key_pem: str
) -> None:
    async with started(host_factory, "user-svc", user_settings, Clock()) as (_, client):
        _, session = await register_and_login(client)
        claims = jwt.decode(session["access_token"], options={"verify_signature": False})
        signers = {
            "other key": TokenSigner.create(
                None, issuer=claims["iss"], audience=claims["aud"], kid="usr-2025-03"
            ),
            "other audience": TokenSigner.create(
                private_key_pem, issuer=claims["iss"], audience="someone-else"
            ),
            "other issuer": TokenSigner.create(
                private_key_pem, issuer="https://evil.example.com", audience=claims["aud"]
            ),
        }
        for name, signer in signers.items():
            forged = signer.sign(claims)
            assert await introspect(client, forged) == {"active": False}, name
        same_key = TokenSigner.create(private_key_pem, issuer=claims["iss"], audience=claims["aud"])
        assert (await introspect(client, same_key.sign(claims)))["active"] is True  # control
        unknown_session = same_key.sign(claims | {"sid": "ses_Unknown12345"})
        assert await introspect(client, unknown_session) == {"active": False}
        assert await introspect(client, "not.a.jwt") == {"active": False}


async def test_settings_shape_tokens_and_a_key_is_generated_without_pem(
    host_factory: HostFactory,
) -> None:
    settings = {"issuer": "https://id.test", "audience": "shop", "scrypt_n": 1 << 10}
    async with started(host_factory, "user-svc", settings) as (_, client):
        _, session = await register_and_login(client)
        (jwk,) = (await client.get("/.well-known/jwks.json")).json()["keys"]
        active = await introspect(client, session["access_token"])
    claims = jwt.decode(
        session["access_token"],
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience="shop",
        issuer="https://id.test",
    )
    assert (active["iss"], active["aud"], claims["sid"]) == (
        "https://id.test",
        "shop",
        active["session_id"],
    )


# --- catalog-svc ---------------------------------------------------------------------------

SPEC_SKUS = {  # the seed data's products (specs/seed.toml)
    "SKU-1001": "IN_STOCK",
    "SKU-2040": "IN_STOCK",
    "SKU-2042": "LOW_STOCK",
    "SKU-3107": "OUT_OF_STOCK",
}


def product(sku: str, category: str = "coffee") -> dict[str, Any]:
    return {
        "sku": sku,
        "name": f"Product {sku}",
        "description": "A product for the pagination tests.",
        "price": {"amount": 1000, "currency": "eur"},
        "category": category,
        "images": [f"https://cdn.example.com/products/{sku}/main.jpg"],
        "availability": "IN_STOCK",
        "updated_at": "2025-03-11T08:00:00Z",
    }


async def walk(client: httpx.AsyncClient, **query: Any) -> list[list[str]]:
    """Every page of listProducts, following next_cursor, as lists of skus."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params = query | ({"cursor": cursor} if cursor else {})
        response = await client.get("/products", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["sku"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_catalog_is_seeded_from_the_seed_data(host_factory: HostFactory) -> None:
    async with started(host_factory, "catalog-svc") as (host, client):
        listed = (await client.get("/products")).json()
        fetched = await client.get("/products/SKU-1001")
    assert {item["sku"]: item["availability"] for item in listed["items"]} == SPEC_SKUS
    assert listed["next_cursor"] is None
    spec = host.stubs["catalog-svc"].api.operations["getProduct"].responses["200"]
    assert fetched.json() == spec.content["application/json"].examples["inStock"]


async def test_get_product_errors(host_factory: HostFactory) -> None:
    async with started(host_factory, "catalog-svc") as (_, client):
        missing = await client.get("/products/SKU-9999")
        assert (
            assert_problem(missing, 404, "not-found")["detail"]
            == "Product SKU-9999 does not exist."
        )
        assert_problem(await client.get("/products/coffee-dripper"), 422, "validation-error")
        assert_problem(await client.get("/products?limit=500"), 422, "validation-error")


async def test_pagination_walks_every_product_once(host_factory: HostFactory) -> None:
    extra = [product(f"SKU-5{n:03d}", "tea" if n % 3 else "coffee") for n in range(23)]
    async with started(host_factory, "catalog-svc", {"products": extra[:10]}) as (host, client):
        simulator: Any = host.stubs["catalog-svc"].simulator
        await simulator.seed(extra[10:])
        pages = await walk(client, limit=4)
        tea_pages = await walk(client, limit=5, category="tea")
    skus = [sku for page in pages for sku in page]
    assert skus == sorted(SPEC_SKUS.keys() | {p["sku"] for p in extra})
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4, 4, 3]  # 23 + 4 seeded
    tea = [sku for page in tea_pages for sku in page]
    assert tea == sorted(p["sku"] for p in extra if p["category"] == "tea")
    assert [len(page) for page in tea_pages] == [5, 5, 5]  # no empty last page


async def test_a_cursor_not_issued_here_is_422(host_factory: HostFactory) -> None:
    forged = base64.urlsafe_b64encode(b'{"seq": 3}').decode()
    async with started(host_factory, "catalog-svc") as (_, client):
        for cursor in ("not-a-cursor!", forged, "e30"):
            response = await client.get("/products", params={"cursor": cursor})
            body = assert_problem(response, 422, "validation-error")
            assert body["errors"][0]["pointer"] == "/query/cursor"


async def test_seed_refuses_an_invalid_product(host_factory: HostFactory) -> None:
    async with started(host_factory, "catalog-svc") as (host, _):
        simulator: Any = host.stubs["catalog-svc"].simulator
        with pytest.raises(ValueError, match="/sku"):
            await simulator.seed([product("sku-1")])


def inventory_event(kind: str, sku: str, quantity: int, *, unknown: bool = True) -> dict[str, Any]:
    lines = [{"sku": sku, "quantity": quantity}]
    lines += [{"sku": "SKU-00000001", "quantity": 1}] if unknown else []  # not in the catalog
    data: dict[str, Any] = {"reservation_id": "res_8Kd3Lp5Xq1", "items": lines}
    data |= {"expires_at": "2025-03-11T09:30:03Z"} if kind == "reserved" else {"reason": "expired"}
    return make_event(f"inventory.{kind}", "inventory-svc", "ord_7Hq2Kd9xLm", data, T0)


@pytest.mark.parametrize("unknown", [True, False], ids=["two-lines", "one-line"])
async def test_inventory_events_move_availability(host_factory: HostFactory, unknown: bool) -> None:
    """Reservations and releases move the count once per event; ``updated_at`` moves
    with the availability only. An event of one line is one statement on PostgreSQL
    (issue 15); one with a line the catalog does not list, a block."""
    bus = InMemoryBus()
    settings = {"stock": {"SKU-1001": 12}}
    clock = Clock(T0 + timedelta(days=1))
    async with started(host_factory, "catalog-svc", settings, clock, bus=bus) as (host, client):
        db = host.stubs["catalog-svc"].simulator.ctx.db  # type: ignore[union-attr]
        sent: list[str] = []
        if isinstance(db, PostgresDatabase):
            async with db.connect() as conn:  # blocks take the last connection returned
                conn.raw.add_query_logger(lambda record: sent.append(record.query.upper()))

        async def after(event: dict[str, Any]) -> dict[str, Any]:
            await bus.publish("inventory", event["order_id"], event, publisher="inventory-svc")
            await bus.drain(timeout=5)
            found: dict[str, Any] = (await client.get("/products/SKU-1001")).json()
            return found

        def event(kind: str, quantity: int) -> dict[str, Any]:
            return inventory_event(kind, "SKU-1001", quantity, unknown=unknown)

        reserved = event("reserved", 3)
        low = await after(reserved)
        assert (low["availability"], low["updated_at"]) == ("LOW_STOCK", rfc3339(clock.now))
        assert (await after(reserved))["availability"] == "LOW_STOCK"  # redelivery: once only
        clock.advance(60)
        back = await after(event("released", 3))
        assert (back["availability"], back["updated_at"]) == ("IN_STOCK", rfc3339(clock.now))
        gone = await after(event("reserved", 12))
        assert gone["availability"] == "OUT_OF_STOCK"
        clock.advance(60)
        steady = await after(event("released", 1))
        assert (steady["availability"], steady["updated_at"]) == ("LOW_STOCK", rfc3339(clock.now))
        clock.advance(60)
        still = await after(event("released", 1))  # LOW_STOCK again: updated_at stays
        assert (still["availability"], still["updated_at"]) == ("LOW_STOCK", steady["updated_at"])
    if isinstance(db, PostgresDatabase):  # six events (the reads end in ROLLBACK); a
        # statement's first sight goes through SQLAlchemy, which begins a transaction
        committed = sum(query.startswith("COMMIT") for query in sent)
        assert committed == (6 if unknown else 1), sent


# --- shipping-svc --------------------------------------------------------------------------

ORDER = "ord_7Hq2Kd9xLm"
ADDRESS = {
    "name": "Maria Schneider",
    "line1": "Torstraße 112",
    "city": "Berlin",
    "postal_code": "10119",
    "country": "DE",
}
ITEMS = [{"sku": "SKU-1001", "quantity": 2}]


def shipment_request(order_id: str = ORDER, country: str = "DE") -> dict[str, Any]:
    return {"order_id": order_id, "address": ADDRESS | {"country": country}, "items": ITEMS}


async def test_schedule_get_and_cancel_a_shipment(host_factory: HostFactory) -> None:
    async with started(host_factory, "shipping-svc", clock=Clock()) as (_, client):
        created = await client.post("/shipments", json=shipment_request())
        assert created.status_code == 201, created.text
        shipment = created.json()
        assert created.headers["location"] == f"/shipments/{shipment['shipment_id']}"
        assert (shipment["status"], shipment["carrier"]) == ("SCHEDULED", "dhl")
        assert shipment["estimated_delivery"] == "2025-03-14"  # Tue + 3 business days
        assert shipment["tracking_number"].startswith("00340434")
        assert shipment["created_at"] == "2025-03-11T09:15:05Z"
        fetched = await client.get(f"/shipments/{shipment['shipment_id']}")
        assert fetched.json() == shipment
        again = await client.post("/shipments", json=shipment_request())
        assert assert_problem(again, 409, "conflict")["shipment_id"] == shipment["shipment_id"]
        cancelled = await client.post(f"/shipments/{shipment['shipment_id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json() == shipment | {"status": "CANCELLED"}
        twice = await client.post(f"/shipments/{shipment['shipment_id']}/cancel")
        assert assert_problem(twice, 409, "conflict")["current_status"] == "CANCELLED"
        # an order ships once: a request landing after its shipment was cancelled (a late
        # retry of the saga's call) ships nothing
        late = await client.post("/shipments", json=shipment_request())
        assert assert_problem(late, 409, "conflict")["shipment_id"] == shipment["shipment_id"]


async def test_a_cancellation_by_order_id_wins_over_a_schedule_that_lands_after_it(
    host_factory: HostFactory,
) -> None:
    """The caller never learnt whether its schedule was done: it cancels by order id.
    Before the schedule lands, that leaves a tombstone, and the late schedule ships nothing
    (409, no shipment); after it, the cancellation cancels the shipment."""
    async with started(host_factory, "shipping-svc") as (_, client):
        early, late = "ord_Early0000001", "ord_Late00000001"
        for _ in range(2):  # idempotent
            first = await client.post(f"/orders/{early}/shipment/cancel")
            assert (first.status_code, first.content) == (204, b"")
        refused = await client.post("/shipments", json=shipment_request(early))
        assert "shipment_id" not in assert_problem(refused, 409, "conflict")
        listed = await client.get("/shipments", params={"order_id": early})
        assert listed.json()["items"] == []

        shipment = (await client.post("/shipments", json=shipment_request(late))).json()
        for _ in range(2):
            cancelled = await client.post(f"/orders/{late}/shipment/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json() == shipment | {
                "status": "CANCELLED",
                "updated_at": cancelled.json()["updated_at"],
            }


async def test_a_cancellation_by_order_id_racing_its_schedule_leaves_nothing_scheduled(
    host_factory: HostFactory,
) -> None:
    async with started(host_factory, "shipping-svc") as (_, client):
        orders = [f"ord_Race{n:08d}" for n in range(10)]
        await asyncio.gather(
            *(client.post("/shipments", json=shipment_request(order)) for order in orders),
            *(client.post(f"/orders/{order}/shipment/cancel") for order in orders),
        )
        listed = (await client.get("/shipments", params={"limit": 100})).json()["items"]
        assert [s for s in listed if s["order_id"] in orders and s["status"] == "SCHEDULED"] == []


async def test_shipment_errors(host_factory: HostFactory) -> None:
    async with started(host_factory, "shipping-svc") as (_, client):
        assert_problem(await client.get("/shipments/shp_0000000000"), 404, "not-found")
        assert_problem(await client.post("/shipments/shp_0000000000/cancel"), 404, "not-found")
        assert_problem(await client.get(f"/shipments/{ORDER}"), 422, "validation-error")
        bad = shipment_request(country="de") | {"items": [{"sku": "SKU-1001", "quantity": 0}]}
        errors = assert_problem(await client.post("/shipments", json=bad), 422, "validation-error")
        assert {e["pointer"] for e in errors["errors"]} == {
            "/body/address/country",
            "/body/items/0/quantity",
        }


async def test_carrier_and_delivery_date_are_deterministic(host_factory: HostFactory) -> None:
    friday = Clock(datetime(2025, 3, 14, 16, 0, tzinfo=UTC))
    settings = {"carriers": {"CH": "dpd"}, "transit_business_days": 2}
    async with started(host_factory, "shipping-svc", settings, friday) as (_, client):
        chosen = {}
        for n, country in enumerate(["DE", "AT", "US", "CH"]):
            response = await client.post(
                "/shipments", json=shipment_request(f"ord_Carrier{n:04d}", country)
            )
            chosen[country] = response.json()
    assert {country: s["carrier"] for country, s in chosen.items()} == {
        "DE": "dhl",
        "AT": "dpd",
        "US": "ups",
        "CH": "dpd",
    }
    assert chosen["US"]["tracking_number"].startswith("1Z")
    assert {s["estimated_delivery"] for s in chosen.values()} == {"2025-03-18"}  # Fri + 2 -> Tue


async def test_list_shipments_newest_first_over_pages(host_factory: HostFactory) -> None:
    async with started(host_factory, "shipping-svc") as (_, client):
        ids = []
        for n in range(7):
            created = await client.post("/shipments", json=shipment_request(f"ord_Listing{n:04d}"))
            ids.append(created.json()["shipment_id"])
        await client.post(f"/shipments/{ids[0]}/cancel")
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            body = (await client.get("/shipments", params=params)).json()
            assert len(body["items"]) <= 3
            seen += [s["shipment_id"] for s in body["items"]]
            if (cursor := body["next_cursor"]) is None:
                break
        one = (await client.get("/shipments", params={"order_id": "ord_Listing0000"})).json()
        none = (await client.get("/shipments", params={"order_id": "ord_Nothing0000"})).json()
        forged = await client.get("/shipments", params={"cursor": "eyJza3UiOiJTS1UtMjA0MiJ9"})
    assert seen == ids[::-1]
    assert [(s["shipment_id"], s["status"]) for s in one["items"]] == [(ids[0], "CANCELLED")]
    assert none == {"items": [], "next_cursor": None}
    assert_problem(forged, 422, "validation-error")


async def test_scheduling_publishes_shipment_scheduled(host_factory: HostFactory) -> None:
    bus = InMemoryBus()
    received: asyncio.Queue[Record] = asyncio.Queue()
    await bus.subscribe("shipments", "test", received.put)
    async with started(host_factory, "shipping-svc", clock=Clock(), bus=bus) as (host, client):
        shipment = (await client.post("/shipments", json=shipment_request())).json()
        record = await asyncio.wait_for(received.get(), timeout=5)
        simulator: Any = host.stubs["shipping-svc"].simulator
        # the background pass published it; once that pass is over (a consumer may get
        # the record before its row is deleted), nothing is left to publish
        assert await simulator.flush_outbox() == 0
        assert await simulator.relay.pending() == 0
    assert (record.key, record.message_type) == (ORDER, "shipment.scheduled")
    event = record.value
    assert event["source"] == "shipping-svc"
    assert (event["order_id"], event["time"]) == (ORDER, "2025-03-11T09:15:05Z")
    assert event["data"] == {
        key: shipment[key]
        for key in ("shipment_id", "carrier", "tracking_number", "estimated_delivery")
    }
    assert received.empty()
