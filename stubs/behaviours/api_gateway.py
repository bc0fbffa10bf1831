"""api-gateway: the platform's public API in front of the internal services.

Every public operation is counted per client IP (see below); the authenticated ones
also validate the bearer token by introspection at user-svc and are counted per user.
Then the request is routed, and the downstream answer is mapped explicitly onto the
gateway's public schemas, which differ from the internal ones
(``reservation_id`` is dropped from orders, ``session_id`` from logins, payments and
shipments are cut down to their summaries, ...).

State, all in Redis under ``api-gateway:``: introspection results
(``api-gateway:introspection:<sha256 of the token>``, so no token is stored), product
detail (``api-gateway:product:<sku>``) and the rate-limit counters
(``api-gateway:ratelimit:...``, see :mod:`._ratelimit`). No tables.

Downstream errors: the problems a downstream documents and the gateway documents too
(card declined, out of stock, idempotency key reused, ...) are passed on with the
gateway's path as ``instance``; a downstream that cannot be reached, or answers
something neither documents, is a ``503 service-unavailable`` with ``Retry-After``
(``502`` where only that is documented; every public operation of the gateway's spec
documents 503).

Settings (``settings["api-gateway"]``):

===================== ================== ===============================================
key                   default            meaning
===================== ================== ===============================================
introspection_ttl     ``5``              seconds an introspection result is cached
                                         (never past the token's ``exp``)
catalog_ttl           ``60``             seconds a product stays in the catalog cache
rate_limit            ``100/minute``     per authenticated user (limits' notation)
ip_rate_limit         ``300/minute``     per client IP, every operation but health
rate_limit_strategy   ``moving-window``  or ``fixed-window``, ``sliding-window-counter``
retry_after           ``5``              ``Retry-After`` seconds when a downstream is down
max_in_flight         ``32``             requests at work behind the gateway at once
                                         (``0``: no bound); the rest wait their turn
queue_timeout         ``5``              seconds a request waits for its turn before it
                                         is answered 503 with ``Retry-After``
trusted_proxies       ``[]``             addresses or networks (``10.0.0.0/8``) whose
                                         ``X-Forwarded-For`` is believed
===================== ================== ===============================================

The client's IP is the address the request came from, unless that is a trusted proxy:
then ``X-Forwarded-For`` is read from the right, past every trusted proxy, and the first
address that is not one is the client (what the nearest untrusted hop said cannot be
checked, so nothing left of it counts). With no trusted proxies the header is ignored:
otherwise any client could pick a new address per request and never be limited. The
limits and the trusted proxies can be changed on a running gateway (:meth:`configure`).

Admission (:mod:`._admission`): after the per-IP count, at most ``max_in_flight``
requests are at work behind the gateway; the others wait at the door, so that under
overload the work already admitted (and what it sets off: events, mails) is not slowed
by every new arrival. Changeable on a running gateway too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx
import jwt
import orjson
from limits import RateLimitItem
from sqlalchemy import MetaData

from ecom_harness.stubs.engine import (
    PROBLEM_MEDIA_TYPE,
    Behaviour,
    ErrorRenderer,
    Problem,
    StubRequest,
    StubResponse,
    ValidRequest,
)

from ._admission import Admission, QueueTimeout
from ._ratelimit import Decision, RateLimiter, open_storage, parse_limit
from ._simulator import (
    Simulator,
    SimulatorContext,
    health_behaviour,
    json_response,
    not_found,
    problem_response,
    render_problem,
)

__all__ = ["GatewaySimulator", "Reply", "client_ip", "parse_networks"]

KEY_PREFIX = "api-gateway:"
INTROSPECTION_KEY = KEY_PREFIX + "introspection:"
PRODUCT_KEY = KEY_PREFIX + "product:"
RATELIMIT_PREFIX = KEY_PREFIX + "ratelimit"
DEFAULT_SETTINGS: Mapping[str, Any] = {
    "introspection_ttl": 5,
    "catalog_ttl": 60,
    "rate_limit": "100/minute",
    "ip_rate_limit": "300/minute",
    "rate_limit_strategy": "moving-window",
    "retry_after": 5,
    "trusted_proxies": (),
    "max_in_flight": 32,
    "queue_timeout": 5,
}

# The gateway's public schemas, field by field (specs/openapi/api-gateway.yaml).
USER_FIELDS = ("user_id", "email", "name", "phone", "created_at")
TOKEN_FIELDS = ("access_token", "token_type", "expires_in")
PRODUCT_FIELDS = (
    "sku",
    "name",
    "description",
    "category",
    "images",
    "availability",
    "updated_at",
)
MONEY_FIELDS = ("amount", "currency")
ORDER_FIELDS = (
    "order_id",
    "user_id",
    "status",
    "total_amount",
    "currency",
    "payment_id",
    "shipment_id",
    "failure_reason",
    "created_at",
    "updated_at",
)
LINE_FIELDS = ("sku", "quantity", "unit_amount")
ADDRESS_FIELDS = ("name", "line1", "line2", "city", "postal_code", "country")
PAYMENT_FIELDS = ("payment_id", "status", "amount", "currency", "refunded_amount")
SHIPMENT_FIELDS = ("shipment_id", "status", "tracking_number", "estimated_delivery")

# Downstream status -> the gateway status it is passed on as; anything else is a 5xx.
_VALIDATION = {400: 400, 422: 422}  # 422: the one status for a rejected request


class Reply(Exception):
    """An answer decided deep in a call chain (401, 429, a downstream failure): raised
    there, returned as the operation's response by the behaviour wrapper."""

    def __init__(self, response: StubResponse):
        super().__init__(f"{response.status}")
        self.response = response


# --- mapping onto the public schemas -----------------------------------------------------


def _pick(source: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The named members of ``source``; an optional one it lacks stays absent."""
    return {name: source[name] for name in fields if name in source}


def public_user(user: Mapping[str, Any]) -> dict[str, Any]:
    return _pick(user, USER_FIELDS)


def public_product(product: Mapping[str, Any]) -> dict[str, Any]:
    return {**_pick(product, PRODUCT_FIELDS), "price": _pick(product["price"], MONEY_FIELDS)}


def public_order(order: Mapping[str, Any]) -> dict[str, Any]:
    """order-svc's order without its ``reservation_id`` (internal to the saga)."""
    return {
        **_pick(order, ORDER_FIELDS),
        "items": [_pick(line, LINE_FIELDS) for line in order["items"]],
        "shipping_address": _pick(order["shipping_address"], ADDRESS_FIELDS),
    }


def public_payment(payment: Mapping[str, Any]) -> dict[str, Any]:
    return _pick(payment, PAYMENT_FIELDS)


def public_shipment(shipment: Mapping[str, Any]) -> dict[str, Any]:
    """shipping-svc's ``dhl`` is the public ``DHL`` (as the gateway's examples write it)."""
    return {**_pick(shipment, SHIPMENT_FIELDS), "carrier": str(shipment["carrier"]).upper()}


def _page(body: Mapping[str, Any], item: Callable[[Mapping[str, Any]], Any]) -> dict[str, Any]:
    return {"items": [item(entry) for entry in body["items"]], "next_cursor": body["next_cursor"]}


def _matching(items: list[dict[str, Any]], field: str, wanted: Any) -> dict[str, Any] | None:
    """The item whose ``field`` is ``wanted``, else the first (lists are newest first)."""
    return next((item for item in items if item.get(field) == wanted), None) or next(
        iter(items), None
    )


# --- small pieces of HTTP ----------------------------------------------------------------


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str] | str) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` (or one comma-separated string) as networks;
    ValueError naming the entry that is neither an address nor a network."""
    if isinstance(entries, str):
        entries = [e for e in entries.split(",") if e.strip()]
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(f"'{entry}' is not an IP address or network") from None
    return tuple(networks)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(request: StubRequest, trusted: tuple[Network, ...] = ()) -> str:
    """The client's address: the peer's (ASGI ``client``), or -- when the peer is a
    trusted proxy -- the rightmost ``X-Forwarded-For`` entry that is not one (see the
    module doc); ``unknown`` without a peer address (every such request shares one
    bucket)."""
    address = request.client or "unknown"
    if not trusted or not _trusted(address, trusted):
        return address
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    hops = [h for h in hops if h]
    while hops and _trusted(address, trusted):
        address = hops.pop()
    return address


def _bearer_token(req: ValidRequest) -> str | None:
    """The bearer token when it has the form of a JWT (PyJWT parses its header), so a
    garbage credential is refused without a round trip to user-svc."""
    scheme, _, token = (req.header("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        jwt.get_unverified_header(token)
    except jwt.DecodeError:
        return None
    return token


def _render_error(found: Problem, request: StubRequest) -> StubResponse:
    """The engine's own errors as problem+json, a missing token as the documented 401
    with its RFC 6750 challenge (no ``error`` code: no token was presented)."""
    if found.slug == "unauthorized":
        challenge = {"WWW-Authenticate": 'Bearer realm="ecom"'}
        found = dataclasses.replace(
            found,
            title="Unauthorized",
            detail="The request has no bearer token.",
            headers={**found.headers, **challenge},
        )
    return render_problem(found, request)


class GatewaySimulator(Simulator):
    """Authenticates, limits, routes, caches and aggregates; keeps its state in Redis."""

    component = "api-gateway"
    metadata = MetaData()  # its own, and empty: the gateway keeps no tables

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        settings = {**DEFAULT_SETTINGS, **ctx.settings}
        self.introspection_ttl = float(settings["introspection_ttl"])
        self.catalog_ttl = int(settings["catalog_ttl"])
        try:
            self.user_limit = parse_limit(str(settings["rate_limit"]))
            self.ip_limit = parse_limit(str(settings["ip_rate_limit"]))
            self.trusted_proxies = parse_networks(settings["trusted_proxies"])
            self.admission = Admission(settings["max_in_flight"], settings["queue_timeout"])
        except ValueError as exc:
            raise ValueError(f"api-gateway settings: {exc}") from None
        self._limit_texts = (str(settings["rate_limit"]), str(settings["ip_rate_limit"]))
        self.strategy = str(settings["rate_limit_strategy"])
        self.retry_after = int(settings["retry_after"])
        self.limiter: RateLimiter | None = None

    def limits(self) -> dict[str, Any]:
        """The limits in force, the trusted proxies and the admission, as settings."""
        return {
            "rate_limit": self._limit_texts[0],
            "ip_rate_limit": self._limit_texts[1],
            "trusted_proxies": [str(n) for n in self.trusted_proxies],
            "max_in_flight": self.admission.max_in_flight,
            "queue_timeout": self.admission.queue_timeout,
        }

    def configure(
        self,
        *,
        rate_limit: str | None = None,
        ip_rate_limit: str | None = None,
        trusted_proxies: Iterable[str] | None = None,
        max_in_flight: int | None = None,
        queue_timeout: float | None = None,
    ) -> None:
        """Change limits, trusted proxies or admission on the running gateway (a load run
        from one address raises the limits rather than spoofing addresses); all or
        nothing: ValueError, naming what is wrong, changes nothing."""
        user = parse_limit(rate_limit) if rate_limit is not None else self.user_limit
        per_ip = parse_limit(ip_rate_limit) if ip_rate_limit is not None else self.ip_limit
        trusted = (
            parse_networks(trusted_proxies) if trusted_proxies is not None else self.trusted_proxies
        )
        self.admission.configure(
            self.admission.max_in_flight if max_in_flight is None else max_in_flight,
            self.admission.queue_timeout if queue_timeout is None else queue_timeout,
        )
        self.user_limit, self.ip_limit, self.trusted_proxies = user, per_ip, trusted
        self._limit_texts = (
            rate_limit or self._limit_texts[0],
            ip_rate_limit or self._limit_texts[1],
        )

    def behaviours(self) -> dict[str, Behaviour]:
        return {
            "getHealth": health_behaviour(self.component),
            "registerUser": self._public(self.register_user),
            "login": self._public(self.login),
            "listProducts": self._public(self.list_products),
            "getProduct": self._public(self.get_product),
            "getCurrentUser": self._authenticated(self.get_current_user),
            "placeOrder": self._authenticated(self.place_order),
            "listOrders": self._authenticated(self.list_orders),
            "getOrder": self._authenticated(self.get_order),
            "getOrderSummary": self._authenticated(self.get_order_summary),
            "cancelOrder": self._authenticated(self.cancel_order),
        }

    def render_error(self) -> ErrorRenderer:
        return _render_error

    async def start(self) -> None:
        await super().start()
        storage = await open_storage(self.ctx.redis, RATELIMIT_PREFIX)
        self.limiter = RateLimiter(storage, self.strategy)

    async def reset(self) -> None:
        await super().reset()
        keys = [key async for key in self.ctx.redis.scan_iter(match=KEY_PREFIX + "*")]
        if keys:
            await self.ctx.redis.delete(*keys)
        if self.limiter is not None:
            await self.limiter.reset()

    # --- the pipeline around every operation -------------------------------------------

    def _public(self, run: Callable[[ValidRequest], Awaitable[StubResponse]]) -> Behaviour:
        """``run`` behind the per-IP limit and the admission; a :class:`Reply` raised
        anywhere answers."""

        async def behaviour(req: ValidRequest) -> StubResponse:
            try:
                address = client_ip(req.request, self.trusted_proxies)
                await self._count(req, self.ip_limit, "ip", address, quiet=True)
                async with self.admission.slot():
                    return await run(req)
            except Reply as reply:
                return reply.response
            except QueueTimeout as exc:
                return self._unavailable(req, f"The gateway is at capacity: {exc}; retry later.")

        return behaviour

    def _authenticated(
        self, run: Callable[[ValidRequest, str], Awaitable[StubResponse]]
    ) -> Behaviour:
        """``run(req, user_id)`` for a valid token, behind the per-IP and per-user
        limits; a success carries the caller's ``X-RateLimit-*`` headers."""

        async def with_user(req: ValidRequest) -> StubResponse:
            user_id = await self._authenticate(req)
            decision = await self._count(req, self.user_limit, "user", user_id)
            response = await run(req, user_id)
            if response.status < 300 and decision is not None:
                response.headers.update(decision.headers())
            return response

        return self._public(with_user)

    async def _count(
        self, req: ValidRequest, item: RateLimitItem, *identifiers: str, quiet: bool = False
    ) -> Decision | None:
        """One hit (``quiet``: see :meth:`RateLimiter.hit`); raises the documented 429
        once the window is full."""
        if self.limiter is None:
            raise RuntimeError("api-gateway simulator used before start()")
        decision = await self.limiter.hit(item, *identifiers, quiet=quiet)
        if decision is None or decision.allowed:
            return decision
        raise Reply(
            problem_response(
                429,
                "rate-limited",
                title="Too many requests",
                detail=f"Rate limit of {item} exceeded; retry in {decision.retry_after} seconds.",
                instance=req.request.path,
                headers=decision.headers(),
            )
        )

    # --- authentication ------------------------------------------------------------------

    async def _authenticate(self, req: ValidRequest) -> str:
        """The user id (``sub``) of an active token; raises the documented 401 else."""
        token = _bearer_token(req)
        if token is None:
            raise Reply(self._unauthorized(req, "The request has no valid bearer token."))
        claims = await self._introspect(req, token)
        subject = claims.get("sub")
        if claims.get("active") is not True or not isinstance(subject, str):
            raise Reply(self._unauthorized(req, "The access token is invalid, expired or revoked."))
        return subject

    async def _introspect(self, req: ValidRequest, token: str) -> dict[str, Any]:
        """user-svc's verdict on ``token``, cached in Redis by the token's hash."""
        key = INTROSPECTION_KEY + hashlib.sha256(token.encode()).hexdigest()
        cached = await self.ctx.redis.get(key)
        if cached is not None:
            found: dict[str, Any] = orjson.loads(cached)
            return found
        response = await self._call(
            req, "user-svc", "POST", "/tokens/introspect", json={"token": token}
        )
        if response.status_code != 200:
            raise Reply(self._unexpected(req, "user-svc", response))
        claims = self._json(req, "user-svc", response)
        ttl = self.introspection_ttl
        if claims.get("active") is True and isinstance(claims.get("exp"), int | float):
            ttl = min(ttl, claims["exp"] - self.ctx.clock().timestamp())
        if ttl * 1000 >= 1:
            await self.ctx.redis.set(key, orjson.dumps(claims), px=int(ttl * 1000))
        return claims

    def _unauthorized(self, req: ValidRequest, detail: str) -> StubResponse:
        challenge = f'Bearer realm="ecom", error="invalid_token", error_description="{detail}"'
        return problem_response(
            401,
            "unauthorized",
            title="Unauthorized",
            detail=detail,
            instance=req.request.path,
            headers={"WWW-Authenticate": challenge},
        )

    # --- calling downstream --------------------------------------------------------------

    async def _call(
        self, req: ValidRequest, peer: str, method: str, url: str, **options: Any
    ) -> httpx.Response:
        """One request to ``peer``, waiting at most its edge's deadline (asyncio's
        timeout also bounds in-process peers, which ignore httpx's); an unreachable or
        too slow peer raises the gateway's 5xx."""
        timeout = self.ctx.deadlines.edge(self.component, peer)
        try:
            async with asyncio.timeout(timeout):
                return await self.ctx.peers[peer].request(method, url, **options)
        except TimeoutError as exc:
            detail = f"{peer} did not answer within {timeout:g} s; retry later."
            raise Reply(self._unavailable(req, detail)) from exc
        except (LookupError, httpx.HTTPError) as exc:
            detail = f"{peer} could not be reached ({type(exc).__name__}); retry later."
            raise Reply(self._unavailable(req, detail)) from exc

    def _json(self, req: ValidRequest, peer: str, response: httpx.Response) -> dict[str, Any]:
        """The JSON object a peer answered; anything else means it is not working."""
        try:
            body = response.json()
        except ValueError as exc:
            raise Reply(self._unexpected(req, peer, response)) from exc
        if not isinstance(body, dict):
            raise Reply(self._unexpected(req, peer, response))
        return body

    def _unavailable(self, req: ValidRequest, detail: str) -> StubResponse:
        """503 (or 502 where only that is documented), with ``Retry-After``."""
        documented = req.operation.responses
        status = 502 if "502" in documented and "503" not in documented else 503
        return problem_response(
            status,
            "service-unavailable",
            title="Service unavailable",
            detail=detail,
            instance=req.request.path,
            headers={"Retry-After": str(self.retry_after)},
        )

    def _unexpected(self, req: ValidRequest, peer: str, response: httpx.Response) -> StubResponse:
        return self._unavailable(req, f"{peer} answered {response.status_code}; retry later.")

    def _relay(
        self,
        req: ValidRequest,
        peer: str,
        response: httpx.Response,
        statuses: Mapping[int, int],
        **members: Any,
    ) -> Reply:
        """A downstream problem passed on as the gateway documents it (``statuses`` maps
        downstream -> gateway status), ``instance`` being the gateway's path; any other
        answer means the downstream is not working."""
        status = statuses.get(response.status_code)
        if status is None:
            return Reply(self._unexpected(req, peer, response))
        body = self._json(req, peer, response)
        title = str(body.get("title") or "Error")
        body = {"detail": title, **body, "status": status, "instance": req.request.path}
        headers = {}
        if status == 503:
            headers["Retry-After"] = response.headers.get("retry-after", str(self.retry_after))
        return Reply(StubResponse(status, body | members, PROBLEM_MEDIA_TYPE, headers))

    # --- users ---------------------------------------------------------------------------

    async def register_user(self, req: ValidRequest) -> StubResponse:
        response = await self._call(req, "user-svc", "POST", "/users", json=req.body)
        if response.status_code != 201:
            raise self._relay(req, "user-svc", response, {**_VALIDATION, 409: 409})
        return json_response(201, public_user(self._json(req, "user-svc", response)))

    async def login(self, req: ValidRequest) -> StubResponse:
        """user-svc's 201 session is the gateway's 200 access token."""
        response = await self._call(req, "user-svc", "POST", "/sessions", json=req.body)
        if response.status_code != 201:
            raise self._relay(req, "user-svc", response, {**_VALIDATION, 401: 401})
        return json_response(200, _pick(self._json(req, "user-svc", response), TOKEN_FIELDS))

    async def get_current_user(self, req: ValidRequest, user_id: str) -> StubResponse:
        response = await self._call(req, "user-svc", "GET", f"/users/{user_id}")
        if response.status_code == 404:  # an active token of a user who is gone
            raise Reply(self._unauthorized(req, "The access token's user no longer exists."))
        if response.status_code != 200:
            raise Reply(self._unexpected(req, "user-svc", response))
        return json_response(200, public_user(self._json(req, "user-svc", response)))

    # --- products ------------------------------------------------------------------------

    async def list_products(self, req: ValidRequest) -> StubResponse:
        query = _pick(req.params["query"], ("category", "limit", "cursor"))
        response = await self._call(req, "catalog-svc", "GET", "/products", params=query)
        if response.status_code != 200:
            raise self._relay(req, "catalog-svc", response, _VALIDATION)
        return json_response(200, _page(self._json(req, "catalog-svc", response), public_product))

    async def get_product(self, req: ValidRequest) -> StubResponse:
        sku = req.params["path"]["sku"]
        product, hit = await self._product(req, sku)
        if product is None:
            return not_found(req, f"Product {sku}")
        return json_response(200, product, headers={"X-Cache": "HIT" if hit else "MISS"})

    async def _product(self, req: ValidRequest, sku: str) -> tuple[dict[str, Any] | None, bool]:
        """(the public product or None when unknown, whether it came from the cache);
        a miss reads catalog-svc and fills the cache."""
        key = PRODUCT_KEY + sku
        cached = await self.ctx.redis.get(key)
        if cached is not None:
            product: dict[str, Any] = orjson.loads(cached)
            return product, True
        response = await self._call(req, "catalog-svc", "GET", f"/products/{sku}")
        if response.status_code == 404:
            return None, False
        if response.status_code != 200:
            raise Reply(self._unexpected(req, "catalog-svc", response))
        product = public_product(self._json(req, "catalog-svc", response))
        if self.catalog_ttl > 0:
            await self.ctx.redis.set(key, orjson.dumps(product), ex=self.catalog_ttl)
        return product, False

    # --- orders --------------------------------------------------------------------------

    async def place_order(self, req: ValidRequest, user_id: str) -> StubResponse:
        """Prices from the catalog (cache), user from the token, the customer's contact
        from the profile at user-svc, then order-svc's saga."""
        items = req.body["items"]
        skus = sorted({item["sku"] for item in items})
        found = await asyncio.gather(*(self._product(req, sku) for sku in skus))
        prices = {
            sku: product["price"] for sku, (product, _) in zip(skus, found, strict=True) if product
        }
        unpriceable = _unpriceable(items, prices)
        if unpriceable:
            raise Reply(self._invalid_order(req, unpriceable))
        contact = await self._contact(req, user_id)
        body = {
            "user_id": user_id,
            "items": [
                {**_pick(item, ("sku", "quantity")), "unit_amount": prices[item["sku"]]["amount"]}
                for item in items
            ],
            "currency": next(iter(prices.values()))["currency"],
            "payment_method": req.body["payment_method"],
            "shipping_address": req.body["shipping_address"],
            "contact": contact,
        }
        headers = {"Idempotency-Key": str(req.header("idempotency-key")), "X-User-Id": user_id}
        response = await self._call(req, "order-svc", "POST", "/orders", json=body, headers=headers)
        if response.status_code != 201:
            passed = {400: 400, 402: 402, 409: 409, 422: 422, 503: 503}
            reply = self._relay(req, "order-svc", response, passed)
            order_id = reply.response.body.get("order_id") if reply.response.body else None
            if isinstance(order_id, str):  # a rejected order: say where to look it up
                reply.response.headers["Location"] = f"/v1/orders/{order_id}"
            raise reply
        order = public_order(self._json(req, "order-svc", response))
        return json_response(201, order, headers={"Location": f"/v1/orders/{order['order_id']}"})

    async def _contact(self, req: ValidRequest, user_id: str) -> dict[str, Any]:
        """The user's email and phone at user-svc, for order-svc's events."""
        response = await self._call(req, "user-svc", "GET", f"/users/{user_id}")
        if response.status_code == 404:  # an active token of a user who is gone
            raise Reply(self._unauthorized(req, "The access token's user no longer exists."))
        if response.status_code != 200:
            raise Reply(self._unexpected(req, "user-svc", response))
        user = self._json(req, "user-svc", response)
        phone = {"phone": user["phone"]} if user.get("phone") else {}  # absent when unknown
        return {"email": user["email"], **phone}

    def _invalid_order(self, req: ValidRequest, errors: list[dict[str, str]]) -> StubResponse:
        return problem_response(
            422,
            "validation-error",
            title="Request validation failed",
            detail=f"{len(errors)} order line(s) cannot be priced.",
            instance=req.request.path,
            errors=errors,
        )

    async def list_orders(self, req: ValidRequest, user_id: str) -> StubResponse:
        query = _pick(req.params["query"], ("status", "limit", "cursor"))
        response = await self._call(
            req, "order-svc", "GET", "/orders", params=query, headers={"X-User-Id": user_id}
        )
        if response.status_code != 200:
            raise self._relay(req, "order-svc", response, _VALIDATION)
        page = self._json(req, "order-svc", response)
        # never another user's order, whatever order-svc answers
        mine = [order for order in page["items"] if order.get("user_id") == user_id]
        return json_response(200, _page({**page, "items": mine}, public_order))

    async def get_order(self, req: ValidRequest, user_id: str) -> StubResponse:
        order = await self._order(req, user_id, req.params["path"]["orderId"])
        return json_response(200, public_order(order))

    async def _order(self, req: ValidRequest, user_id: str, order_id: str) -> dict[str, Any]:
        """order-svc's order when it is the caller's; raises the documented 404 else."""
        response = await self._call(
            req, "order-svc", "GET", f"/orders/{order_id}", headers={"X-User-Id": user_id}
        )
        if response.status_code != 200:
            raise self._relay(req, "order-svc", response, {404: 404})
        order: dict[str, Any] = self._json(req, "order-svc", response)
        if order.get("user_id") != user_id:  # never show another user's order
            raise Reply(not_found(req, f"Order {order_id}"))
        return order

    async def get_order_summary(self, req: ValidRequest, user_id: str) -> StubResponse:
        """The order, then its payment and shipment (read side by side)."""
        order = await self._order(req, user_id, req.params["path"]["orderId"])
        payments, shipments = await asyncio.gather(
            self._items_of(req, user_id, "payment-svc", "/payments", order["order_id"]),
            self._items_of(req, user_id, "shipping-svc", "/shipments", order["order_id"]),
        )
        # only the order's own, whatever the services list
        payments = [p for p in payments if p.get("order_id") == order["order_id"]]
        shipments = [s for s in shipments if s.get("order_id") == order["order_id"]]
        payment = _matching(payments, "payment_id", order.get("payment_id"))
        shipment = _matching(shipments, "shipment_id", order.get("shipment_id"))
        summary = {
            "order": public_order(order),
            "payment": public_payment(payment) if payment else None,
            "shipment": public_shipment(shipment) if shipment else None,
        }
        return json_response(200, summary)

    async def _items_of(
        self, req: ValidRequest, user_id: str, peer: str, url: str, order_id: str
    ) -> list[dict[str, Any]]:
        response = await self._call(
            req, peer, "GET", url, params={"order_id": order_id}, headers={"X-User-Id": user_id}
        )
        if response.status_code != 200:
            raise Reply(self._unexpected(req, peer, response))
        items: list[dict[str, Any]] = self._json(req, peer, response)["items"]
        return items

    async def cancel_order(self, req: ValidRequest, user_id: str) -> StubResponse:
        """Only the caller's own order is ever cancelled: read it first (the 404 of an
        order that is not theirs), and check the answer too."""
        order_id = req.params["path"]["orderId"]
        await self._order(req, user_id, order_id)
        response = await self._call(
            req,
            "order-svc",
            "POST",
            f"/orders/{order_id}/cancel",
            json=req.body if req.body is not None else {},
            headers={"X-User-Id": user_id},
        )
        if response.status_code == 409:
            raise await self._not_cancellable(req, user_id, order_id, response)
        if response.status_code != 200:
            raise self._relay(req, "order-svc", response, {**_VALIDATION, 404: 404})
        cancelled = self._json(req, "order-svc", response)
        if cancelled.get("user_id") != user_id:
            raise Reply(not_found(req, f"Order {order_id}"))
        return json_response(200, public_order(cancelled))

    async def _not_cancellable(
        self, req: ValidRequest, user_id: str, order_id: str, response: httpx.Response
    ) -> Reply:
        """order-svc's 409 with the ``order_status`` the gateway's problem requires
        (order-svc's own 409 does not carry it: read the order for it)."""
        status = self._json(req, "order-svc", response).get("order_status")
        if status is None:
            status = (await self._order(req, user_id, order_id))["status"]
        return self._relay(req, "order-svc", response, {409: 409}, order_status=status)


def _unpriceable(
    items: list[dict[str, Any]], prices: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, str]]:
    """Where an order cannot be priced: unknown SKUs, or SKUs in more than one currency."""
    errors = [
        {"pointer": f"/body/items/{index}/sku", "message": f"no product {item['sku']}"}
        for index, item in enumerate(items)
        if item["sku"] not in prices
    ]
    currencies = sorted({price["currency"] for price in prices.values()})
    if len(currencies) > 1:
        errors.append(
            {"pointer": "/body/items", "message": f"products in several currencies: {currencies}"}
        )
    return errors
