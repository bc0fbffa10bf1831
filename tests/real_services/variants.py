"""The registry of the corpus: each variant's name, the service it is, what is broken in
it, and which expectation of which scenario must catch it.

A broken variant is the correct service with ONE method overridden; its docstring says
what a team got wrong. ``caught_by`` names ``scenario/expectation-id`` pairs (the ids the
runner reports); every one of them must fail when the variant is swapped in, and the
correct services must pass every scenario.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from .api_gateway import ApiGateway
from .common import event
from .notify_svc import NotifySvc
from .order_svc import CircuitBreaker, CircuitOpen, OrderSvc


class Service(Protocol):
    @property
    def app(self) -> ASGIApp: ...


@dataclass(frozen=True, slots=True)
class Variant:
    name: str  # "<component>:<variant>"
    component: str
    build: Callable[[Mapping[str, str]], Service]
    broken: str  # what is wrong, in words ("" for a correct service)
    caught_by: tuple[str, ...] = ()  # "scenario/expectation-id" that must fail

    @property
    def correct(self) -> bool:
        return not self.broken


# --- order-svc -----------------------------------------------------------------------------


class ForgetsRelease(OrderSvc):
    """Compensation refunds and cancels, but never gives the reserved stock back."""

    async def release(self, order: dict[str, Any]) -> None:
        return None


class BreakerNeverOpens(CircuitBreaker):
    def failed(self) -> None:
        self.failures += 1  # counted, but the circuit never opens


class BreakerThatNeverOpens(OrderSvc):
    """Timeouts are counted but never open the circuit: every order waits for inventory."""

    def __init__(self, environ: Mapping[str, str]):
        super().__init__(environ)
        self.breaker = BreakerNeverOpens(self.breaker_threshold, self.breaker_cooldown)


class BreakerNeverHalfOpens(CircuitBreaker):
    def before_call(self) -> None:
        if self.opened_at is not None:  # no probe after the cool-down: open for good
            raise CircuitOpen(max(1, round(self.cooldown)))


class BreakerThatNeverCloses(OrderSvc):
    """Once open, the circuit stays open: no probe after the cool-down, inventory or not."""

    def __init__(self, environ: Mapping[str, str]):
        super().__init__(environ)
        self.breaker = BreakerNeverHalfOpens(self.breaker_threshold, self.breaker_cooldown)


class ChargesAgainOnRetry(OrderSvc):
    """Never keeps the answer to an Idempotency-Key: a retried order is a second order,
    reserved and charged again."""

    async def remember(
        self,
        key: str,
        body: dict[str, Any],
        status: int,
        answer: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        return None


class ConfirmedEventBreaksSchema(OrderSvc):
    """``order.confirmed`` carries the total as a decimal string ("51.98"), not minor units."""

    async def confirmed_data(self, order: dict[str, Any]) -> dict[str, Any]:
        data = await super().confirmed_data(order)
        return {**data, "total_amount": f"{order['total_amount'] / 100:.2f}"}


class ChargesOneUnitPerLine(OrderSvc):
    """Charges the unit price of each line, forgetting the quantity."""

    def charge_amount(self, order: dict[str, Any]) -> int:
        return sum(int(item["unit_amount"]) for item in order["items"])


class NeverCommits(OrderSvc):
    """Confirms the order without committing the reservation (it would expire later)."""

    async def commit(self, order: dict[str, Any]) -> None:
        return None


class ListsEveryonesOrders(OrderSvc):
    """listOrders ignores X-User-Id: every user sees every order."""

    def visible_orders(self, query: Any, user_id: str | None) -> Any:
        return query


class SendsNoServiceToken(OrderSvc):
    """Calls its peers without its X-Service-Token: every peer answers 401."""

    def peer_headers(self) -> dict[str, str]:
        return {}


class KeysEventsByUser(OrderSvc):
    """Publishes order events keyed by the user id: one order's events may be reordered."""

    async def publish(self, order: dict[str, Any], event_type: str, data: dict[str, Any]) -> None:
        record = event(event_type, "order-svc", order["order_id"], data)
        await self.events.publish("orders", order["user_id"], record)


# --- api-gateway ---------------------------------------------------------------------------


class CacheHitStillCallsCatalog(ApiGateway):
    """Answers X-Cache: HIT from the cache, but reads catalog-svc on every request anyway
    (a refresh-ahead that was meant to run in the background)."""

    async def product(self, sku: str) -> tuple[dict[str, Any], bool]:
        cached = await self.redis.get(f"gw:product:{sku}")
        product, _ = await super().product(sku)
        if cached is None:
            return product, False
        answer = await self.peers.get(f"{self.catalog}/products/{sku}")
        return (answer.json() if answer.status_code == 200 else product), True


class LeaksOtherUsersOrders(ApiGateway):
    """Calls order-svc without X-User-Id (as an operator would): a user's order list holds
    every user's orders."""

    def acting_as(self, request: Request) -> dict[str, str]:
        return {}


class NewIdempotencyKeyPerRequest(ApiGateway):
    """Sends order-svc a fresh Idempotency-Key per request instead of the client's: a
    retried order is placed, and charged, twice."""

    def idempotency_key(self, request: Request) -> str:
        super().idempotency_key(request)
        return str(uuid.uuid4())


class CreatedWithoutLocation(ApiGateway):
    """Answers a placed order 201 without the Location header the spec requires."""

    def created(self, order: dict[str, Any]) -> Response:
        return JSONResponse(order, 201)


class TrustsTokenWithoutIntrospection(ApiGateway):
    """Reads the user id out of the JWT without asking user-svc: no signature, expiry
    or revocation check."""

    async def introspect(self, token: str) -> dict[str, Any]:
        payload = token.split(".")[1]
        claims: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
        return {**claims, "active": True}


class DeclineAnsweredAsUnavailable(ApiGateway):
    """Maps a declined card to 503 service-unavailable ("retry later") instead of 402."""

    order_failures: Mapping[int, int] = {409: 409, 422: 422, 503: 503}


# --- notify-svc ------------------------------------------------------------------------------


class NeverSendsSms(NotifySvc):
    """Records the SMS as sent but never calls Twilio (the sender was left switched off)."""

    async def send_sms(self, to: str, text: str) -> tuple[str, str | None, str | None]:
        return "sent", None, None


class MailBreaksSendGridSpec(NotifySvc):
    """Sends SendGrid a body with the recipient as a bare string (``"to": "a@b"``), not a
    list of addresses: SendGrid refuses it and no email goes out."""

    def mail(self, to: str, subject: str, event: dict[str, Any]) -> dict[str, Any]:
        body = super().mail(to, subject, event)
        body["personalizations"] = [{"to": to, "subject": subject}]
        return body


def _variants(*found: Variant) -> dict[str, Variant]:
    return {variant.name: variant for variant in found}


VARIANTS: dict[str, Variant] = _variants(
    Variant("order-svc:correct", "order-svc", OrderSvc, ""),
    Variant(
        "order-svc:forgets-release",
        "order-svc",
        ForgetsRelease,
        ForgetsRelease.__doc__ or "",
        ("payment-failure/?",),
    ),
    Variant(
        "order-svc:breaker-never-opens",
        "order-svc",
        BreakerThatNeverOpens,
        BreakerThatNeverOpens.__doc__ or "",
        ("circuit-breaker/?",),
    ),
    Variant(
        "order-svc:breaker-never-closes",
        "order-svc",
        BreakerThatNeverCloses,
        BreakerThatNeverCloses.__doc__ or "",
        ("circuit-breaker/?",),
    ),
    Variant(
        "order-svc:charges-again-on-retry",
        "order-svc",
        ChargesAgainOnRetry,
        ChargesAgainOnRetry.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "order-svc:event-breaks-schema",
        "order-svc",
        ConfirmedEventBreaksSchema,
        ConfirmedEventBreaksSchema.__doc__ or "",
        ("happy-path/run:no-violations",),
    ),
    Variant(
        "order-svc:charges-one-unit-per-line",
        "order-svc",
        ChargesOneUnitPerLine,
        ChargesOneUnitPerLine.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "order-svc:never-commits",
        "order-svc",
        NeverCommits,
        NeverCommits.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "order-svc:lists-everyones-orders",
        "order-svc",
        ListsEveryonesOrders,
        ListsEveryonesOrders.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "order-svc:sends-no-service-token",
        "order-svc",
        SendsNoServiceToken,
        SendsNoServiceToken.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "order-svc:keys-events-by-user",
        "order-svc",
        KeysEventsByUser,
        KeysEventsByUser.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant("api-gateway:correct", "api-gateway", ApiGateway, ""),
    Variant(
        "api-gateway:cache-hit-still-calls-catalog",
        "api-gateway",
        CacheHitStillCallsCatalog,
        CacheHitStillCallsCatalog.__doc__ or "",
        ("cache-hit/?",),
    ),
    Variant(
        "api-gateway:leaks-other-users-orders",
        "api-gateway",
        LeaksOtherUsersOrders,
        LeaksOtherUsersOrders.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "api-gateway:new-idempotency-key-per-request",
        "api-gateway",
        NewIdempotencyKeyPerRequest,
        NewIdempotencyKeyPerRequest.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "api-gateway:created-without-location",
        "api-gateway",
        CreatedWithoutLocation,
        CreatedWithoutLocation.__doc__ or "",
        ("happy-path/run:no-violations",),
    ),
    Variant(
        "api-gateway:trusts-token-without-introspection",
        "api-gateway",
        TrustsTokenWithoutIntrospection,
        TrustsTokenWithoutIntrospection.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "api-gateway:decline-answered-as-unavailable",
        "api-gateway",
        DeclineAnsweredAsUnavailable,
        DeclineAnsweredAsUnavailable.__doc__ or "",
        ("payment-failure/?",),
    ),
    Variant("notify-svc:correct", "notify-svc", NotifySvc, ""),
    Variant(
        "notify-svc:never-sends-sms",
        "notify-svc",
        NeverSendsSms,
        NeverSendsSms.__doc__ or "",
        ("happy-path/?",),
    ),
    Variant(
        "notify-svc:mail-breaks-sendgrid-spec",
        "notify-svc",
        MailBreaksSendGridSpec,
        MailBreaksSendGridSpec.__doc__ or "",
        ("happy-path/run:no-violations",),
    ),
)
