"""api-gateway, written by its own team from specs/openapi/api-gateway.yaml and the
internal APIs it calls, nothing else.

The public API: bearer tokens validated by introspection at user-svc, a per-user rate
limit (a fixed one-minute window counted in Redis), routing to user-svc, catalog-svc and
order-svc, product detail served from a Redis cache (``X-Cache: HIT|MISS``), and order
summaries aggregated from order-svc, payment-svc and shipping-svc.

Configured from its environment only (``ecom-harness env api-gateway``): ``PORT``,
``USER_SVC_URL``, ``CATALOG_SVC_URL``, ``ORDER_SVC_URL``, ``PAYMENT_SVC_URL``,
``SHIPPING_SVC_URL``, ``REDIS_URL`` and ``REDIS_KEY_PREFIX`` (every key of its under it).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import Handler, Problem, health, problem

COMPONENT = "api-gateway"
SERVICE_TOKEN = "api-gateway-secret"
KEYS = "gw:"  # every Redis key of ours starts so, unless REDIS_KEY_PREFIX says otherwise
ORDER_FIELDS = (  # the public Order (order-svc's has reservation_id on top)
    "order_id",
    "user_id",
    "status",
    "items",
    "total_amount",
    "currency",
    "shipping_address",
    "payment_id",
    "shipment_id",
    "failure_reason",
    "created_at",
    "updated_at",
)


class ApiGateway:
    """The gateway; :attr:`app` is its ASGI application."""

    rate_limit = 600  # requests per user per minute
    product_ttl = 60  # seconds a product stays in the cache
    peer_timeout = 15.0
    # order-svc's failed saga -> the public status: declined, out of stock, key reused,
    # inventory unavailable (with its Retry-After)
    order_failures: Mapping[int, int] = {402: 402, 409: 409, 422: 422, 503: 503}

    def __init__(self, environ: Mapping[str, str]):
        self.users = environ["USER_SVC_URL"]
        self.catalog = environ["CATALOG_SVC_URL"]
        self.orders = environ["ORDER_SVC_URL"]
        self.payments = environ["PAYMENT_SVC_URL"]
        self.shipping = environ["SHIPPING_SVC_URL"]
        self.redis = aioredis.Redis.from_url(environ["REDIS_URL"], decode_responses=True)
        self.keys = environ.get("REDIS_KEY_PREFIX", KEYS)  # the namespace the harness empties
        self.peers = httpx.AsyncClient(
            headers={"X-Service-Token": SERVICE_TOKEN}, timeout=self.peer_timeout
        )
        public, signed_in = self.public, self.signed_in
        self.app = Starlette(
            routes=[
                Route("/health", health(COMPONENT)),
                Route("/v1/auth/register", public(self.register), methods=["POST"]),
                Route("/v1/auth/login", public(self.login), methods=["POST"]),
                Route("/v1/users/me", signed_in(self.current_user)),
                Route("/v1/products", public(self.list_products)),
                Route("/v1/products/{sku}", public(self.get_product)),
                Route("/v1/orders", signed_in(self.place_order), methods=["POST"]),
                Route("/v1/orders", signed_in(self.list_orders), methods=["GET"]),
                Route("/v1/orders/{order_id}", signed_in(self.get_order)),
                Route("/v1/orders/{order_id}/summary", signed_in(self.order_summary)),
                Route(
                    "/v1/orders/{order_id}/cancel", signed_in(self.cancel_order), methods=["POST"]
                ),
            ],
            lifespan=self.lifespan,
        )

    @asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.peers.aclose()
            await self.redis.aclose()

    # --- middleware as decorators -------------------------------------------------------------

    def public(self, handler: Handler) -> Handler:
        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Problem as failure:
                return problem(request, failure)
            except httpx.TransportError as lost:
                return problem(request, unavailable(f"a service did not answer ({lost})."))

        return answer

    def signed_in(self, handler: Handler) -> Handler:
        """Introspect the bearer token at user-svc, count the request, then handle it with
        ``request.state.user_id`` set; the rate-limit headers go on every answer."""

        async def answer(request: Request) -> Response:
            try:
                request.state.user_id = await self.authenticate(request)
                limit_headers = await self.count(request.state.user_id)
                response = await handler(request)
            except Problem as failure:
                return problem(request, failure)
            except httpx.TransportError as lost:
                return problem(request, unavailable(f"a service did not answer ({lost})."))
            response.headers.update(limit_headers)
            return response

        return answer

    async def authenticate(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("The request has no bearer token.")
        claims = await self.introspect(token)
        if not claims.get("active"):
            raise unauthorized("The access token is not valid or expired.")
        user_id: str = claims["sub"]
        return user_id

    async def introspect(self, token: str) -> dict[str, Any]:
        answer = await self.peers.post(self.users + "/tokens/introspect", json={"token": token})
        if answer.status_code != 200:
            raise unavailable(f"user-svc answered {answer.status_code} to introspection.")
        claims: dict[str, Any] = answer.json()
        return claims

    async def count(self, user_id: str) -> dict[str, str]:
        """One more request of ``user_id`` in this minute's window (Redis INCR)."""
        window = int(time.time() // 60)
        key = f"{self.keys}rate:{user_id}:{window}"
        used = int(await self.redis.incr(key))
        if used == 1:
            await self.redis.expire(key, 60)
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - used)),
        }
        if used > self.rate_limit:
            retry = max(1, 60 - int(time.time()) % 60)
            raise Problem(
                429,
                "rate-limited",
                "Too many requests",
                f"Rate limit of {self.rate_limit} requests per minute exceeded.",
                headers={**headers, "Retry-After": str(retry)},
            )
        return headers

    # --- accounts ----------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        answer = await self.peers.post(self.users + "/users", json=await request.json())
        if answer.status_code == 201:
            return JSONResponse(answer.json(), 201)
        return relay_problem(answer, request, {400: 400, 422: 422, 409: 409})

    async def login(self, request: Request) -> Response:
        answer = await self.peers.post(self.users + "/sessions", json=await request.json())
        if answer.status_code == 201:
            session = answer.json()
            return JSONResponse(
                {key: session[key] for key in ("access_token", "token_type", "expires_in")}
            )
        return relay_problem(answer, request, {400: 400, 422: 422, 401: 401})

    async def current_user(self, request: Request) -> Response:
        answer = await self.peers.get(f"{self.users}/users/{request.state.user_id}")
        if answer.status_code != 200:
            raise unavailable(f"user-svc answered {answer.status_code}.")
        return JSONResponse(answer.json())

    # --- products ----------------------------------------------------------------------------

    async def list_products(self, request: Request) -> Response:
        answer = await self.peers.get(self.catalog + "/products", params=dict(request.query_params))
        if answer.status_code == 200:
            return JSONResponse(answer.json())
        return relay_problem(answer, request, {422: 422})

    async def get_product(self, request: Request) -> Response:
        product, hit = await self.product(request.path_params["sku"])
        return JSONResponse(product, headers={"X-Cache": "HIT" if hit else "MISS"})

    async def product(self, sku: str) -> tuple[dict[str, Any], bool]:
        """The product from the cache (True) or from catalog-svc, then cached (False)."""
        key = f"{self.keys}product:{sku}"
        cached = await self.redis.get(key)
        if cached is not None:
            return json.loads(cached), True
        answer = await self.peers.get(f"{self.catalog}/products/{sku}")
        if answer.status_code == 404:
            raise Problem(404, "not-found", "Not found", f"Product {sku} does not exist.")
        if answer.status_code != 200:
            raise unavailable(f"catalog-svc answered {answer.status_code}; retry later.")
        product: dict[str, Any] = answer.json()
        await self.redis.set(key, json.dumps(product), ex=self.product_ttl)
        return product, False

    # --- orders ------------------------------------------------------------------------------

    def idempotency_key(self, request: Request) -> str:
        """The client's key, passed on: order-svc replays the first answer to a retry."""
        key = request.headers.get("idempotency-key")
        if not key or len(key) > 255:
            raise Problem(
                422,
                "validation-error",
                "Request validation failed",
                "Idempotency-Key (1-255 characters) is required.",
                errors=[{"pointer": "/header/idempotency-key", "message": "1-255 characters"}],
            )
        return key

    async def contact(self, user_id: str) -> dict[str, str]:
        """How to reach the customer, as user-svc knows them (getUser): order-svc puts it
        in the order events notify-svc relies on; ``phone`` left out when there is none."""
        answer = await self.peers.get(f"{self.users}/users/{user_id}")
        if answer.status_code != 200:
            raise unavailable(f"user-svc answered {answer.status_code} to getUser.")
        user = answer.json()
        found = {"email": user["email"]}
        if user.get("phone"):
            found["phone"] = user["phone"]
        return found

    async def place_order(self, request: Request) -> Response:
        key = self.idempotency_key(request)
        wanted = await request.json()
        lines, currency = [], "eur"
        for item in wanted["items"]:
            product, _ = await self.product(item["sku"])
            currency = product["price"]["currency"]
            lines.append({**item, "unit_amount": product["price"]["amount"]})
        user_id = request.state.user_id
        contact = await self.contact(user_id)
        answer = await self.peers.post(
            self.orders + "/orders",
            json={
                "user_id": user_id,
                "items": lines,
                "currency": currency,
                "payment_method": wanted["payment_method"],
                "shipping_address": wanted["shipping_address"],
                "contact": contact,
            },
            headers={"X-User-Id": user_id, "Idempotency-Key": key},
        )
        if answer.status_code == 201:
            order = public_order(answer.json())
            return self.created(order)
        return relay_problem(answer, request, self.order_failures)

    def created(self, order: dict[str, Any]) -> Response:
        return JSONResponse(order, 201, headers={"Location": f"/v1/orders/{order['order_id']}"})

    def acting_as(self, request: Request) -> dict[str, str]:
        """order-svc shows a request only what the user it names may see."""
        return {"X-User-Id": request.state.user_id}

    async def list_orders(self, request: Request) -> Response:
        answer = await self.peers.get(
            self.orders + "/orders",
            params=dict(request.query_params),
            headers=self.acting_as(request),
        )
        if answer.status_code != 200:
            return relay_problem(answer, request, {422: 422})
        page = answer.json()
        items = [public_order(order) for order in page["items"]]
        return JSONResponse({"items": items, "next_cursor": page["next_cursor"]})

    async def get_order(self, request: Request) -> Response:
        return JSONResponse(await self.order(request))

    async def order(self, request: Request) -> dict[str, Any]:
        order_id = request.path_params["order_id"]
        answer = await self.peers.get(
            f"{self.orders}/orders/{order_id}", headers=self.acting_as(request)
        )
        if answer.status_code == 404:
            raise Problem(404, "not-found", "Not found", f"Order {order_id} does not exist.")
        if answer.status_code != 200:
            raise unavailable(f"order-svc answered {answer.status_code}.")
        return public_order(answer.json())

    async def order_summary(self, request: Request) -> Response:
        order = await self.order(request)
        query = {"order_id": order["order_id"]}
        payments = await self.peers.get(self.payments + "/payments", params=query)
        shipments = await self.peers.get(self.shipping + "/shipments", params=query)
        if payments.status_code != 200 or shipments.status_code != 200:
            raise unavailable("payment-svc or shipping-svc did not answer.")
        payment = next(iter(payments.json()["items"]), None)
        shipment = next(iter(shipments.json()["items"]), None)
        return JSONResponse(
            {
                "order": order,
                "payment": payment and pick(payment, PAYMENT_SUMMARY),
                "shipment": shipment and pick(shipment, SHIPMENT_SUMMARY),
            }
        )

    async def cancel_order(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        body = await request.body()
        answer = await self.peers.post(
            f"{self.orders}/orders/{order_id}/cancel",
            json=json.loads(body) if body else {},
            headers=self.acting_as(request),
        )
        if answer.status_code == 200:
            return JSONResponse(public_order(answer.json()))
        if answer.status_code == 409:
            current = await self.order(request)
            failure = answer.json()
            return JSONResponse(
                {**failure, "title": "Order not cancellable", "order_status": current["status"]},
                409,
                media_type="application/problem+json",
            )
        return relay_problem(answer, request, {404: 404, 422: 422})


PAYMENT_SUMMARY = ("payment_id", "status", "amount", "currency", "refunded_amount")
SHIPMENT_SUMMARY = ("shipment_id", "status", "carrier", "tracking_number", "estimated_delivery")


def pick(found: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: found[name] for name in names}


def public_order(order: Mapping[str, Any]) -> dict[str, Any]:
    return pick(order, ORDER_FIELDS)


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="ecom", error="invalid_token"'},
    )


def unavailable(detail: str) -> Problem:
    return Problem(
        503,
        "service-unavailable",
        "Service unavailable",
        detail,
        headers={"Retry-After": "1"},
    )


def relay_problem(
    answer: httpx.Response, request: Request, statuses: Mapping[int, int]
) -> Response:
    """A peer's problem passed on to the client under the public API's status (and the
    ``Retry-After`` it sent); any other answer is a 503 of the gateway."""
    status = statuses.get(answer.status_code)
    if status is None:
        return problem(request, unavailable(f"a service answered {answer.status_code}."))
    body = answer.json()
    body |= {"status": status, "instance": request.url.path}
    headers = {}
    if "retry-after" in answer.headers:
        headers["Retry-After"] = answer.headers["retry-after"]
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")
