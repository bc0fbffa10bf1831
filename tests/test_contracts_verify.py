"""``contracts verify``: every provider's simulator against every pact naming it (states
through the mesh's admin API, messages produced by the provider), and a real provider at
a URL with a deliberately broken answer failing, with Pact's own mismatch named."""

from __future__ import annotations

import copy
import json
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import REPO
from ecom_harness.cli.main import cli
from ecom_harness.harness.contracts import load_pacts
from ecom_harness.harness.contracts.verify import running_mesh
from ecom_harness.harness.mesh import MeshOptions
from ecom_harness.specs import load_api, shipped_spec

STRIPE = load_api(shipped_spec("stripe")).operations["createPaymentIntent"]


def _example(status: str) -> dict[str, Any]:
    media = STRIPE.responses[status].content["application/json"]
    return copy.deepcopy(next(iter(media.examples.values())))


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """Serve ``app`` on a free loopback port from a thread; stopped by its own handles."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with closing(sock):
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
        thread.start()
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join()


def broken_stripe() -> Starlette:
    """Stripe's createPaymentIntent, but the succeeded PaymentIntent's ``amount`` is a
    string: the field payment-svc relies on has another type."""

    async def create(request: Request) -> JSONResponse:
        form = (await request.body()).decode()
        if "chargeDeclined" in form:
            return JSONResponse(_example("402"), status_code=402)
        answer = _example("200")
        answer["amount"] = str(answer["amount"])
        return JSONResponse(answer)

    return Starlette(routes=[Route("/v1/payment_intents", create, methods=["POST"])])


def test_every_simulator_keeps_every_pact(tmp_path: Path) -> None:
    junit = tmp_path / "verify.xml"
    result = CliRunner().invoke(cli, ["contracts", "verify", "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    cases = ET.parse(junit).getroot().iter("testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    expected = {
        (p.path.name, i.description) for p in load_pacts(REPO / "contracts") for i in p.interactions
    }
    assert names == expected  # a result per interaction, HTTP and messages alike
    assert any(name.startswith("order.placed") for _, name in names)


def test_a_provider_with_a_broken_answer_fails_verification(tmp_path: Path) -> None:
    report = tmp_path / "verify.json"
    with serving(broken_stripe()) as url:
        result = CliRunner().invoke(
            cli, ["contracts", "verify", "stripe", "--provider-url", url, "--json", str(report)]
        )
    assert result.exit_code == 1, result.output
    rows = {r["name"]: r for r in json.loads(report.read_text())["results"]}
    succeeded = next(r for n, r in rows.items() if n.startswith("createPaymentIntent answered 200"))
    declined = next(r for n, r in rows.items() if n.startswith("createPaymentIntent answered 402"))
    assert not succeeded["passed"]
    assert "amount" in " ".join(succeeded["details"])  # Pact's own mismatch, at $.amount
    assert declined["passed"]


def test_provider_states_are_set_through_the_admin_api() -> None:
    """The state of commitReservation replays the reservation it needs and answers the
    id inventory-svc made this time, under the name the pact's generator uses."""
    pact = next(
        p for p in load_pacts(REPO / "contracts") if p.path.name.startswith("order-svc-inv")
    )
    commit = next(i for i in pact.interactions if i.description.startswith("commitReservation"))
    state = commit.raw["providerStates"][0]
    with running_mesh(MeshOptions()) as (mesh, _loop):
        answer = httpx.post(
            f"{mesh.url('admin')}/admin/provider-states",
            json={"state": state["name"], "params": state["params"], "action": "setup"},
        )
        assert answer.status_code == 200, answer.text
        values = answer.json()
        (name,) = [k for k in values if k.startswith("res_")]
        reservation = httpx.get(
            f"{mesh.url('inventory-svc')}/reservations/{values[name]}",
            headers={"X-Service-Token": "t"},
        )
        assert reservation.status_code == 200
        assert reservation.json()["status"] == "HELD"
        bad = httpx.post(
            f"{mesh.url('admin')}/admin/provider-states",
            json={"state": "x", "params": {"provider": "nobody"}, "action": "setup"},
        )
        assert bad.status_code == 422
        assert "params.provider" in bad.text
