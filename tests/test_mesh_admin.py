"""The mesh's admin API, driven over real HTTP against a running mesh (embedded defaults).

One mesh serves the whole module (start-up is about half a second); each test starts
from ``mesh.reset()``. Every admin answer passes through the engine's response check, so
a behaviour that broke the admin spec would show up here as a 500, not a pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import pytest_asyncio

from ecom_harness.harness.mesh import Mesh, MeshOptions

pytestmark = pytest.mark.asyncio(loop_scope="module")

CATALOG_EDGE = "api-gateway->catalog-svc"
INVENTORY_EDGE = "order-svc->inventory-svc"
PASSWORD = "correct-horse-battery-staple"
ADDRESS = {
    "name": "Anna",
    "line1": "Torstrasse 1",
    "city": "Berlin",
    "postal_code": "10119",
    "country": "DE",
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    running = Mesh()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def admin(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the admin API, on a mesh just reset."""
    await mesh.reset()
    async with httpx.AsyncClient(base_url=mesh.url("admin")) as client:
        yield client


def fault_path(edge: str) -> str:
    """The fault resource of an edge, with ``>`` percent-encoded."""
    return "/admin/faults/" + quote(edge, safe="")


async def journal(admin: httpx.AsyncClient, **filters: Any) -> dict[str, Any]:
    response = await admin.get("/admin/journal", params=filters)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def seqs(items: list[dict[str, Any]]) -> list[int]:
    return [item["seq"] for item in items]


async def register(user: httpx.AsyncClient, email: str) -> httpx.Response:
    return await user.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Anna"}
    )


async def place_order(user: httpx.AsyncClient, email: str) -> None:
    """Register, log in and buy one SKU-1001: the whole saga, with its events."""
    assert (await register(user, email)).status_code == 201
    login = await user.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    token = login.json()["access_token"]
    order = await user.post(
        "/v1/orders",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "admin-test-1"},
        json={
            "items": [{"sku": "SKU-1001", "quantity": 1}],
            "payment_method": "pm_card_visa",
            "shipping_address": ADDRESS,
        },
    )
    assert order.status_code == 201, order.text


async def test_health_and_address_table(mesh: Mesh, admin: httpx.AsyncClient) -> None:
    health = await admin.get("/health")
    assert health.json() == {"status": "ok", "component": "mesh-admin"}

    table = (await admin.get("/admin")).json()

    names = [c["name"] for c in table["components"]]
    assert names == list(mesh.plan.components)  # topology order: the gateway first
    assert names[0] == "api-gateway"
    assert {c["name"]: c["url"] for c in table["components"]} == {
        name: mesh.url(name) for name in mesh.plan.components
    }
    assert {c["mode"] for c in table["components"]} == {"stub"}
    assert {e["edge"]: e["url"] for e in table["edges"]} == {
        edge: mesh.url(edge) for edge in mesh.plan.edges
    }
    catalog = next(e for e in table["edges"] if e["edge"] == CATALOG_EDGE)
    assert (catalog["caller"], catalog["callee"]) == ("api-gateway", "catalog-svc")
    assert table["admin"] == mesh.url("admin")
    assert table["bus"] == {"kind": "in-process", "bootstrap_servers": None, "state": "up"}


async def test_a_real_component_is_listed_as_real_and_cannot_be_seeded() -> None:
    real_url = "http://127.0.0.1:9"  # never contacted: nothing calls user-svc here
    async with (
        Mesh(MeshOptions(real={"user-svc": real_url})) as other,
        httpx.AsyncClient(base_url=other.url("admin")) as admin,
    ):
        table = (await admin.get("/admin")).json()
        modes = {c["name"]: (c["mode"], c["url"]) for c in table["components"]}
        seeded = await admin.post("/admin/components/user-svc/seed", json={})

    assert modes["user-svc"] == ("real", real_url)
    assert modes["catalog-svc"][0] == "stub"
    assert seeded.status_code == 409
    assert "user-svc cannot be seeded" in seeded.json()["detail"]


async def test_an_error_fault_changes_the_gateway_answer_and_is_journaled(
    mesh: Mesh, admin: httpx.AsyncClient
) -> None:
    user = mesh.client()
    fault = {"kind": "error", "status": 503, "body": {"title": "catalog down"}}

    set_ = await admin.put(fault_path(CATALOG_EDGE), json=fault)
    assert set_.status_code == 200, set_.text
    assert set_.json() == {"edge": CATALOG_EDGE, "fault": fault, "fired": 0}

    faulty = await user.get("/v1/products/SKU-1001")
    # The gateway fails the read (which 5xx is its own spec's business: getProduct
    # documents no 503 today, so its stub answers 500), and the journal shows why.
    assert faulty.status_code >= 500
    (entry,) = (await journal(admin, edge=CATALOG_EDGE))["items"]
    (answer,) = (await journal(admin, edge="client->api-gateway"))["items"]
    assert answer["status"] == faulty.status_code
    assert entry["fault"] == "error 503"
    assert (entry["status"], entry["response_body"]) == (503, fault["body"])
    assert entry["operation_id"] == "getProduct"
    listed = (await admin.get("/admin/faults")).json()
    assert listed == {"items": [{"edge": CATALOG_EDGE, "fault": fault, "fired": 1}]}

    assert (await admin.delete(fault_path(CATALOG_EDGE))).status_code == 204
    healthy = await user.get("/v1/products/SKU-1001")
    assert (healthy.status_code, healthy.json()["sku"]) == (200, "SKU-1001")
    first, second = (await journal(admin, edge=CATALOG_EDGE))["items"]
    assert first["seq"] == entry["seq"]
    assert (second["fault"], second["status"]) == (None, 200)


async def test_faults_are_listed_then_cleared(admin: httpx.AsyncClient) -> None:
    slow = {"kind": "delay", "delay_ms": 250, "times": 3}
    cut = {"kind": "reset"}
    assert (await admin.put(fault_path(INVENTORY_EDGE), json=slow)).status_code == 200
    assert (await admin.put(fault_path("payment-svc->stripe"), json=cut)).status_code == 200

    listed = (await admin.get("/admin/faults")).json()["items"]
    assert {item["edge"]: item for item in listed} == {
        INVENTORY_EDGE: {"edge": INVENTORY_EDGE, "fault": slow, "fired": 0},
        "payment-svc->stripe": {"edge": "payment-svc->stripe", "fault": cut, "fired": 0},
    }

    # the edge's '>' as is, this time
    assert (await admin.delete(f"/admin/faults/{INVENTORY_EDGE}")).status_code == 204
    remaining = (await admin.get("/admin/faults")).json()["items"]
    assert [item["edge"] for item in remaining] == ["payment-svc->stripe"]

    assert (await admin.delete("/admin/faults")).status_code == 204
    assert (await admin.get("/admin/faults")).json() == {"items": []}


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"kind": "explode"}, "kind"),  # the schema
        ({"kind": "delay"}, "delay_ms"),  # the schema: a delay needs delay_ms
        ({"kind": "delay", "delay_ms": 0}, "delay_ms"),
        ({"kind": "error", "status": 42}, "status"),
        ({"kind": "reset", "times": 0}, "times"),
        ({"kind": "reset", "sometimes": True}, "sometimes"),
        ({"kind": "error", "status": 503.0}, "status"),  # an integer to JSON Schema only
    ],
)
async def test_a_bad_fault_is_refused_naming_the_field(
    admin: httpx.AsyncClient, fault: dict[str, Any], field: str
) -> None:
    refused = await admin.put(fault_path(CATALOG_EDGE), json=fault)

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    named = [problem["detail"]] + [e["pointer"] + " " + e["message"] for e in problem["errors"]]
    assert any(field in text for text in named), problem
    assert (await admin.get("/admin/faults")).json() == {"items": []}


async def test_unknown_edges_and_components_are_not_found(admin: httpx.AsyncClient) -> None:
    for response in (
        await admin.put(fault_path("client->catalog-svc"), json={"kind": "reset"}),
        await admin.delete(fault_path("nowhere")),
        await admin.post("/admin/components/kafka/seed", json={}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "https://errors.example.com/ecom/not-found"
    assert (await admin.get("/admin/faults")).json() == {"items": []}


async def quiet_journal(mesh: Mesh, deadline: float = 5.0) -> list[Any]:
    """The journal once nothing more arrives: events drained, and what their consumers
    set off (notify-svc's e-mails) journaled too -- polled, with a deadline."""
    assert mesh.bus is not None
    end = asyncio.get_running_loop().time() + deadline
    seen = -1
    while asyncio.get_running_loop().time() < end:
        await mesh.bus.drain(deadline)
        entries = mesh.journal.entries()
        if len(entries) == seen:
            return entries
        seen = len(entries)
        await asyncio.sleep(0.1)
    raise AssertionError("the journal kept growing")


async def test_journal_filters_return_exactly_the_matching_entries(
    mesh: Mesh, admin: httpx.AsyncClient
) -> None:
    assert mesh.bus is not None
    await mesh.seed("inventory-svc", {"SKU-1001": 5})
    await place_order(mesh.client(), "filters@example.com")
    entries = await quiet_journal(mesh)
    middle = entries[len(entries) // 2].seq

    everything = await journal(admin)
    by_edge = (await journal(admin, edge=INVENTORY_EDGE))["items"]
    events = (await journal(admin, kind="event"))["items"]

    assert seqs(everything["items"]) == [e.seq for e in entries]
    assert everything["last_seq"] == max(e.seq for e in entries)
    assert everything["items"][0] == orjson.loads(orjson.dumps(asdict(entries[0])))
    assert [e["operation_id"] for e in by_edge] == ["reserveStock", "commitReservation"]
    assert seqs(by_edge) == [e.seq for e in mesh.journal.interactions(INVENTORY_EDGE)]
    assert events and {e["kind"] for e in events} == {"event"}
    assert seqs(events) == [e.seq for e in mesh.journal.events()]
    topic = (await journal(admin, topic="orders"))["items"]
    assert seqs(topic) == [e.seq for e in mesh.journal.events("orders")]
    http = (await journal(admin, kind="http"))["items"]
    assert seqs(http) == [e.seq for e in mesh.journal.interactions()]
    later = (await journal(admin, since=middle))["items"]
    assert seqs(later) == [e.seq for e in entries if e.seq > middle]
    later_on_edge = (await journal(admin, edge=INVENTORY_EDGE, since=by_edge[0]["seq"]))["items"]
    assert seqs(later_on_edge) == seqs(by_edge[1:])
    assert (await journal(admin, edge=INVENTORY_EDGE, kind="event"))["items"] == []

    polled = await journal(admin, since=everything["last_seq"])
    assert polled == {"items": [], "last_seq": everything["last_seq"]}
    bad = await admin.get("/admin/journal", params={"kind": "bogus"})
    assert (bad.status_code, bad.json()["errors"][0]["pointer"]) == (422, "/query/kind")

    assert (await admin.delete("/admin/journal")).status_code == 204
    assert (await journal(admin))["items"] == []


async def test_reset_forgets_state_journal_and_faults(mesh: Mesh, admin: httpx.AsyncClient) -> None:
    user = mesh.client()
    assert (await register(user, "reset@example.com")).status_code == 201
    assert (await register(user, "reset@example.com")).status_code == 409
    timeout = await admin.put(fault_path(INVENTORY_EDGE), json={"kind": "timeout"})
    assert timeout.status_code == 200
    before = await journal(admin)
    assert before["items"]

    assert (await admin.post("/admin/reset")).status_code == 204

    assert (await journal(admin))["items"] == []
    assert (await admin.get("/admin/faults")).json() == {"items": []}
    assert (await register(user, "reset@example.com")).status_code == 201
    (after,) = (await journal(admin, edge="api-gateway->user-svc"))["items"]
    assert after["seq"] > before["last_seq"]  # sequence numbers keep growing


async def test_seeded_stock_is_what_inventory_serves(mesh: Mesh, admin: httpx.AsyncClient) -> None:
    seeded = await admin.post("/admin/components/inventory-svc/seed", json={"SKU-4242": 7})
    assert seeded.status_code == 204, seeded.text

    async with httpx.AsyncClient(
        base_url=mesh.url("inventory-svc"), headers={"X-Service-Token": "test-token"}
    ) as inventory:
        stock = (await inventory.get("/stock/SKU-4242")).json()
        assert (stock["on_hand"], stock["available"]) == (7, 7)
        assert (await admin.post("/admin/reset")).status_code == 204
        assert (await inventory.get("/stock/SKU-4242")).status_code == 404


async def test_seed_data_a_component_cannot_use_is_refused(admin: httpx.AsyncClient) -> None:
    negative = await admin.post("/admin/components/inventory-svc/seed", json={"SKU-4242": -1})
    products_to_inventory = await admin.post(
        "/admin/components/inventory-svc/seed", json=[{"sku": "SKU-4242"}]
    )
    no_seed = await admin.post("/admin/components/shipping-svc/seed", json={})

    assert negative.status_code == 422
    assert negative.json()["errors"][0]["pointer"].startswith("/body")
    assert products_to_inventory.status_code == 422
    assert "inventory-svc cannot use the seed data" in products_to_inventory.json()["detail"]
    assert no_seed.status_code == 409


async def test_seed_data_is_refused_in_the_components_words_with_a_pointer(
    admin: httpx.AsyncClient,
) -> None:
    """Not Python's ("dictionary update sequence element #0 has length 1")."""
    stock_to_catalog = await admin.post("/admin/components/catalog-svc/seed", json={"SKU-4242": 7})
    strings = await admin.post("/admin/components/catalog-svc/seed", json=[{"sku": "SKU-4242"}])
    for refused in (stock_to_catalog, strings):
        assert refused.status_code == 422, refused.text
        assert "dictionary update" not in refused.text and "has length" not in refused.text
    assert "list of Product objects" in stock_to_catalog.json()["detail"]
    (error,) = strings.json()["errors"]
    assert error["pointer"] == "/body/0"
    assert error["message"].startswith("product 0 is not a catalog-svc Product: /: ")
