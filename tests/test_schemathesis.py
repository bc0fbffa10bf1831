"""Schemathesis against every stub, served on loopback: no server error, and no response
that breaks the spec (status, media type, body), for generated requests.

A modest number of examples per operation keeps CI quick; the point is breadth: every
operation of every component, with valid credentials so requests reach the behaviours,
and once more without any, so every refusal must be documented too. Operations that
write get more examples: that is where a value the validator lets through can reach a
database column it does not fit (``PUT /stock/{sku}`` with an on_hand beyond int64 once
answered 500).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from ecom_harness.specs import shipped_components, shipped_spec
from ecom_harness.stubs import ServePlan, serve_stubs

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
TWILIO_SID = "AC" + "0" * 32


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    """Every shipped component served on free loopback ports by a background thread;
    stopped through its own stop event."""
    ready: dict[str, str] = {}
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def on_ready(urls: dict[str, str]) -> None:
        ready.update(urls)
        started.set()

    def run() -> None:
        loop.run_until_complete(serve_stubs(ServePlan(), on_ready, stop))

    thread = threading.Thread(target=run, name="stub-server", daemon=True)
    thread.start()
    assert started.wait(30), "the stubs did not start"
    yield ready
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    assert not thread.is_alive(), "the stub server did not stop"


def _gateway_token(gateway: str) -> str:
    """A real token: register and log in through the gateway (introspected by user-svc)."""
    credentials = {"email": "fuzz@example.com", "password": "correct-horse-battery"}
    httpx.post(f"{gateway}/v1/auth/register", json=credentials | {"name": "Fuzz"})
    answer = httpx.post(f"{gateway}/v1/auth/login", json=credentials)
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def _credentials(component: str, urls: dict[str, str]) -> dict[str, str]:
    if component == "api-gateway":
        return {"Authorization": f"Bearer {_gateway_token(urls[component])}"}
    if component == "stripe":
        return {"Authorization": "Bearer sk_test_fuzz"}
    if component == "sendgrid":
        return {"Authorization": "Bearer SG.fuzz"}
    if component == "twilio":
        basic = base64.b64encode(f"{TWILIO_SID}:token".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {"X-Service-Token": "fuzz"}


def _operations() -> list[Any]:
    found = []
    for component in shipped_components():
        schema = schemathesis.openapi.from_path(shipped_spec(component))
        for result in schema.get_all_operations():
            operation = result.ok()
            found.append(pytest.param(component, operation, id=f"{component} {operation.label}"))
    return found


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@pytest.mark.parametrize("authenticated", [True, False], ids=["credentials", "anonymous"])
@pytest.mark.parametrize(("component", "operation"), _operations())
def test_stub_keeps_its_contract(
    component: str, operation: Any, authenticated: bool, served: dict[str, str]
) -> None:
    headers = _credentials(component, served) if authenticated else {}
    examples = 25 if authenticated and operation.method.upper() in WRITES else 8

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=served[component], headers=headers, checks=CHECKS)

    operation.as_strategy()  # fails early on a schema schemathesis cannot use
    from hypothesis import given

    given(case=operation.as_strategy())(run)()
