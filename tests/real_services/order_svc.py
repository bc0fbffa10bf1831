"""order-svc, written by its own team from specs/openapi/order-svc.yaml and
specs/asyncapi/commerce-events.yaml only.

``createOrder`` runs the saga synchronously: create the order ``PENDING`` (and publish
``order.placed``), reserve at inventory-svc, charge at payment-svc (idempotency key
derived from the order id), schedule at shipping-svc, commit the reservation, mark it
``CONFIRMED`` (and publish ``order.confirmed``). A failing step undoes the done ones in
reverse (cancel the shipment, refund the payment, release the reservation) and the
order ends ``REJECTED`` (published as ``order.cancelled`` with the failure reason and
``previous_status: PENDING``: every state change goes out on ``orders``, and that is the
topic's message for an order that will not be fulfilled). Calls to inventory-svc go
through a circuit breaker (threshold 3, cool-down 2 s, inventory timeout 2 s).

Configured from its environment only (``ecom-harness env order-svc``): ``PORT``,
``INVENTORY_SVC_URL``, ``PAYMENT_SVC_URL``, ``SHIPPING_SVC_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``; ``USER_SVC_URL`` when the topology gives
order-svc an edge to user-svc (the customer's contact for ``order.confirmed``).

Every method a step of the saga goes through is a method of :class:`OrderSvc`, so a
broken variant (``variants.py``) overrides exactly one thing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import (
    EventProducer,
    Problem,
    database_engine,
    event,
    fingerprint,
    health,
    new_id,
    now,
    require_service_token,
)

COMPONENT = "order-svc"
TOPIC = "orders"
SERVICE_TOKEN = "order-svc-secret"

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(40), unique=True, nullable=False),
    Column("user_id", String(40), index=True, nullable=False),
    Column("status", String(16), nullable=False),
    Column("items", JSON, nullable=False),
    Column("total_amount", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("payment_method", String(255), nullable=False),
    Column("reservation_id", String(40)),
    Column("payment_id", String(40)),
    Column("shipment_id", String(40)),
    Column("failure_reason", String(32)),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
)
answers = Table(  # Idempotency-Key -> the first answer, replayed on a retry
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
)
ORDER_FIELDS = (
    "order_id",
    "user_id",
    "status",
    "items",
    "total_amount",
    "currency",
    "shipping_address",
    "reservation_id",
    "payment_id",
    "shipment_id",
    "failure_reason",
    "created_at",
    "updated_at",
)


class CircuitOpen(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"open for {retry_after} s more")
        self.retry_after = retry_after


class CircuitBreaker:
    """closed -> open after ``threshold`` consecutive failures -> half_open once
    ``cooldown`` seconds passed (one probe) -> closed on its success, open on failure."""

    def __init__(self, threshold: int, cooldown: float):
        self.threshold, self.cooldown = threshold, cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.probing else "open"

    def before_call(self) -> None:
        """Raise :class:`CircuitOpen` unless a call may go through now."""
        if self.opened_at is None:
            return
        waited = time.monotonic() - self.opened_at
        if waited < self.cooldown or self.probing:
            raise CircuitOpen(max(1, math.ceil(self.cooldown - waited)))
        self.probing = True  # the one trial call

    def succeeded(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def failed(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at, self.probing = time.monotonic(), False


class SagaFailed(Exception):
    """A step failed: the order ends REJECTED with ``reason``, answered by ``problem``."""

    def __init__(self, reason: str, failure: Problem):
        super().__init__(reason)
        self.reason, self.problem = reason, failure


class OrderSvc:
    """The service; :attr:`app` is its ASGI application."""

    # Tuned for a fast test run that stays right on a busy machine: a healthy inventory
    # call answers well within the timeout, and the circuit stays open long enough for
    # the next order to find it open.
    inventory_timeout = 2.0  # seconds; a timeout counts against the breaker
    peer_timeout = 10.0
    breaker_threshold = 3
    breaker_cooldown = 2.0  # seconds before one probe goes through
    retry_after = 1  # Retry-After when no open circuit dictates one

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.inventory = environ["INVENTORY_SVC_URL"]
        self.payments = environ["PAYMENT_SVC_URL"]
        self.shipping = environ["SHIPPING_SVC_URL"]
        self.users = environ.get("USER_SVC_URL")
        self.db = database_engine(environ["DATABASE_URL"])
        self.events = EventProducer(environ["KAFKA_BOOTSTRAP_SERVERS"], COMPONENT)
        self.breaker = CircuitBreaker(self.breaker_threshold, self.breaker_cooldown)
        self.key_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.peers = httpx.AsyncClient(headers=self.peer_headers(), timeout=self.peer_timeout)
        guarded = require_service_token
        self.app = Starlette(
            routes=[
                Route("/health", health(COMPONENT)),
                Route("/orders", guarded(self.create_order), methods=["POST"]),
                Route("/orders", guarded(self.list_orders), methods=["GET"]),
                Route("/orders/{order_id}", guarded(self.get_order), methods=["GET"]),
                Route("/orders/{order_id}/cancel", guarded(self.cancel_order), methods=["POST"]),
            ],
            lifespan=self.lifespan,
        )

    def peer_headers(self) -> dict[str, str]:
        """Our credential on every call to a platform service."""
        return {"X-Service-Token": SERVICE_TOKEN}

    @asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        async with self.db.begin() as conn:
            await conn.run_sync(metadata.create_all)
        self.events.start()
        await self.events.connected()  # ready (and listening) once events can go out
        try:
            yield
        finally:
            await self.events.stop()
            await self.peers.aclose()
            await self.db.dispose()

    # --- the API ---------------------------------------------------------------------------

    async def create_order(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            raise Problem(
                400, "bad-request", "Bad request", "The Idempotency-Key header is required."
            )
        body = await read_json(request)
        acting = request.headers.get("x-user-id")
        if acting is not None and acting != body.get("user_id"):
            raise Problem(
                422,
                "validation-error",
                "Validation failed",
                "user_id differs from X-User-Id.",
                errors=[{"pointer": "/user_id", "message": "must equal X-User-Id"}],
            )
        async with self.key_locks[key]:
            replay = await self.stored_answer(key, body)
            if replay is not None:
                return replay
            status, answer, headers = await self.place(body)
            await self.remember(key, body, status, answer, headers)
        return json_answer(status, answer, headers)

    async def remember(
        self,
        key: str,
        body: dict[str, Any],
        status: int,
        answer: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        """Keep the answer given to ``key``, to replay it to a retry."""
        async with self.db.begin() as conn:
            await conn.execute(
                answers.insert().values(
                    key=key,
                    fingerprint=fingerprint(body),
                    status=status,
                    body=answer,
                    headers=headers,
                )
            )

    async def stored_answer(self, key: str, body: dict[str, Any]) -> Response | None:
        """The first answer given to ``key`` (a retry), or None for a new key."""
        async with self.db.connect() as conn:
            stored = (await conn.execute(select(answers).where(answers.c.key == key))).first()
        if stored is None:
            return None
        if stored.fingerprint != fingerprint(body):
            raise Problem(
                422,
                "idempotency-key-reused",
                "Idempotency key reused",
                f"Idempotency-Key {key} was already used with a different request body.",
            )
        return json_answer(stored.status, stored.body, stored.headers)

    async def list_orders(self, request: Request) -> Response:
        acting = request.headers.get("x-user-id")
        wanted = request.query_params.get("user_id") or acting
        limit = int(request.query_params.get("limit", "20"))
        query = select(orders).order_by(orders.c.seq.desc()).limit(limit + 1)
        if acting is not None and wanted != acting:
            return JSONResponse({"items": [], "next_cursor": None})
        query = self.visible_orders(query, wanted)
        if "status" in request.query_params:
            query = query.where(orders.c.status == request.query_params["status"])
        if "cursor" in request.query_params:
            query = query.where(orders.c.seq < int(request.query_params["cursor"]))
        async with self.db.connect() as conn:
            rows = [dict(row._mapping) for row in await conn.execute(query)]
        page = rows[:limit]
        cursor = str(page[-1]["seq"]) if len(rows) > limit else None
        return JSONResponse({"items": [order_body(r) for r in page], "next_cursor": cursor})

    def visible_orders(self, query: Any, user_id: str | None) -> Any:
        """Only the acting user's orders (all of them for an operator without a user)."""
        return query if user_id is None else query.where(orders.c.user_id == user_id)

    async def get_order(self, request: Request) -> Response:
        order = await self.owned_order(request)
        return JSONResponse(order_body(order))

    async def cancel_order(self, request: Request) -> Response:
        order = await self.owned_order(request)
        if order["status"] != "CONFIRMED":
            raise Problem(
                409,
                "conflict",
                "Conflict",
                f"Order {order['order_id']} is {order['status']} and cannot be cancelled.",
            )
        await self.undo(order, "requested_by_customer")
        order = await self.finish(order, "CANCELLED", "cancelled_by_user")
        await self.publish(
            order,
            "order.cancelled",
            {
                "user_id": order["user_id"],
                "reason": "customer_request",
                "previous_status": "CONFIRMED",
            },
        )
        return JSONResponse(order_body(order))

    async def owned_order(self, request: Request) -> dict[str, Any]:
        order_id = request.path_params["order_id"]
        async with self.db.connect() as conn:
            row = (await conn.execute(select(orders).where(orders.c.order_id == order_id))).first()
        acting = request.headers.get("x-user-id")
        if row is None or (acting is not None and row.user_id != acting):
            raise Problem(404, "not-found", "Not found", f"Order {order_id} does not exist.")
        return dict(row._mapping)

    # --- the saga ----------------------------------------------------------------------------

    async def place(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Run the saga for a new order; (status, body, headers) of the answer."""
        order = await self.create_pending(body)
        try:
            order["reservation_id"] = await self.reserve(order)
            order["payment_id"] = await self.charge(order)
            order["shipment_id"] = await self.schedule(order)
            await self.commit(order)
        except SagaFailed as failure:
            await self.undo(order, "order_compensation")
            order = await self.finish(order, "REJECTED", failure.reason)
            await self.publish(  # the only message for an order that ends unfulfilled
                order,
                "order.cancelled",
                {
                    "user_id": order["user_id"],
                    "reason": failure.reason,
                    "previous_status": "PENDING",
                },
            )
            answer = failure.problem.body(f"/orders/{order['order_id']}")
            answer |= {"order_id": order["order_id"], "order_status": "REJECTED"}
            return failure.problem.status, answer, failure.problem.headers
        order = await self.finish(order, "CONFIRMED", None)
        await self.publish(order, "order.confirmed", await self.confirmed_data(order))
        return 201, order_body(order), {}

    async def create_pending(self, body: dict[str, Any]) -> dict[str, Any]:
        stamp = now()
        order = {
            "order_id": new_id("ord"),
            "user_id": body["user_id"],
            "status": "PENDING",
            "items": body["items"],
            "total_amount": sum(i["quantity"] * i["unit_amount"] for i in body["items"]),
            "currency": body["currency"],
            "shipping_address": body["shipping_address"],
            "payment_method": body["payment_method"],
            "reservation_id": None,
            "payment_id": None,
            "shipment_id": None,
            "failure_reason": None,
            "created_at": stamp,
            "updated_at": stamp,
        }
        async with self.db.begin() as conn:
            await conn.execute(orders.insert().values(**order))
        await self.publish(
            order,
            "order.placed",
            {
                "user_id": order["user_id"],
                "items": order["items"],
                "total_amount": order["total_amount"],
                "currency": order["currency"],
            },
        )
        return order

    async def reserve(self, order: dict[str, Any]) -> str:
        lines = [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]]
        answer = await self.call_inventory(
            "POST", "/reservations", {"order_id": order["order_id"], "items": lines}
        )
        if answer.status_code in (404, 409):
            skus = answer.json().get("skus") or [line["sku"] for line in lines]
            raise SagaFailed(
                "out_of_stock",
                Problem(
                    409,
                    "out-of-stock",
                    "Out of stock",
                    f"Not enough stock for {', '.join(skus)}.",
                    skus=skus,
                ),
            )
        reservation_id: str = answer.json()["reservation_id"]
        return reservation_id

    async def call_inventory(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Through the circuit breaker: a timeout, a lost connection or a 5xx counts as a
        failure and fails the step as inventory_unavailable; an open circuit fails it at once."""
        try:
            self.breaker.before_call()
        except CircuitOpen as open_circuit:
            raise self.inventory_unavailable(
                "The circuit breaker on inventory-svc is open; retry later.",
                "open",
                open_circuit.retry_after,
            ) from None
        try:
            answer = await self.peers.request(
                method, self.inventory + path, json=body, timeout=self.inventory_timeout
            )
        except httpx.TransportError as lost:
            self.breaker.failed()
            raise self.inventory_unavailable(
                f"inventory-svc did not answer ({type(lost).__name__}).", self.breaker.state
            ) from None
        if answer.status_code >= 500:
            self.breaker.failed()
            raise self.inventory_unavailable(
                f"inventory-svc answered {answer.status_code}.", self.breaker.state
            )
        self.breaker.succeeded()
        return answer

    def inventory_unavailable(
        self, detail: str, circuit: str, retry_after: int | None = None
    ) -> SagaFailed:
        wait = retry_after or self.retry_after
        if circuit == "open" and retry_after is None:
            wait = max(1, math.ceil(self.breaker_cooldown))
        return SagaFailed(
            "inventory_unavailable",
            Problem(
                503,
                "inventory-unavailable",
                "Inventory unavailable",
                detail,
                headers={"Retry-After": str(wait)},
                circuit=circuit,
            ),
        )

    def charge_amount(self, order: dict[str, Any]) -> int:
        """What the customer pays: the order's total."""
        amount: int = order["total_amount"]
        return amount

    def charge_key(self, order: dict[str, Any]) -> str:
        """Derived from the order, so a retried charge of one order never charges twice."""
        return f"{order['order_id']}-charge"

    async def charge(self, order: dict[str, Any]) -> str:
        request = {
            "order_id": order["order_id"],
            "amount": self.charge_amount(order),
            "currency": order["currency"],
            "payment_method": order["payment_method"],
            "description": f"Order {order['order_id']}",
        }
        try:
            answer = await self.peers.post(
                self.payments + "/payments",
                json=request,
                headers={"Idempotency-Key": self.charge_key(order)},
            )
        except httpx.TransportError:
            raise self.declined(order, None, "processing_error") from None
        if answer.status_code == 402:
            declined = answer.json()
            raise self.declined(order, declined.get("payment_id"), declined.get("decline_code"))
        if answer.status_code != 201:
            raise self.declined(order, None, "processing_error")
        payment_id: str = answer.json()["payment_id"]
        return payment_id

    def declined(
        self, order: dict[str, Any], payment_id: str | None, code: str | None
    ) -> SagaFailed:
        """A declined card (or a payment-svc that failed: the spec has no other reason)."""
        order["payment_id"] = payment_id
        order["charged"] = False
        decline_code = code or "generic_decline"
        return SagaFailed(
            "card_declined",
            Problem(
                402,
                "card-declined",
                "Card declined",
                f"The card was declined ({decline_code}); the reservation was released.",
                decline_code=decline_code,
            ),
        )

    async def schedule(self, order: dict[str, Any]) -> str:
        lines = [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]]
        request = {
            "order_id": order["order_id"],
            "address": order["shipping_address"],
            "items": lines,
        }
        try:
            answer = await self.peers.post(self.shipping + "/shipments", json=request)
        except httpx.TransportError:
            answer = None
        if answer is None or answer.status_code != 201:
            raise SagaFailed(
                "shipping_unavailable",
                Problem(
                    503,
                    "shipping-unavailable",
                    "Shipping unavailable",
                    "shipping-svc could not schedule the shipment; the payment was refunded.",
                    headers={"Retry-After": str(self.retry_after)},
                ),
            )
        shipment_id: str = answer.json()["shipment_id"]
        return shipment_id

    async def commit(self, order: dict[str, Any]) -> None:
        answer = await self.call_inventory(
            "POST", f"/reservations/{order['reservation_id']}/commit"
        )
        if answer.status_code != 200:
            raise self.inventory_unavailable(
                f"inventory-svc refused the commit ({answer.status_code}).", self.breaker.state
            )

    async def undo(self, order: dict[str, Any], refund_reason: str) -> None:
        """Compensate in reverse order of the steps done: shipment, payment, reservation.
        Best effort: a compensation that fails does not stop the others."""
        if order.get("shipment_id"):
            await self.best_effort(  # cancelShipment takes no body
                "POST", f"{self.shipping}/shipments/{order['shipment_id']}/cancel"
            )
        if order.get("payment_id") and order.get("charged", True):
            await self.refund(order, refund_reason)
        if order.get("reservation_id"):
            await self.release(order)

    async def refund(self, order: dict[str, Any], reason: str) -> None:
        await self.best_effort(
            "POST", f"{self.payments}/payments/{order['payment_id']}/refund", {"reason": reason}
        )

    async def release(self, order: dict[str, Any]) -> None:
        # Should inventory-svc not answer, the hold expires on its own (ttl_seconds).
        with suppress(SagaFailed):
            await self.call_inventory("POST", f"/reservations/{order['reservation_id']}/release")

    async def best_effort(self, method: str, url: str, body: dict[str, Any] | None = None) -> None:
        with suppress(httpx.TransportError):
            await self.peers.request(method, url, json=body)

    async def finish(
        self, order: dict[str, Any], status: str, reason: str | None
    ) -> dict[str, Any]:
        changes = {
            "status": status,
            "failure_reason": reason,
            "reservation_id": order.get("reservation_id"),
            "payment_id": order.get("payment_id"),
            "shipment_id": order.get("shipment_id"),
            "updated_at": now(),
        }
        async with self.db.begin() as conn:
            await conn.execute(
                update(orders).where(orders.c.order_id == order["order_id"]).values(**changes)
            )
        return {**order, **changes}

    # --- events ------------------------------------------------------------------------------

    async def confirmed_data(self, order: dict[str, Any]) -> dict[str, Any]:
        email, phone = await self.contact(order["user_id"])
        return {
            "user_id": order["user_id"],
            "payment_id": order["payment_id"],
            "shipment_id": order["shipment_id"],
            "total_amount": order["total_amount"],
            "currency": order["currency"],
            "email": email,
            "phone": phone,
        }

    async def contact(self, user_id: str) -> tuple[str, str | None]:
        """The customer's email and phone for notify-svc. The order request carries neither;
        with an edge to user-svc we ask it (getUser), else the address is unknown to us and
        we can only give the user's mailbox alias and no phone."""
        if self.users is not None:
            try:
                answer = await self.peers.get(f"{self.users}/users/{user_id}")
                if answer.status_code == 200:
                    user = answer.json()
                    return user["email"], user.get("phone")
            except httpx.TransportError:
                pass
        return f"{user_id}@users.shop.example.com", None

    async def publish(self, order: dict[str, Any], event_type: str, data: dict[str, Any]) -> None:
        await self.events.publish(
            TOPIC, order["order_id"], event(event_type, COMPONENT, order["order_id"], data)
        )


def order_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in ORDER_FIELDS}


def json_answer(status: int, body: dict[str, Any], headers: Mapping[str, str]) -> JSONResponse:
    media_type = "application/json" if status < 400 else "application/problem+json"
    return JSONResponse(body, status, headers=dict(headers), media_type=media_type)


async def read_json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise Problem(
            400, "bad-request", "Bad request", "The request body is not valid JSON."
        ) from None
    if not isinstance(body, dict):
        raise Problem(422, "validation-error", "Validation failed", "The body must be an object.")
    return body
