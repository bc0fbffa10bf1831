"""The external providers' simulators (Stripe, SendGrid, Twilio) answer as the real APIs
do for their test values, through HTTP, on both backends.

Every answer is also checked against the response its spec documents (schema and
required headers): the engine checks behaviours' answers itself, but not the errors a
simulator renders for the engine's own validation failures.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from conftest import asgi_client
from ecom_harness.stubs import StubHost
from ecom_harness.stubs.behaviours._providers import (
    IdempotencyStore,
    MessagingSimulator,
    Replay,
    fingerprint,
)
from ecom_harness.stubs.behaviours.stripe import StripeSimulator
from ecom_harness.stubs.behaviours.twilio import segments

HostFactory = Callable[..., Awaitable[StubHost]]

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
CHARGE = {
    "amount": "4999",
    "currency": "eur",
    "confirm": "true",
    "return_url": "https://shop.example.com/checkout/return",
    "metadata[order_id]": "ord_7Hq2Kd9xLm",
}
ACCOUNT = "AC" + "3f9a1c2b7d4e5f60718293a4b5c6d7e8"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
SMS = {"To": "+4915112345678", "From": "+15005550006", "Body": "Your order has shipped."}
MAIL = {
    "personalizations": [
        {
            "to": [{"email": "ada@example.com"}],
            "dynamic_template_data": {"order_id": "ord_7Hq2Kd9xLm", "items": [{"sku": "SKU-1002"}]},
        }
    ],
    "from": {"email": "orders@shop.example.com", "name": "Example Shop"},
    "template_id": "d-8096b58bf1f64c2fac8c3a0d6e57d4a9",
    "custom_args": {"order_id": "ord_7Hq2Kd9xLm"},
}


def assert_documented(host: StubHost, component: str, operation_id: str, r: httpx.Response) -> None:
    """The answer is one its spec documents: status, body schema, required headers."""
    api = host.stubs[component].api
    spec = api.operations[operation_id].responses[str(r.status_code)]
    for name, header in spec.headers.items():
        if header.get("required"):
            pattern = (header.get("schema") or {}).get("pattern", "")
            assert re.search(pattern, r.headers[name]), (name, r.headers.get(name))
    if spec.content:
        media = spec.content[r.headers["content-type"]]
        assert media.schema_pointer is not None
        assert api.schemas.violations(media.schema_pointer, r.json()) == [], r.json()
    else:
        assert r.content == b""


def stripe(host: StubHost, key: str = STRIPE_KEY) -> httpx.AsyncClient:
    return asgi_client(host, "stripe", Authorization=f"Bearer {key}")


def spec_table(host: StubHost, component: str, extension: str) -> Mapping[str, Any]:
    table: Mapping[str, Any] = host.stubs[component].api.document.data[extension]
    return table


async def sent(host: StubHost, component: str) -> list[dict[str, Any]]:
    """What a messaging provider's simulator recorded as sent."""
    simulator = host.stubs[component].simulator
    assert isinstance(simulator, MessagingSimulator)
    return await simulator.sent_messages()


async def intent_count(host: StubHost) -> int:
    async with host.stubs["stripe"].db.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(StripeSimulator.intents))
    return int(count or 0)


# --- Stripe: PaymentIntents ----------------------------------------------------------------


async def test_stripe_charge_succeeds_and_reads_back(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    async with stripe(host) as c:
        r = await c.post("/v1/payment_intents", data=CHARGE | {"payment_method": "pm_card_visa"})
        assert r.status_code == 200, r.text
        assert_documented(host, "stripe", "createPaymentIntent", r)
        intent = r.json()
        assert intent["status"] == "succeeded"
        assert intent["amount_received"] == 4999
        assert intent["metadata"] == {"order_id": "ord_7Hq2Kd9xLm"}
        assert intent["latest_charge"].startswith("ch_")
        assert r.headers["stripe-version"] == "2024-06-20"
        again = await c.get(f"/v1/payment_intents/{intent['id']}")
        assert again.status_code == 200
        assert again.json() == intent
        assert again.headers["request-id"] != r.headers["request-id"]


async def test_stripe_declines_follow_the_spec_table(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    declines = {
        pm: row
        for pm, row in spec_table(host, "stripe", "x-test-payment-methods").items()
        if row["outcome"] == "card_error"
    }
    assert len(declines) >= 10
    async with stripe(host) as c:
        for pm, row in declines.items():
            r = await c.post("/v1/payment_intents", data=CHARGE | {"payment_method": pm})
            assert r.status_code == row["http_status"] == 402, (pm, r.text)
            assert_documented(host, "stripe", "createPaymentIntent", r)
            error = r.json()["error"]
            expected = {k: row[k] for k in ("code", "decline_code", "message", "param")}
            assert {k: error.get(k) for k in expected} == expected, pm
            assert error["type"] == "card_error"
            intent = error["payment_intent"]
            assert intent["status"] == row["payment_intent_status"] == "requires_payment_method"
            assert intent["amount_received"] == 0
            assert intent["last_payment_error"]["decline_code"] == row["decline_code"]
            stored = await c.get(f"/v1/payment_intents/{intent['id']}")
            assert stored.json()["status"] == "requires_payment_method", pm
    assert await intent_count(host) == len(declines)


async def test_stripe_3ds_and_manual_capture(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    async with stripe(host) as c:
        r = await c.post(
            "/v1/payment_intents", data=CHARGE | {"payment_method": "pm_card_threeDSecure2Required"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "requires_action"
        assert r.json()["next_action"]["redirect_to_url"]["return_url"] == CHARGE["return_url"]
        r = await c.post(
            "/v1/payment_intents",
            data=CHARGE | {"payment_method": "pm_card_mastercard", "capture_method": "manual"},
        )
        assert r.status_code == 200, r.text
        intent = r.json()
        assert (intent["status"], intent["amount_capturable"], intent["amount_received"]) == (
            "requires_capture",
            4999,
            0,
        )


async def test_stripe_unknown_payment_method_is_resource_missing(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    async with stripe(host) as c:
        r = await c.post("/v1/payment_intents", data=CHARGE | {"payment_method": "pm_card_bogus"})
    assert r.status_code == 400
    assert_documented(host, "stripe", "createPaymentIntent", r)
    error = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "resource_missing",
        "payment_method",
    )
    assert error["message"] == "No such PaymentMethod: 'pm_card_bogus'"
    assert await intent_count(host) == 0


async def test_stripe_refuses_confirmation_it_cannot_do(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    no_return_url = {k: v for k, v in CHARGE.items() if k != "return_url"}
    async with stripe(host) as c:
        r = await c.post(
            "/v1/payment_intents", data=no_return_url | {"payment_method": "pm_card_visa"}
        )
        assert r.status_code == 400
        assert "`return_url`" in r.json()["error"]["message"]
        r = await c.post("/v1/payment_intents", data=CHARGE)
        assert r.status_code == 400
        assert "missing a payment method" in r.json()["error"]["message"]
        r = await c.post(
            "/v1/payment_intents", data=CHARGE | {"amount": "30", "payment_method": "pm_card_visa"}
        )
        assert r.status_code == 400
        assert_documented(host, "stripe", "createPaymentIntent", r)
        assert r.json()["error"]["code"] == "amount_too_small"
        assert r.json()["error"]["message"] == "Amount must be at least €0.50 eur"
    assert await intent_count(host) == 0


async def test_stripe_rejects_keys_before_anything_else(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    masked = {
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc": "sk_live_********************p7dc",
        "pk_test_4eC39HqLyjWDarjtT1zdp7dc": "pk_test_********************p7dc",
        "Bearer-ish-garbage": "**************bage",
    }
    for key, shown in masked.items():
        async with stripe(host, key) as c:
            r = await c.post(
                "/v1/payment_intents", data=CHARGE | {"payment_method": "pm_card_visa"}
            )
            invalid = await c.post("/v1/payment_intents", data={"bogus": "1"})
            read = await c.get("/v1/payment_intents/pi_3PqR7sLkdIwHu7ix0Ab1Cd2E")
        for answer, operation_id in (
            (r, "createPaymentIntent"),
            (invalid, "createPaymentIntent"),
            (read, "getPaymentIntent"),
        ):
            assert answer.status_code == 401, (key, answer.text)
            assert_documented(host, "stripe", operation_id, answer)
            assert answer.json() == {
                "error": {
                    "type": "invalid_request_error",
                    "message": f"Invalid API Key provided: {shown}",
                }
            }
    async with asgi_client(host, "stripe") as c:
        r = await c.post("/v1/payment_intents", data=CHARGE)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert await intent_count(host) == 0


async def test_stripe_accepts_only_configured_keys(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"], settings={"stripe": {"api_keys": ["sk_test_mine"]}})
    async with stripe(host, "sk_test_mine") as c:
        assert (await c.get("/v1/payment_intents/pi_123")).status_code == 404
    async with stripe(host, STRIPE_KEY) as c:
        assert (await c.get("/v1/payment_intents/pi_123")).status_code == 401


async def test_stripe_engine_errors_are_stripe_errors(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    cases = [
        ({"currency": "eur"}, "parameter_missing", "amount", "Missing required param: amount."),
        (
            {"amount": "4999", "currency": "eur", "order_id": "ord_1"},
            "parameter_unknown",
            "order_id",
            "Received unknown parameter: order_id",
        ),
        (
            {"amount": "abc", "currency": "eur"},
            "parameter_invalid_integer",
            "amount",
            "Invalid integer: abc",
        ),
    ]
    async with stripe(host) as c:
        for form, code, param, message in cases:
            r = await c.post("/v1/payment_intents", data=form, headers={"Idempotency-Key": "k1"})
            assert r.status_code == 400, r.text
            assert r.headers["content-type"] == "application/json"
            assert_documented(host, "stripe", "createPaymentIntent", r)
            error = r.json()["error"]
            assert (error["type"], error["code"], error["param"], error["message"]) == (
                "invalid_request_error",
                code,
                param,
                message,
            )
            assert r.headers["idempotency-key"] == "k1"
        nested = await c.post(
            "/v1/payment_intents", data=CHARGE | {"automatic_payment_methods[bogus]": "x"}
        )
        assert nested.json()["error"]["param"] == "automatic_payment_methods[bogus]"
        malformed = await c.get("/v1/payment_intents/not-an-id")
        assert malformed.status_code == 404
        assert_documented(host, "stripe", "getPaymentIntent", malformed)
        assert malformed.json()["error"]["message"] == "No such payment_intent: 'not-an-id'"
        unknown = await c.get("/v1/customers")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"].startswith("Unrecognized request URL (GET:")
        # A request refused by validation stores nothing under its key: k1 is still free.
        fresh = await c.post(
            "/v1/payment_intents",
            data=CHARGE | {"payment_method": "pm_card_visa"},
            headers={"Idempotency-Key": "k1"},
        )
        assert fresh.status_code == 200


async def test_stripe_get_unknown_intent_is_404(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    async with stripe(host) as c:
        r = await c.get("/v1/payment_intents/pi_3PqR7sLkdIwHu7ix0Zz0Zz0Z")
    assert r.status_code == 404
    assert_documented(host, "stripe", "getPaymentIntent", r)
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("resource_missing", "intent")
    assert error["message"] == "No such payment_intent: 'pi_3PqR7sLkdIwHu7ix0Zz0Zz0Z'"


# --- Stripe: idempotency -------------------------------------------------------------------


async def test_stripe_idempotent_replay_returns_the_same_answer(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    async with stripe(host) as c:
        for pm, status in (("pm_card_visa", 200), ("pm_card_chargeDeclined", 402)):
            key = {"Idempotency-Key": f"pay_K3s9Vx2QmT-{pm}"}
            form = CHARGE | {"payment_method": pm}
            first = await c.post("/v1/payment_intents", data=form, headers=key)
            retry = await c.post("/v1/payment_intents", data=form, headers=key)
            assert first.status_code == retry.status_code == status
            assert retry.json() == first.json()
            assert_documented(host, "stripe", "createPaymentIntent", retry)
            assert "idempotent-replayed" not in first.headers
            assert retry.headers["idempotent-replayed"] == "true"
            assert retry.headers["original-request"] == first.headers["request-id"]
            assert retry.headers["request-id"] != first.headers["request-id"]
            assert retry.headers["idempotency-key"] == key["Idempotency-Key"]
    assert await intent_count(host) == 2


async def test_stripe_key_reused_with_other_parameters(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    key = {"Idempotency-Key": "pay_K3s9Vx2QmT-attempt-1"}
    async with stripe(host) as c:
        first = await c.post(
            "/v1/payment_intents", data=CHARGE | {"payment_method": "pm_card_visa"}, headers=key
        )
        other = await c.post(
            "/v1/payment_intents",
            data=CHARGE | {"payment_method": "pm_card_visa", "amount": "5000"},
            headers=key,
        )
        elsewhere = await c.post(
            "/v1/refunds", data={"payment_intent": first.json()["id"]}, headers=key
        )
    assert other.status_code == 400
    assert_documented(host, "stripe", "createPaymentIntent", other)
    assert other.json()["error"]["type"] == "idempotency_error"
    assert "same parameters" in other.json()["error"]["message"]
    assert "'pay_K3s9Vx2QmT-attempt-1'" in other.json()["error"]["message"]
    assert elsewhere.status_code == 400
    assert_documented(host, "stripe", "createRefund", elsewhere)
    assert "same endpoint" in elsewhere.json()["error"]["message"]
    assert await intent_count(host) == 1


async def test_stripe_keeps_an_intent_with_its_keys_answer(
    host_factory: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PaymentIntent a keyed request made and the answer its Idempotency-Key keeps
    are one write (one round trip on PostgreSQL, issue 15): when that write fails,
    neither is kept -- no intent that a replay would not name, and the key is free."""
    from sqlalchemy.exc import OperationalError

    host = await host_factory(["stripe"])
    db = host.stubs["stripe"].db
    together = db.execute_all

    async def lost(writes: Any) -> None:
        raise OperationalError("INSERT", {}, ConnectionResetError("the server went away"))

    visa, key = CHARGE | {"payment_method": "pm_card_visa"}, {"Idempotency-Key": "k-lost"}
    async with stripe(host) as c:
        monkeypatch.setattr(db, "execute_all", lost)
        with pytest.raises(OperationalError):  # the test client raises what the app did
            await c.post("/v1/payment_intents", data=visa, headers=key)
        assert await intent_count(host) == 0
        monkeypatch.setattr(db, "execute_all", together)
        again = await c.post("/v1/payment_intents", data=visa, headers=key)
        replayed = await c.post("/v1/payment_intents", data=visa, headers=key)
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == again.json() and await intent_count(host) == 1


async def test_stripe_key_in_use_is_409(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    simulator = host.stubs["stripe"].simulator
    assert isinstance(simulator, StripeSimulator)
    form = CHARGE | {"payment_method": "pm_card_visa"}
    # The first request with this key is still running (claimed, not finished).
    claimed = await simulator.idempotency.claim(
        "k-running", "/v1/payment_intents", fingerprint({}), "req_first"
    )
    assert claimed is None
    async with stripe(host) as c:
        r = await c.post("/v1/payment_intents", data=form, headers={"Idempotency-Key": "k-running"})
    assert r.status_code == 409
    assert_documented(host, "stripe", "createPaymentIntent", r)
    assert r.json()["error"]["code"] == "idempotency_key_in_use"


async def test_stripe_keys_expire(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"], settings={"stripe": {"idempotency_ttl_seconds": 60}})
    simulator = host.stubs["stripe"].simulator
    assert isinstance(simulator, StripeSimulator)
    key = {"Idempotency-Key": "k-old"}
    async with stripe(host) as c:
        first = await c.post(
            "/v1/payment_intents", data=CHARGE | {"payment_method": "pm_card_visa"}, headers=key
        )
        later = simulator.ctx.clock() + timedelta(seconds=61)
        simulator.ctx.clock = lambda: later
        second = await c.post(
            "/v1/payment_intents", data=CHARGE | {"payment_method": "pm_card_amex"}, headers=key
        )
    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]


async def test_stripe_prunes_expired_keys(host_factory: HostFactory) -> None:
    """An expired key was dropped only when it came again, so every call's key stayed
    (issue 15, flat memory): a later claim prunes the expired ones."""
    from sqlalchemy import select

    host = await host_factory(["stripe"], settings={"stripe": {"idempotency_ttl_seconds": 60}})
    simulator = host.stubs["stripe"].simulator
    assert isinstance(simulator, StripeSimulator)
    table = simulator.idempotency_keys
    visa = CHARGE | {"payment_method": "pm_card_visa"}

    async def stored() -> list[str]:
        async with simulator.ctx.db.connect() as conn:
            return list((await conn.execute(select(table.c.key).order_by(table.c.key))).scalars())

    async with stripe(host) as c:
        for key in ("k-1", "k-2"):
            await c.post("/v1/payment_intents", data=visa, headers={"Idempotency-Key": key})
        assert await stored() == ["k-1", "k-2"]
        later = simulator.ctx.clock() + timedelta(seconds=61)
        simulator.ctx.clock = lambda: later
        await c.post("/v1/payment_intents", data=visa, headers={"Idempotency-Key": "k-3"})
        assert await stored() == ["k-3"]


async def test_idempotency_store_keeps_only_finished_answers(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    simulator = host.stubs["stripe"].simulator
    assert isinstance(simulator, StripeSimulator)
    store: IdempotencyStore = simulator.idempotency
    digest = fingerprint({"amount": 1})
    assert await store.claim("k", "/v1/refunds", digest, "req_a") is None
    await store.release("k")
    assert await store.claim("k", "/v1/refunds", digest, "req_b") is None
    await store.complete("k", 200, {"id": "re_1"})
    replay = await store.claim("k", "/v1/refunds", digest, "req_c")
    assert replay == Replay(200, {"id": "re_1"}, "req_b")


# --- Stripe: refunds -----------------------------------------------------------------------


async def _charge(c: httpx.AsyncClient, pm: str = "pm_card_visa") -> dict[str, Any]:
    r = await c.post("/v1/payment_intents", data=CHARGE | {"payment_method": pm})
    body: dict[str, Any] = r.json()
    return body if r.status_code == 200 else body["error"]["payment_intent"]


async def test_stripe_full_refund_then_already_refunded(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    async with stripe(host) as c:
        intent = await _charge(c)
        r = await c.post(
            "/v1/refunds",
            data={"payment_intent": intent["id"], "reason": "requested_by_customer"},
        )
        assert r.status_code == 200, r.text
        assert_documented(host, "stripe", "createRefund", r)
        refund = r.json()
        assert (refund["amount"], refund["status"], refund["reason"]) == (
            4999,
            "succeeded",
            "requested_by_customer",
        )
        assert (refund["payment_intent"], refund["charge"]) == (
            intent["id"],
            intent["latest_charge"],
        )
        again = await c.post("/v1/refunds", data={"payment_intent": intent["id"]})
    assert again.status_code == 400
    assert_documented(host, "stripe", "createRefund", again)
    assert again.json()["error"]["code"] == "charge_already_refunded"
    assert again.json()["error"]["message"] == (
        f"Charge {intent['latest_charge']} has already been refunded."
    )


async def test_stripe_partial_refund_then_the_rest(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    async with stripe(host) as c:
        intent = await _charge(c)
        part = await c.post("/v1/refunds", data={"payment_intent": intent["id"], "amount": "1500"})
        assert part.status_code == 200
        assert part.json()["amount"] == 1500
        over = await c.post("/v1/refunds", data={"payment_intent": intent["id"], "amount": "4000"})
        assert over.status_code == 400
        assert_documented(host, "stripe", "createRefund", over)
        assert over.json()["error"]["param"] == "amount"
        assert over.json()["error"]["message"] == (
            "Refund amount (€40.00) is greater than unrefunded amount on charge (€34.99)"
        )
        rest = await c.post("/v1/refunds", data={"payment_intent": intent["id"]})
        assert rest.status_code == 200
        assert rest.json()["amount"] == 3499
        assert rest.json()["id"] != part.json()["id"]
        done = await c.post("/v1/refunds", data={"payment_intent": intent["id"], "amount": "1"})
        assert done.json()["error"]["code"] == "charge_already_refunded"
        # The intent itself stays succeeded: refunds belong to its charge.
        assert (await c.get(f"/v1/payment_intents/{intent['id']}")).json()["status"] == "succeeded"


async def test_stripe_refunds_need_a_successful_charge(host_factory: HostFactory) -> None:
    host = await host_factory(["stripe"])
    async with stripe(host) as c:
        declined = await _charge(c, "pm_card_chargeDeclinedInsufficientFunds")
        r = await c.post("/v1/refunds", data={"payment_intent": declined["id"]})
        missing = await c.post(
            "/v1/refunds", data={"payment_intent": "pi_3PqR7sLkdIwHu7ix0Zz0Zz0Z"}
        )
    assert r.status_code == 400
    assert_documented(host, "stripe", "createRefund", r)
    assert r.json()["error"]["message"] == (
        f"This PaymentIntent ({declined['id']}) does not have a successful charge to refund."
    )
    assert missing.status_code == 404
    assert_documented(host, "stripe", "createRefund", missing)
    assert (missing.json()["error"]["code"], missing.json()["error"]["param"]) == (
        "resource_missing",
        "payment_intent",
    )


# --- SendGrid ------------------------------------------------------------------------------


def sendgrid(
    host: StubHost,
    key: str = "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",
) -> httpx.AsyncClient:
    return asgi_client(host, "sendgrid", Authorization=f"Bearer {key}")


async def test_sendgrid_accepts_and_records(host_factory: HostFactory) -> None:
    host = await host_factory(["sendgrid"])
    inline = {
        "personalizations": [
            {"to": [{"email": "ada@example.com"}], "subject": "Your order is confirmed"},
            {"to": [{"email": "bob@example.com"}, {"email": "cy@example.com"}]},
        ],
        "from": {"email": "orders@shop.example.com"},
        "subject": "Order update",
        "content": [
            {"type": "text/plain", "value": "Thanks!"},
            {"type": "text/html", "value": "<p>Thanks!</p>"},
        ],
    }
    async with sendgrid(host) as c:
        templated = await c.post("/v3/mail/send", json=MAIL)
        plain = await c.post("/v3/mail/send", json=inline)
    for r in (templated, plain):
        assert r.status_code == 202, r.text
        assert_documented(host, "sendgrid", "sendMail", r)
    messages = await sent(host, "sendgrid")
    assert [m["to"] for m in messages] == [
        ["ada@example.com"],
        ["ada@example.com"],
        ["bob@example.com", "cy@example.com"],
    ]
    first = messages[0]
    assert first["message_id"] == templated.headers["x-message-id"]
    assert first["from"] == "orders@shop.example.com"
    assert first["template_id"] == MAIL["template_id"]
    assert first["dynamic_template_data"] == {
        "order_id": "ord_7Hq2Kd9xLm",
        "items": [{"sku": "SKU-1002"}],
    }
    assert first["custom_args"] == {"order_id": "ord_7Hq2Kd9xLm"}
    assert first["sent_at"].tzinfo is not None
    assert [m["subject"] for m in messages[1:]] == ["Your order is confirmed", "Order update"]
    assert {m["message_id"] for m in messages[1:]} == {plain.headers["x-message-id"]}
    assert messages[1]["body"] == "Thanks!"


async def test_sendgrid_rejects_keys_that_are_not_sendgrid_keys(host_factory: HostFactory) -> None:
    host = await host_factory(["sendgrid"])
    async with sendgrid(host, "xkeysib-123") as c:
        r = await c.post("/v3/mail/send", json=MAIL)
        invalid = await c.post("/v3/mail/send", json={"from": {"email": "x@example.com"}})
    for answer in (r, invalid):
        assert answer.status_code == 401
        assert_documented(host, "sendgrid", "sendMail", answer)
        assert answer.json() == {
            "errors": [
                {
                    "message": "The provided authorization grant is invalid, expired, or revoked",
                    "field": None,
                    "help": None,
                }
            ]
        }
    assert await sent(host, "sendgrid") == []


async def test_sendgrid_validation_errors_are_sendgrid_errors(host_factory: HostFactory) -> None:
    host = await host_factory(["sendgrid"])
    examples = host.stubs["sendgrid"].api.operations["sendMail"].responses["400"].content
    documented = examples["application/json"].examples
    no_from = {k: v for k, v in MAIL.items() if k != "from"}
    bad_recipient = MAIL | {"personalizations": [{"to": [{"email": "not-an-address"}]}]}
    async with sendgrid(host) as c:
        r = await c.post("/v3/mail/send", json=no_from)
        bad = await c.post("/v3/mail/send", json=bad_recipient)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert_documented(host, "sendgrid", "sendMail", r)
    assert r.json() == documented["missingFrom"]
    assert bad.status_code == 400
    assert_documented(host, "sendgrid", "sendMail", bad)
    assert bad.json() == documented["invalidRecipient"]
    assert await sent(host, "sendgrid") == []


async def test_sendgrid_refuses_what_the_schema_allows(host_factory: HostFactory) -> None:
    host = await host_factory(["sendgrid"])
    bare = {
        "personalizations": [
            {"to": [{"email": "ada@example.com"}], "cc": [{"email": "ADA@example.com"}]}
        ],
        "from": {"email": "orders@shop.example.com"},
    }
    async with sendgrid(host) as c:
        r = await c.post("/v3/mail/send", json=bare)
    assert r.status_code == 400
    assert_documented(host, "sendgrid", "sendMail", r)
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["subject", "content", "personalizations.0.cc"]
    assert r.json()["errors"][0]["message"].startswith("The subject is required.")


async def test_sendgrid_unverified_sender_is_403(host_factory: HostFactory) -> None:
    host = await host_factory(
        ["sendgrid"], settings={"sendgrid": {"verified_senders": ["shop.example.com"]}}
    )
    stranger = MAIL | {"from": {"email": "orders@elsewhere.example.com"}}
    async with sendgrid(host) as c:
        refused = await c.post("/v3/mail/send", json=stranger)
        accepted = await c.post("/v3/mail/send", json=MAIL)
    assert refused.status_code == 403
    assert_documented(host, "sendgrid", "sendMail", refused)
    assert refused.json()["errors"][0]["field"] == "from"
    assert "verified Sender Identity" in refused.json()["errors"][0]["message"]
    assert accepted.status_code == 202


# --- Twilio --------------------------------------------------------------------------------


def twilio(host: StubHost, user: str = ACCOUNT, token: str = "test-token") -> httpx.AsyncClient:
    client = asgi_client(host, "twilio")
    client.auth = httpx.BasicAuth(user, token)
    return client


async def test_twilio_creates_a_queued_message(host_factory: HostFactory) -> None:
    host = await host_factory(["twilio"])
    async with twilio(host) as c:
        r = await c.post(MESSAGES, data=SMS | {"StatusCallback": "https://notify.example.com/s"})
    assert r.status_code == 201, r.text
    assert_documented(host, "twilio", "createMessage", r)
    message = r.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert (message["status"], message["account_sid"], message["to"], message["from"]) == (
        "queued",
        ACCOUNT,
        SMS["To"],
        SMS["From"],
    )
    assert re.fullmatch(
        r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", message["date_created"]
    )
    assert (message["num_segments"], message["date_sent"]) == ("1", None)
    assert message["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{message['sid']}.json"
    messages = await sent(host, "twilio")
    assert [(m["message_id"], m["to"], m["from"], m["body"]) for m in messages] == [
        (message["sid"], [SMS["To"]], SMS["From"], SMS["Body"])
    ]


async def test_twilio_magic_numbers_follow_the_spec_table(host_factory: HostFactory) -> None:
    host = await host_factory(["twilio"])
    magic = [
        (number, entry)
        for number, entries in spec_table(host, "twilio", "x-test-numbers").items()
        for entry in entries
        if entry["error_code"] is not None
    ]
    assert len(magic) >= 8
    async with twilio(host) as c:
        for number, entry in magic:
            role = "From" if entry["role"] == "from" else "To"
            r = await c.post(MESSAGES, data=SMS | {role: number})
            assert r.status_code == entry["http_status"], (number, role, r.text)
            assert_documented(host, "twilio", "createMessage", r)
            assert r.json() == {
                "code": entry["error_code"],
                "message": entry["message"],
                "more_info": f"https://www.twilio.com/docs/errors/{entry['error_code']}",
                "status": entry["http_status"],
            }
    assert await sent(host, "twilio") == []


async def test_twilio_credentials_must_name_the_account(host_factory: HostFactory) -> None:
    host = await host_factory(["twilio"], settings={"twilio": {"auth_tokens": {ACCOUNT: "secret"}}})
    other = "AC" + "0" * 32
    async with twilio(host, user=other, token="secret") as c:
        mismatch = await c.post(MESSAGES, data=SMS)
        invalid = await c.post(MESSAGES, data={"To": "12"})
    async with twilio(host, token="wrong") as c:
        wrong_token = await c.post(MESSAGES, data=SMS)
    async with twilio(host, token="secret") as c:
        right = await c.post(MESSAGES, data=SMS)
    async with twilio(host, user=other, token="anything") as c:
        own_account = await c.post(f"/2010-04-01/Accounts/{other}/Messages.json", data=SMS)
    for r in (mismatch, invalid, wrong_token):
        assert r.status_code == 401, r.text
        assert_documented(host, "twilio", "createMessage", r)
        assert (r.json()["code"], r.json()["message"]) == (20003, "Authenticate")
    assert right.status_code == 201
    assert own_account.status_code == 201  # no token configured for it: any token will do


async def test_twilio_validation_errors_are_twilio_errors(host_factory: HostFactory) -> None:
    host = await host_factory(["twilio"])
    cases = [
        ({"To": SMS["To"], "From": SMS["From"]}, 21602, "Message body is required."),
        (SMS | {"Body": ""}, 21602, "Message body is required."),
        (SMS | {"To": "12"}, 21211, "The 'To' number 12 is not a valid phone number."),
        (
            {"To": SMS["To"], "Body": "hi"},
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
        ),
        ({"From": SMS["From"], "Body": "hi"}, 21604, "A 'To' phone number is required."),
    ]
    async with twilio(host) as c:
        for form, code, message in cases:
            r = await c.post(MESSAGES, data=form)
            assert r.status_code == 400, r.text
            assert_documented(host, "twilio", "createMessage", r)
            assert (r.json()["code"], r.json()["message"]) == (code, message), form
        unknown = await c.post("/2010-04-01/Accounts/ACnope/Messages.json", data=SMS)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == 20404


async def test_twilio_messaging_service_and_test_senders(host_factory: HostFactory) -> None:
    host = await host_factory(["twilio"], settings={"twilio": {"test_senders_only": True}})
    service = "MG9c1b2a3d4e5f60718293a4b5c6d7e8f9"
    via_service = {"To": SMS["To"], "MessagingServiceSid": service, "Body": "hi"}
    async with twilio(host) as c:
        accepted = await c.post(MESSAGES, data=via_service)
        foreign = await c.post(MESSAGES, data=SMS | {"From": "+4915100000000"})
        recipient_only = await c.post(MESSAGES, data=SMS | {"From": "+15005550002"})
    assert accepted.status_code == 201
    assert_documented(host, "twilio", "createMessage", accepted)
    assert (accepted.json()["status"], accepted.json()["from"]) == ("accepted", None)
    assert accepted.json()["messaging_service_sid"] == service
    for refused in (foreign, recipient_only):  # +15005550002 is magic only as a To
        assert refused.status_code == 400
        assert_documented(host, "twilio", "createMessage", refused)
        assert refused.json()["code"] == 21606


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("hi", 1),
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("😀" * 35, 1),
        ("ü" + "ł" * 70, 2),
    ],
)
def test_sms_segments(body: str, expected: int) -> None:
    assert segments(body) == expected
