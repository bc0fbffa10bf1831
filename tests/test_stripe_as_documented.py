"""The Stripe simulator used as Stripe's own documentation uses Stripe: the secret key by
HTTP Basic (``curl -u sk_test_...:``), confirming a PaymentIntent after a decline, listing
PaymentIntents with cursors, and arrays in the bracket form of Stripe's curl examples."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from conftest import asgi_client
from ecom_harness.stubs import StubHost

KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"


def basic(user: str, password: str = "") -> dict[str, str]:
    """What ``curl -u user:password`` sends."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def stripe(
    host_factory: Callable[..., Awaitable[StubHost]],
) -> AsyncIterator[httpx.AsyncClient]:
    host = await host_factory(["stripe"])
    async with asgi_client(host, "stripe") as client:
        yield client


async def create(client: httpx.AsyncClient, form: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/v1/payment_intents",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )


CHARGE = "amount=4999&currency=eur&payment_method=pm_card_visa&confirm=true"


async def test_the_secret_key_by_http_basic_as_in_stripes_curl_examples(
    stripe: httpx.AsyncClient,
) -> None:
    created = await create(stripe, CHARGE + "&return_url=https://shop.example.com/r", **basic(KEY))
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "succeeded"
    read = await stripe.get(f"/v1/payment_intents/{created.json()['id']}", headers=basic(KEY))
    assert read.status_code == 200, read.text
    wrong = await create(stripe, CHARGE, **basic("sk_live_nope"))
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"].startswith("Invalid API Key provided: sk_live_")


async def test_arrays_in_the_bracket_form(stripe: httpx.AsyncClient) -> None:
    """``payment_method_types[]=card`` (Stripe's curl examples) as well as ``[0]=``."""
    for form in ("payment_method_types[]=card", "payment_method_types[0]=card"):
        created = await create(stripe, f"{CHARGE}&{form}", **BEARER)
        assert created.status_code == 200, created.text
        assert created.json()["payment_method_types"] == ["card"]
    two = await create(
        stripe,
        f"{CHARGE}&payment_method_types[]=card&payment_method_types[]=sepa_debit",
        **BEARER,
    )
    assert two.json()["payment_method_types"] == ["card", "sepa_debit"]


async def test_confirm_another_card_after_a_decline(stripe: httpx.AsyncClient) -> None:
    declined = await create(
        stripe,
        "amount=4999&currency=eur&payment_method=pm_card_chargeDeclined&confirm=true"
        "&payment_method_types[]=card",
        **BEARER,
    )
    assert declined.status_code == 402
    intent: dict[str, Any] = declined.json()["error"]["payment_intent"]
    assert intent["status"] == "requires_payment_method"
    confirm = f"/v1/payment_intents/{intent['id']}/confirm"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    confirmed = await stripe.post(
        confirm, content="payment_method=pm_card_visa", headers={**form, **BEARER}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["id"], confirmed.json()["status"]) == (intent["id"], "succeeded")
    assert confirmed.json()["amount_received"] == 4999
    again = await stripe.post(
        confirm, content="payment_method=pm_card_visa", headers={**form, **BEARER}
    )
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "payment_intent_unexpected_state"
    missing = await stripe.post(
        "/v1/payment_intents/pi_NoSuchIntent000/confirm", headers={**form, **BEARER}
    )
    assert missing.status_code == 404


async def test_list_payment_intents_with_limit_and_cursors(stripe: httpx.AsyncClient) -> None:
    ids = []
    for _ in range(3):
        created = await create(stripe, CHARGE + "&payment_method_types[]=card", **BEARER)
        ids.append(created.json()["id"])
    newest_first = list(reversed(ids))
    page = await stripe.get("/v1/payment_intents", params={"limit": 2}, headers=BEARER)
    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["object"], body["url"], body["has_more"]) == ("list", "/v1/payment_intents", True)
    assert [i["id"] for i in body["data"]] == newest_first[:2]
    after = await stripe.get(
        "/v1/payment_intents", params={"starting_after": newest_first[1]}, headers=BEARER
    )
    assert [i["id"] for i in after.json()["data"]] == newest_first[2:]
    assert after.json()["has_more"] is False
    before = await stripe.get(
        "/v1/payment_intents", params={"ending_before": newest_first[2]}, headers=BEARER
    )
    assert [i["id"] for i in before.json()["data"]] == newest_first[:2]
    unknown = await stripe.get(
        "/v1/payment_intents", params={"starting_after": "pi_NoSuchIntent000"}, headers=BEARER
    )
    assert unknown.status_code == 400
