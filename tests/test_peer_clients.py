"""Clients between components: pooled connections a server closed while idle are
retried, fresh ones never; the edge's timeout, never httpx's 5 s default; the timeouts
nest (each caller waits longer than its callee can take)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from ecom_harness.stubs import DeadlineError, Deadlines, peer_client
from ecom_harness.stubs.behaviours import ReusedConnectionRetry

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """Read one request head (the tests send no bodies); False at end of stream."""
    try:
        await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    return True


@asynccontextmanager
async def server(*, close_second_request: bool) -> AsyncIterator[tuple[int, list[int]]]:
    """A keep-alive HTTP/1.1 server on loopback. Per connection it answers the first
    request; with ``close_second_request`` it reads the next one on that connection and
    closes without a byte of answer (a server's idle close racing the client's reuse).
    Yields the port, and how many requests each connection got."""
    counts: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counts.append(0)
        index = len(counts) - 1
        try:
            while await _read_request(reader):
                counts[index] += 1
                if counts[index] > 1 and close_second_request:
                    break
                writer.write(ANSWER)
                await writer.drain()
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield port, counts
    finally:
        listener.close()
        await listener.wait_closed()


async def test_a_reused_connection_closed_by_the_server_is_retried_on_a_fresh_one() -> None:
    async with server(close_second_request=True) as (port, counts):
        client = peer_client(f"http://127.0.0.1:{port}", timeout=2.0, deadlines=Deadlines())
        async with client:
            first = await client.get("/a")
            second = await client.get("/b")  # goes out on the pooled connection first
            transport = client._transport
    assert (first.status_code, second.status_code) == (200, 200)
    assert isinstance(transport, ReusedConnectionRetry)
    assert transport.retried == 1
    assert counts == [2, 1]  # the stale connection saw the request, a fresh one answered


async def test_a_request_failing_on_a_fresh_connection_is_not_sent_again() -> None:
    """The server may have acted on it: only the reused-connection case is safe."""
    seen: list[int] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await _read_request(reader):
            seen.append(1)
        writer.close()

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with peer_client(
            f"http://127.0.0.1:{port}", timeout=2.0, deadlines=Deadlines()
        ) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post("/payments", json={})
    finally:
        listener.close()
        await listener.wait_closed()
    assert seen == [1]


def test_clients_use_the_edge_timeout_and_expire_idle_connections_first() -> None:
    deadlines = Deadlines(stripe=7.5, keepalive=1.5)
    client = peer_client(
        "http://127.0.0.1:9", timeout=deadlines.edge("payment-svc", "stripe"), deadlines=deadlines
    )
    assert client.timeout == httpx.Timeout(7.5)  # not httpx's 5 s
    transport = client._transport
    assert isinstance(transport, ReusedConnectionRetry)
    pool = transport.inner._pool  # type: ignore[attr-defined]
    assert pool._keepalive_expiry == 1.5


def test_each_caller_waits_longer_than_its_callee_can_take() -> None:
    for deadlines in (Deadlines(), Deadlines(stripe=0.1, inventory=3, shipping=0.2)):
        stripe = deadlines.edge("payment-svc", "stripe")
        payment = deadlines.edge("order-svc", "payment-svc")
        assert payment > stripe * (1 + deadlines.stripe_settle_attempts)
        order_takes = (
            2 * deadlines.edge("order-svc", "inventory-svc")
            + 2 * payment
            + 2 * deadlines.edge("order-svc", "shipping-svc")
            + deadlines.edge("order-svc", "inventory-svc")
        )
        assert deadlines.edge("api-gateway", "order-svc") > order_takes
        assert deadlines.edge("client", "api-gateway") > deadlines.edge("api-gateway", "order-svc")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stripe": -1}, "deadline 'stripe' must be a number >= 0, not -1"),
        ({"keepalive": 30}, "must be shorter than the servers' idle timeout"),
        ({"stripe_timeout": 1}, "unknown deadline(s) stripe_timeout (known: "),
    ],
)
def test_unusable_deadlines_are_refused_naming_the_field(
    values: dict[str, float], message: str
) -> None:
    with pytest.raises(DeadlineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Deadlines.from_mapping(values)


def test_env_shows_each_edges_timeout_and_how_long_callers_wait() -> None:
    from click.testing import CliRunner

    from ecom_harness.cli.main import cli

    result = CliRunner().invoke(
        cli, ["env", "order-svc", "--port-base", "20000", "--kafka", "local", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    import json

    variables = json.loads(result.stdout)
    deadlines = Deadlines()
    assert float(variables["PAYMENT_SVC_TIMEOUT"]) == deadlines.edge("order-svc", "payment-svc")
    assert float(variables["INVENTORY_SVC_TIMEOUT"]) == deadlines.inventory
    assert float(variables["CALLER_API_GATEWAY_WAITS"]) == deadlines.edge(
        "api-gateway", "order-svc"
    )
    assert float(variables["CALLER_API_GATEWAY_WAITS"]) > float(variables["PAYMENT_SVC_TIMEOUT"])


async def test_a_hosted_stubs_clients_wait_the_deadline_not_httpx_default() -> None:
    """The gateway's client to order-svc waits the worked-out deadline (25 s by
    default), where httpx's own 5 s used to fire first."""
    from ecom_harness.stubs import StubHost

    deadlines = Deadlines()
    host = StubHost.shipped(
        ["api-gateway"],
        routes={"api-gateway": {"order-svc": "http://127.0.0.1:9"}},
        deadlines=deadlines,
    )
    async with host:
        simulator = host.stubs["api-gateway"].simulator
        assert simulator is not None
        client = simulator.ctx.peers["order-svc"]
        expected = deadlines.edge("api-gateway", "order-svc")
        assert expected > 5
        assert client.timeout == httpx.Timeout(expected)
        assert simulator.ctx.deadlines is deadlines
