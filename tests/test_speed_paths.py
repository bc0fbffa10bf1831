"""What the mesh's faster paths keep (issue 15): the in-process transport into an edge's
proxy behaves like the socket it replaces where a caller can tell, and the gateway's
in-process rate-limit counters are swept without a thread."""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any

import httpx
import pytest

from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.specs import load_api, shipped_spec
from ecom_harness.stubs import (
    MAX_BODY_BYTES,
    InProcessTransport,
    Receive,
    Scope,
    Send,
    StubApp,
    StubEngine,
    _in_process,
    call_app,
)
from ecom_harness.stubs.behaviours._clients import PeerClient
from ecom_harness.stubs.behaviours._ratelimit import LoopMemoryStorage, RateLimiter, parse_limit
from ecom_harness.stubs.engine import CLIENT_DEFAULT_HEADERS


class SlowApp:
    """Answers after ``delay`` seconds, noting whether its caller hung up meanwhile."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.saw_disconnect = asyncio.Event()
        self.finished = asyncio.Event()
        self.scope: Scope = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        request = await receive()
        watcher = asyncio.create_task(self._watch(receive))
        await asyncio.sleep(self.delay)
        headers = [
            (b"content-type", b"text/plain"),
            (b"x-seen", str(len(request["body"])).encode()),
        ]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"made"})
        watcher.cancel()
        self.finished.set()

    async def _watch(self, receive: Receive) -> None:
        if (await receive())["type"] == "http.disconnect":
            self.saw_disconnect.set()


def client(app: Any, timeout: float | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=InProcessTransport(app), base_url="http://127.0.0.1:9999", timeout=timeout
    )


async def test_an_answer_comes_through_with_the_request_as_sent() -> None:
    app = SlowApp()
    async with client(app) as c:
        response = await c.post("/orders?x=1", content=b"12345", headers={"X-Id": "a"})
    assert (response.status_code, response.text, response.headers["x-seen"]) == (201, "made", "5")
    assert app.scope["path"] == "/orders" and app.scope["query_string"] == b"x=1"
    assert (b"host", b"127.0.0.1:9999") in app.scope["headers"]
    assert (b"x-id", b"a") in app.scope["headers"]


async def test_a_read_timeout_fires_and_the_callee_sees_a_hang_up_and_finishes() -> None:
    app = SlowApp(delay=0.3)
    async with client(app, timeout=0.05) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/")
        await asyncio.wait_for(app.saw_disconnect.wait(), 1)
        await asyncio.wait_for(app.finished.wait(), 1)  # its work was not cancelled


async def test_a_cancelled_caller_hangs_up_without_cancelling_the_callee() -> None:
    app = SlowApp(delay=0.2)
    async with client(app) as c:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):  # as the simulators bound their calls
                await c.get("/")
        await asyncio.wait_for(app.saw_disconnect.wait(), 1)
        await asyncio.wait_for(app.finished.wait(), 1)


async def test_an_answer_started_and_never_finished_is_a_closed_connection() -> None:
    async def drop(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

    async with client(drop) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get("/")


async def test_an_app_failing_before_its_answer_answers_500() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("bug")

    async with client(broken) as c:
        response = await c.get("/")
    assert response.status_code == 500


async def test_hosted_callers_reach_their_edges_in_process_unless_told_otherwise() -> None:
    for in_process in (True, False):
        async with Mesh(MeshOptions(in_process_edges=in_process)) as mesh:
            assert mesh.host is not None
            simulator = mesh.host.stubs["order-svc"].simulator
            assert simulator is not None
            transport = simulator.ctx.peers["inventory-svc"]._transport
            assert isinstance(transport, InProcessTransport) is in_process


async def test_rate_limit_counters_are_swept_on_the_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sweep went to a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    storage = LoopMemoryStorage()
    limiter = RateLimiter(storage)
    item = parse_limit("2/second")
    assert (await limiter.hit(item, "user", "a")).allowed
    assert (await limiter.hit(item, "user", "a")).allowed
    assert not (await limiter.hit(item, "user", "a")).allowed
    assert storage.events
    storage.sweep(time.time() + 2)  # both entries have expired by then
    assert not storage.events
    assert (await limiter.hit(item, "user", "a")).allowed


async def test_a_quiet_hit_reads_the_window_only_to_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway's per-IP limit tells its window only in a 429: an allowed quiet hit
    does not read the window's stats (on Redis a second round trip, issue 15)."""
    limiter = RateLimiter(LoopMemoryStorage())
    reads = 0
    read = limiter._strategy.get_window_stats

    async def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return await read(*args)

    monkeypatch.setattr(limiter._strategy, "get_window_stats", counted)
    item = parse_limit("2/minute")
    assert await limiter.hit(item, "ip", "a", quiet=True) is None
    assert await limiter.hit(item, "ip", "a", quiet=True) is None
    assert reads == 0
    refused = await limiter.hit(item, "ip", "a", quiet=True)
    assert refused is not None and not refused.allowed and reads == 1
    assert refused.headers()["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers()["Retry-After"]) <= 60
    told = await limiter.hit(item, "ip", "b")  # not quiet: the headers of an allowed hit
    assert told.allowed and told.remaining == 1 and reads == 2


async def test_a_callee_called_directly_sees_the_request_httpx_would_have_sent() -> None:
    """The proxies call their in-process callees without httpx (call_app): the scope the
    callee gets is the one an httpx client over ASGITransport gave it."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await receive()
        headers = [(b"x-a", b"1"), (b"X-A", b"2"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = {"content-type": "application/json", "x-request-id": "r1", "accept": "*/*"}
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 5))
    async with httpx.AsyncClient(transport=transport, base_url="http://callee") as c:
        through = await c.request("POST", "/v1/a%20b?x=1&y=2", headers=sent, content=b"{}")
    direct = await call_app(
        app,
        "POST",
        "/v1/a b",
        query="x=1&y=2",
        headers=sent,
        body=b"{}",
        host="callee",
        client=("10.0.0.7", 5),
    )
    by_httpx, by_call = seen

    def same(scope: Scope) -> dict[str, Any]:
        keys = ("method", "path", "query_string", "client", "server", "scheme")
        return {k: scope[k] for k in keys} | {"headers": sorted(scope["headers"])}

    lowered = sorted((k.lower(), v) for k, v in by_httpx["headers"])
    assert same(by_call) == same(by_httpx) | {"headers": lowered}
    assert (direct.status, direct.body) == (through.status_code, through.content)
    assert list(direct.headers.items()) == [
        (k, v) for k, v in through.headers.items() if k != "content-length"
    ]


@pytest.mark.parametrize(
    "call",
    [
        {"method": "POST", "url": "/orders", "json": {"sku": "SKU-1", "note": "é"}},
        {"method": "POST", "url": "/orders", "json": [1], "headers": {"Content-Type": "x/y"}},
        {"method": "POST", "url": "/a%20b?x=1", "content": b"raw", "headers": {"X-Id": "7"}},
        {"method": "GET", "url": "/orders/1", "headers": {"accept": "application/json"}},
        {"method": "DELETE", "url": "/orders/1"},
        {"method": "POST", "url": "/pi", "data": {"amount": "10", "metadata[o]": "x"}},
        {"method": "POST", "url": "/pi", "data": {"n": 1, "y": True, "f": False, "e": None}},
        {"method": "POST", "url": "/pi", "data": {"expand[]": ["a", "b"], "q": "a b&c=é"}},
        {"method": "POST", "url": "/pi", "data": {"a": "1"}, "headers": {"content-type": "x/y"}},
        {"method": "POST", "url": "/pi", "data": {}},
    ],
)
async def test_a_peer_clients_in_process_call_sends_what_httpx_sends(call: dict[str, Any]) -> None:
    """A peer client's plain call to an in-process peer skips httpx's client machinery
    (issue 15): the app still gets what httpx's own path would have sent it -- headers
    (the client's and the call's, Host, Content-Length, Content-Type), body and URL --
    and the caller the same response."""
    seen: list[tuple[Scope, bytes]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, (await receive())["body"]))
        headers = [(b"x-a", b"1"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    options = {"base_url": "http://127.0.0.1:9999/v1", "headers": {"X-Service-Token": "t"}}
    answers = []
    for plain in (True, False):
        peer = PeerClient(transport=InProcessTransport(app), **options)
        if not plain:  # httpx's own path: a request built and sent as httpx does
            request = httpx.AsyncClient.build_request(peer, **call)
            answers.append(await httpx.AsyncClient.send(peer, request))
        else:
            answers.append(await peer.request(**call))
        await peer.aclose()
    (fast, fast_body), (slow, slow_body) = seen

    def sent(scope: Scope) -> dict[str, Any]:
        keys = ("method", "path", "raw_path", "query_string", "server", "scheme")
        return {k: scope[k] for k in keys} | {"headers": sorted(scope["headers"])}

    assert sent(fast) == sent(slow) and fast_body == slow_body
    assert answers[0].status_code == answers[1].status_code == 202
    assert list(answers[0].headers.items()) == list(answers[1].headers.items())
    assert answers[0].content == answers[1].content == b"ok"
    assert str(answers[0].request.url) == str(answers[1].request.url)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"application/json")],
        [(b"content-type", b"application/json"), (b"content-length", b"12")],
        [(b"content-encoding", b"gzip"), (b"content-type", b"application/json")],
    ],
)
async def test_a_peer_clients_in_process_answer_reads_as_httpxs_own(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """The in-process answer is built without reading its body through httpx's stream
    (issue 15); it must read as httpx's own path reads it: headers (Content-Length added
    when missing), content, JSON, a gzip body decoded, the response closed."""
    payload = b'{"ok": true}'
    body = gzip.compress(payload) if (b"content-encoding", b"gzip") in headers else payload

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    answers = []
    for plain in (True, False):
        peer = PeerClient(transport=InProcessTransport(app), base_url="http://127.0.0.1:9999")
        if plain:
            answers.append(await peer.request("GET", "/x"))
        else:
            request = httpx.AsyncClient.build_request(peer, "GET", "/x")
            answers.append(await httpx.AsyncClient.send(peer, request))
        await peer.aclose()
    fast, slow = answers
    assert list(fast.headers.multi_items()) == list(slow.headers.multi_items())
    assert fast.content == slow.content == payload
    assert fast.json() == slow.json() == {"ok": True}
    assert fast.is_closed and fast.is_stream_consumed and slow.is_closed
    assert fast.num_bytes_downloaded == len(body)  # as httpx.Response(content=...) counts


async def test_a_peer_clients_in_process_call_keeps_its_read_timeout() -> None:
    app = SlowApp(delay=0.3)
    async with PeerClient(
        transport=InProcessTransport(app), base_url="http://127.0.0.1:9999", timeout=5
    ) as peer:
        with pytest.raises(httpx.ReadTimeout):
            await peer.request("GET", "/", timeout=0.05)
        await asyncio.wait_for(app.saw_disconnect.wait(), 1)
        await asyncio.wait_for(app.finished.wait(), 1)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "body"),
    [
        (
            "POST",
            "/reservations",
            "",
            {"X-Service-Token": "t", "Content-Type": "application/json"},
            b'{"order_id": "ord_1", "items": [{"sku": "SKU-1001", "quantity": 1}]}',
        ),
        ("POST", "/reservations", "", {"content-type": "application/json"}, b"{not json"),
        (
            "GET",
            "/stock/SKU-1001",
            "x=1&x=2",
            {"X-Service-Token": "t", "Accept": "text/plain"},
            b"",
        ),
        ("GET", "/nowhere", "", {"Host": "elsewhere"}, b""),
        ("POST", "/reservations", "", {"X-Service-Token": "t"}, b"x" * (MAX_BODY_BYTES + 9)),
        ("DELETE", "/reservations/res_1", "", {"X-Service-Token": "t"}, b"x"),
    ],
)
async def test_a_stub_called_directly_gets_the_request_asgi_would_give_it(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> None:
    """call_app serves a stub app without ASGI's messages (StubApp.serve): the engine
    gets the request it would have read from the scope, and the caller the same answer."""
    seen: list[Any] = []
    api = load_api(shipped_spec("inventory-svc"))
    stub = StubApp(StubEngine(api, recorder=seen.append))

    async def through_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        await stub(scope, receive, send)  # not a StubApp: call_app speaks ASGI to it

    answers = [
        await call_app(
            app,
            method,
            path,
            query=query,
            headers=headers,
            body=body,
            host="inventory-svc",
            client=("10.0.0.7", 5),
        )
        for app in (stub, through_asgi)
    ]
    assert seen[0].request == seen[1].request
    assert answers[0].verdict == seen[0].response.verdict  # the proxy's, from the engine
    assert (answers[0].status, answers[0].headers, answers[0].body) == (
        answers[1].status,
        answers[1].headers,
        answers[1].body,
    )


def test_the_headers_call_app_adds_are_the_ones_a_proxy_judges_as_added() -> None:
    """The proxies judge a request as its caller sent it when its operation declares a
    header the in-process client adds (``CLIENT_DEFAULT_HEADERS``): those must be the
    ones call_app really adds."""
    assert set(_in_process._CLIENT_DEFAULTS) == CLIENT_DEFAULT_HEADERS
