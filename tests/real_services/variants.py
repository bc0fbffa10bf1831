"""The registry of the corpus: each variant's name, the service it is, what is broken in
it, and which expectation of which scenario must catch it.

A broken variant is the correct service with ONE method overridden; its docstring says
what a team got wrong. ``caught_by`` names ``scenario/expectation-id`` pairs (the ids the
runner reports); every one of them must fail when the variant is swapped in, and the
correct services must pass every scenario.
"""

from __future__ import annotations

import base64
import inspect
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
    """One service of the corpus. ``caught_by``: ``scenario/expectation-id`` patterns
    (``fnmatch``) of the expectations that must fail with it swapped in -- each pattern
    matches at least one failure, and every failure is matched by one of them or of
    ``may_also_fail`` (failures that depend on the machine's speed, not required).
    ``gap``: why the scenarios cannot catch it yet (a finding for the runner or specs)."""

    name: str  # "<component>:<variant>"
    component: str
    build: Callable[[Mapping[str, str]], Service]
    broken: str  # what is wrong, in words ("" for a correct service)
    caught_by: tuple[str, ...] = ()
    gap: str = ""
    may_also_fail: tuple[str, ...] = ()

    @property
    def correct(self) -> bool:
        return not self.broken

    @property
    def scenarios(self) -> tuple[str, ...]:
        """The scenarios that must catch it, in the order ``ecom-harness run all`` runs."""
        return tuple(sorted({pattern.split("/")[0] for pattern in self.caught_by}))


# --- order-svc -----------------------------------------------------------------------------


class ForgetsRelease(OrderSvc):
    """Compensation refunds and cancels, but never gives the reserved stock back."""

    async def release(self, order: dict[str, Any], reason: str) -> None:
        return None


class RejectsAsCancelled(OrderSvc):
    """Publishes a rejected order as ``order.cancelled`` (as the old spec had it), not
    ``order.rejected``: consumers take a saga failure for a customer's cancellation."""

    async def publish_rejection(self, order: dict[str, Any]) -> None:
        data = {
            "user_id": order["user_id"],
            "reason": order["failure_reason"],
            "previous_status": "PENDING",
        }
        await self.publish(order, "order.cancelled", data)


class ReleasesWithoutReason(OrderSvc):
    """Releases the reservation with no body (as the old spec had it): inventory-svc
    refuses the release without its ``reason`` and the stock stays held."""

    async def release(self, order: dict[str, Any], reason: str) -> None:
        await self.call_inventory("POST", f"/reservations/{order['reservation_id']}/release")


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
    """Publishes order events keyed by the user id, not by the order id the AsyncAPI
    key binding names: per-order partitioning and compaction are lost."""

    async def publish(self, order: dict[str, Any], event_type: str, data: dict[str, Any]) -> None:
        record = event(event_type, "order-svc", order["order_id"], data)
        await self.events.publish("orders", order["user_id"], record)


# --- api-gateway ---------------------------------------------------------------------------


class CacheHitStillCallsCatalog(ApiGateway):
    """Answers X-Cache: HIT from the cache, but reads catalog-svc on every request anyway
    (a refresh-ahead that was meant to run in the background)."""

    async def product(self, sku: str) -> tuple[dict[str, Any], bool]:
        cached = await self.redis.get(f"{self.keys}product:{sku}")
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


class NeverRateLimits(ApiGateway):
    """Counts nothing in Redis: no per-user rate limit, and no X-RateLimit headers."""

    async def count(self, user_id: str) -> dict[str, str]:
        return {}


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

    def mail(
        self, to: str, subject: str, event: dict[str, Any], notification_id: str
    ) -> dict[str, Any]:
        body = super().mail(to, subject, event, notification_id)
        body["personalizations"] = [{"to": to, "subject": subject}]
        return body


class MailsWithoutApiKey(NotifySvc):
    """Calls SendGrid without its API key (the Authorization header was lost in a
    refactoring): SendGrid answers 401 and no email goes out."""

    def sendgrid_headers(self) -> dict[str, str]:
        return {}


def variant(
    name: str,
    build: Callable[[Mapping[str, str]], Service],
    *caught_by: str,
    gap: str = "",
    may_also_fail: tuple[str, ...] = (),
) -> Variant:
    """A registry entry; what is broken is the class's docstring."""
    component, _, which = name.partition(":")
    broken = "" if which == "correct" else inspect.cleandoc(getattr(build, "__doc__", "") or "")
    return Variant(name, component, build, broken, caught_by, gap, may_also_fail)


VARIANTS: dict[str, Variant] = {
    found.name: found
    for found in (
        variant("order-svc:correct", OrderSvc),
        variant(
            "order-svc:forgets-release",
            ForgetsRelease,
            "payment-failure/run:interactions:0",  # reserveStock, releaseReservation
            "payment-failure/run:events:3",  # inventory.released
            "payment-failure/run:state:0",  # the stock is back where it was
        ),
        variant(
            "order-svc:rejects-as-cancelled",
            RejectsAsCancelled,
            "payment-failure/run:events:1",  # order.rejected, handled by notify-svc
            "payment-failure/run:absent:3",  # a rejected order is not a cancelled one
            "payment-failure/run:no-violations",  # order.cancelled's reason and previous_status
        ),
        variant(
            "order-svc:releases-without-reason",
            ReleasesWithoutReason,
            "payment-failure/run:interactions:0",  # releaseReservation 200 (it answers 422)
            "payment-failure/run:events:3",  # inventory.released (with the reason)
            "payment-failure/run:state:0",  # the stock is back where it was
            "payment-failure/run:pact:order-svc->inventory-svc",  # the release with its body
            "payment-failure/run:no-violations",  # the required request body
        ),
        variant(
            "order-svc:breaker-never-opens",
            BreakerThatNeverOpens,
            "circuit-breaker/run:absent:0",  # nothing reaches inventory-svc while open
            # "fails at once": under half the time the timed-out orders took, which a busy
            # machine can stretch past this variant's own (timed-out) answer
            may_also_fail=("circuit-breaker/step:open_circuit:time",),
        ),
        variant(
            "order-svc:breaker-never-closes",
            BreakerThatNeverCloses,
            "circuit-breaker/step:probe:*",  # the probe after the cool-down succeeds
            "circuit-breaker/step:closed:*",
            "circuit-breaker/run:interactions:1",
            "circuit-breaker/run:interactions:2",
        ),
        variant(
            "order-svc:charges-again-on-retry",
            ChargesAgainOnRetry,
            "happy-path/step:retry_order:body:/order_id",  # the same answer
            "happy-path/run:events:0",  # one order.placed
            "happy-path/run:events:3",  # one payment.succeeded
            "happy-path/run:interactions:4",  # one createPayment
            "happy-path/run:interactions:6",  # one scheduleShipment
            "happy-path/run:absent:0",  # the retry reserves nothing
            "happy-path/run:absent:1",  # the retry charges nothing
            "happy-path/run:state:0",  # 3 units left the stock, not 6
        ),
        variant(
            "order-svc:event-breaks-schema",
            ConfirmedEventBreaksSchema,
            "happy-path/run:events:1",  # order.confirmed valid against AsyncAPI
            "happy-path/run:no-violations",
            "happy-path/run:pact:notify-svc->order-svc",  # the event notify-svc relies on
        ),
        variant(
            "order-svc:charges-one-unit-per-line",
            ChargesOneUnitPerLine,
            "happy-path/run:events:3",  # payment.succeeded for the order's total
            "happy-path/run:interactions:4",  # createPayment of the order's total
        ),
        variant(
            "order-svc:never-commits",
            NeverCommits,
            "happy-path/run:interactions:3",  # reserveStock, commitReservation
            "happy-path/run:state:0",  # the reservation was committed
        ),
        variant(
            "order-svc:lists-everyones-orders",
            ListsEveryonesOrders,
            # the stub gateway keeps users apart (it drops another user's orders), so Bob's
            # list at the gateway is right: the leak shows on the order-svc edge
            "happy-path/run:interactions:7",  # on the order-svc edge
            "happy-path/run:pact:api-gateway->order-svc",  # the gateway's pact: only Bob's
        ),
        variant(
            "order-svc:sends-no-service-token",
            SendsNoServiceToken,
            "payment-failure/run:no-violations",  # the caller's missing serviceToken
            "payment-failure/step:place_order:*",
            "payment-failure/step:read_order",
            "payment-failure/run:events",
            "payment-failure/run:interactions:*",
            "payment-failure/run:pact:*",  # the inventory pact's X-Service-Token, the 500
        ),
        variant(
            "order-svc:keys-events-by-user",
            KeysEventsByUser,
            "happy-path/run:events:0",  # order.placed: its key breaks the AsyncAPI key
            "happy-path/run:events:1",  # order.confirmed keyed by the order id
            "happy-path/run:no-violations",
        ),
        variant("api-gateway:correct", ApiGateway),
        variant(
            "api-gateway:cache-hit-still-calls-catalog",
            CacheHitStillCallsCatalog,
            "cache-hit/run:absent:0",  # no request reaches catalog-svc on a hit
        ),
        variant(
            "api-gateway:leaks-other-users-orders",
            LeaksOtherUsersOrders,
            "happy-path/step:bob_orders:body:/items",
            "happy-path/run:interactions:7",
            "happy-path/run:pact:api-gateway->order-svc",  # the pact's X-User-Id
        ),
        variant(
            "api-gateway:new-idempotency-key-per-request",
            NewIdempotencyKeyPerRequest,
            "happy-path/step:retry_order:body:/order_id",
            "happy-path/run:events:0",
            "happy-path/run:events:3",
            "happy-path/run:interactions:4",
            "happy-path/run:interactions:6",
            "happy-path/run:absent:0",
            "happy-path/run:absent:1",
            "happy-path/run:state:0",
        ),
        variant(
            "api-gateway:never-rate-limits",
            NeverRateLimits,
            "happy-path/step:place_order:header:X-RateLimit-*",  # counted by the limiter
        ),
        variant(
            "api-gateway:created-without-location",
            CreatedWithoutLocation,
            "happy-path/step:place_order:header:Location",
            "happy-path/run:no-violations",  # Location is required on a 201 of placeOrder
        ),
        variant(
            "api-gateway:trusts-token-without-introspection",
            TrustsTokenWithoutIntrospection,
            "happy-path/run:interactions:1",  # introspectToken at user-svc
        ),
        variant(
            "api-gateway:decline-answered-as-unavailable",
            DeclineAnsweredAsUnavailable,
            "payment-failure/step:place_order:*",  # 402 card-declined
            "payment-failure/step:read_order",  # (no order id to read)
            "payment-failure/run:events",
        ),
        variant("notify-svc:correct", NotifySvc),
        variant(
            "notify-svc:mail-breaks-sendgrid-spec",
            MailBreaksSendGridSpec,
            "happy-path/run:eventually:0",  # sendMail 202
            "happy-path/run:no-violations",  # the caller's request breaks SendGrid's spec
            "happy-path/run:pact:notify-svc->sendgrid",
        ),
        variant(
            "notify-svc:mails-without-api-key",
            MailsWithoutApiKey,
            "happy-path/run:eventually:0",
            "happy-path/run:no-violations",  # the caller sent no bearerAuth
            "happy-path/run:pact:notify-svc->sendgrid",
        ),
        variant(
            "notify-svc:never-sends-sms",
            NeverSendsSms,
            "happy-path/run:eventually:1",  # createMessage 201 to Anna's phone
        ),
    )
}
