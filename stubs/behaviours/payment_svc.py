"""payment-svc: card charges and refunds through Stripe (specs/openapi/payment-svc.yaml).

A charge creates and confirms a Stripe PaymentIntent (form-encoded ``POST
/v1/payment_intents`` through ``ctx.peers["stripe"]``); a refund creates a Stripe
Refund (``POST /v1/refunds``). Both send ``Authorization: Bearer <stripe_secret_key>``
and a Stripe ``Idempotency-Key`` derived from what identifies the operation (ours for a
charge; the payment, what was refunded before and the amount for a refund), so a retry
after a timeout can never make Stripe charge or refund twice.

``createPayment`` is idempotent on our ``Idempotency-Key``: the first final answer (201,
or 402 for a decline) is stored with a fingerprint of the body, in the same transaction
as the payment and its event; a retry with the same key and body replays it without
calling Stripe, another body answers 422 idempotency-key-reused. Requests with one key
are serialised in-process, so concurrent retries also reach Stripe once. A 502 (Stripe
unreachable, too slow or 5xx) is not stored: retrying it is safe and calls Stripe again.

Stripe's answers: a succeeded PaymentIntent -> 201 ``succeeded``; a 402 card error ->
402 card-declined with Stripe's ``decline_code`` (its ``code`` when it has none), the
payment stored as ``failed``; a confirmed PaymentIntent left in another status (3D
Secure, which payment-svc cannot complete) -> declined as ``authentication_required``;
anything else -> 502 payment-provider-error.

Events (topic ``payments``, keyed by the order id, through the outbox):
``payment.succeeded``, ``payment.failed``, ``payment.refunded`` (one per refund, with
that refund's amount).

A Stripe call that times out (or whose connection fails, or that Stripe answers 409
``idempotency_key_in_use`` because the first one still runs) has an unknown outcome, never
a decline: it is settled before payment-svc answers, by sending it again with the same
Stripe ``Idempotency-Key`` -- Stripe replays the first one's answer if it landed, or runs
it now if it never arrived -- up to ``ctx.deadlines.stripe_settle_attempts`` more times.
Only when no attempt gets an answer does payment-svc answer 502 with the outcome unknown
(not stored for replay: the caller settles it by retrying with the same key).

How long one Stripe call may take is ``ctx.deadlines.stripe`` (every timeout of the
platform is set in one place). Settings (``settings["payment-svc"]``): ``stripe_secret_key``
(:data:`DEFAULT_SECRET_KEY`), ``stripe_return_url``
(:data:`DEFAULT_RETURN_URL`, sent with every confirmed PaymentIntent),
``idempotency_ttl_seconds`` (86400: how long an Idempotency-Key's answer is replayed;
expired keys are pruned, see ``_idempotency``).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    bindparam,
    select,
    update,
)

from ecom_harness.specs import load_seed
from ecom_harness.stubs.engine import Behaviour, StubResponse, ValidRequest
from ecom_harness.stubs.state import Write, insert_into, new_id, outbox_table

from ._idempotency import KeyedLocks, KeyRetention, fingerprint
from ._paging import invalid_cursor, keyset_page, page_of
from ._simulator import SimulatorContext, add_missing_rows, json_response, rfc3339
from ._sql_sim import OutboxSimulator, Refusal, platform_problem, refusal

__all__ = [
    "DEFAULT_RETURN_URL",
    "DEFAULT_SECRET_KEY",
    "PaymentSimulator",
]

DEFAULT_SECRET_KEY = "sk_test_ecomharness"
DEFAULT_RETURN_URL = "https://shop.example.com/checkout/return"
# Stripe's own refund reasons; ours (order_compensation) travels in metadata only.
_STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
# A confirmed PaymentIntent that neither succeeded nor was declined: the decline code
# Stripe itself uses for the reason (payment-svc cannot authenticate for the customer).
_UNFINISHED = {"requires_action": "authentication_required"}
_PAYMENT_FIELDS = (
    "payment_id",
    "order_id",
    "amount",
    "currency",
    "status",
    "provider_payment_id",
    "refunded_amount",
    "decline_code",
    "created_at",
    "updated_at",
)

_METADATA = MetaData()
PAYMENTS = Table(
    "payments",
    _METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # newest-first order
    Column("payment_id", String(40), nullable=False, unique=True),
    Column("order_id", String(40), nullable=False, index=True),
    Column("amount", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_payment_id", String(255)),
    Column("refunded_amount", Integer, nullable=False),
    Column("decline_code", String(64)),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)
IDEMPOTENCY = Table(
    "idempotency_keys",
    _METADATA,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    # When the key was first used: it is forgotten a retention later (KeyRetention).
    Column("created_at", DateTime(timezone=True), nullable=True, index=True),
)
_KEY_OF = select(IDEMPOTENCY).where(IDEMPOTENCY.c.key == bindparam("w_key"))  # built once


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What Stripe made of a charge; ``decline_code`` None means it succeeded."""

    provider_payment_id: str | None
    decline_code: str | None = None
    message: str = ""


def _stripe_key(*parts: str) -> str:
    """A Stripe Idempotency-Key derived from what identifies the operation (within
    Stripe's 255 characters, whatever the length of ours)."""
    return "payment-svc-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _intent_form(body: dict[str, Any], return_url: str) -> dict[str, str]:
    """The PaymentIntent parameters: only what the request and the settings fix, so a
    retry sends exactly the same ones (Stripe refuses a reused key with others).

    ``confirm=true`` needs a ``return_url`` unless redirect-based methods are ruled out
    (the Stripe spec's pitfall); ``payment_method_types[0]=card`` would be the better
    way, but the stubs' form parser cannot read indexed arrays yet.
    """
    form = {
        "amount": str(body["amount"]),
        "currency": body["currency"],
        "payment_method": body["payment_method"],
        "confirm": "true",
        "return_url": return_url,
        "metadata[order_id]": body["order_id"],
    }
    if "description" in body:
        form["description"] = body["description"]
    return form


def _refund_form(payment: Row[Any], amount: int, reason: str | None) -> dict[str, str]:
    """The Refund parameters; our reason travels in metadata, and as Stripe's own
    ``reason`` when Stripe knows it (``order_compensation`` it does not)."""
    form = {
        "payment_intent": payment.provider_payment_id,
        "amount": str(amount),
        "metadata[order_id]": payment.order_id,
        "metadata[payment_id]": payment.payment_id,
    }
    if reason is not None:
        form["metadata[reason]"] = reason
        if reason in _STRIPE_REFUND_REASONS:
            form["reason"] = reason
    return form


def _charge_outcome(status: int, answer: dict[str, Any]) -> _Outcome | None:
    """Stripe's answer to a confirmed PaymentIntent; None when it is neither a
    PaymentIntent nor a card error (the caller answers 502)."""
    if status == 200 and isinstance(answer.get("id"), str):
        state = answer.get("status")
        if state == "succeeded":
            return _Outcome(answer["id"])
        message = f"Stripe left the PaymentIntent in {state}; payment-svc cannot complete it."
        return _Outcome(answer["id"], _UNFINISHED.get(str(state), "generic_decline"), message)
    error = answer.get("error")
    if status != 402 or not isinstance(error, dict):
        return None
    intent = error.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, dict) else None
    return _Outcome(
        intent_id if isinstance(intent_id, str) else None,
        str(error.get("decline_code") or error.get("code") or "generic_decline"),
        str(error.get("message") or "Your card was declined."),
    )


def _stripe_failure(status: int, answer: dict[str, Any]) -> str:
    """``Stripe answered 500 (api_error): ...``, for the 502's detail."""
    error = answer.get("error")
    error = error if isinstance(error, dict) else {}
    kind = error.get("type", "no error type")
    message = error.get("message")
    return f"Stripe answered {status} ({kind})" + (f": {message}" if message else ".")


def _refusal_for(status: int, answer: dict[str, Any], req: ValidRequest) -> Refusal:
    """Why a charge failed, said the platform's way: Stripe refusing a field we passed
    on (an unknown payment method, a currency it does not take) is the caller's
    mistake, a 422 naming that field; anything else is the provider's, a 502."""
    error = answer.get("error")
    error = error if isinstance(error, dict) else {}
    param = error.get("param")
    if status == 400 and error.get("type") == "invalid_request_error" and param in req.body:
        message = str(error.get("message") or "refused by the payment provider")
        return refusal(
            "validation-error",
            f"The payment provider refused {param}: {message}",
            req,
            errors=[{"pointer": f"/body/{param}", "message": message}],
        )
    return refusal("payment-provider-error", _stripe_failure(status, answer), req)


def _payment_body(row: Row[Any]) -> dict[str, Any]:
    mapping = row._mapping
    return {name: mapping[name] for name in _PAYMENT_FIELDS} | {"provider": "stripe"}


class PaymentSimulator(OutboxSimulator):
    """Payments charged and refunded through Stripe, idempotent on Idempotency-Key."""

    component = "payment-svc"
    topic = "payments"
    metadata = _METADATA
    outbox = outbox_table(_METADATA)

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        self.secret_key = str(ctx.settings.get("stripe_secret_key", DEFAULT_SECRET_KEY))
        self.stripe_timeout = ctx.deadlines.edge(self.component, "stripe")
        self.settle_attempts = int(ctx.deadlines.stripe_settle_attempts)
        self.return_url = str(ctx.settings.get("stripe_return_url", DEFAULT_RETURN_URL))
        self._keys = KeyedLocks()  # createPayment, by Idempotency-Key
        self._key_retention = KeyRetention.from_settings(ctx.settings, self._now)
        self._refunds = KeyedLocks()  # refundPayment, by payment id

    def _now(self) -> datetime:
        """The context's clock, looked up at each call: tests swap ``ctx.clock``."""
        return self.ctx.clock()

    async def start(self) -> None:
        await super().start()
        await self._seed_history()

    async def reset(self) -> None:
        await super().reset()
        await self._seed_history()

    async def _seed_history(self) -> None:
        """The succeeded payments of the seed data's orders (specs/seed.toml)."""
        if not self.ctx.settings.get("seed_orders", True):
            return
        rows = [
            {
                "payment_id": order["payment_id"],
                "order_id": order["order_id"],
                "amount": order["total_amount"],
                "currency": order["currency"],
                "status": "succeeded",
                "provider_payment_id": order["provider_payment_id"],
                "refunded_amount": 0,
                "decline_code": None,
                "created_at": order["created_at"],
                "updated_at": order["created_at"],
            }
            for order in load_seed().orders
        ]
        async with self.ctx.db.begin() as conn:
            await add_missing_rows(conn, PAYMENTS, rows, "payment_id")

    def operations(self) -> dict[str, Behaviour]:
        return {
            "createPayment": self.create_payment,
            "getPayment": self.get_payment,
            "listPayments": self.list_payments,
            "refundPayment": self.refund_payment,
        }

    # --- Stripe ---

    async def _stripe(
        self, req: ValidRequest, path: str, form: dict[str, str], key: str
    ) -> tuple[int, dict[str, Any]]:
        """Stripe's status and JSON object. A call with an unknown outcome (too slow,
        unreachable, or the same key still in progress at Stripe) is sent again with the
        same Idempotency-Key, up to ``settle_attempts`` more times; when none is answered,
        or Stripe answers something that is not its wire format -> a 502 refusal."""
        unknown = ""
        for _attempt in range(1 + self.settle_attempts):
            found = await self._stripe_once(path, form, key)
            if isinstance(found, str):
                unknown = found
                continue
            status, answer = found
            error = answer.get("error")
            if (
                status == 409
                and isinstance(error, dict)
                and error.get("type") == "idempotency_error"
            ):
                unknown = "Stripe is still processing the first request with this key"
                await asyncio.sleep(self.stripe_timeout / 4)
                continue
            return status, answer
        attempts = 1 + self.settle_attempts
        detail = (
            f"{unknown} ({attempts} attempt(s) with one Idempotency-Key); the outcome is "
            "unknown: retry with the same Idempotency-Key to settle it."
        )
        raise refusal("payment-provider-error", detail, req)

    async def _stripe_once(
        self, path: str, form: dict[str, str], key: str
    ) -> tuple[int, dict[str, Any]] | str:
        """One Stripe call: its status and JSON object, or why its outcome is unknown."""
        headers = {"Authorization": f"Bearer {self.secret_key}", "Idempotency-Key": key}
        try:
            client = self.ctx.peers["stripe"]
            async with asyncio.timeout(self.stripe_timeout):  # in-process transports too
                response = await client.post(
                    path, data=form, headers=headers, timeout=self.stripe_timeout
                )
            answer = response.json()
        except TimeoutError:
            return f"Stripe did not answer within {self.stripe_timeout:g} s"
        except (LookupError, httpx.HTTPError, ValueError) as exc:
            return f"Stripe could not be reached: {type(exc).__name__}: {exc}"
        if not isinstance(answer, dict):
            return f"Stripe answered {response.status_code} without a JSON object"
        return response.status_code, answer

    # --- charging ---

    async def create_payment(self, req: ValidRequest) -> StubResponse:
        key = req.params["header"]["idempotency-key"]
        digest = fingerprint(req.body)
        async with self._keys.hold(key):
            async with self.transaction() as conn:
                stored = (await conn.execute(_KEY_OF, {"w_key": key})).first()
            stale = stored is not None and self._key_retention.expired(stored.created_at)
            if stored is None or stale:
                return await self._charge(req, key, digest, stale=stale)
        if stored.fingerprint != digest:
            detail = f"Idempotency-Key {key} was already used with a different request body."
            raise refusal("idempotency-key-reused", detail, req)
        return StubResponse(stored.status, stored.body, stored.media_type)

    async def _charge(
        self, req: ValidRequest, key: str, digest: str, *, stale: bool = False
    ) -> StubResponse:
        """Charge through Stripe, then store the payment, the answer under ``key`` and
        the event in one transaction (``stale``: ``key`` has an expired row, replaced)."""
        body = req.body
        status, answer = await self._stripe(
            req,
            "/v1/payment_intents",
            _intent_form(body, self.return_url),
            _stripe_key("charge", key),
        )
        outcome = _charge_outcome(status, answer)
        if outcome is None:
            raise _refusal_for(status, answer, req)
        now = rfc3339(self.ctx.clock())
        payment = {
            "payment_id": new_id("pay"),
            "order_id": body["order_id"],
            "amount": body["amount"],
            "currency": body["currency"],
            "status": "failed" if outcome.decline_code else "succeeded",
            "provider_payment_id": outcome.provider_payment_id,
            "refunded_amount": 0,
            "decline_code": outcome.decline_code,
            "created_at": now,
            "updated_at": now,
        }
        response = self._charge_answer(payment, outcome)
        writes: list[Write] = [(insert_into(PAYMENTS), payment)]
        pruning = self._key_retention.pruning(IDEMPOTENCY.c.created_at)
        if pruning is not None:
            writes.append(pruning)
        if stale:  # expired, not pruned yet: the key is used anew
            writes.append((IDEMPOTENCY.delete().where(IDEMPOTENCY.c.key == key), {}))
        stored = {
            "key": key,
            "fingerprint": digest,
            "status": response.status,
            "media_type": response.media_type,
            "body": response.body,
            "created_at": self._now(),
        }
        writes += [(insert_into(IDEMPOTENCY), stored), self._outcome_event(payment)]
        await self.ctx.db.execute_all(writes)  # one transaction
        self.relay.wake()
        return response

    def _charge_answer(self, payment: dict[str, Any], outcome: _Outcome) -> StubResponse:
        if outcome.decline_code is None:
            return json_response(201, payment | {"provider": "stripe"})
        return platform_problem(
            "card-declined",
            outcome.message,
            f"/payments/{payment['payment_id']}",
            payment_id=payment["payment_id"],
            decline_code=outcome.decline_code,
            order_id=payment["order_id"],
        )

    def _outcome_event(self, payment: dict[str, Any]) -> Write:
        data = {k: payment[k] for k in ("payment_id", "amount", "currency")}
        if payment["status"] == "succeeded":
            data["provider_payment_id"] = payment["provider_payment_id"]
        else:
            data["decline_code"] = payment["decline_code"]
        return self.event(f"payment.{payment['status']}", payment["order_id"], data)

    # --- reading ---

    async def get_payment(self, req: ValidRequest) -> StubResponse:
        return json_response(200, _payment_body(await self._payment(req)))

    async def _payment(self, req: ValidRequest) -> Row[Any]:
        payment_id = req.params["path"]["paymentId"]
        async with self.transaction() as conn:
            row = (
                await conn.execute(select(PAYMENTS).where(PAYMENTS.c.payment_id == payment_id))
            ).first()
        if row is None:
            raise refusal("not-found", f"Payment {payment_id} does not exist.", req)
        return row

    async def list_payments(self, req: ValidRequest) -> StubResponse:
        """Newest first; the cursor is the position (``seq``) of the last one shown."""
        query = req.params["query"]
        statement = select(PAYMENTS)
        if "order_id" in query:
            statement = statement.where(PAYMENTS.c.order_id == query["order_id"])
        page = keyset_page(req, statement, PAYMENTS.c.seq, int, newest_first=True)
        if page is None:
            return invalid_cursor(req)
        statement, limit = page
        async with self.transaction() as conn:
            rows = (await conn.execute(statement)).all()
        items, next_cursor = page_of(rows, limit, lambda row: {"seq": row.seq})
        return json_response(
            200, {"items": [_payment_body(r) for r in items], "next_cursor": next_cursor}
        )

    # --- refunding ---

    async def refund_payment(self, req: ValidRequest) -> StubResponse:
        """Refund ``amount`` (default: what remains) through Stripe; one refund per
        payment at a time, so two cannot both spend the same remainder."""
        wanted = req.body or {}
        async with self._refunds.hold(req.params["path"]["paymentId"]):
            payment = await self._payment(req)
            amount = self._refundable(req, payment, wanted.get("amount"))
            form = _refund_form(payment, amount, wanted.get("reason"))
            # Keyed by what was refunded before: a retry after a timeout replays at
            # Stripe, the next refund of the same payment is a new one.
            key = _stripe_key(
                "refund", payment.payment_id, str(payment.refunded_amount), str(amount)
            )
            status, answer = await self._stripe(req, "/v1/refunds", form, key)
            if status != 200 or not isinstance(answer.get("id"), str):
                raise refusal("payment-provider-error", _stripe_failure(status, answer), req)
            await self._record_refund(payment, amount, answer["id"])
            return json_response(200, _payment_body(await self._payment(req)))

    def _refundable(self, req: ValidRequest, payment: Row[Any], requested: int | None) -> int:
        """The amount to refund, or the documented 409 / 422 refusal."""
        remaining = payment.amount - payment.refunded_amount
        if payment.status == "failed":
            detail = f"Payment {payment.payment_id} failed; there is nothing to refund."
            raise refusal("conflict", detail, req)
        if remaining <= 0:
            raise refusal("conflict", f"Payment {payment.payment_id} is already refunded.", req)
        if requested is not None and requested > remaining:
            raise refusal(
                "validation-error",
                f"Only {remaining} of payment {payment.payment_id} remain refundable.",
                req,
                errors=[
                    {
                        "pointer": "/amount",
                        "message": f"must not exceed the remaining amount {remaining}",
                    }
                ],
            )
        return remaining if requested is None else requested

    async def _record_refund(self, payment: Row[Any], amount: int, refund_id: str) -> None:
        refunded = payment.refunded_amount + amount
        async with self.transaction() as conn:
            await conn.execute(
                update(PAYMENTS)
                .where(PAYMENTS.c.payment_id == payment.payment_id)
                .values(
                    refunded_amount=refunded,
                    status="refunded" if refunded == payment.amount else payment.status,
                    updated_at=rfc3339(self.ctx.clock()),
                )
            )
            data = {
                "payment_id": payment.payment_id,
                "amount": amount,
                "currency": payment.currency,
                "refund_id": refund_id,
            }
            await self.emit(conn, "payment.refunded", payment.order_id, data)
