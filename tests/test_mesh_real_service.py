"""A real service takes a stub's place: a small order-svc of the test's own, configured
only from ``ecom-harness env order-svc``, serves the gateway's createOrder and runs its
saga calls through the mesh's edge proxies, so they are journaled like the stub's."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import closing, contextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import free_port_base
from ecom_harness.cli.main import cli
from ecom_harness.harness.mesh import Mesh, MeshConfigError, MeshOptions
from ecom_harness.specs import load_api, resolve_pointer, shipped_spec

ORDER_API = load_api(shipped_spec("order-svc"))
CONFIRMED: dict[str, Any] = resolve_pointer(
    ORDER_API.document.data, "/components/examples/OrderConfirmed/value"
)
SERVICE_TOKEN = {"X-Service-Token": "order-svc-token"}
PLACE_ORDER = {
    "items": [{"sku": "SKU-1001", "quantity": 2}],
    "payment_method": "pm_card_visa",
    "shipping_address": CONFIRMED["shipping_address"],
}
in_module_loop = pytest.mark.asyncio(loop_scope="module")


class FakeOrderSvc:
    """order-svc in miniature: createOrder reserves, charges and ships through the URLs
    its environment names, then answers the spec's own confirmed order with the ids it
    got. ``break_contract`` makes it answer an order status the spec does not know."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.break_contract = False
        self.created: list[str] = []  # order ids, in the order it answered them
        self.app = Starlette(routes=[Route("/orders", self.create_order, methods=["POST"])])

    async def create_order(self, request: Request) -> JSONResponse:
        wanted = await request.json()
        order_id = f"ord_{uuid.uuid4().hex[:12]}"
        lines = [{"sku": i["sku"], "quantity": i["quantity"]} for i in wanted["items"]]
        total = sum(i["quantity"] * i["unit_amount"] for i in wanted["items"])
        async with httpx.AsyncClient(headers=SERVICE_TOKEN) as peers:
            reserved = await self._call(
                peers, "INVENTORY_SVC_URL", "/reservations", {"order_id": order_id, "items": lines}
            )
            charged = await self._call(
                peers,
                "PAYMENT_SVC_URL",
                "/payments",
                {
                    "order_id": order_id,
                    "amount": total,
                    "currency": wanted["currency"],
                    "payment_method": wanted["payment_method"],
                },
                {"Idempotency-Key": f"{order_id}-charge"},
            )
            shipped = await self._call(
                peers,
                "SHIPPING_SVC_URL",
                "/shipments",
                {"order_id": order_id, "address": wanted["shipping_address"], "items": lines},
            )
        order = {
            **CONFIRMED,
            **{key: wanted[key] for key in ("user_id", "items", "currency", "shipping_address")},
            "order_id": order_id,
            "total_amount": total,
            "reservation_id": reserved["reservation_id"],
            "payment_id": charged["payment_id"],
            "shipment_id": shipped["shipment_id"],
        }
        if self.break_contract:
            order["status"] = "TELEPORTED"
        self.created.append(order_id)
        return JSONResponse(order, status_code=201)

    async def _call(
        self,
        peers: httpx.AsyncClient,
        variable: str,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await peers.post(self.environ[variable] + path, json=body, headers=headers)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


@contextmanager
def serving(app: Starlette, port: int) -> Iterator[None]:
    """Serve ``app`` on a loopback port from a background thread. The socket listens
    before the thread starts, so the app is reachable at once (early connections wait
    in the backlog); stopped through the server's and the thread's handles."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    with closing(sock):
        sock.bind(("127.0.0.1", port))
        sock.listen()
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
        thread.start()
        try:
            yield
        finally:
            server.should_exit = True
            thread.join()


@pytest.fixture(scope="module")
def port_base() -> int:
    return free_port_base()


@pytest.fixture(scope="module")
def environ(port_base: int) -> dict[str, str]:
    """What ``ecom-harness env order-svc`` tells a real order-svc for this run."""
    result = CliRunner().invoke(
        cli,
        ["env", "order-svc", "--port-base", str(port_base), "--kafka", "local", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    variables: dict[str, str] = json.loads(result.stdout)
    return variables


@pytest.fixture(scope="module")
def fake(environ: dict[str, str]) -> Iterator[FakeOrderSvc]:
    service = FakeOrderSvc(environ)
    with serving(service.app, int(environ["PORT"])):
        yield service


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def started_mesh(
    fake: FakeOrderSvc, environ: dict[str, str], port_base: int
) -> AsyncIterator[Mesh]:
    """One mesh for the module (a Tansu broker takes seconds to join), order-svc real."""
    options = MeshOptions(
        real={"order-svc": f"http://127.0.0.1:{environ['PORT']}"},
        port_base=port_base,
        kafka="local",
    )
    async with Mesh(options) as mesh:
        yield mesh


@pytest_asyncio.fixture(loop_scope="module")
async def mesh(started_mesh: Mesh, fake: FakeOrderSvc) -> AsyncIterator[Mesh]:
    """The module's mesh with a clean journal and state, and a well-behaved fake."""
    await started_mesh.reset()
    yield started_mesh
    fake.break_contract = False


async def place_order(mesh: Mesh, who: str) -> httpx.Response:
    """Register, log in and place an order through the gateway, as the end user."""
    client = mesh.client()
    account = {"email": f"{who}@example.com", "password": "correct-horse-battery-staple"}
    registered = await client.post("/v1/auth/register", json={**account, "name": who})
    assert registered.status_code == 201, registered.text
    login = await client.post("/v1/auth/login", json=account)
    assert login.status_code == 200, login.text
    return await client.post(
        "/v1/orders",
        json=PLACE_ORDER,
        headers={
            "Authorization": f"Bearer {login.json()['access_token']}",
            "Idempotency-Key": f"order-{who}",
        },
    )


def order_chain(mesh: Mesh) -> list[tuple[str, str, str | None, int | None]]:
    """The journaled exchanges placing the order: to, from and through order-svc."""
    return [
        (e.caller, e.callee, e.operation_id, e.status)
        for e in mesh.journal.interactions()
        if "order-svc" in (e.caller, e.callee) or e.operation_id == "placeOrder"
    ]


@in_module_loop
async def test_real_order_svc_configured_from_env_is_journaled_like_a_stub(
    mesh: Mesh, fake: FakeOrderSvc
) -> None:
    response = await place_order(mesh, "lena")
    assert response.status_code == 201, response.text
    assert mesh.bootstrap_servers == fake.environ["KAFKA_BOOTSTRAP_SERVERS"]
    assert order_chain(mesh) == [
        ("order-svc", "inventory-svc", "reserveStock", 201),
        ("order-svc", "payment-svc", "createPayment", 201),
        ("order-svc", "shipping-svc", "scheduleShipment", 201),
        ("api-gateway", "order-svc", "createOrder", 201),
        ("client", "api-gateway", "placeOrder", 201),
    ]
    (created,) = mesh.journal.interactions("api-gateway->order-svc")
    assert created.violations == ()
    assert created.response_body["order_id"] == response.json()["order_id"] == fake.created[-1]
    for edge in ("order-svc->inventory-svc", "order-svc->payment-svc", "order-svc->shipping-svc"):
        (call,) = mesh.journal.interactions(edge)
        assert call.violations == ()
        assert call.request_headers["x-service-token"] == "[redacted]"


@in_module_loop
async def test_a_real_answer_that_breaks_the_spec_is_journaled_with_its_violation(
    mesh: Mesh, fake: FakeOrderSvc
) -> None:
    fake.break_contract = True
    await place_order(mesh, "mia")
    (created,) = mesh.journal.interactions("api-gateway->order-svc")
    assert (created.operation_id, created.status) == ("createOrder", 201)
    assert created.response_body["status"] == "TELEPORTED"
    assert len(created.violations) == 1
    assert created.violations[0].startswith('response /body/status: "TELEPORTED"')


def test_a_real_kafka_user_is_refused_with_the_in_process_bus() -> None:
    with pytest.raises(MeshConfigError) as refused:
        Mesh(MeshOptions(real={"order-svc": "http://127.0.0.1:9000"}))
    assert "order-svc" in str(refused.value)
    assert "--kafka" in str(refused.value)
