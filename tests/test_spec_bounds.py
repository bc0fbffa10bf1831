"""Bounds on every number: the engine enforces what an integer's ``format`` implies
(int32, int64) as well as its ``minimum``/``maximum``, and a value beyond a column's range
is refused as the documented 422 before it can reach a simulator's database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from conftest import asgi_client
from ecom_harness.specs import SchemaSet
from ecom_harness.stubs import StubHost

HostFactory = Callable[..., Awaitable[StubHost]]
SERVICE = {"X-Service-Token": "order-svc-token"}
DOCUMENT = {
    "components": {
        "schemas": {
            "Small": {"type": "integer", "format": "int32"},
            "Big": {"type": "integer", "format": "int64"},
            "Tighter": {"type": "integer", "format": "int32", "maximum": 10},
            "Looser": {"type": "integer", "format": "int32", "maximum": 2**40},
        }
    }
}


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("Small", 2**31 - 1, True),
        ("Small", 2**31, False),
        ("Small", -(2**31) - 1, False),
        ("Big", 2**63 - 1, True),
        ("Big", 2**63, False),
        ("Big", 9223372036854775809, False),
        ("Tighter", 11, False),  # the schema's own bound still applies
        ("Looser", 2**31, False),  # a bound looser than the format cannot widen it
    ],
)
def test_integer_formats_are_ranges(name: str, value: int, valid: bool) -> None:
    found = SchemaSet(DOCUMENT).violations(f"/components/schemas/{name}", value)
    assert (found == []) is valid, found


def test_an_example_value_is_never_rewritten() -> None:
    """Only schemas get the implied bounds; an example that happens to look like a
    schema is data and stays as written."""
    document: dict[str, Any] = {
        "components": {"examples": {"E": {"value": {"type": "integer", "format": "int32"}}}}
    }
    SchemaSet(document)
    assert document["components"]["examples"]["E"]["value"] == {
        "type": "integer",
        "format": "int32",
    }


@pytest.mark.parametrize("on_hand", [9223372036854775809, 2**63 - 1, 1_000_001, -1])
async def test_stock_beyond_its_bounds_is_422_not_a_crash(
    host_factory: HostFactory, on_hand: int
) -> None:
    host = await host_factory(["inventory-svc"])
    async with asgi_client(host, "inventory-svc", **SERVICE) as client:
        response = await client.put("/stock/SKU-1001", json={"on_hand": on_hand})
        kept = await client.get("/stock/SKU-1001")
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["pointer"] == "/body/on_hand"
    assert kept.status_code == 200 and kept.json()["on_hand"] != on_hand
