"""``--format responses`` and ``--format httpx`` as another team uses them: the exported
module imported from a folder of the team's own, driving a small client of theirs with
no network -- answers from the simulator, requests the spec rejects refused."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import requests
from click.testing import CliRunner

from ecom_harness.cli.main import cli

CHARGE = {
    "order_id": "ord_7Hq2Kd9xLm",
    "amount": 5198,
    "currency": "eur",
    "payment_method": "pm_card_visa",
}


def export(tmp_path: Path, component: str, fmt: str) -> ModuleType:
    out = tmp_path / f"{fmt}-stubs"
    result = CliRunner().invoke(
        cli, ["stubs", "generate", component, "--format", fmt, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module(f"{component.replace('-', '_')}_{fmt}")
    finally:
        sys.path.remove(str(out))


@pytest.fixture
def clean_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.endswith(("_responses", "_httpx")):
            del sys.modules[name]


class PaymentsClient:
    """The other team's code: a small client of payment-svc on `requests`."""

    def __init__(self, base_url: str, token: str):
        self.base_url, self.session = base_url, requests.Session()
        self.session.headers["X-Service-Token"] = token

    def charge(self, key: str, **charge: object) -> requests.Response:
        return self.session.post(
            f"{self.base_url}/payments", json=charge, headers={"Idempotency-Key": key}
        )

    def payment(self, payment_id: str) -> requests.Response:
        return self.session.get(f"{self.base_url}/payments/{payment_id}")


@pytest.mark.usefixtures("clean_modules")
def test_the_responses_module_stubs_payment_svc_for_a_requests_client(tmp_path: Path) -> None:
    module = export(tmp_path, "payment-svc", "responses")
    assert module.SPEC_VERSION == "0.1.0" and len(module.SPEC_SHA256) == 64
    assert ("POST", "/payments", "createPayment") in module.OPERATIONS
    client = PaymentsClient(module.BASE_URL, token="orders-token")
    with module.payment_svc() as mock:
        charged = client.charge("key-1", **CHARGE)
        assert charged.status_code == 201, charged.text
        payment = charged.json()
        assert payment["status"] == "succeeded" and payment["amount"] == 5198
        # Stateful, as the simulator is: the payment can be read back, a replay is one charge.
        assert client.payment(payment["payment_id"]).json() == payment
        assert client.charge("key-1", **CHARGE).json()["payment_id"] == payment["payment_id"]
        declined = client.charge("key-2", **{**CHARGE, "payment_method": "pm_card_chargeDeclined"})
        assert declined.status_code == 402, declined.text
        rejected = client.charge("key-3", order_id="not-an-order")
        assert rejected.status_code in (400, 422)
        assert any(e["pointer"].startswith("/body") for e in rejected.json()["errors"])
        assert client.session.get(f"{module.BASE_URL}/nowhere").status_code == 404
        assert len(mock.calls) == 6
    with pytest.raises(requests.ConnectionError):  # outside the block: no stub, no network
        client.payment(payment["payment_id"])


class StockClient:
    """The other team's code: an async client of inventory-svc on httpx."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def on_hand(self, sku: str) -> int:
        answer = await self.client.get(f"/stock/{sku}")
        answer.raise_for_status()
        return int(answer.json()["on_hand"])

    async def reserve(self, order_id: str, sku: str, quantity: int) -> httpx.Response:
        body = {"order_id": order_id, "items": [{"sku": sku, "quantity": quantity}]}
        return await self.client.post("/reservations", json=body)


@pytest.mark.usefixtures("clean_modules")
async def test_the_httpx_transport_stubs_inventory_svc_for_an_httpx_client(tmp_path: Path) -> None:
    module = export(tmp_path, "inventory-svc", "httpx")
    transport = module.transport(settings={"inventory-svc": {"stock": {"SKU-1001": 3}}})
    headers = {"X-Service-Token": "orders-token"}
    async with httpx.AsyncClient(
        transport=transport, base_url=module.BASE_URL, headers=headers
    ) as c:
        stock = StockClient(c)
        assert await stock.on_hand("SKU-1001") == 3
        reserved = await stock.reserve("ord_5Tw8Rb3yKc", "SKU-1001", 2)
        assert reserved.status_code == 201, reserved.text
        too_many = await stock.reserve("ord_9Lm4Nf1zPq", "SKU-1001", 2)
        assert too_many.status_code == 409, too_many.text  # only one unit is left
        missing = await c.get("/stock/SKU-1001", headers={"X-Service-Token": ""})
        assert missing.status_code == 401
    # The same transport factory serves a synchronous client, examples only.
    with httpx.Client(
        transport=module.transport(examples_only=True), base_url=module.BASE_URL, headers=headers
    ) as sync:
        answer = sync.get("/stock/SKU-1001", headers={"Prefer": "code=404"})
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
