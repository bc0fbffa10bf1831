"""Client addresses are not the client's to choose (issue 15, item 5): through the mesh,
over real sockets, a made-up ``X-Forwarded-For`` does not escape the per-IP limit; the
limits and the trusted proxies are set from the admin API and the command line. And the
gateway's admission (item 2): at most ``max_in_flight`` requests at work behind it, the
rest waiting their turn, at most ``queue_timeout``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from click.testing import CliRunner

from conftest import free_port_base
from ecom_harness.cli.main import cli
from ecom_harness.harness.faults import Fault
from ecom_harness.harness.mesh import Mesh, MeshOptions

on_the_mesh = pytest.mark.asyncio(loop_scope="module")

LIMIT = 5


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running() -> AsyncIterator[Mesh]:
    options = MeshOptions(settings={"api-gateway": {"ip_rate_limit": f"{LIMIT}/minute"}})
    async with Mesh(options) as mesh:
        yield mesh


@pytest_asyncio.fixture(loop_scope="module")
async def mesh(running: Mesh) -> AsyncIterator[Mesh]:
    await running.reset()  # counters too
    yield running
    running.set_gateway_limits(
        ip_rate_limit=f"{LIMIT}/minute", trusted_proxies=[], max_in_flight=32, queue_timeout=5
    )


async def _products(mesh: Mesh, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with mesh.client(**headers) as client:
        return (await client.get("/v1/products")).status_code


@on_the_mesh
async def test_made_up_forwarded_addresses_do_not_escape_the_per_ip_limit(mesh: Mesh) -> None:
    answers = [await _products(mesh) for _ in range(LIMIT + 1)]
    assert answers == [200] * LIMIT + [429]
    spoofed = [await _products(mesh, f"198.51.100.{n}") for n in range(20)]
    assert spoofed == [429] * 20
    # the gateway saw the client's own address through the edge proxy, and its header as sent
    (last,) = mesh.journal.interactions("client->api-gateway")[-1:]
    assert (last.status, last.request_headers["x-forwarded-for"]) == (429, "198.51.100.19")


@on_the_mesh
async def test_the_admin_api_raises_the_limits_for_a_load_run(mesh: Mesh) -> None:
    for _ in range(LIMIT + 1):
        await _products(mesh)
    assert await _products(mesh) == 429
    async with httpx.AsyncClient(base_url=mesh.url("admin")) as admin:
        before = (await admin.get("/admin/limits")).json()
        raised = await admin.patch("/admin/limits", json={"ip_rate_limit": "100000/minute"})
        refused = await admin.patch("/admin/limits", json={"rate_limit": "lots"})
        after = (await admin.get("/admin/limits")).json()
    assert before == {"rate_limit": "100/minute", "ip_rate_limit": f"{LIMIT}/minute",
                      "trusted_proxies": [], "max_in_flight": 32,
                      "queue_timeout": 5}  # fmt: skip
    assert raised.status_code == 200, raised.text
    assert raised.json()["ip_rate_limit"] == "100000/minute"
    assert refused.status_code == 422
    assert "'lots' is not a rate limit" in refused.json()["detail"]
    assert after == raised.json()  # the refused change changed nothing
    assert await _products(mesh) == 200


@on_the_mesh
async def test_a_trusted_proxy_is_believed(mesh: Mesh) -> None:
    """The test's client plays the trusted proxy (it comes from 127.0.0.1)."""
    async with httpx.AsyncClient(base_url=mesh.url("admin")) as admin:
        trusted = await admin.patch("/admin/limits", json={"trusted_proxies": ["127.0.0.1"]})
        bad = await admin.patch("/admin/limits", json={"trusted_proxies": ["not-an-ip"]})
    assert trusted.json()["trusted_proxies"] == ["127.0.0.1/32"]
    assert bad.status_code == 422 and "not-an-ip" in bad.json()["detail"]
    first = [await _products(mesh, "203.0.113.1") for _ in range(LIMIT + 1)]
    assert first == [200] * LIMIT + [429]
    assert await _products(mesh, "203.0.113.2") == 200  # another client behind the proxy


CATALOG = "api-gateway->catalog-svc"


def _most_at_once(mesh: Mesh, edge: str) -> int:
    """The most requests the journal saw at work on ``edge`` at the same moment."""
    moments = []
    for seen in mesh.journal.interactions(edge):
        moments += [(seen.time - seen.duration_ms / 1000, 1), (seen.time, -1)]
    at_once = most = 0
    for _, step in sorted(moments):
        at_once += step
        most = max(most, at_once)
    return most


@on_the_mesh
async def test_the_gateway_lets_max_in_flight_through_and_the_rest_wait(mesh: Mesh) -> None:
    mesh.set_gateway_limits(ip_rate_limit="1000/minute", max_in_flight=2)
    mesh.faults.set(CATALOG, Fault("delay", delay_ms=200))
    answers = await asyncio.gather(*(_products(mesh) for _ in range(6)))
    assert answers == [200] * 6  # every one waited its turn, none was refused
    assert len(mesh.journal.interactions(CATALOG)) == 6
    assert _most_at_once(mesh, CATALOG) == 2
    # with no bound they all go at once
    await mesh.reset()
    mesh.set_gateway_limits(ip_rate_limit="1000/minute", max_in_flight=0)
    mesh.faults.set(CATALOG, Fault("delay", delay_ms=200))
    assert await asyncio.gather(*(_products(mesh) for _ in range(6))) == [200] * 6
    assert _most_at_once(mesh, CATALOG) == 6


@on_the_mesh
async def test_a_request_that_waits_too_long_is_answered_503_and_did_nothing(mesh: Mesh) -> None:
    mesh.set_gateway_limits(ip_rate_limit="1000/minute", max_in_flight=1, queue_timeout=0.1)
    mesh.faults.set(CATALOG, Fault("delay", delay_ms=500))
    async with mesh.client() as client:
        first = asyncio.ensure_future(client.get("/v1/products"))
        await asyncio.sleep(0.05)  # the first one is in
        second = await client.get("/v1/products")
        assert (await first).status_code == 200
    assert second.status_code == 503
    assert second.headers["retry-after"] == "5"
    problem = second.json()
    assert problem["type"].endswith("service-unavailable")
    assert problem["detail"] == (
        "The gateway is at capacity: 1 in flight (its bound) and this one waited 0.1 s for "
        "its turn; retry later."
    )
    assert len(mesh.journal.interactions(CATALOG)) == 1  # the refused one went nowhere
    (refused,) = [seen for seen in mesh.journal.interactions("client->api-gateway")
                  if seen.status == 503]  # fmt: skip
    assert refused.violations == ()  # 503 is the gateway's documented answer


@on_the_mesh
async def test_admission_is_set_from_the_admin_api_all_or_nothing(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.url("admin")) as admin:
        changed = await admin.patch("/admin/limits", json={"max_in_flight": 4})
        refused = await admin.patch("/admin/limits", json={"max_in_flight": -1})
        mixed = await admin.patch("/admin/limits", json={"max_in_flight": 9, "rate_limit": "x"})
        after = (await admin.get("/admin/limits")).json()
    assert changed.status_code == 200, changed.text
    assert (changed.json()["max_in_flight"], changed.json()["queue_timeout"]) == (4, 5)
    assert refused.status_code == 422  # the admin spec's minimum
    assert mixed.status_code == 422 and "'x' is not a rate limit" in mixed.json()["detail"]
    assert after == changed.json()  # neither refused change changed anything
    with pytest.raises(ValueError, match="queue_timeout must be a number of seconds > 0"):
        mesh.set_gateway_limits(ip_rate_limit="7/minute", max_in_flight=9, queue_timeout=0)
    assert mesh.gateway_limits() == after


def test_up_refuses_a_limit_it_cannot_use() -> None:
    base = str(free_port_base())
    result = CliRunner().invoke(cli, ["up", "--rate-limit", "lots", "--port-base", base])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        "ecom-harness: cannot run the mesh: api-gateway settings:"
        " 'lots' is not a rate limit (for example 100/minute)"
    )


def test_up_refuses_a_negative_admission_bound() -> None:
    base = str(free_port_base())
    result = CliRunner().invoke(cli, ["up", "--max-in-flight", "-1", "--port-base", base])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--max-in-flight': -1 is not in the range x>=0" in result.stderr
