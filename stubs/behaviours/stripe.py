"""Stripe in test mode: PaymentIntents and Refunds, answered as Stripe answers them.

What a confirmation does is read from the spec's own table of test payment methods
(``x-test-payment-methods`` in specs/openapi/external/stripe.yaml): ``pm_card_visa``
succeeds, ``pm_card_chargeDeclinedInsufficientFunds`` is a 402 ``card_error`` whose
PaymentIntent waits in ``requires_payment_method``, and so on; an id outside the table is
``resource_missing``, as for a PaymentMethod Stripe does not know. POSTs honour
``Idempotency-Key`` as Stripe does: a retry with the same parameters replays the stored
answer (``Idempotent-Replayed: true``), other parameters are ``idempotency_error``.
Every error, the engine's own validation errors included, is Stripe's ``{"error": {...}}``.

Settings (``StubHost(settings={"stripe": {...}})``):

* ``api_keys`` -- the secret keys accepted; default None: any ``sk_test_...`` key.
* ``idempotency_ttl_seconds`` -- how long an Idempotency-Key is remembered; default
  86400 (Stripe prunes keys after at least 24 hours).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, select

from ecom_harness.specs import load_seed
from ecom_harness.stubs.engine import (
    Behaviour,
    ErrorRenderer,
    Problem,
    StubRequest,
    StubResponse,
    ValidRequest,
)
from ecom_harness.stubs.state import Write, insert_into, new_id

from ._idempotency import fingerprint
from ._providers import (
    Conflict,
    FieldError,
    IdempotencyStore,
    Replay,
    basic_credentials,
    bearer_token,
    field_errors,
    idempotency_table,
)
from ._simulator import Simulator, SimulatorContext, add_missing_rows, json_response

__all__ = ["StripeSimulator"]

_SECRET_KEY = re.compile(r"^sk_test_[A-Za-z0-9_]+$")
_INVALID = "invalid_request_error"
_DOCS = "https://stripe.com/docs/error-codes/"
_LOGS = "https://dashboard.stripe.com/test/logs/"
_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
_NO_PAYMENT_METHOD = (
    "You cannot confirm this PaymentIntent because it's missing a payment method. You can "
    "either update the PaymentIntent with a payment method and then confirm it again, or "
    "confirm it again directly with a payment method."
)
_RETURN_URL_REQUIRED = (
    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. "
    "Because some of these payment methods might redirect your customer off of your page, you "
    "must provide a `return_url`. If you don't want to accept redirect-based payment methods, "
    "set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and "
    "Payment Intents."
)
_KEY_IN_USE = (
    "There is currently another in-progress request using this Idempotent Key (that probably "
    "means you submitted twice, and the other request is still going through): {key}. "
    "Please try again later."
)
_KEY_REUSED = (
    "Keys for idempotent requests can only be used with the same {what} they were first used "
    "with. Try using a key other than '{key}' if you meant to execute a different request."
)
# Stripe's minimum charge per currency (docs.stripe.com/currencies, "Minimum and maximum
# charge amounts"); other currencies are not checked.
_MINIMUM_CHARGE = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "chf": 50,
    "cad": 50,
    "aud": 50,
    "jpy": 50,
    "dkk": 250,
    "nok": 300,
    "sek": 300,
}
_ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
# How Stripe words a form value of the wrong type: (code, message).
_WRONG_TYPE = {
    "integer": ("parameter_invalid_integer", "Invalid integer: {value}"),
    "boolean": (None, "Invalid boolean: {value}"),
    "array": (None, "Invalid array"),
    "object": (None, "Invalid object"),
}


def _doc_url(code: str) -> str:
    return _DOCS + code.replace("_", "-")


def _money(amount: int, currency: str) -> str:
    """``4999, "eur"`` -> ``€49.99``, as Stripe writes amounts in its messages."""
    value = str(amount) if currency in _ZERO_DECIMAL else f"{amount / 100:.2f}"
    return _SYMBOLS.get(currency, currency.upper() + " ") + value


def _mask(key: str) -> str:
    """A key as Stripe echoes it: its prefix and last four characters."""
    prefix = key[:8] if key.startswith(("sk_", "rk_", "pk_")) else ""
    hidden = max(len(key) - len(prefix) - 4, 0)
    return prefix + "*" * hidden + key[len(prefix) + hidden :]


def _param_name(error: FieldError) -> str:
    """The form name of a parameter: ``automatic_payment_methods[enabled]``."""
    head, *rest = error.path or ("",)
    return head + "".join(f"[{part}]" for part in rest)


def _param_error(error: FieldError, sent: Mapping[str, str]) -> dict[str, Any]:
    """Stripe's error member for one invalid parameter."""
    param = _param_name(error)
    if error.kind == "missing":
        code, message = "parameter_missing", f"Missing required param: {param}."
    elif error.kind == "unknown":
        code, message = "parameter_unknown", f"Received unknown parameter: {param}"
    elif error.kind == "type" and error.expected in _WRONG_TYPE:
        found, wording = _WRONG_TYPE[error.expected]
        code, message = found or "", wording.format(value=sent.get(param, ""))
    else:
        code, message = "", f"Invalid {param}: {error.message}"
    return {
        "type": _INVALID,
        "code": code or None,
        "doc_url": _doc_url(code) if code else None,
        "message": message,
        "param": param or None,
    }


def _needs_return_url(params: Mapping[str, Any]) -> bool:
    """Confirming a PaymentIntent that may use redirect-based methods needs a return_url
    (the pitfall in the spec's description)."""
    if not params.get("confirm") or params.get("return_url") or params.get("payment_method_types"):
        return False
    automatic = params.get("automatic_payment_methods") or {}
    return not (automatic.get("enabled") is True and automatic.get("allow_redirects") == "never")


def _next_action(intent_id: str, return_url: str | None) -> dict[str, Any]:
    """3D Secure: a redirect when the client gave a return_url, else Stripe.js handles it."""
    if return_url is None:
        return {"type": "use_stripe_sdk"}
    url = f"https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_simulated&payment_intent={intent_id}"
    return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}}


@dataclass(frozen=True, slots=True)
class _Call:
    """One request's bookkeeping: its id, time, API version and Idempotency-Key."""

    request_id: str
    created: int
    version: str
    idempotency_key: str | None

    def headers(self, original: str | None = None) -> dict[str, str]:
        """Stripe's response headers; ``original`` names the request a replay comes from."""
        found = {"Request-Id": self.request_id, "Stripe-Version": self.version}
        if self.idempotency_key is not None:
            found["Idempotency-Key"] = self.idempotency_key
            found["Original-Request"] = original or self.request_id
            if original is not None:
                found["Idempotent-Replayed"] = "true"
        return found

    def error(self, status: int, *, logged: bool = True, **fields: Any) -> StubResponse:
        """Stripe's error body; members that do not apply (None) are left out."""
        error = {k: v for k, v in fields.items() if v is not None}
        if logged:
            error["request_log_url"] = f"{_LOGS}{self.request_id}?t={self.created}"
        return json_response(status, {"error": error}, self.headers())


# A POST's work: the answer, and None when an Idempotency-Key should not replay it, else
# the writes still to make (written with the answer kept for replays: one transaction,
# one round trip on PostgreSQL).
_Kept = list[Write] | None
_Work = Callable[[ValidRequest, _Call], Awaitable[tuple[StubResponse, _Kept]]]


class StripeSimulator(Simulator):
    """PaymentIntents (create with optional confirm, retrieve) and Refunds."""

    component = "stripe"
    metadata = MetaData()
    intents = Table(
        "payment_intents",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),  # newest = highest
        Column("id", String(64), nullable=False, unique=True),
        Column("amount_received", Integer, nullable=False),
        Column("amount_refunded", Integer, nullable=False),
        Column("data", JSON, nullable=False),
        Column("test_method", String(64)),  # the test PaymentMethod id it was given
    )
    refunds = Table(
        "refunds",
        metadata,
        Column("id", String(64), primary_key=True),
        Column("payment_intent", String(64), nullable=False, index=True),
        Column("data", JSON, nullable=False),
    )
    idempotency_keys = idempotency_table(metadata)

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        spec = ctx.api.document.data
        self.test_methods: Mapping[str, Mapping[str, Any]] = spec["x-test-payment-methods"]
        self.version = str(spec["info"]["version"])
        keys = ctx.settings.get("api_keys")
        self.api_keys: frozenset[str] | None = (
            None if keys is None else frozenset([keys] if isinstance(keys, str) else keys)
        )
        ttl = timedelta(seconds=float(ctx.settings.get("idempotency_ttl_seconds", 86400)))
        self.idempotency = IdempotencyStore(self.idempotency_keys, ctx.db, self._now, ttl)

    def _now(self) -> datetime:
        """Now by the context's clock, looked up at each call so a test can move time."""
        return self.ctx.clock()

    async def start(self) -> None:
        await super().start()
        await self._seed_history()

    async def reset(self) -> None:
        await super().reset()
        await self._seed_history()

    async def _seed_history(self) -> None:
        """The succeeded PaymentIntents behind the seed data's payments (seed.toml), so
        refunding a seeded payment reaches a charge Stripe knows."""
        if not self.ctx.settings.get("seed_orders", True):
            return
        rows = [
            {
                "id": intent["id"],
                "amount_received": intent["amount_received"],
                "amount_refunded": 0,
                "data": intent,
            }
            for intent in map(_seeded_intent, load_seed().orders)
        ]
        async with self.ctx.db.begin() as conn:
            await add_missing_rows(conn, self.intents, rows, "id")

    def behaviours(self) -> dict[str, Behaviour]:
        return {
            "createPaymentIntent": self.create_payment_intent,
            "listPaymentIntents": self.list_payment_intents,
            "confirmPaymentIntent": self.confirm_payment_intent,
            "getPaymentIntent": self.get_payment_intent,
            "createRefund": self.create_refund,
        }

    def render_error(self) -> ErrorRenderer:
        return self._render_engine_error

    # --- the operations ------------------------------------------------------------

    async def create_payment_intent(self, req: ValidRequest) -> StubResponse:
        return await self._post(req, self._create_intent)

    async def get_payment_intent(self, req: ValidRequest) -> StubResponse:
        call = self._call(req.request)
        denied = self._denied(req.request.headers, call)
        if denied is not None:
            return denied
        intent_id = req.params["path"]["intent"]
        async with self.ctx.db.connect() as conn:
            row = (
                await conn.execute(
                    select(self.intents.c.data).where(self.intents.c.id == intent_id)
                )
            ).first()
        if row is None:
            return _no_such_intent(intent_id, "intent", call)
        return json_response(200, row.data, call.headers())

    async def create_refund(self, req: ValidRequest) -> StubResponse:
        return await self._post(req, self._create_refund)

    async def list_payment_intents(self, req: ValidRequest) -> StubResponse:
        """Newest first, Stripe's cursors: ``starting_after`` (the page after that object)
        or ``ending_before`` (the page just before it), ``has_more`` when more follow."""
        call = self._call(req.request)
        denied = self._denied(req.request.headers, call)
        if denied is not None:
            return denied
        query = req.params["query"]
        limit = int(query.get("limit", 10))
        table = self.intents
        newest_first = select(table.c.seq, table.c.data).order_by(table.c.seq.desc())
        cursor_name = "starting_after" if "starting_after" in query else "ending_before"
        cursor = query.get(cursor_name)
        async with self.ctx.db.connect() as conn:
            if cursor is not None:
                found = (
                    await conn.execute(select(table.c.seq).where(table.c.id == cursor))
                ).first()
                if found is None:
                    return _no_such_intent(cursor, cursor_name, call, 400)
                if cursor_name == "starting_after":
                    query_rows = newest_first.where(table.c.seq < found.seq).limit(limit + 1)
                else:  # the newer ones closest to the cursor, shown newest first
                    nearest = (
                        select(table.c.seq, table.c.data)
                        .where(table.c.seq > found.seq)
                        .order_by(table.c.seq)
                        .limit(limit + 1)
                    )
                    rows = list((await conn.execute(nearest)).all())
                    more = len(rows) > limit
                    page = [r.data for r in reversed(rows[:limit])]
                    return self._page(page, more, call)
            else:
                query_rows = newest_first.limit(limit + 1)
            rows = list((await conn.execute(query_rows)).all())
        return self._page([r.data for r in rows[:limit]], len(rows) > limit, call)

    @staticmethod
    def _page(data: list[Any], more: bool, call: _Call) -> StubResponse:
        body = {"object": "list", "url": "/v1/payment_intents", "has_more": more, "data": data}
        return json_response(200, body, call.headers())

    async def confirm_payment_intent(self, req: ValidRequest) -> StubResponse:
        return await self._post(req, self._confirm_intent)

    # --- the request frame: credentials, ids, idempotency --------------------------------

    def _call(self, request: StubRequest) -> _Call:
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        return _Call(
            request_id=new_id("req", 14),
            created=int(self._now().timestamp()),
            version=request.headers.get("stripe-version") or self.version,
            idempotency_key=key,
        )

    def _denied(self, headers: Mapping[str, str], call: _Call) -> StubResponse | None:
        """401 unless the request carries an accepted secret key (Stripe checks this first),
        as a bearer token or as HTTP Basic's user name (``curl -u sk_test_...:``)."""
        basic = basic_credentials(headers)
        key = bearer_token(headers) or (basic[0] if basic else None)
        if key is None:
            return call.error(401, logged=False, type=_INVALID, message=_NO_KEY)
        accepted = _SECRET_KEY.match(key) if self.api_keys is None else key in self.api_keys
        if accepted:
            return None
        return call.error(
            401, logged=False, type=_INVALID, message=f"Invalid API Key provided: {_mask(key)}"
        )

    async def _post(self, req: ValidRequest, work: _Work) -> StubResponse:
        """Run a POST once per Idempotency-Key: replay the stored answer to a retry,
        refuse the key for other parameters or while its first request still runs."""
        call = self._call(req.request)
        denied = self._denied(req.request.headers, call)
        if denied is not None:
            return denied
        key = call.idempotency_key
        if key is None:
            answer, writes = await work(req, call)
            if writes:
                await self.ctx.db.execute_all(writes)
            return answer
        endpoint = req.request.path
        claimed = await self.idempotency.claim(
            key, endpoint, fingerprint(req.body), call.request_id
        )
        if isinstance(claimed, Replay):
            return json_response(claimed.status, claimed.body, call.headers(claimed.request_id))
        if isinstance(claimed, Conflict):
            return _key_conflict(claimed, key, call)
        try:
            answer, writes = await work(req, call)
            if writes is not None:
                await self.idempotency.complete(key, answer.status, answer.body, writes)
        except BaseException:
            await self.idempotency.release(key)
            raise
        if writes is None:
            await self.idempotency.release(key)
        return answer

    # --- PaymentIntents ------------------------------------------------------------

    async def _create_intent(self, req: ValidRequest, call: _Call) -> tuple[StubResponse, _Kept]:
        """Create, and confirm with the test payment method when ``confirm=true``; a
        declined intent is kept (as Stripe keeps it) and named in the 402."""
        params: dict[str, Any] = req.body
        refused = self._refuse_intent(params, call)
        if refused is not None:
            return refused, None
        intent, declined = _new_intent(params, call), None
        if params.get("confirm"):
            intent, declined = _confirm(intent, self.test_methods[params["payment_method"]], params)
        row = {
            "id": intent["id"],
            "amount_received": intent["amount_received"],
            "amount_refunded": 0,
            "data": intent,
            "test_method": params.get("payment_method"),
        }
        created: list[Write] = [(insert_into(self.intents), row)]
        if declined is not None:
            return call.error(402, **declined, payment_intent=intent), created
        return json_response(200, intent, call.headers()), created

    def _refuse_intent(self, params: Mapping[str, Any], call: _Call) -> StubResponse | None:
        """The 400s Stripe answers before it creates a PaymentIntent."""
        amount, currency = params["amount"], params["currency"]
        method = params.get("payment_method")
        if amount < _MINIMUM_CHARGE.get(currency, 0):
            return call.error(
                400,
                type=_INVALID,
                code="amount_too_small",
                doc_url=_doc_url("amount_too_small"),
                message=f"Amount must be at least "
                f"{_money(_MINIMUM_CHARGE[currency], currency)} {currency}",
                param="amount",
            )
        if method is not None and method not in self.test_methods:
            return call.error(
                400,
                type=_INVALID,
                code="resource_missing",
                doc_url=_doc_url("resource_missing"),
                message=f"No such PaymentMethod: '{method}'",
                param="payment_method",
            )
        if params.get("confirm") and method is None:
            return call.error(400, type=_INVALID, message=_NO_PAYMENT_METHOD)
        if _needs_return_url(params):
            return call.error(400, type=_INVALID, message=_RETURN_URL_REQUIRED)
        return None

    async def _confirm_intent(self, req: ValidRequest, call: _Call) -> tuple[StubResponse, _Kept]:
        """Attempt the charge of an existing PaymentIntent, with the payment method given
        here or the one it has; only one waiting for a payment method or a confirmation
        can be confirmed."""
        params: dict[str, Any] = req.body or {}
        intent_id = req.params["path"]["intent"]
        table = self.intents
        async with self.ctx.db.connect() as conn:
            row = (await conn.execute(select(table).where(table.c.id == intent_id))).first()
        if row is None:
            return _no_such_intent(intent_id, "intent", call), None
        intent: dict[str, Any] = dict(row.data)
        method = params.get("payment_method") or row.test_method
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            return call.error(
                400,
                type=_INVALID,
                code="payment_intent_unexpected_state",
                doc_url=_doc_url("payment_intent_unexpected_state"),
                message=f"This PaymentIntent's status is {intent['status']}, which does not "
                "allow it to be confirmed.",
            ), None
        if method is None:
            return call.error(400, type=_INVALID, message=_NO_PAYMENT_METHOD), None
        if method not in self.test_methods:
            return call.error(
                400,
                type=_INVALID,
                code="resource_missing",
                doc_url=_doc_url("resource_missing"),
                message=f"No such PaymentMethod: '{method}'",
                param="payment_method",
            ), None
        if params.get("payment_method") or intent["payment_method"] is None:
            intent["payment_method"] = new_id("pm", 24)
        intent["last_payment_error"] = None
        intent, declined = _confirm(intent, self.test_methods[method], params)
        await self.ctx.db.execute(
            table.update()
            .where(table.c.id == intent_id)
            .values(data=intent, amount_received=intent["amount_received"], test_method=method)
        )
        if declined is not None:
            return call.error(402, **declined, payment_intent=intent), []
        return json_response(200, intent, call.headers()), []

    # --- Refunds -------------------------------------------------------------------

    async def _create_refund(self, req: ValidRequest, call: _Call) -> tuple[StubResponse, _Kept]:
        """Refund what is left (or ``amount`` of it). The conditional UPDATE keeps two
        racing refunds from refunding more than was received; the loser looks again."""
        params: dict[str, Any] = req.body
        intent_id = params["payment_intent"]
        table = self.intents
        while True:
            async with self.ctx.db.begin() as conn:
                row = (await conn.execute(select(table).where(table.c.id == intent_id))).first()
                if row is None:
                    return _no_such_intent(intent_id, "payment_intent", call, 404), None
                remaining = row.amount_received - row.amount_refunded
                refused = _refuse_refund(row.data, remaining, params.get("amount"), call)
                if refused is not None:
                    return refused, None
                amount = params.get("amount", remaining)
                updated = await conn.execute(
                    table.update()
                    .where(table.c.id == intent_id)
                    .where(table.c.amount_refunded + amount <= table.c.amount_received)
                    .values(amount_refunded=table.c.amount_refunded + amount)
                )
                if updated.rowcount == 1:
                    refund = _new_refund(row.data, amount, params, call)
                    await conn.execute(
                        self.refunds.insert().values(
                            id=refund["id"], payment_intent=intent_id, data=refund
                        )
                    )
                    return json_response(200, refund, call.headers()), []

    # --- the engine's own errors, in Stripe's format ---------------------------------------

    def _render_engine_error(self, found: Problem, request: StubRequest) -> StubResponse:
        """Stripe checks the key first, then answers an unknown URL with 404 and a bad
        parameter with 400 naming the first offending ``param``."""
        call = self._call(request)
        denied = self._denied(request.headers, call)
        if denied is not None:
            return denied
        if found.slug in ("not-found", "method-not-allowed"):
            return call.error(
                404,
                type=_INVALID,
                message=f"Unrecognized request URL ({request.method}: {request.path}). Please "
                "see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        errors = field_errors(found)
        if not errors:
            return call.error(400, type=_INVALID, message=found.detail)
        if errors[0].location == "path":  # a malformed id names no object
            intent_id = unquote(request.path.rstrip("/").rsplit("/", 1)[-1])
            return _no_such_intent(intent_id, errors[0].path[0], call)
        sent = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        return call.error(400, **_param_error(errors[0], sent))


def _no_such_intent(intent_id: str, param: str, call: _Call, status: int = 404) -> StubResponse:
    return call.error(
        status,
        type=_INVALID,
        code="resource_missing",
        doc_url=_doc_url("resource_missing"),
        message=f"No such payment_intent: '{intent_id}'",
        param=param,
    )


def _key_conflict(conflict: Conflict, key: str, call: _Call) -> StubResponse:
    if conflict is Conflict.IN_PROGRESS:
        return call.error(
            409,
            type="idempotency_error",
            code="idempotency_key_in_use",
            doc_url=_doc_url("idempotency_key_in_use"),
            message=_KEY_IN_USE.format(key=key),
        )
    what = "endpoint" if conflict is Conflict.OTHER_ENDPOINT else "parameters"
    return call.error(400, type="idempotency_error", message=_KEY_REUSED.format(what=what, key=key))


def _seeded_intent(order: Mapping[str, Any]) -> dict[str, Any]:
    """A seed order's PaymentIntent: confirmed and succeeded with its test card."""
    intent_id, amount = str(order["provider_payment_id"]), int(order["total_amount"])
    created = int(datetime.fromisoformat(order["created_at"].replace("Z", "+00:00")).timestamp())
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_seed000000000000000000",
        "confirmation_method": "automatic",
        "created": created,
        "currency": order["currency"],
        "customer": None,
        "description": f"Order {order['order_id']}",
        "last_payment_error": None,
        "latest_charge": "ch_3PqR7sT2uV9wX1yZ0seedChg",
        "livemode": False,
        "metadata": {"order_id": order["order_id"]},
        "next_action": None,
        "payment_method": "pm_1PqR7sT2uV9wX1yZ0seedPm0",
        "payment_method_types": ["card"],
        "status": "succeeded",
        "canceled_at": None,
        "cancellation_reason": None,
    }


def _new_intent(params: Mapping[str, Any], call: _Call) -> dict[str, Any]:
    """A PaymentIntent as created, before any confirmation."""
    intent_id = new_id("pi", 24)
    attached = params.get("payment_method") is not None
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": params["amount"],
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": params.get("capture_method", "automatic"),
        "client_secret": new_id(f"{intent_id}_secret", 25),
        "confirmation_method": "automatic",
        "created": call.created,
        "currency": params["currency"],
        "customer": None,
        "description": params.get("description"),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": params.get("metadata", {}),
        "next_action": None,
        "payment_method": new_id("pm", 24) if attached else None,
        "payment_method_types": params.get("payment_method_types") or ["card"],
        "status": "requires_confirmation" if attached else "requires_payment_method",
        "canceled_at": None,
        "cancellation_reason": None,
    }


def _confirm(
    intent: dict[str, Any], method: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The intent after a charge attempt with a test payment method, and the card error
    when it was declined. The outcome and status come from the spec's table."""
    outcome, status = method["outcome"], method["payment_intent_status"]
    if outcome == "requires_action":
        action = _next_action(intent["id"], params.get("return_url"))
        return intent | {"status": status, "next_action": action}, None
    charge = new_id("ch", 24)
    if outcome == "card_error":
        error = _card_error(method, charge)
        failed = {"id": intent["payment_method"], "object": "payment_method", "type": "card"}
        return intent | {
            "status": status,
            "latest_charge": charge,
            "last_payment_error": error | {"payment_method": failed},
            "payment_method": None,
        }, error
    if outcome != "succeeded":
        raise LookupError(f"x-test-payment-methods: unknown outcome '{outcome}'")
    if intent["capture_method"] == "manual":  # authorized only, captured later
        return intent | {
            "status": "requires_capture",
            "amount_capturable": intent["amount"],
            "latest_charge": charge,
        }, None
    return intent | {
        "status": status,
        "amount_received": intent["amount"],
        "latest_charge": charge,
    }, None


def _card_error(method: Mapping[str, Any], charge: str) -> dict[str, Any]:
    """The ``card_error`` of a declining test method (what does not apply is left out)."""
    fields = {
        "type": "card_error",
        "code": method["code"],
        "decline_code": method.get("decline_code"),
        "message": method["message"],
        "advice_code": method.get("advice_code"),
        "param": method.get("param"),
        "charge": charge,
        "doc_url": _doc_url(method["code"]),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _refuse_refund(
    intent: Mapping[str, Any], remaining: int, amount: int | None, call: _Call
) -> StubResponse | None:
    """Stripe's 400s for a refund: nothing charged, nothing left, or more than is left."""
    if intent["status"] != "succeeded":
        return call.error(
            400,
            type=_INVALID,
            message=f"This PaymentIntent ({intent['id']}) does not have a successful charge "
            "to refund.",
        )
    if remaining <= 0:
        return call.error(
            400,
            type=_INVALID,
            code="charge_already_refunded",
            doc_url=_doc_url("charge_already_refunded"),
            message=f"Charge {intent['latest_charge']} has already been refunded.",
        )
    if amount is not None and amount > remaining:
        currency = intent["currency"]
        return call.error(
            400,
            type=_INVALID,
            message=f"Refund amount ({_money(amount, currency)}) is greater than unrefunded "
            f"amount on charge ({_money(remaining, currency)})",
            param="amount",
        )
    return None


def _new_refund(
    intent: Mapping[str, Any], amount: int, params: Mapping[str, Any], call: _Call
) -> dict[str, Any]:
    """A card refund: it succeeds at once in test mode."""
    return {
        "id": new_id("re", 24),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn", 24),
        "charge": intent["latest_charge"],
        "created": call.created,
        "currency": intent["currency"],
        "metadata": params.get("metadata", {}),
        "payment_intent": intent["id"],
        "reason": params.get("reason"),
        "receipt_number": None,
        "status": "succeeded",
    }
