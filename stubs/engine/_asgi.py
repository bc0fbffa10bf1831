"""The ASGI adapter: the only place a stub meets HTTP.

A plain ASGI callable rather than a Starlette app: the pipeline already routes and
validates, so all that is left is reading the body (bounded), building a
:class:`StubRequest` and writing the answer with orjson. Serve it with uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn

from ecom_harness._startup import imports_done

from ._engine import StubEngine
from ._http import StubRequest, StubResponse
from ._validate_request import MAX_BODY_BYTES

__all__ = [
    "SERVER_KEEPALIVE",
    "PortDispatcher",
    "Receive",
    "RequestHead",
    "Scope",
    "Send",
    "StubApp",
    "bind",
    "read_request",
    "serve_sockets",
]

# Seconds a served keep-alive connection may idle (uvicorn's default is 5): longer than
# any client here keeps one (Deadlines.keepalive), so a client never reuses a connection
# the server is closing.
SERVER_KEEPALIVE = 30.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class StubApp:
    """ASGI application serving one :class:`StubEngine`."""

    def __init__(self, engine: StubEngine):
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        await _write(send, await self.engine.handle(request))

    async def serve(
        self, head: RequestHead, body: bytes
    ) -> tuple[StubResponse, list[tuple[bytes, bytes]], bytes]:
        """What ``__call__`` does for a request (``head``: its method, path, query,
        headers with lower-case names, and peer; ``body`` whole), without ASGI's scope
        and messages around it: the engine's response, and its headers and body as they
        go on the wire. A caller in this process (``call_app``) spares each in-process
        hop building and reading them (issue 15)."""
        has_body = "content-length" in head.headers or "transfer-encoding" in head.headers
        response = await self.engine.handle(
            _request(head, body[: MAX_BODY_BYTES + 1] if has_body else b"")
        )
        headers, payload = wire_answer(response)
        return response, headers, payload


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A request's line and headers, as an HTTP scope holds them (names lower-cased)."""

    method: str
    path: str
    query_string: bytes
    headers: dict[str, str]
    client: str | None


async def read_request(
    scope: Scope, receive: Receive, *, body_limit: int | None = MAX_BODY_BYTES
) -> StubRequest:
    """An HTTP scope and its body as plain request data. With ``body_limit`` the body is
    cut one byte past it (so the pipeline can answer 413); a proxy passes None."""
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
    }
    # HTTP/1.1: no Content-Length and no Transfer-Encoding means no body, so there is
    # nothing to wait for (a receive() would cost the event loop a round trip).
    has_body = "content-length" in headers or "transfer-encoding" in headers
    head = RequestHead(
        scope["method"],
        scope["path"],
        scope.get("query_string", b""),
        headers,
        (scope.get("client") or (None,))[0],
    )
    return _request(head, await _read_body(receive, body_limit) if has_body else b"")


def _request(head: RequestHead, body: bytes) -> StubRequest:
    return StubRequest(
        method=head.method,
        path=head.path,
        query=_query(head.query_string),
        headers=head.headers,
        body=body,
        client=head.client,
    )


def _query(raw: bytes) -> dict[str, list[str]]:
    return parse_qs(raw.decode("latin-1"), keep_blank_values=True) if raw else {}


async def _read_body(receive: Receive, limit: int | None) -> bytes:
    """The whole body, or (with ``limit``) at most one byte past it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if limit is None or size <= limit:
            chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            body = b"".join(chunks)
            return body if limit is None else body[: limit + 1]


def wire_answer(response: StubResponse) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The answer's headers and body as they go on the wire."""
    payload = b"" if response.body is None else orjson.dumps(response.body)
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    if response.body is not None and response.media_type:
        headers.append((b"content-type", response.media_type.encode("latin-1")))
    headers.append((b"content-length", str(len(payload)).encode()))
    return headers, payload


async def _write(send: Send, response: StubResponse) -> None:
    headers, payload = wire_answer(response)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class PortDispatcher:
    """One ASGI app for many stubs: picks the stub by the local port a request came in on,
    so a single uvicorn server (one signal handler, one clean Ctrl-C) serves them all."""

    def __init__(self, apps_by_port: Mapping[int, StubApp]):
        self.apps_by_port = dict(apps_by_port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        server = scope.get("server") or ("", 0)
        app = self.apps_by_port.get(int(server[1] or 0))
        if app is None:  # not one of ours: cannot happen unless a socket was added
            await _write(send, StubResponse(404, None, None))
            return
        await app(scope, receive, send)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (read it back from the socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only then;
    # without it Nagle and delayed ACKs add ~40 ms to every keep-alive exchange.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, changed for meshes that start and stop many times a run:

    - uvicorn re-raises SIGINT after its graceful shutdown, which would skip the caller's
      clean-up; here a signal only asks for the shutdown, and ``serve`` returns normally;
    - a stop asked for is seen at once, not at uvicorn's next tick (every 0.1 s);
    - the graceful shutdown checks its connections every 5 ms, where uvicorn first pauses
      0.1 s and then checks every 0.1 s.

    The last two took 0.15-0.2 s off every stop of a mesh (and of ``run``'s last one).
    """

    POLL_S = 0.005

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self._stop_asked = asyncio.Event()

    def ask_to_stop(self) -> None:
        self.should_exit = True
        self._stop_asked.set()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._stop_asked.set()

    async def main_loop(self) -> None:
        """uvicorn's loop (``on_tick``: its once-a-second housekeeping, and whether to
        stop), woken early when a stop is asked for."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_asked.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's graceful shutdown: no new connections, the open ones asked to close
        and waited for (up to ``timeout_graceful_shutdown``), then their tasks."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._drained(), self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            await asyncio.sleep(self.POLL_S)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only; stop it with the ``stop`` event
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def serve_sockets(
    app: PortDispatcher, sockets: list[socket.socket], stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGINT/SIGTERM or until ``stop`` is set, shut down gracefully, return."""
    imports_done()  # serving: what the process loads to start is loaded
    # proxy_headers off: uvicorn would otherwise replace the peer's address with any
    # X-Forwarded-For sent from 127.0.0.1 -- on loopback, from anyone. Who may forward
    # addresses is each component's own setting (the gateway's trusted_proxies).
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        timeout_keep_alive=int(SERVER_KEEPALIVE),
    )
    server = _Server(config)
    if stop is None:
        await server.serve(sockets=sockets)
        return

    async def stop_when_told() -> None:
        await stop.wait()
        server.ask_to_stop()

    watcher = asyncio.create_task(stop_when_told())
    try:
        await server.serve(sockets=sockets)
    finally:
        watcher.cancel()
