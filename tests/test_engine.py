"""The stub engine's request pipeline, through HTTP (an in-process ASGI transport)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from ecom_harness.specs import Api, read_document, spec_root
from ecom_harness.stubs import (
    MAX_BODY_BYTES,
    Exchange,
    StubApp,
    StubEngine,
    StubRequest,
    StubResponse,
    ValidRequest,
)

ADDRESS = {
    "name": "Anna",
    "line1": "Hauptstr. 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
ORDER = {
    "items": [{"sku": "SKU-1001", "quantity": 1}],
    "payment_method": "pm_card_visa",
    "shipping_address": ADDRESS,
}
AUTH = {"Authorization": "Bearer token", "Idempotency-Key": "key-1"}


def _api(name: str) -> Api:
    doc = read_document(spec_root() / "openapi" / f"{name}.yaml")
    assert not isinstance(doc, Exception) and hasattr(doc, "data")
    return Api(doc)  # type: ignore[arg-type]


def _call(engine: StubEngine, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=StubApp(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://stub") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def gateway() -> Api:
    return _api("api-gateway")


def test_default_answer_is_first_2xx_example(gateway: Api) -> None:
    response = _call(StubEngine(gateway), "POST", "/v1/orders", headers=AUTH, json=ORDER)
    assert response.status_code == 201
    first = next(iter(gateway.operations["placeOrder"].responses["201"].content.values()))
    assert response.json() == next(iter(first.examples.values()))


def test_prefer_selects_status_and_named_example(gateway: Api) -> None:
    examples = gateway.operations["placeOrder"].responses["402"].content
    (media,) = examples.values()
    name, value = list(media.examples.items())[-1]
    headers = AUTH | {"Prefer": f"code=402, example={name}"}
    response = _call(StubEngine(gateway), "POST", "/v1/orders", headers=headers, json=ORDER)
    assert response.status_code == 402
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == value


def test_prefer_unknown_example_is_refused(gateway: Api) -> None:
    headers = AUTH | {"Prefer": "code=201, example=nope"}
    response = _call(StubEngine(gateway), "POST", "/v1/orders", headers=headers, json=ORDER)
    assert response.status_code == 406
    assert "no example 'nope'" in response.json()["detail"]


def test_unknown_path_and_wrong_method(gateway: Api) -> None:
    missing = _call(StubEngine(gateway), "GET", "/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/not-found")
    wrong = _call(StubEngine(gateway), "DELETE", "/v1/products/SKU-1001")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"


def test_every_violation_is_listed_with_its_pointer(gateway: Api) -> None:
    body = {"items": [{"sku": "nope", "quantity": 0}], "payment_method": "visa"}
    response = _call(
        StubEngine(gateway),
        "POST",
        "/v1/orders?x=1",
        headers={"Authorization": "Bearer t"},
        json=body,
    )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert {
        "/header/idempotency-key",
        "/body/items/0/sku",
        "/body/items/0/quantity",
        "/body/payment_method",
        "/body",
    } <= pointers


def test_query_parameters_are_typed_before_validation(gateway: Api) -> None:
    ok = _call(StubEngine(gateway), "GET", "/v1/products?limit=5")
    assert ok.status_code == 200
    too_many = _call(StubEngine(gateway), "GET", "/v1/products?limit=500")
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["pointer"] == "/query/limit"
    not_a_number = _call(StubEngine(gateway), "GET", "/v1/products?limit=five")
    assert not_a_number.json()["errors"][0]["pointer"] == "/query/limit"


@pytest.mark.parametrize(
    ("media_type", "body", "status"),
    [
        ("application/json", b"{not json", 400),
        ("text/xml", b"<order/>", 415),
        ("application/json", b" " * (MAX_BODY_BYTES + 10), 413),
    ],
    ids=["malformed-json", "unsupported-media-type", "oversized-body"],
)
def test_unusable_bodies_are_refused(
    gateway: Api, media_type: str, body: bytes, status: int
) -> None:
    headers = AUTH | {"Content-Type": media_type}
    answer = _call(StubEngine(gateway), "POST", "/v1/orders", headers=headers, content=body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


def test_form_encoded_body_is_parsed_and_typed() -> None:
    stripe = _api("external/stripe")
    form = {
        "amount": "2599",
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "confirm": "true",
        "metadata[order_id]": "ord_7Hq2Kd9xLm",
    }
    ok = _call(
        StubEngine(stripe),
        "POST",
        "/v1/payment_intents",
        headers={"Authorization": "Bearer sk_test_x"},
        data=form,
    )
    assert ok.status_code == 200, ok.text
    bad = _call(
        StubEngine(stripe),
        "POST",
        "/v1/payment_intents",
        headers={"Authorization": "Bearer sk_test_x"},
        data=form | {"amount": "lots"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/body/amount"


def test_behaviour_answers_and_is_checked_against_the_spec(gateway: Api) -> None:
    async def good(request: ValidRequest) -> StubResponse:
        return StubResponse(200, {"status": "ok", "component": "api-gateway"})

    async def bad(request: ValidRequest) -> StubResponse:
        return StubResponse(200, {"status": 42})

    assert _call(StubEngine(gateway, {"getHealth": good}), "GET", "/health").status_code == 200
    loud = _call(StubEngine(gateway, {"getHealth": bad}), "GET", "/health")
    assert loud.status_code == 500
    assert loud.json()["type"].endswith("/stub-contract-violation")
    assert {e["pointer"] for e in loud.json()["errors"]} >= {"/body/status"}


def test_behaviour_for_unknown_operation_is_refused(gateway: Api) -> None:
    async def nothing(request: ValidRequest) -> None:
        return None

    with pytest.raises(ValueError, match="unknownOp"):
        StubEngine(gateway, {"unknownOp": nothing})


def test_every_exchange_is_recorded_with_its_operation(gateway: Api) -> None:
    seen: list[Exchange] = []
    engine = StubEngine(gateway, recorder=seen.append)
    _call(engine, "GET", "/v1/products/SKU-1001")
    _call(engine, "GET", "/v1/nothing")
    assert [(e.response.operation_id, e.response.status) for e in seen] == [
        ("getProduct", 200),
        (None, 404),
    ]


@pytest.mark.parametrize(
    "name",
    [
        "api-gateway",
        "user-svc",
        "order-svc",
        "inventory-svc",
        "payment-svc",
        "shipping-svc",
        "catalog-svc",
        "notify-svc",
        "external/stripe",
        "external/sendgrid",
        "external/twilio",
    ],
)
def test_every_documented_example_passes_the_response_validator(name: str) -> None:
    """Each named example of each response is served as is, through the engine's own
    response check (a failing one would come back as a 500)."""
    api = _api(name)
    engine = StubEngine(api)
    for operation in api.operations.values():
        for status, spec in operation.responses.items():
            for media in spec.content.values():
                for example in media.examples:
                    prefer = {"prefer": f"code={status}, example={example}"}
                    checked = engine._checked(
                        StubResponse(
                            int(status) if status.isdigit() else 500,
                            media.examples[example],
                            media.media_type,
                            operation_id=operation.operation_id,
                        ),
                        StubRequest("GET", "/", headers=prefer),
                    )
                    assert checked.status != 500, (
                        operation.operation_id,
                        status,
                        example,
                        checked.body,
                    )
